"""Fork server that executes untrusted programs, one at a time. Standard library only.

It runs as the main process (PID 1) of a sandbox container, or as a host subprocess
for the explicitly unsafe local executor. The trust model (docs/sandbox.md): the
program is written by an adversary that knows this file, so nothing inside the
program's process decides a verdict where that can be avoided.

Protocol, one JSON object per line:

* stdin, a request: ``{"id", "program", "preamble", "steps": [..], "final",
  "timeout_s", "memory_mb", "output_limit"}``. A step is ``{"source": "assert ..."}``
  (run in the program's namespace; its pass/fail is reported), ``{"call": NAME,
  "args": [..], "kwargs": [[k, v], ..]}`` (call NAME with plain-data arguments and
  return the result as plain data, see `encode_value`) or ``{"skip": true}``.
  Expected results never appear here: the harness compares returned values itself.
* stdout, first ``{"ready": true, ...}``, then one answer per request, in order:
  ``{"id", "status", "exit_code", "duration_s", "assert_verdicts", "values",
  "stdout_tail", "stderr_tail", "error"}``; status passed | failed | timeout | error |
  oom | sandbox_error. "passed" here means: the program and its preamble ran, every
  source step and the final call passed and every call returned. Whether the
  returned values are right is the harness's decision.
* a ``{"fatal": why}`` line means the runner found itself changed or unclean and is
  exiting; the harness replaces it.

Processes. Three kinds, so that no program can reach what decides verdicts:

* the **runner** (PID 1; root in a container, with only CAP_SETUID, CAP_SETGID and
  CAP_KILL; non-dumpable) holds the queue, talks to the harness, enforces timeouts and
  writes answers. Programs run under another uid, so they cannot open /proc/1/*,
  ptrace it, prlimit it or signal it.
* the **zygote**, forked once at start-up before any request is read, so its memory
  never held a request. It forks one child per program (and one cleaner after it),
  so no program can find another program - queued, past or future - in its memory.
* the **child** drops to the program uid, reads its own request from a memfd, compiles
  program, preamble and test steps as separate units (a dangling decorator or an
  unclosed bracket in a completion is the completion's syntax error and never
  becomes part of a test), runs them and reports on a socket (fd 3): a socket cannot
  be reopened through /proc/self/fd, unlike a pipe.

After every program a **cleaner** with the program's uid kills every process of that
uid and deletes what it left: files in /tmp and /dev/shm however deep, POSIX message
queues and SysV IPC objects. Then the runner checks its own limits; if anything the
program could have changed changed, or something could not be removed, it sends
``fatal`` and exits, and the harness recycles the container.

On a host (the local executor) there is no second uid: programs run as you, the
runner is a child subreaper that kills their descendants, and only the scratch
directory is wiped (your own /dev/shm and IPC objects are never touched). That mode
is not isolated and says so.
"""

from __future__ import annotations

import argparse
import builtins
import collections
import contextlib
import fcntl
import hashlib
import io
import json
import math
import os
import resource
import secrets
import selectors
import signal
import socket
import stat
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, NoReturn

RESULT_FD = 3
"""The child's report channel (a socket); fds 0-2 are /dev/null and two pipes."""

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
CLEANUP_LIMIT_S = 10.0
"""Leftover processes that survive SIGKILL this long mean a broken sandbox: exit."""

MAX_LINE = 1 << 20
"""Longest report line the runner reads from a child; longer ones are dropped."""
MAX_VALUE_BYTES = 1 << 20
"""Budget of one returned value once encoded (characters, roughly)."""
MAX_VALUES_BYTES = 4 << 20
"""Budget of all values of one request; past it values become errors."""
MAX_DEPTH = 64
"""Deepest nesting a returned value may have."""

WORKDIR_MODE = 0o755
"""The program's working directory: its own, and listable by the runner, whose quick
check for leftovers (`Runner.looks_clean`) needs no capability to read it."""

STATUSES = ("passed", "failed", "timeout", "error", "oom", "sandbox_error")


# ---------------------------------------------------------------- plain data


def encode_value(value: Any, limit: int = MAX_VALUE_BYTES) -> Any:
    """A JSON-able, type-tagged copy of `value`, or ValueError if it is not plain data.

    Plain data = None, bool, int, float, complex, str, bytes and list, tuple, set,
    frozenset, dict of plain data, each of exactly that type: a subclass (say an int
    whose __eq__ always says True) is refused, and nothing here calls a method a
    program could have defined. Ints are hex and floats `float.hex()`, so nothing is
    rounded, NaN and infinities survive, and no int is too long to print.
    """
    budget = [limit]

    def enc(v: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH}")
        budget[0] -= 8
        if budget[0] < 0:
            raise ValueError("value too large")
        t = type(v)
        if v is None or t is bool:
            return v
        if t is int:
            text = format(v, "x")
            budget[0] -= len(text)
            return {"i": text}
        if t is float:
            return {"f": float.hex(v)}
        if t is str:
            budget[0] -= len(v)
            if budget[0] < 0:
                raise ValueError("value too large")
            return v
        if t is bytes:
            budget[0] -= 2 * len(v)
            if budget[0] < 0:
                raise ValueError("value too large")
            return {"b": bytes.hex(v)}
        if t is complex:
            return {"c": [float.hex(v.real), float.hex(v.imag)]}
        if t is list:
            return {"l": [enc(x, depth + 1) for x in list.copy(v)]}
        if t is tuple:
            return {"t": [enc(x, depth + 1) for x in v]}
        if t is set:
            return {"s": [enc(x, depth + 1) for x in set.copy(v)]}
        if t is frozenset:
            return {"fs": [enc(x, depth + 1) for x in v]}
        if t is dict:
            return {"d": [[enc(k, depth + 1), enc(x, depth + 1)]
                          for k, x in list(dict.items(v))]}
        raise ValueError(f"not plain data: {t.__name__}")

    return enc(value, 0)


