"""Whitespace perturbations of Python code that keep its meaning (the `perturb` detector).

DetectCodeGPT (Shi et al. 2024, "Between Lines of Code") perturbs code by inserting
spaces and newlines instead of DetectGPT's T5 mask-filling, which rewrites code into
something else: a model writes whitespace the way it was taught to, a human less
consistently, and whitespace is what a code model can be asked about without
changing what the program does. `harness.experiment.detection` scores a completion
against such variants of it.

Where whitespace goes, by Python's own tokenizer on prompt + completion (the prompt
gives the context: an open bracket, the indentation):

* a space after a token that another token follows on the same physical line
  (never at a line's start: indentation is syntax);
* a blank line after a line end (NEWLINE or NL; blank lines are NL, ignored).

Both leave the token sequence, so the AST, unchanged; nothing is inserted inside a
token (strings, comments), inside an f-string (3.12 tokenizes its replacement fields,
where a space would show in `{x=}`), at the prompt/completion boundary (the prompt
format moves whitespace there) or after a backslash continuation (it has no line-end
token). Code the tokenizer rejects is perturbed by these rules up to its first error
and past it by a textual one (widen a space that follows a visible character, a blank
line after a newline): text past the error has no meaning to keep, and a model's
broken output still gets a score instead of none. In the chat format a completion is a
markdown answer around the code, so the tokenizer stops at its fence and the textual
rule perturbs the answer (a space widened inside a string literal there changes the
string: the one place the chat format bends "keeps the meaning").

Each variant picks every place independently with probability SHARE (DetectCodeGPT's
alpha = beta = 0.5), at least one, and inserts one space or one blank line there
(DetectCodeGPT draws Poisson counts; one keeps every variant close to the text it
scores). The draws are seeded by the text itself (sha256 of prompt and completion),
so a candidate gets the same variants on every run and machine, and two candidates
with the same text the same ones.

Pure Python (no torch): text-tested on every supported Python.
"""

from __future__ import annotations

import hashlib
import io
import random
import tokenize
from collections.abc import Iterator

SHARE = 0.5
"""Probability that a variant inserts whitespace at one eligible place."""

_SPACE, _BLANK_LINE = 0, 1
"""Kinds of insertion; at one offset a space goes before a blank line (never a line
starting with a space)."""
_INSERTED = {_SPACE: " ", _BLANK_LINE: "\n"}
_LINE_ENDS = {tokenize.NEWLINE, tokenize.NL}
_NO_SPACE_AFTER = {tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT,
                   tokenize.ENDMARKER}
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)  # Python 3.12+
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)


def whitespace_variants(prompt: str, completion: str, n: int) -> list[str]:
    """`n` variants of `completion`, each with whitespace inserted where Python ignores
    it (module docstring); [] when there is nowhere to insert any.

    Deterministic: a function of (prompt, completion, n) only.
    """
    places = insertion_places(prompt, completion)
    if not places or n < 1:
        return []
    rng = random.Random(_seed(prompt, completion))
    return [_insert(completion, _draw(places, rng), len(prompt)) for _ in range(n)]


def insertion_places(prompt: str, completion: str) -> list[tuple[int, int]]:
    """Sorted (offset in prompt + completion, kind) where whitespace may go, all inside
    the completion (offset > len(prompt))."""
    start = len(prompt)
    places = {(offset, kind) for offset, kind in _places(prompt + completion)
              if offset > start}
    return sorted(places)


def _places(text: str) -> Iterator[tuple[int, int]]:
    """(offset, kind) of every eligible place of `text`: by Python's tokens up to the
    first error, by `_textual_places` past it."""
    line_starts = _line_starts(text)
    tokens, complete = _tokens_until_error(text)
    depth = 0  # f-string nesting (3.12+), where nothing is inserted
    for here, after in zip(tokens, [*tokens[1:], None], strict=True):
        if here.type == _FSTRING_START:
            depth += 1
        elif here.type == _FSTRING_END:
            depth -= 1
        if depth:
            continue
        end = _offset(line_starts, here.end, len(text))
        if here.type in _LINE_ENDS:
            yield end, _BLANK_LINE
        elif (here.type not in _NO_SPACE_AFTER and after is not None
              and after.start[0] == here.end[0]):
            yield end, _SPACE
    if not complete:
        yield from _textual_places(text, _offset(line_starts, tokens[-1].end, len(text))
                                   if tokens else 0)


def _textual_places(text: str, start: int) -> Iterator[tuple[int, int]]:
    """Places in text Python cannot read, from `start`: before a space that follows a
    visible character (widening a gap, never indentation), after a newline."""
    for i in range(max(start, 1), len(text) + 1):
        if text[i - 1] == "\n":
            yield i, _BLANK_LINE
        elif i < len(text) and text[i] == " " and not text[i - 1].isspace():
            yield i, _SPACE


def _tokens_until_error(text: str) -> tuple[list[tokenize.TokenInfo], bool]:
    """Python's tokens of `text` until the first it cannot read (an error token or an
    exception: unclosed brackets, bad indentation, an unterminated string), and
    whether that was none (the whole text read)."""
    tokens: list[tokenize.TokenInfo] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.ERRORTOKEN:
                return tokens, False
            tokens.append(token)
    except (SyntaxError, tokenize.TokenError, ValueError):
        return tokens, False
    return tokens, True


def _offset(line_starts: list[int], position: tuple[int, int], size: int) -> int:
    """tokenize's (row, column) as an offset; at most `size`, since a tokenizer may end
    the last line with a newline the text lacks."""
    row, column = position
    return min(line_starts[min(row, len(line_starts)) - 1] + column, size)


def _line_starts(text: str) -> list[int]:
    """Offset of each physical line as `io.StringIO.readline` splits them (at "\\n"
    only), so tokenize's (row, column) map back to offsets; one extra for the end."""
    starts = [0]
    for line in io.StringIO(text):
        starts.append(starts[-1] + len(line))
    return starts


def _draw(places: list[tuple[int, int]], rng: random.Random) -> list[tuple[int, int]]:
    """Each place with probability SHARE, at least one (a variant always differs)."""
    chosen = [p for p in places if rng.random() < SHARE]
    return chosen or [places[rng.randrange(len(places))]]


def _insert(completion: str, places: list[tuple[int, int]], start: int) -> str:
    """`completion` with the chosen whitespace inserted (offsets count the prompt)."""
    pieces, last = [], 0
    for offset, kind in sorted(places):
        pieces += [completion[last:offset - start], _INSERTED[kind]]
        last = offset - start
    return "".join(pieces) + completion[last:]


def _seed(prompt: str, completion: str) -> int:
    digest = hashlib.sha256(f"{len(prompt)}\x00{prompt}{completion}".encode(
        "utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "little")
