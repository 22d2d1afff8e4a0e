"""Options and plumbing shared by `run` and `ablate`: config file + overrides.

Both commands build one `RunConfig` from (embedded defaults) <- (--config FILE) <-
(command-line overrides), validate it, open the sandbox, and hand over to
`harness.loop.run_experiment`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from harness.errors import BadInput


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _number_list(name: str, kind: type[int] | type[float]) -> Callable[[str], list[Any]]:
    """Parser for a comma-separated list of ints or floats (e.g. --seeds 0,1,2)."""
    noun = "integers" if kind is int else "numbers"

    def parse(text: str) -> list[Any]:
        try:
            return [kind(p) for p in _split(text)]
        except ValueError:
            raise BadInput(f"--{name} takes comma-separated {noun}, got {text!r}") from None
    return parse


# option name -> (dotted config path, parser, help)
OVERRIDES: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "model": ("model.name", str, "HF id, local directory, or builtin:tiny."),
    "train_suite": ("train_suite", str, "Suite to self-train on (e.g. synth, mbpp:/path.jsonl)."),
    "train_split": ("train_split", str, "Split of the train suite."),
    "eval_suite": ("eval_suite", str, "Suite to evaluate on (e.g. synth, humaneval)."),
    "eval_split": ("eval_split", str, "Split of the eval suite."),
    "eval_tasks": ("eval_tasks", int, "Eval problems used (first N); 0 = all."),
    "generations": ("generations", int, "Self-training generations after generation 0."),
    "filters": ("filters", _split, "Comma-separated filters, one arm each "
                "(none, syntax, tests, partial:P, noisy:P, perplexity:Q, X+dedup)."),
    "regime": ("regimes", _split, "Comma-separated data regimes "
               "(replace, accumulate, accumulate-subsample)."),
    "real_fraction": ("real_fractions", _number_list("real-fraction", float),
                      "Comma-separated fractions of human data mixed into each generation."),
    "seeds": ("seeds", _number_list("seeds", int), "Comma-separated seeds, e.g. 0,1,2."),
    "train_prompts": ("train_prompts", int, "Train prompts per generation."),
    "n_train": ("n_train", int, "Completions sampled per train prompt."),
    "n_eval": ("n_eval", int, "Completions sampled per eval problem (n of pass@k)."),
    "k": ("ks", _number_list("k", int), "Comma-separated k values for pass@k, e.g. 1,10."),
    "temperature": ("sampling.temperature", float, "Eval sampling temperature."),
    "train_temperature": ("sampling.train_temperature", float,
                          "Sampling temperature of the self-generated train data."),
    "restart": ("training.restart", str, "continue | merge | from-base."),
    "epochs": ("training.epochs", int, "LoRA epochs per generation."),
    "lr": ("training.learning_rate", float, "LoRA learning rate."),
    "executor": ("executor", str, "docker (isolated) or local (NOT isolated)."),
    "device": ("model.device", str, "auto | cpu | cuda | cuda:N."),
    "dtype": ("model.dtype", str, "auto | float32 | bfloat16 | float16."),
    "out": ("out", str, "Root directory for run directories."),
}


def experiment_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Attach --config, every override option, and --resume to a command."""
    for name, (_, _, help_text) in reversed(list(OVERRIDES.items())):
        flag = "--" + name.replace("_", "-")
        func = click.option(flag, name, default=None, type=str, help=help_text)(func)
    func = click.option("--greedy/--no-greedy", default=None,
                        help="Also report greedy pass@1.")(func)
    func = click.option("--resume", "resume", default=None,
                        type=click.Path(file_okay=False, path_type=Path),
                        help="Continue an interrupted run directory.")(func)
    func = click.option("--config", "config_file", default=None,
                        type=click.Path(dir_okay=False, path_type=Path),
                        help="TOML config file (see `run --print-config`).")(func)
    return func


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def build_config(base: dict[str, Any], config_file: Path | None, resume: Path | None,
                 options: dict[str, Any]) -> Any:
    """defaults <- base preset <- config file <- overrides; or the run dir's own config."""
    from harness.config import RunConfig, from_dict, load_toml

    overrides = {k: v for k, v in options.items() if v is not None}
    if resume is not None:
        if config_file is not None or overrides:
            raise BadInput("--resume takes the run directory's own config.toml; "
                           "drop --config and other options")
        if not (resume / "config.toml").is_file():
            raise BadInput(f"not a run directory (no config.toml): {resume}")
        return from_dict(RunConfig, load_toml(resume / "config.toml"), str(resume))
    tree: dict[str, Any] = {}
    for dotted, value in base.items():
        _set(tree, dotted, value)
    if config_file is not None:
        _merge(tree, load_toml(config_file))
    for name, raw in overrides.items():
        if name == "greedy":
            _set(tree, "greedy", raw)
            continue
        dotted, parse, _ = OVERRIDES[name]
        try:
            value = parse(raw)
        except ValueError:
            raise BadInput(f"--{name.replace('_', '-')}: bad value {raw!r}") from None
        _set(tree, dotted, value)
    return from_dict(RunConfig, tree, str(config_file or "config"))


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def execute(cfg: Any, resume: Path | None) -> None:
    """Validate, open the sandbox, run every arm, print the per-arm tables."""
    from harness.arms import validate

    validate(cfg)  # before the heavy imports: a bad config fails in well under a second

    from harness.loop import load_tasks, run_experiment
    from harness.summary import render_tables, write_summary
    from sandbox.executor import make_executor

    load_tasks(cfg)  # suite errors and train/eval overlap fail before the sandbox starts
    with make_executor(cfg.executor, cfg.sandbox) as executor:
        store = run_experiment(cfg, executor, log=lambda line: click.echo(line, err=True),
                               resume_dir=resume)
    summary = write_summary(store, cfg)
    click.echo(render_tables(summary))
    click.echo(f"\nresults: {store.root}")
