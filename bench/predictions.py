"""What an arm hands back: typed predictions and costs, and their one on-disk shape.

Every arm returns an `ArmResult`; the runner caches and writes it, the scorer reads it, and
nothing adds keys to it on the way (per-example scores live beside it, in `scoring.Scored`).
`to_record` / `from_record` are the only places that know the JSONL and run.json field names,
which stay those of earlier runs so old run directories still report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class RetrievalTrace:
    """What retrieval put into one prompt (rag arm only)."""

    documents: tuple[str, ...] = ()
    """Corpus mode: the source document id of each retrieved chunk, best first (read by recall@k and MRR)."""
    chunks: tuple[str, ...] = ()
    """Corpus mode: the retrieved chunk ids, best first."""
    examples: tuple[str, ...] = ()
    """Examples mode: the train example ids used as demonstrations, best first (never read as documents)."""
    scores: tuple[float, ...] = ()
    """Each retrieved item's score from the retriever, in the order retrieved: cosine similarity
    (dense), BM25 score (bm25) or fused reciprocal-rank score (hybrid). Best first, unless a
    cross-encoder reordered the items (`rerank_scores`)."""
    ranks: Mapping[str, tuple[int | None, ...]] = field(default_factory=dict)
    """Retriever (dense, bm25; hybrid: its fused rank) or rerank -> each retrieved item's 1-based
    rank in that stage's own list, None where it was not among that stage's candidates: why each
    passage was chosen. Empty in prediction files written before retrievers were recorded."""
    rerank_scores: tuple[float, ...] = ()
    """With a reranker: the cross-encoder's raw score (logit) of each retrieved item, best first."""
    latency_s: float = 0.0
    """Seconds to search for this query (embedding it included), every retriever together."""
    context_tokens: int = 0
    """Tokens the retrieved material added to the prompt."""
    context_budget: int = 0
    """Tokens it was allowed: min(max_context_tokens, what the model's window leaves)."""
    items_in_prompt: int = 0
    """Retrieved items that fitted (the last one possibly cut)."""
    context_truncated: bool = False
    """True when an item was cut or dropped to stay within the budget."""

    def to_record(self) -> dict[str, Any]:
        ids = ({"retrieved_examples": list(self.examples)} if self.examples else
               {"retrieved": list(self.documents), "retrieved_chunks": list(self.chunks)})
        ranks = {"retrieval_ranks": {name: list(r) for name, r in self.ranks.items()}} if self.ranks else {}
        if self.rerank_scores:  # only then: rows without a reranker keep their shape
            ranks["rerank_scores"] = [float(s) for s in self.rerank_scores]
        return {**ids, "retrieval_scores": [float(s) for s in self.scores], **ranks,
                "retrieval_latency_s": round(float(self.latency_s), 5), "context_tokens": int(self.context_tokens),
                "context_budget": int(self.context_budget), "items_in_prompt": int(self.items_in_prompt),
                "context_truncated": bool(self.context_truncated)}

    @classmethod
    def from_record(cls, r: Mapping[str, Any]) -> RetrievalTrace | None:
        if "retrieval_latency_s" not in r:
            return None
        return cls(documents=tuple(r.get("retrieved", ())), chunks=tuple(r.get("retrieved_chunks", ())),
                   examples=tuple(r.get("retrieved_examples", ())), scores=tuple(r.get("retrieval_scores", ())),
                   ranks={name: tuple(v) for name, v in r.get("retrieval_ranks", {}).items()},
                   rerank_scores=tuple(r.get("rerank_scores", ())),
                   latency_s=r["retrieval_latency_s"], context_tokens=r.get("context_tokens", 0),
                   context_budget=r.get("context_budget", 0), items_in_prompt=r.get("items_in_prompt", 0),
                   context_truncated=r.get("context_truncated", False))


