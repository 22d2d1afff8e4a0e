"""LoRA fine-tuning of one generation, adapter files, restart policies, perplexity
and per-example completion log-probabilities (the AI-text detectors' scores).

Training is the loop's other hot path, so it runs its own small loop instead of
HF's Trainer: examples are tokenized once, batched by similar length (little
padding), and the LM head only runs on positions whose next token is trained.
Everything random (LoRA init, batch order, dropout) draws from `seed`, so the same
data and seed give bit-identical adapters on the same machine. On a GPU the
forward runs under bf16 autocast (for bf16 models) and token counts are taken on
the host, so an optimizer step waits for the device once, for its loss value.

Prompt and completion are tokenized separately and concatenated, exactly as the
sampler sees them (prompt ids, then generated ids), so training and generation
agree on the token boundary between the two.

The base model passed in is never modified: LoRA layers go into a copy, so one
base model can serve every arm and the "from-base" policy stays exact.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from harness.atomic import atomic_replace_dir, check_replaceable
from harness.config import RESTART_POLICIES, TrainingConfig
from harness.errors import BadInput
from harness.model.formats import PromptFormat
from harness.model.runtime import max_positions, quiet_transformers
from tasks.model_text import clean_text

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

MAX_GRAD_NORM = 1.0

_LLAMA_STYLE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
_GPT2_STYLE = ["c_attn", "c_proj", "c_fc"]
# model_type -> LoRA targets: every attention and MLP projection of the architecture.
ARCH_TARGETS: dict[str, list[str]] = {
    "llama": _LLAMA_STYLE, "qwen2": _LLAMA_STYLE, "qwen3": _LLAMA_STYLE,
    "mistral": _LLAMA_STYLE, "gemma": _LLAMA_STYLE, "gemma2": _LLAMA_STYLE,
    "gpt2": _GPT2_STYLE, "gpt_bigcode": _GPT2_STYLE,
}

Encoded = tuple[list[int], int]
"""Token ids of prompt + completion, and how many of them are the prompt."""


@dataclass
class TrainStats:
    """What one training run did. tokens: non-padding tokens processed (inputs);
    loss_tokens: tokens the loss was computed on; losses: mean loss per optimizer step."""

    steps: int = 0
    tokens: int = 0
    loss_tokens: int = 0
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


# -- tokenization ------------------------------------------------------------------


def encode_example(tokenizer: PreTrainedTokenizerBase, prompt: str, completion: str,
                   max_length: int, add_eos: bool = True, fmt: PromptFormat | None = None,
                   ) -> Encoded:
    """(prompt ids + completion ids [+ eos], number of prompt ids), at most max_length.

    The prompt is encoded like the sampler encodes it (with the tokenizer's special
    tokens, e.g. BOS); the completion without. EOS teaches the model to stop after
    the body, which also makes sampling cheaper. Over-long examples lose the start
    of the prompt first, then the end of the completion.

    fmt: the prompt format (harness.model.formats): the prompt side is the model
    input the sampler uses, the target is `fmt.target` (the whitespace the boundary
    moved, then the completion; in chat the answer and, when add_eos, the
    template's end of turn in place of EOS).
    """
    if fmt is not None:
        p = fmt.input_ids(prompt)
        completion = fmt.target(prompt, completion, end_of_turn=add_eos)
        add_eos = add_eos and fmt.adds_eos
    else:
        p = list(tokenizer(prompt)["input_ids"])
    c = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
    if add_eos and tokenizer.eos_token_id is not None:
        c.append(int(tokenizer.eos_token_id))
    c = c[:max(max_length - 1, 1)]
    room = max_length - len(c)
    p = p[len(p) - room:] if room > 0 else []
    return p + c, len(p)


def _length_limit(model: PreTrainedModel, max_length: int) -> int:
    limit = max_positions(model)
    return min(max_length, limit) if limit else max_length


# -- batching ------------------------------------------------------------------------


def length_grouped_steps(lengths: Sequence[int], batch_size: int, grad_accum: int,
                         generator: torch.Generator) -> list[list[list[int]]]:
    """One epoch: optimizer steps, each a list of micro-batches of example indices.

    Shuffle, then sort by length within chunks of 16 steps' worth of examples, so a
    micro-batch holds similar lengths (little padding) while the data order stays
    random; finally shuffle the steps themselves.
    """
    perm = torch.randperm(len(lengths), generator=generator).tolist()
    per_step = batch_size * grad_accum
    chunk = per_step * 16
    micro: list[list[int]] = []
    for start in range(0, len(perm), chunk):
        part = sorted(perm[start:start + chunk], key=lambda i: lengths[i])
        micro.extend(part[j:j + batch_size] for j in range(0, len(part), batch_size))
    steps = [micro[j:j + grad_accum] for j in range(0, len(micro), grad_accum)]
    order = torch.randperm(len(steps), generator=generator).tolist()
    return [steps[i] for i in order]


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warmup to 1 over `warmup` steps, then cosine decay to 0 at `total`."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(total - warmup, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warmup, span) / span))


def _collate(batch: list[Encoded], pad_id: int, completion_only: bool,
             device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Right-padded ids, attention mask, next-token labels (-100 = ignored), and the
    first position whose prediction is trained (positions before it need no logits)."""
    width = max(len(ids) for ids, _ in batch)
    ids_t = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    first = width
    for i, (ids, n_prompt) in enumerate(batch):
        row = torch.tensor(ids, dtype=torch.long)
        ids_t[i, :len(ids)] = row
        mask[i, :len(ids)] = 1
        start = max(n_prompt, 1) if completion_only else 1  # first trained target token
        # position j predicts token j + 1
        labels[i, start - 1:len(ids) - 1] = row[start:]
        first = min(first, start - 1)
    return ids_t.to(device), mask.to(device), labels.to(device), first


def _logits_kwarg(model: torch.nn.Module) -> str | None:
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(base.forward).parameters
    return next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)


