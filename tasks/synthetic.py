"""`synth`: a seeded procedural suite a ~1M-parameter model can learn on CPU.

Each task is a function `f(x)` composed of 2-3 simple steps on a list of ints
(map / filter / order / slice, optionally ending in a reduce) or on a string
(case / replace / slice, optionally ending in a count). The docstring has one
sentence per step and the canonical body one short block per step, so the mapping
from prompt to solution is learnable, yet solving an unseen combination of steps
needs composition rather than recall.

Why the details are the way they are:

* **Held-out combinations.** The train and eval splits are drawn from disjoint sets
  of step combinations (`combination_key`), so eval measures composition, not
  memorised tasks.
* **No dead steps.** A combination is kept only if every step changes the output
  on a fixed probe set (e.g. "add 2, then return the count" is dropped: the add
  cannot matter), and only if its outputs are not (almost) constant. Otherwise a
  wrong step could never be caught by any test.
* **Discriminating asserts.** Each task gets 6 random inputs, plus up to 3 more
  chosen from a pool to kill every *mutant* (one step swapped for another of its
  category: "add 3" for "add 2", "sort descending" for "ascending") that the first
  6 inputs do not tell apart. A verified filter built on these tests is therefore
  honest about which programs are right.
* **Styles with a tail.** Every step has a rendering in each style of
  `tasks.renderings.STYLES` (comprehension one-liner, explicit loop, map/filter/
  lambda), all computing the same function. Each task's canonical solution uses
  one style, drawn per task at 80/15/5 (`STYLE_FREQUENCIES`) from its own seeded
  stream, so the human reference has a head and a tail that collapse can erode;
  the draw touches nothing else (asserts, mutants and splits are style-free).
* **Unseen human code.** Combinations neither split uses make a third split,
  `fresh` (`n_fresh`, by default all of them: 861 at the default sizes; one more
  renders to a train task's code in some style and is left out), drawn after train
  and eval from its own stream, so adding it left both byte-identical. A model
  built or fine-tuned on the train split has never seen a fresh task or its
  reference, which is what a detector of AI code must be calibrated and tested on
  (docs/collapse.md, "Detection"); `--human-sources fresh` draws human code from it.
* **Determinism.** The combination space is enumerated in a fixed order and all
  randomness comes from `random.Random(seed)` (or fixed seeds), never from set or
  hash order, so one seed always gives byte-identical tasks.

Step semantics come from compiling the step's comprehension line, the head
rendering; tests/test_renderings.py checks every other rendering against it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from harness.errors import BadInput
from tasks.renderings import STYLE_FREQUENCIES, STYLES, check_style
from tasks.schema import Task

SUITE = "synth"
ENTRY_POINT = "f"
N_BASE_ASSERTS = 6
MAX_EXTRA_ASSERTS = 3


@dataclass(frozen=True)
class Step:
    """One step: a docstring sentence, its renderings, and a category.

    `line` is the comprehension-style statement on `x` ("x = ...") for transforms,
    or "return ..." for the terminal reduce; `fn` is compiled from it and defines
    what the step computes. `forms` holds the body lines of each style, in the
    order of STYLES (a tuple, not a dict, so Step stays hashable). `category`
    groups steps that are swapped for each other to build mutants.
    """

    sentence: str
    line: str
    category: str
    fn: Callable[[Any], Any]
    forms: tuple[tuple[str, ...], ...]

    @property
    def is_reduce(self) -> bool:
        return self.line.startswith("return ")

    def lines(self, style: str) -> tuple[str, ...]:
        """The step's body lines in `style` (relative indentation, no leading indent)."""
        return self.forms[STYLES.index(style)]


def compile_lines(lines: Sequence[str]) -> Callable[[Any], Any]:
    """Compile step body lines into a function of x (`return x` added unless they return)."""
    body = [*lines] if lines[-1].startswith("return ") else [*lines, "return x"]
    namespace: dict[str, Any] = {}
    exec("def _step(x):\n" + "".join(f"    {line}\n" for line in body), namespace)
    return namespace["_step"]


