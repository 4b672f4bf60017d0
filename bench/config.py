"""Typed, frozen specs of a suite, parsed from suite.yaml with every error located.

A suite is declarative: pydantic models reject unknown keys and wrong types, and
`parse_suite_yaml` turns each pydantic error into a `Problem` naming the file, the YAML line,
the field path and what was expected (see `bench.yaml_problems`), so `bench validate` can list
them all at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from .errors import ConfigError, unknown_name
from .yaml_problems import Problem, Schema, duplicate_keys, problem_from_error
from .yaml_problems import yaml_line as yaml_line  # re-exported: `from bench.config import yaml_line` still works

Split = Literal["train", "validation", "test"]
SPLITS: tuple[str, ...] = ("train", "validation", "test")
TaskKind = Literal["classification", "qa", "generation"]
SplitLimits = dict[Split, Annotated[int, Field(ge=1)]]
# Queries a verdict prices the arms at unless the suite or `--query-volume` says otherwise: large
# enough that per-query cost, not one-off training, decides between arms meant for real use.
DEFAULT_QUERY_VOLUME = 10_000


def query_volume_problem(value: int) -> str | None:
    """What is wrong with `value` as a query volume, or None: one message for suite.yaml's
    `query_volume` and for the `--query-volume` options of `bench run` and `bench report`."""
    if value <= 0:
        return (f"query_volume must be a positive number of queries (got {value}); "
                f"the default is {DEFAULT_QUERY_VOLUME:,}")
    return None


NAME_CHARS = re.compile(r"[A-Za-z0-9_.+-]+")


def _safe_name(name: str) -> str:
    """Suite, task, arm and profile names become folder and file names (results/<suite>/<run>/
    predictions/<arm>/<task>.jsonl), so each must be one harmless path component: '..' or 'a/b'
    would write outside the run directory."""
    if not NAME_CHARS.fullmatch(name) or set(name) == {"."}:
        raise ValueError(f"expected a name of letters, digits, '-', '_', '.' or '+' (not only dots; it names "
                         f"folders and files), got {name!r}")
    return name


SafeName = Annotated[str, AfterValidator(_safe_name)]


class Strict(BaseModel):
    """Frozen, and unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class HubData(Strict):
    """A dataset on the Hugging Face hub (needs a network), loaded with `datasets.load_dataset`."""

    path: str = Field(description="hub dataset id, e.g. 'lex_glue'")
    name: str | None = Field(None, description="dataset configuration name")
    revision: str | None = Field(None, description="git revision to pin, for reproducibility")
    splits: dict[Split, str] = Field(description="our split name -> the hub's split name")


