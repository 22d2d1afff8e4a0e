"""The model board: merging exported entries per protocol, ranks with ties, the schema,
determinism, and what it refuses. Mostly hand-made export documents (fast); one test
exports real entries from fixture runs."""

from __future__ import annotations

import copy
import itertools
import json
import math
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from harness.analysis.board import (
    COLUMNS,
    arena_ranks,
    board_json,
    board_schema,
    bounds,
    build_board,
    validate_board,
)
from harness.analysis.headline import first_below
from harness.analysis.leaderboard import build_leaderboard, validate_leaderboard, write_leaderboard
from harness.analysis.stats import collapse_summary
from harness.errors import BadInput
from harness.experiment.protocols import Protocol, get_protocol
from tests.run_fixtures import ArmSpec, RunSpec, write_run

REPO = Path(__file__).resolve().parent.parent
CPU_SYNTH = "cpu-synth@1"
"""The fixtures' protocol: v1, whose entries stay valid after v2 became the default (a
board of v1 entries must still build)."""

# ------------------------------------------------------------ hand-made entries


def est(mean: float | None, half: float | None = 0.02) -> dict[str, Any]:
    """An estimate; half=None: no interval."""
    if mean is None or half is None:
        return {"mean": mean, "ci_low": None, "ci_high": None}
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half}


def rate(mean: float, half: float | None = 0.02) -> dict[str, Any]:
    e = est(mean, half)
    if e["ci_low"] is not None:
        e["ci_low"], e["ci_high"] = max(0.0, e["ci_low"]), min(1.0, e["ci_high"])
    return e


def generations_est(first: float | None, half: float | None) -> dict[str, Any]:
    """A censored generation count: +-1 generation when there is an interval; never
    reached (None) has null bounds either way."""
    return est(first, None if first is None or half is None else 1)


def make_entry(model: str, flt: str, pass1: Sequence[float], diversity: Sequence[float], *,
               protocol: Protocol | None = None, half: float | None = 0.02,
               run_id: str = "run-1", tail: Sequence[float] | None = None,
               seeds: Sequence[int] = (0,)) -> dict[str, Any]:
    """One export entry as `export` writes it, for a run of `protocol` (cpu-synth)."""
    protocol = protocol or get_protocol(CPU_SYNTH)
    gens = list(range(len(pass1)))
    collapse = collapse_summary(pass1, diversity).to_dict()
    first_half = collapse["first_gen_below_half"]
    rel = [p / pass1[0] for p in pass1]
    rel_auc = sum((a + b) / 2 for a, b in itertools.pairwise(rel)) / (len(rel) - 1)
    to90 = first_below(np.asarray(gens, float), np.asarray([pass1], float), 0.9)[0]
    generations = []
    for g in gens:
        gen = {"generation": g, "pass_at_k": {"pass@1": rate(pass1[g], half),
                                              "pass@10": rate(min(1.0, pass1[g] + 0.3), half)},
               "diversity": est(diversity[g], half), "perplexity": est(4.0, half),
               "filter_acceptance_rate": rate(0.5, half) if g else est(None),
               "filter_precision": rate(1.0, half) if g else est(None),
               "filter_recall": rate(1.0, half) if g else est(None),
               "n_train_examples": est(0.0 if g == 0 else 512.0, None)}
        if tail is not None:
            gen["tail_perplexity"] = est(tail[g], half)
        generations.append(gen)
    config = {**protocol.settings, "model.name": model, "model.device": "cpu",
              "model.dtype": "auto", "protocol": protocol.claim}
    return {
        "rank": 0, "model": model, "train_suite": protocol.settings["train_suite"],
        "train_split": "train", "eval_suite": protocol.settings["eval_suite"],
        "eval_split": protocol.settings["eval_split"], "filter": flt, "regime": "replace",
        "real_fraction": 0.0, "restart": "merge", "train_temperature": 1.0,
        "seeds": list(seeds), "n_seeds": len(seeds), "run_ids": [run_id],
        "config_hashes": ["0123456789abcdef"], "complete": True, "pooled_settings": {},
        "ks": [1, 10], "n_generations": len(gens),
        "n_problems_resampled": 0 if half is None else 200,
        "protocol": protocol.identity(), "config": config,
        "generations": generations,
        "collapse": {"pass1_slope": est(collapse["pass1_slope"], half),
                     "pass1_auc": rate(collapse["pass1_auc"], half),
                     "first_gen_below_half": generations_est(first_half, half),
                     "diversity_retention": est(collapse["diversity_retention"], half)},
        "headline": {"pass1_auc_rel": est(rel_auc, half),
                     "gens_to_90": generations_est(None if math.isinf(to90) else float(to90),
                                                   half),
                     "gens_to_50": generations_est(first_half, half),
                     "pass1_gain": est(pass1[-1] - pass1[0], half),
                     "tail_perplexity_ratio": None if tail is None
                     else est(tail[-1] / tail[0], half)},
        "per_seed": [{"seed": s, "run_id": run_id, "arm_id": f"f-{flt}__s-{s}",
                      "config_hash": "0123456789abcdef", "collapse": collapse} for s in seeds],
    }


