"""Data regimes: how each generation's training set is assembled.

The model-collapse literature separates *replacing* the data with the newest
synthetic generation (which collapses) from *accumulating* it alongside earlier
data (which tends not to). Three regimes, one registry:

* replace: only this generation's kept completions.
* accumulate: every generation's kept completions so far.
* accumulate-subsample: a fixed-size uniform sample of that union, so each
  generation costs the same compute as under `replace`.

`mix_real` then adds human reference solutions so they make up a fraction F of the
final set: with S synthetic examples, R = round(F * S / (1 - F)) real ones are drawn
(without replacement, seeded) from the train split; F = 1 trains on `size` real
examples only (the all-human control).

With a fixed training-set size N (`training_set_size`, set by `--synthetic-share`),
`mix_fixed` instead draws n = `synthetic_count(F, N)` self-generated and N - n
human examples, so every generation and every arm trains on the same amount of
data and only the *share* of AI-written code varies: the dose of the
dose-response question (docs/collapse.md). n is round((1 - F) N), but never 0 for
a share above 0 (nor N for a share below 1): a low dose such as 0.01 of N = 40
would otherwise round to no synthetic example and silently be the all-human
control. At small N the share actually trained on is then above the nominal one;
`train_composition` in the metrics records the counts. When the filter kept fewer
than its share, all of them are used and the set is smaller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from harness.errors import BadInput
from harness.registry import Registry


@dataclass(frozen=True)
class Example:
    """One training example: the model learns `completion` given `prompt`."""

    task_id: str
    prompt: str
    completion: str
    source: str  # "self" (the model's own, kept by the filter) or "real" (human)
    generation: int

    def to_json(self) -> dict[str, object]:
        return asdict(self)


RegimeFn = Callable[[Sequence[Sequence[Example]], int, np.random.Generator], list[Example]]
REGIMES: Registry[RegimeFn] = Registry("regime")


@REGIMES.register("replace")
def replace(kept_by_generation: Sequence[Sequence[Example]], size: int,
            rng: np.random.Generator) -> list[Example]:
    """Only the newest generation's kept data."""
    return list(kept_by_generation[-1]) if kept_by_generation else []


@REGIMES.register("accumulate")
def accumulate(kept_by_generation: Sequence[Sequence[Example]], size: int,
               rng: np.random.Generator) -> list[Example]:
    """All generations' kept data, oldest first."""
    return [ex for gen in kept_by_generation for ex in gen]


@REGIMES.register("accumulate-subsample")
def accumulate_subsample(kept_by_generation: Sequence[Sequence[Example]], size: int,
                         rng: np.random.Generator) -> list[Example]:
    """A uniform sample (without replacement) of `size` examples from the union."""
    union = accumulate(kept_by_generation, size, rng)
    if len(union) <= size:
        return union
    chosen = np.sort(rng.choice(len(union), size=size, replace=False))
    return [union[i] for i in chosen]


def check_regime(name: str) -> None:
    REGIMES.get(name)


def check_real_fraction(fraction: float) -> None:
    if not 0.0 <= fraction <= 1.0:
        raise BadInput(f"real fraction must be in [0, 1], got {fraction}")


def mix_real(synthetic: Sequence[Example], real_pool: Sequence[Example], fraction: float,
             size: int, rng: np.random.Generator) -> list[Example]:
    """Add human examples so they are `fraction` of the result (see module docstring)."""
    check_real_fraction(fraction)
    if fraction == 0.0:
        return list(synthetic)
    if fraction == 1.0:
        n_real, synthetic = size, []
    else:
        n_real = round(fraction * len(synthetic) / (1.0 - fraction))
    n_real = min(n_real, len(real_pool))
    chosen = np.sort(rng.choice(len(real_pool), size=n_real, replace=False))
    return [*synthetic, *(real_pool[i] for i in chosen)]


def synthetic_count(fraction: float, size: int) -> int:
    """Self-generated examples in a fixed-size set of `size` at real fraction `fraction`:
    the nearest count (ties to even, as `round`), kept off 0 when the synthetic share
    is above 0 and off `size` when it is below 1 (module docstring). Set sizes below 2
    cannot hold both kinds: there the plain rounding stands."""
    check_real_fraction(fraction)
    n = round((1.0 - fraction) * size)
    if size >= 2 and 0.0 < fraction < 1.0:
        n = min(max(n, 1), size - 1)
    return n


def mix_fixed(synthetic: Sequence[Example], real_pool: Sequence[Example], fraction: float,
              size: int, rng: np.random.Generator) -> list[Example]:
    """`size` examples, a share 1 - `fraction` of them self-generated (module docstring)."""
    target = synthetic_count(fraction, size)
    n_self = min(target, len(synthetic))
    n_real = min(size - target, len(real_pool))
    self_idx = np.sort(rng.choice(len(synthetic), size=n_self, replace=False))
    real_idx = np.sort(rng.choice(len(real_pool), size=n_real, replace=False))
    return [*(synthetic[i] for i in self_idx), *(real_pool[i] for i in real_idx)]


def build_dataset(regime: str, kept_by_generation: Sequence[Sequence[Example]],
                  real_pool: Sequence[Example], real_fraction: float, size: int,
                  rng: np.random.Generator, fixed_size: int = 0) -> list[Example]:
    """The training set of the newest generation in `kept_by_generation`.

    fixed_size > 0: exactly that many examples at the real fraction (`mix_fixed`).
    """
    synthetic = REGIMES.get(regime)(kept_by_generation, size, rng)
    if fixed_size > 0:
        return mix_fixed(synthetic, real_pool, real_fraction, fixed_size, rng)
    return mix_real(synthetic, real_pool, real_fraction, size, rng)
