"""The model card of an exported model (README.md in the export folder), from typed facts alone.

PEFT writes a template full of "More Information Needed"; this card says what a user deciding to
ship the model needs: the base model and how to get it, every training setting, what it was
trained on (hashes and sizes), how it scored beside the other arms of its run with confidence
intervals and the run's verdict, what it cost, its licence, and the commands that rebuild it.
bench.export gathers the facts; nothing here reads a file or loads a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:  # annotations only: `bench export --help` builds its help from FORMATS without them
    from .decision import TaskDecision
    from .predictions import TrainingCosts
    from .results import ArmCosts, Estimate, Floor

FORMATS = {"adapter": "a PEFT adapter (load it on the base model below)",
           "merged": "the adapter merged into the base model: a whole model, no base needed",
           "full": "a fully fine-tuned model: a whole model, no base needed"}
"""Export format -> what the folder holds, as the card says it."""


@dataclass(frozen=True)
class BaseModelFacts:
    """The model the export was trained from."""

    spec: str
    """The run's model spec (embedded name, hub id, local folder or random:<arch>)."""
    fingerprint: str
    """trident's identity of its weights, as run.json records it."""
    named_as: str
    """What the adapter's config names as its base (`base_model_name_or_path`)."""
    how_to_get: str
    """Markdown: how a user gets these exact weights on another machine."""
    hub_id: str | None = None
    """A hub id, for the card's `base_model` metadata; None for anything else."""


@dataclass(frozen=True)
class TrainedOn:
    """One task's examples the model was trained on."""

    task: str
    train_n: int
    validation_n: int
    """Examples used for validation (the split, or a seeded hold-out of train)."""
    train_hash: str
    validation_hash: str


@dataclass(frozen=True)
class TrainingData:
    """What the model was trained on, recomputed from the suite as it is now."""

    tasks: tuple[TrainedOn, ...]
    """Empty when the suite could not be loaded again."""
    corpus_hash: str | None
    """The corpus hash, when the corpus shaped training (knowledge injection, retrieval-aware training)."""
    note: str
    """Whether the hashes match the trained model's cache key, or why they could not be recomputed."""


@dataclass(frozen=True)
class TaskResult:
    """How one arm variant that answered with this model scored on one task of the run."""

    task: str
    variant: str
    metrics: Mapping[str, Estimate]
    """Metric -> score with its 95% bootstrap interval, in the task's order."""
    floor: Floor
    decision: TaskDecision | None
    """The run's analysis of the task (best arm, paired tests, verdict); None if decision.json lacks it."""
    costs: ArmCosts


@dataclass(frozen=True)
class CardFacts:
    """Everything the card says; bench.export fills it from the run, the cache and the suite."""

    variant: str
    """The fine-tune variant whose model this is."""
    export_format: str
    """A key of FORMATS."""
    note: str | None
    """Said at the top, e.g. that a retrieval variant was asked for and its fine-tune exported."""
    suite: str
    run_dir: str
    git_sha: str | None
    started: str | None
    device: str
    """The device the run trained and predicted on."""
    saved_dtype: str
    base: BaseModelFacts
    hyperparameters: Mapping[str, Any]
    """The variant's settings as it was trained (every field of its spec)."""
    training: TrainingCosts
    artifact_key: str
    """The trained model's key in trident's cache."""
    data: TrainingData
    prompts: Mapping[str, str]
    """Task -> the user message the model was trained and tested with, the input shown as {input}."""
    results: Sequence[TaskResult]
    licence: str
    reproduce: Sequence[str]
    """Shell commands that train the model again and export it."""


def render_card(f: CardFacts) -> str:
    """README.md of the export: YAML metadata (as the Hugging Face hub reads it), then the card."""
    sections = [_front_matter(f), _title(f), _base(f), _training(f), _data(f), _results(f), _costs(f),
                _prompting(f), _loading(f), _reproduce(f), _licence(f)]
    return "\n\n".join(s for s in sections if s).rstrip() + "\n"


