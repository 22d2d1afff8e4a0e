"""Collapse summaries of a pass@1 curve, and bootstrap intervals across seeds.

Three layers:

* Collapse summaries of one curve (pass@1 and headline diversity per generation):
  `pass1_slope`, `pass1_auc`, `first_gen_below_half`, `diversity_retention`,
  bundled by `collapse_summary`. Definitions are the ones in results/README.md, so
  summary.json, the leaderboard and the report agree.
* `group_stats`: for the arms of one arm group (same filter, regime, real fraction,
  restart and train temperature; different seeds) the mean across seeds and a bootstrap 95% interval
  for every per-generation metric and for the collapse summaries.
* `SeedBootstrap`: a seeds-only percentile bootstrap of a per-seed answer (the
  collapse questions' generations to collapse, ratios, gaps, the dose onset).

All three draw their replicates from one function, `draw_replicates`.

Bootstrap procedure of `group_stats` (hierarchical, paired, percentile). Each of
`n_boot` replicates:

1. draws S seeds with replacement from the group's S seeds;
2. draws P eval problems with replacement from the P problems every seed and
   generation was scored on (the same draw for all seeds and generations of the
   replicate, so the curve keeps its shape: the noise that is shared across
   generations stays shared, as it is in the real measurement);
3. recomputes pass@k per seed and generation as the mean over the drawn problems
   of `estimate_pass_at_k(n, c, k)` from each problem's `per_task` counts, and
   averages over the drawn seeds (a seed drawn twice counts twice);
4. does the same for headline diversity when the run recorded it per problem
   (`per_task[t]["diversity"]`), else averages the seeds' reported values;
   perplexity and filter statistics are resampled over seeds only (they have no
   per-problem breakdown);
5. computes the collapse summaries of the replicate's mean pass@1 and diversity
   curves.

The interval is the 2.5th and 97.5th percentile of the replicates. The point
estimate ("mean") is the mean over seeds of the reported values, and the collapse
summaries of the seed-mean curves - for the slope and the area (linear in the
curve) that is exactly the mean of the per-seed values. A quantity with nothing
to resample (one seed and no per-problem data) gets no interval (null bounds),
never a zero-width one. Replicates use a seeded `numpy.random.Generator`, so the
same inputs and seed give the same intervals bit for bit.

`first_gen_below_half` is censored: a replicate whose curve never falls below half
of generation 0 counts as "later than the last generation"; an interval bound
that lands there is null, meaning "not reached within the generations run".
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from harness.errors import BadInput

if TYPE_CHECKING:
    from harness.runfiles.runs import ArmResult

CI_LEVEL = 0.95
DEFAULT_N_BOOT = 2000
DEFAULT_BOOT_SEED = 0
COLLAPSE_KEYS = ("pass1_slope", "pass1_auc", "first_gen_below_half", "diversity_retention")

# --------------------------------------------------------------------------- curves
# Each works on a 2-D array (one curve per row) so the bootstrap can summarise all
# replicates at once; the public scalar functions below wrap them.


def _slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of each row of `y` against `x` (NaN with < 2 points)."""
    if x.size < 2:
        return np.full(y.shape[0], np.nan)
    xc = x - x.mean()
    return ((y - y.mean(axis=1, keepdims=True)) @ xc) / float(xc @ xc)


