"""Issue 10, inputs: options generated from the config tree, every check up front.

Each test runs the real CLI entry point (`harness.cli.main`) or the real config
functions. Runs that must fail point the model at a path that does not exist: had
the check come after the model load (as it used to), the error would be the
model's, and no run directory may appear either way.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.commands._experiment import build_config, check_resume_changes
from harness.config import RunConfig, TrainingConfig, cli_fields, save_toml, to_dict
from harness.errors import BadInput
from harness.experiment.arms import validate
from harness.experiment.loop import load_tasks
from harness.runfiles.store import RunStore

SUITE = "synth:n_train=10,n_eval=6,seed=7"
NO_MODEL = "/nonexistent/model-dir"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _refused_before_loading(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                            *args: str) -> str:
    """Run with a model that does not exist: the refusal must come first, in one line."""
    out = tmp_path / "results"
    code, _, err = _run(capsys, "run", "--model", NO_MODEL, "--executor", "local",
                        "--out", str(out), *args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert NO_MODEL not in err  # not the model loader's complaint
    assert not out.exists() or not any(out.iterdir())  # no run directory left behind
    return lines[0]


# ------------------------------------------------------------- options from the config


def test_every_setting_has_a_typed_option_with_default_and_help(
        capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("run", "ablate"):
        code, text, _ = _run(capsys, command, "--help")
        assert code == 0
        flat = " ".join(text.split())
        for spec in cli_fields():
            assert spec.flags[0] in flat, (command, spec.path)
    code, text, _ = _run(capsys, "run", "--help")
    flat = " ".join(text.split())
    assert "--training.learning-rate, --lr FLOAT" in flat
    assert re.search(r"Peak learning rate .*\[default: 0\.002\]", flat)
    assert "--generations INT" in flat and "[default: 5]" in flat
    assert "--ks, --k INT,..." in flat
    assert "--executor [docker|local]" in flat
    assert "--model.name, --model TEXT" in flat
    # ablate shows its own preset as the default
    _, ablate_help, _ = _run(capsys, "ablate", "--help")
    assert "[default:none,syntax,partial:0.5,tests" in "".join(ablate_help.split())


def test_option_help_is_the_config_field_help() -> None:
    from harness.commands.run import run

    by_dest = {p.name: p for p in run.params}
    for spec in cli_fields():
        assert by_dest[spec.dest].help == spec.help, spec.path


def test_old_and_new_flag_names_set_the_same_field() -> None:
    old = build_config({}, None, None, {"lr": "0.01", "k": "1,5", "regime": "accumulate",
                                        "real_fraction": "0.5", "epochs": "2",
                                        "temperature": "0.5", "model": "builtin:tiny"})
    new = build_config({}, None, None, {"training.learning_rate": "0.01", "ks": "1,5",
                                        "regimes": "accumulate", "real_fractions": "0.5",
                                        "training__epochs": "2",
                                        "sampling.temperature": "0.5",
                                        "model.name": "builtin:tiny"})
    assert old == new
    assert new.training.learning_rate == 0.01 and new.ks == [1, 5]
    assert new.regimes == ["accumulate"] and new.real_fractions == [0.5]


def test_singular_filter_and_seed_flags_like_regime_and_real_fraction(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 25: `--regime` and `--real-fraction` existed, `--filter` and `--seed` did not."""
    code, out, err = _run(capsys, "run", "--print-config", "--filter", "syntax",
                          "--seed", "3", "--regime", "accumulate")
    assert code == 0, err
    assert 'filters = [\n    "syntax",\n]' in out or 'filters = ["syntax"]' in out
    assert re.search(r"^seeds = \[\s*3,?\s*\]$", out, re.M)
    assert build_config({}, None, None, {"filter": "tests,none", "seed": "0,1"}) == \
        build_config({}, None, None, {"filters": "tests,none", "seeds": "0,1"})


def test_bad_flag_value_is_one_line_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "run", "--lr", "abc")
    assert code == 2 and err.count("\n") == 1
    assert "--lr" in err and "expected a number, got 'abc'" in err


# -------------------------------------------------------------- validation up front