# -- the loop --------------------------------------------------------------------------


@dataclass
class LoopSettings:
    """Optimizer and schedule of one `train_loop` call."""

    lr: float
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int = 32
    grad_accum: int = 1
    epochs: int = 1
    max_steps: int | None = None  # overrides epochs: stop after this many steps
    warmup_ratio: float = 0.1
    warmup_steps: int | None = None  # overrides warmup_ratio
    max_grad_norm: float = MAX_GRAD_NORM
    completion_only: bool = True


def train_loop(model: torch.nn.Module, examples: Sequence[Encoded], settings: LoopSettings,
               seed: int, pad_id: int, progress: bool | str = False,
               on_step: Callable[[int, float], None] | None = None) -> TrainStats:
    """Train `model`'s trainable parameters on `examples`; returns what it did.

    Loss is the mean over all trained tokens of an optimizer step (micro-batches of
    one step are weighted by their token counts, so accumulation changes nothing but
    memory). The caller seeds global torch RNG state for anything the model draws
    (dropout); batch order comes from its own generator seeded with `seed`.
    """
    from harness.progress import progress_bar

    stats = TrainStats()
    if not examples:
        return stats
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr, betas=settings.betas)
    generator = torch.Generator().manual_seed(seed)
    lengths = [len(ids) for ids, _ in examples]
    per_epoch = math.ceil(len(examples) / (settings.batch_size * settings.grad_accum))
    total = settings.max_steps if settings.max_steps is not None else per_epoch * settings.epochs
    warmup = (settings.warmup_steps if settings.warmup_steps is not None
              else int(settings.warmup_ratio * total))
    device = next(model.parameters()).device
    keep_kw = _logits_kwarg(model)

    model.train()
    started = time.perf_counter()
    with progress_bar(total, progress, "training", "step") as bar:
        while stats.steps < total:
            for step_batches in length_grouped_steps(lengths, settings.batch_size,
                                                     settings.grad_accum, generator):
                if stats.steps >= total:
                    break
                loss = _optimizer_step(model, optimizer, params, examples, step_batches,
                                       settings, lr_factor(stats.steps, total, warmup),
                                       pad_id, device, keep_kw, stats)
                stats.steps += 1
                if not math.isfinite(loss):
                    raise BadInput(
                        f"training diverged: the loss is {loss} at step {stats.steps} of "
                        f"{total} (learning rate {settings.lr:g}); lower --lr, "
                        "since a model trained on it would be scored as if it were real")
                stats.losses.append(loss)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
                if on_step is not None:
                    on_step(stats.steps, loss)
    stats.seconds = time.perf_counter() - started
    model.eval()
    return stats


def _summed_loss(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor,
                 labels: torch.Tensor, first: int, keep_kw: str | None) -> torch.Tensor:
    """Summed token cross-entropy over the labelled positions of one batch.

    Labels before `first` are all -100, so when the model supports it only the last
    `len - first` positions' logits are computed (`keep_kw`): the prompt's logits
    would be discarded anyway. On CUDA the forward runs under bf16 autocast when
    the model holds bf16 weights (see `_autocast`); the loss itself is float32.
    """
    parts = _decoder_and_head(model)
    if parts is not None and ids.shape[0] * (ids.shape[1] - first) * parts[2] > LOGIT_BUDGET:
        return _chunked_loss(model, parts[0], parts[1], ids, mask, labels)
    logits, target = _trained_logits(model, ids, mask, labels, first, keep_kw)
    return torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1),
        ignore_index=-100, reduction="sum")


