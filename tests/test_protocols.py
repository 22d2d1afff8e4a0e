"""Benchmark protocols: the shipped files load, are frozen, and `run --protocol` holds
every run to its protocol (and `export` to the claim)."""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.config import RunConfig, flatten, from_dict, load_toml, save_toml, to_dict
from harness.errors import BadInput, EnvironmentProblem
from harness.experiment.protocols import (
    FREE_SETTINGS,
    check_claim,
    frozen_paths,
    get_protocol,
    parse_protocol,
    settings_hash,
    shipped_protocols,
)

RELEASED = {
    ("cpu-synth", 1): "017f89471800555a2d2ad817f0bea522d22c5006b881a702d09e1ccdc011f613",
    ("cpu-synth", 2): "dc6e4a533027b570e5463aaa81cf8aa2dee50814adbce2dea994c3c0757fa750",
    ("cpu-synth-quick", 1): "3f0d2846517f117d2ef713967106e10063b80bf009c15d5bdb7cc9de42c6405b",
    ("humaneval-gpu", 1): "5deab03857ed8e51b2ca1f108ae58fb49de1ed1adf4f078f5af150bae509640c",
    ("humaneval-gpu", 2): "33939dd38d90e69c36da3d069dc06e3fb945f5b8bde6578b0b1f0d14f7d55b89",
    ("humaneval-gpu-synth", 1):
        "770b51abd68a2e81751e3e3d4344aefc958614fe3007bddc376582cc4a27122e",
    ("humaneval-gpu-synth", 2):
        "a5cdaad9c53b48d7b7e5104cfb35672892a47f62a9eb15c53c03b514e644b189",
    ("smol-cpu", 1): "5cb9e3bca28d909ae963e53fe2f5e0ec787b645f49f2080b723cbd55eb80a574",
    ("smol-cpu", 2): "6bbde8a5b7d59dff231d5857f2f925543a79cd0ebb634016f8b2c3784ba0c252",
    ("smol-cpu", 3): "90dfd2ba03a0d6e528d7cc6113a6dee61b1fda52a1dc065ed319d0e720fbfd7d",
}
"""Every released protocol's hash. A release is frozen: a change to its settings needs
a new version (a new file), never an edit of these."""


def _data(name: str) -> dict[str, Any]:
    text = resources.files("harness").joinpath(f"protocols/{name}.toml").read_text("utf-8")
    return tomllib.loads(text)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ shipped files


def test_every_shipped_protocol_loads_and_validates_against_runconfig() -> None:
    """Fails when RunConfig gains, loses or renames a setting a protocol file must fix,
    or a protocol's config stops passing `run`'s own validation."""
    protocols = shipped_protocols()
    assert {(p.name, p.version) for p in protocols} >= {("cpu-synth", 1), ("humaneval-gpu", 1)}
    for protocol in protocols:
        assert list(protocol.settings) == frozen_paths(), protocol.source
        cfg = from_dict(RunConfig, protocol.tree(), protocol.source)
        flat = dict(flatten(to_dict(cfg)))
        assert protocol.mismatches(flat) == [], protocol.source
        assert len(protocol.description.splitlines()) == 1 and protocol.expected_time


def test_released_protocols_are_frozen() -> None:
    shipped = {(p.name, p.version): p.hash for p in shipped_protocols()}
    for key, digest in RELEASED.items():
        assert shipped.get(key) == digest, (
            f"{key[0]} v{key[1]} changed: released protocols are frozen; add a new version")


@pytest.mark.parametrize("version", [1, 2])
def test_humaneval_gpu_is_the_real_model_experiment(version: int) -> None:
    s = get_protocol(f"humaneval-gpu@{version}").settings
    assert (s["train_suite"], s["train_split"]) == ("mbpp", "train")
    assert (s["eval_suite"], s["eval_split"], s["eval_tasks"]) == ("humaneval", "test", 0)
    assert s["generations"] == 10 and s["seeds"] == [0, 1, 2]
    assert s["filters"] == ["none", "syntax", "tests", "noisy:0.2"]
    assert (s["n_eval"], s["ks"], s["sampling.max_new_tokens"]) == (10, [1, 10], 384)
    assert s["sampling.temperature"] == 0.8
    fallback = get_protocol(f"humaneval-gpu-synth@{version}")
    assert get_protocol(f"humaneval-gpu@{version}").alternative == fallback.name
    differ = {k for k in s if fallback.settings[k] != s[k]}
    assert differ == {"train_suite"} and fallback.settings["train_suite"] == "synth"
    # v2 asks each model in its own format, v1 continued the raw prompt
    assert (s["sampling.prompt_format"], s["sampling.prompt_boundary"]) == (
        ("completion", "keep") if version == 1 else ("auto", "heal"))


