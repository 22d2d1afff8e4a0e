"""`report`: the markdown summary and its PNG plots, written from hand-made runs."""

from __future__ import annotations

import math
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from harness.analysis.plots import all_plots, make_canvas
from harness.analysis.report import write_report
from harness.analysis.stats import group_stats
from harness.errors import BadInput
from harness.runfiles.runs import load_run
from tests.run_fixtures import UNVERIFIED, VERIFIED, ArmSpec, RunSpec, read_json, write_run

REPO = Path(__file__).resolve().parent.parent
PLOTS = {"pass_at_1.png", "pass_at_5.png", "diversity.png", "perplexity.png",
         "filter_acceptance.png", "diversity_vs_pass1.png", "questions_horizon.png"}


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG header; fails on anything that is not a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = write_run(tmp_path_factory.mktemp("results"))
    result = write_report(run, n_boot=200)
    assert result.markdown == run / "report" / "report.md"
    assert result.n_groups == 2
    return run / "report"


def test_all_plots_are_written_as_real_images(report_dir: Path) -> None:
    assert {p.name for p in report_dir.glob("*.png")} == PLOTS
    for name in PLOTS:
        width, height = png_size(report_dir / name)
        assert width >= 600 and height >= 400, name
        assert (report_dir / name).stat().st_size > 15_000, name  # not an empty canvas
    # issue 25: the horizon figure was 2739x436, five panels in a row, unreadable in
    # report.md; it is a 2 x 3 grid now, its legend in a cell of its own
    width, height = png_size(report_dir / "questions_horizon.png")
    assert width / height < 2.0 and width <= 1600, (width, height)


def test_markdown_embeds_every_plot_and_ranks_groups(report_dir: Path) -> None:
    text = (report_dir / "report.md").read_text()
    embedded = set(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text))
    assert embedded == PLOTS
    assert "model: `builtin:tiny`" in text
    assert "`synth/train`" in text and "`synth/eval`" in text
    ranking = text.split("## Ranking")[1].split("## Plots")[0]
    assert ranking.index("| 1 | tests |") < ranking.index("| 2 | none |")


def test_markdown_has_a_generation_table_per_arm_group(report_dir: Path) -> None:
    text = (report_dir / "report.md").read_text()
    section = text.split("### none / replace / real 0 / restart merge")[1]
    header = "| gen | pass@1 | pass@5 | diversity | perplexity | filter acceptance | " \
             "filter precision |"
    assert header in section
    rows = [line for line in section.splitlines() if re.match(r"\| [0-9]+ \| ", line)]
    assert [r.split(" | ")[0] for r in rows[:4]] == ["| 0", "| 1", "| 2", "| 3"]
    # cells are "mean [low, high]" with three seeds
    assert re.search(r"\| 3 \| 0\.\d{3} \[0\.\d{3}, 0\.\d{3}\] \|", section)
    assert "Collapse summary:" in section
    assert "| pass@1 AUC | pass@1 slope / gen |" in section


def test_single_seed_report_has_values_without_intervals(tmp_path: Path) -> None:
    spec = RunSpec(seeds=(4,), ks=(1,), arms=(VERIFIED,))
    result = write_report(write_run(tmp_path, spec), tmp_path / "out", n_boot=100)
    assert result.markdown == tmp_path / "out" / "report.md"
    # one k only: no pass@5 plot; everything else drawn
    assert {p.name for p in result.plots.values()} == PLOTS - {"pass_at_5.png"}
    text = result.markdown.read_text()
    assert "seeds 4;" in text
    gen_rows = [line for line in text.splitlines() if re.match(r"\| [0-9]+ \| ", line)]
    assert gen_rows and all(" | " in r for r in gen_rows)


def test_many_arm_groups_still_plot(tmp_path: Path) -> None:
    arms = [ArmSpec(f, pass1=[0.5, 0.45, 0.4], diversity=[0.4, 0.35, 0.3], regime=r)
            for f in ("none", "syntax", "tests", "partial:0.5") for r in ("replace", "accumulate")]
    result = write_report(write_run(tmp_path, RunSpec(arms=arms, seeds=(0, 1))), n_boot=50)
    assert result.n_groups == 8
    assert len(result.plots) == 7
    assert "### partial:0.5 / accumulate / real 0 / restart merge" in \
        result.markdown.read_text()


