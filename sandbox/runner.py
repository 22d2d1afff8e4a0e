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
"""The child's report channel (a socket); fds 0-2 are /dev/null and two pipes. The
judge reports on its own socket, also at fd 3 in its own process."""
CALL_FD = 4
"""With a judge: the socket between the judge and the program's process (one end each)."""

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
CLEANUP_LIMIT_S = 10.0
"""Leftover processes that survive SIGKILL this long mean a broken sandbox: exit."""

MAX_VALUE_BYTES = 1 << 20
"""Budget of one returned value once encoded (characters, roughly); the child's
encoder, the runner (for every value line it reads) and every decoder enforce it."""
MAX_LINE = MAX_VALUE_BYTES + (1 << 16)
"""Longest report line the runner reads from a child; longer ones are dropped."""
MAX_VALUES_BYTES = 4 << 20
"""Budget of all values of one request; past it values become errors."""
MAX_DEPTH = 64
"""Deepest nesting a returned value may have."""
MAX_HASHED = 1 << 16
"""Set and frozenset elements and dict keys one decoded value may hold, in all."""
MAX_SAME_HASH = 8
"""Elements of one set (or keys of one dict) that may share a hash when decoding."""

WORKDIR_MODE = 0o1777
"""The program's working directory, made new for every program by the runner, which
owns it: writable by the program, sticky like /tmp, and removable by the runner when
empty without any capability (`Runner.renew_workdir`)."""
JUDGE_NPROC = 4
"""RLIMIT_NPROC of the judge's uid: test code has no reason to start processes."""

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


def decode_value(obj: Any, limit: int = MAX_VALUE_BYTES) -> Any:
    """The Python value `encode_value` encoded; ValueError for anything else.

    Strict: every node must be exactly one of the encoded forms, nesting is bounded
    and containers are rebuilt from builtins, so the result holds no object whose
    behaviour a program chose. Bounded in cost as well as in size, because whoever
    decodes (the harness, the judge) must not be stalled by one value:

    * the encoded size is charged as `encode_value` charges it (`limit`);
    * sets, frozensets and dict keys hold at most `MAX_HASHED` elements in all;
    * no more than `MAX_SAME_HASH` elements of one set or dict may share a hash, and
      none may repeat (an encoder never writes duplicates). Building a set compares
      only elements of equal hash, so this bounds the work of rebuilding a set to
      about `MAX_SAME_HASH` times its size: 33,000 ints of one hash, which would
      take quadratic time, are refused in linear time instead.
    """
    budget = [limit, MAX_HASHED]

    def charge(n: int) -> None:
        budget[0] -= n
        if budget[0] < 0:
            raise ValueError("value too large")

    def hashed(items: list[Any]) -> list[Any]:
        budget[1] -= len(items)
        if budget[1] < 0:
            raise ValueError(f"more than {MAX_HASHED} set elements or dict keys")
        per_hash: dict[int, int] = {}
        for x in items:
            h = hash(x)  # TypeError (unhashable) becomes ValueError below
            k = per_hash.get(h, 0) + 1
            if k > MAX_SAME_HASH:
                raise ValueError(f"more than {MAX_SAME_HASH} elements share one hash")
            per_hash[h] = k
        return items

    def dec(o: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH}")
        charge(8)
        t = type(o)
        if o is None or t is bool:
            return o
        if t is str:
            charge(len(o))
            return o
        if t is not dict or len(o) != 1:
            raise ValueError("not an encoded value")
        ((tag, body),) = o.items()
        if tag in ("i", "f", "b"):
            if type(body) is not str or len(body) > MAX_VALUES_BYTES:
                raise ValueError(f"bad {tag!r} body")
            charge(len(body))
            if tag == "i":
                return int(body, 16)
            return float.fromhex(body) if tag == "f" else bytes.fromhex(body)
        if tag == "c":
            if (type(body) is not list or len(body) != 2
                    or not all(type(x) is str and len(x) < 64 for x in body)):
                raise ValueError("bad complex")
            return complex(float.fromhex(body[0]), float.fromhex(body[1]))
        if type(body) is not list:
            raise ValueError(f"bad {tag!r} body")
        if tag == "d":
            pairs = []
            for pair in body:
                if type(pair) is not list or len(pair) != 2:
                    raise ValueError("bad dict item")
                pairs.append((dec(pair[0], depth + 1), dec(pair[1], depth + 1)))
            hashed([k for k, _ in pairs])
            out = dict(pairs)
            if len(out) != len(pairs):
                raise ValueError("repeated dict key")
            return out
        items = [dec(x, depth + 1) for x in body]
        if tag == "l":
            return items
        if tag == "t":
            return tuple(items)
        if tag in ("s", "fs"):
            rebuilt = (set if tag == "s" else frozenset)(hashed(items))
            if len(rebuilt) != len(items):
                raise ValueError("repeated set element")
            return rebuilt
        raise ValueError(f"unknown tag {tag!r}")

    try:
        return dec(obj, 0)
    except (TypeError, OverflowError, RecursionError) as exc:  # unhashable key, ...
        raise ValueError(f"not an encoded value: {type(exc).__name__}") from None


# ---------------------------------------------------------------- requests


