"""`collapse-bench tasks`: list suites and show problems."""

from __future__ import annotations

import json

import click


@click.group("tasks")
def tasks() -> None:
    """Task suites and their problems."""


@tasks.command("list")
def list_suites() -> None:
    """Suites with problem counts per split (suites that need the network are not loaded)."""
    from collections import Counter

    from tasks.registry import SUITES, load_suite

    for name in SUITES.names():
        suite = SUITES.get(name)
        if suite.needs_network:
            hint = f"; offline: {suite.arg_help}" if suite.arg_help else ""
            click.echo(f"{name:<10} (hub: needs internet{hint})  {suite.description}")
            continue
        counts = Counter(t.split for t in load_suite(name))
        per_split = ", ".join(f"{split} {n}" for split, n in counts.items())
        click.echo(f"{name:<10} {per_split}  {suite.description}")
    click.echo("any .jsonl path: HumanEval-format problems (task_id, prompt, entry_point, test, "
               "canonical_solution)")


def _guess_suite(task_id: str) -> str:
    """The default suite a task id belongs to, from its prefix."""
    from harness.errors import BadInput

    prefix = task_id.split("/", 1)[0]
    guesses = {"HumanEval": "humaneval", "synth": "synth", "mbpp": "mbpp"}
    if prefix not in guesses:
        raise BadInput(f"cannot tell the suite of {task_id!r}; pass --suite")
    return guesses[prefix]


@tasks.command("show")
@click.argument("task_id")
@click.option("--suite", "suite", default=None,
              help="Suite spec (default: guessed from the id, e.g. HumanEval/0 -> humaneval).")
@click.option("--json", "as_json", is_flag=True, help="Print the task as one JSON object.")
def show(task_id: str, suite: str | None, as_json: bool) -> None:
    """Print one problem: prompt, reference solution, tests and per-assert split."""
    from harness.errors import BadInput
    from tasks.registry import load_suite, tasks_by_id

    by_id = tasks_by_id(load_suite(suite or _guess_suite(task_id)))
    if task_id not in by_id:
        raise BadInput(f"no task {task_id!r} in suite {suite or _guess_suite(task_id)!r}")
    task = by_id[task_id]
    if as_json:
        click.echo(json.dumps(task.to_json(), indent=2))
        return
    click.echo(f"# {task.task_id}  (suite {task.suite}, split {task.split}, "
               f"entry point {task.entry_point})")
    click.echo("## prompt\n" + task.prompt.rstrip("\n"))
    click.echo("## canonical solution\n" + task.canonical_solution.rstrip("\n"))
    click.echo("## test\n" + task.test.strip("\n"))
    if task.final_call:
        click.echo(f"## final call\n{task.final_call}")
    click.echo(f"## separable asserts ({len(task.asserts)})")
    for a in task.asserts:
        click.echo(a)
