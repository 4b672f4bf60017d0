"""The fine-tuning arm: train (or load from the adapter cache) and predict with the same
zero-shot template and scorer as the prompt arm, so the arms differ only by their weights.

Artifacts live in cache_root()/adapters/<key>, the key hashing the base model, the training
data, the method, every hyperparameter, the seed and the training code. An entry is built in a
temporary directory and renamed into place with its COMPLETE marker written last; checkpoints
of an unfinished training stay in adapters/.work-<key> so a rerun resumes from them.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import random
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..config import FinetuneArm as FinetuneSpec
from ..config import PromptArm as PromptSpec
from ..data import examples_hash, stable_hash
from ..models import LoadedModel, cache_root, embedded_dir, EMBEDDED
from ..prompts import render_prompt
from ..store import read_json, write_json
from ..suites import Task
from . import ArmContext
from .prompt import PromptArm, prediction_record

MARKER = "COMPLETE"
HPARAMS_EXCLUDE = {"name", "tasks", "merge", "scoring"}  # these change prediction, not training
# peft 0.21 asks transformers 5 for a deprecated attribute each time it wraps a model.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


def metric_subset(val: list, limit: int, seed: int, task: str) -> list:
    """A seeded sample of validation for the in-training metric: files are often grouped by
    label, so their first rows would cover only a few classes."""
    if len(val) <= limit:
        return val
    return sorted(random.Random(f"{seed}:{task}:ft-metric").sample(val, limit), key=lambda e: e.id)


class FinetuneError(Exception):
    """The arm cannot train or load a model; one line saying why and what to do."""


def training_code_hash() -> str:
    here = Path(__file__).resolve().parent.parent
    files = sorted((here / "training").glob("*.py")) + [here / "prompts.py"]
    return stable_hash([(f.name, f.read_text(encoding="utf-8")) for f in files])


class FinetuneArm:
    def __init__(self, spec: FinetuneSpec):
        self.spec = spec
        self.costs: dict[str, dict[str, Any]] = {}
        self._loaded: dict[str, tuple[LoadedModel, dict[str, Any]]] = {}
        self._splits: dict[str, tuple[list, list]] = {}

    # ---- which tasks one model is trained on, and the data it sees ----
    def scope(self, ctx: ArmContext, task: Task) -> list[Task]:
        if self.spec.scope == "per_task":
            return [task]
        names = self.spec.tasks or list(ctx.suite.tasks)
        return [ctx.suite.tasks[n] for n in names]

    def splits(self, ctx: ArmContext, task: Task) -> tuple[list, list]:
        from ..training.sft import DataError, split_validation

        if task.name in self._splits:
            return self._splits[task.name]
        train = sorted(task.split("train"), key=lambda e: e.id)
        if self.spec.train_limit and len(train) > self.spec.train_limit:
            train = sorted(random.Random(f"{ctx.seed}:{task.name}:ft-train").sample(train, self.spec.train_limit),
                           key=lambda e: e.id)
        try:
            self._splits[task.name] = split_validation(train, task.split("validation"), ctx.seed, task.name, ctx.log)
        except DataError as e:
            raise FinetuneError(str(e)) from None
        return self._splits[task.name]

    def key(self, ctx: ArmContext, lm: LoadedModel, tasks: list[Task]) -> str:
        data = []
        for t in tasks:
            train, val = self.splits(ctx, t)
            # label_score shapes the metric logged (and selected on, with select_on: metric) during training
            data.append({"task": t.spec.model_dump(include={"name", "kind", "instruction", "labels", "label_text",
                                                            "input_prefix", "label_score"}),
                         "train": examples_hash(train), "validation": examples_hash(val)})
        corpus = stable_hash(ctx.suite.corpus) if self.spec.knowledge != "none" else None
        return stable_hash({"model": lm.fingerprint, "device": lm.device.split(":")[0], "seed": ctx.seed,
                            "base_dtype": self._config(ctx).base_dtype,
                            "spec": self.spec.model_dump(exclude=HPARAMS_EXCLUDE), "data": data, "corpus": corpus,
                            "code": training_code_hash()}, length=20)

    # ---- the public entry points ----
    def trained_model(self, ctx: ArmContext, task: Task) -> LoadedModel:
        """The fine-tuned model for `task` (trained now, or loaded from the adapter cache). The
        shared base model is never modified: training and loading work on copies."""
        if self.spec.method == "head":
            raise FinetuneError(f"variant '{self.spec.name}' (method head) is a classifier on a frozen base, "
                                "not a language model; build on a lora or full variant instead")
        lm, _ = self._get(ctx, task)
        return lm

    def predict(self, ctx: ArmContext, task: Task, examples: list) -> list[dict[str, Any]]:
        if self.spec.method == "head":
            if task.spec.kind != "classification":
                raise FinetuneError(f"method head is for classification tasks only; task {task.name} is "
                                    f"{task.spec.kind} (restrict the variant with `tasks:`)")
            return self._predict_head(ctx, task, examples)
        lm, costs = self._get(ctx, task)
        rows = self._prompt_arm().predict(dataclasses.replace(ctx, get_model=lambda: lm), task, examples)
        costs = dict(costs)
        costs["inference_latency_s"] = round(float(np.mean([r["latency_s"] for r in rows])), 5) if rows else None
        if self.spec.method in ("lora", "qlora"):
            costs.update(self._other_latency(ctx, task, examples, lm, costs["inference_latency_s"]))
        self.costs[task.name] = costs
        return rows

    def _prompt_arm(self) -> PromptArm:
        return PromptArm(PromptSpec(arm="prompt", name=self.spec.name, shots=0, scoring=self.spec.scoring))

    # ---- cache: load or train ----
    def _get(self, ctx: ArmContext, task: Task) -> tuple[LoadedModel, dict[str, Any]]:
        base = ctx.get_model()
        tasks = self.scope(ctx, task)
        key = self.key(ctx, base, tasks)
        if key not in self._loaded:
            root = cache_root() / "adapters"
            final = root / key
            hit = (final / MARKER).is_file() and not ctx.retrain
            if not hit:
                self._train(ctx, base, tasks, key, root)
            else:
                ctx.log(f"[finetune] {self.spec.name}: using the trained model cached at {final}")
            meta = read_json(final / "meta.json")
            lm = self._load(base, final, meta, key)
            self._loaded[key] = (lm, {**meta["costs"], "cache_hit": hit, "artifact": key})
        return self._loaded[key]

    def _load(self, base: LoadedModel, path: Path, meta: dict[str, Any], key: str) -> LoadedModel:
        import torch

        method = meta["costs"]["method"]
        if method in ("lora", "qlora"):
            from peft import PeftModel

            model = PeftModel.from_pretrained(copy.deepcopy(base.model), str(path))
            if self.spec.merge:
                model = model.merge_and_unload()
        else:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, base.dtype))
            model.to(base.device)
        model.eval()
        return LoadedModel(model, base.tokenizer, base.spec, f"{base.fingerprint}+ft:{key}", base.device, base.dtype)

    def _train(self, ctx: ArmContext, base: LoadedModel, tasks: list[Task], key: str, root: Path) -> None:
        from ..training.sft import DataError, encode_documents, encode_task
        from ..training.trainer import TrainingError, count_params, fit, prepare_model, prepare_qlora

        spec = self.spec
        work = root / f".work-{key}"
        if ctx.retrain and work.exists():
            shutil.rmtree(work)
        tok = base.tokenizer
        train_rows, val_rows, n_train, n_val, truncated = [], [], 0, 0, 0
        try:
            for t in tasks:
                if spec.method == "head" and t.spec.kind != "classification":
                    raise DataError(f"method head is for classification tasks only; task {t.name} is {t.spec.kind}")
                train, val = self.splits(ctx, t)
                if len(train) < 8:
                    ctx.log(f"[finetune] warning: task {t.name} has only {len(train)} train examples; "
                            "expect a weak model")
                enc_train = encode_task(tok, t.spec, train, spec.max_length)
                train_rows += enc_train
                val_rows += encode_task(tok, t.spec, val, spec.max_length)
                n_train, n_val = n_train + len(train), n_val + len(val)
                truncated += sum(r["truncated"] for r in enc_train)
        except DataError as e:
            raise FinetuneError(str(e)) from None
        if truncated:
            ctx.log(f"[finetune] {truncated} train example(s) longer than max_length {spec.max_length} were "
                    "shortened in the middle of the prompt")
        cfg = self._config(ctx)
        label = f"{spec.name} · {'+'.join(t.name for t in tasks)}"
        metric = self._metric_fn(tok, tasks, ctx) if spec.method != "head" else None
        ctx.log(f"[finetune] training {label}: {spec.method}, {n_train} train / {n_val} validation examples")
        try:
            if spec.method == "head":
                self._train_head(ctx, base, tasks, key, root)
                return
            model = (prepare_qlora(lambda: _model_path(base), cfg, base.device) if spec.method == "qlora"
                     else prepare_model(base.model, cfg, base.device))
            phases = []
            if spec.knowledge != "none":
                docs = encode_documents(tok, ctx.suite.corpus or [], spec.max_length)
                if not docs:
                    raise FinetuneError(f"knowledge: {spec.knowledge} needs corpus documents; the suite has none")
                if spec.knowledge == "before":
                    phases.append(fit(model, tok, docs, None, dataclasses.replace(cfg, epochs=1), work / "knowledge",
                                      device=base.device, log=ctx.log, progress=ctx.progress,
                                      label=f"{label} · corpus"))
                    model = phases[-1].model
                else:
                    train_rows = train_rows + docs
            res = fit(model, tok, train_rows, val_rows, cfg, work / "sft", device=base.device, log=ctx.log,
                      metric=metric, progress=ctx.progress, label=label)
            phases.append(res)
        except TrainingError as e:
            raise FinetuneError(f"{label}: {e}") from None
        trainable, total = count_params(res.model)
        costs = {
            "method": spec.method, "scope": spec.scope, "tasks_trained": [t.name for t in tasks],
            "train_examples": n_train, "validation_examples": n_val,
            "train_wall_s": round(sum(p.wall_seconds for p in phases), 2),
            "train_tokens": sum(p.train_tokens for p in phases),
            "train_tokens_per_s": round(sum(p.train_tokens for p in phases) /
                                        max(1e-9, sum(p.step_seconds for p in phases)), 1),
            "peak_memory_mb": max(p.peak_memory_mb for p in phases), "peak_memory_kind": res.peak_memory_kind,
            "trainable_params": trainable, "total_params": total, "steps": res.steps, "max_steps": res.max_steps,
            "best_step": res.best_step, "stopped_early": res.stopped_early, "batch_size": res.batch_size,
            "grad_accum": res.grad_accum, "precision": res.precision, "resumed_from": res.resumed_from,
            "loss_curves": _curves(res.history, phases[0].history if len(phases) > 1 else None),
            "training_log": res.history,
        }
        if res.is_main:
            self._export(root, key, costs, lambda tmp: _save_model(res.model, tmp, spec.method))
        res.wait()
        shutil.rmtree(work, ignore_errors=True)

    def _export(self, root: Path, key: str, costs: dict[str, Any], save) -> None:
        """Write the artifact to a temp dir, the marker last, then rename it into place."""
        import errno

        tmp = root / f".tmp-{key}-{os.getpid()}"
        final = root / key
        try:
            tmp.mkdir(parents=True, exist_ok=True)
            save(tmp)
            costs["artifact_bytes"] = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file())
            write_json(tmp / "meta.json", {"key": key, "spec": self.spec.model_dump(mode="json"), "costs": costs,
                                           "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
            (tmp / MARKER).write_text("ok\n")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if e.errno == errno.ENOSPC:
                raise FinetuneError(f"disk full while saving the trained model to {root}: free space (or set "
                                    "TRIDENT_CACHE) and rerun; nothing was cached") from None
            raise

    def _config(self, ctx: ArmContext):
        from ..training.trainer import TrainConfig, lora_base_dtype

        s = self.spec
        base = ctx.get_model()
        return TrainConfig(base_dtype=lora_base_dtype(base.device) if s.method == "lora" else "float32", method=s.method, rank=s.rank, alpha=s.alpha, dropout=s.dropout,
                           target_modules=s.target_modules, epochs=s.epochs, learning_rate=s.learning_rate,
                           batch_size=s.batch_size, grad_accum=s.grad_accum, warmup_ratio=s.warmup_ratio,
                           patience=s.patience, evals_per_epoch=s.evals_per_epoch, select_on=s.select_on,
                           seed=ctx.seed)

    def _metric_fn(self, tok: Any, tasks: list[Task], ctx: ArmContext):
        """The task metric on (up to metric_limit) validation examples of the classification tasks."""
        from ..generate import score_continuations
        from ..metrics import get_metric

        cls = [t for t in tasks if t.spec.kind == "classification"]
        if not cls:
            if self.spec.select_on == "metric":
                raise FinetuneError("select_on: metric needs a classification task (the metric of qa and generation "
                                    "tasks is not computed during training); use select_on: loss")
            return None
        sets = []
        for t in cls:
            _, val = self.splits(ctx, t)
            val = metric_subset(val, self.spec.metric_limit, ctx.seed, t.name)
            sets.append((t, [render_prompt(tok, t.spec, e.input) for e in val], val))
        name = cls[0].spec.metrics[0]

        def fn(model: Any) -> float:
            device = next(model.parameters()).device.type
            values = []
            for t, prompts, val in sets:
                words = [t.spec.verbalise(l) for l in t.spec.labels]
                res = score_continuations(model, tok, prompts, words, batch_size=16, device=device)
                preds = [t.spec.labels[int(i)] for i in res.label_scores(t.spec.label_score).argmax(1)]
                values.append(get_metric(t.spec.metrics[0]).aggregate(preds, [list(e.targets) for e in val]))
            return float(np.mean(values))

        return name, fn

    # ---- latency of the other LoRA mode (merged vs unmerged) ----
    def _other_latency(self, ctx, task, examples, lm, measured) -> dict[str, Any]:
        sample = examples[: min(16, len(examples))]
        if not sample:
            return {}
        model = lm.model
        if self.spec.merge:
            return {"latency_merged_s": measured}
        quiet = dataclasses.replace(ctx, progress=lambda label, n: (lambda k: None))
        out = {}
        for name, m in (("unmerged", model), ("merged", copy.deepcopy(model).merge_and_unload())):
            one = dataclasses.replace(lm, model=m)
            rows = self._prompt_arm().predict(dataclasses.replace(quiet, get_model=lambda one=one: one), task, sample)
            out[f"latency_{name}_s"] = round(float(np.mean([r["latency_s"] for r in rows])), 5)
        out["latency_compare_n"] = len(sample)  # both timed on the same first test examples
        return out

    # ---- the frozen-base head ----
    def _train_head(self, ctx: ArmContext, base: LoadedModel, tasks: list[Task], key: str, root: Path) -> None:
        import torch

        from ..training.head import features, save_head, train_head

        if len(tasks) != 1:
            raise FinetuneError("method head trains one classifier per task: use scope: per_task")
        t = tasks[0]
        train, val = self.splits(ctx, t)
        start = time.perf_counter()
        labels = t.spec.labels
        tok = base.tokenizer
        bar = ctx.progress(f"{self.spec.name} · {t.name} (features)", len(train) + len(val))
        x_tr, n_tok = features(base.model, tok, [render_prompt(tok, t.spec, e.input) for e in train],
                               batch_size=ctx.batch_size, device=base.device, progress=bar)
        x_va, _ = features(base.model, tok, [render_prompt(tok, t.spec, e.input) for e in val],
                           batch_size=ctx.batch_size, device=base.device, progress=bar)
        feat_s = time.perf_counter() - start
        y_tr = torch.tensor([labels.index(e.target) for e in train])
        y_va = torch.tensor([labels.index(e.target) for e in val])
        res = train_head(x_tr, y_tr, x_va, y_va, len(labels), learning_rate=self.spec.learning_rate,
                         patience=max(10, 10 * self.spec.patience), seed=ctx.seed)
        import resource

        costs = {"method": "head", "scope": "per_task", "tasks_trained": [t.name], "train_examples": len(train),
                 "validation_examples": len(val), "train_wall_s": round(time.perf_counter() - start, 2),
                 "feature_extraction_s": round(feat_s, 2), "train_tokens": n_tok,
                 "train_tokens_per_s": round(n_tok / max(1e-9, feat_s), 1),
                 "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                 "peak_memory_kind": "process peak RSS", "trainable_params": res.weight.numel() + res.bias.numel(),
                 "total_params": sum(p.numel() for p in base.model.parameters()) + res.weight.numel() + res.bias.numel(),
                 "steps": res.history[-1]["step"] if res.history else 0, "best_step": res.best_epoch,
                 "stopped_early": res.stopped_early, "precision": "float32 head on " + base.dtype + " features",
                 "loss_curves": _curves(res.history, None), "training_log": res.history}
        self._export(root, key, costs, lambda tmp: save_head(tmp, res, labels))

    def _predict_head(self, ctx: ArmContext, task: Task, examples: list) -> list[dict[str, Any]]:
        from ..training.head import features, load_head

        base = ctx.get_model()
        key = self.key(ctx, base, [task])
        root = cache_root() / "adapters"
        final = root / key
        hit = (final / MARKER).is_file() and not ctx.retrain
        if not hit:
            self._train(ctx, base, [task], key, root)
        meta = read_json(final / "meta.json")
        weight, bias, labels = load_head(final)
        prompts = [render_prompt(base.tokenizer, task.spec, e.input) for e in examples]
        start = time.perf_counter()
        x, _ = features(base.model, base.tokenizer, prompts, batch_size=ctx.batch_size, device=base.device,
                        progress=ctx.progress(f"{self.spec.name} · {task.name}", len(prompts)))
        logits = (x @ weight.T + bias).log_softmax(-1).numpy()
        per = (time.perf_counter() - start) / max(1, len(examples))
        rows = []
        for i, e in enumerate(examples):
            scores = {l: round(float(s), 4) for l, s in zip(labels, logits[i])}
            rows.append(prediction_record(e, prompts[i], labels[int(logits[i].argmax())], "head", per,
                                len(base.tokenizer(prompts[i], add_special_tokens=False).input_ids), 0,
                                {"label_scores": scores}))
        self.costs[task.name] = {**meta["costs"], "cache_hit": hit, "artifact": key,
                                 "inference_latency_s": round(per, 5)}
        return rows


def _curves(history: list[dict[str, Any]], knowledge: list[dict[str, Any]] | None) -> dict[str, list]:
    """{'train': [[step, loss], ...], 'validation': [[step, eval_loss], ...]} for the report's plot."""
    out = {"train": [[h["step"], h["loss"]] for h in history if "loss" in h],
           "validation": [[h["step"], h["eval_loss"]] for h in history if "eval_loss" in h]}
    if knowledge:
        out["corpus"] = [[h["step"], h["loss"]] for h in knowledge if "loss" in h]
    return out


def _save_model(model: Any, path: Path, method: str) -> None:
    """LoRA/QLoRA: the PEFT adapter (adapter_config.json + adapter_model.safetensors);
    full: the whole model as model.safetensors with its config (safetensors is the default of both)."""
    model.save_pretrained(str(path))


def _model_path(base: LoadedModel) -> str:
    if base.spec in EMBEDDED:
        return str(embedded_dir(base.spec))
    if Path(base.spec).is_dir() or not base.spec.startswith("random:"):
        return base.spec
    raise FinetuneError("qlora loads the base from files; a random: model has none (use method lora)")
