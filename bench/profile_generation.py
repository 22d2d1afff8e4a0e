"""Where one generation's time goes: every phase of the loop, timed, as a tree.

Runs one arm (default `tests`, the default experiment's sizes: protocol cpu-synth,
builtin:tiny, 512 train prompts x 4, 200 eval problems x 10) for one generation, so
generation 0 (evaluation only) and generation 1 (sampling, execution, filter,
training, evaluation) are both measured. Each phase is the real library function,
wrapped in a timer for the duration of this script (nothing else changes): sampling,
execution, filtering, training, adapter merges, each eval metric (pass@k, per-problem
diversity, the diversity report), the three perplexities (all references, tail and
head rendering), the collapse block (garbage, parsability, novelty against
generation 0) and the detection metrics (mixed pools only).

Times are inclusive (a parent includes its children) and summed over calls; `share`
is of the whole run. The machine's load is printed with them: on a shared machine a
time without its load means little, so compare phases within one profile.

    python bench/profile_generation.py                       # cpu-synth sizes
    python bench/profile_generation.py --train-prompts 128 --eval-tasks 50
    python bench/profile_generation.py --json profile.json   # the tree as JSON too
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# (module, function): every phase the profile names. Functions the loop imports
# inside its bodies are looked up on their module at call time, so wrapping the
# module attribute catches them; names bound at import (loop.score) are wrapped
# where they are bound.
PHASES: list[tuple[str, str]] = [
    ("harness.experiment.loop", "run_generation_zero"),
    ("harness.experiment.loop", "run_generation"),
    ("harness.experiment.loop", "self_training_data"),
    ("harness.experiment.loop", "evaluate"),
    ("harness.experiment.loop", "execute_samples"),
    ("harness.experiment.loop", "score"),
    ("harness.experiment.loop", "tail_metrics"),
    ("harness.experiment.loop", "collapse_block"),
    ("harness.experiment.loop", "detection_metrics"),
    ("harness.experiment.loop", "apply_filter"),
    ("harness.experiment.loop", "build_dataset"),
    ("harness.experiment.loop", "model_after"),
    ("harness.experiment.loop", "model_to_train"),
    ("harness.experiment.loop", "_logprobs"),
    ("harness.experiment.loop", "_write_generation"),
    ("harness.model.sampling", "sample_completions"),
    ("harness.model.training", "finetune_lora"),
    ("harness.model.training", "save_adapter"),
    ("harness.model.training", "load_adapter"),
    ("harness.model.training", "merge_adapter"),
    ("harness.model.training", "perplexity"),
    ("harness.experiment.filters", "attach_detector_scores"),
    ("harness.experiment.evaluation", "mean_pass_at_k"),
    ("harness.experiment.evaluation", "per_problem_metrics"),
    ("harness.experiment.evaluation", "diversity_report"),
    ("harness.metrics.diversity", "mean_pairwise_dissimilarity"),
    ("harness.metrics.diversity", "canonical_ast"),
    ("harness.metrics.diversity", "distinct_n"),
    ("harness.metrics.diversity", "functional_diversity"),
    ("harness.metrics.collapse", "collapse_metrics"),
    ("harness.metrics.collapse", "garbage_rate"),
    ("harness.metrics.collapse", "unparsable_fraction"),
    ("harness.metrics.collapse", "novelty_vs_reference"),
]


class Profile:
    """Inclusive seconds and call counts per call path ("evaluate/perplexity")."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.stack.append(label)
            path = "/".join(self.stack)
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[path] = self.seconds.get(path, 0.0) + time.perf_counter() - started
                self.calls[path] = self.calls.get(path, 0) + 1
                self.stack.pop()
        return timed

    @contextmanager
    def installed(self) -> Iterator[None]:
        saved = []
        for module_name, name in PHASES:
            module = importlib.import_module(module_name)
            original = getattr(module, name)
            saved.append((module, name, original))
            setattr(module, name, self.wrap(name, original))
        try:
            yield
        finally:
            for module, name, original in reversed(saved):
                setattr(module, name, original)

    def rows(self, total: float) -> list[dict[str, Any]]:
        return [{"phase": path, "calls": self.calls[path], "seconds": round(s, 3),
                 "share": round(s / total, 4) if total > 0 else None}
                for path, s in sorted(self.seconds.items())]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="builtin:tiny")
    parser.add_argument("--filter", default="tests", help="the one arm's filter")
    parser.add_argument("--train-prompts", type=int, default=512)
    parser.add_argument("--eval-tasks", type=int, default=200)
    parser.add_argument("--human-pool-share", type=float, default=0.0,
                        help="> 0 makes a mixed pool, so detection is profiled too")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads; 0 = the cores not already busy")
    parser.add_argument("--executor", default="docker", choices=("docker", "local"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()

    from harness.config import RunConfig
    from harness.experiment.arms import arms_of
    from harness.experiment.loop import run_experiment
    from harness.runfiles.store import read_json
    from sandbox.backends import make_executor

    cfg = RunConfig()
    cfg.model.name, cfg.model.threads = args.model, args.threads
    cfg.filters, cfg.seeds, cfg.generations = [args.filter], [args.seed], 1
    cfg.train_prompts, cfg.eval_tasks = args.train_prompts, args.eval_tasks
    cfg.human_pool_share = args.human_pool_share
    load_before = os.getloadavg()
    profile = Profile()
    with tempfile.TemporaryDirectory() as out:
        cfg.out = out
        executor = make_executor(args.executor, cfg.sandbox)
        try:
            with profile.installed():
                started = time.perf_counter()
                store = run_experiment(cfg, executor, lambda line: None)
                total = time.perf_counter() - started
        finally:
            executor.close()
        arm = store.arm_dir(arms_of(cfg)[0].arm_id)
        timings = {g: read_json(arm / f"gen-{g}" / "metrics.json")["timings_s"]
                   for g in (0, 1)}
    load_after = os.getloadavg()

    rows = profile.rows(total)
    print(f"one generation of {args.model}, filter {args.filter}, {args.train_prompts} train "
          f"prompts x {cfg.n_train}, {args.eval_tasks} eval problems x {cfg.n_eval}, "
          f"threads {args.threads or 'all'}; load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after")
    print(f"{'phase':<78}{'calls':>7}{'seconds':>10}{'share':>8}")
    for row in rows:
        depth = row["phase"].count("/")
        name = "  " * depth + row["phase"].rsplit("/", 1)[-1]
        print(f"{name:<78}{row['calls']:>7}{row['seconds']:>10.2f}{row['share']:>8.1%}")
    print(f"total {total:.1f} s; recorded timings_s: gen 0 {timings[0]}, gen 1 {timings[1]}")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)},
                                         "load": [load_before, load_after],
                                         "total_s": total, "rows": rows,
                                         "timings_s": timings}, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
