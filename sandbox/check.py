"""Run the hostile programs against an executor and say, per attack, whether it was contained.

Used by `collapse-bench sandbox check`. The executor must have a single runner
(pool size 1) so that "the next program" really runs where the attack ran.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from sandbox.executor import ExecRequest, ExecResult, Executor
from sandbox.hostile import CASES, HostileCase, honest_request, wrong_request

MARGIN_S = 1.5
"""How far past its timeout the harness may get an attack's answer and still call it contained."""


@dataclass(frozen=True)
class CheckRow:
    """The outcome of one attack and of the controls around it."""

    case: str
    what: str
    status: str
    seconds: float
    follow_up: str
    controls: str
    contained: bool
    note: str


class Listener:
    """A TCP server on the host answering b"ok": the target of the network attack.
    It counts connections, so a leak is seen even if the program's answer hides it."""

    def __init__(self, bind: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((bind, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            with contextlib.suppress(OSError), conn:
                conn.sendall(b"ok")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@contextlib.contextmanager
def listening(bind: str) -> Iterator[Listener]:
    listener = Listener(bind)
    try:
        yield listener
    finally:
        listener.close()


def docker_host_address() -> str:
    """The host as a container sees it on Docker's default bridge (its gateway)."""
    from sandbox.docker_env import connect

    try:
        ipam = connect().networks.get("bridge").attrs["IPAM"]["Config"]
        return str(ipam[0]["Gateway"])
    except Exception:
        return "172.17.0.1"


def run_case(executor: Executor, case: HostileCase, timeout_s: float, host: str,
             listener: Listener, output_limit: int) -> CheckRow:
    """Controls, the attack, its follow-up and controls again, on one runner.

    Before: a wrong and an honest program (the runner works). Then, in one batch, so
    that the programs after the attack wait in the runner's queue while it runs: the
    attack, its follow-up (if any), an honest and a wrong program. The honest ones
    must pass and the wrong ones fail: an attack that forged answers for later
    requests, or broke the runner, shows there.
    """
    before = listener.connections
    controls = executor.run([wrong_request(f"{case.name}-wrong-before"),
                             honest_request(f"{case.name}-honest-before")])
    batch: list[ExecRequest] = [case.request(case.name, timeout_s, host, listener.port)]
    follow = case.follow_up_request(f"{case.name}-follow-up", timeout_s)
    if follow is not None:
        batch.append(follow)
    batch += [honest_request(f"{case.name}-honest-after"),
              wrong_request(f"{case.name}-wrong-after")]
    t0 = time.monotonic()
    results = executor.run(batch)
    seconds = time.monotonic() - t0
    result, follow_result = results[0], (results[1] if follow is not None else None)
    controls += results[-2:]
    allowed = timeout_s * len(batch) + MARGIN_S if follow is None else \
        timeout_s * 2 + MARGIN_S + 2.0
    problems = _problems(case, result, seconds, allowed, follow_result, controls,
                         listener.connections - before, output_limit)
    return CheckRow(case.name, case.what, result.status, round(seconds, 2),
                    follow_result.status if follow_result else "-",
                    " ".join(r.status for r in controls), not problems, "; ".join(problems))


def _problems(case: HostileCase, result: ExecResult, seconds: float, allowed_s: float,
              follow: ExecResult | None, controls: list[ExecResult], connections: int,
              output_limit: int) -> list[str]:
    out: list[str] = []
    if result.passed:
        out.append("the attack PASSED")
    elif result.status not in case.expect:
        out.append(f"status {result.status}, expected {'/'.join(case.expect)}: "
                   f"{result.error[:80]}")
    if seconds > allowed_s:
        out.append(f"answers took {seconds:.1f}s (allowed {allowed_s:.1f}s)")
    if follow is not None and follow.passed:
        out.append("a later program found what it left behind")
    for r in controls:
        honest = "honest" in r.request_id
        if r.passed != honest:
            out.append(f"control {r.request_id} got {r.status}: {r.error[:80]}")
    if connections:
        out.append(f"{connections} connection(s) reached the host")
    cap = output_limit + 64
    if len(result.stdout_tail) > cap or len(result.stderr_tail) > cap:
        out.append("output was not capped")
    return out


def run_check(executor: Executor, *, docker: bool, timeout_s: float = 2.0,
              names: Sequence[str] = (), output_limit: int = 4096,
              on_row: Callable[[CheckRow], None] | None = None) -> list[CheckRow]:
    """Every case that makes sense for this executor (docker_only ones need `docker`)."""
    cases = [c for c in CASES if (not names or c.name in names) and (docker or not c.docker_only)]
    host = docker_host_address() if docker else "127.0.0.1"
    rows: list[CheckRow] = []
    with listening(host) as listener:
        for case in cases:
            row = run_case(executor, case, timeout_s, host, listener, output_limit)
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows


def format_table(rows: Sequence[CheckRow]) -> str:
    header = ("attack", "verdict", "seconds", "follow-up", "controls", "contained")
    body = [(r.case, r.status, f"{r.seconds:.2f}", r.follow_up, r.controls,
             "yes" if r.contained else f"NO: {r.note}") for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=False)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=False)).rstrip()
             for row in (header, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
