"""`mbpp`: Mostly Basic Python Problems, read through `datasets`.

Source: the hub id "mbpp" (config "full") for users with internet, or a local copy
in the original release format (one JSON object per line with text, code,
test_list, test_setup_code, task_id) via `mbpp:/path/to/mbpp.jsonl`, which also goes
through `datasets` (`load_dataset("json", ...)`) so both paths see the same rows.

Conventions follow the original release and common practice:

* splits by task_id range: prompt 1-10, test 11-510, validation 511-600,
  train 601-974 (the hub's own splits are ignored and recomputed the same way);
* prompt: a docstring holding the problem text and the first test, which shows the
  expected function name and signature (the model writes the whole function);
* tests: `test_setup_code` is the program preamble, each entry of `test_list` is one
  assert (a sample passes when all of them pass); `challenge_test_list` is unused;
* entry_point: the `def` in the reference code whose name the tests call.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.errors import BadInput, EnvironmentProblem
from tasks.jsonlines import read_json_objects
from tasks.schema import Task

SUITE = "mbpp"
HUB_ID = "mbpp"
HUB_CONFIG = "full"
HUB_HOST = "huggingface.co"
SPLIT_RANGES: dict[str, tuple[int, int]] = {
    "prompt": (1, 10),
    "test": (11, 510),
    "validation": (511, 600),
    "train": (601, 974),
}
FIELDS = ("task_id", "text", "code", "test_list")
_DEF = re.compile(r"^def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)


def split_of(task_id: int) -> str:
    """The original release's split for a task_id; "extra" outside the known ranges."""
    for split, (lo, hi) in SPLIT_RANGES.items():
        if lo <= task_id <= hi:
            return split
    return "extra"


def entry_point_of(code: str, tests: Iterable[str]) -> str:
    """The function the tests call: the first def whose name appears in a test."""
    names = _DEF.findall(code)
    joined = "\n".join(tests)
    for name in names:
        if re.search(rf"\b{re.escape(name)}\s*\(", joined):
            return name
    if names:
        return names[-1]
    raise ValueError("no function definition in 'code'")


def make_prompt(text: str, first_test: str) -> str:
    """Docstring-style prompt: the problem text, then one test as the signature hint."""
    return f'"""\n{text.strip()}\n{first_test.strip()}\n"""\n'


def task_from_row(row: Mapping[str, Any], where: str) -> Task:
    """A Task from one MBPP row; BadInput naming `where` and the field when malformed."""
    for field in FIELDS:
        if field not in row or row[field] is None:
            raise BadInput(f"{where}: missing field {field!r}")
    try:
        task_id = int(row["task_id"])
    except (TypeError, ValueError):
        raise BadInput(f"{where}: field 'task_id' must be an integer") from None
    tests = row["test_list"]
    if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
        raise BadInput(f"{where}: field 'test_list' must be a non-empty list of strings")
    code = str(row["code"]).replace("\r\n", "\n")
    try:
        entry_point = entry_point_of(code, tests)
    except ValueError as exc:
        raise BadInput(f"{where}: field 'code' has {exc}") from None
    setup = str(row.get("test_setup_code") or "").replace("\r\n", "\n")
    asserts = tuple(t.strip() for t in tests)
    test = (setup.rstrip() + "\n" if setup.strip() else "") + "\n".join(asserts) + "\n"
    return Task(task_id=f"{SUITE}/{task_id}", prompt=make_prompt(str(row["text"]), tests[0]),
                entry_point=entry_point, canonical_solution=code.rstrip() + "\n", test=test,
                asserts=asserts, final_call="", suite=SUITE, split=split_of(task_id))


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """A fast check, so an offline user gets the fix now instead of after minutes of retries."""
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def _prescan(path: Path) -> None:
    """Name the line of a malformed row (datasets' own errors do not)."""
    rows = 0
    for where, row in read_json_objects(path, "MBPP file"):
        for field in FIELDS:
            if field not in row:
                raise BadInput(f"{where}: missing field {field!r}")
        rows += 1
    if rows == 0:
        raise BadInput(f"{path}: no MBPP problems in file")


def _rows_from_local(path: Path) -> list[dict[str, Any]]:
    import datasets

    if not path.is_file():
        raise BadInput(f"{path}: no such MBPP file")
    _prescan(path)
    try:
        ds = datasets.load_dataset("json", data_files=str(path), split="train")
    except Exception as exc:  # datasets wraps parse errors in several types
        raise BadInput(f"{path}: not an MBPP jsonl file ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    return [dict(r) for r in ds]


def _rows_from_hub() -> list[dict[str, Any]]:
    fix = (f"cannot reach the Hugging Face hub ({HUB_HOST}) to download {HUB_ID!r}; "
           f"download it and pass mbpp:/path/to/mbpp.jsonl")
    if not _hub_reachable():
        raise EnvironmentProblem(fix)
    import datasets

    try:
        dsd = datasets.load_dataset(HUB_ID, HUB_CONFIG)
    except Exception as exc:
        raise EnvironmentProblem(f"{fix} ({type(exc).__name__})") from None
    return [dict(r) for split in dsd.values() for r in split]


def load_mbpp(path: str | None = None) -> list[Task]:
    """All MBPP tasks, from the hub (path None) or a local original-format jsonl file."""
    rows = _rows_from_hub() if path is None else _rows_from_local(Path(path))
    source = HUB_ID if path is None else path
    tasks = [task_from_row(r, f"{source}: row {i + 1}") for i, r in enumerate(rows)]
    tasks.sort(key=lambda t: int(t.task_id.split("/")[1]))
    if not tasks:
        raise BadInput(f"{source}: no MBPP problems")
    return tasks