class DataSpec(Strict):
    """Where a task's examples come from: exactly one of `files`, `file` or `hub`."""

    files: dict[Split, str] | None = Field(None, description="one file per split (JSONL, CSV or parquet)")
    file: str | None = Field(None, description="one file holding every split, told apart by `split_field`")
    split_field: str = Field("split", description="the column naming the split when `file` is used")
    hub: HubData | None = Field(None, description="a hub dataset (online users only)")

    @model_validator(mode="after")
    def _exactly_one_source(self) -> DataSpec:
        given = [k for k in ("files", "file", "hub") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of 'files', 'file' or 'hub' (got {given or 'none'})")
        named = self.files or (self.hub.splits if self.hub else None)
        if named is not None and "test" not in named:
            raise ValueError(f"no 'test' split (got {', '.join(named) or 'none'}); every task is scored on its "
                             "test split, so a run would report on nothing")
        return self


class TaskUpdate(Strict):
    """How a task's examples change when the corpus's `update` files are applied (a law amended, a
    price list replaced). The example's own `target_field` and `gold_doc_field` hold the answer
    after the update; these fields name where the answer before it is kept, on changed rows."""

    changed_field: str = Field(description="column that is true on the examples whose answer the update changed "
                                           "(missing or false: unchanged)")
    old_target_field: str = Field(description="on changed examples: the answer before the update (text or a list "
                                              "of texts, as `target_field`)")
    old_gold_doc_field: str | None = Field(
        None, description="on changed examples: the corpus document (not one of the update's) that answered before "
                          "the update")


class TaskSpec(Strict):
    """One task of a suite: its data, fields, instruction, metrics and generation budget."""

    name: SafeName = Field(description="identifier used in paths and tables")
    kind: TaskKind = Field(description="classification | qa | generation")
    description: str = ""
    data: DataSpec
    id_field: str = Field("id", description="unique example id column")
    input_field: str = Field(description="the column shown to the model")
    target_field: str = Field(description="the reference column; a list value means several acceptable references")
    labels: list[str] | None = Field(None, description="the label set (classification only)")
    label_text: dict[str, str] | None = Field(
        None, description="how a label is written in prompts and scored; default: '_' becomes ' '")
    label_score: Literal["sum", "mean"] = Field(
        "sum", description="classification by label log-likelihood: 'sum' over the label's tokens (its "
                           "probability) or 'mean' per token (favours long labels with predictable tails)")
    label_end: bool = Field(
        False, description="classification: score each label followed by the end-of-answer marker the chat "
                           "template writes, as a fine-tune is trained to write it (without it, a label whose "
                           "text starts another label's text also scores as that prefix)")
    instruction: str = Field(description="the task instruction, shared by every arm")
    paraphrases: list[str] = Field(
        default_factory=list, description="the instruction reworded, same meaning (for `bench experiment "
                                          "prompt-sensitivity`, which scores every arm under each; a run ignores "
                                          "them and its cache keys leave them out)")
    input_prefix: str = Field("Input", description="the name the prompt gives the input")
    metrics: list[str] = Field(min_length=1, description="metric names from bench.metrics")
    max_new_tokens: int = Field(32, ge=1, le=4096, description="generation budget for qa/generation")
    limit: SplitLimits | None = Field(
        None, description="seeded subsample size per split (keeps the default run small)")
    gold_doc_field: str | None = Field(
        None, description="column naming the corpus document that answers the example (for recall@k and MRR)")
    update: TaskUpdate | None = Field(
        None, description="which examples the corpus's `update` files change, and their answers before it (for "
                          "`bench experiment knowledge-update`; a run ignores it)")
    corpus: CorpusSpec | None = Field(
        None, description="this task's own documents (the form of the suite's `corpus:`, without `update`), in place "
                          "of the suite's corpus for this task alone: its rag variants retrieve only from them and its "
                          "gold document ids must name them, so one task's documents are never another's "
                          "distractors")

    @model_validator(mode="after")
    def _paraphrases_reword(self) -> TaskSpec:
        # compared without case and spacing: a copy that differs only there is not a rewording, and
        # it would count one wording twice in the spread prompt-sensitivity reports
        seen = {" ".join(self.instruction.split()).casefold(): "the instruction"}
        for i, text in enumerate(self.paraphrases):
            if not text.strip():
                raise ValueError(f"paraphrases[{i}] is empty; expected the instruction reworded")
            words = " ".join(text.split()).casefold()
            if words in seen:
                raise ValueError(f"paraphrases[{i}] repeats {seen[words]}; each paraphrase must word it differently")
            seen[words] = f"paraphrases[{i}]"
        return self

    @model_validator(mode="after")
    def _own_corpus_has_no_update(self) -> TaskSpec:
        # the knowledge-update experiment swaps the suite's corpus before/after; a task corpus has no such states
        if self.corpus is not None and self.corpus.update:
            raise ValueError("a task's corpus takes no 'update' files; an update changes the suite's corpus")
        if self.corpus is not None and self.update is not None:
            raise ValueError("'update' describes a change to the suite's corpus; a task with its own corpus cannot "
                             "declare one")
        return self

    @model_validator(mode="after")
    def _update_is_for_answers(self) -> TaskSpec:
        # the experiment reads answers by containment, which is not a classification metric
        if self.update is not None and self.kind == "classification":
            raise ValueError("'update' is for qa and generation tasks (answers are read by containment), "
                             "not classification")
        if self.update is not None and self.update.old_gold_doc_field and not self.gold_doc_field:
            raise ValueError("update.old_gold_doc_field names the gold document before the update; it needs the "
                             "task's gold_doc_field (the one after)")
        return self

    @model_validator(mode="after")
    def _labels_match_kind(self) -> TaskSpec:
        if self.kind == "classification" and not self.labels:
            raise ValueError("a classification task needs 'labels'")
        if self.kind != "classification" and self.labels:
            raise ValueError(f"'labels' is only for classification tasks, not {self.kind}")
        if self.labels and len(set(self.labels)) != len(self.labels):
            raise ValueError("'labels' holds a label twice")
        if self.labels and any(not label.strip() for label in self.labels):
            raise ValueError("'labels' holds an empty label; every label needs text the model can be scored on")
        if self.label_text is not None:
            self._check_label_text()
        if self.labels:
            self._check_labels_differ()
        if self.kind != "classification" and {"label_score", "label_end"} & self.model_fields_set:
            raise ValueError(f"'label_score' and 'label_end' are only for classification tasks, not {self.kind}")
        return self

    def _check_label_text(self) -> None:
        """Every key of `label_text` a label."""
        if self.kind != "classification":
            raise ValueError(f"'label_text' is only for classification tasks, not {self.kind}")
        for label in self.label_text:
            if label not in self.labels:
                raise ValueError(f"label_text: {unknown_name('label', label, self.labels)}")

    def _check_labels_differ(self) -> None:
        """Every label written as some text, and no two alike (by `label_text` or by default): they
        would get the same score, so the tie would always go to the first."""
        written: dict[str, str] = {}
        for label in self.labels:
            text = self.verbalise(label)
            if not text.strip():
                raise ValueError(f"label '{label}' is written as empty text (label_text, or '_' read as a space)")
            if text in written:
                raise ValueError(f"labels '{written[text]}' and '{label}' are both written {text!r}, so their "
                                 "scores would always tie; give them different label_text")
            written[text] = label

    def verbalise(self, label: str) -> str:
        """The words a label is written as in prompts and answers."""
        if self.label_text and label in self.label_text:
            return self.label_text[label]
        return label.replace("_", " ")


class CorpusSpec(Strict):
    """Documents for retrieval: JSONL files with an id, a title and a text per line, and/or a
    folder of .txt/.md files (one document each: id = path inside the folder, title = first
    Markdown heading or the file name). Any other JSONL column is the document's metadata,
    which a rag variant's `filter` can match against its examples."""

    files: list[str] = Field(default_factory=list, description="JSONL files, relative to suite.yaml")
    update: list[str] = Field(
        default_factory=list, description="JSONL files of a later change to the corpus (amendments, a new edition), "
                                          "read after `files` with new document ids: a run retrieves from both; "
                                          "`bench experiment knowledge-update` also runs without them")
    folder: str | None = Field(None, description="a folder of .txt/.md documents, read recursively")
    id_field: str = "id"
    title_field: str = "title"
    text_field: str = "text"

    @model_validator(mode="after")
    def _some_source(self) -> CorpusSpec:
        if not self.files and not self.folder:
            raise ValueError("give 'files' (JSONL) or 'folder' (.txt/.md documents)")
        both = sorted(set(self.files) & set(self.update))
        if both:
            raise ValueError(f"{', '.join(both)} is in both 'files' and 'update'; an update file goes in 'update' only")
        return self


class PromptArm(Strict):
    """The prompt-engineered baseline: instruction plus k demonstrations from train."""

    arm: Literal["prompt"]
    name: SafeName = Field(description="variant name shown in reports")
    shots: int = Field(0, ge=0, le=64, description="demonstrations drawn from train with the suite seed")
    scoring: Literal["loglik", "generate"] = Field(
        "loglik", description="classification: score every label (loglik) or parse generated text")
    calibrate: bool = Field(
        False, description="contextual calibration of label scores against content-free inputs")
    tasks: list[str] | None = Field(None, description="restrict this variant to these tasks")


class FinetuneArm(Strict):
    """Weights changed by training on the train split (early-stopped on validation)."""

    arm: Literal["finetune"]
    name: SafeName = Field(description="variant name shown in reports")
    method: Literal["lora", "full", "head", "qlora"] = Field("lora", description="what is trained")
    scope: Literal["per_task", "multi_task"] = Field("per_task", description="one model per task, or one for all tasks")
    rank: int = Field(16, ge=1, description="LoRA rank")
    alpha: float = Field(32, gt=0, description="LoRA alpha")
    dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout")
    target_modules: list[str] | None = Field(None, description="LoRA targets; default per architecture")
    epochs: float = Field(3, gt=0, description="maximum passes over train")
    learning_rate: float = Field(2e-4, gt=0, description="peak learning rate of AdamW")
    batch_size: int = Field(8, ge=1, description="examples per optimiser step (before accumulation)")
    grad_accum: int = Field(1, ge=1, description="gradient accumulation steps")
    warmup_ratio: float = Field(
        0.1, ge=0, lt=1, description="share of the optimiser steps spent warming the learning rate up")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay on the trained parameters")
    # The four defaults below are a plain training loop's (constant rate, random order, no clipping, the
    # final weights): together they took the arm's macro-F1 on a class-imbalanced task from 0.362 to 0.500
    # (paired p = 0.027), where each alone moved it by less than its noise (docs/performance.md, parity).
    lr_scheduler: Literal["constant", "linear", "cosine"] = Field(
        "constant", description="learning rate after warm-up: constant, or a linear or cosine decay to zero (a "
                                "decay halves the average rate of a short run)")
    batch_order: Literal["random", "length_grouped"] = Field(
        "random", description="training batches of random examples, or of examples of similar length (less "
                              "padding, faster; batches of one class where length goes with the label)")
    micro_batch_size: int | None = Field(
        None, ge=1, description="batch_order random: examples per forward pass on average. Each step's examples are "
                                "split by length into batch_size / micro_batch_size micro-batches (transformers' "
                                "batch_rebalance sampler) whose gradients add up to the whole batch's: the same update "
                                "with less padding. None: 4 on the CPU (the fastest size or near it on both of legal's "
                                "trained tasks, docs/performance.md), batch_size (one pass) on a GPU")
    max_grad_norm: float = Field(0.0, ge=0, description="gradient clipping norm (0: no clipping)")
    holdout: float = Field(
        0.15, ge=0, lt=1, description="share of train held out for validation when the task has no validation "
                                      "split (0: train on every example; no evaluation, no selection)")
    patience: int = Field(2, ge=1, description="evaluations without improvement before stopping")
    max_length: int = Field(512, ge=16, description="longest training sequence in tokens")
    knowledge: Literal["none", "before", "mixed"] = Field(
        "none", description="continued training on the suite corpus before or mixed with supervised training")
    retrieval_from: str | None = Field(
        None, description="retrieval-aware fine-tuning: build every train and validation prompt with the passages "
                          "this rag variant (mode: corpus) retrieves for the example's own question, with its "
                          "retriever, k, template and context budget, so the model learns to read passages and "
                          "answer briefly; use it under retrieval with a rag variant `finetuned:` on this one")
    gold_passage: Literal["as_retrieved", "forced"] = Field(
        "as_retrieved", description="with retrieval_from: 'forced' puts the best chunk of the example's gold document "
                                    "(gold_doc_field) in place of the last passage when retrieval missed it")
    distractor_share: float = Field(
        0.0, ge=0, lt=1, description="with retrieval_from: a seeded share of train examples whose passages leave out "
                                     "every chunk of the gold document (distractors only, as in RAFT), so the model "
                                     "also learns what to answer when retrieval misses")
    merge: bool = Field(False, description="merge LoRA weights into the base model for inference")
    scoring: Literal["loglik", "generate"] = Field("loglik", description="classification scoring, as for prompt")
    evals_per_epoch: int = Field(2, ge=1, le=100, description="validation evaluations (and checkpoints) per epoch")
    select_on: Literal["loss", "metric", "last"] = Field(
        "last", description="early stopping and best checkpoint by validation loss, or by the task metric "
                            "(classification; the metric is logged either way), or 'last': every epoch is "
                            "trained and the final weights kept (validation is still evaluated and logged; "
                            "a lowest-loss checkpoint can be one that answers the majority label everywhere)")
    metric_limit: int = Field(
        64, ge=1, description="validation examples (a seeded sample) scored for the task metric at each evaluation")
    train_limit: int | None = Field(
        None, ge=2, description="seeded subsample of train examples per task for this variant (keeps CPU runs short)")
    training_seed: int | None = Field(
        None, ge=0, description="seed of training's own randomness (LoRA/head init, batch order, dropout, the "
                                "validation sample scored while training); default the suite seed. Which examples "
                                "are trained on stays the suite seed's. `bench experiment seed-spread` sets it; a "
                                "model trained at the suite seed keeps the key it had before this setting existed")
    tasks: list[str] | None = Field(None, description="restrict this variant to these tasks")
    sweep: Sweep | None = Field(
        None, description="a search over this variant's settings for `bench experiment sweep`: each trial trained "
                          "and early-stopped on validation, the best on validation alone scored on test. A run trains "
                          "the settings as declared and ignores it (cache keys leave it out)")

    @model_validator(mode="after")
    def _micro_batches_fill_the_batch(self) -> FinetuneArm:
        if self.micro_batch_size is not None and self.batch_size % self.micro_batch_size:
            raise ValueError(f"micro_batch_size {self.micro_batch_size} does not divide batch_size {self.batch_size}: "
                             "each step's examples are split into equal numbers of micro-batches")
        return self


# Fine-tune settings a sweep may not vary, and why: they name or place the variant, change only how the
# model is served, or change which examples validate it (trials must be compared on the same examples).
NOT_SEARCHED: dict[str, str] = {
    **dict.fromkeys(("arm", "name", "tasks", "sweep"), "names the variant, it is not a training setting"),
    "retrieval_from": "names another variant; declare one variant per retrieval source instead",
    "scope": "changes how many models a trial trains (one per task, or one for all), and the trial is chosen per "
             "trained model",
    "merge": "changes only how the trained model is served, which validation cannot tell apart",
    "train_limit": "changes which examples train and validate the trials (the learning-curve question)",
    "holdout": "changes which examples validate the trials, so their scores could not be compared",
    "training_seed": "picking the luckiest seed on validation overstates it (`bench experiment seed-spread` "
                     "measures the spread instead)",
}


class _SweepSpaceBase(Strict):
    """The searched settings: each a list of values of the fine-tune setting's own type."""

    @model_validator(mode="before")
    @classmethod
    def _searchable(cls, data: Any) -> Any:
        for name in data if isinstance(data, dict) else ():
            if name in NOT_SEARCHED:
                raise ValueError(f"'{name}' cannot be searched: it {NOT_SEARCHED[name]}")
        return data

    @model_validator(mode="after")
    def _values(self) -> _SweepSpaceBase:
        if not self.model_fields_set:
            raise ValueError("name at least one fine-tune setting and the values to try")
        for name in self.model_fields_set:
            values = getattr(self, name)
            if any(values.count(v) > 1 for v in values):
                raise ValueError(f"{name} lists a value twice; each value is tried once")
        return self

    def settings(self) -> dict[str, list[Any]]:
        """Setting -> its values (settings in FinetuneArm's field order, values as listed)."""
        return {name: list(getattr(self, name)) for name in self.model_fields if name in self.model_fields_set}


def _searched(name: str, field: Any) -> tuple[Any, Any]:
    value = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return list[value] | None, Field(None, min_length=1, description=f"values of {name} to try: {field.description}")


# Built from FinetuneArm's own fields, so each searched value is checked as the setting itself is
# (type, bounds, choices) and an unknown setting is an unknown key with the closest known one.
SweepSpace = create_model("SweepSpace", __base__=_SweepSpaceBase, **{
    name: _searched(name, f) for name, f in FinetuneArm.model_fields.items() if name not in NOT_SEARCHED})


class Sweep(Strict):
    """A hyperparameter search over a fine-tune variant (`bench experiment sweep`): every trial is the
    variant with one combination of the values, selected on validation only."""

    space: SweepSpace = Field(description="fine-tune setting -> the values to try, e.g. {learning_rate: [0.0003, "
                                          "0.001], rank: [8, 16]}")
    search: Literal["grid", "random"] = Field(
        "grid", description="grid: every combination; random: `trials` combinations drawn with the suite seed")
    trials: int | None = Field(None, ge=1, description="random search: how many combinations to draw (at most all)")
    metric: str = Field(
        "loss", description="what chooses the trial, per task: 'loss', the validation loss of the weights training "
                            "kept (lower is better), or a metric every task of the variant declares, computed on the "
                            "whole validation split by the arm's own scorer (higher is better)")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        from .metrics import METRICS

        if value != "loss" and value not in METRICS:
            raise ValueError(unknown_name("metric", value, ["loss", *METRICS]))
        return value

    @model_validator(mode="after")
    def _trials_for_random(self) -> Sweep:
        if self.search == "random" and self.trials is None:
            raise ValueError("search: random needs `trials`, the number of combinations to draw")
        if self.search == "grid" and self.trials is not None:
            raise ValueError("trials is for search: random; a grid tries every combination")
        return self


class RetrievalFilter(Strict):
    """Restrict each query's retrieval to corpus documents whose metadata `doc_field` equals the
    example's `example_field` (compared as text), e.g. the clauses of the question's own contract."""

    doc_field: str = Field(min_length=1, description="metadata column of the corpus documents, e.g. contract_id")
    example_field: str = Field(min_length=1, description="column of the task's examples, e.g. contract")


class Rerank(Strict):
    """Rescore the retriever's best candidates with a cross-encoder, which reads the query and each
    passage together (slower per item than a retriever, and usually better at ordering a few), and
    keep the k best (bench.retrieval.rerank)."""

    model: str = Field(min_length=1, description="sentence-transformers CrossEncoder: a hub id (downloaded on first "
                                                 "use) or a local directory (config.json, weights, tokenizer)")
    candidates: int = Field(20, ge=1, le=1000, description="the retriever's best items the cross-encoder rescores "
                                                           "(at least k); the k best of them reach the prompt")


class RagArm(Strict):
    """Retrieved context (corpus passages, or nearest train examples) in the shared template."""

    arm: Literal["rag"]
    name: SafeName = Field(description="variant name shown in reports")
    mode: Literal["corpus", "examples"] = Field("corpus", description="retrieve passages or labelled train examples")
    k: int = Field(4, ge=1, le=64, description="items retrieved per query")
    embedder: str = Field("all-minilm-l6-v2", description="embedded name, sentence-transformers id or path")
    embed_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="embedder precision; auto: bf16 on CUDA and on CPUs with native bf16, else fp32")
    embed_batch_size: int = Field(32, ge=1, le=4096, description="texts per embedding batch (length-sorted)")
    chunk_tokens: int = Field(254, ge=16, description="chunk size in embedder tokens; the default fills the default "
                                                      "embedder's 256-token input beside its 2 special tokens "
                                                      "(larger values are capped at what the embedder takes)")
    chunk_overlap: int = Field(32, ge=0, description="overlap between consecutive chunks")
    chunking: Literal["tokens", "structure"] = Field(
        "tokens", description="tokens: windows of chunk_tokens; structure: one chunk per section (Markdown headings, "
                              "numbered sections, (a) items), an over-long section cut at its subsections, then into "
                              "token windows")
    index: Literal["auto", "flat", "hnsw", "ivf"] = Field("auto", description="FAISS index type (dense retrieval)")
    index_device: Literal["auto", "cpu", "gpu"] = Field(
        "auto", description="where the FAISS index searches; auto: GPU 0 when faiss-gpu is installed and sees a GPU "
                            "and the index is flat or ivf (HNSW has no GPU version), else the CPU; gpu: that, or an "
                            "error")
    retriever: Literal["dense", "bm25", "hybrid"] = Field(
        "dense", description="dense: embeddings and FAISS; bm25: lexical, numbers and identifiers kept whole; hybrid: "
                             "both rankings fused by reciprocal rank fusion")
    rrf_k: int = Field(60, ge=1, description="hybrid: the fusion constant; an item at rank r in a ranking adds "
                                             "weight / (rrf_k + r)")
    hybrid_weights: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]] = Field(
        (1.0, 1.0), description="hybrid: the weights of the (dense, bm25) rankings in the fusion")
    filter: RetrievalFilter | None = Field(
        None, description="corpus mode: retrieve only from documents whose metadata matches a field of the example")
    rerank: Rerank | None = Field(
        None, description="rescore the retriever's top `candidates` with a cross-encoder and keep the k best")
    max_context_tokens: int = Field(1024, ge=32, description="token budget for retrieved context in the prompt")
    finetuned: str | None = Field(
        None, description="a finetune variant of this suite to retrieve on top of (not `on`: YAML reads it as true)")
    calibrate: bool = Field(False, description="contextual calibration of label scores, as for prompt")
    tasks: list[str] | None = Field(None, description="restrict this variant to these tasks")

    @model_validator(mode="after")
    def _settings_that_apply(self) -> RagArm:
        fusion = sorted({"rrf_k", "hybrid_weights"} & self.model_fields_set)
        if fusion and self.retriever != "hybrid":  # a setting that would do nothing is a mistake, not a no-op
            verb = "apply" if len(fusion) > 1 else "applies"
            raise ValueError(f"{' and '.join(fusion)} {verb} to retriever: hybrid only (this variant is "
                             f"{self.retriever})")
        if "index_device" in self.model_fields_set and self.retriever == "bm25":
            raise ValueError("index_device places the FAISS index of dense retrieval; this variant is retriever: bm25")
        if self.index_device == "gpu" and self.index == "hnsw":
            raise ValueError("index_device: gpu, but faiss has no GPU version of hnsw; use index: flat or ivf")
        if self.filter is not None and self.mode != "corpus":
            raise ValueError("filter restricts corpus documents; it needs mode: corpus")
        if "chunking" in self.model_fields_set and self.mode != "corpus":
            raise ValueError("chunking cuts corpus documents; it needs mode: corpus")
        if self.rerank is not None and self.rerank.candidates < self.k:
            raise ValueError(f"rerank.candidates ({self.rerank.candidates}) must be at least k ({self.k}): the k "
                             "passages are chosen among them")
        return self


