"""The generational loop (docs/design.md, "The loop"), top to bottom.

    M0 = base model (--warmup-epochs E: fine-tuned on human references first)
    evaluate(M0)                                  -> metrics[gen 0]
    for g in 1..G:
        S   = sample(M_{g-1}, train prompts, n_train, train temperature)
        V   = sandbox.execute(S + tests)
        K   = filter(S, V)
        D_g = regime(K_1..K_g, real data)
        M_g = lora_finetune(start model for the restart policy, D_g)
        evaluate(M_g)                             -> metrics[gen g]
    for g in G+1..G+R:                            (--recover R: the repair question)
        M_g = lora_finetune(..., human references only)
        evaluate(M_g)                             -> metrics[gen g]

evaluate(M) is `score_generation`, which scores the model with
`harness.experiment.evaluation.evaluate_model` and builds the generation's
GenerationRecord (its metrics.json), the one place one is built.

The prompt format (`harness.model.formats`) is resolved once per run and used by
every sampling, training and scoring call, so the model is trained in the format it
is asked in. Every model the loop uses is rebuilt from the base weights plus the
adapters saved on disk (`model_after`, `model_to_train`). The uninterrupted run and a run resumed
after `kill -9` therefore take exactly the same path, which is what makes resumed
metrics identical. Each generation is complete only once its DONE marker exists;
`--resume` skips complete generations and redoes the one that was in flight.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.analysis.summary import write_summary
from harness.atomic import atomic_write_json
from harness.config import RunConfig
from harness.errors import BadInput
from harness.experiment.arms import Arm, arms_of, check_no_overlap, validate
from harness.experiment.clock import RunClock
from harness.experiment.evaluation import ModelScore, Sample, evaluate_model, execute_samples
from harness.experiment.filters import Candidate, apply_filter, parse_filter
from harness.experiment.lifecycle import run_directory
from harness.experiment.peak_memory import peak_rss_mb, reset_peak
from harness.experiment.regimes import Example, build_dataset
from harness.metrics.record import GenerationRecord
from harness.model.formats import PromptFormat
from harness.model.runtime import release_memory, used_threads
from harness.runfiles.outputs import check_output_dir
from harness.runfiles.store import (
    RunStore,
    atomic_write_jsonl,
    read_json,
    read_jsonl,
)
from sandbox.executor import ExecResult, Executor
from sandbox.memo import RememberingExecutor
from tasks.registry import load_suite, scoring_split, select_split
from tasks.schema import Task

Log = Callable[[str], None]


def derive_seed(seed: int, *parts: object) -> int:
    """An independent, stable 31-bit seed for one purpose (e.g. gen 3 train sampling)."""
    text = "/".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") >> 1


@dataclass
class Context:
    """What all arms of a run share: config, store, tasks, base model, sandbox."""

    cfg: RunConfig
    store: RunStore
    train_tasks: list[Task]
    eval_tasks: list[Task]
    base_model: Any
    tokenizer: Any
    executor: Executor
    log: Log
    fmt: PromptFormat
    also_tasks: dict[str, list[Task]]      # --also-eval suite -> its scored problems
    fresh_tasks: list[Task] = field(default_factory=list)  # human code none has seen
    start_models: dict[int, Any] = field(default_factory=dict)  # seed -> M0 (warm start)
    first_draws: dict[tuple[tuple[str, Any], ...], list[list[Any]]] = field(
        default_factory=dict)  # generation 1's train samples, by `train_draw`'s key

    def __post_init__(self) -> None:
        # every arm and generation asks one memory of verdicts: a program already run
        # in this process is answered from it (sandbox/memo.py), the same verdict
        if not isinstance(self.executor, RememberingExecutor):
            self.executor = RememberingExecutor(self.executor)


# ----------------------------------------------------------------------------- entry
def run_experiment(cfg: RunConfig, executor: Executor, log: Log,
                   resume_dir: Path | None = None) -> RunStore:
    """Run (or resume) every arm of `cfg`; returns the run store."""
    from harness.model.loading import load_model, model_provenance

    validate(cfg)
    train_tasks, eval_tasks = load_tasks(cfg)
    also_tasks = load_also_eval(cfg, train_tasks)
    fresh_tasks = load_fresh(cfg, train_tasks, eval_tasks)
    model, tokenizer = load_model(cfg.model)  # before the run directory: fail without litter
    fmt = PromptFormat.resolve(tokenizer, cfg.sampling.prompt_format,
                               cfg.sampling.prompt_boundary)
    provenance = {"model": model_provenance(cfg.model), "prompt_format": fmt.describe()}
    with run_directory(cfg, resume_dir, log, provenance) as (store, log):
        log(f"prompt format: {fmt.kind}, boundary {'heal' if fmt.heal else 'keep'}")
        ctx = Context(cfg, store, train_tasks, eval_tasks, model, tokenizer, executor, log,
                      fmt, also_tasks, fresh_tasks)
        memory = ctx.executor  # the Context wrapped it (__post_init__)
        assert isinstance(memory, RememberingExecutor)
        arms = arms_of(cfg)
        clock = RunClock(arms, cfg.total_generations + 1, store.is_done)
        for arm in arms:
            for generation in iter_arm(ctx, arm):
                log(clock.finished(arm, generation))
            write_summary(store, cfg)
        log(memory.tally())
    return store


def load_tasks(cfg: RunConfig) -> tuple[list[Task], list[Task]]:
    """Train and eval problems, refusing any overlap between them.

    Asking for more eval problems or train prompts than the split has is refused
    rather than cut: a cut would leave config.toml recording a size that was never
    used, and the numbers would be read as measured on it.
    """
    train = select_split(load_suite(cfg.train_suite), cfg.train_split)
    evals = select_split(load_suite(cfg.eval_suite), cfg.eval_split)
    if cfg.eval_tasks > len(evals):
        raise BadInput(f"eval_tasks={cfg.eval_tasks} but {cfg.eval_suite}/{cfg.eval_split} has "
                       f"{len(evals)} problems; use --eval-tasks {len(evals)} or 0 for all")
    if cfg.train_prompts > len(train):
        raise BadInput(f"train_prompts={cfg.train_prompts} but {cfg.train_suite}/"
                       f"{cfg.train_split} has {len(train)} problems; use --train-prompts "
                       f"{len(train)} or fewer")
    if cfg.eval_tasks:
        evals = evals[: cfg.eval_tasks]
    check_no_overlap({t.task_id: t.prompt for t in train}, {t.task_id: t.prompt for t in evals})
    return train, evals


def make_context(cfg: RunConfig, store: RunStore, train_tasks: list[Task],
                 eval_tasks: list[Task], model: Any, tokenizer: Any, executor: Executor,
                 log: Log) -> Context:
    """The Context of one arm on a Ray worker: the prompt format resolved on the
    model's tokenizer and the `--also-eval` suites loaded, as `run_experiment` does."""
    fmt = PromptFormat.resolve(tokenizer, cfg.sampling.prompt_format,
                               cfg.sampling.prompt_boundary)
    return Context(cfg, store, train_tasks, eval_tasks, model, tokenizer, executor, log, fmt,
                   load_also_eval(cfg, train_tasks), load_fresh(cfg, train_tasks, eval_tasks))


