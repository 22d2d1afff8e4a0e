"""builtin:tiny: the shipped, checksummed copy; the recipe's tokenizer, cache key,
atomic cached build, loading, variants.

The full recipe takes minutes (see `collapse-bench model build`); these tests run
the same code on `SMALL_SPEC`, a scaled-down recipe that builds in seconds.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.config import ModelConfig, SamplingConfig
from harness.errors import BadInput, EnvironmentProblem
from harness.experiment.heldout import evaluate_heldout
from harness.model import tiny
from harness.model.loading import load_model, resolve_model_path
from harness.model.runtime import count_parameters
from harness.model.sampling import sample_completions
from harness.model.tiny import (
    BUILD_THREADS,
    RECIPE_VERSION,
    SHIPPED_TINY_DIR,
    SUMS_FILE,
    TinySpec,
    build_info,
    cache_key,
    ensure_tiny_model,
    find_tiny_model,
    ship_tiny_model,
    shipped_tiny_model,
    train_tokenizer,
    variant_spec,
)
from tests.model_helpers import SMALL_SPEC, eval_split, train_split


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    cache = tmp_path_factory.mktemp("cache")
    started = time.perf_counter()
    path = ensure_tiny_model(str(cache), progress=False, spec=SMALL_SPEC)
    return cache, path, time.perf_counter() - started


def test_tokenizer_round_trips_and_shares_one_special_token() -> None:
    tok = train_tokenizer(dataclasses.replace(SMALL_SPEC, n_stdlib_files=2), train_split())
    assert len(tok) == SMALL_SPEC.vocab_size
    assert tok.bos_token == tok.eos_token == tok.pad_token == "<|endoftext|>"
    assert tok.padding_side == "left"
    for text in ["def f(x):\n    return [v * 2 for v in x]\n", "  \t\n\n  x  =  1 ,\n",
                 "s = 'ünïcödé 😀 ∑'  # ok .", ""]:
        ids = tok(text)["input_ids"]
        assert ids[0] == tok.bos_token_id
        assert tok.decode(ids, skip_special_tokens=True) == text
    # the suite's text is what the merges were learned from: it compresses well
    sample = train_split()[0]
    body = sample.prompt + sample.canonical_solution
    assert len(tok(body)["input_ids"]) < len(body) / 2


def test_cache_key_covers_the_recipe() -> None:
    assert cache_key(SMALL_SPEC) == cache_key(dataclasses.replace(SMALL_SPEC))
    for change in ({"steps": 41}, {"seed": 1}, {"vocab_size": 401}, {"n_train": 301},
                   {"hidden_size": 32}, {"learning_rate": 1e-3}):
        assert cache_key(dataclasses.replace(SMALL_SPEC, **change)) != cache_key(SMALL_SPEC)


def test_build_then_cache_hit_then_load(built: tuple[Path, Path, float],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cache, path, _ = built
    assert path.parent == cache / "tiny" and path.name == cache_key(SMALL_SPEC)
    assert find_tiny_model(str(cache), SMALL_SPEC) == path
    info = build_info(path)
    assert info["train_examples"] == len(train_split())
    assert info["final_loss"] < 0.8 * torch.log(torch.tensor(float(SMALL_SPEC.vocab_size)))
    # nothing but the finished build and its lock in the cache
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, f"{path.name}.lock"]

    # a cache hit builds nothing (asserted, not timed: a loaded machine is slow anyway)
    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cache hit rebuilt the model")

    monkeypatch.setattr(tiny, "build_tiny_model", no_build)
    assert ensure_tiny_model(str(cache), progress=False, spec=SMALL_SPEC) == path

    model, tok = load_model(ModelConfig(name=str(path)), progress=False)
    assert model.config.model_type == "llama" and model.config.tie_word_embeddings
    assert model.config.max_position_embeddings == SMALL_SPEC.max_positions
    assert count_parameters(model) == info["parameters"]
    prompts = [t.prompt for t in eval_split()[:3]]
    out = sample_completions(model, tok, prompts, 2, SamplingConfig(max_new_tokens=24), seed=0)
    assert [len(per) for per in out] == [2, 2, 2]


def test_builds_are_deterministic(built: tuple[Path, Path, float], tmp_path: Path) -> None:
    """Two builds of one spec in one process: bit-identical weights and tokenizer,
    whatever torch's thread count was set to by the code before each build.

    The weights depend on the thread count (SMALL_SPEC differs at 3 threads from 1,
    2 and 4), so the second build runs with another count than the first: the build
    must pin its own (harness.model.tiny.BUILD_THREADS) and give the setting back.
    """
    _, first, _ = built
    before = torch.get_num_threads()
    other = 3 if before != 3 else 2
    torch.set_num_threads(other)
    try:
        second = ensure_tiny_model(str(tmp_path), progress=False, spec=SMALL_SPEC)
        assert torch.get_num_threads() == other
    finally:
        torch.set_num_threads(before)
    assert second != first
    assert build_info(first)["threads"] == build_info(second)["threads"] == BUILD_THREADS
    a, _ = load_model(ModelConfig(name=str(first)), progress=False)
    b, _ = load_model(ModelConfig(name=str(second)), progress=False)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                   b.state_dict().values(), strict=True))
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_builtin_tiny_is_the_shipped_copy(tmp_path: Path) -> None:
    """No build and no cache: builtin:tiny loads the package's verified files, and
    loading it twice gives the very same tensors."""
    cache = tmp_path / "cache"
    cfg = ModelConfig(name="builtin:tiny", cache_dir=str(cache))
    assert Path(resolve_model_path(cfg, progress=False)) == SHIPPED_TINY_DIR
    a = _state(load_model(cfg, progress=False)[0])
    b = _state(load_model(cfg, progress=False)[0])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not cache.exists()


def test_shipped_copy_is_the_current_recipe() -> None:
    """A recipe change (RECIPE_VERSION or TinySpec) must come with a re-shipped copy
    (`collapse-bench model build --ship`)."""
    info = build_info(shipped_tiny_model())
    assert info["recipe"] == RECIPE_VERSION
    assert info["spec"] == json.loads(json.dumps(dataclasses.asdict(TinySpec())))
    names = sorted(p.name for p in SHIPPED_TINY_DIR.iterdir())
    assert {"config.json", "model.safetensors", "tokenizer.json", "build_info.json",
            SUMS_FILE} <= set(names)
    listed = [line.split("  ")[1] for line in (SHIPPED_TINY_DIR / SUMS_FILE).read_text()
              .splitlines()]
    assert listed == [n for n in names if n != SUMS_FILE]
    size = sum(p.stat().st_size for p in SHIPPED_TINY_DIR.iterdir())
    assert size < 5_000_000


def _shipped_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "tiny"
    shutil.copytree(SHIPPED_TINY_DIR, copy)
    return copy


def test_a_corrupted_shipped_copy_fails_loudly(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    copy = _shipped_copy(tmp_path)
    assert shipped_tiny_model(copy) == copy
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(EnvironmentProblem) as info:
        shipped_tiny_model(copy)
    message = str(info.value)
    assert "corrupted" in message and "model.safetensors: sha256 mismatch" in message
    assert "model build --ship" in message and "\n" not in message

    # through the loader and the CLI: exit 3, one line
    monkeypatch.setattr("harness.model.tiny.SHIPPED_TINY_DIR", copy)
    with pytest.raises(EnvironmentProblem, match="corrupted"):
        load_model(ModelConfig(name="builtin:tiny"), progress=False)
    assert main(["model", "info", "--model", "builtin:tiny"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: builtin:tiny's shipped weights") and "\n" not in err


@pytest.mark.parametrize("damage", ["missing file", "stray file", "no sums", "bad sums"])
def test_shipped_copy_must_match_its_listing(tmp_path: Path, damage: str) -> None:
    copy = _shipped_copy(tmp_path)
    expect = {"missing file": "tokenizer.json is missing", "stray file": "unlisted file",
              "no sums": f"cannot read {SUMS_FILE}", "bad sums": f"malformed {SUMS_FILE}"}
    if damage == "missing file":
        (copy / "tokenizer.json").unlink()
    elif damage == "stray file":
        (copy / "adapter_config.json").write_text("{}")
    elif damage == "no sums":
        (copy / SUMS_FILE).unlink()
    else:
        (copy / SUMS_FILE).write_text("not a sum line\n")
    with pytest.raises(EnvironmentProblem, match=expect[damage]):
        shipped_tiny_model(copy)


def test_ship_writes_a_verified_copy(built: tuple[Path, Path, float], tmp_path: Path) -> None:
    _, path, _ = built
    target = tmp_path / "pkg" / "tiny"
    assert ship_tiny_model(path, target) == target
    assert shipped_tiny_model(target) == target
    for p in path.iterdir():
        assert (target / p.name).read_bytes() == p.read_bytes()
    # shipping again replaces the copy in place (old files do not linger)
    (target / "stale.txt").write_text("x")
    ship_tiny_model(path, target)
    assert not (target / "stale.txt").exists()
    a = _state(load_model(ModelConfig(name=str(target)), progress=False)[0])
    b = _state(load_model(ModelConfig(name=str(path)), progress=False)[0])
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_variant_specs() -> None:
    assert variant_spec() == TinySpec()
    wide = variant_spec(hidden_size=64, num_layers=2)
    assert (wide.hidden_size, wide.num_layers, wide.intermediate_size) == (64, 2, 128)
    assert dataclasses.replace(wide, hidden_size=128, num_layers=4,
                               intermediate_size=256) == TinySpec()
    assert cache_key(wide) != cache_key(TinySpec())
    for bad in ({"hidden_size": 12}, {"hidden_size": 0}, {"num_layers": 0}):
        with pytest.raises(BadInput):
            variant_spec(**bad)


def test_model_build_refuses_bad_variants_before_building(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["--hidden-size", "100"], ["--layers", "0"],
                 ["--ship", "--hidden-size", "64"]):
        assert main(["model", "build", "--no-eval", "--cache-dir", str(tmp_path), *args]) == 2
        assert capsys.readouterr().err.startswith("error: ")
    assert not any(tmp_path.iterdir())


def test_a_crashed_build_leaves_nothing_behind(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.model.training

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(harness.model.training, "train_loop", crash)
    spec = dataclasses.replace(SMALL_SPEC, steps=3)
    with pytest.raises(RuntimeError, match="power cut"):
        ensure_tiny_model(str(tmp_path), progress=False, spec=spec)
    assert find_tiny_model(str(tmp_path), spec) is None
    assert [p.name for p in (tmp_path / "tiny").iterdir()] == [f"{cache_key(spec)}.lock"]


def test_unwritable_cache_is_an_environment_problem(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(EnvironmentProblem, match="cannot create the model cache"):
        ensure_tiny_model(str(blocker / "cache"), progress=False, spec=SMALL_SPEC)


def test_default_spec_is_the_documented_recipe() -> None:
    spec = TinySpec()
    assert (spec.n_train, spec.n_eval, spec.vocab_size, spec.hidden_size, spec.num_layers,
            spec.num_heads, spec.intermediate_size, spec.max_positions) == \
        (4000, 200, 1024, 128, 4, 4, 256, 256)
    assert (spec.steps, spec.batch_size, spec.learning_rate, spec.warmup_steps) == \
        (300, 64, 2e-3, 30)


def test_heldout_evaluation_scores_real_executions(built: tuple[Path, Path, float],
                                                   local_executor: object) -> None:
    _, path, _ = built
    result = evaluate_heldout(path, local_executor, spec=SMALL_SPEC, n=2, progress=False)
    assert result.n_tasks == len(eval_split()) and result.n_samples == 2 * result.n_tasks
    assert list(result.pass_at_k) == ["pass@1"]  # pass@10 needs n >= 10
    assert 0.0 <= result.pass_at_k["pass@1"] <= 1.0


@pytest.mark.slow
@pytest.mark.docker
def test_shipped_builtin_tiny_meets_its_targets(docker_executor: object) -> None:
    """What every run loads: the shipped copy, verified against its SHA256SUMS, meets
    the held-out targets (pass@1 >= 0.35, pass@10 >= 0.7 at T=0.8, n=10, executed in
    the Docker sandbox) on a fixed fifth of the eval split, 40 tasks.

    The sums pin the weights; this pins that loading and sampling them still gives the
    model the targets describe. On all 200 tasks it scores pass@1 0.477, pass@10
    0.855; on this fifth 0.463 and 0.900 (2026-12-02), at a fifth of the cost.
    Rebuilding the weights from the recipe is the release test below.
    """
    result = evaluate_heldout(shipped_tiny_model(), docker_executor, n=10, temperature=0.8,
                              progress=False, every=5)
    assert result.n_tasks == 40
    print(f"shipped builtin:tiny: {result.pass_at_k}")
    assert result.pass_at_k["pass@1"] >= 0.35
    assert result.pass_at_k["pass@10"] >= 0.7


@pytest.mark.release
@pytest.mark.docker
def test_full_builtin_tiny_rebuild_meets_its_targets(tmp_path: Path,
                                                     docker_executor: object) -> None:
    """The real recipe, rebuilt from nothing (`make release-check`, not `make test`: a
    few minutes alone on 2 cores, tens of minutes on a loaded machine): held-out
    pass@1 >= 0.35 and pass@10 >= 0.7 at T=0.8, n=10, in the Docker sandbox.

    Whether the rebuild is bit-identical to the shipped copy is printed, not asserted:
    torch does not promise the same bits across machines and versions (see
    harness.model.tiny), and the shipped copy is what the sums guard.
    """
    started = time.perf_counter()
    path = ensure_tiny_model(str(tmp_path), progress=False)
    build_seconds = time.perf_counter() - started
    result = evaluate_heldout(path, docker_executor, n=10, temperature=0.8, progress=False)
    same = ((path / "model.safetensors").read_bytes()
            == (SHIPPED_TINY_DIR / "model.safetensors").read_bytes())
    print(f"rebuild {build_seconds:.0f} s, {result.pass_at_k}, "
          f"{'bit-identical to' if same else 'differs from'} the shipped weights")
    assert result.pass_at_k["pass@1"] >= 0.35
    assert result.pass_at_k["pass@10"] >= 0.7
