"""The arms: what each one adds to the shared template. An explicit registry, no magic.

An arm is any object with the two methods of `Arm`; shared work lives in plain functions
(bench.generate, bench.prompts, `prompt.classify` / `prompt.answer`), never in a base class.
Retrieval on a fine-tune is composition: `build_arms` hands the retrieval variant the very
`FinetuneArm` object of the variant it names, so one trained model serves both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..backends import Backend, HFBackend
from ..config import ArmSpec, composition_problem, unknown_name
from ..data import Document, Example
from ..errors import ConfigError
from ..predictions import ArmResult
from ..progress import StageFactory, no_progress
from ..suites import Suite, Task


@dataclass(frozen=True)
class ArmContext:
    """What an arm may use besides its own spec: the lazily loaded base model, the suite's
    tasks and corpus, and the run's settings."""

    get_model: Callable[[], Any]
    """Returns the shared base model (a `LoadedModel`), loading it on first use."""
    seed: int
    """The suite seed: demonstrations, subsamples, training and bootstrap all derive from it."""
    batch_size: int
    """Prompts per forward pass when predicting."""
    tasks: Mapping[str, Task] = field(default_factory=dict)
    """Every task of the suite (a multi-task fine-tune trains on several)."""
    corpus: Sequence[Document] = ()
    """The suite's corpus documents (retrieval; knowledge injection); a task with a corpus of its
    own uses that instead: ask `corpus_for(task)`."""
    suite_name: str = ""
    """For messages only."""
    retrain: bool = False
    """Retrain fine-tunes even when a trained model is cached."""
    progress: StageFactory = no_progress
    """progress(label, total, unit) returns the Stage to advance: a bar, or timed lines in a log, per long step."""
    log: Callable[[str], None] = lambda message: None
    """One line for the user (printed above the progress bars)."""
    backend: Backend = field(default_factory=HFBackend)
    """The engine every arm generates and scores labels with (`bench run --backend`; bench.backends)."""

    def corpus_for(self, task: Task) -> Sequence[Document]:
        """The documents `task` retrieves from and learns from: its own `corpus:`, else the suite's."""
        return self.corpus if task.corpus is None else task.corpus


def suite_context(suite: Suite, get_model: Callable[[], Any], *, batch_size: int, **settings: Any) -> ArmContext:
    """The context for running arms on `suite` (settings: retrain, progress, log, backend)."""
    return ArmContext(get_model=get_model, seed=suite.spec.seed, batch_size=batch_size, tasks=suite.tasks,
                      corpus=tuple(suite.corpus or ()), suite_name=suite.spec.name, **settings)


class Arm(Protocol):
    """An arm variant. `predict` returns one prediction per example plus its costs;
    `cache_key` names everything beyond the model, the task and its data that the predictions
    depend on (the runner hashes it with those into the prediction cache key)."""

    spec: Any

    def cache_key(self, ctx: ArmContext, task: Task) -> dict[str, Any]: ...

    def predict(self, ctx: ArmContext, task: Task, examples: list[Example]) -> ArmResult: ...


def spec_key(spec: Any) -> dict[str, Any]:
    """A variant's settings that shape its outputs (its name and task list do not)."""
    return spec.model_dump(exclude={"name", "tasks"})


def _prompt(spec: Any, arms: Mapping[str, Arm]) -> Arm:
    from .prompt import PromptArm

    return PromptArm(spec)


def _finetune(spec: Any, arms: Mapping[str, Arm]) -> Arm:
    from .finetune import FinetuneArm

    return FinetuneArm(spec, arms[spec.retrieval_from] if spec.retrieval_from else None)


def _rag(spec: Any, arms: Mapping[str, Arm]) -> Arm:
    from .rag import RagArm

    return RagArm(spec, arms[spec.finetuned] if spec.finetuned else None)


ARMS: dict[str, Callable[[Any, Mapping[str, Arm]], Arm]] = {"prompt": _prompt, "finetune": _finetune, "rag": _rag}


def build_arms(specs: Sequence[ArmSpec]) -> dict[str, Arm]:
    """Every variant of a suite, by name, each built once (imports only the arms in use: no
    torch for a report). Variants that others build on are built first and shared."""
    by_name = {s.name: s for s in specs}
    for s in specs:
        problem = composition_problem(s, by_name)
        if problem:
            raise ConfigError(f"{s.arm} variant '{s.name}': {problem}")
    arms: dict[str, Arm] = {}
    for s in sorted(specs, key=_build_tier):
        if s.arm not in ARMS:
            raise ConfigError(unknown_name("arm", s.arm, list(ARMS)))
        arms[s.name] = ARMS[s.arm](s, arms)
    return {name: arms[name] for name in by_name}


def _build_tier(spec: Any) -> int:
    """Plain variants first, then fine-tunes (one may train with a plain rag variant's retriever),
    then rag variants built on a fine-tune."""
    return 2 if getattr(spec, "finetuned", None) else 1 if spec.arm == "finetune" else 0


def run_order(names: Sequence[str], arms: Mapping[str, Arm]) -> list[str]:
    """The order to run selected variants in: a fine-tune before the retrieval variants that build
    on it, so its training lands on its own cell; otherwise as declared."""
    first = [n for n in names if not getattr(arms[n].spec, "finetuned", None)]
    return first + [n for n in names if n not in first]
