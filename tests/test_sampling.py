"""The batched sampler against references: plain recomputation, `generate`, itself.

A random-init Llama is enough: what is checked is the decode machinery (KV cache,
left padding, per-sample seeds, stop handling, scores), not the model's skill.
"""

from __future__ import annotations

import math

import pytest
import torch

from harness.config import SamplingConfig
from harness.errors import BadInput
from harness.model import sampling
from harness.model.sampling import Completion, sample_completions
from tasks.postprocess import truncate_completion
from tests.model_helpers import ARCHS, random_model, tokenizer, train_split

CFG = SamplingConfig(max_new_tokens=16, batch_size=64)


@pytest.fixture(scope="module")
def tok():  # type: ignore[no-untyped-def]
    return tokenizer()


@pytest.fixture(scope="module")
def model(tok):  # type: ignore[no-untyped-def]
    return random_model("llama", len(tok), seed=3, tied=False)


@pytest.fixture(scope="module")
def prompts() -> list[str]:
    # different lengths, so batches really are left-padded
    return sorted({t.prompt for t in train_split()[:40]}, key=lambda p: (len(p), p))[::8][:5]


def _texts(out: list[list[Completion]]) -> list[list[str]]:
    return [[c.text for c in per] for per in out]


def test_same_seed_same_samples_other_seed_others(model, tok, prompts) -> None:  # type: ignore[no-untyped-def]
    a = sample_completions(model, tok, prompts, 3, CFG, seed=11)
    b = sample_completions(model, tok, prompts, 3, CFG, seed=11)
    c = sample_completions(model, tok, prompts, 3, CFG, seed=12)
    assert a == b
    assert _texts(a) != _texts(c)
    assert [len(per) for per in a] == [3] * len(prompts)
    # the samples of one prompt differ from each other (own generator per sample)
    assert any(len(set(per)) > 1 for per in _texts(a))


def test_samples_do_not_depend_on_batch_composition(model, tok, prompts) -> None:  # type: ignore[no-untyped-def]
    full = sample_completions(model, tok, prompts, 3, CFG, seed=7)
    subset = [prompts[3], prompts[0]]
    small = sample_completions(model, tok, subset, 3,
                               SamplingConfig(max_new_tokens=16, batch_size=2), seed=7)
    for got, want in ((small[0], full[3]), (small[1], full[0])):
        assert [c.text for c in got] == [c.text for c in want]
        assert [c.n_tokens for c in got] == [c.n_tokens for c in want]
        for g, w in zip(got, want, strict=True):
            assert g.mean_logprob == pytest.approx(w.mean_logprob, abs=1e-5)


def _reference_greedy(model, tok, prompt: str, steps: int) -> tuple[list[int], list[float]]:  # type: ignore[no-untyped-def]
    """Greedy decoding by full recomputation, no cache, no batching."""
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    chosen: list[int] = []
    logprobs: list[float] = []
    with torch.inference_mode():
        for _ in range(steps):
            logits = model(input_ids=ids).logits[0, -1].float()
            token = int(logits.argmax())
            chosen.append(token)
            logprobs.append(float(torch.log_softmax(logits, -1)[token]))
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return chosen, logprobs


def test_greedy_matches_recomputation_with_scores(model, tok, prompts) -> None:  # type: ignore[no-untyped-def]
    out = sample_completions(model, tok, prompts, 2, CFG, seed=0, temperature=0, stop=())
    for prompt, per in zip(prompts, out, strict=True):
        assert per[0].text == per[1].text  # greedy: every sample is the same
        tokens, logprobs = _reference_greedy(model, tok, prompt, CFG.max_new_tokens)
        text = truncate_completion(tok.decode(tokens, skip_special_tokens=True), ())
        assert per[0].text == text
        k = per[0].n_tokens
        assert 0 < k <= CFG.max_new_tokens
        assert per[0].mean_logprob == pytest.approx(sum(logprobs[:k]) / k, abs=1e-4)


