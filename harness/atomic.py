"""Atomic writes: a file or a directory is replaced whole or not at all.

Every file is written to a temporary name in the same directory, fsynced and renamed
into place, so a crash or `kill -9` leaves either the old file or the new one, never
half of one; a directory is built beside its target and renamed the same way. Only
what the caller says it wrote itself (`owns`) may be replaced: replacing deletes.

Part of the shared core because the run directory (`harness.runfiles.store`), the
model cache and adapters (`harness.model`) and config files (`harness.config`) all
write this way, and none of those layers should import another for it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import BadInput
from tasks.model_text import utf8

_UMASK = os.umask(0)
os.umask(_UMASK)
SHARED_FILE_MODE = 0o666 & ~_UMASK
"""The mode written files get: readable by everyone the umask allows (mkstemp makes
0600; results are meant to be shared)."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via temp file + fsync + rename.

    Only a regular file (or nothing) at `path` is replaced: the rename would swap a
    symlink, FIFO or device (say /dev/stdout) for a plain file (BadInput instead).
    """
    refuse_non_regular(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, SHARED_FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def refuse_non_regular(path: Path) -> None:
    """BadInput if something other than a regular file exists at `path`."""
    import stat

    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    if not stat.S_ISREG(mode):
        raise BadInput(f"{path} exists and is not a regular file; refusing to replace it")


def check_replaceable(directory: str | Path, owns: Callable[[Path], bool]) -> None:
    """BadInput unless `directory` is absent, an empty directory, or one `owns` claims.

    `owns` recognises what the calling writer itself wrote there before (an export's
    marker file, an adapter's files, a cache entry's build record). Anything else at
    the path (a user's directory, a home directory, a symlink, a file) is never
    replaced: replacing deletes it. Writers call this before the work starts, so a
    wrong path costs one line, not a model load.
    """
    target = Path(directory)
    if not os.path.lexists(target):
        return
    if target.is_symlink() or not target.is_dir():
        raise BadInput(f"{target} exists and is not a directory; refusing to replace it "
                       "(choose a new path)")
    if not any(target.iterdir()) or owns(target):
        return
    raise BadInput(f"{target} is a non-empty directory that collapse-bench did not write; "
                   "refusing to replace it (choose a new or empty path)")


def atomic_replace_dir(build: Callable[[Path], None], directory: str | Path, *,
                       owns: Callable[[Path], bool]) -> Path:
    """Create a directory atomically: `build` fills a temp dir beside it, then rename.

    A crash leaves the old directory (or none) and at most a hidden temp dir that the
    next build removes; readers never see a half-written model or adapter. An existing
    directory is replaced only if `check_replaceable` allows it (`owns` is required:
    every caller must say what of its own it may replace).
    """
    target = Path(directory)
    check_replaceable(target, owns)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        build(tmp)
        if target.exists():
            check_replaceable(target, owns)  # whatever appeared there during the build
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` as UTF-8; lone surrogates become U+FFFD (policy: tasks.model_text)."""
    atomic_write_bytes(path, utf8(text))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
