"""Issue 18: the fine-tuning arm must learn past the majority class on imbalanced data; and the
parity module's task and reference loop (tiny random model, seconds)."""

import json
import math
import random
from collections import Counter
from pathlib import Path

from bench.arms import suite_context
from bench.config import FinetuneArm as Spec
from bench.suites import load_suite

WORDS = {"red": "apple cherry strawberry tomato ruby", "blue": "sky ocean sapphire blueberry navy",
         "green": "grass leaf lime frog emerald"}
SHARES = {"red": 0.6, "blue": 0.2, "green": 0.2}  # red is the majority label


def imbalanced_suite(root: Path, n_train: int = 40, n_test: int = 10) -> Path:
    rng = random.Random(0)
    rows = []
    for split, n in (("train", n_train), ("test", n_test)):
        labels = [l for l, share in SHARES.items() for _ in range(round(share * n))]
        rng.shuffle(labels)
        for i, label in enumerate(labels):
            text = " ".join(rng.choice(WORDS[label].split()) for _ in range(4))
            rows.append({"id": f"{split}-{i}", "text": text, "label": label, "split": split})
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "toy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "suite.yaml").write_text("""name: toy-imbalanced
model: random:tiny-llama
seed: 0
tasks:
  - name: colour
    kind: classification
    data:
      file: data/toy.jsonl
    input_field: text
    target_field: label
    labels: [red, blue, green]
    label_text: {red: R, blue: B, green: G}
    instruction: Which colour do these things have?
    input_prefix: Things
    metrics: [accuracy]
arms:
  - arm: prompt
    name: zero-shot
