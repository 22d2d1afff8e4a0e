"""Collapse summaries on hand-computed curves, and the bootstrap on known cases."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from harness.analysis.stats import (
    Interval,
    collapse_summary,
    diversity_retention,
    first_gen_below_half,
    group_stats,
    paired_auc_difference,
    pass1_auc,
    pass1_slope,
)
from harness.errors import BadInput
from harness.runfiles.runs import ArmResult, parse_metrics

# ------------------------------------------------------------------ collapse summaries


def test_slope_of_a_straight_decline_is_its_step() -> None:
    assert pass1_slope([0.5, 0.4, 0.3]) == pytest.approx(-0.1)


def test_slope_uses_generation_numbers_not_positions() -> None:
    assert pass1_slope([0.5, 0.4, 0.3], generations=[0, 2, 4]) == pytest.approx(-0.05)


def test_slope_is_least_squares_on_a_noisy_curve() -> None:
    # x = 0..3, y = [0.5, 0.5, 0.3, 0.3]: sum((x - 1.5)(y - 0.4)) / sum((x - 1.5)^2) = -0.4 / 5
    assert pass1_slope([0.5, 0.5, 0.3, 0.3]) == pytest.approx(-0.08)


def test_slope_needs_two_generations() -> None:
    assert pass1_slope([0.5]) is None


def test_auc_is_the_trapezoid_mean() -> None:
    assert pass1_auc([0.5, 0.4, 0.3]) == pytest.approx((0.45 + 0.35) / 2)
    assert pass1_auc([0.2, 0.2, 0.2, 0.2]) == pytest.approx(0.2)
    assert pass1_auc([0.0, 1.0]) == pytest.approx(0.5)
    assert pass1_auc([0.7]) == pytest.approx(0.7)  # generation 0 only


def test_first_generation_below_half() -> None:
    assert first_gen_below_half([0.5, 0.3, 0.2, 0.1]) == 2
    assert first_gen_below_half([0.5, 0.1, 0.4]) == 1
    assert first_gen_below_half([0.5, 0.25, 0.3]) is None  # exactly half is not below
    assert first_gen_below_half([0.0, 0.0]) is None
    assert first_gen_below_half([0.4, 0.3, 0.1], generations=[0, 5, 10]) == 10


def test_diversity_retention() -> None:
    assert diversity_retention([0.4, 0.3, 0.2]) == pytest.approx(0.5)
    assert diversity_retention([0.0, 0.2]) is None


def test_collapse_summary_bundles_all_four() -> None:
    summary = collapse_summary([0.5, 0.4, 0.2], [0.4, 0.3, 0.1])
    assert summary.to_dict() == {
        "pass1_slope": pytest.approx(-0.15), "pass1_auc": pytest.approx(0.375),
        "first_gen_below_half": 2, "diversity_retention": pytest.approx(0.25)}


def test_curve_length_mismatch_is_bad_input() -> None:
    with pytest.raises(BadInput, match="one value per generation"):
        pass1_slope([0.5, 0.4], generations=[0, 1, 2])


# ------------------------------------------------------------------------ bootstrap


def _arm(seed: int, gens: list[dict[str, Any]], arm_filter: str = "tests") -> ArmResult:
    """An arm from per-generation {"pass@1": .., "diversity": .., "per_task": ..} dicts."""
    metrics = []
    for g, spec in enumerate(gens):
        raw = {"generation": g, "pass_at_k": {"pass@1": spec["pass@1"]},
               "diversity": {"diversity": spec.get("diversity", 0.3)},
               "perplexity": spec.get("perplexity"),
               "per_task": {t: {"n": n, "c": c} for t, (n, c) in spec.get("per_task", {}).items()}}
        if "pass@2" in spec:
            raw["pass_at_k"]["pass@2"] = spec["pass@2"]
        metrics.append(parse_metrics(raw, f"gen {g}"))
    values = (("filter", arm_filter), ("regime", "replace"), ("real_fraction", 0.0),
              ("seed", seed), ("restart", "merge"), ("train_temperature", 1.0))
    return ArmResult(f"f-{arm_filter}__s-{seed}", values, True, tuple(metrics))


def _from_counts(counts_per_gen: list[list[int]], n: int = 10, seed: int = 0) -> ArmResult:
    gens = []
    for counts in counts_per_gen:
        per_task = {f"t{i}": (n, c) for i, c in enumerate(counts)}
        gens.append({"pass@1": float(np.mean(counts)) / n, "per_task": per_task})
    return _arm(seed, gens)


def test_seed_only_bootstrap_of_two_seeds_is_hand_computable() -> None:
    # No per-problem counts: replicates average 2 draws from {0.4, 0.6} -> 0.4 / 0.5 / 0.6
    # with probability 1/4, 1/2, 1/4, so the 2.5th and 97.5th percentiles are 0.4 and 0.6.
    arms = [_arm(0, [{"pass@1": 0.4}, {"pass@1": 0.3}]),
            _arm(1, [{"pass@1": 0.6}, {"pass@1": 0.5}])]
    stats = group_stats(arms, n_boot=4000, seed=1)
    gen0 = stats.generations[0].pass_at_k[1]
    assert (gen0.mean, gen0.ci_low, gen0.ci_high) == pytest.approx((0.5, 0.4, 0.6))
    assert stats.seeds == [0, 1]
    assert stats.n_problems == 0


def test_one_seed_without_problems_has_no_interval() -> None:
    stats = group_stats([_arm(0, [{"pass@1": 0.4}, {"pass@1": 0.3}])], n_boot=100)
    iv = stats.generations[1].pass_at_k[1]
    assert iv.mean == pytest.approx(0.3)
    assert iv.ci_low is None and iv.ci_high is None  # nothing to resample: no fake zero width
    assert stats.collapse["pass1_slope"].mean == pytest.approx(-0.1)
    assert stats.collapse["pass1_slope"].ci_low is None


def test_identical_problems_give_a_zero_width_problem_interval() -> None:
    # Every problem 5/10: every resample of problems has pass@1 = 0.5 exactly.
    arm = _from_counts([[5] * 8, [5] * 8])
    iv = group_stats([arm], n_boot=200).generations[0].pass_at_k[1]
    assert (iv.mean, iv.ci_low, iv.ci_high) == pytest.approx((0.5, 0.5, 0.5))


def test_pass_at_k_is_recomputed_per_problem_from_counts() -> None:
    # n=2, c=1 for every problem: pass@2 = 1 - C(1,2)/C(2,2) = 1 in every replicate,
    # so the interval pins the estimator being applied per problem, not to the mean.
    gens = [{"pass@1": 0.5, "pass@2": 1.0, "per_task": {f"t{i}": (2, 1) for i in range(6)}}]
    iv = group_stats([_arm(0, gens)], n_boot=200).generations[0].pass_at_k[2]
    assert (iv.mean, iv.ci_low, iv.ci_high) == pytest.approx((1.0, 1.0, 1.0))


def test_problem_bootstrap_width_matches_the_standard_error() -> None:
    # 200 problems with pass rates spread over [0, 1]: the percentile interval of the
    # mean must be about +-1.96 * sd / sqrt(P) (central limit theorem).
    rng = np.random.default_rng(7)
    counts = [int(c) for c in rng.integers(0, 11, size=200)]
    stats = group_stats([_from_counts([counts])], n_boot=4000, seed=3)
    iv = stats.generations[0].pass_at_k[1]
    values = np.asarray(counts) / 10
    half_width = 1.96 * values.std() / math.sqrt(len(values))
    assert iv.ci_low < iv.mean < iv.ci_high
    assert (iv.ci_high - iv.ci_low) / 2 == pytest.approx(half_width, rel=0.12)
    assert stats.n_problems == 200


def test_problems_are_resampled_paired_across_generations() -> None:
    # Every problem loses exactly 2 of 10 passes per generation: whatever problems a
    # replicate draws, its slope is -0.2. Unpaired draws would smear the slope.
    base = [4, 5, 7, 9, 10, 8, 6, 4]
    arm = _from_counts([base, [c - 2 for c in base], [c - 4 for c in base]])
    slope = group_stats([arm], n_boot=500).collapse["pass1_slope"]
    assert (slope.mean, slope.ci_low, slope.ci_high) == pytest.approx((-0.2, -0.2, -0.2))


def test_intervals_contain_the_mean_and_are_reproducible() -> None:
    rng = np.random.default_rng(0)
    arms = [_from_counts([[int(c) for c in rng.integers(0, 11, 30)] for _ in range(4)], seed=s)
            for s in range(3)]
    first = group_stats(arms, n_boot=500, seed=11)
    again = group_stats(list(reversed(arms)), n_boot=500, seed=11)
    other = group_stats(arms, n_boot=500, seed=12)
    assert first == again  # same seed (and order-independent): identical intervals
    assert first.collapse["pass1_auc"] != other.collapse["pass1_auc"]
    for gen in first.generations:
        iv = gen.pass_at_k[1]
        assert iv.ci_low <= iv.mean <= iv.ci_high
    for name in ("pass1_slope", "pass1_auc"):
        iv = first.collapse[name]
        assert iv.ci_low <= iv.mean <= iv.ci_high


def test_slope_and_auc_means_are_the_mean_of_the_seeds() -> None:
    arms = [_arm(0, [{"pass@1": 0.5}, {"pass@1": 0.4}, {"pass@1": 0.3}]),
            _arm(1, [{"pass@1": 0.6}, {"pass@1": 0.6}, {"pass@1": 0.3}])]
    stats = group_stats(arms, n_boot=100)
    per_seed = stats.per_seed_collapse
    assert stats.collapse["pass1_slope"].mean == pytest.approx(
        (per_seed[0].pass1_slope + per_seed[1].pass1_slope) / 2)
    assert stats.collapse["pass1_auc"].mean == pytest.approx(
        (per_seed[0].pass1_auc + per_seed[1].pass1_auc) / 2)


def test_first_gen_below_half_interval_is_censored() -> None:
    # Seed 0 collapses at generation 2, seed 1 never: the seed-mean curve [0.5, 0.4, 0.225]
    # is below 0.25 at generation 2; replicates drawing seed 1 twice never fall (null bound).
    arms = [_arm(0, [{"pass@1": 0.5}, {"pass@1": 0.4}, {"pass@1": 0.05}]),
            _arm(1, [{"pass@1": 0.5}, {"pass@1": 0.4}, {"pass@1": 0.4}])]
    iv = group_stats(arms, n_boot=2000, seed=0).collapse["first_gen_below_half"]
    assert iv.mean == 2
    assert iv.ci_low == 2
    assert iv.ci_high is None


def test_only_generations_every_seed_finished_are_used() -> None:
    arms = [_arm(0, [{"pass@1": 0.5}, {"pass@1": 0.4}, {"pass@1": 0.3}]),
            _arm(1, [{"pass@1": 0.5}, {"pass@1": 0.2}])]
    stats = group_stats(arms, n_boot=50)
    assert [g.generation for g in stats.generations] == [0, 1]
    assert stats.generations[1].pass_at_k[1].mean == pytest.approx(0.3)


def test_empty_group_is_bad_input() -> None:
    with pytest.raises(BadInput):
        group_stats([])


# ------------------------------------------------------------ paired group difference


def test_paired_difference_cancels_the_shared_problem_noise() -> None:
    # B is A with one more solved sample on every problem: the paired difference is
    # the same in every replicate, although each group's own interval is wide.
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 10, size=(3, 30))
    a = [_from_counts(counts.tolist(), seed=0)]
    b = [_from_counts(np.minimum(counts + 1, 10).tolist(), seed=0)]
    diff = paired_auc_difference(b, a, n_boot=400)
    assert diff.mean is not None and diff.mean > 0
    assert diff.ci_low is not None and diff.ci_low > 0
    own = group_stats(a, n_boot=400).collapse["pass1_auc"]
    assert own.ci_low is not None and own.ci_high is not None
    assert diff.ci_high - diff.ci_low < (own.ci_high - own.ci_low) / 3  # type: ignore[operator]


def test_paired_difference_of_a_group_with_itself_is_exactly_zero() -> None:
    arms = [_from_counts([[3, 5, 7], [2, 6, 6]], seed=s) for s in (0, 1)]
    assert paired_auc_difference(arms, arms, n_boot=100) == Interval(0.0, 0.0, 0.0)
    assert paired_auc_difference(arms, [_from_counts([[1, 1, 1]], seed=9)]).mean is None


def test_group_stats_and_the_headline_share_one_draw_with_todays_numbers(
        tmp_path: Any) -> None:
    """Issue 24: headline re-drew the bootstrap "exactly as group_stats does" with a copy
    of its code. Both now take `Replicates.draw`; the seeded numbers are those of
    before the change (pinned here from the copy's output, 2026-12-03), and the
    headline's gens_to_50 is group_stats' first_gen_below_half."""
    from harness.analysis.headline import headline
    from harness.analysis.stats import Replicates, group_stats
    from harness.runfiles.runs import load_run
    from tests.run_fixtures import RunSpec, write_run

    run = load_run(write_run(tmp_path, RunSpec(run_id="r-a")))
    (none,) = [arms for key, arms in run.arm_groups().items() if key.filter == "none"]
    stats = group_stats(none, n_boot=200, seed=0)
    head = headline(none, n_boot=200, seed=0)
    auc = stats.collapse["pass1_auc"]
    assert (auc.mean, auc.ci_low, auc.ci_high) == pytest.approx(
        (0.3189814814814815, 0.2268402777777778, 0.4144560185185185), abs=1e-12)
    rel = head.values["pass1_auc_rel"]
    assert rel is not None and (rel.mean, rel.ci_low, rel.ci_high) == pytest.approx(
        (0.6794871794871796, 0.5837814031862747, 0.7912287591032415), abs=1e-12)
    p1 = stats.generations[2].pass_at_k[1]
    assert (p1.ci_low, p1.ci_high) == pytest.approx((0.15819444444444447, 0.36395833333333333),
                                                    abs=1e-12)
    assert head.values["gens_to_50"] == stats.collapse["first_gen_below_half"]
    draw = Replicates.draw(none, 200, 0)
    assert draw.seed_counts.shape == (200, 3) and draw.problem_weights is not None


def test_the_paired_difference_and_the_seed_bootstrap_take_the_one_draw(tmp_path: Any) -> None:
    """Issue 24: one replicate draw (`draw_replicates`) for group_stats, the headline,
    the paired AUC difference and the collapse questions' SeedBootstrap. The paired
    difference keeps its numbers of before the change (pinned 2026-12-07 from the
    code that drew its own); SeedBootstrap now resamples the very seeds group_stats
    does (it drew with `integers` before; at 2 and 3 seeds its bounds come out the
    same, at 5 they move by Monte Carlo noise)."""
    from harness.analysis.stats import Replicates, SeedBootstrap, draw_replicates
    from harness.runfiles.runs import load_run
    from tests.run_fixtures import RunSpec, write_run

    run = load_run(write_run(tmp_path, RunSpec(run_id="r-a")))
    groups = {key.filter: arms for key, arms in run.arm_groups().items()}
    diff = paired_auc_difference(groups["none"], groups["tests"], n_boot=200, seed=0)
    assert (diff.mean, diff.ci_low, diff.ci_high) == pytest.approx(
        (-0.20277777777777778, -0.2505092592592592, -0.14072916666666666), abs=1e-12)
    draw = Replicates.draw(groups["none"], 200, 0)
    seeds_only = SeedBootstrap(200, 0).replicates(draw.n_seed)
    counts = np.stack([np.bincount(row, minlength=draw.n_seed) for row in seeds_only])
    assert (counts == draw.seed_counts).all()
    assert (draw_replicates(draw.n_seed, len(draw.tasks), 200, 0)[1]
            == draw.problem_weights).all()
