"""Where one generation's time goes: every phase of the loop, timed, as a tree.

Runs one arm (default `tests`, the default experiment's sizes: protocol cpu-synth,
builtin:tiny, 256 train prompts x 4, 100 eval problems x 10) for one generation, so
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

`--memory` also samples the process's resident memory every 20 ms and gives each
phase its peak (inclusive: while the phase or any phase it called was running) and
the memory still resident when it returned, to find where an arm-generation's peak
comes from. `--protocol NAME` starts from a shipped protocol's settings (its frozen
config and suggested model) instead of cpu-synth's; the size options then shrink it:

    python bench/profile_generation.py --protocol smol-cpu@2 --memory --generations 2 \
        --filter none --train-prompts 16 --eval-tasks 8 --also-eval-tasks 8 \
        --warmup-examples 16
"""

from __future__ import annotations

import argparse
import contextlib
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
# module attribute catches them; names bound at import (loop.evaluate_model) are wrapped
# where they are bound.
PHASES: list[tuple[str, str]] = [
    ("harness.experiment.loop", "run_generation_zero"),
    ("harness.experiment.loop", "run_generation"),
    ("harness.experiment.loop", "self_training_data"),
    ("harness.experiment.loop", "warm_start"),
    ("harness.experiment.loop", "score_generation"),
    ("harness.experiment.loop", "eval_samples"),
    ("harness.experiment.loop", "greedy_eval"),
    ("harness.experiment.loop", "evaluate_model"),
    ("harness.experiment.loop", "also_evaluate"),
    ("harness.experiment.loop", "execute_samples"),
    ("harness.experiment.evaluation", "score"),
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


def rss_mib() -> float:
    """The process's resident memory now (MiB), from /proc/self/statm."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class Profile:
    """Inclusive seconds and call counts per call path ("evaluate/perplexity"), and
    with `sample_memory` the peak and the after-return resident memory of each."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.peak_mib: dict[str, float] = {}
        self.after_mib: dict[str, float] = {}
        self._open: list[str] = []          # the call paths running now, outermost first

    def note_memory(self) -> None:
        """Record the current RSS as a candidate peak of every running phase."""
        now = rss_mib()
        for path in list(self._open):
            if now > self.peak_mib.get(path, 0.0):
                self.peak_mib[path] = now

    @contextmanager
    def sample_memory(self, every_s: float = 0.02) -> Iterator[None]:
        """A thread that calls `note_memory` every `every_s` seconds (torch releases
        the GIL in its kernels, so it samples inside them too)."""
        import threading

        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(every_s):
                self.note_memory()

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.stack.append(label)
            path = "/".join(self.stack)
            self._open.append(path)
            self.note_memory()
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[path] = self.seconds.get(path, 0.0) + time.perf_counter() - started
                self.calls[path] = self.calls.get(path, 0) + 1
                self.note_memory()
                self._open.pop()
                self.stack.pop()
                self.after_mib[path] = max(self.after_mib.get(path, 0.0), rss_mib())
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
                 "share": round(s / total, 4) if total > 0 else None,
                 "peak_mib": round(self.peak_mib.get(path, 0.0)),
                 "after_mib": round(self.after_mib.get(path, 0.0))}
                for path, s in sorted(self.seconds.items())]


