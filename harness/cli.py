"""`collapse-bench`: the command-line entry point. Thin on purpose.

Each command lives in `harness/commands/<name>.py`, parses its options and calls
library code. This module only assembles the group and maps expected errors to
exit codes: 0 success, 2 bad usage or bad input, 3 environment problem (the
message says how to fix it), 130 Ctrl-C, 143 SIGTERM. Command modules import heavy
libraries lazily, inside the command, so `--help` is instant.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator

import click

from harness import __version__
from harness.commands import COMMANDS
from harness.errors import CollapseBenchError, Interrupted, Terminated

EXIT_CODES_HELP = """\b
Exit codes:
  0  success
  2  bad usage or bad input (one-line message)
  3  environment problem (no Docker daemon, image or model missing, a run directory
     another process is writing); the message says the fix
  130  interrupted (Ctrl-C); the message gives the `run --resume RUN_DIR` that continues
  143  terminated (SIGTERM): stopped as Ctrl-C stops, with the same resume command
"""


@click.group(epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="collapse-bench")
def cli() -> None:
    """Benchmark model collapse in code LMs trained on their own completions."""


for _command in COMMANDS:
    cli.add_command(_command)


def _on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a repeat must not cut the clean-up short
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (`kill PID`, a scheduler's stop) takes Ctrl-C's path: `Terminated`, a
    KeyboardInterrupt, unwinds every `with` (containers removed) and a run prints its
    resume command. Without this a run killed that way left a "running" manifest and,
    with the local executor, no clean-up at all. Only in the main thread (where Python
    delivers signals); the previous handler comes back afterwards."""
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: signals are not ours to take
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; expected errors become one line on stderr and their exit code."""
    with sigterm_as_interrupt():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="collapse-bench", standalone_mode=False)
    except click.exceptions.Abort as exc:  # click's wrapping of a KeyboardInterrupt
        click.echo("interrupted", err=True)
        return int(getattr(exc.__cause__, "exit_code", 130))
    except click.UsageError as exc:  # one line, like every other bad input (exit 2)
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Interrupted as exc:
        click.echo(str(exc), err=True)
        return exc.exit_code
    except CollapseBenchError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        click.echo("interrupted", err=True)
        return int(getattr(exc, "exit_code", 130))
    return 0


if __name__ == "__main__":
    sys.exit(main())