ArmSpec = Annotated[Union[PromptArm, FinetuneArm, RagArm], Field(discriminator="arm")]
ARM_SPECS: dict[str, type[BaseModel]] = {"prompt": PromptArm, "finetune": FinetuneArm, "rag": RagArm}


def _check_unique(items: list[Any] | None, what: str) -> list[Any] | None:
    names = [item.name for item in items or []]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{what} must be unique; repeated: {', '.join(dup)}")
    return items


class Profile(Strict):
    """A named way to run the suite (`bench run SUITE --profile NAME`): another arm list and/or
    other subsample sizes over the suite's own tasks, data, instructions and metrics. One level
    only: a profile changes the suite as declared at the top of suite.yaml, never another profile."""

    description: str = Field("", description="what the profile is for, shown by `bench ls` and `bench validate`")
    arms: list[ArmSpec] | None = Field(
        None, min_length=1, description="replaces the suite's `arms:` list (default: the suite's arms)")
    limits: dict[str, SplitLimits | None] = Field(
        default_factory=dict,
        description="task name -> replaces that task's `limit` (same form: split -> examples); null: every "
                    "example. Tasks not named keep their own `limit`")

    @field_validator("arms")
    @classmethod
    def _unique_arm_names(cls, arms: list[Any] | None) -> list[Any] | None:
        return _check_unique(arms, "arm variant names")

    @model_validator(mode="after")
    def _changes_something(self) -> Profile:
        if self.arms is None and not self.limits:
            raise ValueError("a profile needs 'arms' and/or 'limits'; otherwise it is the suite itself")
        return self


