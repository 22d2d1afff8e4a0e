"""The run directory: completion markers, the manifest, the writer lock, resume.

Layout and file formats are documented in results/README.md. Every file is written
atomically (`harness.atomic`), so a crash or `kill -9` leaves either the old file or
the new one, never half of one. A
generation counts as complete only when its DONE marker exists; anything without a
marker is redone on `--resume`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
import platform
import re
import secrets
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from harness import __version__
from harness.atomic import (
    SHARED_FILE_MODE,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)
from harness.errors import BadInput, EnvironmentProblem
from tasks.jsonlines import dumps_line

DONE = "DONE"
LOCK = ".lock"
"""The run directory's writer lock (`writer_lock`). Hidden, so readers and Ray's
transfer (which skip hidden names) never take it for part of the results."""
LOG = "run.log"
"""The run's progress lines, appended on every resume (`RunStore.log_line`)."""
FORMAT_VERSION = 1
"""The results format (results/README.md) this harness writes and reads, recorded as
manifest.json's `format_version`. A manifest without one is version 1 (written
before it was recorded); a newer one is refused rather than half-understood."""
def check_format_version(manifest: Any, where: Path) -> None:
    """BadInput when a run directory's manifest says a results format newer than (or
    other than) the ones this harness reads: its numbers would be misread silently."""
    version = manifest.get("format_version", 1) if isinstance(manifest, dict) else 1
    if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION:
        raise BadInput(f"{where}: results format version {version!r} is newer than this "
                       f"collapse-bench ({__version__}) reads (up to {FORMAT_VERSION}); "
                       "upgrade collapse-bench to read it")
    if version < 1:
        raise BadInput(f"{where}: results format version {version!r} is not one this "
                       "collapse-bench knows")


_HELD: dict[Path, tuple[int, int]] = {}  # resolved run dir -> (lock fd, depth)


@contextlib.contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """Hold the run directory's exclusive writer lock: one process writes a run.

    Two `run --resume DIR` (or a run and a resume of it) would otherwise compute the
    same generations side by side and leave a manifest that contradicts the DONE
    markers. The lock is an flock on RUN_DIR/.lock, so the kernel drops it when the
    holder exits in any way (a crash or kill -9 included): a stale lock cannot block
    a resume, and nothing needs cleaning up. The file itself stays (removing it would
    race a process about to lock it); it holds the holder's pid, for the message.
    Re-entrant within a process (a resume takes it before its corrections and the
    loop again), and a second writer is refused at once, never queued.
    """
    key = Path(root).resolve()
    if key in _HELD:
        fd, depth = _HELD[key]
        _HELD[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _HELD[key]
            _HELD[key] = (fd, depth - 1)
        return
    try:
        fd = os.open(key / LOCK, os.O_RDWR | os.O_CREAT, SHARED_FILE_MODE)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot lock the run directory {root} for writing "
                                 f"({exc.strerror}); make it writable") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        raise EnvironmentProblem(
            f"{root} is being written by another collapse-bench process"
            + (f" (pid {holder})" if holder.isdigit() else "")
            + "; wait for it to finish or stop it, then resume") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _HELD[key] = (fd, 1)
        yield
    finally:
        _HELD.pop(key, None)
        os.close(fd)  # releases the flock


def jsonl_text(rows: Iterable[Mapping[str, Any]]) -> str:
    """Rows as JSON lines; encodable as UTF-8 whatever text they hold (`dumps_line`)."""
    return "".join(dumps_line(row) + "\n" for row in rows)


