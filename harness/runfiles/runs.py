"""Read a finished (or interrupted) run directory into typed results.

The format is the contract in results/README.md. `summary.json` is used when it
exists; otherwise the run is reassembled from `arms/*/arm.json` and the
`gen-*/metrics.json` of generations that have a DONE marker (a generation
without one was interrupted and does not count), with run-level facts from
`config.toml` and `manifest.json`. That way `export` and `report` also work on a
run that was killed half-way.

Every malformed or missing field becomes a one-line BadInput naming the file and
the key, never a KeyError traceback.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import AxisValues, arm_axes, group_dimensions, pool_ignored
from harness.errors import BadInput
from harness.metrics.record import GenerationRecord
from harness.runfiles.store import DONE, check_format_version

_PASS_KEY = re.compile(r"^pass@([1-9][0-9]*)$")
_GEN_DIR = re.compile(r"^gen-([0-9]+)$")


@dataclass(frozen=True, order=True)
class ArmGroupKey(AxisValues):
    """What an arm is, apart from its seed: arms with equal keys are replicates. Its
    values are the arm's on `harness.config.group_axes`; keys sort by them in order."""

    values: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class AlsoEvalMetrics:
    """One `--also-eval` suite's score of one generation (metrics.json `also_eval[suite]`).

    Typed here, once, so the report and the export read the same checked numbers:
    greedy pass@1 over all of the suite's problems, each problem's (n, c) counts (n = 1:
    one greedy sample a problem), and perplexity on the suite's references."""

    n_tasks: int
    greedy_pass_at_1: float
    perplexity: float | None
    per_task: dict[str, tuple[int, int]]        # task id -> (n, c)


@dataclass(frozen=True)
class GenerationMetrics:
    """One generation of one arm (metrics.json), with the fields the tools use typed."""

    generation: int
    pass_at_k: dict[int, float]                 # k -> pass@k
    diversity: float | None                     # headline: mean pairwise dissimilarity
    perplexity: float | None
    filter_acceptance_rate: float | None        # None at generation 0
    filter_precision: float | None
    filter_recall: float | None
    n_train_examples: int
    per_task: dict[str, tuple[int, int]]        # task id -> (n, c)
    per_task_diversity: dict[str, float]        # optional per-problem diversity, else {}
    raw: dict[str, Any] = field(repr=False, compare=False)  # the whole metrics.json
    record: GenerationRecord | None = field(default=None, repr=False, compare=False)
    also_eval: dict[str, AlsoEvalMetrics] = field(default_factory=dict)  # suite -> score


@dataclass(frozen=True)
class ArmResult(AxisValues):
    """One arm: its identity (a value on each arm axis, as arm.json has them) and the
    metrics of each completed generation, in order."""

    arm_id: str
    values: tuple[tuple[str, Any], ...]
    complete: bool
    generations: tuple[GenerationMetrics, ...]

    @property
    def key(self) -> ArmGroupKey:
        dims = group_dimensions()
        return ArmGroupKey(tuple((name, v) for name, v in self.values if name in dims))


@dataclass(frozen=True)
class RunResult:
    """A run: one model and one train/eval suite pair, several arms."""

    path: Path
    run_id: str
    harness_version: str
    config_hash: str
    model: str
    train_suite: str
    train_split: str
    eval_suite: str
    eval_split: str
    ks: list[int]
    arms: dict[str, ArmResult]
    # config.toml flattened ({"training.learning_rate": 0.002, ...}) without the keys
    # that may differ between pooled runs (`pool_ignored`); None when there is no config.toml
    settings: dict[str, Any] | None = None
    planned_generations: int | None = None
    not_started: tuple[str, ...] = ()     # arm ids the config plans but no file mentions

    def incomplete(self) -> list[str]:
        """One line per arm that does not have every planned generation, e.g.
        `f-none__r-replace__real-0.0__s-1: 3 of 4 generations`."""
        planned = ("?" if self.planned_generations is None
                   else str(self.planned_generations + 1))
        lines = [f"{arm.arm_id}: {len(arm.generations)} of {planned} generations"
                 for arm in sorted(self.arms.values(), key=lambda a: a.arm_id)
                 if not arm.complete]
        return lines + [f"{arm_id}: not started" for arm_id in self.not_started]

    def without_incomplete(self) -> RunResult:
        """The run with only its complete arms (`--skip-incomplete`)."""
        import dataclasses

        return dataclasses.replace(self, arms={k: a for k, a in self.arms.items()
                                               if a.complete})

    def arm_groups(self) -> dict[ArmGroupKey, list[ArmResult]]:
        """Arms that differ only in seed, grouped; groups and seeds in a stable order."""
        groups: dict[ArmGroupKey, list[ArmResult]] = {}
        for arm in sorted(self.arms.values(), key=lambda a: (a.key, a.seed)):
            groups.setdefault(arm.key, []).append(arm)
        return groups

    @property
    def suite_label(self) -> str:
        """`synth/train -> synth/eval`, for titles."""
        return (f"{self.train_suite}/{self.train_split} -> "
                f"{self.eval_suite}/{self.eval_split}")


