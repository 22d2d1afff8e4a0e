"""The run's memory of verdicts (sandbox/memo.py) in front of a real executor."""

from __future__ import annotations

from collections.abc import Sequence

from sandbox.executor import ExecRequest, ExecResult, Executor, ProgressCallback
from sandbox.memo import RememberingExecutor
from sandbox.protocol import sandbox_error

ADD = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return a - b\n"


def request(rid: str, program: str) -> ExecRequest:
    return ExecRequest(rid, program, ("assert add(1, 2) == 3",), "", 3.0, entry_point="add")


class Recording:
    """An executor in front of another that records the request ids it was sent."""

    name = "recording"

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.sent: list[list[str]] = []

    def run(self, requests: Sequence[ExecRequest],
            progress: ProgressCallback | None = None) -> list[ExecResult]:
        self.sent.append([r.request_id for r in requests])
        return self.inner.run(requests, progress)

    def close(self) -> None:
        pass


def test_a_program_run_before_is_answered_from_memory_with_the_callers_id(
        local_executor: Executor) -> None:
    inner = Recording(local_executor)
    memo = RememberingExecutor(inner)  # type: ignore[arg-type]
    first = memo.run([request("a", ADD), request("b", WRONG)])
    ticks: list[int] = []
    second = memo.run([request("c", WRONG), request("d", ADD), request("e", ADD + "\n")],
                      ticks.append)
    assert inner.sent == [["a", "b"], ["e"]]  # only the new program ran
    assert [r.request_id for r in second] == ["c", "d", "e"]
    assert [r.status for r in first] == ["passed", "failed"]
    assert [r.status for r in second] == ["failed", "passed", "passed"]
    assert second[0].error == first[1].error and second[0].assert_verdicts == (False,)
    assert sum(ticks) == 3  # two remembered at once, then the one that ran
    assert (memo.hits, memo.runs) == (2, 3)
    assert "3 distinct programs run; 2 answered from memory (40%)" in memo.tally()


def test_duplicates_within_a_call_run_once(local_executor: Executor) -> None:
    inner = Recording(local_executor)
    memo = RememberingExecutor(inner)  # type: ignore[arg-type]
    out = memo.run([request("a", ADD), request("b", ADD)])
    assert inner.sent == [["a"]] and [r.request_id for r in out] == ["a", "b"]


class FailsOnce:
    """The sandbox failing on the first call (a `sandbox_error`), then working."""

    name = "fails-once"

    def __init__(self, inner: Executor) -> None:
        self.inner, self.calls = inner, 0

    def run(self, requests: Sequence[ExecRequest],
            progress: ProgressCallback | None = None) -> list[ExecResult]:
        self.calls += 1
        if self.calls == 1:
            return [sandbox_error(r, "the container vanished") for r in requests]
        return self.inner.run(requests, progress)

    def close(self) -> None:
        pass


def test_a_sandbox_error_is_not_remembered(local_executor: Executor) -> None:
    memo = RememberingExecutor(FailsOnce(local_executor))  # type: ignore[arg-type]
    assert memo.run([request("a", ADD)])[0].status == "sandbox_error"
    assert memo.run([request("b", ADD)])[0].status == "passed"  # asked again: run again


def test_memory_is_bounded_and_forgets_the_oldest(local_executor: Executor) -> None:
    inner = Recording(local_executor)
    memo = RememberingExecutor(inner, max_entries=2)  # type: ignore[arg-type]
    memo.run([request("a", ADD), request("b", WRONG)])
    memo.run([request("c", ADD + "\n")])              # forgets ADD, the oldest
    memo.run([request("d", WRONG), request("e", ADD)])
    assert inner.sent == [["a", "b"], ["c"], ["e"]]
