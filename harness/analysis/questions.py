"""The four collapse questions, answered from one run (docs/collapse.md).

1. Horizon - how many generations until pass@1 falls below 90% / 50% of generation 0?
2. Poison - how does the outcome move with the share of AI-written training code?
3. Repair - how much do generations on human data only bring back (`--recover`), and
   is the model beyond repair? The second is answered against the control: the same
   repair applied to generation 0 (the repair-only arm, `--courses`); the gap between
   the two is the damage the self-training left.
4. Detection - how well did a detector filter tell AI from human code in a mixed pool?

Plus what the tails and the failure mode did: tail-style share and tail perplexity
against the head, and the collapse mode the generation metrics name.

Every number is a mean over seeds with a percentile bootstrap interval over seeds
(resampling whole seeds, `n_boot` replicates, seeded); seeds are the replicates a
reader can rerun. A question with no data in the run (no `--recover`, no mixed
pool) is left out of the section rather than shown empty.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.analysis.dose import DoseOnset, dose_onset, onset_text
from harness.analysis.stats import Interval, SeedBootstrap
from harness.runfiles.runs import ArmGroupKey, ArmResult, GenerationMetrics, RunResult

HORIZON_FRACTIONS = (0.9, 0.5)
"""Generations to collapse are reported at these fractions of generation-0 pass@1."""


# ------------------------------------------------------------------ per-seed values
def _block(g: GenerationMetrics, block: str, *path: str) -> float:
    """A number inside one of the record's JSON blocks (NaN when absent)."""
    node: Any = getattr(g.record, block, None) if g.record is not None else None
    for key in path:
        if not isinstance(node, dict) or node.get(key) is None:
            return math.nan
        node = node[key]
    return float(node) if isinstance(node, int | float) else math.nan


def pass1(g: GenerationMetrics) -> float:
    return g.pass_at_k.get(1, math.nan)


def diversity(g: GenerationMetrics) -> float:
    return math.nan if g.diversity is None else g.diversity


def tail_perplexity(g: GenerationMetrics) -> float:
    value = g.record.tail_perplexity if g.record is not None else None
    return math.nan if value is None else value


def phase(g: GenerationMetrics) -> str:
    if g.record is not None:
        return g.record.phase
    return "base" if g.generation == 0 else "self-training"


def self_training(arm: ArmResult) -> list[GenerationMetrics]:
    """Generation 0 and the self-training generations (not the repair ones)."""
    return [g for g in arm.generations if phase(g) != "recovery"]


def pass_at(k: int) -> Callable[[GenerationMetrics], float]:
    return lambda g: float(g.pass_at_k.get(k, math.nan))


def is_control(key: ArmGroupKey) -> bool:
    """A repair-only group: the recovery control, not an answer of its own."""
    return dict(key.values).get("course") == "repair-only"


def control_key(key: ArmGroupKey) -> ArmGroupKey:
    """The repair-only twin of a self-trained group: the same key but its course."""
    return ArmGroupKey(tuple((name, "repair-only" if name == "course" else value)
                             for name, value in key.values))


def repair_gap(arms: Sequence[ArmResult], controls: Sequence[ArmResult], boot: SeedBootstrap,
               ) -> dict[str, Interval]:
    """Repaired after self-training minus repaired without it, at the last generation,
    paired by seed (the two arms of a seed share generation 0, the repair data draws
    and the training seeds: only the self-training differs), with a seed-bootstrap
    interval of the paired differences. Per metric of REPAIR_GAP_METRICS; pass@k is
    the largest k <= 10 every arm has. Empty when no seed has both arms as far."""
    twins = {c.seed: c for c in controls}
    pairs = [(a, twins[a.seed]) for a in arms if a.seed in twins and a.generations
             and len(a.generations) == len(twins[a.seed].generations)]
    if not pairs:
        return {}
    ks = set.intersection(*(set(x.generations[-1].pass_at_k) for pair in pairs for x in pair))
    k = max((k for k in ks if k <= 10), default=1)
    getters: dict[str, Callable[[GenerationMetrics], float]] = {
        "pass@1": pass1, f"pass@{k}": pass_at(k), "tail perplexity": tail_perplexity,
        "diversity": diversity}
    return {name: boot.interval([get(a.generations[-1]) - get(c.generations[-1])
                                 for a, c in pairs])
            for name, get in getters.items()}


