"""The zero-shot detectors `fastdetect`, `binoculars` and `perturb`: their specs, the
whitespace perturbation of code, and each score on small real models against a naive
per-token computation written out here with explicit loops, then end to end through
`attach_detector_scores` and `apply_filter`.

The spec and perturbation half is pure Python (marked `text`, no torch at import);
the model half imports torch inside its tests, so `pytest -m text` runs without it.
"""

from __future__ import annotations

import ast
import io
import math
import random
import re
import tokenize
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings

from harness.errors import BadInput
from harness.experiment.detection import (
    CALIBRATED_KINDS,
    KINDS_WITH_BASE,
    PERTURBATIONS,
    DetectorSpec,
    parse_detector,
)
from harness.experiment.filters import parse_filter
from harness.experiment.perturbation import insertion_places, whitespace_variants
from tasks.synthetic import generate_synth
from tests.hostile_text import PROPERTY, hostile_text, with_named_examples

text = pytest.mark.text
NEW_KINDS = ("fastdetect", "binoculars", "perturb")

# -- specs ----------------------------------------------------------------------------------


@text
@pytest.mark.parametrize("kind", NEW_KINDS)
def test_new_kinds_parse_as_calibrated_detectors(kind: str) -> None:
    assert kind in CALIBRATED_KINDS
    assert parse_detector(f"{kind}:0.9") == DetectorSpec(kind, 0.9)
    spec = parse_filter(f"detect:{kind}:0.25+dedup")
    assert (spec.name, spec.detector, spec.param, spec.dedup) == ("detect", kind, 0.25, True)
    assert (kind in KINDS_WITH_BASE) == (kind == "binoculars")


@text
@pytest.mark.parametrize("spec", ["detect:fastdetect", "detect:fastdetect:1",
                                  "detect:binoculars:0", "detect:binoculars:x",
                                  "detect:perturb:nan", "detect:perturb:-0.5",
                                  "detect:perturb:0.5:4", "detect:fast-detect:0.9"])
