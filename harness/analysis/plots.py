"""PNG plots of one run's arm groups (matplotlib, Agg backend: no display needed).

Every plot has the model and the train -> eval suites in its title and axis
labels in words. Legends name the arm groups by what differs between them (the
legend title says which dimensions those are); what all groups share is in the
note under the plot, with what the error bands are. Bands are bootstrap 95%
intervals (harness.analysis.stats) and appear only where there is something to resample.

A big ablation grid (more than MAX_SINGLE_PANEL arm groups over several
dimensions) is drawn as small multiples: one panel per combination of the other
dimensions (e.g. regime x real fraction), one colour per filter, the same colour
for the same filter in every panel, shared y axis, one legend.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.analysis.palette import series_colours
from harness.analysis.stats import GroupStats, Interval
from harness.config import axis_named, group_dimensions
from harness.runfiles.runs import ArmGroupKey, RunResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

MAX_SINGLE_PANEL = 8   # more arm groups than this (over several dimensions): small multiples
MAX_BANDS = 4          # more overlapping bands than this turn into mud: dodged error bars
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p")
"""One marker shape per series, drawn hollow: every arm of a seed shares generation 0
(the same base model), so its points coincide; distinct hollow shapes stay visible
on top of each other where identical filled dots would hide all but the last."""
PERPLEXITY_AXIS: dict[str, Any] = {"decimals": 2, "min_span": 0.05}
"""Perplexity near 1 moves in the third decimal; ticks at 2 decimals over a span of at
least 0.05 keep that from looking like a trend."""
HATCHES = ("//", "\\\\", "..", "xx", "--", "||", "++", "oo")
"""One hatch per band, with edges in the series colour: two translucent fills
overlapping blend into a third colour that belongs to neither arm."""


def _dim_name(dim: str) -> str:
    axis = axis_named(dim)
    return axis.title or axis.name


def _dim_value(key: ArmGroupKey, dim: str, short: bool = True) -> str:
    return axis_named(dim).show(key.get(dim), short)


def _varying(keys: Sequence[ArmGroupKey]) -> list[str]:
    """The dimensions (arm group axes, `harness.config.group_dimensions`) that differ."""
    return [d for d in group_dimensions() if len({k.get(d) for k in keys}) > 1]


@dataclass(frozen=True)
class Legend:
    """Legend names say only what differs between arm groups; the rest goes in a note."""

    labels: dict[ArmGroupKey, str]
    title: str           # e.g. "filter" or "filter / regime"
    shared: str          # e.g. "regime replace, real fraction 0, restart merge"


def group_labels(keys: Sequence[ArmGroupKey], dims: Sequence[str] | None = None) -> Legend:
    """Short names from `dims` (default: the dimensions that differ between the groups)."""
    shown = list(dims) if dims is not None else (_varying(keys) or ["filter"])
    fixed = [d for d in group_dimensions() if d not in _varying(keys) and d not in shown]
    shared = ", ".join(_dim_value(keys[0], d, short=False) for d in fixed) if keys else ""
    return Legend(labels={k: " / ".join(_dim_value(k, d) for d in shown) for k in keys},
                  title=" / ".join(_dim_name(d) for d in shown), shared=shared)


@dataclass(frozen=True)
class Series:
    """One arm group as the plots see it."""

    label: str
    stats: GroupStats
    color: Any


@dataclass(frozen=True)
class Panel:
    """One axes' worth of series; `title` is empty for a single-panel figure."""

    title: str
    series: list[Series]


