"""Trainer callbacks: what the harness measures and guards during training, and the loss curves it keeps.

transformers is imported lazily (a report never needs it), hence the base class comes from a
function.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ..errors import TrainingError


def _callback_base():
    from transformers import TrainerCallback

    return TrainerCallback


class StepTimer(_callback_base()):  # type: ignore[misc]
    """Seconds spent in optimiser steps only (evaluation and checkpointing excluded)."""

    def __init__(self):
        self.seconds, self.tokens_at_start, self._t = 0.0, 0, None

    def on_train_begin(self, args, state, control, **kw):
        self.tokens_at_start = state.num_input_tokens_seen

    def on_step_begin(self, args, state, control, **kw):
        _sync()
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if self._t is not None:
            _sync()  # CUDA runs ahead of Python: a step has taken its time only once the GPU is done
            self.seconds += time.perf_counter() - self._t
            self._t = None


def _sync() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


class FiniteLoss(_callback_base()):  # type: ignore[misc]
    """A NaN or infinite loss stops training with a clear error, never a silently broken model."""

    def on_log(self, args, state, control, logs=None, **kw):
        for key in ("loss", "eval_loss", "grad_norm"):
            v = (logs or {}).get(key)
            if isinstance(v, float) and not math.isfinite(v):
                raise TrainingError(f"{key} became {v} at step {state.global_step}: lower learning_rate "
                                    f"(now {args.learning_rate:g}) or check the data; nothing was cached")


class StepProgress(_callback_base()):  # type: ignore[misc]
    """Training steps as a stage of the run's display (bench.progress): step/total with the latest
    training loss and the tokens per second of the optimiser steps (real tokens, as FitResult counts
    them; evaluation pauses excluded); the display adds the rate and the time left. The last step is
    counted when training ends, after its loss is logged and its evaluation and checkpoint are done."""

    def __init__(self, progress, label: str, timer: StepTimer):
        self.progress, self.label, self.timer = progress, label, timer
        self.stage, self.loss, self.tokens_at_start, self.counted = None, None, 0, 0

    def on_train_begin(self, args, state, control, **kw):
        self.stage = self.progress(f"{self.label} · training", state.max_steps, unit="steps")
        self.tokens_at_start = state.num_input_tokens_seen
        if state.global_step:  # resumed from a checkpoint
            self._count(state, "resumed")

    def on_log(self, args, state, control, logs=None, **kw):
        loss = (logs or {}).get("loss")
        if isinstance(loss, float):
            self.loss = loss

    def on_step_end(self, args, state, control, **kw):
        if self.stage and state.global_step < state.max_steps:
            self._count(state, self.readings(state))

    def on_train_end(self, args, state, control, **kw):
        if self.stage:  # early stopping ends short of max_steps: the stage still says it is over
            self._count(state, self.readings(state))
            self.stage.finish()

    def _count(self, state, detail: str) -> None:
        self.stage(state.global_step - self.counted, detail=detail)
        self.counted = state.global_step

    def readings(self, state) -> str:
        parts = [f"loss {self.loss:.4f}"] if self.loss is not None else []
        tokens = state.num_input_tokens_seen - self.tokens_at_start
        if tokens > 0 and self.timer.seconds > 0:
            parts.append(f"{tokens / self.timer.seconds:,.0f} tokens/s")
        return ", ".join(parts)


def loss_history(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Loss curves: training loss, validation loss and the task metric by step."""
    keep = ("loss", "eval_loss", "learning_rate", "grad_norm")
    out = []
    for h in log_history:
        row = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in h.items()
               if k in keep or (k.startswith("eval_") and not k.endswith(("_runtime", "_per_second")))}
        if row:
            out.append({"step": h.get("step"), "epoch": round(h.get("epoch") or 0, 3), **row})
    return out
