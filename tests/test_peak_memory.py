"""The per-generation peak is reset between generations, not the process's lifetime peak."""

from __future__ import annotations

import sys

import pytest

from harness.experiment.peak_memory import peak_rss_mb, reset_peak


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM reset is Linux-only")
def test_peak_resets_between_stretches_of_work() -> None:
    assert reset_peak()
    before = peak_rss_mb()
    block = bytearray(256 * 1024 * 1024)          # touched: 256 MiB resident
    for i in range(0, len(block), 4096):
        block[i] = 1
    during = peak_rss_mb()
    del block
    assert during - before > 200
    reset_peak()
    assert peak_rss_mb() < during - 200