@dataclass(frozen=True)
class Canvas:
    """What every plot of one run shares: titles, panels, legend, colours."""

    run: RunResult
    panels: list[Panel]
    legend: Legend

    @property
    def series(self) -> list[Series]:
        return [s for p in self.panels for s in p.series]

    def title(self, what: str) -> str:
        return f"{what}\nmodel {self.run.model}, {self.run.suite_label}"

    def shared_note(self) -> str:
        return f"all arms: {self.legend.shared}" if self.legend.shared else ""

    def note(self, by_problem: bool) -> str:
        """The line under a plot: shared arm settings and what the bands are."""
        seeds = sorted({len(s.stats.seeds) for s in self.series})
        problems = max((s.stats.n_problems for s in self.series), default=0) if by_problem else 0
        banded = max(len(p.series) for p in self.panels) <= MAX_BANDS
        shape = "bands" if banded else "error bars"
        if seeds == [1] and not problems:
            bands = f"one seed: no {shape}"
        else:
            bands = f"{shape}: bootstrap 95% CI over {'/'.join(map(str, seeds))} seed(s)"
            if problems:
                bands += f" and {problems} eval problems"
        shared = self.shared_note()
        return f"{shared}; {bands}" if shared else bands


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def make_canvas(run: RunResult, stats: dict[ArmGroupKey, GroupStats]) -> Canvas:
    """Lay the arm groups out: one panel, or small multiples for a big grid."""
    keys = list(stats)
    varying = _varying(keys)
    colour_dim = "filter" if "filter" in varying or not varying else varying[0]
    facets = [d for d in varying if d != colour_dim] if len(keys) > MAX_SINGLE_PANEL else []
    if not facets:
        legend = group_labels(keys)
        colours = series_colours([k.label() for k in keys], [k.filter for k in keys])
        series = [Series(legend.labels[k], stats[k], colours[k.label()]) for k in keys]
        return Canvas(run, [Panel("", series)], legend)
    legend = group_labels(keys, [colour_dim])
    values = list(dict.fromkeys(str(k.get(colour_dim)) for k in keys))
    colour = series_colours(values, values if colour_dim == "filter" else None)
    panels: dict[str, list[Series]] = {}
    for k in sorted(keys, key=lambda k: tuple(k.get(d) for d in facets)):
        title = ", ".join(_dim_value(k, d, short=False) for d in facets)
        panels.setdefault(title, []).append(
            Series(legend.labels[k], stats[k], colour[str(k.get(colour_dim))]))
    return Canvas(run, [Panel(t, s) for t, s in panels.items()], legend)


Draw = Callable[["Axes", Sequence[Series]], bool]


def _figure(canvas: Canvas, out: Path, *, title: str, xlabel: str, ylabel: str, note: str,
            draw: Draw, generations_axis: bool, square: bool = False) -> Path | None:
    """Draw every panel with `draw`, add labels, one legend and the note; save the PNG."""
    plt = _pyplot()
    n = len(canvas.panels)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    base = (7.5, 6.0) if square else (8.0, 5.0)
    size = base if n == 1 else (4.6 * cols, (4.6 if square else 3.6) * rows)
    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False, sharex=n > 1,
                             sharey=n > 1)
    flat = list(axes.flat)
    drawn = False
    for ax, panel in zip(flat, canvas.panels, strict=False):
        drawn = draw(ax, panel.series) or drawn
        if panel.title:
            ax.set_title(panel.title, fontsize="small")
        ax.grid(True, alpha=0.3)
        if generations_axis:
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in flat[n:]:
        ax.set_visible(False)
    if not drawn:
        plt.close(fig)
        return None
    for i, ax in enumerate(flat[:n]):
        if i + cols >= n:  # nothing below it: label the x axis, show its ticks
            ax.set_xlabel(xlabel)
            ax.xaxis.set_tick_params(labelbottom=True)
        if i % cols == 0:
            ax.set_ylabel(ylabel)
    handles: dict[str, Any] = {}
    for ax in flat[:n]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if n == 1:
        fig.suptitle(canvas.title(title), fontsize="medium")
        outside = len(handles) > 6
        flat[0].legend(handles.values(), handles.keys(), title=canvas.legend.title,
                       fontsize="small", loc="upper left" if outside else "best",
                       bbox_to_anchor=(1.01, 1.0) if outside else None)
    else:
        fig.suptitle(canvas.title(title), fontsize="large")
        fig.tight_layout(rect=(0, 0, 1, 0.95))
        fig.legend(handles.values(), handles.keys(), title=canvas.legend.title,
                   fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 0.93))
    fig.text(0.01, 0.0, note, fontsize="x-small", color="0.3", ha="left", va="top")
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


