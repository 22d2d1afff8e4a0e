"""Progress bars: shown on a terminal, absent from logs."""

from __future__ import annotations

import io
import sys

import pytest

from harness.progress import progress_bar


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream, progress, shown", [
    (FakeTerminal(), "gen 1 execute", True),
    (FakeTerminal(), False, False),
    (io.StringIO(), "gen 1 execute", False),
])
def test_bar_only_on_a_terminal_and_when_asked(monkeypatch: pytest.MonkeyPatch,
                                               stream: io.StringIO, progress: bool | str,
                                               shown: bool) -> None:
    monkeypatch.setattr(sys, "stderr", stream)
    with progress_bar(3, progress, "execute", "prog") as bar:
        bar.update(3)
    assert ("gen 1 execute" in stream.getvalue()) is shown