def decode_value(obj: Any) -> Any:
    """The Python value `encode_value` encoded; ValueError for anything else.

    Strict: every node must be exactly one of the encoded forms, nesting is bounded
    and containers are rebuilt from builtins, so the result holds no object whose
    behaviour a program chose.
    """

    def dec(o: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH}")
        t = type(o)
        if o is None or t is bool or t is str:
            return o
        if t is not dict or len(o) != 1:
            raise ValueError("not an encoded value")
        ((tag, body),) = o.items()
        if tag in ("i", "f", "b"):
            if type(body) is not str or len(body) > MAX_VALUES_BYTES:
                raise ValueError(f"bad {tag!r} body")
            if tag == "i":
                return int(body, 16)
            return float.fromhex(body) if tag == "f" else bytes.fromhex(body)
        if tag == "c":
            if (type(body) is not list or len(body) != 2
                    or not all(type(x) is str for x in body)):
                raise ValueError("bad complex")
            return complex(float.fromhex(body[0]), float.fromhex(body[1]))
        if type(body) is not list:
            raise ValueError(f"bad {tag!r} body")
        if tag == "d":
            out: dict[Any, Any] = {}
            for pair in body:
                if type(pair) is not list or len(pair) != 2:
                    raise ValueError("bad dict item")
                out[dec(pair[0], depth + 1)] = dec(pair[1], depth + 1)
            return out
        items = [dec(x, depth + 1) for x in body]
        if tag == "l":
            return items
        if tag == "t":
            return tuple(items)
        if tag == "s":
            return set(items)
        if tag == "fs":
            return frozenset(items)
        raise ValueError(f"unknown tag {tag!r}")

    try:
        return dec(obj, 0)
    except (TypeError, OverflowError, RecursionError) as exc:  # unhashable key, ...
        raise ValueError(f"not an encoded value: {type(exc).__name__}") from None


# ---------------------------------------------------------------- requests


@dataclass
class Request:
    """One validated request line."""

    id: str
    program: str
    preamble: str
    steps: list[dict[str, Any]]
    final: str
    timeout_s: float
    memory_mb: int
    output_limit: int

    @classmethod
    def parse(cls, line: bytes, default_output_limit: int) -> Request:
        """Decode and validate a request; ValueError says what is wrong."""
        try:
            obj = json.loads(line)
        except RecursionError:
            raise ValueError("request nested too deeply") from None
        if not isinstance(obj, dict):
            raise ValueError("a request must be a JSON object")
        rid, program = obj.get("id"), obj.get("program")
        preamble, final = obj.get("preamble", ""), obj.get("final", "")
        steps = obj.get("steps", [])
        if not isinstance(rid, str) or not rid:
            raise ValueError("'id' must be a non-empty string")
        if not all(isinstance(x, str) for x in (program, preamble, final)):
            raise ValueError("'program', 'preamble' and 'final' must be strings")
        if not isinstance(steps, list) or not all(_valid_step(s) for s in steps):
            raise ValueError("'steps' must be a list of {source} | {call, args, kwargs} | "
                             "{skip} objects")
        timeout_s = obj.get("timeout_s", 5.0)
        memory_mb = obj.get("memory_mb", 512)
        output_limit = obj.get("output_limit", default_output_limit)
        if not (type(timeout_s) in (int, float) and 0 < timeout_s <= 3600
                and type(memory_mb) is int and memory_mb >= 0
                and type(output_limit) is int and output_limit >= 0):
            raise ValueError("need 0 < timeout_s <= 3600, memory_mb >= 0, output_limit >= 0")
        return cls(rid, program, preamble, steps, final, float(timeout_s), memory_mb,
                   output_limit)


def _valid_step(step: Any) -> bool:
    if not isinstance(step, dict):
        return False
    if "source" in step:
        return isinstance(step["source"], str)
    if "call" in step:
        return (isinstance(step["call"], str) and isinstance(step.get("args"), list)
                and isinstance(step.get("kwargs", []), list))
    return step.get("skip") is True


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


# ---------------------------------------------------------------- the child


def _classify(exc: BaseException) -> str:
    """Status for an exception escaping the program or a test."""
    if isinstance(exc, MemoryError):
        return "oom"
    if isinstance(exc, (AssertionError, SystemExit)):
        return "failed"
    return "error"


