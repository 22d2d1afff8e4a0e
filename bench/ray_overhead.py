"""What Ray costs: a 4-arm grid on a local 2-node Ray cluster vs the same grid in turn.

The grid is 2 filters x 2 seeds of a small model (tests/model_helpers.SMALL_SPEC,
built once into the model cache) with small sizes, so the per-arm fixed costs of
scale-out (a Ray task, loading the base model in the worker, a sandbox pool per
arm, shipping generations back) weigh far more than in a real run: the ratio is a
pessimistic bound. The cluster is one head with no CPUs and two worker nodes of one
CPU each, all on 127.0.0.1; each arm gets one CPU (one torch thread, two sandbox
containers) on Ray and the same settings when run in turn in this process. Its
start-up stands in for `ray start` on the nodes and is reported, not counted.

Both runs must give the same metrics (checked). On a machine with two cores, the
Ray run can at best halve the wall time; whatever else runs on the machine shares
those cores, so the load average is recorded next to the numbers.

Last line: ratio=<median Ray s / sequential s> metrics_identical=<True|False>
"""

from __future__ import annotations

import argparse
import atexit
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

# Ray reads these at import: loopback only, no usage report, no log dedup.
os.environ.update(RAY_USAGE_STATS_ENABLED="0", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
                  RAY_DEDUP_LOGS="0")
if "RAY_TMPDIR" not in os.environ:  # Ray's sessions and sockets (short path), ours alone
    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="cbray-bench-", dir="/tmp")
    atexit.register(shutil.rmtree, os.environ["RAY_TMPDIR"], ignore_errors=True)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.config import RunConfig  # noqa: E402
from harness.experiment.loop import run_experiment  # noqa: E402
from harness.model.tiny import ensure_tiny_model  # noqa: E402
from harness.runfiles.store import read_json  # noqa: E402
from harness.scaleout.cluster import RaySettings  # noqa: E402
from harness.scaleout.grid import run_grid  # noqa: E402
from sandbox.backends import make_executor  # noqa: E402
from tests.model_helpers import SMALL_SPEC  # noqa: E402

NODE_ARGS = {"node_ip_address": "127.0.0.1", "object_store_memory": 100 * 1024 * 1024}
SUITE = f"synth:n_train={SMALL_SPEC.n_train},n_eval={SMALL_SPEC.n_eval},seed=0"


def bench_config(model: Path, out: Path, generations: int, executor: str) -> RunConfig:
    cfg = RunConfig()
    cfg.model.name, cfg.model.threads = str(model), 1
    cfg.train_suite = cfg.eval_suite = SUITE
    cfg.generations, cfg.train_prompts, cfg.n_train = generations, 32, 2
    cfg.eval_tasks, cfg.n_eval, cfg.ks = SMALL_SPEC.n_eval, 4, [1, 2]
    cfg.filters, cfg.seeds = ["tests", "none"], [0, 1]
    cfg.sampling.max_new_tokens = 64
    cfg.training.epochs, cfg.training.batch_size = 1, 8
    cfg.sandbox.pool_size, cfg.sandbox.timeout_s = 2, 3.0
    cfg.executor, cfg.out = executor, str(out)
    return cfg


