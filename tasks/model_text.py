"""Text a model wrote: the harness's one policy for it, and the safe ways to read it.

A collapse benchmark exists to watch models degrade, so degenerate output is its
normal input. Whatever a model writes - NUL bytes, U+FFFD from a byte-level
tokenizer that split a UTF-8 sequence, lone surrogates, ``\\r``, form feeds, BOMs,
a 100 kB line, 5,000 nested brackets - the harness must score it and go on. This
module is the policy; every function that takes model text points here.

The policy
==========

**Where text enters.** Model text enters the harness in two places: decoded
sampler output (`tasks.postprocess.truncate_completion`, which the sampler calls
on every decoded completion) and JSON-lines files a user hands in
(`tasks.jsonlines.read_json_objects`: samples, problems, MBPP). Both apply
`clean_text` and nothing else.

**Kept verbatim.** Every character that has a UTF-8 encoding: NUL and other
control characters, ``\\r`` and ``\\r\\n``, form feeds, BOMs anywhere, U+FFFD,
U+2028, unbalanced quotes and brackets, enormous lines, deep nesting. The text that
is executed, scored and trained on is the text the model wrote; the harness never
repairs or normalises code (a repaired sample would hide exactly the degradation
being measured).

**Replaced.** Lone surrogates (U+D800..U+DFFF) become U+FFFD, one for one, so the
length and every offset stay the same. They have no UTF-8 encoding, so they could
not be sent to the sandbox, written to a results file or fed to a tokenizer; a
byte-level tokenizer decoding invalid UTF-8 already produces U+FFFD, so this maps
the one remaining kind of unencodable text onto the same character. (Python
never builds surrogate pairs inside a ``str``: two surrogates are two lone ones.)

**Scored.** A completion that cannot run is a *failed sample*, never an exception:

* execution: the program (prompt + completion + tests) goes to the sandbox as is;
  Python refuses to compile it (NUL, U+FFFD, U+FEFF, bad indentation, "too many
  nested parentheses", recursion limits) and the sandbox reports a failed sample
  whose error says why. That part is `sandbox/`'s contract.
* parsing (`parse_python`): any failure - SyntaxError, ValueError, RecursionError
  or MemoryError from deep nesting - means *unparsable*: the syntax filter rejects
  it, the canonical-AST diversity counts it in ``unparsable_fraction``.
* tokens (`python_tokens`): `tokenize` reads `tokenizer_view(text)`, where
  ``\\r\\n`` is ``\\n`` and any other ``\\r`` a space: both tokenizers mishandle a
  lone ``\\r`` (3.11 skips a line that starts with one, 3.12+ glues it to the next
  character and, before non-ASCII text, raises UnicodeDecodeError), and the view
  keeps every "\\n" line where it was. Where tokenize still gives up (an unclosed
  string; 3.12+ also raises on NUL and has C-tokenizer bugs that surface as
  SystemError) its callers fall back to plain lines or a regex from that point
  on, so every text has tokens. The view is for analysis only; the text itself
  is never changed.
* warnings: the parser's SyntaxWarning/DeprecationWarning about model code
  ("invalid escape sequence", "invalid decimal literal") are never shown; they
  are silenced locally, around each parse, not by a global filter.

**Written.** Results files are UTF-8 and hold exactly the text the harness
scored: JSON lines (`tasks.jsonlines.dumps_line`: samples, verdicts, kept, train)
and plain text files (`harness.runfiles.store.atomic_write_text`) apply `clean_text` once
more, for text that did not come from a model (a task's own strings), so a write
never fails and a read gives back what was written. U+2028/U+2029/U+0085 are
escaped in JSON lines so that no line reader splits a record.
"""

from __future__ import annotations

import ast
import io
import re
import threading
import tokenize
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")

# Why each: SyntaxError (IndentationError, "too many nested parentheses"; 3.12+
# reports NUL as one), ValueError (3.11 reports NUL as one; UnicodeEncodeError for
# surrogates and "Exceeds the limit ... integer string conversion" are ValueErrors),
# RecursionError and MemoryError (deeply nested expressions, "too complex to parse").
PARSE_ERRORS: tuple[type[BaseException], ...] = (SyntaxError, ValueError, RecursionError,
                                                 MemoryError)
# tokenize adds TokenError, and SystemError: 3.12/3.13's C tokenizer sometimes
# returns "a result with an exception set" (e.g. a NUL after an unclosed bracket).
TOKENIZE_ERRORS: tuple[type[BaseException], ...] = (tokenize.TokenError, SystemError,
                                                    *PARSE_ERRORS)

# warnings.catch_warnings swaps process-global state; two threads interleaving
# enter/exit could leave "ignore" installed for good. One lock keeps ours nested.
_QUIET_LOCK = threading.RLock()


def clean_text(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD (same length; see policy)."""
    if _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub(REPLACEMENT, text)


def utf8(text: str) -> bytes:
    """`clean_text(text)` as UTF-8: never raises, whatever `text` is."""
    return clean_text(text).encode("utf-8")


@contextmanager
def quiet_parser() -> Iterator[None]:
    """Silence the warnings Python's parser and tokenizer emit about the code they read."""
    with _QUIET_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def parse_python(source: str) -> ast.Module | None:
    """`ast.parse(source)`, or None when Python cannot parse it for any reason."""
    return _parse(source)[0]


def unparsable_reason(source: str) -> str | None:
    """Why `source` does not parse, as one line ("SyntaxError: ... (line 3)"); None if it does."""
    return _parse(source)[1]


def _parse(source: str) -> tuple[ast.Module | None, str | None]:
    try:
        with quiet_parser():
            return ast.parse(source), None
    except PARSE_ERRORS as exc:
        return None, _reason(exc)


def _reason(exc: BaseException) -> str:
    msg = (getattr(exc, "msg", None) or str(exc) or "").splitlines()
    text = f"{type(exc).__name__}: {msg[0] if msg else ''}"[:300]
    line = getattr(exc, "lineno", None)
    return f"{text} (line {line})" if isinstance(line, int) else text


def tokenizer_view(source: str) -> str:
    """`source` as `python_tokens` reads it: "\\r\\n" -> "\\n", any other "\\r" -> " ".

    The "\\n"-separated lines (the rows tokenize numbers) are those of `source`.
    """
    if "\r" not in source:
        return source
    return source.replace("\r\n", "\n").replace("\r", " ")


def python_tokens(source: str) -> tuple[list[tokenize.TokenInfo], bool]:
    """(the tokens `tokenize` yields for `tokenizer_view(source)`, whether it reached the end).

    Rows are `source`'s "\\n" lines; columns and token strings are the view's. When
    tokenize gives up part-way (see the policy) the tokens read so far are returned
    with False, and the caller continues by its own simpler rule.
    """
    tokens: list[tokenize.TokenInfo] = []
    try:
        with quiet_parser():
            for tok in tokenize.generate_tokens(io.StringIO(tokenizer_view(source)).readline):
                tokens.append(tok)
    except TOKENIZE_ERRORS:
        return tokens, False
    return tokens, True
