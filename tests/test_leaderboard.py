"""Run directories -> leaderboard: reading, merging, ranking, schema, CSV and the CLI."""

from __future__ import annotations

import copy
import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from harness.analysis.leaderboard import (
    build_leaderboard,
    leaderboard_csv,
    leaderboard_schema,
    validate_leaderboard,
)
from harness.config import config_hash
from harness.errors import BadInput
from harness.runfiles.runs import load_run
from tests.run_fixtures import UNVERIFIED, VERIFIED, ArmSpec, RunSpec, read_json, write_run

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def doc(run_dir: Path) -> dict[str, Any]:
    return build_leaderboard([run_dir], n_boot=300)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real entry point in a fresh interpreter, as a user would run it."""
    return subprocess.run([sys.executable, "-c", "import sys; from harness.cli import main; "
                           "sys.exit(main())", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120, check=False)


# ---------------------------------------------------------------------- reading runs


def test_reassembled_run_equals_the_summary(tmp_path: Path) -> None:
    with_summary = load_run(write_run(tmp_path / "a"))
    without = load_run(write_run(tmp_path / "b", RunSpec(write_summary=False)))
    assert not (without.path / "summary.json").exists()
    assert without.config_hash == with_summary.config_hash == config_hash(RunSpec().config())
    assert (without.model, without.eval_suite, without.ks) == ("builtin:tiny", "synth", [1, 5])
    assert set(without.arms) == set(with_summary.arms)
    for arm_id, arm in with_summary.arms.items():
        assert without.arms[arm_id] == arm
        assert arm.complete


def test_generations_without_done_marker_are_left_out(tmp_path: Path) -> None:
    spec = RunSpec(write_summary=False, not_done={("none", 1, 3)})
    run = load_run(write_run(tmp_path, spec))
    arm = run.arms["f-none__r-replace__real-0.0__s-1"]
    assert [g.generation for g in arm.generations] == [0, 1, 2]
    assert not arm.complete
    assert run.arms["f-none__r-replace__real-0.0__s-0"].complete


def test_arm_groups_collect_the_seeds(run_dir: Path) -> None:
    groups = load_run(run_dir).arm_groups()
    assert [(k.filter, [a.seed for a in arms]) for k, arms in groups.items()] == [
        ("none", [0, 1, 2]), ("tests", [0, 1, 2])]


@pytest.mark.parametrize(("breakage", "message"), [
    (lambda p: (p / "summary.json").write_text("{not json"), "not valid JSON"),
    (lambda p: _edit_summary(p, lambda s: s.pop("model")), "missing key 'model'"),
    (lambda p: _edit_summary(p, lambda s: _first_gen(s).update(pass_at_k={"p1": 0.5})),
     "is not of the form 'pass@K'"),
    (lambda p: _edit_summary(p, lambda s: _first_gen(s)["per_task"].update(
        {"x": {"n": 3, "c": 4}})), "need 0 <= c <= n"),
])
def test_malformed_run_is_one_bad_input(tmp_path: Path, breakage: Any, message: str) -> None:
    run_dir = write_run(tmp_path)
    breakage(run_dir)
    with pytest.raises(BadInput, match=message):
        load_run(run_dir)


def _edit_summary(run_dir: Path, edit: Any) -> None:
    summary = read_json(run_dir / "summary.json")
    edit(summary)
    (run_dir / "summary.json").write_text(json.dumps(summary))


def _first_gen(summary: dict[str, Any]) -> dict[str, Any]:
    return next(iter(summary["arms"].values()))["generations"][0]


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not a run directory"):
        load_run(tmp_path)
    with pytest.raises(BadInput, match="not a directory"):
        load_run(tmp_path / "missing")


# ----------------------------------------------------------------------- leaderboard


def test_export_validates_against_the_shipped_schema(doc: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(leaderboard_schema()).validate(doc)
    validate_leaderboard(json.loads(json.dumps(doc)))  # and after a JSON round trip
    assert doc["schema_version"] == "1.0"
    assert doc["harness_version"] == "0.1.0"
    assert doc["created"].endswith("+00:00")


def test_entries_are_ranked_by_pass1_auc(doc: dict[str, Any]) -> None:
    entries = doc["entries"]
    assert [e["filter"] for e in entries] == ["tests", "none"]  # verified holds up
    assert [e["rank"] for e in entries] == [1, 2]
    aucs = [e["collapse"]["pass1_auc"]["mean"] for e in entries]
    assert aucs == sorted(aucs, reverse=True)


def test_entry_holds_seeds_means_and_intervals(run_dir: Path, doc: dict[str, Any]) -> None:
    summary = read_json(run_dir / "summary.json")
    entry = doc["entries"][1]
    assert (entry["model"], entry["train_suite"], entry["eval_suite"]) == (
        "builtin:tiny", "synth", "synth")
    assert (entry["regime"], entry["real_fraction"], entry["restart"]) == ("replace", 0.0, "merge")
    assert entry["seeds"] == [0, 1, 2]
    assert entry["run_ids"] == ["20260101-000000-aaaa"]
    assert entry["config_hashes"] == [summary["config_hash"]]
    assert len(entry["generations"]) == 4
    # mean over seeds of what each seed's metrics.json reported
    reported = [summary["arms"][f"f-none__r-replace__real-0.0__s-{s}"]["generations"][3]
                ["pass_at_k"]["pass@1"] for s in (0, 1, 2)]
    gen3 = entry["generations"][3]["pass_at_k"]["pass@1"]
    assert gen3["mean"] == pytest.approx(sum(reported) / 3)
    assert gen3["ci_low"] < gen3["mean"] < gen3["ci_high"]
    assert entry["generations"][0]["filter_acceptance_rate"]["mean"] is None  # no filter at gen 0
    assert [p["collapse"] for p in entry["per_seed"]] == [
        summary["arms"][f"f-none__r-replace__real-0.0__s-{s}"]["collapse"] for s in (0, 1, 2)]


def test_runs_with_other_seeds_are_pooled(tmp_path: Path) -> None:
    a = write_run(tmp_path, RunSpec(run_id="run-a", seeds=(0, 1)))
    b = write_run(tmp_path, RunSpec(run_id="run-b", seeds=(2,), arms=(UNVERIFIED,),
                                    write_summary=False, rng_seed=5))
    doc = build_leaderboard([a, b], n_boot=100)
    validate_leaderboard(doc)
    by_filter = {e["filter"]: e for e in doc["entries"]}
    assert by_filter["none"]["seeds"] == [0, 1, 2]
    assert by_filter["none"]["run_ids"] == ["run-a", "run-b"]
    assert by_filter["tests"]["seeds"] == [0, 1]
    assert [r["run_id"] for r in doc["runs"]] == ["run-a", "run-b"]


def test_other_model_is_another_entry(tmp_path: Path) -> None:
    a = write_run(tmp_path, RunSpec(run_id="run-a", arms=(VERIFIED,)))
    b = write_run(tmp_path, RunSpec(run_id="run-b", arms=(VERIFIED,), model="org/other"))
    doc = build_leaderboard([a, b], n_boot=50)
    assert sorted(e["model"] for e in doc["entries"]) == ["builtin:tiny", "org/other"]


def test_same_seed_in_two_runs_is_refused(tmp_path: Path) -> None:
    a = write_run(tmp_path, RunSpec(run_id="run-a"))
    b = write_run(tmp_path, RunSpec(run_id="run-b"))
    with pytest.raises(BadInput, match=r"seed 0 of arm .* is in both run run-a and run run-b"):
        build_leaderboard([a, b], n_boot=10)
    with pytest.raises(BadInput, match="given twice"):
        build_leaderboard([a, a], n_boot=10)


def test_csv_has_one_row_per_entry_and_generation(doc: dict[str, Any]) -> None:
    rows = list(csv.DictReader(io.StringIO(leaderboard_csv(doc))))
    assert len(rows) == 2 * 4
    assert [(r["rank"], r["filter"], r["generation"]) for r in rows[:2]] == [
        ("1", "tests", "0"), ("1", "tests", "1")]
    first = doc["entries"][0]
    assert float(rows[1]["pass@1"]) == pytest.approx(
        first["generations"][1]["pass_at_k"]["pass@1"]["mean"])
    assert float(rows[1]["pass1_auc"]) == pytest.approx(first["collapse"]["pass1_auc"]["mean"])
    assert {"pass@5_ci_low", "pass@5_ci_high", "seeds", "diversity_retention"} <= set(rows[0])


# ------------------------------------------------------------------------ validation


@pytest.mark.parametrize(("edit", "path"), [
    (lambda d: d["entries"][0]["generations"][2].update(pass_at_k="high"),
     "entries[0].generations[2].pass_at_k"),
    (lambda d: d["entries"][1]["generations"][3]["pass_at_k"]["pass@1"].update(mean=1.7),
     "entries[1].generations[3].pass_at_k.pass@1.mean"),
    (lambda d: d["entries"][0]["collapse"].pop("pass1_auc"), "entries[0].collapse.pass1_auc"),
    (lambda d: d.update(schema_version="0.9"), "schema_version"),
    (lambda d: d["entries"].reverse(), "entries[0].rank"),
])
def test_broken_document_names_the_bad_field(doc: dict[str, Any], edit: Any, path: str) -> None:
    broken = copy.deepcopy(doc)
    edit(broken)
    with pytest.raises(BadInput) as info:
        validate_leaderboard(broken)
    assert str(info.value).startswith(f"{path}: ")


# --------------------------------------------------------- numbers a hand edit forges


def _bump_pass1(doc: dict[str, Any], by: float) -> None:
    for gen in doc["entries"][0]["generations"]:
        gen["pass_at_k"]["pass@1"]["mean"] += by


def _forge_consistently(doc: dict[str, Any]) -> None:
    """Raise the whole pass@1 curve and recompute every summary from it, as a careful
    forger would; only the per-seed summaries are left as the runs gave them."""
    import numpy as np

    from harness.analysis.headline import first_below, relative_aucs
    from harness.analysis.stats import _aucs, _slopes

    entry = doc["entries"][0]
    _bump_pass1(doc, 0.01)
    x = np.asarray([g["generation"] for g in entry["generations"]], float)
    y = np.asarray([[g["pass_at_k"]["pass@1"]["mean"] for g in entry["generations"]]])
    entry["collapse"]["pass1_auc"]["mean"] = float(_aucs(x, y)[0])
    entry["collapse"]["pass1_slope"]["mean"] = float(_slopes(x, y)[0])
    head = entry["headline"]
    head["pass1_auc_rel"]["mean"] = float(relative_aucs(x, y)[0])
    head["pass1_gain"]["mean"] = float(y[0, -1] - y[0, 0])
    for key, f in (("gens_to_90", 0.9), ("gens_to_50", 0.5)):
        v = first_below(x, y, f)[0]
        head[key]["mean"] = None if np.isinf(v) else float(v)


@pytest.mark.parametrize(("edit", "path"), [
    (lambda d: d["entries"][0]["generations"][2]["pass_at_k"]["pass@1"].update(
        mean=d["entries"][0]["generations"][2]["pass_at_k"]["pass@5"]["mean"] + 0.01),
     "entries[0].generations[2].pass_at_k.pass@1"),  # above its pass@5
    (lambda d: _bump_pass1(d, 0.02), "entries[0].collapse.pass1_auc"),
    (lambda d: d["entries"][0]["headline"]["pass1_auc_rel"].update(mean=1.25),
     "entries[0].headline.pass1_auc_rel"),
    (lambda d: d["entries"][0]["headline"]["pass1_gain"].update(mean=0.5),
     "entries[0].headline.pass1_gain"),
    (lambda d: d["entries"][0]["collapse"]["diversity_retention"].update(mean=1.0),
     "entries[0].collapse.diversity_retention"),
    (lambda d: d["entries"][0].update(model="someone/else"), "entries[0].model"),
    (_forge_consistently, "entries[0].collapse.pass1_auc"),
])
def test_a_forged_headline_pass1_or_model_is_refused(doc: dict[str, Any], edit: Any,
                                                     path: str) -> None:
    """Issue 25: an entry whose pass@1, headline value or model name was edited by hand
    passed `export --validate` and `leaderboard build`, and the board showed the
    forged numbers. Every summary is now recomputed from the entry's own curves."""
    validate_leaderboard(doc)
    forged = copy.deepcopy(doc)
    edit(forged)
    with pytest.raises(BadInput) as info:
        validate_leaderboard(forged)
    assert str(info.value).startswith(f"{path}: "), info.value


