"""An executor that remembers verdicts: each distinct program runs once per run.

A verdict is a function of the request's content (`ExecRequest.content_key`: the
program, its tests, its limits), which is why `run_unique` already runs each distinct
program of one call once. Across the calls of a run the same programs come back:
every generation samples the same eval problems, so a model that has settled writes
many of the programs it wrote before, and arms of one seed share generation 0's. In
the default experiment a third to a half of a generation's eval programs, and more
in a sharpened arm, were run in an earlier generation or arm.

`RememberingExecutor` wraps the run's executor, answers those from memory, and sends
the rest through. Nothing else changes: each answer is the one the program got, with
the caller's request id. What is not remembered: a `sandbox_error` (the sandbox's
failure, not the program's; asked again, it is run again), and anything past
`max_entries` distinct programs (then the oldest are forgotten first), so memory
stays bounded on long runs.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Sequence

from sandbox.executor import ExecRequest, ExecResult, Executor, ProgressCallback

MAX_ENTRIES = 200_000
"""Distinct verdicts kept. A verdict is a few hundred bytes (its output tails are at
most `output_limit_bytes` each), so this is tens of MB at most."""


class RememberingExecutor:
    """`inner`, answering requests it has already run from memory (see the module)."""

    def __init__(self, inner: Executor, max_entries: int = MAX_ENTRIES) -> None:
        self.inner = inner
        self.max_entries = max_entries
        self._verdicts: OrderedDict[str, ExecResult] = OrderedDict()
        self.hits = 0
        self.runs = 0

    @property
    def name(self) -> str:
        return self.inner.name

    def run(self, requests: Sequence[ExecRequest],
            progress: ProgressCallback | None = None) -> list[ExecResult]:
        keys = [r.content_key() for r in requests]
        new: dict[str, ExecRequest] = {}
        for key, request in zip(keys, requests, strict=True):
            if key not in self._verdicts and key not in new:
                new[key] = request
        remembered = sum(key in self._verdicts for key in keys)
        if progress is not None and remembered:
            progress(remembered)
        ran = self.inner.run(list(new.values()), progress) if new else []
        fresh = dict(zip(new, ran, strict=True))
        out = []
        for key, request in zip(keys, requests, strict=True):
            result = fresh.get(key) or self._recall(key)
            out.append(dataclasses.replace(result, request_id=request.request_id))
        for key, result in fresh.items():
            self._remember(key, result)
        self.hits += remembered
        self.runs += len(new)
        return out

    def tally(self) -> str:
        """What the memory saved, as a log line."""
        asked = self.hits + self.runs
        share = f" ({self.hits / asked:.0%})" if asked else ""
        return (f"sandbox: {self.runs} distinct programs run; {self.hits} answered from "
                f"memory{share}")

    def _recall(self, key: str) -> ExecResult:
        self._verdicts.move_to_end(key)
        return self._verdicts[key]

    def _remember(self, key: str, result: ExecResult) -> None:
        if result.status == "sandbox_error":
            return
        self._verdicts[key] = result
        self._verdicts.move_to_end(key)
        while len(self._verdicts) > self.max_entries:
            self._verdicts.popitem(last=False)

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> RememberingExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
