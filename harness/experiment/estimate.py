"""How long a run will take, said before it starts, from rates a run measured here.

A plan line says how much work a run is; this says how long that work took on this
machine. Every generation's metrics.json records its phases' wall times
(`timings_s`: sampling and execution of the train data, training, evaluation, the
`--also-eval` suites, and the whole generation). Each phase is turned into a rate
per unit of work (per sampled train completion, per trained example-epoch, per
sampled eval completion) and multiplied by the new plan's units; what the phases do
not cover (perplexities, diversity, writing) is taken as a fixed cost per
generation. The rates come from the run being resumed, or else from the newest run
of the same model under `--out`: same model, this machine, whatever its load was then.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.config import RunConfig
from harness.errors import CollapseBenchError
from harness.experiment.arms import Arm, arms_of


@dataclass(frozen=True)
class Rates:
    """Seconds per unit of work, measured by one run."""

    source: Path
    eval_s_per_completion: float
    train_sample_s_per_completion: float
    training_s_per_example_epoch: float
    kept_share: float                 # kept completions per sampled train completion
    kept_share_by_filter: dict[str, float]  # the same, per filter the measured run had
    overhead_s: float                 # per generation, outside the timed phases
    also_eval_s: dict[str, float]     # suite -> seconds per problem (greedy, one sample)


def measured_rates(cfg: RunConfig, resume: Path | None) -> Rates | None:
    """The rates of the resumed run, else of the newest run of cfg's model under
    cfg.out; None when none has a self-training generation with its times."""
    candidates: list[Path] = [resume] if resume is not None else []
    root = Path(cfg.out)
    if root.is_dir():
        runs = [p for p in root.iterdir() if (p / "config.toml").is_file()]
        candidates += sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)
    for run_dir in candidates:
        try:
            rates = _rates_of(run_dir, cfg.model.name)
        except (TypeError, ValueError, KeyError, AttributeError):
            continue  # a hand-edited or foreign metrics.json: no rates, not a failed start
        if rates is not None and all(math.isfinite(v) for v in _numbers(rates)):
            return rates
    return None


def _numbers(rates: Rates) -> list[float]:
    return [rates.eval_s_per_completion, rates.train_sample_s_per_completion,
            rates.training_s_per_example_epoch, rates.kept_share, rates.overhead_s,
            *rates.kept_share_by_filter.values(), *rates.also_eval_s.values()]


def estimate_line(cfg: RunConfig, eval_problems: int, resume: Path | None,
                  done: Iterable[tuple[str, int]] = (), parallel: bool = False,
                  train_pool: int = 0, also_problems: Mapping[str, int] | None = None) -> str:
    """One line: the estimated time of what is left to run, or why there is none.
    also_problems: the problems each `--also-eval` suite scores (default: none)."""
    rates = measured_rates(cfg, resume)
    if rates is None:
        return (f"estimate: none yet (no run of {cfg.model.name} under {cfg.out} has "
                "recorded its generation times; the first one will)")
    from harness.experiment.clock import duration

    seconds = estimate_s(cfg, rates, eval_problems, set(done), train_pool, also_problems)
    how = "for the arms one after another" if parallel else "on this machine"
    missing = [s for s in cfg.also_eval if s not in rates.also_eval_s]
    note = f"; not counted: --also-eval {','.join(missing)} (no rate)" if missing else ""
    return (f"estimate: about {duration(seconds)} {how}, at the rates {rates.source} "
            f"measured (a loaded machine is slower){note}")


def estimate_s(cfg: RunConfig, rates: Rates, eval_problems: int,
               done: set[tuple[str, int]], train_pool: int = 0,
               also_problems: Mapping[str, int] | None = None) -> float:
    """Seconds for every generation of cfg's plan not in `done` (arm id, generation);
    a seed's generation 0 is computed once and copied to its other arms. train_pool:
    the train split's size (its human references; default: the train prompts).
    also_problems: problems per `--also-eval` suite (a suite missing here costs 0)."""
    train_pool = train_pool or cfg.train_prompts
    also_problems = also_problems or {}
    evaluation = (rates.eval_s_per_completion * eval_problems * cfg.n_eval
                  + sum(rates.also_eval_s.get(s, 0.0) * also_problems.get(s, 0)
                        for s in cfg.also_eval))
    completions = cfg.train_prompts * cfg.n_train

    def examples(arm: Arm, g: int) -> int:
        """Generation g's training-set size: regimes.build_dataset itself, run on
        placeholders (the kept share measured; the train split as the human pool)."""
        from harness.experiment.regimes import build_dataset

        share = rates.kept_share_by_filter.get(arm.filter, rates.kept_share)
        kept_now: list[Any] = [None] * round(share * completions)
        return len(build_dataset(arm.regime, [kept_now] * g, [None] * train_pool,
                                 arm.real_fraction, cfg.subsample_size or cfg.train_prompts,
                                 np.random.default_rng(0), fixed_size=cfg.training_set_size))

    def self_training(arm: Arm, g: int) -> float:
        return (rates.train_sample_s_per_completion * completions
                + rates.training_s_per_example_epoch * examples(arm, g) * cfg.training.epochs)

    size = cfg.training_set_size or cfg.subsample_size or cfg.train_prompts
    repair = rates.training_s_per_example_epoch * size * cfg.training.epochs
    warm = rates.training_s_per_example_epoch * (cfg.training.warmup_examples or train_pool) * (
        cfg.training.warmup_epochs)
    arms = arms_of(cfg)
    total, seeds_started = 0.0, {arm.seed for arm in arms if (arm.arm_id, 0) in done}
    for arm in arms:
        for g in range(cfg.total_generations + 1):
            if (arm.arm_id, g) in done:
                continue
            if g == 0:
                if arm.seed in seeds_started:
                    continue
                seeds_started.add(arm.seed)
                total += evaluation + rates.overhead_s + (warm if cfg.training.warmup_epochs
                                                         else 0.0)
            elif arm.course == "repair-only" and g <= cfg.generations:
                continue  # held: a copy of generation 0 (loop.hold_generation)
            else:
                step = self_training(arm, g) if g <= cfg.generations else repair
                total += evaluation + rates.overhead_s + step
    return total


def _rates_of(run_dir: Path, model: str) -> Rates | None:
    from harness.config import load_run_config
    from harness.runfiles.runs import load_run

    try:
        run = load_run(run_dir)
        ran = load_run_config(run_dir)
    except (CollapseBenchError, OSError, ValueError):
        return None
    if run.model != model:
        return None
    timed_arms = [(arm, [g for g in arm.generations if g.generation > 0
                         and "generation" in g.raw.get("timings_s", {})])
                  for arm in run.arms.values()]
    gens = [g for _, arm_gens in timed_arms for g in arm_gens]
    if not gens:
        return None
    completions = ran.train_prompts * ran.n_train
    timed = [g.raw["timings_s"] for g in gens]

    def mean(values: Sequence[float]) -> float:
        return statistics.fmean(values) if values else 0.0

    def phase(t: dict[str, Any], *names: str) -> float:
        return sum(float(t.get(n, 0.0)) for n in names)

    def kept_of(g: Any) -> float:
        """Kept completions per sampled one (the filter's acceptance), else the training
        set's share of them (a run from before the filter block)."""
        rate = g.filter_acceptance_rate
        return float(rate) if rate is not None else g.n_train_examples / max(completions, 1)

    eval_completions = [len(g.per_task) * ran.n_eval for g in gens]
    example_epochs = [max(g.n_train_examples, 1) * max(ran.training.epochs, 1) for g in gens]
    # seconds per also-eval problem: a run may score fewer of them (--also-eval-tasks)
    also_per_problem = mean([float(t.get("also_eval", 0.0)) / max(
        sum(a.n_tasks for a in g.also_eval.values()), 1) for t, g in zip(timed, gens,
                                                                          strict=True)])
    return Rates(
        source=run_dir,
        eval_s_per_completion=mean([phase(t, "evaluation") - phase(t, "also_eval")
                                    for t in timed]) / max(mean(eval_completions), 1.0),
        train_sample_s_per_completion=mean([phase(t, "sampling", "execution")
                                            for t in timed]) / max(completions, 1),
        training_s_per_example_epoch=mean([phase(t, "training") / n
                                           for t, n in zip(timed, example_epochs,
                                                           strict=True)]),
        kept_share=mean([kept_of(g) for g in gens]),
        kept_share_by_filter={flt: mean([kept_of(g) for a, arm_gens in timed_arms
                                         if a.filter == flt for g in arm_gens])
                              for flt in {a.filter for a, arm_gens in timed_arms if arm_gens}},
        overhead_s=max(0.0, mean([phase(t, "generation") - phase(
            t, "evaluation", "sampling", "execution", "training") for t in timed])),
        also_eval_s=dict.fromkeys(ran.also_eval, also_per_problem),
    )