@dataclass(frozen=True)
class Prediction:
    """One test example's answer from one arm variant."""

    id: str
    """The example id."""
    prompt_hash: str
    """Hash of the exact prompt text, so two arms' prompts can be compared without storing them."""
    output: str
    """The answer: a label (classification) or the generated text."""
    references: tuple[str, ...]
    """Every acceptable reference answer."""
    mode: str
    """How the output was produced: loglik, loglik+calibrated, generate or head."""
    latency_s: float
    """Seconds this example took (its share of a batch, plus its retrieval)."""
    prompt_tokens: int
    """Tokens in the prompt."""
    output_tokens: int
    """Tokens generated (0 when labels are scored)."""
    label_scores: Mapping[str, float] | None = None
    """Classification by scoring: each label's (log-likelihood or calibrated) score."""
    raw_output: str | None = None
    """Classification by generation: the text before it was mapped to a label."""
    retrieval: RetrievalTrace | None = None
    """The arm-specific slot: what retrieval put into the prompt (rag arm only)."""
    input_shortened: bool = False
    """The input was longer than the model's context allows and lost its middle (bench.context_limit)."""

    def to_record(self) -> dict[str, Any]:
        row = {"id": self.id, "prompt_hash": self.prompt_hash, "output": self.output,
               "references": list(self.references), "mode": self.mode, "latency_s": round(float(self.latency_s), 5),
               "prompt_tokens": int(self.prompt_tokens), "output_tokens": int(self.output_tokens)}
        if self.label_scores is not None:
            row["label_scores"] = {k: round(float(v), 4) for k, v in self.label_scores.items()}
        if self.raw_output is not None:
            row["raw_output"] = self.raw_output
        if self.retrieval is not None:
            row.update(self.retrieval.to_record())
        if self.input_shortened:  # only then: the rows of earlier runs keep their shape
            row["input_shortened"] = True
        return row

    @classmethod
    def from_record(cls, r: Mapping[str, Any]) -> Prediction:
        return cls(id=r["id"], prompt_hash=r["prompt_hash"], output=r["output"], references=tuple(r["references"]),
                   mode=r["mode"], latency_s=r["latency_s"], prompt_tokens=r["prompt_tokens"],
                   output_tokens=r["output_tokens"], label_scores=r.get("label_scores"),
                   raw_output=r.get("raw_output"), retrieval=RetrievalTrace.from_record(r),
                   input_shortened=bool(r.get("input_shortened", False)))


@dataclass(frozen=True)
class ScoredPrediction:
    """One row of a run's predictions/<arm>/<task>.jsonl: the prediction as the arm made it, the
    example's input (for readers of the file) and the per-example scores the scorer gave it."""

    prediction: Prediction
    input: str = ""
    """The example's input text ('' in run directories that did not store it)."""
    scores: Mapping[str, float] = field(default_factory=dict)
    """Per-example score per metric, for the metrics that have one."""

    @property
    def id(self) -> str:
        return self.prediction.id

    @property
    def output(self) -> str:
        return self.prediction.output

    @property
    def references(self) -> tuple[str, ...]:
        return self.prediction.references

    def to_record(self) -> dict[str, Any]:
        row = self.prediction.to_record()
        if self.scores:
            row["scores"] = dict(self.scores)
        row["input"] = self.input
        return row

    @classmethod
    def from_record(cls, r: Mapping[str, Any]) -> ScoredPrediction:
        return cls(Prediction.from_record(r), r.get("input", ""), r.get("scores", {}))


@dataclass(frozen=True)
class TrainingCosts:
    """What training a fine-tuned model took (stored with the adapter, so a cache hit reports it too)."""

    method: str
    """lora, full, head or qlora."""
    scope: str
    """per_task or multi_task."""
    tasks_trained: tuple[str, ...]
    """The tasks whose train data the model saw."""
    train_examples: int
    validation_examples: int
    train_wall_s: float
    """Seconds from the start of training to the saved model, evaluations and checkpoints included."""
    train_tokens: int
    """Real (non-padding) tokens the optimiser saw."""
    train_tokens_per_s: float
    """train_tokens over the seconds spent in optimiser steps (or in feature extraction, for a head)."""
    peak_memory_mb: float
    peak_memory_kind: str
    """What peak_memory_mb measures: process peak RSS (CPU) or CUDA max allocated."""
    trainable_params: int
    total_params: int
    steps: int
    best_step: int | None
    """The restored checkpoint's step (selection by validation), None when none was selected."""
    stopped_early: bool
    precision: str
    loss_curves: Mapping[str, list] = field(default_factory=dict)
    """{'train': [[step, loss], ...], 'validation': [...], 'corpus': [...]} for the report's plot."""
    training_log: tuple[Mapping[str, Any], ...] = ()
    max_steps: int | None = None
    batch_size: int | None = None
    """Examples per forward pass as trained (a random-order step runs as micro-batches)."""
    grad_accum: int | None = None
    """Forward passes per optimiser step (per process)."""
    resumed_from: str | None = None
    feature_extraction_s: float | None = None
    """Head only: seconds spent computing the frozen base's features."""
    artifact_bytes: int | None = None
    """Size of the saved adapter or model on disk."""

    def to_record(self) -> dict[str, Any]:
        out = asdict(self)
        out["tasks_trained"], out["training_log"] = list(self.tasks_trained), list(self.training_log)
        return {k: v for k, v in out.items() if v is not None or k == "best_step"}

    @classmethod
    def from_record(cls, r: Mapping[str, Any]) -> TrainingCosts:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in r.items() if k in known}
        kw["tasks_trained"], kw["training_log"] = tuple(kw["tasks_trained"]), tuple(kw.get("training_log", ()))
        return cls(**kw)


