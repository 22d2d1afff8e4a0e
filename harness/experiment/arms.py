"""Arms: the points of the ablation grid, their ids, and config validation.

An arm is a value on each arm axis of the config (`harness.config.arm_axes`: filter,
regime, real fraction, seed, restart policy, train temperature) under one run's model
and suites. The axes are marked on the config's fields, so an arm's id, its arm.json
and the grid's checks here follow from them. Validation happens here, before anything
expensive starts, so a bad config fails in a second with one line (exit 2) instead of
mid-run.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.config import (
    AxisValues,
    RunConfig,
    arm_axes,
    check_model,
    check_sampling,
    check_sandbox,
    check_sizes,
    check_training,
    flag_of,
    setting,
)
from harness.errors import BadInput
from harness.experiment.filters import parse_filter
from harness.experiment.regimes import check_real_fraction, check_regime
from harness.model.watermark import parse_watermark
from harness.runfiles.store import safe_name


@dataclass(frozen=True)
class Arm(AxisValues):
    """One point of the grid: its value on every arm axis, in axis order."""

    values: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, **values: Any) -> Arm:
        """An arm from a value per axis, by name (`Arm.of(filter="tests", ...)`); an
        axis left out has its legacy value (what an arm from before it ran), as an
        arm.json without it is read."""
        axes = [f.axis for f in arm_axes() if f.axis is not None]
        names = [a.name for a in axes]
        missing = [a.name for a in axes if a.name not in values and a.legacy is None]
        unknown = sorted(set(values) - set(names))
        if missing or unknown:
            raise TypeError(f"an arm has a value for each of {', '.join(names)}; "
                            f"got {', '.join(values)}")
        return cls(tuple((a.name, values.get(a.name, a.legacy)) for a in axes))

    @property
    def arm_id(self) -> str:
        """`f-tests__r-replace__real-0.0__s-0`: each tagged axis as TAG-VALUE, the seed
        last, an axis at its `quiet` value left out (`__t-0.8` only off 1.0)."""
        parts = [(f.axis, self.get(f.axis.name)) for f in arm_axes()
                 if f.axis is not None and f.axis.tag]
        shown = [(a, v) for a, v in parts if a.quiet is None or v != a.quiet]
        ordered = sorted(shown, key=lambda part: part[0].replicate)  # stable: seed last
        return safe_name("__".join(f"{a.tag}-{v}" for a, v in ordered))

    def to_json(self) -> dict[str, object]:
        """What arm.json (and summary.json) say the arm is."""
        return {"arm_id": self.arm_id, **dict(self.values)}


def arms_of(cfg: RunConfig) -> list[Arm]:
    """The grid in a stable order: seeds outermost, so gen 0 of a seed is shared early,
    then the other list axes in axis order; a scalar axis (restart) is the run's."""
    axes = arm_axes()
    grid = sorted((f for f in axes if f.is_list), key=lambda f: not f.axis.replicate)
    arms = []
    for point in itertools.product(*([f.item_type(v) for v in setting(cfg, f.path)]
                                     for f in grid)):
        chosen = dict(zip((f.path for f in grid), point, strict=True))
        arms.append(Arm(tuple((f.axis.name, chosen.get(f.path, setting(cfg, f.path)))
                              for f in axes if f.axis is not None)))
    # a repair-only arm is the control of the repair generations: none without them
    return [a for a in arms if cfg.recover or a.course != "repair-only"]


def validate(cfg: RunConfig) -> None:
    """Every check of a config, in one place, before any model or container is touched.

    One check per config section (harness.config), then the grid: a bad value fails
    in well under a second with one line (BadInput, exit 2) instead of after the
    model loads or a generation is spent. Suite sizes and train/eval overlap need
    the suites and are checked by `harness.experiment.loop.load_tasks`, still before the model.
    """
    check_model(cfg.model)
    check_sampling(cfg.sampling)
    check_watermark(cfg)
    check_training(cfg.training)
    check_sandbox(cfg.sandbox)
    check_sizes(cfg)
    check_grid(cfg)


def plan_line(cfg: RunConfig, done: int = 0) -> str:
    """The run's size in one line, printed before anything loads: how many arms and
    generations, and what each generation samples. A typo such as `--generations
    100000000` or a preset's grid is then visible before it costs anything (it used
    to start silently). `done`: generations already complete (a resume)."""
    grid = arms_of(cfg)
    arms = len(grid)
    controls = sum(a.course == "repair-only" for a in grid)
    gens = cfg.total_generations + 1
    phases = f"gen 0 + {cfg.generations} self-training" + (
        f" + {cfg.recover} repair" if cfg.recover else "")
    evals = f"{cfg.eval_tasks}" if cfg.eval_tasks else "all"
    of_them = (f" ({controls} of them repair-only controls, whose first {cfg.generations} "
               "generations are copies)" if controls else "")
    line = (f"plan: {arms} arm(s){of_them} x {gens} generations ({phases}) = {arms * gens} "
            f"generations to score; each samples {cfg.train_prompts} train prompts x "
            f"{cfg.n_train} and {evals} eval problems x {cfg.n_eval}")
    return line + (f"; {done} already done" if done else "")


