"""The Docker sandbox against real containers: hostile programs, failures, cleanup.

Hostile programs run on a single-container pool so that the program after an attack
provably runs where the attack ran: each attack is followed (where it could leave
something behind) by a program that looks for it, and always by an honest program
that must still pass. Timeouts are short (1.5 s) to keep the module fast.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.errors import EnvironmentProblem
from sandbox.check import Listener, docker_host_address, run_case
from sandbox.docker_pool import DockerPool
from sandbox.executor import ExecRequest, SandboxSettings
from sandbox.hostile import CASES, LOOK_FOR_LEFTOVERS, HostileCase, add_request, honest_request
from tests.conftest import docker_unavailable, require_sandbox_image

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 1.5
MARGIN_S = 1.5
"""An attack's answer must reach the harness within its timeout plus this."""


@pytest.fixture(scope="module", autouse=True)
def docker_engine() -> None:
    """Every test here needs a Docker engine and a current sandbox image."""
    require_sandbox_image()


@pytest.fixture(scope="module")
def single_pool() -> Iterator[Any]:
    """One container: attack, look-for-leftovers and honest program share it."""
    from sandbox.docker_pool import DockerPool

    try:
        pool = DockerPool(SandboxSettings(pool_size=1), unresponsive_after_s=2.0)
    except EnvironmentProblem as exc:
        docker_unavailable(str(exc))
    with pool:
        yield pool


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    try:
        host = docker_host_address()
    except EnvironmentProblem as exc:
        docker_unavailable(str(exc))
    target = Listener(host)
    yield target
    target.close()


def containers(label: str) -> list[Any]:
    from sandbox.docker_env import connect

    found = connect().containers.list(all=True, filters={"label": label}, ignore_removed=True)
    return [c for c in found if c.status not in ("removing", "dead")]


def wait_gone(label: str, within_s: float = 10.0) -> list[Any]:
    deadline = time.monotonic() + within_s
    left = containers(label)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = containers(label)
    return left


# -- hostile programs


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_program_is_contained(case: HostileCase, single_pool: Any,
                                      listener: Listener) -> None:
    """Each attack is a wrong program with a trick, run between honest and wrong
    controls in the same container (the ones after it queued while it runs)."""
    row = run_case(single_pool, case, TIMEOUT_S, listener.sock.getsockname()[0], listener,
                   single_pool.settings.output_limit_bytes)
    assert row.contained, row.note
    assert row.status in case.expect


LEAVES_STATE = [c for c in CASES if c.follow_up and c.name != "mark_working_directory"]
"""mark_working_directory cannot even plant its marks now (the working directory is the
runner's): `test_a_program_cannot_mark_its_working_directory` shows that instead."""


@pytest.mark.parametrize("case", LEAVES_STATE, ids=[c.name for c in LEAVES_STATE])
def test_what_an_attack_leaves_would_be_found(case: HostileCase, single_pool: Any) -> None:
    """Control for the follow-up programs: the attack's state, planted in the same
    program that then looks for it, is found - so a follow-up that finds nothing
    means the state was removed between programs, not that the probe is blind."""
    plant = case.program.replace("os._exit(0)", "pass")
    request = add_request(f"{case.name}-plant-and-look", plant + LOOK_FOR_LEFTOVERS.replace(
        "time.sleep(0.6)", "time.sleep(0.4)"), 5.0)
    [result] = single_pool.run([request])
    assert result.passed, (result.status, result.error, result.stderr_tail[-500:])


def test_a_program_cannot_mark_its_working_directory(single_pool: Any) -> None:
    """The working directory is new for every program and belongs to the runner: a
    program can write in it, but not set its times, mode or extended attributes."""
    probe = ("import os\nrefused = 0\n"
             "for trick in (lambda: os.utime('.', (1234567, 1234567)),\n"
             "              lambda: os.chmod('.', 0o700),\n"
             "              lambda: os.setxattr('.', 'user.cb', b'1')):\n"
             "    try:\n        trick()\n    except OSError:\n        refused += 1\n"
             "open('f', 'w').write('x')\nos.remove('f')\n"
             "def add(a, b):\n    return a + b if refused == 3 else None\n")
    [result] = single_pool.run([add_request("mark-cwd", probe)])
    assert result.passed, result


