"""Collapse-mode metrics: garbage rate, unparsable fraction, novelty, and the mode rule,
on hand-made samples (both directions) and on hostile model text.

Pure Python (no torch), marked `text`: runs on every supported Python.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.metrics.collapse import (
    KEYS,
    ModeInputs,
    _lex,
    collapse_metrics,
    collapse_mode,
    garbage_rate,
    garbage_reason,
    group_by_task,
    is_garbage,
    junk_character,
    mean_length,
    novelty_vs_reference,
    prose_run,
    repetition_reason,
    scan,
    unparsable_fraction,
)
from tests.hostile_text import NAMED, PROPERTY, hostile_text, no_warnings, with_named_examples

pytestmark = pytest.mark.text

PROMPT = 'def f(x):\n    """Add 1 to each number, in descending order."""\n'

# -- garbage: what must be flagged -------------------------------------------------------

GARBAGE = {
    "the drift example": ("    result = []\n"
                          "    for v in descending order. Add 1 to each number. Keep the comdadd"),
    "prose after return": ("    x = [v + 1 for v in x]\n"
                           "    return Convert to each number, default=0)"),
    "prose in an expression": "    x = x.lower()\n    x = xat the count('c')\n    return x",
    "a prose line": "    x = sorted(x)\n    Sort the numbers in descending order\n    return x",
    "prose on the last line, no punctuation": "    return x\nThis function returns the list",
    "one token looping": "    return " + "x " * 30,
    "a keyword looping": "    " + "return " * 20,
    "brackets looping": "    return " + ")" * 40,
    "a two-token unit looping": "    x = " + "a + " * 20 + "a",
    "a line looping": "    x = x + 1\n" * 6,
    "a two-line block looping": "    x = x[:2]\n    x = x.lower()\n" * 5,
    "a long block looping": "".join(f"    y{i % 7} = [v * {i % 7} for v in x if v > {i % 7}]\n"
                                    for i in range(70)),
    "NUL in code": "    return x\x00\n",
    "U+FFFD in code": "    x = x.\ufffdutetrart\n    return x",
    "control bytes in code": "    x = x[::-1]\n    x = \x03\x17 + x\n",
    "a lone surrogate in code": "    return x\ud800\n",
    "an escape byte in code": "    return \x1b[0m",
}

# -- ... and what must not be --------------------------------------------------------------

CODE = {
    "one line": "    return x + 1\n",
    "a multi-line loop": ("    out = []\n"
                          "    for v in x:\n"
                          "        if v > 0:\n"
                          "            out.append(v)\n"
                          "        else:\n"
                          "            continue\n"
                          "    return sorted(out, reverse=True)\n"),
    "comments with prose": ("    # Add 1 to each number. Keep the rest as is.\n"
                            "    return [v + 1 for v in x]  # in descending order\n"),
    "a docstring with prose": ('    """Add 1 to each number.\n'
                               "\n"
                               "    Keep the list in descending order, as the caller expects.\n"
                               '    """\n'
                               "    return [v + 1 for v in x]\n"),
    "string literals with words": ('    msg = "sort the numbers in descending order"\n'
                                   "    raise ValueError(f'cannot sort {x} in this order')\n"),
    "keyword-dense code": ("    return [v for v in x if v is not None and v not in seen] "
                           "if x else None\n"),
    "comprehension, lambda, ternary": ("    key = lambda v: -v if v else 0\n"
                                       "    return sorted((v for v in x), key=key)\n"),
    "try/except/with": ("    try:\n"
                        "        with open(x) as fh:\n"
                        "            return fh.read()\n"
                        "    except OSError as err:\n"
                        "        raise RuntimeError(str(err)) from err\n"),
    "soft keywords": ("    match x:\n"
                      "        case [a, b]:\n"
                      "            return a\n"
                      "        case _:\n"
                      "            return None\n"),
    "async code": ("    async for item in x:\n"
                   "        await item\n"
                   "    return await asyncio.sleep(0)\n"),
    "a short table of zeros": ("    grid = [[0, 0, 0, 0, 0, 0, 0, 0, 0] for _ in range(9)]\n"
                               "    return grid\n"),
    "some repeated lines": "    x += 1\n    x += 1\n    x += 1\n    return x\n",
    "nested closing brackets": "    return [\n        [\n            [x],\n        ],\n    ]\n",
    "py2 print (broken, not prose)": "    print x\n",
    "a syntax error (broken, not prose)": "    if x > 0\n        return x\n",
    "an unclosed string with words": "    return 'sort the numbers in order\n",
    "an empty completion": "",
    "non-ASCII identifiers": "    λ = [é * 2 for é in x]\n    return λ\n",
    "form feed and CRLF": "\x0c    y = x\r\n    return y\r\n",
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_is_flagged(name: str) -> None:
    assert is_garbage(GARBAGE[name]), name
    assert garbage_reason(GARBAGE[name])


