"""Hostile programs, as data: what `sandbox check` and the tests throw at the sandbox.

Every case is a program for one tiny task ("write `add`", checked by `check(add)`)
that tries to pass by cheating, or to damage, hang or outlive the sandbox. Where
the attack's success is observable, the program returns the right answer *only if
the attack worked* (network, root filesystem, 10 GB allocation, leftovers), so a leak
shows up as a pass. Contained means: it never passes, the harness gets its answer
within the timeout plus a small margin, a `follow_up` program run right after it on
the same runner finds nothing it left behind, and an honest program still passes.

Placeholders `__HOST__` and `__PORT__` are filled with a TCP listener the check
starts on the host (the Docker bridge gateway for containers).
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.executor import ExecRequest, Status

TEST = """
def check(candidate):
    assert candidate(2, 3) == 5
    assert candidate(-1, 1) == 0
"""
FINAL = "check(add)"

HONEST = '''
import os
import tempfile


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

LEFTOVER = "collapse-bench-leftover"

LOOK_FOR_LEFTOVERS = f'''
import os
import tempfile
import time

time.sleep(0.6)  # give a surviving child time to write again after the wipe
places = [tempfile.gettempdir(), "/tmp", "/dev/shm", os.getcwd()]
found = any(os.path.exists(os.path.join(p, "{LEFTOVER}")) for p in places)


def add(a, b):
    return a + b if found else None  # passes only if something was left behind
'''


@dataclass(frozen=True)
class HostileCase:
    """One attack. `expect`: the statuses a contained run may end in."""

    name: str
    what: str
    program: str
    expect: tuple[Status, ...]
    follow_up: str = ""
    docker_only: bool = False
    """Harmful or meaningless outside a container (e.g. kill(-1) as root on a host)."""

    def request(self, request_id: str, timeout_s: float, host: str = "127.0.0.1",
                port: int = 9, memory_mb: int = 512) -> ExecRequest:
        program = self.program.replace("__HOST__", host).replace("__PORT__", str(port))
        return ExecRequest(request_id, program + TEST, (), FINAL, timeout_s, memory_mb)

    def follow_up_request(self, request_id: str, timeout_s: float) -> ExecRequest | None:
        if not self.follow_up:
            return None
        return ExecRequest(request_id, self.follow_up + TEST, (), FINAL, timeout_s)


def honest_request(request_id: str, timeout_s: float = 5.0) -> ExecRequest:
    return ExecRequest(request_id, HONEST + TEST, (), FINAL, timeout_s)


CASES: tuple[HostileCase, ...] = (
    HostileCase("os_exit", "os._exit(0) before the tests",
                "import os\nos._exit(0)\n\ndef add(a, b):\n    return a + b\n", ("failed",)),
    HostileCase("sys_exit", "sys.exit(0) before the tests",
                "import sys\nsys.exit(0)\n\ndef add(a, b):\n    return a + b\n", ("failed",)),
    HostileCase("exit_in_test", "os._exit(0) from inside the tested function",
                "import os\n\ndef add(a, b):\n    os._exit(0)\n", ("failed",)),
    HostileCase("forge_token", "write a fake 'passed' report to the result pipe, then exit",
                "import os\nos.write(3, b'{\"token\": \"0\" , \"done\": true, "
                "\"status\": \"passed\"}\\n')\nos._exit(0)\n", ("failed",)),
    HostileCase("fork_bomb", "fork until the process limit, forever",
                "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n"
                "        pass\n", ("timeout",), docker_only=True),
    HostileCase("alloc_10gb", "allocate 10 GB at once (passes only if it gets it)",
                "block = bytearray(10 * 2**30)\n\ndef add(a, b):\n    return a + b\n",
                ("oom",)),
    HostileCase("alloc_loop", "allocate and touch 64 MB at a time until something breaks",
                "blocks = []\nwhile True:\n    blocks.append(b'x' * (64 * 2**20))\n",
                ("oom",)),
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
                ("failed",), docker_only=True),
    HostileCase("fill_tmp", "fill /tmp, then exit (the next program needs /tmp)",
                "import os\ni = 0\ntry:\n    while True:\n"
                "        with open(f'/tmp/fill{i}', 'wb') as f:\n"
                "            f.write(b'x' * (8 * 2**20))\n        i += 1\nexcept OSError:\n"
                "    pass\nos._exit(0)\n", ("failed",), docker_only=True),
    HostileCase("leave_tmp_file", "leave a file in /tmp and the cwd for a later program to find",
                f"import os, tempfile\nfor d in (tempfile.gettempdir(), '.'):\n"
                f"    open(os.path.join(d, '{LEFTOVER}'), 'w').write('x')\nos._exit(0)\n",
                ("failed",), follow_up=LOOK_FOR_LEFTOVERS),
    HostileCase("leave_shm_file", "leave a file in /dev/shm for a later program to find",
                f"import os\nopen('/dev/shm/{LEFTOVER}', 'w').write('x')\nos._exit(0)\n",
                ("failed",), follow_up=LOOK_FOR_LEFTOVERS, docker_only=True),
    HostileCase("outliving_child", "double-fork a setsid child that ignores signals and keeps "
                "writing a marker file",
                "import os, signal, tempfile, time\nif os.fork() == 0:\n    os.setsid()\n"
                "    if os.fork() == 0:\n"
                "        for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):\n"
                "            signal.signal(s, signal.SIG_IGN)\n        time.sleep(0.3)\n"
                "        for _ in range(300):\n            try:\n"
                f"                open(os.path.join(tempfile.gettempdir(), '{LEFTOVER}'), "
                "'w').write('x')\n            except OSError:\n                pass\n"
                "            time.sleep(0.1)\n    os._exit(0)\nos._exit(0)\n", ("failed",),
                follow_up=LOOK_FOR_LEFTOVERS),
    HostileCase("kill_parent", "SIGKILL its parent (the runner), then exit",
                "import os, signal, time\nos.kill(os.getppid(), signal.SIGKILL)\n"
                "time.sleep(0.2)\nos._exit(0)\n", ("failed", "sandbox_error")),
    HostileCase("kill_everything", "kill(-1, SIGKILL): every process it may signal",
                "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n"
                "    pass\nos._exit(0)\n", ("failed",), docker_only=True),
    HostileCase("read_stdin", "read stdin (passes only if it gets data)",
                "import sys\ndata = sys.stdin.read()\n\ndef add(a, b):\n"
                "    return a + b if data else None\n", ("failed",)),
    HostileCase("print_100mb", "print 100 MB to stdout and stderr, then exit",
                "import os, sys\nsys.stdout.write('x' * 100_000_000)\n"
                "sys.stderr.write('y' * 100_000_000)\nsys.stdout.flush()\nsys.stderr.flush()\n"
                "os._exit(0)\n", ("failed",)),
)

BY_NAME: dict[str, HostileCase] = {c.name: c for c in CASES}
