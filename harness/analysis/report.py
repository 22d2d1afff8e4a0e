"""`report`: a markdown summary of one run, with its PNG plots next to it.

The markdown opens with what was run (model, suites, seeds), what is incomplete,
and a ranking of the arm groups by area under the pass@1 curve (the leaderboard's
order), then embeds the plots, then gives one table per arm group: generation x
pass@k, diversity, perplexity and filter statistics, each as `mean [95% CI]`
across seeds, followed by the collapse summaries. Numbers come from
harness.analysis.stats, the same code as the leaderboard, so the two never disagree.

Ties: an order is not a ranking when the difference is noise. Each group is
compared with the one ranked just above it by a paired bootstrap of the AUC
difference (same seeds and problems in each replicate, `paired_auc_difference`);
when that 95% interval contains 0 the two share a rank, shown as `2=`.

A run scored with `--also-eval SUITE` gets, after the per-group tables, one section
per such suite: a table per arm group of greedy pass@1 and perplexity per
generation (harness.analysis.also_eval, the same bootstrap), each interval named by
what it resamples. The primary suite stays the headline: the ranking ignores them.

A run sampled with `--watermark` gets a watermark section after the per-group
tables (harness.analysis.watermark_report): per generation the mark's pass@1 cost,
its detection AUROC and the radioactivity of the model's unmarked samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.analysis.also_eval import also_eval_stats, interval_over, run_suites
from harness.analysis.board import FLOOR_PASS1
from harness.analysis.plots import all_plots, group_labels
from harness.analysis.questions import SeedBootstrap, answer_all, question_plots, render_questions
from harness.analysis.stats import (
    DEFAULT_BOOT_SEED,
    DEFAULT_N_BOOT,
    NEVER_FELL,
    GroupStats,
    Interval,
    generation_text,
    group_stats,
    paired_auc_difference,
)
from harness.analysis.watermark_report import watermark_lines
from harness.errors import BadInput
from harness.runfiles.runs import ArmGroupKey, RunResult, load_run


@dataclass(frozen=True)
class Report:
    """Where a report was written."""

    markdown: Path
    plots: dict[str, Path]   # caption -> PNG
    n_groups: int
    incomplete: list[str]    # arms without every planned generation (see RunResult.incomplete)
    skipped_incomplete: bool
    also_eval: tuple[str, ...] = ()  # --also-eval suites with a section in the report


def _fmt_gen(iv: Interval) -> str:
    """first_gen_below_half: integers; a null bound means 'not within the run'."""
    if iv.mean is None and iv.ci_low is None and iv.ci_high is None:
        return NEVER_FELL
    num = generation_text

    if iv.ci_low is None and iv.ci_high is None:
        return num(iv.mean)
    return f"{num(iv.mean)} [{num(iv.ci_low)}, {num(iv.ci_high)}]"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(r) + " |" for r in rows)]


def _at_floor(st: GroupStats) -> bool:
    """Generation-0 pass@1 below the board's floor (harness.analysis.board.FLOOR_PASS1)."""
    if not st.generations or 1 not in st.generations[0].pass_at_k:
        return False
    mean = st.generations[0].pass_at_k[1].mean
    return mean is not None and mean < FLOOR_PASS1


def _rank_order(stats: dict[ArmGroupKey, GroupStats]) -> list[ArmGroupKey]:
    def key(k: ArmGroupKey) -> tuple[bool, float, str]:
        auc = stats[k].collapse["pass1_auc"].mean
        return (auc is None, -(auc or 0.0), k.label())

    return sorted(stats, key=key)


@dataclass(frozen=True)
class Ranked:
    """One row of the ranking: its rank (shared by ties) and the paired difference
    of its AUC from the row above (None for the first row)."""

    key: ArmGroupKey
    rank: int
    tied: bool
    diff_above: Interval | None

    @property
    def rank_text(self) -> str:
        return f"{self.rank}=" if self.tied else str(self.rank)


