"""Typed configuration: one dataclass tree that round-trips through TOML.

Every field carries help text in its metadata; `config.toml` in a run directory is
this tree with every default written out, so a run is reproducible from it alone.
Components (sampler, trainer, sandbox) each take their own section, trl-style.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from harness.errors import BadInput
from sandbox.executor import SandboxSettings


def _f(default: Any, help: str) -> Any:
    """A dataclass field with help text (lists get a default_factory)."""
    if isinstance(default, list):
        return field(default_factory=lambda d=default: list(d), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class ModelConfig:
    """Which model to start from and where it runs."""

    name: str = _f("builtin:tiny", "HF id, local directory, or builtin:tiny (built offline).")
    device: str = _f("auto", "auto | cpu | cuda | cuda:N | mps.")
    dtype: str = _f("auto", "auto (bf16 on capable CUDA, else float32) | float32 | "
                            "bfloat16 | float16.")
    cache_dir: str = _f("", "Where builtin models are cached; empty = $COLLAPSE_BENCH_CACHE "
                            "or ~/.cache/collapse-bench.")
    threads: int = _f(0, "torch CPU threads; 0 = number of cores.")


@dataclass
class SamplingConfig:
    """How completions are drawn from a model."""

    temperature: float = _f(0.8, "Sampling temperature for evaluation samples.")
    train_temperature: float = _f(0.8, "Sampling temperature for the self-generated train data.")
    top_p: float = _f(1.0, "Nucleus sampling threshold (1.0 = off).")
    max_new_tokens: int = _f(64, "Max tokens generated per completion.")
    batch_size: int = _f(256, "Sequences per forward pass while sampling.")


RESTART_POLICIES = ("continue", "merge", "from-base")
"""How each generation starts (harness.loop builds them from the saved adapters)."""


@dataclass
class TrainingConfig:
    """LoRA fine-tuning of one generation."""

    lora_r: int = _f(16, "LoRA rank.")
    lora_alpha: int = _f(32, "LoRA alpha (scaling = alpha / r).")
    lora_dropout: float = _f(0.0, "LoRA dropout.")
    target_modules: str = _f("auto", "auto (per architecture) | all-linear | "
                                     "comma-separated module names.")
    learning_rate: float = _f(2e-3, "Peak learning rate (AdamW, warmup then cosine decay).")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    warmup_ratio: float = _f(0.1, "Fraction of steps spent warming up.")
    epochs: int = _f(3, "Passes over the generation's training data.")
    batch_size: int = _f(32, "Examples per optimizer micro-batch.")
    grad_accum: int = _f(1, "Micro-batches per optimizer step.")
    max_length: int = _f(256, "Examples are truncated to this many tokens.")
    completion_only_loss: bool = _f(True, "Loss on completion tokens only (False: prompt too).")
    restart: str = _f("merge", "continue (keep training the previous adapter) | merge (merge it "
                               "into the weights, fresh adapter) | from-base (always from gen-0).")


@dataclass
class RunConfig:
    """One run: a model, a train/eval suite pair, and the grid of arms to run.

    An arm is one point of filters x regimes x real_fractions x seeds; every arm runs
    the same generational loop (DESIGN.md) from the same base model.
    """

    model: ModelConfig = field(default_factory=ModelConfig, metadata={"help": "Base model."})
    train_suite: str = _f("synth", "Suite whose prompts the model self-trains on.")
    train_split: str = _f("train", "Split of train_suite used for self-training.")
    eval_suite: str = _f("synth", "Suite every generation is scored on.")
    eval_split: str = _f("eval", "Split of eval_suite used for scoring.")
    eval_tasks: int = _f(200, "Eval problems used (first N of the split); 0 = all.")
    generations: int = _f(5, "Self-training generations after generation 0.")
    train_prompts: int = _f(512, "Train prompts sampled (without replacement) per generation.")
    n_train: int = _f(4, "Completions sampled per train prompt.")
    n_eval: int = _f(10, "Completions sampled per eval problem (n of pass@k).")
    ks: list[int] = _f([1, 10], "k values for pass@k; each must be <= n_eval.")
    greedy: bool = _f(False, "Also report greedy (temperature 0) pass@1.")
    filters: list[str] = _f(["tests", "none"], "Verification filters, one arm each (none, "
                            "syntax, tests, partial:P, noisy:P, perplexity:Q; add +dedup).")
    regimes: list[str] = _f(["replace"], "Data regimes: replace | accumulate | "
                            "accumulate-subsample.")
    real_fractions: list[float] = _f([0.0], "Fraction of each generation's data that is human "
                                     "reference solutions from the train split.")
    seeds: list[int] = _f([0], "Seeds; each seed is a separate arm.")
    subsample_size: int = _f(0, "accumulate-subsample: examples per generation; "
                                "0 = train_prompts.")
    executor: str = _f("docker", "docker (isolated) | local (host subprocess, NOT isolated).")
    out: str = _f("results", "Root directory for run directories.")
    sampling: SamplingConfig = field(default_factory=SamplingConfig,
                                     metadata={"help": "Sampling settings."})
    training: TrainingConfig = field(default_factory=TrainingConfig,
                                     metadata={"help": "LoRA settings."})
    sandbox: SandboxSettings = field(default_factory=SandboxSettings,
                                     metadata={"help": "Sandbox settings."})


T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass `cls` from a (TOML) dict, rejecting unknown keys and bad types."""
    if not isinstance(data, dict):
        raise BadInput(f"{where}: expected a table, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise BadInput(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(names))}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
    return cls(**kwargs)


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


def load_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise BadInput(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: invalid TOML: {exc}") from None


def save_toml(obj: Any, path: str | Path) -> None:
    """Write a config tree as TOML, atomically (every default written out)."""
    import tomli_w

    from harness.store import atomic_write_text

    atomic_write_text(Path(path), tomli_w.dumps(to_dict(obj)))


def config_hash(obj: Any) -> str:
    """Stable short hash of a config tree (sorted JSON)."""
    blob = json.dumps(to_dict(obj), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


__all__ = [
    "ModelConfig",
    "RunConfig",
    "SamplingConfig",
    "SandboxSettings",
    "TrainingConfig",
    "config_hash",
    "from_dict",
    "load_toml",
    "save_toml",
    "to_dict",
]
