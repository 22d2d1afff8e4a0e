"""Batched sampling of completions: the hot path of every generation.

`model.generate` is built for one batch of equal work; the loop needs thousands of
short, stop-terminated completions, n per prompt, reproducibly. So this module
runs its own decode loop over the model's KV cache:

* **Prefill once per prompt.** The n samples of a prompt share its prefix: the
  prompt is run once and its cache rows are copied n times.
* **Nothing per token crosses to the host.** Picked tokens and their scores are
  written into preallocated device buffers; the host reads them every few steps
  (`_CHECK_EVERY`), then checks EOS, length and stop sequences for the steps it
  missed, in order, so a row ends at exactly the step it would have ended at if
  checked every step. A finished row computes a few dead steps at most, which is
  cheap next to a host sync per token on a GPU.
* **Finished rows stop costing compute.** Once a quarter of the rows have ended
  they are dropped from the batch and the cache.
* **No per-step allocation.** The KV cache writes into buffers sized for prompt +
  max_new_tokens, and the attention mask is built once per wave and sliced.
  Where the model takes a prepared 4-D mask (SDPA attention), the per-step
  mask construction inside transformers is skipped as well.
* **CUDA graphs.** On CUDA each decode step (forward + token pick + buffer
  updates) is captured once per batch size and replayed, which removes the
  Python and launch overhead that dominates small models and large batches. A
  captured step is checked against the eager step it recorded; any failure or
  mismatch falls back to eager decoding for the rest of the call.
* **Per-sample randomness.** Each sample draws its uniforms from its own generator,
  seeded by (seed, prompt text, sample index), and picks tokens by inverse CDF. The
  same seed therefore gives the same completions whatever else is in the batch, in
  any order (up to float rounding of batched matmuls flipping a near-tie, which
  needs a uniform within ~1e-7 of a CDF boundary). Duplicate prompts in one call
  get identical samples.
* **Confidence.** Each completion carries the mean log-probability of its kept
  tokens under the model at temperature 1 (the `perplexity:Q` filter's score).
* **Watermark.** With `sampling.watermark` (or the `watermark` argument) set, each
  pick adds the keyed green-list bias of `harness.model.watermark` to the logits
  (Kirchenbauer et al. 2023; SWEET's entropy gate when set), from the row's
  previous token: the prompt's last token at step 0, then the previous pick. The
  recorded confidence stays the *unbiased* model's: the `perplexity:Q` filter and
  the detectors ask how likely the model itself finds a text, not the sampler.
  The bias is device tensor ops only, so the CUDA graph path captures it too.

`COLLAPSE_BENCH_SAMPLER` picks the decode path: `auto` (default: CUDA graphs on
CUDA where supported, else eager), `eager` (growing cache), `static` (the graph
path's fixed-shape step, run eagerly: how it is tested without a GPU) or `graphs`.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import inspect
import os
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from harness.config import SamplingConfig
from harness.errors import BadInput
from harness.model.formats import PromptFormat
from harness.model.runtime import max_positions, output_vocab_size
from harness.model.watermark import Watermark, WatermarkSpec, parse_watermark
from tasks.postprocess import STOP_SEQUENCES, truncate_completion

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# Compact the batch once this fraction of its rows has finished: dropping rows
# copies the whole KV cache, so doing it on every finished row costs more than
# running a few dead rows for a step or two. With CUDA graphs a compaction also
# means a new capture, so it waits for half the rows.
_COMPACT_FRACTION = 0.25
_COMPACT_FRACTION_GRAPHS = 0.5

# Steps between host reads of the picked tokens, per device type. On CPU a read
# is free and dead steps cost real compute; on a GPU every read stalls the queue.
_CHECK_EVERY = {"cpu": 2, "cuda": 8}
_CHECK_EVERY_DEFAULT = 4

_MODES = ("auto", "eager", "static", "graphs")

LAST_RUN: dict[str, Any] = {}
"""Diagnostics of the latest call (decode path, CUDA graph captures, why graphs were
given up), for benchmarks and bug reports; nothing reads it."""

# Models on which a CUDA graph capture failed: later calls go eager straight away.
_GRAPHS_FAILED: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


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
    fmt: PromptFormat | None = None,
    watermark: str | None = None,
) -> list[list[Completion]]:
    """n completions for each prompt, in prompt order; see the module docstring.

    temperature: overrides cfg.temperature; 0 means greedy (then all n samples of a
    prompt are equal). Sample i of a prompt depends only on (model, cfg, temperature,
    stop, seed, prompt text, i). progress: False, True, or a tqdm description.
    fmt: the prompt format (harness.model.formats): prompts are task prompts, the
    model sees `fmt.model_input`, decoding stops at `fmt.stops` (instead of `stop`),
    and each text is `fmt.finish`ed and made relative to the original prompt. None:
    the prompt is the model input as given, cut by `truncate_completion`.
    watermark: a watermark spec (`harness.model.watermark.parse_watermark`) overriding
    cfg.watermark, '' for none: the loop samples one generation both ways.
    """
    temp = cfg.temperature if temperature is None else temperature
    _validate(n, temp, cfg)
    mark = parse_watermark(cfg.watermark if watermark is None else watermark)
    if n == 0 or not prompts:
        return [[] for _ in prompts]
    stops = fmt.stops if fmt is not None else stop
    sampler = _Sampler(model, tokenizer, cfg, temp, tuple(s for s in stops if s), fmt, mark)
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


def decode_path() -> str:
    """The decode path requested through $COLLAPSE_BENCH_SAMPLER (default auto)."""
    mode = os.environ.get("COLLAPSE_BENCH_SAMPLER", "auto").strip().lower() or "auto"
    if mode not in _MODES:
        raise BadInput(f"COLLAPSE_BENCH_SAMPLER={mode!r}; use one of {', '.join(_MODES)}")
    return mode


@dataclass
class _Row:
    """Decode state of one sample, as far as the host has read it."""

    prompt_index: int
    sample_index: int
    tokens: list[int]
    logprobs: list[float]
    done: bool = False


class _Sampler:
    """One call's worth of decoding state that does not change between waves."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                 cfg: SamplingConfig, temperature: float, stop: tuple[str, ...],
                 fmt: PromptFormat | None = None,
                 watermark: WatermarkSpec | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.fmt = fmt
        self.cfg = cfg
        self.temperature = temperature
        self.stop = stop
        self.device = next(model.parameters()).device
        self.eos_ids = _eos_ids(model, tokenizer)
        self.pad_id = _pad_id(model, tokenizer)
        self.forward_kwargs = _forward_kwarg_names(model)
        self.limit = max_positions(model)
        self.decode_batch = _batch_decoder(tokenizer)
        self.check_every = _CHECK_EVERY.get(self.device.type, _CHECK_EVERY_DEFAULT)
        self.mask_4d = _takes_4d_bool_mask(model)
        mode = decode_path()
        if mode == "auto":
            mode = "graphs" if self.device.type == "cuda" else "eager"
        if mode in ("static", "graphs") and not self.mask_4d:
            mode = "eager"  # the fixed-shape step needs a prepared mask
        if mode == "graphs" and self.device.type != "cuda":
            mode = "static"
        self.mode = mode
        # why graphs were given up, if they were
        self.graphs_failed: str | None = _GRAPHS_FAILED.get(model)
        self.captures = 0
        self.graph_pool: Any = None
        self.watermark_spec = watermark
        # built at the first pick (eager, before any capture), on the logits' device
        self.watermark: Watermark | None = None

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
            ids = (self.fmt.input_ids(prompt) if self.fmt is not None
                   else list(self.tokenizer(prompt)["input_ids"]))
            if not ids:
                ids = [min(self.eos_ids) if self.eos_ids else self.pad_id]
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
                    rows = self._decode_wave(wave, prompts, encoded, seed, bar.update)
                    for row, completion in zip(rows, self._finish(rows, prompts),
                                               strict=True):
                        out[row.prompt_index][row.sample_index] = completion
        finally:
            self.model.train(was_training)
            if self.graphs_failed is not None:
                _GRAPHS_FAILED[self.model] = self.graphs_failed
            LAST_RUN.clear()
            LAST_RUN.update(mode=self.mode, check_every=self.check_every,
                            mask_4d=self.mask_4d, graph_captures=self.captures,
                            graphs_failed=self.graphs_failed)
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

        logits, cache, prompt_mask, last = self._prefill(wave, prompts, encoded, max_new)
        uniforms = torch.stack([
            torch.rand(max_new, generator=torch.Generator().manual_seed(
                sample_seed(seed, prompts[p], s)), dtype=torch.float64)
            for p, s in wave]).to(self.device)
        state = _WaveState.start(self, logits, cache, prompt_mask, uniforms, max_new, last)

        active = list(range(len(rows)))  # row index of each batch position
        read = 0  # steps the host has read
        fraction = _COMPACT_FRACTION_GRAPHS if state.static else _COMPACT_FRACTION
        for step in range(1, max_new + 1):
            if step - read >= self.check_every or step == max_new:
                newly = self._read(state, rows, active, read, step)
                read = step
                advance(newly)
                finished = sum(rows[r].done for r in active)
                if finished == len(active):
                    break
                if finished >= max(1, int(fraction * len(active))):
                    keep_pos = [pos for pos, r in enumerate(active) if not rows[r].done]
                    state.select(torch.tensor(keep_pos, device=self.device))
                    active = [active[pos] for pos in keep_pos]
            if step < max_new:
                state.step(step)
        return rows

    def _read(self, state: _WaveState, rows: list[_Row], active: list[int],
              start: int, end: int) -> int:
        """Copy steps [start, end) of the live rows to the host and end the rows that
        finished there, at the step they finished; returns how many did. One device
        sync per call."""
        block = torch.cat([state.out_tok[:, start:end].to(torch.float64),
                           state.out_lp[:, start:end].to(torch.float64)], dim=1).tolist()
        width = end - start
        max_new = self.cfg.max_new_tokens
        fresh: list[tuple[int, int, int]] = []  # (row, first new token, last stop-checked)
        newly = 0
        for pos, r in enumerate(active):
            row = rows[r]
            if row.done:
                continue
            values = block[pos]
            first = len(row.tokens)
            for j in range(width):
                token = int(values[j])
                row.tokens.append(token)
                row.logprobs.append(values[width + j])
                if token in self.eos_ids or len(row.tokens) >= max_new:
                    row.done = True
                    newly += 1
                    break
            # the token that ended a row by EOS or length is not stop-checked
            fresh.append((r, first, len(row.tokens) - (1 if row.done else 0)))
        for r, keep in self._stops(rows, fresh):
            row = rows[r]
            del row.tokens[keep:], row.logprobs[keep:]
            if not row.done:
                row.done = True
                newly += 1
        return newly

    def _stops(self, rows: list[_Row],
               fresh: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
        """(row, tokens to keep) for the rows whose newly read tokens completed a stop
        sequence; fresh: (row, index of its first new token, tokens up to the last
        one to check).

        The rule per step: a stop completed by the newest token lies in the last
        `len(stop)` characters, which the last `len(stop) + 1` tokens cover (tokens
        decode to at least one character each; the extra one absorbs a tokenizer
        rendering a window's first token differently). One decode per row of the new
        tokens plus that margin finds the rows worth a closer look; for those, the
        per-step windows in order give the exact step. A stop missed here (exotic
        multi-byte splits) only costs compute: `_finish` cuts the full text anyway.
        """
        fresh = [(r, first, last) for r, first, last in fresh if last > first]
        if not self.stop or not fresh:
            return []
        margin = max(len(s) for s in self.stop) + 1
        spans = [rows[r].tokens[max(first + 1 - margin, 0):last] for r, first, last in fresh]
        found: list[tuple[int, int]] = []
        for (r, first, last), text in zip(fresh, self.decode_batch(spans), strict=True):
            if not any(s in text for s in self.stop):
                continue
            tokens = rows[r].tokens
            ends = range(first + 1, last + 1)
            windows = [tokens[max(e - margin, 0):e] for e in ends]
            for e, window in zip(ends, self.decode_batch(windows), strict=True):
                if any(s in window for s in self.stop):
                    found.append((r, e))
                    break
        return found

    def _prefill(self, wave: list[tuple[int, int]], prompts: list[str],
                 encoded: dict[str, list[int]], max_new: int
                 ) -> tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor]:
        """Run each distinct prompt of the wave once, then fan its cache rows out to
        the wave's samples: (next-token logits, cache, attention mask, last prompt
        token), one row each."""
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
        return logits[fan], cache, mask[fan], ids[fan, -1]  # left-padded: -1 is the last

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

    def _pick(self, logits: torch.Tensor, u: torch.Tensor, prev: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Next token per row (greedy or inverse-CDF sampling) and its log-prob at T=1
        under the model; with a watermark the pick is from the biased logits (`prev`:
        each row's previous token), the log-prob still the unbiased one."""
        logp = torch.log_softmax(logits, dim=-1)
        if self.watermark_spec is not None:
            logits = self._watermark(logits).bias(logits, prev, logp)
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

    def _watermark(self, logits: torch.Tensor) -> Watermark:
        """The green lists over the logits' width (the model's output vocabulary: what a
        detector builds them over too, `harness.model.runtime.output_vocab_size`)."""
        if self.watermark is None:
            assert self.watermark_spec is not None
            width = int(logits.shape[-1])
            expected = output_vocab_size(self.model)
            if width != expected:  # a detector would build other green lists
                raise RuntimeError(f"logits have {width} columns but the model's output "
                                   f"vocabulary is {expected}; cannot watermark")
            self.watermark = Watermark(self.watermark_spec, width, logits.device)
        return self.watermark

    # -- results ---------------------------------------------------------------------

    def _finish(self, rows: list[_Row], prompts: list[str]) -> list[Completion]:
        kept = [[t for t in row.tokens if t not in self.eos_ids] for row in rows]
        out: list[Completion] = []
        fmt = self.fmt
        for row, tokens, raw in zip(rows, kept, self.decode_batch(kept), strict=True):
            prompt = prompts[row.prompt_index]
            text = (fmt.finish(prompt, raw) if fmt is not None
                    else truncate_completion(raw, self.stop))
            k = self._tokens_covering(tokens, len(text)) if text else 0
            if fmt is not None:
                text = fmt.relative_to_prompt(prompt, text)
            scored = row.logprobs[:max(k, 1)]
            mean = sum(scored) / len(scored) if scored else 0.0
            out.append(Completion(text=text, mean_logprob=float(mean), n_tokens=k,
                                  n_generated=len(row.tokens)))
        return out

    def _tokens_covering(self, tokens: list[int], length: int) -> int:
        """Fewest leading tokens whose decoded text is at least `length` characters long."""
        lo, hi = 1, len(tokens)
        while lo < hi:
            mid = (lo + hi) // 2
            if len(self.decode_batch([tokens[:mid]])[0]) >= length:
                hi = mid
            else:
                lo = mid + 1
        return lo


class _WaveState:
    """The device side of one wave: KV cache, mask, positions, uniforms, and the
    buffers the picked tokens and their scores are written into.

    Two step kinds share these buffers. Eager (`static` False): the cache grows by a
    slice per step and the mask is a prefix of a preallocated all-ones tail. Static:
    every tensor keeps its shape and address, the step's position lives in device
    tensors, and the cache attends over its full capacity under the mask, so the
    whole step can be captured as one CUDA graph and replayed.
    """

    def __init__(self, sampler: _Sampler, cache: Any, static: bool) -> None:
        self.sampler = sampler
        self.cache = cache
        self.static = static
        self.width = 0  # prompt columns (left-padded)
        self.capacity = 0  # prompt columns + max_new_tokens
        self.mask_store: torch.Tensor = torch.empty(0)  # `mask` padded to 8n columns
        self.mask: torch.Tensor = torch.empty(0)
        self.positions: torch.Tensor = torch.empty(0)
        self.ids: torch.Tensor = torch.empty(0)
        self.uniforms: torch.Tensor = torch.empty(0)
        self.out_tok: torch.Tensor = torch.empty(0)
        self.out_lp: torch.Tensor = torch.empty(0)
        self.step_t: torch.Tensor = torch.empty(0)  # static: step being picked
        self.graph: Any = None
        self.use_graphs = static and sampler.mode == "graphs" and sampler.graphs_failed is None

    @classmethod
    def start(cls, sampler: _Sampler, logits: torch.Tensor, cache: Any,
              prompt_mask: torch.Tensor, uniforms: torch.Tensor, max_new: int,
              last_prompt_tokens: torch.Tensor) -> _WaveState:
        """State after the prefill, with step 0 (picked from the prefill's logits) done."""
        static = sampler.mode in ("static", "graphs") and _is_ours(cache)
        self = cls(sampler, cache, static)
        batch, width = prompt_mask.shape
        device = prompt_mask.device
        self.width = width
        # rows padded to a multiple of 8 columns: memory-efficient SDPA kernels want
        # an aligned mask row stride and copy a misaligned mask on every layer
        capacity = width + max_new
        padded = -(-capacity // 8) * 8
        full = torch.zeros((batch, padded), dtype=prompt_mask.dtype, device=device)
        full[:, :width] = prompt_mask
        if not static:
            full[:, width:] = 1
        if sampler.mask_4d:
            full = full.bool()[:, None, None, :]
        self.mask_store = full
        self.capacity = capacity
        self.mask = full[..., :capacity]
        self.positions = prompt_mask.sum(dim=1, keepdim=True)
        self.uniforms = uniforms
        self.out_tok = torch.zeros((batch, max_new), dtype=torch.long, device=device)
        self.out_lp = torch.zeros((batch, max_new), dtype=torch.float32, device=device)
        tokens, logprobs = sampler._pick(logits, uniforms[:, 0], last_prompt_tokens)
        self.out_tok[:, 0] = tokens
        self.out_lp[:, 0] = logprobs
        self.ids = tokens[:, None].clone()
        if static:
            control = _CacheControl.of(cache)
            assert control is not None
            control.slot = torch.full((1,), width, dtype=torch.long, device=device)
            self.step_t = torch.ones((1,), dtype=torch.long, device=device)
        return self

    def step(self, step: int) -> None:
        """Feed the token picked at `step - 1`, pick the one at `step`."""
        if not self.static:
            sampler = self.sampler
            logits, self.cache = sampler._forward(self.ids, self.mask[..., :self.width + step],
                                                  self.positions, self.cache)
            tokens, logprobs = sampler._pick(logits, self.uniforms[:, step], self.ids[:, 0])
            self.out_tok[:, step] = tokens
            self.out_lp[:, step] = logprobs
            self.ids[:, 0] = tokens
            self.positions += 1
            return
        if self.use_graphs:
            if self.graph is None:
                self._capture(step)  # runs this step eagerly on the way
                return
            self.graph.replay()
            return
        self._static_step()

    def _static_step(self) -> None:
        """One fixed-shape step: every input and output is a persistent buffer and
        the step index lives on the device, so a CUDA graph can replay it."""
        sampler = self.sampler
        control = _CacheControl.of(self.cache)
        assert control is not None
        self.mask.index_fill_(3, control.slot, True)
        logits, _ = sampler._forward(self.ids, self.mask, self.positions, self.cache)
        u = self.uniforms.index_select(1, self.step_t)[:, 0]
        tokens, logprobs = sampler._pick(logits, u, self.ids[:, 0])
        self.out_tok.index_copy_(1, self.step_t, tokens[:, None])
        self.out_lp.index_copy_(1, self.step_t, logprobs[:, None])
        self.ids.copy_(tokens[:, None])
        self.positions.add_(1)
        control.slot.add_(1)
        self.step_t.add_(1)

    def _capture(self, step: int) -> None:
        """Run `step` eagerly (also the warm-up a capture needs), record the same step
        as a CUDA graph, then check the graph: rewind the step's counters, replay,
        and compare with the eager result. Any error or mismatch turns graphs off
        for the rest of the call; the eager result stands either way."""
        sampler = self.sampler
        control = _CacheControl.of(self.cache)
        assert control is not None and control.slot is not None
        side = torch.cuda.Stream(device=self.out_tok.device)
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self._static_step()
        torch.cuda.current_stream().wait_stream(side)
        want_tok = self.out_tok[:, step].clone()
        want_lp = self.out_lp[:, step].clone()
        positions_after = self.positions.clone()
        try:
            if sampler.graph_pool is None:
                sampler.graph_pool = torch.cuda.graph_pool_handle()
            graph = _capture_graph(self._static_step, sampler.graph_pool)
            # rewind to before `step` and replay it
            self.ids.copy_(self.out_tok[:, step - 1:step])
            self.positions.sub_(1)
            control.slot.sub_(1)
            self.step_t.sub_(1)
            graph.replay()
            same = self.out_tok[:, step] == want_tok
            close = torch.isclose(self.out_lp[:, step], want_lp, rtol=1e-3, atol=1e-3)
            agree = float((same & close).float().mean())
            if agree < 0.99:
                raise RuntimeError(f"graph replay disagrees with eager on "
                                   f"{1 - agree:.1%} of rows")
            self.graph = graph
            sampler.captures += 1
        except Exception as exc:  # capture is best effort: eager is always right
            sampler.graphs_failed = f"{type(exc).__name__}: {str(exc)[:300]}"
            warnings.warn(f"CUDA graphs off for this call ({sampler.graphs_failed}); "
                          "decoding eagerly", stacklevel=2)
            self.use_graphs = False
            with contextlib.suppress(Exception):  # surface (and clear) a pending error
                torch.cuda.synchronize()
        # whatever happened above, leave the state of the eager `step`
        self.out_tok[:, step] = want_tok
        self.out_lp[:, step] = want_lp
        self.ids.copy_(want_tok[:, None])
        self.positions.copy_(positions_after)
        self.step_t.fill_(step + 1)
        control.slot.fill_(self.width + step)

    def select(self, keep: torch.Tensor) -> None:
        """Keep only the batch rows `keep` (finished rows leave the batch)."""
        self.cache.batch_select_indices(keep)
        self.mask_store = self.mask_store[keep]
        self.mask = self.mask_store[..., :self.capacity]
        self.positions = self.positions[keep]
        self.ids = self.ids[keep]
        self.uniforms = self.uniforms[keep]
        self.out_tok = self.out_tok[keep]
        self.out_lp = self.out_lp[keep]
        self.graph = None  # addresses changed: capture again at the next step


def _capture_graph(fn: Callable[[], None], pool: Any) -> Any:
    """`fn` recorded as a CUDA graph on a side stream (not run).

    `torch.cuda.graph` would also run a full `gc.collect()` and `empty_cache()` per
    capture: tens of milliseconds, and a sampler captures once per wave and batch
    size. Python's collector is paused instead, so no finalizer runs mid-capture;
    "thread_local" lets other threads (executor pools) keep using CUDA meanwhile.
    """
    graph = torch.cuda.CUDAGraph()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    collecting = gc.isenabled()
    gc.disable()
    try:
        with torch.cuda.stream(stream):
            graph.capture_begin(pool=pool, capture_error_mode="thread_local")
            try:
                fn()
            finally:
                graph.capture_end()
    finally:
        if collecting:
            gc.enable()
    torch.cuda.current_stream().wait_stream(stream)
    return graph


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.cumsum(dim=1) - 1).clamp_(min=0)


END_TOKENS = ("<|endoftext|>", "<|im_end|>", "</s>", "<|end|>", "<|eot_id|>",
              "<|end_of_text|>", "<|EOT|>", "<end_of_turn>", "<|eom_id|>")
"""Special tokens that end a sample wherever a tokenizer defines them as special.
Decoding skips special tokens, so one that is not an end token could never end a
sample as text either (SmolLM2 declares only `<|im_end|>`, yet writes
`<|endoftext|>` at the end of a file)."""


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    """Every end token: the generation config's and the tokenizer's EOS, and the
    tokenizer's special tokens named in END_TOKENS."""
    ids: set[int] = set()
    gen_cfg = getattr(model, "generation_config", None)
    for value in (getattr(gen_cfg, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    special = set(getattr(tokenizer, "all_special_tokens", ()) or ())
    special |= {str(t) for t in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).values()
                if getattr(t, "special", False)}
    for token in END_TOKENS:
        if token in special:
            token_id = tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id >= 0:
                ids.add(token_id)
    return frozenset(ids)


def _pad_id(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> int:
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id,
                  getattr(model.config, "pad_token_id", None)):
        if isinstance(value, int):
            return value
    return 0


def _batch_decoder(tokenizer: PreTrainedTokenizerBase) -> Callable[[list[list[int]]],
                                                                   list[str]]:
    """A function decoding many id lists at once, equal to `tokenizer.decode(ids,
    skip_special_tokens=True)` for each.

    A fast tokenizer without clean-up goes straight to its Rust backend in one call
    (transformers' per-call Python checks cost more than the decoding itself);
    anything else decodes one list at a time through the tokenizer.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and not getattr(tokenizer, "clean_up_tokenization_spaces", False):
        def fast(seqs: list[list[int]]) -> list[str]:
            return backend.decode_batch(seqs, skip_special_tokens=True) if seqs else []
        return fast

    def slow(seqs: list[list[int]]) -> list[str]:
        return [tokenizer.decode(s, skip_special_tokens=True) for s in seqs]
    return slow


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


def _takes_4d_bool_mask(model: PreTrainedModel) -> bool:
    """Whether a prepared 4-D boolean mask (True = attend) goes to attention as is.

    transformers >= 4.53 (`masking_utils`) returns a 4-D mask unchanged, and SDPA
    reads booleans with that meaning; other attention kernels want other formats,
    so everything else gets the 2-D padding mask and transformers' own mask code.
    """
    try:
        from transformers import masking_utils
    except ImportError:
        return False
    if not hasattr(masking_utils, "_preprocess_mask_arguments"):
        return False
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    impl = getattr(base.config, "_attn_implementation", None)
    return impl == "sdpa"


def _is_ours(cache: Any) -> bool:
    """Whether every layer of `cache` is `_preallocated_cache`'s (what a static step
    needs; a transformers without `layer_class_to_replicate` builds its own)."""
    layers = getattr(cache, "layers", None)
    return (_CacheControl.of(cache) is not None and bool(layers)
            and all(getattr(layer, "_collapse_bench_layer", False) for layer in layers))


class _CacheControl:
    """What the sampler tells its cache layers: where a static step writes (None:
    append, the eager and prefill behaviour)."""

    def __init__(self) -> None:
        self.slot: torch.Tensor | None = None

    @staticmethod
    def of(cache: Any) -> _CacheControl | None:
        return getattr(cache, "_collapse_bench_control", None)


def _preallocated_cache(capacity: int) -> Any:
    """A DynamicCache whose layers write into preallocated buffers.

    The stock layer concatenates on every step, copying the whole cache each token;
    at a few hundred rows that copy costs more than the tiny model's forward. Until
    the sampler sets a slot the layers append and return the filled prefix; with a
    slot (a device tensor) they write there and return the whole buffer, whose
    shape and address never change (what CUDA graphs need). None (let the model
    build its own cache) where this transformers has no DynamicLayer.
    """
    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer
    except ImportError:
        return None
    control = _CacheControl()

    class _Layer(DynamicLayer):  # type: ignore[misc, valid-type]
        _collapse_bench_layer = True

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
            if control.slot is not None:
                self._kbuf.index_copy_(2, control.slot, key_states)
                self._vbuf.index_copy_(2, control.slot, value_states)
                self.keys, self.values = self._kbuf, self._vbuf
                return self._kbuf, self._vbuf
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
                end = self._kbuf.shape[-2] if control.slot is not None else self._len
                self.keys = self._kbuf[:, :, :end]
                self.values = self._vbuf[:, :, :end]

    cache = DynamicCache()
    cache.layer_class_to_replicate = _Layer
    cache._collapse_bench_control = control
    return cache
