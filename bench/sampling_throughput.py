"""Generated tokens/s of `sample_completions` against `model.generate`.

Default (`--vs generate`): the same prompts, batch size, dtype and device, every
row forced to exactly --max-new-tokens (no EOS, no stop sequences on either side),
so both do the same work and only the decode machinery differs. `--model DIR`
times a real model (e.g. the directory `model fetch smollm2-135m-instruct` prints)
with its own tokenizer. Otherwise the model is a random-init network of a real
architecture's shape (`--arch`; no weights can be downloaded here, and speed does
not depend on them) with builtin:tiny's tokenizer;
token ids past that tokenizer's vocabulary decode to nothing, which changes no cost
that matters. Peak memory is the sampler's: CUDA peak allocated on a GPU, the
process's peak RSS on CPU.

Last line: ours_tokens_per_s=<X> generate_tokens_per_s=<Y> ratio=<X/Y> peak_mem_mb=<M>

`--vs generate-loop`: the work the loop asks for, which the forced comparison cannot
show: --prompts real task prompts (--suite: the synthetic suite's train split, what
the loop samples for training, or humaneval's test split; a seeded draw) x --n
samples each, in the loop's prompt format (`PromptFormat`: chat for an instruct model,
heal boundary), at smol-cpu's settings by default (T 0.8, top_p 0.95, 320 new
tokens, batch 32), EOS and the format's stop sequences active. Ours is one
`sample_completions(..., fmt=fmt)` call, as the loop makes it; it shares each
prompt's prefill among its n samples, drops finished rows and checks stops per row.
The baseline is the strongest batched `generate` we know: the same input ids
(`fmt.input_ids`), prompts sorted by length and left-padded, batch//n prompts per
call with num_return_sequences=n (the same rows per call), do_sample with the same
temperature and top_p (top_k off), eos_token_id = every end token the sampler stops
at (the generation config's, plus the tokenizer's end tokens it names:
SmolLM2's `<|endoftext|>`), and a `StopStringCriteria` over the same stop strings,
built once. Work is counted per row as the tokens generated up to and including the
one that ended it (EOS, the token completing a stop string, or the length limit):
`Completion.n_generated` on our side, the same rule read back from generate's
padded output on the other (exact: a row that ends before its batch does is
followed by pad tokens only, and whether its first pad is a real EOS is decided
with the same criterion). Each repeat r uses seed r on both sides (different
samples, the same distribution), alternating which side runs first; times and
tokens are summed over repeats. Sanity lines give both sides' mean tokens per row
(with its standard error), the longest row (generate runs its whole batch that
long), rows that hit the length limit, and the mean length of the kept text
(`fmt.finish`). Last line: ours_s=<X> generate_s=<Y> ratio=<Y/X>
ours_tokens_per_s=.. generate_tokens_per_s=.. tokens_ratio=.. ours_mean_tokens=..
generate_mean_tokens=.. load1=.. (X, Y: mean wall seconds per repeat for the same
P x n completions; ratio > 1: ours is faster; tokens_ratio: per generated token).

`--vs sequential`: the older comparison, `generate` one sample per call with the
stop sequences, on builtin:tiny when it is cached (or `--build` is given); last
line: tokens_per_s=<X> sequential_tokens_per_s=<Y> ratio=<X/Y>. With --per-prompt
it also times `generate` once per prompt with num_return_sequences=n.
"""

from __future__ import annotations

import argparse
import copy
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from harness.config import ModelConfig, SamplingConfig
from harness.model.loading import load_model
from harness.model.runtime import resolve_device, resolve_dtype, set_threads
from harness.model.sampling import LAST_RUN, Completion, sample_completions
from harness.model.tiny import TinySpec, ensure_tiny_model, find_tiny_model, train_tokenizer
from tasks.postprocess import STOP_SEQUENCES
from tasks.synthetic import generate_synth

ARCHS = ("tiny", "gpt2-124m", "qwen2-0.5b", "starcoder-1b")


def _tiny_tokenizer() -> PreTrainedTokenizerBase:
    spec = TinySpec()
    tasks = [t for t in generate_synth(spec.n_train, spec.n_eval, spec.suite_seed, n_fresh=0)
             if t.split == "train"]
    return train_tokenizer(spec, tasks)


