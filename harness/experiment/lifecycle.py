"""A run directory for the life of one run: the part the local loop and the Ray grid share.

Both used to write it out in full (issue 24): create the directory and its
config.toml, or reopen it and mark it running again; hold its one-writer lock; tee
every progress line into run.log, the plan line first; and on the way out mark the
manifest complete, or interrupted. An interruption (Ctrl-C, SIGTERM, or the
SystemExit Ray's driver turns SIGTERM into) becomes `Interrupted`, whose message is
the command that resumes the run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.config import RunConfig, save_toml
from harness.errors import Interrupted
from harness.experiment.arms import plan_line
from harness.runfiles.store import RunStore, now_iso, writer_lock

Log = Callable[[str], None]


@contextlib.contextmanager
def run_directory(cfg: RunConfig, resume_dir: Path | None, log: Log,
                  manifest: Mapping[str, Any] | None = None) -> Iterator[tuple[RunStore, Log]]:
    """(store, log) for the block: log also appends to RUN_DIR/run.log. `manifest`:
    more keys for manifest.json (the model, the Ray cluster). The run is complete when
    the block ends normally."""
    store = RunStore.create(Path(cfg.out)) if resume_dir is None else RunStore.open(resume_dir)
    with writer_lock(store.root):  # one writer per run directory, for the run's life
        if resume_dir is None:
            save_toml(cfg, store.root / "config.toml")
        else:
            store.update_manifest(status="running", resumed=True)
        if manifest:
            store.update_manifest(**manifest)
        log = store.tee(log)
        store.log_line(plan_line(cfg))  # the command printed it before the directory existed
        log(f"run directory: {store.root}")
        try:
            yield store, log
        except (KeyboardInterrupt, SystemExit) as exc:
            store.update_manifest(status="interrupted")
            stop = Interrupted(store.root, exit_code(exc))
            store.log_line(str(stop))
            raise stop from None
        except BaseException:
            store.update_manifest(status="interrupted")
            raise
        store.update_manifest(status="complete", ended=now_iso())


def exit_code(exc: BaseException) -> int:
    """130 for Ctrl-C; 143 for SIGTERM, whether harness.cli raised it (Terminated) or
    Ray's driver turned it into a SystemExit."""
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) and exc.code > 128 else 143
    return int(getattr(exc, "exit_code", 130))
