"""The arms: what each one adds to the shared template. An explicit registry, no magic."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from ..config import unknown_name
from ..data import Example
from ..suites import Task


@dataclass
class ArmContext:
    """What an arm may use: the lazily loaded base model, the suite (for corpus, train data and
    the other arm variants it may build on), the seed and run settings."""

    get_model: Callable[[], Any]
    seed: int
    batch_size: int
    progress: Callable[[str, int], Callable[[int], None]] = field(default=lambda label, total: (lambda n: None))
    suite: Any = None
    retrain: bool = False
    log: Callable[[str], None] = field(default=lambda message: None)


class Arm(Protocol):
    """An arm variant: `predict` returns one record per example (id, output, prompt hash, timings)."""

    def predict(self, ctx: ArmContext, task: Task, examples: list[Example]) -> list[dict[str, Any]]: ...


def _prompt(spec: Any) -> Arm:
    from .prompt import PromptArm

    return PromptArm(spec)


def _finetune(spec: Any) -> Arm:
    from .finetune import FinetuneArm

    return FinetuneArm(spec)


def _rag(spec: Any) -> Arm:
    from .rag import RagArm

    return RagArm(spec)


ARMS: dict[str, Callable[[Any], Arm]] = {"prompt": _prompt, "finetune": _finetune, "rag": _rag}


def build_arm(spec: Any) -> Arm:
    """The arm object for a variant spec (imports only the arm in use: no torch for a report)."""
    if spec.arm not in ARMS:
        raise KeyError(unknown_name("arm", spec.arm, list(ARMS)))
    return ARMS[spec.arm](spec)
