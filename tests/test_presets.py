"""Named experiment shapes: one registry (`harness.experiment.presets.PRESETS`) behind
`ablate`, `ablate --quick` and `ablate --preset NAME`.

The CLI is run for real with only `execute` (the run itself) replaced, so what is
checked is the config `ablate` would run. The default grid and `--quick` are also
pinned to the literal settings they had before they were registry entries (the
dicts `FULL_GRID` and `QUICK` of harness/commands/ablate.py at 0e049b1).
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from harness.cli import main
from harness.commands._experiment import build_config
from harness.config import to_dict
from harness.errors import BadInput
from harness.experiment.presets import (
    DEFAULT_PRESET,
    PRESETS,
    flags_text,
    preset_names,
    preset_overrides,
    resolve,
)

GRID = ["none", "syntax", "partial:0.5", "tests", "noisy:0.1", "noisy:0.3", "perplexity:0.5"]


@pytest.fixture
def ablate_config(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """`ablate ARGS` -> (exit code, the config it would run or None, stderr)."""
    module = importlib.import_module("harness.commands.ablate")
    captured: list[Any] = []
    monkeypatch.setattr(module, "execute", lambda cfg, *a, **k: captured.append(cfg))

    def run(*args: str) -> tuple[int, Any, str]:
        captured.clear()
        code = main(["ablate", *args])
        return code, (captured[0] if captured else None), capsys.readouterr().err
    return run


def _config(overrides: dict[str, Any]) -> dict[str, Any]:
    return to_dict(build_config(overrides, None, None, {}))


def test_default_grid_and_quick_are_the_default_preset() -> None:
    assert resolve().overrides() == {"filters": GRID}
    assert resolve(quick=True).overrides() == {"filters": GRID, "generations": 3,
                                              "eval_tasks": 100}
    assert resolve().name == f"{DEFAULT_PRESET}-full" and not resolve().named
    assert resolve(quick=True).name == DEFAULT_PRESET


@pytest.mark.parametrize("args", [(), ("--quick",), *(("--preset", n) for n in preset_names())])
def test_every_way_of_picking_a_shape_runs_the_registrys_config(
        ablate_config: Any, args: tuple[str, ...]) -> None:
    code, cfg, err = ablate_config(*args)
    assert code == 0, err
    name = args[1] if args and args[0] == "--preset" else None
    choice = resolve(name, quick=args == ("--quick",))
    assert to_dict(cfg) == _config(choice.overrides())
    if name is not None:    # said before it starts; a -full one with its estimated time
        assert err.splitlines()[0] == choice.describe()
        assert ("estimated" in err) == (name.endswith("-full") and bool(choice.preset.full_time))
    if args == ("--quick",):
        assert "quick preset: 3 generations" in err


def test_the_default_preset_by_name_is_the_default_grid(ablate_config: Any) -> None:
    assert to_dict(ablate_config("--preset", f"{DEFAULT_PRESET}-full")[1]) == to_dict(
        ablate_config()[1])
    assert to_dict(ablate_config("--preset", DEFAULT_PRESET)[1]) == to_dict(
        ablate_config("--quick")[1])


def test_typed_options_still_override_the_preset(ablate_config: Any) -> None:
    _, cfg, _ = ablate_config("--preset", "horizon", "--generations", "2", "--seeds", "7")
    assert cfg.generations == 2 and cfg.seeds == [7] and cfg.filters == ["none"]


def test_help_lists_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ablate", "--help"]) == 0
    flat = " ".join(capsys.readouterr().out.split())
    assert " | ".join(PRESETS) in flat
    assert flags_text(PRESETS[DEFAULT_PRESET].quick_sizes) in flat


def test_bad_choices_are_one_line_bad_input(ablate_config: Any) -> None:
    with pytest.raises(BadInput, match="--quick and --preset both pick a preset; give one"):
        resolve("horizon", quick=True)
    with pytest.raises(BadInput, match=r"unknown preset 'horizon-fast'; known: filters, "):
        preset_overrides("horizon-fast")
    code, cfg, err = ablate_config("--quick", "--preset", "horizon")
    assert code == 2 and cfg is None and err.count("\n") == 1


def test_a_config_built_from_a_preset_cannot_change_the_registry() -> None:
    first = preset_overrides("poison-full")
    first["real_fractions"].append(0.123)
    first["seeds"].clear()
    assert 0.123 not in preset_overrides("poison-full")["real_fractions"]
    assert preset_overrides("poison-full")["seeds"] == [0, 1, 2, 3, 4]


def test_flags_text_says_settings_as_options() -> None:
    assert flags_text({"generations": 3, "eval_tasks": 100}) == (
        "--generations 3, --eval-tasks 100")
    assert flags_text({"seeds": [0, 1]}) == "--seeds 0,1"
