"""Load a causal LM and its tokenizer from a hub id, a local directory, a GGUF file
or a builtin.

A `.gguf` file is dequantized once into an HF directory in the model cache, keyed
by its sha256 (`harness.model.gguf_cache`), and loaded from there; a directory that
`collapse-bench model fetch` wrote carries a provenance.json, which every run
records (`model_provenance`), so dequantized weights are never mistaken for the
original checkpoint.

Builtins (recipe and shipped copy in `harness.model.tiny`): `builtin:tiny`, the
default pretrained model, and `builtin:random`, the same architecture and tokenizer
with seeded random weights and no pretraining (pure garbage output, for robustness
runs).

Every model an experiment uses goes through `load_model`, so device, dtype, thread
count and tokenizer padding (`harness.model.runtime`) are applied in one place.
Failures the user can fix become `BadInput` / `EnvironmentProblem` with the fix in
the message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config import ModelConfig
from harness.errors import BadInput, EnvironmentProblem, one_line
from harness.model.runtime import (
    bound_heap_retention,
    configure_tokenizer,
    quiet_transformers,
    resolve_device,
    resolve_dtype,
    set_threads,
)

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

BUILTIN_PREFIX = "builtin:"
FETCHED_PREFIX = "fetched:"
"""`fetched:NAME`: a model `model fetch NAME` knows (harness.model.known), fetched on
first use, so a protocol can name a real model that every machine can obtain."""
BUILTIN_MODELS = ("tiny", "random")  # keys of harness.model.tiny.BUILTIN_SPECS


def is_builtin(name: str) -> bool:
    return name.startswith(BUILTIN_PREFIX)


def _looks_like_path(name: str) -> bool:
    """Hub ids are `name` or `org/name`; anything else is meant as a directory."""
    return name.startswith(("/", ".", "~")) or name.endswith("/") or name.count("/") > 1


def resolve_model_path(cfg: ModelConfig, progress: bool = True) -> str:
    """The local directory or hub id `from_pretrained` should read (builds builtins)."""
    name = cfg.name.strip()
    if not name:
        raise BadInput("model name is empty; pass an HF id, a local directory, a .gguf "
                       "file, fetched:NAME or builtin:tiny")
    if is_builtin(name):
        which = name[len(BUILTIN_PREFIX):]
        if which not in BUILTIN_MODELS:
            raise BadInput(f"unknown builtin model {name!r}; known: "
                           + ", ".join(BUILTIN_PREFIX + b for b in BUILTIN_MODELS))
        from harness.model.tiny import builtin_model_dir  # tiny: the shipped, verified copy

        return str(builtin_model_dir(which, cfg.cache_dir or None, progress=progress))
    if name.startswith(FETCHED_PREFIX):
        from harness.model.known import fetch

        return str(fetch(name[len(FETCHED_PREFIX):], cfg.cache_dir or None, progress=progress))
    path = Path(name).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        from harness.model.gguf_cache import converted_dir

        return str(converted_dir(path, cfg.cache_dir or None, progress=progress))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BadInput(f"{name}: directory has no config.json; not a saved HF model")
        return str(path)
    if path.exists():
        raise BadInput(f"{name}: is a file; --model wants a model directory, a .gguf file, "
                       "an HF id or builtin:tiny")
    if _looks_like_path(name):
        raise BadInput(f"{name}: no such model directory")
    return name


def load_model(cfg: ModelConfig, progress: bool = True
               ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model (eval mode, on its device and dtype) and its left-padding tokenizer.

    A hub id that cannot be fetched (no network, unknown repo, gated) becomes an
    EnvironmentProblem telling the user to download it elsewhere and pass the
    directory, since this machine may have no route to the hub.
    The process's freed tensor memory is returned to the system from here on
    (`bound_heap_retention`): every process that holds a model loads it here.
    """
    bound_heap_retention()
    set_threads(cfg)
    device = resolve_device(cfg)
    dtype = resolve_dtype(cfg, device)
    source = resolve_model_path(cfg, progress=progress)

    if os.path.isdir(source):
        check_tokenizer_files(source)
        try:
            model, tokenizer = _from_pretrained(source, dtype)
        except (OSError, ValueError) as exc:
            raise EnvironmentProblem(f"could not load the model in {source}: "
                                     f"{one_line(exc)}") from None
    else:
        model, tokenizer = _load_from_hub(source, dtype)
    model.to(device)  # type: ignore[arg-type]
    model.eval()
    configure_tokenizer(tokenizer)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def model_provenance(cfg: ModelConfig) -> dict[str, object]:
    """What a run records of its model: the name as given and, for a converted GGUF
    file or a fetched model, its provenance.json (source file, sha256,
    quantization, "dequantized")."""
    from harness.model.gguf_cache import read_provenance

    out: dict[str, object] = {"name": cfg.name}
    if is_builtin(cfg.name):
        return out
    path = Path(resolve_model_path(cfg, progress=False))  # the directory it loads from
    if path.is_dir():
        provenance = read_provenance(path)
        if provenance:
            out["provenance"] = provenance
    return out


def _download_failed(name: str, exc: BaseException, why: str = "") -> EnvironmentProblem:
    return EnvironmentProblem(
        f"could not download model {name!r} from the Hugging Face hub "
        f"({why or one_line(exc)}); "
        "download it on a machine with access (e.g. `huggingface-cli download ID --local-dir "
        "DIR`) and pass --model DIR")


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
"""A model directory has its tokenizer when one of these is in it."""


def check_tokenizer_files(directory: str) -> None:
    """A model directory without a tokenizer fails with the fix, not with transformers'
    many-line complaint about backends (whose first line ended in "one of:")."""
    if not any(os.path.isfile(os.path.join(directory, name)) for name in TOKENIZER_FILES):
        raise EnvironmentProblem(
            f"could not load the model in {directory}: it has no tokenizer (none of "
            f"{', '.join(TOKENIZER_FILES)}); save the model's tokenizer beside its weights, "
            "e.g. AutoTokenizer.from_pretrained(ORIGINAL).save_pretrained(DIR)")


def _from_pretrained(source: str, dtype: torch.dtype, local_files_only: bool = False
                     ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_files_only)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype,
                                                     local_files_only=local_files_only)
    return model, tokenizer


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or \
        os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def _in_hf_cache(name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except ValueError:  # not a valid repo id
        return False


def _load_from_hub(name: str, dtype: torch.dtype
                   ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A hub model: from the local HF cache when there, else downloaded.

    Without a route to the hub, `from_pretrained` retries for ~50 s with a warning
    per retry; one metadata request with a short timeout gives the same answer at
    once, so that probe runs before any download.
    """
    offline = _hub_offline()
    if offline or _in_hf_cache(name):
        try:
            return _from_pretrained(name, dtype, local_files_only=True)
        except (OSError, ValueError) as exc:
            if offline:
                raise _download_failed(name, exc, "HF_HUB_OFFLINE is set and it is not in "
                                                  "the local cache") from None
    from huggingface_hub import HfApi

    try:
        HfApi().model_info(name, timeout=10)
    except Exception as exc:  # DNS, connection, 404, gated: all mean "cannot download"
        raise _download_failed(name, exc) from None
    try:
        return _from_pretrained(name, dtype)
    except (OSError, ValueError) as exc:
        raise _download_failed(name, exc) from None