@dataclass
class Request:
    """One validated request line.

    `judge` (or None) is what the judge process runs: ``{"prelude": the trusted
    prompt, "preamble": test setup, "entry": the candidate's name, "steps": [assert
    sources], "final": a call such as "check(add)"}``. With a judge, the child only
    runs `program` and `preamble` and then answers the judge's calls; without one it
    runs the call `steps` (values path).
    """

    id: str
    program: str
    preamble: str
    steps: list[dict[str, Any]]
    timeout_s: float
    memory_mb: int
    output_limit: int
    judge: dict[str, Any] | None = None

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
        preamble = obj.get("preamble", "")
        steps = obj.get("steps", [])
        judge = obj.get("judge")
        if not isinstance(rid, str) or not rid:
            raise ValueError("'id' must be a non-empty string")
        if not all(isinstance(x, str) for x in (program, preamble)):
            raise ValueError("'program' and 'preamble' must be strings")
        if obj.get("final") or any(isinstance(s, dict) and "source" in s for s in steps or []):
            raise ValueError("test code runs only in the judge: use 'judge', not 'final' "
                             "or source steps")
        if not isinstance(steps, list) or not all(_valid_step(s) for s in steps):
            raise ValueError("'steps' must be a list of {call, args, kwargs} | {skip} objects")
        if judge is not None and not _valid_judge(judge):
            raise ValueError("'judge' must be {prelude, preamble, entry, steps, final}")
        if judge is not None and steps:
            raise ValueError("a request has call steps or a judge, not both")
        timeout_s = obj.get("timeout_s", 5.0)
        memory_mb = obj.get("memory_mb", 512)
        output_limit = obj.get("output_limit", default_output_limit)
        if not (type(timeout_s) in (int, float) and 0 < timeout_s <= 3600
                and type(memory_mb) is int and memory_mb >= 0
                and type(output_limit) is int and output_limit >= 0):
            raise ValueError("need 0 < timeout_s <= 3600, memory_mb >= 0, output_limit >= 0")
        return cls(rid, program, preamble, steps, float(timeout_s), memory_mb,
                   output_limit, judge)


def _valid_step(step: Any) -> bool:
    if not isinstance(step, dict):
        return False
    if "call" in step:
        return (isinstance(step["call"], str) and isinstance(step.get("args"), list)
                and isinstance(step.get("kwargs", []), list))
    return step.get("skip") is True


def _valid_judge(judge: Any) -> bool:
    if not isinstance(judge, dict):
        return False
    texts = [judge.get(k, "") for k in ("prelude", "preamble", "entry", "final")]
    steps = judge.get("steps", [])
    return (all(isinstance(t, str) for t in texts) and isinstance(steps, list)
            and all(isinstance(x, str) for x in steps))


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


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _enter(uid: int | None, workdir: str, limits: list[Any], oom_adj: bool) -> None:
    """Drop to `uid`, enter `workdir`, apply the runner's rlimits."""
    if uid is not None:
        _drop_to(uid)
    os.chdir(workdir)
    if oom_adj:
        with contextlib.suppress(OSError):  # under memory pressure the program dies first
            adj = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
            os.write(adj, b"1000")
            os.close(adj)
    for which, pair in limits:
        resource.setrlimit(which, tuple(pair))


def _child(spec: dict[str, Any], fds: list[int]) -> NoReturn:
    """Set up, read the request, run it, report, exit. Never returns.

    fds: stdout pipe, stderr pipe, result socket, request memfd and, with a judge, the
    call socket (write ends / child ends, received by the zygote from the runner).
    They become 1, 2, RESULT_FD and CALL_FD; everything else is closed.
    """
    report_fd = -1
    try:
        # Received fds may sit on 0-4; move them out of the way of the dup2s below.
        out_w, err_w, res_w, req_fd, *call = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds)
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
        if call:
            os.dup2(call[0], CALL_FD)
        data = _read_all(req_fd)
        os.closerange(CALL_FD + 1 if call else RESULT_FD + 1, 1 << 16)
        _enter(spec["uid"], spec["workdir"], spec["limits"], True)
        req = json.loads(data)
        del data
    except BaseException as exc:  # setup failed: the sandbox's fault, not the program's
        with contextlib.suppress(OSError):
            os.write(report_fd, _line({"token": spec["token"], "k": "done",
                                       "status": "sandbox_error",
                                       "error": f"child setup failed: {exc!r}"}))
        os._exit(70)
    _run_request(req, spec["token"], bool(call))


def _block_new_audit_hooks(event: str, _args: tuple[Any, ...]) -> None:
    """Installed before the program: it may not add audit hooks (to swap tests)."""
    if event == "sys.addaudithook":
        raise RuntimeError("audit hooks are not allowed in the sandbox")