def rank_groups(run: RunResult, stats: dict[ArmGroupKey, GroupStats]) -> list[Ranked]:
    """Groups by AUC, highest first; adjacent groups whose paired AUC difference has
    a 95% interval containing 0 share a rank (a run of such groups shares the first
    one's rank). Without an interval (nothing to resample) the order stands."""
    groups = run.arm_groups()
    order = _rank_order(stats)
    out: list[Ranked] = []
    for i, key in enumerate(order):
        if i == 0:
            out.append(Ranked(key, 1, False, None))
            continue
        above = out[-1]
        st = stats[key]
        diff = paired_auc_difference([a for a in groups[above.key] if a.generations],
                                     [a for a in groups[key] if a.generations],
                                     n_boot=st.n_boot, seed=st.boot_seed)
        tie = (diff.ci_low is not None and diff.ci_high is not None
               and diff.ci_low <= 0.0 <= diff.ci_high)
        if tie:
            out[-1] = Ranked(above.key, above.rank, True, above.diff_above)
            out.append(Ranked(key, above.rank, True, diff))
        else:
            out.append(Ranked(key, i + 1, False, diff))
    return out


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


def _incomplete_lines(incomplete: list[str], skipped: bool) -> list[str]:
    if not incomplete:
        return []
    what = ("left out of every table and plot (--skip-incomplete)" if skipped else
            "included with the generations they have, and marked (incomplete); a group's "
            "curves stop at the last generation all of its seeds finished")
    return ["## Incomplete arms", "",
            f"This run is incomplete: {len(incomplete)} arm(s) lack planned generations, {what}.",
            "", *(f"- {line}" for line in incomplete), ""]


AlsoStats = dict[str, dict[ArmGroupKey, GroupStats]]
"""--also-eval suite -> arm group -> its statistics on that suite."""


def _also_group_lines(suite: str, name: str, st: GroupStats) -> list[str]:
    """One arm group's table on one also-eval suite; each header names its estimand,
    since pass@1 resamples problems and perplexity only seeds."""
    seeds = ", ".join(map(str, st.seeds))
    header = ["gen", f"greedy pass@1 [{interval_over(st, per_problem=True)}]",
              f"perplexity [{interval_over(st, per_problem=False)}]"]
    rows = [[str(g.generation), g.pass_at_k.get(1, Interval(None)).format(),
             g.perplexity.format(2)] for g in st.generations]
    return [f"### `{suite}`: {name}", "",
            f"seeds {seeds}; {len(st.generations)} generation(s).", "",
            *_table(header, rows), ""]


def _also_eval_lines(run: RunResult, order: Sequence[ArmGroupKey], names: dict[ArmGroupKey, str],
                     also: AlsoStats) -> list[str]:
    """The also-eval sections: per suite, its tables in the primary ranking's order,
    under a title that says the primary suite is the headline (so nobody reads a
    secondary suite's numbers as the result)."""
    primary = f"{run.eval_suite}/{run.eval_split}"
    lines: list[str] = []
    for suite, by_group in also.items():
        lines += [f"## Also-eval suite `{suite}` (secondary; the primary suite `{primary}` "
                  "is the headline)", "",
                  "Greedy pass@1 on every problem of the suite and perplexity on its "
                  "references, per generation (`run --also-eval`). Not used for the "
                  "ranking or the collapse summaries above. Cells read `mean [95% CI]`, "
                  "with what the interval resamples in the column header.", ""]
        for key in order:
            if key in by_group:
                lines += _also_group_lines(suite, names[key], by_group[key])
    return lines


def render_markdown(run: RunResult, stats: dict[ArmGroupKey, GroupStats],
                    plots: dict[str, Path], incomplete: list[str] | None = None,
                    skipped: bool = False, also: AlsoStats | None = None) -> str:
    """The report's markdown; `plots` ({caption: PNG}) lie next to it; `also`: the
    --also-eval statistics (`also_stats`), shown after the primary tables."""
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
        *_incomplete_lines(incomplete or [], skipped),
        "## Ranking (by area under the pass@1 curve)",
        "",
        "`2=`: tied. The difference to the group above is a paired bootstrap (same seeds "
        "and problems for both groups in every replicate); where its 95% interval contains "
        "0 the groups share a rank.",
        "",
    ]
    if any(_at_floor(st) for st in stats.values()):
        lines += [f"(at the floor): generation-0 pass@1 below {FLOOR_PASS1:g}. Such a group "
                  "has almost nothing to lose, so a flat curve there is no evidence against "
                  "collapse; the model board leaves such models out of its collapse ranks.",
                  ""]
    ranking = rank_groups(run, stats)
    ranked = [r.key for r in ranking]

    def name(k: ArmGroupKey) -> str:
        return (labels[k] + ("" if all(a.complete for a in groups[k]) else " (incomplete)")
                + (" (at the floor)" if _at_floor(stats[k]) else ""))

    lines += _table(["rank", "arm group", "seeds", *_COLLAPSE_HEADER,
                     "AUC difference to the group above"],
                    [[r.rank_text, name(r.key), str(len(stats[r.key].seeds)),
                      *_collapse_cells(stats[r.key]),
                      "-" if r.diff_above is None else r.diff_above.format()]
                     for r in ranking])
    lines += ["", "## Plots", ""]
    for caption, path in plots.items():
        lines += [f"### {caption}", "", f"![{caption}]({path.name})", ""]
    lines += ["## Per arm group", ""]
    for key in ranked:
        lines += _group_section(key, all(a.complete for a in groups[key]), stats[key])
    lines += watermark_lines(run, ranked, {k: name(k) for k in ranked})
    lines += _also_eval_lines(run, ranked, {k: name(k) for k in ranked}, also or {})
    return "\n".join(lines)