@pytest.mark.parametrize("name", list(CODE))
def test_code_is_not_garbage(name: str) -> None:
    assert garbage_reason(CODE[name]) is None, name


def test_the_drift_example_is_flagged_for_its_prose() -> None:
    text = GARBAGE["the drift example"]
    assert prose_run(text) == ("to", "each", "number")
    assert garbage_reason(text) == "prose: to each number"
    assert prose_run("    return x if x else y\n") is None  # keywords break a run


def test_each_criterion_names_itself() -> None:
    assert repetition_reason(GARBAGE["a line looping"]) == (
        "a block of 1 line(s) repeated >= 4 times")  # 5 tokens a line: too long a unit
    assert "unit of 1 token" in (repetition_reason(GARBAGE["brackets looping"]) or "")
    assert "compresses" in (repetition_reason(GARBAGE["a long block looping"]) or "")
    assert junk_character(GARBAGE["NUL in code"]) == "\x00"
    assert junk_character('    return "\x00\ufffd"  # \x1b\n') is None  # data, not code
    assert repetition_reason(CODE["a multi-line loop"]) is None


def test_scanner_skips_strings_and_comments_and_tiles_the_text() -> None:
    text = 'x = f"{a b c}" + rb\'d e f\'  # g h i\ny = """j k\nl m n"""\n'
    kinds = [k for k, _ in scan(text)]
    assert "comment" in kinds and kinds.count("string") == 3
    assert [t for k, t in scan(text) if k == "name"] == ["x", "y"]
    assert prose_run(text) is None


def test_garbage_rate_over_samples() -> None:
    samples = [*GARBAGE.values(), *CODE.values()]
    assert garbage_rate(samples) == pytest.approx(len(GARBAGE) / len(samples))
    assert garbage_rate([]) is None
    assert garbage_rate(list(CODE.values())) == 0.0


@settings(PROPERTY)
@given(hostile_text)
@with_named_examples
def test_garbage_never_raises_on_any_text(text: str) -> None:
    reason = no_warnings(garbage_reason, text)
    assert reason is None or isinstance(reason, str)
    assert garbage_rate([text, text]) in (0.0, 1.0)
    assert "".join(t for _, t in _lex(text)) == text  # the scanner loses nothing


def test_huge_hostile_inputs_are_repetition() -> None:
    for name in ("5000 nested brackets", "3,000 short lines", "100 kB line", "2000 nested lambda"):
        assert is_garbage(NAMED[name]), name


# -- unparsable fraction, length -----------------------------------------------------------


def test_unparsable_fraction_parses_prompt_plus_completion() -> None:
    completions = ["    return x\n", "    return x +\n", "    if x\n", "    return '\x00'\n"]
    # Python refuses NUL anywhere in source, even inside a string literal
    assert unparsable_fraction([PROMPT] * 4, completions) == pytest.approx(3 / 4)
    # a body alone is not a program: the prompt decides the context
    assert unparsable_fraction(["def f(x):\n"], ["return x\n"]) == 1.0
    assert unparsable_fraction([], []) is None
    with pytest.raises(ValueError):
        unparsable_fraction([PROMPT], [])


def test_mean_length_in_characters() -> None:
    assert mean_length(["ab", "abcd", ""]) == pytest.approx(2.0)
    assert mean_length(["\ud800\x00"]) == 2.0
    assert mean_length([]) is None


# -- novelty ---------------------------------------------------------------------------------

GEN0 = {"a": ["    return x + 1\n", "    return x * 2\n"],
        "b": ["    return sorted(x)\n", "    return sorted(x, reverse=True)\n"]}


def test_novelty_of_generation_0_against_itself_is_0() -> None:
    assert novelty_vs_reference(GEN0, GEN0) == 0.0
    sharpened = {"a": ["    return x + 1\n"] * 2, "b": ["    return sorted(x)\n"] * 2}
    assert novelty_vs_reference(GEN0, sharpened) == 0.0


def test_novelty_counts_new_ngrams_per_task_then_averages() -> None:
    # task a: "return x - 1" has 3-grams (return x -), (x - 1): both new -> 1.0
    # task b: one sample equal to gen 0 (3 old 3-grams: return sorted (, sorted ( x, ( x ))
    drift = {"a": ["    return x - 1\n"], "b": ["    return sorted(x)\n"]}
    assert novelty_vs_reference(GEN0, drift) == pytest.approx((1.0 + 0.0) / 2)
    prose = {"a": ["    Add one to each number please\n"]}
    assert novelty_vs_reference(GEN0, prose) == 1.0
    assert novelty_vs_reference(GEN0, prose, n=1) == 1.0


def test_novelty_skips_tasks_it_cannot_compare() -> None:
    assert novelty_vs_reference(GEN0, {"zzz": ["    return x - 1\n"]}) is None
    assert novelty_vs_reference(GEN0, {"a": ["x"]}) is None  # no 3-gram
    assert novelty_vs_reference({}, {}) is None
    with pytest.raises(ValueError):
        novelty_vs_reference(GEN0, GEN0, n=0)