def repair_verdict(gap: Interval) -> str:
    """In words, from the pass@1 gap: `beyond repair` when it is below 0 with its
    interval excluding 0; `repaired` when the interval holds 0."""
    if gap.mean is None or gap.ci_low is None or gap.ci_high is None:
        return "-"
    if gap.ci_high < 0:
        return "beyond repair (pass@1 gap < 0)"
    if gap.ci_low > 0:
        return "above the control (gap > 0)"
    return "repaired (gap holds 0)"


def generations_to(curve: Sequence[float], fraction: float) -> float:
    """First generation >= 1 whose value is below `fraction` x generation 0; inf if none
    (censored: "not within the generations run")."""
    if not curve or math.isnan(curve[0]):
        return math.nan
    for g, value in enumerate(curve[1:], start=1):
        if value < fraction * curve[0]:
            return float(g)
    return math.inf


def recovery_ratio(curve: Sequence[float], n_self: int, worse: str = "lower") -> float:
    """How much of the damage the repair generations undid.

    `curve` = generation 0, the self-training generations (n_self of them), then the
    repair ones; `worse` says which direction is damage: "lower" (pass@1), "higher"
    (tail perplexity) or "away" (diversity: either way from generation 0). worst =
    the most damaged self-training generation. ratio = (last - worst) / (gen0 -
    worst), i.e. 1 = fully back, 0 = no better than the worst, < 0 = worse still,
    > 1 = better than generation 0. NaN when self-training did no damage in that
    direction (nothing to repair) or there are no repair generations.
    """
    if len(curve) <= n_self + 1 or n_self < 1 or any(math.isnan(v) for v in curve):
        return math.nan
    start, last, selfs = curve[0], curve[-1], list(curve[1: n_self + 1])
    if worse == "away":
        worst = max(selfs, key=lambda v: abs(v - start))
        if abs(worst - start) < 1e-12:
            return math.nan
        return 1.0 - abs(last - start) / abs(worst - start)
    worst = min(selfs) if worse == "lower" else max(selfs)
    damaged = worst < start if worse == "lower" else worst > start
    if not damaged:
        return math.nan
    return (last - worst) / (start - worst)


def _gen_text(iv: Interval, n_never: int, n: int, horizon: int) -> str:
    if iv.mean is None and n_never:
        return f"never within {horizon} ({n_never}/{n} seeds)"
    text = iv.format(1)
    return text + (f" ({n_never}/{n} seeds never)" if n_never else "")


# ------------------------------------------------------------------ the answers
@dataclass(frozen=True)
class GroupAnswer:
    """What one arm group says about the questions."""

    key: ArmGroupKey
    seeds: list[int]
    n_self: int                              # self-training generations
    horizon: dict[float, tuple[Interval, int]]   # fraction -> (generations, seeds never)
    final_pass1: Interval
    final_tail_perplexity: Interval
    recovery: dict[str, Interval]            # metric -> recovery ratio (empty: no repair)
    repair_gap: dict[str, Interval]          # metric -> gap to the control (empty: none)
    detection: list[dict[str, Interval]]     # per self-training generation (empty: none)
    mode: str                                # majority mode at the last self-training gen
    tail_rises_first: str                    # tail perplexity vs pass@1, in words
    pass1_by_seed: dict[int, tuple[float, ...]] = field(default_factory=dict)
    """seed -> pass@1 of generations 0..n_self (the dose onset pairs seeds across shares)"""

    @property
    def synthetic_share(self) -> float:
        return 1.0 - self.key.real_fraction


def _mode(arms: Sequence[ArmResult]) -> str:
    modes = []
    for arm in arms:
        gens = self_training(arm)
        collapse = gens[-1].record.collapse if gens and gens[-1].record else None
        if isinstance(collapse, dict) and isinstance(collapse.get("mode"), str):
            modes.append(collapse["mode"])
    if not modes:
        return "-"
    counts = {m: modes.count(m) for m in modes}
    best = max(counts, key=lambda m: (counts[m], m))
    return f"{best} ({counts[best]}/{len(modes)} seeds)"


