"""The report's tables, built once as plain strings and rendered by every format.

The terminal (`render_terminal`), report.md (`render_markdown`), report.html (`render_html`) and
results.csv (`render_csv`) all draw the same `Table` objects, so a number is formatted in one
place. A format may leave a table out (report.md has no sample predictions), never reword it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import DEFAULT_QUERY_VOLUME
from .decision import ALPHA, BreakEven, PairedTest, TaskDecision, rounded_s
from .leakage import LeakageReport, describe
from .results import ArmCosts, Estimate, RunResults, TaskResults

SAMPLES = 4  # sample predictions per task in report.html
SUMMARY_COSTS = (("latency_s", "latency s / query"), ("prompt_tokens", "prompt tokens / query"),
                 ("train_s", "training s"), ("predict_s", "predict s (whole test set)"))
KIND_TITLES = {"prompt": "Prompting", "rag": "Retrieval", "finetune": "Fine-tuning"}
COLLAPSED = "⚠"  # beside an arm whose predictions collapsed; its warning under the table says how


@dataclass(frozen=True)
class Row:
    """One row of a table."""

    cells: list[str]
    """Plain text, one per column; a row shorter than the header leaves its last columns blank."""
    kind: str = ""
    """'floor' for the no-skill baseline (shown dimmed); '' for every other row."""
    emphasis: frozenset[int] = frozenset()
    """Columns whose cell is emphasised where the format can (a significant difference)."""


@dataclass(frozen=True)
class Table:
    """A table of plain strings; renderers escape and lay it out for their format."""

    title: str
    """What the table shows; each format decides whether and how it prints it."""
    header: list[str]
    """Column names."""
    rows: list[Row]
    """The rows, in order."""
    notes: list[str] = field(default_factory=list)
    """How to read the table, shown under it where the format has room (the terminal's caption)."""
    numeric_from: int | None = 1
    """Columns from this index on hold numbers (right-aligned); None: no column does."""
    preformatted: frozenset[int] = frozenset()
    """Columns whose text keeps its line breaks (sample inputs)."""
    warnings: list[str] = field(default_factory=list)
    """What a reader must not miss (an arm whose predictions collapsed): every format shows them under the
    table, marked, unlike the notes."""


@dataclass(frozen=True)
class TaskTables:
    """The tables of one task."""

    task: TaskResults
    """The task they describe (its name, kind and size head the section)."""
    scores: Table
    """Floor and every arm variant: scores with CIs, the test against the best arm, the mode."""
    retrieval: Table | None
    """Retrieval of the gold document, for tasks with retrieval arms that name one."""


def fmt(est: Estimate | None) -> str:
    """'0.512 [0.430, 0.601]', or '—' for a score that does not exist."""
    if est is None:
        return "—"
    return f"{est.value:.3f} [{est.low:.3f}, {est.high:.3f}]"


def fmt_p(test: PairedTest | None) -> str:
    """'+0.120, p=0.004 *' (difference from the best arm, Holm-corrected p); 'best' for the best arm."""
    if test is None:
        return "best"
    p = test.p_holm
    return f"{test.difference:+.3f}, {'p<0.001' if p < 0.001 else f'p={p:.3f}'}{' *' if p < ALPHA else ''}"


def retrieval_summary(scores: dict[str, Estimate]) -> str:
    """'recall@1 0.62 · recall@4 0.85 · mrr 0.71' (point values; CIs are in scores.json)."""
    return " · ".join(f"{name} {est.value:.2f}" for name, est in scores.items())


def score_table(task: TaskResults, decision: TaskDecision | None) -> Table:
    """Rows: the floor and every arm variant; columns: metrics, the test against the best arm, the mode."""
    vs_best = f"vs best ({decision.primary})" if decision else "vs best"  # a task no arm ran has no best
    rows = [Row(["floor: " + task.floor.name, *[fmt(task.floor.metrics.get(m)) for m in task.metrics]], kind="floor")]
    collapses = decision.collapses if decision else []
    collapsed = {c.arm for c in collapses}
    for arm, scores in task.arms.items():
        test = decision.vs_best(arm) if decision else None
        significant = test is not None and test.p_holm < ALPHA
        name = f"{arm} {COLLAPSED}" if arm in collapsed else arm
        rows.append(Row([name, *[fmt(scores.metrics.get(m)) for m in task.metrics], fmt_p(test), scores.mode],
                        emphasis=frozenset({len(task.metrics) + 1}) if significant else frozenset()))
    notes = [f"vs best: difference in {decision.primary}, Holm-corrected p (* < 0.05)"] if decision else []
    notes += [f"{arm} retrieval: {retrieval_summary(r)}" for arm, r in task.retrieval.items()]
    return Table(f"{task.name} ({task.kind}, n={task.n})", ["arm variant", *task.metrics, vs_best, "mode"], rows, notes,
                 warnings=[f"{COLLAPSED} {c.warning()}" for c in collapses])


RETRIEVER_COSTS = (("index_build_s", "index build s", "{:g}"), ("index_bytes", "index KiB", "{:,.0f}"),
                   ("memory_bytes", "memory KiB", "{:,.0f}"),
                   ("query_latency_ms_p50", "query ms p50", "{:g}"), ("query_latency_ms_p95", "query ms p95", "{:g}"))
"""Per-retriever costs beside recall (the run's `<retriever>_<key>` costs; bytes shown in KiB). Memory
is the arrays a retriever holds (vectors + index, BM25's score matrix) or a reranker's parameters."""
STAGES = ("dense", "bm25", "rerank")
"""The stages whose costs a retrieval variant records under their name (`rerank`: a cross-encoder)."""


def retriever_costs(reported: dict[str, object]) -> list[str]:
    """[retriever, then one cell per RETRIEVER_COSTS]: 'dense 0.12 · bm25 0.03' for a hybrid."""
    names = [n for n in STAGES if f"{n}_query_latency_ms_p50" in reported]

    def cell(key: str, form: str) -> str:
        values = [(n, reported.get(f"{n}_{key}")) for n in names]
        shown = [(n, form.format(v / 1024 if key.endswith("bytes") else v)) for n, v in values
                 if isinstance(v, (int, float))]
        return " · ".join(f"{n} {v}" for n, v in shown) if len(shown) > 1 else (shown[0][1] if shown else "")

    return [_text(reported.get("retriever")), *[cell(key, form) for key, _, form in RETRIEVER_COSTS]]


def retrieval_table(task: TaskResults, costs: dict[str, ArmCosts] | None = None) -> Table | None:
    """recall@1, recall@k and MRR per retrieval arm; arms with another k show '—' for the other's recall@k.
    Beside them, when the run recorded them (`costs`: arm -> its costs on this task), each retriever's
    index build time and size and query latency, so quality and cost are read together."""
    retrieval = task.retrieval
    if not retrieval:
        return None
    names = list(dict.fromkeys(name for scores in retrieval.values() for name in scores))
    costs = costs or {}
    per = any("retriever" in costs[arm].reported for arm in retrieval if arm in costs)
    extra = ["retriever", *[title for _, title, _ in RETRIEVER_COSTS]] if per else []
    rows = [Row([arm, *[fmt(scores.get(n)) for n in names],
                 *(retriever_costs(costs[arm].reported if arm in costs else {}) if per else [])])
            for arm, scores in retrieval.items()]
    notes = [note for arm in retrieval if arm in costs for note in [rerank_note(arm, costs[arm].reported)] if note]
    return Table("Retrieval of the gold document", ["arm variant", *names, *extra], rows, notes)


def rerank_note(arm: str, reported: dict[str, object]) -> str:
    """'rag-rr reranks 20 candidates with hub:cross-encoder/ms-marco-MiniLM-L6-v2: 2,310 tokens per query'."""
    if "rerank_model" not in reported:
        return ""
    tokens = reported.get("rerank_tokens_per_query_mean")
    read = f": {tokens:,.0f} tokens per query" if isinstance(tokens, (int, float)) else ""
    return f"{arm} reranks {reported.get('rerank_candidates')} candidates with {reported['rerank_model']}{read}"


def task_tables(run: RunResults, decisions: dict[str, TaskDecision]) -> list[TaskTables]:
    return [TaskTables(task, score_table(task, decisions.get(name)),
                       retrieval_table(task, {arm: run.costs(arm, name) for arm in task.retrieval}))
            for name, task in run.tasks.items()]


def samples_table(run: RunResults, task: TaskResults) -> Table:
    """The first few test examples (by id) with every arm's output beside the references."""
    arms = list(task.arms)
    rows = {a: {p.id: p for p in run.predictions(a, task.name)} for a in arms}
    out = []
    for example_id in sorted(rows[arms[0]])[:SAMPLES]:
        first = rows[arms[0]][example_id]
        outputs = [rows[a][example_id].output if example_id in rows[a] else "" for a in arms]
        out.append(Row([str(example_id), first.input, " | ".join(first.references), *outputs]))
    return Table("Sample predictions", ["id", "input", "references", *arms], out, numeric_from=None,
                 preformatted=frozenset({1}))


def _text(value: object) -> str:
    return "" if value is None else str(value)


def total_text(costs: ArmCosts, query_volume: int) -> str:
    """'2,158': whole seconds of training plus `query_volume` queries; '' without a measured latency."""
    total = costs.total_s(query_volume)
    return "" if total is None else f"{total:,.0f}"


def cost_tables(costs: dict[str, dict[str, ArmCosts]], arm_kinds: dict[str, str],
                query_volume: int = DEFAULT_QUERY_VOLUME) -> list[Table]:
    """First what every arm has (latency, prompt tokens, training time, and the total at the query
    volume the verdicts price at), then per arm kind everything else it measured, transposed (one row
    per item, one column per variant and task). One table of every key was 49 columns wide for the
    legal run: unreadable on screen and in a paper. `costs`: task -> arm variant -> costs."""
    summary, by_kind = [], {}
    for task, arms in costs.items():
        for arm, c in arms.items():
            values = {**c.to_json(), "train_s": c.train_s}
            summary.append(Row([task, arm, *[_text(values.get(k)) for k, _ in SUMMARY_COSTS],
                                total_text(c, query_volume)]))
            by_kind.setdefault(arm_kinds.get(arm, "other"), []).append((task, arm, c.reported))
    header = ["task", "arm variant", *[label for _, label in SUMMARY_COSTS], f"total s at {query_volume:,} queries"]
    out = [Table("Costs", header, summary, numeric_from=2,
                 notes=[f"total: training s + {query_volume:,} x latency s / query (the verdicts' query volume)"])]
    shown = {k for k, _ in SUMMARY_COSTS}
    for kind, cells in by_kind.items():
        keys = list(dict.fromkeys(k for _, _, reported in cells for k, v in reported.items()
                                  if k not in shown and v is not None))
        if keys:
            rows = [Row([k, *[_text(reported.get(k)) for _, _, reported in cells]]) for k in keys]
            out.append(Table(f"{KIND_TITLES.get(kind, kind)} details",
                             ["measured", *[f"{arm} · {task}" for task, arm, _ in cells]], rows))
    return out


def _never(b: BreakEven) -> str:
    return b.why_none or "never (not cheaper per query)"  # decision.json from before why_none


def break_even_table(decisions: dict[str, TaskDecision]) -> Table | None:
    """Queries after which a fine-tune's training time is repaid by its cheaper queries; None if no fine-tune."""
    rows = [Row([task, b.trained, b.versus, f"{b.train_s:.0f}", str(b.saved_s_per_query), str(b.queries or _never(b))])
            for task, d in decisions.items() for b in d.break_even]
    if not rows:
        return None
    return Table("Break-even", ["task", "trained", "versus", "training s", "saved s per query", "queries"], rows,
                 numeric_from=3)


def crossover_table(decisions: dict[str, TaskDecision]) -> Table | None:
    """Per task, every pair of arms that cannot be told apart whose order by total seconds changes with
    the query volume; None when no task has one."""
    rows = []
    for task, d in decisions.items():
        for c in d.pricing.crossovers if d.pricing else []:
            queries = f"{c.queries:,}" + (" (timing noise)" if c.within_noise else "")
            rows.append(Row([task, c.cheaper_below, c.cheaper_from, f"{c.extra_train_s:.0f}", str(c.saved_s_per_query),
                             queries]))
    if not rows:
        return None
    return Table("Crossovers", ["task", "cheaper below", "cheaper from", "extra training s", "saved s per query",
                                "queries"], rows, numeric_from=3)


def provenance_table(run: RunResults) -> Table:
    """Per (arm variant, task): scoring mode, cache, prediction time, latency, prompt length."""
    rows = []
    for c in run.cells:
        cached = f"yes (from {c.predicted_at})" if c.cached else "no"
        rows.append(Row([c.arm, c.task, run.tasks[c.task].arms[c.arm].mode, cached, str(c.predict_s),
                         str(c.mean_latency_s), f"{c.prompt_tokens / max(1, c.n):.0f}"]))
    return Table("How each score was produced", ["arm variant", "task", "mode", "cached", "predict s", "mean latency s",
                                                 "prompt tokens / example"], rows, numeric_from=4)


def results_table(run: RunResults, decisions: dict[str, TaskDecision]) -> Table:
    """Long format for pandas (results.csv): one row per (task, arm, metric), the floor included."""
    header = ["task", "arm", "metric", "value", "low", "high", "n", "diff_vs_best", "p_holm_vs_best", "is_best",
              "latency_s", "prompt_tokens", "train_s", "mode", "query_volume", "total_s"]
    rows = []
    for name, task in run.tasks.items():
        for m in task.metrics:
            f = task.floor.metrics[m]
            rows.append(Row([name, "floor", m, *map(str, (f.value, f.low, f.high, f.n)), *[""] * 9]))
        for arm, scores in task.arms.items():
            d = decisions[name]
            c = d.costs[arm]
            for m in task.metrics:
                e, test = scores.metrics[m], d.comparisons.get(arm, {}).get(m)
                rows.append(Row([name, arm, m, *map(str, (e.value, e.low, e.high, e.n)),
                                 str(test.difference if test else 0.0), _text(test.p_holm if test else None),
                                 str(arm == d.best), _text(c.latency_s), _text(c.prompt_tokens), _text(c.train_s),
                                 scores.mode, str(d.query_volume), _text(rounded_s(d.total_s(arm)))]))
    return Table("Results", header, rows)


@dataclass(frozen=True)
class ReportTables:
    """Every table of a run's report, built once for all formats."""

    tasks: list[TaskTables]
    """Per task, in the suite's order: scores and retrieval."""
    samples: dict[str, Table]
    """Task -> a few sample predictions (tasks that some arm ran)."""
    costs: list[Table]
    """The costs summary, then one table of details per arm kind."""
    break_even: Table | None
    """Break-even points; None without a fine-tune."""
    crossovers: Table | None
    """Query volumes at which arms that cannot be told apart swap places by total cost; None without any."""
    provenance: Table
    """How each score was produced: mode, cache, timings."""
    results: Table
    """Every (task, arm, metric) in long format (results.csv)."""
    leakage: Table | None = None
    """The leakage checks made before the run (bench.leakage); None for a run recorded without them."""


def report_tables(run: RunResults, decisions: dict[str, TaskDecision], query_volume: int | None = None) -> ReportTables:
    """`query_volume`: the one the decisions priced at (None: the run's)."""
    costs = {task: d.costs for task, d in decisions.items()}
    volume = run.query_volume if query_volume is None else query_volume
    return ReportTables(task_tables(run, decisions),
                        {name: samples_table(run, task) for name, task in run.tasks.items() if task.arms},
                        cost_tables(costs, run.arm_kinds, volume), break_even_table(decisions),
                        crossover_table(decisions), provenance_table(run), results_table(run, decisions),
                        leakage_table(run.leakage) if run.leakage else None)


def leakage_table(report: LeakageReport) -> Table:
    """Per task and check: test examples flagged of those it could judge, and the first matches; what
    each check flags in the notes, one warning per finding."""
    rows = [Row([r.task, r.check, f"{r.flagged} of {r.checked}", "; ".join(m.text() for m in r.examples)])
            for r in report.results]
    checks = dict.fromkeys(r.check for r in report.results)
    notes = [f"{check}: {describe(check, report.thresholds)}" for check in checks]
    return Table("Leakage", ["task", "check", "flagged", "first matches"], rows, notes, numeric_from=None,
                 warnings=report.warnings())