def _step(sentence: str, line: str, category: str, loop: Sequence[str] | None = None,
          functional: Sequence[str] | None = None) -> Step:
    """A step; a style without its own rendering (slices, sorting) reads as `line`."""
    by_style = {"comprehension": (line,), "loop": tuple(loop or (line,)),
                "functional": tuple(functional or (line,))}
    return Step(sentence, line, category, compile_lines((line,)),
                tuple(by_style[s] for s in STYLES))


def _map(sentence: str, expr: str, func: str | None = None) -> Step:
    """x = [expr for v in x]; `func` names a builtin to map directly (abs)."""
    return _step(sentence, f"x = [{expr} for v in x]", "map",
                 loop=("y = []", "for v in x:", f"    y.append({expr})", "x = y"),
                 functional=(f"x = list(map({func or f'lambda v: {expr}'}, x))",))


def _filter(sentence: str, cond: str) -> Step:
    return _step(sentence, f"x = [v for v in x if {cond}]", "filter",
                 loop=("y = []", "for v in x:", f"    if {cond}:", "        y.append(v)",
                       "x = y"),
                 functional=(f"x = list(filter(lambda v: {cond}, x))",))


def _extreme(sentence: str, name: str, better: str) -> Step:
    """max/min with default 0: `better` is the comparison that replaces the best so far."""
    return _step(sentence, f"return {name}(x, default=0)", "reduce",
                 loop=("m = x[0] if x else 0", "for v in x:", f"    if v {better} m:",
                       "        m = v", "return m"),
                 functional=("from functools import reduce",
                             f"return reduce({name}, x) if x else 0"))


def _counter(sentence: str, line: str, var: str, cond: str | None = None) -> Step:
    """A count (of everything, or of the items where `cond` holds) as a reduce step."""
    if cond is None:
        loop: tuple[str, ...] = ("n = 0", f"for {var} in x:", "    n += 1", "return n")
        functional = f"return sum(map(lambda {var}: 1, x))"
    else:
        loop = ("n = 0", f"for {var} in x:", f"    if {cond}:", "        n += 1", "return n")
        functional = f"return len(list(filter(lambda {var}: {cond}, x)))"
    return _step(sentence, line, "reduce", loop=loop, functional=(functional,))


def _per_char(sentence: str, line: str, category: str, expr: str, func: str) -> Step:
    """A string step that maps each character c to `expr` (`func` in functional style)."""
    return _step(sentence, line, category,
                 loop=("y = ''", "for c in x:", f"    y += {expr}", "x = y"),
                 functional=(f"x = ''.join(map({func}, x))",))


def _int_steps() -> list[Step]:
    s: list[Step] = []
    for k in (1, 2, 3):
        s.append(_map(f"Add {k} to each number.", f"v + {k}"))
    for k in (1, 2):
        s.append(_map(f"Subtract {k} from each number.", f"v - {k}"))
    for k in (2, 3):
        s.append(_map(f"Multiply each number by {k}.", f"v * {k}"))
    s.append(_map("Square each number.", "v * v"))
    s.append(_map("Replace each number by its absolute value.", "abs(v)", func="abs"))
    s.append(_filter("Keep the even numbers.", "v % 2 == 0"))
    s.append(_filter("Keep the odd numbers.", "v % 2 == 1"))
    for k in (0, 3):
        s.append(_filter(f"Keep the numbers greater than {k}.", f"v > {k}"))
    s.append(_filter("Keep the numbers less than 3.", "v < 3"))
    s.append(_step("Sort the numbers in ascending order.", "x = sorted(x)", "order"))
    s.append(_step("Sort the numbers in descending order.", "x = sorted(x, reverse=True)",
                   "order"))
    s.append(_step("Reverse the list.", "x = x[::-1]", "order"))
    s.append(_step("Keep the first 2 numbers.", "x = x[:2]", "slice"))
    s.append(_step("Keep the last 2 numbers.", "x = x[-2:]", "slice"))
    s.append(_step("Drop the first number.", "x = x[1:]", "slice"))
    s.append(_step("Keep every other number.", "x = x[::2]", "slice"))
    s.append(_step("Return the sum.", "return sum(x)", "reduce",
                   loop=("t = 0", "for v in x:", "    t += v", "return t"),
                   functional=("from functools import reduce",
                               "return reduce(lambda a, v: a + v, x, 0)")))
    s.append(_counter("Return the count.", "return len(x)", "v"))
    s.append(_extreme("Return the largest number, or 0 if empty.", "max", ">"))
    s.append(_extreme("Return the smallest number, or 0 if empty.", "min", "<"))
    return s


