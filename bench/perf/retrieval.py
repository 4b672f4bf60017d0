"""Retrieval per retriever: recall@1/5/10 and MRR@10 with CIs, build time, size, memory, latency.

For every QA task with a `gold_doc_field` and a corpus (its own, else the suite's) and every
retriever configuration (dense, bm25, hybrid, hybrid+filter), all the task's test questions (or
validation ones; a task's `limit` is not applied) are searched through the rag arm's own code:
`RagArm.retriever` chunks, embeds and indexes as a run does, and the arm applies its filter.
Chunking, embedder and index settings come from one rag variant of the suite (`--variant`;
default, per task, the first corpus-mode rag variant that runs on it, else the first of all), so
the figures are that variant's with only the retriever changed. hybrid+filter uses `--filter`,
else the variant's `filter`, else that of the first rag variant declaring one (for the task if
any does); a task that cannot be filtered by it (say its examples lack the field) is skipped
with a one-line note.

Document level, as the run's retrieval scores (bench.scoring): a chunk counts for its document;
recall@k says whether the gold document is among the documents of the top k chunks (what k
passages put in a prompt), MRR@10 is 1/r for the gold's rank r among the distinct documents of
the top 10 chunks. Each has a bootstrap 95% CI over questions (the suite seed). Every retriever
is built in an empty cache folder, so build seconds are builds, never cache loads; latency is
one question at a time (a warm-up question first), as a user sees it.

Prints a Markdown table (one row per task x retriever) and writes it, as retrieval.md, with
retrieval.json (the same figures, settings and environment) to --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import RagArm as RagArmSpec
from ..config import RetrievalFilter
from ..errors import ConfigError, unknown_name
from ..stats import Estimate, bootstrap_mean
from .common import fresh_cache, ms_percentile

if TYPE_CHECKING:
    from ..arms import ArmContext
    from ..arms.rag import RagArm
    from ..data import Example
    from ..suites import Suite, Task

CONFIGS = ("dense", "bm25", "hybrid", "hybrid+filter")
"""Retriever configurations, in table order; `+filter` adds the document filter to the retriever."""
RECALL_AT = (1, 5, 10)
DEPTH = 10
"""Chunks searched per question: recall@10 and MRR@10 read no further."""
NOT_INHERITED = frozenset({"name", "tasks", "retriever", "filter", "rrf_k", "hybrid_weights", "finetuned", "k",
                           "max_context_tokens", "calibrate"})
"""Settings of the chosen variant a row does not take: what the rows vary (retriever, filter,
fusion) and what acts after first-stage retrieval (k, the prompt budget, calibration, the model
answered with). Settings named `rerank...` are left out too: a reranker reorders what the
retriever found, and these rows measure the retrievers themselves."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", default="legal", help="suite name or path")
    parser.add_argument("--profile", default=None, help="take the rag variants of this profile of the suite")
    parser.add_argument("--tasks", type=_names, default=None,
                        help="comma-separated tasks (default: every QA task with a gold_doc_field and a corpus)")
    parser.add_argument("--retrievers", type=_names, default=list(CONFIGS),
                        help=f"comma-separated, from {','.join(CONFIGS)} (default: all)")
    parser.add_argument("--variant", default=None,
                        help="rag variant whose chunking, embedder and index settings are used (default: the "
                             "suite's first rag variant with mode: corpus)")
    parser.add_argument("--filter", default=None, metavar="DOC_FIELD=EXAMPLE_FIELD",
                        help="the hybrid+filter document filter, for tasks no rag variant declares one for")
    parser.add_argument("--split", choices=("test", "validation"), default="test", help="questions searched")
    parser.add_argument("--device", default="auto", help="embedder device: auto (cuda when present), cpu, cuda")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for retrieval.md and retrieval.json (default: results/perf/retrieval-SUITE)")


def _names(value: str) -> list[str]:
    """'dense,bm25' -> ['dense', 'bm25']"""
    return [x.strip() for x in value.split(",") if x.strip()]


