"""Training tokens/s of `finetune_lora` (the loop's per-generation update).

LoRA with the default TrainingConfig (r 16, all projections, completion-only loss,
batch 32) on synth (prompt, canonical solution) pairs, on builtin:tiny when cached
(or with `--build`), else a random-init model of the same shape. Tokens are all
non-padding input tokens processed. `--full` also times full-parameter training at
batch 128 (builtin:tiny's pretraining loop), the figure FEASIBILITY.md quotes.

Last line: train_tokens_per_s=<X>
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.config import ModelConfig, TrainingConfig
from harness.models import set_threads
from harness.training import (
    LoopSettings,
    encode_example,
    finetune_lora,
    train_loop,
)
from tasks.synthetic import generate_synth

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampling_throughput import _model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="0 = all cores")
    parser.add_argument("--build", action="store_true", help="build builtin:tiny if needed")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--full", action="store_true",
                        help="also time full-parameter training at batch 128")
    args = parser.parse_args()

    threads = set_threads(ModelConfig(threads=args.threads))
    model, tok, what = _model(args.build, args.cache_dir)
    tasks = [t for t in generate_synth(4000, 200, 0) if t.split == "train"][:args.examples]
    pairs = [(t.prompt, t.canonical_solution) for t in tasks]
    cfg = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size)
    print(f"model: {what}; {len(pairs)} examples x {args.epochs} epoch(s), LoRA r={cfg.lora_r}, "
          f"batch {cfg.batch_size}, torch threads {threads}")

    finetune_lora(model, tok, pairs[:64], cfg, seed=1)  # warm-up
    _, stats = finetune_lora(model, tok, pairs, cfg, seed=0)
    print(f"LoRA: {stats.steps} steps, {stats.tokens} tokens ({stats.loss_tokens} in the loss) "
          f"in {stats.seconds:.2f} s")
    if args.full:
        full = copy.deepcopy(model)
        examples = [encode_example(tok, p, c, 256) for p, c in pairs]
        settings = LoopSettings(lr=2e-3, weight_decay=0.1, betas=(0.9, 0.95), batch_size=128,
                                max_steps=max(1, len(examples) // 128), warmup_steps=1,
                                completion_only=False)
        for p in full.parameters():
            p.requires_grad_(True)
        full_stats = train_loop(full, examples, settings, seed=0, pad_id=int(tok.pad_token_id))
        print(f"full-parameter, batch 128: {full_stats.tokens} tokens in "
              f"{full_stats.seconds:.2f} s = {full_stats.tokens_per_s:.0f} tokens/s")
    print(f"train_tokens_per_s={stats.tokens_per_s:.1f}")


if __name__ == "__main__":
    main()
