"""`collapse-bench run`: one experiment (by default the embedded CPU experiment)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harness.commands._experiment import execute, experiment_options, given_options
from harness.commands._help import SectionedCommand
from harness.commands._protocol import check_protocol_data, protocol_run_config
from harness.commands._ray_options import ray_options, take_ray_settings


@click.command("run", cls=SectionedCommand)
@experiment_options()
@ray_options
@click.option("--print-config", is_flag=True,
              help="Validate, print the resolved config as TOML and exit.")
@click.option("--list-protocols", is_flag=True,
              help="List the benchmark protocols (name, version, hash, expected time, "
                   "description) and exit; run one with --protocol NAME.")
def run(config_file: Path | None, resume: Path | None, dry_run: bool, print_config: bool,
        list_protocols: bool, **options: Any) -> None:
    """Run the generational self-training loop and score every generation.

    With no options: the built-in tiny model on the synthetic suite, a verified
    (`tests`) and an unverified (`none`) arm, `replace` regime, 5 generations, seed 0,
    in the Docker sandbox. Writes results/<run-id>/ and prints a table per arm.

    `--protocol NAME` runs a benchmark protocol (a frozen experiment, see
    --list-protocols): only the model, device, dtype, threads, cache dir, executor,
    --out and sandbox pool size may then be set; the run records the protocol's
    name, version and hash, for `export` and `leaderboard build`.
    """
    ray = take_ray_settings(options)
    if list_protocols:
        from harness.experiment.protocols import protocols_table

        click.echo(protocols_table(), nl=False)
        return
    cfg = protocol_run_config(config_file, resume, given_options(options))
    if print_config:
        import tomli_w

        from harness.config import to_dict
        from harness.experiment.arms import validate

        validate(cfg)  # a printed config is one that would run
        click.echo(tomli_w.dumps(to_dict(cfg)), nl=False)
        return
    check_protocol_data(cfg)
    execute(cfg, resume, ray=ray, dry_run=dry_run)