class SuiteSpec(Strict):
    """A whole suite: model, seed, tasks, optional corpus and the arm variants to compare."""

    name: SafeName
    description: str = ""
    model: str = Field("smollm2-135m", description="model spec: embedded name, hub id, path or random:<arch>")
    seed: int = 0
    tasks: list[TaskSpec] = Field(min_length=1)
    corpus: CorpusSpec | None = Field(
        None, description="documents for retrieval and knowledge injection, shared by every task without a `corpus:` "
                          "of its own")
    arms: list[ArmSpec] = Field(min_length=1)
    profiles: dict[SafeName, Profile] = Field(
        default_factory=dict, description="named profiles (`--profile NAME`): other arms and/or limits")
    query_volume: int = Field(
        DEFAULT_QUERY_VOLUME, description="queries the verdict prices every arm at: one-off training seconds plus "
                                          "this many times the seconds per query (`--query-volume` overrides it)")

    @field_validator("query_volume")
    @classmethod
    def _positive_volume(cls, value: int) -> int:
        problem = query_volume_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("tasks", "arms")
    @classmethod
    def _unique_names(cls, items: list[Any], info: Any) -> list[Any]:
        return _check_unique(items, "task names" if info.field_name == "tasks" else "arm variant names")

    def resolve(self, profile: str | None) -> SuiteSpec:
        """The suite a run uses: the profile's arms and limits applied (none: the suite as declared),
        and `profiles` left out, so a run's resolved spec holds exactly what it ran."""
        if profile is None:
            return self.model_copy(update={"profiles": {}})
        if profile not in self.profiles:
            if not self.profiles:
                raise ConfigError(f"suite '{self.name}' has no profiles; run it without --profile")
            raise ConfigError(f"suite '{self.name}': " + unknown_name("profile", profile, list(self.profiles)))
        chosen = self.profiles[profile]
        tasks = [t.model_copy(update={"limit": chosen.limits[t.name]}) if t.name in chosen.limits else t
                 for t in self.tasks]
        return self.model_copy(update={"tasks": tasks, "arms": chosen.arms or self.arms, "profiles": {}})

    def task(self, name: str) -> TaskSpec:
        for t in self.tasks:
            if t.name == name:
                return t
        raise ConfigError(unknown_name("task", name, [t.name for t in self.tasks]))