def _aucs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Trapezoid area under each row divided by the generation span: a mean in [0, 1]."""
    if x.size < 2:
        return y[:, 0].astype(float) if x.size else np.full(y.shape[0], np.nan)
    return np.trapezoid(y, x, axis=1) / float(x[-1] - x[0])


def _first_below_half(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """First generation g >= 1 with y[g] < y[0] / 2 per row; +inf when it never happens."""
    out = np.full(y.shape[0], np.inf)
    if x.size < 2:
        return out
    below = y[:, 1:] < 0.5 * y[:, :1]
    hit = below.any(axis=1)
    out[hit] = x[1:][below[hit].argmax(axis=1)]
    return out


def _retentions(y: np.ndarray) -> np.ndarray:
    """Last / first of each row; NaN where the first value is 0 or missing."""
    if y.shape[1] == 0:
        return np.full(y.shape[0], np.nan)
    first, last = y[:, 0], y[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(first > 0, last / first, np.nan)


def _as_curve(values: Sequence[float], generations: Sequence[int] | None) -> tuple[np.ndarray,
                                                                                   np.ndarray]:
    y = np.asarray(values, dtype=float)
    x = np.arange(y.size, dtype=float) if generations is None else np.asarray(generations, float)
    if y.ndim != 1 or x.shape != y.shape:
        raise BadInput(f"a curve needs one value per generation: {len(x)} generations, "
                       f"{y.size} values")
    if x.size > 1 and np.any(np.diff(x) <= 0):
        raise BadInput(f"generations must increase: {list(x)}")
    return x, y[None, :]


def _scalar(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def pass1_slope(pass1: Sequence[float], generations: Sequence[int] | None = None) -> float | None:
    """Least-squares slope of pass@1 per generation (None with fewer than 2 generations).

    Negative means the model gets worse with every generation of self-training;
    e.g. [0.5, 0.4, 0.3] -> -0.1.
    """
    x, y = _as_curve(pass1, generations)
    return _scalar(_slopes(x, y)[0])


def pass1_auc(pass1: Sequence[float], generations: Sequence[int] | None = None) -> float | None:
    """Trapezoidal area under pass@1 vs generation / number of self-training generations.

    Dividing by the span (G generations after generation 0) makes it a mean pass@1
    in [0, 1] that is comparable across runs of different length; with generation 0
    only it is that generation's pass@1. E.g. [0.5, 0.4, 0.3] -> (0.45 + 0.35) / 2 = 0.4.
    """
    x, y = _as_curve(pass1, generations)
    return _scalar(_aucs(x, y)[0]) if x.size else None


def first_gen_below_half(pass1: Sequence[float],
                         generations: Sequence[int] | None = None) -> int | None:
    """First generation g >= 1 whose pass@1 is below half of generation 0's, else None."""
    x, y = _as_curve(pass1, generations)
    value = _first_below_half(x, y)[0]
    return None if math.isinf(value) else int(value)


NEVER_FELL = "never"
"""How every table writes a first generation below half that did not happen within
the run (the report, the board, the run summary): one word, not `> G` or `-`."""


def generation_text(value: float | None) -> str:
    """A first-generation-below-half value as every table writes it."""
    return NEVER_FELL if value is None or math.isinf(value) else f"{value:.0f}"


def diversity_retention(diversity: Sequence[float]) -> float | None:
    """Headline diversity at the last generation / at generation 0 (None if gen 0 is 0)."""
    _, y = _as_curve(diversity, None)
    return _scalar(_retentions(y)[0])


@dataclass(frozen=True)
class CollapseSummary:
    """The four numbers that say how fast (and whether) one arm collapsed."""

    pass1_slope: float | None
    pass1_auc: float | None
    first_gen_below_half: int | None
    diversity_retention: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        return dataclasses.asdict(self)


def collapse_summary(pass1: Sequence[float], diversity: Sequence[float | None],
                     generations: Sequence[int] | None = None) -> CollapseSummary:
    """All four collapse summaries of one arm (what summary.json stores per arm)."""
    div = [math.nan if d is None else d for d in diversity]
    return CollapseSummary(
        pass1_slope=pass1_slope(pass1, generations),
        pass1_auc=pass1_auc(pass1, generations),
        first_gen_below_half=first_gen_below_half(pass1, generations),
        diversity_retention=diversity_retention(div) if div else None,
    )