def arch_config(arch: str, vocab_size: int, eos: int) -> object:
    """A transformers config with the shape of `arch` (tiny: builtin:tiny's own)."""
    from transformers import GPT2Config, GPTBigCodeConfig, LlamaConfig, Qwen2Config

    ids = {"bos_token_id": eos, "eos_token_id": eos, "pad_token_id": eos}
    if arch == "tiny":
        spec = TinySpec()
        return LlamaConfig(
            vocab_size=vocab_size, hidden_size=spec.hidden_size,
            num_hidden_layers=spec.num_layers, num_attention_heads=spec.num_heads,
            num_key_value_heads=spec.num_heads, intermediate_size=spec.intermediate_size,
            max_position_embeddings=spec.max_positions, tie_word_embeddings=True, **ids)
    if arch == "gpt2-124m":
        return GPT2Config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12,
                          n_head=12, **ids)
    if arch == "qwen2-0.5b":
        return Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                           num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                           max_position_embeddings=32768, rope_theta=1e6, rms_norm_eps=1e-6,
                           tie_word_embeddings=True, **ids)
    if arch == "starcoder-1b":
        return GPTBigCodeConfig(vocab_size=49152, n_positions=8192, n_embd=2048, n_layer=24,
                                n_head=16, n_inner=8192, multi_query=True, **ids)
    raise SystemExit(f"unknown --arch {arch!r}; one of {', '.join(ARCHS)}")


def build_model(arch: str, device: str = "cpu", dtype: str = "auto", trained: bool = False,
                build: bool = False, cache_dir: str | None = None, model: str = "",
                threads: int = 0) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    """(model in eval mode on its device and dtype, tokenizer, description).

    model: a real model (a directory, a .gguf file, a hub id; what `--model` takes),
    loaded exactly as a run loads it; it overrides `arch`.
    threads: torch threads to load with (load_model sets them; 0 = `default_threads()`,
    which under load is fewer than the cores: --threads must reach it, or a busy
    machine silently runs every --threads N at 1).
    trained (tiny only): builtin:tiny when cached (built first with `build`). Random
    weights are made directly on the device in the target dtype: a 0.5B model
    initialised on a CPU first would take longer than the benchmark.
    """
    cfg = ModelConfig(device=device, dtype=dtype)
    if model:
        real, tok = load_model(ModelConfig(name=model, device=device, dtype=dtype,
                                           cache_dir=cache_dir or "", threads=threads),
                               progress=False)
        params = sum(p.numel() for p in real.parameters()) / 1e6
        return real, tok, f"{model} ({params:.1f}M params, {next(real.parameters()).dtype})"
    dev = resolve_device(cfg)
    dt = resolve_dtype(cfg, dev)
    if arch == "tiny" and trained:
        path = find_tiny_model(cache_dir)
        if path is None and build:
            path = ensure_tiny_model(cache_dir)
        if path is not None:
            model, tok = load_model(ModelConfig(name=str(path), device=device, dtype=dtype,
                                                threads=threads), progress=False)
            return model, tok, f"builtin:tiny ({path})"
    tok = _tiny_tokenizer()
    eos = int(tok.eos_token_id)
    config = arch_config(arch, len(tok), eos)
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dt)
    try:
        with dev:
            model = AutoModelForCausalLM.from_config(config)
    finally:
        torch.set_default_dtype(default)
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = eos
    what = "builtin:tiny's shape" if arch == "tiny" else arch
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return model.eval(), tok, f"random-init {what} ({params:.1f}M params, {dt}, {dev})"


