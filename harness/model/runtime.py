"""Where a model runs and how it is read: device, dtype, threads, tokenizer padding.

The lowest layer of the model stack (docs/design.md, "Layout"): it knows torch and
transformers but nothing about builtins, sampling or training, so `sampling`,
`training` and the builtin recipe (`tiny`) can all build on it without importing
each other. Decisions made here hold for every model the harness touches: left
padding with a pad token always set (batched sampling appends on the right), bf16
only where the hardware is fast at it, torch threads never above our cores.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import ModelConfig
from harness.errors import BadInput, EnvironmentProblem

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16"}


def default_cache_root(cache_dir: str | None = None) -> Path:
    """Where models are cached: cache_dir, else $COLLAPSE_BENCH_CACHE, else
    ~/.cache/collapse-bench (builtins, converted GGUF files, fetched models)."""
    root = cache_dir or os.environ.get("COLLAPSE_BENCH_CACHE") or "~/.cache/collapse-bench"
    return Path(root).expanduser()


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the host's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """The thread count `threads = 0` means: our cores that other work is not already
    using (cores minus the 1-minute load average, rounded down), at least 1.

    Measured on a busy 2-core machine, one decode step of SmolLM2-135M was 8x slower
    with a thread per core than with one thread: torch's threads spin-wait on each
    other, and on cores that are taken every matmul waits for the slowest.

    The count can change a run's bits (`pinned_threads` says why): builtin:tiny gave
    the same metrics at 1 and 2 threads for 2 generations of 1024 examples and a
    slightly different model from the third on (bench/results/threads_bits.txt). So
    the count a run used is recorded with each generation (`used_threads`, in the
    manifest's steps), and `--model.threads N` pins it for runs that must match bit
    for bit; the numbers agree in distribution either way.
    """
    cores = cpu_count()
    try:
        busy = int(os.getloadavg()[0])
    except OSError:  # no load average on this platform
        busy = 0
    return max(1, min(cores, cores - busy))


def set_threads(cfg: ModelConfig) -> int:
    """Set torch's intra-op threads from `cfg.threads` (0 = `default_threads()`);
    returns it.

    torch's default can exceed the cores a container grants, and ignores what else
    runs; oversubscription makes small matmuls several times slower.
    """
    import torch

    if cfg.threads < 0:
        raise BadInput(f"threads must be >= 0, got {cfg.threads}")
    threads = cfg.threads or default_threads()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def used_threads() -> int:
    """torch's intra-op thread count now: what the manifest records per generation."""
    import torch

    return int(torch.get_num_threads())


@contextlib.contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """Run a block with exactly `threads` torch intra-op threads, then restore the count.

    For computations whose *bits* must not depend on who ran before them. torch splits
    a parallel reduction (and MKL a matmul) into one chunk per thread and adds the
    partial results, so the float result depends on the thread count: the small
    builtin recipe gives different weights at 1, 3 and 8 threads on one machine
    (identical at 1, 2 and 4, and at any fixed count under load). The thread count is
    process-global, set by whatever loaded a model last (`set_threads`), so without a
    pin a build inherits it from unrelated code.
    """
    import torch

    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


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


def output_vocab_size(model: PreTrainedModel) -> int:
    """Columns of the model's logits: its output embedding's rows, else config.vocab_size.

    Often more than the tokenizer's ids (vocabularies padded to a multiple of 64);
    what matters is that the sampler and a detector agree on one number, since a
    watermark's green lists are defined over it (`harness.model.watermark`).
    """
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    weight = getattr(head, "weight", None)
    if weight is not None and weight.ndim == 2:
        return int(weight.shape[0])
    return int(model.config.vocab_size)


# -- process memory ------------------------------------------------------------------------
MMAP_THRESHOLD_BYTES = 1 << 20
"""Allocations at least this large get their own mapping, returned to the system when
freed (glibc's `M_MMAP_THRESHOLD`, fixed by `bound_heap_retention`)."""


def _glibc() -> Any:
    """The C library, where it is glibc (has `mallopt` and `malloc_trim`); else None."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") else None


_heap_bounded = False


def bound_heap_retention() -> None:
    """Make freed tensor memory leave the process: glibc's mmap threshold fixed at
    MMAP_THRESHOLD_BYTES (once per process; nothing where libc is not glibc).

    Why: glibc starts large allocations as private mappings, but each time one is
    freed it *raises* the threshold to that size (up to 32 MB), so a model's
    activations and KV caches soon come from the heap, and a freed heap is kept for
    reuse. A process that trains, samples and scores a 135M model then stays at its
    highest point and stacks the next phase on top: SmolLM2-135M's LoRA training
    peaked at 5.7 GB and the sampling after it at 4.0 GB; with the threshold fixed,
    3.5-3.7 GB and 1.1-1.3 GB, with the same adapter and the same samples to the bit
    (bench/results/arm_memory.txt). What it costs: a mapping and fresh zeroed pages
    per large allocation.
    """
    global _heap_bounded
    if _heap_bounded:
        return
    libc = _glibc()
    if libc is not None:
        libc.mallopt(-3, MMAP_THRESHOLD_BYTES)  # M_MMAP_THRESHOLD (glibc malloc.h)
    _heap_bounded = True


def release_memory() -> None:
    """Give memory the process has freed back to the system: collect cycles, then ask
    glibc to return its free heap pages (`malloc_trim`; nothing where libc has none).

    The heap below `bound_heap_retention`'s threshold still keeps what it freed: the
    loop calls this between phases (after training, after sampling, before a
    generation starts), so a phase's peak does not start from the last one's. It
    changes no number, only what the resident size says between phases.
    """
    import gc

    gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
