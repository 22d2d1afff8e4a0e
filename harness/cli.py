"""`collapse-bench`: the command-line entry point. Thin on purpose.

Each command lives in `harness/commands/<name>.py`, parses its options and calls
library code. This module only assembles the group and maps expected errors to
exit codes: 0 success, 2 bad usage or bad input, 3 environment problem (the
message says how to fix it). Command modules import heavy libraries lazily, inside
the command, so `--help` is instant.
"""

from __future__ import annotations

import sys

import click

from harness import __version__
from harness.commands import COMMANDS
from harness.errors import CollapseBenchError, Interrupted

EXIT_CODES_HELP = """\b
Exit codes:
  0  success
  2  bad usage or bad input (one-line message)
  3  environment problem (no Docker daemon, image or model missing); the message says the fix
  130  interrupted (Ctrl-C); the message gives the `run --resume RUN_DIR` that continues
"""


@click.group(epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="collapse-bench")
def cli() -> None:
    """Benchmark model collapse in code LMs trained on their own completions."""


for _command in COMMANDS:
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; expected errors become one line on stderr and their exit code."""
    try:
        cli.main(args=argv, prog_name="collapse-bench", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        return 130
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
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
