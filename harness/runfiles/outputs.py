"""Output paths, checked before the work that fills them.

An `--out` that cannot be written must fail in a second with one line (exit 2),
not as a traceback after minutes of sampling or executing whose results are then
lost. The checks probe the target directory by creating (and removing) a temporary
file there, because permission bits lie for root and for special filesystems like
/proc. A target that exists and is not a regular file (a symlink such as
/dev/stdout, a FIFO, a device, a directory) is refused: the atomic temp-file-and-
rename would replace it. `-` means standard output where a command supports it.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from harness.errors import BadInput

STDOUT = Path("-")


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _probe_dir(directory: Path, what: str, target: Path) -> None:
    """Create `directory` if needed and prove a file can be created in it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".collapse-bench-probe-")
        os.close(fd)
        os.unlink(tmp)
    except FileExistsError:
        raise BadInput(f"{what} {target}: {directory} exists and is not a directory") from None
    except OSError as exc:
        raise BadInput(f"{what} {target}: cannot write in {directory}: "
                       f"{exc.strerror or exc}") from None


def check_output_file(path: Path, what: str = "--out") -> None:
    """BadInput unless `path` can be written as a regular file (or is `-`)."""
    if path == STDOUT:
        return
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise BadInput(f"{what} {path}: {exc.strerror or exc}") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise BadInput(f"{what} {path} is {_kind(mode)}, not a regular file; refusing to "
                       "replace it (use - for standard output)")
    _probe_dir(path.parent, what, path)


def check_output_dir(path: Path, what: str = "--out", create: bool = True) -> None:
    """BadInput unless `path` is (or can be created as) a writable directory.

    create=False (a dry run) writes nothing: the nearest existing directory on the way
    must let this user create entries, which is the permission a real run needs.
    """
    if path.exists() and not path.is_dir():
        raise BadInput(f"{what} {path} exists and is not a directory")
    if create:
        _probe_dir(path, what, path)
        return
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise BadInput(f"{what} {path}: {existing} exists and is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BadInput(f"{what} {path}: cannot write in {existing}")
