"""Where the dose-response starts (harness/analysis/dose.py), on points whose knee is
known: exact hockey sticks, the same with seed noise, flat and rising series."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.analysis.dose import dose_onset, fit_knee, onset_text
from harness.analysis.stats import CI_LEVEL, SeedBootstrap, draw_replicates

SHARES = [0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0]    # the poison-full doses


def hockey(share: float, knee: float, level: float = 0.5, drop: float = 0.2) -> float:
    """Flat at `level` up to `knee`, then `drop` lower per tenfold share."""
    if share <= knee:
        return level
    return level - drop * (math.log10(share) - math.log10(knee))


def seeds(knee: float | None, noise: float, n: int = 5, shares: list[float] = SHARES,
          seed: int = 1) -> dict[float, dict[int, float]]:
    rng = np.random.default_rng(seed)
    return {s: {i: (0.5 if knee is None else hockey(s, knee)) + rng.normal(0, noise)
                for i in range(n)} for s in shares}


@pytest.mark.parametrize("knee", [0.01, 0.05, 0.1, 0.5])
def test_an_exact_knee_at_a_tested_share_is_found_exactly(knee: float) -> None:
    fit = fit_knee(SHARES, [hockey(s, knee) for s in SHARES])
    assert fit is not None and fit.share == pytest.approx(knee)
    assert fit.level == pytest.approx(0.5) and fit.drop_per_decade == pytest.approx(0.2)
    assert not fit.from_lowest          # 0.01 itself is on the plateau with share 0


def test_a_knee_between_tested_shares_is_where_the_fall_meets_the_plateau() -> None:
    fit = fit_knee(SHARES, [hockey(s, 0.3) for s in SHARES])
    assert fit is not None and fit.share == pytest.approx(0.3, rel=0.03)   # the grid's step


def test_falling_already_at_the_lowest_share_is_at_or_below_it() -> None:
    fit = fit_knee(SHARES, [hockey(s, 0.005) for s in SHARES])     # below every dose > 0
    assert fit is not None and fit.from_lowest and fit.share == pytest.approx(0.005, rel=0.05)
    # without the all-human arm nothing is known below the lowest share
    no_zero = fit_knee(SHARES[1:], [hockey(s, 0.01) for s in SHARES[1:]])
    assert no_zero is not None and no_zero.share == 0.01 and no_zero.from_lowest


def test_flat_or_rising_is_no_onset_and_too_few_shares_no_fit() -> None:
    assert fit_knee(SHARES, [0.5] * len(SHARES)).share is None          # type: ignore[union-attr]
    rising = fit_knee(SHARES, [0.4 + 0.05 * math.log10(s) if s else 0.3 for s in SHARES])
    assert rising is not None and rising.share is None and rising.drop_per_decade == 0.0
    assert fit_knee([0.0, 1.0, 1.0], [0.5, 0.4, 0.4]) is None          # one share above 0
    assert fit_knee([0.5, 1.0], [0.5, 0.4]) is None


def test_seed_noise_gives_an_interval_around_the_knee_and_the_first_drop() -> None:
    result = dose_onset(seeds(0.1, noise=0.01), SeedBootstrap(500, 0))
    assert result is not None and result.n_seeds == 5 and result.reference == 0.0
    iv = result.onset
    assert iv.ci_low is not None and iv.ci_high is not None
    assert 0.05 < iv.ci_low <= 0.1 <= iv.ci_high < 0.25
    assert result.falls and result.first_drop == 0.25     # 0.08 below share 0's 0.5
    text = onset_text(result, "final pass@1 (generation 10)")
    assert text.startswith("Onset (hockey-stick fit on log10 share, 5 seeds x 7 shares): "
                           "final pass@1 (generation 10) is flat (0.50")
    assert "up to share 0.0944 [95% seed bootstrap 0.0" in text
    assert "The lowest share whose drop against share 0 (paired by seed) has its 95% " \
           "interval below 0 is 0.25: -0.08" in text


def test_noise_alone_is_not_called_an_onset() -> None:
    result = dose_onset(seeds(None, noise=0.01), SeedBootstrap(500, 0))
    assert result is not None and not result.falls
    text = onset_text(result)
    assert "final pass@1 does not fall beyond seed noise: at share 1 its drop against " \
           "share 0 (paired by seed) is" in text and "noise, not an onset" in text


def test_without_an_all_human_arm_the_lowest_share_is_the_reference() -> None:
    result = dose_onset(seeds(0.1, noise=0.01, shares=SHARES[1:]), SeedBootstrap(200, 0))
    assert result is not None and result.reference == 0.01 and 0.01 not in result.drops
    assert "the run has no share-0 arm, so the lowest share tested is the reference" in (
        onset_text(result))


def test_one_seed_has_a_fit_but_no_claim() -> None:
    result = dose_onset(seeds(0.1, noise=0.0, n=1), SeedBootstrap(200, 0))
    assert result is not None and result.onset.ci_low is None and result.knee.share == 0.1
    assert onset_text(result).endswith("one seed: no intervals, so no claim that it falls.")


def test_only_seeds_every_share_has_are_paired() -> None:
    by_share = seeds(0.1, noise=0.01, n=4)
    del by_share[0.5][3]
    result = dose_onset(by_share, SeedBootstrap(200, 0))
    assert result is not None and result.n_seeds == 3


def test_seed_bootstrap_interval_is_the_percentile_of_resampled_seed_means() -> None:
    """SeedBootstrap draws from `draw_replicates`, the one draw of the package: its
    replicate b holds the seeds that group_stats' replicate b holds for a group of the
    same size and bootstrap seed (the formula written out here)."""
    values = [0.41, 0.52, 0.47, 0.39, 0.55]
    boot = SeedBootstrap(300, 4)
    counts = np.random.default_rng(4).multinomial(5, np.full(5, 0.2), size=300)
    means = counts @ np.asarray(values) / 5
    tail = (1 - CI_LEVEL) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail], method="inverted_cdf")
    iv = boot.interval(values)
    assert (iv.mean, iv.ci_low, iv.ci_high) == (pytest.approx(np.mean(values)), lo, hi)
    draws = boot.replicates(5)
    assert (np.stack([np.bincount(row, minlength=5) for row in draws]) == counts).all()
    assert (draws == np.sort(draws, axis=1)).all()
    assert (draw_replicates(5, 0, 300, 4)[0] == counts).all()