def _describe(exc: BaseException) -> str:
    try:
        if isinstance(exc, SystemExit):
            return f"SystemExit({exc.code!r}) before the tests finished"[:500]
        text = str(exc)
        return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:500]
    except BaseException:  # a program's exception may refuse to be printed
        return type(exc).__name__


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj) + "\n").encode("utf-8", "backslashreplace")


Limits = list[tuple[int, tuple[int, int]]]


def _limits(timeout_s: float, memory_mb: int, fsize_mb: int, nproc: int) -> Limits:
    """The child's rlimits, computed by the runner so the child only applies them."""
    cpu = math.ceil(timeout_s) + 1
    wanted = [
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_FSIZE, fsize_mb << 20, fsize_mb << 20),
        (resource.RLIMIT_NOFILE, 128, 128),
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_MSGQUEUE, 1 << 16, 1 << 16),
    ]
    if memory_mb:
        wanted.append((resource.RLIMIT_AS, memory_mb << 20, memory_mb << 20))
    if nproc:
        wanted.append((resource.RLIMIT_NPROC, nproc, nproc))
    out: Limits = []
    for which, soft, hard in wanted:
        _, old_hard = resource.getrlimit(which)
        if old_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, old_hard), min(hard, old_hard)
        out.append((which, (soft, hard)))
    return out


