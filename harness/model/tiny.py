"""`builtin:tiny`: a ~0.8M-parameter code model, shipped with the package, and its recipe.

The benchmark must run on a laptop with no model hub, so its default model is made
here from nothing: a byte-level BPE tokenizer trained on the synthetic suite's text
plus standard-library Python, a small Llama-style network from random init, and a
short pretraining on prompt + canonical solution of the synthetic *train* split
(generation 0 = human data, in the suite's 80/15/5 mix of coding styles, see
`tasks.renderings`). Held-out eval tasks use step combinations the model never saw,
so its pass@k measures composition.

**Shipped, not built on first use.** `builtin:tiny` loads the copy shipped in
`harness/model/builtin_models/tiny/` (package data, about 3 MB), after checking every
file against its `SHA256SUMS`; a mismatch is an EnvironmentProblem. Building it
from the recipe on each machine cannot give the same model everywhere: the recipe
is deterministic on one machine, but bit-reproducibility across torch versions,
CPUs and GPUs is not something torch guarantees (different kernels, different
reduction orders, different BPE library versions), so two machines would compare
slightly different "generation 0"s. Shipping the weights makes `builtin:tiny` one
model. The copy stays reproducible from the recipe: `collapse-bench model build
--ship` builds `TinySpec()` (into the cache, as below) and refreshes the shipped
directory and its sums; `build_info.json` there records the versions it was built
with.

`builtin:random` is the same recipe with no pretraining (`TinySpec(steps=0)`): the
same tokenizer recipe and architecture, seeded random weights. Its samples are noise by
construction - invalid UTF-8, NUL bytes, unbalanced brackets - which makes it the
model for checking that the harness survives whatever a model writes
(tests/test_garbage_model.py; policy in tasks/model_text.py).

`builtin:random` (it needs no training) and every `model build` (other widths with
`--hidden-size` / `--layers`, or a changed recipe) are built from the recipe: an ordinary
`save_pretrained` directory cached under a key that hashes everything that
determines it (recipe, suite text, stdlib files, library versions); a second use
only loads it. Builds go to a temporary directory renamed
into place under a file lock, so a crash never leaves half a model and two
processes never build the same one twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.atomic import atomic_replace_dir
from harness.errors import BadInput, EnvironmentProblem
from harness.model.runtime import default_cache_root

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

    from tasks.schema import Task

RECIPE_VERSION = 2  # bump when the build code changes what it produces (2: styled suite)
BUILD_THREADS = 1
"""torch intra-op threads every build runs with, whatever the process was set to.