def load_also_eval(cfg: RunConfig, train: Sequence[Task]) -> dict[str, list[Task]]:
    """The problems of each `--also-eval` suite (its eval/test split, or its first
    `also_eval_tasks`), refusing any that a train prompt is also in, and a size the
    suite does not have (as `load_tasks` refuses one for the eval suite)."""
    out: dict[str, list[Task]] = {}
    for spec in cfg.also_eval:
        tasks = scoring_split(load_suite(spec), spec)
        if cfg.also_eval_tasks > len(tasks):
            raise BadInput(f"also_eval_tasks={cfg.also_eval_tasks} but {spec} has {len(tasks)} "
                           f"problems; use --also-eval-tasks {len(tasks)} or 0 for all")
        if cfg.also_eval_tasks:
            tasks = tasks[: cfg.also_eval_tasks]
        check_no_overlap({t.task_id: t.prompt for t in train},
                         {t.task_id: t.prompt for t in tasks})
        out[spec] = tasks
    return out


def load_fresh(cfg: RunConfig, train: Sequence[Task], evals: Sequence[Task]) -> list[Task]:
    """The train suite's `fresh` split when an arm draws its human code from it
    (`--human-sources fresh`), else none; refused when the suite has no such split,
    and checked against train and eval like any other split."""
    if "fresh" not in cfg.human_sources:
        return []
    tasks = [t for t in load_suite(cfg.train_suite) if t.split == "fresh"]
    if not tasks:
        raise BadInput(f"--human-sources fresh needs a `fresh` split in {cfg.train_suite}; "
                       "the synthetic suite (synth) has one")
    check_no_overlap({t.task_id: t.prompt for t in [*train, *evals]},
                     {t.task_id: t.prompt for t in tasks})
    return tasks


def human_tasks(ctx: Context, arm: Arm) -> list[Task]:
    """The human code an arm's generations draw on (`--human-sources`): the train
    split's references, which a model built or warm-started on it has seen, or the
    fresh split's, which no model has. The warm start always uses the train split:
    it stands for pretraining on the task family."""
    return ctx.fresh_tasks if arm.human_source == "fresh" else ctx.train_tasks


def check_output_root(cfg: RunConfig, create: bool = True) -> None:
    """`out` must be a writable directory before anything is loaded (create=False: a
    dry run, which checks without creating it)."""
    check_output_dir(Path(cfg.out), "--out", create=create)


# ----------------------------------------------------------------------------- one arm
def iter_arm(ctx: Context, arm: Arm) -> Iterator[int]:
    """Run an arm generation by generation, yielding each generation once it is complete
    (DONE written); complete generations are skipped, not yielded.

    The seam for running arms elsewhere (harness/scaleout/worker.py): a Ray worker runs
    this into its own copy of the run directory and ships each yielded generation back.
    """
    cfg, store = ctx.cfg, ctx.store
    arm_dir = store.arm_dir(arm.arm_id)
    atomic_write_json(arm_dir / "arm.json", arm.to_json())
    ctx.log(f"== arm {arm.arm_id}")

    if not store.is_done(arm.arm_id, 0):
        run_generation_zero(ctx, arm)
        yield 0
    for g in range(1, cfg.total_generations + 1):
        if store.is_done(arm.arm_id, g):
            continue
        if arm.course == "repair-only" and g <= cfg.generations:
            hold_generation(ctx, arm, g)
        else:
            run_generation(ctx, arm, g)
        yield g


def run_generation_zero(ctx: Context, arm: Arm) -> None:
    """Evaluate the base model. Identical for every arm of a seed, so computed once."""
    store = ctx.store
    gen_dir = store.gen_dir(arm.arm_id, 0)
    sibling = _done_gen0_sibling(ctx, arm)
    if sibling is not None:
        shutil.rmtree(gen_dir, ignore_errors=True)
        shutil.copytree(sibling, gen_dir, ignore=shutil.ignore_patterns("DONE"))
        record = GenerationRecord.from_json(read_json(gen_dir / "metrics.json"))
        record.arm_id = arm.arm_id
        atomic_write_json(gen_dir / "metrics.json", record.to_json())
    else:
        release_memory()
        reset_peak()
        t0 = time.perf_counter()
        model = start_model(ctx, arm.seed)
        t_training = time.perf_counter() - t0
        warm = read_json(warm_dir(store, arm.seed) / WARM_MARKER) if warmed(ctx) else {}
        trained = Trained(
            phase="warmup" if warm else "base", n_examples=int(warm.get("n_examples", 0)),
            loss=warm.get("train_loss"),
            composition={"self": 0, "real": warm["n_examples"]} if warm else None,
            timings_s={"sampling": 0.0, "execution": 0.0, "training": t_training,
                       "train_tokens_per_s": float(warm.get("train_tokens_per_s", 0.0))})
        eval_rows, verdict_rows, record = score_generation(ctx, model, arm, 0, trained, t0)
        _write_generation(gen_dir, eval_rows, verdict_rows, record)
    store.mark_done(arm.arm_id, 0)
    store.record_step(f"{arm.arm_id}/gen-0", "done", torch_threads=used_threads())
    _log_generation(ctx, record)


