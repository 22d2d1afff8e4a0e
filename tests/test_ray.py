"""Scale-out on Ray (harness/scaleout) on a real Ray cluster, every node on 127.0.0.1.

The cluster is one head that takes no arms and two worker nodes of one CPU each, all
on loopback (no dashboard, no usage stats, a private temp dir), so nothing leaves
this machine and nothing collides with another Ray instance on it. The grid is tiny
(2 filters x 2 seeds, 2 generations) and the reference is the same grid run
sequentially in this process: the contract is that Ray changes no number.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.atomic import atomic_write_json
from harness.cli import main
from harness.config import RunConfig, save_toml
from harness.errors import BadInput, EnvironmentProblem
from harness.experiment.arms import Arm
from harness.experiment.loop import run_experiment
from harness.model.tiny import ensure_tiny_model
from harness.runfiles.store import DONE, RunStore, read_json
from harness.scaleout.cluster import RaySettings, parse_address
from harness.scaleout.ray_executor import chunk_size
from harness.scaleout.transfer import (
    pack_generation,
    seed_files,
    write_generation,
)
from harness.scaleout.worker import fit_to_share
from tests.conftest import require_sandbox_image
from tests.model_helpers import SMALL_SPEC
from tests.test_loop import final_metrics, only_run, small_config

ray = pytest.importorskip("ray")

CLI = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())"]
LOOPBACK_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    # Ray resolves "this node" to the loopback address, so every address is 127.0.0.1
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_DEDUP_LOGS": "0",
    # workers at normal priority: at Ray's nice 15 a loaded CI machine starves them
    "RAY_worker_niceness": "0",
}
NODE_ARGS: dict[str, Any] = {"node_ip_address": "127.0.0.1",
                             "object_store_memory": 100 * 1024 * 1024}
GEN_LINE = re.compile(r" gen \d+: pass@1=")


# ----------------------------------------------------------------------------- unit tests
def test_addresses_and_resources_are_checked_before_anything_starts() -> None:
    assert parse_address("") is None and parse_address("auto") is None
    assert parse_address("10.0.0.5:6379") == ("10.0.0.5", 6379)
    for bad in ("head", "head:port", ":6379", "head:0"):
        with pytest.raises(BadInput, match="HOST:PORT"):
            parse_address(bad)
    RaySettings("auto", 0.5, 0.25).check()
    for cpus, gpus in ((0, 0), (-1, 0), (1, 1.5)):
        with pytest.raises(BadInput):
            RaySettings("auto", cpus, gpus).check()
    assert chunk_size(10_000, 2) == 256 and chunk_size(12, 2) == 2 and chunk_size(1, 8) == 1


def test_an_arm_gets_its_cpu_share_of_threads_and_containers() -> None:
    cfg = RunConfig()
    shared = fit_to_share(cfg, 2.0)
    assert (shared.model.threads, shared.sandbox.pool_size) == (2, 3)
    assert (cfg.model.threads, cfg.sandbox.pool_size) == (0, 0)  # the original is untouched
    cfg.model.threads, cfg.sandbox.pool_size = 4, 5
    assert (fit_to_share(cfg, 0.5).model.threads, fit_to_share(cfg, 0.5).sandbox.pool_size) \
        == (4, 5)  # explicit settings are kept


def _fake_generation(store: RunStore, arm_id: str, g: int) -> None:
    gen = store.gen_dir(arm_id, g)
    atomic_write_json(store.arm_dir(arm_id) / "arm.json", {"arm_id": arm_id})
    atomic_write_json(gen / "metrics.json", {"arm_id": arm_id, "generation": g})
    (gen / "adapter").mkdir(parents=True, exist_ok=True)
    (gen / "adapter" / "weights.bin").write_bytes(bytes(range(256)))
    (gen / ".samples.jsonl.x.tmp").write_text("left by a crash")
    store.record_step(f"{arm_id}/gen-{g}", "running")
    store.record_step(f"{arm_id}/gen-{g}/train.jsonl", "written", sha256="ab", n_examples=1)
    store.mark_done(arm_id, g)
    store.record_step(f"{arm_id}/gen-{g}", "done")


def test_a_generation_travels_with_its_files_and_manifest_steps(tmp_path: Path) -> None:
    worker = RunStore.create(tmp_path / "worker", "run")
    _fake_generation(worker, "arm-a", 1)
    packet = pack_generation(worker, "arm-a", 1)
    assert set(packet.files) == {"metrics.json", "adapter/weights.bin"}  # no DONE, no temp
    assert list(packet.steps) == ["arm-a/gen-1", "arm-a/gen-1/train.jsonl"]

    driver = RunStore.create(tmp_path / "driver", "run")
    stale = driver.gen_dir("arm-a", 1)
    stale.mkdir(parents=True)
    (stale / "kept.jsonl").write_text("from an interrupted attempt\n")
    write_generation(driver, packet)
    gen = driver.gen_dir("arm-a", 1)
    assert sorted(p.relative_to(gen).as_posix() for p in gen.rglob("*") if p.is_file()) == [
        "DONE", "adapter/weights.bin", "metrics.json"]
    assert (gen / "adapter" / "weights.bin").read_bytes() == bytes(range(256))
    manifest = driver.manifest()
    assert manifest["steps"]["arm-a/gen-1"]["status"] == "done"
    assert manifest["datasets"] == {"arm-a/gen-1/train.jsonl": "ab"}


def _arm(filter_name: str) -> Arm:
    return Arm.of(filter=filter_name, regime="replace", real_fraction=0.0, seed=0,
                  restart="merge", train_temperature=1.0)


def test_a_worker_is_seeded_with_the_arm_and_a_sibling_gen_0(tmp_path: Path) -> None:
    cfg = RunConfig()
    cfg.filters, cfg.seeds, cfg.generations = ["tests", "none"], [0], 3
    tests, none = _arm("tests"), _arm("none")
    store = RunStore.create(tmp_path, "run")
    for g in (0, 1):
        _fake_generation(store, tests.arm_id, g)
    (store.gen_dir(tests.arm_id, 2)).mkdir()  # in flight: not shipped
    own = seed_files(store, cfg, tests)
    assert {k.split("/")[2] for k in own} == {"gen-0", "gen-1"}
    assert f"arms/{tests.arm_id}/gen-1/{DONE}" in own
    sibling = seed_files(store, cfg, none)  # no gen 0 of its own: the sibling's, to copy
    assert {k.rsplit("/", 1)[0] for k in sibling} >= {f"arms/{tests.arm_id}/gen-0"}
    assert not any("gen-1" in k for k in sibling)



def _fake_warm_start(store: RunStore, seed: int) -> None:
    warm = store.root / "warmup" / f"seed-{seed}"
    (warm / "adapter").mkdir(parents=True)
    (warm / "adapter" / "adapter_model.safetensors").write_bytes(b"warm weights")
    atomic_write_json(warm / "warmup.json", {"seed": seed, "n_examples": 4})


def test_the_warm_start_travels_with_generation_0_both_ways(tmp_path: Path) -> None:
    """A worker must train from the M0 that generation 0 scored, never a warm start of
    its own (found in a smol-cpu run: each Ray arm retrained the 12-minute warm start)."""
    cfg = RunConfig()
    cfg.filters, cfg.seeds, cfg.generations = ["tests", "none"], [0], 2
    tests, none = _arm("tests"), _arm("none")
    worker = RunStore.create(tmp_path / "worker", "run")
    _fake_warm_start(worker, 0)
    _fake_generation(worker, tests.arm_id, 0)
    _fake_generation(worker, tests.arm_id, 1)
    assert not pack_generation(worker, tests.arm_id, 1, seed=0).warm_start
    packet = pack_generation(worker, tests.arm_id, 0, seed=0)
    assert set(packet.warm_start) == {"warmup/seed-0/adapter/adapter_model.safetensors",
                                      "warmup/seed-0/warmup.json"}

    driver = RunStore.create(tmp_path / "driver", "run")
    write_generation(driver, packet)
    assert (driver.root / "warmup/seed-0/adapter/adapter_model.safetensors").read_bytes() \
        == b"warm weights"
    for arm in (tests, none):  # the next worker of either arm starts from that M0
        shipped = seed_files(driver, cfg, arm)
        assert shipped["warmup/seed-0/warmup.json"] == packet.warm_start[
            "warmup/seed-0/warmup.json"]


# ----------------------------------------------------------------------------- the cluster
@pytest.fixture(scope="module")
def ray_env() -> Iterator[Path]:
    """Loopback-only Ray settings and a private, short temp dir (Unix socket paths)."""
    from ray._private import ray_constants

    tmp = Path(tempfile.mkdtemp(prefix="cbray-", dir="/tmp"))
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**LOOPBACK_ENV, "RAY_TMPDIR": str(tmp)}.items():
            mp.setenv(key, value)  # for the node and worker processes started from here
        # ...and for this process, which read the environment when it imported ray
        mp.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
        yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(ray_env: Path) -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True,
                head_node_args={**NODE_ARGS, "num_cpus": 0, "include_dashboard": False})
    try:
        for _ in range(2):
            c.add_node(num_cpus=1, **NODE_ARGS)
        yield c
    finally:
        c.shutdown()


@pytest.fixture(scope="module")
def docker_ready() -> None:
    require_sandbox_image()


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tiny_model(str(tmp_path_factory.mktemp("model-cache")), progress=False,
                             spec=SMALL_SPEC)


def grid_config(model: Path, out: Path) -> RunConfig:
    """2 filters x 2 seeds, 2 generations, a small warm start per seed; one thread per
    arm, as each node has one CPU."""
    cfg = small_config(model, out, filters=["tests", "none"], seeds=[0, 1])
    cfg.training.warmup_epochs, cfg.training.warmup_examples = 1, 8
    return cfg


@pytest.fixture(scope="module")
def reference(small_model: Path, docker_ready: None,
              tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """The grid without Ray: every arm in turn, in this process."""
    from sandbox.backends import make_executor

    cfg = grid_config(small_model, tmp_path_factory.mktemp("sequential"))
    with make_executor(cfg.executor, cfg.sandbox) as executor:
        store = run_experiment(cfg, executor, lambda line: None)
    return final_metrics(store.root)


def files_of(run_dir: Path) -> list[str]:
    return sorted(p.relative_to(run_dir).as_posix() for p in (run_dir / "arms").rglob("*")
                  if p.is_file())


@pytest.mark.slow
@pytest.mark.docker
def test_grid_on_ray_gives_the_sequential_metrics_and_files(
        cluster: Any, small_model: Path, reference: dict, tmp_path: Path) -> None:
    from harness.scaleout.grid import run_grid

    cfg = grid_config(small_model, tmp_path)
    lines: list[str] = []
    store = run_grid(cfg, RaySettings(cluster.address), lines.append)

    assert final_metrics(store.root) == reference
    manifest = read_json(store.root / "manifest.json")
    assert manifest["status"] == "complete" and manifest["ray"]["nodes"] == 2
    # the same files as a local run: DONE, metrics, samples, verdicts, kept, train, adapter
    n_arms, n_gens = 4, cfg.total_generations + 1
    gen2 = {f.split("/", 3)[3] for f in files_of(store.root) if "/gen-2/" in f}
    assert gen2 >= {"DONE", "metrics.json", "samples.jsonl", "verdicts.jsonl", "kept.jsonl",
                    "train.jsonl", "adapter/adapter_config.json"}
    assert len([k for k in manifest["steps"] if k.count("/") == 1]) == n_arms * n_gens
    assert all(s["status"] in ("done", "written") for s in manifest["steps"].values())
    # one progress line per finished arm-generation
    assert len([line for line in lines if GEN_LINE.search(line)]) == n_arms * n_gens
    assert (store.root / "summary.json").is_file()
    # each seed's warm start came back with its generation 0, trained once, not per arm
    for seed in (0, 1):
        assert (store.root / "warmup" / f"seed-{seed}" / "warmup.json").is_file()


@pytest.mark.slow
@pytest.mark.docker
def test_an_arm_whose_node_dies_is_resumed_elsewhere_with_identical_metrics(
        cluster: Any, small_model: Path, reference: dict, tmp_path: Path) -> None:
    from harness.scaleout.grid import run_grid

    cfg = grid_config(small_model, tmp_path)
    lines: list[str] = []
    removed: list[str] = []

    def kill_a_node_mid_arm() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # an arm is at gen 2, the others still busy
            if list(tmp_path.glob("*/arms/*/gen-1/DONE")):
                victim = next(iter(cluster.worker_nodes))
                cluster.remove_node(victim, allow_graceful=False)
                removed.append(victim.node_id)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_node_mid_arm, daemon=True)
    killer.start()
    try:
        store = run_grid(cfg, RaySettings(cluster.address), lines.append)
    finally:
        killer.join(timeout=60)
        if removed:  # back to two nodes for the next tests (Ray adds nodes from main only)
            cluster.add_node(num_cpus=1, **NODE_ARGS)

    assert removed, "no generation finished, so no node was removed"
    assert any("lost its worker" in line for line in lines), lines
    assert final_metrics(store.root) == reference
    assert read_json(store.root / "manifest.json")["status"] == "complete"


# ----------------------------------------------------------------------------- Ctrl-C
def _processes_with_env(marker: str) -> set[int]:
    """Live processes whose environment holds `marker` (this driver's Ray instance)."""
    found: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                status = (proc / "status").read_text()
                if "\nState:\tZ" not in status:
                    found.add(int(proc.name))
        except OSError:
            continue
    return found


def request_cleanup(path: Path) -> None:
    """Remove a driver's Ray temp dir once its processes are gone (they write there)."""
    import atexit

    atexit.register(shutil.rmtree, path, ignore_errors=True)


def _sandbox_containers() -> list[dict[str, Any]]:
    """Every sandbox container, from one list call (no per-container inspect, which
    races with a container removing itself)."""
    from sandbox.docker_env import connect

    found = connect().api.containers(all=True, filters={"label": "collapse-bench.sandbox=1"})
    return [c for c in found if c.get("State") not in ("removing", "dead")]


def _owner_pid(container: dict[str, Any]) -> int | None:
    parts = (container.get("Labels") or {}).get("collapse-bench.owner", "").split(":")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


@pytest.mark.slow
@pytest.mark.docker
def test_ctrl_c_leaves_no_containers_or_ray_processes_and_resume_completes(
        cluster: Any, small_model: Path, reference: dict, tmp_path: Path) -> None:
    config_file = tmp_path / "config.toml"
    save_toml(grid_config(small_model, tmp_path / "out"), config_file)
    own_tmp = Path(tempfile.mkdtemp(prefix="cbray-driver-", dir="/tmp"))
    marker = f"RAY_TMPDIR={own_tmp}"
    env = {**os.environ, **LOOPBACK_ENV, "RAY_TMPDIR": str(own_tmp)}
    env.pop("RAY_ADDRESS", None)
    # `--ray` alone: the driver starts its own local Ray instance (one CPU per arm)
    driver = subprocess.Popen([*CLI, "run", "--config", str(config_file), "--ray"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    seen_pids: set[int] = set()
    seen_containers: set[str] = set()
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and driver.poll() is None:
            seen_pids |= _processes_with_env(marker)
            ours = [c for c in _sandbox_containers() if _owner_pid(c) in seen_pids]
            seen_containers |= {c["Id"] for c in ours}
            if ours:
                break
            time.sleep(0.2)
        assert seen_containers, "no arm ever started its sandbox"
        os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = driver.communicate(timeout=180)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
        request_cleanup(own_tmp)

    assert driver.returncode == 130, err[-3000:]
    assert "--resume" in err
    deadline = time.monotonic() + 20
    while _processes_with_env(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _processes_with_env(marker), "Ray processes outlived the driver"
    left = [c["Names"] for c in _sandbox_containers()
            if c["Id"] in seen_containers or _owner_pid(c) in seen_pids]
    assert not left, f"containers outlived Ctrl-C: {left}"

    # and `--resume` (here on the test cluster) finishes with the reference's numbers
    run_dir = only_run(tmp_path / "out")
    assert read_json(run_dir / "manifest.json")["status"] == "interrupted"
    assert main(["run", "--resume", str(run_dir), "--ray", cluster.address]) == 0
    assert final_metrics(run_dir) == reference


# ----------------------------------------------------------------------------- eval --ray
@pytest.mark.slow
@pytest.mark.docker
def test_eval_on_ray_gives_the_local_report(cluster: Any, docker_ready: None,
                                            tmp_path: Path) -> None:
    from tasks.registry import load_suite, select_split

    suite = "synth:n_train=10,n_eval=12,seed=7"
    rows = []
    for i, task in enumerate(select_split(load_suite(suite), "eval")):
        wrong = ["    return x\n", "    return None\n", "    raise ValueError\n",
                 "    while True:\n        pass\n" if i == 0 else "    return 0\n"]
        rows += [{"task_id": task.task_id, "completion": c}
                 for c in [task.canonical_solution] * (i % 3) + wrong]
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def evaluate(out: Path, *extra: str) -> tuple[dict, list[dict]]:
        assert main(["eval", "--suite", suite, "--samples", str(samples), "--timeout", "1",
                     "--no-progress", "--out", str(out), *extra]) == 0
        verdicts = [json.loads(line) for line in
                    out.with_name(f"{out.stem}.verdicts.jsonl").read_text().splitlines()]
        return json.loads(out.read_text()), [{**v, "duration_s": None} for v in verdicts]

    local = evaluate(tmp_path / "local.json")
    on_ray = evaluate(tmp_path / "ray.json", "--ray", cluster.address)
    assert on_ray == local
    assert local[0]["status_counts"]["timeout"] >= 1 and local[0]["status_counts"]["passed"]


# ----------------------------------------------------------------------------- readiness
@pytest.mark.slow
def test_a_node_without_the_sandbox_image_stops_the_run_before_it_starts(
        cluster: Any, small_model: Path, tmp_path: Path) -> None:
    from harness.scaleout.grid import run_grid

    cfg = grid_config(small_model, tmp_path)
    cfg.sandbox.image = "collapse-bench-sandbox:no-such-tag"
    with pytest.raises(EnvironmentProblem) as caught:
        run_grid(cfg, RaySettings(cluster.address), lambda line: None)
    text = str(caught.value)
    assert text.count("is not ready") == 2 and "127.0.0.1" in text
    assert "sandbox build" in text or "Docker" in text
    assert not list(tmp_path.iterdir()), "a run directory was created"



# ------------------------------------------------------- authentication and loopback only
JOIN_SCRIPT = """
import json, sys
from harness.errors import CollapseBenchError
from harness.scaleout.cluster import connected
try:
    with connected(sys.argv[1]) as session:
        import ray
        print(json.dumps({"joined": session.address, "nodes": len(ray.nodes())}))
except CollapseBenchError as exc:
    print(json.dumps({"error": str(exc), "exit": exc.exit_code}))
"""

HEAD_SCRIPT = """
import sys
from ray.cluster_utils import Cluster
c = Cluster(initialize_head=True, head_node_args={"node_ip_address": "127.0.0.1",
            "num_cpus": 1, "include_dashboard": False,
            "object_store_memory": 100 * 1024 * 1024})
print(c.address, flush=True)
sys.stdin.read()  # until the test closes stdin
c.shutdown()
"""


def _ray_env(tmp: Path, home: Path, **extra: str) -> dict[str, str]:
    """This machine's environment with a private Ray temp dir and HOME (where Ray keeps
    ~/.ray/auth_token), no Ray address and no authentication mode unless given."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH",
                        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    home.mkdir(parents=True, exist_ok=True)
    return {**env, "RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": str(tmp), "HOME": str(home),
            **extra}


def _join(address: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", JOIN_SCRIPT, address], env=env, text=True,
                          capture_output=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "stderr": done.stderr}


@pytest.mark.slow
def test_a_token_authenticated_head_is_joined_or_the_error_names_authentication(
        tmp_path: Path) -> None:
    """Issue 25 blocker: with Ray 2.60, `ray start --head` enables token authentication
    whenever ~/.ray/auth_token exists (any earlier `ray.init()` writes it), but Ray
    sends the token to an explicit `--ray HOST:PORT` only under RAY_AUTH_MODE=token:
    the join failed after ~20 InvalidAuthToken lines with an error that never said
    "authentication". Now a token that is there is used, and without one the line
    says what to do, at once: the head is asked whether it refuses a plain client
    before `ray.init` would retry for ~20 s."""
    token = "0123456789abcdef" * 4
    tmp = Path(tempfile.mkdtemp(prefix="cbauth-", dir="/tmp"))
    request_cleanup(tmp)
    head_home = tmp_path / "head-home"
    (head_home / ".ray").mkdir(parents=True)
    (head_home / ".ray" / "auth_token").write_text(token)
    head = subprocess.Popen([sys.executable, "-c", HEAD_SCRIPT], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL,
                            env=_ray_env(tmp, head_home, RAY_AUTH_MODE="token",
                                         **LOOPBACK_ENV))
    try:
        assert head.stdout is not None
        address = head.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), address
        # the token is there and the mode unset; the client in Ray's single-machine mode
        with_token = _join(address, _ray_env(tmp, head_home, **LOOPBACK_ENV))
        assert with_token.get("nodes") == 1, with_token
        # the harness finds the loopback-only head without that mode, too
        assert _join(address, _ray_env(tmp, head_home)).get("nodes") == 1
        without = _join(address, _ray_env(tmp, tmp_path / "empty-home"))
        assert without.get("exit") == 3, without
        assert "authentication" in without["error"] and "\n" not in without["error"]
        assert "RAY_AUTH_MODE=token" in without["error"]
        # asked once, not through Ray's ~20 retries, each of which printed a warning
        assert "InvalidAuthToken" not in without["stderr"], without["stderr"][-2000:]
    finally:
        assert head.stdin is not None
        head.stdin.close()
        head.wait(timeout=120)


PRIVATE_SCRIPT = """
import json, psutil
from harness.scaleout.cluster import connected
with connected("") as session:
    me = psutil.Process()
    procs = [me, *me.children(recursive=True)]
    listening = sorted({c.laddr.ip for p in procs for c in p.net_connections("inet")
                        if c.status == psutil.CONN_LISTEN})
    print(json.dumps({"started": session.started, "listening": listening}))
"""


@pytest.mark.slow
def test_a_private_instance_listens_on_127_0_0_1_only(tmp_path: Path) -> None:
    """Issue 25 blocker: `--ray` with no address started its private instance on every
    interface (Ray on Linux rewrites a loopback node address and binds 0.0.0.0), where
    the docs promise 127.0.0.1. Every socket of the instance must be on loopback."""
    tmp = Path(tempfile.mkdtemp(prefix="cbpriv-", dir="/tmp"))
    request_cleanup(tmp)
    done = subprocess.run([sys.executable, "-c", PRIVATE_SCRIPT], text=True,
                          capture_output=True, timeout=240,
                          env=_ray_env(tmp, tmp_path / "home"))
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["started"] and seen["listening"], seen
    assert set(seen["listening"]) <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, seen


def test_the_ray_extra_pins_the_ray_this_suite_runs() -> None:
    """Issue 25: `ray[default]>=2.9` named no version anybody had tried; the extra pins
    the one these tests (and docs/ray.md's transcript) ran with."""
    import tomllib

    from harness.scaleout.cluster import RAY_VERSION

    meta = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert meta["project"]["optional-dependencies"]["ray"] == [f"ray[default]=={RAY_VERSION}"]
    assert ray.__version__ == RAY_VERSION
