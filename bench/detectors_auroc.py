"""AUROC of every calibrated detector on builtin:tiny: its own samples vs human code.

A measurement, not a test: how well each `detect:KIND` score (loglik, ratio,
fastdetect, binoculars, perturb; `harness.experiment.detection`) tells the model's
own samples (AI) from the human reference solutions of the same problems, on the
synthetic suite's eval split (problems whose step combinations the model was not
pretrained on). Two settings, as the loop meets them:

* generation 1: the sampling model is the base model (builtin:tiny). `ratio` is 0
  for every text (AUROC 0.5 by construction) and `binoculars` is log-perplexity over
  entropy of one model.
* generation 1 again with samples at temperature 0.5 (the loop samples at the
  train temperature, 1.0 by default): how much the answer depends on it.
* generation 2: the sampling model is the base after one self-training generation
  (LoRA on its own unfiltered samples of train prompts, the default training
  settings, merged); the base is generation 0's. Here `ratio` and `binoculars` use
  two different models.

Each setting is measured twice: on the samples as the loop scores them and on the
samples ending in one newline like the references (ENDINGS).

Also `perturb-z`: the perturbation discrepancy divided by the standard deviation of
the variants' log-likelihoods (DetectGPT's normalized form), which `perturb` does not
use; measured here to show what that choice costs or gains.

Each AUROC comes with a 95% percentile bootstrap interval over problems (1,000
resamples of the AI and human sets). Small on purpose (a few dozen samples): a
direction, not a benchmark. The machine's load (`uptime`) is written with the
numbers: no timing is claimed.

    python bench/detectors_auroc.py                 # writes bench/results/detectors_auroc.txt
    python bench/detectors_auroc.py --problems 16 --out /tmp/auroc.txt
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.config import ModelConfig, RunConfig, SamplingConfig
from harness.experiment.detection import (
    CALIBRATED_KINDS,
    PERTURBATIONS,
    auroc,
    score_candidates,
)
from harness.experiment.perturbation import whitespace_variants

OUT = Path(__file__).resolve().parent / "results" / "detectors_auroc.txt"
ENDINGS = {"raw": "as the loop scores them (no final newline; references end in one)",
           "newline": "ending in one newline like the references (fmt.training_completion)"}
"""Sampled text loses its final newline in post-processing, human references keep
theirs, and the loop scores both as they are: a token that only one class has. The
second table of each setting takes it away, to see what is detection and what is that
newline."""
LOW_TEMPERATURE = 0.5
"""A diagnostic row: generation 1 sampled cooler than the loop's train temperature,
where samples sit nearer the model's modes."""


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=40,
                        help="eval problems (AI and human each)")
    parser.add_argument("--train-prompts", type=int, default=64,
                        help="train prompts the generation-2 model self-trains on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    started = time.time()
    lines = [f"# {__doc__.splitlines()[0]}", f"# load before: {_uptime()}",
             f"# problems: {args.problems} (AI: one sample each, human: its reference); "
             f"generation 2 self-trained on {args.train_prompts} train prompts; seed {args.seed}",
             f"# perturbations per text: {PERTURBATIONS}", ""]
    base, tok, fmt, cfg, train, evals = _setup(args)
    temperature = cfg.train_temperatures[0]
    m1 = _self_trained(base, tok, fmt, cfg, train, args.seed)
    for generation, current, temp in ((1, base, temperature), (1, base, LOW_TEMPERATURE),
                                      (2, m1, temperature)):
        own = _samples(current, tok, fmt, cfg.sampling, evals, args.seed + generation, temp)
        for ending in ("raw", "newline"):
            title = (f"generation {generation}: {'base' if current is base else 'M1'} samples "
                     f"at temperature {temp:g}, {ENDINGS[ending]}")
            texts = own if ending == "raw" else [fmt.training_completion(c) for c in own]
            lines += _measure(title, current, base, tok, fmt, evals, texts, args.seed)
    lines += ["", f"# load after: {_uptime()}",
              f"# wall time {time.time() - started:.0f} s on a shared machine (not a timing)"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def _setup(args: argparse.Namespace) -> tuple[Any, Any, Any, RunConfig, list[Any], list[Any]]:
    from harness.experiment.loop import load_tasks
    from harness.model.formats import PromptFormat
    from harness.model.loading import load_model

    cfg = RunConfig(model=ModelConfig(name="builtin:tiny", device="cpu"),
                    eval_tasks=args.problems, train_prompts=args.train_prompts)
    train, evals = load_tasks(cfg)
    model, tok = load_model(cfg.model, progress=False)
    fmt = PromptFormat.resolve(tok, cfg.sampling.prompt_format, cfg.sampling.prompt_boundary)
    return model, tok, fmt, cfg, train[:args.train_prompts], evals


def _samples(model: Any, tok: Any, fmt: Any, sampling: SamplingConfig, tasks: list[Any],
             seed: int, temperature: float) -> list[str]:
    from harness.model.sampling import sample_completions

    out = sample_completions(model, tok, [t.prompt for t in tasks], 1, sampling, seed,
                             temperature=temperature, fmt=fmt)
    return [c[0].text for c in out]


def _self_trained(base: Any, tok: Any, fmt: Any, cfg: RunConfig, train: list[Any],
                  seed: int) -> Any:
    """M1: the base LoRA-trained on its own unfiltered samples of `train`, merged."""
    from harness.model.training import finetune_lora, merge_adapter

    texts = _samples(base, tok, fmt, cfg.sampling, train, seed, cfg.train_temperatures[0])
    examples = [(t.prompt, fmt.training_completion(c)) for t, c in zip(train, texts, strict=True)]
    adapted, _ = finetune_lora(base, tok, examples, cfg.training, seed, fmt=fmt)
    return merge_adapter(adapted)


def _measure(title: str, current: Any, base: Any, tok: Any, fmt: Any, evals: list[Any],
             own: list[str], seed: int) -> list[str]:
    """One table: each detector's AUROC on `current`'s samples vs the references."""
    pairs = [(t.prompt, c) for t, c in zip(evals, own, strict=True)]
    pairs += [(t.prompt, t.canonical_solution) for t in evals]
    is_ai = [True] * len(evals) + [False] * len(evals)
    scores = {kind: score_candidates(kind, current, base, tok, pairs, fmt=fmt)
              for kind in CALIBRATED_KINDS}
    scores["perturb-z"] = _perturb_z(current, tok, pairs, fmt)
    rng = np.random.default_rng(seed)
    lines = [title,
             f"{'detector':<12} {'AUROC':>6}  {'95% bootstrap':>15}  {'NaN AI/human':>12}"]
    for kind, values in scores.items():
        point = auroc(values, is_ai)
        low, high = _bootstrap(values, len(evals), rng)
        n_nan = np.isnan(values)
        lines.append(f"{kind:<12} {point:>6.3f}  [{low:.3f}, {high:.3f}]  "
                     f"{int(n_nan[:len(evals)].sum()):>5}/{int(n_nan[len(evals):].sum())}")
    return [*lines, ""]


def _perturb_z(model: Any, tok: Any, pairs: list[tuple[str, str]], fmt: Any) -> np.ndarray:
    """(ll(x) - mean ll(x_i)) / std(ll(x_i)), the normalized form `perturb` leaves out."""
    from harness.model.training import completion_logprobs

    out = np.full(len(pairs), np.nan)
    for i, (prompt, completion) in enumerate(pairs):
        variants = whitespace_variants(prompt, completion, PERTURBATIONS)
        if not variants:
            continue
        ll = np.asarray(completion_logprobs(model, tok, [(prompt, completion)]
                                            + [(prompt, v) for v in variants], fmt=fmt))
        spread = ll[1:].std(ddof=1)
        if spread > 0:
            out[i] = (ll[0] - ll[1:].mean()) / spread
    return out


def _bootstrap(values: np.ndarray, n_ai: int, rng: np.random.Generator,
               resamples: int = 1000) -> tuple[float, float]:
    """95% percentile interval of the AUROC, AI and human resampled separately."""
    ai, human = values[:n_ai], values[n_ai:]
    labels = [True] * len(ai) + [False] * len(human)
    stats = [auroc(np.concatenate([rng.choice(ai, len(ai)), rng.choice(human, len(human))]),
                   labels) for _ in range(resamples)]
    low, high = np.percentile(np.asarray(stats, dtype=np.float64), [2.5, 97.5])
    return float(low), float(high)


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False
                              ).stdout.strip()
    except OSError:
        return "uptime unavailable"


if __name__ == "__main__":
    main()
