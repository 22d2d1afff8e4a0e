"""The synthetic suite: determinism, held-out combinations, correct and honest tests."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from harness.errors import BadInput
from harness.experiment.evaluation import Sample, execute_samples
from sandbox.executor import Executor
from tasks import synthetic
from tasks.registry import load_suite, select_split, tasks_by_id
from tasks.renderings import HEAD_STYLE, STYLES
from tasks.schema import Task
from tasks.synthetic import combination_key, combination_space, generate_synth, solution_in_style

# sha256 of the concatenated canonical solutions of generate_synth() before the styled
# renderings (every task one line per step): what the head style must still produce.
HEAD_SOLUTIONS_SHA256 = "b306243e2d478d703ed867552fcf1d14a21634194b784f6e8539e3f0dfe556e2"


@pytest.fixture(scope="module")
def default_suite() -> list[Task]:
    return generate_synth()


def _dump(tasks: list[Task]) -> bytes:
    return json.dumps([t.to_json() for t in tasks]).encode()


def test_sizes_ids_and_splits(default_suite: list[Task]) -> None:
    train = [t for t in default_suite if t.split == "train"]
    evals = [t for t in default_suite if t.split == "eval"]
    fresh = [t for t in default_suite if t.split == "fresh"]
    # fresh: every combination the other splits leave but one, whose rendering in some
    # style is a train task's (test_the_fresh_split_shares_nothing_with_train_or_eval)
    assert len(train) == 4000 and len(evals) == 200
    assert len(fresh) == len(combination_space()) - 4200 - 1 == 861
    assert [t.task_id for t in train] == [f"synth/train/{i}" for i in range(4000)]
    assert [t.task_id for t in evals] == [f"synth/eval/{i}" for i in range(200)]
    assert [t.task_id for t in fresh] == [f"synth/fresh/{i}" for i in range(len(fresh))]
    assert {t.suite for t in default_suite} == {"synth"}
    assert {t.entry_point for t in default_suite} == {"f"}


def test_same_seed_is_byte_identical_other_seed_is_not(default_suite: list[Task]) -> None:
    again = generate_synth(4000, 200, 0)
    assert _dump(again) == _dump(default_suite)
    assert _dump(generate_synth(4000, 200, 1)) != _dump(default_suite)


def test_styles_changed_only_the_canonical_solutions(default_suite: list[Task]) -> None:
    """Ids, prompts, asserts and splits are byte-identical to the suite before the styled
    renderings (hash taken with the one-line-per-step suite), and the comprehension
    rendering is exactly that suite's canonical solution."""
    import hashlib

    def digest(tasks: list[Task]) -> str:
        return hashlib.sha256(json.dumps([
            [t.task_id, t.prompt, t.entry_point, t.test, list(t.asserts), t.final_call,
             t.suite, t.split] for t in tasks]).encode()).hexdigest()

    # train and eval as they were before the fresh split existed (it is drawn after them)
    before_fresh = [t for t in default_suite if t.split != "fresh"]
    assert digest(before_fresh) == \
        "b9476a025ba6fb9d96c049cf1ad9d63434e61a95f7ef4ba6306dd302f90fa4ed"
    assert digest(generate_synth(30, 5, 3, n_fresh=0)) == \
        "29de130c4ceb1cea0c4c7771823ae4f854e5274acd765c6c53d6d37835386fa9"
    head = "".join(solution_in_style(t, HEAD_STYLE) for t in before_fresh)
    assert hashlib.sha256(head.encode()).hexdigest() == HEAD_SOLUTIONS_SHA256


def test_train_and_eval_combinations_are_disjoint(default_suite: list[Task]) -> None:
    train = {combination_key(t) for t in default_suite if t.split == "train"}
    evals = {combination_key(t) for t in default_suite if t.split == "eval"}
    assert len(train) == 4000 and len(evals) == 200   # one combination per task
    assert not train & evals


def test_the_fresh_split_shares_nothing_with_train_or_eval(default_suite: list[Task]) -> None:
    """Issue 22: unseen human code. No fresh task shares a step combination, a prompt,
    a canonical solution (in any style) or an id with a train or eval task, and none
    repeats within the split; the model was built on the train split, so a fresh
    reference is code it has never seen."""
    by_split: dict[str, list[Task]] = {}
    for t in default_suite:
        by_split.setdefault(t.split, []).append(t)
    assert set(by_split) == {"train", "eval", "fresh"} and len(by_split["fresh"]) >= 800

    def facets(t: Task) -> set[str]:
        return {"key:" + combination_key(t), "prompt:" + t.prompt, "id:" + t.task_id,
                *("code:" + solution_in_style(t, style) for style in STYLES)}

    fresh = [facets(t) for t in by_split["fresh"]]
    seen = set().union(*(facets(t) for t in by_split["train"] + by_split["eval"]))
    assert not set().union(*fresh) & seen
    flat = [f for fs in fresh for f in fs if not f.startswith("code:")]
    assert len(flat) == len(set(flat))  # no key, prompt or id twice within fresh
    assert len({t.canonical_solution for t in by_split["fresh"]}) == len(by_split["fresh"])


def test_fresh_size_is_a_parameter() -> None:
    assert len(select_split(generate_synth(30, 5, 3, n_fresh=7), "fresh")) == 7
    assert _dump(select_split(load_suite("synth:n_train=30,n_eval=5,seed=3,n_fresh=7"),
                              "fresh")) == _dump(select_split(generate_synth(30, 5, 3, 7),
                                                              "fresh"))
    assert not [t for t in generate_synth(30, 5, 3, n_fresh=0) if t.split == "fresh"]
    with pytest.raises(BadInput, match="besides train and eval"):
        generate_synth(4000, 200, 0, n_fresh=10**5)


