"""Fork server that executes untrusted programs, one at a time. Standard library only.

It runs as the long-lived main process (PID 1) of a sandbox container, or as a host
subprocess for the explicitly unsafe local executor. Protocol, one JSON object per
line:

* stdin, a request: ``{"id", "program", "asserts": [..], "final", "timeout_s",
  "memory_mb", "output_limit"}``. Any number may be in flight; they run in order.
* stdout, first a ``{"ready": true, ...}`` line, then one answer per request:
  ``{"id", "status", "exit_code", "duration_s", "assert_verdicts", "stdout_tail",
  "stderr_tail", "error"}`` with status passed | failed | timeout | error | oom |
  sandbox_error.

Why a fork server: forking a warm interpreter costs about a millisecond, against
~100 ms for a `docker exec` and ~40 ms for a fresh Python. Why one program at a time:
after each program the runner kills *every* other process it can reach (in a
container, `kill(-1)` from PID 1, which nothing inside the container can kill), so no
descendant of a program - double-forked, `setsid`, ignoring signals - outlives it or
meets the next program. Parallelism comes from running several runners (containers).

Each program runs in a forked child: own session and process group, rlimits set in
the child (CPU, address space, file size, open files, processes), stdin /dev/null, a
fresh empty working directory in a scratch directory that is wiped after every
program, stdout/stderr through pipes of which only the tails are kept. The child
reports through a dedicated pipe (fd 3), never stdout: per-assert verdicts as they
finish, then a final line. Every line carries a random per-request token; a program
counts as passed only when the line saying so carries it, which only the epilogue
below writes after the program and its tests returned. So `exit(0)`, `os._exit(0)`,
`raise SystemExit` or killing the runner before the tests end are failures. (Code
that deliberately reads the token out of its own interpreter's memory could forge it;
the token defends against early exits and output tricks, not against that.)
"""

from __future__ import annotations

import argparse
import builtins
import collections
import contextlib
import hashlib
import io
import json
import math
import os
import resource
import secrets
import selectors
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, NoReturn

RESULT_FD = 3
"""The child's report channel; the program's own fds 0-2 are /dev/null and two pipes."""

PR_SET_CHILD_SUBREAPER = 36
CLEANUP_LIMIT_S = 10.0
"""Leftover processes that survive SIGKILL this long mean a broken sandbox: exit."""


@dataclass
class Request:
    """One validated request line."""

    id: str
    program: str
    asserts: list[str]
    final: str
    timeout_s: float
    memory_mb: int
    output_limit: int

    @classmethod
    def parse(cls, line: bytes, default_output_limit: int) -> Request:
        """Decode and validate a request; ValueError says what is wrong."""
        obj = json.loads(line)
        if not isinstance(obj, dict):
            raise ValueError("a request must be a JSON object")
        rid, program, final = obj.get("id"), obj.get("program"), obj.get("final", "")
        asserts = obj.get("asserts", [])
        if not isinstance(rid, str) or not rid:
            raise ValueError("'id' must be a non-empty string")
        if not isinstance(program, str) or not isinstance(final, str):
            raise ValueError("'program' and 'final' must be strings")
        if not isinstance(asserts, list) or not all(isinstance(a, str) for a in asserts):
            raise ValueError("'asserts' must be a list of strings")
        timeout_s = float(obj.get("timeout_s", 5.0))
        memory_mb = int(obj.get("memory_mb", 512))
        output_limit = int(obj.get("output_limit", default_output_limit))
        if not 0 < timeout_s <= 3600 or memory_mb < 0 or output_limit < 0:
            raise ValueError("need 0 < timeout_s <= 3600, memory_mb >= 0, output_limit >= 0")
        return cls(rid, program, asserts, final, timeout_s, memory_mb, output_limit)


class Tail:
    """The last `limit` bytes of a stream plus how much was dropped: output is capped,
    so a program printing 100 MB costs the runner a few kilobytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buf = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        self.buf += data
        excess = len(self.buf) - self.limit
        if excess > 0:
            del self.buf[:excess]
            self.dropped += excess

    def text(self) -> str:
        body = self.buf.decode("utf-8", "replace")
        return f"[... {self.dropped} bytes dropped ...]\n{body}" if self.dropped else body


@dataclass
class Job:
    """The request being executed and the parent's handles on its child."""

    req: Request
    token: str
    pid: int
    pidfd: int
    out_fd: int
    err_fd: int
    res_fd: int
    started: float
    deadline: float
    out: Tail
    err: Tail
    res_buf: bytearray = field(default_factory=bytearray)
    verdicts: list[bool] = field(default_factory=list)
    done: dict[str, Any] | None = None
    timed_out: bool = False
    forged: int = 0
    oom_before: int = -1


