"""The plan's time from measured rates (harness/experiment/estimate.py): the arithmetic."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.commands._experiment import build_config
from harness.experiment.estimate import Rates, estimate_s


def rates(**seconds: float) -> Rates:
    base = {"eval_s_per_completion": 0.0, "train_sample_s_per_completion": 0.0,
            "training_s_per_example_epoch": 0.0, "kept_share": 0.5, "overhead_s": 0.0}
    return Rates(source=Path("measured"), also_eval_s={}, kept_share_by_filter={},
                 **{**base, **seconds})


def test_training_grows_with_the_regimes_training_set() -> None:
    """Under `accumulate` generation g trains on g generations' kept data; under
    `accumulate-subsample` on at most --subsample-size; a real fraction F adds human
    examples to make 1/(1-F) times the set (regimes.build_dataset decides)."""
    overrides = {"filters": "none", "generations": "3", "train_prompts": "100", "n_train": "2",
                 "eval_tasks": "10", "n_eval": "1"}
    one_second = rates(training_s_per_example_epoch=1.0)   # 1 s per example-epoch
    epochs = build_config({}, None, None, overrides).training.epochs

    def seconds(**more: str) -> float:
        cfg = build_config({}, None, None, {**overrides, **more})
        return estimate_s(cfg, one_second, 10, set(), train_pool=1000) / epochs

    kept = 0.5 * 100 * 2                                   # 100 kept per generation
    assert seconds(regimes="replace") == pytest.approx(3 * kept)
    assert seconds(regimes="accumulate") == pytest.approx((1 + 2 + 3) * kept)
    assert seconds(regimes="accumulate-subsample", subsample_size="150") == pytest.approx(
        100 + 150 + 150)
    assert seconds(regimes="replace", real_fractions="0.5") == pytest.approx(3 * 2 * kept)


def test_evaluation_counts_generation_0_once_per_seed_and_skips_what_is_done() -> None:
    cfg = build_config({}, None, None, {"generations": "2", "seeds": "0,1", "eval_tasks": "10",
                                        "n_eval": "2"})
    per_eval = rates(eval_s_per_completion=1.0, overhead_s=5.0)
    # 2 seeds x gen 0 + 4 arms x 2 generations = 10 evaluations of 10 x 2 completions
    assert estimate_s(cfg, per_eval, 10, set()) == pytest.approx(10 * (20 + 5))
    from harness.experiment.arms import arms_of

    done = {(a.arm_id, g) for a in arms_of(cfg) for g in (0, 1)}
    assert estimate_s(cfg, per_eval, 10, done) == pytest.approx(4 * 25)


def test_each_filter_keeps_its_own_measured_share() -> None:
    """A measured run of `tests` and `none` keeps ~0.37 and 1.0 of its completions; a
    plan of `none` arms alone trains on all of them, not on the two arms' mean."""
    cfg = build_config({}, None, None, {"filters": "none,tests", "generations": "1",
                                        "train_prompts": "100", "n_train": "2"})
    measured = Rates(source=Path("measured"), also_eval_s={}, eval_s_per_completion=0.0,
                     train_sample_s_per_completion=0.0, training_s_per_example_epoch=1.0,
                     kept_share=0.5, overhead_s=0.0,
                     kept_share_by_filter={"none": 1.0, "tests": 0.25})
    epochs = cfg.training.epochs
    assert estimate_s(cfg, measured, 10, set(), train_pool=1000) == pytest.approx(
        (200 + 50) * epochs)


def test_a_corrupt_earlier_run_gives_no_rates_instead_of_a_failed_start(tmp_path: Path) -> None:
    """The estimate reads the metrics of earlier runs under --out; one whose timings a
    hand edit broke (a string, NaN) is skipped, so it cannot stop a new run starting."""
    import json

    from harness.experiment.estimate import measured_rates
    from tests.run_fixtures import RunSpec, write_run

    run = write_run(tmp_path, RunSpec(run_id="r-x", seeds=(0,)))
    cfg = build_config({}, None, None, {"out": str(tmp_path)})
    for bad in ("fast", float("nan")):
        for metrics in run.glob("arms/*/gen-*/metrics.json"):
            data = json.loads(metrics.read_text())
            data["timings_s"] = {"generation": bad, "training": bad, "evaluation": 1.0}
            metrics.write_text(json.dumps(data))
        (run / "summary.json").unlink(missing_ok=True)
        assert measured_rates(cfg, None) is None


def test_also_eval_time_scales_with_the_problems_scored() -> None:
    """`--also-eval-tasks N` scores N problems: the also-eval rate is per problem, so an
    estimate from a run that scored all 164 of HumanEval is not 164/N times too long."""
    cfg = build_config({}, None, None, {"filters": "none", "generations": "1",
                                        "also_eval": "humaneval", "also_eval_tasks": "40"})
    per_problem = dataclasses.replace(rates(), also_eval_s={"humaneval": 2.0})
    # gen 0 (shared) + gen 1: two evaluations of 40 problems at 2 s each
    assert estimate_s(cfg, per_problem, 10, set(), also_problems={"humaneval": 40}) == 160.0


def test_also_eval_tasks_takes_the_first_n_and_refuses_more_than_the_suite_has() -> None:
    from harness.errors import BadInput
    from harness.experiment.loop import load_also_eval, load_tasks

    cfg = build_config({}, None, None, {"also_eval": "humaneval", "also_eval_tasks": "40"})
    train, _ = load_tasks(cfg)
    [tasks] = load_also_eval(cfg, train).values()
    assert [t.task_id for t in tasks] == [f"HumanEval/{i}" for i in range(40)]
    too_many = build_config({}, None, None, {"also_eval": "humaneval", "also_eval_tasks": "165"})
    with pytest.raises(BadInput, match="also_eval_tasks=165 but humaneval has 164"):
        load_also_eval(too_many, train)
