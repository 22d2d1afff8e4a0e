"""Reach the Docker engine and the sandbox image, or say exactly what to do instead.

Every way Docker can be missing (no daemon, no permission on the socket, no image, an
image built from an older runner) becomes an `EnvironmentProblem` whose message is
the fix, so the CLI exits 3 with one line instead of a traceback.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from harness.errors import EnvironmentProblem

if TYPE_CHECKING:
    import docker

RUNNER_LABEL = "collapse-bench.runner-sha256"
"""Image label: sha256 of the sandbox/runner.py the image was built from."""

BUILD_HINT = "run `make image` or `collapse-bench sandbox build`"
START_HINT = ("start one with `make docker` (as root: `bash scripts/ensure_docker.sh`), "
              "or pass `--executor local` to run unisolated")

ImageState = Literal["missing", "stale", "current"]


def runner_path() -> Path:
    return Path(__file__).with_name("runner.py")


def runner_digest() -> str:
    """sha256 of this checkout's runner; images and live runners must match it."""
    return hashlib.sha256(runner_path().read_bytes()).hexdigest()


def connect(timeout_s: int = 60) -> docker.DockerClient:
    """A client for a Docker engine that answers, or EnvironmentProblem with the fix."""
    try:
        import docker
        import docker.errors
    except ImportError as exc:
        raise EnvironmentProblem(
            f"the `docker` Python package is missing ({exc}): run `make install`") from None
    try:
        client = docker.from_env(timeout=timeout_s)
        client.ping()
    except docker.errors.DockerException as exc:
        raise _explain(exc) from None
    except PermissionError as exc:
        raise _explain(exc) from None
    return client


def _explain(exc: BaseException) -> EnvironmentProblem:
    text = str(exc)
    if "ermission denied" in text or isinstance(exc, PermissionError):
        return EnvironmentProblem(
            "permission denied on the Docker socket: add your user to the `docker` group "
            "(sudo usermod -aG docker $USER, then log in again) or run as root")
    short = text.splitlines()[0][:200] if text else type(exc).__name__
    return EnvironmentProblem(f"no Docker engine answers ({short}): {START_HINT}")


def image_state(client: docker.DockerClient, image: str) -> ImageState:
    """Whether `image` exists and was built from this checkout's runner."""
    import docker.errors

    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        return "missing"
    except docker.errors.DockerException as exc:
        raise _explain(exc) from None
    return "current" if (found.labels or {}).get(RUNNER_LABEL) == runner_digest() else "stale"


def require_image(client: docker.DockerClient, image: str) -> None:
    """EnvironmentProblem unless `image` exists (staleness is checked on the live runner)."""
    if image_state(client, image) == "missing":
        raise EnvironmentProblem(f"sandbox image {image} not found: {BUILD_HINT}")
