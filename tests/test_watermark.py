"""The watermark (harness.model.watermark) on its own, in the sampler, and as a filter.

The green lists and the z-test are checked on hand-made cases whose answer is known;
the sampler on builtin:tiny (the shipped model, seeded) and on a random-init model
(which has entropy to spend): marked samples score high, unmarked ones near 0,
and `detect:watermark:4` keeps the unmarked and drops the marked. No mocks: the real
sampler, the real tokenization of the run's prompt format, the real filter.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
import torch

from harness.config import ModelConfig, RunConfig, SamplingConfig, legacy_settings
from harness.errors import BadInput
from harness.experiment.arms import validate
from harness.experiment.filters import Candidate, apply_filter, attach_detector_scores, parse_filter
from harness.experiment.watermarking import scored_texts, z_scores
from harness.model import sampling
from harness.model.formats import PromptFormat
from harness.model.sampling import sample_completions
from harness.model.training import completion_entropies, completion_tokens
from harness.model.watermark import Watermark, WatermarkSpec, parse_watermark, z_from_counts
from sandbox.executor import ExecResult
from tests.model_helpers import random_model, tokenizer

# ------------------------------------------------------------------ the green list


def test_each_context_has_exactly_a_gamma_share_green() -> None:
    mark = Watermark(WatermarkSpec(key=3, gamma=0.25), 1000)
    masks = mark.green_mask(torch.arange(1000))
    assert masks.shape == (1000, 1000)
    assert set(masks.sum(dim=1).tolist()) == {250}
    # and every token is green after about a quarter of the contexts (no fixed favourites)
    per_token = masks.float().mean(dim=0)
    assert float(per_token.min()) > 0.15 and float(per_token.max()) < 0.35


def test_green_lists_depend_on_the_key_and_the_previous_token_only() -> None:
    prev = torch.arange(50)
    a = Watermark(WatermarkSpec(key=1), 512).green_mask(prev)
    again = Watermark(WatermarkSpec(key=1, delta=5.0), 512).green_mask(prev)
    other_key = Watermark(WatermarkSpec(key=2), 512).green_mask(prev)
    assert torch.equal(a, again)  # deterministic for a key; delta does not move the lists
    # another key: about a gamma share of each list in common, as independent lists would
    overlap = (a & other_key).sum(dim=1).float() / a.sum(dim=1)
    assert 0.1 < float(overlap.mean()) < 0.4
    # another previous token: another list, for every pair of previous tokens
    every = Watermark(WatermarkSpec(key=1), 512).green_mask(torch.arange(512))
    assert len({tuple(row.nonzero()[:, 0].tolist()) for row in every}) == 512


def test_is_green_agrees_with_the_mask() -> None:
    mark = Watermark(WatermarkSpec(key=9, gamma=0.4), 300)
    prev = torch.randint(0, 300, (200,), generator=torch.Generator().manual_seed(0))
    tokens = torch.randint(0, 300, (200,), generator=torch.Generator().manual_seed(1))
    want = mark.green_mask(prev)[torch.arange(200), tokens]
    assert torch.equal(mark.is_green(prev, tokens), want)


# ------------------------------------------------------------------ bias and z


def test_bias_adds_delta_to_green_logits_only() -> None:
    mark = Watermark(WatermarkSpec(key=4, delta=2.5), 64)
    logits = torch.randn(3, 64, generator=torch.Generator().manual_seed(0))
    prev = torch.tensor([1, 2, 3])
    added = mark.bias(logits, prev) - logits
    green = mark.green_mask(prev)
    assert torch.allclose(added[green], torch.full_like(added[green], 2.5))
    assert torch.equal(added[~green], torch.zeros_like(added[~green]))


def test_sweet_biases_only_rows_whose_entropy_reaches_the_threshold() -> None:
    flat = torch.zeros(1, 64)                    # entropy ln 64 = 4.16 nats
    peaked = torch.full((1, 64), -30.0)
    peaked[0, 5] = 0.0                           # entropy ~0
    logits, prev = torch.cat([flat, peaked]), torch.tensor([7, 7])
    sweet = Watermark(WatermarkSpec(key=4, entropy=1.0), 64).bias(logits, prev)
    plain = Watermark(WatermarkSpec(key=4), 64).bias(logits, prev)
    assert torch.equal(sweet[0], plain[0])       # high entropy: biased
    assert torch.equal(sweet[1], logits[1])      # low entropy: left alone
    zero = Watermark(WatermarkSpec(key=4, entropy=0.0), 64).bias(logits, prev)
    assert torch.equal(zero, plain)              # threshold 0 is Kirchenbauer's scheme


def test_z_score_counts_green_tokens_against_gamma() -> None:
    mark = Watermark(WatermarkSpec(key=5, gamma=0.25), 128)
    masks = mark.green_mask(torch.arange(128))
    rng = np.random.default_rng(0)

    def chain(green: bool) -> list[int]:
        """40 tokens, each green (or red) after the one before, no pair twice."""
        text, prev, pairs = [], 17, set()
        while len(text) < 40:
            options = (masks[prev] if green else ~masks[prev]).nonzero()[:, 0].tolist()
            token = int(rng.choice(options))
            if (prev, token) not in pairs:
                pairs.add((prev, token))
                text.append(token)
                prev = token
        return text

    text = chain(green=True)
    assert mark.z_score(text, 17) == pytest.approx(z_from_counts(40, 40, 0.25))
    assert mark.z_score(text, 17) == pytest.approx(30 / math.sqrt(40 * 0.25 * 0.75))
    # only red tokens: as far below
    assert mark.z_score(chain(green=False), 17) == pytest.approx(
        -10 / math.sqrt(40 * 0.25 * 0.75))
    assert math.isnan(mark.z_score([], 17))
    assert len(mark.counted(text, None)) == 39  # no context for the first token: not counted


def test_a_repeated_pair_is_counted_once() -> None:
    """One pair forty times is one coin flip of the key, not forty."""
    mark = Watermark(WatermarkSpec(key=5, gamma=0.25), 128)
    assert mark.counted([9] * 40, 9) == [(9, 9)]
    assert abs(mark.z_score([9] * 40, 9)) < 2


def test_sweet_counts_only_high_entropy_positions() -> None:
    tokens, prev = [3, 9, 4, 1, 7, 2], 5
    entropies = [0.1, 2.0, 0.0, 1.5, 0.9, 3.0]
    sweet = Watermark(WatermarkSpec(key=5, entropy=1.0), 16)
    plain = Watermark(WatermarkSpec(key=5), 16)
    assert sweet.counted(tokens, prev, entropies) == [(3, 9), (4, 1), (7, 2)]
    assert len(plain.counted(tokens, prev)) == 6
    zero = Watermark(WatermarkSpec(key=5, entropy=0.0), 16)
    assert zero.z_score(tokens, prev, entropies) == plain.z_score(tokens, prev)
    assert math.isnan(sweet.z_score(tokens, prev, [0.0] * 6))  # nothing counted
    with pytest.raises(ValueError, match="entropies"):
        sweet.z_score(tokens, prev)


def test_pooled_z_counts_each_distinct_pair_once() -> None:
    mark = Watermark(WatermarkSpec(key=5), 128)
    text = [11, 12, 13, 14]
    once = mark.pooled_z_score([(text, 10, None)])
    assert mark.pooled_z_score([(text, 10, None)] * 50) == once
    assert once == mark.z_score(text, 10)


# ------------------------------------------------------------------ the spec


def test_spec_parsing_defaults_and_round_trip() -> None:
    assert parse_watermark("") is None and parse_watermark("  ") is None
    assert parse_watermark("7") == WatermarkSpec(7, 2.0, 0.25, 0.0)
    spec = parse_watermark(" 7:3:0.5:1.2 ")
    assert spec == WatermarkSpec(7, 3.0, 0.5, 1.2)
    assert parse_watermark(spec.text) == spec


@pytest.mark.parametrize("text", ["x", "-1", "1.5", "7:0", "7:-1", "7:2:0", "7:2:1",
                                  "7:2:1.5", "7:2:0.25:-0.1", "7:a", "7:2:0.25:1:9",
                                  "7:nan", "7:inf", "7:2:nan"])
def test_bad_specs_are_one_line_errors(text: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_watermark(text)
    assert "\n" not in str(err.value) and "watermark" in str(err.value)


def test_the_config_field_is_legacy_off_and_checked_up_front() -> None:
    assert SamplingConfig().watermark == ""
    assert legacy_settings()["sampling.watermark"] == ""  # old runs and protocols: unmarked
    cfg = RunConfig(filters=["detect:watermark:4"])
    with pytest.raises(BadInput, match="--watermark"):
        validate(cfg)
    cfg.sampling.watermark = "7:2:2"
    with pytest.raises(BadInput, match="gamma"):
        validate(cfg)
    cfg.sampling.watermark = "7"
    validate(cfg)
    assert parse_filter("detect:watermark:-1.5").param == -1.5  # any finite z
    for bad in ("detect:watermark", "detect:watermark:x", "detect:watermark:inf"):
        with pytest.raises(BadInput):
            parse_filter(bad)


# ------------------------------------------------------------------ in the sampler


@pytest.fixture(scope="module")
def tiny():  # type: ignore[no-untyped-def]
    from harness.model.loading import load_model

    model, tok = load_model(ModelConfig(name="builtin:tiny", threads=2), progress=False)
    return model, tok, PromptFormat.resolve(tok, "completion", "heal")


@pytest.fixture(scope="module")
def eval_prompts() -> list[str]:
    from tasks.registry import load_suite, select_split

    return [t.prompt for t in select_split(load_suite("synth"), "eval")[:6]]


TINY = SamplingConfig(temperature=1.0, max_new_tokens=48, batch_size=64)
STRONG = "7:8:0.25"
"""builtin:tiny is confident (mean next-token entropy ~0.3 nats on code), so at delta 2
its samples carry little mark (median z ~0.3 over ~35 tokens: docs/collapse.md);
delta 8 marks them clearly."""
N = 4


def _sampled(tiny, prompts, watermark: str, n: int = N):  # type: ignore[no-untyped-def]
    model, tok, fmt = tiny
    out = sample_completions(model, tok, prompts, n, TINY, seed=3, fmt=fmt, watermark=watermark)
    return [(p, c) for p, per in zip(prompts, out, strict=True) for c in per]


@pytest.fixture(scope="module")
def tiny_samples(tiny, eval_prompts):  # type: ignore[no-untyped-def]
    """Each eval prompt sampled N times unmarked and marked, at the same seed."""
    return {w: _sampled(tiny, eval_prompts, w) for w in ("", STRONG)}


def _z(tiny, spec_text, drawn) -> np.ndarray:  # type: ignore[no-untyped-def]
    model, tok, fmt = tiny
    spec = parse_watermark(spec_text)
    assert spec is not None
    return z_scores(spec, model, tok, [(p, c.text) for p, c in drawn], fmt)


def test_marked_tiny_samples_score_high_and_unmarked_near_zero(tiny, tiny_samples) -> None:  # type: ignore[no-untyped-def]
    marked = _z(tiny, STRONG, tiny_samples[STRONG])
    unmarked = _z(tiny, STRONG, tiny_samples[""])
    assert np.median(marked) > 4
    assert abs(float(np.median(unmarked))) < 2 and (unmarked > 4).mean() < 0.1
    # the same seeds: the mark moved the samples, not a fresh draw
    assert [c.text for _, c in tiny_samples[""]] != [c.text for _, c in tiny_samples[STRONG]]


def test_the_filter_keeps_unmarked_and_drops_most_marked(tiny, tiny_samples) -> None:  # type: ignore[no-untyped-def]
    model, tok, fmt = tiny
    ok = ExecResult(request_id="x", status="passed")
    cands = [Candidate("t", p, c.text, ok, c.mean_logprob, provenance=prov)
             for prov, w in (("self", STRONG), ("human", "")) for p, c in tiny_samples[w]]
    spec = parse_filter("detect:watermark:4")
    scored = attach_detector_scores(spec, cands, model, None, tok, [], fmt=fmt,
                                    watermark=STRONG)
    assert {c.ai_threshold for c in scored} == {4.0}  # Z itself, no calibration
    out = apply_filter(spec, scored, np.random.default_rng(0))
    marked_kept = [k for c, k in zip(scored, out.keep, strict=True) if c.provenance == "self"]
    unmarked_kept = [k for c, k in zip(scored, out.keep, strict=True)
                     if c.provenance == "human"]
    assert sum(marked_kept) < 0.5 * len(marked_kept)
    assert sum(unmarked_kept) >= 0.9 * len(unmarked_kept)
    assert out.detection is not None and out.detection["auroc"] > 0.9


@pytest.mark.slow  # seconds of sampling; make test runs it
def test_at_delta_2_a_model_with_entropy_to_spend_is_clearly_marked() -> None:
    tok = tokenizer()
    model = random_model("llama", len(tok), seed=3, tied=False)
    prompts = ["def f(x):\n", "def g(a, b):\n", "class C:\n"]
    cfg = SamplingConfig(temperature=1.0, max_new_tokens=96)  # enough tokens for z > 4
    spec = WatermarkSpec(key=11, delta=2.0, gamma=0.25)
    zs = {}
    for w in ("", spec.text):
        out = sample_completions(model, tok, prompts, 3, cfg, seed=1, stop=(), watermark=w)
        zs[w] = z_scores(spec, model, tok, [(p, c.text) for p, per in zip(prompts, out,
                                                                           strict=True)
                                            for c in per])
    assert statistics.median(zs[spec.text]) > 4
    assert abs(statistics.median(zs[""])) < 2


def test_the_recorded_logprob_is_the_unbiased_models(tiny, eval_prompts) -> None:  # type: ignore[no-untyped-def]
    """Each picked token's recorded log-prob is the plain model's (a forward pass over
    prompt + picks, no bias), not the biased sampler's."""
    model, tok, fmt = tiny
    spec = parse_watermark(STRONG)
    sampler = sampling._Sampler(model, tok, TINY, 1.0, (), fmt, spec)
    prompts = eval_prompts[:2]
    encoded = sampler._encode(prompts)
    with torch.inference_mode():
        rows = sampler._decode_wave([(p, s) for p in range(2) for s in range(2)], prompts,
                                    encoded, 3, lambda n: None)
        for row in rows:
            ids = encoded[prompts[row.prompt_index]] + row.tokens
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
            start = len(ids) - len(row.tokens)
            plain = logp[start - 1:-1].gather(1, torch.tensor(row.tokens)[:, None])[:, 0]
            assert torch.allclose(torch.tensor(row.logprobs), plain, atol=1e-4)
            biased = torch.log_softmax(sampler.watermark.bias(  # type: ignore[union-attr]
                logp[start - 1:-1], torch.tensor(ids[start - 1:-1])), -1)
            picked = biased.gather(1, torch.tensor(row.tokens)[:, None])[:, 0]
            assert not torch.allclose(picked, plain, atol=1e-2)  # the test can tell them apart


