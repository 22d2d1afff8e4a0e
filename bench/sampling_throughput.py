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
from harness.model.sampling import LAST_RUN, sample_completions
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
                ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    """(model in eval mode on its device and dtype, tokenizer, description).

    model: a real model (a directory, a .gguf file, a hub id; what `--model` takes),
    loaded exactly as a run loads it; it overrides `arch`.
    trained (tiny only): builtin:tiny when cached (built first with `build`). Random
    weights are made directly on the device in the target dtype: a 0.5B model
    initialised on a CPU first would take longer than the benchmark.
    """
    cfg = ModelConfig(device=device, dtype=dtype)
    if model:
        real, tok = load_model(ModelConfig(name=model, device=device, dtype=dtype,
                                           cache_dir=cache_dir or ""), progress=False)
        params = sum(p.numel() for p in real.parameters()) / 1e6
        return real, tok, f"{model} ({params:.1f}M params, {next(real.parameters()).dtype})"
    dev = resolve_device(cfg)
    dt = resolve_dtype(cfg, dev)
    if arch == "tiny" and trained:
        path = find_tiny_model(cache_dir)
        if path is None and build:
            path = ensure_tiny_model(cache_dir)
        if path is not None:
            model, tok = load_model(ModelConfig(name=str(path), device=device, dtype=dtype),
                                    progress=False)
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
    model, tok, what = build_model(args.arch, args.device, args.dtype, model=args.model)
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
                                   build=args.build, cache_dir=args.cache_dir)
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
    parser.add_argument("--vs", choices=("generate", "sequential"), default="generate",
                        help="generate: batched, forced length; sequential: one sample/call")
    parser.add_argument("--arch", choices=ARCHS, default="tiny",
                        help="model shape (random init; --vs sequential uses tiny)")
    parser.add_argument("--model", default="",
                        help="a real model instead of --arch (directory, .gguf, hub id)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA) | float32 | bfloat16")
    parser.add_argument("--prompts", type=int, default=32, help="held-out synth prompts")
    parser.add_argument("--n", type=int, default=4, help="samples per prompt")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs; best counts")
    parser.add_argument("--threads", type=int, default=0, help="0 = the cores not already busy")
    parser.add_argument("--build", action="store_true", help="build builtin:tiny if needed")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--per-prompt", action="store_true",
                        help="--vs sequential: also time generate with num_return_sequences=n")
    args = parser.parse_args()

    set_threads(ModelConfig(threads=args.threads))
    if args.vs == "sequential":
        vs_sequential(args)
    else:
        vs_generate(args)


if __name__ == "__main__":
    main()