def test_a_big_grid_is_drawn_as_small_multiples(tmp_path: Path) -> None:
    # 3 filters x 2 regimes x 2 real fractions = 12 groups: one panel per (regime,
    # fraction), filters as colours, the same colour for a filter in every panel.
    arms = [ArmSpec(f, pass1=[0.5, 0.4], diversity=[0.4, 0.3], regime=r, real_fraction=x)
            for f in ("none", "syntax", "tests") for r in ("replace", "accumulate")
            for x in (0.0, 0.5)]
    run = load_run(write_run(tmp_path, RunSpec(arms=arms, seeds=(0,))))
    stats = {k: group_stats(a, n_boot=20) for k, a in run.arm_groups().items()}
    canvas = make_canvas(run, stats)
    assert canvas.legend.title == "filter"
    assert [p.title for p in canvas.panels] == [
        "regime accumulate, real fraction 0", "regime accumulate, real fraction 0.5",
        "regime replace, real fraction 0", "regime replace, real fraction 0.5"]
    colours = {(s.label, s.color) for p in canvas.panels for s in p.series}
    assert len(colours) == 3
    plots = all_plots(run, stats, tmp_path)
    width, height = png_size(plots["pass@1 vs generation"])
    assert width > 1200 and height > 700  # a grid, not one crowded panel


def test_interrupted_run_is_reported_as_incomplete(tmp_path: Path) -> None:
    spec = RunSpec(arms=(UNVERIFIED,), seeds=(0,), write_summary=False,
                   not_done={("none", 0, 2)})
    text = write_report(write_run(tmp_path, spec), n_boot=50).markdown.read_text()
    assert "2 generation(s) used; incomplete" in text


def test_not_a_run_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not a run directory"):
        write_report(tmp_path)


