"""A real (small) run, checked against the documentation and issue 10's contracts.

One experiment with a real small model, real sampling and the real (local)
sandbox runs once per module with `--epochs 0`, the no-training control. It pins:
results/README.md documents exactly the keys the files have; summary.json says
how many eval problems were used; with no training every generation's eval
samples are generation 0's (the eval seed is held fixed: common random numbers);
`--resume` on a complete run exits 0 without loading anything; Ctrl-C prints the
command that resumes the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.config import RunConfig, save_toml
from harness.model.tiny import ensure_tiny_model
from harness.runfiles.store import read_json
from tests.model_helpers import SMALL_SPEC

REPO = Path(__file__).resolve().parent.parent
SUITE = f"synth:n_train={SMALL_SPEC.n_train},n_eval={SMALL_SPEC.n_eval},seed=0"
ARM = "f-none__r-replace__real-0.0__s-0"
CLI = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())"]


def small_config(model_dir: Path, out: Path, generations: int = 1, epochs: int = 0) -> RunConfig:
    cfg = RunConfig(train_suite=SUITE, eval_suite=SUITE, generations=generations,
                    train_prompts=8, n_train=2, eval_tasks=6, n_eval=3, ks=[1, 2],
                    filters=["none"], executor="local", out=str(out))
    cfg.model.name, cfg.model.threads = str(model_dir), 1
    cfg.sampling.max_new_tokens = 32
    cfg.training.epochs, cfg.training.batch_size = epochs, 8
    cfg.sandbox.pool_size, cfg.sandbox.timeout_s = 2, 3.0
    return cfg


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tiny_model(str(tmp_path_factory.mktemp("model-cache")), progress=False,
                             spec=SMALL_SPEC)


@pytest.fixture(scope="module")
def ablate_run(small_model: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> tuple[Path, str]:
    """The run directory and what `ablate` printed (the config file sets the grid)."""
    root = tmp_path_factory.mktemp("run")
    save_toml(small_config(small_model, root / "results"), root / "config.toml")
    printed, errors = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(errors):
        assert main(["ablate", "--config", str(root / "config.toml")]) == 0
    (run,) = (root / "results").iterdir()
    ABLATE_STDERR[run] = errors.getvalue()
    return run, printed.getvalue()


ABLATE_STDERR: dict[Path, str] = {}
"""What the module's ablate run printed on stderr (its progress lines and the hint)."""


@pytest.fixture(scope="module")
def run_dir(ablate_run: tuple[Path, str]) -> Path:
    return ablate_run[0]


def test_ablate_ends_with_a_comparison_table(ablate_run: tuple[Path, str]) -> None:
    _, printed = ablate_run
    table = printed.split("comparison of arm groups")[1].splitlines()
    assert table[1].split()[:4] == ["rank", "arm", "group", "seeds"]
    assert table[2].split()[:3] == ["1", "none", "1"]


def test_a_finished_run_says_what_to_do_next(run_dir: Path) -> None:
    """Issue 25: a run ended on its tables with no word of `report` or `export`."""
    last = ABLATE_STDERR[run_dir].strip().splitlines()[-2:]
    assert last[0].split()[:4] == ["next:", "collapse-bench", "report", str(run_dir)]
    assert last[1].split()[:5] == ["collapse-bench", "export", str(run_dir), "--out",
                                   "entry.json"]


def test_the_progress_lines_are_kept_in_run_log(run_dir: Path) -> None:
    """Issue 25: what stderr showed was lost unless redirected. run.log holds every
    progress line the run printed (time-stamped), in order."""
    logged = [line.split(" ", 1)[1] for line in
              (run_dir / "run.log").read_text().splitlines()]
    printed = ABLATE_STDERR[run_dir].splitlines()
    plan, first, *rest = logged
    assert plan in printed and first == f"run directory: {run_dir}"
    assert any(line.startswith("gen 1: pass@1=") for line in rest)
    assert logged[1:] == printed[printed.index(first):][:len(logged) - 1]


def test_every_generation_says_where_the_run_is(run_dir: Path) -> None:
    """Issue 25: a local run printed no overall position and no time left. After each
    generation one line counts the generations scored, names the arm and generation,
    and, while some are left, estimates the time from this run's measured pace."""
    lines = [line for line in ABLATE_STDERR[run_dir].splitlines()
             if line.startswith("progress: ")]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
    assert "(arm 1/1 " in lines[0] and "generation 0/1)" in lines[0]
    assert "about " in lines[0] and "left (1 to compute at " in lines[0]
    assert "left" not in lines[1]  # nothing is left to estimate


