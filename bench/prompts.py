"""The one instruction template every arm shares.

Arms differ only in what they add to it: demonstrations (prompt arm), retrieved context
(retrieval arm), or nothing but changed weights (fine-tuning arm). Keeping this in one
function is what makes the comparison fair.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .config import TaskSpec
from .data import Example, stable_hash

CONTENT_FREE_INPUTS = ("N/A", "", "[MASK]")


def answer_text(task: TaskSpec, example: Example) -> str:
    """What the model should write for this example (the verbalised label for classification)."""
    return task.verbalise(example.target) if task.kind == "classification" else example.target


def user_message(task: TaskSpec, text: str, demos: Sequence[Example] = (), context: str | None = None) -> str:
    """Instruction, label options, demonstrations, context, then the input."""
    parts = [task.instruction.strip()]
    if task.labels:
        parts.append("Options: " + "; ".join(task.verbalise(l) for l in task.labels) + ".")
    if demos:
        shown = [f"{task.input_prefix}: {d.input.strip()}\nAnswer: {answer_text(task, d)}" for d in demos]
        parts.append("Examples:\n\n" + "\n\n".join(shown))
    if context:
        parts.append("Context:\n" + context.strip())
    parts.append(f"{task.input_prefix}: {text.strip()}")
    return "\n\n".join(parts)


def messages(task: TaskSpec, text: str, demos: Sequence[Example] = (),
             context: str | None = None) -> list[dict[str, str]]:
    return [{"role": "user", "content": user_message(task, text, demos, context)}]


def render_prompt(tokenizer: Any, task: TaskSpec, text: str, demos: Sequence[Example] = (),
                  context: str | None = None) -> str:
    """The full prompt text, in the model's chat format, ending where the answer starts."""
    return tokenizer.apply_chat_template(messages(task, text, demos, context), tokenize=False,
                                         add_generation_prompt=True)


def end_of_answer(tokenizer: Any, task: TaskSpec) -> str:
    """What the chat template writes right after an assistant's answer (e.g. '<|im_end|>')."""
    marker = "\x00answer\x00"
    turns = messages(task, "x") + [{"role": "assistant", "content": marker}]
    text = tokenizer.apply_chat_template(turns, tokenize=False)
    return text[text.index(marker) + len(marker):].rstrip()


def label_continuations(tokenizer: Any, task: TaskSpec) -> list[str]:
    """What is scored after the prompt for each label, in the order of `task.labels`: the label's
    words, followed by the end-of-answer marker when the task sets `label_end`."""
    end = end_of_answer(tokenizer, task) if task.label_end else ""
    return [task.verbalise(label) + end for label in task.labels]


def prompt_hash(prompt: str) -> str:
    return stable_hash(prompt, length=12)
