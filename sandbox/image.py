"""Build the sandbox image from the root `Dockerfile`, on whichever base this machine has.

The Dockerfile's default base, python:3.12-slim, comes from a registry. Where none is
reachable (this project's machines reach only a Debian mirror), the base is a minimal
Debian with python3 made by `scripts/build_base_image.sh` (debootstrap + docker
import). The registry base is used only when it is already present or pulls quickly;
the outcome says which path was taken.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import EnvironmentProblem
from sandbox.docker_env import RUNNER_LABEL, connect, image_state, runner_digest, runner_path

if TYPE_CHECKING:
    import docker

REGISTRY_BASE = "python:3.12-slim"
OFFLINE_BASE = "collapse-bench-base:bookworm"
PULL_TIMEOUT_S = 30


@dataclass(frozen=True)
class BuildOutcome:
    """What `build_image` did. `path` names the route taken, for the user."""

    image: str
    base: str
    path: str
    built: bool
    seconds: float


def source_root() -> Path:
    """The checkout holding the Dockerfile and scripts/ (the package's parent)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "Dockerfile").is_file():
        raise EnvironmentProblem(
            f"no Dockerfile next to the package ({root}): build from a source checkout "
            "of collapse-bench")
    return root


def build_image(image: str, *, base_image: str | None = None, if_missing: bool = False,
                log: Callable[[str], None] = print) -> BuildOutcome:
    """Build `image`; with `if_missing`, only when it is missing or from an older runner."""
    started = time.monotonic()
    client = connect()
    state = image_state(client, image)
    if if_missing and state == "current":
        return BuildOutcome(image, "", f"{image} is up to date; nothing built", False, 0.0)
    if state == "stale":
        log(f"{image} was built from an older sandbox/runner.py; rebuilding")
    base, path = _choose_base(client, base_image, log)
    log(f"building {image} on {base} ({path})")
    previous = _image_id(client, image)
    _docker_build(client, image, base)
    if previous and previous != _image_id(client, image):
        _remove_quietly(client, previous)  # the old build, now untagged
    return BuildOutcome(image, base, path, True, time.monotonic() - started)


def _choose_base(client: docker.DockerClient, given: str | None,
                 log: Callable[[str], None]) -> tuple[str, str]:
    if given:
        if _present(client, given) or _pull(given, log):
            return given, "given base image"
        raise EnvironmentProblem(f"base image {given} is neither present nor pullable")
    if _present(client, REGISTRY_BASE):
        return REGISTRY_BASE, "registry base, already present"
    if _pull(REGISTRY_BASE, log):
        return REGISTRY_BASE, "registry base, pulled"
    if _present(client, OFFLINE_BASE):
        return OFFLINE_BASE, "offline debootstrap base, already built"
    log(f"no registry reachable; building {OFFLINE_BASE} with debootstrap (about a minute)")
    script = source_root() / "scripts" / "build_base_image.sh"
    proc = subprocess.run(["bash", str(script), OFFLINE_BASE], check=False)
    if proc.returncode != 0 or not _present(client, OFFLINE_BASE):
        raise EnvironmentProblem(
            f"could not build the offline base ({script} exited {proc.returncode}); "
            f"it needs root and a Debian mirror, or use a machine that can pull {REGISTRY_BASE}")
    return OFFLINE_BASE, "offline debootstrap base, built now"


def _present(client: docker.DockerClient, name: str) -> bool:
    import docker.errors

    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def _image_id(client: docker.DockerClient, name: str) -> str:
    import docker.errors

    try:
        return str(client.images.get(name).id)
    except docker.errors.ImageNotFound:
        return ""


def _remove_quietly(client: docker.DockerClient, image_id: str) -> None:
    """Remove an image unless something still uses it (a running pool, another tag)."""
    import docker.errors

    with contextlib.suppress(docker.errors.DockerException):
        client.images.remove(image_id)


def _pull(name: str, log: Callable[[str], None]) -> bool:
    """Try a registry pull with a short timeout; False (and a note) when it fails."""
    import docker.errors

    repo, _, tag = name.partition(":")
    try:
        connect(timeout_s=PULL_TIMEOUT_S).images.pull(repo, tag=tag or "latest")
    except (docker.errors.DockerException, OSError) as exc:
        text = str(getattr(exc, "explanation", None) or exc) or type(exc).__name__
        log(f"cannot pull {name} (no registry reachable?): {text.splitlines()[0][:120]}")
        return False
    return True


def _docker_build(client: docker.DockerClient, image: str, base: str) -> None:
    """`docker build` with a context of exactly the Dockerfile and the runner."""
    import docker.errors

    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        tar.add(str(source_root() / "Dockerfile"), arcname="Dockerfile")
        tar.add(str(runner_path()), arcname="sandbox/runner.py")
    context.seek(0)
    try:
        stream = client.api.build(fileobj=context, custom_context=True, tag=image, rm=True,
                                  forcerm=True, decode=True, buildargs={"BASE_IMAGE": base},
                                  labels={RUNNER_LABEL: runner_digest()})
        for chunk in stream:
            if "error" in chunk:
                raise EnvironmentProblem(f"docker build of {image} failed: {chunk['error']}")
    except docker.errors.DockerException as exc:
        raise EnvironmentProblem(f"docker build of {image} failed: {exc}") from None