The weights depend on the thread count (torch and MKL add per-thread partial sums,
see `harness.model.runtime.pinned_threads`), and the count is process-global: the
test suite's first build inherited 1 thread from an earlier test's `--model.threads
1` while its second build ran after a `load_model` had set all cores, so "two builds
of one spec in one process" could differ (tests/test_tiny_model.py). Pinning it makes
a build depend on its spec alone, on any core count. One thread, not all cores,
because the tiny model's small matmuls gain little from a second thread alone and
lose several-fold when the cores are shared (an OpenMP team waits for its slowest
thread): on the 2-core reference machine one pretraining step took 0.5 s on 1
thread and 0.4 to 0.7 s on 2, quiet; at load ~1, a small-spec build 1.9 s on 1
thread and 13 to 25 s on 2 (2026-12-02)."""
EOS = "<|endoftext|>"
SHIPPED_TINY_DIR = Path(__file__).resolve().parent / "builtin_models" / "tiny"
SUMS_FILE = "SHA256SUMS"
REBUILD_HINT = ("reinstall collapse-bench, or rebuild the shipped copy with "
                "`collapse-bench model build --ship`")


@dataclass(frozen=True)
class TinySpec:
    """Everything that determines the built model. The defaults are `builtin:tiny`;
    smaller specs (tests) go through exactly the same code."""

    n_train: int = 4000
    n_eval: int = 200
    suite_seed: int = 0
    n_stdlib_files: int = 150
    stdlib_max_chars: int = 20_000
    vocab_size: int = 1024
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 256
    max_positions: int = 256
    steps: int = 300
    batch_size: int = 64
    learning_rate: float = 2e-3
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.1
    warmup_steps: int = 30
    max_grad_norm: float = 1.0
    seed: int = 0


BUILTIN_SPECS: dict[str, TinySpec] = {"tiny": TinySpec(), "random": TinySpec(steps=0)}


def builtin_label(spec: TinySpec) -> str:
    """How messages name a build: builtin:random for an untrained spec, else builtin:tiny."""
    return "builtin:random" if spec.steps == 0 else "builtin:tiny"


def variant_spec(hidden_size: int | None = None, num_layers: int | None = None) -> TinySpec:
    """The default recipe with another width and/or depth (same architecture).

    The MLP keeps the default's 2x expansion, so a variant is the same shape of
    network, scaled. BadInput when the width does not split into the heads (rotary
    embeddings also need an even head size).
    """
    base = TinySpec()
    hidden = base.hidden_size if hidden_size is None else hidden_size
    layers = base.num_layers if num_layers is None else num_layers
    if hidden <= 0 or hidden % (2 * base.num_heads):
        raise BadInput(f"--hidden-size must be a positive multiple of {2 * base.num_heads} "
                       f"({base.num_heads} heads of an even size), got {hidden}")
    if layers <= 0:
        raise BadInput(f"--layers must be >= 1, got {layers}")
    return dataclasses.replace(base, hidden_size=hidden, num_layers=layers,
                               intermediate_size=2 * hidden)


def stdlib_files(count: int) -> list[Path]:
    """`count` top-level stdlib modules, evenly spread over the sorted listing."""
    if count <= 0:
        return []
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.glob("*.py") if 1_000 <= p.stat().st_size <= 200_000)
    if len(files) <= count:
        return files
    step = len(files) / count
    return [files[int(i * step)] for i in range(count)]


def _versions() -> dict[str, str]:
    import tokenizers
    import torch
    import transformers

    return {"python": ".".join(map(str, sys.version_info[:2])), "torch": torch.__version__,
            "transformers": transformers.__version__, "tokenizers": tokenizers.__version__}


def _train_tasks(spec: TinySpec) -> list[Task]:
    from tasks.synthetic import generate_synth

    return [t for t in generate_synth(spec.n_train, spec.n_eval, spec.suite_seed, n_fresh=0)
            if t.split == "train"]


def cache_key(spec: TinySpec, tasks: list[Task] | None = None) -> str:
    """Hash of the recipe, the exact training text, the stdlib files and versions."""
    tasks = tasks if tasks is not None else _train_tasks(spec)
    h = hashlib.sha256()
    h.update(json.dumps({"recipe": RECIPE_VERSION, "spec": dataclasses.asdict(spec),
                         "threads": BUILD_THREADS, "versions": _versions()},
                        sort_keys=True).encode())
    for t in tasks:
        h.update(t.prompt.encode())
        h.update(b"\x00")
        h.update(t.canonical_solution.encode())
        h.update(b"\x01")
    for f in stdlib_files(spec.n_stdlib_files):
        h.update(f"{f.name}:{f.stat().st_size}\n".encode())
    return h.hexdigest()[:20]


def find_tiny_model(cache_dir: str | None = None, spec: TinySpec | None = None) -> Path | None:
    """The cached build for `spec`, or None when it has not been built."""
    spec = spec or TinySpec()
    target = default_cache_root(cache_dir) / "tiny" / cache_key(spec)
    return target if _complete(target) else None


def ensure_tiny_model(cache_dir: str | None = None, progress: bool = True,
                      spec: TinySpec | None = None, force: bool = False) -> Path:
    """Directory of the built model (config, weights, tokenizer); builds on a miss.

    force: rebuild even when cached (the old copy is replaced only once the new one
    is complete).
    """
    spec = spec or TinySpec()
    tasks = _train_tasks(spec)
    root = default_cache_root(cache_dir) / "tiny"
    target = root / cache_key(spec, tasks)
    if not force and _complete(target):
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create the model cache {root} ({exc.strerror}); "
                                 "pass --cache-dir or set COLLAPSE_BENCH_CACHE to a writable "
                                 "directory") from None
    with _locked(root / f"{target.name}.lock"):
        if not force and _complete(target):  # built by another process meanwhile
            return target
        if progress:
            print(f"building {builtin_label(spec)} into {target} (one-off; on 2 CPU cores "
                  "about 15 min for the default recipe, 2.5 min for --hidden-size 64)",
                  file=sys.stderr)
        # --force replaces a complete build of this key; nothing else is ours to delete.
        atomic_replace_dir(lambda tmp: build_tiny_model(spec, tasks, tmp, progress=progress),
                           target, owns=_complete)
    return target


def builtin_model_dir(which: str, cache_dir: str | None = None, progress: bool = True) -> Path:
    """The directory `builtin:<which>` loads from: the verified shipped copy for
    "tiny", a cached build of BUILTIN_SPECS[which] (built on a miss) otherwise."""
    if which == "tiny":
        return shipped_tiny_model()
    return ensure_tiny_model(cache_dir, progress=progress, spec=BUILTIN_SPECS[which])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _corrupted(directory: Path, why: str) -> EnvironmentProblem:
    return EnvironmentProblem(f"builtin:tiny's shipped weights in {directory} are corrupted "
                              f"({why}); {REBUILD_HINT}")


def shipped_tiny_model(directory: Path | None = None) -> Path:
    """The shipped `builtin:tiny` directory, after checking it against its SHA256SUMS.

    Every listed file must exist with its sha256, and every file there must be
    listed (from_pretrained would read a stray one). Hashing ~3 MB costs a few
    milliseconds, so it is done at every load: a corrupted copy can never be used.
    """
    directory = Path(directory) if directory is not None else SHIPPED_TINY_DIR
    try:
        listing = (directory / SUMS_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not text"
        raise _corrupted(directory, f"cannot read {SUMS_FILE}: {why}") from None
    expected: dict[str, str] = {}
    for line in listing.splitlines():
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name or "/" in name or name in expected:
            raise _corrupted(directory, f"malformed {SUMS_FILE} line {line[:80]!r}")
        expected[name] = digest
    present = {p.name for p in directory.iterdir()} - {SUMS_FILE}
    if present - expected.keys():
        raise _corrupted(directory, f"unlisted file {sorted(present - expected.keys())[0]!r}")
    for name, digest in expected.items():
        path = directory / name
        if not path.is_file():
            raise _corrupted(directory, f"{name} is missing")
        if _sha256(path) != digest:
            raise _corrupted(directory, f"{name}: sha256 mismatch")
    return directory


def write_sums(directory: Path) -> Path:
    """Write `directory`/SHA256SUMS over every other file (the `sha256sum -c` format)."""
    names = sorted(p.name for p in directory.iterdir() if p.is_file() and p.name != SUMS_FILE)
    text = "".join(f"{_sha256(directory / n)}  {n}\n" for n in names)
    (directory / SUMS_FILE).write_text(text, encoding="utf-8")
    return directory / SUMS_FILE


def ship_tiny_model(source: Path, target: Path | None = None) -> Path:
    """Replace the shipped copy (default SHIPPED_TINY_DIR) by the build in `source`,
    with fresh sums; atomically, so a failure leaves the old copy. Returns target."""
    target = Path(target) if target is not None else SHIPPED_TINY_DIR

    def fill(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        for path in sorted(Path(source).iterdir()):
            if path.is_file() and path.name != SUMS_FILE:
                shutil.copyfile(path, tmp / path.name)
        write_sums(tmp)

    atomic_replace_dir(fill, target, owns=lambda d: (d / SUMS_FILE).is_file())
    return shipped_tiny_model(target)


def _complete(path: Path) -> bool:
    return (path / "build_info.json").is_file()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (POSIX flock); a no-op where fcntl does not exist."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def train_tokenizer(spec: TinySpec, tasks: list[Task]) -> PreTrainedTokenizerFast:
    """Byte-level BPE with one special token, `<|endoftext|>`, as BOS, EOS and PAD.

    Byte-level means any text round-trips exactly (no unknown tokens), which the
    sandbox needs: a completion must decode to the very code that was sampled.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [t.prompt + t.canonical_solution for t in tasks]
    for f in stdlib_files(spec.n_stdlib_files):
        texts.append(f.read_text(encoding="utf-8", errors="replace")[:spec.stdlib_max_chars])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=spec.vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    eos_id = tok.token_to_id(EOS)
    tok.post_processor = processors.TemplateProcessing(single=f"{EOS} $A",
                                                       special_tokens=[(EOS, eos_id)])
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS,
                                      pad_token=EOS, padding_side="left",
                                      clean_up_tokenization_spaces=False)
    return wrapped


