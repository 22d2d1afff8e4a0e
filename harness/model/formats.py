"""How a task's prompt is put to a model, and how its answer comes back.

Sampling, training, perplexity and the detectors' scores all go through one
`PromptFormat`, so a model is trained in exactly the format it is asked in, and
scored on human references in that format too. Two formats
(`sampling.prompt_format`):

* **completion**: the model continues the prompt (a signature and docstring) with
  the function body, which is cut by `tasks.postprocess` and run after the prompt.
  What base code models are built for, and builtin:tiny's format.
* **chat**: the prompt goes into one user message through the tokenizer's chat
  template (`CHAT_INSTRUCTION`, evalplus's wording, without its response prefix:
  opened with a python fence and the prompt's code, SmolLM2-135M-Instruct closes
  the fence at once). Instruct models answer with prose and a code block holding
  the whole function; the answer is kept up to the end of its first code block
  (`cut_answer`), and its code (`tasks.extract.extract_solution`) is the sample's
  `solution`, run after the prompt. A training example's target is that answer
  followed by the template's end of turn; a human reference becomes the answer a
  perfect model would give: the whole reference function in a python block.

`auto` picks chat when the tokenizer has a chat template, else completion.

**The prompt boundary** (`sampling.prompt_boundary`). Every HumanEval and
synthetic prompt ends in a newline, and byte-level BPE tokenizers (SmolLM2's and
builtin:tiny's) write a newline plus the next line's indent as *one* token. A
prompt ending in a bare newline token is a context the model rarely saw in
pretraining: SmolLM2-135M's greedy HumanEval pass@1 is 0 with the prompts as
given and 0.043 with the newline moved out. `heal` moves the prompt's trailing
whitespace out of the model input whenever the tokenizer would merge it with the
next token (checked per prompt: the prompt's tokens are not a prefix of the tokens
of the prompt followed by an indented line); the model then writes it itself, and
the completion is cut back to the original prompt, which is what is judged.
Training examples and perplexity move the same whitespace into the target, so
all three see one boundary. `keep` is the behaviour before this setting existed
(protocols released before it keep it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import BadInput
from tasks.extract import extract_solution, fenced_blocks
from tasks.model_text import clean_text
from tasks.postprocess import STOP_SEQUENCES, truncate_completion

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PROMPT_FORMATS = ("auto", "completion", "chat")
PROMPT_BOUNDARIES = ("heal", "keep")

CHAT_INSTRUCTION = ("Please provide a self-contained Python script that solves the following "
                    "problem in a markdown code block:\n```\n{prompt}\n```\n")
"""The user message of the chat format (evalplus's instruction)."""

CHAT_STOPS: tuple[str, ...] = ("\n```\n",)
"""The end of an answer's first code block: nothing after it becomes code or training
data, so decoding stops there. (An answer that opens an *unnamed* fence after a
newline stops at its opener and holds no code: a failed sample.)"""

_PROBE = "    x"
"""An indented line: what follows a prompt's trailing newline in every suite."""


def has_chat_template(tokenizer: PreTrainedTokenizerBase) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


@dataclass
class PromptFormat:
    """One run's prompt format over one tokenizer (see the module docstring)."""

    kind: str                       # completion | chat
    heal: bool
    tokenizer: Any
    _moved: dict[str, str] = field(default_factory=dict, repr=False)
    _turn_end: str | None = field(default=None, repr=False)

    @classmethod
    def resolve(cls, tokenizer: PreTrainedTokenizerBase, prompt_format: str = "completion",
                boundary: str = "keep") -> PromptFormat:
        """The format a run's settings give on this tokenizer (`auto` decided here)."""
        if prompt_format not in PROMPT_FORMATS:
            raise BadInput(f"unknown prompt format {prompt_format!r}; known: "
                           + ", ".join(PROMPT_FORMATS))
        if boundary not in PROMPT_BOUNDARIES:
            raise BadInput(f"unknown prompt boundary {boundary!r}; known: "
                           + ", ".join(PROMPT_BOUNDARIES))
        kind = prompt_format
        if kind == "auto":
            kind = "chat" if has_chat_template(tokenizer) else "completion"
        if kind == "chat" and not has_chat_template(tokenizer):
            raise BadInput("prompt format chat needs a tokenizer with a chat template; this "
                           "model has none (use --sampling.prompt-format completion)")
        return cls(kind=kind, heal=boundary == "heal", tokenizer=tokenizer)

    @property
    def is_chat(self) -> bool:
        return self.kind == "chat"

    # -- what the model sees ------------------------------------------------------

    def model_input(self, prompt: str) -> str:
        """The text the model is conditioned on for a task prompt."""
        if self.is_chat:
            message = CHAT_INSTRUCTION.format(prompt=prompt.strip())
            return str(self.tokenizer.apply_chat_template(
                [{"role": "user", "content": message}], tokenize=False,
                add_generation_prompt=True))
        return prompt[:len(prompt) - len(self.moved(prompt))]

    def input_ids(self, prompt: str) -> list[int]:
        """Token ids of `model_input(prompt)`. A chat template writes its own special
        tokens (BOS included where the model has one), so none are added to it."""
        text = self.model_input(prompt)
        return list(self.tokenizer(text, add_special_tokens=not self.is_chat)["input_ids"])

    def moved(self, prompt: str) -> str:
        """The trailing whitespace `heal` moves out of this prompt ('' if none)."""
        if not self.heal or self.is_chat:
            return ""
        if prompt not in self._moved:
            stripped = prompt.rstrip(" \t\r\n")
            tail = prompt[len(stripped):]
            moved = ""
            if tail:
                ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
                probe = self.tokenizer(prompt + _PROBE, add_special_tokens=False)["input_ids"]
                moved = tail if list(probe[:len(ids)]) != list(ids) else ""
            self._moved[prompt] = moved
        return self._moved[prompt]

    def target(self, prompt: str, completion: str, end_of_turn: bool = False) -> str:
        """What follows `model_input(prompt)` when `completion` is the answer: the
        whitespace moved out of the prompt, then the completion; in chat, the
        answer and (end_of_turn) the template's end of turn."""
        if self.is_chat:
            return completion + (self.turn_end() if end_of_turn else "")
        return self.moved(prompt) + completion

    def turn_end(self) -> str:
        """The text a chat template writes after an assistant message (e.g.
        `<|im_end|>`), without the newline that some templates add after it."""
        if self._turn_end is None:
            marker = "\x00ANSWER\x00"
            text = str(self.tokenizer.apply_chat_template(
                [{"role": "user", "content": "q"}, {"role": "assistant", "content": marker}],
                tokenize=False))
            after = text.split(marker, 1)[1] if marker in text else ""
            self._turn_end = after.rstrip("\n")
        return self._turn_end

    @property
    def adds_eos(self) -> bool:
        """Whether a training target gets the tokenizer's EOS appended (completion
        format); a chat target ends with the template's end of turn instead."""
        return not self.is_chat

    # -- what comes back ----------------------------------------------------------

    @property
    def stops(self) -> tuple[str, ...]:
        return CHAT_STOPS if self.is_chat else STOP_SEQUENCES

    def finish(self, prompt: str, raw: str) -> str:
        """A decoded sample as the harness keeps it (before `relative_to_prompt`)."""
        if self.is_chat:
            return cut_answer(raw)
        return truncate_completion(raw, self.stops)

    def relative_to_prompt(self, prompt: str, text: str) -> str:
        """A finished sample as a completion of the *original* prompt: the whitespace
        that `heal` moved out, written by the model, is taken off again."""
        moved = self.moved(prompt)
        if moved and text.startswith(moved):
            return text[len(moved):]
        return text

    def solution(self, completion: str, entry_point: str) -> str | None:
        """The code a chat answer's verdict is about (None in completion format,
        where the completion itself is run after the prompt)."""
        return extract_solution(completion, entry_point) if self.is_chat else None

    def reference(self, prompt: str, body: str) -> str:
        """A human reference solution as this format's completion (see the module
        docstring): the body, or in chat the whole function in a python block."""
        if self.is_chat:
            return "```python\n" + (prompt + body).strip("\n") + "\n```"
        return body

    def training_completion(self, completion: str) -> str:
        """A kept sample as a training target. In completion format it ends in one
        newline like the references (post-processing stripped it; training on
        bodies without it would teach a formatting shift that alone inflates
        perplexity on the references, a fake collapse signal)."""
        return completion.rstrip() if self.is_chat else completion.rstrip() + "\n"

    def describe(self) -> dict[str, Any]:
        """What a run records of the format it resolved to."""
        return {"kind": self.kind, "boundary": "heal" if self.heal else "keep"}


def cut_answer(raw: str) -> str:
    """A chat answer up to the end of its first closed code block (all of it when no
    block closes), trailing whitespace removed."""
    text = clean_text(raw)
    blocks = fenced_blocks(text)
    return (text[:blocks[0].end] if blocks else text).rstrip()
