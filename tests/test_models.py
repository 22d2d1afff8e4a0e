"""Model loading: device/dtype choice, local directories, hub failures, `model info`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.config import ModelConfig
from harness.errors import BadInput, EnvironmentProblem
from harness.model.loading import load_model
from harness.model.runtime import (
    count_parameters,
    cpu_count,
    max_positions,
    pinned_threads,
    resolve_device,
    resolve_dtype,
    set_threads,
)
from tests.model_helpers import random_model, tokenizer

NO_SUCH_HUB_MODEL = "collapse-bench-nobody/no-such-model-4f1c"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved random GPT-2 whose tokenizer has no pad token and pads on the right."""
    path = tmp_path_factory.mktemp("gpt2")
    tok = tokenizer()
    tok.pad_token = None
    tok.padding_side = "right"
    model = random_model("gpt2", len(tok))
    model.config.pad_token_id = None
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


def test_auto_device_and_dtype_on_this_machine() -> None:
    cfg = ModelConfig()
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(cfg).type == expected
    if expected == "cpu":
        assert resolve_dtype(cfg) == torch.float32
    for name, dtype in (("float32", torch.float32), ("bf16", torch.bfloat16),
                        ("float16", torch.float16)):
        assert resolve_dtype(ModelConfig(dtype=name)) == dtype
    assert resolve_device(ModelConfig(device="cpu")) == torch.device("cpu")


def test_bad_device_and_dtype() -> None:
    with pytest.raises(BadInput, match="dtype"):
        resolve_dtype(ModelConfig(dtype="fp8"))
    with pytest.raises(BadInput, match="device"):
        resolve_device(ModelConfig(device="tpu"))
    if not torch.cuda.is_available():
        with pytest.raises(EnvironmentProblem, match="CUDA is not available"):
            resolve_device(ModelConfig(device="cuda:0"))


def test_threads_default_to_the_free_cores() -> None:
    from harness.model.runtime import default_threads

    before = torch.get_num_threads()
    try:
        chosen = set_threads(ModelConfig(threads=0))
        assert chosen == torch.get_num_threads() and 1 <= chosen <= cpu_count()
        assert chosen in (default_threads(), default_threads() + 1, default_threads() - 1)
        assert set_threads(ModelConfig(threads=1)) == 1 == torch.get_num_threads()
        with pytest.raises(BadInput):
            set_threads(ModelConfig(threads=-1))
    finally:
        torch.set_num_threads(before)


def test_pinned_threads_hold_for_the_block_and_give_the_setting_back() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with pinned_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError, match="boom"), pinned_threads(3):
            raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
        with pytest.raises(ValueError), pinned_threads(0):
            pass
    finally:
        torch.set_num_threads(before)


def test_local_directory_loads_ready_for_batched_sampling(model_dir: Path) -> None:
    model, tok = load_model(ModelConfig(name=str(model_dir)), progress=False)
    assert tok.padding_side == "left"
    assert tok.pad_token == tok.eos_token and model.config.pad_token_id == tok.eos_token_id
    assert not model.training
    assert next(model.parameters()).dtype == torch.float32
    assert max_positions(model) == 192
    # tied input/output embeddings are counted once
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
    assert count_parameters(model) < sum(p.numel() for p in model.state_dict().values())

    half, _ = load_model(ModelConfig(name=str(model_dir), dtype="bfloat16"), progress=False)
    assert next(half.parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize("offline", [True, False])
def test_unreachable_hub_model_is_an_environment_problem(
        offline: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(EnvironmentProblem) as info:
        load_model(ModelConfig(name=NO_SUCH_HUB_MODEL), progress=False)
    message = str(info.value)
    assert "could not download" in message and "--model DIR" in message
    assert "\n" not in message
    assert time.perf_counter() - started < 20


def test_bad_model_names(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.bin").write_text("x")
    cases = {str(tmp_path / "empty"): "no config.json", str(tmp_path / "file.bin"): "is a file",
             "./no/such/dir": "no such model directory", "builtin:huge": "unknown builtin",
             "": "empty"}
    for name, match in cases.items():
        with pytest.raises(BadInput, match=match):
            load_model(ModelConfig(name=name), progress=False)


def test_model_info_command(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "info", "--model", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "GPT2LMHeadModel" in out and "max positions  192" in out
    params = count_parameters(load_model(ModelConfig(name=str(model_dir)), progress=False)[0])
    assert f"{params:,}" in out

    assert main(["model", "info", "--model", NO_SUCH_HUB_MODEL]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: could not download") and "\n" not in err
    assert main(["model", "info", "--model", str(model_dir), "--dtype", "fp8"]) == 2


def test_model_build_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "build", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--cache-dir", "--executor", "--force", "--no-eval"):
        assert option in out


def test_threads_zero_means_the_cores_that_are_not_busy(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os

    from harness.model import runtime

    monkeypatch.setattr(runtime, "cpu_count", lambda: 4)
    for load, expected in ((0.2, 4), (1.7, 3), (3.9, 1), (12.0, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        assert runtime.default_threads() == expected


def test_a_fetched_name_unknown_to_fetch_is_one_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from harness.config import ModelConfig
    from harness.errors import BadInput
    from harness.model.loading import resolve_model_path

    with pytest.raises(BadInput, match="unknown model 'nope'"):
        resolve_model_path(ModelConfig(name="fetched:nope", cache_dir=str(tmp_path)))


def test_a_directory_without_its_tokenizer_says_so_in_one_whole_line(
        model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 25: weights saved without their tokenizer ended in transformers' first line,
    "Couldn't instantiate the backend tokenizer from one of:", cut off before the list.
    The error now says what is missing and how to add it, exit 3."""
    import shutil

    bare = tmp_path / "no-tokenizer"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(model_dir / name, bare / name)
    assert main(["run", "--model", str(bare), "--executor", "local", "--out",
                 str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: could not load the model in {bare}: it has no tokenizer")
    assert "save_pretrained" in err and not err.endswith(":")
    assert not any((tmp_path / "out").iterdir())  # nothing written for a run that never began
