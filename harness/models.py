"""Load a causal LM and its tokenizer from a hub id, a local directory or a builtin.

Builtins (built offline by `harness.tiny_model`): `builtin:tiny`, the default
pretrained model, and `builtin:random`, the same architecture and tokenizer with
seeded random weights and no pretraining (pure garbage output, for robustness runs).

Every model the harness touches goes through `load_model`, so device, dtype, thread
count and tokenizer padding are decided in one place: left padding (batched
sampling appends on the right), a pad token always set (many base models ship
without one), bf16 only where the hardware is fast at it. Failures the user can fix
become `BadInput` / `EnvironmentProblem` with the fix in the message.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config import ModelConfig
from harness.errors import BadInput, EnvironmentProblem

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

BUILTIN_PREFIX = "builtin:"
BUILTIN_MODELS = ("tiny", "random")  # keys of harness.tiny_model.BUILTIN_SPECS

_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16"}


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the host's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_threads(cfg: ModelConfig) -> int:
    """Set torch's intra-op threads from `cfg.threads` (0 = all our cores); returns it.

    torch's default can exceed the cores a container grants; oversubscription makes
    the tiny model's many small matmuls several times slower.
    """
    import torch

    if cfg.threads < 0:
        raise BadInput(f"threads must be >= 0, got {cfg.threads}")
    threads = cfg.threads or cpu_count()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def resolve_device(cfg: ModelConfig) -> torch.device:
    """`auto` picks CUDA when present, else CPU; explicit choices are checked."""
    import torch

    name = cfg.device.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise BadInput(f"unknown device {cfg.device!r}; use auto, cpu, cuda, cuda:N or mps") \
            from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise EnvironmentProblem(f"device {cfg.device!r} requested but CUDA is not available; "
                                     "pass --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise EnvironmentProblem(f"device {cfg.device!r} requested but only "
                                     f"{torch.cuda.device_count()} CUDA device(s) exist")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise EnvironmentProblem("device 'mps' requested but MPS is not available; "
                                     "pass --device cpu")
    elif device.type != "cpu":
        raise BadInput(f"unsupported device {cfg.device!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


def resolve_dtype(cfg: ModelConfig, device: torch.device | None = None) -> torch.dtype:
    """`auto`: bf16 on a CUDA device that supports it, float32 everywhere else.

    float32 on CPU because CPU half-precision kernels are slow or missing for many
    ops, and fp16 on old GPUs would need loss scaling for LoRA training.
    """
    import torch

    name = cfg.dtype.strip().lower()
    if name == "auto":
        device = device if device is not None else resolve_device(cfg)
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if name not in _DTYPES:
        raise BadInput(f"unknown dtype {cfg.dtype!r}; use auto, float32, bfloat16 or float16")
    return getattr(torch, _DTYPES[name])


def configure_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Left padding and a pad token, as batched sampling needs them."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise BadInput("the tokenizer has neither a pad nor an eos token; cannot batch")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def is_builtin(name: str) -> bool:
    return name.startswith(BUILTIN_PREFIX)


def _looks_like_path(name: str) -> bool:
    """Hub ids are `name` or `org/name`; anything else is meant as a directory."""
    return name.startswith(("/", ".", "~")) or name.endswith("/") or name.count("/") > 1


def resolve_model_path(cfg: ModelConfig, progress: bool = True) -> str:
    """The local directory or hub id `from_pretrained` should read (builds builtins)."""
    name = cfg.name.strip()
    if not name:
        raise BadInput("model name is empty; pass an HF id, a local directory or builtin:tiny")
    if is_builtin(name):
        which = name[len(BUILTIN_PREFIX):]
        if which not in BUILTIN_MODELS:
            raise BadInput(f"unknown builtin model {name!r}; known: "
                           + ", ".join(BUILTIN_PREFIX + b for b in BUILTIN_MODELS))
        from harness.tiny_model import builtin_model_dir  # tiny: the shipped, verified copy

        return str(builtin_model_dir(which, cfg.cache_dir or None, progress=progress))
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BadInput(f"{name}: directory has no config.json; not a saved HF model")
        return str(path)
    if path.exists():
        raise BadInput(f"{name}: is a file; --model wants a model directory, an HF id or "
                       "builtin:tiny")
    if _looks_like_path(name):
        raise BadInput(f"{name}: no such model directory")
    return name


def load_model(cfg: ModelConfig, progress: bool = True
               ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model (eval mode, on its device and dtype) and its left-padding tokenizer.

    A hub id that cannot be fetched (no network, unknown repo, gated) becomes an
    EnvironmentProblem telling the user to download it elsewhere and pass the
    directory, since this machine may have no route to the hub.
    """
    set_threads(cfg)
    device = resolve_device(cfg)
    dtype = resolve_dtype(cfg, device)
    source = resolve_model_path(cfg, progress=progress)

    if os.path.isdir(source):
        try:
            model, tokenizer = _from_pretrained(source, dtype)
        except (OSError, ValueError) as exc:
            raise EnvironmentProblem(f"could not load the model in {source}: "
                                     f"{_first_line(exc)}") from None
    else:
        model, tokenizer = _load_from_hub(source, dtype)
    model.to(device)  # type: ignore[arg-type]
    model.eval()
    configure_tokenizer(tokenizer)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' per-load progress bars ("Loading weights") for a block.

    The loop loads and saves models every generation; a bar each time buries the
    lines that matter.
    """
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _download_failed(name: str, exc: BaseException, why: str = "") -> EnvironmentProblem:
    return EnvironmentProblem(
        f"could not download model {name!r} from the Hugging Face hub "
        f"({why or _first_line(exc)}); "
        "download it on a machine with access (e.g. `huggingface-cli download ID --local-dir "
        "DIR`) and pass --model DIR")


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of (trainable) parameters, tied weights counted once."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def max_positions(model: PreTrainedModel) -> int | None:
    """The longest sequence the model's position embeddings allow (None: unknown)."""
    cfg = model.config
    for attr in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(cfg, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
