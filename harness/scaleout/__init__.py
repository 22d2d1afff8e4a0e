"""Scale-out on Ray: arms of a grid, and the programs of a big `eval`, on many nodes.

Ray is an optional extra (`pip install 'collapse-bench[ray]'`); nothing here imports
it at module level, so the rest of the harness never needs it. One idea per module:

* `cluster`: connect to (or start) Ray, list its nodes, shut down what we started.
* `readiness`: every node that will run work says whether its sandbox is ready.
* `transfer`: a generation directory as bytes, in both directions (no shared disk).
* `worker`: one arm on a node, through `harness.experiment.loop.iter_arm`, yielding generations.
* `grid`: the driver: gen 0 once per seed, arms as streaming tasks, retry, cancel.
* `ray_executor`: the `Executor` interface over every node's warm sandbox pool.
* `options`: the `--ray` command-line options.
"""