@pytest.mark.slow  # seconds of sampling; make test runs it
def test_sweet_threshold_zero_is_kirchenbauer_and_a_huge_one_is_no_mark(  # type: ignore[no-untyped-def]
        tiny, eval_prompts, tiny_samples) -> None:
    """Sample i depends only on (seed, prompt, i), so a subset of the prompts sampled
    again is comparable with the fixture's samples of them."""
    prompts = eval_prompts[:2]
    first = 2 * N
    def texts(drawn):  # type: ignore[no-untyped-def]
        return [c.text for _, c in drawn]

    assert texts(_sampled(tiny, prompts, STRONG + ":0")) == texts(tiny_samples[STRONG][:first])
    assert texts(_sampled(tiny, prompts, STRONG + ":1000")) == texts(tiny_samples[""][:first])
    # a real threshold counts fewer positions at detection than plain Kirchenbauer
    model, tok, fmt = tiny
    pairs = [(p, c.text) for p, c in tiny_samples[STRONG]]
    sweet = parse_watermark(STRONG + ":0.5")
    full = parse_watermark(STRONG)
    assert sweet is not None and full is not None
    n_sweet = sum(len(Watermark(sweet, 1024).counted(*t))
                  for t in scored_texts(sweet, model, tok, pairs, fmt))
    n_full = sum(len(Watermark(full, 1024).counted(*t))
                 for t in scored_texts(full, model, tok, pairs, fmt))
    assert 0 < n_sweet < 0.7 * n_full


