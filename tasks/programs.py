"""Program assembly: one task + one completion -> one sandbox request.

The request has the parts `sandbox.executor.ExecRequest` defines, each compiled on
its own in the sandbox (a completion ending in ``@decorator`` or an open bracket is
that completion's syntax error; it can never reach into the test):

* ``program`` = prompt + completion; or, for a whole-function ``solution`` (what an
  instruct model answers in chat format, `tasks.extract`), prompt + newline +
  solution, so the prompt's imports and helpers exist and the solution redefines
  the prompt's stub.
* ``preamble`` = everything in the task's test code that is not one of its separable
  asserts: for asserts-only suites (MBPP, synth) the setup code, if any; for
  HumanEval-style tasks the whole test (METADATA, helpers, ``def check``) - minus
  ``check`` when every assert is a trusted call, since its code holds the expected
  values. Keeping the asserts out of it matters: run there, the first failing one
  would abort the program and hide the verdicts of the rest.
* ``asserts`` = ``task.asserts`` (written to run in the program's namespace), and
  ``checks``: for each, the trusted check `tasks.decompose` finds (a call whose
  returned value the harness compares), or None (run in-process).
* ``final`` = ``task.final_call`` (e.g. ``check(add)``); empty for asserts-only suites.
"""

from __future__ import annotations

import ast
from functools import lru_cache

from sandbox.executor import ExecRequest
from sandbox.values import Check
from tasks.decompose import decompose_assert
from tasks.model_text import parse_python
from tasks.schema import Task


@lru_cache(maxsize=8192)
def test_preamble(task: Task) -> str:
    """The part of `task.test` that must run before the asserts (see module docstring).

    When every assert is a trusted call, the function that holds them (``check``,
    whose code carries the expected values) is left out too: the expected values
    must never enter the program's process, not even as constants of a code object
    it could find in memory. Only the rest (imports, METADATA, helpers) runs.
    """
    if not task.asserts:
        return task.test
    fully_trusted = all(c is not None for c in trusted_checks(task))
    if task.final_call and not fully_trusted:
        return task.test
    module = parse_python(task.test)
    if module is None:
        return "" if not task.final_call else task.test
    wanted = set(task.asserts)
    check_name = task.final_call.split("(", 1)[0].strip()
    keep: list[str] = []
    for stmt in module.body:
        segment = ast.get_source_segment(task.test, stmt) or ""
        if segment.strip() in wanted:
            continue
        if isinstance(stmt, ast.FunctionDef) and stmt.name == check_name:
            continue
        keep.append(segment)
    return "\n".join(keep) + ("\n" if keep else "")


@lru_cache(maxsize=8192)
def trusted_checks(task: Task) -> tuple[Check | None, ...]:
    """Per assert of `task`, its trusted check, or None where it must run in-process."""
    return tuple(decompose_assert(a, task.entry_point) for a in task.asserts)


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
                       checks=trusted_checks(task))
