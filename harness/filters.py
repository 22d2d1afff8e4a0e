"""Verification filters: which self-generated completions become training data.

A filter sees every candidate of a generation with its sandbox verdict and the
model's own confidence, and returns a keep-mask. Filters are registered by name in
one registry; a spec string selects one:

    none | syntax | tests | partial:P | noisy:P | perplexity:Q   [+dedup]

`+dedup` composes with any of them: after the base filter, exact duplicate
completions of the same task are dropped (the first is kept). Every candidate is
executed whatever the filter, so acceptance, precision and recall against the full
tests can be reported for weak verifiers too.

Completions are whatever the model wrote (policy: `tasks.model_text`): every filter
gives a keep/drop for any text and any confidence value. Text Python cannot parse
for any reason (NUL bytes, 5,000 nested brackets, recursion limits) fails `syntax`;
a NaN confidence ranks last under `perplexity`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.errors import BadInput
from harness.registry import Registry
from sandbox.executor import ExecResult
from tasks.model_text import parse_python


@dataclass(frozen=True)
class Candidate:
    """One self-generated completion with everything a filter may look at."""

    task_id: str
    prompt: str
    completion: str
    result: ExecResult
    mean_logprob: float
    provenance: str = "self"            # "self" (the model's) | "human" (mixed pool)
    ai_score: float = math.nan          # detector score (harness.detection); higher = AI
    ai_threshold: float = math.nan      # scores above it are judged AI


KeepMask = list[bool]
FilterFn = Callable[[Sequence[Candidate], np.random.Generator], KeepMask]
FILTERS: Registry[Callable[[float | None], FilterFn]] = Registry("filter")


@FILTERS.register("none")
def _none(_: float | None) -> FilterFn:
    """Unverified: keep every completion."""
    return lambda cands, rng: [True] * len(cands)


@FILTERS.register("syntax")
def _syntax(_: float | None) -> FilterFn:
    """Keep completions whose program (prompt + completion) parses; nothing is run."""

    def keep(cands: Sequence[Candidate], rng: np.random.Generator) -> KeepMask:
        return [parse_python(c.prompt + c.completion) is not None for c in cands]

    return keep


@FILTERS.register("tests")
def _tests(_: float | None) -> FilterFn:
    """Full verification: keep completions that pass all of the task's tests."""
    return lambda cands, rng: [c.result.passed for c in cands]


@FILTERS.register("partial")
def _partial(p: float | None) -> FilterFn:
    """Keep completions passing at least fraction P of the separable asserts.

    A weaker verifier (e.g. only some tests available). Tasks without separable
    asserts fall back to the full verdict.
    """
    threshold = _require_fraction("partial", p)

    def keep(cands: Sequence[Candidate], rng: np.random.Generator) -> KeepMask:
        out = []
        for c in cands:
            verdicts = c.result.assert_verdicts
            if not verdicts:
                out.append(c.result.passed)
            else:
                out.append(sum(verdicts) / len(verdicts) >= threshold)
        return out

    return keep


@FILTERS.register("noisy")
def _noisy(p: float | None) -> FilterFn:
    """The full-test verdict, flipped independently with probability P (seeded)."""
    flip_prob = _require_fraction("noisy", p)

    def keep(cands: Sequence[Candidate], rng: np.random.Generator) -> KeepMask:
        flips = rng.random(len(cands)) < flip_prob
        return [c.result.passed != bool(f) for c, f in zip(cands, flips, strict=True)]

    return keep


@FILTERS.register("perplexity")
def _perplexity(q: float | None) -> FilterFn:
    """Self-judgement without execution: keep the most confident fraction Q.

    Confidence = the model's own mean token log-probability of the completion; NaN
    (a numerically broken model) counts as -inf, least confident, since NaN would
    make the sort order arbitrary. Ties are broken by candidate order, so the
    choice is deterministic.
    """
    fraction = _require_fraction("perplexity", q)

    def confidence(c: Candidate) -> float:
        return -math.inf if math.isnan(c.mean_logprob) else c.mean_logprob

    def keep(cands: Sequence[Candidate], rng: np.random.Generator) -> KeepMask:
        n_keep = round(fraction * len(cands))
        order = sorted(range(len(cands)), key=lambda i: (-confidence(cands[i]), i))
        chosen = set(order[:n_keep])
        return [i in chosen for i in range(len(cands))]

    return keep


def _require_fraction(name: str, value: float | None) -> float:
    if value is None or not 0.0 <= value <= 1.0:
        raise BadInput(f"filter {name!r} needs a fraction in [0, 1], e.g. {name}:0.5")
    return value


def dedup_mask(cands: Sequence[Candidate], keep: KeepMask) -> KeepMask:
    """Drop exact duplicate completions of the same task among those kept."""
    seen: set[tuple[str, str]] = set()
    out = []
    for c, k in zip(cands, keep, strict=True):
        key = (c.task_id, c.completion)
        if k and key not in seen:
            seen.add(key)
            out.append(True)
        else:
            out.append(False)
    return out


@dataclass(frozen=True)
class FilterSpec:
    """A parsed filter spec: base name, its parameter, and whether +dedup follows."""

    text: str
    name: str
    param: float | None
    dedup: bool

    def build(self) -> Callable[[Sequence[Candidate], np.random.Generator], KeepMask]:
        base = FILTERS.get(self.name)(self.param)
        if not self.dedup:
            return base

        def keep(cands: Sequence[Candidate], rng: np.random.Generator) -> KeepMask:
            return dedup_mask(cands, base(cands, rng))

        return keep


def parse_filter(text: str) -> FilterSpec:
    """Parse 'name', 'name:P' or either followed by '+dedup'; BadInput if unknown."""
    spec = text.strip()
    base, _, rest = spec.partition("+")
    if rest not in ("", "dedup"):
        raise BadInput(f"bad filter {text!r}: only '+dedup' may follow a filter")
    name, _, param_text = base.partition(":")
    if name == "dedup" and not param_text:
        name, rest = "none", "dedup"  # plain `dedup` = every completion, deduplicated
    FILTERS.get(name)  # unknown names fail here, listing the known ones
    param: float | None = None
    if param_text:
        try:
            param = float(param_text)
        except ValueError:
            raise BadInput(f"bad filter {text!r}: {param_text!r} is not a number") from None
    spec_obj = FilterSpec(text=spec, name=name, param=param, dedup=rest == "dedup")
    spec_obj.build()  # validate the parameter now, not mid-run
    return spec_obj


@dataclass(frozen=True)
class FilterOutcome:
    """What a filter kept and how good a verifier it was against the full tests."""

    keep: KeepMask
    acceptance_rate: float
    precision: float | None
    recall: float | None

    def to_json(self, name: str) -> dict[str, object]:
        return {"name": name, "acceptance_rate": self.acceptance_rate,
                "precision": self.precision, "recall": self.recall,
                "n_candidates": len(self.keep), "n_kept": sum(self.keep)}


def apply_filter(spec: FilterSpec, cands: Sequence[Candidate],
                 rng: np.random.Generator) -> FilterOutcome:
    """Run the filter and score it: precision = kept & passing / kept,
    recall = kept & passing / passing (None when the denominator is 0)."""
    keep = spec.build()(cands, rng)
    kept = sum(keep)
    passing = sum(c.result.passed for c in cands)
    true_pos = sum(1 for c, k in zip(cands, keep, strict=True) if k and c.result.passed)
    return FilterOutcome(
        keep=keep,
        acceptance_rate=kept / len(cands) if cands else 0.0,
        precision=true_pos / kept if kept else None,
        recall=true_pos / passing if passing else None,
    )
