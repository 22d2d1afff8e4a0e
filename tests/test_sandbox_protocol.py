"""The harness side of the runner protocol: answers are validated, readers never die,
and a request that kills its runner is retried once, behind the others.

The answer stream is no longer reachable by programs (the runner runs under another
uid), but the harness must not trust it blindly either: a runner bug or an image
from elsewhere must give sandbox_errors, not tracebacks or dead reader threads.
"""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path
from typing import Any

import pytest

from sandbox.channel import MAX_ANSWER_BYTES, Channel, Event
from sandbox.executor import ExecRequest, SandboxSettings
from sandbox.hostile import add_request
from sandbox.local import LocalExecutor
from sandbox.protocol import decode_result, encode_request

GOOD = {"id": "1", "status": "passed", "exit_code": 0, "duration_s": 0.01,
        "assert_verdicts": [None, None], "values": [{"v": {"i": "5"}}, {"v": {"i": "0"}}],
        "stdout_tail": "", "stderr_tail": "", "error": ""}


def request() -> ExecRequest:
    return add_request("r", "def add(a, b):\n    return a + b\n")


def test_a_good_answer_is_judged_on_the_trusted_side() -> None:
    result = decode_result(GOOD, request())
    assert result.passed and result.assert_verdicts == (True, True)
    assert result.verdict_path == "values"
    wrong = decode_result({**GOOD, "values": [{"v": {"i": "5"}}, {"v": {"i": "1"}}]}, request())
    assert wrong.status == "failed" and wrong.assert_verdicts == (True, False)
    assert "returned 1" in wrong.error


@pytest.mark.parametrize("field", [
    {"duration_s": "boom"}, {"duration_s": float("nan")}, {"duration_s": -1},
    {"exit_code": "0"}, {"exit_code": 1.5}, {"stdout_tail": 5}, {"error": None},
    {"status": "great"}, {"assert_verdicts": [True]}, {"assert_verdicts": ["yes", None]},
    {"values": None}, {"values": [None]},
])
def test_a_malformed_field_is_that_requests_sandbox_error(field: dict[str, Any]) -> None:
    result = decode_result({**GOOD, **field}, request())
    assert result.status == "sandbox_error", field


def test_the_request_line_carries_calls_not_expected_values() -> None:
    line = encode_request(request(), "k", 4096).decode()
    assert '"call": "add"' in line and '"steps"' in line
    assert '"judge"' not in line  # every assert is a call: no judge, no test code sent
    assert "== 5" not in line and '"i": "5"' not in line and "check" not in line


def test_a_judged_request_sends_the_test_to_the_judge_only() -> None:
    """Without call checks the test goes to the judge; the program's process is sent
    the program and the value-free preamble, never `check` or an assert."""
    req = add_request("r", "def add(a, b):\n    return a + b\n", judge=True)
    assert req.verdict_path == "judge"
    body = json.loads(encode_request(req, "k", 4096))
    assert "check" not in body["program"] + body["preamble"] and "steps" not in body
    assert body["judge"]["final"] == "check(add)" and "def check" in body["judge"]["preamble"]
    assert body["judge"]["entry"] == "add"
    answer = {**GOOD, "assert_verdicts": None, "values": None}
    assert decode_result(answer, req).passed
    assert decode_result({**answer, "status": "failed"}, req).status == "failed"


class ScriptedChannel(Channel):
    """A channel whose runner output is a fixed list of chunks."""

    def __init__(self, chunks: list[bytes], events: queue.Queue[Event]) -> None:
        super().__init__("scripted", events)
        self.chunks = list(chunks)
        self.started = threading.Event()

    def _recv(self) -> bytes:
        if self.chunks:
            return self.chunks.pop(0)
        self.started.wait(10)  # end of stream only once `begin` has returned
        return b""

    def _send(self, data: bytes) -> None:
        pass

    def _destroy(self) -> None:
        pass


def events_of(chunks: list[bytes]) -> list[dict[str, Any] | None]:
    events: queue.Queue[Event] = queue.Queue()
    channel = ScriptedChannel(chunks, events)
    channel.begin(timeout_s=5)
    channel.started.set()
    out: list[dict[str, Any] | None] = []
    while True:
        _, msg = events.get(timeout=10)
        out.append(msg)
        if msg is None:
            return out


READY = b'{"ready": true}\n'
ANSWER = b'{"id": "7", "status": "passed"}\n'


def test_deep_nesting_on_the_answer_stream_is_malformed_not_fatal() -> None:
    got = events_of([READY, b"[" * 100_000 + b"\n", ANSWER])
    assert got[0] == {"malformed": "answer is not JSON (RecursionError)"}
    assert got[1] == {"id": "7", "status": "passed"}  # the reader lived on
    assert got[2] is None


def test_an_endless_line_is_dropped_and_reading_goes_on() -> None:
    blob = b"x" * (1 << 20)
    got = events_of([READY, *[blob] * (MAX_ANSWER_BYTES // len(blob) + 2), b"tail\n", ANSWER])
    assert got[0] == {"malformed": "answer line too long"}
    assert got[1] == {"id": "7", "status": "passed"} and got[2] is None


def test_a_runner_killer_is_retried_once_behind_the_queue(tmp_path: Path) -> None:
    """The killer kills the process that forked it; the runner gives up (fatal) and is
    replaced. The programs queued behind the killer are innocent: they run before its
    one retry, and each only once."""
    log = tmp_path / "order.log"

    def program(tag: str, kill: bool) -> str:
        body = f"open({str(log)!r}, 'a').write({tag!r})\n"
        if kill:
            body += "import os, signal, time\nos.kill(os.getppid(), signal.SIGKILL)\n" \
                    "time.sleep(3)\n"
        return body + "def add(a, b):\n    return a + b\n"

    reqs = [add_request("k", program("k", True), 5.0), add_request("a", program("a", False)),
            add_request("b", program("b", False))]
    with LocalExecutor(SandboxSettings(pool_size=1)) as ex:
        results = ex.run(reqs)
    assert [r.status for r in results] == ["sandbox_error", "passed", "passed"]
    assert "after one retry" in results[0].error
    assert log.read_text() == "kabk"