def _model(build: bool, cache_dir: str | None
           ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    """builtin:tiny when cached (or built with `build`), else a random-init model of
    its shape, on CPU (what the train bench and older callers use)."""
    return build_model("tiny", "cpu", "float32", trained=True, build=build,
                       cache_dir=cache_dir)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _without_eos(tok: PreTrainedTokenizerBase, model: PreTrainedModel
                 ) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """A tokenizer copy with no EOS and the model's generation config without one:
    the sampler then runs every row to max_new_tokens, like `generate` forced."""
    tok = copy.deepcopy(tok)
    pad = tok.pad_token
    tok.eos_token = None
    tok.pad_token = pad
    model.generation_config.eos_token_id = None
    return tok, model


def _timed(fn: Callable[[], int], device: torch.device) -> tuple[float, int, float]:
    """(seconds, tokens, peak MB) of one call."""
    _sync(device)
    _reset_peak(device)
    started = time.perf_counter()
    tokens = fn()
    _sync(device)
    return time.perf_counter() - started, tokens, _peak_mb(device)


def vs_generate(args: argparse.Namespace) -> None:
    model, tok, what = build_model(args.arch, args.device, args.dtype, model=args.model,
                                   threads=args.threads)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    prompts = [t.prompt for t in generate_synth(4000, 200, 0, n_fresh=0) if t.split == "eval"]
    prompts = prompts[:args.prompts]
    eos = model.generation_config.eos_token_id
    tok_ours, model = _without_eos(tok, model)
    cfg = SamplingConfig(temperature=args.temperature, max_new_tokens=args.max_new_tokens,
                         batch_size=args.batch_size)
    print(f"model: {what}; {len(prompts)} prompts x n={args.n} = {len(prompts) * args.n} rows, "
          f"batch {args.batch_size}, T={args.temperature}, {args.max_new_tokens} new tokens "
          f"forced, {dtype} on {device}, torch threads {torch.get_num_threads()}", flush=True)

    def ours() -> int:
        out = sample_completions(model, tok_ours, prompts, args.n, cfg, seed=0, stop=())
        return sum(c.n_generated for per in out for c in per)

    per_call = max(1, args.batch_size // args.n)

    def generate() -> int:
        tokens = 0
        for start in range(0, len(prompts), per_call):
            enc = tok(prompts[start:start + per_call], return_tensors="pt", padding=True)
            enc = {k: v.to(device) for k, v in enc.items()}
            out = model.generate(**enc, do_sample=True, temperature=args.temperature,
                                 top_p=1.0, top_k=0, max_new_tokens=args.max_new_tokens,
                                 min_new_tokens=args.max_new_tokens,
                                 num_return_sequences=args.n, pad_token_id=tok.pad_token_id)
            tokens += (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0]
        return tokens

    # warm-up both (allocator, kernels, lazy inits), on a small call
    small = SamplingConfig(temperature=args.temperature, max_new_tokens=8,
                           batch_size=args.batch_size)
    sample_completions(model, tok_ours, prompts[:2], args.n, small, seed=99, stop=())
    enc = tok(prompts[:2], return_tensors="pt", padding=True)
    model.generate(**{k: v.to(device) for k, v in enc.items()}, do_sample=True, max_new_tokens=8,
                   min_new_tokens=8, pad_token_id=tok.pad_token_id)

    best_ours = best_gen = 0.0
    peak_ours = peak_gen = 0.0
    for _ in range(args.repeats):
        torch.manual_seed(0)
        seconds, tokens, peak = _timed(ours, device)
        best_ours = max(best_ours, tokens / seconds)
        peak_ours = max(peak_ours, peak)
        print(f"sample_completions: {tokens:>7} tokens in {seconds:7.2f} s "
              f"({tokens / seconds:9.1f} tokens/s, peak {peak:.0f} MB) {dict(LAST_RUN)}",
              flush=True)
        torch.manual_seed(0)
        seconds, tokens, peak = _timed(generate, device)
        best_gen = max(best_gen, tokens / seconds)
        peak_gen = max(peak_gen, peak)
        print(f"model.generate:     {tokens:>7} tokens in {seconds:7.2f} s "
              f"({tokens / seconds:9.1f} tokens/s, peak {peak:.0f} MB)", flush=True)
    model.generation_config.eos_token_id = eos
    print(f"best of {args.repeats}; generate peak {peak_gen:.0f} MB")
    print(f"ours_tokens_per_s={best_ours:.1f} generate_tokens_per_s={best_gen:.1f} "
          f"ratio={best_ours / best_gen:.2f} peak_mem_mb={peak_ours:.0f}")


def _loop_prompts(suite: str, count: int) -> list[str]:
    """`count` prompts drawn (seeded) from a suite's train split, or its scoring split
    (humaneval: test) when it has no train split."""
    import random

    from tasks.registry import load_suite, scoring_split, select_split, splits_of

    tasks = load_suite(suite)
    split = (select_split(tasks, "train") if "train" in splits_of(tasks)
             else scoring_split(tasks, suite))
    if count > len(split):
        raise SystemExit(f"--prompts {count}: {suite} has {len(split)} prompts")
    picked = sorted(random.Random(0).sample(range(len(split)), count))
    return [split[i].prompt for i in picked]


def _mean_se(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, (var / len(values)) ** 0.5


def vs_generate_loop(args: argparse.Namespace) -> None:
    import os
    import statistics

    from transformers import StoppingCriteriaList, StopStringCriteria

    from harness.model.formats import PromptFormat
    from harness.model.sampling import _eos_ids, _pad_id

    load_start = os.getloadavg()
    model, tok, what = build_model(args.arch, args.device, args.dtype, model=args.model,
                                   threads=args.threads)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    fmt = PromptFormat.resolve(tok, args.prompt_format, "heal")
    prompts = _loop_prompts(args.suite, args.prompts)
    n, max_new = args.n, args.max_new_tokens
    cfg = SamplingConfig(temperature=args.temperature, top_p=args.top_p,
                         max_new_tokens=max_new, batch_size=args.batch_size)
    declared = model.generation_config.eos_token_id
    eos_ids = sorted(_eos_ids(model, tok))  # what the sampler stops at
    eos_set = set(eos_ids)
    pad_id = _pad_id(model, tok)
    stops = [s for s in fmt.stops if s]
    criterion = StopStringCriteria(tokenizer=tok, stop_strings=stops)
    criteria = StoppingCriteriaList([criterion])
    per_call = max(1, args.batch_size // n)
    print(f"model: {what}; suite {args.suite}, {len(prompts)} prompts x n={n} = "
          f"{len(prompts) * n} rows, batch {args.batch_size} rows ({per_call} prompts x "
          f"{n} per generate call), T={args.temperature}, top_p={args.top_p}, up to "
          f"{max_new} new tokens, format {fmt.kind} (boundary {'heal' if fmt.heal else 'keep'}), "
          f"stops {stops!r}, EOS ids {eos_ids} (generation config declares {declared!r}), "
          f"pad {pad_id}, {dtype} on {device}, torch threads {torch.get_num_threads()}, "
          f"load {load_start[0]:.2f}", flush=True)

    def ours(seed: int) -> list[list[Completion]]:
        return sample_completions(model, tok, prompts, n, cfg, seed=seed, fmt=fmt)

    def generate(seed: int, limit: int = max_new) -> list[tuple[int, list[int], list[int]]]:
        """(prompt index, prompt ids, new token ids) per row, in prompt order."""
        torch.manual_seed(seed)
        encoded = [fmt.input_ids(p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: (len(encoded[i]), i))
        rows = []
        for start in range(0, len(order), per_call):
            group = order[start:start + per_call]
            width = max(len(encoded[i]) for i in group)
            ids = torch.full((len(group), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(group), width), dtype=torch.long)
            for j, i in enumerate(group):
                ids[j, width - len(encoded[i]):] = torch.tensor(encoded[i])
                mask[j, width - len(encoded[i]):] = 1
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                 do_sample=True, temperature=args.temperature,
                                 top_p=args.top_p, top_k=0, max_new_tokens=limit,
                                 num_return_sequences=n, eos_token_id=eos_ids,
                                 pad_token_id=pad_id, stopping_criteria=criteria)
            new = out[:, width:].tolist()
            for k, row in enumerate(new):  # rows come prompt by prompt, n each
                i = group[k // n]
                rows.append((i, encoded[i], row))
        return rows

    def generated(prompt_ids: list[int], row: list[int]) -> int:
        """Tokens generate made for this row up to and including the one that ended it
        (after a row ends, generate writes pad tokens until the whole batch ends)."""
        end = len(row)
        while end > 0 and row[end - 1] == pad_id:
            end -= 1
        if end == len(row):  # no trailing pad: ended at the last column
            return end
        if end == 0:
            return 1  # the first token was an EOS (pad is an EOS here)
        if row[end - 1] in eos_set:  # ended by an EOS other than the pad id
            return end
        seq = torch.tensor([prompt_ids + row[:end]])
        stopped = bool(criterion(seq, None)[0])
        return end if stopped else end + 1  # else the first pad was its real EOS

    def text_of(i: int, tokens: list[int]) -> str:
        raw = tok.decode([t for t in tokens if t not in eos_set], skip_special_tokens=True)
        return fmt.relative_to_prompt(prompts[i], fmt.finish(prompts[i], raw))

    # warm-up both (allocator, lazy inits, the sampler's and the criterion's tables)
    small = SamplingConfig(temperature=args.temperature, top_p=args.top_p, max_new_tokens=8,
                           batch_size=args.batch_size)
    sample_completions(model, tok, prompts[:2], n, small, seed=99, fmt=fmt)
    generate(99, limit=8)

    sides: dict[str, dict[str, list[float]]] = {
        side: {"s": [], "tokens": [], "lengths": [], "chars": [], "at_max": []}
        for side in ("ours", "generate")}
    pair_ratios: list[float] = []
    for r in range(args.repeats):
        timed: dict[str, float] = {}
        for side in (("ours", "generate") if r % 2 == 0 else ("generate", "ours")):
            _sync(device)
            started = time.perf_counter()
            result = ours(r) if side == "ours" else generate(r)
            _sync(device)
            seconds = time.perf_counter() - started
            if side == "ours":
                comps = [c for per in result for c in per]
                lengths = [c.n_generated for c in comps]
                chars = [len(c.text) for c in comps]
                extra = f" {dict(LAST_RUN)}"
            else:
                lengths = [generated(ids, row) for _, ids, row in result]
                chars = [len(text_of(i, row[:k]))
                         for (i, _, row), k in zip(result, lengths, strict=True)]
                extra = ""
            got = sides[side]
            got["s"].append(seconds)
            got["tokens"].append(sum(lengths))
            got["lengths"] += lengths
            got["chars"] += chars
            got["at_max"].append(sum(k >= max_new for k in lengths))
            timed[side] = sum(lengths) / seconds
            mean, se = _mean_se([float(k) for k in lengths])
            name = "sample_completions:" if side == "ours" else "model.generate:    "
            print(f"{name} seed {r}: {sum(lengths):>6} tokens in {seconds:7.2f} s "
                  f"({sum(lengths) / seconds:7.1f} tokens/s), {mean:.1f} +- {se:.1f} tokens/row, "
                  f"longest {max(lengths)}, {sum(k >= max_new for k in lengths)} rows at "
                  f"{max_new}, kept text "
                  f"{sum(chars) / len(chars):.0f} chars/row, load {os.getloadavg()[0]:.2f}"
                  f"{extra}", flush=True)
        pair_ratios.append(timed["ours"] / timed["generate"])

    summary = {}
    for side, got in sides.items():
        seconds, tokens = sum(got["s"]), sum(got["tokens"])
        mean, se = _mean_se(got["lengths"])
        summary[side] = (seconds / args.repeats, tokens / seconds, mean)
        print(f"{side:>8}: {seconds:7.2f} s for {args.repeats} x {len(prompts) * n} "
              f"completions, {tokens:.0f} tokens ({tokens / seconds:.1f} tokens/s); "
              f"{mean:.1f} +- {se:.1f} tokens/row, {sum(got['at_max']):.0f} rows at "
              f"{max_new}, kept text {sum(got['chars']) / len(got['chars']):.0f} chars/row")
    print(f"per-repeat tokens/s ratios ours/generate: "
          f"{', '.join(f'{x:.2f}' for x in pair_ratios)} "
          f"(median {statistics.median(pair_ratios):.2f})")
    (ours_s, ours_rate, ours_mean), (gen_s, gen_rate, gen_mean) = (summary["ours"],
                                                                    summary["generate"])
    load_end = os.getloadavg()
    print(f"ours_s={ours_s:.2f} generate_s={gen_s:.2f} ratio={gen_s / ours_s:.2f} "
          f"ours_tokens_per_s={ours_rate:.1f} generate_tokens_per_s={gen_rate:.1f} "
          f"tokens_ratio={ours_rate / gen_rate:.2f} ours_mean_tokens={ours_mean:.1f} "
          f"generate_mean_tokens={gen_mean:.1f} load1={load_start[0]:.2f}-{load_end[0]:.2f}")


def _generate_tokens(model: PreTrainedModel, tok: PreTrainedTokenizerBase, prompt: str,
                     n: int, args: argparse.Namespace) -> int:
    device = next(model.parameters()).device
    enc = tok(prompt, return_tensors="pt").to(device)
    out = model.generate(**enc, do_sample=True, temperature=args.temperature, top_p=1.0,
                         top_k=0, max_new_tokens=args.max_new_tokens, num_return_sequences=n,
                         stop_strings=list(STOP_SEQUENCES), tokenizer=tok,
                         pad_token_id=tok.pad_token_id)
    new = out[:, enc["input_ids"].shape[1]:]
    # rows that ended early are padded after their EOS / stop: count real tokens
    lengths = []
    for row in new.tolist():
        length = len(row)
        while length > 1 and row[length - 1] == tok.pad_token_id and \
                row[length - 2] == tok.pad_token_id:
            length -= 1
        lengths.append(length)
    return sum(lengths)


def vs_sequential(args: argparse.Namespace) -> None:
    model, tok, what = build_model("tiny", args.device, args.dtype, trained=True,
                                   build=args.build, cache_dir=args.cache_dir,
                                   threads=args.threads)
    prompts = [t.prompt for t in generate_synth(4000, 200, 0, n_fresh=0) if t.split == "eval"]
    prompts = prompts[:args.prompts]
    cfg = SamplingConfig(temperature=args.temperature, max_new_tokens=args.max_new_tokens,
                         batch_size=args.batch_size)
    print(f"model: {what}; {len(prompts)} prompts x n={args.n}, T={args.temperature}, "
          f"max_new_tokens={args.max_new_tokens}, torch threads {torch.get_num_threads()}")

    # warm-up both paths once (allocator, lazy inits)
    sample_completions(model, tok, prompts[:2], 2, cfg, seed=99)
    _generate_tokens(model, tok, prompts[0], 1, args)

    started = time.perf_counter()
    out = sample_completions(model, tok, prompts, args.n, cfg, seed=0)
    ours_s = time.perf_counter() - started
    ours_tokens = sum(c.n_generated for per in out for c in per)

    torch.manual_seed(0)
    started = time.perf_counter()
    seq_tokens = sum(_generate_tokens(model, tok, p, 1, args)
                     for p in prompts for _ in range(args.n))
    seq_s = time.perf_counter() - started

    samples = len(prompts) * args.n
    print(f"sample_completions:         {ours_tokens:>7} tokens in {ours_s:7.2f} s "
          f"({samples / ours_s:7.1f} samples/s)")
    print(f"generate, one sample/call:  {seq_tokens:>7} tokens in {seq_s:7.2f} s "
          f"({samples / seq_s:7.1f} samples/s)")
    if args.per_prompt:
        torch.manual_seed(0)
        started = time.perf_counter()
        per_prompt_tokens = sum(_generate_tokens(model, tok, p, args.n, args) for p in prompts)
        per_prompt_s = time.perf_counter() - started
        print(f"generate, one prompt/call:  {per_prompt_tokens:>7} tokens in "
              f"{per_prompt_s:7.2f} s ({samples / per_prompt_s:7.1f} samples/s, "
              f"{per_prompt_tokens / per_prompt_s:.0f} tokens/s; for information)")
    ours = ours_tokens / ours_s
    seq = seq_tokens / seq_s
    print(f"tokens_per_s={ours:.1f} sequential_tokens_per_s={seq:.1f} ratio={ours / seq:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vs", choices=("generate", "generate-loop", "sequential"),
                        default="generate",
                        help="generate: batched, forced length; generate-loop: batched, the "
                             "loop's prompts, format, stops and settings; sequential: one "
                             "sample/call")
    parser.add_argument("--arch", choices=ARCHS, default="tiny",
                        help="model shape (random init; --vs sequential uses tiny)")
    parser.add_argument("--model", default="",
                        help="a real model instead of --arch (directory, .gguf, hub id)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA) | float32 | bfloat16")
    parser.add_argument("--prompts", type=int, default=None,
                        help="prompts (default 32 held-out synth; generate-loop: 8 of --suite)")
    parser.add_argument("--n", type=int, default=4, help="samples per prompt")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-p", type=float, default=0.95, help="generate-loop only")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="default 64 (generate-loop: 320, smol-cpu's)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="rows per forward; default 256 (generate-loop: 32, smol-cpu's)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs; best counts")
    parser.add_argument("--threads", type=int, default=0, help="0 = the cores not already busy")
    parser.add_argument("--build", action="store_true", help="build builtin:tiny if needed")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--suite", default="synth",
                        help="generate-loop: prompt suite (its train split, else its eval/test "
                             "split): synth, humaneval, ...")
    parser.add_argument("--prompt-format", default="auto",
                        help="generate-loop: auto (chat where the tokenizer has a template) | "
                             "chat | completion")
    parser.add_argument("--per-prompt", action="store_true",
                        help="--vs sequential: also time generate with num_return_sequences=n")
    args = parser.parse_args()
    loop = args.vs == "generate-loop"
    for name, forced, in_loop in (("prompts", 32, 8), ("max_new_tokens", 64, 320),
                                  ("batch_size", 256, 32)):
        if getattr(args, name) is None:
            setattr(args, name, in_loop if loop else forced)

    set_threads(ModelConfig(threads=args.threads))
    if args.vs == "sequential":
        vs_sequential(args)
    elif loop:
        vs_generate_loop(args)
    else:
        vs_generate(args)


if __name__ == "__main__":
    main()
