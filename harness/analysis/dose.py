"""Where the dose-response starts: the synthetic share at which final pass@1 begins to
fall (docs/collapse.md, "Dose-response"). Two answers for one series of arm groups
that differ only in their share, both over seeds:

1. The onset: a hockey-stick (one-breakpoint segmented) least-squares fit of every
   seed's final pass@1 y on x = log10(synthetic share),

       y = level                          for x <= knee
       y = level - drop * (x - knee)      for x >  knee,    drop >= 0,

   fitted to all (seed, share) points at once. The knee is searched over the
   tested shares and `KNEE_GRID` log-spaced points between the lowest and highest
   share above 0; at each knee, level and drop are the least-squares ones with the
   drop kept to a fall (a rise fits as flat). Share 0, the all-human arm, has no
   logarithm: it sits on the plateau for every knee, and with it knees down to a
   decade below the lowest share above 0 are tried too, so that "already falling
   at the lowest share" can fit (reported as at or below that share, never as a
   value read off the extrapolation). Of knees that fit equally well (one share past
   the knee fits any knee before it) the lowest is taken: the plateau is claimed no
   further than the data show it, the cautious side of "safe up to share X". A
   flat best fit is "no onset within the shares tested". The onset's interval is
   the percentile interval of the knee refitted on resampled seeds (whole seeds,
   all their shares together: `SeedBootstrap.replicates`), a replicate with no
   onset counting as beyond the highest share (an open bound).

   Log share, because the question is the low end: Dohmatob et al. (ICLR 2025)
   argue a share as small as 1 in 1000 can still collapse a model, and shares 0.01
   to 1 span two decades that a linear axis squeezes into its first tenth.

2. The check: per share, each seed's final pass@1 there minus at the reference
   share (0 when the series has it, else its lowest share), paired by seed (the
   arms of a seed share generation 0), with a seed-bootstrap interval
   (`SeedBootstrap.interval`). A fall is located at all only when the drop at the
   highest share has its interval wholly below 0 (one comparison, the largest
   dose); otherwise the statement says final pass@1 does not fall beyond seed
   noise and names the best hockey stick as noise. When it falls, the lowest share
   whose drop's interval lies wholly below 0 is named too: one comparison per
   share, not corrected for their number (of 7 shares one may clear at 95% by
   chance), and not assuming the hockey stick's shape.

Why this and not more: a one-breakpoint regression is the usual model of "flat,
then falling" (threshold or broken-stick regression; Muggeo 2003 for the segmented
form), it has three parameters, and with a seed bootstrap its interval comes from
the same resampling as every other number of the report. Its limits are said with
it: with 3 to 5 seeds the interval is coarse (5 seeds have 126 distinct resamples);
a knee between two tested shares is placed only by where the fitted fall meets the
plateau; below the lowest share tested it cannot be placed at all ("at or below").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from harness.analysis.stats import Interval, SeedBootstrap, censored_bounds

KNEE_GRID = 200
"""Log-spaced knee candidates between the lowest and highest share above 0 (the
tested shares are candidates too, so a knee at one of them is found exactly)."""

BELOW_LOWEST = 1.0
"""With a share-0 arm, knees are also tried this many decades below the lowest share
above 0; an onset there is reported as "at or below" that share, never as a value."""


@dataclass(frozen=True)
class Knee:
    """The least-squares hockey stick of one set of (share, final pass@1) points."""

    share: float | None      # onset: where the plateau ends; None = no fall
    level: float             # pass@1 on the plateau
    drop_per_decade: float   # pass@1 lost per tenfold share past the knee (>= 0)
    lowest: float            # the lowest and highest share above 0 in the points
    highest: float
    has_zero: bool           # share-0 points (the all-human arm) are on the plateau

    @property
    def from_lowest(self) -> bool:
        """Falling already at the lowest share above 0: the onset is at or below it
        (below it only the all-human arm, if any, is on the plateau)."""
        if self.share is None:
            return False
        at = self.share <= self.lowest * (1 + 1e-9)
        return self.share < self.lowest * (1 - 1e-9) or (at and not self.has_zero)


def fit_knee(shares: Sequence[float], values: Sequence[float]) -> Knee | None:
    """The hockey stick (module docstring) through the points; None with fewer than
    three distinct shares, two of them above 0."""
    s, y = np.asarray(shares, dtype=float), np.asarray(values, dtype=float)
    s, y = s[~np.isnan(y)], y[~np.isnan(y)]
    positive = np.unique(s[s > 0])
    if positive.size < 2 or np.unique(s).size < 3:
        return None
    x = np.log10(np.where(s > 0, s, 1.0))
    has_zero = bool((s == 0).any())
    lo, hi = math.log10(positive[0]), math.log10(positive[-1])
    # with an all-human arm the plateau may end below the lowest share above 0 (down
    # to a decade below it): only then can "falls already at the lowest share" fit
    start = lo - BELOW_LOWEST if has_zero else lo
    knees = np.unique(np.concatenate([np.linspace(start, hi, KNEE_GRID),
                                      np.log10(positive)]))
    past = np.where(s > 0, np.maximum(x[None, :] - knees[:, None], 0.0), 0.0)  # (knee, point)
    centred = past - past.mean(axis=1, keepdims=True)
    y_mean = float(y.mean())
    sxx = (centred ** 2).sum(axis=1)
    slope = np.where(sxx > 0, (centred * (y - y_mean)).sum(axis=1) / np.where(sxx > 0, sxx, 1),
                     0.0)
    slope = np.minimum(slope, 0.0)              # a fall, or flat
    level = y_mean - slope * past.mean(axis=1)
    sse = ((y[None, :] - level[:, None] - slope[:, None] * past) ** 2).sum(axis=1)
    tolerance = 1e-9 * float(((y - y_mean) ** 2).sum()) + 1e-15
    best = int(np.flatnonzero(sse <= sse.min() + tolerance)[0])    # the lowest of the best
    flat = best == knees.size - 1 or slope[best] == 0.0
    return Knee(share=None if flat else float(10 ** knees[best]),
                level=float(y_mean if flat else level[best]),
                drop_per_decade=0.0 if flat else float(-slope[best]),
                lowest=float(positive[0]), highest=float(positive[-1]), has_zero=has_zero)


@dataclass(frozen=True)
class DoseOnset:
    """Both answers for one series (module docstring)."""

    knee: Knee
    onset: Interval                 # the knee's share; a None bound: beyond the highest share
    reference: float                # the share every drop is measured against
    drops: dict[float, Interval]    # share -> final pass@1 there minus at the reference
    n_seeds: int

    @property
    def falls(self) -> bool:
        """Whether there is a fall to locate: the drop at the highest share tested has
        its interval wholly below 0 (one comparison, made before any other)."""
        iv = self.drops[max(self.drops)]
        return iv.ci_high is not None and iv.ci_high < 0

    @property
    def first_drop(self) -> float | None:
        """The lowest share whose drop's interval lies wholly below 0."""
        return next((s for s, iv in sorted(self.drops.items())
                     if iv.ci_high is not None and iv.ci_high < 0), None)


