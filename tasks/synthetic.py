"""`synth`: a seeded procedural suite a ~1M-parameter model can learn on CPU.

Each task is a function `f(x)` composed of 2-3 simple steps on a list of ints
(map / filter / order / slice, optionally ending in a reduce) or on a string
(case / replace / slice, optionally ending in a count). The docstring has one
sentence per step and the canonical body one line per step, so the mapping from
prompt to solution is learnable, yet solving an unseen combination of steps needs
composition rather than recall.

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
* **Determinism.** The combination space is enumerated in a fixed order and all
  randomness comes from `random.Random(seed)` (or fixed seeds), never from set or
  hash order, so one seed always gives byte-identical tasks.

Step semantics come from compiling the very source line shown in the canonical
solution, so code and expected outputs cannot drift apart.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from harness.errors import BadInput
from tasks.schema import Task

SUITE = "synth"
ENTRY_POINT = "f"
N_BASE_ASSERTS = 6
MAX_EXTRA_ASSERTS = 3


@dataclass(frozen=True)
class Step:
    """One step: a docstring sentence, its one-line body, and a category.

    `line` is a statement on `x` ("x = ...") for transforms, or "return ..." for
    the terminal reduce. `category` groups steps that are swapped for each other to
    build mutants.
    """

    sentence: str
    line: str
    category: str
    fn: Callable[[Any], Any]

    @property
    def is_reduce(self) -> bool:
        return self.line.startswith("return ")


def _compile(line: str) -> Callable[[Any], Any]:
    """Compile a step's source line into a function of x (same text as the solution)."""
    body = line if line.startswith("return ") else f"{line}\n    return x"
    namespace: dict[str, Any] = {}
    exec(f"def _step(x):\n    {body}\n", namespace)
    return namespace["_step"]


def _step(sentence: str, line: str, category: str) -> Step:
    return Step(sentence, line, category, _compile(line))


def _int_steps() -> list[Step]:
    s: list[Step] = []
    for k in (1, 2, 3):
        s.append(_step(f"Add {k} to each number.", f"x = [v + {k} for v in x]", "map"))
    for k in (1, 2):
        s.append(_step(f"Subtract {k} from each number.", f"x = [v - {k} for v in x]", "map"))
    for k in (2, 3):
        s.append(_step(f"Multiply each number by {k}.", f"x = [v * {k} for v in x]", "map"))
    s.append(_step("Square each number.", "x = [v * v for v in x]", "map"))
    s.append(_step("Replace each number by its absolute value.", "x = [abs(v) for v in x]", "map"))
    s.append(_step("Keep the even numbers.", "x = [v for v in x if v % 2 == 0]", "filter"))
    s.append(_step("Keep the odd numbers.", "x = [v for v in x if v % 2 == 1]", "filter"))
    for k in (0, 3):
        s.append(_step(f"Keep the numbers greater than {k}.",
                       f"x = [v for v in x if v > {k}]", "filter"))
    s.append(_step("Keep the numbers less than 3.", "x = [v for v in x if v < 3]", "filter"))
    s.append(_step("Sort the numbers in ascending order.", "x = sorted(x)", "order"))
    s.append(_step("Sort the numbers in descending order.", "x = sorted(x, reverse=True)",
                   "order"))
    s.append(_step("Reverse the list.", "x = x[::-1]", "order"))
    s.append(_step("Keep the first 2 numbers.", "x = x[:2]", "slice"))
    s.append(_step("Keep the last 2 numbers.", "x = x[-2:]", "slice"))
    s.append(_step("Drop the first number.", "x = x[1:]", "slice"))
    s.append(_step("Keep every other number.", "x = x[::2]", "slice"))
    s.append(_step("Return the sum.", "return sum(x)", "reduce"))
    s.append(_step("Return the count.", "return len(x)", "reduce"))
    s.append(_step("Return the largest number, or 0 if empty.", "return max(x, default=0)",
                   "reduce"))
    s.append(_step("Return the smallest number, or 0 if empty.", "return min(x, default=0)",
                   "reduce"))
    return s


def _str_steps() -> list[Step]:
    s: list[Step] = [
        _step("Convert to upper case.", "x = x.upper()", "case"),
        _step("Convert to lower case.", "x = x.lower()", "case"),
        _step("Swap the case of each letter.", "x = x.swapcase()", "case"),
    ]
    for a, b in (("a", "b"), ("b", "a"), ("a", "c"), ("c", "a"), ("b", "c"), ("c", "b")):
        s.append(_step(f"Replace every '{a}' with '{b}'.", f"x = x.replace('{a}', '{b}')",
                       "replace"))
    for a in ("a", "b", "c"):
        s.append(_step(f"Remove every '{a}'.", f"x = x.replace('{a}', '')", "replace"))
    s.append(_step("Reverse the string.", "x = x[::-1]", "slice"))
    for k in (2, 3):
        s.append(_step(f"Keep the first {k} characters.", f"x = x[:{k}]", "slice"))
        s.append(_step(f"Keep the last {k} characters.", f"x = x[-{k}:]", "slice"))
    s.append(_step("Drop the first character.", "x = x[1:]", "slice"))
    s.append(_step("Repeat the string twice.", "x = x + x", "slice"))
    for a in ("a", "b", "c"):
        s.append(_step(f"Return the number of '{a}' characters.", f"return x.count('{a}')",
                       "reduce"))
    s.append(_step("Return the length.", "return len(x)", "reduce"))
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


def _make_task(domain: Domain, steps: tuple[Step, ...], split: str, index: int,
               rng: random.Random) -> Task:
    prompt = f'def {ENTRY_POINT}(x):\n    """{_key(steps)}"""\n'
    body = "".join(f"    {s.line}\n" for s in steps)
    if not steps[-1].is_reduce:
        body += "    return x\n"
    asserts = tuple(f"assert {ENTRY_POINT}({v!r}) == {_run(steps, v)!r}"
                    for v in _choose_inputs(domain, steps, rng))
    return Task(task_id=f"{SUITE}/{split}/{index}", prompt=prompt, entry_point=ENTRY_POINT,
                canonical_solution=body, test="\n".join(asserts) + "\n", asserts=asserts,
                final_call="", suite=SUITE, split=split)


def generate_synth(n_train: int = 4000, n_eval: int = 200, seed: int = 0) -> list[Task]:
    """`n_train` train then `n_eval` eval tasks, one distinct combination each.

    Eval combinations are drawn first and removed from the pool, so no eval
    combination ever appears in train. Same arguments -> byte-identical tasks.
    """
    space = combination_space()
    if n_train < 0 or n_eval < 0:
        raise BadInput(f"synth sizes must be >= 0 (got n_train={n_train}, n_eval={n_eval})")
    if n_train + n_eval > len(space):
        raise BadInput(f"synth has {len(space)} step combinations; n_train + n_eval = "
                       f"{n_train + n_eval} is too many")
    rng = random.Random(seed)
    order = rng.sample(range(len(space)), n_train + n_eval)
    eval_idx, train_idx = order[:n_eval], order[n_eval:]
    domains = {d.name: d for d in _domains()}
    tasks: list[Task] = []
    for split, indices in (("train", train_idx), ("eval", eval_idx)):
        for i, combo_index in enumerate(indices):
            domain_name, steps = space[combo_index]
            task_rng = random.Random(f"{seed}-{split}-{i}")
            tasks.append(_make_task(domains[domain_name], steps, split, i, task_rng))
    return tasks