def test_the_default_run_is_the_latest_cpu_synth() -> None:
    """`collapse-bench run` with no options runs cpu-synth's latest version, every frozen
    setting: a changed default must come with a new version of the protocol."""
    latest = get_protocol("cpu-synth")
    assert latest.mismatches(dict(flatten(to_dict(RunConfig())))) == []
    assert (latest.version, latest.settings["train_prompts"], latest.settings["eval_tasks"]) == (
        2, 256, 100)


def test_cpu_synth_v1_stays_the_experiment_it_froze() -> None:
    s = get_protocol("cpu-synth@1").settings
    assert (s["train_suite"], s["eval_suite"], s["eval_tasks"]) == ("synth", "synth", 200)
    assert (s["generations"], s["filters"], s["seeds"]) == (5, ["tests", "none"], [0])
    assert s["ks"] == [1, 10] and s["train_temperatures"] == [1.0]
    assert (s["train_prompts"], s["sampling.prompt_format"]) == (512, "completion")


# ------------------------------------------------------------------- the format


def test_hash_is_canonical() -> None:
    assert settings_hash({"a": 1.0, "b": [1, 2]}) == settings_hash({"b": [1, 2], "a": 1.0})
    data = _data("cpu-synth")
    data["config"]["sampling"]["top_p"] = 1  # an int where the field is a float
    assert parse_protocol(data, "x").hash == get_protocol("cpu-synth@1").hash


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["config"].pop("generations"), "does not fix generations"),
    (lambda d: d["config"]["training"].pop("epochs"), "does not fix training.epochs"),
    (lambda d: d["config"].update(brand_new=1), "brand_new is not a RunConfig setting"),
    (lambda d: d["config"].update(out="x"), "fixes out, which a protocol leaves free"),
    (lambda d: d["config"].update(generations=-1), "generations must be >= 0"),
    (lambda d: d["defaults"].update({"training.epochs": 1}), "[defaults] may only hold free"),
    (lambda d: d["protocol"].update(version=0), "version must be an integer >= 1"),
    (lambda d: d["protocol"].update(name="CPU Synth"), "protocol.name must be lowercase"),
    (lambda d: d["protocol"].update(description="two\nlines"), "must be one line"),
    (lambda d: d.pop("protocol"), "missing [protocol] table"),
])
def test_broken_protocol_file_is_one_line(edit: Any, message: str) -> None:
    data = _data("cpu-synth")
    edit(data)
    with pytest.raises(BadInput) as info:
        parse_protocol(data, "harness/protocols/x.toml")
    assert str(info.value).startswith("harness/protocols/x.toml: ")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_protocol_lookup() -> None:
    latest = get_protocol("cpu-synth")
    assert latest.version == 2 and get_protocol("cpu-synth@2") == latest == get_protocol(
        latest.claim)
    assert get_protocol("cpu-synth@1").version == 1
    with pytest.raises(BadInput, match="unknown protocol 'nope'; known: cpu-synth"):
        get_protocol("nope")
    with pytest.raises(BadInput, match="unknown version 'cpu-synth@9'"):
        get_protocol("cpu-synth@9")
    with pytest.raises(BadInput, match="changed without a new version"):
        get_protocol("cpu-synth@1:" + "0" * 64)


def test_claim_check_names_the_differences() -> None:
    protocol = get_protocol("cpu-synth")
    flat = {**protocol.settings, "model.name": "anything", "executor": "local",
            "protocol": protocol.claim}
    assert check_claim(protocol.claim, flat, "run x") == protocol
    with pytest.raises(BadInput) as info:
        check_claim(protocol.claim, {**flat, "generations": 3, "training.epochs": 1}, "run x")
    assert str(info.value) == ("run x does not match protocol cpu-synth v2 it claims: "
                               "generations = 3 (protocol: 5); training.epochs = 1 "
                               "(protocol: 3)")
    with pytest.raises(BadInput, match="not a protocol claim"):
        check_claim("cpu-synth", flat, "run x")


def test_a_local_mbpp_copy_is_the_same_experiment() -> None:
    protocol = get_protocol("humaneval-gpu")
    flat = {**protocol.settings, "train_suite": "mbpp:/data/mbpp.jsonl"}
    assert protocol.mismatches(flat) == []
    assert protocol.mismatches({**flat, "train_suite": "synth"}) == [
        "train_suite = 'synth' (protocol: 'mbpp')"]


# --------------------------------------------------------------------------- run