def hold_generation(ctx: Context, arm: Arm, g: int) -> None:
    """A generation of a repair-only arm (the recovery control) before its repair:
    nothing is trained, the model stays M0, so the generation is generation 0's,
    copied, with phase `held` and a HELD marker (no adapter: `model_after` skips it).
    Eval samples are drawn with the same seeds every generation, so scoring M0 again
    would give exactly generation 0's numbers; copying them costs nothing. Its repair
    generations G+1.. then run as every arm's do, with the same data draws and seeds
    as its self-trained twin's, from M0 instead of M_G."""
    store = ctx.store
    gen_dir = store.gen_dir(arm.arm_id, g)
    shutil.rmtree(gen_dir, ignore_errors=True)
    shutil.copytree(store.gen_dir(arm.arm_id, 0), gen_dir,
                    ignore=shutil.ignore_patterns("DONE"))
    record = GenerationRecord.from_json(read_json(gen_dir / "metrics.json"))
    record.generation, record.phase = g, "held"
    record.timings_s = {}  # nothing ran: no rates for the estimate (it skips such)
    atomic_write_json(gen_dir / "metrics.json", record.to_json())
    (gen_dir / HELD).write_text("the model of generation 0, not trained\n")
    store.mark_done(arm.arm_id, g)
    store.record_step(f"{arm.arm_id}/gen-{g}", "held")
    _log_generation(ctx, record)


HELD = "HELD"
"""Marks a held generation's directory (a repair-only arm before its repair)."""


def warmed(ctx: Context) -> bool:
    return ctx.cfg.training.warmup_epochs > 0


WARM_MARKER = "warmup.json"
"""Written last in warmup/seed-S/: the warm start is complete once it exists."""


def warm_dir(store: RunStore, seed: int) -> Path:
    return store.root / "warmup" / f"seed-{seed}"


def start_model(ctx: Context, seed: int) -> Any:
    """M0 of a seed: the base model, or with --warmup-epochs the base model fine-tuned
    on human references of the train split (`warm_start`). The warm adapter is
    trained once per seed and saved in warmup/seed-S/, so every arm of the seed and
    every resume start from the same weights."""
    if not warmed(ctx):
        return ctx.base_model
    if seed not in ctx.start_models:
        directory = warm_dir(ctx.store, seed)
        if not (directory / WARM_MARKER).is_file():
            train_warm_start(ctx, seed, directory)
        ctx.start_models[seed] = warm_start(ctx.base_model, ctx.store, seed)
    return ctx.start_models[seed]


def warm_start(base: Any, store: RunStore, seed: int) -> Any:
    """The base model with a seed's saved warm-start adapter merged (the base model
    itself when the run has none)."""
    from harness.model.training import load_adapter, merge_adapter

    directory = warm_dir(store, seed)
    if not (directory / WARM_MARKER).is_file():
        return base
    return merge_adapter(load_adapter(base, directory / "adapter"))


def train_warm_start(ctx: Context, seed: int, directory: Path) -> None:
    """Fine-tune the base model on `warmup_examples` human references (all of the
    train split when 0), drawn per seed, for `warmup_epochs` epochs; the adapter,
    then warmup.json (its completion marker) are written atomically."""
    from harness.model.training import finetune_lora, save_adapter

    cfg = ctx.cfg
    pool = _real_pool(ctx)
    size = cfg.training.warmup_examples or len(pool)
    rng = np.random.default_rng(derive_seed(seed, "warmup"))
    picked = sorted(rng.choice(len(pool), size=min(size, len(pool)), replace=False))
    dataset = [pool[i] for i in picked]
    settings = dataclasses.replace(cfg.training, epochs=cfg.training.warmup_epochs)
    t0 = time.perf_counter()
    trained, stats = finetune_lora(ctx.base_model, ctx.tokenizer,
                                   [(e.prompt, e.completion) for e in dataset], settings,
                                   seed=derive_seed(seed, "warmup-train"),
                                   progress=f"seed {seed} warm start", fmt=ctx.fmt)
    save_adapter(trained, directory / "adapter")
    del trained
    release_memory()
    atomic_write_json(directory / WARM_MARKER, {
        "seed": seed, "epochs": cfg.training.warmup_epochs, "n_examples": len(dataset),
        "task_ids": [e.task_id for e in dataset],
        "train_loss": stats.losses[-1] if stats.losses else None,
        "train_tokens_per_s": stats.tokens_per_s, "seconds": time.perf_counter() - t0})
    ctx.log(f"seed {seed}: warm start on {len(dataset)} human references x "
            f"{cfg.training.warmup_epochs} epochs ({time.perf_counter() - t0:.0f} s)")


@dataclass
class TrainingData:
    """What steps 1-4 of a generation produce: its dataset and the rows that record it."""

    dataset: list[Example]
    sample_rows: list[dict[str, Any]]
    verdict_rows: list[dict[str, Any]]
    phase: str                        # self-training | recovery
    filter: dict[str, Any] | None
    detection: dict[str, Any] | None
    timings: dict[str, float]


