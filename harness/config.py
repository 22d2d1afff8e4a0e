"""Typed configuration: one dataclass tree that round-trips through TOML.

Every field carries its help text (and, where it has one, its legacy short flag)
in its metadata; this tree is the one place that says what the settings are
called, their types, defaults and help. `run`/`ablate` generate their command-line
options from it (`cli_fields`), the way trl's HfArgumentParser does, so the flags,
`--help` and the TOML keys can never drift apart. `config.toml` in a run directory
is this tree with every default written out, so a run is reproducible from it alone.

Each section has its own check (`check_model`, `check_sampling`, ...), and
`harness.experiment.arms.validate` calls them all from one place, before any model or
container is touched: a bad value costs a second, not a model load or a generation.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from harness.errors import BadInput
from sandbox.executor import SandboxSettings

_NO_LEGACY = object()

# What changing a setting does to the numbers a run writes (field metadata `effect`).
# Resume, protocols and pooling each ask this; it is answered once, per field.
NO_NUMBER = "none"
"""Changes no number a run writes: where and how fast it runs."""
FROM_GEN0 = "gen0"
"""Generation 0 (the base model's scores) depends on it, so every generation does."""
SELF_TRAINING = "self-training"
"""Shapes only the generations that train (>= 1): the default."""


@dataclass(frozen=True)
class Axis:
    """Field metadata that makes a setting an arm axis (`_f(axis=...)`).

    A list setting is a grid axis: each of its values is an arm of its own
    (`RunConfig.filters` -> an arm's `filter`). A scalar one (`training.restart`) is
    one value per run, yet arms run with different values are different experiments,
    so it is part of an arm group's identity without being in the arm id. The arm
    ids, arm.json, arm group keys, leaderboard entries, board arms and plot
    dimensions all come from these (`arm_axes`), in declaration order: the order
    the axes were added, which released run directories and exports keep.
    """

    name: str                # the arm's field (singular): "filter"
    tag: str = ""            # its part of the arm id, "f" in f-tests; "" = not in the id
    short: str = "{}"        # how labels show a value: "real {:g}" -> real 0.5
    title: str = ""          # the axis in words (default: its name): "real fraction"
    quiet: Any = None        # the id leaves this value out: older arms keep their ids
    legacy: Any = None       # what an arm.json without it ran (None: it must be there)
    replicate: bool = False  # the seed: arms differing only here are replicates, pooled

    def show(self, value: Any, short: bool = True) -> str:
        """A value in a label: short (`real 0.5`) or in words (`real fraction 0.5`)."""
        if short:
            return self.short.format(value)
        text = f"{value:g}" if isinstance(value, float) else str(value)
        return f"{self.title or self.name} {text}"


def _f(default: Any, help: str, *, aliases: tuple[str, ...] = (),
       choices: tuple[str, ...] = (), legacy: Any = _NO_LEGACY, section: str = "",
       effect: str = SELF_TRAINING, axis: Axis | None = None,
       protocol_free: bool = False) -> Any:
    """A dataclass field with help text (lists get a default_factory).

    aliases: older short flags that keep working (e.g. `--lr` for
    training.learning_rate); choices: the closed set of allowed strings.
    legacy: for a setting added after runs and protocols were written without it,
    the value that reproduces what the harness did before it existed. A run
    directory's config.toml or a protocol that lacks the key means that value,
    not the current default (`legacy_settings`).
    section: the `--help` section of a top-level setting (default "experiment"); a
    nested one is in its component's (`training`, `sandbox`, ...).
    effect: what changing it does to the numbers (NO_NUMBER, FROM_GEN0,
    SELF_TRAINING); `--resume`, protocols and pooling read it (`settings_with`).
    axis: it is an arm axis (`Axis`).
    protocol_free: a protocol leaves it free although it changes the numbers: the
    model under test and the hardware it runs on, which is what protocols compare.
    """
    metadata = {"help": help, "aliases": aliases, "choices": choices, "section": section,
                "effect": effect, "axis": axis, "protocol_free": protocol_free}
    if legacy is not _NO_LEGACY:
        metadata["legacy"] = legacy
    if isinstance(default, list):
        return field(default_factory=lambda d=default: list(d), metadata=metadata)
    return field(default=default, metadata=metadata)


DEVICES_HELP = "auto | cpu | cuda | cuda:N | mps"
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class ModelConfig:
    """Which model to start from and where it runs."""

    name: str = _f("builtin:tiny", "HF id, local directory, .gguf file, fetched:NAME (a "
                                   "model `model fetch` knows, fetched on first use), "
                                   "builtin:tiny (built offline) or builtin:random (same "
                                   "architecture, random weights).",
                   aliases=("model",), effect=FROM_GEN0, protocol_free=True)
    device: str = _f("auto", f"{DEVICES_HELP}.", aliases=("device",), effect=FROM_GEN0,
                     protocol_free=True)
    dtype: str = _f("auto", "auto (bf16 on capable CUDA, else float32) | float32 | "
                            "bfloat16 | float16.", aliases=("dtype",), choices=DTYPES,
                    effect=FROM_GEN0, protocol_free=True)
    cache_dir: str = _f("", "Where builtin models are cached; empty = $COLLAPSE_BENCH_CACHE "
                            "or ~/.cache/collapse-bench.", effect=NO_NUMBER)
    threads: int = _f(0, "torch CPU threads; 0 = the cores other work is not using (cores "
                         "minus the load average, at least 1).", effect=NO_NUMBER)


@dataclass
class SamplingConfig:
    """How completions are drawn from a model."""

    temperature: float = _f(0.8, "Sampling temperature for evaluation samples (0 = greedy).",
                            aliases=("temperature",), effect=FROM_GEN0)
    top_p: float = _f(1.0, "Nucleus sampling threshold in (0, 1] (1.0 = off).",
                      effect=FROM_GEN0)
    max_new_tokens: int = _f(96, "Max tokens generated per completion (the synthetic suite's "
                                 "longest reference, a loop rendering, is 84).",
                             effect=FROM_GEN0)
    batch_size: int = _f(256, "Sequences per forward pass while sampling.", effect=FROM_GEN0)
    prompt_format: str = _f("auto", "completion (the model continues the prompt) | chat (the "
                                    "prompt in a user message through the chat template; "
                                    "the answer's code block is the solution) | auto (chat "
                                    "when the tokenizer has a chat template).",
                            choices=("auto", "completion", "chat"), legacy="completion",
                            effect=FROM_GEN0)
    prompt_boundary: str = _f("heal", "heal (move the prompt's trailing whitespace into the "
                                      "completion where the tokenizer would merge it with "
                                      "the next token) | keep (the prompt as given).",
                              choices=("heal", "keep"), legacy="keep", effect=FROM_GEN0)
    # FROM_GEN0: generation 0 already samples its eval problems with the mark too
    watermark: str = _f("", "KEY[:delta[:gamma[:entropy]]]: mark the self-training samples "
                            "with a keyed green-list watermark (Kirchenbauer et al. 2023; "
                            "defaults delta 2, gamma 0.25; entropy > 0 = SWEET, only tokens "
                            "whose entropy in nats reaches it); the headline eval samples "
                            "stay unmarked, and each generation also scores marked ones "
                            "(cost, AUROC, radioactivity). Filter: detect:watermark:Z. "
                            "'' = off.", aliases=("watermark",), legacy="", effect=FROM_GEN0)


RESTART_POLICIES = ("continue", "merge", "from-base")
"""How each generation starts (harness.experiment.loop builds them from the saved adapters)."""


@dataclass
class TrainingConfig:
    """LoRA fine-tuning of one generation."""

    lora_r: int = _f(16, "LoRA rank.")
    lora_alpha: int = _f(32, "LoRA alpha (scaling = alpha / r).")
    lora_dropout: float = _f(0.0, "LoRA dropout, in [0, 1).")
    target_modules: str = _f("auto", "auto (per architecture) | all-linear | "
                                     "comma-separated module names.")
    learning_rate: float = _f(2e-3, "Peak learning rate (AdamW, warmup then cosine decay).",
                              aliases=("lr",))
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    warmup_ratio: float = _f(0.1, "Fraction of steps spent warming up, in [0, 1).")
    epochs: int = _f(3, "Passes over the generation's training data. 0 = no training: the "
                        "no-training control, whose generations differ from generation 0 "
                        "only by noise.", aliases=("epochs",))
    batch_size: int = _f(32, "Examples per optimizer micro-batch.")
    gradient_checkpointing: bool = _f(False, "Recompute activations in the backward pass: "
                                             "less memory for large models, ~30% more compute.")
    grad_accum: int = _f(1, "Micro-batches per optimizer step.")
    max_length: int = _f(256, "Examples are truncated to this many tokens.")
    completion_only_loss: bool = _f(True, "Loss on completion tokens only (False: prompt too).")
    restart: str = _f("merge", "continue (keep training the previous adapter) | merge (merge it "
                               "into the weights, fresh adapter) | from-base (always from gen-0).",
                      aliases=("restart",), choices=RESTART_POLICIES,
                      axis=Axis("restart", short="restart {}", legacy="merge"))
    warmup_epochs: int = _f(0, "Warm start: epochs of fine-tuning generation 0 on the train "
                               "split's human references before self-training, so a model at "
                               "the floor starts above it (phase `warmup`, shared by the arms "
                               "of a seed); 0 = off.", aliases=("warmup-epochs",), legacy=0,
                          effect=FROM_GEN0)
    warmup_examples: int = _f(0, "Human references the warm start trains on (drawn per seed); "
                                 "0 = the whole train split.", legacy=0, effect=FROM_GEN0)


@dataclass
class RunConfig:
    """One run: a model, a train/eval suite pair, and the grid of arms to run.

    An arm is one point of filters x regimes x real_fractions x train_temperatures x
    seeds; every arm runs the same generational loop (docs/design.md) from the same
    base model.
    """

    model: ModelConfig = field(default_factory=ModelConfig, metadata={"help": "Base model."})
    # the train suite is FROM_GEN0: the train/eval overlap check ties it to the eval set
    train_suite: str = _f("synth", "Suite whose prompts the model self-trains on "
                                   "(e.g. synth, mbpp:/path.jsonl).", effect=FROM_GEN0)
    train_split: str = _f("train", "Split of train_suite used for self-training.",
                          effect=FROM_GEN0)
    eval_suite: str = _f("synth", "Suite every generation is scored on (e.g. synth, "
                                  "humaneval).", section="scoring", effect=FROM_GEN0)
    eval_split: str = _f("eval", "Split of eval_suite used for scoring.", section="scoring",
                         effect=FROM_GEN0)
    also_eval: list[str] = _f([], "More suites every generation is also scored on, next to "
                                  "the eval suite (e.g. humaneval: general coding skill while "
                                  "self-training on another family); its eval split (HumanEval: "
                                  "its 164), or the first --also-eval-tasks of it.", legacy=[],
                           section="scoring", effect=FROM_GEN0)
    also_eval_tasks: int = _f(0, "Problems of each --also-eval suite used (first N of its "
                                 "eval split); 0 = all. More than a suite has is refused.",
                              legacy=0, section="scoring", effect=FROM_GEN0)
    eval_tasks: int = _f(100, "Eval problems used (first N of the split); 0 = all. More than "
                              "the split has is refused.", section="scoring",
                        effect=FROM_GEN0)
    generations: int = _f(5, "Self-training generations after generation 0.")
    train_prompts: int = _f(256, "Train prompts sampled (without replacement) per generation; "
                                 "more than the split has is refused.")
    n_train: int = _f(4, "Completions sampled per train prompt.")
    n_eval: int = _f(10, "Completions sampled per eval problem (n of pass@k).", section="scoring",
                     effect=FROM_GEN0)
    ks: list[int] = _f([1, 10], "k values for pass@k; each must be <= n_eval. Default: those "
                                "of 1, 10, 100 that n_eval allows.", aliases=("k",),
                       section="scoring", effect=FROM_GEN0)
    greedy: bool = _f(False, "Also report greedy (temperature 0) pass@1.", section="scoring",
                      effect=FROM_GEN0)
    # The arm axes, in the order they were added (see Axis): filters, regimes,
    # real_fractions, seeds, training.restart, train_temperatures.
    filters: list[str] = _f(["tests", "none"], "Verification filters, one arm each (none, "
                            "syntax, tests, partial:P, noisy:P, perplexity:Q; add +dedup).",
                            aliases=("filter",), axis=Axis("filter", tag="f"))
    regimes: list[str] = _f(["replace"], "Data regimes: replace | accumulate | "
                            "accumulate-subsample.", aliases=("regime",),
                            axis=Axis("regime", tag="r"))
    real_fractions: list[float] = _f([0.0], "Fraction of each generation's data that is human "
                                     "reference solutions from the train split.",
                                     aliases=("real-fraction",),
                                     axis=Axis("real_fraction", tag="real", short="real {:g}",
                                               title="real fraction"))
    seeds: list[int] = _f([0], "Seeds; each seed is a separate arm.", aliases=("seed",),
                          effect=FROM_GEN0, axis=Axis("seed", tag="s", replicate=True))
    training_set_size: int = _f(0, "0 = each generation trains on every kept example plus "
                                   "human ones at the real fraction; N = exactly N examples, "
                                   "a share 1 - real fraction self-generated (set by "
                                   "--synthetic-share).")
    recover: int = _f(0, "Repair generations appended after the self-training ones: each "
                         "trains on human references only (docs/collapse.md).")
    human_pool_share: float = _f(0.0, "Mixed candidate pool: share of each generation's "
                                      "candidates that are unseen human references, for the "
                                      "detect:* filters; 0 = off (docs/collapse.md).")
    subsample_size: int = _f(0, "accumulate-subsample: examples per generation; "
                                "0 = train_prompts.")
    executor: str = _f("docker", "docker (isolated) | local (host subprocess, NOT isolated).",
                       choices=("docker", "local"), section="sandbox", effect=NO_NUMBER)
    out: str = _f("results", "Root directory for run directories.", section="output",
                  effect=NO_NUMBER)
    protocol: str = _f("", "Benchmark protocol this run follows, recorded as NAME@VERSION:SHA256 "
                           "(set by `run --protocol NAME`; `run --list-protocols`). Empty: a "
                           "free-form experiment.", section="output")
    sampling: SamplingConfig = field(default_factory=SamplingConfig,
                                     metadata={"help": "Sampling settings."})
    training: TrainingConfig = field(default_factory=TrainingConfig,
                                     metadata={"help": "LoRA settings."})
    # after `training`: train temperature became an axis after the restart policy (Axis)
    train_temperatures: list[float] = _f(
        [1.0], "Sampling temperatures of the self-generated train data, one arm each (0 = "
               "greedy). At 1.0 the model trains on its own distribution and the unverified "
               "arm drifts into noise; below 1 it sharpens (docs/collapse.md).",
        aliases=("train-temperature",),
        axis=Axis("train_temperature", tag="t", short="T {:g}", title="train temperature",
                  quiet=1.0, legacy=0.8))
    human_sources: list[str] = _f(
        ["train"], "Where the human code of a generation comes from, one arm each: train "
                   "(the train split's references, which a model built on it has seen) | "
                   "fresh (the synthetic suite's `fresh` split: combinations no other split "
                   "uses, unseen). Feeds the mixed pool (--human-pool-share), the detectors' "
                   "calibration, the real fraction and repair generations.",
        aliases=("human-source",), legacy=["train"],
        axis=Axis("human_source", tag="h", short="human {}", title="human source",
                  quiet="train", legacy="train"))
    courses: list[str] = _f(
        ["self-train", "repair-only"], "What an arm does before its --recover repair "
        "generations, one arm each: self-train (the --generations self-training ones) | "
        "repair-only (the control: it holds generation 0's model through them, then gets "
        "the same repair generations, same data draws and seeds, so the gap between the "
        "two is what the self-training cost). Without --recover there is no repair-only "
        "arm.", aliases=("course",), legacy=["self-train"],
        axis=Axis("course", tag="c", short="{}", quiet="self-train", legacy="self-train"))
    # sandbox/ knows nothing of experiments: what its settings do to a run is said here
    sandbox: SandboxSettings = field(default_factory=SandboxSettings,
                                     metadata={"help": "Sandbox settings.", "leaves": {
                                         "pool_size": {"effect": NO_NUMBER},
                                         # the limits decide generation 0's verdicts too
                                         "timeout_s": {"effect": FROM_GEN0},
                                         "memory_mb": {"effect": FROM_GEN0}}})

    @property
    def total_generations(self) -> int:
        """Generations after generation 0: the self-training ones, then the repair ones."""
        return self.generations + self.recover


T = TypeVar("T")


# ------------------------------------------------------------------ fields as flags


@dataclass(frozen=True)
class CliField:
    """One leaf of the config tree as the command line sees it.

    `path` is the dotted config name (`training.learning_rate`); the primary flag is
    that name with dashes (`--training.learning-rate`), top-level fields drop the
    section (`--eval-tasks`), and `aliases` are older short flags (`--lr`).
    """

    path: str
    type: Any            # int | float | str | bool | list[int] | list[float] | list[str]
    default: Any
    help: str
    aliases: tuple[str, ...]
    choices: tuple[str, ...]
    section: str = "experiment"   # where `--help` lists it
    effect: str = SELF_TRAINING   # what changing it does to the numbers (see `_f`)
    axis: Axis | None = None      # an arm axis
    protocol_free: bool = False   # left free by protocols although it changes numbers

    @property
    def dest(self) -> str:
        """The Python identifier click passes the value under."""
        return self.path.replace(".", "__")

    @property
    def flags(self) -> list[str]:
        return ["--" + self.path.replace("_", "-"), *("--" + a for a in self.aliases)]

    @property
    def item_type(self) -> Any:
        return get_args(self.type)[0] if get_origin(self.type) is list else self.type

    @property
    def is_list(self) -> bool:
        return get_origin(self.type) is list

    @property
    def metavar(self) -> str:
        if self.choices:
            return "[" + "|".join(self.choices) + "]"
        name = {int: "INT", float: "FLOAT", str: "TEXT", bool: "BOOL"}[self.item_type]
        return f"{name},..." if self.is_list else name

    def show(self, value: Any) -> str:
        """A value as it is typed on the command line (lists comma-separated)."""
        if self.is_list:
            return ",".join(str(v) for v in value)
        return str(value)

    def parse(self, raw: Any) -> Any:
        """A command-line string -> a typed value (BadInput saying what was expected)."""
        if not isinstance(raw, str):
            return raw
        kind = self.item_type
        if self.is_list:
            parts = [p.strip() for p in raw.split(",") if p.strip()]
            try:
                return [kind(p) for p in parts]
            except ValueError:
                noun = {int: "integers", float: "numbers"}.get(kind, "values")
                raise BadInput(f"expected comma-separated {noun}, got {raw!r}") from None
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise BadInput(f"expected true or false, got {raw!r}")
            return lowered in ("true", "1", "yes")
        try:
            value = kind(raw)
        except ValueError:
            noun = {int: "an integer", float: "a number"}.get(kind, "a value")
            raise BadInput(f"expected {noun}, got {raw!r}") from None
        if self.choices and value not in self.choices:
            raise BadInput(f"unknown {self.path} {value!r}; known: {', '.join(self.choices)}")
        return value


def cli_fields(cls: type | None = None, prefix: str = "",
               leaves: Mapping[str, Mapping[str, Any]] | None = None) -> list[CliField]:
    """Every leaf field of the tree (default: RunConfig), in declaration order, ready
    to become a flag. `leaves`: metadata a parent adds to a component's fields (the
    sandbox's, which are declared outside harness)."""
    cls = cls or RunConfig
    hints = get_type_hints(cls)
    out: list[CliField] = []
    instance = cls()
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        path = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(tp):
            out += cli_fields(tp, f"{path}.", f.metadata.get("leaves"))  # type: ignore[arg-type]
            continue
        meta = {**f.metadata, **(leaves or {}).get(f.name, {})}
        out.append(CliField(path=path, type=tp, default=getattr(instance, f.name),
                            help=meta.get("help", ""),
                            aliases=tuple(meta.get("aliases", ())),
                            choices=tuple(meta.get("choices", ())),
                            section=(prefix.split(".")[0] if prefix
                                     else meta.get("section") or "experiment"),
                            effect=meta.get("effect", SELF_TRAINING),
                            axis=meta.get("axis"),
                            protocol_free=meta.get("protocol_free", False)))
    return out


# ------------------------------------------------------------ what each setting is


def settings_with(effect: str, cls: type | None = None) -> frozenset[str]:
    """Dotted paths of the settings whose `effect` is `effect` (NO_NUMBER, ...)."""
    return frozenset(f.path for f in cli_fields(cls) if f.effect == effect)


def protocol_free_settings(cls: type | None = None) -> tuple[str, ...]:
    """Settings a protocol never fixes, in declaration order: those that change no
    number, and the model under test with its hardware (`protocol_free`)."""
    return tuple(f.path for f in cli_fields(cls) if f.protocol_free or f.effect == NO_NUMBER)


def pool_ignored(cls: type | None = None) -> frozenset[str]:
    """Settings that may differ between runs pooled into one leaderboard entry: the
    arm grid's lists (an entry is one arm of it; the seed is what pooling is for)
    and the settings that change no number."""
    return frozenset({f.path for f in arm_axes(cls) if f.is_list}
                     | settings_with(NO_NUMBER, cls))


def arm_axes(cls: type | None = None) -> tuple[CliField, ...]:
    """The arm axes of a config class (default: RunConfig), in declaration order.

    RunConfig is looked up when called, not when defined, so a test can put a config
    with a fake axis in its place."""
    return _arm_axes(cls or RunConfig)


@functools.cache
def _arm_axes(cls: type) -> tuple[CliField, ...]:
    return tuple(f for f in cli_fields(cls) if f.axis is not None)


def axis_named(name: str) -> Axis:
    """The Axis whose arm field is `name` ("filter")."""
    for f in arm_axes():
        if f.axis is not None and f.axis.name == name:
            return f.axis
    raise KeyError(name)


def group_axes(cls: type | None = None) -> tuple[CliField, ...]:
    """The axes that name an arm group: all but the replicate one (the seed)."""
    return tuple(f for f in arm_axes(cls) if f.axis is not None and not f.axis.replicate)


def axis_value(record: Mapping[str, Any], name: str) -> Any:
    """`record[name]`, where a record (arm.json, an export entry, a board arm) from
    before an arm axis existed gets the axis's legacy value: what such arms ran. So
    adding an axis leaves every earlier export and board readable."""
    if name in record:
        return record[name]
    axis = next((f.axis for f in arm_axes() if f.axis is not None and f.axis.name == name),
                None)
    if axis is None or axis.legacy is None:
        raise KeyError(name)
    return axis.legacy


def group_dimensions(cls: type | None = None) -> tuple[str, ...]:
    """Arm field names of `group_axes`: ("filter", "regime", ..., "train_temperature")."""
    return tuple(f.axis.name for f in group_axes(cls) if f.axis is not None)


def setting(cfg: Any, path: str) -> Any:
    """The value of a dotted setting (`training.restart`) of a config tree."""
    value = cfg
    for part in path.split("."):
        value = getattr(value, part)
    return value


class AxisValues:
    """An arm's (or an arm group's) value on each arm axis, as `values`: (axis name,
    value) pairs in axis order. Identity, ids and labels are computed from the pairs;
    the typed properties are for the code that uses an axis."""

    values: tuple[tuple[str, Any], ...]

    def get(self, name: str) -> Any:
        for key, value in self.values:
            if key == name:
                return value
        raise KeyError(name)

    def label(self) -> str:
        """`tests / replace / real 0 / restart merge / T 1`: every value but the seed."""
        return " / ".join(axis_named(name).show(value) for name, value in self.values
                          if not axis_named(name).replicate)

    @property
    def filter(self) -> str:
        return str(self.get("filter"))

    @property
    def regime(self) -> str:
        return str(self.get("regime"))

    @property
    def real_fraction(self) -> float:
        return float(self.get("real_fraction"))

    @property
    def seed(self) -> int:
        return int(self.get("seed"))

    @property
    def restart(self) -> str:
        return str(self.get("restart"))

    @property
    def train_temperature(self) -> float:
        return float(self.get("train_temperature"))

    @property
    def human_source(self) -> str:
        return str(self.get("human_source"))

    @property
    def course(self) -> str:
        return str(self.get("course"))


def legacy_settings(cls: type = RunConfig, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> legacy value of every setting that has one (see `_f`)."""
    out: dict[str, Any] = {}
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out |= legacy_settings(hints[f.name], f"{prefix}{f.name}.")
        elif "legacy" in f.metadata:
            out[f"{prefix}{f.name}"] = f.metadata["legacy"]
    return out


def with_legacy_settings(tree: dict[str, Any]) -> dict[str, Any]:
    """A config tree written by an older harness, with each setting it lacks that
    has a legacy value set to it (a copy; the current defaults fill the rest)."""
    out = json.loads(json.dumps(tree))
    for dotted, value in legacy_settings().items():
        *parents, leaf = dotted.split(".")
        node = out
        for key in parents:
            node = node.setdefault(key, {})
        node.setdefault(leaf, value)
    return out


def load_run_config(run_dir: str | Path) -> RunConfig:
    """The RunConfig of a run directory: its config.toml, which holds every setting
    its harness had, so a missing one means its legacy value (not today's default)."""
    path = Path(run_dir) / "config.toml"
    return from_dict(RunConfig, with_legacy_settings(load_toml(path)), str(path))


def flag_of(path: str) -> str:
    """How to set a config field from the command line, for error messages."""
    for f in cli_fields():
        if f.path == path:
            return " / ".join(f.flags)
    return path


# --------------------------------------------------------------------- section checks


def _require(ok: bool, path: str, rule: str, value: Any) -> None:
    """BadInput naming the config key, its flags and the rule, e.g.
    `training.learning_rate must be > 0, got 0.0 (--training.learning-rate / --lr)`."""
    if not ok:
        raise BadInput(f"{path} must be {rule}, got {value!r} ({flag_of(path)})")


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:[0-9]+)?)$")


def check_model(cfg: ModelConfig) -> None:
    """Device, dtype and threads. The model *name* is left to harness.model.loading: it
    knows which `builtin:*` specs exist, and a local path or hub id can only be
    checked by loading it."""
    _require(bool(cfg.name.strip()), "model.name", "non-empty", cfg.name)
    _require(bool(_DEVICE.match(cfg.device.strip().lower())), "model.device",
             f"one of {DEVICES_HELP}", cfg.device)
    _require(cfg.dtype.strip().lower() in DTYPES, "model.dtype", f"one of {', '.join(DTYPES)}",
             cfg.dtype)
    _require(cfg.threads >= 0, "model.threads", ">= 0", cfg.threads)


def check_sampling(cfg: SamplingConfig) -> None:
    _require(math.isfinite(cfg.temperature) and cfg.temperature >= 0, "sampling.temperature",
             "a finite number >= 0 (0 = greedy)", cfg.temperature)
    _require(0 < cfg.top_p <= 1, "sampling.top_p", "in (0, 1]", cfg.top_p)
    _require(cfg.max_new_tokens >= 1, "sampling.max_new_tokens", ">= 1", cfg.max_new_tokens)
    _require(cfg.batch_size >= 1, "sampling.batch_size", ">= 1", cfg.batch_size)
    _require(cfg.prompt_format in ("auto", "completion", "chat"), "sampling.prompt_format",
             "auto, completion or chat", cfg.prompt_format)
    _require(cfg.prompt_boundary in ("heal", "keep"), "sampling.prompt_boundary",
             "heal or keep", cfg.prompt_boundary)


def check_training(cfg: TrainingConfig) -> None:
    """Everything finetune_lora would refuse, refused before any model loads.

    `epochs = 0` is allowed on purpose: it is the no-training control (each
    generation then scores the unchanged model: the noise floor of the curves).
    """
    _require(cfg.lora_r >= 1, "training.lora_r", ">= 1", cfg.lora_r)
    _require(math.isfinite(cfg.lora_alpha) and cfg.lora_alpha > 0, "training.lora_alpha",
             "a finite number > 0", cfg.lora_alpha)
    _require(0 <= cfg.lora_dropout < 1, "training.lora_dropout", "in [0, 1)", cfg.lora_dropout)
    # inf trains to a NaN loss and a "stable" pass@1 of 0; NaN compares false everywhere
    _require(math.isfinite(cfg.learning_rate) and cfg.learning_rate > 0,
             "training.learning_rate", "a finite number > 0", cfg.learning_rate)
    _require(math.isfinite(cfg.weight_decay) and cfg.weight_decay >= 0,
             "training.weight_decay", "a finite number >= 0", cfg.weight_decay)
    _require(0 <= cfg.warmup_ratio < 1, "training.warmup_ratio", "in [0, 1)", cfg.warmup_ratio)
    _require(cfg.epochs >= 0, "training.epochs", ">= 0 (0 = no training)", cfg.epochs)
    _require(cfg.batch_size >= 1, "training.batch_size", ">= 1", cfg.batch_size)
    _require(cfg.grad_accum >= 1, "training.grad_accum", ">= 1", cfg.grad_accum)
    _require(cfg.max_length >= 2, "training.max_length", ">= 2", cfg.max_length)
    _require(bool(cfg.target_modules.strip()), "training.target_modules",
             "auto, all-linear or module names", cfg.target_modules)
    _require(cfg.warmup_epochs >= 0, "training.warmup_epochs", ">= 0 (0 = off)",
             cfg.warmup_epochs)
    _require(cfg.warmup_examples >= 0, "training.warmup_examples", ">= 0 (0 = all)",
             cfg.warmup_examples)
    _require(cfg.restart in RESTART_POLICIES, "training.restart",
             f"one of {', '.join(RESTART_POLICIES)}", cfg.restart)


def check_sandbox(cfg: SandboxSettings) -> None:
    _require(bool(cfg.image.strip()), "sandbox.image", "non-empty", cfg.image)
    _require(cfg.pool_size >= 0, "sandbox.pool_size", ">= 0 (0 = one per core plus one)",
             cfg.pool_size)
    _require(cfg.memory_mb >= 16, "sandbox.memory_mb", ">= 16", cfg.memory_mb)
    _require(cfg.cpus > 0, "sandbox.cpus", "> 0", cfg.cpus)
    _require(cfg.pids_limit >= 1, "sandbox.pids_limit", ">= 1", cfg.pids_limit)
    _require(cfg.tmpfs_mb >= 1, "sandbox.tmpfs_mb", ">= 1", cfg.tmpfs_mb)
    _require(cfg.timeout_s > 0, "sandbox.timeout_s", "> 0", cfg.timeout_s)
    _require(cfg.output_limit_bytes >= 0, "sandbox.output_limit_bytes", ">= 0",
             cfg.output_limit_bytes)


def check_sizes(cfg: RunConfig) -> None:
    """The run's counts and the k list (suite sizes are checked once suites load)."""
    _require(cfg.generations >= 0, "generations", ">= 0", cfg.generations)
    _require(cfg.train_prompts >= 1, "train_prompts", ">= 1", cfg.train_prompts)
    _require(cfg.n_train >= 1, "n_train", ">= 1", cfg.n_train)
    _require(cfg.n_eval >= 1, "n_eval", ">= 1", cfg.n_eval)
    _require(cfg.eval_tasks >= 0, "eval_tasks", ">= 0 (0 = all)", cfg.eval_tasks)
    _require(cfg.also_eval_tasks >= 0, "also_eval_tasks", ">= 0 (0 = all)", cfg.also_eval_tasks)
    _require(cfg.subsample_size >= 0, "subsample_size", ">= 0", cfg.subsample_size)
    _require(cfg.training_set_size >= 0, "training_set_size", ">= 0", cfg.training_set_size)
    _require(cfg.recover >= 0, "recover", ">= 0", cfg.recover)
    _require(0 <= cfg.human_pool_share < 1, "human_pool_share", "in [0, 1)",
             cfg.human_pool_share)
    for t in cfg.train_temperatures:
        _require(t >= 0, "train_temperatures", ">= 0 (0 = greedy)", cfg.train_temperatures)
    _require(bool(cfg.ks), "ks", "a non-empty list", cfg.ks)
    for k in cfg.ks:
        _require(k >= 1, "ks", "integers >= 1", cfg.ks)
        if k > cfg.n_eval:
            raise BadInput(f"k={k} is larger than n_eval={cfg.n_eval}: pass@{k} needs at "
                           f"least {k} samples per problem (--ks / --k)")
    _require(len(set(cfg.ks)) == len(cfg.ks), "ks", "distinct", cfg.ks)
    _require(cfg.executor in ("docker", "local"), "executor", "docker or local", cfg.executor)


def default_ks(n: int, candidates: tuple[int, ...] = (1, 10, 100)) -> list[int]:
    """The k list a run uses when none is given: the candidates n samples allow."""
    return [k for k in candidates if k <= n] or [1]


# ------------------------------------------------------------------------ TOML in/out


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass `cls` from a (TOML) dict, rejecting unknown keys and bad types."""
    if not isinstance(data, dict):
        raise BadInput(f"{where}: expected a table, got {type(data).__name__}")
    if cls is RunConfig:
        data = _migrate(data)
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise BadInput(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(names))}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
    return cls(**kwargs)


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Read configs written before train temperature became an ablation axis (they kept
    one `sampling.train_temperature`), so older run directories still load."""
    sampling = data.get("sampling")
    if not isinstance(sampling, dict) or "train_temperature" not in sampling:
        return data
    data = {**data, "sampling": {k: v for k, v in sampling.items() if k != "train_temperature"}}
    data.setdefault("train_temperatures", [sampling["train_temperature"]])
    return data


def _coerce(tp: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    origin = get_origin(tp)
    if origin is list:
        (inner,) = get_args(tp)
        if not isinstance(value, list):
            raise BadInput(f"{where}: expected a list, got {value!r}")
        return [_coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and not (isinstance(value, tp) and
                                              not (tp is int and isinstance(value, bool))):
        raise BadInput(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    """Dataclass tree -> plain dict (every default written out)."""
    return dataclasses.asdict(obj)


def flatten(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, leaf value) pairs of a nested dict, e.g. ('training.epochs', 3)."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def load_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise BadInput(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise BadInput(f"config file is a directory: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: invalid TOML: {exc}") from None


def save_toml(obj: Any, path: str | Path) -> None:
    """Write a config tree as TOML, atomically (every default written out)."""
    import tomli_w

    from harness.atomic import atomic_write_text

    atomic_write_text(Path(path), tomli_w.dumps(to_dict(obj)))


def config_hash(obj: Any) -> str:
    """Stable short hash of a config tree (sorted JSON)."""
    blob = json.dumps(to_dict(obj), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]



__all__ = [
    "FROM_GEN0",
    "NO_NUMBER",
    "SELF_TRAINING",
    "Axis",
    "AxisValues",
    "CliField",
    "ModelConfig",
    "RunConfig",
    "SamplingConfig",
    "SandboxSettings",
    "TrainingConfig",
    "arm_axes",
    "axis_named",
    "check_model",
    "check_sampling",
    "check_sandbox",
    "check_sizes",
    "check_training",
    "cli_fields",
    "config_hash",
    "default_ks",
    "flatten",
    "from_dict",
    "group_axes",
    "group_dimensions",
    "legacy_settings",
    "load_run_config",
    "load_toml",
    "pool_ignored",
    "protocol_free_settings",
    "save_toml",
    "setting",
    "settings_with",
    "to_dict",
    "with_legacy_settings",
]
