"""One way to show progress: a transient tqdm bar on a terminal, nothing in logs.

Each phase (sampling, execution, training) gets a bar that disappears when done;
the loop prints one permanent line per finished generation instead. When stderr
is not a terminal (CI, `> log 2>&1`), bars are off, so logs hold only those lines.
"""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(total: int, progress: bool | str, default_label: str, unit: str) -> Any:
    """A tqdm bar labelled `progress` (a str) or `default_label`; off when `progress`
    is falsy or stderr is not a terminal."""
    from tqdm import tqdm

    label = progress if isinstance(progress, str) else default_label
    enabled = bool(progress) and sys.stderr.isatty()
    return tqdm(total=total, desc=label, unit=unit, leave=False, dynamic_ncols=True,
                disable=not enabled)
