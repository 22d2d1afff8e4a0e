"""Held-out pass@k of a built-in model: the number `model build` reports.

Kept apart from the recipe (`harness.model.tiny`) because scoring needs sampling
and the sandbox, and the recipe must not depend on either: the model stack stays
one-directional (runtime <- sampling, training <- tiny <- loading), and this
module, like the loop, sits above all of it (docs/design.md, "Layout").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.config import ModelConfig, SamplingConfig
from harness.experiment.evaluation import evaluate_model
from harness.model.loading import load_model
from harness.model.tiny import TinySpec
from tasks.synthetic import generate_synth


@dataclass
class HeldOutResult:
    """pass@k of a model on the synthetic eval split, and what it cost."""

    pass_at_k: dict[str, float]
    n_tasks: int
    n_samples: int
    sampling_seconds: float
    execution_seconds: float


def evaluate_heldout(model_dir: str | Path, executor: object, spec: TinySpec | None = None,
                     n: int = 10, temperature: float = 0.8, seed: int = 0,
                     ks: tuple[int, ...] = (1, 10), progress: bool = True,
                     every: int = 1) -> HeldOutResult:
    """Sample n completions per held-out synth task and score them in `executor`.

    The eval split holds step combinations the model never trained on, so this is
    the number `model build` reports against the targets (pass@1 >= 0.35, pass@10
    >= 0.7 at T=0.8, n=10). every: score only every `every`-th eval task, a fixed
    subset `every` times cheaper (the test suite's check of the shipped copy).
    """
    spec = spec or TinySpec()
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    tasks = [t for t in generate_synth(spec.n_train, spec.n_eval, spec.suite_seed, n_fresh=0)
             if t.split == "eval"][::every]
    model, tokenizer = load_model(ModelConfig(name=str(model_dir)), progress=False)
    scored = evaluate_model(model, tokenizer, tasks, n, SamplingConfig(temperature=temperature),
                            executor, [k for k in ks if k <= n], seed=seed,  # type: ignore[arg-type]
                            progress=("sampling held-out", "executing") if progress else None)
    return HeldOutResult(pass_at_k=dict(scored.report.pass_at_k), n_tasks=len(tasks),
                         n_samples=len(scored.samples), sampling_seconds=scored.sampling_s,
                         execution_seconds=scored.execution_s)
