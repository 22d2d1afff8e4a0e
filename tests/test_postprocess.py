"""The completion post-processing rules documented in tasks/postprocess.py.

Pure Python, marked `text`: runs on every supported Python without torch, with
property tests over hostile model text (tests/hostile_text.py).
"""

from __future__ import annotations

import sys
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.model_text import clean_text
from tasks.postprocess import END_MARKERS, STOP_SEQUENCES, top_level_cut_row, truncate_completion
from tests.hostile_text import CODE, NAMED, PROPERTY, hostile_text, with_named_examples

pytestmark = pytest.mark.text


def test_stop_sequences_are_the_documented_ones() -> None:
    assert STOP_SEQUENCES == ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#")


@pytest.mark.parametrize(("raw", "expected"), [
    # rule 1: each stop sequence cuts, at its earliest occurrence
    ("    return x\ndef g():\n    pass\n", "    return x"),
    ("    return x\nclass A:\n    pass\n", "    return x"),
    ("    return x\nif __name__ == '__main__':\n    f(1)\n", "    return x"),
    ("    return x\nprint(f(2))\n", "    return x"),
    ("    return x\n# test\nf(1)\n", "    return x"),
    ("    return x\n\n\nprint(1)\ndef g(): pass", "    return x"),
    # ... but only at column 0: indented defs, prints and comments are body
    ("    def h(v):\n        return v\n    # note\n    print(x)\n    return h(x)\n",
     "    def h(v):\n        return v\n    # note\n    print(x)\n    return h(x)"),
    # end markers
    ("    return x<|endoftext|>garbage", "    return x"),
    ("    return x\n```\nMore prose", "    return x"),
    ("    return x</s>", "    return x"),
    # rule 2: top-level code after the body
    ("    return x\nx = f(3)\nassert x\n", "    return x"),
    ("    return x\n\nassert f(1) == 2\n", "    return x"),
    ("    return x\n@decorator\n", "    return x"),
    # column-0 lines inside a string or brackets are not top-level statements
    ('    s = """\nno indent\n"""\n    return s\nf()\n',
     '    s = """\nno indent\n"""\n    return s'),
    ("    return [\n1,\n2]\nzz = 1\n", "    return [\n1,\n2]"),
    # column-0 lines before the body are kept (whole-function completions)
    ("def g(x):\n    return 1\nassert g(1) == 1\n", "def g(x):\n    return 1"),
    ("import math\n    return math.pi\n", "import math\n    return math.pi"),
    # untokenizable tails fall back to physical lines
    ("    if x:\n        return 1\n      return 2\nfoo()\n",
     "    if x:\n        return 1\n      return 2"),
    ("    x = (\n", "    x = ("),
    # rule 3: trailing whitespace
    ("    return x   \n\n\t\n", "    return x"),
    ("", ""),
    ("\n\n", ""),
])
def test_truncate_completion(raw: str, expected: str) -> None:
    assert truncate_completion(raw) == expected


def test_stop_at_start_gives_empty_completion() -> None:
    assert truncate_completion("\ndef other():\n    return 1\n") == ""


def test_custom_stop_sequences_keep_helper_defs() -> None:
    """Whole-function suites (MBPP) may drop "\\ndef " to keep helpers and imports."""
    raw = "import re\ndef g(x):\n    return 1\nprint(g(1))\n"
    assert truncate_completion(raw) == "import re"
    kept = truncate_completion(raw, stop_sequences=("\nprint(",))
    assert kept == "import re\ndef g(x):\n    return 1"


def test_truncation_is_idempotent() -> None:
    raw = "    y = x + 1\n    return y\n\nprint(f(1))\nfoo = 3\n"
    once = truncate_completion(raw)
    assert truncate_completion(once) == once == "    y = x + 1\n    return y"


# -- any text a model writes (issue 9) -------------------------------------------------


@PROPERTY
@given(hostile_text)
@with_named_examples
def test_truncate_completion_is_a_clean_prefix_for_any_text(raw: str) -> None:
    """A prefix of the cleaned text, with no stop sequence, end marker or trailing
    whitespace left, and no parser warning printed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = truncate_completion(raw)
    assert not caught, [str(w.message) for w in caught]
    assert clean_text(raw).startswith(out)
    assert out == out.rstrip()
    assert not any(stop in out for stop in (*STOP_SEQUENCES, *END_MARKERS))
    out.encode("utf-8")  # lone surrogates are gone: the sandbox and the files can take it


@PROPERTY
@given(hostile_text, st.lists(st.sampled_from(CODE), max_size=3))
def test_top_level_cut_row_is_a_real_row(text: str, stops: list[str]) -> None:
    row = top_level_cut_row(text)
    assert row is None or 1 <= row <= text.count("\n") + 1
    truncate_completion(text, stop_sequences=[s for s in stops if s])


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_hostile_inputs(name: str) -> None:
    truncate_completion(NAMED[name])


def test_nul_byte_cut_on_every_python() -> None:
    """The input that killed a 3.12 run (SystemError from tokenize): the body is kept,
    the top-level line after it is cut, whether or not tokenize gets past the NUL."""
    raw = "    y = x\x00\n    return y\nprint(f(1))\nfoo = 1\n"
    assert truncate_completion(raw) == "    y = x\x00\n    return y"


def test_lone_surrogate_becomes_replacement_character() -> None:
    assert truncate_completion("    return '\ud800'\n") == "    return '\ufffd'"


def test_carriage_returns_are_kept() -> None:
    raw = "    y = 1\r\n    return y\r\nfoo = 2\r\n"
    assert truncate_completion(raw) == "    y = 1\r\n    return y"


@pytest.mark.skipif(sys.version_info < (3, 12), reason="the 3.12+ C tokenizer only")
def test_tokenizer_crash_falls_back_to_lines() -> None:
    """SystemError from 3.12/3.13's tokenize (NUL after an unclosed bracket): the
    physical-line rule takes over instead of the exception escaping."""
    raw = "    return x\n]\x00}f'\x85\"\nfoo()\n"
    assert truncate_completion(raw) == "    return x"