def test_combination_space_is_about_4800() -> None:
    assert 4500 <= len(combination_space()) <= 5500


def test_shape_of_a_task(default_suite: list[Task]) -> None:
    for task in default_suite:
        sentences = combination_key(task).count(".")
        head_lines = solution_in_style(task, HEAD_STYLE).count("\n")
        assert 2 <= sentences <= 3
        # in the head style, one line per step, plus `return x` when the last step is
        # not a reduce; the reference is that or another style's rendering
        assert head_lines in (sentences, sentences + 1)
        assert task.canonical_solution in {solution_in_style(task, s) for s in STYLES}
        assert len(task.canonical_solution.splitlines()) <= 16
        assert task.prompt.startswith("def f(x):\n") and len(task.prompt) < 160
        assert 6 <= len(task.asserts) <= 9
        assert task.final_call == ""
        assert all(a.startswith("assert f(") and "\n" not in a for a in task.asserts)


def test_every_canonical_solution_passes_unsandboxed(default_suite: list[Task]) -> None:
    """Cheap full check of all 4200 (our own generated code, so exec is fine here)."""
    for task in default_suite:
        namespace: dict[str, Any] = {}
        exec(task.prompt + task.canonical_solution, namespace)
        for stmt in task.asserts:
            exec(stmt, namespace)


def _mutant_failures(task: Task) -> tuple[int, int]:
    """(non-equivalent single-step mutants, how many of them some assert catches)."""
    domains = {d.name: d for d in synthetic._domains()}
    by_key = {synthetic._key(steps): (name, steps) for name, steps in combination_space()}
    name, steps = by_key[combination_key(task)]
    domain = domains[name]
    probe_rng = random.Random(task.task_id)
    probes = [domain.draw(probe_rng) for _ in range(200)]
    inputs = [eval(a[len("assert f("):a.rindex(") == ")]) for a in task.asserts]
    total = caught = 0
    for mutant in synthetic._mutants(domain, steps):
        if all(synthetic._run(mutant, p) == synthetic._run(steps, p) for p in probes):
            continue  # equivalent on 200 random inputs: no test could tell them apart
        total += 1
        caught += any(synthetic._run(mutant, v) != synthetic._run(steps, v) for v in inputs)
    return total, caught


def test_asserts_catch_single_step_mutants(default_suite: list[Task]) -> None:
    """Swapping one step ("add 3" for "add 2", ...) must fail some assert."""
    total = caught = 0
    for task in default_suite[::20]:
        t, c = _mutant_failures(task)
        total, caught = total + t, caught + c
    assert total > 1000
    assert caught == total


def test_sizes_and_seed_are_parameters() -> None:
    tasks = generate_synth(n_train=30, n_eval=5, seed=3)
    assert len(select_split(tasks, "train")) == 30 and len(select_split(tasks, "eval")) == 5
    via_spec = load_suite("synth:n_train=30,n_eval=5,seed=3")
    assert _dump(via_spec) == _dump(tasks)
    with pytest.raises(BadInput, match="step combinations"):
        generate_synth(n_train=10**6)
    with pytest.raises(BadInput):
        load_suite("synth:n_train=ten")
    with pytest.raises(BadInput):
        load_suite("synth:size=3")


def test_combination_key_needs_a_docstring() -> None:
    task = Task("x/1", "def f(x):\n", "f", "    return x\n", "", (), "", "x", "test")
    with pytest.raises(BadInput):
        combination_key(task)


def _canonical_and_broken(tasks: list[Task]) -> tuple[dict[str, Task], list[Sample]]:
    by_id = tasks_by_id(tasks)
    samples = [Sample(t.task_id, t.canonical_solution) for t in tasks]
    samples += [Sample(t.task_id, "    return x\n") for t in tasks]
    return by_id, samples


def test_canonical_solutions_pass_with_the_local_executor(local_executor: Executor) -> None:
    suite = generate_synth()
    tasks = select_split(suite, "eval") + select_split(suite, "train")[::40]
    by_id, samples = _canonical_and_broken(tasks)
    results = execute_samples(by_id, samples, local_executor)
    n = len(tasks)
    assert all(r.passed and r.assert_verdicts is not None and all(r.assert_verdicts)
               for r in results[:n]), [r for r in results[:n] if not r.passed][:3]
    # the identity function is wrong for every task: every step changes the output
    assert not any(r.passed for r in results[n:])


@pytest.mark.docker
def test_eval_canonical_solutions_pass_in_docker(docker_executor: Executor) -> None:
    tasks = select_split(generate_synth(), "eval")
    by_id, samples = _canonical_and_broken(tasks)
    results = execute_samples(by_id, samples, docker_executor)
    assert [r.status for r in results[:200]] == ["passed"] * 200
    assert not any(r.passed for r in results[200:])


def test_identical_across_processes_and_hash_seeds(default_suite: list[Task]) -> None:
    """No dependence on set/dict hash order: another interpreter gives the same bytes."""
    import hashlib
    import os
    import subprocess
    import sys

    code = ("import hashlib, json; from tasks.synthetic import generate_synth; "
            "print(hashlib.sha256(json.dumps([t.to_json() for t in generate_synth()])"
            ".encode()).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.stdout.strip() == hashlib.sha256(_dump(default_suite)).hexdigest()
