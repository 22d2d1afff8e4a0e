"""Completion post-processing, the way HumanEval-style evaluations do it.

A model continues the prompt (a signature and docstring) and rarely stops at the
end of the function: it goes on with another def, a test, a `print`, a comment.
Left in, that tail can fail a correct function (a stray call that raises) or pass
a wrong one (a second definition that shadows the first), so every completion is
truncated the same way before it is executed or trained on.

The rules, applied in this order by `truncate_completion`:

0. **Text policy.** The sampler hands every decoded completion to this function,
   so this is where sampled text enters the harness: `tasks.model_text.clean_text`
   (lone surrogates -> U+FFFD) is applied first; everything else is kept as the
   model wrote it (policy in `tasks.model_text`). Any `str` gives a `str`.
1. **Stop sequences.** Cut at the earliest occurrence of any of `STOP_SEQUENCES`
   (`"\\ndef "`, `"\\nclass "`, `"\\nif __name__"`, `"\\nprint("`, `"\\n#"`) and of
   the end markers in `END_MARKERS` (`<|endoftext|>`, `</s>`, a ```` ``` ```` fence).
   All stop sequences begin with a newline, so they only match at column 0: an
   indented `def`, `print(` or `# comment` inside the body is kept. A completion
   that itself starts with `def ` (MBPP writes whole functions) is kept too, since
   there is no newline before it.
2. **Top-level code after the body.** Once a line indented by at least one space
   or tab has been seen (the body started), the first *logical* line that begins
   at column 0 ends the completion (e.g. `x = f(3)` or `assert f(1) == 2` after
   the function). Logical lines come from `tokenize` (lines end at "\\n"; a lone
   "\\r" reads as a space, see `tasks.model_text.tokenizer_view`), so a column-0
   line inside a multi-line string or bracket does not count; if the text cannot be tokenized
   past some point (an unclosed string, a NUL byte, and on Python 3.12+ more;
   see `tasks.model_text`), plain physical lines are used from there on. Column-0
   lines *before* any indented line (e.g. `import re` or `def f(x):` when the model
   writes the whole function) are kept.
3. **Trailing junk.** Trailing whitespace (spaces, tabs, blank lines) is removed.

Nothing else is changed: no reindenting, no fixing of syntax.
"""

from __future__ import annotations

import tokenize
from collections.abc import Sequence

from tasks.model_text import clean_text, python_tokens

STOP_SEQUENCES: tuple[str, ...] = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#")
END_MARKERS: tuple[str, ...] = ("<|endoftext|>", "</s>", "```")

_LAYOUT = {tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING}


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """`text` up to the earliest occurrence of any of `stops` (all of it if none)."""
    cut = len(text)
    for stop in stops:
        i = text.find(stop)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


def _line_starts(text: str) -> list[int]:
    """Offsets of each "\n"-separated line (the rows `tokenize` numbers from 1)."""
    starts = [0]
    starts.extend(i + 1 for i, ch in enumerate(text) if ch == "\n")
    return starts


def _physical_cut(lines: list[str], first_row: int, seen_body: bool) -> int | None:
    """Rule 2 on physical lines from 1-based row `first_row`; the row to cut at."""
    for row in range(first_row, len(lines) + 1):
        line = lines[row - 1]
        if not line.strip():
            continue
        if line[0] in " \t":
            seen_body = True
        elif seen_body:
            return row
    return None


def top_level_cut_row(text: str) -> int | None:
    """1-based row of the first column-0 logical line after an indented one, or None."""
    lines = text.split("\n")
    seen_body = False
    at_line_start = True
    last_row = 0
    tokens, complete = python_tokens(text)
    for tok in tokens:
        if tok.type in _LAYOUT:
            continue
        if tok.type == tokenize.ENDMARKER:
            return None
        last_row = tok.end[0]
        if tok.type == tokenize.NEWLINE:
            at_line_start = True
            continue
        if at_line_start:
            at_line_start = False
            if tok.start[1] > 0:
                seen_body = True
            elif seen_body:
                if tok.start[0] <= len(lines):
                    return tok.start[0]
                complete = False  # rows that are not "\n" lines: trust plain lines
                break
    if not complete:
        return _physical_cut(lines, last_row + 1, seen_body)
    return None


def truncate_completion(completion: str,
                        stop_sequences: Sequence[str] = STOP_SEQUENCES) -> str:
    """Apply the module's rules to a raw completion (see the module docstring)."""
    text = cut_at_stops(clean_text(completion), (*stop_sequences, *END_MARKERS))
    row = top_level_cut_row(text)
    if row is not None:
        text = text[:_line_starts(text)[row - 1]]
    return text.rstrip()