def test_the_static_step_applies_the_same_mark(tiny, eval_prompts, tiny_samples,  # type: ignore[no-untyped-def]
                                               monkeypatch) -> None:
    """The fixed-shape step CUDA graphs capture (run eagerly here) biases from the same
    previous tokens as the eager step the fixture used."""
    monkeypatch.setenv("COLLAPSE_BENCH_SAMPLER", "static")
    static = _sampled(tiny, eval_prompts[:2], STRONG)
    assert sampling.LAST_RUN["mode"] == "static"
    assert [c.text for _, c in static] == [c.text for _, c in tiny_samples[STRONG][:2 * N]]


def test_detection_sees_the_tokens_and_entropies_scoring_sees() -> None:
    """completion_tokens / completion_entropies: the completion's tokens as a training
    example encodes them, the prompt's last token before them, and one entropy per
    token from the model's next-token distribution there."""
    from harness.model.training import encode_example

    tok = tokenizer()
    model = random_model("llama", len(tok), seed=2, tied=False)
    pairs = [("def f(x):\n", "    return x + 1\n"), ("def g():\n", "    pass\n"),
             ("def h():\n", "")]
    tokens = completion_tokens(model, tok, pairs)
    entropies = completion_entropies(model, tok, pairs)
    for (prompt, completion), (prev, ids), h in zip(pairs, tokens, entropies, strict=True):
        full, n_prompt = encode_example(tok, prompt, completion, 1024, add_eos=False)
        assert (prev, ids) == (full[n_prompt - 1], full[n_prompt:])
        assert len(h) == len(ids)
        if ids:
            with torch.inference_mode():
                logits = model(input_ids=torch.tensor([full])).logits[0].float()
            want = torch.special.entr(torch.softmax(logits[n_prompt - 1:-1], -1)).sum(-1)
            assert torch.allclose(torch.tensor(h), want, atol=1e-4)
    assert tokens[2][1] == [] and entropies[2] == []