def protocol_config(spec: str) -> Any:
    """A RunConfig with a shipped protocol's frozen settings and suggested defaults."""
    from harness.config import RunConfig, from_dict, to_dict
    from harness.experiment.protocols import get_protocol

    protocol = get_protocol(spec)
    tree = to_dict(RunConfig())
    for path, value in {**protocol.defaults, **protocol.settings}.items():
        *parents, leaf = path.split(".")
        node = tree
        for part in parents:
            node = node[part]
        node[leaf] = value
    return from_dict(RunConfig, tree, protocol.label)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="builtin:tiny")
    parser.add_argument("--filter", default="tests", help="the one arm's filter")
    parser.add_argument("--train-prompts", type=int, default=None,
                        help="default: the run's (or the protocol's) train prompts")
    parser.add_argument("--eval-tasks", type=int, default=None,
                        help="default: the run's (or the protocol's) eval problems")
    parser.add_argument("--human-pool-share", type=float, default=0.0,
                        help="> 0 makes a mixed pool, so detection is profiled too")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads; 0 = the cores not already busy")
    parser.add_argument("--executor", default="docker", choices=("docker", "local"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--protocol", default=None,
                        help="start from this shipped protocol's settings (e.g. smol-cpu@2)")
    parser.add_argument("--generations", type=int, default=1)
    parser.add_argument("--also-eval-tasks", type=int, default=None)
    parser.add_argument("--warmup-examples", type=int, default=None)
    parser.add_argument("--gradient-checkpointing", action="store_true",
                        help="train with gradient checkpointing (training.gradient_checkpointing)")
    parser.add_argument("--memory", action="store_true",
                        help="sample resident memory: each phase's peak and after-return MiB")
    args = parser.parse_args()

    from harness.config import RunConfig
    from harness.experiment.arms import arms_of
    from harness.experiment.loop import run_experiment
    from harness.runfiles.store import read_json
    from sandbox.backends import make_executor

    cfg = protocol_config(args.protocol) if args.protocol else RunConfig()
    cfg.protocol = ""  # a profile changes sizes: it is no longer the protocol's run
    if not args.protocol or args.model != "builtin:tiny":
        cfg.model.name = args.model
    cfg.model.threads = args.threads
    cfg.filters, cfg.seeds, cfg.generations = [args.filter], [args.seed], args.generations
    if args.train_prompts is not None:
        cfg.train_prompts = args.train_prompts
    if args.eval_tasks is not None:
        cfg.eval_tasks = args.eval_tasks
    cfg.human_pool_share = args.human_pool_share
    if args.also_eval_tasks is not None:
        cfg.also_eval_tasks = args.also_eval_tasks
    if args.gradient_checkpointing:
        cfg.training.gradient_checkpointing = True
    if args.warmup_examples is not None:
        cfg.training.warmup_examples = args.warmup_examples
    load_before = os.getloadavg()
    profile = Profile()
    with tempfile.TemporaryDirectory() as out:
        cfg.out = out
        executor = make_executor(args.executor, cfg.sandbox)
        try:
            memory = profile.sample_memory() if args.memory else contextlib.nullcontext()
            with profile.installed(), memory:
                started = time.perf_counter()
                store = run_experiment(cfg, executor, lambda line: None)
                total = time.perf_counter() - started
        finally:
            executor.close()
        arm = store.arm_dir(arms_of(cfg)[0].arm_id)
        metrics = {g: read_json(arm / f"gen-{g}" / "metrics.json")
                   for g in range(args.generations + 1)}
        timings = {g: m["timings_s"] for g, m in metrics.items()}
        peaks = {g: m.get("peak_rss_mb") for g, m in metrics.items()}
    load_after = os.getloadavg()

    rows = profile.rows(total)
    print(f"{args.generations} generation(s) of {cfg.model.name}, filter {args.filter}, "
          f"{args.train_prompts} train prompts x {cfg.n_train}, "
          f"{args.eval_tasks} eval problems x {cfg.n_eval}, "
          f"threads {args.threads or 'all'}; load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after")
    memory_head = f"{'peak MiB':>10}{'after MiB':>11}" if args.memory else ""
    print(f"{'phase':<78}{'calls':>7}{'seconds':>10}{'share':>8}{memory_head}")
    for row in rows:
        depth = row["phase"].count("/")
        name = "  " * depth + row["phase"].rsplit("/", 1)[-1]
        memory_cols = (f"{row['peak_mib']:>10}{row['after_mib']:>11}" if args.memory else "")
        print(f"{name:<78}{row['calls']:>7}{row['seconds']:>10.2f}{row['share']:>8.1%}"
              f"{memory_cols}")
    print(f"total {total:.1f} s; recorded timings_s: "
          + "; ".join(f"gen {g} {t}" for g, t in timings.items()))
    print("recorded peak_rss_mb per generation: "
          + ", ".join(f"gen {g} {p if p is None else round(p)}" for g, p in peaks.items()))
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)},
                                         "load": [load_before, load_after],
                                         "total_s": total, "rows": rows,
                                         "timings_s": timings, "peak_rss_mb": peaks},
                                        indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
