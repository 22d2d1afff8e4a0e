"""The config tree: TOML round trip, overrides, and refusal of bad configs (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.commands._experiment import build_config
from harness.config import RunConfig, from_dict, load_toml, save_toml, to_dict
from harness.errors import BadInput
from harness.experiment.arms import arms_of, check_no_overlap, validate


def test_toml_round_trip_writes_every_default(tmp_path: Path) -> None:
    cfg = RunConfig()
    cfg.filters = ["partial:0.5", "noisy:0.1"]
    cfg.training.epochs = 7
    save_toml(cfg, tmp_path / "c.toml")
    text = (tmp_path / "c.toml").read_text()
    assert "lora_r = 16" in text and "[sandbox]" in text
    assert from_dict(RunConfig, load_toml(tmp_path / "c.toml")) == cfg


def test_file_then_overrides(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('generations = 2\nseeds = [4]\n[training]\nepochs = 1\n')
    cfg = build_config({}, tmp_path / "c.toml", None, {"seeds": "0,1,2", "k": "1,5"})
    assert cfg.generations == 2 and cfg.seeds == [0, 1, 2] and cfg.ks == [1, 5]
    assert cfg.training.epochs == 1
    assert len(arms_of(cfg)) == 2 * 3


@pytest.mark.parametrize("toml, message", [
    ("bogus = 1\n", "unknown key 'bogus'"),
    ("generations = 'five'\n", "expected int"),
    ("[training]\nlr = 1\n", "unknown key 'lr'"),
    ("seeds = 3\n", "expected a list"),
])
def test_bad_config_files(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "c.toml").write_text(toml)
    with pytest.raises(BadInput, match=message):
        build_config({}, tmp_path / "c.toml", None, {})


@pytest.mark.parametrize("overrides, message", [
    ({"k": "1,20"}, "larger than n_eval"),
    ({"filters": "tests,magic"}, "unknown filter 'magic'"),
    ({"regime": "forget"}, "unknown regime"),
    ({"real_fraction": "2"}, "real fraction"),
    ({"restart": "sometimes"}, "unknown training.restart 'sometimes'"),
    ({"executor": "ssh"}, "unknown executor"),
    ({"seeds": "a,b"}, "comma-separated integers"),
])
def test_bad_overrides_are_refused(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        validate(build_config({}, None, None, overrides))


def test_overlapping_train_and_eval_are_refused() -> None:
    with pytest.raises(BadInput, match="overlap"):
        check_no_overlap({"a/1": "def f(): pass"}, {"a/1": "def g(): pass"})
    with pytest.raises(BadInput, match="same prompt"):
        check_no_overlap({"t/1": "def f():\n  'x'"}, {"e/9": "def f():   'x'"})
    check_no_overlap({"t/1": "def f(): 'a'"}, {"e/1": "def f(): 'b'"})


def test_resume_takes_the_run_config_and_refuses_another_file(tmp_path: Path) -> None:
    # corrections on --resume: tests/test_inputs.py (test_resume_*)
    save_toml(RunConfig(), tmp_path / "config.toml")
    assert build_config({}, None, tmp_path, {}) == RunConfig()
    with pytest.raises(BadInput, match="--resume"):
        build_config({}, tmp_path / "config.toml", tmp_path, {})


def test_defaults_are_the_embedded_experiment() -> None:
    d = to_dict(RunConfig())
    assert d["model"]["name"] == "builtin:tiny" and d["filters"] == ["tests", "none"]
    assert d["regimes"] == ["replace"] and d["generations"] == 5 and d["seeds"] == [0]


def test_the_example_config_is_the_printed_default_and_loads(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 25: no example config file shipped. examples/default.toml is, below its
    comment header, exactly `run --print-config`, and `--config` reads it back as the
    default experiment (so a setting added to the config tree shows up there)."""
    from harness.cli import main

    example = Path(__file__).resolve().parent.parent / "examples" / "default.toml"
    lines = example.read_text().splitlines(keepends=True)
    header = 0
    while lines[header].startswith("#"):
        header += 1
    assert main(["run", "--print-config"]) == 0
    assert "".join(lines[header:]).lstrip("\n") == capsys.readouterr().out, (
        "regenerate the body: collapse-bench run --print-config")
    assert build_config({}, example, None, {}) == build_config({}, None, None, {})


def test_the_plan_line_counts_arms_generations_and_samples() -> None:
    from harness.experiment.arms import plan_line

    cfg = build_config({}, None, None, {"seeds": "0,1", "recover": "2", "eval_tasks": "0"})
    assert plan_line(cfg, done=3) == (
        "plan: 8 arm(s) (4 of them repair-only controls, whose first 5 generations are "
        "copies) x 8 generations (gen 0 + 5 self-training + 2 repair) = 64 "
        "generations to score; each samples 256 train prompts x 4 and all eval problems "
        "x 10; 3 already done")


def test_a_dry_run_prints_the_plan_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    out = tmp_path / "results"
    assert main(["ablate", "--dry-run", "--preset", "horizon", "--executor", "local",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "plan: " in err and "dry run: every check passed" in err
    assert not out.exists()
    assert main(["run", "--dry-run", "--generations", "0", "--eval-tasks", "-1"]) == 2
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["run", "--dry-run", "--out", str(blocker / "results")]) == 2


@pytest.mark.parametrize("command", ["run", "ablate"])
def test_help_lists_every_option_once_under_its_section(
        command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 25: `run --help` was one flat list of ~60 options. Every setting is now
    under its section (the config field's: a component for a nested one), in the
    order SECTION_TITLES gives, and nothing falls outside a section."""
    from harness.cli import main
    from harness.commands._help import SECTION_TITLES
    from harness.config import cli_fields

    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    titles = [line[:-1] for line in text.splitlines() if line.endswith(":")
              and not line.startswith(" ") and not line.startswith("Usage")]
    assert titles == [t for t in SECTION_TITLES.values() if t in titles], titles
    assert "Options" not in titles and len(titles) >= 8
    where: dict[str, str] = {}
    section = ""
    for line in text.splitlines():
        if line[:-1] in SECTION_TITLES.values():
            section = line[:-1]
        elif line.startswith("  --") or line.startswith("  -h"):
            flag = line.split()[0].rstrip(",")
            assert flag not in where, f"{flag} listed twice"
            where[flag] = section
    for spec in cli_fields():
        assert where[spec.flags[0]] == SECTION_TITLES[spec.section], spec.path
    assert where["--training.learning-rate"] == "Training (LoRA)"
    assert where["--out"] == "Output" and where["--ray"] == "Scale-out (Ray)"
    assert where["--resume"] == "Run"