# ---------------------------------------------------------------- the child


def _classify(exc: BaseException) -> str:
    """Status for an exception escaping the program or a test."""
    if isinstance(exc, MemoryError):
        return "oom"
    if isinstance(exc, (AssertionError, SystemExit)):
        return "failed"
    return "error"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}) before the tests finished"
    text = str(exc)
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:500]


Limits = list[tuple[int, tuple[int, int]]]


def _limits(req: Request, fsize_mb: int, nproc: int) -> Limits:
    """The child's rlimits, computed in the parent so the child only applies them."""
    cpu = math.ceil(req.timeout_s) + 1
    wanted = [
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_FSIZE, fsize_mb << 20, fsize_mb << 20),
        (resource.RLIMIT_NOFILE, 128, 128),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    if req.memory_mb:
        wanted.append((resource.RLIMIT_AS, req.memory_mb << 20, req.memory_mb << 20))
    if nproc:
        wanted.append((resource.RLIMIT_NPROC, nproc, nproc))
    out: Limits = []
    for which, soft, hard in wanted:
        _, old_hard = resource.getrlimit(which)
        if old_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, old_hard), min(hard, old_hard)
        out.append((which, (soft, hard)))
    return out


def _child(req: Request, token: str, fds: tuple[int, int, int], workdir: str,
           limits: Limits) -> NoReturn:
    """Set the child up, run program, asserts and final call, report, exit. Never returns.

    Deliberately short: every page the child writes is copied from the runner, so
    whatever can be done once (environment, std streams) is done by the runner.
    sys.stdin/stdout/stderr are the runner's own objects, unused by it and so empty,
    now on /dev/null and the two pipes.
    """
    report_fd = fds[2]
    try:
        os.setsid()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        devnull = os.open(os.devnull, os.O_RDONLY)
        out_w, err_w, res_w = fds
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.dup2(res_w, RESULT_FD)
        report_fd = RESULT_FD
        os.closerange(RESULT_FD + 1, 1 << 16)
        os.chdir(workdir)
        with contextlib.suppress(OSError):  # under memory pressure the program dies first
            adj = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
            os.write(adj, b"1000")
            os.close(adj)
        for which, pair in limits:
            resource.setrlimit(which, pair)
    except BaseException as exc:  # setup failed: report it as the sandbox's fault
        os.write(report_fd, _line(
            {"token": token, "done": True, "status": "sandbox_error",
             "error": f"child setup failed: {exc!r}"}))
        os._exit(70)
    _epilogue_run(req, token)


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj) + "\n").encode()


def _epilogue_run(req: Request, token: str) -> NoReturn:
    """Run the three parts; the token goes only into lines written here."""
    oom_line = _line({"token": token, "done": True, "status": "oom", "error": "MemoryError"})

    def report(obj: dict[str, Any]) -> None:
        obj["token"] = token
        try:
            data = _line(obj)
        except MemoryError:
            data = oom_line
        os.write(RESULT_FD, data)

    def flush() -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):  # the program may have broken them
                stream.flush()

    def run(source: str, name: str, ns: dict[str, Any]) -> BaseException | None:
        try:
            exec(compile(source, name, "exec"), ns)
        except BaseException as exc:
            with contextlib.suppress(BaseException):  # printing must not change the verdict
                tb = exc.__traceback__.tb_next if exc.__traceback__ else None  # skip this frame
                traceback.print_exception(type(exc), exc, tb)
            return exc
        return None

    ns: dict[str, Any] = {"__name__": "__sandbox__", "__builtins__": builtins}
    exc = run(req.program, "<program>", ns)
    if exc is not None:
        flush()
        report({"done": True, "status": _classify(exc), "error": _describe(exc)})
        os._exit(0)

    first_failure: BaseException | None = None
    for i, source in enumerate(req.asserts):
        exc = run(source, f"<assert {i}>", ns)
        report({"assert": i, "ok": exc is None})
        if exc is not None and first_failure is None:
            first_failure = exc

    if req.final:
        exc = run(req.final, "<final>", ns)
        status, error = ("passed", "") if exc is None else (_classify(exc), _describe(exc))
    elif first_failure is not None:
        oom = isinstance(first_failure, MemoryError)
        status, error = ("oom" if oom else "failed"), _describe(first_failure)
    else:
        status, error = "passed", ""
    flush()
    report({"done": True, "status": status, "error": error})
    os._exit(0)


