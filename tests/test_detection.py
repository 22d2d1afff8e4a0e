"""AI-text detection: specs, calibration, AUROC/ROC/report on hand-made scores, and on
a small real model: per-example completion log-probabilities (shared with
perplexity, which must not change), and a model's own completions scoring as AI.

The hand-made half is pure Python (marked `text`, no torch at import); the model
half imports torch inside its tests, so `pytest -m text` runs without it.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from typing import Any

import numpy as np
import pytest

from harness.errors import BadInput
from harness.experiment.detection import (
    DetectorSpec,
    auroc,
    calibrate_threshold,
    detection_report,
    flag_ai,
    parse_detector,
    roc_points,
)

text = pytest.mark.text

# -- specs ----------------------------------------------------------------------------------


@text
def test_parse_detector() -> None:
    assert parse_detector("loglik:0.9") == DetectorSpec("loglik", 0.9)
    assert parse_detector(" ratio:0.25 ").text == "ratio:0.25"


@text
@pytest.mark.parametrize("spec", ["", "loglik", "loglik:", "loglik:0", "loglik:1", "loglik:1.5",
                                  "loglik:-0.1", "loglik:nan", "loglik:x", "binoculars:1",
                                  "0.9", "ratio:0.5:0.5"])
def test_bad_detector_specs_are_one_line_bad_input(spec: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_detector(spec)
    assert "\n" not in str(err.value)


# -- calibration and verdicts ------------------------------------------------------------------


@text
def test_threshold_keeps_about_t_of_the_human_scores() -> None:
    human = np.arange(1.0, 101.0)  # 1..100
    for t in (0.05, 0.5, 0.9, 0.99):
        threshold = calibrate_threshold(human, t)
        assert threshold in human  # an observed score, no interpolation
        kept = np.mean(~np.asarray(flag_ai(human, threshold)))
        assert t <= kept < t + 1 / len(human) + 1e-12
    assert calibrate_threshold([3.0, 1.0, 2.0], 0.5) == 2.0
    assert calibrate_threshold([-math.inf, 0.0], 0.5) == -math.inf  # infinities stay usable


@text
def test_threshold_ignores_nan_and_refuses_nonsense() -> None:
    assert calibrate_threshold([math.nan, 1.0, math.nan, 2.0], 0.5) == 1.0
    assert math.isnan(calibrate_threshold([math.nan, math.nan], 0.5))
    for bad in (0.0, 1.0, -1.0, math.nan):
        with pytest.raises(BadInput):
            calibrate_threshold([1.0], bad)
    with pytest.raises(BadInput):
        calibrate_threshold([], 0.5)


@text
def test_flag_ai_is_above_threshold_or_nan() -> None:
    assert flag_ai([0.0, 1.0, 2.0, math.nan], 1.0) == [False, False, True, True]
    assert flag_ai([0.0, 1.0], math.nan) == [True, True]
    assert flag_ai([0.0, 1.0], [0.5, 1.5]) == [False, False]  # one threshold each
    assert flag_ai([], 0.0) == []


# -- AUROC, ROC, report -------------------------------------------------------------------------


def brute_auroc(scores: list[float], is_ai: list[bool]) -> float:
    """P(AI > human) + P(tie)/2 over all pairs, NaN as +inf above +inf."""
    def key(x: float) -> tuple[int, float]:
        return (1, 0.0) if math.isnan(x) else (0, x)

    ai = [key(s) for s, a in zip(scores, is_ai, strict=True) if a]
    human = [key(s) for s, a in zip(scores, is_ai, strict=True) if not a]
    total = sum(1.0 if a > h else 0.5 if a == h else 0.0
                for a, h in itertools.product(ai, human))
    return total / (len(ai) * len(human))


@text
def test_auroc_perfect_chance_inverted_and_ties() -> None:
    assert auroc([3, 4, 1, 2], [True, True, False, False]) == 1.0
    assert auroc([1, 2, 3, 4], [True, True, False, False]) == 0.0
    assert auroc([5, 5, 5, 5], [True, False, True, False]) == 0.5
    assert auroc([1, 2, 2, 0], [True, True, False, False]) == pytest.approx(0.625)
    assert auroc([math.nan, 0.0], [True, False]) == 1.0  # NaN ranks as most AI-like
    assert auroc([math.nan, math.inf], [True, False]) == 1.0
    assert auroc([1.0, 2.0], [True, True]) is None
    assert auroc([], []) is None
    with pytest.raises(ValueError):
        auroc([1.0], [True, False])


@text
def test_auroc_matches_the_pairwise_definition_on_random_tied_scores() -> None:
    rng = random.Random(0)
    for _ in range(50):
        n = rng.randint(2, 30)
        scores = [rng.choice([0.0, 1.0, 2.0, 3.0, math.nan, -math.inf]) for _ in range(n)]
        labels = [rng.random() < 0.5 for _ in range(n)]
        if all(labels) or not any(labels):
            continue
        assert auroc(scores, labels) == pytest.approx(brute_auroc(scores, labels))


@text
def test_roc_points_run_from_origin_to_corner_and_integrate_to_auroc() -> None:
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 6, size=200).astype(float)  # many ties
    labels = rng.random(200) < 0.4
    scores[labels] += 1.5
    points = roc_points(scores, labels, max_points=10_000)
    assert points[0] == (0.0, 0.0) and points[-1] == (1.0, 1.0)
    fpr, tpr = zip(*points, strict=True)
    assert list(fpr) == sorted(fpr) and list(tpr) == sorted(tpr)
    area = sum((f1 - f0) * (t0 + t1) / 2
               for (f0, t0), (f1, t1) in itertools.pairwise(points))
    assert area == pytest.approx(auroc(scores, labels))
    few = roc_points(scores, labels, max_points=5)
    assert len(few) <= 5 and few[0] == (0.0, 0.0) and few[-1] == (1.0, 1.0)
    assert roc_points([1, 2, 3, 4], [True, True, False, False]) == [
        (0.0, 0.0), (0.5, 0.0), (1.0, 0.0), (1.0, 0.5), (1.0, 1.0)]
    assert roc_points([3, 4, 1, 2], [True, True, False, False])[2] == (0.0, 1.0)
    assert roc_points([1.0], [True]) == []
    with pytest.raises(ValueError):
        roc_points([1.0], [True], max_points=1)


@text
def test_detection_report() -> None:
    scores = [0.9, 0.8, 0.2, 0.7, 0.1, math.nan]
    is_ai = [True, True, True, False, False, False]
    flagged = flag_ai(scores, 0.5)  # AI: 0.9, 0.8, 0.7 (human), NaN (human)
    report = detection_report(scores, is_ai, flagged, threshold=0.5)
    assert report == {
        "auroc": pytest.approx(brute_auroc(scores, is_ai)),
        "precision": 2 / 4, "recall": 2 / 3, "human_kept": 1 / 3,
        "n_ai": 3, "n_human": 3, "n_flagged": 4, "n_nan_scores": 1, "threshold": 0.5}
    json.dumps(report, allow_nan=False)
    only_human = detection_report([0.1, 0.2], [False, False], [False, False], math.nan)
    assert only_human["auroc"] is None and only_human["recall"] is None
    assert only_human["precision"] is None and only_human["threshold"] is None
    assert only_human["human_kept"] == 1.0
    json.dumps(only_human, allow_nan=False)
    with pytest.raises(ValueError):
        detection_report([0.1], [True, False], [True])


# -- a small real model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tok() -> Any:
    from tests.model_helpers import tokenizer

    return tokenizer()


@pytest.fixture(scope="module")
def base(tok: Any) -> Any:
    from tests.model_helpers import random_model

    return random_model("llama", len(tok), seed=0, tied=False)


@pytest.fixture(scope="module")
def data() -> list[tuple[str, str]]:
    from tests.model_helpers import pairs, train_split

    return pairs(train_split()[:12])


def _old_perplexity(model: Any, tokenizer: Any, pairs: list[tuple[str, str]],
                    batch_size: int = 64, max_length: int = 1024) -> float:
    """`perplexity` exactly as it was before it shared `completion_nll` (reference)."""
    import torch

    from harness.model import training as tr

    limit = tr._length_limit(model, max_length)
    encoded = [tr.encode_example(tokenizer, p, c, limit, add_eos=False) for p, c in pairs]
    encoded = [e for e in encoded if len(e[0]) > e[1]]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    keep_kw = tr._logits_kwarg(model)
    nll: Any = 0.0
    count = 0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [encoded[i] for i in order[start:start + batch_size]]
            ids, mask, labels, first = tr._collate(batch, tr._pad_id(tokenizer), True,
                                                   torch.device("cpu"))
            nll = nll + tr._summed_loss(model, ids, mask, labels, first, keep_kw).double()
            count += tr._counts(batch, True)[1]
    return math.exp(float(nll) / count)


def test_perplexity_is_unchanged_by_the_refactor(base: Any, tok: Any,
                                                 data: list[tuple[str, str]]) -> None:
    from harness.model.training import perplexity

    for batch_size in (4, 64):
        assert perplexity(base, tok, data, batch_size=batch_size) == pytest.approx(
            _old_perplexity(base, tok, data, batch_size=batch_size), rel=1e-6)
    short = perplexity(base, tok, data, max_length=24)
    assert short == pytest.approx(_old_perplexity(base, tok, data, max_length=24), rel=1e-6)
    with pytest.raises(BadInput):
        perplexity(base, tok, [("def f(x):", "")])


@pytest.mark.parametrize("arch", ["gpt2", "qwen2", "gpt_bigcode"])
def test_perplexity_is_unchanged_on_every_architecture(arch: str, tok: Any,
                                                       data: list[tuple[str, str]]) -> None:
    """GPT-2 style models take another logits-trimming path (or none) than Llama."""
    from harness.model.training import perplexity
    from tests.model_helpers import random_model

    model = random_model(arch, len(tok), seed=1)
    assert perplexity(model, tok, data[:6], batch_size=4) == pytest.approx(
        _old_perplexity(model, tok, data[:6], batch_size=4), rel=1e-6)


def test_completion_logprobs_per_example(base: Any, tok: Any,
                                         data: list[tuple[str, str]]) -> None:
    import torch

    from harness.model.training import completion_logprobs, completion_nll, perplexity

    prompt, completion = data[0]
    ids_p = tok(prompt)["input_ids"]
    ids_c = tok(completion, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logp = torch.log_softmax(base(input_ids=torch.tensor([ids_p + ids_c])).logits[0], -1)
    want = sum(float(logp[len(ids_p) - 1 + i, t]) for i, t in enumerate(ids_c)) / len(ids_c)
    assert completion_logprobs(base, tok, [data[0]])[0] == pytest.approx(want, rel=1e-5)

    # order and batching do not matter; empty completions are NaN, not an error
    mixed = [data[1], ("def f(x):\n", ""), data[0], data[2]]
    values = completion_logprobs(base, tok, mixed, batch_size=2)
    assert math.isnan(values[1])
    reversed_values = completion_logprobs(base, tok, mixed[::-1], batch_size=64)
    assert values[::-1] == pytest.approx(reversed_values, rel=1e-5, nan_ok=True)
    assert values[2] == pytest.approx(want, rel=1e-5)
    assert all(math.isnan(v) for v in completion_logprobs(base, tok, [("x", "")] * 3))
    assert completion_logprobs(base, tok, []) == []

    # perplexity is the token-weighted mean of the same numbers
    nll, counts = completion_nll(base, tok, data)
    logprobs = completion_logprobs(base, tok, data)
    assert [-x / n for x, n in zip(nll, counts, strict=True)] == pytest.approx(logprobs)
    weighted = -sum(lp * n for lp, n in zip(logprobs, counts, strict=True)) / sum(counts)
    assert perplexity(base, tok, data) == pytest.approx(math.exp(weighted), rel=1e-9)


def test_completion_logprobs_take_any_text(base: Any, tok: Any) -> None:
    from harness.model.training import completion_logprobs
    from tests.hostile_text import NAMED

    texts = [v for k, v in NAMED.items() if len(v) < 1000]
    values = completion_logprobs(base, tok, [("def f(x):\n", t) for t in texts],
                                 max_length=128)
    assert len(values) == len(texts)
    assert all(math.isfinite(v) and v < 0 for v in values)


def test_own_completions_score_as_ai(base: Any, tok: Any) -> None:
    from harness.experiment.detection import score_candidates
    from harness.experiment.filters import (
        Candidate,
        apply_filter,
        attach_detector_scores,
        parse_filter,
    )
    from sandbox.executor import ExecResult
    from tests.model_helpers import eval_split, own_completions, peaked_copy

    current = peaked_copy(base, 10.0)
    prompts = [t.prompt for t in eval_split()[:8]]
    own = own_completions(current, tok, prompts)
    rng = random.Random(0)
    noise = [(p, "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ()=+:") for _ in c))
             for p, c in own]
    labels = [True] * len(own) + [False] * len(noise)

    loglik = score_candidates("loglik", current, None, tok, own + noise)
    ratio = score_candidates("ratio", current, base, tok, own + noise)
    for scores in (loglik, ratio):
        assert scores.dtype == np.float64 and scores.shape == (16,)
        assert auroc(scores, labels) == 1.0
        assert scores[:8].mean() > scores[8:].mean() + 1.0
    # the same model as base: every ratio is 0 and nothing is computed twice
    assert np.array_equal(score_candidates("ratio", base, base, tok, own), np.zeros(8))
    with pytest.raises(BadInput):
        score_candidates("ratio", current, None, tok, own)

    # the filter end to end: calibrate on human-like text, keep it, drop own output
    result = ExecResult(request_id="r", status="passed")
    cands = [Candidate("t", p, c, result, -1.0, provenance="self" if ai else "human")
             for (p, c), ai in zip(own + noise, labels, strict=True)]
    spec = parse_filter("detect:loglik:0.9")
    calibration = [(p, "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ()=+:") for _ in c))
                   for p, c in own]
    scored = attach_detector_scores(spec, cands, current, base, tok, calibration)
    assert all(math.isfinite(c.ai_score) for c in scored)
    assert len({c.ai_threshold for c in scored}) == 1
    outcome = apply_filter(spec, scored, np.random.default_rng(0))
    assert outcome.keep[:8] == [False] * 8  # every own completion dropped
    assert sum(outcome.keep[8:]) >= 5  # most human-like text kept (T = 0.9)
    assert outcome.detection is not None
    assert outcome.detection["auroc"] == 1.0 and outcome.detection["precision"] == 1.0
    # a filter other than detect: untouched candidates, no model call needed
    assert attach_detector_scores(parse_filter("tests"), cands, None, None, tok, []) == cands


def test_calibrated_detectors_score_the_training_form_of_both_sides(base: Any, tok: Any
                                                                     ) -> None:
    """A sample loses its final newline in post-processing, a human reference keeps
    it: with the run's format, both are scored as they would be trained on (one final
    newline), so a text's score does not depend on which side wrote the newline."""
    from harness.experiment.filters import Candidate, attach_detector_scores, parse_filter
    from harness.model.formats import PromptFormat
    from sandbox.executor import ExecResult

    fmt = PromptFormat.resolve(tok, "completion", "heal")
    prompt, body = "def f(x):\n", "    return x + 1\n"
    result = ExecResult(request_id="r", status="passed")
    cands = [Candidate("t", prompt, body.rstrip(), result, -1.0),
             Candidate("t", prompt, body, result, -1.0, provenance="human")]
    spec = parse_filter("detect:loglik:0.5")
    scored = attach_detector_scores(spec, cands, base, base, tok, [(prompt, body)], fmt=fmt)
    assert scored[0].ai_score == scored[1].ai_score
    # without the format (a caller that scores raw pairs) the two differ
    raw = attach_detector_scores(spec, cands, base, base, tok, [(prompt, body)])
    assert raw[0].ai_score != raw[1].ai_score
