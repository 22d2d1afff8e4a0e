"""Trusted-side test checks: expected values that never enter the sandbox.

Where a test assert is a call of the tested function with plain-data arguments and a
plain-data expected result (`tasks.decompose` finds those), the sandbox only computes
the call and returns the value, strictly serialised (`sandbox.runner.encode_value`);
the comparison happens here, in the harness. A program can then pass such an assert
only by returning the right value: it never sees the expected one, and patching
`__eq__`, the test code or the reporting inside its own process changes nothing.

Comparison rules (they mirror what the original assert would do for plain data):

* The returned value is rebuilt from builtins only (`decode_value`): None, bool, int,
  float, complex, str, bytes, list, tuple, set, frozenset, dict, exactly those types.
  Anything else (a subclass, a generator, a numpy scalar) fails the assert.
* ``eq`` / ``ne`` are Python's ``==`` / ``!=`` between builtins, so ``1 == 1.0 ==
  True``, ``[1] != (1,)``, ``{1} == frozenset({1})`` and ``nan != nan`` hold exactly
  as in the original test.
* ``is`` / ``is_not`` only against True, False and None (the singletons survive).
* ``truthy`` / ``falsy`` (``assert f(x)`` / ``assert not f(x)``): Python truthiness.
* ``abs_lt`` / ``abs_le``: ``abs(got - expected) < tol`` (or ``<=``), the tolerance
  written in the original test; ``isclose``: ``math.isclose`` with its rel_tol/abs_tol.
* ``wrap`` applies one of set, frozenset, sorted, list, tuple to the returned value
  first (``assert set(f(x)) == {...}``). An exception here (say, `set` of a list of
  lists) fails the assert, as it would have raised in the original.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sandbox.runner import decode_value, encode_value

Compare = Literal["eq", "ne", "is", "is_not", "truthy", "falsy", "abs_lt", "abs_le", "isclose"]

WRAPPERS: dict[str, Callable[[Any], Any]] = {
    "set": set, "frozenset": frozenset, "sorted": sorted, "list": list, "tuple": tuple,
}


@dataclass(frozen=True)
class CallCheck:
    """`function(*args, **kwargs)` must return a value that `compare`s to `expected`."""

    function: str
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    compare: Compare
    expected: Any = None
    wrap: str = ""
    rel_tol: float = 1e-9
    abs_tol: float = 0.0

    def step(self) -> dict[str, Any]:
        """What the sandbox is sent: the call only, never the expected value."""
        return {"call": self.function, "args": [encode_value(a) for a in self.args],
                "kwargs": [[k, encode_value(v)] for k, v in self.kwargs]}

    def holds(self, got: Any) -> bool:
        """Whether a decoded return value passes. Never raises."""
        try:
            if self.wrap:
                got = WRAPPERS[self.wrap](got)
            return bool(self._compare(got))
        except Exception:
            return False

    def _compare(self, got: Any) -> Any:
        exp = self.expected
        if self.compare == "eq":
            return got == exp
        if self.compare == "ne":
            return got != exp
        if self.compare == "is":
            return got is exp
        if self.compare == "is_not":
            return got is not exp
        if self.compare == "truthy":
            return bool(got)
        if self.compare == "falsy":
            return not got
        if self.compare == "abs_lt":
            return abs(got - exp) < self.abs_tol
        if self.compare == "abs_le":
            return abs(got - exp) <= self.abs_tol
        if self.compare == "isclose":
            return math.isclose(got, exp, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
        raise ValueError(f"unknown comparison {self.compare!r}")


@dataclass(frozen=True)
class ConstCheck:
    """An assert that does not involve the program (``assert True, "..."``): its
    verdict is known without running anything."""

    holds_always: bool


Check = CallCheck | ConstCheck


def call_verdict(check: CallCheck, reported: Any) -> tuple[bool, str]:
    """(passed, why not) for one call step's report from the runner."""
    if not isinstance(reported, dict):
        return False, "no value returned"
    if "e" in reported:
        return False, str(reported["e"])[:300]
    try:
        got = decode_value(reported.get("v"))
    except ValueError as exc:
        return False, f"unusable return value: {exc}"
    if check.holds(got):
        return True, ""
    return False, f"{check.function}(...) returned {_short(got)}"


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        return type(value).__name__
    return text if len(text) <= 80 else text[:77] + "..."