def test_bad_specs_of_the_new_kinds_are_one_line_bad_input(spec: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_filter(spec)
    assert "\n" not in str(err.value)


# -- whitespace perturbation ------------------------------------------------------------------


def _no_whitespace(s: str) -> str:
    return re.sub(r"\s", "", s)


def _tokens(source: str) -> list[tuple[int, str]]:
    """Python's tokens without the layout ones: what inserted whitespace must not change."""
    layout = {tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    return [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type not in layout]


@text
def test_variants_of_real_code_differ_only_in_whitespace_and_keep_the_program() -> None:
    tasks = [t for t in generate_synth(n_train=60, n_eval=20, seed=0)
             if t.split in ("train", "eval")]
    for task in tasks:
        prompt, body = task.prompt, task.canonical_solution
        variants = whitespace_variants(prompt, body, PERTURBATIONS)
        assert len(variants) == PERTURBATIONS
        program = ast.dump(ast.parse(prompt + body))
        for v in variants:
            assert v != body and _no_whitespace(v) == _no_whitespace(body)
            assert ast.dump(ast.parse(prompt + v)) == program
            assert _tokens(prompt + v) == _tokens(prompt + body)
            # indentation and the prompt boundary are untouched
            assert v.startswith(body[:len(body) - len(body.lstrip())] + body.lstrip()[0])


@text
def test_variants_are_seeded_by_the_text() -> None:
    prompt, body = "def f(x):\n", "    y = x + 1\n    return y\n"
    first = whitespace_variants(prompt, body, 4)
    assert whitespace_variants(prompt, body, 4) == first  # deterministic
    assert whitespace_variants(prompt, body, 2) == first[:2]  # a prefix of the same draws
    assert len(set(first)) > 1  # the variants differ from each other
    # pinned: sha256 and Mersenne Twister, the same on every machine and Python
    assert first[0] == "    y  =  x + 1 \n\n    return  y\n\n"
    other = whitespace_variants("def g(x):\n", body, 4)
    assert other != first  # another prompt, other draws


@text
def test_whitespace_goes_only_where_python_ignores_it() -> None:
    cases = {
        # inside strings, comments and f-strings nothing is inserted
        'f"{x=}" + "a b" # c d': ['f"{x=}"', '"a b"', "# c d"],
        # a backslash continuation keeps its line joined, a bracket may span blank lines
        "(1 +\n 2) + \\\n 3": ["\\\n 3"],
    }
    for completion, kept in cases.items():
        for v in whitespace_variants("x = ", completion, 8):
            assert all(k in v for k in kept), (completion, v)
            assert ast.dump(ast.parse("x = " + v)) == ast.dump(ast.parse("x = " + completion))
    # no place at the prompt/completion boundary, nor anywhere in the prompt
    assert all(offset > len("def f(x):\n") for offset, _ in
               insertion_places("def f(x):\n", "    return x\n"))


@text
def test_nowhere_to_insert_gives_no_variants() -> None:
    assert whitespace_variants("def f(x):\n", "", 4) == []
    assert whitespace_variants("x = ", "'abc", 4) == []  # an unterminated string at once
    assert whitespace_variants("def f(x):\n", "    return x\n", 0) == []


@text
def test_broken_code_is_perturbed_by_python_then_by_text() -> None:
    body = "    y = (x +\n    return y\n"  # the bracket never closes
    for v in whitespace_variants("def f(x):\n", body, 4):
        assert _no_whitespace(v) == _no_whitespace(body)
    # bad indentation at once (what a weak model writes): a space widened after a
    # visible character or a blank line after a newline, never a line's indentation
    prompt, body = 'def f(x):\n    """Doc."""\n', "  y = x +1\n z\n"
    start = len(prompt)
    assert insertion_places(prompt, body) == [  # before " = x", " x", " +1"; two line ends
        (start + 3, 0), (start + 5, 0), (start + 7, 0), (start + 11, 1), (start + 14, 1)]
    for v in whitespace_variants(prompt, body, 8):
        assert v.startswith("  y") and "\n z" in v.replace("\n\n", "\n")


@text
@settings(PROPERTY, max_examples=150)
@given(hostile_text)
@with_named_examples
def test_variants_answer_for_any_text(completion: str) -> None:
    variants = whitespace_variants("def f(x):\n", completion, 3)
    assert len(variants) in (0, 3)
    for v in variants:
        assert v != completion and _no_whitespace(v) == _no_whitespace(completion)


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
def other(base: Any) -> Any:
    """A second model on the same tokens: `base` with every weight jittered (seeded) and
    a sharper LM head, so its next-token distributions differ everywhere and far from
    the near-uniform ones of a random model (the two roles then give clearly different
    numbers)."""
    import torch

    from tests.model_helpers import peaked_copy

    out = peaked_copy(base, 4.0)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in out.parameters():
            p.add_(0.2 * p.std() * torch.randn(p.shape, generator=gen))
    return out


@pytest.fixture(scope="module")
def data() -> list[tuple[str, str]]:
    from tests.model_helpers import eval_split, pairs

    return pairs(eval_split()[:4])


def _encoded(tok: Any, prompt: str, completion: str, fmt: Any = None) -> tuple[list[int], int]:
    """The ids every score sees (the shared tokenization, pinned in test_detection.py)."""
    from harness.model.training import encode_example

    return encode_example(tok, prompt, completion, 1024, add_eos=False, fmt=fmt)


def _next_token_logits(model: Any, ids: list[int]) -> list[list[float]]:
    """One unbatched, unpadded forward of the whole sequence; row j predicts ids[j + 1]."""
    import torch

    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0].double().tolist()


def _log_softmax(row: list[float]) -> list[float]:
    top = max(row)
    log_z = top + math.log(sum(math.exp(v - top) for v in row))
    return [v - log_z for v in row]


def naive_fastdetect(model: Any, tok: Any, prompt: str, completion: str,
                     fmt: Any = None) -> float:
    """(sum ll_t - sum mu_t) / sqrt(sum var_t) over the completion's tokens, by loops."""
    ids, n_prompt = _encoded(tok, prompt, completion, fmt)
    rows = _next_token_logits(model, ids)
    ll = mu = var = 0.0
    for j in range(n_prompt, len(ids)):
        logp = _log_softmax(rows[j - 1])
        ll += logp[ids[j]]
        mean = 0.0
        for lp in logp:
            mean += math.exp(lp) * lp
        spread = 0.0
        for lp in logp:
            spread += math.exp(lp) * (lp - mean) ** 2
        mu += mean
        var += spread
    return (ll - mu) / math.sqrt(var)


def naive_binoculars(observer: Any, performer: Any, tok: Any, prompt: str,
                     completion: str) -> float:
    """Binoculars' own value log PPL / log X-PPL (low = AI), by loops."""
    ids, n_prompt = _encoded(tok, prompt, completion)
    obs, perf = _next_token_logits(observer, ids), _next_token_logits(performer, ids)
    nll = cross = 0.0
    n = 0
    for j in range(n_prompt, len(ids)):
        log_q = _log_softmax(perf[j - 1])  # performer
        log_p = _log_softmax(obs[j - 1])  # observer
        nll -= log_q[ids[j]]
        for a, b in zip(log_p, log_q, strict=True):
            cross -= math.exp(a) * b
        n += 1
    return (nll / n) / (cross / n)


def test_fastdetect_equals_the_naive_per_token_computation(base: Any, tok: Any,
                                                           data: list[tuple[str, str]]) -> None:
    from harness.experiment.detection import score_candidates
    from harness.model.formats import PromptFormat

    mixed = [data[0], ("def f(x):\n", ""), data[1], data[2]]
    scores = score_candidates("fastdetect", base, None, tok, mixed, batch_size=2)
    assert scores.dtype == np.float64 and math.isnan(scores[1])
    for i in (0, 2, 3):
        assert scores[i] == pytest.approx(naive_fastdetect(base, tok, *mixed[i]), rel=1e-4)
    # the run's prompt format is respected (here: the newline moved to the completion)
    heal = PromptFormat.resolve(tok, "completion", "heal")
    healed = score_candidates("fastdetect", base, None, tok, data[:2], fmt=heal)
    for i in range(2):
        assert healed[i] == pytest.approx(naive_fastdetect(base, tok, *data[i], fmt=heal),
                                          rel=1e-4)
    # order and batching do not matter
    again = score_candidates("fastdetect", base, None, tok, mixed[::-1], batch_size=64)
    assert again[::-1] == pytest.approx(scores, rel=1e-5, nan_ok=True)


def test_binoculars_equals_the_naive_computation_negated(base: Any, other: Any, tok: Any,
                                                          data: list[tuple[str, str]]) -> None:
    import copy

    from harness.experiment.detection import score_candidates

    mixed = [data[0], ("def f(x):\n", ""), data[1], data[2]]
    scores = score_candidates("binoculars", other, base, tok, mixed, batch_size=3)
    assert math.isnan(scores[1])
    for i in (0, 2, 3):
        binoculars = naive_binoculars(base, other, tok, *mixed[i])  # observer = base
        assert binoculars > 0 and scores[i] == pytest.approx(-binoculars, rel=1e-4)
        # the roles are not symmetric: swapped, they give another number, by far more
        # than the tolerance above (Binoculars values stay near 1 by design)
        assert naive_binoculars(other, base, tok, *mixed[i]) != pytest.approx(binoculars,
                                                                               rel=2e-3)
    # generation 1 (base is current): one model in both roles, a defined score, and the
    # same number as two distinct copies of it
    same = score_candidates("binoculars", base, base, tok, data)
    twin = score_candidates("binoculars", copy.deepcopy(base), base, tok, data)
    assert same == pytest.approx(twin, rel=1e-6)
    for i, pair in enumerate(data):
        assert same[i] == pytest.approx(-naive_binoculars(base, base, tok, *pair), rel=1e-4)
    with pytest.raises(BadInput):
        score_candidates("binoculars", base, None, tok, data)


def test_perturb_is_the_loglik_of_the_text_minus_its_variants(base: Any, tok: Any,
                                                              data: list[tuple[str, str]]
                                                              ) -> None:
    from harness.experiment.detection import score_candidates
    from harness.model.training import completion_logprobs

    mixed = [data[0], ("def f(x):\n", ""), ("x = ", "'abc"), data[1]]
    scores = score_candidates("perturb", base, None, tok, mixed, batch_size=4)
    assert math.isnan(scores[1]) and math.isnan(scores[2])  # empty; nowhere to insert
    for i in (0, 3):
        prompt, body = mixed[i]
        variants = whitespace_variants(prompt, body, PERTURBATIONS)
        assert len(variants) == PERTURBATIONS
        own = completion_logprobs(base, tok, [(prompt, body)])[0]
        perturbed = [completion_logprobs(base, tok, [(prompt, v)])[0] for v in variants]
        assert scores[i] == pytest.approx(own - sum(perturbed) / len(perturbed), rel=1e-4)
    assert score_candidates("perturb", base, None, tok, mixed) == pytest.approx(
        scores, rel=1e-5, nan_ok=True)  # deterministic


def _own_and_noise(model: Any, tok: Any, n: int) -> tuple[list[tuple[str, str]],
                                                          list[tuple[str, str]],
                                                          list[tuple[str, str]]]:
    """`model`'s greedy completions of n eval prompts (AI), random-character text of
    the same lengths (human stand-in) and another such set for calibration."""
    from tests.model_helpers import eval_split, own_completions

    own = own_completions(model, tok, [t.prompt for t in eval_split()[:n]])
    rng = random.Random(0)

    def noise() -> list[tuple[str, str]]:
        return [(p, "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ()=+:\n") for _ in c))
                for p, c in own]

    return own, noise(), noise()


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_each_new_detector_filters_end_to_end(kind: str, base: Any, tok: Any) -> None:
    from harness.experiment.filters import Candidate, apply_filter, attach_detector_scores
    from sandbox.executor import ExecResult
    from tests.model_helpers import peaked_copy

    current = peaked_copy(base, 10.0)  # a "self-trained" model with clear favourites
    own, noise, calibration = _own_and_noise(current, tok, 6)
    result = ExecResult(request_id="r", status="passed")
    cands = [Candidate("t", p, c, result, -1.0, provenance=prov)
             for (p, c), prov in zip(own + noise, ["self"] * 6 + ["human"] * 6, strict=True)]
    spec = parse_filter(f"detect:{kind}:0.9")
    scored = attach_detector_scores(spec, cands, current, base, tok, calibration)
    assert all(math.isfinite(c.ai_score) for c in scored)
    thresholds = {c.ai_threshold for c in scored}
    assert len(thresholds) == 1 and math.isfinite(thresholds.pop())
    outcome = apply_filter(spec, scored, np.random.default_rng(0))
    assert outcome.keep == [c.ai_score <= c.ai_threshold for c in scored]
    report = outcome.detection
    assert report is not None and report["n_ai"] == 6 and report["n_human"] == 6
    assert report["auroc"] is not None and report["threshold"] is not None
