"""`collapse-bench ablate`: a grid of arms (filters x regimes x real fractions x train
temperatures x seeds), shaped by a preset of `harness.experiment.presets`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harness.commands._experiment import build_config, execute, experiment_options, given_options
from harness.commands._help import SectionedCommand
from harness.commands._ray_options import ray_options, take_ray_settings
from harness.errors import BadInput
from harness.experiment.presets import DEFAULT_PRESET, PRESETS, flags_text, resolve

DEFAULT = PRESETS[DEFAULT_PRESET]

HELP = f"""Run a grid of arms sharing one base model and one sandbox pool.

Default grid (preset {DEFAULT_PRESET}-full): filters {', '.join(DEFAULT.quick['filters'])},
regime replace, real fraction 0, seed 0. Arms already complete in a --resume'd run
directory are skipped. Ends with one table comparing the arm groups (pass@1 AUC,
slope, first generation below half, diversity retention, with 95% intervals).
"""


@click.command("ablate", cls=SectionedCommand, help=HELP)
@experiment_options(resolve().overrides())
@ray_options
@click.option("--preset", "preset_name", default=None, metavar="NAME",
              help=f"A named experiment shape, one of {' | '.join(PRESETS)}: NAME runs its "
                   "quick version (20 to 30 minutes on 2 CPU cores, detect's 36 arms over an "
                   "hour: README), NAME-full the version to cite (docs/collapse.md).")
@click.option("--quick", is_flag=True,
              help=f"The default grid's quick version (preset {DEFAULT_PRESET}: "
                   f"{flags_text(DEFAULT.quick_sizes)}; other settings as the default run), "
                   "which finishes in under 15 minutes on 2 CPU cores.")
def ablate(config_file: Path | None, resume: Path | None, dry_run: bool, quick: bool,
           preset_name: str | None, **options: Any) -> None:
    ray = take_ray_settings(options)
    choice = resolve(preset_name, quick)
    if choice.named and resume is None:
        click.echo(choice.describe(), err=True)
    cfg = build_config(choice.overrides(), config_file, resume, given_options(options))
    if cfg.protocol:
        raise BadInput("a protocol is one frozen experiment: run it with `collapse-bench run "
                       f"--protocol {cfg.protocol.split('@')[0]}`, not ablate")
    if quick and resume is None:
        click.echo(f"quick preset: {cfg.generations} generations, {cfg.train_prompts} train "
                   f"prompts x {cfg.n_train}, {cfg.eval_tasks} eval problems x {cfg.n_eval}, "
                   f"{cfg.training.epochs} epochs; {len(cfg.filters)} filters", err=True)
    execute(cfg, resume, compare=True, ray=ray, dry_run=dry_run)