SUITE_SCHEMA = Schema(root=SuiteSpec, tag="arm", tagged=ARM_SPECS)


class SuiteError(ConfigError):
    """Raised with every problem found, so callers print them all and exit non-zero."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def parse_suite_yaml(path: Path) -> SuiteSpec:
    """Read and validate suite.yaml; raise SuiteError listing every problem with its line."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SuiteError([Problem(shown, None, "", f"not valid UTF-8 (byte {e.start}); save the file as UTF-8")]) from e
    except OSError as e:
        raise SuiteError([Problem(shown, None, "", f"cannot read: {e.strerror}")]) from e
    try:
        root_node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise SuiteError([Problem(shown, line, "", f"not valid YAML: {getattr(e, 'problem', e)}")]) from e
    if not isinstance(raw, dict):
        raise SuiteError([Problem(shown, 1, "", "expected a mapping of suite keys (name, tasks, arms, ...)")])
    repeated = duplicate_keys(shown, root_node)
    try:
        spec = SuiteSpec.model_validate(raw)
    except ValidationError as e:
        schema = [problem_from_error(shown, root_node, raw, err, SUITE_SCHEMA) for err in e.errors()]
        raise SuiteError(repeated + schema) from e
    if repeated:
        raise SuiteError(repeated)
    return spec


def composition_problem(spec: ArmSpec, by_name: Mapping[str, ArmSpec]) -> str | None:
    """What is wrong with the variant another one names (`finetuned:` of a rag variant,
    `retrieval_from:` of a fine-tune), or None. Shared by validation and `build_arms`."""
    base = getattr(spec, "finetuned", None)
    if base:
        if base not in by_name:
            return "finetuned: " + unknown_name("arm variant", base, list(by_name))
        if by_name[base].arm != "finetune":
            return f"finetuned: '{base}' is a {by_name[base].arm} variant; expected a finetune variant"
    source = getattr(spec, "retrieval_from", None)
    if source:
        if source not in by_name:
            return "retrieval_from: " + unknown_name("arm variant", source, list(by_name))
        rag = by_name[source]
        if rag.arm != "rag" or rag.mode != "corpus" or rag.finetuned:
            return (f"retrieval_from: '{source}' must be a rag variant with mode: corpus on the base model "
                    "(its retriever and context budget build the training prompts)")
    return None
