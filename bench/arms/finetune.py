"""The fine-tuning arm: train (or load from the trained-model cache) and predict with the same
zero-shot template and scorer as the prompt arm, so the arms differ only by their weights.

Training itself is bench.training.recipe; the cache of trained models is
bench.training.artifacts. This arm is also the model provider of retrieval variants that build
on it (`finetuned:`): they call `trained_model`, and one trained model in memory serves both.
"""

from __future__ import annotations

import copy
import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends import TrainedWeights
from ..config import FinetuneArm as FinetuneSpec
from ..data import Document, Example, examples_hash, stable_hash
from ..errors import ConfigError
from ..models import LoadedModel
from ..predictions import ArmResult, Costs, Prediction, TrainingCosts
from ..prompts import prompt_hash, render_prompt
from ..suites import Task
from ..training import artifacts, distributed
from ..training.recipe import TaskData, TrainingJob
from . import ArmContext, spec_key
from .prompt import predict_with

if TYPE_CHECKING:
    from .rag import RagArm

# Settings that change prediction, not training: they stay out of the trained model's key.
PREDICTION_ONLY = {"name", "tasks", "merge", "scoring"}
# How one optimiser step's examples are split (per process, accumulated): keyed as `_batch_key`.
BATCH_SPLIT = {"batch_size", "grad_accum", "micro_batch_size"}
# Keyed as `_seed_key`: only a seed other than the suite's names another model.
TRAINING_SEED = {"training_seed"}
# A search over the settings (`bench experiment sweep`); each trial is a spec of its own without it.
SEARCH_ONLY = {"sweep"}


def finetunes_needed(arm: Any) -> list[FinetuneArm]:
    """The fine-tunes whose trained models `arm`'s predictions need: the arm itself, or the one a
    retrieval variant builds on (`finetuned:`); none for any other arm."""
    if isinstance(arm, FinetuneArm):
        return [arm]
    provider = getattr(arm, "provider", None)
    return [provider] if isinstance(provider, FinetuneArm) else []


def train_together(cells: Sequence[tuple[Any, Task]], ctx: ArmContext,
                   cached: Callable[[Any, Task], bool] | None) -> None:
    """`bench run` under a multi-process launch (torchrun, accelerate launch): every process trains,
    in the same order, the fine-tunes that the cells `(arm, task)` not served by the prediction
    cache need (Trainer spreads each training over all of them); then the processes part: the main
    one predicts and writes the run alone (the models are cached and in its memory), the others
    are done. `cached` is asked on the main process only; the others take its answers. A single
    process does nothing here: its cells train as they come."""
    if distributed.world_size() == 1:
        return
    for arm, task in cells:
        if distributed.agree(cached(arm, task) if cached and distributed.is_main() else None):
            continue
        for finetune in finetunes_needed(arm):
            finetune.ensure_trained(ctx, task)
    distributed.end()


@dataclasses.dataclass(frozen=True)
class Trained:
    """A trained model in memory, and what training it cost."""

    model: LoadedModel | None
    """None for a head (it is applied to the base model's features)."""
    costs: TrainingCosts
    key: str
    cache_hit: bool


