"""Coding styles of the synth suite: every rendering is correct, the mix is 80/15/5,
and `style_of` labels any text (tasks/renderings.py)."""

from __future__ import annotations

import math
import random
from collections import Counter
from functools import lru_cache
from typing import Any

import pytest
from hypothesis import given

from harness.errors import BadInput
from tasks import synthetic
from tasks.renderings import (
    HEAD_STYLE,
    LABELS,
    STYLE_FREQUENCIES,
    STYLES,
    TAIL_STYLE,
    style_entropy,
    style_of,
    style_shares,
)
from tasks.schema import Task
from tasks.synthetic import generate_synth, render_body, solution_in_style, steps_of, task_style
from tests.hostile_text import PROPERTY, hostile_text, no_warnings, with_named_examples

pytestmark = pytest.mark.text


@lru_cache(maxsize=1)
def _suite() -> tuple[Task, ...]:
    return tuple(generate_synth())


def _index(task: Task) -> int:
    return int(task.task_id.rsplit("/", 1)[1])


def test_public_constants() -> None:
    assert STYLES == ("comprehension", "loop", "functional")
    assert (HEAD_STYLE, TAIL_STYLE) == ("comprehension", "functional")
    assert STYLE_FREQUENCIES == {"comprehension": 0.80, "loop": 0.15, "functional": 0.05}
    assert math.isclose(sum(STYLE_FREQUENCIES.values()), 1.0)
    assert set(LABELS) == {*STYLES, "mixed", "plain", "unparsable"}


def _inputs(domain: synthetic.Domain, n: int) -> list[Any]:
    rng = random.Random(f"renderings-{domain.name}")
    edge: list[Any] = ([[], [0], [-6], [12, 12], [-1, 1, -2, 2, 3, 3]] if domain.name == "ints"
                       else ["", "a", "A", "aAbBcC", "ccc", "de", "ABCabc"])
    return edge + [domain.draw(rng) for _ in range(n)]


def test_every_rendering_of_every_step_computes_the_canonical_line() -> None:
    for domain in synthetic._domains():
        inputs = _inputs(domain, 1000)
        for step in domain.steps:
            for style in STYLES:
                fn = synthetic.compile_lines(step.lines(style))
                for value in inputs:
                    want, got = step.fn(value), fn(value)
                    assert type(got) is type(want) and got == want, \
                        (step.sentence, style, value, want, got)


def test_only_order_and_slice_steps_read_the_same_in_every_style() -> None:
    for domain in synthetic._domains():
        for step in domain.steps:
            forms = {step.lines(s) for s in STYLES}
            assert len(forms) == (1 if step.category in ("order", "slice") else 3), step
            assert step.lines(HEAD_STYLE) == (step.line,)


def test_whole_tasks_in_every_style_agree_with_the_reference() -> None:
    """Half of the 4200 tasks (compiling is what takes the time) x 3 styles pass their
    asserts, and agree on more inputs."""
    domains = {d.name: d for d in synthetic._domains()}
    for task in _suite()[::2]:
        steps = steps_of(task)
        domain = domains["ints" if steps[0] in domains["ints"].steps else "strs"]
        extra = _inputs(domain, 5)[::3] if _index(task) % 10 == 0 else []
        for style in STYLES:
            namespace: dict[str, Any] = {}
            exec(task.prompt + solution_in_style(task, style) + task.test, namespace)
            for value in extra:
                assert namespace["f"](value) == synthetic._run(steps, value)


def test_canonical_solution_is_the_drawn_style() -> None:
    for task in _suite():
        style = task_style(0, task.split, _index(task))
        assert task.canonical_solution == solution_in_style(task, style)
        label = style_of(task.canonical_solution)
        same_everywhere = len({solution_in_style(task, s) for s in STYLES}) == 1
        # a task rendered in one style carries that style's marker, or none at all
        assert label in (style, "plain")
        if style != HEAD_STYLE:
            assert (label == "plain") == same_everywhere, task.task_id


def test_style_shares_of_the_train_split_are_80_15_5() -> None:
    train = [t for t in _suite() if t.split == "train"]
    drawn = Counter(task_style(0, "train", _index(t)) for t in train)
    for style, share in STYLE_FREQUENCIES.items():
        assert abs(drawn[style] / len(train) - share) <= 0.03, (style, drawn)


def test_styles_are_seeded_and_deterministic() -> None:
    a = generate_synth(300, 20, seed=5)
    b = generate_synth(300, 20, seed=5)
    assert [t.canonical_solution for t in a] == [t.canonical_solution for t in b]
    styles = [task_style(5, t.split, _index(t)) for t in a]
    assert styles == [task_style(5, t.split, _index(t)) for t in b]
    assert styles != [task_style(6, t.split, _index(t)) for t in a]
    assert set(styles) == set(STYLES)


