"""Before any work starts, every node that will run some says whether it can.

Each node executes programs in its own Docker sandbox, so each needs a Docker engine
and the sandbox image built from this checkout's runner. A node without them would
otherwise fail its first arm minutes into the run, or, worse, only some arms would.
One small task pinned to each node asks; every node that is not ready is named in
one EnvironmentProblem (exit 3) with the fix, and nothing has been started.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence

from harness.errors import EnvironmentProblem
from harness.scaleout.cluster import RAY_HINT, NodeInfo, pinned

PROBE_TIMEOUT_S = 120.0
"""How long a node may take to answer (it may have to start a Python worker first)."""


def probe(executor: str, image: str) -> str | None:
    """Runs on a node: None when its sandbox can start, else what is wrong and the fix."""
    if executor != "docker":
        return None  # the local executor needs nothing but Python (and warns itself)
    from sandbox.docker_env import BUILD_HINT, connect, image_state

    try:
        state = image_state(connect(timeout_s=10), image)
    except EnvironmentProblem as exc:
        return str(exc)
    if state == "missing":
        return f"sandbox image {image} not found: {BUILD_HINT} on that node"
    if state == "stale":
        return (f"sandbox image {image} was built from an older sandbox/runner.py than the "
                f"driver's checkout: {BUILD_HINT} on that node (same checkout everywhere)")
    return None


def _probe_with_host(executor: str, image: str) -> tuple[str, str | None]:
    return socket.gethostname(), probe(executor, image)


def check_nodes(nodes: Sequence[NodeInfo], executor: str, image: str) -> None:
    """EnvironmentProblem naming every node in `nodes` whose sandbox is not ready."""
    import ray
    from ray.exceptions import GetTimeoutError, RayError, RayTaskError

    remote = ray.remote(num_cpus=0, max_retries=0)(_probe_with_host)
    refs = {n.node_id: remote.options(scheduling_strategy=pinned(n)).remote(executor, image)
            for n in nodes}
    problems: list[str] = []
    deadline = time.monotonic() + PROBE_TIMEOUT_S  # for all nodes together
    for node in nodes:
        try:
            _, problem = ray.get(refs[node.node_id],
                                 timeout=max(0.1, deadline - time.monotonic()))
        except GetTimeoutError:
            ray.cancel(refs[node.node_id], force=True)
            problem = f"did not answer within {PROBE_TIMEOUT_S:.0f} s (is it overloaded?)"
        except RayTaskError as exc:  # could not even import the harness there
            cause = exc.cause if exc.cause is not None else exc
            problem = (f"cannot run the harness ({type(cause).__name__}: "
                       f"{str(cause).splitlines()[0][:200]}): {RAY_HINT}")
        except RayError as exc:
            problem = f"failed while checking ({type(exc).__name__}); is the node still up?"
        if problem is not None:
            problems.append(f"node {node.name} is not ready: {problem}")
    if problems:
        raise EnvironmentProblem("; ".join(problems))