def test_the_export_records_a_digest_of_each_runs_metrics(run_dir: Path, tmp_path: Path,
                                                         doc: dict[str, Any]) -> None:
    """Issue 25: a board could not say which runs it was built from. Each run in an
    export carries the sha256 of its metrics files; a changed file changes it."""
    from harness.analysis.leaderboard import metrics_digest

    (run,) = doc["runs"]
    assert run["metrics_sha256"] == metrics_digest(run_dir)
    copy_dir = tmp_path / "copy"
    shutil.copytree(run_dir, copy_dir)
    assert metrics_digest(copy_dir) == run["metrics_sha256"]  # where it lies does not count
    metrics = next(copy_dir.glob("arms/*/gen-1/metrics.json"))
    metrics.write_text(metrics.read_text().replace('"generation": 1', '"generation":  1'))
    assert metrics_digest(copy_dir) != run["metrics_sha256"]


# ------------------------------------------------------------------------------- CLI


def test_cli_export_validate_and_reject(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "board.json"
    done = cli("export", str(run_dir), "--out", str(out), "--n-boot", "200")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {out} (json): 2 entries from 1 run(s)"
    jsonschema.Draft202012Validator(leaderboard_schema()).validate(json.loads(out.read_text()))

    checked = cli("export", "--validate", str(out))
    assert checked.returncode == 0, checked.stderr
    assert "valid leaderboard (schema 1.0, 2 entries)" in checked.stdout

    broken = json.loads(out.read_text())
    broken["entries"][0]["generations"][2]["pass_at_k"] = ["not", "an", "object"]
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps(broken))
    rejected = cli("export", "--validate", str(bad))
    assert rejected.returncode == 2
    assert rejected.stdout == ""
    assert rejected.stderr.count("\n") == 1  # one line, no traceback
    assert rejected.stderr.startswith(f"error: {bad}: entries[0].generations[2].pass_at_k: ")