def run_generation(ctx: Context, arm: Arm, g: int) -> None:
    from harness.model.training import finetune_lora, save_adapter

    cfg, store = ctx.cfg, ctx.store
    gen_dir = store.gen_dir(arm.arm_id, g)
    store.record_step(f"{arm.arm_id}/gen-{g}", "running")
    release_memory()  # what the previous generation (or arm) freed, before the peak starts
    reset_peak()
    t_start = time.perf_counter()
    data = (self_training_data(ctx, arm, g) if g <= cfg.generations
            else recovery_data(ctx, arm, g))
    sha = atomic_write_jsonl(gen_dir / "train.jsonl", (e.to_json() for e in data.dataset))
    store.record_step(f"{arm.arm_id}/gen-{g}/train.jsonl", "written", sha256=sha,
                      n_examples=len(data.dataset))

    # 5. fine-tune from the restart policy's starting point; save the adapter
    t0 = time.perf_counter()
    restart = cfg.training.restart
    base = start_model(ctx, arm.seed)
    model = model_to_train(base, store, arm.arm_id, restart, g)
    trained, stats = finetune_lora(model, ctx.tokenizer,
                                   [(e.prompt, e.completion) for e in data.dataset],
                                   cfg.training, seed=derive_seed(arm.seed, g, "train"),
                                   progress=f"gen {g} train", fmt=ctx.fmt)
    save_adapter(trained, gen_dir / "adapter")
    del model, trained
    release_memory()  # the training activations: freed, but still resident until trimmed
    t_training = time.perf_counter() - t0

    # 6. evaluate M_g, rebuilt from disk exactly as a resumed run would
    trained = Trained(phase=data.phase, n_examples=len(data.dataset),
                      loss=stats.losses[-1] if stats.losses else None,
                      composition=_composition(data.dataset), filter=data.filter,
                      detection=data.detection,
                      timings_s={**data.timings, "training": t_training,
                                 "train_tokens_per_s": stats.tokens_per_s})
    eval_rows, verdict_rows, record = score_generation(
        ctx, model_after(base, store, arm.arm_id, restart, g), arm, g, trained, t_start)
    _write_generation(gen_dir, data.sample_rows + eval_rows, data.verdict_rows + verdict_rows,
                      record)
    store.mark_done(arm.arm_id, g)
    store.record_step(f"{arm.arm_id}/gen-{g}", "done", torch_threads=used_threads())
    _log_generation(ctx, record)


def self_training_data(ctx: Context, arm: Arm, g: int) -> TrainingData:
    """Steps 1-4: sample M_{g-1}, execute, filter, and assemble the regime's dataset."""
    cfg, store = ctx.cfg, ctx.store
    gen_dir = store.gen_dir(arm.arm_id, g)

    # 1. sample the previous model on a fresh draw of train prompts
    t0 = time.perf_counter()
    rng = np.random.default_rng(derive_seed(arm.seed, g, "prompts"))
    picked = rng.choice(len(ctx.train_tasks), size=cfg.train_prompts, replace=False)
    tasks = [ctx.train_tasks[i] for i in sorted(picked)]
    base = start_model(ctx, arm.seed)
    previous = model_after(base, store, arm.arm_id, cfg.training.restart, g - 1)
    drawn = train_draw(ctx, arm, g, previous, tasks)
    flat = [(t, c) for t, comps in zip(tasks, drawn, strict=True) for c in comps]
    humans = human_pool(ctx, arm, g, {t.task_id for t in tasks}, len(flat))
    t_sampling = time.perf_counter() - t0

    # 2. execute every candidate in the sandbox (needed for precision/recall of any filter)
    t0 = time.perf_counter()
    by_id = {t.task_id: t for t in tasks} | {t.task_id: t for t in humans}
    human_texts = [reference(ctx, t) for t in humans]
    self_samples = [as_sample(ctx, t, c.text) for t, c in flat]
    results = execute_samples(by_id, self_samples
                              + [as_sample(ctx, t, text)
                                 for t, text in zip(humans, human_texts, strict=True)],
                              ctx.executor, timeout_s=cfg.sandbox.timeout_s,
                              progress=f"gen {g} execute")
    t_execution = time.perf_counter() - t0

    # 3. filter (detectors first score the mixed pool with M_{g-1}, and ratio and
    #    binoculars with the base model too: both are passed to every detector);
    #    human candidates get M_{g-1}'s confidence too, as `perplexity:Q` ranks by it
    human_logprobs = _logprobs(ctx, previous, humans)
    candidates = ([Candidate(t.task_id, t.prompt, c.text, r, c.mean_logprob)
                   for (t, c), r in zip(flat, results[:len(flat)], strict=True)]
                  + [Candidate(t.task_id, t.prompt, text, r, lp, provenance="human")
                     for t, text, r, lp in zip(humans, human_texts, results[len(flat):],
                                               human_logprobs, strict=True)])
    spec = parse_filter(arm.filter)
    mixed = bool(humans) or spec.name == "detect"
    if mixed:
        from harness.experiment.filters import attach_detector_scores

        candidates = attach_detector_scores(spec, candidates, previous, base,
                                            ctx.tokenizer,
                                            calibration_pairs(ctx, arm, g, by_id), fmt=ctx.fmt,
                                            watermark=cfg.sampling.watermark)
    del previous
    release_memory()
    outcome = apply_filter(spec, candidates, np.random.default_rng(
        derive_seed(arm.seed, g, "filter")))
    kept = [Example(c.task_id, c.prompt, ctx.fmt.training_completion(c.completion),
                    "self" if c.provenance == "self" else "real", g)
            for c, k in zip(candidates, outcome.keep, strict=True) if k]
    atomic_write_jsonl(gen_dir / "kept.jsonl", (e.to_json() for e in kept))

    # 4. this generation's dataset under the regime, with real data mixed in
    kept_by_gen = [_read_examples(store.gen_dir(arm.arm_id, h) / "kept.jsonl")
                   for h in range(1, g)] + [kept]
    dataset = build_dataset(arm.regime, kept_by_gen, _real_pool(ctx, arm), arm.real_fraction,
                            cfg.subsample_size or cfg.train_prompts,
                            np.random.default_rng(derive_seed(arm.seed, g, "dataset")),
                            fixed_size=cfg.training_set_size)

    train_rows = [sample_row(s, c, "train", arm.seed, i)
                  for i, (s, (_, c)) in enumerate(zip(self_samples, flat, strict=True))]
    verdicts = [_verdict_row(c.task_id, "train" if c.provenance == "self" else "human-pool",
                             i, c.result, kept=k)
                for i, (c, k) in enumerate(zip(candidates, outcome.keep, strict=True))]
    return TrainingData(dataset, train_rows, verdicts, "self-training",
                        outcome.to_json(arm.filter),
                        detection_metrics(candidates, outcome.keep) if mixed else None,
                        {"sampling": t_sampling, "execution": t_execution})


