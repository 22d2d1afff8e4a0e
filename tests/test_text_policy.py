"""tasks/model_text.py: the text policy's helpers give a defined result for any str.

Property-based (hypothesis, strategies in tests/hostile_text.py) plus the named
inputs that crashed the harness. Pure Python: runs on every supported Python
without torch (`make test-text`).
"""

from __future__ import annotations

import ast
import sys
import warnings

import pytest
from hypothesis import given

from tasks.model_text import (
    REPLACEMENT,
    clean_text,
    parse_python,
    python_tokens,
    quiet_parser,
    unparsable_reason,
    utf8,
)
from tests.hostile_text import (
    NAMED,
    PROPERTY,
    hostile_text,
    no_warnings,
    with_named_examples,
)

pytestmark = pytest.mark.text


@PROPERTY
@given(hostile_text)
@with_named_examples
def test_clean_text_only_replaces_surrogates(text: str) -> None:
    cleaned = clean_text(text)
    assert len(cleaned) == len(text)
    for a, b in zip(text, cleaned, strict=True):
        assert b == (REPLACEMENT if 0xD800 <= ord(a) <= 0xDFFF else a)
    assert utf8(text) == cleaned.encode("utf-8")
    assert clean_text(cleaned) == cleaned


@PROPERTY
@given(hostile_text)
@with_named_examples
def test_parse_python_answers_for_any_text(text: str) -> None:
    tree = no_warnings(parse_python, text)
    reason = no_warnings(unparsable_reason, text)
    assert (tree is None) != (reason is None)
    if tree is not None:
        assert isinstance(tree, ast.Module)
    else:
        assert isinstance(reason, str) and reason and "\n" not in reason


@PROPERTY
@given(hostile_text)
@with_named_examples
def test_python_tokens_answers_for_any_text(text: str) -> None:
    tokens, complete = no_warnings(python_tokens, text)
    assert isinstance(complete, bool)
    assert all(isinstance(t.string, str) for t in tokens)


@pytest.mark.parametrize("name", ["NUL in a body", "5000 nested brackets",
                                  "5000 nested brackets, closed", "lone surrogate",
                                  "U+FFFD from invalid UTF-8", "BOM first"])
def test_text_python_rejects_is_unparsable_with_a_reason(name: str) -> None:
    assert parse_python(NAMED[name]) is None
    assert unparsable_reason(NAMED[name])


def test_deep_nesting_is_unparsable_or_parsed_never_an_error() -> None:
    """Which of these parse depends on the Python version (3.13's parser takes 5,000
    unary minuses, 3.11's raises RecursionError); either answer is fine, a crash not."""
    for name in ("1200 chained +", "5000 unary minus", "3000 nested not", "2000 nested lambda"):
        tree = parse_python(NAMED[name])
        assert tree is None or isinstance(tree, ast.Module), name


def test_nul_ends_tokens_early_on_312_plus() -> None:
    tokens, complete = python_tokens("x = 1\ny = \x002\n")
    assert [t.string for t in tokens[:3]] == ["x", "=", "1"]
    if sys.version_info >= (3, 12):
        assert not complete


def test_parser_warnings_are_silenced_locally_only() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_parser():
            ast.parse("x = '\\d'\ny = 1if x else 2\n")
        warnings.warn("the caller's own warning", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["the caller's own warning"]
