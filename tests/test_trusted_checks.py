"""Trusted checks: asserts become calls whose returned values the harness compares.

Pins three things: which asserts decompose (and which go to the judge), that the
strict plain-data codec refuses anything a program could have given behaviour, and
that the comparison agrees with what the original assert would have said for every
plain value (a property test against Python itself).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.runner import MAX_DEPTH, decode_value, encode_value
from sandbox.values import CallCheck, ConstCheck, call_verdict
from tasks.decompose import decompose_assert

pytestmark = pytest.mark.text


def check(source: str, entry: str = "f") -> Any:
    return decompose_assert(source, entry)


@pytest.mark.parametrize(("source", "compare", "args", "expected"), [
    ("assert f(2, 3) == 5", "eq", (2, 3), 5),
    ("assert 5 == f(2, 3)", "eq", (2, 3), 5),
    ("assert f('a') != 'b'", "ne", ("a",), "b"),
    ("assert f([1, -2], {'k': (1,)}) == [1.5, None]", "eq", ([1, -2], {"k": (1,)}), [1.5, None]),
    ("assert f(3) is True", "is", (3,), True),
    ("assert f(3) is not None", "is_not", (3,), None),
    ("assert f(1)", "truthy", (1,), None),
    ("assert not f(1)", "falsy", (1,), None),
    ("assert abs(f(1.0) - 2.0/3.0) < 1e-6", "abs_lt", (1.0,), 2.0 / 3.0),
    ("assert abs(0.5 - f(1.0)) <= 1e-3", "abs_le", (1.0,), 0.5),
    ("assert math.isclose(f(2), 1.41, rel_tol=0.01)", "isclose", (2,), 1.41),
    ("assert f(3 * 19) == [3, 19]", "eq", (57,), [3, 19]),
    ("assert f('ab' + 'c') == (3 + 5, 3 * 5)", "eq", ("abc",), (8, 15)),
    ("assert f(x=1) == set([1, 2]), 'message'", "eq", (), {1, 2}),
])
def test_these_asserts_become_trusted_calls(source: str, compare: str, args: tuple[Any, ...],
                                            expected: Any) -> None:
    got = check(source)
    assert isinstance(got, CallCheck), source
    assert (got.function, got.compare, got.args) == ("f", compare, args)
    assert got.expected == expected or (compare in ("truthy", "falsy") and got.expected is None)


def test_wrapped_calls_keep_their_wrapper() -> None:
    got = check("assert set(f([3, 1, 3])) == {1, 3}")
    assert isinstance(got, CallCheck) and got.wrap == "set"
    assert got.holds([3, 1]) and not got.holds([3]) and not got.holds([[1]])  # unhashable


@pytest.mark.parametrize("source", [
    "assert f(g(1)) == 2",            # arguments computed by other code
    "assert f(*xs) == 2",
    "assert g(1) == 2",               # not the tested function
    "assert f(1) == helper(2)",       # expected value computed by test code
    "assert f(1) < 2",
    "assert f(2 ** 10 ** 6) == 1",    # literal arithmetic too big to do on the trusted side
    "for i in range(3): assert f(i)",
    "x = f(1)",
    "assert f(1) == (",
])
def test_these_go_to_the_judge(source: str) -> None:
    assert check(source) is None


def test_a_literal_assert_is_a_constant() -> None:
    assert check('assert True, "This prints if this assert fails"') == ConstCheck(True)
    assert check("assert 0") == ConstCheck(False)


def test_the_sandbox_is_never_sent_the_expected_value() -> None:
    got = check("assert f(2, 3) == 'SECRET-EXPECTED'")
    assert isinstance(got, CallCheck)
    assert "SECRET-EXPECTED" not in repr(got.step())


# -- the plain-data codec


class EqualToAll(int):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


@pytest.mark.parametrize("value", [EqualToAll(0), [EqualToAll(1)], {"k": EqualToAll(2)},
                                   (x for x in ()), object(), type, print, math])
def test_anything_but_exact_plain_types_is_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        encode_value(value)


def test_depth_and_size_are_bounded() -> None:
    deep: Any = []
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(ValueError, match="deeper"):
        encode_value(deep)
    with pytest.raises(ValueError, match="too large"):
        encode_value("x" * 10, limit=5)
    with pytest.raises(ValueError):
        decode_value({"x": 1})
    nested: Any = "leaf"
    for _ in range(100_000):
        nested = {"l": [nested]}
    with pytest.raises(ValueError):
        decode_value(nested)


@pytest.mark.parametrize("bad", [{"i": 5}, {"f": "nope"}, {"i": "1", "f": "2"}, [1], 1.5,
                                 {"d": [[{"l": []}, 1]]}, {"s": [{"l": []}]}, {"q": []}])
def test_decoding_is_strict(bad: Any) -> None:
    with pytest.raises(ValueError):
        decode_value(bad)


PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
    | st.text(max_size=8) | st.binary(max_size=8)
    | st.complex_numbers(allow_nan=False, max_magnitude=1e6),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=3)
    | st.frozensets(st.integers() | st.text(max_size=3), max_size=4),
    max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(PLAIN)
def test_round_trip_preserves_value_and_type(value: Any) -> None:
    back = decode_value(encode_value(value))
    assert _identical(back, value)


def _identical(a: Any, b: Any) -> bool:
    """Same types all the way down and equal values, NaN equal to NaN, -0.0 to -0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, complex):
        return repr(a) == repr(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=600, deadline=None)
@given(PLAIN, PLAIN)
def test_the_comparison_agrees_with_the_original_assert(got: Any, expected: Any) -> None:
    """For plain data, `assert f() == expected` in-process and the trusted comparison
    of the returned value give the same verdict."""
    returned = decode_value(encode_value(got))
    for compare, original in (("eq", got == expected), ("ne", got != expected)):
        verdict, _ = call_verdict(CallCheck("f", (), (), compare, expected),  # type: ignore[arg-type]
                                  {"v": encode_value(returned)})
        if not any(isinstance(x, float) and math.isnan(x) for x in _leaves(got)):
            assert verdict == original, (compare, got, expected)


def _leaves(value: Any) -> list[Any]:
    out: list[Any] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple, set, frozenset)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        else:
            out.append(v)
    return out


def test_python_equality_quirks_are_kept() -> None:
    def holds(got: Any, expected: Any) -> bool:
        return call_verdict(CallCheck("f", (), (), "eq", expected), {"v": encode_value(got)})[0]

    assert holds(1, True) and holds(2, 2.0) and holds(frozenset({1}), {1})
    assert not holds([1], (1,)) and not holds("1", 1) and not holds(b"a", "a")
    assert not holds(float("nan"), float("nan"))


def test_a_call_that_raised_or_returned_garbage_fails() -> None:
    c = CallCheck("f", (), (), "eq", 1)
    assert call_verdict(c, {"e": "ZeroDivisionError"}) == (False, "ZeroDivisionError")
    assert not call_verdict(c, None)[0]
    assert not call_verdict(c, {"v": {"weird": 1}})[0]
    assert call_verdict(c, {"v": {"i": "1"}}) == (True, "")
