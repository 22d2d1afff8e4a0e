"""MBPP through `datasets`, from a small local file in the original release format."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.errors import BadInput, EnvironmentProblem
from harness.experiment.evaluation import Sample, execute_samples
from sandbox.executor import Executor
from tasks import mbpp
from tasks.programs import build_request
from tasks.registry import load_suite, select_split, tasks_by_id

ROWS: list[dict[str, Any]] = [
    {"text": "Write a function to add two numbers.", "task_id": 2,
     "code": "def add(a, b):\r\n  return a + b", "test_setup_code": "",
     "test_list": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(0, 0) == 0"],
     "challenge_test_list": []},
    {"text": "Write a python function to find the shared elements of two lists.", "task_id": 11,
     "code": "def helper(x):\n    return set(x)\n\ndef similar_elements(a, b):\n"
             "    return tuple(sorted(helper(a) & helper(b)))",
     "test_setup_code": "",
     "test_list": ["assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)",
                   "assert similar_elements((1, 2, 3, 4),(5, 4, 3, 7)) == (3, 4)",
                   "assert similar_elements((11, 12, 14, 13),(17, 15, 14, 13)) == (13, 14)"],
     "challenge_test_list": []},
    {"text": "Write a function to scale a number by the global factor.", "task_id": 520,
     "code": "import math\ndef scale(x):\n    return math.floor(x * FACTOR)",
     "test_setup_code": "FACTOR = 3",
     "test_list": ["assert scale(2) == 6", "assert scale(1.5) == 4"],
     "challenge_test_list": ["assert scale(0) == 0"]},
    {"text": "Write a function to reverse a string.", "task_id": 700,
     "code": "def rev(s):\n    return s[::-1]", "test_setup_code": "",
     "test_list": ["assert rev('ab') == 'ba'", "assert rev('') == ''", "assert rev('x') == 'x'"],
     "challenge_test_list": []},
]


@pytest.fixture
def mbpp_file(tmp_path: Path) -> Path:
    path = tmp_path / "mbpp.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_local_file_goes_through_datasets(mbpp_file: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    calls: list[tuple[Any, ...]] = []
    real = datasets.load_dataset

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", spy)
    tasks = mbpp.load_mbpp(str(mbpp_file))
    assert calls and calls[0][0] == "json"
    assert [t.task_id for t in tasks] == ["mbpp/2", "mbpp/11", "mbpp/520", "mbpp/700"]


def test_splits_prompts_and_entry_points(mbpp_file: Path) -> None:
    tasks = tasks_by_id(load_suite(f"mbpp:{mbpp_file}"))
    assert {t: v.split for t, v in tasks.items()} == {
        "mbpp/2": "prompt", "mbpp/11": "test", "mbpp/520": "validation", "mbpp/700": "train"}
    shared = tasks["mbpp/11"]
    assert shared.prompt == ('"""\nWrite a python function to find the shared elements of two '
                             'lists.\nassert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == '
                             '(4, 5)\n"""\n')
    assert shared.entry_point == "similar_elements"      # not the helper defined first
    assert shared.asserts == tuple(ROWS[1]["test_list"]) and shared.final_call == ""
    assert tasks["mbpp/2"].canonical_solution == "def add(a, b):\n  return a + b\n"
    assert select_split(list(tasks.values()), "test") == [shared]


def test_setup_code_is_the_preamble_and_asserts_stay_separate(mbpp_file: Path) -> None:
    task = tasks_by_id(load_suite(f"mbpp:{mbpp_file}"))["mbpp/520"]
    req = build_request(task, task.canonical_solution, "0")
    assert req.program == task.prompt + task.canonical_solution
    assert req.preamble == "FACTOR = 3\n"
    assert req.asserts == ("assert scale(2) == 6", "assert scale(1.5) == 4")
    assert "challenge" not in task.test and "scale(0)" not in task.test


def test_canonical_solutions_pass_and_broken_fail(mbpp_file: Path,
                                                  local_executor: Executor) -> None:
    tasks = tasks_by_id(load_suite(f"mbpp:{mbpp_file}"))
    samples = [Sample(t.task_id, t.canonical_solution) for t in tasks.values()]
    samples += [Sample(t.task_id, f"def {t.entry_point}(*a):\n    return None\n")
                for t in tasks.values()]
    results = execute_samples(tasks, samples, local_executor)
    assert [r.status for r in results[:4]] == ["passed"] * 4
    assert [r.assert_verdicts for r in results[:4]] == [(True,) * len(t.asserts)
                                                        for t in tasks.values()]
    assert not any(r.passed for r in results[4:])


@pytest.mark.parametrize(("content", "message"), [
    ('{"task_id": 1, "text": "t", "code": "def f(): pass"}\n',
     r"mbpp.jsonl:1: missing field 'test_list'"),
    ('{"task_id": 1, "text": "t", "code": "def f(): pass", "test_list": ["assert f()"]}\n{oops\n',
     r"mbpp.jsonl:2: not valid JSON"),
    ("\n", "no MBPP problems"),
    ('{"task_id": 1, "text": "t", "code": "x = 1", "test_list": ["assert x"]}\n',
     "field 'code' has no function definition"),
])
def test_malformed_files_are_bad_input(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "mbpp.jsonl"
    path.write_text(content)
    with pytest.raises(BadInput, match=message):
        mbpp.load_mbpp(str(path))


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such MBPP file"):
        load_suite(f"mbpp:{tmp_path / 'nope.jsonl'}")


def test_unreachable_hub_fails_fast_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mbpp, "HUB_HOST", "hub.invalid")
    start = time.monotonic()
    with pytest.raises(EnvironmentProblem, match=r"pass mbpp:/path/to/mbpp.jsonl"):
        mbpp.load_mbpp()
    assert time.monotonic() - start < 10


def test_cli_reports_unreachable_hub_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(mbpp, "HUB_HOST", "hub.invalid")
    assert main(["tasks", "show", "mbpp/11"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot reach the Hugging Face hub") and "\n" not in err
