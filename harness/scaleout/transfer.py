"""Generation directories as bytes: the driver's copy and a worker's copy, kept in step.

There is no shared filesystem. The run directory lives with the driver; a worker
runs an arm in a temporary copy seeded with the driver's complete generations of
that arm (adapters and kept data included, which is all the loop reads back), and
ships each generation it completes as a `GenerationPacket`. The driver writes the
packet exactly as a local run would have: the same files, the whole directory
renamed into place, the DONE marker last, then the generation's manifest steps.
Because a generation only counts once DONE exists on the driver, a worker that dies
mid-generation costs that generation and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.atomic import atomic_replace_dir, atomic_write_bytes
from harness.config import RunConfig
from harness.experiment.arms import Arm, arms_of
from harness.runfiles.store import DONE, RunStore


@dataclass(frozen=True)
class GenerationPacket:
    """One completed generation of one arm, as a worker ships it to the driver."""

    arm_id: str
    generation: int
    files: dict[str, bytes]       # path inside gen-N/ -> content; DONE is not among them
    arm_json: bytes               # arms/<arm>/arm.json as the loop wrote it
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)  # manifest steps, in order
    datasets: dict[str, str] = field(default_factory=dict)          # manifest dataset hashes
    warm_start: dict[str, bytes] = field(default_factory=dict)      # warmup/seed-S/..., gen 0

    @property
    def metrics(self) -> dict[str, Any]:
        return json.loads(self.files["metrics.json"])


def dir_files(root: Path, prefix: str = "") -> dict[str, bytes]:
    """Every regular file under `root` ({relative path: bytes}), hidden ones left out.

    Hidden names are the store's temporary files (`.name.tmp`, `.adapter.tmp-PID`):
    leftovers of an interrupted write, never part of a generation.
    """
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        out[f"{prefix}{rel.as_posix()}"] = path.read_bytes()
    return out


def write_files(root: Path, files: dict[str, bytes]) -> None:
    """Write {relative path: bytes} under `root`, each file atomically."""
    for rel, data in files.items():
        target = root / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise ValueError(f"refusing to write outside {root}: {rel}")
        atomic_write_bytes(target, data)


def warm_start_files(store: RunStore, seed: int) -> dict[str, bytes]:
    """A seed's complete warm start (warmup/seed-S/, run-relative paths), or nothing.

    Generation 0 is scored on the warm-started model and every generation of every
    arm of the seed trains from it, so it travels with generation 0 both ways: a
    worker must never train its own (it would be a different M0 than the one scored).
    """
    from harness.experiment.loop import WARM_MARKER, warm_dir

    directory = warm_dir(store, seed)
    if not (directory / WARM_MARKER).is_file():
        return {}
    rel = directory.relative_to(store.root).as_posix()
    return dir_files(directory, prefix=f"{rel}/")


def write_warm_start(store: RunStore, files: dict[str, bytes]) -> None:
    """Write a shipped warm start unless the store has one; its marker comes last."""
    from harness.experiment.loop import WARM_MARKER

    if not files:
        return
    marker = next(rel for rel in files if rel.endswith(f"/{WARM_MARKER}"))
    if (store.root / marker).is_file():
        return
    write_files(store.root, {rel: data for rel, data in files.items() if rel != marker})
    write_files(store.root, {marker: files[marker]})


# ----------------------------------------------------------------------------- worker side
def pack_generation(store: RunStore, arm_id: str, g: int, seed: int = 0) -> GenerationPacket:
    """A complete generation of a worker's store, ready to ship (generation 0 with the
    seed's warm start, if the run has one)."""
    files = dir_files(store.gen_dir(arm_id, g))
    files.pop(DONE, None)
    manifest = store.manifest()
    mine = f"{arm_id}/gen-{g}"

    def is_mine(key: str) -> bool:
        return key == mine or key.startswith(mine + "/")

    return GenerationPacket(
        arm_id, g, files, (store.arm_dir(arm_id) / "arm.json").read_bytes(),
        steps={k: v for k, v in manifest["steps"].items() if is_mine(k)},
        datasets={k: v for k, v in manifest["datasets"].items() if is_mine(k)},
        warm_start=warm_start_files(store, seed) if g == 0 else {})


# ----------------------------------------------------------------------------- driver side
def write_generation(store: RunStore, packet: GenerationPacket) -> None:
    """Write a shipped generation into the driver's store, exactly as the loop does.

    The directory is built beside its place and renamed in (replacing what an
    interrupted attempt left), the DONE marker comes last, then the manifest steps.
    """
    write_warm_start(store, packet.warm_start)
    atomic_write_bytes(store.arm_dir(packet.arm_id) / "arm.json", packet.arm_json)
    gen_dir = store.gen_dir(packet.arm_id, packet.generation)
    # The run store's own gen-N directory (what an interrupted attempt left) is the
    # only thing replaced here: the run directory is the harness's.
    atomic_replace_dir(lambda tmp: write_files(tmp, packet.files), gen_dir,
                       owns=lambda d: d == gen_dir)
    store.mark_done(packet.arm_id, packet.generation)
    manifest = store.manifest()
    store.update_manifest(steps={**manifest["steps"], **packet.steps},
                          datasets={**manifest["datasets"], **packet.datasets})


def done_generations(store: RunStore, arm_id: str, total: int) -> list[int]:
    """The generations 0..total of an arm that are complete in `store`."""
    return [g for g in range(total + 1) if store.is_done(arm_id, g)]


def gen0_source(store: RunStore, cfg: RunConfig, seed: int) -> Arm | None:
    """An arm of `seed` whose generation 0 is complete: every arm of the seed can copy it."""
    return next((a for a in arms_of(cfg) if a.seed == seed and store.is_done(a.arm_id, 0)),
                None)


def seed_files(store: RunStore, cfg: RunConfig, arm: Arm) -> dict[str, bytes]:
    """What a worker's copy of the run needs to continue `arm` where the driver is.

    Every complete generation of the arm (DONE included, so the loop skips it), the
    seed's warm start if there is one (so the worker trains from the M0 that
    generation 0 scored instead of training its own), and, while the arm has no
    generation 0 yet, a sibling's complete one: the loop copies that instead of
    evaluating the base model again, as in a local run.
    """
    def gen_files(arm_id: str, gens: Iterable[int]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for g in gens:
            rel = store.gen_dir(arm_id, g).relative_to(store.root).as_posix()
            out.update(dir_files(store.gen_dir(arm_id, g), prefix=f"{rel}/"))
        return out

    files = gen_files(arm.arm_id, done_generations(store, arm.arm_id, cfg.total_generations))
    files.update(warm_start_files(store, arm.seed))
    if not store.is_done(arm.arm_id, 0):
        sibling = gen0_source(store, cfg, arm.seed)
        if sibling is not None:
            files.update(gen_files(sibling.arm_id, [0]))
    return files
