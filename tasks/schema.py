"""The one task schema every suite produces.

A task is a function-completion problem in HumanEval's shape: the model sees
`prompt` (signature + docstring) and writes the body; `canonical_solution` is the
human reference body, so `prompt + canonical_solution` is a complete program.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Task:
    """One problem.

    test: the suite's original test code, authoritative for pass/fail. For
      HumanEval it defines `check(candidate)`; `final_call` calls it.
    asserts: the same tests split into independent assert statements where the
      source allows (empty when it does not); they give per-assert verdicts.
    final_call: the statement that runs `test` (e.g. "check(add)"); empty when
      `test` runs its asserts at top level.
    split: "train", "eval", "test", "validation", "prompt", ...
    """

    task_id: str
    prompt: str
    entry_point: str
    canonical_solution: str
    test: str
    asserts: tuple[str, ...]
    final_call: str
    suite: str
    split: str

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["asserts"] = list(self.asserts)
        return d
