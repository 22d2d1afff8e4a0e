"""Headline numbers of one arm group, with bootstrap intervals, for the model board.

The board (`harness.analysis.board`) compares models by how their arms collapse, from
exported entries alone; an entry keeps means and intervals but not the per-problem
counts a new interval needs. So `export` computes these numbers while it still has
the runs, and stores them in each entry's `headline`:

* `pass1_auc_rel`: area under pass@1 / generation-0 pass@1 over the generations
  (trapezoid / span, like `pass1_auc`): 1 = held its level throughout, below 1 =
  lost some, above 1 = gained. Relative, so models that start at different levels
  compare by how much of their own skill they keep. Null when gen-0 pass@1 is 0.
* `gens_to_90`, `gens_to_50`: first generation g >= 1 whose pass@1 is below 90% /
  50% of generation 0's. Censored like `first_gen_below_half` (which `gens_to_50`
  equals): null = not within the generations run, also for interval bounds.
* `pass1_gain`: pass@1 at the last generation minus at generation 0 (what verified
  self-training adds, for the `tests` arm).
* `tail_perplexity_ratio`: tail perplexity at the last generation / at generation
  0, when every generation recorded `tail_perplexity` (rising = the model forgets
  the tails of the human distribution first); and the per-generation curve.

Intervals come from the very replicates of `harness.analysis.stats.group_stats` for the
same arms and bootstrap seed (seeds and eval problems resampled, paired across
generations): the same draws in the same order, so this entry's `gens_to_50` and
its `collapse.first_gen_below_half` are one statistic with one interval. Tail
perplexity has no per-problem breakdown and is resampled over seeds only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.analysis.stats import Interval, Replicates, _aucs, _generation_interval, _interval
from harness.runfiles.runs import ArmResult

HEADLINE_KEYS = ("pass1_auc_rel", "gens_to_90", "gens_to_50", "pass1_gain",
                 "tail_perplexity_ratio")
TAIL_KEY = "tail_perplexity"


@dataclass(frozen=True)
class Headline:
    """The headline numbers of one arm group (None: not computable from its data)."""

    values: dict[str, Interval | None]
    tail_curve: list[Interval] | None      # tail perplexity per generation, if recorded

    def to_dict(self) -> dict[str, dict[str, float | None] | None]:
        return {k: None if v is None else v.to_dict() for k, v in self.values.items()}


def first_below(x: np.ndarray, y: np.ndarray, fraction: float) -> np.ndarray:
    """First generation g >= 1 with y[g] < fraction * y[0] per row; +inf when never."""
    out = np.full(y.shape[0], np.inf)
    if x.size < 2:
        return out
    below = y[:, 1:] < fraction * y[:, :1]
    hit = below.any(axis=1)
    out[hit] = x[1:][below[hit].argmax(axis=1)]
    return out


def relative_aucs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(y[:, :1] > 0, y / y[:, :1], np.nan)
    return _aucs(x, rel) if x.size else np.full(y.shape[0], np.nan)


def _tail_values(arms: Sequence[ArmResult], n_gen: int) -> np.ndarray | None:
    """(S, G) tail perplexity as each generation reported it; None unless all did."""
    values = np.full((len(arms), n_gen), np.nan)
    for s, arm in enumerate(arms):
        for g, gen in enumerate(arm.generations[:n_gen]):
            raw = gen.raw.get(TAIL_KEY)
            if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
                return None
            values[s, g] = float(raw)
    return values if n_gen else None


def headline(arms: Sequence[ArmResult], *, n_boot: int, seed: int) -> Headline:
    """The headline numbers of one arm group (one arm per seed); see the module docstring.

    From the group's one bootstrap draw (`Replicates`, the one `group_stats` uses).
    """
    draw = Replicates.draw(arms, n_boot, seed)
    arms, n_gen, x = draw.arms, draw.n_gen, draw.x
    values: dict[str, Interval | None] = dict.fromkeys(HEADLINE_KEYS)

    has_pass1 = n_gen > 0 and all(1 in g.pass_at_k for a in arms for g in a.generations[:n_gen])
    if has_pass1:
        curve, reps = draw.pass_at_k(1)
        mean = curve[None, :]
        values["pass1_auc_rel"] = _interval(
            relative_aucs(x, mean)[0], None if reps is None else relative_aucs(x, reps))
        for key, fraction in (("gens_to_90", 0.9), ("gens_to_50", 0.5)):
            values[key] = _generation_interval(
                first_below(x, mean, fraction)[0],
                None if reps is None else first_below(x, reps, fraction))
        values["pass1_gain"] = _interval(
            float(mean[0, -1] - mean[0, 0]),
            None if reps is None else reps[:, -1] - reps[:, 0])

    tail = _tail_values(arms, n_gen)
    tail_curve: list[Interval] | None = None
    if tail is not None:
        tail_mean = tail.mean(axis=0)
        tail_reps = draw.seed_reps(tail)
        tail_curve = [_interval(tail_mean[i], None if tail_reps is None else tail_reps[:, i])
                      for i in range(n_gen)]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = tail_mean[-1] / tail_mean[0] if tail_mean[0] > 0 else math.nan
            ratio_reps = (None if tail_reps is None else
                          np.where(tail_reps[:, 0] > 0, tail_reps[:, -1] / tail_reps[:, 0],
                                   np.nan))
        values["tail_perplexity_ratio"] = _interval(float(ratio), ratio_reps)
    return Headline(values=values, tail_curve=tail_curve)
