"""Options and plumbing shared by `run` and `ablate`: config file + overrides.

Both commands build one `RunConfig` from (embedded defaults) <- (preset) <-
(--config FILE) <- (command-line overrides), validate all of it at once, open the
sandbox, and hand over to `harness.experiment.loop.run_experiment`.

The options are generated from the config tree (`harness.config.cli_fields`): one
flag per setting, named after it (`--training.learning-rate`, `--eval-tasks`),
typed and with its default and help from the dataclass field, plus the older
short flags (`--lr`, `--k`, `--regime`, ...) as aliases. Nothing here repeats a
type, a default or a help text.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from harness.commands._help import SectionOption
from harness.config import FROM_GEN0, NO_NUMBER, CliField, cli_fields, settings_with
from harness.errors import BadInput


def resume_can_change() -> frozenset[str]:
    """Settings that do not change any number a run writes: always free on --resume
    (but `out`, the run's location, which --resume never moves)."""
    return settings_with(NO_NUMBER) - {"out"}


RESUME_CAN_CHANGE = resume_can_change()
"""`resume_can_change()` of RunConfig, from its fields' `effect`."""

GEN0_DEPENDS_ON = settings_with(FROM_GEN0)
"""What generation 0 (the base model's scores) depends on (fields marked FROM_GEN0);
the rest only shapes gen >= 1."""


class _ConfigValue(click.ParamType):
    """A click type that parses with the config field's own parser (one source of truth)."""

    def __init__(self, spec: CliField) -> None:
        self.spec = spec
        self.name = spec.metavar

    def get_metavar(self, *args: Any, **kwargs: Any) -> str:
        return self.spec.metavar  # e.g. FLOAT, INT,... or [docker|local], as typed

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        try:
            return self.spec.parse(value)
        except BadInput as exc:
            self.fail(str(exc), param, ctx)


def _option(spec: CliField, default: Any) -> Callable[[Any], Any]:
    if spec.type is bool:
        flags = [f"{flag}/--no-{flag[2:]}" for flag in spec.flags]
        return click.option(*flags, spec.dest, default=bool(default), show_default=True,
                            help=spec.help, cls=SectionOption, section=spec.section)
    return click.option(*spec.flags, spec.dest, type=_ConfigValue(spec),
                        default=spec.show(default), show_default=True, help=spec.help,
                        cls=SectionOption, section=spec.section)


def experiment_options(defaults: Mapping[str, Any] | None = None
                       ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach --config, --resume and one option per config setting to a command.

    `defaults` ({dotted path: value}) is the command's preset, shown as the default
    in --help (e.g. ablate's filter grid).
    """
    shown = dict(defaults or {})

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for spec in reversed(cli_fields()):
            func = _option(spec, shown.get(spec.path, spec.default))(func)
        func = click.option(
            "--synthetic-share", "synthetic_share", default=None, metavar="FLOAT,...",
            cls=SectionOption, section="experiment",
            help="Dose-response axis: each generation trains on a fixed-size set "
                 "(--training-set-size, default --train-prompts) of which this share is "
                 "self-generated and the rest human references; one arm per share. Sets "
                 "--real-fractions to 1 - share.")(func)
        func = click.option("--dry-run", "dry_run", is_flag=True,
                            help="Check everything a run checks before it starts (config, "
                                 "suites, output directory, device), print the plan line "
                                 "and exit 0 without loading the model or starting the "
                                 "sandbox; writes nothing.")(func)
        func = click.option("--resume", "resume", default=None,
                            type=click.Path(file_okay=False, path_type=Path),
                            help="Continue an interrupted run directory. Options may correct "
                                 "settings that no completed generation used.")(func)
        return click.option("--config", "config_file", default=None,
                            type=click.Path(dir_okay=False, path_type=Path),
                            help="TOML config file (see `run --print-config`); options given "
                                 "on the command line override it.")(func)
    return decorate


def given_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Only the options the user actually typed (not click's displayed defaults)."""
    ctx = click.get_current_context()
    return {name: value for name, value in options.items()
            if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT,
                                                      ParameterSource.DEFAULT_MAP)}


def _field_for(name: str) -> CliField:
    """The config field an option name refers to: its dest, dotted path, or an alias."""
    key = name.replace("-", "_")
    for spec in cli_fields():
        if key in (spec.dest, spec.path) or key in (a.replace("-", "_") for a in spec.aliases):
            return spec
    raise BadInput(f"unknown option {name!r}")


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def _has(tree: Mapping[str, Any], dotted: str) -> bool:
    node: Any = tree
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _apply(tree: dict[str, Any], options: Mapping[str, Any]) -> None:
    for name, raw in options.items():
        spec = _field_for(name)
        try:
            value = spec.parse(raw)
        except BadInput as exc:
            raise BadInput(f"{' / '.join(spec.flags)}: {exc}") from None
        _set(tree, spec.path, value)


def build_config(base: Mapping[str, Any], config_file: Path | None, resume: Path | None,
                 options: Mapping[str, Any]) -> Any:
    """defaults <- base preset <- config file <- overrides; or the run dir's own config
    with corrections (see `check_resume_changes`).

    With no k list anywhere, the ks are the ones of 1, 10, 100 that n_eval allows,
    so `--n-eval 4` alone works (as `eval` picks its ks).
    """
    from harness.config import RunConfig, default_ks, from_dict, load_toml, with_legacy_settings

    overrides = {k: v for k, v in options.items() if v is not None}
    shares = overrides.pop("synthetic_share", None)
    typed_fractions = any(_field_for(k).path == "real_fractions" for k in overrides)
    if resume is not None:
        if config_file is not None:
            raise BadInput("--resume takes the run directory's own config.toml; drop --config")
        if not (resume / "config.toml").is_file():
            raise BadInput(f"not a run directory (no config.toml): {resume}")
        tree = with_legacy_settings(load_toml(resume / "config.toml"))
        _apply(tree, overrides)
        if shares is not None:
            _apply_synthetic_share(tree, shares, typed_fractions)
        return from_dict(RunConfig, tree, str(resume / "config.toml"))
    tree = {}
    for dotted, value in base.items():
        _set(tree, dotted, value)
    if config_file is not None:
        _merge(tree, load_toml(config_file))
    _apply(tree, overrides)
    if shares is not None:
        _apply_synthetic_share(tree, shares, typed_fractions)
    if not _has(tree, "ks"):
        n_eval = tree.get("n_eval", RunConfig().n_eval)
        if isinstance(n_eval, int):
            tree["ks"] = default_ks(n_eval)
    return from_dict(RunConfig, tree, str(config_file or "config"))


def _apply_synthetic_share(tree: dict[str, Any], raw: Any, typed: bool) -> None:
    """`--synthetic-share 0.25,1.0` -> real fractions 0.75, 0.0 at a fixed set size
    (`training_set_size`, unless given, = the run's train prompts)."""
    from harness.config import RunConfig

    if typed:
        raise BadInput("--synthetic-share sets the real fractions (1 - share); "
                       "give one of --synthetic-share and --real-fractions")
    shares = _field_for("real_fractions").parse(raw) if isinstance(raw, str) else list(raw)
    if not shares:
        raise BadInput("--synthetic-share: expected comma-separated numbers in (0, 1]")
    for s in shares:
        if not 0.0 < s <= 1.0:
            raise BadInput(f"--synthetic-share: each share must be in (0, 1], got {s!r}")
    tree["real_fractions"] = [round(1.0 - s, 6) for s in shares]
    if not tree.get("training_set_size"):
        tree["training_set_size"] = tree.get("train_prompts", RunConfig().train_prompts)


def changed_settings(old: Any, new: Any) -> dict[str, tuple[Any, Any]]:
    """{dotted path: (old, new)} for every setting that differs."""
    from harness.config import flatten, to_dict

    before, after = dict(flatten(to_dict(old))), dict(flatten(to_dict(new)))
    return {k: (before.get(k), after.get(k)) for k in sorted(set(before) | set(after))
            if before.get(k) != after.get(k)}


def check_resume_changes(run_dir: Path, old: Any, new: Any) -> dict[str, tuple[Any, Any]]:
    """Which corrections a --resume may make, given what is already complete.

    A run that stopped on a bad setting (a training option that only the model could
    reject, say) is resumed with the corrected option instead of starting over. A
    change is refused when a completed generation already used the old value, since
    the run would then mix two experiments: nothing that generation 0 depends on once
    any generation 0 is done, and only the free settings (and more generations) once
    any self-training generation is done. `out` is the run's location: never changed.

    An arm axis may always gain values (`--filters` with one more, another seed): an
    arm's numbers depend on its own values only, so the arms already run stand and
    the new ones run beside them. Dropping or changing a value is a change like any
    other.
    """
    from harness.config import arm_axes
    from harness.experiment.arms import arms_of
    from harness.runfiles.store import RunStore

    changes = changed_settings(old, new)
    if not changes:
        return changes
    can_change, gen0_depends_on = resume_can_change(), settings_with(FROM_GEN0)
    grid_axes = {f.path for f in arm_axes() if f.is_list}
    if old.training.warmup_epochs > 0:  # the warm start trained generation 0's model
        gen0_depends_on |= {p for p in changes if p.startswith("training.")}
    store = RunStore(run_dir)
    arm_ids = {a.arm_id for a in arms_of(old)}
    arm_ids |= {p.name for p in (run_dir / "arms").glob("*") if p.is_dir()}
    last_done = max((g for arm_id in arm_ids for g in range(old.total_generations + 1)
                     if store.is_done(arm_id, g)), default=-1)
    for path, (before, after) in changes.items():
        if path == "out":
            raise BadInput(f"--resume continues {run_dir} in place; --out cannot change")
        more = after >= before if isinstance(after, int) else False
        grows = path in grid_axes and all(value in after for value in before)
        free = (path in can_change or grows or (path == "recover" and more)
                or (path == "generations" and more and old.recover == 0))
        used = last_done >= 1 or (last_done == 0 and path in gen0_depends_on)
        if used and not free:
            raise BadInput(f"cannot resume {run_dir} with {path} = {after!r}: completed "
                           f"generations used {before!r}; start a new run instead")
    return changes


def execute(cfg: Any, resume: Path | None, compare: bool = False, ray: Any = None,
            dry_run: bool = False) -> None:
    """Validate, open the sandbox, run every arm, print the per-arm tables.

    compare: also print one comparison table across the arm groups (ablate).
    ray: RaySettings to run the arms on Ray (harness/scaleout), each node with its
    own sandbox; None runs them here, one after another.
    dry_run: stop after the checks and the plan line, having written nothing.
    """
    from harness.experiment.arms import validate

    validate(cfg)  # before the heavy imports: a bad config fails in well under a second
    if resume is not None:
        from harness.config import load_run_config

        # before "nothing to do": a changed --n-eval or a shorter --generations on a
        # complete run would otherwise be accepted without a word
        check_resume_changes(resume, load_run_config(resume), cfg)
        if _already_complete(cfg, resume):
            return

    from harness.analysis.summary import render_tables, write_summary
    from harness.experiment.arms import check_device_here, plan_line
    from harness.experiment.estimate import estimate_line
    from harness.experiment.loop import (
        check_output_root,
        load_also_eval,
        load_tasks,
        run_experiment,
    )
    from harness.runfiles.store import writer_lock
    from sandbox.backends import make_executor

    if ray is None:
        check_device_here(cfg)  # --device cuda on a machine without CUDA, before anything
    train_tasks, eval_tasks = load_tasks(cfg)  # sizes and overlap fail before the sandbox
    also_problems = {suite: len(tasks) for suite, tasks in load_also_eval(cfg, train_tasks).items()}
    done = _done(cfg, resume)

    def announce() -> None:
        click.echo(plan_line(cfg, len(done)), err=True)
        click.echo(estimate_line(cfg, len(eval_tasks), resume, done, parallel=ray is not None,
                                 train_pool=len(train_tasks), also_problems=also_problems),
                   err=True)

    if dry_run:
        if resume is None:
            check_output_root(cfg, create=False)
        announce()
        click.echo("dry run: every check passed; nothing was started or written "
                   "(drop --dry-run to run)", err=True)
        return
    with contextlib.ExitStack() as held:
        if resume is None:
            check_output_root(cfg)  # an unusable --out fails before the model loads
        else:
            # a second writer of this run is refused before it loads anything; the
            # loop takes the same lock again (re-entrant) and holds it to the end
            held.enter_context(writer_lock(resume))
            _record_corrections(cfg, resume)
        announce()  # every check passed: what starts now, before the sandbox or model
        if ray is not None:
            from harness.scaleout.grid import run_grid

            store = run_grid(cfg, ray, log=_stderr, resume_dir=resume)
        else:
            with make_executor(cfg.executor, cfg.sandbox) as executor:
                store = run_experiment(cfg, executor, log=_stderr, resume_dir=resume)
        summary = write_summary(store, cfg)
    click.echo(render_tables(summary))
    if compare:
        from harness.analysis.report import comparison_table
        from harness.runfiles.runs import load_run

        click.echo("\n" + comparison_table(load_run(store.root)))
    click.echo(f"\nresults: {store.root}")
    click.echo(next_steps(store.root), err=True)


def _done(cfg: Any, resume: Path | None) -> set[tuple[str, int]]:
    """The plan's generations (arm id, generation) a resumed run has complete already."""
    if resume is None:
        return set()
    from harness.experiment.arms import arms_of
    from harness.runfiles.store import RunStore

    store = RunStore(resume)
    return {(a.arm_id, g) for a in arms_of(cfg) for g in range(cfg.total_generations + 1)
            if store.is_done(a.arm_id, g)}


def _stderr(line: str) -> None:
    click.echo(line, err=True)


def next_steps(run_dir: Path) -> str:
    """What to do with a finished run: the two commands a new user looks for next
    (on stderr, so stdout stays the tables)."""
    return (f"next: collapse-bench report {run_dir}   (markdown summary and plots)\n"
            f"      collapse-bench export {run_dir} --out entry.json   (leaderboard entry)")


def _record_corrections(cfg: Any, resume: Path) -> None:
    """Write corrected settings into the run's config.toml and note them in the manifest."""
    from harness.config import load_run_config, save_toml
    from harness.runfiles.store import RunStore

    saved = load_run_config(resume)
    changes = check_resume_changes(resume, saved, cfg)
    if not changes:
        return
    store = RunStore.open(resume)
    save_toml(cfg, resume / "config.toml")
    history = store.manifest().get("resume_changes", [])
    history.append({k: {"was": a, "now": b} for k, (a, b) in changes.items()})
    store.update_manifest(resume_changes=history)
    store.tee(_stderr)("resuming with changed settings: " + ", ".join(
        f"{k} = {b!r} (was {a!r})" for k, (a, b) in changes.items()))


def _already_complete(cfg: Any, resume: Path) -> bool:
    """True (after saying so) when every generation of every arm is done: no model,
    suite or container is loaded for a run that has nothing left to do."""
    from harness.analysis.summary import render_tables
    from harness.experiment.arms import arms_of
    from harness.runfiles.store import RunStore, read_json

    store = RunStore.open(resume)
    arms = arms_of(cfg)
    total = cfg.total_generations + 1
    if not all(store.is_done(a.arm_id, g) for a in arms for g in range(total)):
        return False
    click.echo(f"{resume} is already complete ({len(arms)} arm(s) x {total} "
               "generations); nothing to do", err=True)
    if (resume / "summary.json").is_file():
        click.echo(render_tables(read_json(resume / "summary.json")))
    return True