def make_doc(entries: list[dict[str, Any]], created: str = "2026-01-01T00:00:00+00:00"
             ) -> dict[str, Any]:
    """An export document around `entries` (valid: checked on the way out)."""
    entries = copy.deepcopy(entries)
    for i, entry in enumerate(entries, start=1):
        entry["rank"] = i
    runs = {e["run_ids"][0]: e for e in entries}
    doc = {
        "schema_version": "1.0", "harness_version": "0.1.0", "created": created,
        "rank_by": "collapse.pass1_auc.mean",
        "statistics": {"ci_level": 0.95, "method": "hand-made", "n_boot": 100, "seed": 0},
        "runs": [{"run_id": r, "config_hash": "0123456789abcdef", "harness_version": "0.1.0",
                  "model": e["model"], "train_suite": e["train_suite"],
                  "eval_suite": e["eval_suite"], "n_arms": 2} for r, e in runs.items()],
        "incomplete_arms": [], "entries": entries,
    }
    validate_leaderboard(doc)
    return doc


STEADY = [0.50, 0.49, 0.49, 0.48, 0.48, 0.47]      # barely collapses
FALLING = [0.50, 0.44, 0.38, 0.31, 0.24, 0.20]     # collapses
GAINING = [0.50, 0.55, 0.58, 0.60, 0.61, 0.62]
DIV = [0.40, 0.38, 0.36, 0.34, 0.32, 0.30]


def model_doc(model: str, none_curve: Sequence[float], *, run_id: str | None = None,
              **kwargs: Any) -> dict[str, Any]:
    """Both arms of one cpu-synth model."""
    run_id = run_id or f"run-{model}"
    return make_doc([make_entry(model, "tests", GAINING, DIV, run_id=run_id, **kwargs),
                     make_entry(model, "none", none_curve, DIV, run_id=run_id, **kwargs)])


def write_docs(tmp_path: Path, *docs: dict[str, Any]) -> list[Path]:
    paths = []
    for i, doc in enumerate(docs):
        path = tmp_path / f"e{i}.json"
        path.write_text(json.dumps(doc))
        paths.append(path)
    return paths


# -------------------------------------------------------------------------- board


