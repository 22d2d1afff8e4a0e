"""Turn test asserts into calls with expected values the harness compares itself.

`decompose_assert("assert add(2, 3) == 5", "add")` gives `CallCheck(add, (2, 3), eq 5)`:
the sandbox then only computes `add(2, 3)` and returns the value, and the expected
5 never enters the untrusted process (see `sandbox.values` for why, and for the
comparison rules). Recognised shapes, with ``CALL`` = ``entry(literal args)``
optionally wrapped in set / frozenset / sorted / list / tuple, and ``LIT`` a Python
literal (``ast.literal_eval``) optionally wrapped the same way:

* ``CALL == LIT``, ``CALL != LIT``, and the mirrored ``LIT == CALL``;
* ``CALL is True|False|None`` (and ``is not``);
* ``CALL`` and ``not CALL``;
* ``abs(CALL - LIT) < TOL`` (or ``<=``, or ``abs(LIT - CALL)``);
* ``math.isclose(CALL, LIT, rel_tol=.., abs_tol=..)`` (or ``isclose``);
* an assert whose test is a literal (``assert True, "msg"``): a constant.

Everything else (arguments computed by expressions, helper functions, loops) is run
by the judge (`sandbox/runner.py`), and the verdict records that path. So is any
assert that uses a name the task itself rebinds (`rebound`: a suite whose own
``isclose`` compares exactly, or whose ``sorted`` is not the builtin): the trusted
comparison would give such a name its builtin meaning, and pass what the task's own
test fails.
"""

from __future__ import annotations

import ast
import math
from functools import lru_cache
from typing import Any

from sandbox.runner import encode_value
from sandbox.values import WRAPPERS, CallCheck, Check, Compare, ConstCheck
from tasks.model_text import parse_python

_NOT_LITERAL = object()
_ARITHMETIC = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
               ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b,
               ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
               ast.Pow: lambda a, b: a ** b}
_MAX_SIZE = 1 << 16
"""Arithmetic between literals (``2.0/3.0``, ``'ab' + 'c'``, ``3 * 19``) is evaluated
on the trusted side only while operands and results stay this small."""


def _small(value: Any) -> bool:
    if type(value) is int:
        return value.bit_length() <= _MAX_SIZE
    if type(value) in (str, bytes, list, tuple):
        return len(value) <= _MAX_SIZE
    return type(value) in (float, complex, bool)


def _arithmetic(node: ast.expr) -> Any:
    """Literal arithmetic (nested BinOps of literals), bounded; or _NOT_LITERAL."""
    if not (isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC):
        return _NOT_LITERAL
    left, right = _literal(node.left), _literal(node.right)
    if left is _NOT_LITERAL or right is _NOT_LITERAL or not (_small(left) and _small(right)):
        return _NOT_LITERAL
    if isinstance(node.op, ast.Pow) and not (type(right) in (int, float) and abs(right) <= 64):
        return _NOT_LITERAL
    if isinstance(node.op, ast.Mult) and any(type(x) in (str, bytes, list, tuple)
                                             for x in (left, right)):
        count = right if type(right) is int else left
        if type(count) is not int or count > _MAX_SIZE:
            return _NOT_LITERAL
    try:
        value = _ARITHMETIC[type(node.op)](left, right)
    except Exception:
        return _NOT_LITERAL
    return value if _small(value) else _NOT_LITERAL


