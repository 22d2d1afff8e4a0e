"""Verification filters: which self-generated completions become training data.

A filter sees every candidate of a generation with its sandbox verdict and the
model's own confidence, and returns a keep-mask. Filters are registered by name in
one registry; a spec string selects one:

    none | syntax | tests | partial:P | noisy:P | perplexity:Q | detect:KIND:T
         | detect:watermark:Z   [+dedup]

`+dedup` composes with any of them: after the base filter, exact duplicate
completions of the same task are dropped (the first is kept). Every candidate is
executed whatever the filter, so acceptance, precision and recall against the full
tests can be reported for weak verifiers too.

Candidates are self-generated (provenance "self") or human reference solutions
mixed into the pool (provenance "human"); every filter but `detect` judges both
alike. `detect:KIND:T` (KIND loglik, ratio, fastdetect, binoculars or perturb; T in
(0, 1)) keeps what an AI-text detector judges human: a candidate is kept iff its
`ai_score` is at most its `ai_threshold` (a NaN on either side: dropped), both
attached beforehand by `attach_detector_scores`, so the filter itself stays a pure
function of the candidates. Scores, calibration and the report: `harness.experiment.detection`.
`detect:watermark:Z` is the same filter on a watermark's z-score, for runs that
mark their samples (`--watermark`): kept iff z <= Z, judged unmarked; its
threshold is Z itself, not calibrated (`harness.experiment.watermarking`).

Completions are whatever the model wrote (policy: `tasks.model_text`): every filter
gives a keep/drop for any text and any confidence value. Text Python cannot parse
for any reason (NUL bytes, 5,000 nested brackets, recursion limits) fails `syntax`;
a NaN confidence ranks last under `perplexity`; a NaN detector score is dropped by
`detect`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import BadInput
from harness.experiment.detection import (
    calibrate_threshold,
    detection_report,
    flag_ai,
    parse_detector,
    score_candidates,
)
from harness.registry import Registry
from sandbox.executor import ExecResult
from tasks.model_text import parse_python

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class Candidate:
    """One candidate completion with everything a filter may look at.

    provenance: "self" (sampled from the model) or "human" (a reference solution in
    the pool; the detector's ground truth). ai_score / ai_threshold: the detector's
    score (higher = more AI-like) and the calibrated threshold, set by
    `attach_detector_scores` for a `detect` filter and NaN otherwise.
    """

    task_id: str
    prompt: str
    completion: str
    result: ExecResult
    mean_logprob: float
    provenance: str = "self"
    ai_score: float = math.nan
    ai_threshold: float = math.nan


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


@FILTERS.register("detect")
def _detect(t: float | None) -> FilterFn:
    """Keep what the AI-text detector judges human: ai_score <= ai_threshold.

    The threshold was calibrated so that about a fraction T of human code passes
    (`harness.experiment.detection.calibrate_threshold`), or for a watermark is the
    z threshold Z; the parameter itself is not needed here (`parse_detector` checked
    its range per kind). A NaN score or threshold is dropped: the detector cannot
    vouch for it (an empty completion, a numerically broken model, no usable
    calibration, no token a watermark counts).
    """
    if t is None or not math.isfinite(t):
        raise BadInput("filter 'detect' needs a parameter, e.g. detect:loglik:0.9 or "
                       "detect:watermark:4")

    def keep(cands: Sequence[Candidate], rng: np.random.Generator) -> KeepMask:
        return [not ai for ai in judged_ai(cands)]

    return keep


def judged_ai(cands: Sequence[Candidate]) -> list[bool]:
    """The detector's verdict per candidate, against its own threshold: True = AI
    (score above the threshold, or either NaN)."""
    return flag_ai([c.ai_score for c in cands], [c.ai_threshold for c in cands])


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
    """A parsed filter spec: base name, its parameter, and whether +dedup follows.

    detector: the score kind of a `detect` filter (a calibrated kind, e.g. "loglik":
    its param is the calibration quantile T; "watermark": the z threshold Z), None
    for every other filter.
    """

    text: str
    name: str
    param: float | None
    dedup: bool
    detector: str | None = None

    def build(self) -> Callable[[Sequence[Candidate], np.random.Generator], KeepMask]:
        base = FILTERS.get(self.name)(self.param)
        if not self.dedup:
            return base

        def keep(cands: Sequence[Candidate], rng: np.random.Generator) -> KeepMask:
            return dedup_mask(cands, base(cands, rng))

        return keep


def parse_filter(text: str) -> FilterSpec:
    """Parse 'name', 'name:P', 'detect:KIND:T' or any of them followed by '+dedup';
    BadInput (one line) if unknown or out of range."""
    spec = text.strip()
    base, _, rest = spec.partition("+")
    if rest not in ("", "dedup"):
        raise BadInput(f"bad filter {text!r}: only '+dedup' may follow a filter")
    name, _, param_text = base.partition(":")
    if name == "dedup" and not param_text:
        name, rest = "none", "dedup"  # plain `dedup` = every completion, deduplicated
    FILTERS.get(name)  # unknown names fail here, listing the known ones
    param: float | None = None
    detector: str | None = None
    if name == "detect":
        if not param_text:
            raise BadInput(f"bad filter {text!r}: detect needs KIND:T, e.g. detect:loglik:0.9")
        try:
            parsed = parse_detector(param_text)
        except BadInput as exc:
            raise BadInput(f"bad filter {text!r}: {exc}; e.g. detect:loglik:0.9") from None
        param, detector = parsed.param, parsed.kind
    elif param_text:
        try:
            param = float(param_text)
        except ValueError:
            raise BadInput(f"bad filter {text!r}: {param_text!r} is not a number") from None
    spec_obj = FilterSpec(text=spec, name=name, param=param, dedup=rest == "dedup",
                          detector=detector)
    spec_obj.build()  # validate the parameter now, not mid-run
    return spec_obj


@dataclass(frozen=True)
class FilterOutcome:
    """What a filter kept and how good a verifier it was against the full tests.

    detection: for a `detect` filter, `harness.experiment.detection.detection_report` of the
    detector's own AI/human verdicts (before +dedup) against the candidates'
    provenance; None otherwise. Not part of `to_json`: the loop records detection
    once, in the generation's "detection" block.
    """

    keep: KeepMask
    acceptance_rate: float
    precision: float | None
    recall: float | None
    detection: dict[str, float | int | None] | None = None

    def to_json(self, name: str) -> dict[str, object]:
        return {"name": name, "acceptance_rate": self.acceptance_rate,
                "precision": self.precision, "recall": self.recall,
                "n_candidates": len(self.keep), "n_kept": sum(self.keep)}


def apply_filter(spec: FilterSpec, cands: Sequence[Candidate],
                 rng: np.random.Generator) -> FilterOutcome:
    """Run the filter and score it: precision = kept & passing / kept,
    recall = kept & passing / passing (None when the denominator is 0); for a
    `detect` filter also how well it told AI ("self") from human candidates."""
    keep = spec.build()(cands, rng)
    kept = sum(keep)
    passing = sum(c.result.passed for c in cands)
    true_pos = sum(1 for c, k in zip(cands, keep, strict=True) if k and c.result.passed)
    detection = None
    if spec.name == "detect":
        thresholds = {c.ai_threshold for c in cands}
        detection = detection_report(
            [c.ai_score for c in cands], [c.provenance != "human" for c in cands],
            judged_ai(cands), thresholds.pop() if len(thresholds) == 1 else None)
    return FilterOutcome(
        keep=keep,
        acceptance_rate=kept / len(cands) if cands else 0.0,
        precision=true_pos / kept if kept else None,
        recall=true_pos / passing if passing else None,
        detection=detection,
    )


def attach_detector_scores(spec: FilterSpec, cands: Sequence[Candidate], current_model: Any,
                           base_model: Any, tokenizer: PreTrainedTokenizerBase,
                           calibration_pairs: Sequence[tuple[str, str]],
                           batch_size: int = 64, fmt: Any = None,
                           watermark: str = "") -> list[Candidate]:
    """The candidates with the detector's score and calibrated threshold attached,
    ready for `apply_filter`; unchanged (a new list) for any filter but `detect`.

    current_model: the model that sampled this generation's candidates; base_model:
    generation 0's (used by `ratio` and `binoculars` only: KINDS_WITH_BASE).
    calibration_pairs: (prompt, completion) of human references kept apart from the
    pool; the threshold is the T-quantile of their scores
    (`harness.experiment.detection.calibrate_threshold`).
    watermark: the run's watermark spec, for `detect:watermark:Z`: the score is the
    z of the mark (SWEET entropies from `current_model`, which sampled them) and the
    threshold Z; no calibration (a watermark's null distribution is known).

    A calibrated detector scores every text in its training form
    (`fmt.training_completion`: what the filter would let into training), the pool's
    and the calibration set's alike. Post-processing strips a sample's final newline
    and a human reference keeps its own, so scored as they are, the human side had one
    easy token more: a difference of formatting, not of authorship, that moved
    `perturb`'s AUROC by 0.13 on builtin:tiny (bench/results/detectors_auroc.txt). The
    watermark counts the tokens as they were sampled.
    """
    if spec.name != "detect" or spec.detector is None or spec.param is None:
        return list(cands)
    pairs = [(c.prompt, c.completion) for c in cands]
    if spec.detector == "watermark":
        from harness.experiment.watermarking import required_spec, z_scores

        zs = z_scores(required_spec(watermark), current_model, tokenizer, pairs, fmt,
                      batch_size)
        return [dataclasses.replace(c, ai_score=float(z), ai_threshold=spec.param)
                for c, z in zip(cands, zs, strict=True)]
    def training_form(pair: tuple[str, str]) -> tuple[str, str]:
        return (pair[0], fmt.training_completion(pair[1])) if fmt is not None else pair

    scored = [training_form(pair) for pair in (*pairs, *calibration_pairs)]
    scores = score_candidates(spec.detector, current_model, base_model, tokenizer, scored,
                              batch_size=batch_size, fmt=fmt)
    threshold = calibrate_threshold(scores[len(pairs):], spec.param)
    return [dataclasses.replace(c, ai_score=float(s), ai_threshold=threshold)
            for c, s in zip(cands, scores[:len(pairs)], strict=True)]