@dataclass(frozen=True)
class RetrieverFigures:
    """One task searched by one retriever configuration."""

    task: str
    retriever: str
    """dense | bm25 | hybrid | hybrid+filter."""
    variant: str
    """The rag variant whose chunking, embedder and index settings the row uses."""
    questions: int
    """Questions of the split with a gold document: what every figure is over."""
    documents: int
    """Documents the retriever searched (the task's corpus)."""
    chunks: int
    """Chunks those documents were split into (the items indexed)."""
    index: str
    """What was built: the FAISS index kind (dense), bm25, or both (hybrid)."""
    filter: str | None
    """`doc_field=example_field` of the document filter applied, or None."""
    recall_at_1: Estimate
    recall_at_5: Estimate
    recall_at_10: Estimate
    mrr_at_10: Estimate
    embed_s: float | None
    """Seconds to embed the chunks (dense and hybrid; None for bm25)."""
    index_build_s: float
    """Seconds to build the index (hybrid: both), embedding not included."""
    index_bytes: int
    """Size of the index as stored (hybrid: both)."""
    memory_bytes: int | None
    """Bytes the retriever holds in memory to answer queries (vectors, FAISS index, BM25 matrix;
    hybrid: both), as the retriever counts them; None where it does not."""
    query_ms_p50: float
    query_ms_p95: float
    """Per-question latency (embedding the question included), one question at a time."""


@dataclass(frozen=True)
class RetrievalBenchmark:
    """Every row of one command, and the settings that make it repeatable."""

    suite: str
    split: str
    variants: dict[str, str]
    """Task -> the rag variant whose chunking, embedder and index settings its rows use."""
    settings: dict[str, dict[str, Any]]
    """Variant -> those settings (chunking, chunk_tokens, chunk_overlap, embedder, index, ...)."""
    device: str
    command: str
    rows: tuple[RetrieverFigures, ...]
    notes: tuple[str, ...]
    """One line per row left out, and why."""


@dataclass(frozen=True)
class Cell:
    """A planned row: the task, its questions, the variant, the configuration and its filter."""

    task: Task
    examples: tuple[Example, ...]
    variant: RagArmSpec
    config: str
    filter: RetrievalFilter | None


def run(args: argparse.Namespace) -> None:
    """Plan every row (all bad input fails here, before anything is built), measure, write, print."""
    from ..arms import suite_context
    from ..models import choose_device
    from ..suites import load_suite

    suite = load_suite(args.suite, profile=args.profile, apply_limits=False)
    configs = _configs(args.retrievers)
    ctx = suite_context(suite, _no_model, batch_size=1, log=lambda m: print(m, file=sys.stderr))
    tasks = chosen_tasks(suite, ctx, args.tasks)
    variants = {t.name: variant_for(suite.spec.arms, args.variant, suite.spec.name, t.name) for t in tasks}
    cells, notes = plan(suite, ctx, variants, tasks, configs, args.split, _parse_filter(args.filter))
    device = choose_device(args.device)
    rows = measure_all(ctx, cells, device, seed=suite.spec.seed)
    settings = {v.name: {k: x for k, x in inherited(v, with_defaults=True).items() if k != "arm"}
                for v in variants.values()}
    result = RetrievalBenchmark(suite.spec.name, args.split, {t: v.name for t, v in variants.items()}, settings,
                                device, command_line(args), tuple(rows), tuple(notes))
    out = args.out or Path("results") / "perf" / f"retrieval-{suite.spec.name}"
    text = markdown(result)
    write(result, text, out)
    print(text)
    print(f"written: {out / 'retrieval.md'}, {out / 'retrieval.json'}", file=sys.stderr)


def _no_model() -> Any:
    raise RuntimeError("retrieval figures need no language model; a retriever asked for one")


def _configs(names: Sequence[str]) -> list[str]:
    for name in names:
        if name not in CONFIGS:
            raise ConfigError(f"--retrievers: {unknown_name('retriever configuration', name, list(CONFIGS))}")
    return [c for c in CONFIGS if c in names]


def _parse_filter(value: str | None) -> RetrievalFilter | None:
    if value is None:
        return None
    doc_field, sep, example_field = value.partition("=")
    if not sep or not doc_field.strip() or not example_field.strip():
        raise ConfigError(f"--filter: expected DOC_FIELD=EXAMPLE_FIELD (e.g. contract_id=contract), got {value!r}")
    return RetrievalFilter(doc_field=doc_field.strip(), example_field=example_field.strip())


