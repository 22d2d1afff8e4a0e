"""The arm axes are said once, on the config's fields (harness.config.Axis), and
everything that names an arm follows from them: arm ids and arm.json, the grid's
checks, --resume, pooling, the leaderboard entry key, the board's arms and the plot
dimensions. A fake axis added in one place (a config subclass with one more marked
field, put where harness.config looks up RunConfig) shows up in all of them.

The real axes are pinned too: arm ids, arm.json keys and group keys are read back
from existing run directories and released exports, so their spelling and order
may not change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import harness.config
from harness.analysis.board import _expected_arms, arm_fields, arm_label
from harness.analysis.leaderboard import build_leaderboard, entry_key_fields
from harness.analysis.plots import _varying, group_labels
from harness.commands._experiment import check_resume_changes
from harness.config import (
    FROM_GEN0,
    Axis,
    RunConfig,
    _f,
    group_dimensions,
    pool_ignored,
    save_toml,
)
from harness.errors import BadInput
from harness.experiment.arms import Arm, arms_of, validate
from harness.runfiles.runs import load_run
from harness.runfiles.store import DONE


@dataclass
class FakeConfig(RunConfig):
    """RunConfig with one more arm axis: the one place a fake axis is added."""

    flavours: list[str] = _f(["plain"], "A fake arm axis: one arm per flavour.",  # noqa: RUF009
                             axis=Axis("flavour", tag="fl", quiet="plain"))


@dataclass
class FakeGen0Config(RunConfig):
    """The same fake axis, marked as one that generation 0 depends on."""

    flavours: list[str] = _f(["plain"], "A fake axis that gen 0 depends on.",  # noqa: RUF009
                             effect=FROM_GEN0, axis=Axis("flavour", tag="fl", quiet="plain"))


@pytest.fixture
def fake_axis(monkeypatch: pytest.MonkeyPatch) -> type[FakeConfig]:
    monkeypatch.setattr(harness.config, "RunConfig", FakeConfig)
    return FakeConfig


def _config(cls: type[RunConfig], flavours: list[str], seeds: list[int]) -> Any:
    cfg = cls()
    cfg.filters, cfg.seeds, cfg.generations = ["tests"], seeds, 1
    cfg.flavours = flavours  # type: ignore[attr-defined]
    return cfg


def _run_dir(root: Path, cfg: RunConfig, generations_done: int) -> Path:
    """A run directory as the loop writes it, with made-up metrics."""
    run = root / f"run-{len(list(root.iterdir())) if root.exists() else 0}"
    run.mkdir(parents=True)
    save_toml(cfg, run / "config.toml")
    for arm in arms_of(cfg):
        arm_dir = run / "arms" / arm.arm_id
        arm_dir.mkdir(parents=True)
        (arm_dir / "arm.json").write_text(json.dumps(arm.to_json()))
        for g in range(generations_done):
            gen = arm_dir / f"gen-{g}"
            gen.mkdir()
            c = 1 + arm.seed + g
            metrics = {"generation": g, "pass_at_k": {"pass@1": c / 4},
                       "diversity": {"diversity": 0.5}, "perplexity": 2.0,
                       "per_task": {"t1": {"n": 4, "c": c}, "t2": {"n": 4, "c": 1}}}
            (gen / "metrics.json").write_text(json.dumps(metrics))
            (gen / DONE).write_text("")
    return run


# -------------------------------------------------------------- the real axes, pinned


def test_arm_ids_and_arm_json_keep_their_spelling() -> None:
    cfg = RunConfig()
    cfg.filters, cfg.real_fractions, cfg.train_temperatures = ["tests"], [0.0], [1.0, 0.5]
    arms = arms_of(cfg)
    assert [a.arm_id for a in arms] == ["f-tests__r-replace__real-0.0__s-0",
                                        "f-tests__r-replace__real-0.0__t-0.5__s-0"]
    assert list(arms[1].to_json().items()) == [
        ("arm_id", "f-tests__r-replace__real-0.0__t-0.5__s-0"), ("filter", "tests"),
        ("regime", "replace"), ("real_fraction", 0.0), ("seed", 0), ("restart", "merge"),
        ("train_temperature", 0.5), ("human_source", "train"), ("course", "self-train")]
    cfg.train_temperatures, cfg.human_sources = [1.0], ["train", "fresh"]
    assert [a.arm_id for a in arms_of(cfg)] == ["f-tests__r-replace__real-0.0__s-0",
                                                "f-tests__r-replace__real-0.0__h-fresh__s-0"]


def test_the_group_dimensions_and_the_entry_key_keep_their_order() -> None:
    assert group_dimensions() == ("filter", "regime", "real_fraction", "restart",
                                  "train_temperature", "human_source", "course")
    assert entry_key_fields() == ("model", "train_suite", "train_split", "eval_suite",
                                  "eval_split", *group_dimensions())
    assert arm_fields() == group_dimensions()


def test_grids_are_seed_outermost() -> None:
    cfg = RunConfig()
    cfg.filters, cfg.seeds = ["tests", "none"], [0, 1]
    assert [(a.seed, a.filter) for a in arms_of(cfg)] == [
        (0, "tests"), (0, "none"), (1, "tests"), (1, "none")]


def test_an_arm_json_from_before_train_temperature_means_0_8(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, RunConfig(), generations_done=1)
    for arm_json in run.glob("arms/*/arm.json"):
        meta = json.loads(arm_json.read_text())
        del meta["train_temperature"], meta["restart"]
        arm_json.write_text(json.dumps(meta))
    arm = next(iter(load_run(run).arms.values()))
    assert (arm.train_temperature, arm.restart) == (0.8, "merge")


def test_every_group_dimension_is_in_the_export_and_board_schemas() -> None:
    """The schemas are JSON, written by hand: an axis added to the config must be added
    there too, and this says so."""
    schemas = Path(harness.config.__file__).parent / "schemas"
    entry = json.loads((schemas / "leaderboard.schema.json").read_text())
    board = json.loads((schemas / "board.schema.json").read_text())
    entry_required = json.dumps(entry)
    board_required = json.dumps(board)
    for dim in group_dimensions():
        assert f'"{dim}"' in entry_required and f'"{dim}"' in board_required, dim


# ------------------------------------------------------------------- one fake axis


def test_a_fake_axis_makes_arms(fake_axis: type[FakeConfig]) -> None:
    cfg = _config(fake_axis, ["plain", "spicy"], [0])
    validate(cfg)
    arms = arms_of(cfg)
    assert [a.arm_id for a in arms] == ["f-tests__r-replace__real-0.0__s-0",
                                        "f-tests__r-replace__real-0.0__fl-spicy__s-0"]
    assert [a.to_json()["flavour"] for a in arms] == ["plain", "spicy"]
    assert Arm.of(filter="tests", regime="replace", real_fraction=0.0, seed=0,
                  restart="merge", train_temperature=1.0, flavour="spicy") == arms[1]
    cfg.flavours = ["spicy", "spicy"]
    with pytest.raises(BadInput, match=r"flavours lists spicy more than once.*--flavours"):
        validate(cfg)


@pytest.mark.parametrize(("cls", "done", "values", "allowed"), [
    (FakeConfig, 1, ["spicy"], True),       # only gen 0 done, which does not use the axis
    (FakeConfig, 2, ["spicy"], False),      # a self-training generation used "plain"
    (FakeGen0Config, 1, ["spicy"], False),  # marked FROM_GEN0: gen 0 already used it
    (FakeConfig, 2, ["plain", "spicy"], True),      # one more arm: "plain" stands
    (FakeGen0Config, 2, ["spicy", "plain"], True),  # order is not a change of an arm
])
def test_resume_may_change_a_fake_axis_as_its_metadata_says(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cls: type[RunConfig], done: int,
        values: list[str], allowed: bool) -> None:
    monkeypatch.setattr(harness.config, "RunConfig", cls)
    old = _config(cls, ["plain"], [0])
    run = _run_dir(tmp_path, old, generations_done=done)
    new = _config(cls, values, [0])
    if allowed:
        assert "flavours" in check_resume_changes(run, old, new)
    else:
        with pytest.raises(BadInput, match=r"cannot resume .* with flavours"):
            check_resume_changes(run, old, new)


def test_a_fake_axis_is_pooled_over_and_keys_the_export(fake_axis: type[FakeConfig],
                                                        tmp_path: Path) -> None:
    assert "flavours" in pool_ignored()
    assert entry_key_fields()[-1] == "flavour"
    # two runs whose grids differ in the fake axis: its `plain` arms pool as two seeds
    first = _run_dir(tmp_path, _config(fake_axis, ["plain", "spicy"], [0]), 2)
    second = _run_dir(tmp_path, _config(fake_axis, ["plain"], [1]), 2)
    doc = build_leaderboard([first, second], n_boot=20)
    entries = {e["flavour"]: e for e in doc["entries"]}
    assert sorted(entries) == ["plain", "spicy"]
    assert entries["plain"]["seeds"] == [0, 1] and entries["plain"]["pooled_settings"] == {}
    assert entries["spicy"]["seeds"] == [0]


def test_a_fake_axis_is_a_board_arm_and_a_plot_dimension(fake_axis: type[FakeConfig],
                                                         tmp_path: Path) -> None:
    assert arm_fields()[-1] == "flavour"
    settings = {"filters": ["tests"], "regimes": ["replace"], "real_fractions": [0.0],
                "training.restart": "merge", "train_temperatures": [1.0],
                "flavours": ["plain", "spicy"]}
    expected = _expected_arms(settings)
    assert [a["flavour"] for a in expected] == ["plain", "spicy"]
    assert [arm_label(a, settings) for a in expected] == ["tests / plain", "tests / spicy"]

    run = load_run(_run_dir(tmp_path, _config(fake_axis, ["plain", "spicy"], [0]), 1))
    keys = list(run.arm_groups())
    assert _varying(keys) == ["flavour"]
    legend = group_labels(keys)
    assert legend.title == "flavour"
    assert sorted(legend.labels.values()) == ["plain", "spicy"]
    assert "flavour" not in legend.shared and "restart merge" in legend.shared
