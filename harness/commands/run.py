"""`collapse-bench run`: one experiment (by default the embedded CPU experiment)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harness.commands._experiment import build_config, execute, experiment_options, given_options


@click.command("run")
@experiment_options()
@click.option("--print-config", is_flag=True,
              help="Validate, print the resolved config as TOML and exit.")
def run(config_file: Path | None, resume: Path | None, print_config: bool,
        **options: Any) -> None:
    """Run the generational self-training loop and score every generation.

    With no options: the built-in tiny model on the synthetic suite, a verified
    (`tests`) and an unverified (`none`) arm, `replace` regime, 5 generations, seed 0,
    in the Docker sandbox. Writes results/<run-id>/ and prints a table per arm.
    """
    cfg = build_config({}, config_file, resume, given_options(options))
    if print_config:
        import tomli_w

        from harness.arms import validate
        from harness.config import to_dict

        validate(cfg)  # a printed config is one that would run
        click.echo(tomli_w.dumps(to_dict(cfg)), nl=False)
        return
    execute(cfg, resume)
