"""`report`: a markdown summary of one run, with its PNG plots next to it.

The markdown opens with what was run (model, suites, seeds) and a ranking of the
arm groups by area under the pass@1 curve (the leaderboard's rank), then embeds
the plots, then gives one table per arm group: generation x pass@k, diversity,
perplexity and filter statistics, each as `mean [95% CI]` across seeds, followed
by the collapse summaries. Numbers come from harness.stats, the same code as the
leaderboard, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BadInput
from harness.plots import all_plots, group_labels
from harness.runs import ArmGroupKey, RunResult, load_run
from harness.stats import DEFAULT_BOOT_SEED, DEFAULT_N_BOOT, GroupStats, Interval, group_stats


@dataclass(frozen=True)
class Report:
    """Where a report was written."""

    markdown: Path
    plots: dict[str, Path]   # caption -> PNG
    n_groups: int


def _fmt_gen(iv: Interval) -> str:
    """first_gen_below_half: integers; a null bound means 'not within the run'."""
    if iv.mean is None and iv.ci_low is None and iv.ci_high is None:
        return "never"

    def num(v: float | None) -> str:
        return "never" if v is None else f"{v:.0f}"

    if iv.ci_low is None and iv.ci_high is None:
        return num(iv.mean)
    return f"{num(iv.mean)} [{num(iv.ci_low)}, {num(iv.ci_high)}]"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(r) + " |" for r in rows)]


def _rank_order(stats: dict[ArmGroupKey, GroupStats]) -> list[ArmGroupKey]:
    def key(k: ArmGroupKey) -> tuple[bool, float, str]:
        auc = stats[k].collapse["pass1_auc"].mean
        return (auc is None, -(auc or 0.0), k.label())

    return sorted(stats, key=key)


def _collapse_cells(st: GroupStats) -> list[str]:
    c = st.collapse
    return [c["pass1_auc"].format(), c["pass1_slope"].format(4),
            _fmt_gen(c["first_gen_below_half"]), c["diversity_retention"].format()]


_COLLAPSE_HEADER = ["pass@1 AUC", "pass@1 slope / gen", "first gen below half of gen 0",
                    "diversity retention"]


def _group_section(key: ArmGroupKey, arms_complete: bool, st: GroupStats) -> list[str]:
    ks = st.ks
    seeds = ", ".join(map(str, st.seeds))
    status = "complete" if arms_complete else "incomplete (some generations missing)"
    lines = [f"### {key.label()}", "",
             f"seeds {seeds}; {len(st.generations)} generation(s) used; {status}.", ""]
    header = ["gen", *(f"pass@{k}" for k in ks), "diversity", "perplexity",
              "filter acceptance", "filter precision"]
    rows = [[str(g.generation), *(g.pass_at_k[k].format() for k in ks), g.diversity.format(),
             g.perplexity.format(2), g.filter_acceptance_rate.format(),
             g.filter_precision.format()] for g in st.generations]
    lines += _table(header, rows)
    lines += ["", "Collapse summary:", ""]
    lines += _table(_COLLAPSE_HEADER, [_collapse_cells(st)])
    return [*lines, ""]


def render_markdown(run: RunResult, stats: dict[ArmGroupKey, GroupStats],
                    plots: dict[str, Path]) -> str:
    """The report's markdown; `plots` ({caption: PNG}) lie next to it."""
    groups = run.arm_groups()
    labels = group_labels(list(stats)).labels
    n_seeds = sorted({len(st.seeds) for st in stats.values()})
    any_st = next(iter(stats.values()))
    lines = [
        f"# Collapse report: run {run.run_id}",
        "",
        f"- model: `{run.model}`",
        f"- self-training on `{run.train_suite}/{run.train_split}`, "
        f"scored on `{run.eval_suite}/{run.eval_split}`",
        f"- {len(run.arms)} arm(s) in {len(stats)} arm group(s); seeds per group: "
        f"{', '.join(map(str, n_seeds))}",
        f"- harness {run.harness_version}, config hash `{run.config_hash}`",
        "",
        "Cells read `mean [95% CI]`: mean over seeds, percentile bootstrap interval "
        f"({any_st.n_boot} replicates, seed {any_st.boot_seed}) resampling seeds and eval "
        "problems; no interval where there is nothing to resample. AUC = trapezoidal area "
        "under pass@1 vs generation / number of self-training generations (a mean pass@1). "
        "'never' = pass@1 stayed above half of generation 0 for the whole run.",
        "",
        "## Ranking (by area under the pass@1 curve)",
        "",
    ]
    ranked = _rank_order(stats)
    lines += _table(["rank", "arm group", "seeds", *_COLLAPSE_HEADER],
                    [[str(i), labels[k], str(len(stats[k].seeds)), *_collapse_cells(stats[k])]
                     for i, k in enumerate(ranked, start=1)])
    lines += ["", "## Plots", ""]
    for caption, path in plots.items():
        lines += [f"### {caption}", "", f"![{caption}]({path.name})", ""]
    lines += ["## Per arm group", ""]
    for key in ranked:
        lines += _group_section(key, all(a.complete for a in groups[key]), stats[key])
    return "\n".join(lines)


def write_report(run_dir: str | Path, out_dir: str | Path | None = None, *,
                 n_boot: int = DEFAULT_N_BOOT, boot_seed: int = DEFAULT_BOOT_SEED) -> Report:
    """Write `report.md` and the PNG plots for one run (default: RUN_DIR/report)."""
    from harness.store import atomic_write_text

    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.path / "report"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create report directory {out}: {exc.strerror}") from None
    stats = {key: group_stats(done, n_boot=n_boot, seed=boot_seed)
             for key, arms in run.arm_groups().items()
             if (done := [a for a in arms if a.generations])}
    plots = all_plots(run, stats, out)
    markdown = out / "report.md"
    atomic_write_text(markdown, render_markdown(run, stats, plots) + "\n")
    return Report(markdown=markdown, plots=plots, n_groups=len(stats))
