"""Arms: the points of the ablation grid, their ids, and config validation.

An arm is (filter, regime, real fraction, train temperature, seed) under one run's
model, suites and restart policy. Validation happens here, before anything expensive starts, so a
bad config fails in a second with one line (exit 2) instead of mid-run.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass

from harness.config import (
    RunConfig,
    check_model,
    check_sampling,
    check_sandbox,
    check_sizes,
    check_training,
    flag_of,
)
from harness.errors import BadInput
from harness.experiment.filters import parse_filter
from harness.experiment.regimes import check_real_fraction, check_regime
from harness.runfiles.store import safe_name

DEFAULT_TRAIN_TEMPERATURE = 1.0
"""Arms at this train temperature keep the short id (`...__s-0`); others say theirs."""


@dataclass(frozen=True)
class Arm:
    filter: str
    regime: str
    real_fraction: float
    seed: int
    train_temperature: float = DEFAULT_TRAIN_TEMPERATURE

    @property
    def arm_id(self) -> str:
        temp = ("" if self.train_temperature == DEFAULT_TRAIN_TEMPERATURE
                else f"__t-{self.train_temperature}")
        return safe_name(f"f-{self.filter}__r-{self.regime}__real-{self.real_fraction}"
                         f"{temp}__s-{self.seed}")

    def to_json(self, restart: str) -> dict[str, object]:
        return {"arm_id": self.arm_id, "filter": self.filter, "regime": self.regime,
                "real_fraction": self.real_fraction, "seed": self.seed, "restart": restart,
                "train_temperature": self.train_temperature}


def arms_of(cfg: RunConfig) -> list[Arm]:
    """The grid in a stable order: seeds outermost, so gen 0 of a seed is shared early."""
    return [Arm(f, r, float(x), s, float(t)) for s, f, r, x, t in
            itertools.product(cfg.seeds, cfg.filters, cfg.regimes, cfg.real_fractions,
                              cfg.train_temperatures)]


def validate(cfg: RunConfig) -> None:
    """Every check of a config, in one place, before any model or container is touched.

    One check per config section (harness.config), then the grid: a bad value fails
    in well under a second with one line (BadInput, exit 2) instead of after the
    model loads or a generation is spent. Suite sizes and train/eval overlap need
    the suites and are checked by `harness.experiment.loop.load_tasks`, still before the model.
    """
    check_model(cfg.model)
    check_sampling(cfg.sampling)
    check_training(cfg.training)
    check_sandbox(cfg.sandbox)
    check_sizes(cfg)
    check_grid(cfg)


def plan_line(cfg: RunConfig, done: int = 0) -> str:
    """The run's size in one line, printed before anything loads: how many arms and
    generations, and what each generation samples. A typo such as `--generations
    100000000` or a preset's grid is then visible before it costs anything (it used
    to start silently). `done`: generations already complete (a resume)."""
    arms = len(arms_of(cfg))
    gens = cfg.total_generations + 1
    phases = f"gen 0 + {cfg.generations} self-training" + (
        f" + {cfg.recover} repair" if cfg.recover else "")
    evals = f"{cfg.eval_tasks}" if cfg.eval_tasks else "all"
    line = (f"plan: {arms} arm(s) x {gens} generations ({phases}) = {arms * gens} "
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


def check_grid(cfg: RunConfig) -> None:
    """Filters, regimes, real fractions, train temperatures and seeds: known, and no
    arm twice.

    A repeated value (`--filters tests,tests`, `--seeds 0,0`) would run the same arm
    twice into the same directory and count it twice in the statistics.
    `perplexity:0` keeps no completion, so it trains on nothing: it is refused in
    favour of the explicit no-training control, `--epochs 0`.
    """
    lists = {"filters": cfg.filters, "regimes": cfg.regimes,
             "real_fractions": cfg.real_fractions, "seeds": cfg.seeds,
             "train_temperatures": cfg.train_temperatures}
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
    normalised = {"filters": [parse_filter(f).text for f in cfg.filters],
                  "regimes": [r.strip() for r in cfg.regimes],
                  "real_fractions": [float(x) for x in cfg.real_fractions],
                  "seeds": list(cfg.seeds),
                  "train_temperatures": [float(t) for t in cfg.train_temperatures]}
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
