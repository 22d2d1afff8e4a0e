"""Any HumanEval-format problems file as a suite; malformed files name file, line, field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.errors import BadInput
from harness.experiment.evaluation import Sample, execute_samples
from sandbox.executor import Executor
from tasks.registry import load_suite, tasks_by_id

GOOD: list[dict[str, Any]] = [
    {"task_id": "mine/0", "prompt": "def double(x):\n    \"\"\"Twice x.\"\"\"\n",
     "entry_point": "double", "canonical_solution": "    return 2 * x\n",
     "test": "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(0) == 0\n"
             "    assert candidate(-3) == -6\n"},
    {"task_id": "mine/1", "prompt": "def last(xs):\n", "entry_point": "last",
     "canonical_solution": "    return xs[-1]\n", "split": "train",
     "test": "import math\n\ndef check(candidate):\n    for n in range(1, 4):\n"
             "        assert candidate(list(range(n))) == n - 1\n"},
]


def _write(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_loads_a_problems_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.jsonl", GOOD)
    tasks = tasks_by_id(load_suite(str(path)))
    assert list(tasks) == ["mine/0", "mine/1"]
    double, last = tasks["mine/0"], tasks["mine/1"]
    assert double.suite == "mine" and double.split == "test" and last.split == "train"
    assert double.asserts == ("assert double(1) == 2", "assert double(0) == 0",
                              "assert double(-3) == -6")
    assert double.final_call == "check(double)"
    assert last.asserts == ()            # a loop: only check() as a whole


def test_problems_file_executes(tmp_path: Path, local_executor: Executor) -> None:
    tasks = tasks_by_id(load_suite(str(_write(tmp_path / "mine.jsonl", GOOD))))
    samples = [Sample("mine/0", "    return 2 * x\n"), Sample("mine/0", "    return x * x\n"),
               Sample("mine/1", "    return xs[-1]\n"), Sample("mine/1", "    return xs[0]\n")]
    results = execute_samples(tasks, samples, local_executor)
    assert [r.passed for r in results] == [True, False, True, False]
    # x * x: right for 0, wrong for 1 and -3
    assert results[1].assert_verdicts == (False, True, False)
    assert results[2].assert_verdicts is None


def _bad(field: str, value: Any) -> dict[str, Any]:
    return {**GOOD[0], field: value}


@pytest.mark.parametrize(("rows", "message"), [
    ([GOOD[0], "{not json"], r"bad\.jsonl:2: not valid JSON"),
    (["[1, 2]"], r"bad\.jsonl:1: expected a JSON object"),
    ([{k: v for k, v in GOOD[0].items() if k != "entry_point"}],
     r"bad\.jsonl:1: missing field 'entry_point'"),
    ([GOOD[0], _bad("prompt", 3)], r"bad\.jsonl:2: field 'prompt' must be a non-empty string"),
    ([_bad("test", "def check(candidate:\n")], r"bad\.jsonl:1: field 'test' is not valid Python"),
    ([_bad("test", "assert True\n")], r"bad\.jsonl:1: field 'test' does not define check"),
    ([GOOD[0], GOOD[0]], r"bad\.jsonl:2: field 'task_id' repeats 'mine/0' \(first on line 1\)"),
    ([], r"bad\.jsonl: no problems in file"),
])
def test_malformed_files_name_file_line_and_field(tmp_path: Path, rows: list[Any],
                                                  message: str) -> None:
    path = _write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(BadInput, match=message):
        load_suite(str(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such problems file"):
        load_suite(str(tmp_path / "absent.jsonl"))


def test_cli_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "bad.jsonl", [GOOD[0], _bad("task_id", "")])
    samples = _write(tmp_path / "samples.jsonl", [{"task_id": "mine/0", "completion": "x"}])
    code = main(["eval", "--suite", str(path), "--samples", str(samples), "--executor", "local"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == f"error: {path}:2: field 'task_id' must be a non-empty string"


def test_unknown_suite_name_lists_known_ones() -> None:
    with pytest.raises(BadInput, match="unknown suite 'nope'; known: humaneval, mbpp, synth"):
        load_suite("nope")
    with pytest.raises(BadInput, match="takes no argument"):
        load_suite("humaneval:x")
