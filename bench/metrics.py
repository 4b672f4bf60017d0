"""Built-in metrics, computed locally (no `evaluate.load`, which needs the hub).

A metric either scores each example (accuracy, exact match, token F1, ROUGE) and averages,
or needs the whole set at once (macro-F1). Both forms share one signature so the bootstrap
in stats.py treats them alike. Every score is in [0, 1]; higher is better.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from .config import unknown_name
from .errors import ConfigError, ResourceError

Refs = Sequence[str]


@dataclass(frozen=True)
class Metric:
    """A named score: `per_example` (pred, refs) -> float, or `corpus` (preds, refss) -> float."""

    name: str
    kinds: tuple[str, ...]
    per_example: Callable[[str, Refs], float] | None = None
    corpus: Callable[[Sequence[str], Sequence[Refs]], float] | None = None
    higher_is_better: bool = True

    def example_scores(self, preds: Sequence[str], refss: Sequence[Refs]) -> np.ndarray | None:
        if self.per_example is None:
            return None
        return np.array([self.per_example(p, r) for p, r in zip(preds, refss)], dtype=float)

    def aggregate(self, preds: Sequence[str], refss: Sequence[Refs]) -> float:
        if self.corpus is not None:
            return float(self.corpus(preds, refss))
        scores = self.example_scores(preds, refss)
        return float(scores.mean()) if len(scores) else float("nan")


def normalize_answer(text: str) -> str:
    """SQuAD-style: lower case, drop punctuation and articles, squeeze whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_PUNCT = set(string.punctuation)


def exact_match(pred: str, refs: Refs) -> float:
    p = normalize_answer(pred)
    return float(any(p == normalize_answer(r) for r in refs))


def token_f1(pred: str, refs: Refs) -> float:
    return max(_f1(normalize_answer(pred).split(), normalize_answer(r).split()) for r in refs)


def _f1(pred: list[str], ref: list[str]) -> float:
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def containment(pred: str, refs: Refs) -> float:
    """1 when some reference, normalised as for exact match, appears in the normalised output
    as whole words ("5 years" is in "the answer is 5 years", "5" is not in "15 days"); the
    "accuracy" of retrieval-QA papers (PopQA, FlashRAG). A verbose answer is not penalised here,
    which is why it is reported beside exact match and token F1, never instead of them."""
    padded = f" {normalize_answer(pred)} "
    return float(any(ref and f" {ref} " in padded for ref in (normalize_answer(r) for r in refs)))


def accuracy(pred: str, refs: Refs) -> float:
    return float(pred.strip() in refs)


def macro_f1(preds: Sequence[str], refss: Sequence[Refs]) -> float:
    """Macro-F1 over the labels seen in references or predictions.

    Same definition as scikit-learn's f1_score(average='macro', zero_division=0) with those
    labels (a test checks they agree), written with numpy because the bootstrap calls it a
    thousand times per cell and scikit-learn's input validation made that take seconds.
    """
    gold = [r[0] for r in refss]
    labels = {l: i for i, l in enumerate(sorted(set(gold) | set(preds)))}
    if not labels:
        return float("nan")
    g = np.fromiter((labels[x] for x in gold), dtype=int, count=len(gold))
    p = np.fromiter((labels[x] for x in preds), dtype=int, count=len(preds))
    k = len(labels)
    tp = np.bincount(g[g == p], minlength=k)
    denom = np.bincount(p, minlength=k) + np.bincount(g, minlength=k)
    return float(np.mean(2 * tp / np.maximum(denom, 1)))


@lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def _rouge(kind: str) -> Callable[[str, Refs], float]:
    def score(pred: str, refs: Refs) -> float:
        return max(_rouge_scorer().score(r, pred)[kind].fmeasure for r in refs)

    return score


_GEN = ("qa", "generation")
METRICS: dict[str, Metric] = {
    "accuracy": Metric("accuracy", ("classification",), per_example=accuracy),
    "macro_f1": Metric("macro_f1", ("classification",), corpus=macro_f1),
    "exact_match": Metric("exact_match", _GEN, per_example=exact_match),
    "token_f1": Metric("token_f1", _GEN, per_example=token_f1),
    "containment": Metric("containment", _GEN, per_example=containment),
    "rouge1": Metric("rouge1", _GEN, per_example=_rouge("rouge1")),
    "rouge2": Metric("rouge2", _GEN, per_example=_rouge("rouge2")),
    "rougeL": Metric("rougeL", _GEN, per_example=_rouge("rougeL")),
}


HUB_PREFIX = "evaluate:"


def get_metric(name: str) -> Metric:
    """A built-in metric, or `evaluate:<id or path>` for a metric loaded with `evaluate.load`
    (online users; hub metric scripts are fetched, so the built-ins never depend on it)."""
    if name.startswith(HUB_PREFIX):
        return _evaluate_metric(name[len(HUB_PREFIX):])
    if name not in METRICS:
        raise ConfigError(unknown_name("metric", name, list(METRICS)))
    return METRICS[name]


@cache
def _evaluate_metric(ref: str) -> Metric:
    import evaluate

    try:
        module = evaluate.load(ref)
    except Exception as e:  # offline, unknown id, broken script: one message for all
        raise ResourceError(f"cannot load metric '{ref}' with evaluate.load (needs a network for hub metrics): "
                       f"{str(e).splitlines()[0]}") from e

    def corpus(preds: Sequence[str], refss: Sequence[Refs]) -> float:
        result = module.compute(predictions=list(preds), references=[r[0] for r in refss])
        numbers = [v for v in result.values() if isinstance(v, (int, float))]
        key = ref.rsplit("/", 1)[-1].removesuffix(".py")
        return float(result.get(key, numbers[0] if numbers else float("nan")))

    return Metric(HUB_PREFIX + ref, ("classification", "qa", "generation"), corpus=corpus)