def test_board_of_two_models_is_valid_and_ranked(tmp_path: Path) -> None:
    paths = write_docs(tmp_path, model_doc("falls", FALLING), model_doc("holds", STEADY))
    board = build_board(paths)
    jsonschema.Draft202012Validator(board_schema()).validate(board)
    (only,) = board["boards"]
    assert only["protocol"]["name"] == "cpu-synth"
    assert only["protocol"]["hash"] == get_protocol(CPU_SYNTH).hash
    assert only["arms"] == ["tests", "none"]
    models = only["models"]
    assert [m["model"] for m in models] == ["holds", "falls"]
    assert [m["rank"] for m in models] == [1, 2] and not any(m["tied"] for m in models)
    holds = models[0]
    assert holds["columns"]["none_auc_rel"]["mean"] == pytest.approx(
        models[0]["columns"]["none_auc_rel"]["mean"])
    assert holds["columns"]["none_gens_to_50"] == {"mean": None, "ci_low": None,
                                                   "ci_high": None, "interval": True,
                                                   "rank": 1, "tied": False}
    assert models[1]["columns"]["none_gens_to_50"]["mean"] == 4
    assert holds["columns"]["tests_gain"]["mean"] == pytest.approx(0.12)
    assert [c["id"] for c in only["columns"]] == [c.id for c in COLUMNS
                                                  if c.id != "none_tail_ratio"]
    assert [a["label"] for a in holds["arms"]] == ["tests", "none"]
    assert holds["runs"] == [{"run_id": "run-holds", "config_hash": "0123456789abcdef",
                              "harness_version": "0.1.0", "metrics_sha256": None,
                              "source": "e1.json"}]
    assert holds["config"]["model.name"] == "holds" and holds["complete"]
    assert holds["arms"][1]["curves"]["pass@10"][0]["mean"] == pytest.approx(0.8)


def test_a_model_at_the_floor_is_flagged_and_not_ranked_on_collapse(tmp_path: Path) -> None:
    """Issue 25: a model whose gen-0 pass@1 is 0.077 cannot fall, so its "AUC vs gen 0"
    of 1.0 tied for rank 1 and it looked collapse-proof. Below FLOOR_PASS1 a model is
    flagged, gets no rank in the collapse columns, and sorts after the ranked ones."""
    from harness.analysis.board import FLOOR_PASS1
    from harness.analysis.board_page import render_page

    flat = [0.077] * 6
    floor = make_doc([make_entry("floor", "tests", flat, DIV, run_id="run-floor"),
                      make_entry("floor", "none", flat, DIV, run_id="run-floor")])
    board = build_board(write_docs(tmp_path, floor, model_doc("holds", STEADY)))
    models = board["boards"][0]["models"]
    assert [m["model"] for m in models] == ["holds", "floor"]
    holds, low = models
    assert low["at_floor"] and not holds["at_floor"] and FLOOR_PASS1 > 0.077
    assert low["rank"] is None and holds["rank"] == 1 and not holds["tied"]
    assert low["columns"]["none_auc_rel"]["mean"] == pytest.approx(1.0)  # shown, not ranked
    assert low["columns"]["none_auc_rel"]["rank"] is None
    assert low["columns"]["pass1_gen0"]["rank"] == 2  # describing the base model still ranks
    assert "floor" in board["ranking"]["rule"]
    assert "at the floor" in render_page(board)
    validate_board(board)


def test_rebuilding_gives_the_same_bytes_apart_from_created(tmp_path: Path) -> None:
    from harness.analysis.board_page import render_page

    paths = write_docs(tmp_path, model_doc("a", FALLING), model_doc("b", STEADY),
                       model_doc("c", GAINING))
    first, again = build_board(paths), build_board(list(reversed(paths)))  # any order

    def without_created(board: dict[str, Any]) -> tuple[str, str]:
        created = board["created"]
        return (board_json(board).replace(created, "CREATED"),
                render_page(board).replace(created, "CREATED"))

    assert without_created(first) == without_created(again)
    fixed = "2026-02-02T00:00:00+00:00"
    assert board_json(build_board(paths, created=fixed)) == board_json(
        build_board(paths[::-1], created=fixed))


def test_ties_are_marked_where_intervals_overlap(tmp_path: Path) -> None:
    close = [0.50, 0.49, 0.48, 0.47, 0.46, 0.45]
    closer = [0.50, 0.49, 0.48, 0.47, 0.46, 0.46]
    board = build_board(write_docs(tmp_path, model_doc("x", close), model_doc("y", closer),
                                   model_doc("z", FALLING)))
    models = board["boards"][0]["models"]
    assert [(m["model"], m["rank"], m["tied"]) for m in models] == [
        ("y", 1, True), ("x", 1, True), ("z", 3, False)]