def _str_steps() -> list[Step]:
    s: list[Step] = [
        _per_char(sentence, f"x = x.{method}()", "case", f"c.{method}()", f"str.{method}")
        for sentence, method in (("Convert to upper case.", "upper"),
                                 ("Convert to lower case.", "lower"),
                                 ("Swap the case of each letter.", "swapcase"))]
    for a, b in (("a", "b"), ("b", "a"), ("a", "c"), ("c", "a"), ("b", "c"), ("c", "b")):
        swap = f"'{b}' if c == '{a}' else c"
        s.append(_per_char(f"Replace every '{a}' with '{b}'.", f"x = x.replace('{a}', '{b}')",
                           "replace", swap, f"lambda c: {swap}"))
    for a in ("a", "b", "c"):
        s.append(_step(f"Remove every '{a}'.", f"x = x.replace('{a}', '')", "replace",
                       loop=("y = ''", "for c in x:", f"    if c != '{a}':", "        y += c",
                             "x = y"),
                       functional=(f"x = ''.join(filter(lambda c: c != '{a}', x))",)))
    s.append(_step("Reverse the string.", "x = x[::-1]", "slice"))
    for k in (2, 3):
        s.append(_step(f"Keep the first {k} characters.", f"x = x[:{k}]", "slice"))
        s.append(_step(f"Keep the last {k} characters.", f"x = x[-{k}:]", "slice"))
    s.append(_step("Drop the first character.", "x = x[1:]", "slice"))
    s.append(_step("Repeat the string twice.", "x = x + x", "slice"))
    for a in ("a", "b", "c"):
        s.append(_counter(f"Return the number of '{a}' characters.", f"return x.count('{a}')",
                          "c", f"c == '{a}'"))
    s.append(_counter("Return the length.", "return len(x)", "c"))
    return s


def _int_input(rng: random.Random) -> list[int]:
    return [rng.randint(-6, 12) for _ in range(rng.randint(3, 8))]


_STR_ALPHABET = "aabbccAABBCde"


def _str_input(rng: random.Random) -> str:
    return "".join(rng.choice(_STR_ALPHABET) for _ in range(rng.randint(3, 9)))


@dataclass(frozen=True)
class Domain:
    """Steps over one input type, plus how to draw random inputs for them."""

    name: str
    steps: tuple[Step, ...]
    draw: Callable[[random.Random], Any]


@lru_cache(maxsize=1)
def _domains() -> tuple[Domain, ...]:
    return (Domain("ints", tuple(_int_steps()), _int_input),
            Domain("strs", tuple(_str_steps()), _str_input))


def _run(steps: Sequence[Step], value: Any) -> Any:
    for step in steps:
        value = step.fn(value)
    return value


def _probe_inputs(domain: Domain) -> list[Any]:
    rng = random.Random(f"probe-{domain.name}")
    return [domain.draw(rng) for _ in range(24)]


def _is_sound(steps: tuple[Step, ...], probes: Sequence[Any]) -> bool:
    """Every step matters, and the outputs vary enough for tests to mean something."""
    outputs = [repr(_run(steps, p)) for p in probes]
    if len(set(outputs)) < 4:
        return False
    for i in range(len(steps)):
        dropped = steps[:i] + steps[i + 1:]
        if [repr(_run(dropped, p)) for p in probes] == outputs:
            return False
    return True