@settings(PROPERTY, max_examples=60)
@given(st.lists(hostile_text, min_size=1, max_size=3), st.lists(hostile_text, max_size=3))
def test_novelty_is_a_share_for_any_text(ref: list[str], now: list[str]) -> None:
    value = novelty_vs_reference({"t": ref}, {"t": now})
    assert value is None or 0.0 <= value <= 1.0
    assert novelty_vs_reference({"t": ref}, {"t": ref}) in (0.0, None)


# -- the mode ----------------------------------------------------------------------------------

G0 = ModeInputs(diversity=0.10, garbage_rate=0.01, unparsable_fraction=0.02, novelty=0.0)


def mode(**now: float | None) -> str:
    fields = {"diversity": 0.10, "garbage_rate": 0.01, "unparsable_fraction": 0.02,
              "novelty": 0.02, **now}
    name, reason = collapse_mode(G0, ModeInputs(**fields))  # type: ignore[arg-type]
    assert reason and "\n" not in reason
    return name


def test_mode_stable_when_nothing_moves() -> None:
    assert mode() == "stable"
    assert mode(diversity=0.105, garbage_rate=0.025) == "stable"  # +5%, +0.015


def test_mode_sharpening_when_diversity_falls() -> None:
    assert mode(diversity=0.08) == "sharpening"
    name, reason = collapse_mode(G0, ModeInputs(0.05, 0.0, 0.01, 0.01))
    assert name == "sharpening" and "-50%" in reason and "novelty 0.010" in reason


def test_mode_noise_when_rates_rise_or_diversity_rises_on_new_text() -> None:
    assert mode(garbage_rate=0.03) == "noise"
    assert mode(unparsable_fraction=0.06) == "noise"
    assert mode(diversity=0.05, garbage_rate=0.2) == "noise"  # a garbage loop: rates first
    assert mode(diversity=0.13, novelty=0.30) == "noise"
    assert mode(diversity=0.13, novelty=0.05) == "stable"  # more spread, same material
    assert mode(diversity=0.13, novelty=None) == "stable"


def test_mode_with_undefined_inputs() -> None:
    empty = ModeInputs(None, None, None, None)
    assert collapse_mode(empty, empty)[0] == "stable"
    assert collapse_mode(ModeInputs(0.0, 0.0, 0.0), ModeInputs(0.1, 0.0, 0.0, 0.5))[0] == "noise"
    assert collapse_mode(ModeInputs(0.0, 0.0, 0.0), ModeInputs(0.0, 0.0, 0.0, 0.5))[0] == "stable"
    assert collapse_mode(ModeInputs(math.nan, None, 0.0), ModeInputs(0.1, 0.5, 0.0))[0] == "stable"


# -- the entry point -----------------------------------------------------------------------------


def test_collapse_metrics_at_generation_0_and_later() -> None:
    ids = ["a", "a", "b", "b"]
    prompts = [PROMPT] * 4
    gen0_comps = [c for t in ("a", "b") for c in GEN0[t]]
    first = collapse_metrics(prompts, gen0_comps, ids, None, 0.10, None)
    assert tuple(first) == KEYS
    assert first["novelty_vs_gen0"] is first["mode"] is first["mode_reason"] is None
    assert first["garbage_rate"] == 0.0 and first["unparsable_fraction"] == 0.0
    json.dumps(first, allow_nan=False)

    g0 = ModeInputs.from_metrics(first, 0.10)
    assert g0 == ModeInputs(0.10, 0.0, 0.0, None)
    noisy = ["    for v in descending order. Add 1 to each number. Keep the comdadd",
             "    return x * 2\n", "    Sort the numbers in descending order please\n",
             "    return sorted(x)\n"]
    later = collapse_metrics(prompts, noisy, ids, group_by_task(ids, gen0_comps), 0.2, g0)
    assert later["garbage_rate"] == 0.5 and later["unparsable_fraction"] == 0.5
    assert later["novelty_vs_gen0"] is not None and later["novelty_vs_gen0"] > 0.3
    assert later["mode"] == "noise" and "garbage rate" in str(later["mode_reason"])
    json.dumps(later, allow_nan=False)

    same = collapse_metrics(prompts, gen0_comps, ids, group_by_task(ids, gen0_comps), 0.05, g0)
    assert same["novelty_vs_gen0"] == 0.0 and same["mode"] == "sharpening"


def test_collapse_metrics_checks_lengths() -> None:
    with pytest.raises(ValueError):
        collapse_metrics(["p"], ["c", "d"], ["a", "a"], None, None, None)
    with pytest.raises(ValueError):
        group_by_task(["a"], [])
    empty = collapse_metrics([], [], [], {}, None, G0)
    assert empty["garbage_rate"] is None and empty["mode"] == "stable"
