"""The runner as a plain host subprocess: for machines without Docker. NOT isolated.

Programs get the runner's rlimits, timeouts, output caps, own process groups and a
private scratch directory, but they run as you, on your filesystem and network. So
this executor is never chosen implicitly: it must be asked for (`--executor local`)
and says so on stderr every time it starts.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

from sandbox.channel import Channel, ChannelDead, Event
from sandbox.dispatch import RunnerPool, default_pool_size
from sandbox.docker_env import runner_path
from sandbox.executor import SandboxSettings

WARNING = ("warning: the local executor runs generated code as plain subprocesses of this "
           "machine - NOT isolated (no container: your files, network and processes are "
           "reachable). Use `--executor docker` for anything you do not trust.")


class LocalChannel(Channel):
    """One `python sandbox/runner.py` subprocess with a private scratch directory."""

    def __init__(self, name: str, settings: SandboxSettings, events: queue.Queue[Event]) -> None:
        super().__init__(name, events)
        self.scratch = tempfile.mkdtemp(prefix="collapse-bench-local-")
        self._err_path = Path(self.scratch + ".stderr")
        err: IO[bytes] = self._err_path.open("wb")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONHASHSEED": "0",
               "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
        try:
            # A new session: a Ctrl-C in the terminal reaches the harness, which then
            # closes the pool; the runners do not die half-way on their own.
            self.proc = subprocess.Popen(
                [sys.executable, "-s", str(runner_path()), "--scratch", self.scratch,
                 "--output-limit", str(settings.output_limit_bytes),
                 "--fsize-mb", str(settings.tmpfs_mb)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env,
                cwd=self.scratch, start_new_session=True, bufsize=0)
        except OSError as exc:
            self._cleanup_files()
            raise ChannelDead(f"could not start the local runner: {exc}") from None
        finally:
            err.close()

    def _recv(self) -> bytes:
        assert self.proc.stdout is not None
        return self.proc.stdout.read1(1 << 16) if hasattr(self.proc.stdout, "read1") \
            else os.read(self.proc.stdout.fileno(), 1 << 16)

    def _send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        view = memoryview(data)
        while view:  # an unbuffered pipe may take a large line in parts
            written = self.proc.stdin.write(view)
            view = view[written or 0:]

    def diagnostics(self) -> str:
        try:
            return self._err_path.read_text("utf-8", "replace")[-4096:]
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        """utime + stime of the runner and of its reaped children (the programs)."""
        try:
            with open(f"/proc/{self.proc.pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            return 0.0
        return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")

    def _destroy(self) -> None:
        proc = getattr(self, "proc", None)
        if proc is not None:
            # SIGTERM (and SIGCONT, in case it is stopped) first: the runner then kills
            # its program's whole group on its way out; a SIGKILLed runner would leave
            # a running program behind.
            for sig in (signal.SIGTERM, signal.SIGCONT):
                with contextlib.suppress(OSError):
                    proc.send_signal(sig)
            try:
                proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            for stream in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    if stream is not None:
                        stream.close()
        self._cleanup_files()

    def _cleanup_files(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)
        with contextlib.suppress(OSError):
            self._err_path.unlink()


class LocalExecutor(RunnerPool):
    """Unisolated executor: `settings.pool_size` host runners (default one per core plus one)."""

    def __init__(self, settings: SandboxSettings | None = None, *,
                 unresponsive_after_s: float = 3.0) -> None:
        settings = settings or SandboxSettings()
        print(WARNING, file=sys.stderr, flush=True)
        self._names = itertools.count(1)
        super().__init__("local", default_pool_size(settings), self._start_runner, settings,
                         unresponsive_after_s=unresponsive_after_s)

    def _start_runner(self, events: queue.Queue[Event]) -> Channel:
        channel = LocalChannel(f"local-{next(self._names)}", self.settings, events)
        channel.begin()
        return channel
