"""LoRA on every architecture family the harness targets by name.

Real random-init GPT-2, Llama, Qwen2 and GPTBigCode models: the adapter lands on
the intended projections, real optimizer steps lower the loss, a saved adapter
reloads to identical logits, and the sampler stops on stop sequences.
"""

from __future__ import annotations

import pytest
import torch

from harness.config import SamplingConfig, TrainingConfig
from harness.model.sampling import sample_completions
from harness.model.training import (
    finetune_lora,
    load_adapter,
    perplexity,
    save_adapter,
    target_modules_for,
)
from tasks.postprocess import truncate_completion
from tests.model_helpers import ARCHS, pairs, random_model, state_copy, tokenizer, train_split

EXPECTED_TARGETS = {
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_bigcode": ["c_attn", "c_proj", "c_fc"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}

FAST = TrainingConfig(lora_r=8, lora_alpha=16, learning_rate=1e-2, epochs=4, batch_size=8,
                      warmup_ratio=0.0)


@pytest.mark.parametrize("arch", ARCHS)
def test_lora_trains_saves_and_reloads(arch: str, tmp_path: object) -> None:
    tok = tokenizer()
    base = random_model(arch, len(tok))
    before = state_copy(base)
    assert target_modules_for(base, "auto") == EXPECTED_TARGETS[arch]

    data = pairs(train_split()[:16])
    ppl_before = perplexity(base, tok, data)
    model, stats = finetune_lora(base, tok, data, FAST, seed=0)

    # every targeted projection got an adapter, and only adapters train
    wrapped = {n.split(".lora_A")[0].rsplit(".", 1)[-1]
               for n, _ in model.named_parameters() if ".lora_A" in n}
    assert wrapped == set(EXPECTED_TARGETS[arch])
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    # real steps, loss going down
    assert stats.steps == 8 and stats.tokens > 0 and stats.loss_tokens > 0
    assert sum(stats.losses[-2:]) < sum(stats.losses[:2])
    assert perplexity(model, tok, data) < 0.8 * ppl_before
    # the base model the caller passed in is untouched
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())

    out = tmp_path / "adapter"  # type: ignore[operator]
    save_adapter(model, out)
    reloaded = load_adapter(base, out)
    ids = tok(["def f(x):\n    return x", "def g(s):"], return_tensors="pt", padding=True)
    with torch.inference_mode():
        trained_logits = model(**ids).logits
        reloaded_logits = reloaded(**ids).logits
        base_logits = base(**ids).logits
    assert torch.equal(trained_logits, reloaded_logits)
    assert not torch.allclose(trained_logits, base_logits)


@pytest.mark.parametrize("arch", ARCHS)
def test_sampling_stops_on_stop_sequences(arch: str) -> None:
    """With a stop taken from an unstopped sample, the same seed stops right there."""
    tok = tokenizer()
    model = random_model(arch, len(tok), seed=1)
    prompts = [t.prompt for t in train_split()[:3]]
    cfg = SamplingConfig(max_new_tokens=24, batch_size=8)
    free = sample_completions(model, tok, prompts, 2, cfg, seed=5, stop=())
    checked = 0
    for prompt, per in zip(prompts, free, strict=True):
        for index, unstopped in enumerate(per):
            text = unstopped.text
            if len(text) < 8:
                continue
            stop = text[4:7]
            again = sample_completions(model, tok, [prompt], index + 1, cfg, seed=5,
                                       stop=(stop,))[0][index]
            assert stop not in again.text
            assert again.text == truncate_completion(text[:text.find(stop)], (stop,))
            assert again.n_tokens < unstopped.n_tokens
            # generation itself ended at the stop, not at max_new_tokens
            assert again.n_generated < unstopped.n_generated == cfg.max_new_tokens
            checked += 1
    assert checked >= 2
