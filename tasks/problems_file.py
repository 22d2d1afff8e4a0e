"""Any JSONL file of problems in HumanEval's format, as a suite.

Each line: {"task_id", "prompt", "entry_point", "test", "canonical_solution"}, all
strings, plus an optional "split" (default "test"). Tests follow HumanEval's
convention (`check(candidate)`, called as `check(entry_point)`). A malformed file
is a user error: BadInput names the file, the line and the field at fault.
"""

from __future__ import annotations

import ast
from pathlib import Path

from harness.errors import BadInput
from tasks.humaneval import task_from_problem
from tasks.jsonlines import read_json_objects
from tasks.schema import Task

REQUIRED_FIELDS = ("task_id", "prompt", "entry_point", "test", "canonical_solution")


def _check_test(test: str, where: str) -> None:
    """The test must be Python that defines `check`, since `check(entry_point)` runs it."""
    try:
        module = ast.parse(test)
    except SyntaxError as exc:
        raise BadInput(f"{where}: field 'test' is not valid Python ({exc.msg}, "
                       f"line {exc.lineno} of the test)") from None
    if not any(isinstance(n, ast.FunctionDef) and n.name == "check" for n in module.body):
        raise BadInput(f"{where}: field 'test' does not define check(candidate)")


def load_problems_file(path: str | Path, suite: str | None = None) -> list[Task]:
    """Tasks from a HumanEval-format JSONL file; `suite` defaults to the file's stem."""
    path = Path(path)
    suite = suite or path.stem
    tasks: list[Task] = []
    seen: dict[str, str] = {}
    for where, row in read_json_objects(path, "problems file"):
        for field in (*REQUIRED_FIELDS, "split"):
            if field not in row:
                if field == "split":
                    continue
                raise BadInput(f"{where}: missing field {field!r}")
            if not isinstance(row[field], str) or (field != "canonical_solution"
                                                    and not row[field].strip()):
                raise BadInput(f"{where}: field {field!r} must be a non-empty string")
        _check_test(row["test"], where)
        if row["task_id"] in seen:
            raise BadInput(f"{where}: field 'task_id' repeats {row['task_id']!r} "
                           f"(first on line {seen[row['task_id']]})")
        seen[row["task_id"]] = where.rsplit(":", 1)[1]
        tasks.append(task_from_problem(row, suite, row.get("split", "test")))
    if not tasks:
        raise BadInput(f"{path}: no problems in file")
    return tasks
