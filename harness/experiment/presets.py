"""Named experiment shapes of `ablate`: one registry, one resolver (docs/collapse.md).

Every shape `ablate` can run is a `Preset`: a question and the config overrides
({dotted path: value}) that ask it, laid over the defaults; options typed on the
command line still override them. A preset has two versions. The plain name is
the quick one; `NAME-full` is the one whose numbers are worth citing. The default
grid is a preset too (`filters`): plain `ablate` runs `filters-full` and `ablate
--quick` runs `filters`, so `ablate`, `ablate --quick` and `ablate --preset NAME`
all go through `resolve`, and `ablate --help` lists the names from `PRESETS`.

The collapse-question presets' quick versions are sized for about 20 minutes on a
2-core CPU machine with 3 seeds (measured, README: 18 to 31 minutes, the detect and
recovery ones above it). A preset fixes the question, not the model: pass `--model`
to ask it of another one.

Presets are tuned over time (a size, an axis value); protocols
(`harness.experiment.protocols`) are not: a protocol freezes one experiment under
a content hash so that results claiming it stay comparable. That is why the two
are separate mechanisms (docs/design.md, "Presets and protocols").
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import BadInput
from harness.experiment.detection import CALIBRATED_KINDS

QUICK_SIZES: Mapping[str, Any] = {
    "seeds": [0, 1, 2],
    "train_prompts": 256,
    "eval_tasks": 100,
}
"""What makes a collapse-question preset quick: 3 seeds at the default run's sizes (protocol
cpu-synth v2), fixed here so that a preset does not move when a default does."""

FULL_SIZES: Mapping[str, Any] = {"seeds": [0, 1, 2, 3, 4], "generations": 10,
                                 "train_prompts": 512, "eval_tasks": 200}
"""What makes a collapse-question preset citable: 5 seeds, 10 generations, and twice the
quick sizes (cpu-synth v1's 512 train prompts and 200 eval problems)."""

DETECTORS = [f"detect:{kind}:0.9" for kind in CALIBRATED_KINDS]
"""The detect preset's filters: each calibrated detector (harness.experiment.detection),
keeping what scores below its human references' 0.9 quantile."""

FILTER_GRID = ["none", "syntax", "partial:0.5", "tests", "noisy:0.1", "noisy:0.3",
               "perplexity:0.5"]
"""The default ablate grid: every kind of verification filter, one arm each."""


@dataclass(frozen=True)
class Preset:
    """One named experiment shape.

    quick version = quick_sizes <- quick; full version = quick <- full_sizes <- full
    (later wins), so `quick` holds what both versions ask and `full` only what the
    citable one changes beyond its sizes.
    """

    question: str
    quick: Mapping[str, Any]
    full: Mapping[str, Any] = field(default_factory=dict)
    full_time: str = ""     # estimated, said before a -full preset starts (`Choice.describe`)
    quick_sizes: Mapping[str, Any] = field(default_factory=lambda: QUICK_SIZES)
    full_sizes: Mapping[str, Any] = field(default_factory=lambda: FULL_SIZES)

    def overrides(self, full: bool) -> dict[str, Any]:
        """A fresh copy each time: a config built from it cannot change the registry."""
        layers = (self.quick, self.full_sizes, self.full) if full else (self.quick_sizes,
                                                                         self.quick)
        return copy.deepcopy({k: v for layer in layers for k, v in layer.items()})


DEFAULT_PRESET = "filters"
"""What plain `ablate` runs (its full version) and `ablate --quick` (its quick one)."""

PRESETS: dict[str, Preset] = {
    DEFAULT_PRESET: Preset(
        "Which verification filter keeps self-training from collapsing?",
        {"filters": FILTER_GRID},
        # The default run's sizes (1 seed, 5 generations); quick: under 15 minutes on
        # 2 CPU cores (as `--quick` says).
        quick_sizes={"generations": 3, "eval_tasks": 100}, full_sizes={}),
    "horizon": Preset(
        "How many generations until an unverified model collapses, by train temperature?",
        {"filters": ["none"], "train_temperatures": [0.8, 1.0], "generations": 4},
        {"filters": ["none", "tests"], "train_temperatures": [0.6, 0.8, 1.0]},
        "about 6 h (30 arms x 10 generations)"),
    "replace": Preset(
        "Is self-training safe as long as AI output does not replace human data?",
        {"filters": ["none"], "regimes": ["replace", "accumulate", "accumulate-subsample"],
         "generations": 4},
        {"filters": ["none"], "regimes": ["replace", "accumulate", "accumulate-subsample"]},
        "about 4 h (15 arms x 10 generations; accumulate trains on growing data)"),
    "poison": Preset(
        "How much AI-written code in the training data does it take to poison a model?",
        {"filters": ["none"], "real_fractions": [0.75, 0.5, 0.0], "training_set_size": 256,
         "generations": 3},
        # Full: synthetic shares 0 (the all-human control every drop is measured
        # against), 0.01 and 0.05 (the low doses of Dohmatob et al., ICLR 2025), then
        # 0.1 ... 1. At 512 examples a generation, 0.01 is 5 synthetic examples
        # (5/512 = 0.0098) and 0.05 is 26: the share is the dose, as in that paper,
        # and a larger set (`--training-set-size 2048`: 20 and 102) costs that much
        # more training in every arm.
        {"filters": ["none"], "real_fractions": [1.0, 0.99, 0.95, 0.9, 0.75, 0.5, 0.25, 0.0],
         "training_set_size": 512},
        "about 8 h (40 arms x 10 generations; scaled from the 5 h of 25 arms)"),
    "recovery": Preset(
        "Can generations trained on human data only repair a collapsed model?",
        {"filters": ["none"], "generations": 3, "recover": 2},
        {"filters": ["none", "syntax"], "generations": 6, "train_temperatures": [1.0],
         "recover": 5},
        "about 3 h (10 arms x 11 generations, and their 10 repair-only controls x 5)"),
    "detect": Preset(
        "Can AI-written code be detected and kept out of the training data?",
        # Every calibrated detector, quick too; the watermark is a sampler setting, not
        # an arm, so it is its own run (docs/collapse.md, "Watermarking").
        {"filters": ["none", *DETECTORS],
         "human_pool_share": 0.5, "human_sources": ["train", "fresh"], "generations": 2},
        {"filters": ["none", *DETECTORS, "tests"],
         "human_pool_share": 0.5, "human_sources": ["train", "fresh"]},
        "about 28 h (70 arms x 10 generations, twice the candidates; scaled from 40 arms, "
        "not measured)"),
}


@dataclass(frozen=True)
class Choice:
    """A resolved shape: one preset, one of its versions, and how it was picked."""

    base: str
    full: bool
    named: bool     # by --preset (said before it starts), not by default or --quick

    @property
    def preset(self) -> Preset:
        return PRESETS[self.base]

    @property
    def name(self) -> str:
        return f"{self.base}-full" if self.full else self.base

    def overrides(self) -> dict[str, Any]:
        return self.preset.overrides(self.full)

    def describe(self) -> str:
        """One line for the command's output: what the preset asks and how big it is."""
        time = self.preset.full_time
        size = f" ({time}, estimated)" if self.full and time else ""
        return f"preset {self.name}: {self.preset.question}{size}"


def resolve(name: str | None = None, quick: bool = False) -> Choice:
    """The shape `ablate` runs: `--preset NAME` (`horizon`, `horizon-full`), `--quick`
    (the default preset's quick version) or neither (its full version)."""
    if name is None:
        return Choice(DEFAULT_PRESET, full=not quick, named=False)
    if quick:
        raise BadInput("--quick and --preset both pick a preset; give one")
    base, _, variant = name.partition("-")
    if base not in PRESETS or variant not in ("", "full"):
        raise BadInput(f"unknown preset {name!r}; known: {', '.join(preset_names())}")
    return Choice(base, full=variant == "full", named=True)


def preset_overrides(name: str) -> dict[str, Any]:
    """The config overrides of `name` (`horizon`) or of its full version (`horizon-full`)."""
    return resolve(name).overrides()


def preset_names() -> list[str]:
    return [n for base in PRESETS for n in (base, f"{base}-full")]


def flags_text(overrides: Mapping[str, Any]) -> str:
    """`--generations 3, --eval-tasks 100`: settings as the options that would give them
    (for help texts, so that they say what the registry holds)."""
    def value(v: Any) -> str:
        return ",".join(map(str, v)) if isinstance(v, list) else str(v)

    return ", ".join(f"--{k.replace('_', '-')} {value(v)}" for k, v in overrides.items())
