"""One fine-tune variant's training, from a suite's tasks to a cached trained model.

Encodes the train and validation examples with the shared template, prepares the model
(LoRA/full/QLoRA through `trainer`, a linear head through `head`), runs the optional corpus
phase (knowledge injection), trains, and exports the artifact with its `TrainingCosts`.
"""

from __future__ import annotations

import random
import resource
import shutil
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..collapse import COLLAPSE_SHARE  # one threshold for training's log and the report's warning
from ..config import FinetuneArm as FinetuneSpec
from ..data import Document, Example
from ..errors import BenchError, DataError, ResourceError
from ..models import EMBEDDED, LoadedModel, embedded_dir
from ..predictions import TrainingCosts
from ..prompts import label_continuations, render_prompt
from ..suites import Task
from . import artifacts, distributed
from .trainer import FitResult, TrainConfig


@dataclass(frozen=True)
class TaskData:
    """One task's examples as the variant trains on them."""

    task: Task
    train: list[Example]
    validation: list[Example]
    """The validation split, or a seeded hold-out of train when the task has none."""
    contexts: Mapping[str, str] = field(default_factory=dict)
    """Retrieval-aware fine-tuning: example id -> the retrieved context of its prompt (empty otherwise)."""


@dataclass(frozen=True)
class TrainingJob:
    """Everything one variant's training needs; `key` names the artifact it produces."""

    spec: FinetuneSpec
    cfg: TrainConfig
    data: list[TaskData]
    corpus: Sequence[Document]
    key: str
    retrain: bool

    @property
    def label(self) -> str:
        return f"{self.spec.name} · {'+'.join(d.task.name for d in self.data)}"


def metric_subset(val: list, limit: int, seed: int, task: str) -> list:
    """A seeded sample of validation for the in-training metric: files are often grouped by
    label, so their first rows would cover only a few classes."""
    if len(val) <= limit:
        return val
    return sorted(random.Random(f"{seed}:{task}:ft-metric").sample(val, limit), key=lambda e: e.id)


def train(job: TrainingJob, base: LoadedModel, *, batch_size: int, log: Callable[[str], None],
          progress: Callable[[str, int], Callable[[int], None]]) -> None:
    """Train the job's model and store it under its key.

    Under a multi-process launch every process calls this and Trainer trains one model with all
    of them (DDP); only the main process touches the cache, and only once every process has
    finished training, so a process that dies mid-training leaves no entry that looks complete."""
    work = artifacts.work_dir(job.key)
    if job.retrain and work.exists() and distributed.is_main():
        shutil.rmtree(work)
    distributed.barrier()  # no process looks for checkpoints to resume from while they are being removed
    n_train = sum(len(d.train) for d in job.data)
    n_val = sum(len(d.validation) for d in job.data)
    log(f"[finetune] training {job.label}: {job.spec.method}, {n_train} train / {n_val} validation examples")
    if job.spec.method == "head":  # seconds of work, not distributed: the main process does it alone
        if distributed.is_main():
            _train_head(job, base, batch_size, progress)
        distributed.barrier()
        return
    train_rows, val_rows = _encode(job, base.tokenizer, log)
    try:
        phases = _fit_phases(job, base, train_rows, val_rows, work, log, progress)
    except BenchError as e:  # say which variant and tasks failed, keep the kind of error
        raise type(e)(f"{job.label}: {e}") from e
    res = phases[-1]
    distributed.barrier()  # every process trained to the end: only now may the entry be written
    if distributed.is_main():  # its copy is the whole model: DDP and ZeRO-1/2 replicate the weights
        costs = _costs(job, phases, n_train, n_val)
        artifacts.export(job.key, job.spec.model_dump(mode="json"), costs,
                         lambda tmp: res.model.save_pretrained(str(tmp)))
        shutil.rmtree(work, ignore_errors=True)
    distributed.barrier()  # the others return once the entry is there