def _tail_first(arms: Sequence[ArmResult]) -> str:
    """Did tail perplexity rise (>5% over gen 0) before pass@1 fell below 90%?"""
    verdicts = []
    for arm in arms:
        gens = self_training(arm)
        tail = [tail_perplexity(g) for g in gens]
        if not tail or math.isnan(tail[0]):
            continue
        rise = next((g for g, v in enumerate(tail[1:], start=1) if v > 1.05 * tail[0]),
                    math.inf)
        fall = generations_to([pass1(g) for g in gens], 0.9)
        if math.isinf(rise) and math.isinf(fall):
            verdicts.append("neither")
        elif rise < fall:
            verdicts.append("tail first")
        elif fall < rise:
            verdicts.append("pass@1 first")
        else:
            verdicts.append("same generation")
    if not verdicts:
        return "-"
    return ", ".join(f"{v}: {verdicts.count(v)}" for v in dict.fromkeys(verdicts))


def answer_group(key: ArmGroupKey, arms: Sequence[ArmResult], boot: SeedBootstrap,
                 controls: Sequence[ArmResult] = ()) -> GroupAnswer:
    selfs = [self_training(a) for a in arms]
    n_self = min(len(s) for s in selfs) - 1
    horizon = {}
    for fraction in HORIZON_FRACTIONS:
        values = [generations_to([pass1(g) for g in s[: n_self + 1]], fraction)
                  for s in selfs]
        horizon[fraction] = (boot.interval(values, censored=True),
                             sum(math.isinf(v) for v in values))
    recovery: dict[str, Interval] = {}
    if all(len(a.generations) > len(s) for a, s in zip(arms, selfs, strict=True)):
        for name, getter, worse in (("pass@1", pass1, "lower"),
                                    ("tail perplexity", tail_perplexity, "higher"),
                                    ("diversity", diversity, "away")):
            recovery[name] = boot.interval([
                recovery_ratio([getter(g) for g in a.generations], n_self, worse)
                for a in arms])
    detection: list[dict[str, Interval]] = []
    for g in range(1, n_self + 1):
        reports = [s[g].record.detection if s[g].record else None for s in selfs]
        if not all(isinstance(r, dict) for r in reports):
            continue
        detection.append({name: boot.interval([
            math.nan if r.get(name) is None else float(r[name]) for r in reports])
            for name in ("auroc", "precision", "recall")})
    return GroupAnswer(
        key=key, seeds=[a.seed for a in arms], n_self=n_self, horizon=horizon,
        final_pass1=boot.interval([pass1(s[n_self]) for s in selfs]),
        final_tail_perplexity=boot.interval([tail_perplexity(s[n_self]) for s in selfs]),
        recovery=recovery, repair_gap=repair_gap(arms, controls, boot),
        detection=detection, mode=_mode(arms), tail_rises_first=_tail_first(arms),
        pass1_by_seed={a.seed: tuple(pass1(g) for g in s[: n_self + 1])
                       for a, s in zip(arms, selfs, strict=True)})


def answer_all(run: RunResult, boot: SeedBootstrap) -> list[GroupAnswer]:
    """One answer per self-trained arm group; a repair-only group is its twin's
    control (in `repair_gap`), not an answer of its own."""
    groups = run.arm_groups()
    return [answer_group(key, done, boot,
                         [a for a in groups.get(control_key(key), []) if a.generations])
            for key, arms in groups.items()
            if not is_control(key) and (done := [a for a in arms if a.generations])]


# ------------------------------------------------------------------ markdown
def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows)]


