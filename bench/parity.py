"""Parity: the fine-tuning arm against a plain training loop, and single-change measurements.

`python -m bench.perf parity` trains the arm and the reference loop below on the same examples
with the same hyperparameters; `--changes` instead trains the arm once per single change of its
settings (`--changes lr_scheduler=constant batch_order=random select_on=last`).

The arm (transformers' Trainer + PEFT) and a short reference loop written here train the same
LoRA on the same examples with the same hyperparameters; both are then classified by the
project's own scorer (`bench.generate.score_continuations`), so only training differs. The
tasks are legal's clause_type and an imbalanced variant built from it in memory
(`imbalanced_clause_task`: five labels kept, the other seven merged into `other`, ~58%).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import random
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .data import Example
from .errors import ConfigError
from .suites import Suite, Task

KEEP = ("termination", "confidentiality", "payment", "force_majeure", "non_compete")
OTHER = "other"


def imbalanced_clause_task(suite: Suite, seed: int = 0) -> Task:
    """clause_type with KEEP as they are and every other label merged into `other` (7 of 12
    labels, so ~58% of every split), same splits and examples. `seed` is kept for callers that
    subsample; the merge itself is deterministic."""
    src = suite.tasks["clause_type"]
    labels = list(KEEP) + [OTHER]
    spec = src.spec.model_copy(update={
        "name": "clause_imbalanced", "labels": labels,
        "label_text": {k: v for k, v in (src.spec.label_text or {}).items() if k in labels} or None,
        "description": "clause_type with 7 of its 12 labels merged into 'other' (class-imbalanced)"})

    def merge(e: Example) -> Example:
        return dataclasses.replace(e, targets=tuple(t if t in KEEP else OTHER for t in e.targets))

    examples = {split: [merge(e) for e in rows] for split, rows in src.examples.items()}
    return Task(spec, examples, dict(src.full_sizes))


def subsample(task: Task, sizes: dict[str, int | None], seed: int) -> Task:
    """A seeded subsample per split (None: the whole split; 0: drop the split)."""
    out = {}
    for split, rows in task.examples.items():
        n = sizes.get(split)
        if n == 0:
            continue
        if n is not None and n < len(rows):
            rows = sorted(random.Random(f"{seed}:{task.name}:{split}:parity").sample(rows, n), key=lambda e: e.id)
        out[split] = rows
    return Task(task.spec, out, task.full_sizes)


# ---- the plain reference loop -------------------------------------------------------------

@dataclasses.dataclass
class LoopResult:
    model: Any
    losses: list[float]
    train_tokens: int
    step_seconds: float
    precision: str

    @property
    def tokens_per_s(self) -> float:
        return self.train_tokens / self.step_seconds if self.step_seconds else 0.0


def reference_train(lm: Any, task_spec: Any, examples: Sequence[Example], *, rank: int = 16, alpha: float = 32,
                    dropout: float = 0.05, learning_rate: float = 3e-4, batch_size: int = 8, epochs: int = 2,
                    max_length: int = 512, seed: int = 0, autocast: bool | None = None) -> LoopResult:
    """LoRA on every linear layer of the blocks, AdamW at a constant rate, examples in random
    order (the arm's draw at the same seed), loss on the answer tokens and the end-of-turn
    marker. fp32 weights, under bf16 autocast where bf16 matmul is native (autocast=None), else
    plain fp32."""
    import torch
    from peft import LoraConfig, get_peft_model

    from .models import cpu_has_native_bf16
    from .prompts import end_of_answer, render_prompt
    from .training.trainer import default_targets

    tok, device = lm.tokenizer, lm.device
    if autocast is None:
        autocast = (torch.cuda.is_bf16_supported() if device.startswith("cuda") else cpu_has_native_bf16())
    end = end_of_answer(tok, task_spec)
    data = []
    for e in examples:
        p = tok(render_prompt(tok, task_spec, e.input), add_special_tokens=False).input_ids
        a = tok(task_spec.verbalise(e.target) + end, add_special_tokens=False).input_ids
        p = p[-(max_length - len(a)):]
        data.append((p + a, [-100] * len(p) + a))
    model = copy.deepcopy(lm.model).to(device=device, dtype=torch.float32)
    model.config.use_cache = False
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        torch.manual_seed(seed)
        model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,
                                                 target_modules=default_targets(model), task_type="CAUSAL_LM"))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate, weight_decay=0.0)
    losses, tokens, seconds = [], 0, 0.0
    for epoch in range(epochs):
        # the permutation the arm's sampler draws (transformers' BatchRebalanceSampler: randperm
        # seeded seed + epoch): each step takes the same examples in both trainers, so what differs
        # between them is dropout's masks and rounding, not which examples met at which step
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed + epoch)).tolist()
        for i in range(0, len(order), batch_size):
            batch = [data[j] for j in order[i:i + batch_size]]
            width = max(len(ids) for ids, _ in batch)
            ids = torch.full((len(batch), width), tok.pad_token_id, dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, (x, y) in enumerate(batch):
                ids[r, :len(x)], labels[r, :len(y)], mask[r, :len(x)] = torch.tensor(x), torch.tensor(y), 1
            start = time.perf_counter()
            with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=autocast):
                loss = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            seconds += time.perf_counter() - start
            tokens += int(mask.sum())
            losses.append(loss.item())
    model.eval()
    return LoopResult(model, losses, tokens, seconds, "fp32 weights" + (" + bf16 autocast" if autocast else ""))


# ---- classification with the project's scorer, in every label-scoring variant -------------

SCORINGS = ("sum", "mean", "sum+end", "mean+end")


def classify(model: Any, tokenizer: Any, task: Task, examples: Sequence[Example], *, device: str = "cpu",
             batch_size: int = 16) -> dict[str, list[str]]:
    """Predicted labels per scoring variant: the label's summed or mean token log-probability,
    without or with the end-of-turn marker appended to each label (one scorer pass)."""
    from .generate import score_continuations
    from .prompts import end_of_answer, render_prompt

    spec = task.spec
    words = [spec.verbalise(label) for label in spec.labels]
    end = end_of_answer(tokenizer, spec)
    prompts = [render_prompt(tokenizer, spec, e.input) for e in examples]
    res = score_continuations(model, tokenizer, prompts, words + [w + end for w in words], batch_size=batch_size,
                              device=device)
    k = len(words)
    plain, ended = res.logprob_sum[:, :k], res.logprob_sum[:, k:]
    scores = {"sum": plain, "mean": plain / res.n_tokens[None, :k],
              "sum+end": ended, "mean+end": ended / res.n_tokens[None, k:]}
    return {name: [spec.labels[int(i)] for i in s.argmax(1)] for name, s in scores.items()}


def summarise(preds: Sequence[str], examples: Sequence[Example], majority: str) -> dict[str, Any]:
    from .metrics import get_metric
    from .stats import bootstrap

    refs = [list(e.targets) for e in examples]
    out = {}
    for name in ("accuracy", "macro_f1"):
        est = bootstrap(get_metric(name), preds, refs, seed=0)
        out[name] = (round(est.value, 3), round(est.low, 3), round(est.high, 3))
    out["majority_share"] = round(sum(p == majority for p in preds) / max(1, len(preds)), 3)
    return out


def majority_label(task: Task) -> str:
    from collections import Counter

    return Counter(e.target for e in task.split("train")).most_common(1)[0][0]


def paired(preds_a: Sequence[str], preds_b: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
    """a - b: McNemar's exact p for accuracy, paired-bootstrap difference and p for macro-F1."""
    from .metrics import get_metric
    from .stats import mcnemar, paired_bootstrap

    refs = [list(e.targets) for e in examples]
    ca = [p in r for p, r in zip(preds_a, refs)]
    cb = [p in r for p, r in zip(preds_b, refs)]
    f1 = paired_bootstrap(get_metric("macro_f1"), preds_a, preds_b, refs, seed=0)
    return {"acc_diff": round(float(np.mean(ca) - np.mean(cb)), 3), "acc_p_mcnemar": round(mcnemar(ca, cb), 4),
            "f1_diff": round(f1.difference, 3), "f1_low": round(f1.low, 3), "f1_high": round(f1.high, 3),
            "f1_p": round(f1.p_value, 4)}


# ---- the arm, driven as a suite run would ---------------------------------------------------

def arm_train(lm: Any, suite: Suite, task: Task, spec_kw: dict[str, Any], seed: int = 0, log=print,
              retrain: bool = True):
    """Train the arm's variant on `task` exactly as a suite run would (retrained unless `retrain` is
    False: then a model of the same cache key, trained by an earlier run, is used as a suite run would);
    returns (the trained LoadedModel, its TrainingCosts)."""
    from .arms import suite_context
    from .arms.finetune import FinetuneArm
    from .config import FinetuneArm as Spec

    arm = FinetuneArm(Spec(**{"arm": "finetune", "name": "parity", **spec_kw}))
    ctx = suite_context(suite, lambda: lm, batch_size=16, retrain=retrain, log=log)
    trained = arm.trained(ctx, task)
    return trained.model, trained.costs


ARM_DEFAULTS = dict(method="lora", rank=16, alpha=32, dropout=0.05, learning_rate=3e-4, batch_size=8, epochs=2,
                    warmup_ratio=0.0, max_length=512)


def run_parity(lm: Any, suite: Suite, *, train: int | None = None, validation: int | None = None,
               test: int | None = None, epochs: int = 2, scoring: str = "sum", seed: int = 0, log=print,
               arm_overrides: dict[str, Any] | None = None, training_seed: int | None = None,
               tasks: Sequence[str] = ("imbalanced", "clause_type"), reuse: bool = False,
               saved: list[SavedParity] | None = None) -> list[dict[str, Any]]:
    """The arm (its defaults, with ARM_DEFAULTS' hyperparameters) and the reference loop on the
    imbalanced task and on clause_type: per task, one row per (trainer, scoring); `scoring` 'all'
    reports every label scoring of SCORINGS from the same trained models. `training_seed` seeds
    both trainers' randomness (adapter init, order, dropout) in place of `seed`, which still draws
    the subsamples: the same examples, another training run. `reuse`: the arm's model from the
    adapter cache when an earlier run trained the same key (the loop always trains). Each task's
    test predictions are appended to `saved` when given (for `pool_seeds`)."""
    rows = []
    for name in tasks:
        base = imbalanced_clause_task(suite, seed) if name == "imbalanced" else suite.tasks[name]
        task = subsample(base, {"train": train, "validation": validation, "test": test}, seed)
        test_rows, major = task.split("test"), majority_label(task)
        kw = {**ARM_DEFAULTS, "epochs": epochs, **(arm_overrides or {})}
        if training_seed is not None:
            kw["training_seed"] = training_seed
        start = time.perf_counter()
        model, costs = arm_train(lm, suite, task, kw, seed, log, retrain=not reuse)
        arm_s = time.perf_counter() - start
        arm_preds = classify(model.model, lm.tokenizer, task, test_rows, device=lm.device)
        del model
        start = time.perf_counter()
        ref = reference_train(lm, task.spec, task.split("train"), rank=kw["rank"], alpha=kw["alpha"],
                              dropout=kw["dropout"], learning_rate=kw["learning_rate"], batch_size=kw["batch_size"],
                              epochs=epochs, max_length=kw["max_length"],
                              seed=seed if training_seed is None else training_seed)
        ref_s = time.perf_counter() - start
        ref_preds = classify(ref.model, lm.tokenizer, task, test_rows, device=lm.device)
        sizes = f"{len(task.split('train'))}/{len(task.split('validation'))}/{len(test_rows)}"
        if saved is not None:
            settings = {k: kw[k] for k in ("rank", "alpha", "dropout", "learning_rate", "batch_size", "max_length")}
            saved.append(SavedParity(task.name, sizes, seed if training_seed is None else training_seed,
                                     {**settings, "epochs": epochs, "suite_seed": seed},
                                     [e.id for e in test_rows], [list(e.targets) for e in test_rows], major,
                                     arm_preds, ref_preds))
        for how in (SCORINGS if scoring == "all" else (scoring,)):
            named = f" ({how})" if scoring == "all" else ""
            rows.append({"task": task.name, "trainer": "arm" + named, "sizes": sizes,
                         **summarise(arm_preds[how], test_rows, major), "tokens_per_s": costs.train_tokens_per_s,
                         "train_s": round(arm_s, 1), **paired(arm_preds[how], ref_preds[how], test_rows)})
            rows.append({"task": task.name, "trainer": "reference loop" + named, "sizes": sizes,
                         **summarise(ref_preds[how], test_rows, major), "tokens_per_s": round(ref.tokens_per_s, 1),
                         "train_s": round(ref_s, 1), "precision": ref.precision})
        log(markdown(rows))
    return rows


@dataclasses.dataclass(frozen=True)
class SavedParity:
    """One parity run's test predictions on one task (`--save`), for pooling over training seeds."""

    task: str
    sizes: str
    training_seed: int
    settings: dict[str, Any]
    """The hyperparameters both trainers used and the suite seed that drew the examples."""
    ids: list[str]
    refs: list[list[str]]
    majority: str
    arm: dict[str, list[str]]
    """Label scoring -> the arm's predicted labels, in the order of `ids`."""
    loop: dict[str, list[str]]


def save_parity(path: str, runs: Sequence[SavedParity]) -> None:
    import json
    from pathlib import Path

    Path(path).write_text(json.dumps([dataclasses.asdict(r) for r in runs], indent=1), encoding="utf-8")


def load_parity(path: str) -> list[SavedParity]:
    import json
    from pathlib import Path

    from .errors import DataError

    try:
        runs = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(runs, list) or not runs:
            raise ValueError("expected a non-empty list of runs")
        return [SavedParity(**r) for r in runs]
    except (OSError, ValueError, TypeError) as e:
        raise DataError(f"{path}: not a file written by `parity --save` ({type(e).__name__}: {e})") from e


def pool_seeds(runs: Sequence[SavedParity]) -> list[dict[str, Any]]:
    """Arm against loop over training seeds and test examples (bench.experiments.seed_stats): one
    row per (task, scoring) with both trainers' per-seed scores, their means and the seed-aware
    test of the difference. Runs of one task must share examples and settings."""
    from .errors import DataError
    from .experiments.seed_stats import seeds_and_examples
    from .metrics import get_metric

    rows = []
    for name in dict.fromkeys(r.task for r in runs):
        group = [r for r in runs if r.task == name]
        first = group[0]
        if any(r.ids != first.ids or r.settings != first.settings for r in group):
            raise DataError(f"parity --pool: the {name} runs differ in their test examples or settings; pool runs "
                            "that differ only in --training-seed")
        if len({r.training_seed for r in group}) < len(group):
            raise DataError(f"parity --pool: two {name} runs have the same training seed")
        for how in [h for h in SCORINGS if all(h in r.arm for r in group)]:
            row = {"task": name, "scoring": how, "sizes": first.sizes, "seeds": [r.training_seed for r in group]}
            for metric in ("accuracy", "macro_f1"):
                m = get_metric(metric)
                a, b = [r.arm[how] for r in group], [r.loop[how] for r in group]
                row[f"arm_{metric}"] = [round(m.aggregate(p, first.refs), 3) for p in a]
                row[f"loop_{metric}"] = [round(m.aggregate(p, first.refs), 3) for p in b]
                row[f"{metric}_test"] = dataclasses.asdict(seeds_and_examples(m, a, b, first.refs))
            rows.append(row)
    return rows


def pooled_markdown(rows: list[dict[str, Any]]) -> str:
    from .stats import format_p

    out = ["| task | scoring | seeds | arm accuracy per seed | loop accuracy per seed | arm minus loop, accuracy "
           "[95% CI] (p) | arm macro-F1 per seed | loop macro-F1 per seed | arm minus loop, macro-F1 [95% CI] (p) |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = []
        for metric in ("accuracy", "macro_f1"):
            t = r[f"{metric}_test"]
            cells += [" / ".join(f"{v:.3f}" for v in r[f"arm_{metric}"]),
                      " / ".join(f"{v:.3f}" for v in r[f"loop_{metric}"]),
                      f"{t['difference']:+.3f} [{t['low']:+.3f}, {t['high']:+.3f}] ({format_p(t['p_value'])})"]
        out.append(f"| {r['task']} | {r['scoring']} | {', '.join(map(str, r['seeds']))} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table. Paired differences: the arm minus the loop (parity), or a
    change minus the arm's defaults (--changes)."""
    def ci(v):
        return f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"

    out = ["| task | trainer | train/val/test | accuracy [95% CI] | macro-F1 [95% CI] | majority share | "
           "train tokens/s | train s | paired difference: accuracy (McNemar p) | paired difference: macro-F1 (p) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        vs = ((f"{r['acc_diff']:+.3f} (p={r['acc_p_mcnemar']:.3f})", f"{r['f1_diff']:+.3f} (p={r['f1_p']:.3f})")
              if "acc_diff" in r else ("", ""))
        out.append(f"| {r['task']} | {r['trainer']} | {r['sizes']} | {ci(r['accuracy'])} | {ci(r['macro_f1'])} | "
                   f"{r['majority_share']:.3f} | {r['tokens_per_s']:.0f} | {r['train_s']:.0f} | {vs[0]} | {vs[1]} |")
    return "\n".join(out)


def run_changes(lm: Any, suite: Suite, changes: Sequence[str], *, task_name: str = "imbalanced",
                train: int | None = None, validation: int | None = None, test: int | None = None, epochs: int = 2,
                scoring: str = "sum", seed: int = 0, log=print,
                arm_overrides: dict[str, Any] | None = None, reuse: bool = False) -> list[dict[str, Any]]:
    """The arm with ARM_DEFAULTS, then once per change ('key=value' of the FinetuneArm spec),
    each on the same examples: the single-change table. Each row is tested against the first.
    `reuse`: a row whose model an earlier run trained (same cache key) takes it from the cache, as
    a suite run would, instead of training it again (its train s is then the load time)."""
    base = imbalanced_clause_task(suite, seed) if task_name == "imbalanced" else suite.tasks[task_name]
    task = subsample(base, {"train": train, "validation": validation, "test": test}, seed)
    test_rows, major = task.split("test"), majority_label(task)
    sizes = f"{len(task.split('train'))}/{len(task.split('validation'))}/{len(test_rows)}"
    rows, first = [], {}
    for change in ["(arm defaults)", *changes]:
        kw = {**ARM_DEFAULTS, "epochs": epochs, **(arm_overrides or {})}
        # "a=1,b=2" is one row with both changes (the combination of single changes)
        for part in change.split(",") if "=" in change else ():
            key, value = part.split("=", 1)
            kw[key] = value
        start = time.perf_counter()
        model, costs = arm_train(lm, suite, task, kw, seed, log, retrain=not reuse)
        by_scoring = classify(model.model, lm.tokenizer, task, test_rows, device=lm.device)
        seconds = round(time.perf_counter() - start, 1)
        for how in (SCORINGS if scoring == "all" else (scoring,)):
            preds = by_scoring[how]
            row = {"task": task.name, "trainer": change + (f" ({how})" if scoring == "all" else ""), "sizes": sizes,
                   **summarise(preds, test_rows, major), "tokens_per_s": costs.train_tokens_per_s, "train_s": seconds}
            if how in first:  # every change is tested against the defaults under the same scoring
                row.update(paired(preds, first[how], test_rows))
            else:
                first[how] = preds
            rows.append(row)
            log(markdown(rows[-1:]))
        del model
    return rows


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", default="legal")
    p.add_argument("--model", default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--train", type=int, default=None, help="seeded train subsample (default: all)")
    p.add_argument("--validation", type=int, default=None, help="seeded validation subsample (default: all)")
    p.add_argument("--test", type=int, default=None, help="seeded test subsample (default: all)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--scoring", choices=(*SCORINGS, "all"), default="sum",
                   help="label scoring of the test predictions ('all': every one, from the same trained models)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--changes", nargs="*", default=None,
                   help="single-change table instead: the arm, then once per 'key=value' of the finetune spec "
                        "('k1=v1,k2=v2' changes both in one row)")
    p.add_argument("--task", default=None, help="only this task: imbalanced or a suite task (default: parity on "
                                             "both imbalanced and clause_type; --changes on imbalanced)")
    p.add_argument("--learning-rate", type=float, default=None, help="for both trainers (default: 3e-4)")
    p.add_argument("--dropout", type=float, default=None,
                   help="LoRA dropout for both trainers (default: 0.05); 0 leaves the same seed's two runs "
                        "nothing random that differs (same init, same examples per step)")
    p.add_argument("--training-seed", type=int, default=None,
                   help="seed both trainers' randomness with this instead of the suite seed (the subsamples stay "
                        "the suite seed's): the same examples, another training run")
    p.add_argument("--reuse-trained", action="store_true",
                   help="take the arm's model from the adapter cache where an earlier run trained the same key "
                        "(e.g. the defaults row of a parity run) instead of training it again; the loop always "
                        "trains")
    p.add_argument("--save", default=None, metavar="FILE",
                   help="parity: write each task's test predictions of both trainers to FILE (JSON) for --pool")
    p.add_argument("--pool", nargs="+", default=None, metavar="FILE",
                   help="no training: the arm against the loop over the training seeds of these --save files "
                        "(same examples and settings, one seed each) and the test examples together")


def run(args: argparse.Namespace) -> None:
    """Print the parity table (or, with --changes, the single-change table) as Markdown."""
    import torch

    from .models import load_model
    from .suites import load_suite

    if args.pool:
        print(pooled_markdown(pool_seeds([r for path in args.pool for r in load_parity(path)])))
        return
    if args.save and not Path(args.save).resolve().parent.is_dir():
        raise ConfigError(f"--save {args.save}: its folder does not exist")
    if args.threads:
        torch.set_num_threads(args.threads)
    suite = load_suite(args.suite)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    lm = load_model(args.model or suite.spec.model, device=device)
    sizes = {"train": args.train, "validation": args.validation, "test": args.test}
    overrides = {"learning_rate": args.learning_rate} if args.learning_rate else {}
    if args.dropout is not None:
        overrides["dropout"] = args.dropout
    if args.training_seed is not None and args.changes is not None:
        overrides["training_seed"] = args.training_seed  # every row of the single-change table
    common = {"epochs": args.epochs, "scoring": args.scoring, "seed": suite.spec.seed,
              "arm_overrides": overrides or None, **sizes}
    if args.changes is not None:
        rows = run_changes(lm, suite, args.changes, task_name=args.task or "imbalanced", reuse=args.reuse_trained,
                           **common)
    else:
        saved: list[SavedParity] = []
        rows = run_parity(lm, suite, tasks=[args.task] if args.task else ("imbalanced", "clause_type"),
                          training_seed=args.training_seed, reuse=args.reuse_trained, saved=saved, **common)
        if args.save:
            save_parity(args.save, saved)
    print(markdown(rows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.perf parity")
    add_arguments(parser)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