def _encode(job: TrainingJob, tok: Any, log: Callable[[str], None]) -> tuple[list[dict], list[dict]]:
    from .sft import encode_task

    train_rows, val_rows, truncated = [], [], 0
    for d in job.data:
        if not d.task.split("validation") and d.validation:
            log(f"[finetune] task {d.task.name} has no validation split: holding out {len(d.validation)} of "
                f"{len(d.train) + len(d.validation)} train examples")
        if len(d.train) < 8:
            log(f"[finetune] warning: task {d.task.name} has only {len(d.train)} train examples; expect a weak model")
        rows = encode_task(tok, d.task.spec, d.train, job.spec.max_length, d.contexts)
        train_rows += rows
        val_rows += encode_task(tok, d.task.spec, d.validation, job.spec.max_length, d.contexts)
        truncated += sum(r["truncated"] for r in rows)
    if truncated:
        log(f"[finetune] {truncated} train example(s) longer than max_length {job.spec.max_length} were "
            "shortened in the middle of the prompt")
    return train_rows, val_rows


def _fit_phases(job, base, train_rows, val_rows, work: Path, log, progress) -> list[FitResult]:
    """The corpus phase (knowledge: before), then supervised training (corpus mixed in for
    knowledge: mixed). Returns each phase's result, the supervised one last."""
    from .sft import encode_documents
    from .trainer import fit, prepare_model, prepare_qlora

    spec, cfg, tok = job.spec, job.cfg, base.tokenizer
    model = (prepare_qlora(lambda: _model_path(base), cfg, base.device) if spec.method == "qlora"
             else prepare_model(base.model, cfg, base.device))
    phases: list[FitResult] = []
    if spec.knowledge != "none":
        docs = encode_documents(tok, job.corpus, spec.max_length)
        if not docs:
            raise DataError(f"{job.label}: knowledge: {spec.knowledge} needs corpus documents; the suite has none")
        if spec.knowledge == "before":
            phases.append(fit(model, tok, docs, None, cfg.replace_hp(epochs=1), work / "knowledge",
                              device=base.device, log=log, progress=progress, label=f"{job.label} · corpus"))
            model = phases[-1].model
        else:
            train_rows = train_rows + docs
    metric = _metric_fn(job, tok, log)
    phases.append(fit(model, tok, train_rows, val_rows, cfg, work / "sft", device=base.device, log=log,
                      metric=metric, progress=progress, label=job.label))
    return phases


def _costs(job: TrainingJob, phases: list[FitResult], n_train: int, n_val: int) -> TrainingCosts:
    from .trainer import count_params

    res = phases[-1]
    trainable, total = count_params(res.model)
    tokens = sum(p.train_tokens for p in phases)
    return TrainingCosts(
        method=job.spec.method, scope=job.spec.scope, tasks_trained=tuple(d.task.name for d in job.data),
        train_examples=n_train, validation_examples=n_val,
        train_wall_s=round(sum(p.wall_seconds for p in phases), 2), train_tokens=tokens,
        train_tokens_per_s=round(tokens / max(1e-9, sum(p.step_seconds for p in phases)), 1),
        peak_memory_mb=max(p.peak_memory_mb for p in phases), peak_memory_kind=res.peak_memory_kind,
        trainable_params=trainable, total_params=total, steps=res.steps, max_steps=res.max_steps,
        best_step=res.best_step, stopped_early=res.stopped_early, batch_size=res.batch_size,
        grad_accum=res.grad_accum, precision=res.precision, resumed_from=res.resumed_from,
        loss_curves=curves(res.history, phases[0].history if len(phases) > 1 else None),
        training_log=tuple(res.history))


def _metric_fn(job: TrainingJob, tok: Any,
               log: Callable[[str], None]) -> tuple[str, Callable[[Any], dict[str, float]]] | None:
    """The task metric on (up to metric_limit) validation examples of the classification tasks,
    and the share of the most predicted label (logged at each evaluation, so a model collapsing
    onto one label is seen while it trains)."""
    from ..generate import score_continuations
    from ..metrics import get_metric

    cls = [d for d in job.data if d.task.spec.kind == "classification"]
    if not cls:
        if job.spec.select_on == "metric":
            raise DataError("select_on: metric needs a classification task (the metric of qa and generation "
                            "tasks is not computed during training); use select_on: loss")
        return None
    sets = []
    for d in cls:
        val = metric_subset(d.validation, job.spec.metric_limit, job.cfg.seed, d.task.name)
        sets.append((d.task, [render_prompt(tok, d.task.spec, e.input, (), d.contexts.get(e.id)) for e in val], val))

    name = cls[0].task.spec.metrics[0]

    def fn(model: Any) -> dict[str, float]:
        device = next(model.parameters()).device.type
        values, top_shares = [], []
        for t, prompts, val in sets:
            words = label_continuations(tok, t.spec)
            res = score_continuations(model, tok, prompts, words, batch_size=16, device=device)
            preds = [t.spec.labels[int(i)] for i in res.label_scores(t.spec.label_score).argmax(1)]
            values.append(get_metric(t.spec.metrics[0]).aggregate(preds, [list(e.targets) for e in val]))
            top_shares.append(_log_label_shares(log, job.label, t, preds, values[-1]))
        return {name: float(np.mean(values)), "top_label_share": max(top_shares)}

    return name, fn