def _compile_unit(source: str, name: str) -> Any:
    try:
        return compile(source, name, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        return exc


def _run_request(req: dict[str, Any], token: str, serve: bool) -> NoReturn:
    """Run program and preamble; then the call steps (values path) or, with a judge
    (`serve`), answer its calls on CALL_FD until it hangs up. Report; exit.

    No test code runs here: a call step names a function and carries plain-data
    arguments, and the answer is plain data (`encode_value`) that the harness or
    the judge, which alone hold the expected values, compare. So whatever the
    program does to this process (patched builtins, a frame walk to `report`, a
    forged line with the token) can only change its own answers, never a verdict.
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
    preamble = _compile_unit(req["preamble"], "<test preamble>") if req["preamble"] else None
    if isinstance(preamble, BaseException):
        finish("sandbox_error", f"test code does not compile: {_describe(preamble)}")
    try:
        calls = tuple((s["call"], [decode_value(a) for a in s["args"]],
                       {k: decode_value(v) for k, v in s.get("kwargs", [])})
                      if "call" in s else None for s in steps)
    except (ValueError, TypeError) as exc:
        finish("sandbox_error", f"bad call arguments: {exc}")
    entry = req.get("entry", "")
    program = _compile_unit(req["program"], "<program>")
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

    # Undo what a program may have done to the interpreter the preamble runs in.
    sys.settrace(None)
    sys.setprofile(None)
    builtins.__dict__.clear()
    builtins.__dict__.update(clean_builtins)
    ns["__builtins__"] = builtins
    if preamble is not None:
        exc = run(preamble, ns)
        if exc is not None:
            finish("error", f"test preamble failed: {_describe(exc)}")

    if serve:
        flush()
        report({"k": "ready"})
        _serve_calls(ns, entry, enc, dumps)

    first_failure: BaseException | None = None
    for i, call in enumerate(calls):
        if call is None:
            continue
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
    if first_failure is not None:
        finish("oom" if isinstance(first_failure, MemoryError) else "failed",
               _describe(first_failure))
    finish("passed", "")


def _serve_calls(ns: dict[str, Any], entry: str, enc: Any, dumps: Any) -> NoReturn:
    """Answer the judge: one call per line in, one plain-data answer per line out.

    In: ``{"a": [encoded args], "k": [[name, encoded]]}``. Out: ``{"v": encoded}``,
    ``{"e": why}`` (the return value is not plain data) or ``{"x": exception type
    name, "m": message}``. The calls of one request all run here, in order, so a
    stateful program behaves as it would under the original test. Exits at EOF.
    """
    read, write = os.read, os.write
    buf = bytearray()

    def send(obj: dict[str, Any]) -> None:
        try:
            data = (dumps(obj) + "\n").encode("utf-8", "backslashreplace")
        except (MemoryError, ValueError, RecursionError):
            data = b'{"x": "MemoryError", "m": ""}\n'
        with contextlib.suppress(OSError):
            while data:
                data = data[write(CALL_FD, data):]

    while True:
        nl = buf.find(b"\n")
        if nl < 0:
            try:
                chunk = read(CALL_FD, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(BaseException):
                        stream.flush()
                os._exit(0)
            buf += chunk
            continue
        line = bytes(buf[:nl])
        del buf[:nl + 1]
        try:
            msg = json.loads(line)
            args = [decode_value(a) for a in msg["a"]]
            kwargs = {str(k): decode_value(v) for k, v in msg["k"]}
        except (ValueError, TypeError, KeyError) as exc:
            send({"x": "RuntimeError", "m": f"bad call from the judge: {exc}"})
            continue
        try:
            func = ns[entry]
            value = func(*args, **kwargs)
        except BaseException as caught:
            send({"x": type(caught).__name__, "m": _describe(caught)})
            continue
        try:
            answer = {"v": enc(value)}
        except (ValueError, RecursionError) as bad:
            answer = {"e": f"the return value is not plain data: {bad}"}
        except BaseException as caught:
            answer = {"x": type(caught).__name__, "m": _describe(caught)}
        send(answer)


# ---------------------------------------------------------------- the judge


class NotPlainData(BaseException):
    """A candidate's argument or return value cannot cross the sandbox boundary as
    plain data. A BaseException, so a test's ``except Exception`` cannot turn it into
    a pass: the assert is an error."""


class CandidateGone(BaseException):
    """The program's process ended (or exited from inside a call) during the tests."""


class CandidateError(Exception):
    """The candidate raised an exception that is not a builtin one (its type name and
    message are kept); tests that expect an exception see an Exception."""


MAX_CALL_LINE = MAX_VALUE_BYTES + (1 << 16)
"""Longest answer line the judge reads from the program; longer is not plain data."""


def _candidate_proxy(entry: str) -> Any:
    """The function the judge's test code calls in place of the program's `entry`:
    arguments go to the program's process as plain data, the answer comes back as
    plain data (decoded with bounded cost), exceptions come back by builtin type."""
    read, write = os.read, os.write
    buf = bytearray()
    state = {"gone": False}

    def call(*args: Any, **kwargs: Any) -> Any:
        if state["gone"]:
            raise CandidateGone("the program's process has ended")
        try:
            line = json.dumps({"a": [encode_value(a) for a in args],
                               "k": [[k, encode_value(v)] for k, v in kwargs.items()]})
        except (ValueError, RecursionError) as exc:
            raise NotPlainData(f"an argument of {entry}() is not plain data: {exc}") from None
        data = (line + "\n").encode("utf-8", "surrogatepass")
        try:
            while data:
                data = data[write(CALL_FD, data):]
        except OSError:
            state["gone"] = True
            raise CandidateGone("the program's process has ended") from None
        while True:
            nl = buf.find(b"\n")
            if nl >= 0:
                break
            if len(buf) > MAX_CALL_LINE:
                state["gone"] = True
                raise NotPlainData(f"{entry}() answered more than {MAX_CALL_LINE} bytes")
            try:
                chunk = read(CALL_FD, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                state["gone"] = True
                raise CandidateGone(f"the program's process ended during {entry}()")
            buf.extend(chunk)
        raw = bytes(buf[:nl])
        del buf[:nl + 1]
        try:
            msg = json.loads(raw)
        except (ValueError, RecursionError):
            raise NotPlainData(f"{entry}() answered something that is not JSON") from None
        if type(msg) is not dict or len(msg) not in (1, 2):
            raise NotPlainData(f"{entry}() answered a malformed line")
        if "v" in msg and len(msg) == 1:
            try:
                return decode_value(msg["v"])
            except ValueError as exc:
                raise NotPlainData(f"{entry}() returned a value that is not plain data: "
                                   f"{exc}") from None
        if "e" in msg and len(msg) == 1:
            raise NotPlainData(f"{entry}(): {str(msg['e'])[:300]}")
        name, text = msg.get("x"), msg.get("m", "")
        if type(name) is not str or type(text) is not str:
            raise NotPlainData(f"{entry}() answered a malformed line")
        cls = getattr(builtins, name, None) if name.isidentifier() else None
        if isinstance(cls, type) and issubclass(cls, Exception):
            try:
                error = cls(text[:500])
            except Exception:
                error = CandidateError(f"{name}: {text[:500]}")
            raise error
        if isinstance(cls, type) and issubclass(cls, BaseException):  # SystemExit, ...
            state["gone"] = True
            raise CandidateGone(f"{entry}() raised {name}: {text[:300]}")
        raise CandidateError(f"{name}: {text[:500]}")

    call.__name__ = call.__qualname__ = entry or "candidate"
    return call


def _judge(spec: dict[str, Any], fds: list[int]) -> NoReturn:
    """The judge: runs the test code of one request against the program's process.

    fds: its report socket, its request memfd and its end of the call socket (they
    become RESULT_FD and CALL_FD). It holds no model-written code: its namespace is
    the task's own prompt (helpers such as `encode_cyclic`, or `poly`, as the task
    wrote them), then the test setup, with the candidate's name bound to a proxy
    that crosses into the program's process (`_candidate_proxy`). It runs under a
    uid of its own, so the program can neither signal, trace nor read it.
    """
    report_fd = -1
    token = ""
    try:
        res_w, req_fd, call_fd = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds)
        report_fd = res_w
        os.setsid()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        # A program that exits before a call must not kill the judge with SIGPIPE:
        # the write fails instead, and the call raises CandidateGone.
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.dup2(res_w, RESULT_FD)
        report_fd = RESULT_FD
        os.dup2(call_fd, CALL_FD)
        data = _read_all(req_fd)
        os.closerange(CALL_FD + 1, 1 << 16)
        _enter(spec["uid"], "/", spec["limits"], False)
        req = json.loads(data)
        token = req["token"]
        del data
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(report_fd, _line({"token": token, "k": "done", "status": "sandbox_error",
                                       "error": f"judge setup failed: {exc!r}"}))
        os._exit(70)
    _run_judge(req, token)


def _run_judge(req: dict[str, Any], token: str) -> NoReturn:
    """Prelude, proxy, preamble, then each assert (one verdict each) or the final call."""

    def report(obj: dict[str, Any]) -> None:
        obj["token"] = token
        with contextlib.suppress(OSError):
            os.write(RESULT_FD, _line(obj))

    def finish(status: str, error: str, gone: bool = False) -> NoReturn:
        with contextlib.suppress(OSError):
            os.close(CALL_FD)  # the program's process sees EOF and exits
        report({"k": "done", "status": status, "error": error[:500], "gone": gone})
        os._exit(0)

    def run(source: str, name: str, ns: dict[str, Any]) -> BaseException | None:
        code = _compile_unit(source, name)
        if isinstance(code, BaseException):
            return code
        try:
            exec(code, ns)
        except BaseException as exc:
            return exc
        return None

    entry, steps, final = req["entry"], list(req["steps"]), req["final"]
    ns: dict[str, Any] = {"__name__": "__judge__", "__builtins__": builtins}
    if req["prelude"]:
        exc = run(req["prelude"], "<prompt>", ns)
        if exc is not None:
            finish("error", f"the task's prompt failed in the judge: {_describe(exc)}")
    if entry:
        ns[entry] = _candidate_proxy(entry)
    if req["preamble"]:
        exc = run(req["preamble"], "<test preamble>", ns)
        if isinstance(exc, CandidateGone):
            finish("failed", _describe(exc), gone=True)
        if exc is not None:
            finish("error", f"test preamble failed: {_describe(exc)}")

    first: tuple[int, BaseException] | None = None
    for i, source in enumerate(steps):
        exc = run(source, f"<assert {i}>", ns)
        report({"k": "j", "i": i, "ok": exc is None,
                **({"e": _describe(exc)} if exc is not None else {})})
        if exc is not None and first is None:
            first = (i, exc)
    if first is None and final and not steps:
        exc = run(final, "<final>", ns)
        if exc is not None:
            first = (-1, exc)
    if first is None:
        finish("passed", "")
    i, exc = first
    where = f"assert {i}: " if i >= 0 else ""
    if isinstance(exc, CandidateGone):
        finish("failed", where + _describe(exc), gone=True)
    if isinstance(exc, NotPlainData):
        finish("error", where + _describe(exc))
    if isinstance(exc, MemoryError):
        finish("oom", where + "MemoryError in the judge")
    if i >= 0:
        finish("failed", where + _describe(exc))
    finish(_classify(exc), _describe(exc))


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
    """Remove SysV shared memory, message queues and semaphores owned *or created* by
    `uid` (IPC_SET can hand an object to another owner; its creator can still remove
    it); then the number of objects of any uid that remain. The IPC namespace is the
    container's own, so any object left is a program's, and not clean."""
    libc = _libc()
    ipc_rmid = 0
    for kind, remove in zip(SYSV_KINDS, (libc.shmctl, libc.msgctl, libc.semctl), strict=True):
        header, *rows = _sysv_rows(kind) or [[]]
        if not rows:
            continue
        col_id = header.index({"shm": "shmid", "msg": "msqid", "sem": "semid"}[kind])
        cols = [header.index(c) for c in ("uid", "cuid") if c in header]
        for row in rows:
            if not any(int(row[c]) == uid for c in cols):
                continue
            args = (int(row[col_id]), 0, ipc_rmid) if kind == "sem" else \
                (int(row[col_id]), ipc_rmid, None)
            remove(*args)
    return sum(max(0, len(_sysv_rows(kind)) - 1) for kind in SYSV_KINDS)


def _living_processes(uid: int, me: int) -> int:
    """Processes whose real uid is `uid`, other than `me`, with a thread that is not
    a zombie (`_living_by_uid`)."""
    return _living_by_uid((uid,), me)[uid]


def _living_by_uid(uids: tuple[int, ...], me: int) -> dict[int, int]:
    """For each of `uids`, its processes other than `me` with a thread that is not a
    zombie: one pass over /proc for all of them (the runner asks after every
    program, for the program's uid and the judge's).

    Read from /proc/N/status: a process that changed uid is non-dumpable, and its
    /proc/N directory then belongs to root whatever its uid. A process whose main
    thread left with the raw exit syscall reads as a zombie there while another of
    its threads still runs, so a zombie's threads are read too (/proc/N/task)."""
    counts = dict.fromkeys(uids, 0)
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        fields = _status_fields(f"/proc/{name}/status")
        if fields is None:
            continue
        real = fields.get(b"Uid", b"").split()
        uid = int(real[0]) if real else None
        if uid not in counts:
            continue
        if fields.get(b"State", b"").strip()[:1] not in (b"Z", b"X"):
            counts[uid] += 1
            continue
        try:
            tasks = os.listdir(f"/proc/{name}/task")
        except OSError:
            continue  # gone meanwhile
        for tid in tasks:
            task = _status_fields(f"/proc/{name}/task/{tid}/status")
            if task is not None and task.get(b"State", b"").strip()[:1] not in (b"Z", b"X"):
                counts[uid] += 1
                break
    return counts


STATUS_HEAD = 1024
"""Bytes of /proc/N/status read: State and Uid are within its first dozen lines (the
Name before them is at most 64 escaped bytes), and reading the rest (sixty-odd
lines) is what made the after-program check cost on a busy host."""


def _status_fields(path: str) -> dict[bytes, bytes] | None:
    """The complete "key: value" lines in the head of a /proc status file."""
    try:
        with open(path, "rb") as f:
            head = f.read(STATUS_HEAD)
    except OSError:
        return None
    lines = head.split(b"\n")[:-1]  # the last piece may be cut off (or is empty)
    return dict(line.split(b":", 1) for line in lines if b":" in line)


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
    except BaseException as exc:
        left["error"] = 1
        left[f"cleaner failed: {exc!r}"[:200]] = 1
    with contextlib.suppress(OSError):
        os.write(report_fd, json.dumps(left).encode())
    os._exit(0)


# ---------------------------------------------------------------- the zygote


def _zygote(ctl: socket.socket) -> NoReturn:
    """Fork children, judges and cleaners on the runner's word; report their exits.

    One command at a time over a SOCK_SEQPACKET socket: {"op": "spawn"|"clean", ...}
    plus file descriptors. A spawn with a "judge" carries the fds of both processes
    (the child's first, `len(cmd["fds"])` of them) and forks both. It answers
    {"pid", "judge"} and then one {"exit", "status"} per process, in the order they
    end. Nothing secret passes through here: tokens and requests travel in memfds
    only their own process reads.
    """
    with contextlib.suppress(OSError, AttributeError):
        _libc()  # once here rather than in every cleaner
    try:
        while True:
            msg, fds, _flags, _addr = socket.recv_fds(ctl, 1 << 16, 16)
            if not msg:
                os._exit(0)
            cmd = json.loads(msg)
            judge = cmd.get("judge") if cmd["op"] == "spawn" else None
            split = int(cmd.get("fds", len(fds)))
            jobs = [(cmd, fds[:split], _child if cmd["op"] == "spawn" else None)]
            if judge is not None:
                jobs.append((judge, fds[split:], _judge))
            pids: list[int] = []
            failed = ""
            for spec, own, target in jobs:
                try:
                    pid = os.fork()
                except OSError as exc:
                    failed = f"fork failed: {exc}"
                    break
                if pid == 0:
                    try:
                        ctl.close()
                        if target is None:
                            _cleaner(spec, own[0])
                        target(spec, own)
                    finally:
                        os._exit(71)
                pids.append(pid)
            for fd in fds:
                os.close(fd)
            if failed:
                for pid in pids:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                ctl.send(json.dumps({"error": failed}).encode())
                continue
            ctl.send(json.dumps({"pid": pids[0],
                                 "judge": pids[1] if len(pids) > 1 else None}).encode())
            for _ in pids:
                pid, status = os.waitpid(-1, 0)
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
    judge_pid: int = -1
    judge_sock: socket.socket | None = None
    judge_token: str = ""
    judge_buf: bytearray = field(default_factory=bytearray)
    judged: list[bool | None] = field(default_factory=list)
    judge_done: dict[str, Any] | None = None
    ready: bool = False
    exits: dict[int, int] = field(default_factory=dict)
    at_eof: set[int] = field(default_factory=set)
    """Streams that reached end of file: no longer watched (an fd at EOF is always
    readable, so watching it would spin the loop until the zygote reports the exit,
    taking the CPU the zygote and the next child need)."""

    @property
    def pids(self) -> set[int]:
        """The processes the zygote forked for this job (child, and judge if any)."""
        return {self.pid} | ({self.judge_pid} if self.judge_pid > 0 else set())


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
                 max_procs: int, program_uid: int | None,
                 judge_uid: int | None = None) -> None:
        self.scratch = os.path.abspath(scratch)
        self.keep = "run"
        self.workdir = os.path.join(self.scratch, self.keep)
        self.wipe_dirs = [self.scratch, *[d for d in wipe if os.path.isdir(d)]]
        self.output_limit = output_limit
        self.fsize_mb = fsize_mb
        self.uid = program_uid
        self.judge_uid = judge_uid if judge_uid is not None or program_uid is None \
            else program_uid + 1
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

    def zygote_call(self, cmd: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        """Send a command; the zygote's reply ({"pid", "judge"}). Fatal if it is gone."""
        assert self.ctl is not None
        try:
            socket.send_fds(self.ctl, [json.dumps(cmd).encode()], fds)
            reply = json.loads(self.ctl.recv(1 << 16) or b"null")
        except (OSError, ValueError) as exc:
            raise Fatal(f"zygote unreachable: {exc}") from None
        if not isinstance(reply, dict) or "pid" not in reply:
            raise Fatal(f"zygote could not fork: {reply}")
        return reply

    def zygote_exit(self, timeout: float | None) -> tuple[int, int] | None:
        """(pid, wait status) of the next process of the zygote's to end, if in time."""
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
        msg = json.loads(data)
        return int(msg["exit"]), int(msg["status"])

    # -- one job

    def start(self, req: Request) -> None:
        """Hand `req` to a fresh child (and judge): each reads its request from a memfd
        of its own, so nothing of it passes through the zygote."""
        token = secrets.token_hex(16)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        res_ours, res_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        child_req = {"program": req.program, "preamble": req.preamble, "steps": req.steps,
                     "entry": (req.judge or {}).get("entry", "")}
        req_fd = _memfd(child_req)
        spec: dict[str, Any] = {
            "op": "spawn", "token": token, "uid": self.uid, "workdir": self.workdir,
            "limits": _limits(req.timeout_s, req.memory_mb, self.fsize_mb, self.nproc)}
        theirs = [out_w, err_w, res_theirs.fileno(), req_fd]
        close_after = [out_w, err_w, req_fd]
        closers: list[socket.socket] = [res_theirs]
        judge_ours: socket.socket | None = None
        judge_token = ""
        if req.judge is not None:
            judge_token = secrets.token_hex(16)
            call_child, call_judge = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            judge_ours, judge_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            judge_fd = _memfd({"token": judge_token, "prelude": req.judge.get("prelude", ""),
                               "preamble": req.judge.get("preamble", ""),
                               "entry": req.judge.get("entry", ""),
                               "steps": req.judge.get("steps", []),
                               "final": req.judge.get("final", "")})
            spec["fds"] = 5
            spec["judge"] = {"uid": self.judge_uid,
                             "limits": _limits(req.timeout_s, req.memory_mb, 1, JUDGE_NPROC
                                               if self.judge_uid is not None else 0)}
            theirs += [call_child.fileno(), judge_theirs.fileno(), judge_fd,
                       call_judge.fileno()]
            close_after.append(judge_fd)
            closers += [call_child, call_judge, judge_theirs]
        n_steps = len(req.judge.get("steps", [])) if req.judge is not None else len(req.steps)
        job = Job(req, token, -1, out_r, err_r, res_ours, 0.0, 0.0,
                  Tail(req.output_limit), Tail(req.output_limit))
        job.verdicts = [None] * len(req.steps)
        job.values = [None] * len(req.steps)
        job.judged = [None] * n_steps
        job.judge_sock, job.judge_token = judge_ours, judge_token
        job.oom_before = _oom_kills()
        try:
            reply = self.zygote_call(spec, theirs)
        finally:
            for fd in close_after:
                os.close(fd)
            for sock in closers:
                sock.close()
        streams = [(out_r, "out"), (err_r, "err"), (res_ours.fileno(), "res")]
        if judge_ours is not None:
            streams.append((judge_ours.fileno(), "judge"))
        for fd, tag in streams:
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, tag)
        assert self.ctl is not None
        self.sel.register(self.ctl.fileno(), selectors.EVENT_READ, "exit")
        job.pid = int(reply["pid"])
        if reply.get("judge") is not None:
            job.judge_pid = int(reply["judge"])
        job.started = time.monotonic()
        job.deadline = job.started + req.timeout_s
        self.job = job

    def streams(self, job: Job) -> list[tuple[int, str]]:
        out = [(job.out_fd, "out"), (job.err_fd, "err"), (job.res_sock.fileno(), "res")]
        if job.judge_sock is not None:
            out.append((job.judge_sock.fileno(), "judge"))
        return out

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
        elif tag == "judge":
            job.judge_buf += data
            for msg in self.lines(job, job.judge_buf, job.judge_token):
                self.record_judge(job, msg)
        else:
            job.res_buf += data
            for msg in self.lines(job, job.res_buf, job.token):
                self.record(job, msg)
        return "more"

    def lines(self, job: Job, buf: bytearray, token: str) -> list[dict[str, Any]]:
        """The complete report lines in `buf` that carry `token` (others are counted
        as forged); a line longer than MAX_LINE is dropped unread."""
        out: list[dict[str, Any]] = []
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) > MAX_LINE:  # only a program writes lines that long
                    buf.clear()
                    job.forged += 1
                return out
            raw = bytes(buf[:nl])
            del buf[:nl + 1]
            try:
                msg = json.loads(raw) if len(raw) <= MAX_LINE else None
            except (ValueError, RecursionError):
                msg = None
            if not isinstance(msg, dict) or msg.get("token") != token:
                job.forged += 1
                continue
            out.append(msg)

    def record(self, job: Job, msg: dict[str, Any]) -> None:
        """Keep one report line of the child; the first report of each step counts.

        Every value is measured here as well as in the child: a program can forge
        lines with the token (it shares the child's memory), so the per-value
        (MAX_VALUE_BYTES) and per-request (MAX_VALUES_BYTES) budgets are the runner's.
        """
        kind, i = msg.get("k"), msg.get("i")
        if kind == "done":
            if job.done is None:
                job.done = msg
            return
        if kind == "ready":
            job.ready = True
            return
        if type(i) is not int or not 0 <= i < len(job.verdicts):
            job.forged += 1
            return
        if job.verdicts[i] is not None or job.values[i] is not None:
            job.forged += 1
            return
        if kind == "v":
            if "v" in msg:
                try:
                    size = len(json.dumps(msg["v"]))
                except (ValueError, RecursionError):
                    size = MAX_VALUES_BYTES + 1
                job.value_bytes += size
                if size > MAX_VALUE_BYTES:
                    job.values[i] = {"e": f"return value larger than {MAX_VALUE_BYTES} bytes"}
                elif job.value_bytes > MAX_VALUES_BYTES:
                    job.values[i] = {"e": "return values too large"}
                else:
                    job.values[i] = {"v": msg["v"]}
            else:
                job.values[i] = {"e": str(msg.get("e", "error"))[:500]}
            job.verdicts[i] = "v" in job.values[i]
        else:
            job.forged += 1

    def record_judge(self, job: Job, msg: dict[str, Any]) -> None:
        """Keep one report line of the judge (only the judge holds its socket)."""
        kind, i = msg.get("k"), msg.get("i")
        if kind == "done":
            if job.judge_done is None:
                job.judge_done = msg
        elif kind == "j" and type(i) is int and 0 <= i < len(job.judged) \
                and job.judged[i] is None:
            job.judged[i] = msg.get("ok") is True

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
            uids = (self.uid,) if self.judge_uid is None else (self.uid, self.judge_uid)
            try:
                living = _living_by_uid(uids, os.getpid())
            except OSError:  # /proc unreadable: nothing is known to be gone
                living = dict.fromkeys(uids, 1)
            if self.judge_uid is not None and living[self.judge_uid]:
                raise Fatal("a process of the judge's uid outlived its request")
            if living[self.uid] or not self.looks_clean():
                self.clean()
            self.renew_workdir()
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
        self.renew_workdir()

    def renew_workdir(self) -> None:
        """A new working directory for the next program: a fresh inode, so no
        timestamp, extended attribute or mode a program set on it carries over. It
        belongs to the runner (mode 1777, like /tmp): the runner can remove it once
        it is empty and make the next, with no capability and no cleaner."""
        try:
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(self.workdir)
            os.mkdir(self.workdir, WORKDIR_MODE)
            os.chmod(self.workdir, WORKDIR_MODE)  # the umask may have cut bits
        except OSError as exc:
            raise Fatal(f"could not renew the working directory: {exc}") from None

    def looks_clean(self) -> bool:
        """Whether the program visibly left nothing besides processes (the caller
        counts those, with the judge's): an empty working directory that is still the
        only thing in the scratch area, empty wipe directories, no SysV IPC objects.
        Cheap (no fork); anything unreadable or unexpected means "not clean" and the
        cleaner runs."""
        try:
            if os.listdir(self.scratch) != [self.keep] or os.listdir(self.workdir):
                return False
            st = os.lstat(self.workdir)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
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
        """Every process of the job is gone (exited or killed): clean, drain, answer."""
        duration = time.monotonic() - job.started
        assert self.ctl is not None
        self.sel.unregister(self.ctl.fileno())
        self.job = None
        job.wstatus = job.exits.get(job.pid, 0)
        try:
            self.kill_leftovers(job)
        finally:
            for fd, tag in self.streams(job):
                if fd in job.at_eof:
                    continue
                # Every writer is dead, so this ends at EOF ("empty" only if not).
                while self.pump(job, fd, tag) == "more":
                    pass
                self.sel.unregister(fd)
            os.close(job.out_fd)
            os.close(job.err_fd)
            job.res_sock.close()
            if job.judge_sock is not None:
                job.judge_sock.close()
            if job.req.judge is not None:
                status, error, code = self.judged_verdict(job)
                n = len(job.judged)
                verdicts = [v is True for v in job.judged] if n else None
                values = [None] * n if n else None
            else:
                status, error, code = self.verdict(job, job.wstatus)
                verdicts = job.verdicts if job.req.steps else None
                values = job.values if job.req.steps else None
            self.answer(job.req.id, status, error, exit_code=code,
                        duration_s=round(duration, 4), assert_verdicts=verdicts,
                        values=values, stdout_tail=job.out.text(), stderr_tail=job.err.text())
        self.check_self()

    def judged_verdict(self, job: Job) -> tuple[str, str, int | None]:
        """The status of a judged request: the judge's, unless the program failed
        before the tests (its own report) or its process ended during them (then how
        it ended: oom, a crash, an exit). A "passed" from the child counts for
        nothing: only the judge can pass a request."""
        code = os.waitstatus_to_exitcode(job.wstatus or 0)
        child = job.done
        if child is not None and child.get("status") in STATUSES \
                and child.get("status") != "passed":
            return str(child["status"]), str(child.get("error", ""))[:500], code
        if job.timed_out:
            return "timeout", f"wall-clock limit of {job.req.timeout_s}s exceeded", code
        done = job.judge_done
        if done is None:
            if 0 <= job.oom_before < _oom_kills():
                return "oom", "the judge was killed by the memory limit", code
            return "sandbox_error", "the judge ended without a verdict", code
        status = done.get("status")
        if status not in STATUSES:
            return "sandbox_error", "the judge reported an unknown status", code
        if done.get("gone") is True or (status == "passed" and not (job.ready and code == 0)):
            # The program's process ended on its own (or never got to the tests): how
            # it ended decides, and it cannot have passed.
            exit_status, why, _ = self.verdict(job, job.wstatus or 0, own_report=False)
            if exit_status != "failed" or status == "passed":
                return exit_status, why, code
        return str(status), str(done.get("error", ""))[:500], code

    def verdict(self, job: Job, wstatus: int, own_report: bool = True
                ) -> tuple[str, str, int | None]:
        code = os.waitstatus_to_exitcode(wstatus)
        if own_report and job.done is not None:
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
            self.clean()
        else:
            _remove_tree_contents(self.scratch)
        self.renew_workdir()
        os.set_blocking(1, True)
        try:
            self.sel.register(0, selectors.EVENT_READ, "stdin")
            os.set_blocking(0, False)
        except PermissionError:  # stdin is a regular file (a hand-made request file)
            while self.stdin_open:
                self.read_stdin()
        self.send({"ready": True, "pid": os.getpid(), "python": sys.version.split()[0],
                   "sha256": _own_digest(), "uid_separated": self.uid is not None,
                   "judge_uid_separated": self.judge_uid is not None
                   and self.judge_uid != self.uid})
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
                elif job is not None and self.pump(job, key.fd, key.data) == "eof":
                    self.sel.unregister(key.fd)
                    job.at_eof.add(key.fd)
            if self.is_init or job is None:
                self.reap_orphans()
            if job is None:
                continue
            if exited:
                ended = self.zygote_exit(None)
                assert ended is not None
                job.exits[ended[0]] = ended[1]
                exited = job.pids <= set(job.exits)
            elif time.monotonic() >= job.deadline:
                job.timed_out = True
                # The group, and the child itself in case it has not reached setsid();
                # the judge too.
                for kill, pid in ((os.killpg, job.pid), (os.kill, job.pid),
                                  (os.kill, job.judge_pid)):
                    if pid > 0:
                        with contextlib.suppress(OSError):
                            kill(pid, signal.SIGKILL)
                give_up = time.monotonic() + CLEANUP_LIMIT_S
                while not job.pids <= set(job.exits):
                    ended = self.zygote_exit(max(0.0, give_up - time.monotonic()))
                    if ended is None:
                        raise Fatal("a killed program did not exit")
                    job.exits[ended[0]] = ended[1]
                exited = True
            if exited:
                self.finish(job)


def _memfd(obj: dict[str, Any]) -> int:
    """A memfd holding `obj` as JSON, positioned at its start."""
    fd = os.memfd_create("request", os.MFD_CLOEXEC)
    view = memoryview(json.dumps(obj).encode("utf-8", "surrogatepass"))
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


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
    parser.add_argument("--judge-uid", type=int, default=None,
                        help="run the judge (test code) under this uid; default: the "
                             "program uid + 1. Needs --program-uid")
    args = parser.parse_args(argv)
    if args.program_uid is not None and args.program_uid <= 0:
        parser.error("--program-uid must be a positive uid")
    if args.judge_uid is not None and (args.program_uid is None or args.judge_uid <= 0
                                       or args.judge_uid == args.program_uid):
        parser.error("--judge-uid needs --program-uid and must be another positive uid")

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
                    args.program_uid, args.judge_uid)
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
