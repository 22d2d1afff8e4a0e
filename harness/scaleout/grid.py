"""The driver of a grid on Ray: every arm one streaming task, the run directory here.

    connect (or start a local Ray)      -> every node that can run an arm checks its
                                           sandbox; not ready: exit 3, nothing started
    per seed: the first arm without gen 0 is submitted first; its siblings follow once
              its gen 0 is here, and copy it (gen 0 is computed once per seed)
    every other arm: submitted at once; Ray queues what does not fit
    each generation a task yields      -> written here (DONE last), one progress line
    a node or worker lost              -> the arm is resubmitted, seeded with this
                                          directory's complete generations
    Ctrl-C / an error                  -> every task cancelled (each closes its
                                          sandbox pool), then Ray shut down if we
                                          started it; `--resume` continues

Ray's own task retry would restart an arm from its beginning on the new node and
re-yield generations already received; resubmitting from the driver resumes at the
first generation the driver does not have. The final metrics are those of an
uninterrupted run because every model is rebuilt from adapters on disk and every
seed is derived deterministically (see harness/experiment/loop.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.analysis.summary import write_summary
from harness.config import RunConfig
from harness.errors import CollapseBenchError, EnvironmentProblem, one_line
from harness.experiment.arms import Arm, arms_of, validate
from harness.experiment.clock import RunClock
from harness.experiment.lifecycle import run_directory
from harness.runfiles.store import RunStore
from harness.scaleout.cluster import RaySettings, connected, import_ray, nodes_for
from harness.scaleout.readiness import check_nodes
from harness.scaleout.transfer import (
    GenerationPacket,
    done_generations,
    gen0_source,
    seed_files,
    write_generation,
)

Log = Callable[[str], None]

MAX_ATTEMPTS = 3
"""Submissions of one arm before a run gives up on it (each lost node costs one)."""
CANCEL_GRACE_S = 60.0
"""How long cancelled tasks get to close their sandbox pools before Ray is shut down."""
WAIT_S = 1.0
"""ray.wait's timeout: how soon the driver notices Ctrl-C while every arm is busy."""


def run_grid(cfg: RunConfig, settings: RaySettings, log: Log,
             resume_dir: Path | None = None) -> RunStore:
    """Run (or resume) every arm of `cfg` on Ray; returns the driver's run store."""
    import_ray()
    settings.check()
    validate(cfg)
    if cfg.executor == "local":  # the workers warn too, but into Ray's logs
        from sandbox.local import WARNING

        log(WARNING)
    with connected(settings.address, log) as session:
        nodes = nodes_for(settings.cpus, settings.gpus)
        check_nodes(nodes, cfg.executor, cfg.sandbox.image)
        log(f"ray: {len(nodes)} node(s) can run arms ({settings.cpus:g} CPU, "
            f"{settings.gpus:g} GPU per arm)")
        cluster = {"ray": {"address": session.address, "local": session.started,
                           "nodes": len(nodes), "cpus_per_arm": settings.cpus,
                           "gpus_per_arm": settings.gpus}}
        with run_directory(cfg, resume_dir, log, cluster) as (store, log):
            Grid(cfg, store, settings, log).run()
            write_summary(store, cfg)
    return store


@dataclass
class _Job:
    arm: Arm
    attempts: int = 0


