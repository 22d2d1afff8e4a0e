"""The report's watermark section: per arm group and generation, what the mark cost,
how well it was detected, and whether it leaked into the model (radioactivity).

Read from each generation's `watermark` block (metrics.json; written by
`harness.experiment.watermarking`), only for runs sampled with `--watermark`.
Cells are means over the group's seeds (n = seeds with that generation): the
watermark's numbers are already a difference of two samplings at the same seeds
(pass@1 cost) or a statistic over all samples of a generation (z, AUROC), so the
table shows their level; a reader comparing arms reads generation 0, which never
trained on marked code, as each arm's control.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from harness.runfiles.runs import ArmGroupKey, ArmResult, RunResult

_COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], Any], int], ...] = (
    ("pass@1 unmarked", lambda w: w.get("pass_at_1_unmarked"), 3),
    ("pass@1 marked", lambda w: w.get("pass_at_1_marked"), 3),
    ("cost", lambda w: w.get("pass_at_1_cost"), 3),
    ("AUROC marked vs human", lambda w: w.get("auroc"), 3),
    ("marked median z", lambda w: (w.get("marked") or {}).get("median_z"), 2),
    ("human share z>4", lambda w: (w.get("human") or {}).get("share_z_above_4"), 3),
    ("radioactivity: mean z", lambda w: (w.get("radioactivity") or {}).get("mean_z"), 2),
    ("share z>4", lambda w: (w.get("radioactivity") or {}).get("share_z_above_4"), 3),
    ("pooled z", lambda w: (w.get("radioactivity") or {}).get("pooled_z"), 2),
    ("AUROC vs human", lambda w: (w.get("radioactivity") or {}).get("auroc_vs_human"), 3),
)


def _block(generation: Any) -> dict[str, Any] | None:
    record = generation.record
    block = record.watermark if record is not None else generation.raw.get("watermark")
    return block if isinstance(block, dict) else None


def has_watermark(run: RunResult) -> bool:
    """Whether any generation of any arm was scored with a watermark."""
    return any(_block(g) is not None for arm in run.arms.values() for g in arm.generations)


def _mean(values: Sequence[Any]) -> float | None:
    numbers = [float(v) for v in values if isinstance(v, int | float)]
    return statistics.fmean(numbers) if numbers else None


def _group_lines(name: str, arms: Sequence[ArmResult]) -> list[str]:
    by_gen: dict[int, list[dict[str, Any]]] = {}
    for arm in arms:
        for g in arm.generations:
            block = _block(g)
            if block is not None:
                by_gen.setdefault(g.generation, []).append(block)
    if not by_gen:
        return []
    specs = sorted({str(b.get("spec")) for blocks in by_gen.values() for b in blocks})
    header = ["gen", "seeds", *(c for c, _, _ in _COLUMNS)]
    rows = []
    for gen in sorted(by_gen):
        blocks = by_gen[gen]
        cells = []
        for _, read, digits in _COLUMNS:
            value = _mean([read(b) for b in blocks])
            cells.append("-" if value is None else f"{value:.{digits}f}")
        rows.append([str(gen), str(len(blocks)), *cells])
    return [f"### {name}", "", f"watermark {', '.join(f'`{s}`' for s in specs)}", "",
            "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows), ""]


def watermark_lines(run: RunResult, order: Sequence[ArmGroupKey],
                    names: dict[ArmGroupKey, str]) -> list[str]:
    """The section (empty without a watermark): one table per arm group, in `order`."""
    if not has_watermark(run):
        return []
    groups = run.arm_groups()
    lines = ["## Watermark", "",
             "Self-training samples were marked (`--watermark`); the headline eval samples "
             "were not. Per generation, means over seeds: pass@1 of the eval problems "
             "sampled without and with the mark at the same seeds and the *cost* (unmarked "
             "minus marked); the AUROC of the z-score between marked eval samples and the "
             "problems' human references, the marked samples' median z, and the share of "
             "human references above z = 4 (the false positives a `detect:watermark:4` "
             "filter would make); *radioactivity* (Sander et al. 2024): the z of the "
             "generation's own unmarked eval samples (mean, share above 4, pooled over "
             "distinct token pairs, AUROC against the references). Generation 0 never "
             "trained on marked code: the control. docs/collapse.md, \"Watermarking\".", ""]
    for key in order:
        if key in groups:
            lines += _group_lines(names[key], groups[key])
    return lines