# ---------------------------------------------------------------- the parent


def _read_ppids() -> dict[int, int]:
    """pid -> parent pid for every visible process."""
    out: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        out[int(name)] = int(fields[1])
    return out


def _count_own_processes() -> int:
    uid = os.getuid()
    n = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                n += os.stat(f"/proc/{name}").st_uid == uid
    return n


def _oom_kills() -> int:
    """The memory cgroup's OOM-kill counter (v1 or v2), or -1 when unreadable."""
    for path, key in (("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill"),
                      ("/sys/fs/cgroup/memory.events", "oom_kill")):
        try:
            with open(path) as f:
                for line in f:
                    k, _, v = line.partition(" ")
                    if k == key:
                        return int(v)
        except OSError:
            continue
    return -1


def _own_digest() -> str:
    """sha256 of this file, so the harness can tell an image built from an older runner."""
    try:
        with open(os.path.abspath(__file__), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return ""


def _wipe(root: str, keep: str = "") -> None:
    """Delete everything under `root` (not `root` itself, and not the directory `keep`,
    only its contents), never following symlinks, restoring permissions a program
    removed. Iterative: no nesting depth can crash the runner."""
    stack: list[tuple[str, bool]] = [(root, False)]
    while stack:
        path, visited = stack.pop()
        if visited:
            if path not in (root, keep):
                with contextlib.suppress(OSError):
                    os.rmdir(path)
            continue
        try:
            if path != root:
                os.chmod(path, 0o700)
            entries = list(os.scandir(path))
        except OSError:
            continue
        stack.append((path, True))
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, False))
                else:
                    os.unlink(entry.path)
            except OSError:
                pass