def test_arena_ranks() -> None:
    vals: list[tuple[float, float, float] | None] = [
        (0.8, 0.9, 1.0), (0.85, 0.88, 0.95), (0.5, 0.6, 0.7), None, (0.1, 0.2, 0.3)]
    assert arena_ranks(vals, "higher") == [1, 1, 3, None, 4]
    assert arena_ranks(vals, "lower") == [3, 3, 2, None, 1]
    assert arena_ranks([(1, 1, 1), (1, 1, 1), (0, 0, 0)], "higher") == [1, 1, 3]


def test_censored_generations_count_as_later_than_the_run() -> None:
    never = {"mean": None, "ci_low": None, "ci_high": None}
    assert bounds(never, "generations", True) == (math.inf, math.inf, math.inf)
    assert bounds({"mean": 3, "ci_low": 2, "ci_high": None}, "generations", True) == (
        2, 3, math.inf)
    assert bounds({"mean": 3, "ci_low": None, "ci_high": None}, "generations", False) == (
        3, 3, 3)
    assert bounds(never, "ratio", True) is None
    assert bounds(None, "ratio", True) is None


def test_missing_arm_is_marked_incomplete(tmp_path: Path) -> None:
    only_none = make_doc([make_entry("half", "none", STEADY, DIV, run_id="r-half")])
    board = build_board(write_docs(tmp_path, only_none, model_doc("full", FALLING)))
    half = next(m for m in board["boards"][0]["models"] if m["model"] == "half")
    assert not half["complete"] and half["missing_arms"] == ["tests"]
    assert half["columns"]["tests_gain"] is None
    validate_board(board)
    only_tests = make_doc([make_entry("other", "tests", GAINING, DIV, run_id="r-other")])
    board = build_board(write_docs(tmp_path, only_tests))
    (other,) = board["boards"][0]["models"]
    assert other["missing_arms"] == ["none"] and other["columns"]["none_auc_rel"] is None
    assert other["rank"] is None
    assert other["columns"]["pass1_gen0"]["mean"] == 0.5  # generation 0 is every arm's


def test_tail_column_appears_when_recorded(tmp_path: Path) -> None:
    tail = [10.0, 10.5, 11.0, 12.0, 13.0, 14.0]
    doc = make_doc([make_entry("t", "tests", GAINING, DIV, run_id="rt", tail=tail),
                    make_entry("t", "none", FALLING, DIV, run_id="rt", tail=tail)])
    board = build_board(write_docs(tmp_path, doc, model_doc("u", STEADY)))
    ids = [c["id"] for c in board["boards"][0]["columns"]]
    assert ids[-1] == "none_tail_ratio"
    by_model = {m["model"]: m for m in board["boards"][0]["models"]}
    assert by_model["t"]["columns"]["none_tail_ratio"]["mean"] == pytest.approx(1.4)
    assert by_model["u"]["columns"]["none_tail_ratio"] is None
    assert "tail_perplexity" in by_model["t"]["arms"][0]["curves"]


def test_one_board_per_protocol(tmp_path: Path) -> None:
    gpu = get_protocol("humaneval-gpu")
    entries = [make_entry("big", f, STEADY, DIV, protocol=gpu, run_id="g", seeds=(0, 1, 2))
               for f in gpu.settings["filters"]]
    board = build_board(write_docs(tmp_path, make_doc(entries), model_doc("small", FALLING)))
    assert [b["protocol"]["name"] for b in board["boards"]] == ["cpu-synth", "humaneval-gpu"]
    assert board["boards"][1]["arms"] == ["none", "syntax", "tests", "noisy:0.2"]
    assert board["boards"][1]["models"][0]["complete"]


# ------------------------------------------------------------------------ refusals


def test_refuses_entries_without_a_protocol(tmp_path: Path) -> None:
    doc = model_doc("m", STEADY)
    for entry in doc["entries"]:
        entry["protocol"] = None
    with pytest.raises(BadInput, match=r"e0.json: entries\[0\] \(m, filter tests\) ran no "
                                       "benchmark protocol"):
        build_board(write_docs(tmp_path, doc))