def test_the_queued_program_attack_would_find_a_queue_in_memory(single_pool: Any) -> None:
    """Control for steal_queued_program: when a request object with the honest program
    is in its memory (as the forked runner's queue was), it finds it and passes."""
    from sandbox.hostile import BY_NAME, HONEST

    planted = (f"class Request:\n    def __init__(self):\n        self.program = {HONEST!r}\n"
               "_queue = [Request()]\n")
    [result] = single_pool.run([add_request("planted-queue",
                                            planted + BY_NAME["steal_queued_program"].program)])
    assert result.passed, result


def test_the_network_attack_would_pass_with_a_network(listener: Listener) -> None:
    """Control for the network case: from a container on the default bridge the same
    program reaches the listener, so its failure in the sandbox is the isolation."""
    from sandbox.docker_env import connect

    before = listener.connections
    code = (f"import socket; s = socket.create_connection(('{listener.sock.getsockname()[0]}', "
            f"{listener.port}), timeout=3); print(s.recv(2).decode())")
    out = connect().containers.run(SandboxSettings().image, ["-c", code], entrypoint="python3",
                                   network_mode="bridge", remove=True)
    assert out.strip() == b"ok"
    assert listener.connections == before + 1


def test_the_container_is_hardened(single_pool: Any) -> None:
    s: SandboxSettings = single_pool.settings
    probe = f'''
import os

def cgroup(v1, v2):
    for path in (v1, v2):
        try:
            return open(path).read().split()[0]
        except OSError:
            pass

status = open("/proc/self/status").read()
caps = dict(line.split(":\\t") for line in status.splitlines() if line.startswith("Cap"))
assert os.getuid() != 0 and os.getgid() != 0
assert int(caps["CapEff"], 16) == int(caps["CapPrm"], 16) == int(caps["CapInh"], 16) == 0
assert int(caps["CapAmb"], 16) == 0
# What the runner kept (and the program can never regain): SETUID, SETGID and KILL only.
assert int(caps["CapBnd"], 16) == (1 << 7) | (1 << 6) | (1 << 5), caps
assert "NoNewPrivs:\\t1" in status
# The runner (PID 1) and the process that forked this one run under another uid.
for pid in (1, os.getppid()):
    owner = [line.split()[1] for line in open(f"/proc/{{pid}}/status").read().splitlines()
             if line.startswith("Uid:")][0]
    assert int(owner) != os.getuid(), pid
    for path in (f"/proc/{{pid}}/fd/1", f"/proc/{{pid}}/mem"):
        try:
            open(path, "rb")
        except PermissionError:
            pass
        else:
            raise AssertionError(f"could open {{path}}")
assert os.listdir("/sys/class/net") == ["lo"]
mounts = {{m.split()[1]: m.split() for m in open("/proc/mounts").read().splitlines()}}
assert "ro" in mounts["/"][3].split(",")
assert mounts["/tmp"][0] == "tmpfs" and "size={s.tmpfs_mb * 1024}k" in mounts["/tmp"][3]
memory = {s.memory_mb} * 2**20
limit = cgroup("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max")
assert int(limit) == memory
swap = cgroup("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
              "/sys/fs/cgroup/memory.swap.max")
assert swap in (str(memory), "0")
assert cgroup("/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max") == "{s.pids_limit}"
quota = cgroup("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu.max")
assert int(quota) == int({s.cpus} * 100000), quota
assert os.getppid() != 1  # forked by the zygote, not by the runner (PID 1)
'''
    [result] = single_pool.run([ExecRequest("probe", probe, (), "", 5.0)])
    assert result.passed, result.stderr_tail


def test_the_container_memory_limit_is_a_backstop(single_pool: Any) -> None:
    """With the address-space limit above the container's, the cgroup ends it: oom."""
    hog = "blocks = []\nwhile True:\n    blocks.append(b'x' * (32 * 2**20))\n"
    [result] = single_pool.run([ExecRequest("hog", hog, (), "", 10.0, memory_mb=4096)])
    assert result.status == "oom", result
    assert single_pool.run([honest_request("after-hog")])[0].passed


