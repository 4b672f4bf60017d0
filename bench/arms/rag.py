"""The retrieval arm: retrieved context in the shared template, optionally on a fine-tuned model.

corpus mode: chunks of the suite's corpus, indexed once (cached on disk) by the variant's
`retriever` (dense embeddings, BM25, or both fused), the top-k placed in the prompt's Context
block; a `filter` restricts each query to the documents whose metadata matches its example.
examples mode: the k train examples nearest to the input become the demonstrations (the
retrieval arm for a classification task without a corpus).
Retrieved text is cut to `max_context_tokens` of the generator's tokenizer, and never beyond
what the model's context window leaves after the rest of the prompt and the answer.

With `finetuned: <finetune variant>` the arm retrieves on top of that variant's trained model: it
is handed that variant's `FinetuneArm` when the arms are built (bench.arms.build_arms) and asks it
for the trained model: composition, one model in memory, training billed where it happens.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import RagArm as RagArmSpec
from ..context_limit import FittedInput, PromptLimit, context_window, fit_input
from ..data import Document, Example, stable_hash
from ..errors import RetrievalError
from ..models import LoadedModel, cache_root, choose_dtype
from ..predictions import ArmResult, Costs, RerankCosts, RetrievalCosts, RetrievalTrace, RetrieverCosts
from ..progress import StageFactory, no_progress
from ..prompts import CONTENT_FREE_INPUTS, render_prompt
from ..retrieval.chunking import Chunk, check_documents, chunk_documents, chunking_key
from ..retrieval.embedding import Embedder
from ..retrieval.factory import build_retriever
from ..retrieval.filters import allowed_positions
from ..retrieval.rerank import Reranker, reranker_identity
from ..retrieval.retriever import Hits, Item, Searcher
from ..suites import Task
from . import ArmContext, spec_key
from .prompt import answer, classify

if TYPE_CHECKING:
    from .finetune import FinetuneArm

ANSWER_MARGIN = 8  # tokens kept free beyond max_new_tokens (end-of-turn marker, label tokens)


class RagArm:
    def __init__(self, spec: RagArmSpec, provider: FinetuneArm | None = None):
        self.spec = spec
        self.provider = provider
        """The fine-tune variant this one retrieves on top of (`finetuned:`), or None for the base model."""
        self._embedder: Embedder | None = None
        self._reranker: Reranker | None = None
        self._retrievers: dict[str, tuple[Searcher, list[Any]]] = {}

    def cache_key(self, ctx: ArmContext, task: Task) -> dict[str, Any]:
        corpus = stable_hash(list(ctx.corpus_for(task))) if self.spec.mode == "corpus" else None
        builds_on = self.provider.cache_key(ctx, task) if self.provider else None
        key = {"spec": spec_key(self.spec), "corpus": corpus, "builds_on": builds_on}
        if self.spec.rerank is not None:  # the weights behind a path, which the spec names only
            key["reranker"] = reranker_identity(self.spec.rerank.model)
        return key

    # -- the model: the suite's base model, or the fine-tuned variant this one builds on --------
    def model(self, ctx: ArmContext, task: Task) -> LoadedModel:
        return self.provider.trained_model(ctx, task) if self.provider else ctx.get_model()

    # -- retrieval --------------------------------------------------------------------------------
    def embedder(self, device: str, progress: StageFactory = no_progress) -> Embedder:
        """The variant's embedder, loaded on first use; `progress`: where embedding a corpus reports."""
        if self._embedder is None:
            dev = device if device.startswith("cuda") else "cpu"
            dtype = choose_dtype(dev) if self.spec.embed_dtype == "auto" else self.spec.embed_dtype
            self._embedder = Embedder(self.spec.embedder, device=dev, dtype=dtype,
                                      batch_size=self.spec.embed_batch_size, progress=progress)
        return self._embedder

    def reranker(self, device: str) -> Reranker | None:
        """The variant's cross-encoder (on the embedder's device), loaded on first use; None without one."""
        if self.spec.rerank is not None and self._reranker is None:
            self._reranker = Reranker(self.spec.rerank.model, device=device if device.startswith("cuda") else "cpu")
        return self._reranker

    def retriever(self, ctx: ArmContext, task: Task, device: str) -> tuple[Searcher, list[Any]]:
        """(retriever, the object behind each item: a Chunk or a train Example), built once per corpus
        (corpus mode) or per task's train split (examples mode)."""
        emb = self.embedder(device, ctx.progress)
        if self.spec.mode == "corpus":
            docs: list[Document] = list(ctx.corpus_for(task))
            if not docs:
                where = f"task '{task.name}' of suite '{ctx.suite_name}'" if ctx.suite_name else f"task '{task.name}'"
                raise RetrievalError(f"rag variant '{self.spec.name}' (mode: corpus) needs a corpus, but {where} has "
                                     f"none; add `corpus:` to suite.yaml (or to the task) or use `mode: examples`")
            whose = f"task '{task.name}'s own corpus" if task.corpus is not None else "suite corpus"
            check_documents(docs, where=f"{whose} for rag variant '{self.spec.name}'")
            size = min(self.spec.chunk_tokens, emb.max_seq_length - 2)
            if self.spec.chunk_overlap >= size:
                raise RetrievalError(f"rag variant '{self.spec.name}': chunk_overlap ({self.spec.chunk_overlap}) must "
                                     f"be smaller than chunk_tokens ({size})")
            key = "corpus:" + stable_hash([docs, size, self.spec.chunk_overlap, self.spec.chunking])
            if key not in self._retrievers:
                if size < self.spec.chunk_tokens:
                    ctx.log(f"{self.spec.name}: chunk_tokens {self.spec.chunk_tokens} plus 2 special tokens exceeds "
                            f"{self.spec.embedder}'s {emb.max_seq_length}-token input; chunks use {size} tokens")
                chunks = chunk_documents(docs, emb.tokenizer, size, self.spec.chunk_overlap, how=self.spec.chunking)
                items = [Item(c.id, c.doc_id, c.embed_text) for c in chunks]
                shape = chunking_key(size, self.spec.chunk_overlap, self.spec.chunking)
                self._retrievers[key] = (self._build(ctx, items, shape, device), chunks)
        else:
            train = sorted(task.split("train"), key=lambda e: e.id)
            if not train:
                raise RetrievalError(f"rag variant '{self.spec.name}' (mode: examples): task '{task.name}' has no "
                                     f"train examples to retrieve")
            key = f"examples:{task.name}:" + stable_hash([(e.id, e.input) for e in train])
            if key not in self._retrievers:
                items = [Item(e.id, e.id, e.input) for e in train]
                self._retrievers[key] = (self._build(ctx, items, {"mode": "examples"}, device), train)
        return self._retrievers[key]

    def _build(self, ctx: ArmContext, items: list[Item], key_extra: dict[str, Any], device: str) -> Searcher:
        # the embedder is loaded for every retriever: its tokenizer sizes the chunks, so dense, bm25
        # and hybrid variants over one corpus search the very same chunks
        indexing = ctx.progress(f"{self.spec.name} · {self.spec.retriever} index", len(items), unit="items")
        searcher = build_retriever(self.spec.retriever, items, self._embedder, cache_root=cache_root(),
                                   index=self.spec.index, index_device=self.spec.index_device,
                                   rrf_k=self.spec.rrf_k, weights=self.spec.hybrid_weights,
                                   key_extra=key_extra, seed=ctx.seed, log=ctx.log, reranker=self.reranker(device),
                                   candidates=self.spec.rerank.candidates if self.spec.rerank else 0)
        indexing(len(items))  # built, or loaded from the cache: either way its start and end lines say how long
        return searcher

    def _allowed(self, ctx: ArmContext, task: Task, retriever: Searcher,
                 examples: list[Example]) -> list[np.ndarray] | None:
        """Under a `filter`, the item positions each example may retrieve; None without one."""
        f = self.spec.filter
        if f is None:
            return None
        return allowed_positions(retriever.items, list(ctx.corpus_for(task)), f.doc_field, f.example_field, examples,
                                 where=f"rag variant '{self.spec.name}', task '{task.name}'")

    # -- the arm ----------------------------------------------------------------------------------
    def predict(self, ctx: ArmContext, task: Task, examples: list[Example]) -> ArmResult:
        if not examples:
            return ArmResult([])
        lm = self.model(ctx, task)
        retriever, objects = self.retriever(ctx, task, lm.device)
        k = min(self.spec.k, len(objects))
        hits = retriever.search([e.input for e in examples], k, allowed=self._allowed(ctx, task, retriever, examples))
        prompts, traces, content_free, shortened = [], [], [], []
        for i, e in enumerate(examples):
            found = [objects[p] for p in hits.positions[i]]
            fitted = self._input_that_fits(lm, task, e)
            shortened.append(fitted.shortened)
            prompt, trace, demos, context = self._fit(lm, task, fitted.text, found, self.spec.max_context_tokens)
            prompts.append(prompt)
            traces.append(self._trace(retriever, hits, i, trace))
            if self.spec.calibrate and task.spec.kind == "classification":
                content_free.append([render_prompt(lm.tokenizer, task.spec, cf, demos, context)
                                     for cf in CONTENT_FREE_INPUTS])
        costs = self._costs(ctx, task, retriever, hits, traces)
        index = f" ({retriever.costs['index']} index)" if "index" in retriever.costs else ""
        ctx.log(f"{self.spec.name} · {task.name}: {self.spec.mode} retrieval, k={k}, {retriever.name}{index} over "
                f"{retriever.costs['items']} items; context budget {traces[0].context_budget} tokens, "
                f"mean {costs.retrieval.prompt_tokens_added_mean:.0f} added per prompt")
        label = f"{self.spec.name} · {task.name}"
        trained = self.provider.trained_weights(ctx, task) if self.provider else None  # for the backend
        if task.spec.kind == "classification":
            preds = classify(ctx, lm, task, examples, prompts, label, content_free=content_free, traces=traces,
                             shortened=shortened, trained=trained)
        else:
            preds = answer(ctx, lm, task, examples, prompts, label, traces=traces, shortened=shortened,
                           trained=trained)
        return ArmResult(preds, costs)

    # -- passages for retrieval-aware fine-tuning (a fine-tune's `retrieval_from:` names this variant)
    def training_contexts(self, ctx: ArmContext, task: Task, examples: list[Example], *, force_gold: bool = False,
                          distractors_only: frozenset[str] = frozenset()) -> dict[str, str]:
        """The context this variant would put in each example's prompt (example id -> text), built
        with its retriever, k and context budget from the example's own question. `force_gold`
        and `distractors_only` (ids) apply the RAFT recipe through `choose_passages`; both need
        the task's `gold_doc_field`. Only the examples given are searched: callers pass train and
        validation examples, never test ones."""
        field = task.spec.gold_doc_field
        if (force_gold or distractors_only) and not field:
            raise RetrievalError(f"task '{task.name}' has no gold_doc_field, so the gold passage cannot be forced in "
                                 "or left out; set gold_passage: as_retrieved and distractor_share: 0")
        lm = ctx.get_model()
        retriever, chunks = self.retriever(ctx, task, lm.device)
        k = min(self.spec.k, len(chunks))
        # deeper than k: where the gold document ranks when it is not in the top k
        hits = retriever.search_batch([e.input for e in examples], min(len(chunks), k + 32),
                                      allowed=self._allowed(ctx, task, retriever, examples))
        out = {}
        for e, positions in zip(examples, hits.positions):
            ranked = [chunks[p] for p in positions]
            gold = str(e.meta.get(field)) if field and e.meta.get(field) is not None else None
            found = choose_passages(ranked, k, gold, chunks, force_gold=force_gold,
                                    distractors_only=e.id in distractors_only)
            text = self._input_that_fits(lm, task, e).text
            out[e.id] = self._fit(lm, task, text, found, self.spec.max_context_tokens)[3] or ""
        return out

    def _trace(self, retriever: Searcher, hits: Hits, i: int, fitted: RetrievalTrace) -> RetrievalTrace:
        """Corpus mode: document ids (what recall@k and MRR read) and chunk ids, best first.
        Examples mode: the train example ids used as demonstrations, under their own name, so the
        scorer never reads them as documents and reports a meaningless recall."""
        items = [retriever.items[p] for p in hits.positions[i]]
        ids = ({"examples": tuple(it.id for it in items)} if self.spec.mode == "examples" else
               {"documents": tuple(it.source_id for it in items), "chunks": tuple(it.id for it in items)})
        ranks = {name: tuple(r[i]) for name, r in hits.ranks.items()}
        reranked = tuple(hits.rerank_scores[i]) if hits.rerank_scores else ()
        return dataclasses.replace(fitted, **ids, scores=tuple(float(x) for x in hits.scores[i]), ranks=ranks,
                                   rerank_scores=reranked, latency_s=float(hits.seconds[i]))

    def _input_that_fits(self, lm: LoadedModel, task: Task, example: Example) -> FittedInput:
        """The example's input, shortened in its middle when its bare prompt would leave retrieved
        context less than min(max_context_tokens, half of what the window leaves beside the answer)."""
        window = context_window(lm)
        answer_tokens = task.spec.max_new_tokens + ANSWER_MARGIN
        limit = None
        if window and window > answer_tokens:
            limit = PromptLimit(window, answer_tokens, min(self.spec.max_context_tokens, (window - answer_tokens) // 2))
        return fit_input(lm.tokenizer, lambda text: render_prompt(lm.tokenizer, task.spec, text), example.input,
                         limit, where=f"{self.spec.name} · {task.name}, example {example.id}")

    def _fit(self, lm, task: Task, text: str, found: list[Any],
             cap: int) -> tuple[str, RetrievalTrace, list, str | None]:
        """The prompt with as much retrieved material as fits: whole items best first, then the
        next one cut to the tokens left (corpus mode), within min(cap, what the window leaves)."""
        tok = lm.tokenizer
        bare = render_prompt(tok, task.spec, text)
        n_bare = _count(tok, bare)
        window = context_window(lm)
        budget = min(cap, window - n_bare - task.spec.max_new_tokens - ANSWER_MARGIN) if window else cap
        if budget <= 0:
            raise RetrievalError(f"task '{task.name}': the prompt alone takes {n_bare} of the model's {window} tokens; "
                                 f"no room for retrieved context")
        if self.spec.mode == "examples":
            demos: list[Example] = []
            for d in found:
                trial = demos + [d]
                if _count(tok, render_prompt(tok, task.spec, text, trial)) - n_bare > budget:
                    break
                demos = trial
            prompt = render_prompt(tok, task.spec, text, demos)
            return prompt, _info(_count(tok, prompt) - n_bare, budget, len(demos), len(demos) < len(found)), demos, None
        def added(parts: list[str]) -> int:
            return _count(tok, render_prompt(tok, task.spec, text, (), "\n\n".join(parts))) - n_bare if parts else 0

        passages: list[str] = []
        truncated = False
        for n, c in enumerate(found, 1):
            piece = _passage(n, c)
            over = added(passages + [piece]) - budget
            if over <= 0:
                passages.append(piece)
                continue
            truncated = True
            ids = tok(piece, add_special_tokens=False).input_ids
            keep = len(ids) - over - 2
            while keep >= 16:  # cut the next passage to what is left (token joins can shift a few)
                cut = tok.decode(ids[:keep], skip_special_tokens=True) + " …"
                if added(passages + [cut]) <= budget:
                    passages.append(cut)
                    break
                keep -= 4
            break
        context = "\n\n".join(passages) or None
        prompt = render_prompt(tok, task.spec, text, (), context)
        return prompt, _info(_count(tok, prompt) - n_bare, budget, len(passages), truncated), [], context

    def _costs(self, ctx: ArmContext, task: Task, retriever: Searcher, hits: Hits,
               traces: list[RetrievalTrace]) -> Costs:
        added = [t.context_tokens for t in traces]
        per = {name: RetrieverCosts(index_build_s=info.build_s, index_bytes=info.bytes, index_cached=info.cached,
                                    query_latency_ms_p50=_ms(hits.seconds_by[name], 50),
                                    query_latency_ms_p95=_ms(hits.seconds_by[name], 95),
                                    memory_bytes=info.memory_bytes)
               for name, info in retriever.indexes.items()}
        retrieval = RetrievalCosts(
            mode=self.spec.mode, k=self.spec.k, index=dict(retriever.costs),
            query_latency_ms_p50=_ms(hits.seconds, 50), query_latency_ms_p95=_ms(hits.seconds, 95),
            prompt_tokens_added_mean=round(float(np.mean(added)), 1), prompt_tokens_added_max=int(max(added)),
            context_budget=traces[0].context_budget,
            truncated_share=round(float(np.mean([t.context_truncated for t in traces])), 3), retrievers=per,
            reranker=self._rerank_costs(hits))
        if not self.provider:
            return Costs(retrieval=retrieval)
        trained = self.provider.trained(ctx, task)  # already in memory: the model answered from it
        return Costs(training=trained.costs, trained_model=trained.key, cache_hit=trained.cache_hit,
                     builds_on=self.spec.finetuned, retrieval=retrieval)

    def _rerank_costs(self, hits: Hits) -> RerankCosts | None:
        """The cross-encoder's load, size, time and tokens on these queries; None without one."""
        if self._reranker is None or hits.rerank_tokens is None:
            return None
        tokens = hits.rerank_tokens
        return RerankCosts(model=self._reranker.identity, candidates=self.spec.rerank.candidates,
                           load_s=self._reranker.load_s, memory_bytes=self._reranker.memory_bytes,
                           query_latency_ms_p50=_ms(hits.seconds_by["rerank"], 50),
                           query_latency_ms_p95=_ms(hits.seconds_by["rerank"], 95),
                           tokens_per_query_mean=round(float(np.mean(tokens)), 1), tokens_total=int(tokens.sum()))


def choose_passages(ranked: list[Chunk], k: int, gold: str | None, every_chunk: list[Chunk], *,
                    force_gold: bool, distractors_only: bool) -> list[Chunk]:
    """The k passages of one training prompt (RAFT, Zhang et al. 2024): as retrieved; or with
    every chunk of the gold document left out (distractors only); or, with `force_gold`, the
    gold document's best-ranked chunk (its first chunk when it ranks nowhere in `ranked`) in
    place of the last passage when the top k miss it."""
    if distractors_only and gold is not None:
        return [c for c in ranked if c.doc_id != gold][:k]
    top = ranked[:k]
    if force_gold and gold is not None and all(c.doc_id != gold for c in top):
        best = next((c for c in ranked if c.doc_id == gold), None) or next(
            (c for c in every_chunk if c.doc_id == gold), None)
        if best is not None:
            top = top[: k - 1] + [best]
    return top


def _passage(n: int, c: Chunk) -> str:
    return f"[{n}] {c.title}\n{c.text}" if c.title else f"[{n}] {c.text}"


def _info(added: int, budget: int, used: int, truncated: bool) -> RetrievalTrace:
    """What fitting retrieved material into the prompt did (ids, scores and latency come later)."""
    return RetrievalTrace(context_tokens=int(added), context_budget=int(budget), items_in_prompt=used,
                          context_truncated=bool(truncated))


def _ms(seconds: np.ndarray, q: int) -> float:
    """The q-th percentile of per-query seconds, in milliseconds."""
    return round(float(np.percentile(seconds * 1000, q)), 3)


def _count(tok: Any, text: str) -> int:
    return len(tok(text, add_special_tokens=False).input_ids)