# ------------------------------------------------------------------ what is drawn


def _curve(values: Callable[[GroupStats], list[Interval]], decimals: int | None = None,
           min_span: float = 0.0) -> Draw:
    """Mean and CI per series vs generation.

    Up to MAX_BANDS series per panel get hatched bands (see HATCHES); more get error
    bars, each series shifted a little along x so the bars do not sit on top of each
    other. Markers differ per series (see MARKERS). `decimals` fixes the y tick
    labels' precision and `min_span` the smallest y range, so a metric that barely
    moves (perplexity around 1.04) is not drawn with 4-decimal ticks that make
    noise look like a trend.
    """
    def draw(ax: Axes, series: Sequence[Series]) -> bool:
        drawn = False
        bands = len(series) <= MAX_BANDS
        for i, s in enumerate(series):
            points = [(g.generation, iv) for g, iv in zip(s.stats.generations, values(s.stats),
                                                          strict=True) if iv.mean is not None]
            if not points:
                continue
            drawn = True
            dodge = 0.0 if bands else 0.3 * (i / max(len(series) - 1, 1) - 0.5)
            xs = [g + dodge for g, _ in points]
            ax.plot(xs, [iv.mean for _, iv in points], marker=MARKERS[i % len(MARKERS)],
                    markersize=7 if bands else 5, markerfacecolor="none", markeredgewidth=1.4,
                    color=s.color, label=s.label)
            ci = [(x, iv) for x, (_, iv) in zip(xs, points, strict=True)
                  if iv.ci_low is not None and iv.ci_high is not None]
            if not ci:
                continue
            mid = [iv.mean for _, iv in ci]
            lo = [iv.ci_low for _, iv in ci]
            hi = [iv.ci_high for _, iv in ci]
            if bands:
                band_x = [x for x, _ in ci]
                ax.fill_between(band_x, lo, hi, color=s.color, alpha=0.10, linewidth=0)
                ax.fill_between(band_x, lo, hi, facecolor="none", edgecolor=s.color,
                                hatch=HATCHES[i % len(HATCHES)], linewidth=0.8, alpha=0.7)
            else:
                ax.errorbar([x for x, _ in ci], mid,
                            yerr=[[m - low for m, low in zip(mid, lo, strict=True)],
                                  [high - m for m, high in zip(mid, hi, strict=True)]],
                            fmt="none", ecolor=s.color, elinewidth=0.9, capsize=2, alpha=0.7)
        if drawn:
            _format_y(ax, decimals, min_span)
        return drawn

    return draw


def _format_y(ax: Axes, decimals: int | None, min_span: float) -> None:
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator

    low, high = ax.get_ylim()
    if high - low < min_span:
        middle = (low + high) / 2
        ax.set_ylim(middle - min_span / 2, middle + min_span / 2)
    if decimals is not None:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
        ax.yaxis.set_major_formatter(FormatStrFormatter(f"%.{decimals}f"))


def _filter_points(ax: Axes, series: Sequence[Series]) -> bool:
    """Acceptance vs precision per generation >= 1; markers grow with the generation;
    with few groups each is named next to its last point, so clusters stay readable."""
    drawn = False
    for s in series:
        pts = [(g.generation, g.filter_acceptance_rate.mean, g.filter_precision.mean)
               for g in s.stats.generations if g.filter_acceptance_rate.mean is not None
               and g.filter_precision.mean is not None]
        if not pts:
            continue
        drawn = True
        xs = [p[1] for p in pts]
        ys = [p[2] for p in pts]
        ax.plot(xs, ys, color=s.color, alpha=0.5, linewidth=1)
        ax.scatter(xs, ys, s=[20 + 25 * p[0] for p in pts], color=s.color, label=s.label,
                   edgecolors="white", linewidths=0.5, zorder=3)
        if len(series) <= MAX_BANDS:  # more names than this collide; the legend has them
            ax.annotate(s.label, (xs[-1], ys[-1]), textcoords="offset points", xytext=(8, -4),
                        fontsize="x-small", color=s.color)
    ax.set_xlim(-0.02, 1.1)
    ax.set_ylim(-0.02, 1.05)
    return drawn