def _drop_to(uid: int) -> None:
    """Become `uid` for good (real, effective, saved; no groups): all capabilities go."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError("could not drop to the program uid")


def _child(spec: dict[str, Any], fds: list[int]) -> NoReturn:
    """Set up, read the request, run it, report, exit. Never returns.

    fds: stdout pipe, stderr pipe, result socket, request memfd (write ends / child
    ends, received by the zygote from the runner).
    """
    report_fd = -1
    try:
        # Received fds may sit on 0-3; move them out of the way of the dup2s below.
        out_w, err_w, res_w, req_fd = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds)
        report_fd = res_w
        os.setsid()
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.dup2(res_w, RESULT_FD)
        report_fd = RESULT_FD
        chunks = []
        while True:
            chunk = os.read(req_fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        os.closerange(RESULT_FD + 1, 1 << 16)
        if spec["uid"] is not None:
            _drop_to(spec["uid"])
        os.chdir(spec["workdir"])
        with contextlib.suppress(OSError):  # under memory pressure the program dies first
            adj = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
            os.write(adj, b"1000")
            os.close(adj)
        for which, pair in spec["limits"]:
            resource.setrlimit(which, tuple(pair))
        req = json.loads(b"".join(chunks))
        del chunks
    except BaseException as exc:  # setup failed: the sandbox's fault, not the program's
        with contextlib.suppress(OSError):
            os.write(report_fd, _line({"token": spec["token"], "k": "done",
                                       "status": "sandbox_error",
                                       "error": f"child setup failed: {exc!r}"}))
        os._exit(70)
    _run_request(req, spec["token"])


def _block_new_audit_hooks(event: str, _args: tuple[Any, ...]) -> None:
    """Installed before the program: it may not add audit hooks (to swap tests)."""
    if event == "sys.addaudithook":
        raise RuntimeError("audit hooks are not allowed in the sandbox")


def _run_request(req: dict[str, Any], token: str) -> NoReturn:
    """Compile every unit, run program, preamble, steps and final; report; exit.

    Everything the reporting needs is bound before the program runs, so a program
    that replaces `exec`, `json.dumps` or `os.write` changes nothing here. That
    hardens the in-process path (source steps, final) but cannot make it safe: code
    in the same process can always reach this frame. Calls are safe: their results
    leave as plain data and the harness, which alone knows the expected values,
    compares them.
    """
    write, run_code, enc, dumps = os.write, exec, encode_value, json.dumps
    oom_line = _line({"token": token, "k": "done", "status": "oom", "error": "MemoryError"})

    def report(obj: dict[str, Any]) -> None:
        obj["token"] = token
        try:
            data = (dumps(obj) + "\n").encode("utf-8", "backslashreplace")
        except MemoryError:
            data = oom_line
        with contextlib.suppress(OSError):
            write(RESULT_FD, data)

    def flush() -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):  # the program may have broken them
                stream.flush()

    def finish(status: str, error: str) -> NoReturn:
        flush()
        report({"k": "done", "status": status, "error": error})
        os._exit(0)

    def compile_unit(source: str, name: str) -> Any:
        try:
            return compile(source, name, "exec", dont_inherit=True)
        except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
            return exc

    def run(code: Any, ns: dict[str, Any]) -> BaseException | None:
        try:
            run_code(code, ns)
        except BaseException as exc:
            with contextlib.suppress(BaseException):  # printing must not change the verdict
                tb = exc.__traceback__.tb_next if exc.__traceback__ else None
                traceback.print_exception(type(exc), exc, tb)
            return exc
        return None

    steps = tuple(req["steps"])
    tests = tuple(compile_unit(s["source"], f"<assert {i}>") if "source" in s else None
                  for i, s in enumerate(steps))
    preamble = compile_unit(req["preamble"], "<test preamble>") if req["preamble"] else None
    final = compile_unit(req["final"], "<final>") if req["final"] else None
    for unit in (preamble, final, *tests):
        if isinstance(unit, BaseException):
            finish("sandbox_error", f"test code does not compile: {_describe(unit)}")
    try:
        calls = tuple((s["call"], [decode_value(a) for a in s["args"]],
                       {k: decode_value(v) for k, v in s.get("kwargs", [])})
                      if "call" in s else None for s in steps)
    except (ValueError, TypeError) as exc:
        finish("sandbox_error", f"bad call arguments: {exc}")
    program = compile_unit(req["program"], "<program>")
    del req
    if isinstance(program, BaseException):
        finish(_classify(program), _describe(program))

    clean_builtins = dict(builtins.__dict__)
    with contextlib.suppress(Exception):
        sys.addaudithook(_block_new_audit_hooks)
    ns: dict[str, Any] = {"__name__": "__sandbox__", "__builtins__": builtins}
    exc = run(program, ns)
    if exc is not None:
        finish(_classify(exc), _describe(exc))

    # Undo what a program may have done to the interpreter the tests run in.
    sys.settrace(None)
    sys.setprofile(None)
    builtins.__dict__.clear()
    builtins.__dict__.update(clean_builtins)
    ns["__builtins__"] = builtins
    if preamble is not None:
        exc = run(preamble, ns)
        if exc is not None:
            finish("error", f"test preamble failed: {_describe(exc)}")

    first_failure: BaseException | None = None
    for i, step in enumerate(steps):
        if step.get("skip"):
            continue
        call = calls[i]
        if call is None:
            exc = run(tests[i], ns)
            report({"k": "a", "i": i, "ok": exc is None})
        else:
            name, args, kwargs = call
            try:
                value = ns[name](*args, **kwargs)
            except BaseException as caught:
                exc = caught
                report({"k": "v", "i": i, "e": _describe(caught)})
            else:
                exc = None
                try:
                    report({"k": "v", "i": i, "v": enc(value)})
                except (ValueError, RecursionError) as bad:
                    report({"k": "v", "i": i, "e": f"unusable return value: {bad}"})
                except BaseException as caught:
                    exc = caught
                    report({"k": "v", "i": i, "e": _describe(caught)})
        if exc is not None and first_failure is None:
            first_failure = exc

    if final is not None:
        exc = run(final, ns)
        if exc is not None:
            finish(_classify(exc), _describe(exc))
        finish("passed", "")
    if first_failure is not None:
        finish("oom" if isinstance(first_failure, MemoryError) else "failed",
               _describe(first_failure))
    finish("passed", "")


# ---------------------------------------------------------------- cleaning


def _remove_tree_contents(root: str, keep: str = "") -> int:
    """Delete everything below `root` without following symlinks; entries left.

    Iterative and fd-relative (it walks down with `dir_fd` and back up through
    ".."), so neither nesting depth nor paths longer than PATH_MAX can stop it, and it
    holds one directory fd at a time. `keep` (a name directly in `root`) is emptied
    but kept. Only safe while nothing else writes there: the cleaner runs after every
    process of the program's uid is dead.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        fd = os.open(root, flags)
    except OSError:
        return 0
    names: list[str] = []  # path from root to the current directory
    left = 0
    failed: set[tuple[int, int]] = set()
    try:
        while True:
            descended = False
            with os.scandir(fd) as it:
                entries = list(it)
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):
                        if (st.st_dev, st.st_ino) in failed:
                            continue
                        with contextlib.suppress(OSError):
                            os.chmod(entry.name, 0o700, dir_fd=fd, follow_symlinks=False)
                        sub = os.open(entry.name, flags, dir_fd=fd)
                        os.close(fd)
                        fd = sub
                        names.append(entry.name)
                        descended = True
                        break
                    os.unlink(entry.name, dir_fd=fd)
                except OSError:
                    left += 1
            if descended:
                continue
            if not names:
                return left
            name = names.pop()
            parent = os.open("..", flags, dir_fd=fd)
            here = os.fstat(fd)
            os.close(fd)
            fd = parent
            if names or name != keep:
                try:
                    os.rmdir(name, dir_fd=fd)
                except OSError:
                    failed.add((here.st_dev, here.st_ino))
                    left += 1
            else:
                failed.add((here.st_dev, here.st_ino))  # `keep`, emptied: do not visit again
    except OSError:
        return left + 1
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


_LIBC: Any = None


def _libc() -> Any:
    """libc through ctypes, loaded once (in the zygote, before any program)."""
    global _LIBC
    if _LIBC is None:
        import ctypes

        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


SYSV_KINDS = ("shm", "msg", "sem")


def _sysv_rows(kind: str) -> list[list[str]]:
    """Rows of /proc/sysvipc/<kind>, header first ([] if unreadable)."""
    try:
        with open(f"/proc/sysvipc/{kind}") as f:
            return [line.split() for line in f]
    except OSError:
        return []


