"""Small real models and tokenizers for the model-half tests (no hub, no mocks).

Random-init networks of each supported architecture family, a couple of layers wide
enough to be real, small enough that a test's optimizer steps take milliseconds.
The tokenizer is the built-in model's own recipe (byte-level BPE) on a small corpus.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTBigCodeConfig,
    GPTBigCodeForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from harness.model.tiny import TinySpec, train_tokenizer
from tasks.schema import Task
from tasks.synthetic import generate_synth

ARCHS = ("gpt2", "llama", "qwen2", "gpt_bigcode")

SMALL_SPEC = TinySpec(n_train=300, n_eval=20, n_stdlib_files=4, vocab_size=400,
                      hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128,
                      max_positions=192, steps=40, batch_size=16, warmup_steps=4)
"""A builtin:tiny recipe scaled down to build in a few seconds (same code path)."""


@lru_cache(maxsize=1)
def synth_tasks() -> tuple[Task, ...]:
    return tuple(generate_synth(n_train=300, n_eval=20, seed=0))


def train_split() -> list[Task]:
    return [t for t in synth_tasks() if t.split == "train"]


def eval_split() -> list[Task]:
    return [t for t in synth_tasks() if t.split == "eval"]


def tokenizer() -> PreTrainedTokenizerFast:
    """A fresh copy each call (tests change padding side and such)."""
    return PreTrainedTokenizerFast.from_pretrained(_tokenizer_dir())


@lru_cache(maxsize=1)
def _tokenizer_proto() -> PreTrainedTokenizerFast:
    spec = TinySpec(n_stdlib_files=0, vocab_size=400)
    return train_tokenizer(spec, train_split())


@lru_cache(maxsize=1)
def _tokenizer_dir() -> str:
    import atexit
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="cb-tok-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    _tokenizer_proto().save_pretrained(path)
    return path


def random_model(arch: str, vocab_size: int, seed: int = 0, tied: bool = True
                 ) -> PreTrainedModel:
    """A random-init causal LM of family `arch` (eval mode, float32, on CPU).

    tied=False unties input and output embeddings: a random tied model greedily
    repeats its last input token forever, useless for checking decode machinery.
    """
    common = {"vocab_size": vocab_size, "bos_token_id": 0, "eos_token_id": 0,
              "pad_token_id": 0, "tie_word_embeddings": tied}
    torch.manual_seed(seed)
    if arch == "gpt2":
        model: PreTrainedModel = GPT2LMHeadModel(GPT2Config(
            n_embd=64, n_layer=2, n_head=2, n_positions=192, **common))
    elif arch == "gpt_bigcode":
        model = GPTBigCodeForCausalLM(GPTBigCodeConfig(
            n_embd=64, n_layer=2, n_head=2, n_positions=192, multi_query=True, **common))
    elif arch in ("llama", "qwen2"):
        cls, cfg_cls = ((LlamaForCausalLM, LlamaConfig) if arch == "llama"
                        else (Qwen2ForCausalLM, Qwen2Config))
        model = cls(cfg_cls(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                            num_key_value_heads=1, intermediate_size=128,
                            max_position_embeddings=192, **common))
    else:
        raise ValueError(arch)
    model.generation_config.eos_token_id = 0
    model.generation_config.pad_token_id = 0
    return model.eval()


def pairs(tasks: list[Task]) -> list[tuple[str, str]]:
    return [(t.prompt, t.canonical_solution) for t in tasks]


def state_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def peaked_copy(model: PreTrainedModel, scale: float) -> PreTrainedModel:
    """A copy whose output distribution is sharper (scaled LM head): a stand-in for a
    model that has been self-trained, with clear favourite continuations."""
    import copy

    out = copy.deepcopy(model)
    with torch.no_grad():
        out.lm_head.weight.mul_(scale)
    return out


def own_completions(model: PreTrainedModel, tok: PreTrainedTokenizerFast,
                    prompts: list[str]) -> list[tuple[str, str]]:
    """Greedy completions of `model`, restricted to printable-ASCII tokens: byte-level
    pieces of a multi-byte character decode to U+FFFD and would not re-tokenize to
    the ids the model chose, which would measure the tokenizer, not the detector."""
    bad = [i for i in range(len(tok))
           if not (tok.decode([i]) and tok.decode([i]).isascii() and tok.decode([i]).isprintable())]
    out = []
    for prompt in prompts:
        ids = tok(prompt, return_tensors="pt")
        gen = model.generate(**ids, max_new_tokens=20, min_new_tokens=20, do_sample=False,
                             suppress_tokens=bad)
        out.append((prompt, tok.decode(gen[0, ids["input_ids"].shape[1]:])))
    return out