class Runner:
    """The serve loop: queue requests, run one child at a time, answer, clean up."""

    def __init__(self, scratch: str, wipe: list[str], output_limit: int, fsize_mb: int,
                 max_procs: int) -> None:
        self.scratch = os.path.abspath(scratch)
        self.wipe_dirs = [self.scratch, *[d for d in wipe if os.path.isdir(d)]]
        self.workdir = os.path.join(self.scratch, "run")
        self.output_limit = output_limit
        self.fsize_mb = fsize_mb
        self.nproc = _count_own_processes() + max_procs if max_procs else 0
        self.is_init = os.getpid() == 1
        self.queue: collections.deque[Request] = collections.deque()
        self.inbuf = bytearray()
        self.stdin_open = True
        self.job: Job | None = None
        self.sel = selectors.DefaultSelector()

    # -- I/O helpers

    def send(self, obj: dict[str, Any]) -> None:
        data = _line(obj)
        while data:
            n = os.write(1, data)
            data = data[n:]

    def answer(self, rid: str | None, status: str, error: str = "", **extra: Any) -> None:
        base = {"id": rid, "status": status, "exit_code": None, "duration_s": 0.0,
                "assert_verdicts": None, "stdout_tail": "", "stderr_tail": "", "error": error}
        base.update(extra)
        self.send(base)

    def read_stdin(self) -> None:
        try:
            data = os.read(0, 1 << 20)
        except BlockingIOError:
            return
        if not data:
            self.stdin_open = False
            if 0 in self.sel.get_map():
                self.sel.unregister(0)
            return
        self.inbuf += data
        while True:
            nl = self.inbuf.find(b"\n")
            if nl < 0:
                break
            line = bytes(self.inbuf[:nl])
            del self.inbuf[:nl + 1]
            if not line.strip():
                continue
            try:
                self.queue.append(Request.parse(line, self.output_limit))
            except (ValueError, TypeError) as exc:
                rid = None
                with contextlib.suppress(Exception):
                    rid = json.loads(line).get("id")
                self.answer(rid if isinstance(rid, str) else None, "sandbox_error",
                            f"bad request: {exc}")

    # -- one job

    def start(self, req: Request) -> None:
        """Fork the child for `req`. Everything the parent needs is set up before the
        fork: after it, each page the parent writes while the child lives is copied."""
        os.makedirs(self.workdir, mode=0o700, exist_ok=True)
        token = secrets.token_hex(16)
        limits = _limits(req, self.fsize_mb, self.nproc)
        pipes = [os.pipe() for _ in range(3)]
        job = Job(req, token, -1, -1, pipes[0][0], pipes[1][0], pipes[2][0], 0.0, 0.0,
                  Tail(req.output_limit), Tail(req.output_limit))
        job.verdicts = [False] * len(req.asserts)
        job.oom_before = _oom_kills()
        for fd, tag in ((job.out_fd, "out"), (job.err_fd, "err"), (job.res_fd, "res")):
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, tag)
        try:
            pid = os.fork()
        except OSError as exc:
            for r, w in pipes:
                self.sel.unregister(r)
                os.close(r)
                os.close(w)
            self.answer(req.id, "sandbox_error", f"fork failed: {exc}")
            return
        if pid == 0:
            try:
                for r, _ in pipes:
                    os.close(r)
                _child(req, token, (pipes[0][1], pipes[1][1], pipes[2][1]), self.workdir,
                       limits)
            finally:
                os._exit(71)
        job.pid = pid
        job.started = time.monotonic()
        job.deadline = job.started + req.timeout_s
        for _, w in pipes:
            os.close(w)
        try:
            job.pidfd = os.pidfd_open(pid)
            self.sel.register(job.pidfd, selectors.EVENT_READ, "exit")
        except (AttributeError, OSError):
            job.pidfd = -1  # no pidfd: exits are polled
        self.job = job

    def pump(self, job: Job, fd: int, tag: str) -> str:
        """Read what is there from one child pipe: "more", "empty" (would block) or "eof"."""
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return "empty"
        except OSError:
            data = b""
        if not data:
            return "eof"
        if tag == "out":
            job.out.add(data)
        elif tag == "err":
            job.err.add(data)
        else:
            job.res_buf += data
            if len(job.res_buf) > 1 << 20:  # only a program writes that much to fd 3
                del job.res_buf[:-65536]
            self.parse_results(job)
        return "more"

    def parse_results(self, job: Job) -> None:
        while True:
            nl = job.res_buf.find(b"\n")
            if nl < 0:
                return
            raw = bytes(job.res_buf[:nl])
            del job.res_buf[:nl + 1]
            try:
                msg = json.loads(raw)
            except ValueError:
                job.forged += 1
                continue
            if not isinstance(msg, dict) or msg.get("token") != job.token:
                job.forged += 1
                continue
            if msg.get("done"):
                job.done = msg
            elif isinstance(msg.get("assert"), int) and 0 <= msg["assert"] < len(job.verdicts):
                job.verdicts[msg["assert"]] = bool(msg.get("ok"))

    def kill_leftovers(self, job: Job) -> bool:
        """SIGKILL every process but the runner and reap them all; False if that fails.

        In a container the runner is PID 1: `kill(-1)` reaches every other process and
        none of them can signal the runner back. On a host the runner is a child
        subreaper, so escaped descendants are re-parented to it and found in /proc.
        """
        with contextlib.suppress(OSError):
            os.killpg(job.pid, signal.SIGKILL)
        give_up = time.monotonic() + CLEANUP_LIMIT_S
        while True:
            if self.is_init:
                with contextlib.suppress(OSError):
                    os.kill(-1, signal.SIGKILL)
            try:
                while True:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                    if pid == 0:
                        break
            except ChildProcessError:
                return True  # no children left: no descendants left
            if not self.is_init:
                me = os.getpid()
                for pid, ppid in _read_ppids().items():
                    if ppid == me:
                        try:
                            os.killpg(pid, signal.SIGKILL) if pid == os.getpgid(pid) else None
                            os.kill(pid, signal.SIGKILL)
                        except OSError:
                            pass
            if time.monotonic() > give_up:
                return False
            time.sleep(0.001)

    def finish(self, job: Job) -> None:
        """The child is gone (exited or killed): reap, clean, drain, answer."""
        _, wstatus = os.waitpid(job.pid, 0)
        duration = time.monotonic() - job.started
        clean = self.kill_leftovers(job)
        for fd, tag in ((job.out_fd, "out"), (job.err_fd, "err"), (job.res_fd, "res")):
            # Every writer is dead and reaped, so this ends at EOF; "empty" only if not.
            while self.pump(job, fd, tag) == "more":
                pass
            self.sel.unregister(fd)
            os.close(fd)
        if job.pidfd >= 0:
            self.sel.unregister(job.pidfd)
            os.close(job.pidfd)
        self.job = None
        status, error, code = self.verdict(job, wstatus)
        self.answer(job.req.id, status, error, exit_code=code, duration_s=round(duration, 4),
                    assert_verdicts=job.verdicts if job.req.asserts else None,
                    stdout_tail=job.out.text(), stderr_tail=job.err.text())
        for d in self.wipe_dirs:
            _wipe(d, keep=self.workdir)
        if not clean:
            self.send({"fatal": "leftover processes survived SIGKILL"})
            sys.exit(75)

    def verdict(self, job: Job, wstatus: int) -> tuple[str, str, int | None]:
        code = os.waitstatus_to_exitcode(wstatus)
        if job.done is not None:
            status = str(job.done.get("status"))
            if status not in ("passed", "failed", "error", "oom", "sandbox_error"):
                status = "error"
            return status, str(job.done.get("error", "")), code
        if job.timed_out:
            return "timeout", f"wall-clock limit of {job.req.timeout_s}s exceeded", code
        note = f" ({job.forged} forged report lines ignored)" if job.forged else ""
        if code >= 0:
            return "failed", f"exited with code {code} before the tests finished{note}", code
        sig = -code
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig == signal.SIGXCPU:
            return "timeout", "CPU time limit exceeded", code
        if sig == signal.SIGKILL and 0 <= job.oom_before < _oom_kills():
            return "oom", "killed by the memory limit", code  # the cgroup's OOM killer
        if sig in (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT):
            return "error", f"crashed with {name}", code
        return "failed", f"killed by {name} before the tests finished{note}", code

    # -- the loop

    def prepare_process(self) -> None:
        """Do once what every child would otherwise redo: a clean environment (no
        harness secrets; HOME and TMPDIR in the scratch area) and std streams that
        never fail on odd characters."""
        keep = {k: os.environ[k] for k in ("PATH", "LANG", "PYTHONHASHSEED",
                                           "PYTHONDONTWRITEBYTECODE") if k in os.environ}
        os.environ.clear()
        os.environ.update({"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **keep,
                           "HOME": self.workdir, "TMPDIR": self.scratch})
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, io.TextIOWrapper):
                stream.reconfigure(errors="backslashreplace")

    def serve(self) -> None:
        os.makedirs(self.scratch, exist_ok=True)
        for d in self.wipe_dirs:
            _wipe(d)
        self.prepare_process()
        os.set_blocking(1, True)
        try:
            self.sel.register(0, selectors.EVENT_READ, "stdin")
            os.set_blocking(0, False)
        except PermissionError:  # stdin is a regular file (a hand-made request file)
            while self.stdin_open:
                self.read_stdin()
        self.send({"ready": True, "pid": os.getpid(), "python": sys.version.split()[0],
                   "sha256": _own_digest()})
        while True:
            if self.job is None:
                if self.queue:
                    self.start(self.queue.popleft())
                    continue
                if not self.stdin_open:
                    return
            job = self.job
            timeout = None
            if job is not None:
                timeout = max(0.0, job.deadline - time.monotonic())
                if job.pidfd < 0:
                    timeout = min(timeout, 0.005)
            exited = False
            for key, _ in self.sel.select(timeout):
                if key.data == "stdin":
                    self.read_stdin()
                elif job is not None and key.data == "exit":
                    exited = True
                elif job is not None:
                    self.pump(job, key.fd, key.data)
            if job is None:
                continue
            if not exited and job.pidfd < 0:
                exited = os.waitid(os.P_PID, job.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) \
                    is not None
            if not exited and time.monotonic() >= job.deadline:
                job.timed_out = True
                # The group, and the child itself in case it has not reached setsid().
                for kill in (os.killpg, os.kill):
                    with contextlib.suppress(OSError):
                        kill(job.pid, signal.SIGKILL)
                exited = True
            if exited:
                self.finish(job)