def test_greedy_matches_generate(model, tok, prompts) -> None:  # type: ignore[no-untyped-def]
    out = sample_completions(model, tok, prompts, 1, CFG, seed=0, temperature=0, stop=())
    for prompt, [got] in zip(prompts, out, strict=True):
        enc = tok(prompt, return_tensors="pt")
        ref = model.generate(**enc, do_sample=False, max_new_tokens=CFG.max_new_tokens)
        new = ref[0, enc["input_ids"].shape[1]:].tolist()
        assert got.text == truncate_completion(tok.decode(new, skip_special_tokens=True), ())


def test_tiny_top_p_is_greedy_and_scores_use_temperature_one(model, tok, prompts) -> None:  # type: ignore[no-untyped-def]
    greedy = sample_completions(model, tok, prompts, 1, CFG, seed=0, temperature=0)
    nucleus = sample_completions(model, tok, prompts, 2,
                                 SamplingConfig(max_new_tokens=16, top_p=1e-6), seed=9,
                                 temperature=0.5)
    for [g], per in zip(greedy, nucleus, strict=True):
        for c in per:
            assert c.text == g.text
            assert c.mean_logprob == pytest.approx(g.mean_logprob, abs=1e-5)


def _ascii_piece(text: str) -> str | None:
    """The first 3 printable ASCII characters in a row after the text's 2nd char."""
    for i in range(2, len(text) - 2):
        piece = text[i:i + 3]
        if piece.isascii() and piece.isprintable():
            return piece
    return None


