"""Hand-made run directories in the exact results/README.md format, for tests.

These are test data, not mocks: `write_run` lays out what `collapse-bench run`
writes (config.toml through the real `save_toml`, manifest.json through the real
`RunStore`, arms/*/arm.json, gen-*/metrics.json + DONE, and optionally
summary.json), with per-problem pass/fail counts drawn from a seeded binomial
around a target pass@1 curve, so pass@k, per_task and the collapse summaries are
mutually consistent the way a real run's are. Tests of export, report and the
statistics read them back through the public loaders.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.analysis.stats import collapse_summary
from harness.atomic import atomic_write_json
from harness.config import RunConfig, config_hash, save_toml
from harness.experiment.arms import Arm
from harness.runfiles.store import DONE, RunStore


@dataclass(frozen=True)
class ArmSpec:
    """One arm group of a fixture run: target pass@1 and diversity per generation."""

    filter: str
    pass1: Sequence[float]
    diversity: Sequence[float]
    regime: str = "replace"
    real_fraction: float = 0.0
    acceptance: float = 0.5
    precision: float = 1.0
    also_pass1: Sequence[float] | None = None  # greedy pass@1 target on --also-eval suites


# A verified arm that holds up and an unverified one that collapses (4 generations).
VERIFIED = ArmSpec("tests", pass1=[0.48, 0.52, 0.55, 0.57], diversity=[0.40, 0.36, 0.33, 0.30],
                   acceptance=0.48, precision=1.0)
UNVERIFIED = ArmSpec("none", pass1=[0.48, 0.36, 0.25, 0.18], diversity=[0.40, 0.32, 0.24, 0.17],
                     acceptance=1.0, precision=0.48)


@dataclass
class RunSpec:
    run_id: str = "20260101-000000-aaaa"
    arms: Sequence[ArmSpec] = (VERIFIED, UNVERIFIED)
    seeds: Sequence[int] = (0, 1, 2)
    n_tasks: int = 12
    n: int = 10
    ks: Sequence[int] = (1, 5)
    model: str = "builtin:tiny"
    train_suite: str = "synth"
    eval_suite: str = "synth"
    per_task_diversity: bool = False
    write_summary: bool = True
    # (arm filter, seed, generation) whose DONE marker is left out (an interrupted run)
    not_done: set[tuple[str, int, int]] = field(default_factory=set)
    rng_seed: int = 0
    perplexity: float = 4.0          # generation-0 perplexity level
    perplexity_noise: float = 0.05
    # other settings, by dotted config path (e.g. {"training.learning_rate": 0.01})
    changes: dict[str, Any] = field(default_factory=dict)
    also_eval: Sequence[str] = ()    # --also-eval suites: metrics.json gets an also_eval block
    also_n_tasks: int = 40

    @property
    def generations(self) -> int:
        return len(self.arms[0].pass1) - 1

    def config(self) -> RunConfig:
        cfg = RunConfig()
        cfg.model.name = self.model
        cfg.train_suite, cfg.eval_suite = self.train_suite, self.eval_suite
        cfg.generations = self.generations
        cfg.n_eval = self.n
        cfg.eval_tasks = self.n_tasks
        cfg.ks = list(self.ks)
        cfg.filters = sorted({a.filter for a in self.arms})
        cfg.regimes = sorted({a.regime for a in self.arms})
        cfg.real_fractions = sorted({a.real_fraction for a in self.arms})
        cfg.seeds = list(self.seeds)
        cfg.also_eval = list(self.also_eval)
        for dotted, value in self.changes.items():
            *parents, leaf = dotted.split(".")
            node: Any = cfg
            for name in parents:
                node = getattr(node, name)
            setattr(node, leaf, value)
        return cfg


def _pass_at_k(n: int, c: int, k: int) -> float:
    from harness.metrics.passk import estimate_pass_at_k

    return float(estimate_pass_at_k(n, c, k))


def _also_block(spec: RunSpec, arm: ArmSpec, suite: str, g: int,
                rng: np.random.Generator) -> dict[str, Any]:
    """One --also-eval suite's block as `also_evaluate` writes it: one greedy sample per
    problem (n = 1, c = 0 or 1) around the arm's also_pass1 target, and perplexity."""
    target = (arm.also_pass1 or arm.pass1)[g]
    c = rng.random(spec.also_n_tasks) < target
    per_task = {f"{suite}/{i}": {"n": 1, "c": int(ok), "diversity": None}
                for i, ok in enumerate(c)}
    passed = int(c.sum())
    return {"n_tasks": spec.also_n_tasks, "greedy_pass_at_1": passed / spec.also_n_tasks,
            "per_task": per_task,
            "status_counts": {"passed": passed, "failed": spec.also_n_tasks - passed,
                              "timeout": 0, "error": 0, "oom": 0, "sandbox_error": 0},
            "perplexity": float(2.0 + 0.2 * g + rng.normal(0, 0.05))}


