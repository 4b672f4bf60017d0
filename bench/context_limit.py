"""Prompts that fit the model's context window: an over-long input is shortened in its middle.

A prompt's tokens plus the answer's (the longest label scored after it, or `max_new_tokens`
generated) must fit in the positions the model was built for; beyond them a rotary model computes
positions it never saw and a learned-position model indexes past its table. Only the example's
input is shortened, never the instruction, label options, demonstrations, retrieved context or
the chat template's answer cue: its start and its end are kept, joined by ELISION, as the
fine-tune arm shortens over-long training prompts in their middle. Each prediction records
whether its input was shortened (`Prediction.input_shortened`), and the runner says how many once
per cell (`shortened_note`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import TaskSpec
from .errors import DataError
from .prompts import label_continuations

ELISION = " […] "
"""What stands where the middle of an over-long input was cut out."""
MIN_KEPT_TOKENS = 16
"""Fewer input tokens than this left and the input says too little: the prompt is refused instead."""
NO_REAL_LIMIT = 10**6
"""Tokenizers without a known limit report a huge sentinel (1e30) as `model_max_length`."""


def context_window(lm: Any) -> int | None:
    """Positions the model takes: its config's `max_position_embeddings` (a PEFT model passes it
    on from its base), else its tokenizer's `model_max_length` when that is a real limit; None
    when neither says (no prompt is then shortened)."""
    n = getattr(getattr(lm.model, "config", None), "max_position_embeddings", None)
    if n:
        return int(n)
    n = getattr(lm.tokenizer, "model_max_length", None)
    return int(n) if n and n < NO_REAL_LIMIT else None


@dataclass(frozen=True)
class PromptLimit:
    """How many tokens a prompt may take: the model's window less what its answer needs."""

    window: int
    """The model's context window in tokens (positions)."""
    answer_tokens: int
    """Tokens kept free after the prompt: the longest scored label, or the tokens generated."""
    context_tokens: int = 0
    """Tokens kept free for retrieved context (the rag arm shortens the input before it retrieves)."""

    @property
    def prompt_tokens(self) -> int:
        return self.window - self.answer_tokens - self.context_tokens


def answer_tokens(tokenizer: Any, task: TaskSpec, scored: bool) -> int:
    """Tokens an answer takes after the prompt: the longest label continuation when labels are
    scored (each is read in the prompt's pass), else the task's `max_new_tokens`."""
    if not scored:
        return task.max_new_tokens
    return max(len(tokenizer(c, add_special_tokens=False).input_ids) for c in label_continuations(tokenizer, task))


def prompt_limit(lm: Any, task: TaskSpec, scored: bool) -> PromptLimit | None:
    """The limit for `task`'s prompts on `lm`, None when the model states no window."""
    window = context_window(lm)
    return PromptLimit(window, answer_tokens(lm.tokenizer, task, scored)) if window else None


@dataclass(frozen=True)
class FittedInput:
    """An example's input as it goes into the prompt, and the prompt rendered from it."""

    text: str
    """The input: unchanged, or its start and end joined by ELISION."""
    prompt: str
    """`render(text)`."""
    shortened: bool
    """Whether the middle of the input was cut out to fit the model's window."""


def fit_input(tokenizer: Any, render: Callable[[str], str], text: str, limit: PromptLimit | None,
              where: str) -> FittedInput:
    """The input, shortened in its middle only if `render(input)` takes more than
    `limit.prompt_tokens`; a DataError (naming `where`) when the rest of the prompt leaves no room
    for MIN_KEPT_TOKENS of it."""
    prompt = render(text)
    if limit is None:
        return FittedInput(text, prompt, False)
    over = _count(tokenizer, prompt) - limit.prompt_tokens
    if over <= 0:
        return FittedInput(text, prompt, False)
    ids = tokenizer(text.strip(), add_special_tokens=False).input_ids
    keep = len(ids) - over - _count(tokenizer, ELISION)
    while keep >= MIN_KEPT_TOKENS:
        short = _middle_out(tokenizer, ids, keep)
        prompt = render(short)
        over = _count(tokenizer, prompt) - limit.prompt_tokens
        if over <= 0:
            return FittedInput(short, prompt, True)
        keep -= max(over, 2)  # tokens merge differently across the cut: take off what is still over
    rest = _count(tokenizer, render(""))
    context = f" and {limit.context_tokens} for retrieved context" if limit.context_tokens else ""
    raise DataError(f"{where}: the prompt without its input takes {rest} tokens, and with {MIN_KEPT_TOKENS} of the "
                    f"input more than the {limit.prompt_tokens} the model's {limit.window:,}-token context leaves "
                    f"beside {limit.answer_tokens} for the answer{context}; shorten the instruction, options or "
                    f"demonstrations")


def _middle_out(tokenizer: Any, ids: list[int], keep: int) -> str:
    """The first and last tokens of `ids`, `keep` in all (the start gets the odd one), around ELISION."""
    head, tail = keep - keep // 2, keep // 2
    start = tokenizer.decode(ids[:head]).rstrip()
    end = tokenizer.decode(ids[len(ids) - tail:]).lstrip() if tail else ""
    return start + ELISION + end


def _count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False).input_ids)


def shortened_note(cell: str, shortened: int, total: int, window: int | None) -> str:
    """The one line a cell logs when inputs were shortened."""
    context = f"the model's {window:,}-token context" if window else "the model's context"
    return (f"{cell}: {shortened} of {total} test examples longer than {context} were shortened in the middle "
            "of the input")
