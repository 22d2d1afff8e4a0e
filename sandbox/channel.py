"""A connection to one runner process: bytes in, JSON answers out.

`DockerChannel` (a container's attached stdin/stdout) and `LocalChannel` (a host
subprocess's pipes) implement the three transport methods; the framing, the ready
handshake and the reader thread live here, once.
"""

from __future__ import annotations

import json
import queue
import threading
from abc import ABC, abstractmethod
from typing import Any

READY_TIMEOUT_S = 30.0
MAX_ANSWER_BYTES = 16 << 20
"""Longest answer line accepted; a longer one is malformed (the runner caps values)."""

Event = tuple["Channel", "dict[str, Any] | None"]
"""(channel, answer) from a channel's reader thread; answer None means it died."""


class ChannelDead(Exception):
    """A runner could not be started or reached."""


class Channel(ABC):
    """One live runner. Subclasses move bytes; this class turns them into messages.

    A reader thread splits the runner's stdout into JSON lines and posts each answer
    to the pool's event queue; end of stream posts `(channel, None)`. A line that is
    too long, not JSON, nested too deeply or not an object is posted as
    ``{"malformed": why}``: the reader itself never dies of what it reads.
    """

    def __init__(self, name: str, events: queue.Queue[Event]) -> None:
        self.name = name
        self.ready_info: dict[str, Any] = {}
        self._events = events
        self._ready = threading.Event()
        self._dead = False
        self._thread = threading.Thread(target=self._read_loop, name=f"reader-{name}",
                                        daemon=True)

    @abstractmethod
    def _recv(self) -> bytes:
        """Next chunk of the runner's stdout; b"" at end of stream."""

    @abstractmethod
    def _send(self, data: bytes) -> None:
        """Write to the runner's stdin; OSError when it is gone."""

    @abstractmethod
    def _destroy(self) -> None:
        """Kill the runner and free what it holds. Idempotent, never raises."""

    def diagnostics(self) -> str:
        """Whatever the runner printed to stderr, for error messages."""
        return ""

    def cpu_seconds(self) -> float:
        """CPU time used so far by the runner and its programs (for benchmarks)."""
        return 0.0

    def begin(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Start reading and wait for the runner's ready line."""
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._dead:
            detail = self.diagnostics().strip()[-500:]
            self.destroy()
            suffix = f": {detail}" if detail else ""
            raise ChannelDead(f"runner {self.name} did not start{suffix}")

    def send(self, data: bytes) -> None:
        try:
            self._send(data)
        except OSError as exc:
            raise ChannelDead(f"runner {self.name} is gone: {exc}") from exc

    def destroy(self) -> None:
        self._dead = True
        self._destroy()

    def _read_loop(self) -> None:
        buf = bytearray()
        skipping = False  # inside an over-long line: drop bytes up to its newline
        try:
            while True:
                chunk = self._recv()
                if not chunk:
                    break
                buf += chunk
                while True:
                    nl = buf.find(b"\n")
                    if nl < 0:
                        if len(buf) > MAX_ANSWER_BYTES:
                            if not skipping:
                                self._post_malformed("answer line too long")
                            skipping = True
                            buf.clear()
                        break
                    line = bytes(buf[:nl])
                    del buf[:nl + 1]
                    if skipping:
                        skipping = False
                        continue
                    self._handle(line)
        except Exception:
            pass  # a closed or reset stream is the same as its end
        finally:
            self._dead = True
            self._ready.set()
            self._events.put((self, None))

    def _post_malformed(self, why: str) -> None:
        self._events.put((self, {"malformed": why}))

    def _handle(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            msg = json.loads(line)
        except (ValueError, RecursionError, MemoryError) as exc:
            self._post_malformed(f"answer is not JSON ({type(exc).__name__})")
            return
        if not isinstance(msg, dict):
            self._post_malformed("answer is not a JSON object")
            return
        if msg.get("ready"):
            self.ready_info = msg
            self._ready.set()
        else:
            self._events.put((self, msg))
