"""A generation-time watermark: the keyed green list and its z-test.

The model that writes code can mark it, and a filter can then keep marked code out
of training: the one programmatic answer to "how could AI output be excluded?"
that does not depend on guessing from the text (docs/collapse.md, "Watermarking").

**Kirchenbauer et al. 2023** ("A Watermark for Large Language Models", the
`WatermarkLogitsProcessor` of their reference code and of transformers): before
each token is picked, a keyed pseudo-random *green list*, a share gamma of the
vocabulary chosen from the previous token (context width 1, "LeftHash"), gets
delta added to its logits, before temperature. Text written that way holds more
green tokens than chance; unmarked text holds a share gamma of them whatever its
content, so the count of green tokens among T is binomial(T, gamma) under the null
and the detector is a z-test, with no model needed:

    z = (green - gamma T) / sqrt(T gamma (1 - gamma))

**Each distinct (previous token, token) pair counts once per text** (the reference
code's `ignore_repeated_ngrams`, on here always): whether a pair is green is one
coin flip of the key, however often the text repeats it, and code repeats pairs
(indentation, `):`, a name used five times). Counting repeats would give a
degenerate unmarked text (one pair forty times) z = +-10 by luck of the key, and
shifts the z of ordinary human code away from 0.

**SWEET** (Lee et al. 2023, "Who Wrote this Code? Watermarking for Code
Generation"): code has many positions where only one token is right (a closing
bracket, the name just defined); biasing those breaks programs and marks little.
With an entropy threshold, only positions whose next-token entropy under the
model (nats, temperature 1, before the bias) is at least the threshold are biased,
and only those are counted at detection, which then needs the model's entropies
(`harness.model.training.completion_entropies`). Threshold 0 is Kirchenbauer's
scheme (every entropy is >= 0).

**How the green list differs from the reference.** The reference seeds a torch
generator with key x previous token on every step of every row and draws
`randperm(V)`: a host-side call per token, O(V log V) each, which a CUDA graph
cannot capture. Here a key fixes one random order of the vocabulary (`rank`) and
one random offset per previous token (`shift`, itself a permutation, so no two
previous tokens share a list); token v is green after t iff
`(rank[v] + shift[t]) mod V < G`, G = round(gamma V). Each context's list is
exactly G tokens, and uniformly placed (a window of a random order is a uniform
G-subset), so the z-test's null is the same. For a batch it is one gather, an add,
a remainder and a compare on the device. What differs: two contexts' lists are
windows of one order, so they overlap by an amount set by their offsets' distance
rather than independently (gamma G on average either way). That would matter to
an attacker reconstructing lists, which the benchmark does not model; it does not
change what a detector sees of unmarked text.

Everything here is torch-free at import (`parse_watermark` runs when a config is
validated, before any model is loaded); torch is imported where tensors are made.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import BadInput

if TYPE_CHECKING:
    import torch

RADIOACTIVE_Z = 4.0
"""A z above which a sample counts as marked in the radioactivity share (Kirchenbauer
et al.'s usual threshold: a false positive rate of about 3e-5 under the null)."""


@dataclass(frozen=True)
class WatermarkSpec:
    """key: the secret (a non-negative int) both the sampler and the detector know;
    delta: logit bias of green tokens (> 0); gamma: green share of the vocabulary, in
    (0, 1); entropy: SWEET's threshold in nats (0 = bias and count every token)."""

    key: int
    delta: float = 2.0
    gamma: float = 0.25
    entropy: float = 0.0

    @property
    def text(self) -> str:
        """The spec as `--watermark` takes it (every part spelled out)."""
        return f"{self.key}:{self.delta:g}:{self.gamma:g}:{self.entropy:g}"


def parse_watermark(text: str) -> WatermarkSpec | None:
    """'KEY[:delta[:gamma[:entropy]]]' -> WatermarkSpec; '' -> None (no watermark).

    BadInput (one line) for anything else: a key that is not a non-negative
    integer, delta <= 0, gamma outside (0, 1), a negative entropy, a part that is
    not a number, or more than four parts.
    """
    text = text.strip()
    if not text:
        return None
    parts = text.split(":")
    if len(parts) > 4:
        raise BadInput(f"watermark {text!r}: use KEY[:delta[:gamma[:entropy]]] (at most 4 parts)")
    if not parts[0].isdigit():
        raise BadInput(f"watermark {text!r}: the key must be a non-negative integer, "
                       f"got {parts[0]!r}")
    values: list[float] = []
    for name, part in zip(("delta", "gamma", "entropy"), parts[1:], strict=False):
        try:
            value = float(part)
        except ValueError:
            raise BadInput(f"watermark {text!r}: {name} {part!r} is not a number") from None
        if not math.isfinite(value):
            raise BadInput(f"watermark {text!r}: {name} must be finite, got {part!r}")
        values.append(value)
    spec = WatermarkSpec(int(parts[0]), *values)
    if spec.delta <= 0:
        raise BadInput(f"watermark {text!r}: delta must be > 0, got {spec.delta:g}")
    if not 0 < spec.gamma < 1:
        raise BadInput(f"watermark {text!r}: gamma must be in (0, 1), got {spec.gamma:g}")
    if spec.entropy < 0:
        raise BadInput(f"watermark {text!r}: entropy must be >= 0, got {spec.entropy:g}")
    return spec


def z_from_counts(green: int, counted: int, gamma: float) -> float:
    """The one-proportion z of `green` hits among `counted` tokens; NaN when none counted."""
    if counted <= 0:
        return math.nan
    return (green - gamma * counted) / math.sqrt(counted * gamma * (1.0 - gamma))


class Watermark:
    """A spec's green lists over a vocabulary of `vocab_size` ids, on one device.

    The tables depend only on (key, vocab_size), never on the device, so the
    sampler on a GPU and a detector on a CPU agree token for token.
    """

    def __init__(self, spec: WatermarkSpec, vocab_size: int,
                 device: torch.device | str = "cpu") -> None:
        import torch

        if vocab_size < 2:
            raise ValueError(f"a watermark needs a vocabulary of >= 2 ids, got {vocab_size}")
        self.spec = spec
        self.vocab_size = vocab_size
        self.n_green = min(max(round(spec.gamma * vocab_size), 1), vocab_size - 1)
        digest = hashlib.sha256(f"collapse-bench watermark\x00{spec.key}".encode()).digest()
        generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
        # int32: rank + shift < 2V fits, and the (rows x V) temporaries are half the size
        self.rank = torch.randperm(vocab_size, generator=generator).to(torch.int32).to(device)
        # a permutation too: distinct previous tokens get distinct lists
        self.shift = torch.randperm(vocab_size, generator=generator).to(torch.int32).to(device)

    # -- the green list -------------------------------------------------------------

    def green_mask(self, prev_tokens: torch.Tensor) -> torch.Tensor:
        """(rows, V) booleans: the green list after each row's previous token."""
        offsets = self.shift.index_select(0, prev_tokens.reshape(-1) % self.vocab_size)
        return (self.rank[None, :] + offsets[:, None]) % self.vocab_size < self.n_green

    def is_green(self, prev_tokens: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Elementwise: is `tokens[i]` green after `prev_tokens[i]`."""
        v = self.vocab_size
        return (self.rank.index_select(0, tokens.reshape(-1) % v)
                + self.shift.index_select(0, prev_tokens.reshape(-1) % v)) % v < self.n_green

    # -- sampling -------------------------------------------------------------------

    def bias(self, logits: torch.Tensor, prev_tokens: torch.Tensor,
             logprobs: torch.Tensor | None = None) -> torch.Tensor:
        """`logits` (rows x V, before temperature) with delta added to each row's green
        tokens; under SWEET only on rows whose entropy (from `logprobs`, the rows'
        log-softmax at temperature 1, computed here when not given) reaches the
        threshold. Device tensor ops only, so a CUDA graph can capture it."""
        import torch

        add = self.green_mask(prev_tokens).to(logits.dtype) * self.spec.delta
        if self.spec.entropy > 0:
            logp = torch.log_softmax(logits, dim=-1) if logprobs is None else logprobs
            add = add * (entropy_of(logp) >= self.spec.entropy).to(logits.dtype)[:, None]
        return logits + add

    # -- detection ------------------------------------------------------------------

    def counted(self, token_ids: Sequence[int], prev_context_token: int | None,
                entropies: Sequence[float] | None = None) -> list[tuple[int, int]]:
        """The distinct (previous token, token) pairs a detector counts, in order of
        first appearance.

        The first token's context is `prev_context_token` (the prompt's last token;
        None: the first token is not counted). With a SWEET threshold only positions
        whose entropy reaches it count, so `entropies` (one per token) are required.
        """
        levels: Sequence[float] = [math.inf] * len(token_ids)
        if self.spec.entropy > 0:
            if entropies is None:
                raise ValueError("a SWEET watermark (entropy > 0) needs the model's entropies")
            if len(entropies) != len(token_ids):
                raise ValueError(f"{len(entropies)} entropies for {len(token_ids)} tokens")
            levels = entropies
        prevs: list[int | None] = [prev_context_token, *token_ids][:len(token_ids)]
        pairs = [(p, t) for p, t, level in zip(prevs, token_ids, levels, strict=True)
                 if p is not None and level >= self.spec.entropy]
        return list(dict.fromkeys(pairs))

    def green_count(self, pairs: Sequence[tuple[int, int]]) -> int:
        """How many (previous token, token) pairs are green."""
        import torch

        if not pairs:
            return 0
        table = torch.tensor(pairs, dtype=torch.long, device=self.rank.device)
        return int(self.is_green(table[:, 0], table[:, 1]).sum())

    def z_score(self, token_ids: Sequence[int], prev_context_token: int | None,
                entropies: Sequence[float] | None = None) -> float:
        """Kirchenbauer's z over the counted pairs (`counted`); NaN when none count."""
        pairs = self.counted(token_ids, prev_context_token, entropies)
        return z_from_counts(self.green_count(pairs), len(pairs), self.spec.gamma)

    def pooled_z_score(self, texts: Iterable[tuple[Sequence[int], int | None,
                                                   Sequence[float] | None]]) -> float:
        """One z over many texts, each distinct (previous token, token) pair counted
        once across all of them.

        Sander et al. 2024 ("Watermarking Makes Language Models Radioactive") test a
        model's outputs this way: samples of one model share most of their pairs, and
        a shared pair is one coin flip, not one per sample; counting it once keeps
        the binomial null honest when many samples are pooled. texts: (token ids,
        previous context token, entropies or None) per text.
        """
        seen: dict[tuple[int, int], None] = {}
        for tokens, prev, entropies in texts:
            seen.update(dict.fromkeys(self.counted(tokens, prev, entropies)))
        pairs = list(seen)
        return z_from_counts(self.green_count(pairs), len(pairs), self.spec.gamma)


def entropy_of(logprobs: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of each row's distribution, from its log-probabilities (a
    zero-probability token adds 0, not NaN)."""
    import torch

    return torch.special.entr(logprobs.exp()).sum(dim=-1)
