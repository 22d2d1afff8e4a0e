"""Choose an executor by name, importing only the chosen backend.

Kept out of `sandbox.executor` (the contract both backends import) so that no module
imports a backend that imports it back.
"""

from __future__ import annotations

from sandbox.executor import Executor, SandboxSettings

EXECUTORS = ("docker", "local")


def make_executor(name: str, settings: SandboxSettings | None = None) -> Executor:
    """Build the executor named `name` ("docker" or "local")."""
    from harness.errors import BadInput

    settings = settings or SandboxSettings()
    if name == "docker":
        from sandbox.docker_pool import DockerPool

        return DockerPool(settings)
    if name == "local":
        from sandbox.local import LocalExecutor

        return LocalExecutor(settings)
    raise BadInput(f"unknown executor {name!r}; known: {', '.join(EXECUTORS)}")