@lru_cache(maxsize=1)
def combination_space() -> tuple[tuple[str, tuple[Step, ...]], ...]:
    """All sound combinations as (domain name, steps), in a fixed order.

    A combination is 2 or 3 steps of pairwise different categories; a reduce may
    only come last. Same for every seed: the seed only decides which ones are used.
    """
    space: list[tuple[str, tuple[Step, ...]]] = []
    for domain in _domains():
        probes = _probe_inputs(domain)
        transforms = [s for s in domain.steps if not s.is_reduce]
        reduces = [s for s in domain.steps if s.is_reduce]
        for length in (2, 3):
            for head in itertools.permutations(range(len(transforms)), length - 1):
                first = [transforms[i] for i in head]
                if len({s.category for s in first}) < len(first):
                    continue
                for last in transforms + reduces:
                    if last.category in {s.category for s in first}:
                        continue
                    steps = (*first, last)
                    if _is_sound(steps, probes):
                        space.append((domain.name, steps))
    return tuple(space)


def _key(steps: Sequence[Step]) -> str:
    return " ".join(s.sentence for s in steps)


def combination_key(task: Task) -> str:
    """The step combination a task was drawn from: its docstring sentences.

    Sentences name a step uniquely (including its input type), so two tasks share a
    key exactly when they were built from the same steps.
    """
    try:
        return task.prompt.split('"""')[1].strip()
    except IndexError:
        raise BadInput(f"{task.task_id}: not a synth task (no docstring)") from None


def _mutants(domain: Domain, steps: tuple[Step, ...]) -> list[tuple[Step, ...]]:
    """Each step swapped for every other step of its category."""
    out: list[tuple[Step, ...]] = []
    for i, step in enumerate(steps):
        for alt in domain.steps:
            if alt.category == step.category and alt is not step:
                out.append((*steps[:i], alt, *steps[i + 1:]))
    return out


def _choose_inputs(domain: Domain, steps: tuple[Step, ...], rng: random.Random) -> list[Any]:
    """6 random inputs, plus pool inputs (greedily) that kill surviving mutants."""
    chosen = [domain.draw(rng) for _ in range(N_BASE_ASSERTS)]
    pool = [domain.draw(rng) for _ in range(24)]
    want = [repr(_run(steps, v)) for v in chosen]
    survivors = [m for m in _mutants(domain, steps)
                 if all(repr(_run(m, v)) == w for v, w in zip(chosen, want, strict=True))]
    for _ in range(MAX_EXTRA_ASSERTS):
        if not survivors:
            break
        kills = []
        for v in pool:
            target = repr(_run(steps, v))
            kills.append([m for m in survivors if repr(_run(m, v)) != target])
        best = max(range(len(pool)), key=lambda j: len(kills[j]))
        if not kills[best]:
            break  # the rest are equivalent to the task on every pool input
        chosen.append(pool.pop(best))
        killed = {id(m) for m in kills[best]}
        survivors = [m for m in survivors if id(m) not in killed]
    return chosen


@lru_cache(maxsize=1)
def _steps_by_sentence() -> dict[str, Step]:
    """Every step of every domain by its sentence (sentences are unique across domains)."""
    steps = [s for d in _domains() for s in d.steps]
    by_sentence = {s.sentence: s for s in steps}
    assert len(by_sentence) == len(steps), "two steps share a sentence"
    return by_sentence


def steps_of(task: Task) -> tuple[Step, ...]:
    """The steps of a synth task, read back from its docstring sentences.

    BadInput when the docstring is not a sequence of known step sentences (a task
    of another suite, or an edited one).
    """
    rest = combination_key(task)
    by_sentence = _steps_by_sentence()
    steps: list[Step] = []
    while rest:
        step = next((s for s in by_sentence.values()
                     if rest == s.sentence or rest.startswith(s.sentence + " ")), None)
        if step is None:
            raise BadInput(f"{task.task_id}: not a synth task (unknown step {rest[:60]!r})")
        steps.append(step)
        rest = rest[len(step.sentence):].lstrip(" ")
    if not 2 <= len(steps) <= 3 or any(s.is_reduce for s in steps[:-1]):
        raise BadInput(f"{task.task_id}: not a synth task (steps: {combination_key(task)!r})")
    return tuple(steps)


def render_body(steps: Sequence[Step], style: str) -> str:
    """The function body (4-space indented) of `steps` with every step in `style`.

    Imports a step needs (functional reduces) go first, where people write them.
    """
    lines = [line for step in steps for line in step.lines(style)]
    lines.sort(key=lambda line: not line.startswith(("import ", "from ")))  # stable
    if not steps[-1].is_reduce:
        lines.append("return x")
    return "".join(f"    {line}\n" for line in lines)


