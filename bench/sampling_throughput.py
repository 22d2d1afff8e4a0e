"""Generated tokens/s of `sample_completions` vs `model.generate` one sample at a time.

Same model, same prompts, same n, same temperature, same stop sequences and
max_new_tokens, in the same process. The model is builtin:tiny when it is cached
(or `--build` is given), else a random-init model of the same shape with the same
tokenizer recipe (it never stops early, so every sample runs to max_new_tokens).

With --per-prompt also times, for information, `generate` called once per prompt
with num_return_sequences=n (HF's own batching over one prompt's samples).

Last line: tokens_per_s=<X> sequential_tokens_per_s=<Y> ratio=<X/Y>
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from harness.config import ModelConfig, SamplingConfig
from harness.models import load_model, set_threads
from harness.sampling import sample_completions
from harness.tiny_model import (
    TinySpec,
    ensure_tiny_model,
    find_tiny_model,
    train_tokenizer,
)
from tasks.postprocess import STOP_SEQUENCES
from tasks.synthetic import generate_synth


def _model(build: bool, cache_dir: str | None
           ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    path = find_tiny_model(cache_dir)
    if path is None and build:
        path = ensure_tiny_model(cache_dir)
    if path is not None:
        model, tok = load_model(ModelConfig(name=str(path)), progress=False)
        return model, tok, f"builtin:tiny ({path})"
    from transformers import LlamaConfig, LlamaForCausalLM

    spec = TinySpec()
    tasks = [t for t in generate_synth(spec.n_train, spec.n_eval, spec.suite_seed)
             if t.split == "train"]
    tok = train_tokenizer(spec, tasks)
    eos = int(tok.eos_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=spec.hidden_size, num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads, num_key_value_heads=spec.num_heads,
        intermediate_size=spec.intermediate_size, max_position_embeddings=spec.max_positions,
        tie_word_embeddings=True, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos))
    return model.eval(), tok, "random-init model of builtin:tiny's shape (not cached)"


def _generate_tokens(model: PreTrainedModel, tok: PreTrainedTokenizerBase, prompt: str,
                     n: int, args: argparse.Namespace) -> int:
    enc = tok(prompt, return_tensors="pt")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=32, help="held-out synth prompts")
    parser.add_argument("--n", type=int, default=4, help="samples per prompt")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=0, help="0 = all cores")
    parser.add_argument("--build", action="store_true", help="build builtin:tiny if needed")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--per-prompt", action="store_true",
                        help="also time generate with num_return_sequences=n per prompt")
    args = parser.parse_args()

    threads = set_threads(ModelConfig(threads=args.threads))
    model, tok, what = _model(args.build, args.cache_dir)
    prompts = [t.prompt for t in generate_synth(4000, 200, 0) if t.split == "eval"]
    prompts = prompts[:args.prompts]
    cfg = SamplingConfig(temperature=args.temperature, max_new_tokens=args.max_new_tokens,
                         batch_size=args.batch_size)
    print(f"model: {what}; {len(prompts)} prompts x n={args.n}, T={args.temperature}, "
          f"max_new_tokens={args.max_new_tokens}, torch threads {threads}")

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


if __name__ == "__main__":
    main()
