"""Diversity metrics on hand-computed cases (formulas in harness/metrics/diversity.py).

Pure Python, marked `text`: runs on every supported Python without torch, with
property tests over hostile model text (tests/hostile_text.py).
"""

from __future__ import annotations

import ast
import itertools
import math
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.metrics import diversity as dv
from harness.metrics.diversity import (
    KEYS,
    canonical_ast,
    code_tokens,
    dissimilarity,
    distinct_n,
    diversity_metrics,
    diversity_report,
    dump_tree,
    functional_diversity,
    levenshtein,
    mean_pairwise_dissimilarity,
    parse_sample,
    problem_metrics,
)
from tests.hostile_text import (
    NAMED,
    PROPERTY,
    hostile_text,
    no_warnings,
    with_named_examples,
)

pytestmark = pytest.mark.text


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
    start = time.process_time()  # CPU time: other processes on a shared machine don't count
    diversity_report(groups, passed)
    elapsed = time.process_time() - start
    assert elapsed < 3.0, f"diversity on 200 x 10 samples took {elapsed:.2f}s of CPU"


# -- any text a model writes (issue 9) -------------------------------------------------


@PROPERTY
@given(hostile_text)
@with_named_examples
def test_code_tokens_for_any_text(code: str) -> None:
    toks = no_warnings(code_tokens.__wrapped__, code)  # uncached: every example really runs
    assert isinstance(toks, tuple) and all(isinstance(t, str) and t for t in toks)
    if code.strip() and not code.lstrip().startswith("#"):
        assert toks or not any(c.isalnum() for c in code)


@PROPERTY
@given(hostile_text)
@with_named_examples
def test_canonical_ast_for_any_text(code: str) -> None:
    canon = no_warnings(canonical_ast.__wrapped__, code)
    assert (canon is None) == (parse_sample(code) is None)
    assert canon is None or isinstance(canon, str)


@settings(PROPERTY, max_examples=100)  # each example runs every metric on up to 4 samples
@given(st.lists(hostile_text, min_size=1, max_size=4),
       st.lists(st.one_of(st.none(), st.lists(st.booleans(), max_size=4).map(tuple)),
                min_size=4, max_size=4))
def test_problem_metrics_for_any_samples(samples: list[str], sigs: list) -> None:  # type: ignore[type-arg]
    m = no_warnings(problem_metrics, samples, sigs[:len(samples)], "p")
    assert set(m) == set(KEYS)
    for key, value in m.items():
        assert value is None or (0.0 <= value <= 1.0 and not math.isnan(value)), (key, value)
    assert m["unparsable_fraction"] is not None
    passed = [i < 2 for i in range(len(samples))]
    report = diversity_report({"p": samples}, {"p": passed}, all_per_problem={"p": m})
    assert set(report["passing"]) == set(KEYS)


@PROPERTY
@given(hostile_text, hostile_text)
def test_dissimilarity_of_any_two_texts(a: str, b: str) -> None:
    ta, tb = code_tokens(a), code_tokens(b)
    d = dissimilarity(ta, tb)
    assert 0.0 <= d <= 1.0
    assert d == dissimilarity(tb, ta)
    assert (d == 0.0) == (ta[:dv.MAX_EDIT_TOKENS] == tb[:dv.MAX_EDIT_TOKENS])


@PROPERTY
@given(st.lists(st.one_of(st.none(), st.lists(st.booleans(), max_size=6).map(tuple)),
                max_size=12))
def test_functional_diversity_for_any_signatures(sigs: list) -> None:  # type: ignore[type-arg]
    value = functional_diversity(sigs)
    if not sigs or all(s is None for s in sigs):
        assert value is None
    else:
        assert value is not None and 0.0 < value <= 1.0


# Small programs, some of which have equal trees (spacing, parentheses, comments).
_PROGRAMS = ["x = 1", "x=1", "x = (1)", "x = 1  # c", "y = 1", "x = 2", "x = 1.0", "x = True",
             "x = 'a'", "x = \"a\"", "x = b'a'", "x = [1]", "x = [ 1 ]", "x = (1,)", "x = 1,",
             "f(x)", "f( x )", "f(x, )", "x = -1", "x = - 1", "x = 0x1", "x = 0o1",
             "x = a + b", "x = (a) + (b)", "x = a + b + c", "x = a + (b + c)", "x = None", "pass"]


@PROPERTY
@given(st.sampled_from(_PROGRAMS), st.sampled_from(_PROGRAMS))
def test_dump_tree_equality_is_ast_dump_equality(a: str, b: str) -> None:
    ta, tb = ast.parse(a), ast.parse(b)
    assert (dump_tree(ta) == dump_tree(tb)) == (ast.dump(ta) == ast.dump(tb))


def test_canonical_ast_of_trees_deeper_than_the_recursion_limit() -> None:
    """ast.dump recurses and fails on these; the canonical form does not."""
    a = NAMED["1200 chained +"]
    b = "y = " + " + ".join(["a"] * 1200)
    assert canonical_ast(a) is not None and canonical_ast(a) == canonical_ast(b)
    assert canonical_ast(a) != canonical_ast("x = " + " + ".join(["a"] * 1199))


def test_carriage_returns_do_not_hide_tokens() -> None:
    """3.11's tokenize dropped a line after a lone "\\r"; 3.12's glued "\\r" to a name."""
    assert code_tokens("\rdef f(x):\n") == ("def", "f", "(", "x", ")", ":")
    assert code_tokens("    y = 1\r\n    return y\r\n") == code_tokens("    y = 1\n    return y\n")
    assert code_tokens("x = 1\ry = 'é'\n") == ("x", "=", "1", "y", "=", "'é'")


def test_huge_hex_literal_has_a_canonical_form() -> None:
    """ast.dump raised ValueError (int -> str digit limit) on a 5,000-digit hex literal."""
    code = NAMED["hex literal of 5000 digits"]
    assert canonical_ast(code) is not None
    assert canonical_ast(code) != canonical_ast("x = 0x" + "f" * 4999)


@pytest.mark.parametrize("name", ["5000 nested brackets", "NUL in a body", "lone surrogate",
                                  "U+FFFD from invalid UTF-8"])
def test_unparsable_hostile_samples_count_as_unparsable(name: str) -> None:
    m = diversity_metrics({"p": [NAMED[name], "    return x\n"]})
    assert m["unparsable_fraction"] == 0.5
    assert m["mean_pairwise_dissimilarity"] is not None


def test_edit_distance_is_capped_for_enormous_samples() -> None:
    long_a = "    x = 1\n" * 10_000
    long_b = "    y = 1\n" + "    x = 1\n" * 9_999
    start = time.process_time()
    d = mean_pairwise_dissimilarity([code_tokens(long_a), code_tokens(long_b)])
    assert d is not None and 0 < d < 0.01
    assert time.process_time() - start < 5.0