def render_questions(answers: Sequence[GroupAnswer], labels: dict[ArmGroupKey, str],
                     plots: dict[str, Path], boot: SeedBootstrap | None = None) -> list[str]:
    """The report's "Collapse questions" section (markdown lines); `boot` resamples the
    dose onset (default: SeedBootstrap(), as the answers' own)."""
    if not answers:
        return []
    boot = boot or SeedBootstrap()
    lines = ["## Collapse questions", "",
             "Mean over seeds [95% bootstrap interval over seeds]; generations to collapse "
             "are medians (a seed that never fell counts as later than the last generation). "
             "Definitions: docs/collapse.md.", "",
             "### Horizon: generations until pass@1 falls below 90% / 50% of generation 0", ""]
    rows = []
    for a in answers:
        cells = [labels[a.key], str(len(a.seeds))]
        for fraction in HORIZON_FRACTIONS:
            iv, never = a.horizon[fraction]
            cells.append(_gen_text(iv, never, len(a.seeds), a.n_self))
        cells += [a.final_pass1.format(), a.final_tail_perplexity.format(), a.mode,
                  a.tail_rises_first]
        rows.append(cells)
    lines += _table(["arm group", "seeds", "to 90%", "to 50%", "final pass@1",
                     "final tail ppl", "mode (last gen)", "tail ppl rise vs pass@1 fall"], rows)
    shares = sorted({a.synthetic_share for a in answers})
    if len(shares) > 1:
        lines += ["", "### Dose-response: outcome against the synthetic share", ""]
        lines += _table(["arm group", "synthetic share", "final pass@1", "final tail ppl",
                         "to 90%"],
                        [[labels[a.key], f"{a.synthetic_share:g}", a.final_pass1.format(),
                          a.final_tail_perplexity.format(),
                          _gen_text(*a.horizon[0.9], len(a.seeds), a.n_self)]
                         for a in sorted(answers, key=lambda a: a.synthetic_share)])
        lines += ["", dose_slope_text(answers)]
        for label, generation, onset in dose_onsets(answers, boot):
            where = f"{label}: " if label else ""
            lines += ["", where + onset_text(onset, f"final pass@1 (generation {generation})")]
    if any(a.recovery for a in answers):
        lines += ["", "### Repair: recovery ratio after the human-only generations", "",
                  "1 = back at generation 0, > 1 = beyond it, 0 = no better than the worst "
                  "self-training generation, < 0 = worse still; `-` = self-training did no "
                  "damage there (nothing to repair). A ratio whose damage was small is "
                  "unstable: compare the raw curves.", ""]
        lines += _table(["arm group", "pass@1", "tail perplexity", "diversity"],
                        [[labels[a.key], *(a.recovery[m].format() for m in
                                           ("pass@1", "tail perplexity", "diversity"))]
                         for a in answers if a.recovery])
        lines += ["", "The ratio compares with generation 0, so it also counts what any "
                  "training on human references adds; it says how far back the model came, "
                  "not whether the collapse left damage. The repair gap below answers that."]
    if any(a.repair_gap for a in answers):
        lines += ["", "### Repair gap: beyond repair?", "",
                  "Repaired after self-training minus repaired without it: the repair-only "
                  "control applies the same repair generations (same data draws and seeds) "
                  "to generation 0. Last generation, paired by seed [95% bootstrap over "
                  "seeds]. Below 0 on pass@k or diversity (above 0 on tail perplexity) is "
                  "damage the repair did not undo; `beyond repair` = the pass@1 gap's "
                  "interval is below 0.", ""]
        for a in answers:
            if not a.repair_gap:
                continue
            names = list(a.repair_gap)
            lines += _table(["arm group", *names, "verdict"],
                            [[labels[a.key], *(a.repair_gap[m].format() for m in names),
                              repair_verdict(a.repair_gap["pass@1"])]])
    if any(a.detection for a in answers):
        lines += ["", "### Detection: AI-vs-human in the mixed pool, per generation", ""]
        lines += _table(["arm group", "generation", "AUROC", "precision (AI)", "recall (AI)"],
                        [[labels[a.key], str(g), d["auroc"].format(), d["precision"].format(),
                          d["recall"].format()]
                         for a in answers for g, d in enumerate(a.detection, start=1)])
    for caption, path in plots.items():
        lines += ["", f"#### {caption}", "", f"![{caption}]({path.name})"]
    return [*lines, ""]


def dose_slope_text(answers: Sequence[GroupAnswer]) -> str:
    """Where final pass@1 starts falling as the synthetic share grows (seed means)."""
    by_share: dict[float, list[float]] = {}
    for a in answers:
        if a.final_pass1.mean is not None:
            by_share.setdefault(a.synthetic_share, []).append(a.final_pass1.mean)
    points = sorted((s, float(np.mean(v))) for s, v in by_share.items())
    if len(points) < 2:
        return "Too few shares for a slope."
    segments = [(s0, s1, (p1 - p0) / (s1 - s0))
                for (s0, p0), (s1, p1) in itertools.pairwise(points)]
    falling = [f"{s0:g}->{s1:g}" for s0, s1, slope in segments if slope < 0]
    text = ", ".join(f"{s0:g}->{s1:g}: {slope:+.3f}" for s0, s1, slope in segments)
    where = (f"final pass@1 falls on {', '.join(falling)}" if falling
             else "final pass@1 never falls as the share grows")
    return f"Slope of final pass@1 per unit share ({text}): {where}."


