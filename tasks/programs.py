"""Program assembly: one task + one completion -> one sandbox request.

The request has the three parts `sandbox.executor.ExecRequest` defines:

* ``program`` = prompt + completion + "\\n\\n" + test preamble. The preamble is
  everything in the task's test code that is not one of its separable asserts:
  for HumanEval-style tasks the whole test (METADATA, helpers, ``def check``); for
  asserts-only suites (MBPP, synth) the setup code, if any. Keeping the asserts out
  of ``program`` matters: run there, the first failing one would abort the program
  and hide the verdicts of the rest.
* ``asserts`` = ``task.asserts``. Suites store them already written to run in the
  program's namespace (HumanEval's ``candidate`` renamed to the entry point when
  the check is split), so they are passed through unchanged.
* ``final`` = ``task.final_call`` (e.g. ``check(add)``), the authoritative test; empty
  for asserts-only suites, where passing means every assert passed.
"""

from __future__ import annotations

import ast
from functools import lru_cache

from sandbox.executor import ExecRequest
from tasks.schema import Task


@lru_cache(maxsize=8192)
def test_preamble(task: Task) -> str:
    """The part of `task.test` that must run before the asserts (see module docstring)."""
    if task.final_call:
        return task.test
    if not task.asserts:
        return task.test
    try:
        module = ast.parse(task.test)
    except SyntaxError:
        return ""
    wanted = set(task.asserts)
    keep: list[str] = []
    for stmt in module.body:
        segment = ast.get_source_segment(task.test, stmt) or ""
        if segment.strip() in wanted:
            continue
        keep.append(segment)
    return "\n".join(keep) + ("\n" if keep else "")


def build_program(task: Task, completion: str) -> str:
    """prompt + completion + blank line + test preamble."""
    preamble = test_preamble(task)
    return task.prompt + completion + "\n\n" + preamble


def build_request(task: Task, completion: str, request_id: str, timeout_s: float = 5.0,
                  memory_mb: int = 512) -> ExecRequest:
    """The sandbox request that scores `completion` on `task`."""
    return ExecRequest(request_id=request_id, program=build_program(task, completion),
                       asserts=task.asserts, final=task.final_call, timeout_s=timeout_s,
                       memory_mb=memory_mb)