def _front_matter(f: CardFacts) -> str:
    meta: dict[str, Any] = {"license": f.licence, "library_name": "peft" if f.export_format == "adapter" else
                            "transformers", "pipeline_tag": "text-generation",
                            "tags": ["trident", f.training.method, f.suite]}
    if f.base.hub_id:
        meta["base_model"] = f.base.hub_id
    return "---\n" + yaml.safe_dump(meta, sort_keys=False).rstrip() + "\n---"


def _title(f: CardFacts) -> str:
    lines = [f"# {_md(f.suite)} · {_md(f.variant)}",
             f"The {_code(f.variant)} variant of the trident suite {_code(f.suite)}: {FORMATS[f.export_format]}. "
             f"Exported from the run {_code(f.run_dir)} (started {f.started or 'unknown'}, trident commit "
             f"{_code(f.git_sha or 'unknown')}, {f.device}); weights saved as {f.saved_dtype}."]
    if f.note:
        lines.append(f"> {_md(f.note)}")
    return "\n\n".join(lines)


def _base(f: CardFacts) -> str:
    b = f.base
    named = (f"named in the adapter's config as {_code(b.named_as)}" if f.export_format == "adapter" else
             "part of the exported weights: loading them needs no base")
    return (f"## Base model\n\n- spec: {_code(b.spec)}\n- fingerprint: {_code(b.fingerprint)}\n- {named}\n\n"
            f"{b.how_to_get}")


def _training(f: CardFacts) -> str:
    t = f.training
    rows = [(name, _value(v)) for name, v in f.hyperparameters.items()]
    run = [("trained on tasks", ", ".join(t.tasks_trained)), ("steps", f"{t.steps} of {t.max_steps or '?'}"),
           ("best step (restored)", _value(t.best_step)), ("stopped early", _value(t.stopped_early)),
           ("examples per pass × passes per step", f"{_value(t.batch_size)} × {_value(t.grad_accum)}"),
           ("precision", t.precision), ("trainable / total parameters", f"{t.trainable_params:,} / {t.total_params:,}"),
           ("cache key", _code(f.artifact_key))]
    return ("## Training\n\nEvery setting of the variant, as it was trained:\n\n" + _table(("setting", "value"), rows)
            + "\n\nWhat the training run did:\n\n" + _table(("", ""), run))


def _data(f: CardFacts) -> str:
    d = f.data
    rows = [(x.task, str(x.train_n), _code(x.train_hash), str(x.validation_n), _code(x.validation_hash))
            for x in d.tasks]
    parts = ["## Training data", f"{f.training.train_examples} train and {f.training.validation_examples} validation "
             "examples (the training run's count). The suite's data card (README.md beside its suite.yaml) says "
             "where the data comes from and on what terms."]
    if rows:
        parts.append(_table(("task", "train", "train hash", "validation", "validation hash"), rows))
    if d.corpus_hash:
        parts.append(f"Corpus hash (the corpus shaped training): {_code(d.corpus_hash)}")
    parts.append(_md(d.note))
    return "\n\n".join(parts)


def _results(f: CardFacts) -> str:
    parts = ["## Results", "Scores on each task's test split, with 95% bootstrap intervals, beside the task's floor "
             "(a no-skill guess); the verdict is the run's, over every arm variant it compared."]
    for r in f.results:
        names = list(r.metrics)
        rows = [(_md(r.variant), *(_estimate(r.metrics[m]) for m in names)),
                (f"floor: {_md(r.floor.name)}", *(_estimate(r.floor.metrics.get(m)) for m in names))]
        parts += [f"### {_md(r.task)}", _table(("", *names), rows)]
        if r.decision:
            parts.append(_standing(r))
    return "\n\n".join(parts)