def test_a_plan_is_timed_from_the_rates_a_run_measured(
        run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 25: a plan said how much work, never how long. The first run under an
    --out has no rates to go by and says so; a dry run of twice the generations and
    arms under the same --out is timed from that run's measured phases."""
    printed = ABLATE_STDERR[run_dir].splitlines()
    assert any(line.startswith("estimate: none yet (no run of ") for line in printed)
    model_dir = Path(read_json(run_dir / "manifest.json")["model"]["name"])
    cfg = small_config(model_dir, run_dir.parent)
    save_toml(cfg, run_dir.parent.parent / "again.toml")
    assert main(["run", "--config", str(run_dir.parent.parent / "again.toml"), "--dry-run",
                 "--generations", "2", "--seeds", "0,1"]) == 0
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("estimate: ")]
    assert line.startswith("estimate: about ") and f"at the rates {run_dir} measured" in line

    from harness.experiment.estimate import estimate_s, measured_rates

    rates = measured_rates(cfg, None)
    assert rates is not None and rates.source == run_dir
    one = estimate_s(cfg, rates, 6, set())
    cfg.generations, cfg.seeds = 2, [0, 1]
    two = estimate_s(cfg, rates, 6, set())
    # gen 0 once per seed; self-training generations twice as many, per seed
    zero = estimate_s(dataclasses.replace(cfg, generations=0, seeds=[0]), rates, 6, set())
    assert two > one > zero > 0 and two == pytest.approx(2 * one + 2 * (one - zero))


def test_the_run_starts_with_its_plan(run_dir: Path) -> None:
    """Issue 25: a run started with no word of its size (`--generations 100000000` was
    accepted silently). The plan line comes before anything loads: before the run
    directory line, which follows the model load."""
    printed = ABLATE_STDERR[run_dir].splitlines()
    (plan,) = [line for line in printed if line.startswith("plan: ")]
    assert printed.index(plan) < printed.index(f"run directory: {run_dir}")
    assert plan == ("plan: 1 arm(s) x 2 generations (gen 0 + 1 self-training) = 2 "
                    "generations to score; each samples 8 train prompts x 2 and 6 eval "
                    "problems x 3")


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ------------------------------------------------------------- documented == written


def documented_examples() -> dict[str, Any]:
    """{file name: its JSON example} from results/README.md (`## name[, name]` + json)."""
    text = (REPO / "results" / "README.md").read_text()
    examples: dict[str, Any] = {}
    for heading, block in re.findall(r"^## ([^\n]+)\n.*?```json\n(.*?)```", text,
                                      flags=re.S | re.M):
        for name in heading.split(","):
            examples[name.strip()] = json.loads(block)
    return examples


MAPS = {"per_task", "arms", "pass_at_k", "steps", "datasets"}
"""Objects keyed by ids (task ids, arm ids, step names): their entries are compared."""


def mismatches(doc: Any, written: Any, where: str) -> list[str]:
    """Where the keys of `written` differ from those of the documented example."""
    if not isinstance(doc, dict) or not isinstance(written, dict):
        return []
    if where.rsplit(".", 1)[-1] in MAPS:
        doc_keys = {k for v in doc.values() if isinstance(v, dict) for k in v}
        got_keys = {k for v in written.values() if isinstance(v, dict) for k in v}
        out = [] if doc_keys == got_keys else [
            f"{where}.*: documented {sorted(doc_keys)}, written {sorted(got_keys)}"]
        shapes = [v for v in doc.values() if isinstance(v, dict)]
        for key, value in written.items():
            if not isinstance(value, dict) or not shapes:
                continue
            like = next((v for v in shapes if set(v) == set(value)), shapes[0])
            out += mismatches(like, value, f"{where}[{key}]")
        return out
    if set(doc) != set(written):
        return [f"{where}: documented-only {sorted(set(doc) - set(written))}, "
                f"written-only {sorted(set(written) - set(doc))}"]
    return [m for key in doc for m in mismatches(doc[key], written[key], f"{where}.{key}")]