def build_tiny_model(spec: TinySpec, tasks: list[Task], out_dir: Path,
                     progress: bool = True) -> dict[str, object]:
    """Tokenizer + random-init Llama + pretraining (none when spec.steps is 0), saved
    to out_dir; returns build info. Runs on BUILD_THREADS torch threads (restored
    afterwards), so the weights do not depend on the caller's thread setting."""
    from harness.model.runtime import pinned_threads

    with pinned_threads(BUILD_THREADS):
        return _build(spec, tasks, out_dir, progress)


def _build(spec: TinySpec, tasks: list[Task], out_dir: Path,
           progress: bool) -> dict[str, object]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from harness.model.runtime import quiet_transformers
    from harness.model.training import LoopSettings, encode_example, train_loop

    started = time.perf_counter()
    tokenizer = train_tokenizer(spec, tasks)
    eos_id = int(tokenizer.eos_token_id)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers, num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads, intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_positions, tie_word_embeddings=True,
        bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id)
    examples = [encode_example(tokenizer, t.prompt, t.canonical_solution, spec.max_positions)
                for t in tasks]
    settings = LoopSettings(lr=spec.learning_rate, weight_decay=spec.weight_decay,
                            betas=spec.betas, batch_size=spec.batch_size,
                            max_steps=spec.steps, warmup_steps=spec.warmup_steps,
                            max_grad_norm=spec.max_grad_norm, completion_only=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = LlamaForCausalLM(config)
        stats = (train_loop(model, examples, settings, spec.seed, eos_id,
                            progress="pretraining builtin:tiny" if progress else False)
                 if spec.steps > 0 else None)
    model.generation_config.eos_token_id = eos_id
    model.generation_config.pad_token_id = eos_id
    out_dir.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(str(out_dir))
        tokenizer.save_pretrained(str(out_dir))
    tail = stats.losses[-10:] if stats else []
    info: dict[str, object] = {
        "recipe": RECIPE_VERSION, "spec": dataclasses.asdict(spec), "versions": _versions(),
        "threads": BUILD_THREADS,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_examples": len(examples) if stats else 0,
        "train_tokens": stats.tokens if stats else 0,
        "final_loss": sum(tail) / len(tail) if tail else None,
        "train_seconds": round(stats.seconds, 1) if stats else 0.0,
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    (out_dir / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def build_info(model_dir: str | Path) -> dict[str, object]:
    """The build_info.json of a built tiny model."""
    return json.loads((Path(model_dir) / "build_info.json").read_text())