DRAW_BLIND = frozenset({"filter", "regime", "real_fraction", "human_source", "course",
                        "restart"})
"""Arm axes generation 1's train draw does not depend on: what is done with the
samples (filtered, mixed, accumulated), or with the model after them (restart; a
repair-only course draws nothing before its repair)."""


def train_draw(ctx: Context, arm: Arm, g: int, previous: Any, tasks: Sequence[Task]
               ) -> list[list[Any]]:
    """Generation g's train samples of M_{g-1}, n_train per prompt.

    Generation 1 samples M0, which every arm of a seed shares, on prompts and with
    seeds that depend on the seed and generation only: so arms that differ only on
    axes that act after the draw (`DRAW_BLIND`) draw the same samples, and they are
    drawn once and kept for the others (sampling is deterministic given its seeds:
    `sample_completions`). An axis not named there keeps its arms' draws apart.
    """
    from harness.model.sampling import sample_completions

    key = tuple((name, value) for name, value in arm.values if name not in DRAW_BLIND)
    if g == 1 and key in ctx.first_draws:
        return ctx.first_draws[key]
    cfg = ctx.cfg
    drawn = sample_completions(previous, ctx.tokenizer, [t.prompt for t in tasks], cfg.n_train,
                               cfg.sampling, seed=derive_seed(arm.seed, g, "train-samples"),
                               temperature=arm.train_temperature,
                               progress=f"gen {g} sample train", fmt=ctx.fmt)
    if g == 1:
        ctx.first_draws[key] = drawn
    return drawn


def recovery_data(ctx: Context, arm: Arm, g: int) -> TrainingData:
    """A repair generation (--recover): human references only, no sampling, no filter.

    `training_set_size` examples when set, else one reference per train prompt
    (`subsample_size` or `train_prompts`: the human data one generation would
    draw), drawn afresh each generation. That is fewer examples than an unfiltered
    self-training generation trains on (train_prompts x n_train).
    """
    cfg = ctx.cfg
    size = cfg.training_set_size or cfg.subsample_size or cfg.train_prompts
    dataset = build_dataset("replace", [[]], _real_pool(ctx, arm), 1.0, size,
                            np.random.default_rng(derive_seed(arm.seed, g, "dataset")))
    return TrainingData(dataset, [], [], "recovery", None, None,
                        {"sampling": 0.0, "execution": 0.0})


def human_pool(ctx: Context, arm: Arm, g: int, used: set[str], n_self: int) -> list[Task]:
    """Human references for the mixed candidate pool (`human_pool_share`).

    Drawn from the arm's human source (`human_tasks`), from problems not prompted this
    generation, so the pool's human code is for problems the model did not just
    answer; none when the share is 0. The fresh split is small (861 tasks at the
    default sizes), so from it the pool leaves CALIBRATION_SIZE tasks out for the
    detectors' calibration, and may then hold less than the share asks.
    """
    share = ctx.cfg.human_pool_share
    if share <= 0:
        return []
    rest = [t for t in human_tasks(ctx, arm) if t.task_id not in used]
    reserve = CALIBRATION_SIZE if arm.human_source == "fresh" else 0
    n = max(0, min(round(share * n_self / (1.0 - share)), len(rest) - reserve))
    rng = np.random.default_rng(derive_seed(arm.seed, g, "human-pool"))
    return [rest[i] for i in sorted(rng.choice(len(rest), size=n, replace=False))]


def calibration_pairs(ctx: Context, arm: Arm, g: int, in_pool: dict[str, Task]
                      ) -> list[tuple[str, str]]:
    """Human references outside the pool, from the arm's human source, that calibrate
    a detector's threshold."""
    rest = [t for t in human_tasks(ctx, arm) if t.task_id not in in_pool]
    n = min(CALIBRATION_SIZE, len(rest))
    rng = np.random.default_rng(derive_seed(arm.seed, g, "calibration"))
    return [(rest[i].prompt, reference(ctx, rest[i]))
            for i in sorted(rng.choice(len(rest), size=n, replace=False))]


CALIBRATION_SIZE = 256
"""Human references a detector's quantile threshold is calibrated on, per generation."""


def detection_metrics(candidates: Sequence[Candidate], keep: Sequence[bool]
                      ) -> dict[str, Any]:
    """How well the filter told AI from human code in a mixed pool (provenance known).

    "Flagged as AI" is "dropped by the filter", so a non-detector filter on a mixed
    pool reports how its drops split by provenance (and no AUROC: it has no score).
    """
    from harness.experiment.detection import detection_report, roc_points

    scores = np.array([c.ai_score for c in candidates], dtype=float)
    is_ai = np.array([c.provenance == "self" for c in candidates])
    thresholds = [c.ai_threshold for c in candidates if not math.isnan(c.ai_threshold)]
    report: dict[str, Any] = detection_report(scores, is_ai, ~np.array(keep, dtype=bool),
                                              thresholds[0] if thresholds else None)
    scored = not np.isnan(scores).all()
    report["roc"] = [list(p) for p in roc_points(scores, is_ai)] if scored else []
    if not scored:
        report["auroc"] = None
    return report


