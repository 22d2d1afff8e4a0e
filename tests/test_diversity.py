"""Diversity metrics on hand-computed cases (formulas in harness/metrics/diversity.py)."""

from __future__ import annotations

import itertools
import random
import time

import pytest

from harness.metrics import diversity as dv
from harness.metrics.diversity import (
    KEYS,
    canonical_ast,
    code_tokens,
    dissimilarity,
    distinct_n,
    diversity_metrics,
    diversity_report,
    functional_diversity,
    levenshtein,
    mean_pairwise_dissimilarity,
)


def _dp_levenshtein(a: list[str], b: list[str]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def test_code_tokens_drop_layout_and_comments() -> None:
    assert code_tokens("    return x + 1  # note\n") == ("return", "x", "+", "1")
    assert code_tokens("    y = 'a b'\n    return y\n") == ("y", "=", "'a b'", "return", "y")


def test_code_tokens_fall_back_on_broken_code() -> None:
    assert code_tokens("    x = (\n") == ("x", "=", "(")
    assert code_tokens("  if x:\n    return 1\n return 2") == (
        "if", "x", ":", "return", "1", "return", "2")


def test_levenshtein_known_values() -> None:
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3
    assert levenshtein("abc", "abc") == 0
    assert levenshtein(("return", "x"), ("return", "y")) == 1


def test_levenshtein_matches_dynamic_program() -> None:
    rng = random.Random(3)
    for _ in range(500):
        a = [rng.choice("abcd") for _ in range(rng.randint(0, 90))]
        b = [rng.choice("abcd") for _ in range(rng.randint(0, 90))]
        assert levenshtein(a, b) == _dp_levenshtein(a, b)


def test_distinct_n_hand_computed() -> None:
    seqs = [("a", "b"), ("a", "c")]
    assert distinct_n(seqs, 1) == 3 / 4
    assert distinct_n(seqs, 2) == 1.0
    assert distinct_n(seqs, 3) is None
    assert distinct_n([("a", "a", "a")], 2) == 1 / 2


def test_dissimilarity_and_pairwise_mean() -> None:
    a, b = ("return", "x"), ("return", "y")
    assert dissimilarity(a, b) == 0.5
    assert dissimilarity((), ()) == 0.0
    # pairs: (a, a) = 0, (a, b) = 0.5 twice -> 1/3
    assert mean_pairwise_dissimilarity([a, a, b]) == pytest.approx(1 / 3)
    assert mean_pairwise_dissimilarity([a]) is None


def test_pairwise_cap_samples_reproducibly(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(0)
    seqs = [tuple(rng.choice("abc") for _ in range(8)) for _ in range(40)]
    exact = sum(dissimilarity(x, y) for x, y in itertools.combinations(seqs, 2)) / 780
    monkeypatch.setattr(dv, "MAX_PAIRS", 300)
    approx = mean_pairwise_dissimilarity(seqs, seed="p1")
    assert approx == mean_pairwise_dissimilarity(seqs, seed="p1")
    assert approx == pytest.approx(exact, abs=0.05)


def test_canonical_ast_renames_bound_names_and_drops_docstrings() -> None:
    a = '    """Doc."""\n    y = [v + 2 for v in x]  # c\n    return y\n'
    b = "    total = [w + 2 for w in x]\n    return total\n"
    c = "    return [v + 3 for v in x]\n"
    assert canonical_ast(a) == canonical_ast(b)
    assert canonical_ast(a) != canonical_ast(c)
    # free names (builtins, the prompt's parameters) are not renamed
    assert canonical_ast("    return sum(x)\n") != canonical_ast("    return len(x)\n")
    assert canonical_ast("    return x\n") != canonical_ast("    return y\n")
    # whole functions parse as modules
    assert canonical_ast("def f(a):\n    return a\n") == canonical_ast("def g(b):\n    return b\n")
    assert canonical_ast("    return (\n") is None


def test_functional_diversity() -> None:
    sigs = [(True, False), (True, False), (True, True), None]
    assert functional_diversity(sigs) == 3 / 4
    assert functional_diversity([None, None]) is None


def test_problem_metrics_hand_computed() -> None:
    samples = ["    y = x + 1\n    return y\n", "    z = x + 1\n    return z\n",
               "    return x + 1\n", "    return (\n"]
    sigs = [(True,), (True,), (False,), None]
    m = diversity_metrics({"p": samples}, {"p": sigs})
    assert set(m) == set(KEYS)
    assert m["unparsable_fraction"] == 1 / 4
    assert m["unique_ast_fraction"] == 2 / 3
    assert m["functional_diversity"] == 3 / 4
    toks = [code_tokens(s) for s in samples]
    # y = x + 1 return y | z = x + 1 return z | return x + 1 | return (
    assert m["distinct_1"] == len({t for s in toks for t in s}) / sum(len(s) for s in toks)
    expected = sum(dissimilarity(p, q) for p, q in itertools.combinations(toks, 2)) / 6
    assert m["mean_pairwise_dissimilarity"] == pytest.approx(expected)


def test_average_is_over_problems_where_defined() -> None:
    groups = {"one": ["    return 1\n"], "two": ["    return 1\n", "    return 2\n"]}
    m = diversity_metrics(groups)
    assert m["mean_pairwise_dissimilarity"] == 0.5      # only "two" has pairs
    assert m["distinct_1"] == pytest.approx((1.0 + 3 / 4) / 2)
    assert m["functional_diversity"] is None              # no verdicts anywhere
    assert diversity_metrics({})["distinct_1"] is None


def test_identical_samples_have_zero_diversity() -> None:
    m = diversity_metrics({"p": ["    return x * 2\n"] * 5}, {"p": [(True, True)] * 5})
    assert m["mean_pairwise_dissimilarity"] == 0.0
    assert m["unique_ast_fraction"] == 1 / 5
    assert m["functional_diversity"] == 1 / 5


def test_report_blocks_and_headline() -> None:
    groups = {"p": ["    return 1\n", "    return 2\n", "    return 3\n"],
              "q": ["    return 1\n", "    return 1\n"]}
    passed = {"p": [True, True, False], "q": [True, False]}
    rep = diversity_report(groups, passed)
    assert rep["diversity"] == rep["all"]["mean_pairwise_dissimilarity"]
    # passing: only "p" has >= 2 passing samples: "return 1" vs "return 2"
    assert rep["passing"]["mean_pairwise_dissimilarity"] == 0.5
    assert set(rep["all"]) == set(rep["passing"]) == set(KEYS)


def test_fast_enough_for_an_eval_of_200_problems() -> None:
    rng = random.Random(1)
    ops = ["+", "-", "*"]
    groups = {
        f"p{p}": [f"    y = [v {rng.choice(ops)} {rng.randint(1, 9)} for v in x]\n"
                  f"    y = [v for v in y if v > {rng.randint(0, 5)}]\n"
                  f"    return sorted(y)[:{rng.randint(1, 4)}]\n" for _ in range(10)]
        for p in range(200)}
    passed = {p: [i % 2 == 0 for i in range(10)] for p in groups}
    canonical_ast.cache_clear()
    code_tokens.cache_clear()
    start = time.perf_counter()
    diversity_report(groups, passed)
    elapsed = time.perf_counter() - start
    assert elapsed < 3.0, f"diversity on 200 x 10 samples took {elapsed:.2f}s"