def test_results_readme_documents_exactly_the_written_keys(run_dir: Path) -> None:
    docs = documented_examples()
    gen0, gen1 = run_dir / "arms" / ARM / "gen-0", run_dir / "arms" / ARM / "gen-1"
    written: list[tuple[str, Any]] = [
        ("arm.json", read_json(run_dir / "arms" / ARM / "arm.json")),
        ("metrics.json", read_json(gen0 / "metrics.json")),
        ("metrics.json", read_json(gen1 / "metrics.json")),
        ("summary.json", read_json(run_dir / "summary.json")),
        ("manifest.json", read_json(run_dir / "manifest.json")),
        *(("samples.jsonl", r) for r in rows(gen1 / "samples.jsonl")),
        *(("verdicts.jsonl", r) for r in rows(gen1 / "verdicts.jsonl")),
        *(("kept.jsonl", r) for r in rows(gen1 / "kept.jsonl")),
        *(("train.jsonl", r) for r in rows(gen1 / "train.jsonl")),
    ]
    assert {name for name, _ in written} == set(docs)
    assert {r["split"] for r in rows(gen1 / "samples.jsonl")} == {"eval", "train"}
    assert rows(gen1 / "kept.jsonl") and rows(gen1 / "train.jsonl")
    problems = [m for name, obj in written for m in mismatches(docs[name], obj, name)]
    assert problems == []
    summary_gens = read_json(run_dir / "summary.json")["arms"][ARM]["generations"]
    assert summary_gens == [read_json(gen0 / "metrics.json"), read_json(gen1 / "metrics.json")]


def test_summary_records_the_eval_problems_used(run_dir: Path) -> None:
    summary = read_json(run_dir / "summary.json")
    assert summary["n_eval_problems"] == 6 and summary["planned_generations"] == 1


# ----------------------------------------------------------------------- noise floor


def test_without_training_every_generation_scores_like_generation_0(run_dir: Path) -> None:
    def eval_rows(g: int) -> list[dict[str, Any]]:
        return [r for r in rows(run_dir / "arms" / ARM / f"gen-{g}" / "samples.jsonl")
                if r["split"] == "eval"]

    def scores(g: int) -> dict[str, Any]:
        m = read_json(run_dir / "arms" / ARM / f"gen-{g}" / "metrics.json")
        return {k: m[k] for k in ("pass_at_k", "diversity", "per_task")}

    def drawn(g: int) -> list[tuple[str, str, int]]:
        return [(r["task_id"], r["completion"], r["index"]) for r in eval_rows(g)]

    # the same draws (common random numbers): the same completions, so the same scores;
    # log-probabilities agree to float rounding (the merged copy of the weights)
    assert drawn(1) == drawn(0)
    assert [r["mean_logprob"] for r in eval_rows(1)] == pytest.approx(
        [r["mean_logprob"] for r in eval_rows(0)], abs=1e-5)
    assert scores(1) == scores(0)
    collapse = read_json(run_dir / "summary.json")["arms"][ARM]["collapse"]
    assert collapse["pass1_slope"] == 0.0 and collapse["diversity_retention"] == 1.0


# ---------------------------------------------------------------------------- resume


def test_resume_of_a_complete_run_exits_0_without_loading_anything(
        run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    # a model and an executor that cannot be loaded: had resume loaded anything, it fails
    config = (copy / "config.toml").read_text()
    config = re.sub(r'(?m)^name = ".*"$', 'name = "/nonexistent/model"', config)
    (copy / "config.toml").write_text(config.replace('executor = "local"',
                                                     'executor = "docker"'))
    before = {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()}
    assert main(["run", "--resume", str(copy)]) == 0
    out, err = capsys.readouterr()
    assert err.strip() == (f"{copy} is already complete (1 arm(s) x 2 generations); "
                           "nothing to do")
    assert f"arm {ARM}" in out
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()} == before