def variant_for(arms: Sequence[Any], name: str | None, suite: str, task: str) -> RagArmSpec:
    """The rag variant named, else the first corpus-mode one that runs on `task`, else the first."""
    rags = [a for a in arms if a.arm == "rag"]
    if name is None:
        corpus = [a for a in rags if a.mode == "corpus"]
        if not corpus:
            raise ConfigError(f"suite '{suite}' has no rag variant with mode: corpus to take chunking settings from; "
                              "add one to its arms (or choose a profile with --profile)")
        return next((a for a in corpus if not a.tasks or task in a.tasks), corpus[0])
    by_name = {a.name: a for a in rags}
    if name not in by_name:
        raise ConfigError(f"--variant: {unknown_name('rag variant', name, list(by_name))}")
    if by_name[name].mode != "corpus":
        raise ConfigError(f"--variant: rag variant '{name}' has mode: {by_name[name].mode}; expected mode: corpus")
    return by_name[name]


def why_not_measurable(ctx: ArmContext, task: Task) -> str | None:
    """Why a task has no retrieval figures (one phrase), or None when it has."""
    if task.spec.kind != "qa":
        return f"it is a {task.spec.kind} task, not qa"
    if not task.spec.gold_doc_field:
        return "it has no gold_doc_field naming the document that answers each question"
    if not ctx.corpus_for(task):
        return "it has no corpus (its own or the suite's)"
    return None


def chosen_tasks(suite: Suite, ctx: ArmContext, names: Sequence[str] | None) -> list[Task]:
    """The tasks named (each must be measurable), or every measurable one, in suite order."""
    if names is None:
        found = [t for t in suite.tasks.values() if why_not_measurable(ctx, t) is None]
        if not found:
            raise ConfigError(f"suite '{suite.spec.name}': no QA task with a gold_doc_field and a corpus to measure")
        return found
    for name in names:
        if name not in suite.tasks:
            raise ConfigError(f"--tasks: {unknown_name('task', name, list(suite.tasks))}")
        why = why_not_measurable(ctx, suite.tasks[name])
        if why:
            raise ConfigError(f"--tasks: task '{name}' cannot be measured: {why}")
    return [t for t in suite.tasks.values() if t.name in names]


def plan(suite: Suite, ctx: ArmContext, variants: dict[str, RagArmSpec], tasks: Sequence[Task],
         configs: Sequence[str], split: str, given_filter: RetrievalFilter | None) -> tuple[list[Cell], list[str]]:
    """The rows to measure, and a note for each one left out."""
    from ..retrieval.filters import filter_problem

    cells, notes = [], []
    for task in tasks:
        field, base = task.spec.gold_doc_field, variants[task.name]
        examples = tuple(e for e in task.split(split) if e.meta.get(field) is not None)
        if not examples:
            notes.append(f"{task.name}: skipped: no {split} question has a '{field}'")
            continue
        for config in configs:
            if not config.endswith("+filter"):
                cells.append(Cell(task, examples, base, config, None))
                continue
            flt = given_filter or base.filter or declared_filter(suite, task.name)
            if flt is None:
                notes.append(f"{task.name}: {config} skipped: no rag variant declares a filter "
                             "(pass --filter DOC_FIELD=EXAMPLE_FIELD)")
                continue
            problem = filter_problem(flt.doc_field, flt.example_field, list(ctx.corpus_for(task)), list(examples))
            if problem:
                notes.append(f"{task.name}: {config} skipped: {problem}")
                continue
            cells.append(Cell(task, examples, base, config, flt))
    if not cells:
        raise ConfigError("nothing to measure: " + "; ".join(notes))
    return cells, notes