def test_list_protocols(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "run", "--list-protocols")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["NAME", "VERSION", "HASH", "EXPECTED"]
    for protocol in shipped_protocols():
        line = next(ln for ln in lines if ln.split()[:2] == [protocol.name,
                                                              str(protocol.version)])
        assert line.split()[2] == protocol.hash[:12]
        assert protocol.expected_time in line and protocol.description in line


def test_print_config_of_a_protocol(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = _run(capsys, "run", "--protocol", "humaneval-gpu", "--print-config",
                          "--model", "org/some-model", "--dtype", "bfloat16", "--out",
                          str(tmp_path), "--executor", "local", "--sandbox.pool-size", "3",
                          "--model.threads", "2")
    assert code == 0, err
    config = tomllib.loads(out)
    protocol = get_protocol("humaneval-gpu")
    assert config["protocol"] == protocol.claim
    assert (config["model"]["name"], config["model"]["device"]) == ("org/some-model", "cuda")
    assert protocol.mismatches(dict(flatten(config))) == []


@pytest.mark.parametrize(("args", "named"), [
    (["--lr", "0.01"], "--training.learning-rate / --lr"),
    (["--generations", "3", "--seeds", "1"], "--generations, --seeds / --seed"),
    (["--synthetic-share", "0.5"], "--synthetic-share"),
    (["--train-temperature", "0.8"], "--train-temperatures / --train-temperature"),
])
def test_protocol_refuses_what_it_fixes(capsys: pytest.CaptureFixture[str], args: list[str],
                                        named: str) -> None:
    code, out, err = _run(capsys, "run", "--protocol", "cpu-synth", *args, "--print-config")
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"error: protocol cpu-synth v2 fixes {named}; only --model, ")


def test_config_file_under_a_protocol(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = _run(capsys, "run", "--protocol", "cpu-synth", "--print-config")
    copy = tmp_path / "config.toml"
    copy.write_text(out)
    code, again, err = _run(capsys, "run", "--config", str(copy), "--print-config")
    assert code == 0, err  # a protocol run's config.toml runs that protocol again
    assert tomllib.loads(again) == tomllib.loads(out)
    copy.write_text(out.replace("generations = 5", "generations = 2"))
    code, _, err = _run(capsys, "run", "--config", str(copy), "--print-config")
    assert code == 2 and err.count("\n") == 1
    assert "does not match protocol cpu-synth v2 it claims: generations = 2 (protocol: 5)" in err


def test_resume_of_a_protocol_run_keeps_it(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    protocol = get_protocol("cpu-synth")
    cfg = from_dict(RunConfig, protocol.tree())
    cfg.protocol = protocol.claim
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_toml(cfg, run_dir / "config.toml")
    code, _, err = _run(capsys, "run", "--resume", str(run_dir), "--lr", "0.01")
    assert code == 2 and "protocol cpu-synth v2 fixes --training.learning-rate" in err
    code, _, err = _run(capsys, "run", "--resume", str(run_dir), "--protocol", "humaneval-gpu")
    assert code == 2 and "ran protocol cpu-synth" in err


def test_missing_mbpp_names_the_alternative(monkeypatch: pytest.MonkeyPatch) -> None:
    import tasks.registry
    from harness.commands._protocol import check_protocol_data

    def offline(spec: str) -> list[Any]:
        raise EnvironmentProblem("cannot reach the Hugging Face hub")

    monkeypatch.setattr(tasks.registry, "load_suite", offline)
    protocol = get_protocol("humaneval-gpu")
    cfg = from_dict(RunConfig, protocol.tree())
    cfg.protocol = protocol.claim
    with pytest.raises(EnvironmentProblem, match="or run --protocol humaneval-gpu-synth"):
        check_protocol_data(cfg)
    check_protocol_data(RunConfig())  # not a protocol run: nothing to check


def test_free_settings_are_exactly_the_brief() -> None:
    assert set(FREE_SETTINGS) == {"model.name", "model.device", "model.dtype", "model.threads",
                                  "model.cache_dir", "executor", "out", "sandbox.pool_size"}
    assert "protocol" not in frozen_paths()


def test_a_saved_protocol_config_round_trips(tmp_path: Path) -> None:
    protocol = get_protocol("cpu-synth")
    cfg = from_dict(RunConfig, protocol.tree())
    cfg.protocol = protocol.claim
    save_toml(cfg, tmp_path / "c.toml")
    flat = dict(flatten(load_toml(tmp_path / "c.toml")))
    assert check_claim(flat["protocol"], flat, "c.toml") == protocol
    assert json.loads(json.dumps(flat)) == flat  # what export copies into an entry
