"""The local executor: the runner as host subprocesses behind the Executor interface.

Also where the pool machinery shared with the Docker pool (dispatch, retry once,
replace dead or frozen runners, cleanup) is exercised without Docker.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from sandbox.backends import make_executor
from sandbox.executor import ExecRequest, Executor, SandboxSettings, run_unique
from sandbox.local import WARNING, LocalChannel, LocalExecutor

ADD = "def add(a, b):\n    return a + b\n"
TEST = "def check(f):\n    assert f(1, 2) == 3\n"


def honest(rid: str) -> ExecRequest:
    """`add`, judged by the test `check` (the judge holds it, never the program)."""
    return ExecRequest(rid, ADD, ("assert add(0, 0) == 0",), "check(add)", 3.0,
                       preamble=TEST, entry_point="add")


def sleeper(rid: str, seconds: float, timeout_s: float = 5.0) -> ExecRequest:
    return ExecRequest(rid, f"import time\ntime.sleep({seconds})\n" + ADD, (),
                       "check(add)", timeout_s, preamble=TEST, entry_point="add")


def test_make_executor_local_warns_that_it_is_not_isolated(
        capfd: pytest.CaptureFixture[str]) -> None:
    with make_executor("local", SandboxSettings(pool_size=1)) as ex:
        assert ex.run([honest("a")])[0].passed
    err = capfd.readouterr().err
    assert "NOT isolated" in err and WARNING in err


def test_results_come_back_in_request_order_with_progress(local_executor: Executor) -> None:
    reqs = [ExecRequest(str(i), f"def add(a, b):\n    return a + b + {i % 3 == 0}\n",
                        (), "check(add)", 3.0, preamble=TEST, entry_point="add")
            for i in range(30)]
    ticks: list[int] = []
    results = local_executor.run(reqs, ticks.append)
    assert [r.request_id for r in results] == [str(i) for i in range(30)]
    assert [r.passed for r in results] == [i % 3 != 0 for i in range(30)]
    assert sum(ticks) == 30


def test_requests_run_concurrently_across_runners() -> None:
    with LocalExecutor(SandboxSettings(pool_size=2)) as ex:
        t0 = time.monotonic()
        results = ex.run([sleeper(str(i), 0.6) for i in range(4)])
        elapsed = time.monotonic() - t0
    assert all(r.passed for r in results)
    assert elapsed < 2.0  # 4 x 0.6 s serially would be 2.4 s


def test_run_unique_executes_each_distinct_program_once(local_executor: Executor) -> None:
    reqs = [honest("a"), honest("b"), sleeper("c", 0.0)]
    results = run_unique(local_executor, reqs)
    assert [r.request_id for r in results] == ["a", "b", "c"]
    assert all(r.passed for r in results)


def test_a_runner_that_dies_is_replaced_and_its_request_retried() -> None:
    with LocalExecutor(SandboxSettings(pool_size=1)) as ex:
        [channel] = ex.channels
        assert isinstance(channel, LocalChannel)
        threading.Timer(0.3, lambda: os.kill(channel.proc.pid, signal.SIGKILL)).start()
        [result] = ex.run([sleeper("s", 1.0)])
        assert result.passed
        assert ex.replacements == 1
        assert ex.channels[0] is not channel


def test_a_request_that_kills_its_runner_twice_is_a_sandbox_error() -> None:
    killer = ExecRequest("k", "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
                         "import time\ntime.sleep(5)\n", (), "", 10.0)
    with LocalExecutor(SandboxSettings(pool_size=1)) as ex:
        t0 = time.monotonic()
        [result] = ex.run([killer])
        assert result.status == "sandbox_error"
        assert "after one retry" in result.error
        assert time.monotonic() - t0 < 5
        assert ex.run([honest("after")])[0].passed


def test_a_frozen_runner_is_replaced_after_timeout_plus_margin() -> None:
    settings = SandboxSettings(pool_size=1)
    with LocalExecutor(settings, unresponsive_after_s=1.0) as ex:
        [channel] = ex.channels
        assert isinstance(channel, LocalChannel)
        pid = channel.proc.pid
        threading.Timer(0.2, lambda: os.kill(pid, signal.SIGSTOP)).start()
        t0 = time.monotonic()
        [result] = ex.run([sleeper("s", 0.5, timeout_s=1.0)])
        elapsed = time.monotonic() - t0
    assert result.passed  # the retry on a fresh runner
    assert elapsed < 1.0 + 1.0 + 2.0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_close_stops_runners_and_removes_their_scratch() -> None:
    ex = LocalExecutor(SandboxSettings(pool_size=2))
    channels = [c for c in ex.channels if isinstance(c, LocalChannel)]
    ex.run([honest("a")])
    ex.close()
    for c in channels:
        assert c.proc.poll() is not None
        assert not Path(c.scratch).exists()
    with pytest.raises(RuntimeError):
        ex.run([honest("b")])


def test_the_timeout_of_each_request_is_its_own(local_executor: Executor) -> None:
    slow = replace(sleeper("slow", 2.0), timeout_s=0.5)
    results = local_executor.run([slow, honest("fast")])
    assert [r.status for r in results] == ["timeout", "passed"]


def test_closing_from_another_thread_ends_a_run_with_sandbox_errors() -> None:
    ex = LocalExecutor(SandboxSettings(pool_size=1))
    threading.Timer(0.3, ex.close).start()
    t0 = time.monotonic()
    results = ex.run([sleeper("a", 3.0), sleeper("b", 3.0)])
    assert time.monotonic() - t0 < 2.0
    assert [r.status for r in results] == ["sandbox_error"] * 2


def test_when_no_runner_can_be_started_requests_fail_instead_of_hanging() -> None:
    from sandbox.channel import ChannelDead

    def cannot_start(events: object) -> LocalChannel:
        raise ChannelDead("the machine is out of runners")

    with LocalExecutor(SandboxSettings(pool_size=1)) as ex:
        [channel] = ex.channels
        assert isinstance(channel, LocalChannel)
        ex._start = cannot_start  # from now on, replacements fail (as if Docker went away)
        threading.Timer(0.3, lambda: os.kill(channel.proc.pid, signal.SIGKILL)).start()
        t0 = time.monotonic()
        results = ex.run([sleeper("a", 1.0), honest("b")])
        assert time.monotonic() - t0 < 3.0
        assert [r.status for r in results] == ["sandbox_error"] * 2
        assert "out of runners" in results[0].error
