"""JSON lines: reading the files users hand us, and the one way the harness writes them.

Reading: samples files, HumanEval-format problem files and MBPP files all share
`read_json_objects`: each non-blank line must be a JSON object; anything else is
BadInput ("path:line: ...") so the CLI exits 2 with a message pointing at the bad
line. These files are where outside text (model completions in a samples file)
enters the harness, so every string in them gets the text policy of
`tasks.model_text` (lone surrogates, which JSON can spell as ``"\\ud800"``, become
U+FFFD). Lines are split on "\\n" only: U+2028, U+0085 and friends are legal raw
inside JSON strings and must not end a record (`str.splitlines` would split there).

Writing: `dumps_line` renders one record on one line, UTF-8-safe for any `str`.
The same policy holds on the way out as on the way in: a lone surrogate is written
as U+FFFD. (Escaping it as ``\\ud800`` cannot round-trip: JSON reads a high
surrogate escape followed by a low one as one astral character.) U+2028, U+2029
and U+0085 are written as ``\\uXXXX`` escapes, since many line readers split there.
Reading the line back with `json.loads` gives `clean_strings(row)`: the identical
object for any row that holds no surrogate, which is all model text (cleaned
where it entered).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.errors import BadInput
from tasks.model_text import clean_text

_LINE_BREAKS = re.compile("[\u2028\u2029\x85]")


def dumps_line(row: Mapping[str, Any]) -> str:
    """`row` as one JSON line (no trailing newline) that encodes to UTF-8 whatever it holds.

    Non-ASCII text stays readable (ensure_ascii=False). With ensure_ascii=False every
    non-ASCII character of the output lies inside a JSON string, so cleaning or
    escaping it in the output text is the same as doing so in each string.
    """
    text = clean_text(json.dumps(row, ensure_ascii=False))
    return _LINE_BREAKS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def read_json_objects(path: Path, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ("path:line", object) for each non-blank line of `path`.

    kind names the file in messages ("samples file", "problems file", ...). A UTF-8
    BOM at the start of the file is ignored (Windows editors write one).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such {kind}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read {kind} ({exc})") from None
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{where}: not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise BadInput(f"{where}: JSON nested too deeply") from None
        if not isinstance(row, dict):
            raise BadInput(f"{where}: expected a JSON object, got {type(row).__name__}")
        yield where, clean_strings(row)


def clean_strings(obj: Any) -> Any:
    """`obj` with `clean_text` applied to every string in it, keys included.

    Cleans lists and dicts in place (callers pass a fresh `json.loads` result) and
    returns `obj`, or the cleaned str. Iterative: JSON that `json.loads` accepted
    can still be nested deeper than a recursive walk could follow.
    """
    if isinstance(obj, str):
        return clean_text(obj)
    if not isinstance(obj, (dict, list)):
        return obj
    root: list[Any] = [obj]
    stack: list[tuple[Any, Any]] = [(root, 0)]  # (container, key) whose value to visit
    while stack:
        container, key = stack.pop()
        value = container[key]
        if isinstance(value, str):
            container[key] = clean_text(value)
        elif isinstance(value, list):
            stack.extend((value, i) for i in range(len(value)))
        elif isinstance(value, dict):
            if any(isinstance(k, str) and clean_text(k) != k for k in value):
                value = {clean_text(k): v for k, v in value.items()}
                container[key] = value
            stack.extend((value, k) for k in value)
    return root[0]
