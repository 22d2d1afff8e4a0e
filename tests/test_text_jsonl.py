"""Results files hold model text: writing any str works and reads back exactly.

samples/verdicts/kept/train JSONL go through `harness.runfiles.store.atomic_write_jsonl`;
user files come in through `tasks.jsonlines.read_json_objects`, which applies the
text policy (tasks/model_text.py). Pure Python, marked `text`.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.atomic import atomic_write_text
from harness.errors import BadInput
from harness.runfiles.store import atomic_write_jsonl, read_jsonl
from tasks.jsonlines import clean_strings, dumps_line, read_json_objects
from tasks.model_text import clean_text
from tests.hostile_text import PROPERTY, hostile_text, short_hostile_text, with_named_examples

pytestmark = pytest.mark.text

# JSON does not care about nesting or size, so short texts (faster) cover it.
_value = st.one_of(short_hostile_text, st.integers(), st.floats(allow_nan=False),
                   st.booleans(), st.none(), st.lists(short_hostile_text, max_size=3))
_row = st.dictionaries(st.one_of(st.sampled_from(["task_id", "completion", "split"]),
                                 short_hostile_text), _value, max_size=4)


@PROPERTY
@given(st.lists(_row, max_size=4))
def test_jsonl_round_trips_any_rows(rows: list[dict[str, object]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samples.jsonl"
        sha = atomic_write_jsonl(path, rows)
        data = path.read_bytes()
        assert len(sha) == 64
        text = data.decode("utf-8")  # strict: the file is valid UTF-8
        assert text.count("\n") == len(rows)
        assert not any(c in text for c in "\u2028\u2029\x85\r")
        cleaned = [clean_strings(copy.deepcopy(r)) for r in rows]
        assert list(read_jsonl(path)) == cleaned
        if not any(c in json.dumps(rows) for c in ("\\ud", "\\uD")):
            assert cleaned == rows  # no surrogates: exactly what was written
        # read as a user file (eval --samples): the same rows
        assert [row for _, row in read_json_objects(path, "samples file")] == cleaned


@PROPERTY
@given(hostile_text)
@with_named_examples
def test_text_files_take_any_str(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.md"
        atomic_write_text(path, text)
        assert path.read_bytes().decode("utf-8") == clean_text(text)


def test_lone_surrogates_are_replaced_and_line_separators_escaped() -> None:
    line = dumps_line({"completion": "a\ud800\udfffb\u2028c", "\ud800": 1})
    assert line == '{"completion": "a\ufffd\ufffdb\\u2028c", "\ufffd": 1}'
    assert json.loads(line) == {"completion": "a\ufffd\ufffdb\u2028c", "\ufffd": 1}


def test_user_file_with_raw_line_separators_inside_strings(tmp_path: Path) -> None:
    """U+2028 / U+0085 are legal raw in JSON strings; they used to split the record."""
    path = tmp_path / "s.jsonl"
    rows = [{"task_id": "t/0", "completion": "    return '\u2028\x85'\n"},
            {"task_id": "t/1", "completion": "    return 1\r\n"}]
    path.write_text("\ufeff" + "".join(json.dumps(r, ensure_ascii=False) + "\r\n"
                                       for r in rows), encoding="utf-8")
    assert [row for _, row in read_json_objects(path, "samples file")] == rows


def test_user_file_surrogates_become_replacement_characters(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"task_id": "t/0", "completion": "x\\ud800", "\\udfff": ["\\ud83d"]}\n')
    [(_, row)] = read_json_objects(path, "samples file")
    assert row == {"task_id": "t/0", "completion": "x\ufffd", "\ufffd": ["\ufffd"]}


def test_user_file_nested_too_deeply_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.raises(BadInput, match=r"s\.jsonl:1: JSON nested too deeply"):
        list(read_json_objects(path, "samples file"))


def test_clean_strings_handles_nesting_deeper_than_recursion() -> None:
    deep: object = "\ud800"
    for _ in range(5000):
        deep = [deep]
    out = clean_strings({"k": deep})
    for _ in range(5000):
        out = out[0] if isinstance(out, list) else out["k"]
    assert out == ["\ufffd"] or out == "\ufffd"
