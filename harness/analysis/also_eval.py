"""`--also-eval` suites in the report and the export: secondary, never the headline.

A run scored with `run --also-eval SUITE` records, per generation, the suite's greedy
pass@1 over all of its problems, each problem's (n = 1, c) count and perplexity on
its references (metrics.json `also_eval`, typed by `harness.runfiles.runs.AlsoEvalMetrics`).
The primary eval suite stays the headline: rankings, collapse summaries and the board
use it only; these numbers are shown next to it.

No bootstrap of its own: `also_eval_view` re-expresses one arm as if the suite were
its eval suite (pass@1 = greedy pass@1, per_task = the greedy counts, perplexity =
the suite's), and `harness.analysis.stats.group_stats` does the rest. So the
intervals are the very ones the primary tables use: greedy pass@1 resampled over
the suite's problems (and over seeds when there are several), perplexity over seeds
only (it has no per-problem breakdown).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from harness.analysis.stats import DEFAULT_BOOT_SEED, DEFAULT_N_BOOT, GroupStats, group_stats
from harness.runfiles.runs import ArmResult, GenerationMetrics, RunResult


def suites_of(arms: Sequence[ArmResult]) -> list[str]:
    """Every also-eval suite some generation of some arm recorded, sorted."""
    return sorted({suite for arm in arms for gen in arm.generations for suite in gen.also_eval})


def run_suites(run: RunResult) -> list[str]:
    """The also-eval suites of a run (empty for a run without `--also-eval`)."""
    return suites_of(list(run.arms.values()))


def _as_primary(gen: GenerationMetrics, suite: str) -> GenerationMetrics:
    """One generation with the suite's numbers where group_stats reads the primary ones."""
    also = gen.also_eval[suite]
    return GenerationMetrics(
        generation=gen.generation, pass_at_k={1: also.greedy_pass_at_1}, diversity=None,
        perplexity=also.perplexity, filter_acceptance_rate=None, filter_precision=None,
        filter_recall=None, n_train_examples=gen.n_train_examples,
        per_task=dict(also.per_task), per_task_diversity={}, raw={})


def also_eval_view(arm: ArmResult, suite: str) -> ArmResult | None:
    """The arm scored on `suite`, up to its first generation without it (None: not at
    generation 0). Stopping there keeps the curve gap-free, as group_stats needs."""
    gens: list[GenerationMetrics] = []
    for gen in arm.generations:
        if suite not in gen.also_eval:
            break
        gens.append(_as_primary(gen, suite))
    return dataclasses.replace(arm, generations=tuple(gens)) if gens else None


def also_eval_stats(arms: Sequence[ArmResult], suite: str, *, n_boot: int = DEFAULT_N_BOOT,
                    seed: int = DEFAULT_BOOT_SEED) -> GroupStats | None:
    """group_stats of one arm group on `suite` (None when no arm of it recorded the suite).

    The same n_boot and seed as the primary statistics, so a report or an export is
    reproducible bit for bit, also-eval intervals included."""
    views = [view for arm in arms if (view := also_eval_view(arm, suite)) is not None]
    return group_stats(views, n_boot=n_boot, seed=seed) if views else None


def interval_over(st: GroupStats, per_problem: bool) -> str:
    """What a 95% interval of `st` resamples, said next to it: `95% CI over problems and
    seeds`, `... over seeds`, or `no CI` (one seed and nothing per problem).

    `per_problem`: the quantity has a per-problem breakdown (greedy pass@1 does,
    perplexity does not), so group_stats resampled problems when it had >= 2."""
    over = [what for what, yes in (("problems", per_problem and st.n_problems >= 2),
                                   ("seeds", len(st.seeds) >= 2)) if yes]
    return f"95% CI over {' and '.join(over)}" if over else "no CI: one seed"