def test_signals_to_the_runner_are_void(single_pool: Any) -> None:
    """The runner (PID 1) and the zygote run under another uid: no signal reaches them."""
    ids = list(single_pool.container_ids)
    replacements = single_pool.replacements
    kill = ExecRequest("kill", "import os, signal, time\n"
                       "for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP,"
                       " signal.SIGSTOP):\n    for pid in (os.getppid(), 1):\n"
                       "        try:\n            os.kill(pid, sig)\n"
                       "        except PermissionError:\n            pass\n"
                       "time.sleep(0.2)\n", (), "", TIMEOUT_S)
    [result] = single_pool.run([kill])
    assert result.status == "passed", result  # every kill was a no-op
    assert single_pool.container_ids == ids and single_pool.replacements == replacements
    assert single_pool.run([honest_request("after-kills")])[0].passed


# -- the shared pool


def test_requests_spread_over_the_pool(docker_executor: DockerPool) -> None:
    n = len(docker_executor.channels)
    if n < 2:
        pytest.skip("a one-core machine has a one-container pool")
    reqs = [ExecRequest(str(i), "import time\ntime.sleep(0.5)\n", (), "", 5.0)
            for i in range(2 * n)]
    t0 = time.monotonic()
    results = docker_executor.run(reqs)
    elapsed = time.monotonic() - t0
    assert all(r.passed for r in results)
    assert elapsed < 2 * n * 0.5 - 0.3  # serially it would take 2n x 0.5 s


# -- failures of the sandbox itself


def test_a_dead_container_is_replaced_and_its_requests_retried(single_pool: Any) -> None:
    victim = single_pool.container_ids[0]
    threading.Timer(0.4, lambda: single_pool.client.api.kill(victim)).start()
    results = single_pool.run([ExecRequest(str(i), "import time\ntime.sleep(0.3)\n", (), "",
                                           5.0) for i in range(3)])
    assert [r.status for r in results] == ["passed"] * 3
    assert victim not in single_pool.container_ids and len(single_pool.container_ids) == 1


def test_a_request_whose_container_dies_twice_is_a_sandbox_error(single_pool: Any) -> None:
    stop = threading.Event()

    def keep_killing() -> None:
        while not stop.is_set():
            for cid in list(single_pool.container_ids):
                with contextlib.suppress(Exception):
                    single_pool.client.api.kill(cid)
            time.sleep(0.1)

    killer = threading.Thread(target=keep_killing)
    killer.start()
    try:
        [result] = single_pool.run([ExecRequest("doomed", "import time\ntime.sleep(2)\n", (),
                                                "", 5.0)])
    finally:
        stop.set()
        killer.join()
    assert result.status == "sandbox_error" and "after one retry" in result.error
    assert single_pool.run([honest_request("recovered")])[0].passed


def test_a_frozen_container_is_replaced_after_timeout_plus_margin(single_pool: Any) -> None:
    victim = single_pool.container_ids[0]
    threading.Timer(0.3, lambda: single_pool.client.api.pause(victim)).start()
    t0 = time.monotonic()
    [result] = single_pool.run([ExecRequest("s", "import time\ntime.sleep(0.6)\n", (), "",
                                            1.0)])
    elapsed = time.monotonic() - t0
    assert result.passed
    assert elapsed < 1.0 + single_pool.unresponsive_after_s + 2.0
    assert victim not in single_pool.container_ids
    assert victim not in [c.id for c in containers(f"collapse-bench.pool={single_pool.pool_id}")]


# -- environment problems


def test_a_missing_image_is_an_environment_problem_with_the_fix() -> None:
    from sandbox.docker_pool import DockerPool

    with pytest.raises(EnvironmentProblem, match="collapse-bench sandbox build"):
        DockerPool(SandboxSettings(image="collapse-bench-sandbox:no-such-tag"))


def test_an_image_from_an_older_runner_is_refused(tmp_path: Path) -> None:
    from sandbox.docker_env import connect
    from sandbox.docker_pool import DockerPool

    client = connect()
    base = SandboxSettings().image
    (tmp_path / "Dockerfile").write_text(
        f"FROM {base}\nCOPY runner.py /opt/collapse-bench/runner.py\n")
    old = (ROOT / "sandbox" / "runner.py").read_text() + "\n# an older runner\n"
    (tmp_path / "runner.py").write_text(old)
    tag = "collapse-bench-sandbox:test-stale"
    client.images.build(path=str(tmp_path), tag=tag, rm=True, forcerm=True)
    try:
        with pytest.raises(EnvironmentProblem, match=r"older sandbox/runner\.py"):
            DockerPool(replace(SandboxSettings(pool_size=1), image=tag))
    finally:
        client.images.remove(tag, force=True)


