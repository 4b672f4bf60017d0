"""The prompt-engineered baseline: the shared template with k seeded demonstrations.

Classification is scored by label log-likelihood (optionally with contextual calibration
against content-free inputs) or, for comparison, by generating text and mapping it to the
closest label. QA and generation tasks are decoded greedily. `classify` and `answer` are the
shared prediction paths: the fine-tuning arm calls them with its model, the retrieval arm with
its prompts, so every arm scores a task the same way, on the run's backend (bench.backends).
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backends import TrainedWeights, label_scorer
from ..config import PromptArm as PromptArmSpec
from ..context_limit import fit_input, prompt_limit
from ..data import Example
from ..models import LoadedModel
from ..predictions import ArmResult, Prediction, RetrievalTrace
from ..prompts import CONTENT_FREE_INPUTS, label_continuations, prompt_hash, render_prompt
from ..suites import Task
from . import ArmContext, spec_key


def pick_demos(task: Task, shots: int, seed: int) -> list[Example]:
    """k train examples, the same for every test example, chosen by the suite seed."""
    if shots == 0:
        return []
    pool = sorted(task.split("train"), key=lambda e: e.id)
    return random.Random(f"{seed}:{task.name}:demos").sample(pool, shots)


def label_from_text(task: Task, text: str) -> str:
    """Map generated text to a label: exact, then contained, then closest; '' when none is close."""
    spec = task.spec
    written = {spec.verbalise(label).lower(): label for label in spec.labels}
    clean = text.strip().strip(".").lower()
    if clean in written:
        return written[clean]
    hits = sorted((clean.find(w), label) for w, label in written.items() if w in clean)
    if hits:
        return hits[0][1]
    close = difflib.get_close_matches(clean, list(written), n=1, cutoff=0.6)
    return written[close[0]] if close else ""


def calibrate(scores: np.ndarray, content_free: np.ndarray) -> np.ndarray:
    """Contextual calibration (Zhao et al., 2021): divide label probabilities by those a
    content-free input gets, averaged over several such inputs. Returns log-space scores."""
    def log_softmax(x: np.ndarray) -> np.ndarray:
        x = x - x.max(axis=-1, keepdims=True)
        return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))

    p_cf = np.exp(log_softmax(content_free)).mean(axis=0)
    return log_softmax(scores) - np.log(p_cf)[None, :]


def classify(ctx: ArmContext, lm: LoadedModel, task: Task, examples: Sequence[Example], prompts: Sequence[str],
             label: str, content_free: Sequence[Sequence[str]] = (), group_of: Sequence[int] | None = None,
             traces: Sequence[RetrievalTrace] | None = None, shortened: Sequence[bool] = (),
             trained: TrainedWeights | None = None) -> list[Prediction]:
    """Score every label after each prompt and predict the best. With `content_free` (groups of
    content-free prompts), example i is calibrated against group `group_of[i]` (default: group i):
    one shared group when every prompt has the same demonstrations, one per example otherwise.
    `shortened[i]`: example i's input was cut to fit the model's window (bench.context_limit).
    `trained`: the fine-tune `lm` holds, for backends that load its files themselves."""
    spec = task.spec
    words = label_continuations(lm.tokenizer, spec)
    cf_prompts = [p for group in content_free for p in group]
    scorer = label_scorer(ctx.backend, lm, trained, ctx.batch_size, ctx.log, label)
    res = scorer.score(list(prompts) + cf_prompts, words, progress=ctx.progress(label, len(prompts) + len(cf_prompts)))
    all_scores = res.label_scores(spec.label_score)
    scores, mode = all_scores[: len(prompts)], "loglik"
    if content_free:
        starts = np.cumsum([0] + [len(g) for g in content_free]) + len(prompts)
        groups = group_of if group_of is not None else range(len(prompts))
        scores = np.stack([calibrate(scores[i:i + 1], all_scores[starts[g]:starts[g + 1]])[0]
                           for i, g in enumerate(groups)])
        mode = "loglik+calibrated"
    out = []
    for i, e in enumerate(examples):
        trace = traces[i] if traces else None
        out.append(Prediction(
            id=e.id, prompt_hash=prompt_hash(prompts[i]), output=spec.labels[int(np.argmax(scores[i]))],
            references=e.targets, mode=mode, latency_s=res.seconds[i] + (trace.latency_s if trace else 0.0),
            prompt_tokens=int(res.prompt_tokens[i]), output_tokens=0,
            label_scores={name: round(float(s), 4) for name, s in zip(spec.labels, scores[i])}, retrieval=trace,
            input_shortened=bool(shortened) and shortened[i]))
    return out


def answer(ctx: ArmContext, lm: LoadedModel, task: Task, examples: Sequence[Example], prompts: Sequence[str],
           label: str, traces: Sequence[RetrievalTrace] | None = None,
           shortened: Sequence[bool] = (), trained: TrainedWeights | None = None) -> list[Prediction]:
    """Greedy answers; a classification task's text is mapped to a label (the raw text is kept).
    `shortened[i]`: example i's input was cut to fit the model's window (bench.context_limit).
    `trained`: the fine-tune `lm` holds, for backends that load its files themselves."""
    engine = ctx.backend.engine(lm, trained, ctx.batch_size)
    gen = engine.generate(prompts, task.spec.max_new_tokens, progress=ctx.progress(label, len(prompts)))
    is_label = task.spec.kind == "classification"
    out = []
    for i, e in enumerate(examples):
        trace = traces[i] if traces else None
        text = gen.texts[i]
        out.append(Prediction(
            id=e.id, prompt_hash=prompt_hash(prompts[i]), output=label_from_text(task, text) if is_label else text,
            references=e.targets, mode="generate", latency_s=gen.seconds[i] + (trace.latency_s if trace else 0.0),
            prompt_tokens=int(gen.prompt_tokens[i]), output_tokens=int(gen.output_tokens[i]),
            raw_output=text if is_label else None, retrieval=trace, input_shortened=bool(shortened) and shortened[i]))
    return out


def predict_with(ctx: ArmContext, lm: LoadedModel, task: Task, examples: Sequence[Example], label: str,
                 demos: Sequence[Example] = (), scoring: str = "loglik", calibrated: bool = False,
                 trained: TrainedWeights | None = None) -> list[Prediction]:
    """The shared template (with `demos`) on `lm`: what the prompt arm does, and the fine-tune arm too
    (`trained`: its cached files). An input too long for the model's window loses its middle
    (bench.context_limit)."""
    scored = task.spec.kind == "classification" and scoring == "loglik"
    limit = prompt_limit(lm, task.spec, scored)
    fitted = [fit_input(lm.tokenizer, lambda text: render_prompt(lm.tokenizer, task.spec, text, demos), e.input, limit,
                        where=f"{label}, example {e.id}") for e in examples]
    prompts, shortened = [f.prompt for f in fitted], [f.shortened for f in fitted]
    if not scored:
        return answer(ctx, lm, task, examples, prompts, label, shortened=shortened, trained=trained)
    if not calibrated:
        return classify(ctx, lm, task, examples, prompts, label, shortened=shortened, trained=trained)
    group = [render_prompt(lm.tokenizer, task.spec, x, demos) for x in CONTENT_FREE_INPUTS]
    return classify(ctx, lm, task, examples, prompts, label, content_free=[group], group_of=[0] * len(examples),
                    shortened=shortened, trained=trained)


class PromptArm:
    """Instruction plus k demonstrations drawn from train with the suite seed."""

    def __init__(self, spec: PromptArmSpec):
        self.spec = spec

    def cache_key(self, ctx: ArmContext, task: Task) -> dict[str, Any]:
        return {"spec": spec_key(self.spec)}

    def predict(self, ctx: ArmContext, task: Task, examples: list[Example]) -> ArmResult:
        lm = ctx.get_model()
        demos = pick_demos(task, self.spec.shots, ctx.seed)
        preds = predict_with(ctx, lm, task, examples, f"{self.spec.name} · {task.name}", demos,
                             self.spec.scoring, self.spec.calibrate)
        return ArmResult(preds)