def _log_label_shares(log: Callable[[str], None], label: str, task: Task, preds: list[str], value: float) -> float:
    """Log one evaluation's metric and predicted-label distribution; return the top label's share."""
    counts = Counter(preds).most_common()
    shares = ", ".join(f"{lab} {n / len(preds):.0%}" for lab, n in counts[:4])
    top = counts[0][1] / len(preds) if preds else 0.0
    warn = (f"; warning: {top:.0%} of predictions are '{counts[0][0]}' (collapsing onto one label)"
            if top >= COLLAPSE_SHARE and len(task.spec.labels or []) > 1 else "")
    log(f"[finetune] {label} · evaluation on {len(preds)} validation examples of {task.name}: "
        f"{task.spec.metrics[0]} {value:.3f}; predicted {shares}{warn}")
    return top


def _train_head(job: TrainingJob, base: LoadedModel, batch_size: int, progress) -> None:
    import torch

    from .head import features, save_head, train_head

    if len(job.data) != 1:
        raise DataError(f"{job.label}: method head trains one classifier per task: use scope: per_task")
    d = job.data[0]
    start, tok, labels = time.perf_counter(), base.tokenizer, d.task.spec.labels
    bar = progress(f"{job.label} (features)", len(d.train) + len(d.validation))
    x_tr, n_tok = features(base.model, tok, [render_prompt(tok, d.task.spec, e.input) for e in d.train],
                           batch_size=batch_size, device=base.device, progress=bar)
    x_va, _ = features(base.model, tok, [render_prompt(tok, d.task.spec, e.input) for e in d.validation],
                       batch_size=batch_size, device=base.device, progress=bar)
    feat_s = time.perf_counter() - start
    res = train_head(x_tr, torch.tensor([labels.index(e.target) for e in d.train]), x_va,
                     torch.tensor([labels.index(e.target) for e in d.validation]), len(labels),
                     learning_rate=job.spec.learning_rate, patience=max(10, 10 * job.spec.patience), seed=job.cfg.seed)
    head_params = res.weight.numel() + res.bias.numel()
    costs = TrainingCosts(
        method="head", scope="per_task", tasks_trained=(d.task.name,), train_examples=len(d.train),
        validation_examples=len(d.validation), train_wall_s=round(time.perf_counter() - start, 2),
        feature_extraction_s=round(feat_s, 2), train_tokens=n_tok,
        train_tokens_per_s=round(n_tok / max(1e-9, feat_s), 1),
        peak_memory_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        peak_memory_kind="process peak RSS", trainable_params=head_params,
        total_params=sum(p.numel() for p in base.model.parameters()) + head_params,
        steps=res.history[-1]["step"] if res.history else 0, best_step=res.best_epoch,
        stopped_early=res.stopped_early, precision="float32 head on " + base.dtype + " features",
        loss_curves=curves(res.history, None), training_log=tuple(res.history))
    artifacts.export(job.key, job.spec.model_dump(mode="json"), costs, lambda tmp: save_head(tmp, res, labels))


def curves(history: list[dict[str, Any]], knowledge: list[dict[str, Any]] | None) -> dict[str, list]:
    """{'train': [[step, loss], ...], 'validation': [[step, eval_loss], ...]} for the report's plot."""
    out = {"train": [[h["step"], h["loss"]] for h in history if "loss" in h],
           "validation": [[h["step"], h["eval_loss"]] for h in history if "eval_loss" in h]}
    if knowledge:
        out["corpus"] = [[h["step"], h["loss"]] for h in knowledge if "loss" in h]
    return out


def _model_path(base: LoadedModel) -> str:
    if base.spec in EMBEDDED:
        return str(embedded_dir(base.spec))
    if Path(base.spec).is_dir() or not base.spec.startswith("random:"):
        return base.spec
    raise ResourceError("qlora loads the base from files; a random: model has none (use method lora)")