def test_refuses_two_versions_of_one_protocol(tmp_path: Path) -> None:
    v1, v2 = get_protocol("cpu-synth@1"), get_protocol("cpu-synth@2")
    newer = make_doc([make_entry("m2", "none", STEADY, DIV, protocol=v2,
                                 run_id="r2")])
    with pytest.raises(BadInput, match=r"cannot mix cpu-synth v1 \(e0.json: entries\[0\]\) and "
                                       r"v2 \(e1.json: entries\[0\]\)"):
        build_board(write_docs(tmp_path, model_doc("m1", STEADY, protocol=v1), newer))


def test_refuses_the_same_arm_twice(tmp_path: Path) -> None:
    a = model_doc("m", STEADY, run_id="run-a")
    b = model_doc("m", FALLING, run_id="run-b")
    with pytest.raises(BadInput, match=r"model 'm', arm tests of cpu-synth v1 is in both "
                                       r"e0.json: entries\[0\] and e1.json: entries\[0\]"):
        build_board(write_docs(tmp_path, a, b))
    same = write_docs(tmp_path, a)[0]
    with pytest.raises(BadInput, match="is the same file as"):
        build_board([same, same])


def test_refuses_an_entry_whose_config_is_not_its_protocol(tmp_path: Path) -> None:
    doc = model_doc("m", STEADY)
    doc["entries"][1]["config"]["training.learning_rate"] = 0.01
    with pytest.raises(BadInput) as info:
        build_board(write_docs(tmp_path, doc))
    assert str(info.value).startswith(
        f"{tmp_path / 'e0.json'}: entries[1] (m, filter none) does not match protocol "
        "cpu-synth v1 it claims: training.learning_rate = 0.01 (protocol: 0.002)")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda e: e.update(filter="syntax"), "filter 'syntax' is not one of cpu-synth v1's"),
    (lambda e: e.update(seeds=[0, 7], n_seeds=2), "seed 7 is not one of cpu-synth v1's seeds"),
    (lambda e: e.update(ks=[1]), "ks [1] are not cpu-synth v1's [1, 10]"),
    (lambda e: e["protocol"].update(hash="f" * 64), "changed without a new version"),
    (lambda e: e["protocol"].update(version=3), "unknown version 'cpu-synth@3'"),
    (lambda e: e.pop("config"), "records no config to check"),
])
def test_validation_checks_the_claim(edit: Any, message: str) -> None:
    entry = make_entry("m", "none", STEADY, DIV)
    edit(entry)
    with pytest.raises(BadInput, match=r"^entries\[0\] \(m, filter "):
        make_doc([entry])
    with pytest.raises(BadInput) as info:
        make_doc([entry])
    assert message in str(info.value)


# ------------------------------------------------------------- real exported entries


def _protocol_run(root: Path, run_id: str, model: str, none: ArmSpec, tests: ArmSpec,
                  rng_seed: int = 0) -> Path:
    protocol = get_protocol(CPU_SYNTH)
    return write_run(root, RunSpec(
        run_id=run_id, arms=(tests, none), seeds=(0,), n_tasks=200, n=10, ks=(1, 10),
        model=model, rng_seed=rng_seed,
        changes={**protocol.settings, "protocol": protocol.claim, "filters": ["tests", "none"],
                 "model.device": "cpu"}))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "import sys; from harness.cli import main; "
                           "sys.exit(main())", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120, check=False)