def _standing(r: TaskResult) -> str:
    from .stats import p_phrase  # here, not at the top: `bench export --help` must not import numpy

    d = r.decision
    assert d is not None
    test = d.vs_best(r.variant)
    if d.best == r.variant:
        where = f"{_code(r.variant)} is the best arm on {d.primary}."
    elif test:
        where = (f"Best arm: {_code(d.best)}; {_code(r.variant)} differs from it by {test.difference:+.3f} "
                 f"[{test.low:+.3f}, {test.high:+.3f}] {d.primary} ({test.test}, {p_phrase(test.p_holm, 'Holm p')}).")
    else:
        where = f"Best arm: {_code(d.best)}."
    return f"{where}\n\nVerdict: {_md(d.verdict)}"


def _costs(f: CardFacts) -> str:
    t = f.training
    rows = [("training wall time", f"{t.train_wall_s:.1f} s"), ("tokens trained on", f"{t.train_tokens:,}"),
            ("training throughput", f"{t.train_tokens_per_s:,.1f} tokens/s"),
            ("peak memory", f"{t.peak_memory_mb:,.0f} MB ({t.peak_memory_kind})"),
            ("trained files in the cache", f"{t.artifact_bytes:,} bytes" if t.artifact_bytes else "unknown")]
    for r in f.results:
        latency = f"{r.costs.latency_s * 1000:.1f} ms" if r.costs.latency_s is not None else "not measured"
        rows.append((f"{_md(r.variant)} · {_md(r.task)}: per query",
                     f"{latency}, {r.costs.prompt_tokens} prompt tokens"))
    return f"## Costs\n\nSeconds of the run's device ({f.device}).\n\n" + _table(("", ""), rows)


def _prompting(f: CardFacts) -> str:
    if not f.prompts:
        return ""
    parts = ["## Prompt format", "The model was trained and tested on one user turn in the tokenizer's chat template "
             "(saved beside it), the answer following the generation prompt; classification picks the label whose "
             "words score highest. The user turn of each task:"]
    for task, message in f.prompts.items():
        parts += [f"**{_md(task)}**", _fenced(message)]
    return "\n\n".join(parts)


def _loading(f: CardFacts) -> str:
    if f.export_format == "adapter":
        code = ("from peft import PeftModel\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
                "base = AutoModelForCausalLM.from_pretrained(BASE)  # BASE: see 'Base model'\n"
                "model = PeftModel.from_pretrained(base, EXPORT_DIR)\n"
                "tokenizer = AutoTokenizer.from_pretrained(EXPORT_DIR)")
    else:
        code = ("from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
                "model = AutoModelForCausalLM.from_pretrained(EXPORT_DIR)\n"
                "tokenizer = AutoTokenizer.from_pretrained(EXPORT_DIR)")
    return "## Loading\n\n" + _fenced(code, "python")


def _reproduce(f: CardFacts) -> str:
    return ("## Reproduce\n\nWith trident at the commit above, from its checkout (the same settings, data and "
            f"training code give the same cache key, {_code(f.artifact_key)}; `--retrain` trains it again rather than "
            "reusing a cached copy):\n\n" + _fenced("\n".join(f.reproduce), "sh"))


def _licence(f: CardFacts) -> str:
    return (f"## Licence\n\n{_code(f.licence)} (the metadata's `license`). The weights derive from the base model and "
            "from the suite's training data: the terms of both apply as well.")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _estimate(e: Estimate | None) -> str:
    return "–" if e is None else f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"


def _value(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v)) or "–"
    return _md(str(v))


def _md(text: str) -> str:
    """Suite strings shown as text: a hub renders the card's HTML, so angle brackets are escaped."""
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    """Inline code: shown as written (nothing inside a code span is rendered as HTML)."""
    tick = "``" if "`" in text else "`"
    return f"{tick}{text}{tick}"


def _fenced(text: str, language: str = "") -> str:
    fence = "```"
    while fence in text:  # a prompt holding ``` must not close the block
        fence += "`"
    return f"{fence}{language}\n{text}\n{fence}"
