"""A fine-tune trained exactly as `bench run` trains it, asked to answer somewhere else: under a
reworded instruction (prompt-sensitivity) or on another task altogether (forgetting's control set).

`BorrowedFinetune` answers with the model its home arm trains for a home task, in the home
context (the suite as loaded), so its training key, and with it the trained-model cache entry, is
the run's own: a model the run trained is loaded, never trained again. Only prediction happens
where it is asked: the prompt is built from the task it is handed.

It is a subclass of `bench.arms.finetune.FinetuneArm`, the one place the project does that,
because everything a fine-tune does at prediction time (the shared scorer and decoder, the head
classifier, the costs it reports, being a rag variant's provider) must stay exactly the arm's;
only *which* trained model it uses changes, and that is what the three overrides say.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..arms import Arm, ArmContext
from ..arms.finetune import FinetuneArm, Trained
from ..suites import Task

HomeTask = Callable[[Task], Task]
"""The task asked -> the home task whose trained model answers it."""


class BorrowedFinetune(FinetuneArm):
    """`home`'s model for `home_task(task)`, trained in `home_ctx`; asked with the prompts of the
    task it is handed. `spec` may replace the home spec's prediction-only settings (scoring)."""

    def __init__(self, home: FinetuneArm, home_ctx: ArmContext, home_task: HomeTask, spec: Any = None):
        super().__init__(spec or home.spec, home.retrieval)
        self.home, self.home_ctx, self.home_task = home, home_ctx, home_task

    def cache_key(self, ctx: ArmContext, task: Task) -> dict[str, Any]:
        # the home cell's own dependencies: the runner adds the task asked (its instruction, its data)
        return self.home.cache_key(self.home_ctx, self.home_task(task))

    def trained(self, ctx: ArmContext, task: Task) -> Trained:
        return self.home.trained(self.home_ctx, self.home_task(task))  # one model in memory, the home arm's

    def ensure_trained(self, ctx: ArmContext, task: Task) -> None:
        self.home.ensure_trained(self.home_ctx, self.home_task(task))

    def _merge_latencies(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {}  # merged-against-unmerged latency is the run's question; here it would only add time


def same_name_in(ctx: ArmContext) -> HomeTask:
    """The home task of the same name (the task reworded: prompt-sensitivity)."""
    return lambda task: ctx.tasks[task.name]


def borrowed_arms(home: dict[str, Arm], home_ctx: ArmContext, home_task: HomeTask) -> dict[str, Arm]:
    """The suite's arms, with every fine-tune borrowed from `home` and every retrieval variant built
    on a fine-tune rebuilt on the borrowed one; prompt and plain retrieval variants are the home
    objects themselves (their state, an index or an embedder, depends on content, not instructions)."""
    from ..arms.rag import RagArm

    borrowed: dict[str, Arm] = {name: BorrowedFinetune(arm, home_ctx, home_task) for name, arm in home.items()
                                if isinstance(arm, FinetuneArm)}
    out: dict[str, Arm] = {}
    for name, arm in home.items():
        base = getattr(arm.spec, "finetuned", None)
        out[name] = borrowed.get(name) or (RagArm(arm.spec, borrowed[base]) if base else arm)
    return out