@pytest.mark.slow
def test_real_entries_from_fixture_runs(tmp_path: Path) -> None:
    """Fixture runs of cpu-synth -> export (CLI) -> validate -> leaderboard build (CLI)."""
    tests = ArmSpec("tests", pass1=GAINING, diversity=DIV, acceptance=0.5)
    a = _protocol_run(tmp_path / "runs", "run-a", "builtin:tiny",
                      ArmSpec("none", pass1=FALLING, diversity=DIV, acceptance=1.0), tests)
    b = _protocol_run(tmp_path / "runs", "run-b", "models/tiny-96",
                      ArmSpec("none", pass1=STEADY, diversity=DIV, acceptance=1.0), tests, 4)
    for run, name in ((a, "e1.json"), (b, "e2.json")):
        done = cli("export", str(run), "--out", str(tmp_path / name), "--n-boot", "200")
        assert done.returncode == 0, done.stderr
    doc = json.loads((tmp_path / "e1.json").read_text())
    protocol = get_protocol(CPU_SYNTH)
    for entry in doc["entries"]:
        assert entry["protocol"] == protocol.identity()
        assert protocol.mismatches(entry["config"]) == []
        assert "out" not in entry["config"] and "executor" not in entry["config"]
        # one resampling: the headline's gens_to_50 is the collapse's first_gen_below_half
        assert entry["headline"]["gens_to_50"] == entry["collapse"]["first_gen_below_half"]
        rel = entry["headline"]["pass1_auc_rel"]
        assert rel["ci_low"] < rel["mean"] < rel["ci_high"]
    none = next(e for e in doc["entries"] if e["filter"] == "none")
    assert none["headline"]["pass1_auc_rel"]["mean"] < 0.9

    out = tmp_path / "board"
    built = cli("leaderboard", "build", str(tmp_path / "e1.json"), str(tmp_path / "e2.json"),
                "--out", str(out))
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip() == (f"wrote {out / 'board.json'} and {out / 'index.html'} "
                                    "(cpu-synth v1: 2 model(s))")
    board = json.loads((out / "board.json").read_text())
    validate_board(board)
    assert [m["model"] for m in board["boards"][0]["models"]] == ["models/tiny-96",
                                                                  "builtin:tiny"]
    assert (out / "index.html").read_text().startswith("<!DOCTYPE html>")
    # which runs it was built from: each model's runs with their metrics digest
    from harness.analysis.leaderboard import metrics_digest

    tiny = next(m for m in board["boards"][0]["models"] if m["model"] == "builtin:tiny")
    assert [(r["run_id"], r["metrics_sha256"]) for r in tiny["runs"]] == [
        ("run-a", metrics_digest(a))]
    assert metrics_digest(a) in (out / "index.html").read_text()

    forged = copy.deepcopy(doc)  # a hand-edited headline no longer reaches a board
    forged["entries"][0]["headline"]["pass1_auc_rel"]["mean"] = 1.5
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    refused = cli("leaderboard", "build", str(tmp_path / "forged.json"), "--out",
                  str(tmp_path / "forged-board"))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "headline.pass1_auc_rel: 1.5, but the entry's own per-generation curves" in (
        refused.stderr)

    broken = copy.deepcopy(doc)
    broken["entries"][0]["config"]["generations"] = 3
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    rejected = cli("export", "--validate", str(tmp_path / "broken.json"))
    assert rejected.returncode == 2 and rejected.stderr.count("\n") == 1
    assert "does not match protocol cpu-synth v1 it claims: generations = 3 (protocol: 5)" in (
        rejected.stderr)
    refused = cli("leaderboard", "build", str(tmp_path / "broken.json"), "--out", str(out))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1


def test_export_refuses_a_run_that_is_not_its_protocol(tmp_path: Path) -> None:
    protocol = get_protocol(CPU_SYNTH)
    run = write_run(tmp_path, RunSpec(changes={"protocol": protocol.claim}))  # 3 generations
    with pytest.raises(BadInput, match=r"run 20260101-000000-aaaa \(.*\) does not match "
                                       r"protocol cpu-synth v1 it claims: eval_tasks = 12"):
        build_leaderboard([run], n_boot=10)


def test_export_without_protocol_records_none(tmp_path: Path) -> None:
    doc = build_leaderboard([write_run(tmp_path)], n_boot=10)
    assert {e["protocol"] for e in doc["entries"]} == {None}
    assert all(e["config"]["generations"] == 3 for e in doc["entries"])
    write_leaderboard(doc, tmp_path / "x.json")  # valid without a protocol


