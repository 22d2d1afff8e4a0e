"""The completion post-processing rules documented in tasks/postprocess.py."""

from __future__ import annotations

import pytest

from tasks.postprocess import STOP_SEQUENCES, truncate_completion


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