LOSS_CHUNK = 1024
"""Trained positions per LM-head-and-loss chunk of `_chunked_loss` (a 49k vocabulary:
200 MB of float32 logits per chunk)."""

PLAIN_HEAD_TYPES = frozenset({"llama", "qwen2", "qwen3", "mistral", "gpt2", "gpt_bigcode",
                              "starcoder2"})
"""Architectures whose logits are exactly `lm_head(decoder(...).last_hidden_state)` (no
soft-capping or logit scaling), so `_chunked_loss` may compute them itself."""


def _decoder_and_head(model: torch.nn.Module
                      ) -> tuple[torch.nn.Module, torch.nn.Module, int] | None:
    """(decoder, LM head, vocabulary size) of a plain-head causal LM (PLAIN_HEAD_TYPES),
    LoRA layers included; None for any other model (the ordinary forward is used)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    if getattr(config, "model_type", None) not in PLAIN_HEAD_TYPES:
        return None
    decoder = getattr(base, getattr(base, "base_model_prefix", ""), None)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if not isinstance(decoder, torch.nn.Module) or not isinstance(head, torch.nn.Linear):
        return None
    return decoder, head, int(head.weight.shape[0])


def _chunked_loss(model: torch.nn.Module, decoder: torch.nn.Module, head: torch.nn.Linear,
                  ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """`_summed_loss` for a large vocabulary, in bounded memory.

    The logits of a batch are (rows x positions x vocab) floats, and the loss's
    backward keeps several such tensors: at SmolLM2's 49k vocabulary a micro-batch
    of 32 short examples peaked at 14 GB. Here the LM head runs only on positions
    whose next token is trained, in chunks of LOSS_CHUNK, each checkpointed (its
    logits are recomputed in the backward pass instead of kept). The same loss up
    to float summation order; used only past LOGIT_BUDGET, so small-vocabulary
    models (builtin:tiny) keep their bit-identical ordinary path.
    """
    from torch.utils.checkpoint import checkpoint

    with _autocast(ids.device, model):
        hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
    trained = labels != -100
    picked, targets = hidden[trained], labels[trained]
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, picked.shape[0], LOSS_CHUNK):
        total = total + checkpoint(_head_loss, head, picked[start:start + LOSS_CHUNK],
                                   targets[start:start + LOSS_CHUNK], use_reentrant=False)
    return total


def _head_loss(head: torch.nn.Linear, hidden: torch.Tensor, targets: torch.Tensor
               ) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(head(hidden).float(), targets, reduction="sum")


def _trained_logits(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor,
                    labels: torch.Tensor, first: int, keep_kw: str | None,
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, labels) of the positions from `first` on (see `_summed_loss`): the one
    forward pass that training, perplexity and per-example scores share."""
    kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "use_cache": False}
    if keep_kw and first > 0:
        kwargs[keep_kw] = ids.shape[1] - first
    else:
        first = 0
    with _autocast(ids.device, model):
        logits = model(**kwargs).logits
    return logits, labels[:, first:first + logits.shape[1]]


def _autocast(device: torch.device, model: torch.nn.Module) -> Any:
    """bf16 autocast on a CUDA device that supports it, for a model with bf16 weights.

    LoRA weights live in float32 next to a bf16 base, so without autocast every
    adapted projection runs a float32 matmul; autocast keeps them in bf16 on the
    tensor cores. A model loaded as float32 on purpose is left exact, and CPU
    training is untouched (bit-identical adapters across runs stay the rule).
    """
    if device.type != "cuda" or not torch.cuda.is_bf16_supported():
        return contextlib.nullcontext()
    if not any(p.dtype == torch.bfloat16 for p in model.parameters()):
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16)


def _counts(batch: list[Encoded], completion_only: bool) -> tuple[int, int]:
    """(input tokens, trained targets) of a micro-batch, as `_collate` lays it out,
    computed on the host so that counting never waits for the device."""
    tokens = targets = 0
    for ids, n_prompt in batch:
        start = max(n_prompt, 1) if completion_only else 1
        tokens += len(ids)
        targets += max(len(ids) - start, 0)
    return tokens, targets