def metrics_of(run_dir: Path) -> dict[str, list[dict]]:
    return {arm.name: [{k: v for k, v in read_json(g / "metrics.json").items()
                        if k != "timings_s"}
                       for g in sorted(arm.glob("gen-*"), key=lambda p: int(p.name[4:]))]
            for arm in sorted((run_dir / "arms").iterdir())}


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed_pair(cluster_address: str, model: Path, root: Path, generations: int,
               executor: str, ray_first: bool) -> tuple[float, float, bool, str]:
    """(sequential s, Ray s, same metrics, load averages) for one pair of runs."""
    def sequential() -> tuple[float, Path]:
        cfg = bench_config(model, root / "sequential", generations, executor)
        t0 = time.perf_counter()
        with make_executor(cfg.executor, cfg.sandbox) as pool:
            store = run_experiment(cfg, pool, lambda line: None)
        return time.perf_counter() - t0, store.root

    def on_ray() -> tuple[float, Path]:
        cfg = bench_config(model, root / "ray", generations, executor)
        t0 = time.perf_counter()
        store = run_grid(cfg, RaySettings(cluster_address), lambda line: None)
        return time.perf_counter() - t0, store.root

    loads = [loadavg()]
    first, second = (on_ray, sequential) if ray_first else (sequential, on_ray)
    a = first()
    loads.append(loadavg())
    b = second()
    loads.append(loadavg())
    (t_seq, seq_dir), (t_ray, ray_dir) = (b, a) if ray_first else (a, b)
    order = "Ray first" if ray_first else "sequential first"
    return t_seq, t_ray, metrics_of(seq_dir) == metrics_of(ray_dir), \
        f"{order}; load average (1/5/15 min) before / between / after: {' / '.join(loads)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generations", type=int, default=5,
                        help="self-training generations per arm (5: the default experiment)")
    parser.add_argument("--executor", choices=("docker", "local"), default="docker")
    parser.add_argument("--repeat", type=int, default=1,
                        help="pairs of runs, alternating which goes first (load drifts); "
                             "the ratio reported is the median")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" /
                        "ray_overhead.txt", help="where the report goes ('-': stdout only)")
    args = parser.parse_args()

    from ray.cluster_utils import Cluster

    lines = [f"# python bench/ray_overhead.py --generations {args.generations} "
             f"--executor {args.executor} --repeat {args.repeat}",
             f"date: {datetime.now(UTC).isoformat(timespec='seconds')}",
             f"host: {platform.node()}, {os.cpu_count()} cores, python "
             f"{platform.python_version()}",
             f"grid: 2 filters x 2 seeds = 4 arms x {args.generations} generations (+ gen 0), "
             f"{SUITE}, 32 train prompts x 2, {SMALL_SPEC.n_eval} eval problems x 4, "
             f"{args.executor} sandbox, 1 thread + 2 containers per arm"]
    model = ensure_tiny_model(None, progress=False, spec=SMALL_SPEC)
    ratios: list[float] = []
    same = True
    with tempfile.TemporaryDirectory(prefix="cb-ray-bench-") as tmp:
        t0 = time.perf_counter()
        cluster = Cluster(initialize_head=True,
                          head_node_args={**NODE_ARGS, "num_cpus": 0,
                                          "include_dashboard": False})
        try:
            for _ in range(2):
                cluster.add_node(num_cpus=1, **NODE_ARGS)
            lines.append(f"cluster start (head 0 CPU + 2 nodes x 1 CPU, not counted): "
                         f"{time.perf_counter() - t0:.1f} s")
            for i in range(args.repeat):
                t_seq, t_ray, equal, note = timed_pair(
                    cluster.address, model, Path(tmp) / f"pair-{i}", args.generations,
                    args.executor, ray_first=i % 2 == 1)
                same = same and equal
                ratios.append(t_ray / t_seq)
                lines.append(f"pair {i + 1}: sequential (this process) {t_seq:.1f} s, Ray (2 "
                             f"nodes x 1 CPU; connect + readiness check + run) {t_ray:.1f} s, "
                             f"ratio {t_ray / t_seq:.3f}, metrics identical: {equal}; {note}")
        finally:
            cluster.shutdown()

    ratio = statistics.median(ratios)
    lines += [f"ratio Ray / sequential (median of {len(ratios)}): {ratio:.3f} "
              "(target <= 1.15)",
              f"ratio={ratio:.3f} metrics_identical={same}"]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if str(args.out) != "-":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    if not same:
        sys.exit("the Ray run's metrics differ from the sequential run's")


if __name__ == "__main__":
    main()
