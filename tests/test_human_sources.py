"""`--human-sources train|fresh` (issue 22): where an arm's human code comes from.

The mixed pool, the detectors' calibration set, the real fraction and repair
generations all draw on the arm's source; the warm start, which stands for
pretraining on the task family, always on the train split.
"""

from __future__ import annotations

import pytest

from harness.commands._experiment import build_config
from harness.errors import BadInput
from harness.experiment.arms import arms_of, validate
from harness.experiment.loop import (
    CALIBRATION_SIZE,
    Context,
    _real_pool,
    calibration_pairs,
    human_pool,
    human_tasks,
    load_fresh,
    load_tasks,
)
from harness.model.formats import PromptFormat


def _context(**overrides: str) -> tuple[Context, dict[str, object]]:
    cfg = build_config({}, None, None, {"filters": "none", "human_sources": "train,fresh",
                                        "human_pool_share": "0.5", **overrides})
    validate(cfg)
    train, evals = load_tasks(cfg)
    ctx = Context(cfg, None, train, evals, None, None, None, print,  # type: ignore[arg-type]
                  PromptFormat("completion", False, None), {}, load_fresh(cfg, train, evals))
    return ctx, {a.human_source: a for a in arms_of(cfg)}


def test_each_source_feeds_the_pool_the_calibration_and_the_real_mix() -> None:
    ctx, arms = _context()
    splits = {"train": "train", "fresh": "fresh"}
    for source, arm in arms.items():
        assert {t.split for t in human_tasks(ctx, arm)} == {splits[source]}
        pool = human_pool(ctx, arm, 1, set(), n_self=200)
        assert len(pool) == 200 and {t.split for t in pool} == {source}
        in_pool = {t.task_id: t for t in pool}
        calibration = calibration_pairs(ctx, arm, 1, in_pool)
        prompts = {t.prompt: t for t in human_tasks(ctx, arm)}
        assert len(calibration) == CALIBRATION_SIZE
        assert all(p in prompts and prompts[p].task_id not in in_pool for p, _ in calibration)
        assert {e.task_id.split("/")[1] for e in _real_pool(ctx, arm)} == {source}
    # the warm start: the train split whatever the arm
    assert {e.task_id.split("/")[1] for e in _real_pool(ctx)} == {"train"}


def test_the_small_fresh_split_keeps_its_calibration_set() -> None:
    ctx, arms = _context(human_pool_share="0.9")
    fresh = arms["fresh"]
    pool = human_pool(ctx, fresh, 1, set(), n_self=2048)  # asks for 18,432 human tasks
    assert len(pool) == len(ctx.fresh_tasks) - CALIBRATION_SIZE
    assert len(calibration_pairs(ctx, fresh, 1, {t.task_id: t for t in pool})) == \
        CALIBRATION_SIZE
    # the train source is sized as it always was (its numbers are unchanged)
    assert len(human_pool(ctx, arms["train"], 1, set(), n_self=100)) == 900


def test_fresh_is_loaded_only_when_an_arm_uses_it_and_refused_without_the_split(
        tmp_path: object) -> None:
    cfg = build_config({}, None, None, {"filters": "none"})
    train, evals = load_tasks(cfg)
    assert load_fresh(cfg, train, evals) == []
    cfg = build_config({}, None, None, {"filters": "none", "human_sources": "fresh",
                                        "train_suite": "synth:n_train=40,n_eval=10,n_fresh=0",
                                        "eval_suite": "synth:n_train=40,n_eval=10,n_fresh=0",
                                        "train_prompts": "8", "eval_tasks": "5"})
    train, evals = load_tasks(cfg)
    with pytest.raises(BadInput, match="needs a `fresh` split"):
        load_fresh(cfg, train, evals)
    with pytest.raises(BadInput, match="unknown human source 'mine'"):
        validate(build_config({}, None, None, {"human_sources": "mine"}))
