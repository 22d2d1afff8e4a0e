"""Arms: the points of the ablation grid, their ids, and config validation.

An arm is (filter, regime, real fraction, seed) under one run's model, suites and
restart policy. Validation happens here, before anything expensive starts, so a
bad config fails in a second with one line (exit 2) instead of mid-run.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass

from harness.config import RESTART_POLICIES, RunConfig
from harness.errors import BadInput
from harness.filters import parse_filter
from harness.regimes import check_real_fraction, check_regime
from harness.store import safe_name


@dataclass(frozen=True)
class Arm:
    filter: str
    regime: str
    real_fraction: float
    seed: int

    @property
    def arm_id(self) -> str:
        return safe_name(f"f-{self.filter}__r-{self.regime}__real-{self.real_fraction}"
                         f"__s-{self.seed}")

    def to_json(self, restart: str) -> dict[str, object]:
        return {"arm_id": self.arm_id, "filter": self.filter, "regime": self.regime,
                "real_fraction": self.real_fraction, "seed": self.seed, "restart": restart}


def arms_of(cfg: RunConfig) -> list[Arm]:
    """The grid in a stable order: seeds outermost, so gen 0 of a seed is shared early."""
    return [Arm(f, r, float(x), s) for s, f, r, x in
            itertools.product(cfg.seeds, cfg.filters, cfg.regimes, cfg.real_fractions)]


def validate(cfg: RunConfig) -> None:
    """Refuse configs that cannot give meaningful numbers (BadInput, exit 2).

    Suite overlap is checked separately (`check_no_overlap`) once suites are loaded.
    """
    if not cfg.filters or not cfg.regimes or not cfg.real_fractions or not cfg.seeds:
        raise BadInput("filters, regimes, real fractions and seeds must each be non-empty")
    for f in cfg.filters:
        parse_filter(f)
    for r in cfg.regimes:
        check_regime(r)
    for x in cfg.real_fractions:
        check_real_fraction(x)
    if cfg.training.restart not in RESTART_POLICIES:
        raise BadInput(f"unknown restart policy {cfg.training.restart!r}; "
                       f"known: {', '.join(RESTART_POLICIES)}")
    if cfg.executor not in ("docker", "local"):
        raise BadInput(f"unknown executor {cfg.executor!r}; known: docker, local")
    if not cfg.ks:
        raise BadInput("at least one k is needed")
    for k in cfg.ks:
        if k < 1:
            raise BadInput(f"k must be >= 1, got {k}")
        if k > cfg.n_eval:
            raise BadInput(f"k={k} is larger than n_eval={cfg.n_eval}: pass@{k} needs at "
                           f"least {k} samples per problem")
    positive = {"generations": cfg.generations >= 0, "train_prompts": cfg.train_prompts >= 1,
                "n_train": cfg.n_train >= 1, "n_eval": cfg.n_eval >= 1,
                "eval_tasks": cfg.eval_tasks >= 0}
    for name, ok in positive.items():
        if not ok:
            raise BadInput(f"{name} must be positive, got {getattr(cfg, name)}")


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
