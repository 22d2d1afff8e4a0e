"""Connect to a Ray cluster (or start a local one), list its nodes, and let go of it.

`--ray` with no address (or `auto`, or "") joins the local instance `ray start`
left behind, or else starts a private one for this command; `--ray HOST:PORT` joins
that cluster. A private instance listens on 127.0.0.1 only and without a dashboard:
nobody else is meant to reach it, and `ray.shutdown()` at the end stops it again,
whichever way the command ends. A joined cluster is only disconnected from.

Ray on Linux replaces a loopback node address by the machine's outward one and
binds every interface; only its "single machine" mode (RAY_ENABLE_WINDOWS_OR_OSX_
CLUSTER=0, what macOS gets by default) keeps everything on 127.0.0.1. `loopback_only`
switches this process and the Ray processes it starts into that mode.

Token authentication (Ray >= 2.50): a head started while a token exists
(~/.ray/auth_token, which any `ray.init()` of a new cluster writes) requires it,
but Ray sends it to an explicit address only under RAY_AUTH_MODE=token. With the
mode unset, the harness first asks the head (one request, milliseconds) whether it
refuses a plain client; if it does and a token is here, it joins in token mode (as Ray
itself does for a local cluster it finds), and without a token it says so at once.
A plain join that fails for another reason is also retried in token mode.
Not the other way round: a driver in token mode joined to a head without
authentication connects, then rejects its workers' streamed results, and the run
hangs.

Before `ray.init` tries to reach a head (which, unanswered, retries for minutes), a
plain TCP connect says within seconds whether anything listens there.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from harness.errors import BadInput, EnvironmentProblem

RAY_HINT = ("install the Ray extra on every node, from a checkout of collapse-bench: "
            "pip install -e '.[ray]'")
RAY_VERSION = "2.60.0"
"""The Ray pyproject pins and tests/test_ray.py runs against."""
AUTH_HINT = ("if the head uses token authentication, put its token in ~/.ray/auth_token "
             "(or RAY_AUTH_TOKEN) here and set RAY_AUTH_MODE=token")
LOCAL_ADDRESSES = ("", "auto", "local")
"""What `--ray` accepts for "start or join a local Ray instance"."""
CONNECT_TIMEOUT_S = 5.0


def import_ray() -> ModuleType:
    """The `ray` module, or EnvironmentProblem saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise EnvironmentProblem(f"--ray needs Ray, which is not installed ({exc}): "
                                 f"{RAY_HINT}") from None
    return ray


@dataclass(frozen=True)
class RaySettings:
    """Where the work goes and what one arm reserves there.

    cpus/gpus are Ray's logical resources per arm; a fraction of a GPU (0.25) lets
    several small-model arms share one card.
    """

    address: str = "auto"
    cpus: float = 1.0
    gpus: float = 0.0

    def check(self) -> None:
        """BadInput for resources Ray would refuse or could never schedule."""
        if self.cpus < 0 or self.gpus < 0:
            raise BadInput("--ray-cpus and --ray-gpus must be >= 0")
        if self.cpus == 0 and self.gpus == 0:
            raise BadInput("an arm must reserve something: --ray-cpus or --ray-gpus > 0")
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise BadInput(f"--ray-gpus {self.gpus}: above 1, Ray needs a whole number of GPUs")
        parse_address(self.address)


def parse_address(address: str) -> tuple[str, int] | None:
    """(host, port) for HOST:PORT, None for a local instance; BadInput otherwise."""
    text = address.strip()
    if text.lower() in LOCAL_ADDRESSES:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInput(f"--ray {address!r}: expected HOST:PORT (the head's GCS port, 6379 "
                       "by default), or auto / nothing for a local Ray instance")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Session:
    """How this process is attached to Ray."""

    address: str
    started: bool   # True: a private local instance that shutdown() stops


