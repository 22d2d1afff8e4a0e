"""A warm pool of hardened containers, each running the fork server as PID 1.

Why warm containers: `docker run` costs ~0.4 s and `docker exec` ~70 ms, a fork inside
a running container ~1 ms. So containers are started once, the harness streams
requests over each container's attached stdin/stdout, and the runner forks per
program (see `sandbox/runner.py`).

Each container: no network, read-only root, a size-limited tmpfs /tmp, memory limit
with memory+swap equal to it, pids limit, CPU quota, no-new-privileges, labels naming
the pool and the owning process. The runner (PID 1) starts as root holding only
CAP_SETUID, CAP_SETGID and CAP_KILL - every other capability is dropped - so it can
run programs under a random non-root uid of their own that cannot touch it, and the
judge (the test code) under another (see `sandbox/runner.py`); programs and judge
have no capabilities at all.
Containers are removed on `close()`, at interpreter exit and on SIGTERM/SIGHUP
(Ctrl-C unwinds into those). After a `kill -9` of the harness their stdin closes, so
each runner exits once its queued programs are done and the auto-removed container
goes; whatever is still there at the next start-up is swept then - but never the
containers of another live process (each carries its owner's pid and start time).
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import socket
import struct
import threading
import time
from typing import TYPE_CHECKING, Any

from harness.errors import EnvironmentProblem
from sandbox.channel import Channel, ChannelDead, Event
from sandbox.dispatch import RunnerPool, default_pool_size
from sandbox.docker_env import BUILD_HINT, connect, require_image, runner_digest
from sandbox.executor import SandboxSettings

if TYPE_CHECKING:
    import docker

SANDBOX_LABEL = "collapse-bench.sandbox"
"""On every sandbox container (value "1"): what the sweep looks at."""
POOL_LABEL = "collapse-bench.pool"
"""The pool's random id: which containers belong together."""
OWNER_LABEL = "collapse-bench.owner"
"""host:pid:start-time of the owning process; its death makes the container stale."""

UID_RANGE = (20000, 60000)
"""Programs run under a random uid from here (never the runner's)."""
RUNNER_CAPABILITIES = ("SETUID", "SETGID", "KILL")
"""All the runner keeps: switch a child to the program uid, and kill its processes."""


def _start_time(pid: int) -> str | None:
    """A process's start time in clock ticks (tells a pid from a reused one)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2:].split()[19].decode()


def owner_tag(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or '?'}"


def owner_alive(tag: str) -> bool:
    """Whether the process named by an owner label still runs. Unknown (another host,
    an unreadable tag) counts as alive: never remove what might be someone's."""
    host, _, rest = tag.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    return _start_time(int(pid_text)) == start


def sweep_stale(client: docker.DockerClient) -> list[str]:
    """Remove sandbox containers whose owning process is dead; their names.

    Another process's pool may remove its containers while this one lists them (two
    runs on one machine, several arms of a Ray node), so a container gone between the
    list and its inspection is skipped (`ignore_removed`), not an error.
    """
    import docker.errors

    removed: list[str] = []
    for c in client.containers.list(all=True, filters={"label": f"{SANDBOX_LABEL}=1"},
                                    ignore_removed=True):
        if owner_alive(c.labels.get(OWNER_LABEL, "")):
            continue
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            c.remove(force=True)
            removed.append(c.name)
    return removed


