"""Coding styles of the synth suite: the head the model sees most and the tails it can lose.

Model collapse is first of all a loss of the *tails* of a distribution: what was
rare in the human data becomes rarer with every generation a model trains on its
own output, long before the common cases suffer. The synth suite therefore writes
every step in several equally correct styles, and each task's human reference
(`canonical_solution`) uses one style drawn per task with skewed frequencies
(`STYLE_FREQUENCIES`):

* ``comprehension`` - the head (80%): one-liners such as ``x = [v + 2 for v in x]``
  or ``x = x.upper()``;
* ``loop`` - 15%: an explicit ``for`` loop building a new list or string, or
  accumulating a result;
* ``functional`` - the tail (5%): ``map``/``filter``/``lambda``/``reduce``.

Steps for which a style makes no sense (slices, sorting, ``x + x``) read the same in
every style. Every rendering computes exactly the function of the comprehension
line (tests/test_renderings.py checks it on many inputs).

This module is the public API for measuring the styles (stdlib only, no torch):
`style_of` classifies any completion, `style_shares` and `style_entropy` summarise
a generation's completions. Rendering a synth task's reference in one chosen style
(for head/tail perplexity) is `tasks.synthetic.solution_in_style`: the suite owns
the steps, this module only names the styles.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence

from harness.errors import BadInput
from tasks.model_text import parse_python

STYLES: tuple[str, ...] = ("comprehension", "loop", "functional")
STYLE_FREQUENCIES: dict[str, float] = {"comprehension": 0.80, "loop": 0.15, "functional": 0.05}
HEAD_STYLE = "comprehension"
TAIL_STYLE = "functional"

LABELS: tuple[str, ...] = (*STYLES, "mixed", "plain", "unparsable")
"""Every label `style_of` returns, in the order `style_shares` reports them."""

_FUNCTIONAL_CALLS = frozenset({"map", "filter", "reduce"})
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)


def check_style(style: str) -> str:
    """`style` if it is one of STYLES, else BadInput naming the known ones."""
    if style not in STYLES:
        raise BadInput(f"unknown style {style!r}; known: {', '.join(STYLES)}")
    return style


def _parse_sample(code: str) -> ast.Module | None:
    """`code` as a module, else as the body of a function (a completion is usually the
    indented body after the prompt); None when neither parses."""
    for text in (code, "def _(x):\n" + code):
        tree = parse_python(text)
        if tree is not None:
            return tree
    return None


def _markers(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, _LOOPS):
            found.add("loop")
        elif isinstance(node, ast.Lambda):
            found.add("functional")
        elif isinstance(node, ast.Call):
            func = node.func
            name = (func.id if isinstance(func, ast.Name)
                    else func.attr if isinstance(func, ast.Attribute) else None)
            if name in _FUNCTIONAL_CALLS:
                found.add("functional")
        elif isinstance(node, _COMPREHENSIONS):
            found.add("comprehension")
    return found


def style_of(code: str) -> str:
    """The style a piece of code is written in; never raises, whatever `code` is.

    `code` is parsed as a module or, failing that, as the body of a function (so
    both a whole program and a bare indented completion work), with
    `tasks.model_text.parse_python`. Then three *markers* are looked for anywhere
    in the tree:

    * loop: a ``for``, ``async for`` or ``while`` statement (comprehension
      ``for`` clauses do not count);
    * functional: a ``lambda``, or a call of a function named ``map``, ``filter``
      or ``reduce``, bare or as an attribute (``functools.reduce(...)``);
    * comprehension: a list, set or dict comprehension or a generator expression.

    The label is the marker's name when exactly one kind is present, "mixed" when
    two or three kinds are, "plain" when none is (e.g. only slices and builtins:
    ``x = sorted(x)[:2]``), and "unparsable" when neither parse succeeds. A step
    written in one style only ever carries that style's marker, so a task rendered
    in one style is labelled with it, or "plain" when none of its steps has a
    style of its own.
    """
    tree = _parse_sample(code)
    if tree is None:
        return "unparsable"
    try:
        found = _markers(tree)
    except RecursionError:  # pragma: no cover - ast.walk is iterative; belt and braces
        return "unparsable"
    if len(found) >= 2:
        return "mixed"
    if found:
        return found.pop()
    return "plain"


def style_shares(codes: Sequence[str]) -> dict[str, float]:
    """The fraction of `codes` with each label of `style_of`, over all LABELS (sums to
    1; all zeros for no codes)."""
    counts = dict.fromkeys(LABELS, 0)
    for code in codes:
        counts[style_of(code)] += 1
    total = len(codes)
    return {label: (n / total if total else 0.0) for label, n in counts.items()}


def style_entropy(shares: Mapping[str, float]) -> float:
    """Shannon entropy in bits of the three STYLES' shares, renormalised to sum to 1.

    Mixed, plain and unparsable code says nothing about which style a model prefers,
    so it is left out; 0.0 when no share of any style is positive. The maximum,
    log2(3) ~ 1.585, means the three styles are equally common; the reference
    frequencies (80/15/5) give about 0.884.
    """
    values = [float(shares.get(s, 0.0)) for s in STYLES]
    values = [v if math.isfinite(v) and v > 0.0 else 0.0 for v in values]
    total = sum(values)
    if total <= 0.0:
        return 0.0
    return -sum(p / total * math.log2(p / total) for p in values if p > 0.0) + 0.0