def declared_filter(suite: Suite, task: str) -> RetrievalFilter | None:
    """The filter of the first rag variant that declares one, among the suite's arms (as loaded,
    with its profile) and then every profile's: one that runs on `task` first, else any (whether
    the task can be filtered by it is checked apart)."""
    from ..suites import list_profiles

    arms = list(suite.spec.arms)
    for profile in list_profiles(str(suite.path)).values():
        arms += profile.arms or []
    filtered = [a for a in arms if a.arm == "rag" and a.filter is not None]
    own = [a for a in filtered if not a.tasks or task in a.tasks]
    return (own or filtered)[0].filter if filtered else None


def inherited(base: RagArmSpec, *, with_defaults: bool) -> dict[str, Any]:
    """The variant's settings a row keeps (see NOT_INHERITED): with those left at their defaults
    (to describe the rows), or only those the suite wrote (to build a spec from, so a setting that
    applies to one retriever only is never written for another)."""
    return {k: v for k, v in base.model_dump(exclude_unset=not with_defaults).items()
            if k not in NOT_INHERITED and not k.startswith("rerank")}


def config_spec(base: RagArmSpec, config: str, flt: RetrievalFilter | None) -> RagArmSpec:
    """`base` with the configuration's retriever and filter: the same chunks, embedder and index."""
    kind = config.removesuffix("+filter")
    settings = inherited(base, with_defaults=False)
    if kind == "hybrid" and base.retriever == "hybrid":  # the variant's own fusion settings
        settings.update(rrf_k=base.rrf_k, hybrid_weights=base.hybrid_weights)
    name = f"{base.name}-{kind}" + ("-filtered" if flt else "")
    return RagArmSpec.model_validate({**settings, "name": name, "retriever": kind,
                                      "filter": flt.model_dump() if flt else None})


def measure_all(ctx: ArmContext, cells: Sequence[Cell], device: str, *, seed: int) -> list[RetrieverFigures]:
    """Each variant, configuration and filter is one RagArm built in its own empty cache folder;
    tasks that share a corpus share its retriever, as in a run. Rows come back in table order."""
    from ..arms.rag import RagArm

    groups: dict[tuple[str, str, str | None], list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.variant.name, cell.config, _shown(cell.filter)), []).append(cell)
    found: dict[tuple[str, str], RetrieverFigures] = {}
    for group in groups.values():
        arm = RagArm(config_spec(group[0].variant, group[0].config, group[0].filter))
        with fresh_cache():
            for cell in group:
                found[(cell.task.name, cell.config)] = measure(arm, ctx, cell, device, seed)
    return [found[(c.task.name, c.config)] for c in cells]


def measure(arm: RagArm, ctx: ArmContext, cell: Cell, device: str, seed: int) -> RetrieverFigures:
    """One row: search every question, one at a time, through the arm's retriever and filter."""
    retriever, _ = arm.retriever(ctx, cell.task, device)
    examples = list(cell.examples)
    allowed = arm._allowed(ctx, cell.task, retriever, examples)  # the arm's own filter, as in a run
    queries = [e.input for e in examples]
    retriever.search(queries[:1], DEPTH, allowed[:1] if allowed is not None else None)  # warm-up, not timed
    hits = retriever.search(queries, DEPTH, allowed)
    field = cell.task.spec.gold_doc_field
    found = [[retriever.items[p].source_id for p in positions] for positions in hits.positions]
    gold = [str(e.meta[field]) for e in examples]
    figures = document_figures(found, gold, seed)
    indexes = retriever.indexes.values()
    return RetrieverFigures(
        task=cell.task.name, retriever=cell.config, variant=cell.variant.name, questions=len(examples),
        documents=len({it.source_id for it in retriever.items}), chunks=len(retriever.items),
        index="+".join(retriever.costs["index"] if name == "dense" else name for name in retriever.indexes),
        filter=_shown(cell.filter), **figures, embed_s=retriever.costs.get("embedding_s"),
        index_build_s=round(sum(i.build_s for i in indexes), 4), index_bytes=sum(i.bytes for i in indexes),
        memory_bytes=_total(i.memory_bytes for i in indexes),
        query_ms_p50=ms_percentile(hits.seconds, 50), query_ms_p95=ms_percentile(hits.seconds, 95))


def _total(values: Iterable[int | None]) -> int | None:
    """The sum, or None when any part is not counted (a partial sum would read as the whole)."""
    values = list(values)
    return None if any(v is None for v in values) else sum(values)


