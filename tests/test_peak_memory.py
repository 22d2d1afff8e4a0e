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


_FRAGMENT = """
import sys
from pathlib import Path

from harness.model.runtime import bound_heap_retention, release_memory

def rss_mb():
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20

if sys.argv[1] == "bounded":
    bound_heap_retention()
first = bytearray(8 * 2**20)  # a mapping, freed: glibc then serves blocks this size from its heap
del first
before = rss_mb()
blocks = [bytearray(4 * 2**20) for _ in range(64)]     # 256 MiB, touched (zero-filled)
pin = bytearray(4 * 2**20)                             # allocated last: pins the heap's top
del blocks
if sys.argv[1] == "trimmed":
    release_memory()
print(round(rss_mb() - before))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tunables")
def test_freed_tensor_sized_blocks_leave_the_process_once_the_heap_is_bounded() -> None:
    """Without `bound_heap_retention`, blocks freed below a live one stay resident
    (glibc raised its mmap threshold after the first large free, and the heap keeps
    what it frees): within a training step of a 135M model that is gigabytes. Bounded,
    each large block is its own mapping and leaves when freed; between phases,
    `release_memory` hands back what the heap kept."""
    import subprocess

    def retained(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _FRAGMENT, mode], capture_output=True,
                             text=True, check=True)
        return int(out.stdout.split()[-1])

    assert retained("default") > 200
    assert retained("bounded") < 50
    assert retained("trimmed") < 50
