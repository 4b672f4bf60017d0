"""The retrieval arm: retrieved context in the shared template, optionally on a fine-tuned model.

corpus mode: chunks of the suite's corpus, embedded and indexed once (cached on disk), the
top-k placed in the prompt's Context block. examples mode: the k train examples nearest to the
input become the demonstrations (the retrieval arm for a classification task without a corpus).
Retrieved text is cut to `max_context_tokens` of the generator's tokenizer, and never beyond
what the model's context window leaves after the rest of the prompt and the answer.

With `finetuned: <finetune variant>` the arm retrieves on top of that variant's trained model: it
asks the fine-tuning arm for the model (composition; neither arm is copied).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..config import RagArm as RagArmSpec
from ..config import unknown_name
from ..data import Document, Example, stable_hash
from ..generate import generate, score_continuations
from ..models import cache_root, choose_dtype
from ..prompts import CONTENT_FREE_INPUTS, render_prompt
from ..retrieval import RetrievalError
from ..retrieval.chunking import Chunk, check_documents, chunk_documents, chunking_key
from ..retrieval.embedding import Embedder
from ..retrieval.retriever import Item, Retriever
from ..suites import Task
from . import ArmContext, build_arm
from .prompt import prediction_record, calibrate, label_from_text

ANSWER_MARGIN = 8  # tokens kept free beyond max_new_tokens (end-of-turn marker, label tokens)


class RagArm:
    def __init__(self, spec: RagArmSpec):
        self.spec = spec
        self.costs: dict[str, dict[str, Any]] = {}
        self._embedder: Embedder | None = None
        self._retrievers: dict[str, tuple[Retriever, list[Any]]] = {}
        self._base: Any = None

    # -- the model: the suite's base model, or the fine-tuned variant this one builds on --------
    def model(self, ctx: ArmContext, task: Task) -> Any:
        if not self.spec.finetuned:
            return ctx.get_model()
        arms = list(ctx.suite.spec.arms) if ctx.suite is not None else []
        base = next((a for a in arms if a.name == self.spec.finetuned), None)
        if base is None:
            raise KeyError(f"rag variant '{self.spec.name}': finetuned: " + unknown_name("arm variant", self.spec.finetuned,
                                                                                [a.name for a in arms]))
        if base.arm != "finetune":
            raise RetrievalError(f"rag variant '{self.spec.name}': finetuned: '{self.spec.finetuned}' is a {base.arm} variant; "
                                 f"expected a finetune variant")
        if self._base is None:
            self._base = build_arm(base)
        return self._base.trained_model(ctx, task)

    # -- retrieval --------------------------------------------------------------------------------
    def embedder(self, device: str) -> Embedder:
        if self._embedder is None:
            dev = device if device.startswith("cuda") else "cpu"
            dtype = choose_dtype(dev) if self.spec.embed_dtype == "auto" else self.spec.embed_dtype
            self._embedder = Embedder(self.spec.embedder, device=dev, dtype=dtype,
                                      batch_size=self.spec.embed_batch_size)
        return self._embedder

    def retriever(self, ctx: ArmContext, task: Task, device: str) -> tuple[Retriever, list[Any]]:
        """(retriever, the object behind each item: a Chunk or a train Example), built once per corpus
        (corpus mode) or per task's train split (examples mode)."""
        emb = self.embedder(device)
        if self.spec.mode == "corpus":
            docs: list[Document] = list(ctx.suite.corpus) if ctx.suite is not None else []
            if not docs:
                where = f"suite '{ctx.suite.spec.name}'" if ctx.suite is not None else "this suite"
                raise RetrievalError(f"rag variant '{self.spec.name}' (mode: corpus) needs a corpus, but {where} has "
                                     f"none; add `corpus:` to suite.yaml or use `mode: examples`")
            check_documents(docs, where=f"suite corpus for rag variant '{self.spec.name}'")
            size = min(self.spec.chunk_tokens, emb.max_seq_length - 2)
            if self.spec.chunk_overlap >= size:
                raise RetrievalError(f"rag variant '{self.spec.name}': chunk_overlap ({self.spec.chunk_overlap}) must "
                                     f"be smaller than chunk_tokens ({size})")
            key = "corpus:" + stable_hash([docs, size, self.spec.chunk_overlap])
            if key not in self._retrievers:
                if size < self.spec.chunk_tokens:
                    ctx.log(f"{self.spec.name}: chunk_tokens {self.spec.chunk_tokens} plus 2 special tokens exceeds "
                            f"{self.spec.embedder}'s {emb.max_seq_length}-token input; chunks use {size} tokens")
                chunks = chunk_documents(docs, emb.tokenizer, size, self.spec.chunk_overlap)
                items = [Item(c.id, c.doc_id, c.embed_text) for c in chunks]
                self._retrievers[key] = (self._build(ctx, items, chunking_key(size, self.spec.chunk_overlap)), chunks)
        else:
            train = sorted(task.split("train"), key=lambda e: e.id)
            if not train:
                raise RetrievalError(f"rag variant '{self.spec.name}' (mode: examples): task '{task.name}' has no "
                                     f"train examples to retrieve")
            key = f"examples:{task.name}:" + stable_hash([(e.id, e.input) for e in train])
            if key not in self._retrievers:
                items = [Item(e.id, e.id, e.input) for e in train]
                self._retrievers[key] = (self._build(ctx, items, {"mode": "examples"}), train)
        return self._retrievers[key]

    def _build(self, ctx: ArmContext, items: list[Item], key_extra: dict[str, Any]) -> Retriever:
        return Retriever(items, self._embedder, kind=self.spec.index, cache_dir=cache_root() / "embeddings",
                         key_extra=key_extra, seed=ctx.seed, log=ctx.log)

    # -- the arm ----------------------------------------------------------------------------------
    def predict(self, ctx: ArmContext, task: Task, examples: list[Example]) -> list[dict[str, Any]]:
        if not examples:
            return []
        lm = self.model(ctx, task)
        retriever, objects = self.retriever(ctx, task, lm.device)
        k = min(self.spec.k, len(objects))
        hits = retriever.search([e.input for e in examples], k)
        budget_cap = self.spec.max_context_tokens
        prompts, extras, cf_prompts = [], [], []
        for i, e in enumerate(examples):
            found = [objects[p] for p in hits.positions[i]]
            prompt, info, demos, context = self._fit(lm, task, e.input, found, budget_cap)
            prompts.append(prompt)
            extras.append({**self._ids(retriever, hits.positions[i]), "retrieval_scores": hits.scores[i],
                           "retrieval_latency_s": round(float(hits.seconds[i]), 5), **info})
            if self.spec.calibrate and task.spec.kind == "classification":
                cf_prompts += [render_prompt(lm.tokenizer, task.spec, cf, demos, context) for cf in CONTENT_FREE_INPUTS]
        self.costs[task.name] = self._costs(retriever, hits, extras)
        ctx.log(f"{self.spec.name} · {task.name}: {self.spec.mode} retrieval, k={k}, {retriever.costs['index']} index "
                f"over {retriever.costs['items']} items; context budget {extras[0]['context_budget']} tokens, "
                f"mean {self.costs[task.name]['prompt_tokens_added_mean']:.0f} added per prompt")
        label = f"{self.spec.name} · {task.name}"
        if task.spec.kind == "classification":
            return self._classify(ctx, lm, task, examples, prompts, cf_prompts, extras, label)
        gen = generate(lm.model, lm.tokenizer, prompts, max_new_tokens=task.spec.max_new_tokens,
                       batch_size=ctx.batch_size, device=lm.device, progress=ctx.progress(label, len(prompts)))
        return [prediction_record(e, prompts[i], gen.texts[i], "generate", gen.seconds[i] + hits.seconds[i],
                        gen.prompt_tokens[i], gen.output_tokens[i], extras[i]) for i, e in enumerate(examples)]

    def _ids(self, retriever: Retriever, positions: list[int]) -> dict[str, list[str]]:
        """Corpus mode: document ids (what recall@k and MRR read) and chunk ids, best first.
        Examples mode: the train example ids used as demonstrations, under their own name, so the
        scorer never reads them as documents and reports a meaningless recall."""
        if self.spec.mode == "examples":
            return {"retrieved_examples": [retriever.items[p].id for p in positions]}
        return {"retrieved": [retriever.items[p].source_id for p in positions],
                "retrieved_chunks": [retriever.items[p].id for p in positions]}

    def _classify(self, ctx, lm, task, examples, prompts, cf_prompts, extras, label) -> list[dict[str, Any]]:
        spec = task.spec
        words = [spec.verbalise(l) for l in spec.labels]
        res = score_continuations(lm.model, lm.tokenizer, prompts + cf_prompts, words, batch_size=ctx.batch_size,
                                  device=lm.device, progress=ctx.progress(label, len(prompts) + len(cf_prompts)))
        all_scores = res.label_scores(spec.label_score)
        scores, mode = all_scores[: len(prompts)], "loglik"
        if cf_prompts:  # contextual calibration against each example's own demonstrations/context
            n_cf = len(CONTENT_FREE_INPUTS)
            cf = all_scores[len(prompts):]
            scores = np.stack([calibrate(scores[i:i + 1], cf[i * n_cf:(i + 1) * n_cf])[0] for i in range(len(prompts))])
            mode = "loglik+calibrated"
        rows = []
        for i, e in enumerate(examples):
            best = int(np.argmax(scores[i]))
            extra = {"label_scores": {l: round(float(s), 4) for l, s in zip(spec.labels, scores[i])}, **extras[i]}
            rows.append(prediction_record(e, prompts[i], spec.labels[best], mode, res.seconds[i] + extras[i]["retrieval_latency_s"],
                                res.prompt_tokens[i], 0, extra))
        return rows

    def _fit(self, lm, task: Task, text: str, found: list[Any], cap: int) -> tuple[str, dict[str, Any], list, str | None]:
        """The prompt with as much retrieved material as fits: whole items best first, then the
        next one cut to the tokens left (corpus mode), within min(cap, what the window leaves)."""
        tok = lm.tokenizer
        bare = render_prompt(tok, task.spec, text)
        n_bare = _count(tok, bare)
        window = _context_window(lm)
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

    def _costs(self, retriever: Retriever, hits, extras: list[dict[str, Any]]) -> dict[str, Any]:
        lat = hits.seconds * 1000
        added = [x["context_tokens"] for x in extras]
        return {**{k: v for k, v in retriever.costs.items() if k != "embeddings_key"},
                "mode": self.spec.mode, "k": self.spec.k, "builds_on": self.spec.finetuned,
                "query_latency_ms_p50": round(float(np.percentile(lat, 50)), 3),
                "query_latency_ms_p95": round(float(np.percentile(lat, 95)), 3),
                "prompt_tokens_added_mean": round(float(np.mean(added)), 1),
                "prompt_tokens_added_max": int(max(added)),
                "context_budget": extras[0]["context_budget"],
                "truncated_share": round(float(np.mean([x["context_truncated"] for x in extras])), 3)}


def _passage(n: int, c: Chunk) -> str:
    return f"[{n}] {c.title}\n{c.text}" if c.title else f"[{n}] {c.text}"


def _info(added: int, budget: int, used: int, truncated: bool) -> dict[str, Any]:
    return {"context_tokens": int(added), "context_budget": int(budget), "items_in_prompt": used,
            "context_truncated": bool(truncated)}


def _count(tok: Any, text: str) -> int:
    return len(tok(text, add_special_tokens=False).input_ids)


def _context_window(lm: Any) -> int | None:
    cfg = getattr(lm.model, "config", None)
    n = getattr(cfg, "max_position_embeddings", None)
    return int(n) if n else None
