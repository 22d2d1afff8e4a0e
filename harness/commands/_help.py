"""`--help` in sections, so that `run --help` is not one flat list of 60 options.

A generated option's section is its config field's (`CliField.section`: the
component for a nested setting, e.g. `training`); a hand-written option states its
own with `cls=SectionOption, section=...`; anything else (`--help`) goes with the
command's own controls under "Run".
"""

from __future__ import annotations

from typing import Any

import click

SECTION_TITLES = {
    "run": "Run",
    "experiment": "Experiment (training data, generations, arms)",
    "scoring": "Scoring (what every generation is scored on)",
    "model": "Model",
    "sampling": "Sampling",
    "training": "Training (LoRA)",
    "sandbox": "Sandbox",
    "output": "Output",
    "scale-out": "Scale-out (Ray)",
}
"""Every section, in the order `--help` shows them."""


class SectionOption(click.Option):
    """A click option that knows which `--help` section lists it."""

    def __init__(self, *args: Any, section: str = "run", **kwargs: Any) -> None:
        if section not in SECTION_TITLES:
            raise ValueError(f"unknown help section {section!r}")
        super().__init__(*args, **kwargs)
        self.section = section


class SectionedCommand(click.Command):
    """A click command whose `--help` lists its options under SECTION_TITLES."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows: dict[str, list[tuple[str, str]]] = {name: [] for name in SECTION_TITLES}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                rows[getattr(param, "section", "run")].append(record)
        for name, title in SECTION_TITLES.items():
            if rows[name]:
                with formatter.section(title):
                    formatter.write_dl(rows[name])