@dataclass(frozen=True)
class RetrieverCosts:
    """One retriever's share of a retrieval variant's costs (a hybrid has two: dense and bm25)."""

    index_build_s: float
    """Seconds to build its index (embedding excluded), or to load it when `index_cached`."""
    index_bytes: int
    """Size of its index as stored."""
    index_cached: bool
    """Whether its index came from the on-disk cache."""
    query_latency_ms_p50: float
    """Median milliseconds per query in this retriever alone."""
    query_latency_ms_p95: float
    memory_bytes: int | None = None
    """Bytes of the arrays it holds to answer queries (dense: vectors + FAISS index; bm25: the sparse
    score matrix), counted, not an RSS delta; None in runs before it was recorded."""


@dataclass(frozen=True)
class RerankCosts:
    """What reranking with a cross-encoder took for one task (bench.retrieval.rerank)."""

    model: str
    """The cross-encoder's identity: hub:<id>, or dir:<path>@<hash of its files>."""
    candidates: int
    """Items of the retriever's list it rescored per query."""
    load_s: float
    """Seconds to load the cross-encoder."""
    memory_bytes: int
    """Bytes of its parameters."""
    query_latency_ms_p50: float
    """Median milliseconds per query spent scoring its candidates (on top of the retriever's)."""
    query_latency_ms_p95: float
    tokens_per_query_mean: float
    """Tokens the cross-encoder read per query (every (query, passage) pair, padding excluded)."""
    tokens_total: int


@dataclass(frozen=True)
class RetrievalCosts:
    """What retrieval took for one task: the index (built or loaded) and the queries."""

    mode: str
    """corpus or examples."""
    k: int
    index: Mapping[str, Any]
    """The retriever's own report: items, embedder, dim, embedding and index build seconds, index
    kind and bytes, whether each came from the cache (see bench.retrieval.retriever)."""
    query_latency_ms_p50: float
    query_latency_ms_p95: float
    prompt_tokens_added_mean: float
    prompt_tokens_added_max: int
    context_budget: int
    truncated_share: float
    """Share of prompts whose retrieved material was cut to fit the budget."""
    retrievers: Mapping[str, RetrieverCosts] = field(default_factory=dict)
    """Retriever name (dense, bm25) -> its index and latency; the query latencies above are of the
    whole search (for a hybrid: both retrievers and the fusion; with a reranker, it too)."""
    reranker: RerankCosts | None = None
    """The cross-encoder's share, when the variant reranks."""

    def to_record(self) -> dict[str, Any]:
        """Flat, as run.json holds it: each retriever's costs under its name (`bm25_index_bytes`)."""
        hidden = {"embeddings_key", "bm25_key"}  # cache keys: in the cache's own meta files
        if self.retrievers:  # the dense index's build, size and cache hit, shown once: as dense_index_*
            hidden |= {"index_build_s", "index_bytes", "index_cached"}
        out = {k: v for k, v in self.index.items() if k not in hidden}
        out.update({f.name: getattr(self, f.name) for f in fields(self)
                    if f.name not in ("index", "retrievers", "reranker")})
        for name, costs in self.retrievers.items():
            out.update({f"{name}_{k}": v for k, v in asdict(costs).items() if v is not None})
        if self.reranker is not None:
            out.update({f"rerank_{k}": v for k, v in asdict(self.reranker).items()})
        return out


@dataclass(frozen=True)
class Costs:
    """What a cell cost besides the prediction time the runner measures, reported beside quality."""

    training: TrainingCosts | None = None
    """The training behind the model that answered: this fine-tune's, or the fine-tune a
    retrieval variant builds on (so a composed variant carries its whole cost)."""
    trained_model: str | None = None
    """The key of the trained model in the cache (adapters/<key>), when a trained model answered."""
    cache_hit: bool | None = None
    """Whether that trained model was found in the cache rather than trained in this run."""
    builds_on: str | None = None
    """The fine-tune variant a retrieval variant answers with, if any."""
    retrieval: RetrievalCosts | None = None
    inference_latency_s: float | None = None
    """Mean seconds per example of the fine-tuned model's predictions."""
    latency_variants: Mapping[str, float] = field(default_factory=dict)
    """LoRA: latency of the merged and unmerged model timed on the same examples (latency_merged_s, ...)."""

    def to_record(self) -> dict[str, Any]:
        """The flat record run.json has always held (the report reads its scalar keys)."""
        out: dict[str, Any] = {}
        if self.training is not None:
            out.update(self.training.to_record())
        if self.trained_model is not None:
            out.update({"cache_hit": self.cache_hit, "artifact": self.trained_model})
        if self.retrieval is not None:
            out.update(self.retrieval.to_record())
        if self.retrieval is not None or self.builds_on is not None:
            out["builds_on"] = self.builds_on
        if self.inference_latency_s is not None:
            out["inference_latency_s"] = self.inference_latency_s
        out.update(self.latency_variants)
        return out


@dataclass(frozen=True)
class ArmResult:
    """What `Arm.predict` returns: one prediction per example, in the examples' order, and the costs."""

    predictions: list[Prediction]
    costs: Costs = field(default_factory=Costs)