def dose_onsets(answers: Sequence[GroupAnswer], boot: SeedBootstrap
                ) -> list[tuple[str, int, DoseOnset]]:
    """(series label, generation, onset) per series of groups that differ only in
    their synthetic share, fitted at the last generation all of them reached
    (`harness.analysis.dose`); a series with too few shares is left out. The label
    names the other axes' values ('' when the run has one series)."""
    series: dict[tuple[tuple[str, Any], ...], list[GroupAnswer]] = {}
    for a in answers:
        rest = tuple(v for v in a.key.values if v[0] != "real_fraction")
        series.setdefault(rest, []).append(a)
    out = []
    for rest, group in series.items():
        generation = min(a.n_self for a in group)
        by_share = {a.synthetic_share: {seed: curve[generation]
                                        for seed, curve in a.pass1_by_seed.items()}
                    for a in group}
        onset = dose_onset(by_share, boot)
        if onset is not None:
            label = ArmGroupKey(rest).label() if len(series) > 1 else ""
            out.append((label, generation, onset))
    return out


# ------------------------------------------------------------------ plots
def question_plots(run: RunResult, answers: Sequence[GroupAnswer],
                   labels: dict[ArmGroupKey, str], out_dir: Path) -> dict[str, Path]:
    """PNGs for the questions the run has data for ({caption: path})."""
    from matplotlib.ticker import MaxNLocator

    from harness.analysis.palette import series_colours
    from harness.analysis.plots import _pyplot

    plt = _pyplot()
    groups = run.arm_groups()
    out: dict[str, Path] = {}

    def seed_curves(arms: Sequence[ArmResult], getter: Callable[[GenerationMetrics], float]
                    ) -> np.ndarray:
        """One row per seed, over the generations every seed has."""
        n = min(len(a.generations) for a in arms)
        return np.array([[getter(g) for g in a.generations[:n]] for a in arms], dtype=float)

    # (title, y label, metric, a share in [0, 1]?)
    panels: list[tuple[str, str, Callable[[GenerationMetrics], float], bool]] = [
        ("pass@1 relative to generation 0", "pass@1 / generation 0", pass1, False),
        ("tail perplexity (rarest rendering)", "perplexity", tail_perplexity, False),
        ("tail-style share of passing samples", "share", _tail_share, True),
        ("garbage rate", "share of samples", lambda g: _block(g, "collapse", "garbage_rate"),
         True),
        # Collapse at train temperature 1.0 ends in empty and truncated completions
        # more than in prose: the garbage rate alone misses it.
        ("unparsable fraction", "share of samples",
         lambda g: _block(g, "collapse", "unparsable_fraction"), True)]
    fig, grid = plt.subplots(2, 3, figsize=(13.0, 7.5))
    axes, legend_ax = list(grid.flat[:len(panels)]), grid.flat[-1]
    colours = series_colours([labels[a.key] for a in answers], [a.key.filter for a in answers])
    repair = any(a.recovery for a in answers)
    several = any(len([x for x in groups[a.key] if x.generations]) > 1 for a in answers)
    handles: list[Any] = []
    for ax, (title, ylabel, getter, share) in zip(axes, panels, strict=True):
        top = 0.0
        for a in answers:
            arms = [x for x in groups[a.key] if x.generations]
            rows = seed_curves(arms, getter)
            if title.startswith("pass@1"):
                base = rows[:, :1]
                with np.errstate(divide="ignore", invalid="ignore"):
                    rows = np.where(base > 0, rows / base, np.nan)
            with warnings.catch_warnings():  # an all-NaN column (no such metric) stays NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, low, high = (np.nanmean(rows, axis=0), np.nanmin(rows, axis=0),
                                   np.nanmax(rows, axis=0))
            if np.all(np.isnan(mean)):
                continue
            xs = np.arange(len(mean))
            colour = colours[labels[a.key]]
            (line,) = ax.plot(xs, mean, marker="o", mfc="none", color=colour,
                              label=labels[a.key])
            if len(rows) > 1:
                ax.fill_between(xs, low, high, color=colour, alpha=0.15, lw=0)
            if ax is axes[0]:
                handles.append(line)
            top = max(top, float(np.nanmax(high)))
            if a.recovery:
                ax.axvline(a.n_self + 0.5, color="0.6", lw=0.8, ls=":")
            twin = [x for x in groups.get(control_key(a.key), []) if x.generations]
            if a.repair_gap and twin:  # the repair-only control, dashed in its twin's colour
                rows = seed_curves(twin, getter)
                if title.startswith("pass@1"):
                    with np.errstate(divide="ignore", invalid="ignore"):
                        rows = np.where(rows[:, :1] > 0, rows / rows[:, :1], np.nan)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    control_mean = np.nanmean(rows, axis=0)
                (dashed,) = ax.plot(np.arange(len(control_mean)), control_mean, ls="--",
                                    marker=".", color=colour,
                                    label=f"{labels[a.key]}: repair-only control")
                if ax is axes[0]:
                    handles.append(dashed)
        ax.set_title(title, fontsize="small")
        ax.set_xlabel("generation")
        ax.set_ylabel(ylabel, fontsize="small")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if share:  # a share cannot be negative: the axis starts at 0
            ax.set_ylim(0.0, min(1.0, max(0.05, top * 1.15)))
        ax.grid(True, alpha=0.3)
    legend_ax.axis("off")
    if handles:
        axes[0].axhline(0.9, color="0.5", lw=0.8, ls="--")
        axes[0].axhline(0.5, color="0.5", lw=0.8, ls="--")
        notes = ["dashed (first panel): 90% and 50% of generation 0"]
        if several:
            notes.append("band: range over seeds")
        if repair:
            notes.append("dotted: repair starts")
        legend_ax.legend(handles=handles, loc="upper left", fontsize="small",
                         title="arm group", frameon=False)
        legend_ax.text(0.0, 0.05, "\n".join(notes), fontsize="small", va="bottom",
                       transform=legend_ax.transAxes)
        fig.suptitle(f"Horizon and tails ({run.run_id}); mean over seeds", fontsize="medium")
        fig.tight_layout()
        out["Horizon and tails"] = _save(fig, out_dir / "questions_horizon.png", plt)
    else:
        plt.close(fig)

    shares = sorted({a.synthetic_share for a in answers})
    if len(shares) > 1:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, (title, pick) in zip(axes, (("final pass@1", lambda a: a.final_pass1),
                                            ("final tail perplexity",
                                             lambda a: a.final_tail_perplexity)),
                                     strict=True):
            pts = sorted((a.synthetic_share, pick(a)) for a in answers
                         if pick(a).mean is not None)
            xs = [p[0] for p in pts]
            ys = [p[1].mean for p in pts]
            err = [[(p[1].mean - p[1].ci_low) if p[1].ci_low is not None else 0 for p in pts],
                   [(p[1].ci_high - p[1].mean) if p[1].ci_high is not None else 0
                    for p in pts]]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3)
            ax.set_xlabel("synthetic share of each generation's training set")
            ax.set_title(title + " (95% CI over seeds)", fontsize="small")
            ax.grid(True, alpha=0.3)
        fig.tight_layout()
        out["Dose-response"] = _save(fig, out_dir / "questions_dose.png", plt)

    roc = [(a, arms) for a in answers if a.detection
           for arms in [[x for x in groups[a.key] if x.generations]]]
    if roc:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        for a, arms in roc:
            for g in range(1, a.n_self + 1):
                record = self_training(arms[0])[g].record
                det = (record.detection if record else None) or {}
                points = det.get("roc") or []
                if points:
                    ax.plot([p[0] for p in points], [p[1] for p in points],
                            label=f"{labels[a.key]}, gen {g} (seed {arms[0].seed})")
        ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=0.8)
        ax.set_xlabel("false positive rate (human judged AI)")
        ax.set_ylabel("true positive rate (AI judged AI)")
        ax.legend(fontsize="x-small")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        out["Detector ROC per generation"] = _save(fig, out_dir / "questions_roc.png", plt)
    return out


def _tail_share(g: GenerationMetrics) -> float:
    from tasks.renderings import TAIL_STYLE

    return _block(g, "renderings", "shares", TAIL_STYLE)


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