def _optimizer_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    params: list[torch.nn.Parameter], examples: Sequence[Encoded],
                    step_batches: list[list[int]], settings: LoopSettings, factor: float,
                    pad_id: int, device: torch.device, keep_kw: str | None,
                    stats: TrainStats) -> float:
    batches = [[examples[i] for i in b] for b in step_batches]
    counts = [_counts(b, settings.completion_only) for b in batches]
    n_target = sum(targets for _, targets in counts)
    if n_target == 0:  # nothing to learn from (all completions empty)
        return 0.0
    total_loss: torch.Tensor | float = 0.0
    for batch, (tokens, _) in zip(batches, counts, strict=True):
        ids, mask, labels, first = _collate(batch, pad_id, settings.completion_only, device)
        loss_sum = _summed_loss(model, ids, mask, labels, first, keep_kw)
        (loss_sum / n_target).backward()
        total_loss = total_loss + loss_sum.detach().double()  # as a Python float sum
        stats.tokens += tokens
    stats.loss_tokens += n_target
    for group in optimizer.param_groups:
        group["lr"] = settings.lr * factor
    if settings.max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(total_loss) / n_target  # the step's only wait for the device


# -- LoRA ------------------------------------------------------------------------------


def _projection_names(model: torch.nn.Module) -> set[str]:
    from transformers.pytorch_utils import Conv1D

    return {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
            if isinstance(module, (torch.nn.Linear, Conv1D))}


def target_modules_for(model: PreTrainedModel, spec: str) -> list[str] | str:
    """LoRA target modules: `auto` (per architecture, see ARCH_TARGETS; all-linear for
    unknown ones), `all-linear`, or comma-separated module names (checked to exist)."""
    spec = spec.strip()
    present = _projection_names(model)
    if spec in ("", "auto"):
        targets = ARCH_TARGETS.get(getattr(model.config, "model_type", ""))
        if targets and set(targets) <= present:
            return list(targets)
        return "all-linear"
    if spec == "all-linear":
        return spec
    names = [n.strip() for n in spec.split(",") if n.strip()]
    missing = [n for n in names if n not in present]
    if missing or not names:
        raise BadInput(f"LoRA target module(s) {', '.join(missing) or spec!r} not in this model; "
                       f"its linear layers are: {', '.join(sorted(present))}")
    return names


def _check_training_config(cfg: TrainingConfig) -> None:
    checks = [(cfg.lora_r >= 1, f"lora_r must be >= 1, got {cfg.lora_r}"),
              (cfg.lora_alpha > 0, f"lora_alpha must be > 0, got {cfg.lora_alpha}"),
              (0 <= cfg.lora_dropout < 1,
               f"lora_dropout must be in [0, 1), got {cfg.lora_dropout}"),
              (math.isfinite(cfg.learning_rate) and cfg.learning_rate > 0,
               f"learning_rate must be a finite number > 0, got {cfg.learning_rate}"),
              (cfg.weight_decay >= 0, f"weight_decay must be >= 0, got {cfg.weight_decay}"),
              (0 <= cfg.warmup_ratio < 1,
               f"warmup_ratio must be in [0, 1), got {cfg.warmup_ratio}"),
              (cfg.epochs >= 0, f"epochs must be >= 0, got {cfg.epochs}"),
              (cfg.batch_size >= 1, f"training batch_size must be >= 1, got {cfg.batch_size}"),
              (cfg.grad_accum >= 1, f"grad_accum must be >= 1, got {cfg.grad_accum}"),
              (cfg.max_length >= 2, f"max_length must be >= 2, got {cfg.max_length}"),
              (cfg.restart in RESTART_POLICIES,
               f"unknown restart policy {cfg.restart!r}; known: {', '.join(RESTART_POLICIES)}")]
    for ok, message in checks:
        if not ok:
            raise BadInput(message)


def lora_config(model: PreTrainedModel, cfg: TrainingConfig) -> Any:
    """The peft LoraConfig for `model` under `cfg`."""
    from peft import LoraConfig, TaskType
    from transformers.pytorch_utils import Conv1D

    targets = target_modules_for(model, cfg.target_modules)
    named = targets if isinstance(targets, list) else []
    conv1d = any(isinstance(m, Conv1D) and name.rsplit(".", 1)[-1] in named
                 for name, m in model.named_modules())
    return LoraConfig(task_type=TaskType.CAUSAL_LM, r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                      lora_dropout=cfg.lora_dropout, target_modules=targets,
                      fan_in_fan_out=conv1d, bias="none")