def _metrics(spec: RunSpec, arm: ArmSpec, arm_id: str, seed: int, g: int,
             rng: np.random.Generator) -> dict[str, Any]:
    """One generation's metrics.json: binomial per-problem counts around the target."""
    task_ids = [f"synth/eval/{i}" for i in range(spec.n_tasks)]
    difficulty = np.linspace(-0.25, 0.25, spec.n_tasks)  # some problems are harder
    p = np.clip(arm.pass1[g] + difficulty + rng.normal(0, 0.02), 0.0, 1.0)
    counts = rng.binomial(spec.n, p)
    per_task: dict[str, dict[str, Any]] = {}
    for tid, c in zip(task_ids, counts, strict=True):
        per_task[tid] = {"n": spec.n, "c": int(c)}
        if spec.per_task_diversity:
            per_task[tid]["diversity"] = float(np.clip(arm.diversity[g] + rng.normal(0, 0.05),
                                                       0, 1))
    pass_at_k = {f"pass@{k}": float(np.mean([_pass_at_k(spec.n, int(c), k) for c in counts]))
                 for k in spec.ks}
    if spec.per_task_diversity:
        diversity = float(np.mean([t["diversity"] for t in per_task.values()]))
    else:
        diversity = float(np.clip(arm.diversity[g] + rng.normal(0, 0.01), 0, 1))
    n_cand = 256
    kept = round(arm.acceptance * n_cand)
    passed = int(counts.sum())
    total = spec.n * spec.n_tasks
    return {
        "arm_id": arm_id,
        "generation": g,
        "pass_at_k": pass_at_k,
        "greedy_pass_at_1": None,
        "diversity": {
            "diversity": diversity,
            "all": {"distinct_1": 0.3, "distinct_2": 0.5, "distinct_3": 0.6, "distinct_4": 0.7,
                    "unique_ast_fraction": 0.6, "unparsable_fraction": 0.05,
                    "mean_pairwise_dissimilarity": diversity, "functional_diversity": 0.4},
            "passing": {"distinct_1": 0.2, "distinct_2": 0.4, "distinct_3": 0.5,
                        "distinct_4": 0.6, "unique_ast_fraction": 0.5,
                        "unparsable_fraction": 0.0, "mean_pairwise_dissimilarity": diversity / 2,
                        "functional_diversity": 0.1},
        },
        "perplexity": float(spec.perplexity + 0.1 * spec.perplexity * g * (1.0 - arm.precision)
                            + rng.normal(0, spec.perplexity_noise)),
        "filter": None if g == 0 else {
            "name": arm.filter, "acceptance_rate": kept / n_cand,
            "precision": float(np.clip(arm.precision + rng.normal(0, 0.02), 0, 1)),
            "recall": 1.0, "n_candidates": n_cand, "n_kept": kept},
        "n_train_examples": 0 if g == 0 else kept,
        "status_counts": {"passed": passed, "failed": total - passed, "timeout": 0, "error": 0,
                          "oom": 0, "sandbox_error": 0},
        "timings_s": {"sampling": 1.0, "execution": 1.0, "training": 0.0 if g == 0 else 2.0,
                      "evaluation": 1.0},
        "per_task": per_task,
        **({"also_eval": {suite: _also_block(spec, arm, suite, g, rng)
                          for suite in spec.also_eval}} if spec.also_eval else {}),
    }


def write_run(root: Path, spec: RunSpec | None = None) -> Path:
    """Write a run directory under `root`; returns its path."""
    spec = spec or RunSpec()
    cfg = spec.config()
    store = RunStore.create(root, spec.run_id)
    save_toml(cfg, store.root / "config.toml")
    rng = np.random.default_rng(spec.rng_seed)
    summary_arms: dict[str, Any] = {}
    gen0: dict[int, dict[str, Any]] = {}
    for seed in spec.seeds:
        for arm_spec in spec.arms:
            arm = Arm.of(filter=arm_spec.filter, regime=arm_spec.regime,
                         real_fraction=float(arm_spec.real_fraction), seed=seed,
                         restart=cfg.training.restart, train_temperature=1.0)
            arm_dir = store.arm_dir(arm.arm_id)
            atomic_write_json(arm_dir / "arm.json", arm.to_json())
            done: list[dict[str, Any]] = []
            for g in range(spec.generations + 1):
                if g == 0:  # generation 0 is the base model: the same for every arm of a seed
                    base = gen0.setdefault(seed, _metrics(spec, arm_spec, "", seed, 0, rng))
                    metrics = {**base, "arm_id": arm.arm_id}
                else:
                    metrics = _metrics(spec, arm_spec, arm.arm_id, seed, g, rng)
                atomic_write_json(store.gen_dir(arm.arm_id, g) / "metrics.json", metrics)
                if (arm_spec.filter, seed, g) in spec.not_done:
                    continue
                (store.gen_dir(arm.arm_id, g) / DONE).write_text("2026-01-01T00:00:00+00:00\n")
                if len(done) == g:
                    done.append(metrics)
            summary_arms[arm.arm_id] = {
                **arm.to_json(),
                "complete": len(done) == spec.generations + 1,
                "generations": done,
                "collapse": collapse_summary([m["pass_at_k"]["pass@1"] for m in done],
                                             [m["diversity"]["diversity"] for m in done]
                                             ).to_dict(),
            }
    if spec.write_summary:
        atomic_write_json(store.root / "summary.json", {
            "run_id": spec.run_id, "harness_version": "0.1.0", "config_hash": config_hash(cfg),
            "model": cfg.model.name, "train_suite": cfg.train_suite,
            "train_split": cfg.train_split, "eval_suite": cfg.eval_suite,
            "eval_split": cfg.eval_split, "ks": list(cfg.ks), "arms": summary_arms})
    return store.root


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
