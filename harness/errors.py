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
    """Ctrl-C (exit 130) or SIGTERM (exit 143) during a run; the message says how to
    continue. Both stop the same way: containers removed, the manifest marked."""

    exit_code = 130

    def __init__(self, run_dir: object, exit_code: int = 130) -> None:
        super().__init__(f"interrupted; continue with: collapse-bench run --resume {run_dir}")
        self.run_dir = run_dir
        self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be (harness.cli), so a
    `kill PID` or a scheduler's stop unwinds the same way: every `with` closes (the
    sandbox's containers are removed), the run is marked interrupted and the resume
    command printed. Exit 143 (128 + SIGTERM), the convention for a terminated job."""

    exit_code = 143


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message as one line for an error line of our own: its lines
    joined, whitespace collapsed, cut at `limit` characters; the exception's type name
    when it has no message. (Cutting at the first line lost the part that mattered,
    e.g. transformers' "Couldn't instantiate the backend tokenizer from one of:" and
    then, on the following lines, the reasons.)"""
    text = " ".join(str(exc).split())
    if not text:
        return type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
