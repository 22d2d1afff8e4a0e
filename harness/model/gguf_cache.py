"""GGUF files as ordinary HF model directories, cached by content, with provenance.

A GGUF file is a quantized checkpoint (llama.cpp's format). transformers reads it
with the `gguf` package and dequantizes it to float, so `--model FILE.gguf` is
converted once into an HF directory (`save_pretrained`) under the model cache,
keyed by the file's sha256: a renamed copy converts to the same directory, and a
changed file to a new one. Later runs load the directory like any other.

`provenance.json` in the directory records where the weights came from: the file,
its sha256, the quantization and that the weights were *dequantized*. Such weights
are not the bf16 originals, so their numbers must never be presented as the hub
model's; every run records this provenance (harness.model.loading.model_provenance).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from harness.errors import BadInput, EnvironmentProblem
from harness.model.runtime import default_cache_root, quiet_transformers

PROVENANCE_FILE = "provenance.json"

# GGUF general.file_type -> llama.cpp's name (the ones a small model ships in)
_FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
               10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S",
               15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 32: "BF16"}


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def gguf_metadata(path: Path) -> dict[str, Any]:
    """Name, architecture and quantization from a GGUF file's header."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise EnvironmentProblem("reading a .gguf model needs the gguf package: "
                                 "pip install gguf") from None
    try:
        reader = GGUFReader(str(path))
    except Exception as exc:  # a truncated or foreign file: any parse error
        raise BadInput(f"{path}: not a readable GGUF file ({type(exc).__name__}: "
                       f"{str(exc)[:120]})") from None

    def field(key: str) -> Any:
        f = reader.fields.get(key)
        if f is None or not f.data:
            return None
        value = f.parts[f.data[0]]
        if f.types and f.types[0].name == "STRING":
            return bytes(value).decode("utf-8", "replace")
        return value.tolist()[0] if hasattr(value, "tolist") else value

    file_type = field("general.file_type")
    return {"name": field("general.name") or path.stem,
            "architecture": field("general.architecture") or "unknown",
            "quantization": _FILE_TYPES.get(file_type, f"file type {file_type}")
            if file_type is not None else "unknown"}


def converted_dir(path: Path, cache_dir: str | None = None, progress: bool = True,
                  extra: dict[str, Any] | None = None) -> Path:
    """The HF directory of a GGUF file, converting it on first use (see module doc).

    extra: more provenance to record (e.g. the package the file came from).
    """
    path = path.expanduser()
    if not path.is_file():
        raise BadInput(f"{path}: no such GGUF file")
    digest = sha256_of(path)
    target = default_cache_root(cache_dir) / "gguf" / digest[:16]
    if (target / PROVENANCE_FILE).is_file() and (target / "config.json").is_file():
        return target
    meta = gguf_metadata(path)
    if progress:
        import sys

        print(f"converting {path.name} ({meta['quantization']}) to an HF directory in "
              f"{target} (once)", file=sys.stderr)
    from harness.atomic import atomic_replace_dir

    def build(d: Path) -> None:
        _convert(path, d)
        provenance = {
            "source_file": path.name, "sha256": digest, "format": "gguf",
            "name": meta["name"], "architecture": meta["architecture"],
            "quantization": meta["quantization"], "dequantized_to": "float32",
            "description": f"{meta['name']}, {meta['quantization']} dequantized",
            "note": "weights dequantized from a quantized GGUF file: not the original "
                    "bf16/fp32 checkpoint; do not report these numbers as the hub model's",
            **(extra or {})}
        (d / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")

    # An entry of this cache (its provenance record) may be redone; nothing else.
    return atomic_replace_dir(build, target, owns=lambda d: (d / PROVENANCE_FILE).is_file())


def _convert(path: Path, out: Path) -> None:
    """Dequantize with transformers and save as safetensors plus tokenizer.

    transformers marks a GGUF-loaded model as quantized ("quantized with gguf and is
    not serializable") although its weights are plain float after loading; the
    marker is cleared before saving (the reloaded logits are identical).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                         dtype=torch.float32)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise BadInput(f"{path}: transformers cannot load this GGUF file "
                       f"({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__})"
                       ) from None
    model.hf_quantizer = None
    for holder in (model, model.config):
        if hasattr(holder, "quantization_config"):
            try:
                delattr(holder, "quantization_config")
            except AttributeError:
                holder.quantization_config = None
    model.config.dtype = "float32"
    with quiet_transformers():
        model.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))


def read_provenance(directory: Path) -> dict[str, Any] | None:
    """A model directory's provenance.json, or None (an ordinary HF directory)."""
    path = directory / PROVENANCE_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
