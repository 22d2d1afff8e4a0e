"""`collapse-bench ablate`: a grid of arms (filters x regimes x real fractions x train
temperatures x seeds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harness.commands._experiment import build_config, execute, experiment_options, given_options
from harness.commands._help import SectionedCommand
from harness.commands._ray_options import ray_options, take_ray_settings
from harness.errors import BadInput

FULL_GRID: dict[str, Any] = {
    "filters": ["none", "syntax", "partial:0.5", "tests", "noisy:0.1", "noisy:0.3",
                "perplexity:0.5"],
}

# Sized to finish in <= 15 minutes on a 2-core CPU machine (stated in the output).
QUICK: dict[str, Any] = {
    **FULL_GRID,
    "generations": 3,
    "eval_tasks": 100,
}


@click.command("ablate", cls=SectionedCommand)
@experiment_options(FULL_GRID)
@ray_options
@click.option("--preset", "preset_name", default=None, metavar="NAME",
              help="A collapse question: horizon | poison | recovery | detect (quick, ~20 "
                   "min on 2 cores, 3 seeds) or NAME-full (docs/collapse.md).")
@click.option("--quick", is_flag=True,
              help="Smaller preset (3 generations, 100 eval problems; other settings as "
                   "the default run) that finishes in under 15 minutes on 2 CPU cores.")
def ablate(config_file: Path | None, resume: Path | None, dry_run: bool, quick: bool,
           preset_name: str | None, **options: Any) -> None:
    """Run a grid of arms sharing one base model and one sandbox pool.

    Default grid: filters none, syntax, partial:0.5, tests, noisy:0.1, noisy:0.3,
    perplexity:0.5, regime replace, real fraction 0, seed 0. Arms already complete
    in a --resume'd run directory are skipped. Ends with one table comparing the
    arm groups (pass@1 AUC, slope, first generation below half, diversity
    retention, with 95% intervals).
    """
    ray = take_ray_settings(options)
    if preset_name is not None and quick:
        raise BadInput("--quick and --preset both pick a preset; give one")
    preset = QUICK if quick else FULL_GRID
    if preset_name is not None:
        from harness.experiment.presets import describe, preset_overrides

        preset = preset_overrides(preset_name)
        if resume is None:
            click.echo(describe(preset_name), err=True)
    cfg = build_config(preset, config_file, resume, given_options(options))
    if cfg.protocol:
        raise BadInput("a protocol is one frozen experiment: run it with `collapse-bench run "
                       f"--protocol {cfg.protocol.split('@')[0]}`, not ablate")
    if quick and resume is None:
        click.echo(f"quick preset: {cfg.generations} generations, {cfg.train_prompts} train "
                   f"prompts x {cfg.n_train}, {cfg.eval_tasks} eval problems x {cfg.n_eval}, "
                   f"{cfg.training.epochs} epochs; {len(cfg.filters)} filters", err=True)
    execute(cfg, resume, compare=True, ray=ray, dry_run=dry_run)