def test_resume_with_one_more_filter_runs_only_the_new_arm(
        run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A grid grows on --resume (the detect preset gained its stronger detectors this
    way): the arm already run is left as it was, byte for byte, and the new one runs."""
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    old_arm = copy / "arms" / ARM
    before = {p: p.read_bytes() for p in old_arm.rglob("*") if p.is_file()}
    assert main(["run", "--resume", str(copy), "--filters", "none,syntax"]) == 0
    capsys.readouterr()
    assert {p: p.read_bytes() for p in old_arm.rglob("*") if p.is_file()} == before
    new_arm = "f-syntax__r-replace__real-0.0__s-0"
    assert (copy / "arms" / new_arm / "gen-1" / "DONE").is_file()
    assert list(read_json(copy / "summary.json")["arms"]) == [ARM, new_arm]
    assert tomllib.loads((copy / "config.toml").read_text())["filters"] == ["none", "syntax"]
    code = main(["run", "--resume", str(copy), "--filters", "syntax"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot resume" in err and "filters" in err, err


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_prints_the_resume_command(small_model: Path, tmp_path: Path,
                                          sig: signal.Signals, code: int) -> None:
    """Ctrl-C, and SIGTERM the same way (issue 25: SIGTERM exited 143 with no resume
    hint and a manifest still "running"): the resume line, the manifest marked."""
    save_toml(small_config(small_model, tmp_path / "results", generations=3, epochs=1),
              tmp_path / "config.toml")
    proc = subprocess.Popen([*CLI, "run", "--config", str(tmp_path / "config.toml")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if list((tmp_path / "results").glob(f"*/arms/{ARM}/gen-0/DONE")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    (run,) = (tmp_path / "results").iterdir()
    assert proc.returncode == code, err
    resume_line = f"interrupted; continue with: collapse-bench run --resume {run}"
    assert err.strip().splitlines()[-1] == resume_line
    assert read_json(run / "manifest.json")["status"] == "interrupted"
    assert (run / "run.log").read_text().splitlines()[-1].endswith(resume_line)


def test_a_second_writer_of_a_run_directory_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 25: two `run --resume DIR` took no lock, computed the same generation and
    left an "interrupted" manifest. While one process writes a run, a second is refused
    (exit 3, one line) before it loads or writes anything; the lock is an flock, so a
    writer killed with -9 leaves nothing that blocks the next resume."""
    from harness.errors import EnvironmentProblem
    from harness.runfiles.runs import load_run
    from harness.runfiles.store import writer_lock
    from tests.run_fixtures import UNVERIFIED, VERIFIED, RunSpec, write_run

    run = write_run(tmp_path, RunSpec(seeds=(0,), not_done={("none", 0, 3)}))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from harness.runfiles.store import writer_lock\n"
         "with writer_lock(Path(sys.argv[1])):\n print('held', flush=True); time.sleep(120)",
         str(run)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
        code = main(["run", "--resume", str(run)])
        err = capsys.readouterr().err
        assert code == 3 and err.count("\n") == 1, err
        assert f"{run} is being written by another collapse-bench process " \
               f"(pid {holder.pid})" in err
        assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
        with pytest.raises(EnvironmentProblem, match="being written"), writer_lock(run):
            pass
        assert {a.key.filter for a in load_run(run).arms.values()} == {VERIFIED.filter,
                                                                   UNVERIFIED.filter}
    finally:
        holder.kill()  # SIGKILL: no clean-up runs in the holder
        holder.wait()
    with writer_lock(run), writer_lock(run):  # free again, and re-entrant in one process
        pass


def test_a_results_directory_from_a_future_format_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 25: a results directory of a newer format version was read without a word.
    report/export (load_run) and --resume/model export (RunStore.open) refuse it."""
    from harness.errors import BadInput
    from harness.runfiles.runs import load_run
    from harness.runfiles.store import FORMAT_VERSION, RunStore
    from tests.run_fixtures import RunSpec, write_run

    run = write_run(tmp_path, RunSpec(seeds=(0,)))
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION  # what a run writes
    load_run(run)
    manifest["format_version"] = FORMAT_VERSION + 1
    (run / "manifest.json").write_text(json.dumps(manifest))
    for read in (load_run, RunStore.open):
        with pytest.raises(BadInput, match="results format version 2 is newer"):
            read(run)
    code = main(["export", str(run), "--out", str(tmp_path / "x.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "upgrade collapse-bench" in err


@pytest.mark.parametrize(("option", "value"), [("--n-eval", "20"), ("--generations", "1"),
                                               ("--lr", "0.05")])
def test_resume_of_a_complete_run_with_changed_settings_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str) -> None:
    """Issue 25: `--resume` of a complete run with a changed --n-eval said "nothing to
    do", and `--resume --generations 1` quietly shortened the plan (exit 0 both)."""
    from tests.run_fixtures import RunSpec, write_run

    run = write_run(tmp_path, RunSpec(seeds=(0,)))
    before = (run / "config.toml").read_text()
    code = main(["run", "--resume", str(run), option, value])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"cannot resume {run} with" in err and "start a new run instead" in err
    assert (run / "config.toml").read_text() == before