def test_cli_csv_and_bad_run_dir(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "board.csv"
    done = cli("export", str(run_dir), "--out", str(out), "--format", "csv", "--n-boot", "50")
    assert done.returncode == 0, done.stderr
    assert "2 entries from 1 run(s), 8 rows" in done.stdout
    assert len(out.read_text().splitlines()) == 1 + 8

    missing = cli("export", str(tmp_path / "nope"), "--out", str(tmp_path / "x.json"))
    assert (missing.returncode, missing.stderr.count("\n")) == (2, 1)
    assert "not a directory" in missing.stderr
    no_out = cli("export", str(run_dir))
    assert no_out.returncode == 2 and "--out" in no_out.stderr


# --------------------------------------------------------- pooling only like with like


def test_runs_with_different_settings_are_not_pooled(tmp_path: Path) -> None:
    short = ArmSpec("tests", pass1=[0.48, 0.5], diversity=[0.4, 0.38])
    a = write_run(tmp_path, RunSpec(run_id="run-a", arms=(VERIFIED,), seeds=(0,)))
    b = write_run(tmp_path, RunSpec(run_id="run-b", arms=(short,), seeds=(5,), n_tasks=10,
                                    n=4, ks=(1,),
                                    changes={"training.learning_rate": 0.01}))
    with pytest.raises(BadInput) as info:
        build_leaderboard([a, b], n_boot=20)
    message = str(info.value)
    assert "runs run-a, run-b differ in more than the seed" in message
    for key in ("training.learning_rate: 0.002 vs 0.01", "eval_tasks: 12 vs 10",
                "generations: 3 vs 1", "n_eval: 10 vs 4"):
        assert key in message, message
    assert "--pool-different-settings" in message

    doc = build_leaderboard([a, b], n_boot=20, pool_different_settings=True)
    validate_leaderboard(doc)
    (entry,) = doc["entries"]
    assert entry["seeds"] == [0, 5]
    assert entry["pooled_settings"]["training.learning_rate"] == [0.002, 0.01]
    assert entry["pooled_settings"]["generations"] == [3, 1]


def test_runs_differing_only_in_seed_and_grid_still_pool(tmp_path: Path) -> None:
    a = write_run(tmp_path, RunSpec(run_id="run-a", seeds=(0,),
                                    changes={"executor": "local", "out": "elsewhere"}))
    b = write_run(tmp_path, RunSpec(run_id="run-b", arms=(VERIFIED,), seeds=(1,)))
    doc = build_leaderboard([a, b], n_boot=20)
    tests_entry = next(e for e in doc["entries"] if e["filter"] == "tests")
    assert tests_entry["seeds"] == [0, 1] and tests_entry["pooled_settings"] == {}


# ------------------------------------------------------------------- incomplete arms


def _interrupted_run(root: Path) -> Path:
    """Seed 1 of `none` stopped after generation 2; seed 2 of `none` never started."""
    run = write_run(root, RunSpec(write_summary=False, not_done={("none", 1, 3)}))
    shutil.rmtree(run / "arms" / "f-none__r-replace__real-0.0__s-2")
    return run


def test_export_marks_incomplete_arms(tmp_path: Path) -> None:
    doc = build_leaderboard([_interrupted_run(tmp_path)], n_boot=20)
    validate_leaderboard(doc)
    assert doc["incomplete_arms"] == [
        {"run_id": "20260101-000000-aaaa", "arm_id": "f-none__r-replace__real-0.0__s-1",
         "generations_done": 3, "generations_planned": 4, "included": True},
        {"run_id": "20260101-000000-aaaa", "arm_id": "f-none__r-replace__real-0.0__s-2",
         "generations_done": 0, "generations_planned": 4, "included": False}]
    by_filter = {e["filter"]: e for e in doc["entries"]}
    assert by_filter["none"]["complete"] is False and by_filter["tests"]["complete"] is True
    rows = list(csv.DictReader(io.StringIO(leaderboard_csv(doc))))
    assert {r["complete"] for r in rows if r["filter"] == "none"} == {"False"}


def test_export_skip_incomplete(tmp_path: Path) -> None:
    doc = build_leaderboard([_interrupted_run(tmp_path)], n_boot=20, skip_incomplete=True)
    by_filter = {e["filter"]: e for e in doc["entries"]}
    assert by_filter["none"]["seeds"] == [0] and by_filter["none"]["complete"] is True
    assert by_filter["none"]["n_generations"] == 4
    assert [a["included"] for a in doc["incomplete_arms"]] == [False, False]


def test_cli_export_says_what_is_incomplete(tmp_path: Path) -> None:
    run = _interrupted_run(tmp_path)
    done = cli("export", str(run), "--out", str(tmp_path / "b.json"), "--n-boot", "20")
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("warning: 2 incomplete arm(s)")
    assert done.stderr.count("\n") == 1
    assert ("f-none__r-replace__real-0.0__s-1 (3 of 4 generations, included, marked "
            "complete=false)") in done.stderr
    assert "f-none__r-replace__real-0.0__s-2 (0 of 4 generations, left out)" in done.stderr
    skipped = cli("export", str(run), "--skip-incomplete", "--out", str(tmp_path / "c.json"),
                  "--n-boot", "20")
    assert skipped.returncode == 0 and "left out" in skipped.stderr


# ------------------------------------------------------------------ --also-eval suites

ALSO_BETTER = ArmSpec("none", pass1=UNVERIFIED.pass1, diversity=UNVERIFIED.diversity,
                      acceptance=1.0, precision=0.48, also_pass1=[0.5, 0.6, 0.7, 0.8])


@pytest.fixture(scope="module")
def also_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("also"),
                     RunSpec(arms=(VERIFIED, ALSO_BETTER), also_eval=("humaneval",)))