@contextlib.contextmanager
def _quiet_peft() -> Iterator[None]:
    """peft 0.21 calls a transformers-5 deprecated property on every wrap; the
    FutureWarning is theirs to fix and would otherwise repeat every generation."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing",
                                category=FutureWarning)
        yield


def _rng_scope(device: torch.device) -> Any:
    """Fork torch's RNG so seeding for training leaves the caller's RNG untouched."""
    devices = [device.index or 0] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)


def finetune_lora(model: PreTrainedModel | PeftModel, tokenizer: PreTrainedTokenizerBase,
                  examples: Sequence[tuple[str, str]], cfg: TrainingConfig, seed: int,
                  progress: bool | str = False, gradient_checkpointing: bool | None = None,
                  fmt: PromptFormat | None = None) -> tuple[PeftModel, TrainStats]:
    """LoRA-train on (prompt, completion) pairs; returns the adapted model and stats.

    A plain model gets a fresh adapter on a copy (the argument is untouched); a
    PeftModel keeps training its own adapter, in place (the "continue" policy). No
    examples: the model is returned with an untrained adapter (an identity: LoRA's
    B starts at zero), so a generation whose filter kept nothing still goes on.
    gradient_checkpointing: recompute activations in the backward pass (less memory
    for large models and batches, ~30% more compute); None reads
    `cfg.gradient_checkpointing` where the config has that field, else off.
    fmt: the prompt format the examples are encoded in (`encode_example`).
    """
    from peft import PeftModel

    _check_training_config(cfg)
    if gradient_checkpointing is None:
        gradient_checkpointing = bool(getattr(cfg, "gradient_checkpointing", False))
    device = next(model.parameters()).device
    with _rng_scope(device):
        torch.manual_seed(seed)
        if isinstance(model, PeftModel):
            peft_model = model
            for name, p in peft_model.named_parameters():
                p.requires_grad_("lora_" in name)
        else:
            from peft import get_peft_model

            with _quiet_peft():
                peft_model = get_peft_model(copy.deepcopy(model), lora_config(model, cfg))
        limit = _length_limit(peft_model, cfg.max_length)
        encoded = [encode_example(tokenizer, p, c, limit, fmt=fmt) for p, c in examples]
        settings = LoopSettings(lr=cfg.learning_rate, weight_decay=cfg.weight_decay,
                                batch_size=cfg.batch_size, grad_accum=cfg.grad_accum,
                                epochs=cfg.epochs, warmup_ratio=cfg.warmup_ratio,
                                completion_only=cfg.completion_only_loss)
        with _checkpointing(peft_model, gradient_checkpointing):
            stats = train_loop(peft_model, encoded, settings, seed, _pad_id(tokenizer),
                               progress)
    peft_model.eval()
    return peft_model, stats


@contextlib.contextmanager
def _checkpointing(model: PeftModel, enabled: bool) -> Iterator[None]:
    """Gradient checkpointing for the duration of one training run.

    Non-reentrant checkpointing needs no input that requires grad (the embeddings
    are frozen under LoRA). It is switched off afterwards so the returned model, and
    the merged model built from it, carry no training-only state into sampling.
    """
    base = model.get_base_model()
    if not enabled or not getattr(base, "supports_gradient_checkpointing", False):
        yield
        return
    kwargs = {"use_reentrant": False}
    if hasattr(base, "activation_checkpointing_enable"):  # transformers >= 5.2x
        base.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        disable = base.activation_checkpointing_disable
    else:
        with _quiet_peft():
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        disable = base.gradient_checkpointing_disable
    try:
        yield
    finally:
        disable()


def _pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad) if pad is not None else 0


# -- restart policies and adapter files --------------------------------------------------


def merge_adapter(model: PeftModel) -> PreTrainedModel:
    """The adapter folded into the weights; consumes `model` (merges in place)."""
    return model.merge_and_unload()


def is_adapter_dir(directory: Path) -> bool:
    """True for a directory `save_adapter` wrote: peft's adapter files and nothing else.

    Only such a directory may be replaced by a new adapter (an interrupted attempt's,
    or a re-save); anything with other files in it is not ours to delete.
    """
    if not (directory / "adapter_config.json").is_file():
        return False
    return all(p.is_file() and (p.name.startswith("adapter_") or p.name == "README.md")
               for p in directory.iterdir())


def save_adapter(model: PeftModel, directory: str | Path) -> Path:
    """Save the LoRA adapter (weights + config) to `directory`, atomically."""
    def build(d: Path) -> None:
        with quiet_transformers():
            model.save_pretrained(str(d))

    return atomic_replace_dir(build, directory, owns=is_adapter_dir)


def load_adapter(base_model: PreTrainedModel, directory: str | Path,
                 trainable: bool = False) -> PeftModel:
    """A saved adapter on a copy of `base_model` (eval mode; trainable for "continue")."""
    from peft import PeftModel

    path = Path(directory)
    if not (path / "adapter_config.json").is_file():
        raise BadInput(f"{path}: no LoRA adapter here (adapter_config.json missing)")
    with quiet_transformers(), _quiet_peft():
        model = PeftModel.from_pretrained(copy.deepcopy(base_model), str(path),
                                          is_trainable=trainable)
    model.eval()
    return model


EXPORT_MARKER = "collapse-bench-export.json"
"""Written into every `export_merged` directory: what it is, where it came from, and
the files it holds. A later export may replace only such a directory, and only while
it holds nothing but those files."""


def is_export_dir(directory: Path) -> bool:
    """True for a directory `export_merged` wrote and nobody has added to since."""
    try:
        marker = json.loads((directory / EXPORT_MARKER).read_text(encoding="utf-8"))
        listed = set(marker["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    present = {p.name for p in directory.iterdir()} - {EXPORT_MARKER}
    return present <= listed


def check_export_target(directory: str | Path) -> None:
    """BadInput (exit 2) unless `export_merged` may write `directory`: absent, empty, or
    an earlier export. Called before the model is loaded, so a wrong --out is one line."""
    check_replaceable(directory, is_export_dir)


def export_merged(model: PeftModel | PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                  directory: str | Path, origin: dict[str, Any] | None = None) -> Path:
    """Save a standalone model (adapter merged, `model` untouched) plus its tokenizer.

    The directory also gets EXPORT_MARKER (with `origin`: run, arm, generation), so
    a later export to the same path knows it may replace it; any other non-empty
    directory is refused (BadInput), never deleted.
    """
    from peft import PeftModel

    merged = copy.deepcopy(model).merge_and_unload() if isinstance(model, PeftModel) else model

    def build(d: Path) -> None:
        with quiet_transformers():
            merged.save_pretrained(str(d))
            tokenizer.save_pretrained(str(d))
        files = sorted(p.name for p in d.iterdir())
        marker = {"written_by": "collapse-bench model export", **(origin or {}),
                  "files": files}
        (d / EXPORT_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")

    return atomic_replace_dir(build, directory, owns=is_export_dir)


# -- perplexity --------------------------------------------------------------------------


def perplexity(model: PreTrainedModel | PeftModel, tokenizer: PreTrainedTokenizerBase,
               pairs: Sequence[tuple[str, str]], batch_size: int = 64,
               max_length: int = 1024, fmt: PromptFormat | None = None) -> float:
    """exp(mean negative log-likelihood) of the completions given their prompts.

    Only completion tokens count (no EOS: this measures the code, not where a model
    thinks files end, which differs between base models). Lower is better. The mean
    is over all completion tokens together (a long completion weighs more), from the
    same per-example sums as `completion_logprobs`, so the two cannot disagree.
    """
    nll, counts = completion_nll(model, tokenizer, pairs, batch_size, max_length, fmt)
    total = sum(counts)
    if total == 0:
        raise BadInput("perplexity needs at least one non-empty completion")
    return math.exp(math.fsum(x for x, n in zip(nll, counts, strict=True) if n) / total)


def completion_logprobs(model: PreTrainedModel | PeftModel,
                        tokenizer: PreTrainedTokenizerBase, pairs: Sequence[tuple[str, str]],
                        batch_size: int = 64, max_length: int = 1024,
                        fmt: PromptFormat | None = None) -> list[float]:
    """Per (prompt, completion): mean log-probability of the completion's tokens given
    the prompt, tokenized and truncated exactly as `perplexity` does (no EOS).

    NaN where there is no completion token to score (an empty completion), so one
    bad sample never breaks a batch; a numerically broken model gives NaN or -inf
    for the examples it breaks on, as it would for perplexity. Any text is accepted
    (lone surrogates are read as U+FFFD: `tasks.model_text.clean_text`).
    """
    nll, counts = completion_nll(model, tokenizer, pairs, batch_size, max_length, fmt)
    return [-x / n if n else math.nan for x, n in zip(nll, counts, strict=True)]


LOGIT_BUDGET = 32 * 2**20
"""Most logits (elements, float32: 128 MiB) one scoring forward may hold, and past which a
training micro-batch computes its loss in chunks. Small-vocabulary models (builtin:tiny:
64 x 256 x 1024 at most) never reach it; a 49k-vocabulary model on HumanEval's long
references needed 7.8 GB for one perplexity batch of 64 without it."""


def logit_budget_batches(encoded: Sequence[Encoded], batch_size: int, vocab: int,
                         budget: int = LOGIT_BUDGET) -> list[list[int]]:
    """Consecutive index runs of `encoded` (sorted by length), each at most
    `batch_size` rows and, past its first row, within `budget` logits: rows x the
    widest row's scored positions x vocab (`_collate` pads to the widest)."""
    batches: list[list[int]] = []
    current: list[int] = []
    first = width = 0
    for i, (ids, n_prompt) in enumerate(encoded):
        row_first, row_width = max(n_prompt, 1) - 1, len(ids)
        new_first = min(first, row_first) if current else row_first
        new_width = max(width, row_width)
        cost = (len(current) + 1) * (new_width - new_first) * vocab
        if current and (len(current) >= batch_size or cost > budget):
            batches.append(current)
            current, new_first, new_width = [], row_first, row_width
        current.append(i)
        first, width = new_first, new_width
    if current:
        batches.append(current)
    return batches


