"""The arms: what each one adds to the shared template. An explicit registry, no magic."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from ..config import unknown_name
from ..data import Example
from ..suites import Task


@dataclass
class ArmContext:
    """What an arm may use: the lazily loaded model, the suite seed and run settings."""

    get_model: Callable[[], Any]
    seed: int
    batch_size: int
    progress: Callable[[str, int], Callable[[int], None]] = field(default=lambda label, total: (lambda n: None))


class Arm(Protocol):
    """An arm variant: `predict` returns one record per example (id, output, prompt hash, timings)."""

    def predict(self, ctx: ArmContext, task: Task, examples: list[Example]) -> list[dict[str, Any]]: ...


def build_arm(spec: Any) -> Arm:
    from .prompt import PromptArm

    arms: dict[str, Callable[[Any], Arm]] = {"prompt": PromptArm}
    if spec.arm not in arms:
        raise KeyError(unknown_name("arm", spec.arm, list(arms)))
    return arms[spec.arm](spec)
