"""The prompt-engineered baseline: the shared template with k seeded demonstrations.

Classification is scored by label log-likelihood (length-normalised, optionally with
contextual calibration against content-free inputs) or, for comparison, by generating text
and mapping it to the closest label. QA and generation tasks are decoded greedily.
"""

from __future__ import annotations

import difflib
import random
from typing import Any

import numpy as np

from ..config import PromptArm as PromptArmSpec
from ..data import Example
from ..generate import generate, score_continuations
from ..prompts import CONTENT_FREE_INPUTS, prompt_hash, render_prompt
from ..suites import Task
from . import ArmContext


def pick_demos(task: Task, shots: int, seed: int) -> list[Example]:
    """k train examples, the same for every test example, chosen by the suite seed."""
    if shots == 0:
        return []
    pool = sorted(task.split("train"), key=lambda e: e.id)
    return random.Random(f"{seed}:{task.name}:demos").sample(pool, shots)


def label_from_text(task: Task, text: str) -> str:
    """Map generated text to a label: exact, then contained, then closest; '' when none is close."""
    spec = task.spec
    written = {spec.verbalise(l).lower(): l for l in spec.labels}
    clean = text.strip().strip(".").lower()
    if clean in written:
        return written[clean]
    hits = sorted((clean.find(w), l) for w, l in written.items() if w in clean)
    if hits:
        return hits[0][1]
    close = difflib.get_close_matches(clean, list(written), n=1, cutoff=0.6)
    return written[close[0]] if close else ""


class PromptArm:
    def __init__(self, spec: PromptArmSpec):
        self.spec = spec

    def predict(self, ctx: ArmContext, task: Task, examples: list[Example]) -> list[dict[str, Any]]:
        lm = ctx.get_model()
        demos = pick_demos(task, self.spec.shots, ctx.seed)
        prompts = [render_prompt(lm.tokenizer, task.spec, e.input, demos) for e in examples]
        label = f"{self.spec.name} · {task.name}"
        if task.spec.kind == "classification" and self.spec.scoring == "loglik":
            return self._score_labels(ctx, lm, task, examples, prompts, demos, label)
        gen = generate(lm.model, lm.tokenizer, prompts, max_new_tokens=task.spec.max_new_tokens,
                       batch_size=ctx.batch_size, device=lm.device, progress=ctx.progress(label, len(prompts)))
        rows = []
        for i, e in enumerate(examples):
            out = gen.texts[i]
            if task.spec.kind == "classification":
                out, raw = label_from_text(task, out), out
            else:
                raw = None
            rows.append(prediction_record(e, prompts[i], out, "generate", gen.seconds[i], gen.prompt_tokens[i],
                                gen.output_tokens[i], {"raw_output": raw} if raw is not None else {}))
        return rows

    def _score_labels(self, ctx, lm, task, examples, prompts, demos, label) -> list[dict[str, Any]]:
        spec = task.spec
        words = [spec.verbalise(l) for l in spec.labels]
        extra_prompts = []
        if self.spec.calibrate:
            extra_prompts = [render_prompt(lm.tokenizer, spec, cf, demos) for cf in CONTENT_FREE_INPUTS]
        res = score_continuations(lm.model, lm.tokenizer, prompts + extra_prompts, words, batch_size=ctx.batch_size,
                                  device=lm.device, progress=ctx.progress(label, len(prompts) + len(extra_prompts)))
        all_scores = res.label_scores(spec.label_score)
        scores = all_scores[: len(prompts)]
        mode = "loglik"
        if self.spec.calibrate:
            scores = calibrate(scores, all_scores[len(prompts):])
            mode = "loglik+calibrated"
        rows = []
        for i, e in enumerate(examples):
            best = int(np.argmax(scores[i]))
            extra = {"label_scores": {l: round(float(s), 4) for l, s in zip(spec.labels, scores[i])}}
            rows.append(prediction_record(e, prompts[i], spec.labels[best], mode, res.seconds[i], res.prompt_tokens[i], 0, extra))
        return rows


def calibrate(scores: np.ndarray, content_free: np.ndarray) -> np.ndarray:
    """Contextual calibration (Zhao et al., 2021): divide label probabilities by those a
    content-free input gets, averaged over several such inputs. Returns log-space scores."""
    def log_softmax(x: np.ndarray) -> np.ndarray:
        x = x - x.max(axis=-1, keepdims=True)
        return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))

    p_cf = np.exp(log_softmax(content_free)).mean(axis=0)
    return log_softmax(scores) - np.log(p_cf)[None, :]


def prediction_record(e: Example, prompt: str, output: str, mode: str, seconds: float, prompt_tokens: int,
                      output_tokens: int, extra: dict[str, Any]) -> dict[str, Any]:
    """The one shape of a prediction row, shared by every arm (scores are added when scoring)."""
    return {"id": e.id, "prompt_hash": prompt_hash(prompt), "output": output, "references": list(e.targets),
            "mode": mode, "latency_s": round(float(seconds), 5), "prompt_tokens": int(prompt_tokens),
            "output_tokens": int(output_tokens), **extra}
