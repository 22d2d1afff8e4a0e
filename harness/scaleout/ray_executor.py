"""The `Executor` interface over every node's warm sandbox pool (`eval --ray`).

A large samples file is scored exactly as locally: `execute_samples` builds the
requests and runs each distinct program once (`run_unique`), and only the `run` of
the unique programs is spread out. Each node that can hold one gets a `SandboxHost`
actor owning that node's warm pool; chunks of requests go to the hosts, a couple in
flight per host so no pool waits for the network, and the results come back in
request order. A program's verdict depends only on the program, so the report is
the local one apart from timings.

A host whose node dies has its chunks given to the others. On Ctrl-C or any error,
`close` closes every pool (a host runs `close` beside a running chunk, which then
ends with sandbox errors nobody reads), so no container outlives the command.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from harness.errors import EnvironmentProblem, one_line
from harness.scaleout.cluster import connected, nodes_for, pinned
from harness.scaleout.readiness import PROBE_TIMEOUT_S, check_nodes
from sandbox.executor import ExecRequest, ExecResult, ProgressCallback, SandboxSettings

HOST_CPUS = 1.0
"""CPUs Ray reserves for a node's sandbox host (so arms are not packed beside it)."""
IN_FLIGHT_PER_HOST = 2
"""Chunks queued per host: one running, the next already shipped."""
CHUNK_MAX = 256
"""Most programs per chunk: small enough to balance nodes and show progress."""
CLOSE_TIMEOUT_S = 30.0


class SandboxHost:
    """One node's warm sandbox pool, alive for one command (a Ray actor)."""

    def __init__(self, executor: str, settings: SandboxSettings) -> None:
        from sandbox.backends import make_executor

        self.executor = make_executor(executor, settings)

    def ready(self) -> bool:
        return True

    def run(self, requests: list[ExecRequest]) -> list[ExecResult]:
        return self.executor.run(requests)

    def close(self) -> None:
        self.executor.close()


def chunk_size(n: int, hosts: int) -> int:
    """About four chunks per host (for balance), at most CHUNK_MAX programs each."""
    return max(1, min(CHUNK_MAX, math.ceil(n / max(1, 4 * hosts))))


class RayExecutor:
    """Runs requests on every ready node's sandbox pool; a context manager like the pools."""

    def __init__(self, address: str, executor: str, settings: SandboxSettings,
                 log: Callable[[str], None] | None = None) -> None:
        self.name = executor
        self.settings = settings
        self.log = log or (lambda line: None)
        self.hosts: list[Any] = []
        self._stack = contextlib.ExitStack()
        try:
            self._start(address, executor, settings)
        except BaseException:
            self._stack.close()
            raise

    def _start(self, address: str, executor: str, settings: SandboxSettings) -> None:
        import ray
        from ray.exceptions import GetTimeoutError, RayError

        self._stack.enter_context(connected(address, self.log))
        nodes = nodes_for(HOST_CPUS, 0.0)
        check_nodes(nodes, executor, settings.image)
        host_cls = ray.remote(SandboxHost)
        self._stack.callback(self._close_hosts)
        self.hosts = [host_cls.options(num_cpus=HOST_CPUS, max_restarts=0,
                                       max_concurrency=IN_FLIGHT_PER_HOST + 1,
                                       scheduling_strategy=pinned(n)).remote(executor, settings)
                      for n in nodes]
        try:
            ray.get([h.ready.remote() for h in self.hosts], timeout=PROBE_TIMEOUT_S)
        except GetTimeoutError:
            raise EnvironmentProblem(
                f"the sandbox pools did not start within {PROBE_TIMEOUT_S:.0f} s: is every "
                "node's CPU taken by other Ray work?") from None
        except RayError as exc:
            raise EnvironmentProblem(f"a node's sandbox pool could not start: "
                                     f"{one_line(exc)}") from None
        self.log(f"ray: executing on {len(self.hosts)} node(s)")

    # -- the Executor interface
    def run(self, requests: Sequence[ExecRequest],
            progress: ProgressCallback | None = None) -> list[ExecResult]:
        """Execute all requests across the nodes; one result per request, in order."""
        import ray
        from ray.exceptions import RayError, RayTaskError

        reqs = list(requests)
        size = chunk_size(len(reqs), len(self.hosts))
        chunks = [reqs[i:i + size] for i in range(0, len(reqs), size)]
        results: list[list[ExecResult] | None] = [None] * len(chunks)
        todo = deque(range(len(chunks)))
        inflight: dict[Any, tuple[Any, int]] = {}
        hosts = list(self.hosts)
        while todo or inflight:
            for host in hosts:
                load = sum(h is host for h, _ in inflight.values())
                while todo and load < IN_FLIGHT_PER_HOST:
                    index = todo.popleft()
                    inflight[host.run.remote(chunks[index])] = (host, index)
                    load += 1
            if not inflight:
                raise EnvironmentProblem("every node's sandbox pool was lost; check the "
                                         "Ray cluster and run eval again")
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
            for ref in ready:
                host, index = inflight.pop(ref)
                try:
                    results[index] = ray.get(ref)
                except RayTaskError as exc:
                    cause = exc.cause if isinstance(exc.cause, Exception) else None
                    raise cause or exc from None
                except RayError as exc:  # the host's node or process is gone
                    if host in hosts:
                        hosts.remove(host)
                        self.log(f"ray: lost a sandbox host ({one_line(exc)}); "
                                 f"{len(hosts)} left")
                    todo.appendleft(index)
                    continue
                if progress is not None:
                    progress(len(chunks[index]))
        return [r for chunk in results if chunk is not None for r in chunk]

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _close_hosts(self) -> None:
        """Close every pool (alongside a chunk still running), then end the actors."""
        import ray

        refs = []
        for host in self.hosts:
            with contextlib.suppress(Exception):
                refs.append(host.close.remote())
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        for ref in refs:
            with contextlib.suppress(Exception):
                ray.get(ref, timeout=max(0.1, deadline - time.monotonic()))
        for host in self.hosts:
            with contextlib.suppress(Exception):
                ray.kill(host)
        self.hosts = []