def _logprobs(ctx: Context, model: Any, humans: Sequence[Task]) -> list[float]:
    if not humans:
        return []
    from harness.model.training import completion_logprobs

    return completion_logprobs(model, ctx.tokenizer, [(t.prompt, reference(ctx, t))
                                                      for t in humans], fmt=ctx.fmt)


def _real_pool(ctx: Context, arm: Arm | None = None) -> list[Example]:
    """Human references as training examples: of the arm's human source, or (no arm:
    the warm start) of the train split."""
    tasks = ctx.train_tasks if arm is None else human_tasks(ctx, arm)
    return [Example(t.task_id, t.prompt, reference(ctx, t), "real", 0) for t in tasks]


def reference(ctx: Context, task: Task, body: str | None = None) -> str:
    """A task's human reference (or `body` in its place) as the run's prompt format
    writes a completion: the body, or in chat the whole function in a code block."""
    return ctx.fmt.reference(task.prompt, task.canonical_solution if body is None else body)


def as_sample(ctx: Context, task: Task, text: str) -> Sample:
    """What the verifier judges of one completion: in chat format, with the solution
    taken out of the answer."""
    return Sample(task.task_id, text, ctx.fmt.solution(text, task.entry_point))


def sample_row(sample: Sample, completion: Any, split: str, seed: int,
               index: int) -> dict[str, Any]:
    """One samples.jsonl row (results/README.md): the completion as the model wrote
    it, and in chat format the solution judged."""
    return {"task_id": sample.task_id, "completion": sample.completion,
            "solution": sample.solution, "split": split, "seed": seed, "index": index,
            "mean_logprob": completion.mean_logprob}


def _composition(dataset: Sequence[Example]) -> dict[str, int]:
    n_self = sum(e.source == "self" for e in dataset)
    return {"self": n_self, "real": len(dataset) - n_self}


# ----------------------------------------------------------------------------- models
def model_after(base: Any, store: RunStore, arm_id: str, restart: str, g: int) -> Any:
    """M_g with its adapters merged, for sampling and evaluation (rebuilt from disk).

    merge: base + adapters 1..g merged in order; continue / from-base: base + adapter g.
    `base` is never modified (load_adapter works on a copy).
    """
    from harness.model.training import load_adapter, merge_adapter

    model = base
    first = 1 if restart == "merge" else max(g, 1)
    for h in range(first, g + 1):
        if (store.gen_dir(arm_id, h) / HELD).exists():
            continue  # a held generation trained nothing (hold_generation)
        model = merge_adapter(load_adapter(model, store.gen_dir(arm_id, h) / "adapter"))
    return model


def model_to_train(base: Any, store: RunStore, arm_id: str, restart: str, g: int) -> Any:
    """The model generation g fine-tunes, per restart policy.

    merge: M_{g-1} merged, fresh adapter. continue: base + the previous adapter,
    trained further. from-base: the base weights, fresh adapter. (finetune_lora puts
    a fresh adapter on a copy, so `base` is never modified.)
    """
    from harness.model.training import load_adapter

    if restart == "merge":
        return model_after(base, store, arm_id, restart, g - 1)
    if restart == "continue" and g > 1 and not (store.gen_dir(arm_id, g - 1) / HELD).exists():
        return load_adapter(base, store.gen_dir(arm_id, g - 1) / "adapter", trainable=True)
    return base


# ----------------------------------------------------------------------------- evaluate
@dataclass(frozen=True)
class Trained:
    """What a generation's model was trained on, for its metrics.json: generation 0
    has the warm start (phase `warmup`) or nothing (phase `base`)."""

    phase: str                                   # base | warmup | self-training | recovery
                                                 # (a held generation: hold_generation)
    n_examples: int = 0
    loss: float | None = None                    # the last training step's
    composition: dict[str, int] | None = None    # {"self", "real"} trained on
    filter: dict[str, Any] | None = None         # the filter's block (self-training only)
    detection: dict[str, Any] | None = None      # mixed pool / detect filter only
    timings_s: dict[str, float] = field(default_factory=dict)  # making the model


