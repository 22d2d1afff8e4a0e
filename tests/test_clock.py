"""The progress line's counts and its estimate of the time left (harness/experiment/clock.py)."""

from __future__ import annotations

from harness.commands._experiment import build_config
from harness.experiment.arms import arms_of
from harness.experiment.clock import RunClock, duration


def test_a_seeds_generation_0_is_computed_once_and_the_estimate_uses_the_pace() -> None:
    cfg = build_config({}, None, None, {"seeds": "0,1", "generations": "2"})
    arms = arms_of(cfg)  # 2 filters x 2 seeds
    done: set[tuple[str, int]] = set()
    clock = RunClock(arms, 3, lambda arm_id, g: (arm_id, g) in done, started=0.0)
    assert clock.total == 12 and clock.to_compute() == 10  # gen 0 once per seed
    first, sibling = [a for a in arms if a.seed == 0]
    done.add((first.arm_id, 0))
    line = clock.finished(first, 0)
    assert line.startswith("progress: 1/12 generations scored (arm ")
    assert "9 to compute" in line and clock.computed == 1
    done.add((sibling.arm_id, 0))
    clock.finished(sibling, 0)               # a copy: scored, but no time spent
    assert clock.done == 2 and clock.computed == 1 and clock.to_compute() == 9
    clock.finished(sibling, 0)               # reported again (a resubmitted Ray arm)
    assert clock.done == 2 and clock.computed == 1


def test_a_resumed_run_counts_what_is_on_disk() -> None:
    cfg = build_config({}, None, None, {"generations": "1"})
    arms = arms_of(cfg)
    done = {(arms[0].arm_id, 0), (arms[0].arm_id, 1), (arms[1].arm_id, 0)}
    clock = RunClock(arms, 2, lambda arm_id, g: (arm_id, g) in done)
    assert clock.done == 3 and clock.to_compute() == 1
    done.add((arms[1].arm_id, 1))
    line = clock.finished(arms[1], 1)
    assert line.startswith("progress: 4/4 generations scored (arm 2/2 ")
    assert "left" not in line


def test_durations_read_as_an_estimate_should() -> None:
    assert [duration(s) for s in (-1, 0.4, 59.4, 61, 3599, 3600, 7500)] == [
        "0 s", "0 s", "59 s", "1 min 01 s", "59 min 59 s", "1 h 00 min", "2 h 05 min"]