@contextlib.contextmanager
def connected(address: str, log: Callable[[str], None] | None = None) -> Iterator[Session]:
    """Attached to Ray for the block; always detached (and a private instance stopped)."""
    ray = import_ray()
    target = parse_address(address)
    with contextlib.ExitStack() as stack:
        if target is not None:
            kwargs, started = _join_kwargs(target, stack), False
        else:
            found = _local_instance()
            started = found is None
            if started:
                stack.enter_context(loopback_only())
                kwargs = {"address": None, "include_dashboard": False,
                          "_node_ip_address": "127.0.0.1"}
            else:
                if found[1]:
                    stack.enter_context(loopback_only())  # a loopback-only `ray start`
                kwargs = {"address": found[0]}
        # Plain first: a driver in token mode joined to a head without authentication
        # connects, but then rejects its workers' streamed results (the run hangs).
        # Token mode only when a plain join failed and a token is here to try.
        token = os.environ.get("RAY_AUTH_MODE", "").lower() == "token"
        if not started and "RAY_AUTH_MODE" not in os.environ and _refuses_plain(kwargs["address"]):
            if not _token_available():
                raise EnvironmentProblem(
                    f"could not join the Ray cluster at {address}: the head requires token "
                    "authentication and no token is here: copy the head's ~/.ray/auth_token "
                    "to ~/.ray/auth_token (or RAY_AUTH_TOKEN); RAY_AUTH_MODE=token then "
                    "follows by itself")
            token = True
            stack.callback(_token_mode())
        try:
            _init(ray, address, token, kwargs)
        except EnvironmentProblem:
            if started or "RAY_AUTH_MODE" in os.environ or not _token_available():
                raise
            ray.shutdown()
            token = True
            stack.callback(_token_mode())
            _init(ray, address, token, kwargs)
        session = Session(ray.get_runtime_context().gcs_address, started)
        if log is not None:
            what = "started a local Ray instance" if started else "joined the Ray cluster"
            log(f"ray: {what} at {session.address}"
                + (" (token authentication)" if token else ""))
        try:
            yield session
        finally:
            ray.shutdown()


def _join_kwargs(target: tuple[str, int], stack: contextlib.ExitStack) -> dict[str, Any]:
    """ray.init's arguments for joining HOST:PORT, after checking something listens.

    A loopback-only head (started under RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0) can only
    be joined in the same mode: when Ray's outward rewrite of a loopback host finds
    nothing but the address as given answers, this process joins in that mode.
    """
    host, port = target
    dialled = _as_ray_resolves(host, port)
    try:
        _reachable(*dialled)
    except EnvironmentProblem as exc:
        if dialled[0] == host:
            raise
        try:
            _reachable(host, port)
        except EnvironmentProblem:
            raise EnvironmentProblem(f"{exc} (Ray dials {host} as {dialled[0]}; a head "
                                     "must listen there)") from None
        stack.enter_context(loopback_only())
    return {"address": f"{host}:{port}"}


def _init(ray: ModuleType, address: str, token: bool, kwargs: dict[str, Any]) -> None:
    """ray.init, with its failures as one line that names the likely cause."""
    from ray.exceptions import AuthenticationError

    try:
        ray.init(log_to_driver=False, configure_logging=False, **kwargs)
    except AuthenticationError:
        raise EnvironmentProblem(
            f"could not join the Ray cluster at {address}: RAY_AUTH_MODE=token but no "
            "authentication token here: put the head's ~/.ray/auth_token in ~/.ray/auth_token "
            "(or RAY_AUTH_TOKEN)") from None
    except ConnectionError as exc:
        hint = ("the head refused this machine's authentication token: use the head's "
                "token (~/.ray/auth_token or RAY_AUTH_TOKEN)" if token else AUTH_HINT)
        raise EnvironmentProblem(f"could not join the Ray cluster at {address}: {exc} "
                                 f"({hint})") from None


