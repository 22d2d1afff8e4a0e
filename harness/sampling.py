"""Batched sampling of completions: the hot path of every generation.

`model.generate` is built for one batch of equal work; the loop needs thousands of
short, stop-terminated completions, n per prompt, reproducibly. So this module
runs its own decode loop over the model's KV cache:

* **Prefill once per prompt.** The n samples of a prompt share its prefix: the
  prompt is run once and its cache rows are copied n times.
* **Finished rows stop costing compute.** A row ends at EOS, at a stop sequence
  (checked on the decoded text while generating) or at max_new_tokens; finished
  rows are dropped from the batch and the cache.
* **Per-sample randomness.** Each sample draws its uniforms from its own generator,
  seeded by (seed, prompt text, sample index), and picks tokens by inverse CDF. The
  same seed therefore gives the same completions whatever else is in the batch, in
  any order (up to float rounding of batched matmuls flipping a near-tie, which
  needs a uniform within ~1e-7 of a CDF boundary). Duplicate prompts in one call
  get identical samples.
* **Confidence.** Each completion carries the mean log-probability of its kept
  tokens under the model at temperature 1 (the `perplexity:Q` filter's score).
"""

from __future__ import annotations

import hashlib
import inspect
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from harness.config import SamplingConfig
from harness.errors import BadInput
from harness.models import max_positions
from tasks.postprocess import STOP_SEQUENCES, truncate_completion

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# Compact the batch once this fraction of its rows has finished: dropping rows
# copies the whole KV cache, so doing it on every finished row costs more than
# running a few dead rows for a step or two.
_COMPACT_FRACTION = 0.25


@dataclass(frozen=True)
class Completion:
    """One sampled completion.

    text: the completion, cut at the first stop sequence and post-processed by
      `truncate_completion`. mean_logprob: mean log-probability (temperature 1) of
      the tokens that produced `text`; when `text` is empty, of the token that
      ended it (0.0 if nothing was generated). n_tokens: tokens behind `text`.
    n_generated: tokens actually generated, up to and including the EOS or the
      token that completed a stop sequence (what the sample cost).
    """

    text: str
    mean_logprob: float
    n_tokens: int
    n_generated: int = 0


def sample_seed(seed: int, prompt: str, sample_index: int) -> int:
    """The generator seed of one sample: a function of (seed, prompt, index) only."""
    digest = hashlib.sha256(f"{seed}\x00{sample_index}\x00{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def sample_completions(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    n: int,
    cfg: SamplingConfig,
    seed: int,
    temperature: float | None = None,
    stop: Sequence[str] = STOP_SEQUENCES,
    progress: bool | str = False,
) -> list[list[Completion]]:
    """n completions for each prompt, in prompt order; see the module docstring.

    temperature: overrides cfg.temperature; 0 means greedy (then all n samples of a
    prompt are equal). Sample i of a prompt depends only on (model, cfg, temperature,
    stop, seed, prompt text, i). progress: False, True, or a tqdm description.
    """
    temp = cfg.temperature if temperature is None else temperature
    _validate(n, temp, cfg)
    if n == 0 or not prompts:
        return [[] for _ in prompts]
    sampler = _Sampler(model, tokenizer, cfg, temp, tuple(s for s in stop if s))
    return sampler.run(list(prompts), n, seed, progress)


def _validate(n: int, temperature: float, cfg: SamplingConfig) -> None:
    if n < 0:
        raise BadInput(f"number of samples must be >= 0, got {n}")
    if temperature < 0:
        raise BadInput(f"temperature must be >= 0, got {temperature}")
    if not 0 < cfg.top_p <= 1:
        raise BadInput(f"top_p must be in (0, 1], got {cfg.top_p}")
    if cfg.max_new_tokens < 0:
        raise BadInput(f"max_new_tokens must be >= 0, got {cfg.max_new_tokens}")
    if cfg.batch_size < 1:
        raise BadInput(f"sampling batch_size must be >= 1, got {cfg.batch_size}")


@dataclass
class _Row:
    """Decode state of one sample."""

    prompt_index: int
    sample_index: int
    tokens: list[int]
    logprobs: list[float]
    done: bool = False


