"""One generation's metrics as a typed record: what metrics.json holds.

The loop builds a `GenerationRecord` in one place (`harness.experiment.loop.score_generation`,
for generation 0 and every later one) and writes `to_json()`; runs, summary, report, export and
the leaderboard read it back with `from_json`, which checks every field once and
names the file and key of the first bad one (BadInput, exit 2). A new metric is
added here, as one field with its type and meaning, and in results/README.md
(tests/test_results_format.py fails when the two disagree).

Nested blocks whose shape is owned by one module stay plain JSON objects here
(`diversity`: harness.metrics.diversity, `collapse`: harness.metrics.collapse,
`detection`: harness.experiment.detection, `filter`: harness.experiment.filters,
`watermark`: harness.experiment.watermarking); the record checks that they are
objects (or null) and the tools read the keys they document.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import BadInput

MACHINE_MEASURES = ("timings_s", "peak_rss_mb")
"""Keys that measure the machine, not the model: the only ones in which two runs of the
same config and seed on the same machine may differ (a resumed or Ray run included)."""

PHASES = ("base", "warmup", "self-training", "recovery", "held")
"""warmup: generation 0 after the warm start on human references (--warmup-epochs).
held: a repair-only arm's generation before its repair, generation 0's model kept."""


@dataclass
class GenerationRecord:
    """metrics.json of one generation of one arm (results/README.md, "metrics.json")."""

    arm_id: str
    generation: int
    phase: str                                   # base | warmup | self-training | recovery | held
    pass_at_k: dict[str, float]                  # "pass@k" -> estimate
    diversity: dict[str, Any]                    # headline + all/passing breakdowns
    per_task: dict[str, dict[str, Any]]          # task id -> {"n", "c", "diversity"}
    status_counts: dict[str, int]
    perplexity: float | None                     # on the eval problems' references
    greedy_pass_at_1: float | None = None
    tail_perplexity: float | None = None         # references in the rarest rendering
    head_perplexity: float | None = None         # references in the commonest rendering
    renderings: dict[str, Any] | None = None     # style mix of passing samples (synth)
    collapse: dict[str, Any] | None = None       # collapse-mode metrics
    filter: dict[str, Any] | None = None         # null at gen 0 and in repair generations
    detection: dict[str, Any] | None = None       # mixed pool / detect filter only
    train_composition: dict[str, int] | None = None  # {"self", "real"} trained on
    n_train_examples: int = 0
    train_loss: float | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    also_eval: dict[str, Any] | None = None      # suite -> greedy pass@1, perplexity, ...
    watermark: dict[str, Any] | None = None      # --watermark only: cost, AUROC, radioactivity
    peak_rss_mb: float | None = None             # this generation's peak resident memory

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def headline_diversity(self) -> float | None:
        value = self.diversity.get("diversity") if isinstance(self.diversity, Mapping) else None
        return float(value) if isinstance(value, int | float) else None

    @classmethod
    def from_json(cls, data: Any, where: str = "metrics.json") -> GenerationRecord:
        """Check and type one metrics.json object (or a summary.json generation entry).

        Runs written before a field existed load with its default (null); a field of
        the wrong type is a BadInput naming `where` and the key.
        """
        if not isinstance(data, Mapping):
            raise BadInput(f"{where}: expected an object, got {type(data).__name__}")
        generation = data.get("generation")
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
            raise BadInput(f"{where}.generation: expected an integer >= 0, got {generation!r}")
        phase = data.get("phase") or ("base" if generation == 0 else "self-training")
        if phase not in PHASES:
            raise BadInput(f"{where}.phase: expected one of {', '.join(PHASES)}, got {phase!r}")
        return cls(
            arm_id=str(data.get("arm_id", "")),
            generation=generation,
            phase=phase,
            pass_at_k=_numbers(_required(data, "pass_at_k", where), f"{where}.pass_at_k"),
            diversity=_object(data.get("diversity"), f"{where}.diversity") or {},
            per_task=_object(data.get("per_task"), f"{where}.per_task") or {},
            status_counts=_object(data.get("status_counts"), f"{where}.status_counts") or {},
            perplexity=_opt_number(data.get("perplexity"), f"{where}.perplexity"),
            greedy_pass_at_1=_opt_number(data.get("greedy_pass_at_1"),
                                         f"{where}.greedy_pass_at_1"),
            tail_perplexity=_opt_number(data.get("tail_perplexity"), f"{where}.tail_perplexity"),
            head_perplexity=_opt_number(data.get("head_perplexity"), f"{where}.head_perplexity"),
            renderings=_object(data.get("renderings"), f"{where}.renderings"),
            collapse=_object(data.get("collapse"), f"{where}.collapse"),
            filter=_object(data.get("filter"), f"{where}.filter"),
            detection=_object(data.get("detection"), f"{where}.detection"),
            train_composition=_object(data.get("train_composition"),
                                      f"{where}.train_composition"),
            n_train_examples=int(_opt_number(data.get("n_train_examples"),
                                             f"{where}.n_train_examples") or 0),
            train_loss=_opt_number(data.get("train_loss"), f"{where}.train_loss"),
            timings_s=_object(data.get("timings_s"), f"{where}.timings_s") or {},
            also_eval=_object(data.get("also_eval"), f"{where}.also_eval"),
            watermark=_object(data.get("watermark"), f"{where}.watermark"),
            peak_rss_mb=_opt_number(data.get("peak_rss_mb"), f"{where}.peak_rss_mb"),
        )


def _required(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise BadInput(f"{where}: missing key {key!r}")
    return data[key]


def _object(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadInput(f"{where}: expected an object or null, got {type(value).__name__}")
    return dict(value)


def _opt_number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInput(f"{where}: expected a number or null, got {value!r}")
    return float(value)


def _numbers(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise BadInput(f"{where}: expected an object, got {value!r}")
    out = {}
    for key, number in value.items():
        parsed = _opt_number(number, f"{where}.{key}")
        if parsed is None:
            raise BadInput(f"{where}.{key}: expected a number, got null")
        out[str(key)] = parsed
    return out