def _shown(flt: RetrievalFilter | None) -> str | None:
    return f"{flt.doc_field}={flt.example_field}" if flt else None


def document_figures(found: Sequence[Sequence[str]], gold: Sequence[str], seed: int) -> dict[str, Estimate]:
    """recall@1/5/10 and MRR@10 with bootstrap CIs, from each question's retrieved chunks' document
    ids (best first) and its gold document id."""
    per: dict[str, list[float]] = {f"recall_at_{k}": [] for k in RECALL_AT}
    per["mrr_at_10"] = []
    for documents, g in zip(found, gold):
        for k in RECALL_AT:
            per[f"recall_at_{k}"].append(float(g in documents[:k]))
        rank = gold_rank(documents[:DEPTH], g)
        per["mrr_at_10"].append(1.0 / rank if rank else 0.0)
    return {name: bootstrap_mean(values, seed=seed) for name, values in per.items()}


def gold_rank(documents: Sequence[str], gold: str) -> int | None:
    """1-based rank of `gold` among the distinct `documents` (a document's best chunk counts), or None."""
    distinct = list(dict.fromkeys(documents))
    return distinct.index(gold) + 1 if gold in distinct else None


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces these figures."""
    parts = ["python -m bench.perf retrieval", f"--suite {args.suite}"]
    if args.profile:
        parts.append(f"--profile {args.profile}")
    if args.tasks:
        parts.append(f"--tasks {','.join(args.tasks)}")
    parts.append(f"--retrievers {','.join(_configs(args.retrievers))}")
    for option in ("variant", "filter"):
        if getattr(args, option):
            parts.append(f"--{option} {getattr(args, option)}")
    if args.split != "test":
        parts.append(f"--split {args.split}")
    return " ".join(parts)


def _described(s: dict[str, Any]) -> str:
    return (f"{s.get('chunking', 'tokens')} chunks of {s.get('chunk_tokens')} tokens, "
            f"overlap {s.get('chunk_overlap')}, embedder {s.get('embedder')}, index {s.get('index')}")


def _estimate(e: Estimate) -> str:
    return f"{e.value:.3f} [{e.low:.2f}, {e.high:.2f}]"


def _size(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def markdown(b: RetrievalBenchmark) -> str:
    """The table ready to paste (one row per task x retriever), with its settings and notes."""
    used = "; ".join(f"`{name}` for {', '.join(t for t, v in b.variants.items() if v == name)} "
                     f"({_described(s)})" for name, s in b.settings.items())
    lines = [f"Retrieval on suite `{b.suite}`, {b.split} questions, on {b.device}; chunking, embedder and index of "
             f"rag variant {used}. Document level; 95% bootstrap CIs over questions; latency one question at a "
             "time.", "", f"`{b.command}`", "",
             "| task | retriever | questions | chunks | recall@1 | recall@5 | recall@10 | MRR@10 | embed s | "
             "index s | index size | memory | ms p50 | ms p95 |",
             "|---|---|---:|---:|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in b.rows:
        embed = f"{r.embed_s:.2f}" if r.embed_s is not None else "-"
        lines.append(f"| {r.task} | {r.retriever} | {r.questions} | {r.chunks} | {_estimate(r.recall_at_1)} | "
                     f"{_estimate(r.recall_at_5)} | {_estimate(r.recall_at_10)} | {_estimate(r.mrr_at_10)} | "
                     f"{embed} | {r.index_build_s:.3f} | {_size(r.index_bytes)} | "
                     f"{_size(r.memory_bytes) if r.memory_bytes is not None else '-'} | {r.query_ms_p50:.2f} | "
                     f"{r.query_ms_p95:.2f} |")
    lines += [""] + [f"- {note}" for note in b.notes]
    return "\n".join(lines).rstrip() + "\n"


def write(b: RetrievalBenchmark, text: str, out: Path) -> None:
    from ..store import atomic_write_text, environment, write_json

    atomic_write_text(out / "retrieval.md", text)
    write_json(out / "retrieval.json", {**dataclasses.asdict(b), "environment": environment()})