def solution_in_style(task: Task, style: str) -> str:
    """The reference body of synth task `task` with every step written in `style`.

    The steps are recovered from the docstring sentences (each names one step), so
    this works for any synth task, whatever style its `canonical_solution` drew.
    BadInput for an unknown style or a task that is not a synth task.
    """
    return render_body(steps_of(task), check_style(style))


def task_style(seed: int, split: str, index: int) -> str:
    """The style drawn for task `index` of `split`: STYLE_FREQUENCIES, from its own
    stream, so the draw never shifts the inputs drawn for the asserts."""
    u = random.Random(f"{seed}-{split}-{index}-style").random()
    cumulative = 0.0
    for style in STYLES:
        cumulative += STYLE_FREQUENCIES[style]
        if u < cumulative:
            return style
    return STYLES[-1]  # u within rounding of 1.0


def _make_task(domain: Domain, steps: tuple[Step, ...], split: str, index: int,
               rng: random.Random, style: str) -> Task:
    prompt = f'def {ENTRY_POINT}(x):\n    """{_key(steps)}"""\n'
    body = render_body(steps, style)
    asserts = tuple(f"assert {ENTRY_POINT}({v!r}) == {_run(steps, v)!r}"
                    for v in _choose_inputs(domain, steps, rng))
    return Task(task_id=f"{SUITE}/{split}/{index}", prompt=prompt, entry_point=ENTRY_POINT,
                canonical_solution=body, test="\n".join(asserts) + "\n", asserts=asserts,
                final_call="", suite=SUITE, split=split)


def generate_synth(n_train: int = 4000, n_eval: int = 200, seed: int = 0,
                   n_fresh: int = -1) -> list[Task]:
    """`n_train` train, `n_eval` eval, then `n_fresh` fresh tasks, one distinct
    combination each (n_fresh -1: every combination the other two leave).

    Eval combinations are drawn first and removed from the pool, so no eval
    combination ever appears in train. Fresh ones come from what is left, in an
    order of their own (`{seed}-fresh`), after the others are drawn: train and eval
    do not depend on n_fresh. Each canonical solution is rendered in the style
    `task_style(seed, split, i)`. Same arguments -> byte-identical tasks.
    """
    space = combination_space()
    if n_train < 0 or n_eval < 0 or n_fresh < -1:
        raise BadInput(f"synth sizes must be >= 0 (got n_train={n_train}, n_eval={n_eval}, "
                       f"n_fresh={n_fresh}; n_fresh -1 = all that is left)")
    if n_train + n_eval > len(space):
        raise BadInput(f"synth has {len(space)} step combinations; n_train + n_eval = "
                       f"{n_train + n_eval} is too many")
    rng = random.Random(seed)
    order = rng.sample(range(len(space)), n_train + n_eval)
    eval_idx, train_idx = order[:n_eval], order[n_eval:]
    used = set(order)
    # Two combinations can render to the same code in some style (the docstrings
    # differ, the bodies do not): such a one is not fresh code, so it is left out.
    written = {render_body(space[i][1], style) for i in used for style in STYLES}
    left = [i for i in range(len(space)) if i not in used
            and not any(render_body(space[i][1], style) in written for style in STYLES)]
    if n_fresh > len(left):
        raise BadInput(f"synth has {len(left)} step combinations besides train and eval; "
                       f"n_fresh={n_fresh} is too many")
    random.Random(f"{seed}-fresh").shuffle(left)
    fresh_idx = left if n_fresh == -1 else left[:n_fresh]
    domains = {d.name: d for d in _domains()}
    tasks: list[Task] = []
    for split, indices in (("train", train_idx), ("eval", eval_idx), ("fresh", fresh_idx)):
        for i, combo_index in enumerate(indices):
            domain_name, steps = space[combo_index]
            task_rng = random.Random(f"{seed}-{split}-{i}")
            tasks.append(_make_task(domains[domain_name], steps, split, i, task_rng,
                                    task_style(seed, split, i)))
    return tasks