@pytest.fixture(scope="module")
def also_doc(also_run: Path) -> dict[str, Any]:
    return build_leaderboard([also_run], n_boot=300)


def test_export_carries_also_eval_curves_but_ranks_by_the_primary_suite(
        also_run: Path, also_doc: dict[str, Any]) -> None:
    """Issue 20: each entry carries the second suite's per-generation greedy pass@1 and
    perplexity, apart from its primary curves; the rank still comes from the primary
    suite even though `none` does better on the second one."""
    validate_leaderboard(also_doc)
    assert [e["filter"] for e in also_doc["entries"]] == ["tests", "none"]
    for entry in also_doc["entries"]:
        block = entry["also_eval"]["humaneval"]
        assert block["seeds"] == [0, 1, 2] and block["n_problems_resampled"] == 40
        assert [g["generation"] for g in block["generations"]] == [0, 1, 2, 3]
        arms = sorted(also_run.glob(f"arms/f-{entry['filter']}__*"))
        for g, point in enumerate(block["generations"]):
            recorded = [read_json(a / f"gen-{g}" / "metrics.json")["also_eval"]["humaneval"]
                        for a in arms]
            greedy = point["greedy_pass_at_1"]
            assert greedy["mean"] == pytest.approx(
                sum(r["greedy_pass_at_1"] for r in recorded) / 3)
            assert 0.0 <= greedy["ci_low"] <= greedy["ci_high"] <= 1.0
            assert point["perplexity"]["mean"] == pytest.approx(
                sum(r["perplexity"] for r in recorded) / 3)
    last = [e["also_eval"]["humaneval"]["generations"][-1]["greedy_pass_at_1"]["mean"]
            for e in also_doc["entries"]]
    assert last[1] > last[0]  # ranked second, better on the second suite