""")
    return root / "suite.yaml"


def label_loss(lm, task, examples) -> float:
    """Mean over examples of -log P(true label | prompt, one of the labels): the model's label
    distribution (each label's answer tokens and end-of-turn marker, renormalised over the label
    set) scored against the truth. A model that ignores the input does best by answering with the
    label prior: always the majority label, at the prior's confidence; its loss is the prior's
    entropy."""
    import numpy as np

    from bench.generate import score_continuations
    from bench.prompts import end_of_answer, render_prompt

    spec = task.spec
    end = end_of_answer(lm.tokenizer, spec)
    prompts = [render_prompt(lm.tokenizer, spec, e.input) for e in examples]
    res = score_continuations(lm.model, lm.tokenizer, prompts, [spec.verbalise(l) + end for l in spec.labels])
    s = res.logprob_sum
    logp = s - np.logaddexp.reduce(s, axis=1, keepdims=True)
    return float(-np.mean([logp[i, spec.labels.index(e.target)] for i, e in enumerate(examples)]))


def test_the_arm_learns_past_the_majority_label_on_an_imbalanced_task(env, tiny_lm):
    from bench.arms.finetune import FinetuneArm

    suite = load_suite(str(imbalanced_suite(env / "s")))
    task = suite.tasks["colour"]
    train = task.split("train")
    counts = Counter(e.target for e in train)
    assert counts.most_common(1)[0] == ("red", 24)
    # The best any model can do without reading the input: always the majority label, with the
    # label prior's confidence. Its loss per example is the entropy of the label distribution.
    prior_entropy = -sum(c / len(train) * math.log(c / len(train)) for c in counts.values())
    # Full fine-tuning through the arm's Trainer path (the same schedule, batch order, checkpoint
    # selection and loss as LoRA): on this 2-layer random model with a frozen random output head,
    # LoRA stays at the prior (~0.95 nats) in every setting tried (lr 3e-3 to 3e-2, up to 30
    # epochs, constant or linear, random or length-grouped order, with or without validation),
    # so it cannot tell a training-loop fault from the tiny model's capacity.
    spec = Spec(arm="finetune", name="full", method="full", epochs=20, learning_rate=1e-3, batch_size=8,
                warmup_ratio=0.0, max_length=128, patience=100, evals_per_epoch=1)
    ctx = suite_context(suite, lambda: tiny_lm, batch_size=8)
    arm = FinetuneArm(spec)
    trained = arm.trained_model(ctx, task)
    # the arm held out 15% of train for validation (this suite has none): measure on what it trained on
    fit_on = arm.task_data(ctx, task).train
    before, after = label_loss(tiny_lm, task, fit_on), label_loss(trained, task, fit_on)
    assert after < 0.85 * prior_entropy and prior_entropy < before, (before, after, prior_entropy)


def test_imbalanced_clause_task_merges_seven_labels_into_other():
    from bench.parity import KEEP, OTHER, imbalanced_clause_task

    suite = load_suite("legal")
    task = imbalanced_clause_task(suite)
    src = suite.tasks["clause_type"]
    assert task.spec.labels == list(KEEP) + [OTHER]
    for split in ("train", "validation", "test"):
        rows = task.split(split)
        assert [e.id for e in rows] == [e.id for e in src.split(split)]
        share = sum(e.target == OTHER for e in rows) / len(rows)
        assert 0.55 <= share <= 0.6


def test_the_parity_and_single_change_tables_pair_every_scoring(env, tiny_lm):
    """`python -m bench.perf parity` end to end on the toy task (1 epoch): every label scoring of
    the same trained models, the arm paired against the loop, a change against the defaults."""
    from bench.parity import SCORINGS, markdown, run_changes, run_parity

    suite = load_suite(str(imbalanced_suite(env / "s", n_train=16, n_test=6)))
    rows = run_parity(tiny_lm, suite, tasks=["colour"], epochs=1, scoring="all", log=lambda m: None)
    assert [r["trainer"] for r in rows] == [f"{t} ({s})" for s in SCORINGS for t in ("arm", "reference loop")]
    arm_rows = rows[::2]
    assert all({"acc_diff", "acc_p_mcnemar", "f1_p"} <= set(r) for r in arm_rows)     # arm minus loop
    assert all(r["sizes"] == "16/0/6" and 0 <= r["accuracy"][0] <= 1 for r in rows)
    changes = run_changes(tiny_lm, suite, ["lr_scheduler=constant,batch_order=random"], task_name="colour",
                          epochs=1, log=lambda m: None)
    assert [r["trainer"] for r in changes] == ["(arm defaults)", "lr_scheduler=constant,batch_order=random"]
    assert "acc_diff" not in changes[0] and "acc_diff" in changes[1]
    assert markdown(changes).count("\n") == len(changes) + 1


def test_a_training_seed_reseeds_both_trainers_and_keeps_the_examples(env, monkeypatch):
    """`--training-seed`: the arm's spec gets it, the loop gets it, and the subsamples stay the suite seed's."""
    import bench.parity as parity

    suite = load_suite(str(imbalanced_suite(env / "s", n_train=20, n_test=5)))
    seen = {}

    def fake_arm(lm, suite_, task, kw, seed, log, retrain=True):
        seen["arm"] = (kw.get("training_seed"), seed, [e.id for e in task.split("train")])
        return type("Trained", (), {"model": None})(), type("Costs", (), {"train_tokens_per_s": 1.0})()

    def fake_loop(lm, spec, examples, **kw):
        seen["loop"] = (kw["seed"], [e.id for e in examples])
        return parity.LoopResult(None, [], 1, 1.0, "fp32 weights")

    def fake_classify(model, tokenizer, task, examples, **kw):
        return {how: [task.spec.labels[0]] * len(examples) for how in parity.SCORINGS}

    monkeypatch.setattr(parity, "arm_train", fake_arm)
    monkeypatch.setattr(parity, "reference_train", fake_loop)
    monkeypatch.setattr(parity, "classify", fake_classify)
    lm = type("LM", (), {"tokenizer": None, "device": "cpu"})()
    parity.run_parity(lm, suite, tasks=["colour"], train=12, epochs=1, training_seed=7, log=lambda m: None)
    arm_seed, subsample_seed, arm_ids = seen["arm"]
    loop_seed, loop_ids = seen["loop"]
    assert (arm_seed, loop_seed, subsample_seed) == (7, 7, 0)
    assert arm_ids == loop_ids and len(arm_ids) == 12
    parity.run_parity(lm, suite, tasks=["colour"], train=12, epochs=1, log=lambda m: None)
    assert seen["arm"][0] is None and seen["loop"][0] == 0 and seen["arm"][2] == arm_ids


def _saved(seed, arm, loop, ids=("a", "b", "c", "d"), lr=1e-3):
    from bench.parity import SavedParity

    refs = [["x"], ["y"], ["x"], ["x"]]
    return SavedParity("clause_imbalanced", "8/2/4", seed, {"learning_rate": lr, "suite_seed": 0}, list(ids), refs,
                       "x", {"sum": arm}, {"sum": loop})


def test_saved_runs_pool_over_training_seeds_and_refuse_runs_that_differ(tmp_path):
    import pytest

    from bench.errors import DataError
    from bench.parity import load_parity, pool_seeds, pooled_markdown, save_parity

    path = tmp_path / "seed0.json"
    save_parity(str(path), [_saved(0, ["x", "y", "x", "x"], ["x", "x", "x", "x"])])
    runs = load_parity(str(path)) + [_saved(1, ["x", "y", "y", "x"], ["x", "y", "x", "y"])]
    (row,) = pool_seeds(runs)
    assert row["seeds"] == [0, 1] and row["scoring"] == "sum"
    assert row["arm_accuracy"] == [1.0, 0.75] and row["loop_accuracy"] == [0.75, 0.75]
    assert row["accuracy_test"]["difference"] == pytest.approx(0.125)
    assert "| clause_imbalanced | sum | 0, 1 | 1.000 / 0.750 | 0.750 / 0.750 | +0.125" in pooled_markdown([row])
    with pytest.raises(DataError, match="differ in their test examples or settings"):
        pool_seeds([runs[0], _saved(1, ["x"] * 4, ["x"] * 4, lr=3e-4)])
    with pytest.raises(DataError, match="same training seed"):
        pool_seeds([runs[0], runs[0]])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DataError, match="bad.json: not a file written by `parity --save`"):
        load_parity(str(tmp_path / "bad.json"))


def test_without_dropout_the_arm_and_the_loop_take_the_same_steps(env, tiny_lm):
    """Same seed, same examples, no dropout: nothing random differs between the two trainers (the
    loop draws the arm's order), so they must take the same steps: equal losses at every step and
    the same adapters after them, though the arm runs micro-batches with logits from the first
    answer position on and the loop one padded pass with logits everywhere."""
    import pytest
    import torch

    from bench.parity import reference_train
    from bench.training.sft import encode_task
    from bench.training.trainer import TrainConfig, fit, prepare_model

    task = load_suite(str(imbalanced_suite(env / "s", n_train=24))).tasks["colour"]
    examples = task.split("train")
    cfg = TrainConfig(Spec(arm="finetune", name="lora", method="lora", rank=4, alpha=8, dropout=0.0, epochs=1,
                           learning_rate=1e-3, batch_size=8, warmup_ratio=0.0, max_length=128), seed=0)
    arm = fit(prepare_model(tiny_lm.model, cfg, "cpu"), tiny_lm.tokenizer,
              encode_task(tiny_lm.tokenizer, task.spec, examples, 128), None, cfg, env / "arm", device="cpu",
              log=lambda m: None)
    loop = reference_train(tiny_lm, task.spec, examples, rank=4, alpha=8, dropout=0.0, learning_rate=1e-3,
                           batch_size=8, epochs=1, max_length=128, seed=0)
    assert arm.steps == len(loop.losses) == 3
    assert [h["loss"] for h in arm.history if "loss" in h] == pytest.approx(loop.losses, rel=1e-4)
    a, b = dict(arm.model.named_parameters()), dict(loop.model.named_parameters())
    names = [n for n in b if "lora_B" in n]
    assert names and all(b[n].abs().max() > 0 for n in names)
    moved = torch.sqrt(sum(((a[n] - b[n]) ** 2).sum() for n in names))
    assert moved / torch.sqrt(sum((b[n] ** 2).sum() for n in names)) < 1e-3
