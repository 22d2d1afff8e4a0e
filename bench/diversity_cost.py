"""Worst-case cost of the diversity metrics for one problem.

    .venv/bin/python bench/diversity_cost.py [--samples 64] [--tokens 5000]

`--samples` distinct samples of `--tokens` Python tokens each (random names, so every
pair is far apart: the edit distance's worst case), scored by
`harness.metrics.diversity.diversity_metrics` as one problem. Prints seconds and the
headline value; run it on two checkouts to compare (bench/results/diversity_cost.txt).
"""

from __future__ import annotations

import argparse
import os
import random
import time

from harness.metrics.diversity import diversity_metrics


def worst_case(samples: int, tokens: int, seed: int = 0) -> list[str]:
    """Distinct samples, `tokens` names each, one assignment per 3 tokens."""
    rng = random.Random(seed)
    out = []
    for _ in range(samples):
        names = [f"v{rng.randrange(10_000)}" for _ in range(tokens // 3)]
        out.append("\n".join(f"{n} = 1" for n in names) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=5000)
    args = parser.parse_args()
    group = worst_case(args.samples, args.tokens)
    t0 = time.perf_counter()
    metrics = diversity_metrics({"p": group})
    seconds = time.perf_counter() - t0
    print(f"{args.samples} samples x {args.tokens} tokens, one problem: {seconds:.2f}s, "
          f"mean_pairwise_dissimilarity={metrics['mean_pairwise_dissimilarity']:.6f} "
          f"(load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
