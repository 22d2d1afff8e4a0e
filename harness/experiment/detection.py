"""Telling self-generated code from human code: detector scores, thresholds, reports.

Setting: a generation's candidate pool holds the model's own samples (AI) and
human reference solutions of problems it was not prompted with (human), provenance
known (docs/collapse.md, "Detection": the base model may have seen them). A detector
filter (`detect:KIND:T` in `harness.experiment.filters`) keeps only what it judges
human, which asks how far a model can keep its own output out of its training data
without running it.

Scores (higher = more AI-like), all task-conditioned (the prompt is given, only
the completion's tokens are scored; `harness.model.training.completion_logprobs`):

* ``loglik``: mean log-probability of the completion under the *current* model, the
  one that sampled this generation's candidates. A model's own samples are likely
  under it; human code less so.
* ``ratio``: that minus the same under the *base* model (generation 0), in the
  spirit of Binoculars (Hans et al., 2024): what the current model likes more than
  the base did is what self-training taught it, which separates its own output from
  code that is merely easy to predict (short, idiomatic). At generation 1 the
  sampling model is the base, every ratio is 0 and the filter keeps everything.
* ``fastdetect``: Fast-DetectGPT's analytic sampling discrepancy (Bao et al., ICLR
  2024) under the current model, which both samples and scores (the paper's
  white-box setting): how far the completion's log-likelihood lies above what the
  model's own samples would get, in standard deviations of that, token by token
  (`fastdetect_scores`).
* ``binoculars``: Binoculars (Hans et al., ICML 2024) with the base model as
  observer and the current model as performer: the completion's log-perplexity under
  the performer over their cross-perplexity, *negated*, since Binoculars calls low
  scores AI (`binoculars_scores`). At generation 1 both are the base model and it
  is log-perplexity over entropy, still a score.
* ``perturb``: a whitespace-perturbation discrepancy for code in the spirit of
  DetectCodeGPT (Shi et al., 2024): the completion's mean log-probability under the
  current model minus the mean over PERTURBATIONS copies of it with spaces and blank
  lines inserted where Python ignores them (`harness.experiment.perturbation`,
  `perturb_scores`). A model's own output sits on a likelihood peak that its
  reformatting falls off; human code less so.

KINDS_WITH_BASE (``ratio``, ``binoculars``) need generation 0's model too; the loop
passes it to every detector (`harness.experiment.filters.attach_detector_scores`).

Threshold: for every kind but ``watermark`` (CALIBRATED_KINDS), T in (0, 1) is a
quantile of the scores of a separate calibration set of human references.
`calibrate_threshold` takes the T-quantile (an observed score: numpy's
"inverted_cdf", no interpolation, so +-inf scores stay usable); a candidate scoring
above it is flagged AI and dropped, so about a fraction T of human code is kept
whatever the score's scale.
``watermark:Z`` takes a z instead, uncalibrated: unmarked text has a known null
distribution (its green count is binomial(T, gamma) whatever the text, since the
key is independent of it), so Z fixes the false-positive rate by itself (Z = 4:
about 3e-5), where the other scores' scale moves with the model and the code.
Approximately: a text repeating one token pair counts one coin flip many times;
each generation's `watermark` block reports the z of human code, the empirical null.

NaN: a completion with no token (empty) or a numerically broken model scores NaN,
and so does a ``perturb`` completion with nowhere to insert whitespace. The filter
cannot vouch for it, so it is flagged AI (dropped); in the AUROC a NaN ranks as the
most AI-like score. A calibration set with no non-NaN score gives a NaN
threshold, which flags every candidate (the generation trains on nothing, rather
than on an unchecked pool).

torch is imported only where a model is scored, so parsing specs and the report
work without it (the filters are pure-Python, text-tested code).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import BadInput

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

CALIBRATED_KINDS: tuple[str, ...] = ("loglik", "ratio", "fastdetect", "binoculars", "perturb")
"""Detectors whose threshold is a quantile of human calibration scores."""
KINDS_WITH_BASE: frozenset[str] = frozenset({"ratio", "binoculars"})
"""Calibrated detectors that also score with the base (generation 0) model."""
PERTURBATIONS = 4
"""Whitespace variants per completion that `perturb` scores against (`perturb_scores`
says why this few, and why no standard deviation)."""
DETECTOR_KINDS: tuple[str, ...] = (*CALIBRATED_KINDS, "watermark")


@dataclass(frozen=True)
class DetectorSpec:
    """A detector: score `kind` and its parameter: for a calibrated kind the
    calibration quantile T (fraction of human kept), for `watermark` the z
    threshold Z itself."""

    kind: str
    param: float

    @property
    def text(self) -> str:
        return f"{self.kind}:{self.param:g}"


def parse_detector(text: str) -> DetectorSpec:
    """'KIND:T' (e.g. 'loglik:0.9') or 'watermark:Z' (e.g. 'watermark:4') ->
    DetectorSpec; BadInput (one line) otherwise."""
    kind, sep, q_text = text.strip().partition(":")
    if kind not in DETECTOR_KINDS:
        raise BadInput(f"unknown detector {kind!r}; known: {', '.join(DETECTOR_KINDS)}")
    try:
        quantile = float(q_text) if sep else math.nan
    except ValueError:
        raise BadInput(f"detector parameter {q_text!r} is not a number") from None
    if kind == "watermark":
        if not math.isfinite(quantile):
            raise BadInput(f"detector 'watermark' needs a finite z threshold Z, e.g. "
                           f"watermark:4 (got {q_text or 'none'})")
        return DetectorSpec(kind=kind, param=quantile)
    if not 0.0 < quantile < 1.0:  # also refuses NaN and a missing T
        raise BadInput(f"detector {kind!r} needs a quantile T in (0, 1), the fraction of "
                       f"human code kept (got {q_text or 'none'})")
    return DetectorSpec(kind=kind, param=quantile)


def score_candidates(kind: str, current_model: Any, base_model: Any,
                     tokenizer: PreTrainedTokenizerBase,
                     pairs: Sequence[tuple[str, str]], batch_size: int = 64,
                     max_length: int = 1024, fmt: Any = None) -> np.ndarray:
    """Detector scores (float64, higher = more AI-like) of (prompt, completion) pairs.

    fmt: the run's prompt format (harness.model.formats), so texts are scored in the
    format the model was asked in.

    loglik: mean completion log-probability under `current_model`; ratio: that minus
    the same under `base_model` (when `base_model is current_model` 0, NaN staying
    NaN, without a second pass); fastdetect, binoculars, perturb: `fastdetect_scores`,
    `binoculars_scores`, `perturb_scores`. `base_model` is needed by KINDS_WITH_BASE
    only (may be None for the others).
    """
    if kind not in CALIBRATED_KINDS:  # watermark: harness.experiment.watermarking
        raise BadInput(f"unknown detector {kind!r}; known: {', '.join(CALIBRATED_KINDS)}")
    if kind in KINDS_WITH_BASE and base_model is None:
        raise BadInput(f"the {kind} detector needs the base (generation 0) model")
    settings = {"batch_size": batch_size, "max_length": max_length, "fmt": fmt}
    if kind == "fastdetect":
        return fastdetect_scores(current_model, tokenizer, pairs, **settings)
    if kind == "binoculars":
        return binoculars_scores(base_model, current_model, tokenizer, pairs, **settings)
    if kind == "perturb":
        return perturb_scores(current_model, tokenizer, pairs, **settings)
    current = _mean_logprobs(current_model, tokenizer, pairs, **settings)
    if kind == "loglik":
        return current
    if base_model is current_model:
        return current - current
    base = _mean_logprobs(base_model, tokenizer, pairs, **settings)
    with np.errstate(invalid="ignore"):  # -inf - -inf is NaN: unscorable, as documented
        return current - base


def _mean_logprobs(model: Any, tokenizer: PreTrainedTokenizerBase,
                   pairs: Sequence[tuple[str, str]], batch_size: int, max_length: int,
                   fmt: Any) -> np.ndarray:
    from harness.model.training import completion_logprobs

    return np.asarray(completion_logprobs(model, tokenizer, pairs, batch_size, max_length,
                                          fmt), dtype=np.float64)


def fastdetect_scores(model: Any, tokenizer: PreTrainedTokenizerBase,
                      pairs: Sequence[tuple[str, str]], batch_size: int = 64,
                      max_length: int = 1024, fmt: Any = None) -> np.ndarray:
    """Fast-DetectGPT's analytic sampling discrepancy of each completion under `model`.

    Per completion token t, with p_t the model's next-token distribution given the
    prompt and the completion so far: ll_t = log p_t(x_t), mu_t = E_{p_t}[log p_t]
    (minus its entropy) and var_t = Var_{p_t}[log p_t]; the score is
    (sum ll_t - sum mu_t) / sqrt(sum var_t), the z of the text's log-likelihood
    against that of texts the model samples itself, computed without sampling (Bao
    et al., ICLR 2024, "Fast-DetectGPT", the analytic criterion of their code).

    As the paper's white-box setting, one model both samples and scores (here the
    current model, which wrote the candidates); the paper's best black-box numbers
    use two. Only completion tokens count, the prompt conditions them (as
    `completion_logprobs`). Float32 softmax per position, over the completion's
    positions only (`harness.model.training.completion_token_sums`). NaN for an empty
    completion, and where every position is certain (sum var_t = 0: no spread to
    measure in).
    """
    from harness.model.training import completion_token_sums

    sums, counts = completion_token_sums([model], tokenizer, pairs, _fastdetect_terms, 3,
                                         batch_size, max_length, fmt)
    ll, mu, var = _columns(sums, counts, 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ll - mu) / np.sqrt(var)


def _fastdetect_terms(logits: list[Any], target: Any) -> Any:
    """(ll_t, mu_t, var_t) per position, with as few vocabulary-wide float32 tensors
    alive at once as the arithmetic allows (log-probabilities, probabilities, one
    product), since the vocabulary may be 49k wide."""
    import torch

    logp = torch.log_softmax(logits[0].float(), dim=-1)
    ll = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    probs = logp.exp()
    logp.masked_fill_(probs == 0, 0.0)  # 0 * log 0 is 0, also where a logit is -inf
    mu = torch.einsum("...v,...v->...", probs, logp)
    var = torch.einsum("...v,...v->...", probs, logp.sub_(mu.unsqueeze(-1)).square_())
    return torch.stack((ll, mu, var), dim=-1)


def binoculars_scores(observer: Any, performer: Any, tokenizer: PreTrainedTokenizerBase,
                      pairs: Sequence[tuple[str, str]], batch_size: int = 64,
                      max_length: int = 1024, fmt: Any = None) -> np.ndarray:
    """Minus the Binoculars score of each completion: -(log PPL / log X-PPL).

    log PPL: the completion's mean negative log-likelihood per token under the
    performer; log X-PPL: the mean per token of the cross-entropy
    -sum_v p_observer(v) log p_performer(v), the observer's next-token distribution
    against the performer's log-probabilities (Hans et al., ICML 2024, "Spotting
    LLMs With Binoculars"; the operand order of their reference code's
    `entropy(observer_logits, performer_logits)`). Binoculars calls a low score AI
    (the text is less surprising than one model's guess of the other predicts), so
    the score is negated to this module's "higher = more AI".

    Differences from the paper: the two models are the base model (observer) and the
    current, self-trained model (performer), not a base/instruct pair; only the
    completion's tokens count, the prompt conditions them. When `observer is
    performer` (generation 1) the cross-perplexity is the performer's own entropy and
    the score -(log PPL / mean entropy), with one forward pass: a defined score, no
    shortcut. NaN for an empty completion; -inf where the cross-entropy is 0.
    """
    from harness.model.training import completion_token_sums

    models = [observer] if observer is performer else [observer, performer]
    sums, counts = completion_token_sums(models, tokenizer, pairs, _binoculars_terms, 2,
                                         batch_size, max_length, fmt)
    nll, cross = _columns(sums, counts, 2)  # per-token means: the counts cancel
    with np.errstate(invalid="ignore", divide="ignore"):
        return -(nll / cross)


def _binoculars_terms(logits: list[Any], target: Any) -> Any:
    """(performer's -log p(x_t), cross-entropy of observer against performer) per
    position; logits[0] is the observer's, logits[-1] the performer's (the same
    tensor when one model plays both)."""
    import torch

    logp = torch.log_softmax(logits[-1].float(), dim=-1)
    nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    probs = torch.softmax(logits[0].float(), dim=-1)
    logp.masked_fill_(probs == 0, 0.0)  # a token the observer rules out adds nothing
    cross = -torch.einsum("...v,...v->...", probs, logp)
    return torch.stack((nll, cross), dim=-1)


def _columns(sums: Sequence[Sequence[float]], counts: Sequence[int], k: int
             ) -> list[np.ndarray]:
    """The k summed per-token values as float64 columns, NaN where nothing was scored."""
    table = np.asarray(sums, dtype=np.float64).reshape(len(counts), k)
    table[np.asarray(counts) == 0] = math.nan
    return list(table.T)


def perturb_scores(model: Any, tokenizer: PreTrainedTokenizerBase,
                   pairs: Sequence[tuple[str, str]], batch_size: int = 64,
                   max_length: int = 1024, fmt: Any = None) -> np.ndarray:
    """The perturbation discrepancy ll(x) - mean_i ll(x_i) of each completion x, ll the
    mean token log-probability under `model` (`completion_logprobs`) and x_1..x_n its
    PERTURBATIONS whitespace variants (`harness.experiment.perturbation`).

    In the spirit of DetectCodeGPT (Shi et al., 2024): code is perturbed by inserting
    spaces and newlines, not by DetectGPT's T5 mask-filling (Mitchell et al., 2023),
    which would change what the code does. It differs from DetectCodeGPT in scoring
    log-likelihood (DetectGPT's discrepancy) instead of log-rank, in one space or
    blank line per chosen place instead of Poisson counts, and in the count: 4
    variants, not tens, since every variant costs a forward pass of the candidate
    pool. With so few, the discrepancy is not divided by the variants' standard
    deviation (DetectGPT's normalized variant): a standard deviation of four values
    is off by about 40% (relative standard error 1/sqrt(2 (n-1))) and would rank
    candidates by the noise of their draws; the calibrated threshold absorbs the
    scale instead.

    The prompt conditions and is not perturbed. NaN for an empty completion and for
    one with nowhere to insert whitespace (no discrepancy to measure). Variants are
    longer, so past `max_length` they lose more of the completion's end than the
    original (long completions only).
    """
    from harness.experiment.perturbation import whitespace_variants

    variants = [whitespace_variants(p, c, PERTURBATIONS) for p, c in pairs]
    flat = [*pairs, *((p, v) for (p, _), vs in zip(pairs, variants, strict=True) for v in vs)]
    ll = _mean_logprobs(model, tokenizer, flat, batch_size, max_length, fmt)
    out = np.full(len(pairs), math.nan)
    at = len(pairs)
    with np.errstate(invalid="ignore"):  # -inf - -inf is NaN: unscorable, as documented
        for i, vs in enumerate(variants):
            if vs:
                out[i] = ll[i] - ll[at:at + len(vs)].mean()
            at += len(vs)
    return out


def calibrate_threshold(human_scores: Sequence[float] | np.ndarray, quantile: float) -> float:
    """The `quantile`-quantile of the human calibration scores (an observed score).

    About a fraction `quantile` of human code scores at or below it (at least that
    fraction of the calibration set; less than 1/n more without ties). NaN scores
    are left out; none left: NaN (flags every candidate). BadInput for an empty
    calibration set or a quantile outside (0, 1).
    """
    if not 0.0 < quantile < 1.0:
        raise BadInput(f"calibration quantile must be in (0, 1), got {quantile}")
    scores = np.asarray(human_scores, dtype=np.float64).ravel()
    if scores.size == 0:
        raise BadInput("the detector needs at least one human calibration example")
    scores = scores[~np.isnan(scores)]
    if scores.size == 0:
        return math.nan
    return float(np.quantile(scores, quantile, method="inverted_cdf"))


def flag_ai(scores: Sequence[float] | np.ndarray,
            threshold: float | Sequence[float] | np.ndarray) -> list[bool]:
    """The detector's verdicts: AI iff score > threshold, or either is NaN.

    threshold: one for all scores, or one per score.
    """
    values = np.asarray(scores, dtype=np.float64).ravel()
    limits = np.broadcast_to(np.asarray(threshold, dtype=np.float64), values.shape)
    judged_human = values <= limits  # False for NaN on either side
    return [not bool(h) for h in judged_human]


def _ranks_for_auroc(scores: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share their mean rank); NaN ranks above +inf."""
    values = np.where(np.isnan(scores), np.inf, scores)
    nan = np.isnan(scores)
    # sort by (value, is-NaN): NaN after +inf, ties among equal keys
    order = np.lexsort((nan, values))
    keys = list(zip(values[order].tolist(), nan[order].tolist(), strict=True))
    ranks = np.empty(len(scores), dtype=np.float64)
    i = 0
    while i < len(keys):
        j = i
        while j + 1 < len(keys) and keys[j + 1] == keys[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _scored_classes(scores: Sequence[float] | np.ndarray, is_ai: Sequence[bool]
                    ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(scores, labels, n_ai, n_human) as flat arrays; ValueError when sizes differ."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(is_ai, dtype=bool).ravel()
    if values.shape != labels.shape:
        raise ValueError(f"{values.size} scores for {labels.size} labels")
    return values, labels, int(labels.sum()), int((~labels).sum())


def auroc(scores: Sequence[float] | np.ndarray, is_ai: Sequence[bool]) -> float | None:
    """P(an AI sample scores above a human one), ties counting 1/2 (Mann-Whitney U
    from average ranks); NaN ranks as the most AI-like. None when a class is empty."""
    values, labels, n_ai, n_human = _scored_classes(scores, is_ai)
    if n_ai == 0 or n_human == 0:
        return None
    ranks = _ranks_for_auroc(values)
    u = ranks[labels].sum() - n_ai * (n_ai + 1) / 2
    return float(u / (n_ai * n_human))


def roc_points(scores: Sequence[float] | np.ndarray, is_ai: Sequence[bool],
               max_points: int = 101) -> list[tuple[float, float]]:
    """(false positive rate, true positive rate) of "AI iff score >= t" for every
    distinct score t from the top down, from (0, 0) to (1, 1), for plotting.

    Positive = AI; NaN counts as the highest score. At most `max_points` points,
    evenly spaced along the curve, both ends kept. Empty when a class is empty.
    """
    if max_points < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}")
    values, labels, n_ai, n_human = _scored_classes(scores, is_ai)
    if n_ai == 0 or n_human == 0:
        return []
    ranks = _ranks_for_auroc(values)  # equal scores share a rank: one step per group
    order = np.argsort(-ranks, kind="stable")
    r, y = ranks[order], labels[order]
    tp, fp = np.cumsum(y), np.cumsum(~y)
    last_of_group = np.append(r[1:] != r[:-1], True)
    points = [(0.0, 0.0)] + [(float(f) / n_human, float(t) / n_ai)
                             for f, t in zip(fp[last_of_group], tp[last_of_group],
                                             strict=True)]
    if len(points) > max_points:
        keep = np.unique(np.linspace(0, len(points) - 1, max_points).round().astype(int))
        points = [points[i] for i in keep]
    return points


def _json_float(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def detection_report(scores: Sequence[float] | np.ndarray, is_ai: Sequence[bool],
                     flagged_ai: Sequence[bool], threshold: float | None = None,
                     ) -> dict[str, float | int | None]:
    """How well the detector told AI from human on one pool, JSON-ready.

    auroc (threshold-free; None when a class is empty); precision = flagged & AI /
    flagged and recall = flagged & AI / AI (None when the denominator is 0);
    human_kept = share of human candidates not flagged (the calibration aims at T);
    n_ai, n_human, n_flagged, n_nan_scores; threshold (None when not finite).
    """
    labels = np.asarray(is_ai, dtype=bool).ravel()
    flags = np.asarray(flagged_ai, dtype=bool).ravel()
    values = np.asarray(scores, dtype=np.float64).ravel()
    if not values.shape == labels.shape == flags.shape:
        raise ValueError(f"{values.size} scores, {labels.size} labels, {flags.size} flags")
    n_ai, n_human, n_flagged = int(labels.sum()), int((~labels).sum()), int(flags.sum())
    true_pos = int((flags & labels).sum())
    return {
        "auroc": auroc(values, labels),
        "precision": true_pos / n_flagged if n_flagged else None,
        "recall": true_pos / n_ai if n_ai else None,
        "human_kept": int((~flags & ~labels).sum()) / n_human if n_human else None,
        "n_ai": n_ai, "n_human": n_human, "n_flagged": n_flagged,
        "n_nan_scores": int(np.isnan(values).sum()),
        "threshold": _json_float(threshold),
    }
