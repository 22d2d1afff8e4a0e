"""Reading JSON-lines files that users hand us, with errors that name file and line.

Samples files, HumanEval-format problem files and MBPP files all share this: each
non-blank line must be a JSON object; anything else is BadInput ("path:line: ...")
so the CLI exits 2 with a message pointing at the bad line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.errors import BadInput


def read_json_objects(path: Path, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ("path:line", object) for each non-blank line of `path`.

    kind names the file in messages ("samples file", "problems file", ...).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such {kind}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read {kind} ({exc})") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise BadInput(f"{where}: expected a JSON object, got {type(row).__name__}")
        yield where, row