def _all_stats(run: RunResult, n_boot: int, boot_seed: int) -> dict[ArmGroupKey, GroupStats]:
    return {key: group_stats(done, n_boot=n_boot, seed=boot_seed)
            for key, arms in run.arm_groups().items()
            if (done := [a for a in arms if a.generations])}


def also_stats(run: RunResult, n_boot: int, boot_seed: int) -> AlsoStats:
    """Statistics of every arm group on every --also-eval suite of the run ({} without)."""
    out: AlsoStats = {}
    for suite in run_suites(run):
        by_group = {key: st for key, arms in run.arm_groups().items()
                    if (st := also_eval_stats([a for a in arms if a.generations], suite,
                                              n_boot=n_boot, seed=boot_seed)) is not None}
        if by_group:
            out[suite] = by_group
    return out


def write_report(run_dir: str | Path, out_dir: str | Path | None = None, *,
                 n_boot: int = DEFAULT_N_BOOT, boot_seed: int = DEFAULT_BOOT_SEED,
                 skip_incomplete: bool = False) -> Report:
    """Write `report.md` and the PNG plots for one run (default: RUN_DIR/report).

    Incomplete arms are included and marked, or left out with `skip_incomplete`;
    either way the report lists them (and `Report.incomplete` returns them).
    """
    from harness.atomic import atomic_write_text
    from harness.runfiles.outputs import check_output_dir

    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.path / "report"
    check_output_dir(out, "report directory")
    incomplete = run.incomplete()
    if skip_incomplete:
        run = run.without_incomplete()
        if not run.arms:
            raise BadInput(f"{run.path}: every arm is incomplete; nothing left to report "
                           "(drop --skip-incomplete)")
    stats = _all_stats(run, n_boot, boot_seed)
    plots = all_plots(run, stats, out)
    boot = SeedBootstrap(n_boot, boot_seed)
    answers = answer_all(run, boot)
    labels = group_labels(list(stats)).labels
    question_pngs = question_plots(run, answers, labels, out)
    markdown = out / "report.md"
    also = also_stats(run, n_boot, boot_seed)
    atomic_write_text(markdown, "\n".join([
        render_markdown(run, stats, plots, incomplete, skip_incomplete, also),
        *render_questions(answers, labels, question_pngs, boot)]) + "\n")
    plots = {**plots, **question_pngs}
    return Report(markdown=markdown, plots=plots, n_groups=len(stats), incomplete=incomplete,
                  skipped_incomplete=skip_incomplete, also_eval=tuple(also))


def comparison_table(run: RunResult, *, n_boot: int = 1000,
                     boot_seed: int = DEFAULT_BOOT_SEED) -> str:
    """One plain-text table across the arm groups (what `ablate` ends with): rank (ties
    marked), pass@1 AUC, slope, first generation below half, diversity retention, each
    with its 95% interval where there is something to resample."""
    stats = _all_stats(run, n_boot, boot_seed)
    labels = group_labels(list(stats)).labels
    groups = run.arm_groups()
    header = ["rank", "arm group", "seeds", "pass@1 AUC", "slope/gen", "below half at",
              "diversity retention"]
    rows = []
    for r in rank_groups(run, stats):
        c = stats[r.key].collapse
        name = labels[r.key] + ("" if all(a.complete for a in groups[r.key]) else
                                " (incomplete)")
        rows.append([r.rank_text, name, str(len(stats[r.key].seeds)), c["pass1_auc"].format(),
                     c["pass1_slope"].format(4), _fmt_gen(c["first_gen_below_half"]),
                     c["diversity_retention"].format()])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["comparison of arm groups (mean [95% CI]; rank n= : tied with the row above "
             "by a paired bootstrap)",
             "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
             *("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)]
    return "\n".join(line.rstrip() for line in lines)