def test_no_daemon_is_an_environment_problem_with_the_fix(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox.docker_pool import DockerPool

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(EnvironmentProblem, match="make docker"):
        DockerPool(SandboxSettings())


# -- cleanup: normal exit, Ctrl-C, SIGTERM, kill -9 + sweep

HARNESS = """
import sys
from sandbox.docker_pool import DockerPool
from sandbox.executor import ExecRequest, SandboxSettings

pool = DockerPool(SandboxSettings(pool_size=2))
print(pool.pool_id, flush=True)
sys.stdin.readline()  # the test has seen the containers
if sys.argv[1] == "exit":
    assert pool.run([ExecRequest("a", "x = 1")])[0].passed
    sys.exit(0)  # no close(): the exit hook must remove the containers
pool.run([ExecRequest("s", "import time\\ntime.sleep(60)", timeout_s=120)])
"""


def start_harness(mode: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", HARNESS, mode], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    pool_id = proc.stdout.readline().strip()
    assert pool_id, proc.stderr.read() if proc.stderr else ""
    label = f"collapse-bench.pool={pool_id}"
    assert len(containers(label)) == 2
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return proc, label


def test_no_containers_left_after_a_normal_exit() -> None:
    proc, label = start_harness("exit")
    assert proc.wait(timeout=30) == 0
    assert wait_gone(label, 3) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_no_containers_left_after_an_interrupt(sig: signal.Signals) -> None:
    proc, label = start_harness("hang")
    time.sleep(0.5)  # the long program is in flight
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert wait_gone(label, 3) == []


def test_kill_9_then_a_new_start_sweeps_the_orphans() -> None:
    from sandbox.docker_pool import DockerPool

    proc, label = start_harness("hang")
    time.sleep(0.5)
    proc.kill()
    proc.wait(timeout=10)
    with DockerPool(SandboxSettings(pool_size=1)):
        assert wait_gone(label, 3) == []


def test_the_sweep_removes_only_containers_whose_owner_is_dead() -> None:
    from sandbox.docker_env import connect
    from sandbox.docker_pool import OWNER_LABEL, POOL_LABEL, SANDBOX_LABEL, owner_tag, sweep_stale

    client = connect()
    dead = subprocess.Popen(["true"])
    dead.wait()
    alive = subprocess.Popen(["sleep", "60"])
    made = []
    try:
        for name, owner in (("dead", owner_tag(dead.pid)), ("alive", owner_tag(alive.pid))):
            labels = {SANDBOX_LABEL: "1", POOL_LABEL: f"sweep-test-{name}", OWNER_LABEL: owner}
            c = client.containers.run(SandboxSettings().image, detach=True, stdin_open=True,
                                      network_mode="none", labels=labels)
            made.append(c)
        swept = sweep_stale(client)
        assert made[0].name in swept and made[1].name not in swept
        assert containers(f"{POOL_LABEL}=sweep-test-alive")
        assert not containers(f"{POOL_LABEL}=sweep-test-dead")
    finally:
        alive.kill()
        alive.wait()
        for c in made:
            with contextlib.suppress(Exception):
                c.remove(force=True)


def test_the_sweep_skips_a_container_another_process_removes_while_it_lists(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Found running the suite on two workers beside two runs: a pool started while
    another process's pool was closing failed with NotFound, because the sweep lists
    the engine's sandbox containers, then inspects each one, and one was gone by then.
    Here the other process is played by removing the container, for real, just before
    the sweep inspects it."""
    from sandbox.docker_env import connect
    from sandbox.docker_pool import OWNER_LABEL, POOL_LABEL, SANDBOX_LABEL, owner_tag, sweep_stale

    client = connect()
    labels = {SANDBOX_LABEL: "1", POOL_LABEL: "sweep-test-vanishing", OWNER_LABEL: owner_tag()}
    vanishing = client.containers.create(SandboxSettings().image, labels=labels,
                                         network_mode="none")
    inspect = client.api.inspect_container

    def removed_first(container_id: str) -> Any:
        if container_id == vanishing.id:
            client.api.remove_container(container_id, force=True)
        return inspect(container_id)

    monkeypatch.setattr(client.api, "inspect_container", removed_first)
    try:
        assert vanishing.name not in sweep_stale(client)
    finally:
        with contextlib.suppress(Exception):
            vanishing.remove(force=True)
    assert not containers(f"{POOL_LABEL}=sweep-test-vanishing")
