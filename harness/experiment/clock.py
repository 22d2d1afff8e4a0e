"""Where a run is and how long it has left, in one line after every generation.

A run of many arms used to print only each generation's scores: nobody could tell
whether arm 3 of 30 or 29 of 30 was running, nor when it would end. The estimate is
the pace this process has measured (wall time per generation computed), times the
generations still to compute. Generation 0 of a seed is computed once and copied to
its other arms (`loop.run_generation_zero`), so a copy counts as done but costs no
time. The pace mixes generation 0 (no sampling of train data, no training) with the
self-training ones, so the first estimate is low; it settles after a few generations.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.experiment.arms import Arm


@dataclass
class RunClock:
    """Counts generations as they finish; `line` says where the run is."""

    arms: Sequence[Arm]
    generations: int                     # per arm, generation 0 included
    is_done: Callable[[str, int], bool]  # (arm id, generation) -> complete on disk
    started: float = field(default_factory=time.monotonic)
    computed: int = 0                    # generations this process computed

    def __post_init__(self) -> None:
        self._gen0_seeds = {a.seed for a in self.arms if self.is_done(a.arm_id, 0)}
        self._counted = {(a.arm_id, g) for a in self.arms for g in range(self.generations)
                         if self.is_done(a.arm_id, g)}
        self.total = len(self.arms) * self.generations

    @property
    def done(self) -> int:
        return len(self._counted)

    def to_compute(self) -> int:
        """Generations left that cost time (a seed's generation 0 only once)."""
        left = 0
        seeds = set(self._gen0_seeds)
        for arm in self.arms:
            for g in range(self.generations):
                if self.is_done(arm.arm_id, g):
                    continue
                if g == 0 and arm.seed in seeds:
                    continue
                seeds.add(arm.seed)
                left += 1
        return left

    def finished(self, arm: Arm, generation: int) -> str:
        """Count `arm`'s `generation` as complete (once, however often it is
        reported: a resubmitted Ray arm may send one again); the progress line."""
        if (arm.arm_id, generation) not in self._counted and (
                generation > 0 or arm.seed not in self._gen0_seeds):
            self.computed += 1
        self._counted.add((arm.arm_id, generation))
        self._gen0_seeds.add(arm.seed)
        elapsed = time.monotonic() - self.started
        position = (f"progress: {self.done}/{self.total} generations scored (arm "
                    f"{list(self.arms).index(arm) + 1}/{len(self.arms)} {arm.arm_id}, "
                    f"generation {generation}/{self.generations - 1}); "
                    f"{duration(elapsed)} elapsed")
        left = self.to_compute()
        if left == 0:
            return position
        pace = elapsed / max(self.computed, 1)
        return (f"{position}; about {duration(left * pace)} left ({left} to compute at "
                f"{pace:.0f} s each so far)")


def duration(seconds: float) -> str:
    """3 s, 4 min 10 s, 2 h 05 min: as precise as an estimate deserves."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