def _become_subreaper() -> None:
    """On a host, orphans of a program must come back to the runner to be killed."""
    if os.getpid() == 1:
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", default="/tmp",
                        help="directory wiped after every program; holds the working dir")
    parser.add_argument("--wipe", action="append", default=[],
                        help="another directory to wipe after every program (e.g. /dev/shm)")
    parser.add_argument("--output-limit", type=int, default=4096,
                        help="bytes of stdout/stderr tail kept per program")
    parser.add_argument("--fsize-mb", type=int, default=32, help="RLIMIT_FSIZE of a program")
    parser.add_argument("--max-procs", type=int, default=64,
                        help="processes a program may add (RLIMIT_NPROC); 0 leaves it")
    args = parser.parse_args(argv)

    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    if os.getpid() == 1:
        # Inside the container nothing can signal PID 1 - unless it installed a handler.
        # So it keeps none (not even Python's SIGINT one): a program's kill(1, ...) is void.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    else:
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGHUP, on_term)
    _become_subreaper()
    runner = Runner(args.scratch, args.wipe, args.output_limit, args.fsize_mb, args.max_procs)
    try:
        runner.serve()
    finally:
        if runner.job is not None:
            runner.kill_leftovers(runner.job)
    return 0


if __name__ == "__main__":
    sys.exit(main())