def completion_nll(model: PreTrainedModel | PeftModel, tokenizer: PreTrainedTokenizerBase,
                   pairs: Sequence[tuple[str, str]], batch_size: int = 64,
                   max_length: int = 1024, fmt: PromptFormat | None = None,
                   ) -> tuple[list[float], list[int]]:
    """(summed negative log-likelihood, number of scored tokens) of each completion
    given its prompt, in the order of `pairs`; (0.0, 0) for an empty completion.

    The core of `perplexity` and `completion_logprobs`. Per-token losses are float32
    as in training, summed per example in float64 (`completion_token_sums`).
    """
    def per_token(logits: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        scores = logits[0]
        return torch.nn.functional.cross_entropy(
            scores.float().reshape(-1, scores.shape[-1]), target.reshape(-1),
            reduction="none").view(*target.shape, 1)

    sums, counts = completion_token_sums([model], tokenizer, pairs, per_token, 1, batch_size,
                                         max_length, fmt)
    return [s[0] for s in sums], counts


PerToken = Callable[[list[torch.Tensor], torch.Tensor], torch.Tensor]
"""(logits of each model, rows x positions x vocab; targets, rows x positions) ->
per-position values, rows x positions x k. Unscored positions carry target 0 and
whatever values come out there are dropped, so the function needs no mask."""


def completion_token_sums(models: Sequence[PreTrainedModel | PeftModel],
                          tokenizer: PreTrainedTokenizerBase,
                          pairs: Sequence[tuple[str, str]], per_token: PerToken,
                          n_values: int, batch_size: int = 64, max_length: int = 1024,
                          fmt: PromptFormat | None = None,
                          ) -> tuple[list[list[float]], list[int]]:
    """Per pair: the `n_values` values of `per_token` summed over the completion's scored
    tokens, and how many tokens that is; zeros and 0 for an empty completion.

    One forward pass per model per batch, tokenized, truncated and batched exactly as
    `completion_nll` (which is this with the token loss), so every per-example score
    of the detectors sees the same tokens as perplexity. Several models (one device,
    one tokenizer) see the same batches, their logits side by side within one
    LOGIT_BUDGET, so a two-model score never holds more logits than a one-model one.
    Values are computed as `per_token` chooses (float32 softmaxes), summed per
    example in float64 and read from the device once at the end.
    """
    shortest = min(models, key=lambda m: _length_limit(m, max_length))
    encoded = _encode_scored(shortest, tokenizer, pairs, max_length, fmt)
    counts = [_counts([e], True)[1] for e in encoded]
    out = [[0.0] * n_values for _ in encoded]
    rows: list[int] = []
    sums: list[torch.Tensor] = []

    def add(batch_rows: list[int], logits: list[torch.Tensor], target: torch.Tensor) -> None:
        scored = target != -100
        values = per_token(logits, target.masked_fill(~scored, 0))
        sums.append(values.masked_fill(~scored.unsqueeze(-1), 0.0).double().sum(dim=1))
        rows.extend(batch_rows)

    _each_scored_batch(models, tokenizer, encoded, counts, batch_size, add)
    if sums:
        for i, value in zip(rows, torch.cat(sums).cpu().tolist(), strict=True):
            out[i] = value
    return out, counts


def completion_tokens(model: PreTrainedModel | PeftModel, tokenizer: PreTrainedTokenizerBase,
                      pairs: Sequence[tuple[str, str]], max_length: int = 1024,
                      fmt: PromptFormat | None = None) -> list[tuple[int | None, list[int]]]:
    """(the token before the scored ones, the completion's scored tokens) of each pair,
    tokenized and truncated exactly as `completion_nll` scores them: the tokens a
    watermark detector counts (`harness.model.watermark`), in the run's format.

    The token before is the prompt's last (the context of the first completion
    token); None only for an empty example.
    """
    out: list[tuple[int | None, list[int]]] = []
    for ids, n_prompt in _encode_scored(model, tokenizer, pairs, max_length, fmt):
        start = max(n_prompt, 1)  # as `_collate`: a prompt-less first token is not scored
        out.append((ids[start - 1] if len(ids) >= start else None, ids[start:]))
    return out


def completion_entropies(model: PreTrainedModel | PeftModel,
                         tokenizer: PreTrainedTokenizerBase, pairs: Sequence[tuple[str, str]],
                         batch_size: int = 64, max_length: int = 1024,
                         fmt: PromptFormat | None = None) -> list[list[float]]:
    """Per pair, the entropy (nats, temperature 1) of the model's next-token
    distribution before each of `completion_tokens`' tokens, one per token: what
    SWEET's detector gates on (Lee et al. 2023), the sampler's gate recomputed.

    Float32 softmax over the vocabulary, as the sampler's; under bf16 autocast on a
    GPU the logits differ from the sampler's in the last bits, which moves a
    position across the threshold only when its entropy is within rounding of it.
    """
    encoded = _encode_scored(model, tokenizer, pairs, max_length, fmt)
    counts = [_counts([e], True)[1] for e in encoded]
    out: list[list[float]] = [[] for _ in encoded]
    parts: list[tuple[list[int], torch.Tensor, torch.Tensor]] = []

    def add(batch_rows: list[int], logits: list[torch.Tensor], target: torch.Tensor) -> None:
        probs = torch.softmax(logits[0].float(), dim=-1)
        parts.append((batch_rows, torch.special.entr(probs).sum(dim=-1), target != -100))

    _each_scored_batch([model], tokenizer, encoded, counts, batch_size, add)
    for batch_rows, entropy, scored in parts:
        entropy, scored = entropy.cpu(), scored.cpu()
        for r, i in enumerate(batch_rows):
            out[i] = entropy[r][scored[r]].tolist()
    return out


def _encode_scored(model: PreTrainedModel | PeftModel, tokenizer: PreTrainedTokenizerBase,
                   pairs: Sequence[tuple[str, str]], max_length: int,
                   fmt: PromptFormat | None) -> list[Encoded]:
    """Each (prompt, completion) as scoring encodes it: no EOS, within the model's
    positions, any text accepted (`tasks.model_text.clean_text`)."""
    limit = _length_limit(model, max_length)
    return [encode_example(tokenizer, clean_text(p), clean_text(c), limit, add_eos=False,
                           fmt=fmt) for p, c in pairs]


def _each_scored_batch(models: Sequence[PreTrainedModel | PeftModel],
                       tokenizer: PreTrainedTokenizerBase, encoded: Sequence[Encoded],
                       counts: Sequence[int], batch_size: int,
                       each: Callable[[list[int], list[torch.Tensor], torch.Tensor], None]
                       ) -> None:
    """Run every example with a scored token (counts[i] > 0) through each of `models`,
    in batches sorted by length (little padding) within LOGIT_BUDGET (shared by the
    models), with only the completion's logits computed where a model allows, and call
    `each(example indices, logits per model, targets)` per batch (targets -100 where
    unscored; every model's logits cut to the same positions as the targets).
    """
    if batch_size < 1:
        raise BadInput(f"batch_size must be >= 1, got {batch_size}")
    order = sorted((i for i in range(len(encoded)) if counts[i]),
                   key=lambda i: len(encoded[i][0]))
    if not order:
        return
    device = next(models[0].parameters()).device
    keep_kws = [_logits_kwarg(m) for m in models]
    pad_id = _pad_id(tokenizer)
    was_training = [m.training for m in models]
    for m in models:
        m.eval()
    vocab = max(int(getattr(m.config, "vocab_size", 0) or 1) for m in models)
    budget = LOGIT_BUDGET // len(models)
    try:
        with torch.inference_mode():
            for rows in logit_budget_batches([encoded[i] for i in order], batch_size, vocab,
                                             budget):
                batch = [encoded[order[i]] for i in rows]
                ids, mask, labels, first = _collate(batch, pad_id, True, device)
                outs = [_trained_logits(m, ids, mask, labels, first, kw)
                        for m, kw in zip(models, keep_kws, strict=True)]
                # a model that kept every position's logits: cut to the common (last) ones
                width = min(logits.shape[1] for logits, _ in outs)
                each([order[i] for i in rows], [logits[:, logits.shape[1] - width:]
                                                for logits, _ in outs],
                     outs[0][1][:, outs[0][1].shape[1] - width:])
    finally:
        for m, training in zip(models, was_training, strict=True):
            m.train(training)
