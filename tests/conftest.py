"""Shared fixtures: real executors, started once per session.

`docker_executor` is the isolated Docker pool. Without a Docker engine or the sandbox
image its tests skip - unless REQUIRE_DOCKER=1 (CI), where they fail, so a broken
Docker set-up can never look like a green run. `local_executor` is the unisolated
host runner pool, always available.

At the end of the session no sandbox container owned by this process may remain;
if one does, the session fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from harness.errors import EnvironmentProblem
from sandbox.executor import Executor, SandboxSettings


def require_docker() -> bool:
    return os.environ.get("REQUIRE_DOCKER") == "1"


def docker_unavailable(reason: str) -> None:
    """Skip, or fail when the environment says Docker is required."""
    if require_docker():
        pytest.fail(f"REQUIRE_DOCKER=1 but the Docker sandbox is unavailable: {reason}")
    pytest.skip(f"Docker sandbox unavailable: {reason}")


def require_sandbox_image() -> None:
    """Skip (fail under REQUIRE_DOCKER=1) unless the engine runs and the image is current."""
    from sandbox.docker_env import connect, image_state

    try:
        state = image_state(connect(), SandboxSettings().image)
    except EnvironmentProblem as exc:
        docker_unavailable(str(exc))
    if state != "current":
        docker_unavailable(f"the sandbox image is {state}: run `collapse-bench sandbox build`")


@pytest.fixture(scope="session")
def docker_executor() -> Iterator[Executor]:
    """The Docker pool with default settings (one container per core)."""
    from sandbox.docker_pool import DockerPool

    try:
        pool = DockerPool(SandboxSettings())
    except EnvironmentProblem as exc:
        docker_unavailable(str(exc))
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def local_executor() -> Iterator[Executor]:
    """The host-subprocess executor (not isolated; prints its warning once)."""
    from sandbox.local import LocalExecutor

    with LocalExecutor(SandboxSettings()) as executor:
        yield executor


LONGEST_FIRST = ("test_real_model.py", "test_ray.py", "test_loop.py",
                 "test_humaneval_suite.py", "test_garbage_model.py",
                 "test_recovery_control.py", "test_collapse_questions.py")
"""Modules that take longest (`pytest --durations`, 2026-12-07), started first: `make
test` runs the modules on two workers (pytest-xdist, `--dist loadfile`), and one long
module handed out last would leave the other worker idle at the end."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long modules first, the rest in their usual order (a stable sort)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session if any sandbox container of this process outlived it."""
    from sandbox.exit_hooks import close_all_pools

    close_all_pools()
    try:
        from sandbox.docker_env import connect
        from sandbox.docker_pool import OWNER_LABEL, owner_tag

        client = connect(timeout_s=10)
    except (EnvironmentProblem, ImportError):
        return
    mine = f"{OWNER_LABEL}={owner_tag()}"
    left = client.containers.list(all=True, filters={"label": mine}, ignore_removed=True)
    left = [c for c in left if c.status not in ("removing", "dead")]
    if left:
        for c in left:
            c.remove(force=True)
        print(f"\nERROR: {len(left)} sandbox container(s) outlived the test session: "
              + ", ".join(c.name for c in left))
        session.exitstatus = 1