def test_also_eval_has_csv_columns(also_doc: dict[str, Any]) -> None:
    rows = list(csv.DictReader(io.StringIO(leaderboard_csv(also_doc))))
    assert len(rows) == 8
    first = also_doc["entries"][0]["also_eval"]["humaneval"]["generations"][0]
    assert float(rows[0]["also_eval.humaneval.greedy_pass_at_1"]) == pytest.approx(
        first["greedy_pass_at_1"]["mean"])
    assert "also_eval.humaneval.perplexity_ci_high" in rows[0]


def test_entries_without_also_eval_stay_valid(doc: dict[str, Any]) -> None:
    """A run without --also-eval exports `also_eval: {}`; an export written before the
    field existed (no key at all) still validates at schema 1.0."""
    assert all(e["also_eval"] == {} for e in doc["entries"])
    old = copy.deepcopy(doc)
    for entry in old["entries"]:
        del entry["also_eval"]
    validate_leaderboard(old)


def _also(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["entries"][0]["also_eval"]["humaneval"]


@pytest.mark.parametrize(("edit", "path"), [
    (lambda d: _also(d)["generations"][1]["greedy_pass_at_1"].update(mean=1.7),
     "entries[0].also_eval.humaneval.generations[1].greedy_pass_at_1.mean"),
    (lambda d: _also(d)["generations"][2]["perplexity"].update(ci_low=0.5),
     "entries[0].also_eval.humaneval.generations[2].perplexity.ci_low"),
    (lambda d: _also(d)["generations"].pop(), "entries[0].also_eval.humaneval.generations"),
    (lambda d: _also(d)["generations"][3].update(generation=4),
     "entries[0].also_eval.humaneval.generations"),
    (lambda d: _also(d).update(seeds=[0, 1, 7]), "entries[0].also_eval.humaneval.seeds"),
    (lambda d: _also(d)["generations"][0]["greedy_pass_at_1"].update(ci_low=0.9, ci_high=0.1),
     "entries[0].also_eval.humaneval.generations[0].greedy_pass_at_1"),
    (lambda d: _also(d).pop("generations"), "entries[0].also_eval.humaneval.generations"),
])
def test_a_forged_also_eval_curve_is_refused(also_doc: dict[str, Any], edit: Any,
                                             path: str) -> None:
    forged = copy.deepcopy(also_doc)
    edit(forged)
    with pytest.raises(BadInput) as info:
        validate_leaderboard(forged)
    assert str(info.value).startswith(f"{path}: "), info.value


def test_cli_export_validate_rejects_a_forged_also_eval_value(also_doc: dict[str, Any],
                                                               tmp_path: Path) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(also_doc))
    assert cli("export", "--validate", str(good)).returncode == 0
    forged = copy.deepcopy(also_doc)
    _also(forged)["generations"][1]["greedy_pass_at_1"]["mean"] = 1.7
    bad.write_text(json.dumps(forged))
    rejected = cli("export", "--validate", str(bad))
    assert rejected.returncode == 2
    assert rejected.stderr.startswith(
        f"error: {bad}: entries[0].also_eval.humaneval.generations[1].greedy_pass_at_1.mean: ")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda b: b.update(greedy_pass_at_1=1.5), r"also_eval\['humaneval'\].greedy_pass_at_1: "
                                               r"expected a number in \[0, 1\]"),
    (lambda b: b["per_task"].update({"x": {"n": 1, "c": 2}}), "need 0 <= c <= n"),
    (lambda b: b.pop("n_tasks"), "missing key 'n_tasks'"),
])
def test_malformed_also_eval_block_is_one_bad_input(tmp_path: Path, edit: Any,
                                                    message: str) -> None:
    run_dir = write_run(tmp_path, RunSpec(also_eval=("humaneval",), seeds=(0,)))
    _edit_summary(run_dir, lambda s: edit(_first_gen(s)["also_eval"]["humaneval"]))
    with pytest.raises(BadInput, match=message):
        load_run(run_dir)