def atomic_write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> str:
    """Write rows as JSON lines; returns the file's sha256 (hex).

    Samples, verdicts, kept and train data hold model text; any str can be written
    (a lone surrogate is written as U+FFFD, the text policy of tasks/model_text.py),
    and `read_jsonl` gives back exactly the rows the file holds (`tasks.jsonlines`).
    """
    data = jsonl_text(rows).encode("utf-8")
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a file `atomic_write_jsonl` wrote, exactly as written.

    Records end at "\\n" only (newline="\\n"): a JSON line never holds a raw line
    break, and a universal-newline reader would also split at a stray "\\r".
    """
    with open(path, encoding="utf-8", newline="\n") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}"


def safe_name(text: str) -> str:
    """A filesystem-safe rendering of a name (for arm ids)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def _git_hash() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    versions: dict[str, str | None] = {"collapse-bench": __version__,
                                       "python": platform.python_version()}
    for dist in ("torch", "transformers", "peft", "tokenizers", "datasets", "docker"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


class RunStore:
    """A run directory and its manifest.

    The manifest is rewritten atomically after every step, so it always says which
    steps finished; it is informational - resume decisions come from DONE markers.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest_path = root / "manifest.json"

    @classmethod
    def create(cls, out_dir: Path, run_id: str | None = None) -> RunStore:
        run_id = run_id or new_run_id()
        root = out_dir / run_id
        if root.exists():
            raise BadInput(f"run directory already exists: {root}")
        root.mkdir(parents=True)
        store = cls(root)
        store._write_manifest({
            "format_version": FORMAT_VERSION,
            "run_id": run_id,
            "versions": _versions(),
            "git_hash": _git_hash(),
            "host": {"hostname": platform.node(), "platform": platform.platform(),
                     "cpu_count": os.cpu_count()},
            "started": now_iso(),
            "ended": None,
            "status": "running",
            "steps": {},
            "datasets": {},
        })
        return store

    @classmethod
    def open(cls, root: Path) -> RunStore:
        if not (root / "config.toml").is_file() or not (root / "manifest.json").is_file():
            raise BadInput(f"not a run directory (no config.toml/manifest.json): {root}")
        check_format_version(read_json(root / "manifest.json"), root)
        return cls(root)

    @property
    def run_id(self) -> str:
        return self.root.name

    # manifest -----------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        return read_json(self.manifest_path)

    def _write_manifest(self, manifest: Mapping[str, Any]) -> None:
        atomic_write_json(self.manifest_path, manifest)

    def update_manifest(self, **fields: Any) -> None:
        manifest = self.manifest()
        manifest.update(fields)
        self._write_manifest(manifest)

    def record_step(self, step: str, status: str, **extra: Any) -> None:
        """Record a step's status (and e.g. a dataset sha256) in the manifest."""
        manifest = self.manifest()
        manifest["steps"][step] = {"status": status, "time": now_iso(), **extra}
        if "sha256" in extra:
            manifest["datasets"][step] = extra["sha256"]
        self._write_manifest(manifest)

    # the log ------------------------------------------------------------------
    def log_line(self, line: str) -> None:
        """Append one progress line, time-stamped, to RUN_DIR/run.log.

        What the run printed is then kept with its results without a redirection;
        a resume appends, so the file is the run's whole history. Opened per line
        (a run prints a few lines a generation), so a crash loses no line.
        """
        with open(self.root / LOG, "a", encoding="utf-8", errors="replace") as fh:
            fh.write(f"{now_iso()} {line}\n")

    def tee(self, log: Callable[[str], None]) -> Callable[[str], None]:
        """`log` (the terminal) that also appends each line to run.log."""
        def both(line: str) -> None:
            log(line)
            self.log_line(line)
        return both

    # arms and generations -----------------------------------------------------
    def arm_dir(self, arm_id: str) -> Path:
        return self.root / "arms" / arm_id

    def gen_dir(self, arm_id: str, generation: int) -> Path:
        return self.arm_dir(arm_id) / f"gen-{generation}"

    def is_done(self, arm_id: str, generation: int) -> bool:
        return (self.gen_dir(arm_id, generation) / DONE).exists()

    def mark_done(self, arm_id: str, generation: int) -> None:
        atomic_write_text(self.gen_dir(arm_id, generation) / DONE, now_iso() + "\n")