def check_device_here(cfg: RunConfig) -> None:
    """An explicit device this machine lacks (`--device cuda` without CUDA) fails now:
    one line, exit 3 (EnvironmentProblem), before the suites, the sandbox or the model
    load, where it used to surface from the model loader some 25 s in. The check is
    the loader's own (`resolve_device`), so the two cannot disagree. `auto` and `cpu`
    need no check (and no torch import). Not for Ray runs: there the workers' devices
    count, and each worker checks its own when it loads the model."""
    if cfg.model.device.strip().lower() in ("auto", "cpu"):
        return
    from harness.model.runtime import resolve_device

    resolve_device(cfg.model)


COURSES = ("self-train", "repair-only")
"""What an arm does before its repair generations (`--courses`): self-train, or hold
generation 0's model (the recovery question's control, harness.experiment.loop)."""

HUMAN_SOURCES = ("train", "fresh")
"""Where human code comes from (`--human-sources`): the train split, or the unseen
`fresh` split of the synthetic suite (harness.experiment.loop.human_tasks)."""


def check_watermark(cfg: RunConfig) -> None:
    """The watermark spec parses, and a `detect:watermark:Z` filter has a mark to find
    (without one every z is noise around 0 and the filter keeps nearly everything,
    which would read as a detector that failed)."""
    marked = parse_watermark(cfg.sampling.watermark) is not None
    for f in cfg.filters:
        if not marked and parse_filter(f).detector == "watermark":
            raise BadInput(f"filter {f!r} detects a watermark, but the run's samples are "
                           "unmarked: add --watermark KEY")


def check_grid(cfg: RunConfig) -> None:
    """Filters, regimes, real fractions, train temperatures, human sources and seeds:
    known, and no arm twice.

    A repeated value (`--filters tests,tests`, `--seeds 0,0`) would run the same arm
    twice into the same directory and count it twice in the statistics.
    `perplexity:0` keeps no completion, so it trains on nothing: it is refused in
    favour of the explicit no-training control, `--epochs 0`.
    """
    lists = {f.path: setting(cfg, f.path) for f in arm_axes() if f.is_list}
    for name, values in lists.items():
        if not values:
            raise BadInput(f"{name} must not be empty ({flag_of(name)})")
    for f in cfg.filters:
        spec = parse_filter(f)
        if spec.name == "perplexity" and spec.param == 0:
            raise BadInput(f"filter {f!r} keeps no completion, so every generation would train "
                           "on nothing; for a no-training control use --epochs 0")
    for r in cfg.regimes:
        check_regime(r)
    for x in cfg.real_fractions:
        check_real_fraction(x)
    for course in cfg.courses:
        if course not in COURSES:
            raise BadInput(f"unknown course {course!r}; known: {', '.join(COURSES)} "
                           f"({flag_of('courses')})")
    for source in cfg.human_sources:
        if source not in HUMAN_SOURCES:
            raise BadInput(f"unknown human source {source!r}; known: {', '.join(HUMAN_SOURCES)} "
                           f"({flag_of('human_sources')})")
    normalised = {path: [_canonical(path)(v) for v in values] for path, values in lists.items()}
    for name, values in normalised.items():
        repeated = sorted({str(v) for v in values if values.count(v) > 1})
        if repeated:
            raise BadInput(f"{name} lists {', '.join(repeated)} more than once: the same arm "
                           f"would run twice ({flag_of(name)})")
    ids = [a.arm_id for a in arms_of(cfg)]
    clash = sorted({i for i in ids if ids.count(i) > 1})
    if clash:
        raise BadInput(f"two arms would share the directory {clash[0]}; make the filters, "
                       "regimes and fractions distinct")


def _canonical(path: str) -> Callable[[Any], Any]:
    """How a grid list's values are compared for repeats: a filter by its parsed text
    (`tests+dedup` however spelled), strings stripped, numbers as floats."""
    if path == "filters":
        return lambda f: parse_filter(f).text
    kind = next(f.item_type for f in arm_axes() if f.path == path)
    return {str: str.strip, float: float}.get(kind, lambda v: v)


def check_no_overlap(train_prompts: dict[str, str], eval_prompts: dict[str, str]) -> None:
    """Train and eval problems must never overlap: same task id or same prompt text."""
    shared_ids = sorted(set(train_prompts) & set(eval_prompts))
    if shared_ids:
        raise BadInput(f"train and eval problems overlap ({len(shared_ids)} shared task ids, "
                       f"e.g. {shared_ids[0]}); pick disjoint suites or splits")

    def digest(text: str) -> str:
        return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()

    eval_digests = {digest(p): tid for tid, p in eval_prompts.items()}
    for tid, prompt in train_prompts.items():
        if digest(prompt) in eval_digests:
            raise BadInput(f"train and eval problems overlap: train {tid} has the same prompt "
                           f"as eval {eval_digests[digest(prompt)]}")