def score_generation(ctx: Context, model: Any, arm: Arm, g: int, trained: Trained,
                     started: float
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], GenerationRecord]:
    """Score generation g's model: its samples.jsonl and verdicts.jsonl rows of the
    eval problems, and its GenerationRecord, built here and only here.

    Sample the eval problems, execute, and score (`evaluate_model`): pass@k, diversity,
    perplexity, the tail and collapse metrics, greedy pass@1 and the --also-eval
    suites where asked. `started`: when the generation began (its `generation` time).

    The eval samples are unmarked even when the run has a watermark (its train
    samples are marked), so pass@1 compares across runs; with one, the same eval
    problems are also sampled marked at the same seed (`watermark_eval`).

    The eval sampling seed is the same in every generation (common random numbers):
    sample i of a problem uses the same random draws whatever the generation, so
    the difference between two generations' scores is the models' difference, not
    a fresh draw's. A model that did not change scores exactly the same (with
    `--epochs 0` every generation equals generation 0), so the curves' noise floor
    is zero between generations; what remains is the sampling noise of the level,
    which the bootstrap intervals over problems and seeds report.
    """
    from harness.model.training import perplexity

    cfg = ctx.cfg
    t0 = time.perf_counter()
    main = eval_samples(ctx, model, arm, g, watermark="")
    report = main.report
    greedy = (greedy_eval(ctx, model, ctx.eval_tasks, arm).report.pass_at_k["pass@1"]
              if cfg.greedy else None)
    ppl = perplexity(model, ctx.tokenizer,
                     [(t.prompt, reference(ctx, t)) for t in ctx.eval_tasks], fmt=ctx.fmt)
    tail = tail_metrics(ctx, model, main.samples, main.results)
    collapse = collapse_block(ctx, arm, g, main.samples, report.diversity["diversity"])
    eval_rows, verdict_rows = _score_rows(main, "eval", arm.seed)
    watermark, marked_rows, marked_verdicts = watermark_eval(ctx, model, arm, g, main)
    eval_rows += marked_rows
    verdict_rows += marked_verdicts
    t_also = time.perf_counter()
    also_eval: dict[str, Any] | None = None
    if ctx.also_tasks:
        also_eval = {}
        for suite, also in ctx.also_tasks.items():
            block, rows, verdicts = also_evaluate(ctx, model, arm, suite, also)
            also_eval[suite] = block
            eval_rows += rows
            verdict_rows += verdicts
    now = time.perf_counter()
    record = GenerationRecord(
        arm_id=arm.arm_id, generation=g, phase=trained.phase,
        pass_at_k=dict(report.pass_at_k), diversity=report.diversity,
        per_task={k: dict(v) for k, v in report.per_task.items()},
        status_counts=dict(report.status_counts), perplexity=ppl, greedy_pass_at_1=greedy,
        tail_perplexity=tail["tail_perplexity"], head_perplexity=tail["head_perplexity"],
        renderings=tail["renderings"], collapse=collapse, filter=trained.filter,
        detection=trained.detection, train_composition=trained.composition,
        n_train_examples=trained.n_examples, train_loss=trained.loss,
        timings_s={"evaluation": now - t0, "eval_execution": main.execution_s,
                   "also_eval": now - t_also, **trained.timings_s,
                   "generation": time.perf_counter() - started},  # all of it: the ETA's
        also_eval=also_eval, watermark=watermark, peak_rss_mb=peak_rss_mb())
    return eval_rows, verdict_rows, record


def eval_samples(ctx: Context, model: Any, arm: Arm, g: int, watermark: str) -> ModelScore:
    """The eval problems sampled n_eval times (watermark '' = unmarked), executed and
    scored; the same seed in every generation and with or without the mark."""
    cfg = ctx.cfg
    label = "eval" if not watermark else "marked eval"
    return evaluate_model(model, ctx.tokenizer, ctx.eval_tasks, cfg.n_eval, cfg.sampling,
                          ctx.executor, cfg.ks, seed=derive_seed(arm.seed, "eval-samples"),
                          temperature=cfg.sampling.temperature, fmt=ctx.fmt,
                          timeout_s=cfg.sandbox.timeout_s, watermark=watermark,
                          progress=(f"gen {g} sample {label}", f"gen {g} execute {label}"))


def watermark_eval(ctx: Context, model: Any, arm: Arm, g: int, unmarked: ModelScore
                   ) -> tuple[dict[str, Any] | None, list[dict[str, Any]],
                              list[dict[str, Any]]]:
    """With a watermark: the eval problems sampled marked, at the eval seed, and the
    generation's `watermark` block (`harness.experiment.watermarking`: cost, AUROC,
    radioactivity), with their samples.jsonl and verdicts.jsonl rows (split
    `eval:watermark`). (None, [], []) without one."""
    from harness.experiment.watermarking import watermark_block
    from harness.model.watermark import parse_watermark

    spec = parse_watermark(ctx.cfg.sampling.watermark)
    if spec is None:
        return None, [], []
    t0 = time.perf_counter()
    marked = eval_samples(ctx, model, arm, g, watermark=ctx.cfg.sampling.watermark)
    block = watermark_block(spec, model, ctx.tokenizer, ctx.eval_tasks,
                            [reference(ctx, t) for t in ctx.eval_tasks], unmarked, marked,
                            ctx.fmt)
    block["seconds"] = time.perf_counter() - t0  # sampling, running and scoring them
    rows, verdicts = _score_rows(marked, MARKED_SPLIT, arm.seed)
    return block, rows, verdicts


MARKED_SPLIT = "eval:watermark"
"""The samples.jsonl / verdicts.jsonl split of the marked eval samples."""


