"""One arm on one Ray node: `harness.experiment.loop.iter_arm` into a private copy of the run.

This is the body of the streaming Ray task the driver (`harness.scaleout.grid`)
submits per arm. It runs the ordinary loop, with the node's own warm sandbox pool,
into a temporary run directory seeded with the driver's complete generations, and
yields each generation as a `GenerationPacket` the moment the loop completes it.
Nothing of the loop is repeated here: a worker's generations are the loop's, so they
are the ones a local run writes.

The sandbox pool and the temporary directory are context managers: when the driver
cancels the task (Ctrl-C, an error elsewhere), Ray raises KeyboardInterrupt here and
both are closed on the way out, so no container outlives the task.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.config import ModelConfig, RunConfig
from harness.errors import EnvironmentProblem
from harness.experiment.arms import Arm
from harness.runfiles.store import RunStore
from harness.scaleout.transfer import GenerationPacket, pack_generation, write_files

_BASE: tuple[str, Any, Any] | None = None
"""(model config, model, tokenizer) of the last base model this worker process loaded.
Ray reuses a worker process for the next arm; the loop never modifies the base model
(every adapter goes on a copy), so loading it once per process is safe."""


def fit_to_share(cfg: RunConfig, cpus: float) -> RunConfig:
    """The config as one arm among several on a node runs it.

    Left on "automatic", torch threads and sandbox containers would each take the
    whole node, once per concurrent arm; they get the arm's CPU share instead.
    Neither setting changes a number the run writes (both are free on --resume).
    """
    share = max(1, math.floor(cpus))
    model = cfg.model if cfg.model.threads else dataclasses.replace(cfg.model, threads=share)
    sandbox = (cfg.sandbox if cfg.sandbox.pool_size
               else dataclasses.replace(cfg.sandbox, pool_size=max(1, math.ceil(cpus)) + 1))
    return dataclasses.replace(cfg, model=model, sandbox=sandbox)


def base_model(cfg: ModelConfig) -> tuple[Any, Any]:
    """The base model and tokenizer, loaded once per worker process."""
    global _BASE
    from harness.model.loading import load_model

    key = repr(cfg)
    if _BASE is None or _BASE[0] != key:
        _BASE = None  # drop the old model before loading another
        model, tokenizer = load_model(cfg)
        _BASE = (key, model, tokenizer)
    else:
        from harness.model.runtime import set_threads

        set_threads(cfg)
    return _BASE[1], _BASE[2]


def run_arm(cfg: RunConfig, run_id: str, arm: Arm, seed: dict[str, bytes],
            cpus: float = 1.0) -> Iterator[GenerationPacket]:
    """Run the generations of `arm` not in `seed`; yield each one once complete."""
    from harness.experiment.loop import iter_arm, load_tasks, make_context
    from sandbox.backends import make_executor

    cfg = fit_to_share(cfg, cpus)

    def log(line: str) -> None:  # lands in the worker's Ray log, not the driver's stderr
        print(f"[{arm.arm_id}] {line}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="collapse-bench-arm-") as tmp:
        store = RunStore.create(Path(tmp), run_id)
        write_files(store.root, seed)
        with on_this_node():
            train_tasks, eval_tasks = load_tasks(cfg)
            model, tokenizer = base_model(cfg.model)
            executor = make_executor(cfg.executor, cfg.sandbox)
        with executor:
            ctx = make_context(cfg, store, train_tasks, eval_tasks, model, tokenizer, executor,
                               log)
            for g in iter_arm(ctx, arm):
                yield pack_generation(store, arm.arm_id, g, arm.seed)


@contextlib.contextmanager
def on_this_node() -> Iterator[None]:
    """Name this node in an environment problem (a missing model, image or engine).

    The driver checked every node's sandbox before starting, but a node that joined
    later was not checked, and the model is only loaded here.
    """
    try:
        yield
    except EnvironmentProblem as exc:
        import ray

        node = ray.get_runtime_context().get_node_id()[:8]
        raise EnvironmentProblem(f"on node {socket.gethostname()} "
                                 f"({ray.util.get_node_ip_address()}, node {node}): {exc}"
                                 ) from None
