"""The generational loop end to end: real small model, real LoRA steps, real sandbox.

The kill -9 test is the contract of `--resume`: a run killed mid-generation and
resumed ends with exactly the metrics of an uninterrupted run with the same seed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.config import ModelConfig, RunConfig, save_toml
from harness.experiment.loop import run_experiment
from harness.metrics.record import MACHINE_MEASURES
from harness.model import sampling
from harness.model.formats import PromptFormat
from harness.model.loading import load_model
from harness.model.tiny import ensure_tiny_model
from harness.model.training import perplexity
from harness.runfiles.store import read_json
from tasks.registry import load_suite, select_split
from tests.model_helpers import SMALL_SPEC

SUITE = f"synth:n_train={SMALL_SPEC.n_train},n_eval={SMALL_SPEC.n_eval},seed=0"
CLI = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("model-cache")
    return ensure_tiny_model(str(cache), progress=False, spec=SMALL_SPEC)


def small_config(model_dir: Path, out: Path, **changes: object) -> RunConfig:
    cfg = RunConfig()
    cfg.model.name = str(model_dir)
    cfg.model.threads = 1
    cfg.train_suite = cfg.eval_suite = SUITE
    cfg.generations, cfg.train_prompts, cfg.n_train = 2, 16, 2
    cfg.eval_tasks, cfg.n_eval, cfg.ks = 8, 4, [1, 2]
    cfg.filters = ["tests"]
    cfg.sampling.max_new_tokens = 48
    cfg.training.epochs, cfg.training.batch_size = 2, 8
    cfg.sandbox.pool_size, cfg.sandbox.timeout_s = 2, 3.0
    cfg.out = str(out)
    for key, value in changes.items():
        setattr(cfg, key, value)
    return cfg


def comparable(metrics: dict) -> dict:
    """A generation's metrics without what measures the machine (times, memory): the
    only things allowed to differ."""
    return {k: v for k, v in metrics.items() if k not in MACHINE_MEASURES}


def final_metrics(run_dir: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for arm_dir in sorted((run_dir / "arms").iterdir()):
        gens = sorted(arm_dir.glob("gen-*"), key=lambda p: int(p.name.split("-")[1]))
        out[arm_dir.name] = [comparable(read_json(g / "metrics.json")) for g in gens]
    return out


def only_run(out: Path) -> Path:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


@pytest.mark.slow
@pytest.mark.docker
def test_kill_9_mid_generation_then_resume_gives_identical_metrics(
        small_model: Path, tmp_path: Path, docker_executor: object) -> None:
    config_file = tmp_path / "config.toml"
    save_toml(small_config(small_model, tmp_path / "unused"), config_file)

    subprocess.run([*CLI, "run", "--config", str(config_file), "--out", str(tmp_path / "a")],
                   check=True, capture_output=True, timeout=600)
    reference = final_metrics(only_run(tmp_path / "a"))

    victim = subprocess.Popen([*CLI, "run", "--config", str(config_file),
                               "--out", str(tmp_path / "b")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    marker = None
    while time.monotonic() < deadline and victim.poll() is None:
        hits = list((tmp_path / "b").glob("*/arms/*/gen-2/kept.jsonl"))
        if hits:
            marker = hits[0]
            break
        time.sleep(0.02)
    assert marker is not None, "the run never reached generation 2"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    run_dir = only_run(tmp_path / "b")
    assert not (marker.parent / "DONE").exists(), "killed too late: generation 2 had finished"
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "running"

    resumed = subprocess.run([*CLI, "run", "--resume", str(run_dir)], capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert final_metrics(run_dir) == reference
    assert read_json(run_dir / "manifest.json")["status"] == "complete"


@pytest.mark.slow
@pytest.mark.docker
def test_grid_with_accumulate_real_data_and_continue_policy(
        small_model: Path, tmp_path: Path, docker_executor: object,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = small_config(small_model, tmp_path, filters=["none", "partial:0.5+dedup"],
                       regimes=["accumulate"], real_fractions=[0.5])
    cfg.training.restart = "continue"
    lines: list[str] = []
    drawn: list[str] = []
    real_sample = sampling.sample_completions

    def spied(*args: object, **kwargs: object) -> object:
        drawn.append(str(kwargs.get("progress")))
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(sampling, "sample_completions", spied)
    store = run_experiment(cfg, docker_executor, lines.append)  # type: ignore[arg-type]

    summary = read_json(store.root / "summary.json")
    assert set(summary["arms"]) == {"f-none__r-accumulate__real-0.5__s-0",
                                    "f-partial_0.5_dedup__r-accumulate__real-0.5__s-0"}
    for arm_id, arm in summary["arms"].items():
        assert arm["complete"] and len(arm["generations"]) == 3
        gen0, _, gen2 = arm["generations"]
        assert gen0 == {**gen0, "filter": None, "n_train_examples": 0}
        assert 0.0 <= gen2["pass_at_k"]["pass@1"] <= 1.0 and gen2["perplexity"] > 1.0
        assert set(gen2["filter"]) >= {"acceptance_rate", "precision", "recall"}
        train1 = [json.loads(x) for x in
                  (store.gen_dir(arm_id, 1) / "train.jsonl").read_text().splitlines()]
        train2 = [json.loads(x) for x in
                  (store.gen_dir(arm_id, 2) / "train.jsonl").read_text().splitlines()]
        self1 = [r for r in train1 if r["source"] == "self"]
        self2 = [r for r in train2 if r["source"] == "self"]
        # accumulate: generation 2 trains on generation 1's kept data too
        assert self2[: len(self1)] == self1 and len(self2) >= len(self1)
        # real fraction 0.5: as many human examples as self-generated ones
        assert sum(r["source"] == "real" for r in train2) == len(self2)
        assert gen2["n_train_examples"] == len(train2)
        assert (store.gen_dir(arm_id, 2) / "adapter" / "adapter_config.json").is_file()
    # generation 0 is the same base model for every arm of a seed: computed once, shared
    gens0 = [comparable(a["generations"][0]) for a in summary["arms"].values()]
    assert {**gens0[0], "arm_id": ""} == {**gens0[1], "arm_id": ""}
    # so is generation 1's train draw (of M0): drawn once, and both arms train on it
    assert drawn.count("gen 1 sample train") == 1 and drawn.count("gen 2 sample train") == 2
    samples1 = [[json.loads(x) for x in (store.gen_dir(a, 1) / "samples.jsonl").read_text()
                 .splitlines()] for a in summary["arms"]]
    assert [[r for r in rows if r["split"] == "train"] for rows in samples1] == [
        [r for r in samples1[0] if r["split"] == "train"]] * 2
    # and a program run before is answered from the run's memory of verdicts
    (tally,) = [line for line in lines if line.startswith("sandbox: ")]
    assert int(tally.split("; ")[1].split()[0]) > 0, tally
    manifest = read_json(store.root / "manifest.json")
    assert manifest["status"] == "complete"
    # the thread count can change a run's bits: each generation records the one it used
    done = [step for step in manifest["steps"].values() if step["status"] == "done"]
    assert len(done) == 6 and all(step["torch_threads"] == 1 for step in done)

    # `model export` rebuilds generation 2 exactly as the loop scored it
    arm_id = "f-none__r-accumulate__real-0.5__s-0"
    assert main(["model", "export", str(store.root), "--arm", arm_id, "--generation", "2",
                 "--out", str(tmp_path / "exported")]) == 0
    exported, tok = load_model(ModelConfig(name=str(tmp_path / "exported")))
    refs = [(t.prompt, t.canonical_solution)
            for t in select_split(load_suite(SUITE), "eval")[: cfg.eval_tasks]]
    fmt = PromptFormat.resolve(tok, cfg.sampling.prompt_format, cfg.sampling.prompt_boundary)
    assert perplexity(exported, tok, refs, fmt=fmt) == pytest.approx(
        summary["arms"][arm_id]["generations"][2]["perplexity"], rel=1e-5)
    assert any(k.endswith("gen-2/train.jsonl") for k in manifest["datasets"])
    assert any(line.startswith("gen 2:") for line in lines)
