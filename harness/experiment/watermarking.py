"""The watermark in the loop: z-scores of texts, and each generation's measurements.

With `--watermark KEY[:delta[:gamma[:entropy]]]` the sampler marks what the model
writes (`harness.model.watermark`). Which samples carry the mark:

* the self-training candidates (what could re-enter training): marked, so a
  `detect:watermark:Z` filter can keep them out (`harness.experiment.filters`);
* the headline eval samples: unmarked, so pass@1 stays comparable with runs and
  arms without a watermark;
* every generation also samples its eval problems *with* the mark, at the same
  seeds (the sampler's per-sample uniforms are seeded by (seed, prompt, index):
  common random numbers, so the difference is the mark's, not a fresh draw's),
  and runs them: what the mark costs in pass@1.

Each generation's `watermark` block (metrics.json; `watermark_block`) records that
cost; how well the z-score tells the marked eval samples from human references of
the same problems (AUROC); the z of those human references (the empirical null:
how often human code would be flagged); and **radioactivity** (Sander et al. 2024,
"Watermarking Makes Language Models Radioactive"): the z of the generation's own
*unmarked* eval samples. After generations trained on marked code, does the mark
show in what the model writes unprompted to mark? Generation 0 is the control: it
never trained on marked code. Sander et al. pool a model's outputs and count each
distinct (context, token) pair once, since code repeats pairs across samples and a
repeated pair is one coin flip; `pooled_z` is that test, next to the per-sample
mean z and the share of samples above z = 4 (which repeated pairs inflate).

Texts are scored as the training examples are tokenized (`completion_tokens`: the
run's prompt format, no EOS), which is how a filter would see them: the text, not
the sampler's token ids. Under SWEET the entropies come from the model given (the
one that sampled: `completion_entropies`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import BadInput
from harness.experiment.detection import auroc
from harness.model.watermark import RADIOACTIVE_Z, WatermarkSpec, parse_watermark

if TYPE_CHECKING:
    from harness.experiment.evaluation import ModelScore
    from tasks.schema import Task

ScoredText = tuple[list[int], int | None, list[float] | None]
"""(completion token ids, the token before them, their entropies or None)."""


def required_spec(text: str) -> WatermarkSpec:
    """The run's watermark spec; BadInput when the run has none."""
    spec = parse_watermark(text)
    if spec is None:
        raise BadInput("detect:watermark needs a watermarked sampler: set --watermark KEY")
    return spec


def scored_texts(spec: WatermarkSpec, model: Any, tokenizer: Any,
                 pairs: Sequence[tuple[str, str]], fmt: Any = None,
                 batch_size: int = 64) -> list[ScoredText]:
    """Each (prompt, completion) as a watermark detector counts it: its tokens in the
    run's format, the prompt's last token, and under SWEET the model's entropies."""
    from harness.model.training import completion_entropies, completion_tokens

    tokens = completion_tokens(model, tokenizer, pairs, fmt=fmt)
    entropies: list[list[float]] | list[None] = [None] * len(pairs)
    if spec.entropy > 0:
        entropies = completion_entropies(model, tokenizer, pairs, batch_size, fmt=fmt)
    return [(ids, prev, h) for (prev, ids), h in zip(tokens, entropies, strict=True)]


def watermark_for(spec: WatermarkSpec, model: Any) -> Any:
    """The green lists the sampler used on `model` (over its output vocabulary)."""
    from harness.model.runtime import output_vocab_size
    from harness.model.watermark import Watermark

    return Watermark(spec, output_vocab_size(model))


def z_scores(spec: WatermarkSpec, model: Any, tokenizer: Any,
             pairs: Sequence[tuple[str, str]], fmt: Any = None,
             batch_size: int = 64) -> np.ndarray:
    """The watermark z-score of each (prompt, completion) (float64; NaN where no
    token counts: an empty completion, or no position reaching SWEET's entropy)."""
    mark = watermark_for(spec, model)
    return np.array([mark.z_score(ids, prev, h) for ids, prev, h
                     in scored_texts(spec, model, tokenizer, pairs, fmt, batch_size)],
                    dtype=np.float64)


def _json(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def z_summary(mark: Any, texts: Sequence[ScoredText]) -> dict[str, Any]:
    """Per-sample and pooled z of some texts: `n`, `n_nan` (nothing counted),
    `mean_z` / `median_z` over the others, `share_z_above_4`, `mean_counted` tokens
    per text, `pooled_z` with each distinct (previous, token) pair once and
    `pooled_pairs`, how many there were."""
    zs = np.array([mark.z_score(*t) for t in texts], dtype=np.float64)
    counted = [len(mark.counted(*t)) for t in texts]
    finite = zs[~np.isnan(zs)]
    pooled_pairs = len({p for t in texts for p in mark.counted(*t)})
    return {
        "n": len(texts), "n_nan": int(np.isnan(zs).sum()),
        "mean_z": _json(float(finite.mean())) if finite.size else None,
        "median_z": _json(float(np.median(finite))) if finite.size else None,
        "share_z_above_4": float((finite > RADIOACTIVE_Z).mean()) if finite.size else None,
        "mean_counted": float(np.mean(counted)) if counted else None,
        "pooled_z": _json(mark.pooled_z_score(texts)),
        "pooled_pairs": pooled_pairs,
    }


def watermark_block(spec: WatermarkSpec, model: Any, tokenizer: Any,
                    tasks: Sequence[Task], references: Sequence[str],
                    unmarked: ModelScore, marked: ModelScore, fmt: Any = None,
                    ) -> dict[str, Any]:
    """One generation's `watermark` block (results/README.md, metrics.json).

    tasks / references: the eval problems and their human references in the
    run's format; unmarked / marked: the eval problems sampled without and with the
    mark at the same seeds. pass@1 cost = unmarked - marked (> 0: the mark costs).
    `auroc`: marked eval samples against the references by z (NaN z ranks as most
    AI-like, as in every detector's AUROC); `radioactivity`: `z_summary` of the
    unmarked samples and their AUROC against the references.
    """
    mark = watermark_for(spec, model)
    ref_texts = scored_texts(spec, model, tokenizer,
                             [(t.prompt, r) for t, r in zip(tasks, references, strict=True)],
                             fmt)
    prompt_of = {t.task_id: t.prompt for t in tasks}
    marked_texts = scored_texts(spec, model, tokenizer, _pairs(marked, prompt_of), fmt)
    unmarked_texts = scored_texts(spec, model, tokenizer, _pairs(unmarked, prompt_of), fmt)
    human_z = [mark.z_score(*t) for t in ref_texts]

    def vs_human(texts: Sequence[ScoredText]) -> float | None:
        zs = [mark.z_score(*t) for t in texts]
        return auroc([*zs, *human_z], [True] * len(zs) + [False] * len(human_z))

    p_unmarked = unmarked.report.pass_at_k["pass@1"]
    p_marked = marked.report.pass_at_k["pass@1"]
    return {
        "spec": spec.text,
        "pass_at_1_unmarked": p_unmarked,
        "pass_at_1_marked": p_marked,
        "pass_at_1_cost": p_unmarked - p_marked,
        "pass_at_k_marked": dict(marked.report.pass_at_k),
        "auroc": vs_human(marked_texts),
        "marked": z_summary(mark, marked_texts),
        "human": z_summary(mark, ref_texts),
        "radioactivity": {**z_summary(mark, unmarked_texts),
                          "auroc_vs_human": vs_human(unmarked_texts)},
    }


def _pairs(score: ModelScore, prompt_of: dict[str, str]) -> list[tuple[str, str]]:
    return [(prompt_of[s.task_id], s.completion) for s in score.samples]