# ----------------------------------------------------------------------- intervals


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap 95% interval (bounds None: no interval)."""

    mean: float | None
    ci_low: float | None = None
    ci_high: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return dataclasses.asdict(self)

    def format(self, digits: int = 3) -> str:
        """`0.512 [0.480, 0.541]`, or just the mean, or `-` when there is none."""
        def num(v: float | None) -> str:
            return "-" if v is None else f"{v:.{digits}f}"

        if self.mean is None:
            return "-"
        if self.ci_low is None and self.ci_high is None:
            return num(self.mean)
        return f"{num(self.mean)} [{num(self.ci_low)}, {num(self.ci_high)}]"


def _percentiles(reps: np.ndarray) -> tuple[float | None, float | None]:
    finite = reps[~np.isnan(reps)]
    if finite.size == 0:
        return None, None
    tail = (1.0 - CI_LEVEL) / 2 * 100
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return float(lo), float(hi)


def _interval(mean: float, reps: np.ndarray | None) -> Interval:
    if math.isnan(mean):
        return Interval(None)
    if reps is None:
        return Interval(float(mean))
    lo, hi = _percentiles(reps)
    return Interval(float(mean), lo, hi)


def censored_bounds(reps: np.ndarray) -> tuple[float | None, float | None]:
    """Percentile bounds of replicates that may be infinite ("never", "beyond the
    range run"): order statistics (the inverted CDF, no interpolation towards an
    infinity), an infinite bound returned as None."""
    tail = (1.0 - CI_LEVEL) / 2 * 100
    lo, hi = np.percentile(reps, [tail, 100 - tail], method="inverted_cdf")
    return (None if math.isinf(lo) else float(lo)), (None if math.isinf(hi) else float(hi))


def _generation_interval(mean: float, reps: np.ndarray | None) -> Interval:
    """Interval of the censored first-generation-below-half (inf = never within the run)."""
    point = None if math.isinf(mean) else float(mean)
    if reps is None:
        return Interval(point)
    return Interval(point, *censored_bounds(reps))


def draw_replicates(n_seed: int, n_problems: int, n_boot: int, seed: int
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """The one bootstrap draw of this package (steps 1 and 2 of the module docstring).

    Returns `seed_counts` (n_boot x n_seed: how often replicate b drew seed s) and
    `problem_weights` (n_boot x n_problems draw shares, None with fewer than 2
    problems). Seeds are drawn first and problems second from one seeded generator,
    so every user with the same seed and seed count resamples the same seeds: a group's
    intervals (`group_stats`, the board's headline), the paired difference of two
    groups and the collapse questions' per-seed answers (`SeedBootstrap`) all agree on
    which seeds replicate b holds.
    """
    rng = np.random.default_rng(seed)
    seed_counts = rng.multinomial(n_seed, np.full(n_seed, 1.0 / n_seed), size=n_boot)
    weights = (rng.multinomial(n_problems, np.full(n_problems, 1.0 / n_problems),
                               size=n_boot) / n_problems) if n_problems >= 2 else None
    return seed_counts, weights


@dataclass(frozen=True)
class SeedBootstrap:
    """Intervals over seeds alone: each replicate resamples whole seeds with replacement
    (`n_boot` replicates from `draw_replicates`, seeded). The collapse questions
    (`harness.analysis.questions`, `harness.analysis.dose`) use it: their per-seed
    answers (a generation count, a ratio, a fitted onset) have no per-problem
    breakdown to resample."""

    n_boot: int = DEFAULT_N_BOOT
    seed: int = DEFAULT_BOOT_SEED

    def replicates(self, n: int) -> np.ndarray:
        """Indices of the seeds each replicate draws (n_boot x n, each row sorted), the
        same for equal n: every statistic of one report resamples the same seeds, and
        they are the seeds `group_stats` resamples for a group of n seeds."""
        counts, _ = draw_replicates(n, 0, self.n_boot, self.seed)
        return np.repeat(np.broadcast_to(np.arange(n), counts.shape), counts.ravel()
                         ).reshape(self.n_boot, n)

    def interval(self, values: Sequence[float], *, censored: bool = False) -> Interval:
        """Mean over seeds with a percentile interval over resampled seeds.

        censored: the values may be inf ("never"); the point is then the median and
        the bounds use the inverted CDF, an infinite bound shown as null.
        """
        arr = np.asarray(values, dtype=float)
        arr = arr[~np.isnan(arr)]
        if arr.size == 0:
            return Interval(None)
        point = float(np.median(arr)) if censored else float(arr.mean())
        point_or_none = None if math.isinf(point) else point
        if arr.size == 1:
            return Interval(point_or_none)
        reps = arr[self.replicates(arr.size)]
        stat = np.median(reps, axis=1) if censored else reps.mean(axis=1)
        return Interval(point_or_none, *censored_bounds(stat))


# ------------------------------------------------------------------- group statistics


@dataclass(frozen=True)
class GenerationStats:
    """Mean over seeds and 95% interval of every metric at one generation."""

    generation: int
    pass_at_k: dict[int, Interval]
    diversity: Interval
    perplexity: Interval
    filter_acceptance_rate: Interval
    filter_precision: Interval
    filter_recall: Interval
    n_train_examples: Interval


@dataclass(frozen=True)
class GroupStats:
    """Everything the leaderboard and the report say about one arm group."""

    seeds: list[int]
    generations: list[GenerationStats]
    collapse: dict[str, Interval]
    per_seed_collapse: list[CollapseSummary]
    n_problems: int          # problems resampled (0: the runs kept no per-problem counts)
    problem_resampled_diversity: bool
    n_boot: int
    boot_seed: int

    @property
    def ks(self) -> list[int]:
        return sorted(self.generations[0].pass_at_k) if self.generations else []

    def curve(self, name: str, k: int = 1) -> list[Interval]:
        """One metric across generations: `pass@k` (with `k`) or a GenerationStats field."""
        if name == "pass@k":
            return [g.pass_at_k.get(k, Interval(None)) for g in self.generations]
        return [getattr(g, name) for g in self.generations]


_SCALARS = ("diversity", "perplexity", "filter_acceptance_rate", "filter_precision",
            "filter_recall", "n_train_examples")
_RATES = ("filter_acceptance_rate", "filter_precision", "filter_recall")


def _common_prefix(arms: Sequence[ArmResult]) -> list[int]:
    """Generation numbers every arm completed (the curves must line up)."""
    gens = [[g.generation for g in arm.generations] for arm in arms]
    common: list[int] = []
    for column in zip(*gens, strict=False):
        if len(set(column)) != 1:
            break
        common.append(column[0])
    return common


def _common_tasks(arms: Sequence[ArmResult], n_gen: int, key: str) -> list[str]:
    """Problems present in every seed and generation (sorted, for reproducible draws)."""
    sets = [set(getattr(g, key)) for arm in arms for g in arm.generations[:n_gen]]
    if not sets:
        return []
    return sorted(set.intersection(*sets))


def _per_problem_passk(arms: Sequence[ArmResult], n_gen: int, tasks: list[str],
                       k: int) -> np.ndarray:
    """Array (S, G, P) of each problem's pass@k, from its (n, c) counts."""
    from harness.metrics.passk import estimate_pass_at_k

    out = np.empty((len(arms), n_gen, len(tasks)))
    for s, arm in enumerate(arms):
        for g, gen in enumerate(arm.generations[:n_gen]):
            try:
                out[s, g] = [estimate_pass_at_k(*gen.per_task[task], k) for task in tasks]
            except BadInput as exc:
                raise BadInput(f"arm {arm.arm_id} generation {gen.generation}: {exc}") from None
    return out


def _seed_mean(seed_counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Replicate means over drawn seeds, ignoring NaN. counts (B, S), values (S, ...)."""
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    total = np.tensordot(seed_counts, filled, axes=(1, 0))
    weight = np.tensordot(seed_counts, present.astype(float), axes=(1, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(weight > 0, total / weight, np.nan)


def _problem_mean(seed_counts: np.ndarray, weights: np.ndarray,
                  per_problem: np.ndarray) -> np.ndarray:
    """(S, G, P) per-problem values -> (B, G): each replicate's mean over its drawn
    problems (weights, B x P) and then its drawn seeds (counts, B x S)."""
    per_seed = np.einsum("bp,sgp->bsg", weights, per_problem)
    return np.einsum("bs,bsg->bg", seed_counts, per_seed) / seed_counts.shape[1]


def _nanmean(values: np.ndarray, axis: int = 0) -> np.ndarray:
    present = ~np.isnan(values)
    count = present.sum(axis=axis)
    total = np.where(present, values, 0.0).sum(axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


@dataclass(frozen=True)
class Replicates:
    """The bootstrap draw of one arm group (steps 1 and 2 of the module docstring),
    made once and shared by every statistic of the group: `group_stats`, and
    `harness.analysis.headline`, which used to re-draw "exactly as group_stats does"
    with a copy of this code. Same arms, n_boot and seed: the same replicates."""

    arms: list[ArmResult]              # one per seed, sorted by (seed, arm id)
    generations: list[int]             # the generations every arm completed
    tasks: list[str]                   # the problems every seed and generation has
    seed_counts: np.ndarray            # (B, S): how often replicate b drew seed s
    problem_weights: np.ndarray | None  # (B, P) draw shares; None: fewer than 2 problems

    @classmethod
    def draw(cls, arms: Sequence[ArmResult], n_boot: int, seed: int) -> Replicates:
        arms = sorted(arms, key=lambda a: (a.seed, a.arm_id))
        generations = _common_prefix(arms)
        tasks = _common_tasks(arms, len(generations), "per_task")
        seed_counts, weights = draw_replicates(len(arms), len(tasks), n_boot, seed)
        return cls(arms, generations, tasks, seed_counts, weights)

    @property
    def n_gen(self) -> int:
        return len(self.generations)

    @property
    def n_seed(self) -> int:
        return len(self.arms)

    @property
    def x(self) -> np.ndarray:
        return np.asarray(self.generations, dtype=float)

    def seed_reps(self, values: np.ndarray) -> np.ndarray | None:
        """(S, ...) per-seed values -> (B, ...) replicate means; None with one seed."""
        return _seed_mean(self.seed_counts, values) if self.n_seed >= 2 else None

    def problem_reps(self, per_problem: np.ndarray) -> np.ndarray:
        """(S, G, P) per-problem values -> (B, G) replicate means over seeds and problems."""
        assert self.problem_weights is not None
        return _problem_mean(self.seed_counts, self.problem_weights, per_problem)

    def pass_at_k(self, k: int) -> tuple[np.ndarray, np.ndarray | None]:
        """pass@k per generation: the seed mean of the reported values (G,) and its
        replicates (B, G), over problems when there are any, else over seeds."""
        values = np.array([[g.pass_at_k[k] for g in a.generations[:self.n_gen]]
                           for a in self.arms], dtype=float).reshape(self.n_seed, self.n_gen)
        reps = (self.problem_reps(_per_problem_passk(self.arms, self.n_gen, self.tasks, k))
                if self.problem_weights is not None else self.seed_reps(values))
        return _clip01(values.mean(axis=0)), _clip01(reps)


def group_stats(arms: Sequence[ArmResult], *, n_boot: int = DEFAULT_N_BOOT,
                seed: int = DEFAULT_BOOT_SEED) -> GroupStats:
    """Mean and bootstrap 95% interval across the seeds of one arm group.

    `arms` are the group's arms (one per seed). Only generations that every arm
    completed are used. See the module docstring for the resampling procedure.
    """
    if not arms:
        raise BadInput("an arm group needs at least one arm")
    if n_boot < 1:
        raise BadInput(f"n_boot must be >= 1, got {n_boot}")
    draw = Replicates.draw(arms, n_boot, seed)
    arms, generations, tasks = draw.arms, draw.generations, draw.tasks
    n_gen, n_seed, x = draw.n_gen, draw.n_seed, draw.x
    ks = sorted(set.intersection(*[set(g.pass_at_k) for a in arms
                                   for g in a.generations[:n_gen]])) if n_gen else []
    resample_problems = draw.problem_weights is not None
    seed_reps, problem_reps = draw.seed_reps, draw.problem_reps

    def reported(field: str) -> np.ndarray:  # (S, G) of reported values, NaN for None
        return np.array([[_nan(getattr(g, field)) for g in a.generations[:n_gen]]
                         for a in arms], dtype=float).reshape(n_seed, n_gen)

    passk_mean: dict[int, np.ndarray] = {}
    passk_reps: dict[int, np.ndarray | None] = {}
    for k in ks:
        passk_mean[k], passk_reps[k] = draw.pass_at_k(k)

    scalar_mean: dict[str, np.ndarray] = {}
    scalar_reps: dict[str, np.ndarray | None] = {}
    for field in _SCALARS:
        values = reported(field)
        rate = field in _RATES
        scalar_mean[field] = _clip01(_nanmean(values)) if rate else _nanmean(values)
        scalar_reps[field] = _clip01(seed_reps(values)) if rate else seed_reps(values)
    div_tasks = _common_tasks(arms, n_gen, "per_task_diversity")
    div_by_problem = resample_problems and div_tasks == tasks
    if div_by_problem:
        per_problem = np.array([[[g.per_task_diversity[t] for t in tasks]
                                 for g in a.generations[:n_gen]] for a in arms], dtype=float)
        scalar_reps["diversity"] = problem_reps(per_problem)

    gen_stats = [
        GenerationStats(
            generation=gen,
            pass_at_k={k: _interval(passk_mean[k][i], _col(passk_reps[k], i)) for k in ks},
            **{f: _interval(scalar_mean[f][i], _col(scalar_reps[f], i)) for f in _SCALARS},
        )
        for i, gen in enumerate(generations)
    ]

    pass1_mean = passk_mean.get(1, np.full(n_gen, np.nan))[None, :]
    div_mean = scalar_mean["diversity"][None, :]
    pass1_reps = passk_reps.get(1)
    div_reps = scalar_reps["diversity"]
    collapse = {
        "pass1_slope": _interval(_slopes(x, pass1_mean)[0],
                                 None if pass1_reps is None else _slopes(x, pass1_reps)),
        "pass1_auc": _interval(_aucs(x, pass1_mean)[0] if n_gen else math.nan,
                               None if pass1_reps is None or not n_gen else _aucs(x, pass1_reps)),
        "first_gen_below_half": _generation_interval(
            _first_below_half(x, pass1_mean)[0],
            None if pass1_reps is None else _first_below_half(x, pass1_reps)),
        "diversity_retention": _interval(_retentions(div_mean)[0],
                                         None if div_reps is None else _retentions(div_reps)),
    }
    per_seed = [
        collapse_summary([g.pass_at_k.get(1, math.nan) for g in a.generations[:n_gen]],
                         [g.diversity for g in a.generations[:n_gen]], generations)
        for a in arms
    ]
    return GroupStats(seeds=[a.seed for a in arms], generations=gen_stats, collapse=collapse,
                      per_seed_collapse=per_seed, n_problems=len(tasks) if resample_problems
                      else 0, problem_resampled_diversity=div_by_problem, n_boot=n_boot,
                      boot_seed=seed)


def paired_auc_difference(a: Sequence[ArmResult], b: Sequence[ArmResult], *,
                          n_boot: int = DEFAULT_N_BOOT,
                          seed: int = DEFAULT_BOOT_SEED) -> Interval:
    """pass@1 AUC of group `a` minus that of group `b`, with a paired bootstrap interval.

    Two arm groups of one run were scored on the same eval problems with the same
    seeds (and the same generation 0), so most of their sampling noise is shared.
    Each replicate draws one set of seeds and one set of problems and applies it to
    both groups; the interval of the difference is then much narrower than the two
    groups' own intervals suggest, and it is what says whether one arm really beats
    the other. Only seeds both groups have and generations and problems every arm
    has are used. No interval when there is nothing to resample.
    """
    if n_boot < 1:
        raise BadInput(f"n_boot must be >= 1, got {n_boot}")
    shared = sorted({x.seed for x in a} & {x.seed for x in b})
    if not shared:
        return Interval(None)
    arms_a = [next(x for x in a if x.seed == s) for s in shared]
    arms_b = [next(x for x in b if x.seed == s) for s in shared]
    generations = _common_prefix([*arms_a, *arms_b])
    n_gen, n_seed = len(generations), len(shared)
    if not n_gen or any(1 not in g.pass_at_k for arm in (*arms_a, *arms_b)
                        for g in arm.generations[:n_gen]):
        return Interval(None)
    x = np.asarray(generations, dtype=float)

    def reported(arms: Sequence[ArmResult]) -> np.ndarray:  # (S, G) pass@1
        return np.array([[g.pass_at_k[1] for g in arm.generations[:n_gen]] for arm in arms],
                        dtype=float).reshape(n_seed, n_gen)

    pass_a, pass_b = reported(arms_a), reported(arms_b)
    mean = float(_aucs(x, pass_a.mean(axis=0)[None, :])[0]
                 - _aucs(x, pass_b.mean(axis=0)[None, :])[0])
    tasks = _common_tasks([*arms_a, *arms_b], n_gen, "per_task")
    seed_counts, weights = draw_replicates(n_seed, len(tasks), n_boot, seed)
    if weights is not None:

        def reps(arms: Sequence[ArmResult]) -> np.ndarray:  # (B, G)
            return _problem_mean(seed_counts, weights,
                                 _per_problem_passk(arms, n_gen, tasks, 1))

        diff = _aucs(x, reps(arms_a)) - _aucs(x, reps(arms_b))
    elif n_seed >= 2:
        diff = _aucs(x, _seed_mean(seed_counts, pass_a)) - _aucs(x, _seed_mean(seed_counts, pass_b))
    else:
        return Interval(mean)
    return _interval(mean, diff)


@overload
def _clip01(values: np.ndarray) -> np.ndarray: ...


@overload
def _clip01(values: None) -> None: ...


def _clip01(values: np.ndarray | None) -> np.ndarray | None:
    """Rates are in [0, 1]; averaging can overshoot by one rounding step (1.0000000000000004)."""
    return None if values is None else np.clip(values, 0.0, 1.0)


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def _col(reps: np.ndarray | None, i: int) -> np.ndarray | None:
    return None if reps is None else reps[:, i]


def intervals_to_dict(intervals: Mapping[Any, Interval]) -> dict[str, dict[str, float | None]]:
    """{name: Interval} -> JSON-ready {str(name): {"mean", "ci_low", "ci_high"}}."""
    return {str(name): iv.to_dict() for name, iv in intervals.items()}