class Grid:
    """Submits the arms, receives their generations, resubmits arms whose node died."""

    def __init__(self, cfg: RunConfig, store: RunStore, settings: RaySettings,
                 log: Log) -> None:
        import ray

        from harness.scaleout.worker import run_arm

        self.ray, self.cfg, self.store, self.settings, self.log = ray, cfg, store, settings, log
        self.task = ray.remote(run_arm).options(num_returns="streaming", max_retries=0,
                                                num_cpus=settings.cpus,
                                                num_gpus=settings.gpus)
        self.running: dict[Any, _Job] = {}           # streaming generator -> its arm
        self.waiting: dict[int, list[_Job]] = {}     # seed -> arms waiting for its gen 0
        self.n_arms = len(arms_of(cfg))
        self.n_done = 0
        self.clock = RunClock(arms_of(cfg), cfg.total_generations + 1, store.is_done)

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        try:
            self._start()
            while self.running:
                ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=WAIT_S)
                for gen in ready:
                    self._advance(gen)
        except BaseException:
            self.cancel_all()
            raise

    def _start(self) -> None:
        """Gen 0 of each seed first (one arm per seed), then every arm that can start."""
        leaders: list[_Job] = []
        others: list[_Job] = []
        for arm in arms_of(self.cfg):
            if self._complete(arm):
                self.n_done += 1
                continue
            job = _Job(arm)
            if (self.store.is_done(arm.arm_id, 0)
                    or gen0_source(self.store, self.cfg, arm.seed) is not None):
                others.append(job)
            elif arm.seed in self.waiting:
                self.waiting[arm.seed].append(job)
            else:
                self.waiting[arm.seed] = []
                leaders.append(job)
        for job in leaders + others:
            self._submit(job)

    def _submit(self, job: _Job) -> None:
        job.attempts += 1
        seed = seed_files(self.store, self.cfg, job.arm)
        gen = self.task.remote(self.cfg, self.store.run_id, job.arm, seed, self.settings.cpus)
        self.running[gen] = job

    def _advance(self, gen: Any) -> None:
        """Take the next thing a task produced: a generation, its end, or its failure."""
        from ray.exceptions import RayError, RayTaskError

        job = self.running[gen]
        try:
            packet: GenerationPacket = self.ray.get(next(gen))
        except StopIteration:
            del self.running[gen]
            self._finished(job)
            return
        except RayTaskError as exc:  # the arm itself failed: stop the run
            del self.running[gen]
            raise task_failure(exc) from None
        except RayError as exc:      # its node or worker was lost: run it elsewhere
            del self.running[gen]
            self._retry(job, exc)
            return
        self._receive(job, packet)

    def _receive(self, job: _Job, packet: GenerationPacket) -> None:
        from harness.experiment.loop import generation_line

        write_generation(self.store, packet)
        self.log(f"{packet.arm_id} {generation_line(packet.metrics)}")  # the loop's line
        self.log(self.clock.finished(job.arm, packet.generation))
        if packet.generation == 0:
            for sibling in self.waiting.pop(job.arm.seed, []):
                self._submit(sibling)

    def _finished(self, job: _Job) -> None:
        if not self._complete(job.arm):
            missing = sorted(set(range(self.cfg.total_generations + 1))
                             - set(done_generations(self.store, job.arm.arm_id,
                                                    self.cfg.total_generations)))
            raise RuntimeError(f"arm {job.arm.arm_id} ended without generations {missing}")
        self.n_done += 1
        write_summary(self.store, self.cfg)
        self.log(f"{job.arm.arm_id} complete ({self.n_done}/{self.n_arms} arms)")

    def _retry(self, job: _Job, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {one_line(exc)}"
        if job.attempts >= MAX_ATTEMPTS:
            raise EnvironmentProblem(
                f"arm {job.arm.arm_id} lost its node or worker {job.attempts} times (last: "
                f"{reason}); complete generations are kept: check the cluster, then "
                f"`--resume {self.store.root} --ray ...` continues")
        done = done_generations(self.store, job.arm.arm_id, self.cfg.total_generations)
        self.log(f"{job.arm.arm_id} lost its worker ({reason}); resubmitting from "
                 f"generation {len(done)}")
        self._submit(job)

    def _complete(self, arm: Arm) -> bool:
        total = self.cfg.total_generations
        return len(done_generations(self.store, arm.arm_id, total)) == total + 1

    # ------------------------------------------------------------------ cancellation
    def cancel_all(self) -> None:
        """Cancel every task and wait (up to CANCEL_GRACE_S) until each has ended.

        Ray raises KeyboardInterrupt inside a cancelled task, which unwinds through
        the worker's sandbox pool and temporary directory, closing both. A generation
        that completed just before the cancel is still written: a resume skips it.
        """
        import time

        from ray.exceptions import RayError

        gens, self.running = list(self.running), {}
        for gen in gens:
            with contextlib.suppress(Exception):  # already finished or gone
                self.ray.cancel(gen)
        deadline = time.monotonic() + CANCEL_GRACE_S
        for gen in gens:
            while True:
                ready, _ = self.ray.wait([gen], timeout=max(0.0, deadline - time.monotonic()))
                if not ready:
                    break
                try:
                    packet = self.ray.get(next(gen))
                except (StopIteration, RayError):
                    break
                with contextlib.suppress(Exception):  # best effort while already failing
                    write_generation(self.store, packet)


def task_failure(exc: Any) -> BaseException:
    """What the driver raises for an arm's own failure (not a lost node).

    The harness's expected errors (bad input, environment problems on the node) keep
    their type, hence their exit code; a Ctrl-C that reached the workers too is an
    interruption; anything else is the task's error with its remote traceback.
    """
    from ray.exceptions import TaskCancelledError

    cause = getattr(exc, "cause", None)
    if isinstance(cause, CollapseBenchError):
        return cause
    if isinstance(cause, KeyboardInterrupt | TaskCancelledError) or isinstance(
            exc, TaskCancelledError):
        return KeyboardInterrupt()
    return exc