def _literal(node: ast.expr) -> Any:
    """The value of a literal node (optionally wrapped), or _NOT_LITERAL."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in WRAPPERS and len(node.args) == 1 and not node.keywords):
        inner = _literal(node.args[0])
        if inner is _NOT_LITERAL:
            return _NOT_LITERAL
        try:
            return WRAPPERS[node.func.id](inner)
        except Exception:
            return _NOT_LITERAL
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        value = _arithmetic(node)
        if value is _NOT_LITERAL and isinstance(node, (ast.Tuple, ast.List)):
            items = [_literal(e) for e in node.elts]
            if any(x is _NOT_LITERAL for x in items):
                return _NOT_LITERAL
            value = tuple(items) if isinstance(node, ast.Tuple) else items
        if value is _NOT_LITERAL:
            return _NOT_LITERAL
    try:
        encode_value(value)  # plain data that can travel, or not decomposable
    except (ValueError, RecursionError):
        return _NOT_LITERAL
    return value


def _call(node: ast.expr, entry: str) -> tuple[tuple[Any, ...], tuple[tuple[str, Any], ...],
                                                str] | None:
    """(args, kwargs, wrap) if `node` is ``entry(literals...)``, possibly wrapped."""
    wrap = ""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in WRAPPERS and len(node.args) == 1 and not node.keywords
            and isinstance(node.args[0], ast.Call)):
        wrap, node = node.func.id, node.args[0]
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == entry):
        return None
    args: list[Any] = []
    for arg in node.args:
        if isinstance(arg, ast.Starred):
            return None
        value = _literal(arg)
        if value is _NOT_LITERAL:
            return None
        args.append(value)
    kwargs: list[tuple[str, Any]] = []
    for kw in node.keywords:
        value = _literal(kw.value)
        if kw.arg is None or value is _NOT_LITERAL:
            return None
        kwargs.append((kw.arg, value))
    return tuple(args), tuple(kwargs), wrap


def _make(entry: str, call: tuple[Any, ...], compare: Compare, expected: Any = None,
          **extra: Any) -> CallCheck:
    args, kwargs, wrap = call
    return CallCheck(entry, args, kwargs, compare, expected, wrap, **extra)


def _number(node: ast.expr) -> float | None:
    value = _literal(node)
    if type(value) in (int, float) and math.isfinite(value):
        return float(value)
    return None


def _from_test(test: ast.expr, entry: str) -> Check | None:
    value = _literal(test)
    if value is not _NOT_LITERAL:
        return ConstCheck(bool(value))
    call = _call(test, entry)
    if call is not None:
        return _make(entry, call, "truthy")
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        call = _call(test.operand, entry)
        return _make(entry, call, "falsy") if call is not None else None
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        return _from_compare(test.left, test.ops[0], test.comparators[0], entry)
    if isinstance(test, ast.Call):
        return _from_isclose(test, entry)
    return None


def _from_compare(left: ast.expr, op: ast.cmpop, right: ast.expr, entry: str) -> Check | None:
    for a, b in ((left, right), (right, left)):
        call, expected = _call(a, entry), _literal(b)
        if call is None or expected is _NOT_LITERAL:
            continue
        if isinstance(op, ast.Eq):
            return _make(entry, call, "eq", expected)
        if isinstance(op, ast.NotEq):
            return _make(entry, call, "ne", expected)
        if isinstance(op, (ast.Is, ast.IsNot)) and expected in (True, False, None) \
                and type(expected) in (bool, type(None)):
            return _make(entry, call, "is" if isinstance(op, ast.Is) else "is_not", expected)
        return None
    # abs(CALL - LIT) < TOL
    if not isinstance(op, (ast.Lt, ast.LtE)):
        return None
    tol = _number(right)
    if tol is None or not (isinstance(left, ast.Call) and isinstance(left.func, ast.Name)
                           and left.func.id == "abs" and len(left.args) == 1
                           and isinstance(left.args[0], ast.BinOp)
                           and isinstance(left.args[0].op, ast.Sub)):
        return None
    diff = left.args[0]
    for a, b in ((diff.left, diff.right), (diff.right, diff.left)):
        call, expected = _call(a, entry), _number(b)
        if call is not None and expected is not None and not call[2]:
            compare: Compare = "abs_lt" if isinstance(op, ast.Lt) else "abs_le"
            value = _literal(b)
            return _make(entry, call, compare, value, abs_tol=tol)
    return None


def _from_isclose(test: ast.Call, entry: str) -> Check | None:
    func = test.func
    named = (isinstance(func, ast.Attribute) and func.attr == "isclose"
             and isinstance(func.value, ast.Name) and func.value.id == "math") or \
        (isinstance(func, ast.Name) and func.id == "isclose")
    if not named or len(test.args) != 2:
        return None
    tols = {"rel_tol": 1e-9, "abs_tol": 0.0}
    for kw in test.keywords:
        number = _number(kw.value)
        if kw.arg not in tols or number is None:
            return None
        tols[kw.arg] = number
    for a, b in ((test.args[0], test.args[1]), (test.args[1], test.args[0])):
        call, expected = _call(a, entry), _literal(b)
        if call is not None and not call[2] and expected is not _NOT_LITERAL:
            return _make(entry, call, "isclose", expected, **tols)
    return None


@lru_cache(maxsize=65536)
def decompose_assert(source: str, entry_point: str,
                     rebound: frozenset[str] = frozenset()) -> Check | None:
    """The trusted check for one assert statement, or None if the judge must run it.

    `rebound`: names the task's own code binds (`tasks.programs.rebound_names`); an
    assert that uses any of them is never decomposed."""
    module = parse_python(source)
    if module is None:
        return None
    if len(module.body) != 1 or not isinstance(module.body[0], ast.Assert):
        return None
    if rebound and any(isinstance(n, ast.Name) and n.id in rebound and n.id != entry_point
                       for n in ast.walk(module)):
        return None
    try:
        return _from_test(module.body[0].test, entry_point)
    except RecursionError:
        return None
