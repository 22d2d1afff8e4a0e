"""Errors the CLI turns into one clear line and a documented exit code.

Library code raises these instead of printing and exiting, so it stays usable from
Python; only `harness.cli` maps them to exit codes (docs/design.md: 2 = bad usage or bad
input, 3 = environment problem with the fix in the message).
"""

from __future__ import annotations


class CollapseBenchError(Exception):
    """Base class: an expected failure with a message meant for the user."""

    exit_code: int = 1


class BadInput(CollapseBenchError):
    """Bad usage or bad input (a malformed file, an unknown name, k > n). Exit 2."""

    exit_code = 2


class EnvironmentProblem(CollapseBenchError):
    """The machine lacks something (Docker daemon, image, model files). Exit 3.

    The message must say how to fix it.
    """

    exit_code = 3


class Interrupted(CollapseBenchError):
    """Ctrl-C during a run. Exit 130; the message says how to continue."""

    exit_code = 130

    def __init__(self, run_dir: object) -> None:
        super().__init__(f"interrupted; continue with: collapse-bench run --resume {run_dir}")
        self.run_dir = run_dir
