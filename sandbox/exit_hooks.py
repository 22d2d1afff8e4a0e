"""Remove every runner of this process at exit and on SIGTERM/SIGHUP.

Pools register here when they start. Ctrl-C needs nothing extra: Python turns it
into KeyboardInterrupt, which unwinds through `with` blocks and then runs the exit
hook. SIGTERM and SIGHUP would kill the process without any of that, so where nobody
else handles them they are turned into a clean `SystemExit`.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import threading
import weakref
from typing import Protocol


class Closable(Protocol):
    def close(self) -> None: ...


_LIVE: weakref.WeakSet[Closable] = weakref.WeakSet()
_hooks_installed = False


def register(pool: Closable) -> None:
    """Close `pool` at exit unless it was closed before (see `forget`)."""
    _install()
    _LIVE.add(pool)


def forget(pool: Closable) -> None:
    _LIVE.discard(pool)


def close_all_pools() -> None:
    """Close every live pool of this process (atexit and signal handler use this)."""
    for pool in list(_LIVE):
        with contextlib.suppress(Exception):
            pool.close()


def _on_terminate(signum: int, frame: object) -> None:
    close_all_pools()
    raise SystemExit(128 + signum)


def _install() -> None:
    """Once per process: the exit hook, and SIGTERM/SIGHUP handlers where unclaimed."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(close_all_pools)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_terminate)