def _refuses_plain(gcs_address: str) -> bool:
    """Whether the head at `gcs_address` answers a plain (token-less) client with
    InvalidAuthToken. One request, answered in milliseconds, where a plain `ray.init`
    retries for ~20 s and prints a warning per retry before it gives up. Ray's C++
    client logs one warning line for the refusal itself; it is kept off stderr."""
    from ray._raylet import GcsClient
    from ray.exceptions import AuthenticationError

    with _stderr_silenced():
        try:
            GcsClient(address=gcs_address)
        except AuthenticationError:
            return True
        except Exception:  # anything else is ray.init's to report
            return False
    return False


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """File descriptor 2 points at /dev/null for the block (C++ logging writes there)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _token_available() -> bool:
    """Whether Ray finds an authentication token here (~/.ray/auth_token,
    RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH), whatever RAY_AUTH_MODE says."""
    from ray._raylet import AuthenticationTokenLoader

    return bool(AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True))


def _token_mode() -> Callable[[], None]:
    """Switch this process to RAY_AUTH_MODE=token; returns the undo.

    Ray does this itself only for a local cluster it finds automatically; a head
    `ray start` put in token mode (it is whenever a token exists there) is then
    joinable by address too."""
    from ray._raylet import Config

    os.environ["RAY_AUTH_MODE"] = "token"
    Config.initialize("")  # Ray caches its config: make this process see the mode

    def undo() -> None:
        os.environ.pop("RAY_AUTH_MODE", None)
        Config.initialize("")

    return undo


NICENESS_ENV = "RAY_worker_niceness"
"""Ray's setting of its workers' nice value (default 15; see `loopback_only`)."""


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Ray's single-machine mode for the block: node address 127.0.0.1, every Ray
    process started from here listening on it alone.

    Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when it is imported, so the module
    constant is set for this process and the variable for the processes it starts;
    both are restored afterwards.

    The local instance's workers also run at normal priority (RAY_worker_niceness=0,
    unless the user set it): Ray starts them at nice 15, and on a machine shared with
    other work an arm then got about 7% of a core (measured: two smol-cpu arms beside
    one other job on 2 cores), so a run that was fast alone crawled.
    """
    import os

    from ray._private import ray_constants

    name = ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR
    saved = {key: os.environ.get(key) for key in (name, NICENESS_ENV)}
    saved_flag = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[name] = "0"
    os.environ.setdefault(NICENESS_ENV, "0")
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _reachable(host: str, port: int) -> None:
    """EnvironmentProblem unless something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise EnvironmentProblem(
            f"no Ray head answers at {host}:{port} ({exc.strerror or exc}): start one there "
            "with `ray start --head --port 6379`, or use --ray alone for a local instance"
        ) from None


def _as_ray_resolves(host: str, port: int) -> tuple[str, int]:
    """The (host, port) `ray.init` will dial for host:port.

    Ray replaces a loopback host with this machine's outward address, so a head that
    listens on loopback only cannot be joined as 127.0.0.1; checking the address Ray
    will really use turns minutes of retries into one line.
    """
    from ray._private import services

    resolved = services.canonicalize_bootstrap_address(f"{host}:{port}")
    if resolved is None:
        return host, port
    rhost, _, rport = resolved.rpartition(":")
    return rhost, int(rport)


def _local_instance() -> tuple[str, bool] | None:
    """(address, loopback-only) of the local instance `ray start` left (or RAY_ADDRESS
    names), if any.

    Ray remembers the last head in a file that outlives the head; joining a dead one
    would retry for minutes, so an address nothing listens on counts as none. A head
    started in Ray's single-machine mode answers only as the 127.0.0.1 that Ray
    would rewrite: it is found in that mode.
    """
    from ray._private import services

    for loopback in (False, True):
        with loopback_only() if loopback else contextlib.nullcontext():
            try:
                found = services.canonicalize_bootstrap_address(None)
            except (ConnectionError, ValueError):
                return None
        if found is None:
            return None
        host, _, port = found.rpartition(":")
        try:
            _reachable(host, int(port))
        except (EnvironmentProblem, ValueError):
            continue
        return found, loopback
    return None


@dataclass(frozen=True)
class NodeInfo:
    """One alive node and its total logical resources."""

    node_id: str
    address: str
    hostname: str
    cpus: float
    gpus: float

    @property
    def name(self) -> str:
        """How messages name the node: host, address and a short id (several nodes may
        share a host, as in tests)."""
        return f"{self.hostname} ({self.address}, node {self.node_id[:8]})"

    def fits(self, cpus: float, gpus: float) -> bool:
        return self.cpus >= cpus and self.gpus >= gpus


def alive_nodes() -> list[NodeInfo]:
    """Every alive node of the connected cluster."""
    import ray

    return [NodeInfo(n["NodeID"], n["NodeManagerAddress"], n["NodeManagerHostname"],
                     float(n["Resources"].get("CPU", 0)), float(n["Resources"].get("GPU", 0)))
            for n in ray.nodes() if n.get("Alive")]


def nodes_for(cpus: float, gpus: float) -> list[NodeInfo]:
    """The nodes one unit of work (cpus + gpus) fits on; EnvironmentProblem if none.

    Ray would otherwise queue the work for ever, waiting for a node that never comes.
    """
    nodes = [n for n in alive_nodes() if n.fits(cpus, gpus)]
    if not nodes:
        have = ", ".join(f"{n.name}: {n.cpus:g} CPU, {n.gpus:g} GPU" for n in alive_nodes())
        raise EnvironmentProblem(
            f"no node of the Ray cluster has {cpus:g} CPU(s) and {gpus:g} GPU(s) for one "
            f"arm (nodes: {have or 'none'}): lower --ray-cpus / --ray-gpus or add nodes "
            "with `ray start --address HEAD:6379`")
    return nodes


def pinned(node: NodeInfo) -> Any:
    """A scheduling strategy that runs a task on `node` and nowhere else."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node.node_id, soft=False)