def test_finished_rows_leave_the_batch(model, tok, prompts, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Stops taken from each prompt's greedy text end rows at different steps; the
    forward batch then shrinks instead of carrying finished rows to the end. (Host
    reads every step here, so a few prompts ending close together cannot all be
    noticed in the same read, after which there is nothing left to compact.)"""
    monkeypatch.setitem(sampling._CHECK_EVERY, "cpu", 1)
    greedy = sample_completions(model, tok, prompts, 1, CFG, seed=0, temperature=0, stop=())
    stops = tuple(s for s in (_ascii_piece(per[0].text) for per in greedy) if s)
    assert len(set(stops)) >= 2
    sizes: list[int] = []
    hook = model.register_forward_pre_hook(
        lambda _m, _a, kw: sizes.append(kw["input_ids"].shape[0]), with_kwargs=True)
    try:
        out = sample_completions(model, tok, prompts, 4, CFG, seed=0, temperature=0,
                                 stop=stops)
    finally:
        hook.remove()
    decode_sizes = sizes[1:]  # sizes[0] is the prefill of the distinct prompts
    assert sizes[0] == len(prompts)
    assert decode_sizes[0] == 4 * len(prompts)
    assert decode_sizes == sorted(decode_sizes, reverse=True)
    assert decode_sizes[-1] < decode_sizes[0]
    assert len(decode_sizes) < CFG.max_new_tokens - 1
    for per in out:
        for c in per:
            assert not any(s in c.text for s in stops)
            assert c.n_tokens <= c.n_generated < CFG.max_new_tokens


def test_edge_cases_and_bad_input(model, tok, prompts) -> None:  # type: ignore[no-untyped-def]
    assert sample_completions(model, tok, prompts, 0, CFG, seed=0) == [[] for _ in prompts]
    assert sample_completions(model, tok, [], 3, CFG, seed=0) == []
    empty = sample_completions(model, tok, prompts[:1], 2,
                               SamplingConfig(max_new_tokens=0), seed=0)
    assert empty == [[Completion("", 0.0, 0), Completion("", 0.0, 0)]]
    for bad in (SamplingConfig(top_p=0.0), SamplingConfig(max_new_tokens=-1),
                SamplingConfig(batch_size=0)):
        with pytest.raises(BadInput):
            sample_completions(model, tok, prompts, 1, bad, seed=0)
    with pytest.raises(BadInput, match="temperature"):
        sample_completions(model, tok, prompts, 1, CFG, seed=0, temperature=-1.0)
    with pytest.raises(BadInput, match="room"):
        sample_completions(model, tok, prompts, 1, SamplingConfig(max_new_tokens=192), seed=0)


def test_overlong_prompt_is_cut_from_the_left(model, tok) -> None:  # type: ignore[no-untyped-def]
    long_prompt = "def f(x):\n" + "    x = x + 1\n" * 100
    with pytest.warns(UserWarning, match="cut from the left"):
        [[c]] = sample_completions(model, tok, [long_prompt], 1, CFG, seed=0)
    assert c.n_tokens <= CFG.max_new_tokens
    assert math.isfinite(c.mean_logprob) and c.mean_logprob <= 0


def _key(out: list[list[Completion]]) -> list[list[tuple[str, int, int]]]:
    return [[(c.text, c.n_tokens, c.n_generated) for c in per] for per in out]


def _close(got: list[list[Completion]], want: list[list[Completion]]) -> None:
    assert _key(got) == _key(want)
    for g_per, w_per in zip(got, want, strict=True):
        for g, w in zip(g_per, w_per, strict=True):
            assert g.mean_logprob == pytest.approx(w.mean_logprob, abs=1e-5)


# short stops that the random model hits at different steps, so rows end mid-wave
_STOPS = ("\n", "(", ":")


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.8, 0.9)])
def test_samples_identical_across_batch_sizes_and_orderings(model, tok, prompts, temperature,
                                                            top_p) -> None:  # type: ignore[no-untyped-def]
    """The contract: sample i of a prompt depends on (model, config, temperature, stop,
    seed, prompt, i) only, never on which other rows share its batch, the order of
    the prompts, duplicates, or when rows leave the batch."""
    def run(ps: list[str], batch_size: int) -> list[list[Completion]]:
        cfg = SamplingConfig(max_new_tokens=16, batch_size=batch_size, top_p=top_p)
        return sample_completions(model, tok, ps, 3, cfg, seed=21, temperature=temperature,
                                  stop=_STOPS)

    want = run(prompts, 64)
    assert len({c.n_generated for per in want for c in per}) > 2  # rows end at many steps
    for batch_size in (1, 2, 5, 7, 16):
        _close(run(prompts, batch_size), want)
    order = [3, 1, 4, 0, 2, 1]  # shuffled, with a duplicate
    got = run([prompts[i] for i in order], 4)
    _close(got, [want[i] for i in order])


def test_host_checks_every_few_steps_end_rows_at_the_same_step(model, tok, prompts,
                                                               monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Reading the tokens every k steps instead of every step changes no output:
    stops, EOS and lengths are checked for every step that was read late."""
    cfg = SamplingConfig(max_new_tokens=16, batch_size=64)
    results = []
    for every in (1, 3, 16):
        monkeypatch.setitem(sampling._CHECK_EVERY, "cpu", every)
        results.append(sample_completions(model, tok, prompts, 3, cfg, seed=4,
                                          temperature=1.0, stop=_STOPS))
    _close(results[1], results[0])
    _close(results[2], results[0])


@pytest.mark.parametrize("arch", ARCHS)
def test_static_step_matches_eager(arch, tok, prompts, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The fixed-shape step that CUDA graphs capture, run eagerly on CPU, gives the
    eager sampler's results (GPU-free check of everything but the capture)."""
    arch_model = random_model(arch, len(tok), seed=5, tied=False)
    cfg = SamplingConfig(max_new_tokens=16, batch_size=5)
    runs = {}
    for mode in ("eager", "static"):
        monkeypatch.setenv("COLLAPSE_BENCH_SAMPLER", mode)
        runs[mode] = sample_completions(arch_model, tok, prompts, 3, cfg, seed=8,
                                        temperature=1.0, stop=_STOPS)
        assert sampling.LAST_RUN["mode"] == mode
    _close(runs["static"], runs["eager"])