class FinetuneArm:
    def __init__(self, spec: FinetuneSpec, retrieval: RagArm | None = None):
        self.spec = spec
        self.retrieval = retrieval
        """The rag variant named by `retrieval_from:`, whose passages go into the training prompts."""
        self._trained: dict[str, Trained] = {}
        self._joined: set[str] = set()
        """Keys this (non-main) process trained with the main one; it loads no model."""
        self._data: dict[str, TaskData] = {}

    # ---- what a trained model depends on ----
    def scope(self, ctx: ArmContext, task: Task) -> list[Task]:
        """The tasks one model is trained on: this one, or every task of the variant (multi_task)."""
        if self.spec.scope == "per_task":
            return [task]
        return [ctx.tasks[n] for n in (self.spec.tasks or list(ctx.tasks))]

    def task_data(self, ctx: ArmContext, task: Task) -> TaskData:
        from ..training.sft import split_validation

        if task.name not in self._data:
            train = sorted(task.split("train"), key=lambda e: e.id)
            if self.spec.train_limit and len(train) > self.spec.train_limit:
                pick = random.Random(f"{ctx.seed}:{task.name}:ft-train").sample(train, self.spec.train_limit)
                train = sorted(pick, key=lambda e: e.id)
            # quiet: this runs for cache keys too; training says when it holds examples out
            tr, val = split_validation(train, task.split("validation"), ctx.seed, task.name, lambda m: None,
                                       share=self.spec.holdout)
            self._data[task.name] = TaskData(task, tr, val)
        return self._data[task.name]

    def _data_key(self, ctx: ArmContext, task: Task) -> list[dict[str, Any]]:
        out = []
        for t in self.scope(ctx, task):
            d = self.task_data(ctx, t)
            # label_score shapes the metric logged (and selected on, with select_on: metric) during training
            out.append({"task": t.spec.model_dump(include={"name", "kind", "instruction", "labels", "label_text",
                                                           "input_prefix", "label_score"}),
                        "train": examples_hash(d.train), "validation": examples_hash(d.validation)})
        return out

    def corpus(self, ctx: ArmContext, task: Task) -> list[Document]:
        """The documents of the tasks this model trains on (each task's own corpus, else the
        suite's), each document once: with one shared corpus, exactly that corpus."""
        return list(dict.fromkeys(d for t in self.scope(ctx, task) for d in ctx.corpus_for(t)))

    def _corpus_key(self, ctx: ArmContext, task: Task) -> str | None:
        """The corpus shapes the model only through knowledge injection."""
        return stable_hash(self.corpus(ctx, task)) if self.spec.knowledge != "none" else None

    def _retrieval_key(self, ctx: ArmContext, task: Task) -> dict[str, Any] | None:
        """Retrieval-aware training depends on the retriever's settings and the corpus it searches
        (the rag variant's name, task list and answer-time settings do not shape the passages)."""
        if self.retrieval is None:
            return None
        rag = self.retrieval.spec.model_dump(exclude={"name", "tasks", "finetuned", "calibrate"})
        return {"rag": rag, "corpus": stable_hash(self.corpus(ctx, task))}

    def _batch_key(self) -> dict[str, Any]:
        """What the batch settings change in the trained model: the examples per optimiser step over
        every process of a launch (DDP takes `batch_size` from each; more processes, accumulation or
        a bigger batch give the same steps), and, for length-grouped batches, the group the sampler
        sorts by length, which is one process's share. So a model trained on 4 GPUs at batch 8 is
        the one trained on 1 GPU at batch 8 with grad_accum 4, under one key."""
        per_process = self.spec.batch_size * self.spec.grad_accum
        return {"global_batch": per_process * distributed.world_size(),
                "length_group": per_process if self.spec.batch_order == "length_grouped" else None}

    def _spec_key(self) -> dict[str, Any]:
        return {**{k: v for k, v in spec_key(self.spec).items() if k not in BATCH_SPLIT | TRAINING_SEED | SEARCH_ONLY},
                **self._batch_key()}

    def training_seed(self, ctx: ArmContext) -> int:
        """The seed of training's randomness: the variant's `training_seed`, else the suite seed."""
        return ctx.seed if self.spec.training_seed is None else self.spec.training_seed

    def _seed_key(self, ctx: ArmContext) -> dict[str, Any]:
        """Nothing at the suite seed, so a run's models keep the keys they had before `training_seed`
        existed (and `training_seed` equal to the suite seed is that same model); else the seed."""
        seed = self.training_seed(ctx)
        return {} if seed == ctx.seed else {"training_seed": seed}

    def cache_key(self, ctx: ArmContext, task: Task) -> dict[str, Any]:
        return {"spec": self._spec_key(), "trained_on": self._data_key(ctx, task),
                "corpus": self._corpus_key(ctx, task), "retrieval": self._retrieval_key(ctx, task),
                **self._seed_key(ctx)}

    def artifact_key(self, ctx: ArmContext, base: LoadedModel, task: Task) -> str:
        return stable_hash({"model": base.fingerprint, "device": base.device.split(":")[0], "seed": ctx.seed,
                            "base_dtype": self._config(ctx, base).base_dtype,
                            "spec": self.spec.model_dump(
                                exclude=PREDICTION_ONLY | BATCH_SPLIT | TRAINING_SEED | SEARCH_ONLY),
                            **self._batch_key(), **self._seed_key(ctx),
                            "data": self._data_key(ctx, task),
                            "corpus": self._corpus_key(ctx, task), "retrieval": self._retrieval_key(ctx, task),
                            "code": artifacts.training_code_hash()},
                           length=20)

    # ---- train or load ----
    def trained(self, ctx: ArmContext, task: Task) -> Trained:
        """The trained model for `task` (trained now, or loaded from the cache), kept in memory so
        every cell that needs it, this arm's and the retrieval variants built on it, shares it.
        The key's lock is held throughout: a process needing the same model waits, then loads it."""
        base = ctx.get_model()
        key = self.artifact_key(ctx, base, task)
        if key not in self._trained:
            with artifacts.claim(key, self.spec.name, ctx.log) as waited_since:
                hit = self._train_unless_cached(ctx, base, task, key, waited_since)
                model = None if self.spec.method == "head" else artifacts.load_trained(base, key, self.spec.merge)
                self._trained[key] = Trained(model, artifacts.read_costs(key), key, hit)
        return self._trained[key]

    def ensure_trained(self, ctx: ArmContext, task: Task) -> None:
        """Train `task`'s model unless cached. Under a multi-process launch every process calls
        this for the same tasks in the same order (each takes part in every training step); only
        the main process, which predicts, also loads the model."""
        if distributed.is_main():
            self.trained(ctx, task)
            return
        base = ctx.get_model()
        key = self.artifact_key(ctx, base, task)
        if key not in self._joined:
            self._train_unless_cached(ctx, base, task, key, None)
            self._joined.add(key)

    def _train_unless_cached(self, ctx: ArmContext, base: LoadedModel, task: Task, key: str,
                             waited_since: float | None) -> bool:
        """Train and cache the model unless its entry is there; True when it was. With `retrain`,
        an entry finished by the process this one waited for counts as retrained."""
        from ..training.recipe import train

        cached = artifacts.is_complete(key) and (not ctx.retrain or artifacts.completed_after(key, waited_since))
        if distributed.agree(cached):  # every process of a launch trains, or none does
            ctx.log(f"[finetune] {self.spec.name}: using the trained model cached at {artifacts.adapters_root() / key}")
            return True
        data = [self._with_passages(ctx, self.task_data(ctx, t)) for t in self.scope(ctx, task)]
        job = TrainingJob(self.spec, self._config(ctx, base), data, self.corpus(ctx, task), key, ctx.retrain)
        train(job, base, batch_size=ctx.batch_size, log=ctx.log, progress=ctx.progress)
        return False

    def _with_passages(self, ctx: ArmContext, data: TaskData) -> TaskData:
        """Retrieval-aware fine-tuning: every train and validation prompt gets the passages the
        `retrieval_from` variant retrieves for it. Train examples follow the RAFT settings (gold
        forced in, a seeded share with distractors only); validation stays as retrieved, as test is."""
        if self.retrieval is None:
            return data
        rag, task = self.retrieval, data.task
        share = self.spec.distractor_share
        distract = frozenset(e.id for e in data.train
                             if share and random.Random(f"{ctx.seed}:{task.name}:{e.id}:distractors").random() < share)
        train = rag.training_contexts(ctx, task, data.train, force_gold=self.spec.gold_passage == "forced",
                                      distractors_only=distract)
        validation = rag.training_contexts(ctx, task, data.validation)
        ctx.log(f"[finetune] {self.spec.name}: train prompts carry the passages {rag.spec.name} retrieves (k="
                f"{rag.spec.k}, budget {rag.spec.max_context_tokens} tokens); gold passage {self.spec.gold_passage}, "
                f"{len(distract)} of {len(data.train)} with distractors only")
        return dataclasses.replace(data, contexts={**train, **validation})

    def trained_model(self, ctx: ArmContext, task: Task) -> LoadedModel:
        """The fine-tuned language model (for retrieval variants that build on this one)."""
        if self.spec.method == "head":
            raise ConfigError(f"variant '{self.spec.name}' (method head) is a classifier on a frozen base, "
                              "not a language model; build on a lora or full variant instead")
        model = self.trained(ctx, task).model
        assert model is not None  # only a head has no language model
        return model

    def trained_weights(self, ctx: ArmContext, task: Task) -> TrainedWeights:
        """Where the trained model's files are (its cache entry), for backends that load them themselves
        (vLLM applies a LoRA adapter from there, unmerged)."""
        return TrainedWeights(artifacts.adapters_root() / self.trained(ctx, task).key, self.spec.method)

    def _config(self, ctx: ArmContext, base: LoadedModel):
        from ..training.trainer import TrainConfig, lora_base_dtype

        dtype = lora_base_dtype(base.device) if self.spec.method == "lora" else "float32"
        return TrainConfig(self.spec, self.training_seed(ctx), dtype)

    # ---- predict ----
    def predict(self, ctx: ArmContext, task: Task, examples: list[Example]) -> ArmResult:
        if self.spec.method == "head":
            if task.spec.kind != "classification":
                raise ConfigError(f"variant '{self.spec.name}': method head is for classification tasks only; task "
                                  f"{task.name} is {task.spec.kind} (restrict the variant with `tasks:`)")
            return self._predict_head(ctx, task, examples)
        trained = self.trained(ctx, task)
        label = f"{self.spec.name} · {task.name}"
        preds = predict_with(ctx, trained.model, task, examples, label, scoring=self.spec.scoring,
                             trained=self.trained_weights(ctx, task))
        latency = round(float(np.mean([p.latency_s for p in preds])), 5) if preds else None
        variants = {}
        # merged against unmerged is a property of the transformers model; another engine serves the adapter its way
        if self.spec.method in ("lora", "qlora") and ctx.backend.runs_loaded_model:
            variants = self._merge_latencies(ctx, task, examples, trained.model, latency)
        return ArmResult(preds, Costs(training=trained.costs, trained_model=trained.key, cache_hit=trained.cache_hit,
                                      inference_latency_s=latency, latency_variants=variants))

    def _merge_latencies(self, ctx, task, examples, lm: LoadedModel, measured: float | None) -> dict[str, Any]:
        """LoRA: the latency of the merged and the unmerged model, timed on the same first examples."""
        sample = examples[: min(16, len(examples))]
        if not sample:
            return {}
        if self.spec.merge:
            return {"latency_merged_s": measured}
        quiet = dataclasses.replace(ctx, progress=lambda label, n: (lambda k: None))
        out: dict[str, Any] = {}
        for name, m in (("unmerged", lm.model), ("merged", copy.deepcopy(lm.model).merge_and_unload())):
            preds = predict_with(quiet, dataclasses.replace(lm, model=m), task, sample, name, scoring=self.spec.scoring)
            out[f"latency_{name}_s"] = round(float(np.mean([p.latency_s for p in preds])), 5)
        out["latency_compare_n"] = len(sample)
        return out

    def _predict_head(self, ctx: ArmContext, task: Task, examples: list[Example]) -> ArmResult:
        from ..training.head import features, load_head

        trained = self.trained(ctx, task)
        base = ctx.get_model()
        weight, bias, labels = load_head(artifacts.adapters_root() / trained.key)
        prompts = [render_prompt(base.tokenizer, task.spec, e.input) for e in examples]
        start = time.perf_counter()
        x, _ = features(base.model, base.tokenizer, prompts, batch_size=ctx.batch_size, device=base.device,
                        progress=ctx.progress(f"{self.spec.name} · {task.name}", len(prompts)))
        logits = (x @ weight.T + bias).log_softmax(-1).numpy()
        per = (time.perf_counter() - start) / max(1, len(examples))
        preds = [Prediction(id=e.id, prompt_hash=prompt_hash(prompts[i]), output=labels[int(logits[i].argmax())],
                            references=e.targets, mode="head", latency_s=per,
                            prompt_tokens=len(base.tokenizer(prompts[i], add_special_tokens=False).input_ids),
                            output_tokens=0, label_scores={n: round(float(s), 4) for n, s in zip(labels, logits[i])})
                 for i, e in enumerate(examples)]
        return ArmResult(preds, Costs(training=trained.costs, trained_model=trained.key, cache_hit=trained.cache_hit,
                                      inference_latency_s=round(per, 5)))