class _Sampler:
    """One call's worth of decoding state that does not change between waves."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                 cfg: SamplingConfig, temperature: float, stop: tuple[str, ...]) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.temperature = temperature
        self.stop = stop
        self.device = next(model.parameters()).device
        self.eos_ids = _eos_ids(model, tokenizer)
        self.pad_id = _pad_id(model, tokenizer)
        self.forward_kwargs = _forward_kwarg_names(model)
        self.limit = max_positions(model)

    # -- prompt handling ---------------------------------------------------------

    def _encode(self, prompts: list[str]) -> dict[str, list[int]]:
        """Token ids per distinct prompt, left-truncated to leave room for the completion."""
        encoded: dict[str, list[int]] = {}
        room = None if self.limit is None else self.limit - self.cfg.max_new_tokens
        if room is not None and room < 1:
            raise BadInput(f"max_new_tokens={self.cfg.max_new_tokens} leaves no room for a "
                           f"prompt in this model's {self.limit} positions")
        truncated = 0
        for prompt in prompts:
            if prompt in encoded:
                continue
            ids = list(self.tokenizer(prompt)["input_ids"])
            if not ids:
                ids = [self.eos_ids[0] if self.eos_ids else self.pad_id]
            if room is not None and len(ids) > room:
                ids = ids[len(ids) - room:]
                truncated += 1
            encoded[prompt] = ids
        if truncated:
            warnings.warn(f"{truncated} prompt(s) longer than the model's context minus "
                          f"max_new_tokens were cut from the left", stacklevel=3)
        return encoded

    # -- the loop ------------------------------------------------------------------

    def run(self, prompts: list[str], n: int, seed: int,
            progress: bool | str) -> list[list[Completion]]:
        from harness.progress import progress_bar

        encoded = self._encode(prompts)
        # Rows of one prompt stay together (one prefill); similar lengths share a wave.
        jobs = sorted(((p, s) for p in range(len(prompts)) for s in range(n)),
                      key=lambda j: (len(encoded[prompts[j[0]]]), prompts[j[0]], j))
        out: list[list[Completion | None]] = [[None] * n for _ in prompts]
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode(), progress_bar(len(jobs), progress, "sampling",
                                                      "sample") as bar:
                for start in range(0, len(jobs), self.cfg.batch_size):
                    wave = jobs[start:start + self.cfg.batch_size]
                    for row in self._decode_wave(wave, prompts, encoded, seed, bar.update):
                        out[row.prompt_index][row.sample_index] = self._finish(row)
        finally:
            self.model.train(was_training)
        return [[c for c in per if c is not None] for per in out]

    def _decode_wave(self, wave: list[tuple[int, int]], prompts: list[str],
                     encoded: dict[str, list[int]], seed: int,
                     advance: Callable[[int], object]) -> list[_Row]:
        """Decode one wave of (prompt index, sample index) jobs to completion."""
        rows = [_Row(p, s, [], []) for p, s in wave]
        max_new = self.cfg.max_new_tokens
        if max_new == 0:
            advance(len(rows))
            return rows

        logits, cache, mask = self._prefill(wave, prompts, encoded, max_new)
        next_pos = mask.sum(dim=1, keepdim=True)
        uniforms = torch.stack([
            torch.rand(max_new, generator=torch.Generator().manual_seed(
                sample_seed(seed, prompts[p], s)), dtype=torch.float64)
            for p, s in wave]).to(self.device)

        active = list(range(len(rows)))  # row index of each batch position
        for step in range(max_new):
            tokens, logprobs = self._pick(logits, uniforms[:, step])
            token_list = tokens.tolist()
            logprob_list = logprobs.tolist()
            fresh: list[int] = []
            newly = 0
            for pos, r in enumerate(active):
                row = rows[r]
                if row.done:
                    continue
                row.tokens.append(token_list[pos])
                row.logprobs.append(logprob_list[pos])
                if token_list[pos] in self.eos_ids or len(row.tokens) >= max_new:
                    row.done = True
                    newly += 1
                else:
                    fresh.append(r)
            for r in self._hit_stop(rows, fresh):
                rows[r].done = True
                newly += 1
            advance(newly)
            finished = sum(rows[r].done for r in active)
            if finished == len(active):
                break
            if finished >= max(1, int(_COMPACT_FRACTION * len(active))):
                keep_pos = [pos for pos, r in enumerate(active) if not rows[r].done]
                keep = torch.tensor(keep_pos, device=self.device)
                cache.batch_select_indices(keep)
                mask, next_pos, uniforms, tokens = (mask[keep], next_pos[keep],
                                                    uniforms[keep], tokens[keep])
                active = [active[pos] for pos in keep_pos]
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            logits, cache = self._forward(tokens[:, None], mask, next_pos, cache=cache)
            next_pos = next_pos + 1
        return rows

    def _prefill(self, wave: list[tuple[int, int]], prompts: list[str],
                 encoded: dict[str, list[int]], max_new: int
                 ) -> tuple[torch.Tensor, Any, torch.Tensor]:
        """Run each distinct prompt of the wave once, then fan its cache rows out to
        the wave's samples: (next-token logits, cache, attention mask), one row each."""
        distinct: list[str] = []
        slot: dict[str, int] = {}
        for p, _ in wave:
            if prompts[p] not in slot:
                slot[prompts[p]] = len(distinct)
                distinct.append(prompts[p])
        ids, mask = self._left_pad([encoded[p] for p in distinct])
        logits, cache = self._forward(ids, mask, _positions(mask),
                                      cache=_preallocated_cache(ids.shape[1] + max_new))
        fan = torch.tensor([slot[prompts[p]] for p, _ in wave], device=self.device)
        cache.batch_select_indices(fan)
        return logits[fan], cache, mask[fan]

    def _left_pad(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long)
            mask[i, width - len(s):] = 1
        return ids.to(self.device), mask.to(self.device)

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor,
                 cache: Any) -> tuple[torch.Tensor, Any]:
        """Last-position logits (float32) and the updated cache."""
        cache_kw, keep_kw = self.forward_kwargs
        kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask,
                                  "position_ids": positions, "use_cache": True}
        if cache is not None:
            kwargs[cache_kw] = cache
        if keep_kw:
            kwargs[keep_kw] = 1
        out = self.model(**kwargs)
        new_cache = out.get("cache", None)
        if new_cache is None:  # transformers 4.x
            new_cache = out.get("past_key_values", None)
        return out.logits[:, -1, :].float(), new_cache

    def _pick(self, logits: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Next token per row (greedy or inverse-CDF sampling) and its log-prob at T=1."""
        logp = torch.log_softmax(logits, dim=-1)
        if self.temperature == 0:
            tokens = logits.argmax(dim=-1)
        else:
            probs = torch.softmax(logits / self.temperature, dim=-1).double()
            order = None
            if self.cfg.top_p < 1.0:
                probs, order = probs.sort(dim=-1, descending=True)
                before = probs.cumsum(dim=-1) - probs
                probs = probs.masked_fill(before >= self.cfg.top_p, 0.0)
            cdf = probs.cumsum(dim=-1)
            target = (u * cdf[:, -1])[:, None]
            idx = torch.searchsorted(cdf, target, right=True).clamp_(max=cdf.shape[1] - 1)
            tokens = idx[:, 0] if order is None else order.gather(1, idx)[:, 0]
        return tokens, logp.gather(1, tokens[:, None])[:, 0]

    def _hit_stop(self, rows: list[_Row], candidates: list[int]) -> list[int]:
        """Rows among `candidates` whose newest token completed a stop sequence.

        Checked every step, so a stop can only end in the newest token; it then lies
        in the last `len(stop)` characters, which the last `len(stop) + 1` tokens
        cover (tokens decode to at least one character each; the extra one absorbs
        a tokenizer rendering a window's first token differently). Decoding that
        window instead of the whole row keeps this cheap. A stop missed here (exotic
        multi-byte splits) only costs compute: `_finish` cuts the full text anyway.
        """
        if not self.stop or not candidates:
            return []
        window = max(len(s) for s in self.stop) + 1
        seqs = [rows[r].tokens[-window:] for r in candidates]
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:  # skips transformers' per-id Python checks: ~3x faster
            texts = backend.decode_batch(seqs, skip_special_tokens=True)
        else:
            texts = self.tokenizer.batch_decode(seqs, skip_special_tokens=True)
        return [r for r, text in zip(candidates, texts, strict=True)
                if any(s in text for s in self.stop)]

    # -- results ---------------------------------------------------------------------

    def _finish(self, row: _Row) -> Completion:
        tokens = [t for t in row.tokens if t not in self.eos_ids]
        raw = self.tokenizer.decode(tokens, skip_special_tokens=True)
        text = truncate_completion(raw, self.stop)
        k = _tokens_covering(self.tokenizer, tokens, len(text)) if text else 0
        scored = row.logprobs[:max(k, 1)]
        mean = sum(scored) / len(scored) if scored else 0.0
        return Completion(text=text, mean_logprob=float(mean), n_tokens=k,
                          n_generated=len(row.tokens))


def _tokens_covering(tokenizer: PreTrainedTokenizerBase, tokens: list[int], length: int) -> int:
    """Fewest leading tokens whose decoded text is at least `length` characters long."""
    lo, hi = 1, len(tokens)
    while lo < hi:
        mid = (lo + hi) // 2
        if len(tokenizer.decode(tokens[:mid], skip_special_tokens=True)) >= length:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.cumsum(dim=1) - 1).clamp_(min=0)


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    ids: set[int] = set()
    gen_cfg = getattr(model, "generation_config", None)
    for value in (getattr(gen_cfg, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return frozenset(ids)


def _pad_id(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> int:
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id,
                  getattr(model.config, "pad_token_id", None)):
        if isinstance(value, int):
            return value
    return 0


def _forward_kwarg_names(model: PreTrainedModel) -> tuple[str, str | None]:
    """(cache kwarg, logits-to-keep kwarg) the underlying model's forward accepts.

    transformers 5 renamed `past_key_values` to `cache`; `logits_to_keep` saves the
    LM head on every prompt position during prefill where supported.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(base.forward).parameters
    cache_kw = "cache" if "cache" in params else "past_key_values"
    keep_kw = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
    return cache_kw, keep_kw


def _preallocated_cache(capacity: int) -> Any:
    """A DynamicCache whose layers write into preallocated buffers.

    The stock layer concatenates on every step, copying the whole cache each token;
    at a few hundred rows that copy costs more than the tiny model's forward. None
    (let the model build its own cache) where this transformers has no DynamicLayer.
    """
    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer
    except ImportError:
        return None

    class _Layer(DynamicLayer):  # type: ignore[misc, valid-type]
        def lazy_initialization(self, key_states: torch.Tensor,
                                value_states: torch.Tensor) -> None:
            super().lazy_initialization(key_states, value_states)
            b, h, _, d = key_states.shape
            self._kbuf = key_states.new_zeros((b, h, capacity, d))
            self._vbuf = value_states.new_zeros((b, value_states.shape[1], capacity,
                                                 value_states.shape[-1]))
            self._len = 0

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor,
                   *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            end = self._len + key_states.shape[-2]
            if end > self._kbuf.shape[-2]:  # cannot happen in this module; stay correct
                grow = end - self._kbuf.shape[-2]
                self._kbuf = torch.cat([self._kbuf, self._kbuf[:, :, :grow]], dim=-2)
                self._vbuf = torch.cat([self._vbuf, self._vbuf[:, :, :grow]], dim=-2)
            self._kbuf[:, :, self._len:end] = key_states
            self._vbuf[:, :, self._len:end] = value_states
            self._len = end
            self.keys = self._kbuf[:, :, :end]
            self.values = self._vbuf[:, :, :end]
            return self.keys, self.values

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            if self.is_initialized:
                self._kbuf = self._kbuf[indices]
                self._vbuf = self._vbuf[indices]
                self.keys = self._kbuf[:, :, :self._len]
                self.values = self._vbuf[:, :, :self._len]

    cache = DynamicCache()
    cache.layer_class_to_replicate = _Layer
    return cache
