"""Peak resident memory of one stretch of work (one generation), for metrics.json.

Why not `getrusage`: its `ru_maxrss` is the process's lifetime peak, so in a process
that runs several generations (or a Ray worker that runs a whole arm) every later
generation would report the worst earlier one. Linux lets a process reset its own
high-water mark (`echo 5 > /proc/self/clear_refs`, then `VmHWM` in /proc/self/status),
which gives a true per-generation peak. Elsewhere the lifetime peak is the fallback,
an upper bound, and the record says which it is.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def reset_peak() -> bool:
    """Start a new peak measurement; False where only the lifetime peak is available."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident memory since the last `reset_peak` (else the process lifetime), MiB."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024        # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024

