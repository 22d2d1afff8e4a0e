"""Each verification filter on small hand-made candidates, plus precision/recall;
human candidates in the pool, and the AI-text detector filter on attached scores.

Pure Python (numpy, no torch), marked `text`: runs on every supported Python, with
property tests over hostile model text (tests/hostile_text.py).
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import BadInput
from harness.experiment.filters import Candidate, apply_filter, attach_detector_scores, parse_filter
from sandbox.executor import ExecResult
from tasks.model_text import parse_python
from tests.hostile_text import NAMED, PROPERTY, hostile_text

pytestmark = pytest.mark.text


def cand(task: str, completion: str, status: str = "passed",
         verdicts: tuple[bool, ...] | None = None, logprob: float = -1.0,
         provenance: str = "self", ai_score: float = math.nan,
         ai_threshold: float = math.nan) -> Candidate:
    return Candidate(task, "def f(x):\n", completion,
                     ExecResult(request_id="r", status=status, assert_verdicts=verdicts),  # type: ignore[arg-type]
                     logprob, provenance, ai_score, ai_threshold)


CANDS = [
    cand("a", "    return x\n", "passed", (True, True, True, True), -0.1),
    cand("a", "    return x\n", "passed", (True, True, True, True), -0.1),
    cand("a", "    return x +\n", "error", (False, False, False, False), -2.0),
    cand("b", "    return x * 2\n", "failed", (True, True, False, False), -0.5),
    cand("b", "    return 0\n", "failed", (True, False, False, False), -3.0),
]
RNG = np.random.default_rng(0)


def keep(spec: str, cands: list[Candidate] = CANDS, seed: int = 0) -> list[bool]:
    return apply_filter(parse_filter(spec), cands, np.random.default_rng(seed)).keep


def test_none_keeps_everything() -> None:
    assert keep("none") == [True] * 5


def test_syntax_drops_unparsable_only() -> None:
    assert keep("syntax") == [True, True, False, True, True]


def test_tests_keeps_passing_only() -> None:
    assert keep("tests") == [True, True, False, False, False]


def test_partial_threshold_on_assert_fraction() -> None:
    assert keep("partial:0.5") == [True, True, False, True, False]
    assert keep("partial:0.25") == [True, True, False, True, True]
    assert keep("partial:1.0") == keep("tests")


def test_partial_without_asserts_falls_back_to_full_verdict() -> None:
    cands = [cand("a", "x", "passed", None), cand("a", "y", "failed", None)]
    assert keep("partial:0.5", cands) == [True, False]


def test_noisy_zero_is_tests_and_one_is_its_negation() -> None:
    assert keep("noisy:0") == keep("tests")
    assert keep("noisy:1") == [not k for k in keep("tests")]


def test_noisy_is_seeded_and_flips_about_p() -> None:
    many = [cand("a", str(i), "passed") for i in range(2000)]
    first, again = keep("noisy:0.3", many, seed=7), keep("noisy:0.3", many, seed=7)
    assert first == again
    flipped = sum(not k for k in first) / len(many)
    assert 0.25 < flipped < 0.35
    assert keep("noisy:0.3", many, seed=8) != first


def test_perplexity_keeps_most_confident_fraction() -> None:
    assert keep("perplexity:0.4") == [True, True, False, False, False]
    assert keep("perplexity:0.6") == [True, True, False, True, False]


def test_dedup_composes_and_drops_exact_duplicates_per_task() -> None:
    assert keep("tests+dedup") == [True, False, False, False, False]
    assert keep("dedup") == [True, False, True, True, True]


def test_precision_recall_against_full_tests() -> None:
    out = apply_filter(parse_filter("partial:0.5"), CANDS, RNG)
    assert out.acceptance_rate == pytest.approx(3 / 5)
    assert out.precision == pytest.approx(2 / 3)
    assert out.recall == pytest.approx(1.0)
    perfect = apply_filter(parse_filter("tests"), CANDS, RNG)
    assert (perfect.precision, perfect.recall) == (1.0, 1.0)
    assert perfect.to_json("tests")["n_kept"] == 2


def test_precision_undefined_when_nothing_kept() -> None:
    out = apply_filter(parse_filter("tests"), [cand("a", "x", "failed")], RNG)
    assert out.precision is None and out.recall is None and out.acceptance_rate == 0.0


@pytest.mark.parametrize("spec", ["bogus", "partial", "partial:x", "noisy:1.5",
                                  "tests+other", "perplexity:-0.1", "detect", "detect:0.9",
                                  "detect:loglik", "detect:loglik:0", "detect:loglik:1",
                                  "detect:ratio:1.5", "detect:bogus:0.9", "detect:loglik:x",
                                  "detect:loglik:nan", "detect:loglik:0.9+other"])
def test_bad_filter_specs_are_bad_input(spec: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_filter(spec)
    assert "\n" not in str(err.value)


# -- human candidates and the AI-text detector filter ----------------------------------------


def test_detect_specs_parse() -> None:
    spec = parse_filter("detect:loglik:0.9")
    assert (spec.name, spec.detector, spec.param, spec.dedup) == ("detect", "loglik", 0.9, False)
    spec = parse_filter(" detect:ratio:0.25+dedup ")
    assert (spec.text, spec.detector, spec.param, spec.dedup) == (
        "detect:ratio:0.25+dedup", "ratio", 0.25, True)
    assert parse_filter("perplexity:0.5").detector is None
    assert Candidate("a", "p", "c", CANDS[0].result, -1.0).provenance == "self"
    assert math.isnan(Candidate("a", "p", "c", CANDS[0].result, -1.0).ai_score)


def test_existing_filters_judge_human_candidates_alike() -> None:
    humans = [dataclasses.replace(c, provenance="human") for c in CANDS]
    for spec in SPECS:
        assert keep(spec, humans) == keep(spec, CANDS), spec
    passing_ref = cand("a", "    return x\n", "passed", provenance="human")
    assert keep("tests", [passing_ref]) == [True]
    assert apply_filter(parse_filter("tests"), humans, RNG).detection is None


def test_detect_keeps_scores_at_or_below_the_threshold() -> None:
    cands = [cand("a", "1", provenance="self", ai_score=-0.2, ai_threshold=-1.0),
             cand("a", "2", provenance="human", ai_score=-3.0, ai_threshold=-1.0),
             cand("a", "3", provenance="human", ai_score=-1.0, ai_threshold=-1.0),  # equal: kept
             cand("a", "4", provenance="self", ai_score=-1.5, ai_threshold=-1.0),  # missed AI
             cand("a", "5", provenance="human", ai_score=-0.5, ai_threshold=-1.0),  # lost human
             cand("a", "6", provenance="self", ai_score=math.nan, ai_threshold=-1.0)]
    out = apply_filter(parse_filter("detect:loglik:0.9"), cands, RNG)
    assert out.keep == [False, True, True, True, False, False]
    report = out.detection
    assert report == {"auroc": pytest.approx(7 / 9), "precision": 2 / 3, "recall": 2 / 3,
                      "human_kept": 2 / 3, "n_ai": 3, "n_human": 3, "n_flagged": 3,
                      "n_nan_scores": 1, "threshold": -1.0}
    json.dumps(report, allow_nan=False)
    assert "detection" not in out.to_json("detect:loglik:0.9")  # the loop records it once
    # the quantile and the kind only matter when scores are attached
    assert keep("detect:ratio:0.1", cands) == out.keep


def test_detect_drops_everything_without_a_usable_threshold() -> None:
    unscored = [cand("a", str(i), provenance=p) for i, p in enumerate(["self", "human"])]
    assert keep("detect:loglik:0.9", unscored) == [False, False]
    nan_threshold = [cand("a", "x", ai_score=-5.0, provenance="human")]
    out = apply_filter(parse_filter("detect:loglik:0.9"), nan_threshold, RNG)
    assert out.keep == [False] and out.detection is not None
    assert out.detection["threshold"] is None and out.detection["auroc"] is None


def test_detect_composes_with_dedup() -> None:
    cands = [cand("a", "same", ai_score=-2.0, ai_threshold=-1.0),
             cand("a", "same", ai_score=-2.0, ai_threshold=-1.0, provenance="human")]
    assert keep("detect:loglik:0.5+dedup", cands) == [True, False]


def test_attach_detector_scores_is_a_no_op_for_other_filters() -> None:
    out = attach_detector_scores(parse_filter("tests+dedup"), CANDS, None, None, None, [])
    assert out == CANDS and out is not CANDS


# -- any text a model writes (issue 9) -------------------------------------------------

SPECS = ["none", "syntax", "tests", "partial:0.5", "noisy:0.3", "perplexity:0.5",
         "syntax+dedup", "dedup", "perplexity:0.3+dedup", "detect:loglik:0.9",
         "detect:ratio:0.5+dedup"]
_any_float = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(math.nan))
_candidate = st.builds(
    cand, st.sampled_from(["a", "b"]), hostile_text,
    st.sampled_from(["passed", "failed", "error", "timeout"]),
    st.one_of(st.none(), st.lists(st.booleans(), min_size=1, max_size=4).map(tuple)),
    _any_float, st.sampled_from(["self", "human"]), _any_float, _any_float)


@settings(PROPERTY, max_examples=120)  # each example runs all eleven filters
@given(st.lists(_candidate, max_size=8), st.integers(0, 2**32 - 1))
def test_every_filter_answers_for_any_candidates(cands: list[Candidate], seed: int) -> None:
    for spec in SPECS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = apply_filter(parse_filter(spec), cands, np.random.default_rng(seed))
        assert not caught, (spec, [str(w.message) for w in caught])
        assert len(out.keep) == len(cands) and all(isinstance(k, bool) for k in out.keep)
        for value in (out.precision, out.recall):
            assert value is None or 0.0 <= value <= 1.0
        again = apply_filter(parse_filter(spec), cands, np.random.default_rng(seed))
        assert again.keep == out.keep, spec  # deterministic, NaN confidences included
    syntax = apply_filter(parse_filter("syntax"), cands, np.random.default_rng(0)).keep
    assert syntax == [parse_python(c.prompt + c.completion) is not None for c in cands]
    detect = apply_filter(parse_filter("detect:loglik:0.9"), cands, np.random.default_rng(0))
    assert detect.keep == [c.ai_score <= c.ai_threshold for c in cands]  # NaN: dropped
    assert detect.detection is not None
    json.dumps(detect.detection, allow_nan=False)


def test_syntax_rejects_what_python_cannot_parse() -> None:
    cands = [cand("a", NAMED[name]) for name in
             ("NUL in a body", "5000 nested brackets", "lone surrogate", "BOM first")]
    cands.append(cand("a", "    return x\n"))
    assert keep("syntax", cands) == [False, False, False, False, True]


def test_perplexity_ranks_nan_last() -> None:
    """NaN counts as -inf; ties go to the earlier candidate."""
    cands = [cand("a", "1", logprob=math.nan), cand("a", "2", logprob=-5.0),
             cand("a", "3", logprob=-math.inf), cand("a", "4", logprob=-0.5)]
    assert keep("perplexity:0.5", cands) == [False, True, False, True]
    assert keep("perplexity:0.75", cands) == [True, True, False, True]