class DockerChannel(Channel):
    """One container: created, attached (stdin/stdout/stderr), then started."""

    def __init__(self, client: docker.DockerClient, name: str, settings: SandboxSettings,
                 labels: dict[str, str], events: queue.Queue[Event]) -> None:
        super().__init__(name, events)
        import docker.errors
        import docker.types

        self._client = client
        self._stderr = bytearray()
        self._buf = b""
        self._send_lock = threading.Lock()
        uid = secrets.randbelow(UID_RANGE[1] - UID_RANGE[0]) + UID_RANGE[0]
        judge_uid = UID_RANGE[0] + (uid - UID_RANGE[0] + 1 + secrets.randbelow(
            UID_RANGE[1] - UID_RANGE[0] - 1)) % (UID_RANGE[1] - UID_RANGE[0])
        host = client.api.create_host_config(
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": f"size={settings.tmpfs_mb}m,mode=1777"},
            shm_size=f"{max(1, settings.tmpfs_mb // 4)}m",
            ipc_mode="private",
            mem_limit=f"{settings.memory_mb}m",
            memswap_limit=f"{settings.memory_mb}m",
            pids_limit=settings.pids_limit,
            nano_cpus=int(settings.cpus * 1e9),
            cap_drop=["ALL"],
            cap_add=list(RUNNER_CAPABILITIES),
            security_opt=["no-new-privileges"],
            auto_remove=True,
            log_config=docker.types.LogConfig(type="none"),
        )
        command = ["--scratch", "/tmp", "--wipe", "/dev/shm", "--wipe", "/dev/mqueue",
                   "--program-uid", str(uid), "--judge-uid", str(judge_uid),
                   "--output-limit", str(settings.output_limit_bytes),
                   "--fsize-mb", str(settings.tmpfs_mb),
                   "--max-procs", str(max(4, settings.pids_limit - 4))]
        try:
            self.id: str = client.api.create_container(
                settings.image, command=command, name=name, hostname="sandbox",
                user="0:0", stdin_open=True, tty=False, network_disabled=True,
                labels=labels, host_config=host)["Id"]
            attached = client.api.attach_socket(
                self.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            self._sock: socket.socket = getattr(attached, "_sock", attached)
            self._sock.settimeout(None)  # idle pools must not time out their streams
            client.api.start(self.id)
        except docker.errors.DockerException as exc:
            self._destroy()
            raise ChannelDead(f"could not start container {name}: {exc}") from None

    def _recv_exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self._sock.recv(n - len(out))
            if not chunk:
                return b""
            out += chunk
        return out

    def _recv(self) -> bytes:
        """The next stdout payload of Docker's multiplexed stream (8-byte frame headers)."""
        while True:
            header = self._recv_exact(8)
            if not header:
                return b""
            stream, size = header[0], struct.unpack(">I", header[4:])[0]
            payload = self._recv_exact(size) if size else b""
            if size and not payload:
                return b""
            if stream == 1:
                return payload
            self._stderr += payload
            del self._stderr[:-4096]

    def _send(self, data: bytes) -> None:
        with self._send_lock:
            self._sock.sendall(data)

    def diagnostics(self) -> str:
        return self._stderr.decode("utf-8", "replace")

    def cpu_seconds(self) -> float:
        stats = self._client.api.stats(self.id, stream=False, one_shot=True)
        return float(stats["cpu_stats"]["cpu_usage"]["total_usage"]) / 1e9

    def _destroy(self) -> None:
        import docker.errors

        if getattr(self, "id", None):
            with contextlib.suppress(docker.errors.DockerException, OSError):
                self._client.api.remove_container(self.id, force=True)
        sock = getattr(self, "_sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


class DockerPool(RunnerPool):
    """The isolated executor: `settings.pool_size` containers (default one per core plus one)."""

    def __init__(self, settings: SandboxSettings | None = None, *,
                 unresponsive_after_s: float = 3.0) -> None:
        settings = settings or SandboxSettings()
        self.client = connect()
        require_image(self.client, settings.image)
        self.swept = sweep_stale(self.client)
        self.pool_id = secrets.token_hex(6)
        self.labels = {SANDBOX_LABEL: "1", POOL_LABEL: self.pool_id, OWNER_LABEL: owner_tag()}
        self.start_latencies: list[float] = []
        self._serial = 0
        self._serial_lock = threading.Lock()
        try:
            super().__init__("docker", default_pool_size(settings), self._start_container,
                             settings, unresponsive_after_s=unresponsive_after_s)
        except ChannelDead as exc:
            raise EnvironmentProblem(f"could not start a sandbox container: {exc}") from None

    def _start_container(self, events: queue.Queue[Event]) -> Channel:
        with self._serial_lock:
            self._serial += 1
            name = f"collapse-bench-{self.pool_id}-{self._serial}"
        t0 = time.monotonic()
        channel = DockerChannel(self.client, name, self.settings, self.labels, events)
        channel.begin()
        self.start_latencies.append(time.monotonic() - t0)
        if channel.ready_info.get("uid_separated") is not True \
                or channel.ready_info.get("judge_uid_separated") is not True:
            channel.destroy()
            raise EnvironmentProblem("the sandbox runner did not separate program and runner "
                                     f"uids: {BUILD_HINT}")
        if channel.ready_info.get("sha256") != runner_digest():
            channel.destroy()
            raise EnvironmentProblem(
                f"sandbox image {self.settings.image} runs an older sandbox/runner.py "
                f"than this checkout: {BUILD_HINT}")
        return channel

    @property
    def container_ids(self) -> list[str]:
        return [c.id for c in self.channels if isinstance(c, DockerChannel)]

    def describe(self) -> dict[str, Any]:
        """What the pool runs with, for logs and `sandbox check`."""
        s = self.settings
        return {"executor": "docker", "image": s.image, "containers": len(self.channels),
                "memory_mb": s.memory_mb, "cpus": s.cpus, "pids_limit": s.pids_limit,
                "tmpfs_mb": s.tmpfs_mb, "network": "none", "read_only_root": True,
                "runner_capabilities": list(RUNNER_CAPABILITIES), "program_capabilities": "none",
                "program_uid": "random non-root, not the runner's",
                "judge_uid": "random non-root, neither the runner's nor the program's",
                "no_new_privileges": True}
