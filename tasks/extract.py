"""Code out of a chat model's answer: the whole-function solutions of instruct models.

Asked through its chat template, an instruct model answers with prose and a
markdown code block that holds the *whole* function (often with imports, helpers,
and example calls after it). Scored like a completion, that answer is a syntax
error; so, as evalplus's `sanitize` does, the code is taken out first:

1. **The block.** The first fenced block whose language is python (``python``,
   ``py``, ``python3``) or unnamed and that defines the entry point; else the first
   such block; else an unclosed fence's text to the end; else the whole answer
   (some models write bare code).
2. **The longest part that parses.** Prose around the code ("Here is the
   function:" / "This works by ...") is dropped: from each line that can start
   code (column-0 `def`, `class`, `import`, `from`, `@`), the longest run of lines
   that `ast` parses is taken, the longest run over all starts wins. At most
   `MAX_LINES` lines are searched, so the cost per answer is bounded.
3. **Definitions only.** Top-level imports, function and class definitions and
   plain assignments (constants a function reads) are kept; everything else at
   the top level (example calls, `print`, `assert`, `if __name__ == ...`, loops)
   is dropped, since run after the prompt it could fail a correct function or
   print into the verdict stream.

The result (possibly empty) is the sample's `solution`. The verifier runs it after
the prompt (`tasks.programs.build_program`), so the prompt's imports and helpers
exist and the prompt's stub is redefined by the solution.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from tasks.model_text import clean_text, parse_python

MAX_LINES = 200
"""Lines of an answer searched for code (longer answers are cut there first)."""

MAX_PARSES = 400
"""Parse attempts per answer: an answer of garbage lines that all look like code
starts would otherwise cost MAX_LINES^2 parses (0.7 s measured)."""

_FENCE = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+-]*)[^\n]*$", re.MULTILINE)
_PYTHON_TAGS = {"", "python", "py", "python3", "py3"}
_CODE_START = re.compile(r"^(def |async def |class |import |from |@)")
_KEPT = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
         ast.Assign, ast.AnnAssign)


@dataclass(frozen=True)
class Block:
    """One fenced block: its language tag, its code, and where it ends in the text
    (after the closing fence, or the text's end when no fence closes it)."""

    tag: str
    code: str
    end: int


def fenced_blocks(text: str) -> list[Block]:
    """Each fenced block of `text`, in order (fences pair up opener, closer)."""
    fences = list(_FENCE.finditer(text))
    blocks: list[Block] = []
    for i in range(0, len(fences), 2):
        opener = fences[i]
        start = min(opener.end() + 1, len(text))
        if i + 1 < len(fences):
            closer = fences[i + 1]
            blocks.append(Block(opener.group(1).lower(), text[start:closer.start()],
                                closer.end()))
        else:
            blocks.append(Block(opener.group(1).lower(), text[start:], len(text)))
    return blocks


def _defines(code: str, entry_point: str) -> bool:
    return bool(entry_point) and re.search(rf"^\s*(async\s+)?def\s+{re.escape(entry_point)}\b",
                                           code, re.MULTILINE) is not None


def code_block(answer: str, entry_point: str = "") -> str:
    """Step 1 of the module docstring: the code block an answer's solution comes from."""
    blocks = [b.code for b in fenced_blocks(answer) if b.tag in _PYTHON_TAGS]
    for code in blocks:
        if _defines(code, entry_point):
            return code
    return blocks[0] if blocks else answer


def longest_parsable(code: str) -> str:
    """Step 2: the longest run of lines that parses, starting at a line that can
    start code (or the first line)."""
    lines = code.split("\n")[:MAX_LINES]
    if parse_python("\n".join(lines)) is not None:
        return "\n".join(lines)
    starts = [0] + [i for i, line in enumerate(lines) if i and _CODE_START.match(line)]
    best = ""
    budget = MAX_PARSES
    for start in starts:
        for end in range(len(lines), start, -1):
            if end - start <= best.count("\n") + 1 or budget <= 0:
                break
            budget -= 1
            candidate = "\n".join(lines[start:end])
            if candidate.strip() and parse_python(candidate) is not None:
                best = candidate
                break
    return best


def definitions_only(code: str) -> str:
    """Step 3: the top-level imports, definitions and assignments of `code`, in order."""
    module = parse_python(code)
    if module is None:
        return ""
    lines = code.split("\n")
    kept = [_source_lines(lines, stmt) for stmt in module.body if isinstance(stmt, _KEPT)]
    return "\n".join(seg for seg in kept if seg.strip())


def _source_lines(lines: list[str], stmt: ast.stmt) -> str:
    """The whole lines of a top-level statement, decorators included (ast's own
    segment starts at `def`, after them)."""
    decorators = getattr(stmt, "decorator_list", None) or []
    first = min([stmt.lineno, *(d.lineno for d in decorators)]) - 1
    last = (stmt.end_lineno or stmt.lineno) - 1
    return "\n".join(lines[first:last + 1])


def extract_solution(answer: str, entry_point: str = "") -> str:
    """The solution code of a chat answer (the module docstring's three steps).

    Empty when the answer holds no code that parses: such a sample fails, as a
    completion with a syntax error does.
    """
    code = code_block(clean_text(answer), entry_point)
    code = longest_parsable(code)
    solution = definitions_only(code)
    return solution + "\n" if solution else ""
