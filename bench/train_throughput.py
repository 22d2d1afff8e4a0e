"""Training tokens/s and peak memory of `finetune_lora` (the loop's per-generation update).

LoRA with the default TrainingConfig (r 16, all projections, completion-only loss,
batch 32) on synth (prompt, canonical solution) pairs. `--arch tiny` uses
builtin:tiny when cached (or with `--build`), else a random-init model of its
shape; the other archs are random-init models of real shapes (see
sampling_throughput.py). On CUDA the model is bf16 (dtype auto) and the forward
runs under bf16 autocast; `--gradient-checkpointing` trades compute for memory.
Tokens are all non-padding input tokens processed. Peak memory: CUDA peak
allocated on a GPU, the process's peak RSS on CPU. `--full` (CPU, tiny) also times
full-parameter training at batch 128: builtin:tiny's pretraining loop.

Last line: train_tokens_per_s=<X> peak_mem_mb=<M>
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from harness.config import ModelConfig, TrainingConfig
from harness.model.formats import PromptFormat
from harness.model.runtime import set_threads
from harness.model.training import LoopSettings, encode_example, finetune_lora, train_loop
from tasks.synthetic import generate_synth

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampling_throughput import ARCHS, _peak_mb, _reset_peak, _sync, build_model


def _rss_mb() -> float:
    """The process's current resident set (Linux /proc), to tell the model's own
    memory from what training adds on top of it (the peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=ARCHS, default="tiny")
    parser.add_argument("--model", default="",
                        help="a real model instead of --arch (directory, .gguf, hub id)")
    parser.add_argument("--format", default="completion", choices=("completion", "chat"),
                        help="prompt format of the examples (chat needs a chat template)")
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA) | float32 | bfloat16")
    parser.add_argument("--examples", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="0 = the cores not already busy")
    parser.add_argument("--build", action="store_true", help="build builtin:tiny if needed")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--full", action="store_true",
                        help="also time full-parameter training at batch 128")
    args = parser.parse_args()

    set_threads(ModelConfig(threads=args.threads))
    # build_model loads through load_model, which sets the threads again: pass them on,
    # or a busy machine runs every --threads N at its default (cores minus load)
    model, tok, what = build_model(args.arch, args.device, args.dtype, trained=True,
                                   build=args.build, cache_dir=args.cache_dir,
                                   model=args.model, threads=args.threads)
    threads = torch.get_num_threads()  # what the timing really ran with
    fmt = PromptFormat.resolve(tok, args.format, "heal")
    device = next(model.parameters()).device
    tasks = [t for t in generate_synth(4000, 200, 0, n_fresh=0)
             if t.split == "train"][:args.examples]
    pairs = [(t.prompt, t.canonical_solution) for t in tasks]
    cfg = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size,
                         grad_accum=args.grad_accum, max_length=args.max_length)
    print(f"model: {what}; {len(pairs)} examples x {args.epochs} epoch(s), LoRA r={cfg.lora_r}, "
          f"{args.format} format, batch {cfg.batch_size} x {cfg.grad_accum}, "
          f"gradient checkpointing {args.gradient_checkpointing}, "
          f"torch threads {threads}", flush=True)

    ckpt = args.gradient_checkpointing
    print(f"resident before training: {_rss_mb():.0f} MB", flush=True)
    finetune_lora(model, tok, pairs[:cfg.batch_size], cfg, seed=1,  # warm-up
                  gradient_checkpointing=ckpt, fmt=fmt)
    _sync(device)
    _reset_peak(device)
    _, stats = finetune_lora(model, tok, pairs, cfg, seed=0, gradient_checkpointing=ckpt,
                             fmt=fmt)
    _sync(device)
    peak = _peak_mb(device)
    print(f"LoRA: {stats.steps} steps, {stats.tokens} tokens ({stats.loss_tokens} in the loss) "
          f"in {stats.seconds:.2f} s, final loss {stats.losses[-1]:.3f}, peak {peak:.0f} MB")
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
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    print(f"train_tokens_per_s={stats.tokens_per_s:.1f} peak_mem_mb={peak:.0f}")


if __name__ == "__main__":
    main()