def _score_rows(scored: ModelScore, split: str, seed: int
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """samples.jsonl and verdicts.jsonl rows of one scored sampling."""
    rows = [sample_row(s, c, split, seed, i)
            for i, (s, c) in enumerate(zip(scored.samples, scored.completions, strict=True))]
    verdicts = [_verdict_row(s.task_id, split, i, r)
                for i, (s, r) in enumerate(zip(scored.samples, scored.results, strict=True))]
    return rows, verdicts


def greedy_eval(ctx: Context, model: Any, tasks: Sequence[Task], arm: Arm) -> ModelScore:
    """One greedy (temperature 0) sample per problem, executed and scored (pass@1)."""
    return evaluate_model(model, ctx.tokenizer, tasks, 1, ctx.cfg.sampling, ctx.executor, [1],
                          seed=derive_seed(arm.seed, "greedy"), temperature=0.0, fmt=ctx.fmt,
                          timeout_s=ctx.cfg.sandbox.timeout_s, watermark="")


def also_evaluate(ctx: Context, model: Any, arm: Arm, suite: str, tasks: Sequence[Task]
                  ) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """A second suite's score of one generation (`--also-eval`): greedy pass@1 on all of
    its problems, and perplexity on its references. Greedy, one sample a problem,
    as HumanEval is usually reported, and so that it costs one sample per problem."""
    from harness.model.training import perplexity

    scored = greedy_eval(ctx, model, tasks, arm)
    report = scored.report
    block = {"n_tasks": len(tasks), "greedy_pass_at_1": report.pass_at_k["pass@1"],
             "per_task": report.per_task, "status_counts": report.status_counts,
             "perplexity": perplexity(model, ctx.tokenizer,
                                      [(t.prompt, reference(ctx, t)) for t in tasks],
                                      fmt=ctx.fmt)}
    split = f"also:{suite}"
    rows = [{"task_id": s.task_id, "completion": s.completion, "solution": s.solution,
             "split": split, "seed": arm.seed, "index": 0, "mean_logprob": None}
            for s in scored.samples]
    verdicts = [_verdict_row(s.task_id, split, i, r)
                for i, (s, r) in enumerate(zip(scored.samples, scored.results, strict=True))]
    return block, rows, verdicts


def tail_metrics(ctx: Context, model: Any, samples: Sequence[Sample],
                 results: Sequence[ExecResult]) -> dict[str, Any]:
    """Where the suite has renderings (synth): the style mix of the passing eval samples
    and perplexity on references written wholly in the rarest (tail) and the commonest
    (head) style. Shumailov et al. (2024) see tails vanish first; this makes it
    observable for code (docs/collapse.md). Null for suites without renderings."""
    from harness.model.training import perplexity
    from tasks.renderings import HEAD_STYLE, TAIL_STYLE, style_entropy
    from tasks.renderings import style_shares as shares_of
    from tasks.synthetic import solution_in_style

    if ctx.cfg.eval_suite.split(":")[0] != "synth":
        return {"renderings": None, "tail_perplexity": None, "head_perplexity": None}
    passing = [s.code for s, r in zip(samples, results, strict=True) if r.passed]
    shares = shares_of(passing) if passing else None
    out: dict[str, Any] = {"renderings": {"n_passing": len(passing), "shares": shares,
                                          "entropy": style_entropy(shares) if shares else None}}
    for key, style in (("tail_perplexity", TAIL_STYLE), ("head_perplexity", HEAD_STYLE)):
        out[key] = perplexity(model, ctx.tokenizer,
                              [(t.prompt, reference(ctx, t, solution_in_style(t, style)))
                               for t in ctx.eval_tasks], fmt=ctx.fmt)
    return out


def collapse_block(ctx: Context, arm: Arm, g: int, samples: Sequence[Sample],
                   diversity: float | None) -> dict[str, Any]:
    """Collapse-mode metrics of the eval samples, compared with generation 0's samples
    (harness.metrics.collapse): towards noise or towards a mode."""
    from harness.metrics.collapse import ModeInputs, collapse_metrics, group_by_task

    prompts = {t.task_id: t.prompt for t in ctx.eval_tasks}
    gen0_by_task = gen0_inputs = None
    if g > 0:
        gen0_dir = ctx.store.gen_dir(arm.arm_id, 0)
        rows = [r for r in read_jsonl(gen0_dir / "samples.jsonl") if r["split"] == "eval"]
        gen0_by_task = group_by_task([r["task_id"] for r in rows],
                                     [r["completion"] if r.get("solution") is None
                                      else r["solution"] for r in rows])
        gen0 = GenerationRecord.from_json(read_json(gen0_dir / "metrics.json"))
        gen0_inputs = ModeInputs.from_metrics(gen0.collapse or {}, gen0.headline_diversity)
    return collapse_metrics([prompts[s.task_id] for s in samples],
                            [s.code for s in samples], [s.task_id for s in samples],
                            gen0_by_task, diversity, gen0_inputs)


# ----------------------------------------------------------------------------- helpers
def _verdict_row(task_id: str, split: str, index: int, result: ExecResult,
                 kept: bool | None = None) -> dict[str, Any]:
    """One verdicts.jsonl row; `kept` (did the filter keep it) is null for eval rows,
    so every row has the same keys."""
    row: dict[str, Any] = {"task_id": task_id, "split": split, "index": index,
                           **result.to_json(), "kept": kept}
    row.pop("request_id", None)
    return row


def _write_generation(gen_dir: Path, sample_rows: Sequence[dict[str, Any]],
                      verdict_rows: Sequence[dict[str, Any]], record: GenerationRecord) -> None:
    atomic_write_jsonl(gen_dir / "samples.jsonl", sample_rows)
    atomic_write_jsonl(gen_dir / "verdicts.jsonl", verdict_rows)
    atomic_write_json(gen_dir / "metrics.json", record.to_json())


def _read_examples(path: Path) -> list[Example]:
    return [Example(**row) for row in read_jsonl(path)]


def _done_gen0_sibling(ctx: Context, arm: Arm) -> Path | None:
    for other in arms_of(ctx.cfg):
        if other.seed == arm.seed and other != arm and ctx.store.is_done(other.arm_id, 0):
            return ctx.store.gen_dir(other.arm_id, 0)
    return None


def _log_generation(ctx: Context, record: GenerationRecord | dict[str, Any]) -> None:
    ctx.log(generation_line(record))


def generation_line(record: GenerationRecord | dict[str, Any]) -> str:
    """The one progress line of a finished generation (also what Ray workers stream)."""
    m = record if isinstance(record, GenerationRecord) else GenerationRecord.from_json(record)
    pk = "  ".join(f"{k}={v:.3f}" for k, v in m.pass_at_k.items())
    kept = (f"  kept={m.filter['n_kept']}/{m.filter['n_candidates']}" if m.filter else "")
    div = m.headline_diversity
    ppl = "-" if m.perplexity is None else f"{m.perplexity:.2f}"
    tail = "" if m.tail_perplexity is None else f"  tail_ppl={m.tail_perplexity:.2f}"
    mode = (m.collapse or {}).get("mode")
    return (f"gen {m.generation}: {pk}  diversity={'-' if div is None else f'{div:.3f}'}  "
            f"ppl={ppl}{tail}{kept}  train_n={m.n_train_examples}"
            + (f"  mode={mode}" if mode else "") + ("  (repair)" if m.phase == "recovery"
                                                   else ""))