def test_solution_in_style_needs_a_synth_task_and_a_known_style() -> None:
    task = _suite()[0]
    with pytest.raises(BadInput, match="unknown style"):
        solution_in_style(task, "recursive")
    other = Task("he/1", 'def f(x):\n    """Return x doubled."""\n', "f", "    return 2 * x\n",
                 "", (), "", "humaneval", "test")
    with pytest.raises(BadInput, match="not a synth task"):
        solution_in_style(other, "loop")
    no_docstring = Task("x/1", "def f(x):\n", "f", "    return x\n", "", (), "", "x", "test")
    with pytest.raises(BadInput):
        solution_in_style(no_docstring, "loop")
    # one known step is not a task either: synth tasks have 2 or 3
    one = Task("s/1", 'def f(x):\n    """Return the sum."""\n', "f", "", "", (), "", "synth",
               "test")
    with pytest.raises(BadInput, match="not a synth task"):
        solution_in_style(one, "loop")


def test_solution_in_style_reads_back_the_steps() -> None:
    for task in _suite()[::50]:
        steps = steps_of(task)
        assert synthetic._key(steps) == synthetic.combination_key(task)
        assert solution_in_style(task, "loop") == render_body(steps, "loop")


def test_a_functional_reduce_imports_first() -> None:
    task = next(t for t in _suite() if steps_of(t)[-1].sentence == "Return the sum."
                and len(steps_of(t)) == 3)
    body = solution_in_style(task, "functional")
    assert body.startswith("    from functools import reduce\n")
    assert body.endswith("    return reduce(lambda a, v: a + v, x, 0)\n")


SNIPPETS = {
    "comprehension": [
        "    x = [v + 2 for v in x]\n    return x\n",
        "    return sum(v for v in x)\n",
        "    return {v: 1 for v in x}\n",
        "    x = ''.join([c.upper() for c in x])\n    return x\n",
        "def f(x):\n    return {v for v in x}\n",
    ],
    "loop": [
        "    y = []\n    for v in x:\n        y.append(v + 2)\n    x = y\n    return x\n",
        "    while x:\n        x = x[1:]\n    return x\n",
        "    n = 0\n    for c in x:\n        n += 1\n    return n\n",
        "for v in x:\n    print(v)\n",
    ],
    "functional": [
        "    x = list(map(lambda v: v + 2, x))\n    return x\n",
        "    return list(filter(None, x))\n",
        "    import functools\n    return functools.reduce(max, x)\n",
        "    return ''.join(map(str.upper, x))\n",
        "    return sorted(x, key=lambda v: -v)\n",
    ],
    "mixed": [
        "    x = [v for v in x]\n    for v in x:\n        pass\n    return x\n",
        "    return list(map(lambda v: v, [v for v in x]))\n",
        "    for v in x:\n        x = list(map(abs, x))\n    return x\n",
        "    for v in x:\n        y = list(map(abs, [w for w in x]))\n    return x\n",
    ],
    "plain": [
        "    x = sorted(x)\n    x = x[:2]\n    return sum(x)\n",
        "    x = x.upper()\n    return x.count('a')\n",
        "    return x\n",
        "",
        "# only a comment\n",
        "    x = x[::-1]  # for v in x: map(lambda: 0)\n    return 'for v in x'\n",
    ],
    "unparsable": [
        "    x = [v for v in x\n",
        "    for v in x\n        pass\n",
        "    return x\x00\n",
        "(" * 5000,
        "    lambda",
        "\ufffd\ufffd",
    ],
}


@pytest.mark.parametrize("label", list(SNIPPETS))
def test_style_of_hand_made_snippets(label: str) -> None:
    for code in SNIPPETS[label]:
        assert style_of(code) == label, code


def test_style_shares_and_entropy() -> None:
    codes = [c for label in SNIPPETS for c in SNIPPETS[label]]
    shares = style_shares(codes)
    assert list(shares) == list(LABELS)
    assert math.isclose(sum(shares.values()), 1.0)
    for label, snippets in SNIPPETS.items():
        assert math.isclose(shares[label], len(snippets) / len(codes))
    assert style_shares([]) == dict.fromkeys(LABELS, 0.0)

    assert style_entropy({}) == 0.0
    assert style_entropy(style_shares([])) == 0.0
    assert style_entropy({"comprehension": 1.0, "plain": 5.0}) == 0.0
    assert math.isclose(style_entropy(dict.fromkeys(STYLES, 0.2)), math.log2(3))
    assert math.isclose(style_entropy({"loop": 0.3, "functional": 0.3, "mixed": 0.4}), 1.0)
    assert math.isclose(style_entropy(STYLE_FREQUENCIES), 0.884, abs_tol=1e-3)
    assert style_entropy({"loop": float("nan"), "functional": 0.5}) == 0.0
    # renormalised: only the proportions between the three styles matter
    assert math.isclose(style_entropy({"comprehension": 0.08, "loop": 0.015,
                                       "functional": 0.005, "unparsable": 0.9}),
                        style_entropy(STYLE_FREQUENCIES))


@PROPERTY
@given(hostile_text)
@with_named_examples
def test_style_of_answers_for_any_text(text: str) -> None:
    assert no_warnings(style_of, text) in LABELS
