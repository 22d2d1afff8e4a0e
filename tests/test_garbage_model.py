"""A model that writes pure garbage runs to the end (issue 9), through the real CLI.

`builtin:random` is the built-in architecture and tokenizer with seeded random
weights and no pretraining: byte-level tokens drawn nearly uniformly, so its text
holds NUL and other control bytes, U+FFFD from split UTF-8 sequences, unbalanced
brackets and quotes - everything tasks/model_text.py is about. Two generations go
through sampling, the Docker sandbox, every kind of filter (the `tests` arm keeps
nothing, so it also trains on an empty set), LoRA training and scoring; every
generation must write its metrics. A pass@1 of 0 is expected and fine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())"]
FILTERS = ["none", "tests", "syntax+dedup"]
GENERATIONS = 2


@pytest.mark.slow
@pytest.mark.docker
def test_random_model_completes_two_generations(tmp_path: Path,
                                                docker_executor: object) -> None:
    # docker_executor: skip (or fail under REQUIRE_DOCKER=1) without the sandbox
    out = tmp_path / "results"
    started = time.perf_counter()
    proc = subprocess.run(
        [*CLI, "run", "--model", "builtin:random", "--model.cache-dir", str(tmp_path / "cache"),
         "--model.threads", "1", "--generations", str(GENERATIONS),
         "--filters", ",".join(FILTERS), "--train-prompts", "16", "--n-train", "2",
         "--eval-tasks", "8", "--n-eval", "4", "--k", "1,2",
         "--temperature", "1.0", "--train-temperature", "1.0",
         "--epochs", "1", "--training.batch-size", "8",
         "--sandbox.pool-size", "2", "--sandbox.timeout-s", "3", "--out", str(out)],
        capture_output=True, text=True, timeout=600, check=False)
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "SyntaxWarning" not in proc.stderr and "DeprecationWarning" not in proc.stderr

    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    arm_dirs = sorted((run_dir / "arms").iterdir())
    assert len(arm_dirs) == len(FILTERS)
    hostile = 0
    for arm_dir in arm_dirs:
        for g in range(GENERATIONS + 1):
            gen = arm_dir / f"gen-{g}"
            assert (gen / "DONE").exists(), gen
            metrics = json.loads((gen / "metrics.json").read_text(encoding="utf-8"))
            pass1 = metrics["pass_at_k"]["pass@1"]
            assert 0.0 <= pass1 <= 1.0
            for name in ("samples.jsonl", "verdicts.jsonl"):
                text = (gen / name).read_bytes().decode("utf-8")  # strict: valid UTF-8
                rows = [json.loads(line) for line in text.splitlines() if line.strip()]
                assert rows, gen / name
            completions = [json.loads(line)["completion"] for line in
                           (gen / "samples.jsonl").read_text(encoding="utf-8").split("\n")
                           if line.strip()]
            hostile += sum(any(c == "\ufffd" or (ord(c) < 32 and c not in "\n\t")
                               for c in s) for s in completions)
    assert hostile > 0, "the random model wrote only clean text; the test proves nothing"
    assert (run_dir / "summary.json").exists()
    print(f"\ngarbage-model run: {elapsed:.1f}s, {hostile} completions with control "
          "characters or U+FFFD")
