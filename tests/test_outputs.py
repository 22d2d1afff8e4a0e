"""Issue 10, outputs: paths checked before the work, nothing but regular files
replaced, `--out -` for standard output, export's format from the suffix."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from harness.atomic import atomic_write_text
from harness.cli import main
from harness.errors import BadInput
from tasks.registry import load_suite, select_split
from tests.run_fixtures import RunSpec, write_run

SUITE = "synth:n_train=10,n_eval=6,seed=7"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _samples(tmp_path: Path) -> Path:
    rows = [{"task_id": t.task_id, "completion": t.canonical_solution}
            for t in select_split(load_suite(SUITE), "eval")]
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("results"), RunSpec(seeds=(0, 1)))


# -------------------------------------------------------------- checked before the work


@pytest.mark.parametrize("target", ["/proc/collapse-bench-x.json", "{file}/r.json"])
def test_eval_refuses_an_unwritable_out_before_executing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str) -> None:
    (tmp_path / "file").write_text("a regular file where a directory is expected")
    out = target.format(file=tmp_path / "file")
    # a samples file with an unknown task id: had --out been checked after the work,
    # that error (or a traceback after executing) would come first
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"task_id": "nope/0", "completion": "x"}) + "\n")
    code, stdout, err = _run(capsys, "eval", "--suite", SUITE, "--samples", str(bad),
                             "--executor", "local", "--no-progress", "--out", out)
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and err.startswith(f"error: --out {out}"), err


def test_export_and_report_refuse_unwritable_outputs(
        run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "export", str(run_dir), "--out", "/proc/x.json")
    assert code == 2 and err.count("\n") == 1 and "cannot write in /proc" in err
    code, _, err = _run(capsys, "report", str(run_dir), "--out", "/proc/collapse-report",
                        "--n-boot", "10")
    assert code == 2 and err.count("\n") == 1 and "cannot write in /proc" in err


def test_run_refuses_an_unwritable_results_root(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    code, _, err = _run(capsys, "run", "--executor", "local", "--model", "/nonexistent/m",
                        "--out", str(tmp_path / "file"))
    assert code == 2 and err.count("\n") == 1
    assert "--out" in err and "exists and is not a directory" in err


# ------------------------------------------------ never delete a directory not ours


def test_model_export_refuses_a_directory_it_did_not_write(
        run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 25 blocker: `model export --out DIR` exited 0 and replaced DIR, deleting
    precious.txt (`--out ~` would empty a home directory). Refused before any model is
    loaded: one line, exit 2, the directory untouched."""
    home = tmp_path / "home"
    (home / "projects").mkdir(parents=True)
    (home / "precious.txt").write_text("keep me")
    arm = sorted(p.name for p in (run_dir / "arms").iterdir())[0]
    code, stdout, err = _run(capsys, "model", "export", str(run_dir), "--arm", arm,
                             "--generation", "2", "--out", str(home))
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and "did not write" in err and "refusing" in err, err
    assert sorted(p.name for p in home.iterdir()) == ["precious.txt", "projects"]
    assert (home / "precious.txt").read_text() == "keep me"


def test_every_directory_writer_states_what_it_may_replace(tmp_path: Path) -> None:
    """The replace-a-directory helper serves the adapters, the model caches, the
    shipped copy, Ray's generation transfer and model export: none of them may delete a
    non-empty directory its `owns` does not claim, nor follow a symlink."""
    from harness.atomic import atomic_replace_dir

    def fill(d: Path) -> None:
        d.mkdir()
        (d / "new.txt").write_text("new")

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "a.txt").write_text("a")
    with pytest.raises(BadInput, match="did not write"):
        atomic_replace_dir(fill, theirs, owns=lambda d: (d / "ours.json").is_file())
    assert [p.name for p in theirs.iterdir()] == ["a.txt"]
    (theirs / "ours.json").write_text("{}")
    atomic_replace_dir(fill, theirs, owns=lambda d: (d / "ours.json").is_file())
    assert [p.name for p in theirs.iterdir()] == ["new.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    atomic_replace_dir(fill, empty, owns=lambda d: False)  # an empty directory holds nothing
    assert [p.name for p in empty.iterdir()] == ["new.txt"]
    with pytest.raises(TypeError):
        atomic_replace_dir(fill, tmp_path / "x")  # type: ignore[call-arg]  # owns is required


# ---------------------------------------------------- never replace a non-regular file


def test_atomic_write_never_replaces_a_symlink_or_fifo(tmp_path: Path) -> None:
    target = tmp_path / "target.txt"
    target.write_text("keep me")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with pytest.raises(BadInput, match="not a regular file"):
        atomic_write_text(link, "{}")
    assert link.is_symlink() and target.read_text() == "keep me"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(BadInput, match="not a regular file"):
        atomic_write_text(fifo, "{}")
    assert fifo.exists() and not fifo.is_file()
    plain = tmp_path / "plain.json"
    plain.write_text("old")
    atomic_write_text(plain, "new")
    assert plain.read_text() == "new"


def test_eval_out_to_a_symlink_is_refused_and_leaves_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link = tmp_path / "stdout-like"
    link.symlink_to("/dev/null")
    code, _, err = _run(capsys, "eval", "--suite", SUITE, "--samples", str(_samples(tmp_path)),
                        "--executor", "local", "--no-progress", "--out", str(link))
    assert code == 2 and "symbolic link" in err
    assert link.is_symlink() and os.readlink(link) == "/dev/null"
    assert not (tmp_path / "stdout-like.verdicts.jsonl").exists()


# ------------------------------------------------------------------ `-` is standard out


def test_eval_out_dash_writes_json_to_stdout(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, err = _run(capsys, "eval", "--suite", SUITE, "--samples",
                             str(_samples(tmp_path)), "--executor", "local", "--no-progress",
                             "--out", "-")
    assert code == 0, err
    doc = json.loads(stdout)  # nothing but the JSON document on stdout
    assert doc["pass_at_k"]["pass@1"] == 1.0 and len(doc["per_task"]) == 6
    assert "pass@1" in err  # the human-readable table went to stderr
    assert not Path("-").exists() and not Path("-.verdicts.jsonl").exists()


def test_export_out_dash_and_format_from_suffix(
        run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, err = _run(capsys, "export", str(run_dir), "--out", "-", "--n-boot", "20")
    assert code == 0, err
    assert json.loads(stdout)["schema_version"] == "1.0"
    code, stdout, err = _run(capsys, "export", str(run_dir), "--out", "-", "--format", "csv",
                             "--n-boot", "20")
    assert code == 0 and next(csv.reader(io.StringIO(stdout)))[0] == "rank"

    board = tmp_path / "board.csv"
    code, stdout, err = _run(capsys, "export", str(run_dir), "--out", str(board),
                             "--n-boot", "20")
    assert code == 0, err
    assert "(csv)" in stdout and board.read_text().startswith("rank,")
    code, _, err = _run(capsys, "export", str(run_dir), "--out", str(tmp_path / "board.txt"))
    assert code == 2 and "cannot tell the format" in err
    assert not (tmp_path / "board.txt").exists()