def dose_onset(by_share: Mapping[float, Mapping[int, float]], boot: SeedBootstrap
               ) -> DoseOnset | None:
    """Onset fit and paired drops of final pass@1 ({share: {seed: value}}), over the
    seeds every share has; None when too few shares for the fit."""
    shares = sorted(by_share)
    seeds = sorted(set.intersection(*(set(by_share[s]) for s in shares))) if shares else []
    if not seeds:
        return None
    table = np.array([[by_share[s][seed] for s in shares] for seed in seeds], dtype=float)
    columns = np.array(shares, dtype=float)

    def fit(rows: np.ndarray) -> Knee | None:
        picked = table[rows]
        return fit_knee(np.broadcast_to(columns, picked.shape).ravel(), picked.ravel())

    knee = fit(np.arange(len(seeds)))
    if knee is None:
        return None
    onset = Interval(knee.share)
    if len(seeds) > 1:
        fits = [fit(rows) for rows in boot.replicates(len(seeds))]
        onset = Interval(knee.share, *censored_bounds(np.array(
            [math.inf if k is None or k.share is None else k.share for k in fits])))
    reference = shares[0]
    drops = {s: boot.interval(table[:, i] - table[:, 0]) for i, s in enumerate(shares)
             if i > 0}
    return DoseOnset(knee, onset, reference, drops, len(seeds))


def onset_text(result: DoseOnset, what: str = "final pass@1") -> str:
    """The plain statement of both answers: where `what` stops being flat, with the
    onset's interval, and the lowest share whose paired drop is below 0. A fall is
    located only when there is one (`DoseOnset.falls`); otherwise the best hockey
    stick is named as noise, not as an onset."""
    k, iv = result.knee, result.onset

    def share(v: float | None) -> str:
        if v is None:
            return f"beyond {k.highest:g}"
        return f"below {k.lowest:g}" if v < k.lowest * (1 - 1e-9) else f"{v:.3g}"

    interval = (f" [95% seed bootstrap {share(iv.ci_low)}, {share(iv.ci_high)}]"
                if iv.ci_low is not None or iv.ci_high is not None else "")
    if k.share is None:
        fit = f"is flat ({k.level:.3f}) across the shares tested"
    elif k.from_lowest:
        fit = (f"falls already at the lowest share tested ({k.lowest:g}), by "
               f"{k.drop_per_decade:.3f} per tenfold share: the onset is at or below "
               f"{k.lowest:g}{interval}")
    else:
        fit = (f"is flat ({k.level:.3f}) up to share {k.share:.3g}{interval}, then falls "
               f"{k.drop_per_decade:.3f} per tenfold share")
    against = f"against share {result.reference:g} (paired by seed" + (
        ")" if result.reference == 0 else "; the run has no share-0 arm, so the lowest "
        "share tested is the reference)")
    seeds = f"{result.n_seeds} seed{'s' if result.n_seeds != 1 else ''}"
    head = f"Onset (hockey-stick fit on log10 share, {seeds} x {len(result.drops) + 1} shares): "
    if result.n_seeds < 2:
        return head + f"{what} {fit}; one seed: no intervals, so no claim that it falls."
    if not result.falls:
        top = max(result.drops)
        return (head + f"{what} does not fall beyond seed noise: at share {top:g} its drop "
                f"{against} is {result.drops[top].format()}. (The best hockey stick "
                f"{fit}: noise, not an onset.)")
    first = result.first_drop
    return (head + f"{what} {fit}. The lowest share whose drop {against} has its 95% "
            f"interval below 0 is {first:g}: {result.drops[first].format()}.")