def _remove_sysv_ipc(uid: int) -> int:
    """Remove SysV shared memory, message queues and semaphores owned by `uid`; the
    number that could not be removed."""
    libc = _libc()
    ipc_rmid = 0
    left = 0
    for kind, remove in zip(SYSV_KINDS, (libc.shmctl, libc.msgctl, libc.semctl), strict=True):
        header, *rows = _sysv_rows(kind) or [[]]
        if not rows:
            continue
        col_id = header.index({"shm": "shmid", "msg": "msqid", "sem": "semid"}[kind])
        col_uid = header.index("uid")
        for row in rows:
            if int(row[col_uid]) != uid:
                continue
            args = (int(row[col_id]), 0, ipc_rmid) if kind == "sem" else \
                (int(row[col_id]), ipc_rmid, None)
            if remove(*args) != 0:
                left += 1
    return left


def _living_processes(uid: int, me: int) -> int:
    """Processes whose real uid is `uid`, other than `me`, that are not zombies.

    Read from /proc/N/status: a process that changed uid is non-dumpable, and its
    /proc/N directory then belongs to root whatever its uid."""
    n = 0
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as f:
                fields = dict(line.split(b":", 1) for line in f.read().splitlines()
                              if b":" in line)
        except OSError:
            continue
        uids = fields.get(b"Uid", b"").split()
        state = fields.get(b"State", b"").strip()[:1]
        if uids and int(uids[0]) == uid and state not in (b"Z", b"X"):
            n += 1
    return n


def _count_own_processes() -> int:
    """Processes of this uid now: on a host RLIMIT_NPROC counts all of them."""
    return sum(1 for name in os.listdir("/proc") if name.isdigit() and _owned_by_me(name))


def _owned_by_me(pid: str) -> bool:
    try:
        return os.stat(f"/proc/{pid}").st_uid == os.getuid()
    except OSError:
        return False


def _cleaner(spec: dict[str, Any], report_fd: int) -> NoReturn:
    """With the program's uid: kill every process of it, delete what it left, report."""
    left: dict[str, int] = {}
    try:
        uid = spec["uid"]
        _drop_to(uid)
        me = os.getpid()
        give_up = time.monotonic() + CLEANUP_LIMIT_S
        while True:
            with contextlib.suppress(OSError):
                os.kill(-1, signal.SIGKILL)  # every process of this uid but this one
            if not _living_processes(uid, me):
                break
            if time.monotonic() > give_up:
                left["processes"] = _living_processes(uid, me)
                break
            time.sleep(0.001)
        for d in spec["wipe"]:
            n = _remove_tree_contents(d, keep=spec["keep"] if d == spec["scratch"] else "")
            if n:
                left[d] = n
        n = _remove_sysv_ipc(uid)
        if n:
            left["sysv_ipc"] = n
        workdir = os.path.join(spec["scratch"], spec["keep"])
        with contextlib.suppress(FileExistsError):
            os.mkdir(workdir, WORKDIR_MODE)
        os.chmod(workdir, WORKDIR_MODE)
    except BaseException as exc:
        left["error"] = 1
        left[f"cleaner failed: {exc!r}"[:200]] = 1
    with contextlib.suppress(OSError):
        os.write(report_fd, json.dumps(left).encode())
    os._exit(0)


# ---------------------------------------------------------------- the zygote


def _zygote(ctl: socket.socket) -> NoReturn:
    """Fork children and cleaners on the runner's word; report their exit statuses.

    One command at a time over a SOCK_SEQPACKET socket: {"op": "spawn"|"clean", ...}
    plus file descriptors. It answers {"pid"} and then {"exit", "status"}.
    """
    with contextlib.suppress(OSError, AttributeError):
        _libc()  # once here rather than in every cleaner
    try:
        while True:
            msg, fds, _flags, _addr = socket.recv_fds(ctl, 1 << 16, 8)
            if not msg:
                os._exit(0)
            cmd = json.loads(msg)
            try:
                pid = os.fork()
            except OSError as exc:
                for fd in fds:
                    os.close(fd)
                ctl.send(json.dumps({"error": f"fork failed: {exc}"}).encode())
                continue
            if pid == 0:
                try:
                    ctl.close()
                    if cmd["op"] == "spawn":
                        _child(cmd, fds)
                    _cleaner(cmd, fds[0])
                finally:
                    os._exit(71)
            for fd in fds:
                os.close(fd)
            ctl.send(json.dumps({"pid": pid}).encode())
            _, status = os.waitpid(pid, 0)
            ctl.send(json.dumps({"exit": pid, "status": status}).encode())
    except BaseException:
        os._exit(72)


# ---------------------------------------------------------------- the runner


@dataclass
class Job:
    """The request being executed and the runner's handles on its child."""

    req: Request
    token: str
    pid: int
    out_fd: int
    err_fd: int
    res_sock: socket.socket
    started: float
    deadline: float
    out: Tail
    err: Tail
    res_buf: bytearray = field(default_factory=bytearray)
    verdicts: list[bool | None] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    value_bytes: int = 0
    done: dict[str, Any] | None = None
    timed_out: bool = False
    forged: int = 0
    oom_before: int = -1
    wstatus: int | None = None


def _read_ppids() -> dict[int, int]:
    """pid -> parent pid for every visible process."""
    out: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2:].split()
        out[int(name)] = int(fields[1])
    return out


def _children() -> list[int]:
    """This process's children: /proc/self/task/*/children where the kernel has it (one
    small read), else a scan of every process's parent."""
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return [p for p, pp in _read_ppids().items() if pp == me]


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