@pytest.mark.parametrize(("args", "key"), [
    (("--lr", "0"), "training.learning_rate must be a finite number > 0"),
    (("--lr", "-1"), "training.learning_rate must be a finite number > 0"),
    (("--epochs", "-1"), "training.epochs must be >= 0"),
    (("--temperature", "-1"), "sampling.temperature must be a finite number >= 0"),
    (("--train-temperature", "-1"), "train_temperatures must be >= 0"),
    (("--sampling.top-p", "0"), "sampling.top_p must be in (0, 1]"),
    (("--training.warmup-ratio", "1"), "training.warmup_ratio must be in [0, 1)"),
    (("--sandbox.timeout-s", "0"), "sandbox.timeout_s must be > 0"),
    (("--device", "gpu"), "model.device must be one of"),
])
def test_bad_values_are_refused_before_the_model_loads(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, args: tuple[str, ...],
        key: str) -> None:
    line = _refused_before_loading(capsys, tmp_path, *args)
    assert key in line


def test_a_device_this_machine_lacks_fails_before_anything_loads(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Issue 25: `--device cuda` on a CPU machine failed only after the sandbox and the
    model had started (25 s). Now one line, exit 3, with a model that does not exist
    (so the loader never ran) and the Docker executor (so no sandbox started)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "results"
    code, _, err = _run(capsys, "run", "--model", NO_MODEL, "--device", "cuda",
                        "--executor", "docker", "--out", str(out))
    assert code == 3, err
    assert err.strip().splitlines() == [
        "error: device 'cuda' requested but CUDA is not available; pass --device cpu"]
    assert not out.exists()


@pytest.mark.parametrize(("toml", "key"), [
    ("[training]\nlearning_rate = 0.0\n", "training.learning_rate must be a finite number > 0"),
    ("[training]\nepochs = -1\n", "training.epochs must be >= 0"),
    ("[sampling]\ntemperature = -1.0\n", "sampling.temperature must be a finite number >= 0"),
    ("[sampling]\ntrain_temperature = -1.0\n", "train_temperatures must be >= 0"),
])
def test_bad_values_in_toml_are_refused_before_the_model_loads(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, toml: str, key: str) -> None:
    (tmp_path / "c.toml").write_text(toml)
    line = _refused_before_loading(capsys, tmp_path, "--config", str(tmp_path / "c.toml"))
    assert key in line


def test_print_config_validates(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "run", "--print-config", "--lr", "0")
    assert code == 2 and out == "" and "training.learning_rate must be a finite number > 0" in err
    code, out, _ = _run(capsys, "run", "--print-config", "--lr", "0.01")
    assert code == 0 and "learning_rate = 0.01" in out


@pytest.mark.parametrize(("option", "value", "message"), [
    ("filters", "tests,tests", "filters lists tests more than once"),
    ("filters", "tests, tests", "filters lists tests more than once"),
    ("seeds", "0,1,0", "seeds lists 0 more than once"),
    ("real_fraction", "0,0.0", "real_fractions lists 0.0 more than once"),
    ("regime", "replace,replace", "regimes lists replace more than once"),
])
def test_duplicate_arms_are_refused(option: str, value: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        validate(build_config({}, None, None, {option: value}))


def test_perplexity_zero_is_refused_and_epochs_zero_is_the_no_training_control() -> None:
    with pytest.raises(BadInput, match=r"keeps no completion.*--epochs 0"):
        validate(build_config({}, None, None, {"filters": "perplexity:0"}))
    validate(build_config({}, None, None, {"filters": "perplexity:0.5", "epochs": "0"}))
    help_text = next(f.help for f in cli_fields() if f.path == "training.epochs")
    assert "0 = no training" in help_text


def test_more_eval_problems_or_train_prompts_than_the_suite_has_are_refused() -> None:
    cfg = RunConfig(train_suite=SUITE, eval_suite=SUITE, eval_tasks=6, train_prompts=10)
    train, evals = load_tasks(cfg)
    assert (len(train), len(evals)) == (10, 6)
    with pytest.raises(BadInput, match=r"eval_tasks=7 but .* has 6 problems"):
        load_tasks(RunConfig(train_suite=SUITE, eval_suite=SUITE, eval_tasks=7,
                             train_prompts=10))
    with pytest.raises(BadInput, match=r"train_prompts=999999 but .* has 10 problems"):
        load_tasks(RunConfig(train_suite=SUITE, eval_suite=SUITE, eval_tasks=0,
                             train_prompts=999999))


def test_too_many_eval_tasks_fail_from_the_cli_before_the_model(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = _refused_before_loading(capsys, tmp_path, "--eval-tasks", "999999")
    assert "eval_tasks=999999 but synth/eval has 200 problems" in line


def test_k_list_follows_n_eval_unless_given() -> None:
    assert build_config({}, None, None, {"n_eval": "4"}).ks == [1]
    assert build_config({}, None, None, {"n_eval": "100"}).ks == [1, 10, 100]
    assert build_config({}, None, None, {}).ks == [1, 10]
    assert build_config({}, None, None, {"n_eval": "4", "k": "1,2"}).ks == [1, 2]
    validate(build_config({}, None, None, {"n_eval": "4"}))


def test_k_list_from_a_config_file_is_kept(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("n_eval = 20\nks = [1, 5]\n")
    assert build_config({}, tmp_path / "c.toml", None, {}).ks == [1, 5]


# ----------------------------------------------------------------- resume corrections


def _run_dir(tmp_path: Path, done: list[int], **changes: object) -> tuple[Path, RunConfig]:
    cfg = RunConfig(filters=["tests"], generations=2, **changes)  # type: ignore[arg-type]
    store = RunStore.create(tmp_path, "r")
    save_toml(cfg, store.root / "config.toml")
    for g in done:
        store.mark_done("f-tests__r-replace__real-0.0__s-0", g)
    return store.root, cfg


def test_resume_accepts_a_correction_no_completed_generation_used(tmp_path: Path) -> None:
    # the old failure: lr=0 was refused only after generation 0 had been scored
    root, _ = _run_dir(tmp_path, done=[0])
    (root / "config.toml").write_text((root / "config.toml").read_text().replace(
        "learning_rate = 0.002", "learning_rate = 0.0"))
    fixed = build_config({}, None, root, {"lr": "0.01"})
    validate(fixed)
    saved = build_config({}, None, root, {})
    assert check_resume_changes(root, saved, fixed) == {
        "training.learning_rate": (0.0, 0.01)}


def test_resume_refuses_changes_that_completed_generations_used(tmp_path: Path) -> None:
    root, saved = _run_dir(tmp_path, done=[0])
    with pytest.raises(BadInput, match=r"cannot resume .* n_eval"):
        check_resume_changes(root, saved, build_config({}, None, root, {"n_eval": "20"}))
    root, saved = _run_dir(tmp_path / "b", done=[0, 1])
    with pytest.raises(BadInput, match=r"cannot resume .* training\.learning_rate"):
        check_resume_changes(root, saved, build_config({}, None, root, {"lr": "0.01"}))
    # more generations and a different executor are always fine
    assert set(check_resume_changes(root, saved, build_config(
        {}, None, root, {"generations": "4", "executor": "local"}))) == {"generations",
                                                                        "executor"}
    with pytest.raises(BadInput, match="--config"):
        build_config({}, tmp_path / "c.toml", root, {})


def test_resume_reads_the_run_config(tmp_path: Path) -> None:
    root, cfg = _run_dir(tmp_path, done=[])
    assert build_config({}, None, root, {}) == cfg
    assert to_dict(build_config({}, None, root, {"seeds": "3"}))["seeds"] == [3]


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_a_learning_rate_that_is_not_finite_is_refused(
        capsys: pytest.CaptureFixture[str], value: str) -> None:
    """Issue 25: `--lr inf` ran to a NaN loss, pass@1 0 and mode "stable", exit 0."""
    code, out, err = _run(capsys, "run", "--print-config", "--lr", value)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "training.learning_rate must be a finite number > 0" in err


def test_resume_refuses_what_generation_0_was_scored_with(tmp_path: Path) -> None:
    """The prompt format, the also-eval suites, the warm start and the sandbox limits
    all shape generation 0: once it is done they are fixed (they used to be
    accepted, so a resumed run mixed two experiments)."""
    for path, value in (("sampling.prompt_format", "chat"), ("also_eval", "humaneval"),
                        ("training.warmup_epochs", "1"), ("sandbox.timeout_s", "2.0")):
        root, saved = _run_dir(tmp_path / path, done=[0])
        changed = build_config({}, None, root, {path.replace(".", "__"): value})
        with pytest.raises(BadInput, match=rf"cannot resume .* {re.escape(path)}"):
            check_resume_changes(root, saved, changed)


def test_with_a_warm_start_every_training_setting_shaped_generation_0(tmp_path: Path) -> None:
    root, saved = _run_dir(tmp_path / "warm", done=[0],
                           training=TrainingConfig(warmup_epochs=1))
    with pytest.raises(BadInput, match=r"cannot resume .* training\.learning_rate"):
        check_resume_changes(root, saved, build_config({}, None, root, {"lr": "0.01"}))
    root, saved = _run_dir(tmp_path / "cold", done=[0])  # without one it is a correction
    assert check_resume_changes(root, saved, build_config({}, None, root, {"lr": "0.01"}))