# ------------------------------------------------------------------ field access


def _get(data: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise BadInput(f"{where}: expected an object, got {type(data).__name__}")
    if key not in data:
        raise BadInput(f"{where}: missing key {key!r}")
    return data[key]


def _str(data: Mapping[str, Any], key: str, where: str) -> str:
    value = _get(data, key, where)
    if not isinstance(value, str):
        raise BadInput(f"{where}.{key}: expected a string, got {value!r}")
    return value


def _int(data: Mapping[str, Any], key: str, where: str) -> int:
    value = _get(data, key, where)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{where}.{key}: expected an integer, got {value!r}")
    return value


def _num(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadInput(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _opt_num(value: Any, where: str) -> float | None:
    """A number or null (metrics that do not apply, e.g. the filter at generation 0)."""
    return None if value is None else _num(value, where)


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise BadInput(f"missing file: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not valid JSON: {exc}") from None


# ------------------------------------------------------------------------ parsing


def _counts(per_task: Any, where: str) -> dict[str, tuple[int, int]]:
    """{task id: (n, c)} from a `per_task` object, each count checked (0 <= c <= n, n >= 1)."""
    if not isinstance(per_task, Mapping):
        raise BadInput(f"{where}: expected an object, got {type(per_task).__name__}")
    out: dict[str, tuple[int, int]] = {}
    for task_id, counts in per_task.items():
        at = f"{where}[{task_id!r}]"
        n, c = _int(counts, "n", at), _int(counts, "c", at)
        if not 0 <= c <= n or n == 0:
            raise BadInput(f"{at}: need 0 <= c <= n and n >= 1, got n={n}, c={c}")
        out[str(task_id)] = (n, c)
    return out


def parse_also_eval(block: Mapping[str, Any] | None, where: str) -> dict[str, AlsoEvalMetrics]:
    """metrics.json `also_eval` ({suite: {...}} or null) typed; BadInput naming the key.

    A malformed block stops the load like any other malformed field: a report or an
    export that silently dropped a suite would claim the run was not scored on it."""
    out: dict[str, AlsoEvalMetrics] = {}
    for suite, raw in (block or {}).items():
        at = f"{where}[{suite!r}]"
        if not isinstance(raw, Mapping):
            raise BadInput(f"{at}: expected an object, got {type(raw).__name__}")
        greedy = _num(_get(raw, "greedy_pass_at_1", at), f"{at}.greedy_pass_at_1")
        if not 0.0 <= greedy <= 1.0:
            raise BadInput(f"{at}.greedy_pass_at_1: expected a number in [0, 1], got {greedy}")
        out[str(suite)] = AlsoEvalMetrics(
            n_tasks=_int(raw, "n_tasks", at), greedy_pass_at_1=greedy,
            perplexity=_opt_num(raw.get("perplexity"), f"{at}.perplexity"),
            per_task=_counts(raw.get("per_task") or {}, f"{at}.per_task"))
    return out


def parse_metrics(data: Any, where: str) -> GenerationMetrics:
    """Validate one metrics.json object (or a summary.json generation entry): the typed
    record (harness.metrics.record) plus the analysis view the statistics use."""
    record = GenerationRecord.from_json(data, where)
    pass_at_k: dict[int, float] = {}
    for name, value in record.pass_at_k.items():
        match = _PASS_KEY.match(name)
        if not match:
            raise BadInput(f"{where}.pass_at_k: key {name!r} is not of the form 'pass@K'")
        pass_at_k[int(match.group(1))] = value
    if isinstance(record.diversity.get("diversity"), str):
        raise BadInput(f"{where}.diversity.diversity: expected a number or null")
    filt = record.filter or {}
    per_task = _counts(record.per_task, f"{where}.per_task")
    per_task_div: dict[str, float] = {}
    for task_id, counts in record.per_task.items():
        at = f"{where}.per_task[{task_id!r}]"
        if counts.get("diversity") is not None:
            per_task_div[task_id] = _num(counts["diversity"], f"{at}.diversity")
    return GenerationMetrics(
        generation=record.generation,
        pass_at_k=pass_at_k,
        diversity=record.headline_diversity,
        perplexity=record.perplexity,
        filter_acceptance_rate=_opt_num(filt.get("acceptance_rate"),
                                        f"{where}.filter.acceptance_rate"),
        filter_precision=_opt_num(filt.get("precision"), f"{where}.filter.precision"),
        filter_recall=_opt_num(filt.get("recall"), f"{where}.filter.recall"),
        n_train_examples=record.n_train_examples,
        per_task=per_task,
        per_task_diversity=per_task_div if len(per_task_div) == len(per_task) else {},
        raw=dict(data),
        record=record,
        also_eval=parse_also_eval(record.also_eval, f"{where}.also_eval"),
    )


def _axis_value(meta: Any, name: str, kind: type, legacy: Any, where: str) -> Any:
    """An arm.json's value on one axis, typed; an axis added later than the file has
    its `legacy` value (what the arm ran before the axis existed)."""
    if legacy is not None and isinstance(meta, Mapping) and name not in meta:
        return legacy
    if kind is str:
        return _str(meta, name, where)
    if kind is int:
        return _int(meta, name, where)
    return _num(_get(meta, name, where), f"{where}.{name}")


def _parse_arm(arm_id: str, meta: Any, generations: list[GenerationMetrics], complete: bool,
               where: str) -> ArmResult:
    ordered = tuple(sorted(generations, key=lambda g: g.generation))
    numbers = [g.generation for g in ordered]
    if numbers != list(range(len(numbers))):
        raise BadInput(f"{where}: generations must be 0, 1, 2, ... without gaps, got {numbers}")
    values = tuple((f.axis.name, _axis_value(meta, f.axis.name, f.item_type, f.axis.legacy,
                                              where))
                   for f in arm_axes() if f.axis is not None)
    return ArmResult(arm_id=arm_id, values=values, complete=complete, generations=ordered)


def _from_summary(path: Path, summary: Any) -> RunResult:
    where = str(path / "summary.json")
    arms: dict[str, ArmResult] = {}
    raw_arms = _get(summary, "arms", where)
    if not isinstance(raw_arms, Mapping):
        raise BadInput(f"{where}.arms: expected an object")
    for arm_id, raw in raw_arms.items():
        at = f"{where}.arms[{arm_id!r}]"
        gens = _get(raw, "generations", at)
        if not isinstance(gens, list):
            raise BadInput(f"{at}.generations: expected a list")
        parsed = [parse_metrics(g, f"{at}.generations[{i}]") for i, g in enumerate(gens)]
        arms[arm_id] = _parse_arm(arm_id, raw, parsed, bool(raw.get("complete", True)), at)
    return RunResult(
        path=path,
        run_id=_str(summary, "run_id", where),
        harness_version=str(summary.get("harness_version", "unknown")),
        config_hash=str(summary.get("config_hash", "unknown")),
        model=_str(summary, "model", where),
        train_suite=_str(summary, "train_suite", where),
        train_split=str(summary.get("train_split", "train")),
        eval_suite=_str(summary, "eval_suite", where),
        eval_split=str(summary.get("eval_split", "eval")),
        ks=[int(k) for k in summary.get("ks", [])],
        arms=arms,
    )


def _done_generations(arm_dir: Path) -> list[Path]:
    """gen-<g> directories with a DONE marker, in order, stopping at the first gap."""
    found: dict[int, Path] = {}
    for child in arm_dir.iterdir():
        match = _GEN_DIR.match(child.name)
        if match and child.is_dir() and (child / DONE).exists():
            found[int(match.group(1))] = child
    done: list[Path] = []
    while len(done) in found:
        done.append(found[len(done)])
    return done


def _config_hash(config: dict[str, Any]) -> str:
    """The recipe of harness.config.config_hash, applied to the config.toml as written."""
    blob = json.dumps(config, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _reassemble(path: Path) -> RunResult:
    config_path = path / "config.toml"
    try:
        with open(config_path, "rb") as fh:
            config = tomllib.load(fh)
    except FileNotFoundError:
        raise BadInput(f"{path}: no summary.json and no config.toml; not a run directory"
                       ) from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{config_path}: invalid TOML: {exc}") from None
    manifest = _read_json(path / "manifest.json") if (path / "manifest.json").is_file() else {}
    where = str(config_path)
    model = _get(config, "model", where)
    planned = _planned_generations(config)
    arms: dict[str, ArmResult] = {}
    for arm_dir in sorted((path / "arms").iterdir()) if (path / "arms").is_dir() else []:
        if not (arm_dir / "arm.json").is_file():
            continue
        meta = _read_json(arm_dir / "arm.json")
        gens = [parse_metrics(_read_json(d / "metrics.json"), str(d / "metrics.json"))
                for d in _done_generations(arm_dir)]
        complete = isinstance(planned, int) and len(gens) == planned + 1
        arm_id = str(meta.get("arm_id", arm_dir.name)) if isinstance(meta, Mapping) else ""
        arms[arm_id] = _parse_arm(arm_id, meta, gens, complete, str(arm_dir / "arm.json"))
    versions = manifest.get("versions") or {}
    return RunResult(
        path=path,
        run_id=str(manifest.get("run_id") or path.name),
        harness_version=str(versions.get("collapse-bench") or "unknown"),
        config_hash=str(manifest.get("config_hash") or _config_hash(config)),
        model=_str(model, "name", f"{where}.model"),
        train_suite=_str(config, "train_suite", where),
        train_split=str(config.get("train_split", "train")),
        eval_suite=_str(config, "eval_suite", where),
        eval_split=str(config.get("eval_split", "eval")),
        ks=[int(k) for k in config.get("ks", [])],
        arms=arms,
    )


POOL_IGNORED = pool_ignored()
"""Config keys that may differ between runs pooled into one leaderboard entry: the
seed (what pooling is for), the arm grid (an entry is one arm of it anyway), and
where or how fast things ran (`harness.config.pool_ignored`, from the fields' metadata).
Everything else changes the experiment."""


def _plan(path: Path) -> tuple[dict[str, Any] | None, int | None, list[str]]:
    """(settings, planned generations, planned arm ids) from config.toml, if present."""
    try:
        with open(path / "config.toml", "rb") as fh:
            config = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return None, None, []
    from harness.config import flatten

    ignored = pool_ignored()
    settings = {k: v for k, v in flatten(config) if k not in ignored}
    arm_ids: list[str] = []
    try:
        from harness.config import RunConfig, from_dict, with_legacy_settings
        from harness.experiment.arms import arms_of

        arm_ids = [a.arm_id for a in arms_of(from_dict(RunConfig, with_legacy_settings(config)))]
    except (BadInput, KeyError, TypeError, ValueError):
        pass
    return settings, _planned_generations(config), arm_ids


def _planned_generations(config: Mapping[str, Any]) -> int | None:
    """Generations after gen 0 that config.toml plans: self-training plus repair."""
    planned, recover = config.get("generations"), config.get("recover", 0)
    if not isinstance(planned, int) or not isinstance(recover, int):
        return None
    return planned + recover


def load_run(path: str | Path) -> RunResult:
    """Read one run directory (summary.json if present, else the per-generation files)."""
    import dataclasses

    path = Path(path)
    if not path.is_dir():
        raise BadInput(f"not a directory: {path}")
    if (path / "manifest.json").is_file():
        check_format_version(_read_json(path / "manifest.json"), path)
    summary_path = path / "summary.json"
    run = (_from_summary(path, _read_json(summary_path)) if summary_path.is_file()
           else _reassemble(path))
    settings, planned, arm_ids = _plan(path)
    run = dataclasses.replace(run, settings=settings, planned_generations=planned,
                              not_started=tuple(a for a in arm_ids if a not in run.arms))
    if not run.arms:
        raise BadInput(f"{path}: no arms with results (no summary.json arms, no arms/*/arm.json)")
    if not any(arm.generations for arm in run.arms.values()):
        raise BadInput(f"{path}: no completed generation yet (no gen-*/DONE)")
    return run