def test_cli_report_end_to_end(tmp_path: Path) -> None:
    run = write_run(tmp_path, RunSpec(seeds=(0, 1)))
    done = subprocess.run([sys.executable, "-c", "import sys; from harness.cli import main; "
                           "sys.exit(main())", "report", str(run), "--n-boot", "100"],
                          capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {run / 'report' / 'report.md'} (2 arm groups, 7 plots")
    assert (run / "report" / "pass_at_1.png").is_file()
    missing = subprocess.run([sys.executable, "-c", "import sys; from harness.cli import main; "
                              "sys.exit(main())", "report", str(tmp_path / "nope")],
                             capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "not a directory" in missing.stderr


# ------------------------------------------------------------------ incomplete arms


def test_report_lists_and_marks_incomplete_arms(tmp_path: Path) -> None:
    spec = RunSpec(write_summary=False, not_done={("none", 1, 3)})
    run = write_run(tmp_path, spec)
    result = write_report(run, tmp_path / "all", n_boot=30)
    text = result.markdown.read_text()
    assert result.incomplete == ["f-none__r-replace__real-0.0__s-1: 3 of 4 generations"]
    assert "## Incomplete arms" in text
    assert "- f-none__r-replace__real-0.0__s-1: 3 of 4 generations" in text
    ranking = text.split("## Ranking")[1].split("## Plots")[0]
    assert "| none (incomplete) |" in ranking

    skipped = write_report(run, tmp_path / "skip", n_boot=30, skip_incomplete=True)
    text = skipped.markdown.read_text()
    assert "left out of every table and plot (--skip-incomplete)" in text
    assert "seeds 0, 2; 4 generation(s) used; complete." in text


def test_cli_report_warns_about_incomplete_arms(tmp_path: Path) -> None:
    run = write_run(tmp_path, RunSpec(write_summary=False, not_done={("none", 1, 3)}))
    done = subprocess.run([sys.executable, "-c", "import sys; from harness.cli import main; "
                           "sys.exit(main())", "report", str(run), "--n-boot", "20",
                           "--skip-incomplete"],
                          capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ("warning: 1 incomplete arm(s) left out: "
                           "f-none__r-replace__real-0.0__s-1: 3 of 4 generations\n")


# --------------------------------------------------------------------------- ranking


def _ranking(text: str) -> list[list[str]]:
    section = text.split("## Ranking")[1].split("## Plots")[0]
    return [[c.strip() for c in line.strip("|").split("|")]
            for line in section.splitlines() if re.match(r"\| [0-9]+=? \|", line)]


def test_ranking_marks_ties_by_a_paired_comparison(tmp_path: Path) -> None:
    twin = ArmSpec("syntax", pass1=VERIFIED.pass1, diversity=VERIFIED.diversity)
    spec = RunSpec(arms=(VERIFIED, twin, UNVERIFIED), seeds=(0, 1, 2))
    text = write_report(write_run(tmp_path, spec), n_boot=300).markdown.read_text()
    rows = _ranking(text)
    # two arms with the same true curve: tied; the collapsing one is clearly last
    assert [(r[0], r[1]) for r in rows][2] == ("3", "none")
    assert {rows[0][0], rows[1][0]} == {"1="}
    assert {rows[0][1], rows[1][1]} == {"tests", "syntax"}
    assert rows[0][-1] == "-" and re.match(r"-?0\.\d{3} \[", rows[1][-1])


def test_comparison_table_across_arm_groups(tmp_path: Path) -> None:
    from harness.analysis.report import comparison_table

    run = load_run(write_run(tmp_path, RunSpec(seeds=(0, 1))))
    table = comparison_table(run, n_boot=50).splitlines()
    assert table[0].startswith("comparison of arm groups")
    assert table[1].split() == ["rank", "arm", "group", "seeds", "pass@1", "AUC", "slope/gen",
                                "below", "half", "at", "diversity", "retention"]
    assert table[2].startswith("1 ") and " tests " in table[2]
    assert table[3].startswith("2 ") and " none " in table[3]
    # AUC, slope, first gen below half, diversity retention, each with an interval
    assert len(re.findall(r"\d\.\d+ \[-?\d\.\d+, -?\d\.\d+\]", table[3])) == 3


# ----------------------------------------------------------------------------- plots


def _drawn_axes(run_dir: Path, metric: str, **kwargs: object) -> object:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.analysis.plots import _curve

    run = load_run(run_dir)
    stats = {k: group_stats(a, n_boot=50) for k, a in run.arm_groups().items()}
    canvas = make_canvas(run, stats)
    fig, ax = plt.subplots()
    assert _curve(lambda st: st.curve(metric), **kwargs)(ax, canvas.series)  # type: ignore[arg-type]
    fig.canvas.draw()
    return ax


def test_ci_bands_are_told_apart_by_hatch_and_edge_colour(tmp_path: Path) -> None:
    from matplotlib.colors import to_rgba

    ax = _drawn_axes(write_run(tmp_path, RunSpec(seeds=(0, 1, 2))), "diversity")
    hatched = [c for c in ax.collections if c.get_hatch()]  # type: ignore[attr-defined]
    assert len(hatched) == 2
    assert hatched[0].get_hatch() != hatched[1].get_hatch()
    line_colours = [to_rgba(line.get_color()) for line in ax.get_lines()]  # type: ignore[attr-defined]
    edges = [tuple(c.get_edgecolor()[0][:3]) for c in hatched]
    assert edges == [c[:3] for c in line_colours]


def test_generation_zero_markers_do_not_hide_each_other(tmp_path: Path) -> None:
    ax = _drawn_axes(write_run(tmp_path, RunSpec(seeds=(0,))), "diversity")
    lines = ax.get_lines()  # type: ignore[attr-defined]
    assert len({line.get_marker() for line in lines}) == len(lines) == 2
    assert all(line.get_markerfacecolor() == "none" for line in lines)  # hollow


def test_perplexity_axis_does_not_show_noise_digits(tmp_path: Path) -> None:
    spec = RunSpec(seeds=(0, 1), perplexity=1.04, perplexity_noise=0.002)
    from harness.analysis.plots import PERPLEXITY_AXIS

    ax = _drawn_axes(write_run(tmp_path, spec), "perplexity", **PERPLEXITY_AXIS)
    labels = [t.get_text() for t in ax.get_yticklabels()]  # type: ignore[attr-defined]
    assert len(labels) >= 3 and len(set(labels)) == len(labels)
    assert all(re.fullmatch(r"\d+\.\d{2}", label) for label in labels), labels


def test_a_group_at_the_floor_is_flagged_in_the_ranking(tmp_path: Path) -> None:
    """Issue 25: a model already at the floor (gen-0 pass@1 0.077) looked collapse-proof;
    the board leaves it out of its collapse ranks and the report flags it, same rule."""
    low = (ArmSpec("tests", pass1=[0.02, 0.02, 0.03, 0.02], diversity=[0.4] * 4),
           ArmSpec("none", pass1=[0.02, 0.02, 0.02, 0.02], diversity=[0.4] * 4))
    result = write_report(write_run(tmp_path, RunSpec(arms=low, seeds=(0, 1))), n_boot=50)
    text = result.markdown.read_text()
    ranking = text.split("## Ranking", 1)[1].split("## Plots", 1)[0]
    assert ranking.count("(at the floor)") >= 3, ranking  # both rows and the rule
    assert "generation-0 pass@1 below 0.1" in ranking
    high = write_report(write_run(tmp_path / "b", RunSpec(seeds=(0, 1))), n_boot=50)
    assert "at the floor" not in high.markdown.read_text()


# ------------------------------------------------------------------ --also-eval suites

# The collapsing arm does better on the second suite, so a report that ranked by it
# would put `none` first; the primary suite must still decide.
ALSO_BETTER = ArmSpec("none", pass1=UNVERIFIED.pass1, diversity=UNVERIFIED.diversity,
                      acceptance=1.0, precision=0.48, also_pass1=[0.5, 0.6, 0.7, 0.8])


def _also_cells(text: str, suite: str, group: str) -> list[list[str]]:
    """The rows (cells) of one arm group's table in one also-eval section."""
    section = text.split(f"### `{suite}`: {group}\n")[1].split("\n### ")[0].split("\n## ")[0]
    return [[c.strip() for c in line.strip("|").split("|")]
            for line in section.splitlines() if re.match(r"\| [0-9]+ \| ", line)]


def _also_values(run: Path, flt: str, suite: str, key: str) -> list[list[float]]:
    """Per generation, each seed's recorded also-eval value, read from metrics.json."""
    arms = sorted(run.glob(f"arms/f-{flt}__*"))
    return [[read_json(arm / f"gen-{g}" / "metrics.json")["also_eval"][suite][key]
             for arm in arms] for g in range(4)]


def _binomial_quantile(n: int, p: float, q: float) -> float:
    """Smallest c/n with P(Binomial(n, p) <= c) >= q: what resampling n problems with
    replacement gives for a one-seed mean of 0/1 values, worked out without a bootstrap."""
    total = 0.0
    for c in range(n + 1):
        total += math.comb(n, c) * p ** c * (1 - p) ** (n - c)
        if total >= q - 1e-12:
            return c / n
    return 1.0


@pytest.fixture(scope="module")
def also_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    run = write_run(tmp_path_factory.mktemp("also"),
                    RunSpec(arms=(VERIFIED, ALSO_BETTER), also_eval=("humaneval",)))
    result = write_report(run, n_boot=300)
    assert result.also_eval == ("humaneval",)
    return run, result.markdown.read_text()


def test_also_eval_section_follows_the_primary_tables_and_is_not_the_headline(
        also_run: tuple[Path, str]) -> None:
    """Issue 20: the second suite is in the report, after the primary tables, under a
    title that says the primary suite is the headline, and the ranking ignores it."""
    _, text = also_run
    title = ("## Also-eval suite `humaneval` (secondary; the primary suite `synth/eval` is "
             "the headline)")
    assert text.count(title) == 1
    assert text.index("## Per arm group") < text.index(title) < text.index("## Collapse questions")
    ranking = text.split("## Ranking")[1].split("## Plots")[0]
    assert ranking.index("| 1 | tests |") < ranking.index("| 2 | none |")
    section = text.split(title)[1]
    assert section.index("### `humaneval`: tests") < section.index("### `humaneval`: none")
    assert ("| gen | greedy pass@1 [95% CI over problems and seeds] | "
            "perplexity [95% CI over seeds] |") in section


def test_also_eval_table_has_the_seed_means_of_the_recorded_values(
        also_run: tuple[Path, str]) -> None:
    run, text = also_run
    for flt in ("tests", "none"):
        rows = _also_cells(text, "humaneval", flt)
        assert [r[0] for r in rows] == ["0", "1", "2", "3"]
        greedy = _also_values(run, flt, "humaneval", "greedy_pass_at_1")
        ppl = _also_values(run, flt, "humaneval", "perplexity")
        for g, row in enumerate(rows):
            mean, low, high = map(float, re.findall(r"[0-9.]+", row[1]))
            assert mean == pytest.approx(sum(greedy[g]) / 3, abs=5e-4)
            assert 0.0 <= low <= high <= 1.0
            assert row[2].startswith(f"{sum(ppl[g]) / 3:.2f} [")
    # the better second-suite curve of `none` shows as such
    last = [float(_also_cells(text, "humaneval", f)[3][1].split()[0]) for f in ("tests", "none")]
    assert last[1] > last[0]


def test_one_seed_also_eval_interval_is_over_problems_and_matches_the_binomial(
        tmp_path: Path) -> None:
    """One seed: the interval resamples problems only, perplexity has none. Resampling
    P problems of 0/1 values with replacement is Binomial(P, mean) / P, so the percentile
    bounds are checked against its exact quantiles (within one step of 1/P)."""
    n_tasks = 40
    spec = RunSpec(seeds=(3,), ks=(1,), arms=(VERIFIED,), also_eval=("humaneval",),
                   also_n_tasks=n_tasks)
    run = write_run(tmp_path, spec)
    text = write_report(run, tmp_path / "out", n_boot=2000).markdown.read_text()
    assert ("| gen | greedy pass@1 [95% CI over problems] | perplexity [no CI: one seed] |"
            in text)
    greedy = _also_values(run, "tests", "humaneval", "greedy_pass_at_1")
    ppl = _also_values(run, "tests", "humaneval", "perplexity")
    for g, row in enumerate(_also_cells(text, "humaneval", "tests")):
        (p,) = greedy[g]
        mean, low, high = map(float, re.findall(r"[0-9.]+", row[1]))
        assert mean == pytest.approx(p, abs=5e-4)
        assert low == pytest.approx(_binomial_quantile(n_tasks, p, 0.025), abs=1 / n_tasks)
        assert high == pytest.approx(_binomial_quantile(n_tasks, p, 0.975), abs=1 / n_tasks)
        assert row[2] == f"{ppl[g][0]:.2f}"  # a value, no interval


def test_report_without_also_eval_has_no_such_section(report_dir: Path) -> None:
    assert "Also-eval" not in (report_dir / "report.md").read_text()


def test_a_filter_has_one_colour_in_the_report_and_on_the_board(tmp_path: Path) -> None:
    """The report drew `none` blue and `tests` orange, the board the reverse."""
    from harness.analysis.board_page import model_charts
    from harness.analysis.palette import FILTER_COLOURS

    for order in ((VERIFIED, UNVERIFIED), (UNVERIFIED, VERIFIED)):
        root = tmp_path / order[0].filter
        run = load_run(write_run(root, RunSpec(arms=order, seeds=(0,))))
        stats = {k: group_stats(a, n_boot=20) for k, a in run.arm_groups().items()}
        (panel,) = make_canvas(run, stats).panels
        by_filter = {s.label.split()[0]: s.color for s in panel.series}
        assert by_filter == {"tests": FILTER_COLOURS["tests"], "none": FILTER_COLOURS["none"]}
        arms = [{"label": a.filter, "filter": a.filter, "curves": {}} for a in order]
        html = model_charts({"n_generations": 4, "arms": arms}, "m")
        for flt, colour in FILTER_COLOURS.items():
            assert f"{colour}" in html and html.index(flt) >= 0
