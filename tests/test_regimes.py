"""Data regimes and real-data mixing on small hand-made data."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import BadInput
from harness.experiment.regimes import Example, build_dataset, mix_fixed, mix_real, synthetic_count


def ex(gen: int, i: int, source: str = "self") -> Example:
    return Example(f"t{i}", "p", f"c{gen}-{i}", source, gen)


GENS = [[ex(1, i) for i in range(4)], [ex(2, i) for i in range(3)], [ex(3, i) for i in range(2)]]
REAL = [ex(0, i, "real") for i in range(100)]


def build(regime: str, fraction: float = 0.0, size: int = 5, seed: int = 0) -> list[Example]:
    return build_dataset(regime, GENS, REAL, fraction, size, np.random.default_rng(seed))


def test_replace_uses_only_newest_generation() -> None:
    assert build("replace") == GENS[-1]


def test_accumulate_uses_everything_so_far() -> None:
    assert build("accumulate") == [e for g in GENS for e in g]


def test_accumulate_subsample_has_fixed_size_from_union() -> None:
    out = build("accumulate-subsample", size=5)
    assert len(out) == 5 and len(set(out)) == 5
    assert set(out) <= {e for g in GENS for e in g}
    assert out == build("accumulate-subsample", size=5)  # seeded
    assert len(build("accumulate-subsample", size=50)) == 9  # union smaller than size


def test_real_fraction_makes_up_that_share() -> None:
    out = build("accumulate", fraction=0.5)
    assert sum(e.source == "real" for e in out) == 9 and len(out) == 18
    out = build("replace", fraction=0.5)  # 2 synthetic + 2 real
    assert [e.source for e in out] == ["self", "self", "real", "real"]


def test_real_fraction_one_is_all_human_of_given_size() -> None:
    out = mix_real(GENS[0], REAL, 1.0, 7, np.random.default_rng(0))
    assert len(out) == 7 and all(e.source == "real" for e in out)


def test_unknown_regime_and_bad_fraction_are_bad_input() -> None:
    with pytest.raises(BadInput, match="unknown regime"):
        build("forget")
    with pytest.raises(BadInput, match="real fraction"):
        build("replace", fraction=1.5)


@pytest.mark.parametrize(("share", "size", "expected"), [
    (0.01, 512, 5),     # the poison-full low dose: 5.12 -> 5 synthetic examples
    (0.05, 512, 26),    # 25.6 -> 26
    (0.01, 256, 3),     # 2.56 -> 3
    (0.01, 40, 1),      # 0.4 would round to none: kept at one
    (0.01, 50, 1),      # 0.5 rounds to even (0): kept at one
    (0.99, 40, 39),     # 39.6 would round to all: one human example stays
    (0.25, 512, 128),   # plain rounding everywhere else
    (1.0, 512, 512),    # share 1: all synthetic
    (0.0, 512, 0),      # share 0: the all-human control, no synthetic example
])
def test_a_share_above_zero_never_rounds_to_no_synthetic_example(
        share: float, size: int, expected: int) -> None:
    fraction = round(1.0 - share, 6)    # as --synthetic-share and the presets write it
    assert synthetic_count(fraction, size) == expected
    synth = [ex(1, i) for i in range(600)]
    real = [ex(0, i, "real") for i in range(600)]
    data = mix_fixed(synth, real, fraction, size, np.random.default_rng(0))
    assert len(data) == size and sum(e.source == "self" for e in data) == expected