def test_cli_build_refuses_bad_output(tmp_path: Path) -> None:
    path = write_docs(tmp_path, model_doc("m", STEADY))[0]
    (tmp_path / "afile").write_text("x")
    done = cli("leaderboard", "build", str(path), "--out", str(tmp_path / "afile"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    missing = cli("leaderboard", "build", str(tmp_path / "nope.json"), "--out",
                  str(tmp_path / "b"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert not (tmp_path / "b").exists()


def test_a_display_name_labels_the_model_on_the_board(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 25: the board labelled models by their raw path. `export --name` records a
    display name in every entry; the board row and page show it, with the path kept
    beside it. One model may not carry two names, and one name may not cover two
    models."""
    from harness.analysis.board_page import render_page
    from harness.cli import main

    tests = ArmSpec("tests", pass1=GAINING, diversity=DIV, acceptance=0.5)
    none = ArmSpec("none", pass1=FALLING, diversity=DIV, acceptance=1.0)
    a = _protocol_run(tmp_path / "runs", "run-a", "/models/smollm2-dir", none, tests)
    b = _protocol_run(tmp_path / "runs", "run-b", "builtin:tiny", none, tests, 4)
    assert main(["export", str(a), "--name", "SmolLM2-135M-Instruct", "--n-boot", "50",
                 "--out", str(tmp_path / "a.json")]) == 0
    doc = json.loads((tmp_path / "a.json").read_text())
    assert {e["display_name"] for e in doc["entries"]} == {"SmolLM2-135M-Instruct"}
    assert {e["model"] for e in doc["entries"]} == {"/models/smollm2-dir"}
    assert main(["export", str(b), "--n-boot", "50", "--out", str(tmp_path / "b.json")]) == 0
    assert main(["leaderboard", "build", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                 "--out", str(tmp_path / "board")]) == 0
    board = json.loads((tmp_path / "board" / "board.json").read_text())
    validate_board(board)
    rows = {m["model"]: m for m in board["boards"][0]["models"]}
    assert rows["/models/smollm2-dir"]["display_name"] == "SmolLM2-135M-Instruct"
    assert "display_name" not in rows["builtin:tiny"]
    page = render_page(board)
    assert ">SmolLM2-135M-Instruct</a><br><span class=\"path\">/models/smollm2-dir</span>" in page
    capsys.readouterr()

    assert main(["export", str(a), str(b), "--name", "one", "--out",
                 str(tmp_path / "c.json")]) == 2
    assert "--name names one model" in capsys.readouterr().err
    # the two arms of one model from two files, under two names
    for flt, name in (("tests", "One"), ("none", "Two")):
        part = copy.deepcopy(doc)
        part["entries"] = [dict(e, rank=1, display_name=name) for e in doc["entries"]
                           if e["filter"] == flt]
        (tmp_path / f"{flt}.json").write_text(json.dumps(part))
    assert main(["leaderboard", "build", str(tmp_path / "tests.json"),
                 str(tmp_path / "none.json"), "--out", str(tmp_path / "board2")]) == 2
    assert "is named 'One' and 'Two' by its entries' export --name" in capsys.readouterr().err
    assert main(["export", str(a), "--name", "bad\nname", "--out",
                 str(tmp_path / "e.json")]) == 2


def test_a_value_without_an_interval_is_shown_but_not_ranked(tmp_path: Path) -> None:
    """Issue 25: `tail ppl growth` got strict ranks (1, 2) with no interval at all. A
    cell without an interval keeps its value and gets no rank; the same two models
    with intervals that do not overlap are ranked."""
    def board_for(half: float | None) -> dict[str, Any]:
        docs = []
        for model, tail in (("a", [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]),
                            ("b", [10.0, 10.0, 10.0, 10.0, 10.0, 20.0])):
            entries = [make_entry(model, flt, GAINING if flt == "tests" else FALLING, DIV,
                                  run_id=f"r{model}", tail=tail)
                       for flt in ("tests", "none")]
            for entry in entries:
                entry["headline"]["tail_perplexity_ratio"] = est(tail[-1] / tail[0], half)
            docs.append(make_doc(entries))
        out = tmp_path / f"half-{half}"
        out.mkdir()
        board = build_board(write_docs(out, *docs))
        validate_board(board)
        return {m["model"]: m["columns"]["none_tail_ratio"] for m in board["boards"][0]["models"]}

    without = board_for(None)
    assert [without[m]["rank"] for m in "ab"] == [None, None]
    assert without["b"]["mean"] == pytest.approx(2.0)
    ranked = board_for(0.05)
    assert [ranked[m]["rank"] for m in "ab"] == [1, 2]
