"""The recovery question's control (issue 22): every `--recover R` run also repairs
generation 0, the same way, so the gap between the two is what self-training cost."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from harness.analysis.questions import SeedBootstrap, answer_all, repair_gap, repair_verdict
from harness.analysis.stats import Interval
from harness.cli import main
from harness.commands._experiment import build_config
from harness.errors import BadInput
from harness.experiment.arms import Arm, arms_of, validate
from harness.runfiles.runs import ArmResult, GenerationMetrics, load_run

CONTROL = "f-none__r-replace__real-0.0__c-repair-only__s-0"
TWIN = "f-none__r-replace__real-0.0__s-0"


def test_a_control_arm_exists_exactly_when_there_is_repair() -> None:
    with_repair = build_config({}, None, None, {"filters": "none", "recover": "2"})
    assert [a.arm_id for a in arms_of(with_repair)] == [TWIN, CONTROL]
    assert [a.arm_id for a in arms_of(build_config({}, None, None, {"filters": "none"}))] == [
        TWIN]
    without = build_config({}, None, None, {"filters": "none", "recover": "2",
                                            "courses": "self-train"})
    assert [a.arm_id for a in arms_of(without)] == [TWIN]
    with pytest.raises(BadInput, match="unknown course 'rest'"):
        validate(build_config({}, None, None, {"courses": "rest"}))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_the_control_holds_generation_0_then_gets_the_same_repair(tmp_path: Path) -> None:
    """End to end on builtin:tiny (local executor, tiny sizes): the control's held
    generation is generation 0's numbers with no adapter; its repair generation trains
    on byte-identical data (the same draws) from M0, so it scores differently from its
    twin's; the report gives the repair gap."""
    code = main(["run", "--executor", "local", "--filters", "none", "--generations", "1",
                 "--recover", "1", "--train-prompts", "16", "--n-train", "2",
                 "--eval-tasks", "10", "--n-eval", "2", "--ks", "1,2", "--model.threads", "1",
                 "--out", str(tmp_path)])
    assert code == 0
    [run_dir] = [p for p in tmp_path.iterdir() if p.is_dir()]
    arms = run_dir / "arms"
    held = json.loads((arms / CONTROL / "gen-1" / "metrics.json").read_text())
    gen0 = json.loads((arms / CONTROL / "gen-0" / "metrics.json").read_text())
    assert (held["phase"], held["generation"], held["timings_s"]) == ("held", 1, {})
    assert held["pass_at_k"] == gen0["pass_at_k"] and held["per_task"] == gen0["per_task"]
    assert (arms / CONTROL / "gen-1" / "HELD").is_file()
    assert not (arms / CONTROL / "gen-1" / "adapter").exists()
    # the repair generation: the same data, a different starting model
    assert _sha(arms / CONTROL / "gen-2" / "train.jsonl") == _sha(arms / TWIN / "gen-2" /
                                                                  "train.jsonl")
    repaired = {a: json.loads((arms / a / "gen-2" / "metrics.json").read_text())
                for a in (TWIN, CONTROL)}
    assert {m["phase"] for m in repaired.values()} == {"recovery"}
    assert repaired[TWIN]["perplexity"] != repaired[CONTROL]["perplexity"]
    [answer] = answer_all(load_run(run_dir), SeedBootstrap())
    gap = answer.repair_gap["pass@1"].mean
    assert gap == pytest.approx(repaired[TWIN]["pass_at_k"]["pass@1"]
                                - repaired[CONTROL]["pass_at_k"]["pass@1"])
    assert main(["report", str(run_dir)]) == 0
    assert "Repair gap: beyond repair?" in (run_dir / "report" / "report.md").read_text()


def test_repair_verdicts() -> None:
    assert repair_verdict(Interval(-0.1, -0.2, -0.05)).startswith("beyond repair")
    assert repair_verdict(Interval(-0.1, -0.2, 0.05)).startswith("repaired")
    assert repair_verdict(Interval(0.1, 0.05, 0.2)).startswith("above the control")
    assert repair_verdict(Interval(0.1)) == "-"


def _arm(seed: int, pass1: list[float], course: str = "self-train") -> ArmResult:
    gens = tuple(GenerationMetrics(
        generation=g, pass_at_k={1: p, 10: min(1.0, 2 * p)}, diversity=0.3, perplexity=2.0,
        filter_acceptance_rate=None, filter_precision=None, filter_recall=None,
        n_train_examples=0, per_task={}, per_task_diversity={}, raw={})
        for g, p in enumerate(pass1))
    arm = Arm.of(filter="none", regime="replace", real_fraction=0.0, seed=seed,
                 course=course)
    return ArmResult(arm.arm_id, arm.values, True, gens)


def test_the_gap_pairs_seeds_and_ignores_a_control_that_is_not_as_far() -> None:
    twins = [_arm(seed, [0.5, 0.3, 0.4]) for seed in (0, 1)]
    controls = [_arm(0, [0.5, 0.5, 0.6], "repair-only"),
                _arm(1, [0.5, 0.5], "repair-only")]  # seed 1's control is not as far
    gap = repair_gap(twins, controls, SeedBootstrap())
    assert gap["pass@1"].mean == pytest.approx(0.4 - 0.6)
    assert gap["pass@10"].mean == pytest.approx(0.8 - 1.0)
    assert repair_gap(twins, [], SeedBootstrap()) == {}
