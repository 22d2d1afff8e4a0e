"""`ablate --preset NAME`: one experiment shape per collapse question (docs/collapse.md).

Each preset is a set of config overrides ({dotted path: value}) laid over the
defaults; options typed on the command line still override it. The plain name is
the quick version, sized for about 20 minutes on a 2-core CPU machine with 3 seeds
(measured, README: 18 to 22 minutes, and 26 for detect, whose arms train on twice
the examples, before it asked both human sources: about twice that now); `NAME-full`
is the version whose numbers are worth citing. A preset fixes the question, not the
model: pass `--model` to ask it of another one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.errors import BadInput

QUICK_SIZES: dict[str, Any] = {
    "seeds": [0, 1, 2],
    "train_prompts": 256,
    "eval_tasks": 100,
}
"""What makes a quick preset quick: half the train prompts and eval problems of a run."""

FULL_SIZES: dict[str, Any] = {"seeds": [0, 1, 2, 3, 4], "generations": 10}


@dataclass(frozen=True)
class Preset:
    question: str
    quick: dict[str, Any]
    full: dict[str, Any] = field(default_factory=dict)
    full_time: str = ""     # estimated, said before a -full preset starts (`describe`)


PRESETS: dict[str, Preset] = {
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
        {"filters": ["none"], "real_fractions": [0.9, 0.75, 0.5, 0.25, 0.0],
         "training_set_size": 512},
        "about 5 h (25 arms x 10 generations)"),
    "recovery": Preset(
        "Can generations trained on human data only repair a collapsed model?",
        {"filters": ["none"], "generations": 3, "recover": 2},
        {"filters": ["none", "syntax"], "generations": 6, "train_temperatures": [1.0],
         "recover": 5},
        "about 3 h (10 arms x 11 generations, and their 10 repair-only controls x 5)"),
    "detect": Preset(
        "Can AI-written code be detected and kept out of the training data?",
        {"filters": ["none", "detect:loglik:0.9", "detect:ratio:0.9"],
         "human_pool_share": 0.5, "human_sources": ["train", "fresh"], "generations": 2},
        {"filters": ["none", "detect:loglik:0.9", "detect:ratio:0.9", "tests"],
         "human_pool_share": 0.5, "human_sources": ["train", "fresh"]},
        "about 16 h (40 arms x 10 generations, twice the candidates)"),
}


def preset_overrides(name: str) -> dict[str, Any]:
    """The config overrides of `name` (`horizon`) or of its full version (`horizon-full`)."""
    base, _, variant = name.partition("-")
    preset = PRESETS.get(base)
    if preset is None or variant not in ("", "full"):
        raise BadInput(f"unknown preset {name!r}; known: {', '.join(preset_names())}")
    if variant == "full":
        return {**preset.quick, **FULL_SIZES, **preset.full}
    return {**QUICK_SIZES, **preset.quick}


def preset_names() -> list[str]:
    return [n for base in PRESETS for n in (base, f"{base}-full")]


def describe(name: str) -> str:
    """One line for the command's output: what the preset asks and how big it is."""
    base, _, variant = name.partition("-")
    preset = PRESETS[base]
    size = f" ({preset.full_time}, estimated)" if variant == "full" and preset.full_time else ""
    return f"preset {name}: {preset.question}{size}"