def _prctl(option: int, value: int) -> bool:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _rlimit_snapshot() -> dict[int, tuple[int, int]]:
    names = [n for n in dir(resource) if n.startswith("RLIMIT_")]
    return {getattr(resource, n): resource.getrlimit(getattr(resource, n)) for n in names}


class Fatal(Exception):
    """The runner can no longer vouch for its container: say so and exit."""


class Runner:
    """The serve loop: queue requests, run one child at a time, answer, clean up."""

    def __init__(self, scratch: str, wipe: list[str], output_limit: int, fsize_mb: int,
                 max_procs: int, program_uid: int | None) -> None:
        self.scratch = os.path.abspath(scratch)
        self.keep = "run"
        self.workdir = os.path.join(self.scratch, self.keep)
        self.wipe_dirs = [self.scratch, *[d for d in wipe if os.path.isdir(d)]]
        self.output_limit = output_limit
        self.fsize_mb = fsize_mb
        self.uid = program_uid
        # RLIMIT_NPROC counts every process of the uid: on a host, yours too.
        self.nproc = 0 if not max_procs else (
            max_procs if program_uid is not None else _count_own_processes() + max_procs)
        self.is_init = os.getpid() == 1
        self.queue: collections.deque[Request] = collections.deque()
        self.inbuf = bytearray()
        self.stdin_open = True
        self.job: Job | None = None
        self.sel = selectors.DefaultSelector()
        self.zygote_pid = -1
        self.ctl: socket.socket | None = None
        self.limits_at_start: dict[int, tuple[int, int]] = {}

    # -- I/O helpers

    def send(self, obj: dict[str, Any]) -> None:
        data = _line(obj)
        while data:
            n = os.write(1, data)
            data = data[n:]

    def answer(self, rid: str | None, status: str, error: str = "", **extra: Any) -> None:
        base = {"id": rid, "status": status, "exit_code": None, "duration_s": 0.0,
                "assert_verdicts": None, "values": None, "stdout_tail": "",
                "stderr_tail": "", "error": error}
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

    # -- the zygote

    def start_zygote(self) -> None:
        """Fork the zygote now, before any request has been read."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            # Nothing of the runner's but stderr: not the harness's answer stream, not
            # the selector. Fds 0 and 1 stay taken so received fds land above them.
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            keep = theirs.fileno()
            os.closerange(3, keep)
            os.closerange(keep + 1, 1 << 16)
            _zygote(theirs)
        theirs.close()
        self.zygote_pid = pid
        self.ctl = ours

    def zygote_call(self, cmd: dict[str, Any], fds: list[int]) -> int:
        """Send a command; the forked pid. Fatal if the zygote is gone."""
        assert self.ctl is not None
        try:
            socket.send_fds(self.ctl, [json.dumps(cmd).encode()], fds)
            reply = json.loads(self.ctl.recv(1 << 16) or b"null")
        except (OSError, ValueError) as exc:
            raise Fatal(f"zygote unreachable: {exc}") from None
        if not isinstance(reply, dict) or "pid" not in reply:
            raise Fatal(f"zygote could not fork: {reply}")
        return int(reply["pid"])

    def zygote_exit(self, timeout: float | None) -> int | None:
        """The wait status of the zygote's current child, if it is reported in time."""
        assert self.ctl is not None
        self.ctl.settimeout(timeout)
        try:
            data = self.ctl.recv(1 << 16)
        except TimeoutError:
            return None
        except OSError as exc:
            raise Fatal(f"zygote unreachable: {exc}") from None
        finally:
            self.ctl.settimeout(None)
        if not data:
            raise Fatal("the zygote died")
        return int(json.loads(data)["status"])

    # -- one job

    def start(self, req: Request) -> None:
        """Hand `req` to a fresh child: it reads the request from a memfd of its own."""
        token = secrets.token_hex(16)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        res_ours, res_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        req_fd = os.memfd_create("request", os.MFD_CLOEXEC)
        payload = json.dumps({"program": req.program, "preamble": req.preamble,
                              "steps": req.steps, "final": req.final}).encode(
                                  "utf-8", "surrogatepass")
        view = memoryview(payload)
        while view:
            view = view[os.write(req_fd, view):]
        os.lseek(req_fd, 0, os.SEEK_SET)
        spec = {"op": "spawn", "token": token, "uid": self.uid, "workdir": self.workdir,
                "limits": _limits(req.timeout_s, req.memory_mb, self.fsize_mb, self.nproc)}
        theirs = [out_w, err_w, res_theirs.fileno(), req_fd]
        job = Job(req, token, -1, out_r, err_r, res_ours, 0.0, 0.0,
                  Tail(req.output_limit), Tail(req.output_limit))
        job.verdicts = [None] * len(req.steps)
        job.values = [None] * len(req.steps)
        job.oom_before = _oom_kills()
        try:
            pid = self.zygote_call(spec, theirs)
        finally:
            for fd in (out_w, err_w, req_fd):
                os.close(fd)
            res_theirs.close()
        for fd, tag in ((out_r, "out"), (err_r, "err"), (res_ours.fileno(), "res")):
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, tag)
        assert self.ctl is not None
        self.sel.register(self.ctl.fileno(), selectors.EVENT_READ, "exit")
        job.pid = pid
        job.started = time.monotonic()
        job.deadline = job.started + req.timeout_s
        self.job = job

    def pump(self, job: Job, fd: int, tag: str) -> str:
        """Read what is there from one child stream: "more", "empty" or "eof"."""
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
            self.parse_results(job)
        return "more"

    def parse_results(self, job: Job) -> None:
        while True:
            nl = job.res_buf.find(b"\n")
            if nl < 0:
                if len(job.res_buf) > MAX_LINE:  # only a program writes lines that long
                    job.res_buf.clear()
                    job.forged += 1
                return
            raw = bytes(job.res_buf[:nl])
            del job.res_buf[:nl + 1]
            try:
                msg = json.loads(raw) if len(raw) <= MAX_LINE else None
            except (ValueError, RecursionError):
                msg = None
            if not isinstance(msg, dict) or msg.get("token") != job.token:
                job.forged += 1
                continue
            self.record(job, msg)

    def record(self, job: Job, msg: dict[str, Any]) -> None:
        """Keep one report line; the first report of each step counts."""
        kind, i = msg.get("k"), msg.get("i")
        if kind == "done":
            if job.done is None:
                job.done = msg
            return
        if type(i) is not int or not 0 <= i < len(job.verdicts):
            job.forged += 1
            return
        if job.verdicts[i] is not None or job.values[i] is not None:
            job.forged += 1
            return
        if kind == "a":
            job.verdicts[i] = msg.get("ok") is True
        elif kind == "v":
            if "v" in msg:
                try:
                    size = len(json.dumps(msg["v"]))
                except (ValueError, RecursionError):
                    size = MAX_VALUES_BYTES + 1
                job.value_bytes += size
                job.values[i] = ({"v": msg["v"]} if job.value_bytes <= MAX_VALUES_BYTES
                                 else {"e": "return values too large"})
            else:
                job.values[i] = {"e": str(msg.get("e", "error"))[:500]}
            job.verdicts[i] = "v" in job.values[i]

    def reap_orphans(self) -> None:
        """Reap re-parented descendants; the zygote's death is fatal."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.zygote_pid:
                raise Fatal("the zygote died")

    def kill_leftovers(self, job: Job) -> None:
        """Every process the program started is dead and reaped, or Fatal.

        In a container a cleaner with the program's uid kills them all (and deletes
        what they left). On a host the runner is a child subreaper: escaped
        descendants come back to it and are found in /proc.
        """
        with contextlib.suppress(OSError):
            os.killpg(job.pid, signal.SIGKILL)
        if self.uid is not None:
            self.reap_orphans()
            if not self.looks_clean():
                self.clean()
            return
        give_up = time.monotonic() + CLEANUP_LIMIT_S
        while True:
            self.reap_orphans()
            strays = [p for p in _children() if p != self.zygote_pid]
            if not strays:
                break
            for pid in strays:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > give_up:
                raise Fatal("leftover processes survived SIGKILL")
            time.sleep(0.001)
        _remove_tree_contents(self.scratch, keep=self.keep)

    def looks_clean(self) -> bool:
        """Whether the program visibly left nothing: no live process of its uid, an
        empty working directory that is still the only thing in the scratch area,
        empty wipe directories, no SysV IPC objects. Cheap (no fork); anything
        unreadable or unexpected means "not clean" and the cleaner runs."""
        try:
            if _living_processes(self.uid or -1, os.getpid()):
                return False
            if os.listdir(self.scratch) != [self.keep] or os.listdir(self.workdir):
                return False
            st = os.lstat(self.workdir)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != self.uid \
                    or stat.S_IMODE(st.st_mode) != WORKDIR_MODE:
                return False
            if any(os.listdir(d) for d in self.wipe_dirs if d != self.scratch):
                return False
        except OSError:
            return False
        return all(len(_sysv_rows(kind)) <= 1 for kind in SYSV_KINDS)

    def clean(self) -> None:
        """Run a cleaner (program uid) and wait for it, reaping orphans meanwhile."""
        report_r, report_w = os.pipe()
        spec = {"op": "clean", "uid": self.uid, "wipe": self.wipe_dirs,
                "scratch": self.scratch, "keep": self.keep}
        try:
            self.zygote_call(spec, [report_w])
        finally:
            os.close(report_w)
        give_up = time.monotonic() + CLEANUP_LIMIT_S + 5
        try:
            while True:
                self.reap_orphans()
                if self.zygote_exit(0.002) is not None:
                    break
                if time.monotonic() > give_up:
                    raise Fatal("the cleaner did not finish")
            with os.fdopen(report_r, "rb", closefd=False) as f:
                data = f.read(1 << 16)
        finally:
            os.close(report_r)
        self.reap_orphans()
        try:
            left = json.loads(data or b'{"cleaner": 1}')
        except ValueError:
            left = {"cleaner report": 1}
        if left:
            raise Fatal(f"a program left state the cleaner could not remove: {left}")

    def check_self(self) -> None:
        """Fatal unless the runner's own limits are what they were at start-up."""
        if _rlimit_snapshot() != self.limits_at_start:
            raise Fatal("the runner's resource limits changed")

    def finish(self, job: Job) -> None:
        """The child is gone (exited or killed): clean, drain, answer."""
        duration = time.monotonic() - job.started
        assert self.ctl is not None
        self.sel.unregister(self.ctl.fileno())
        self.job = None
        try:
            self.kill_leftovers(job)
        finally:
            for fd, tag in ((job.out_fd, "out"), (job.err_fd, "err"),
                            (job.res_sock.fileno(), "res")):
                # Every writer is dead, so this ends at EOF ("empty" only if not).
                while self.pump(job, fd, tag) == "more":
                    pass
                self.sel.unregister(fd)
            os.close(job.out_fd)
            os.close(job.err_fd)
            job.res_sock.close()
            status, error, code = self.verdict(job, job.wstatus or 0)
            # A source step that never ran (crash, timeout, early exit) did not pass.
            verdicts = [False if v is None and "source" in step else v
                        for v, step in zip(job.verdicts, job.req.steps, strict=True)]
            self.answer(job.req.id, status, error, exit_code=code,
                        duration_s=round(duration, 4),
                        assert_verdicts=verdicts if job.req.steps else None,
                        values=job.values if job.req.steps else None,
                        stdout_tail=job.out.text(), stderr_tail=job.err.text())
        self.check_self()

    def verdict(self, job: Job, wstatus: int) -> tuple[str, str, int | None]:
        code = os.waitstatus_to_exitcode(wstatus)
        if job.done is not None:
            status = job.done.get("status")
            if status not in STATUSES:
                status = "error"
            return str(status), str(job.done.get("error", ""))[:500], code
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
        if self.uid is not None and os.geteuid() != 0:
            raise SystemExit("runner: --program-uid needs the runner to start as root")
        _prctl(PR_SET_DUMPABLE, 0)
        os.makedirs(self.scratch, exist_ok=True)
        self.prepare_process()
        self.limits_at_start = _rlimit_snapshot()
        self.start_zygote()
        if self.uid is not None:
            self.clean()  # also creates the working directory, owned by the program uid
        else:
            _remove_tree_contents(self.scratch)
            os.makedirs(self.workdir, mode=0o700, exist_ok=True)
        os.set_blocking(1, True)
        try:
            self.sel.register(0, selectors.EVENT_READ, "stdin")
            os.set_blocking(0, False)
        except PermissionError:  # stdin is a regular file (a hand-made request file)
            while self.stdin_open:
                self.read_stdin()
        self.send({"ready": True, "pid": os.getpid(), "python": sys.version.split()[0],
                   "sha256": _own_digest(), "uid_separated": self.uid is not None})
        while True:
            if self.job is None:
                if self.queue:
                    self.start(self.queue.popleft())
                    continue
                if not self.stdin_open:
                    return
            job = self.job
            timeout = None if job is None else max(0.0, job.deadline - time.monotonic())
            exited = False
            for key, _ in self.sel.select(timeout if job else 0.5):
                if key.data == "stdin":
                    self.read_stdin()
                elif job is not None and key.data == "exit":
                    exited = True
                elif job is not None:
                    self.pump(job, key.fd, key.data)
            if self.is_init or job is None:
                self.reap_orphans()
            if job is None:
                continue
            if exited:
                status = self.zygote_exit(None)
                job.wstatus = status
            elif time.monotonic() >= job.deadline:
                job.timed_out = True
                # The group, and the child itself in case it has not reached setsid().
                for kill in (os.killpg, os.kill):
                    with contextlib.suppress(OSError):
                        kill(job.pid, signal.SIGKILL)
                job.wstatus = self.zygote_exit(CLEANUP_LIMIT_S)
                if job.wstatus is None:
                    raise Fatal("a killed program did not exit")
                exited = True
            if exited:
                self.finish(job)


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
                        help="processes a program may have (RLIMIT_NPROC); 0 leaves it")
    parser.add_argument("--program-uid", type=int, default=None,
                        help="run programs under this uid (the runner must start as root "
                             "with CAP_SETUID, CAP_SETGID and CAP_KILL); cleaning then also "
                             "covers /dev/shm, /dev/mqueue and SysV IPC")
    args = parser.parse_args(argv)
    if args.program_uid is not None and args.program_uid <= 0:
        parser.error("--program-uid must be a positive uid")

    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    if os.getpid() == 1:
        # Inside the container nothing can signal PID 1 - unless it installed a handler.
        # So it keeps none (not even Python's SIGINT one): a program's kill(1, ...) is void.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    else:
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGHUP, on_term)
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
    runner = Runner(args.scratch, args.wipe, args.output_limit, args.fsize_mb, args.max_procs,
                    args.program_uid)
    try:
        runner.serve()
    except Fatal as exc:
        runner.send({"fatal": str(exc)})
        return 75
    finally:
        job = runner.job
        if job is not None:
            with contextlib.suppress(OSError):
                os.killpg(job.pid, signal.SIGKILL)
        if runner.zygote_pid > 0:
            with contextlib.suppress(OSError):
                os.kill(runner.zygote_pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
