"""Hypothesis strategies for text a degenerate model writes, shared by the text tests.

Pieces of ordinary Python are mixed with the characters and shapes that have broken
the harness (issue 9; policy in tasks/model_text.py): NUL, lone surrogates, U+FFFD
(what a byte-level tokenizer decodes invalid UTF-8 to), "\\r", form feeds, BOMs,
Unicode line separators, unbalanced quotes and brackets, enormous lines and deep
nesting. `NAMED` holds the exact inputs seen to crash, so every property test runs
them as explicit examples whatever hypothesis draws.

Settings: `PROPERTY` (deadline off: a 5,000-deep parse takes milliseconds on one
machine and far more on a loaded one; no example database, so test runs leave no
files behind). Run pytest with --hypothesis-show-statistics to see how many
examples each test ran (`make test-text` does).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, example, settings
from hypothesis import strategies as st

CODE = ["def f(x):\n", "    return x\n", "    return x + 1", "if x:\n", "else:\n", "    ",
        "\t", "\n", "\n\n", " ", "'", '"', "'''", '"""', "(", ")", "[", "]", "{", "}",
        "f'", 'f"{', "{x}", "#", "# c\n", "\\", "0x", "1", "1.5e", "a", "x", "é", "λ",
        "\U0001f600", ":", "=", "+", "-", "*", "lambda: ", "not ", "print(", "\ndef ",
        "\nclass ", "\n#", "\nprint(1)", "<|endoftext|>", "</s>", "```", "import os\n",
        "class A:\n", "assert f(1) == 2\n", "x = f(3)\n", "1if x else 2", "'\\d'",
        "return", "yield", "async ", "@", "nonlocal x\n", "global x\n"]
HOSTILE = ["\x00", "\r", "\r\n", "\x0c", "\x0b", "\ufeff", "\ufffd", "\ud800", "\udfff",
           "\udc80", "\ud83d", "\ude00", "\u2028", "\u2029", "\x85", "\x1b", "\x7f", "\x1c"]
BIG = {
    "5000 nested brackets": "(" * 5000,
    "5000 nested brackets, closed": "x = " + "(" * 5000 + "1" + ")" * 5000,
    "1200 chained +": "x = " + " + ".join(["a"] * 1200),
    "5000 unary minus": "x = " + "-" * 5000 + "1",
    "3000 nested not": "    return " + "not " * 3000 + "x",
    "2000 nested lambda": "f = " + "lambda: " * 2000 + "1",
    "150 nested lists": "x = " + "[" * 150 + "]" * 150,
    "hex literal of 5000 digits": "x = 0x" + "f" * 5000,
    "decimal literal of 5000 digits": "x = " + "9" * 5000,
    "100 kB line": "    s = '" + "ab" * 50_000 + "'",
    "3,000 short lines": "    x = 1\n" * 3_000,
}
NAMED = {
    "NUL in a body": "    return x\x00\n",
    "NUL, unclosed bracket, \\x85 (SystemError on 3.12/3.13)": "    return x\n]\x00}f'\x85\"",
    "\\r before a BOM (UnicodeDecodeError on 3.12/3.13)": '\r\ufeff"""    return x\n\ufffd',
    "\\r before non-ASCII": "\ré{)    return x\n]\u2028\n",
    "lone surrogate": "    return '\ud800'\n",
    "U+FFFD from invalid UTF-8": "    return x\ufffd\ufffd\n",
    "BOM first": "\ufeff    return x\n",
    "form feeds": "\x0c    return x\n\x0cx = 1\n",
    "old Mac line ends": "    y = 1\r    return y\rprint(2)\r",
    "invalid escape (SyntaxWarning)": "    return '\\d'\n",
    "invalid decimal literal (SyntaxWarning)": "    return 1if x else 2\n",
    **BIG,
}

_piece = st.one_of(st.sampled_from(CODE), st.sampled_from(HOSTILE),
                   st.text(st.characters(exclude_categories=()), max_size=4))
short_hostile_text: st.SearchStrategy[str] = st.lists(_piece, max_size=24).map("".join)
"""Short mixtures of code and hostile characters (where size and depth do not matter)."""
hostile_text: st.SearchStrategy[str] = st.one_of(
    short_hostile_text, short_hostile_text, short_hostile_text, short_hostile_text,
    st.tuples(short_hostile_text, st.sampled_from(sorted(BIG.values())),
              short_hostile_text).map("".join))
"""Any text a model might write: mostly short mixtures, a fifth with a huge part."""

PROPERTY = settings(max_examples=200, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def with_named_examples(test: Callable[..., Any]) -> Callable[..., Any]:
    """Add every `NAMED` input as an explicit example of a one-argument property test."""
    for text in NAMED.values():
        test = example(text)(test)
    return test


def no_warnings(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args), failing the test if it issued any warning (they would reach the user)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args)
    assert not caught, [str(w.message) for w in caught]
    return result