def _diversity_path(ax: Axes, series: Sequence[Series]) -> bool:
    """Diversity against pass@1, a path through the generations (ring: generation 0)."""
    drawn = False
    for i, s in enumerate(series):
        pts = [(g.generation, g.pass_at_k[1].mean, g.diversity.mean)
               for g in s.stats.generations
               if 1 in g.pass_at_k and g.pass_at_k[1].mean is not None
               and g.diversity.mean is not None]
        if not pts:
            continue
        drawn = True
        ax.plot([p[1] for p in pts], [p[2] for p in pts], marker=MARKERS[i % len(MARKERS)],
                markerfacecolor="none", color=s.color, label=s.label)
        ax.scatter([pts[0][1]], [pts[0][2]], s=140, facecolors="none", edgecolors=s.color,
                   linewidths=1.5)
        # every generation numbered for a few groups; only the last one for many
        for g, x, y in pts if len(series) <= MAX_BANDS else pts[-1:]:
            ax.annotate(str(g), (x, y), textcoords="offset points", xytext=(5, 4),
                        fontsize="small", color=s.color)
    return drawn


_GEN = "generation (0 = base model)"
_DIVERSITY = "diversity (mean pairwise token edit dissimilarity)"


def all_plots(run: RunResult, stats: dict[ArmGroupKey, GroupStats], out_dir: Path
              ) -> dict[str, Path]:
    """Write every plot that has data; returns {caption: path}.

    Files: pass_at_<k>.png per k, diversity.png, perplexity.png,
    filter_acceptance.png, diversity_vs_pass1.png.
    """
    canvas = make_canvas(run, stats)
    div_by_problem = any(s.problem_resampled_diversity for s in stats.values())
    made: dict[str, Path | None] = {}
    for k in sorted({k for st in stats.values() for k in st.ks}):
        made[f"pass@{k} vs generation"] = _figure(
            canvas, out_dir / f"pass_at_{k}.png", title=f"pass@{k} vs generation",
            xlabel=_GEN, ylabel=f"pass@{k} on held-out eval problems",
            note=canvas.note(True), generations_axis=True,
            draw=_curve(lambda st, k=k: st.curve("pass@k", k)))
    made["diversity vs generation"] = _figure(
        canvas, out_dir / "diversity.png", title="Diversity vs generation", xlabel=_GEN,
        ylabel=_DIVERSITY, note=canvas.note(div_by_problem), generations_axis=True,
        draw=_curve(lambda st: st.curve("diversity")))
    made["perplexity vs generation"] = _figure(
        canvas, out_dir / "perplexity.png", title="Perplexity vs generation", xlabel=_GEN,
        ylabel="perplexity on held-out human reference solutions", note=canvas.note(False),
        generations_axis=True,
        draw=_curve(lambda st: st.curve("perplexity"), **PERPLEXITY_AXIS))
    made["filter acceptance vs precision"] = _figure(
        canvas, out_dir / "filter_acceptance.png",
        title="Filter acceptance vs precision (larger marker = later generation)",
        xlabel="filter acceptance rate (kept / candidates)",
        ylabel="filter precision (kept samples that pass the full tests)",
        note=canvas.shared_note(), draw=_filter_points, generations_axis=False, square=True)
    made["diversity vs pass@1"] = _figure(
        canvas, out_dir / "diversity_vs_pass1.png",
        title="Diversity vs pass@1 (numbers: generation; ring: generation 0)",
        xlabel="pass@1 on held-out eval problems", ylabel=_DIVERSITY,
        note=canvas.shared_note(), draw=_diversity_path, generations_axis=False, square=True)
    return {caption: path for caption, path in made.items() if path is not None}
