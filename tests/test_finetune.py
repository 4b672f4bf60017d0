"""The fine-tuning arm on a tiny random Llama: learning, caching, reloading, early stopping,
resuming and the faults that must give a clear error (never a silently worse model)."""

import json
import math
from pathlib import Path

import pytest

from bench.arms import suite_context
from bench.config import FinetuneArm as Spec
from bench.models import load_model
from bench.suites import load_suite

COLOURS = {"red": "apple cherry strawberry tomato ruby", "blue": "sky ocean sapphire blueberry navy"}


def toy_suite(root: Path, n_train=24, n_val=6, n_test=8, contradicting_val=False, arms=None, extra="") -> Path:
    """A learnable two-label task: the input is a few words typical of its label."""
    import random

    rng = random.Random(0)
    rows = []
    for split, n in (("train", n_train), ("validation", n_val), ("test", n_test)):
        for i in range(n):
            label = ["red", "blue"][i % 2]
            words = COLOURS[label].split()
            text = " ".join(rng.choice(words) for _ in range(4))
            if contradicting_val and split == "validation":
                label = "blue" if label == "red" else "red"
            rows.append({"id": f"{split}-{i}", "text": text, "label": label, "split": split})
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "toy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    arms = arms or "  - arm: prompt\n    name: zero-shot\n"
    (root / "suite.yaml").write_text(f"""name: toy
model: random:tiny-llama
seed: 0
tasks:
  - name: colour
    kind: classification
    data:
      file: data/toy.jsonl
    input_field: text
    target_field: label
    labels: [red, blue]
    instruction: Which colour do these things have?
    input_prefix: Things
    metrics: [accuracy]
{extra}arms:
{arms}""")
    return root / "suite.yaml"


@pytest.fixture(scope="module")
def tiny():
    return load_model("random:tiny-llama", device="cpu", dtype="float32", seed=0)


def make_ctx(suite, lm, retrain=False, logs=None):
    return suite_context(suite, lambda: lm, batch_size=8, retrain=retrain,
                         log=(logs.append if logs is not None else (lambda m: None)))


def records(result):
    """An ArmResult's predictions and costs as the flat records run files hold."""
    return [p.to_record() for p in result.predictions], result.costs.to_record()


def trained_costs(arm):
    """The training costs of the (only) model the arm holds in memory, as a record."""
    (trained,) = arm._trained.values()
    return {**trained.costs.to_record(), "cache_hit": trained.cache_hit}


def spec(**kw):
    base = dict(arm="finetune", name="lora", method="lora", rank=8, alpha=16, dropout=0.0, epochs=4,
                learning_rate=3e-3, batch_size=8, warmup_ratio=0.0, patience=3, max_length=128, evals_per_epoch=1)
    return Spec(**{**base, **kw})


def arm_for(s):
    from bench.arms.finetune import FinetuneArm

    return FinetuneArm(s)


def test_lora_loss_falls_and_the_adapter_reloads_with_identical_predictions(env, tiny):
    from peft import PeftModel

    suite = load_suite(str(toy_suite(env / "s")))
    task = suite.tasks["colour"]
    before = {n: p.clone() for n, p in tiny.model.state_dict().items()}
    arm = arm_for(spec())
    rows, costs = records(arm.predict(make_ctx(suite, tiny), task, task.split("test")))
    curve = [loss for _, loss in costs["loss_curves"]["train"]]
    assert curve[-1] < curve[0]
    assert costs["cache_hit"] is False and costs["trainable_params"] < costs["total_params"]
    assert costs["train_tokens"] > 0 and costs["train_tokens_per_s"] > 0 and costs["artifact_bytes"] > 0
    # the shared base model is untouched
    assert all((p == before[n]).all() for n, p in tiny.model.state_dict().items())
    # standard PEFT format
    path = env / "cache" / "adapters" / costs["artifact"]
    assert (path / "adapter_config.json").is_file() and (path / "adapter_model.safetensors").is_file()
    import copy
    PeftModel.from_pretrained(copy.deepcopy(tiny.model), str(path))
    again = arm_for(spec())
    rows2, costs2 = records(again.predict(make_ctx(suite, tiny), task, task.split("test")))
    assert costs2["cache_hit"] is True
    assert [r["output"] for r in rows] == [r["output"] for r in rows2]
    assert [r["label_scores"] for r in rows] == [r["label_scores"] for r in rows2]


def test_a_cache_hit_skips_training_and_retrain_forces_it(env, tiny, monkeypatch):
    import bench.training.trainer as tr

    suite = load_suite(str(toy_suite(env / "s")))
    task = suite.tasks["colour"]
    arm_for(spec(epochs=1)).trained_model(make_ctx(suite, tiny), task)
    calls = []
    real_fit = tr.fit
    monkeypatch.setattr(tr, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    arm_for(spec(epochs=1)).trained_model(make_ctx(suite, tiny), task)
    assert calls == []
    arm_for(spec(epochs=1)).trained_model(make_ctx(suite, tiny, retrain=True), task)
    assert calls == [1]


def test_head_learns_a_separable_task(env, tiny):
    suite = load_suite(str(toy_suite(env / "s", n_train=40, n_val=10, n_test=20)))
    task = suite.tasks["colour"]
    arm = arm_for(spec(name="head", method="head", learning_rate=1e-2))
    rows, costs = records(arm.predict(make_ctx(suite, tiny), task, task.split("test")))
    acc = sum(r["output"] == r["references"][0] for r in rows) / len(rows)
    assert acc >= 0.9
    assert costs["trainable_params"] == 2 * 64 + 2
    with pytest.raises(Exception, match="not a language model"):
        arm.trained_model(make_ctx(suite, tiny), task)


def test_early_stopping_triggers_when_validation_gets_worse(env, tiny):
    suite = load_suite(str(toy_suite(env / "s", contradicting_val=True)))
    task = suite.tasks["colour"]
    # A rate high enough that validation loss rises within a few evaluations whatever the tiny
    # model's random init (which moves with the transformers version: at 3e-3 the loss of
    # transformers 5.24's init still fell after 30 epochs, and nothing stopped early).
    arm = arm_for(spec(epochs=30, patience=1, evals_per_epoch=2, learning_rate=3e-2, select_on="loss"))
    arm.trained_model(make_ctx(suite, tiny), task)
    c = trained_costs(arm)
    assert c["stopped_early"] and c["steps"] < c["max_steps"]
    assert c["best_step"] is not None and c["best_step"] < c["steps"]


def test_an_interrupted_training_resumes_from_its_last_checkpoint(env, tiny):
    from transformers import TrainerCallback

    import bench.training.trainer as tr
    from bench.training.sft import encode_task

    suite = load_suite(str(toy_suite(env / "s")))
    task = suite.tasks["colour"]
    rows = encode_task(tiny.tokenizer, task.spec, task.split("train"), 128)
    val = encode_task(tiny.tokenizer, task.spec, task.split("validation"), 128)
    cfg = tr.TrainConfig(spec(epochs=4, batch_size=8, learning_rate=1e-3, patience=10, evals_per_epoch=1))
    out = env / "work"

    class Crash(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            if state.global_step >= 6:
                raise KeyboardInterrupt

    model = tr.prepare_model(tiny.model, cfg, "cpu")
    real_build = tr._build

    def build_with_crash(*a, **k):
        trainer, timer = real_build(*a, **k)
        trainer.add_callback(Crash())
        return trainer, timer

    tr._build = build_with_crash
    try:
        with pytest.raises(KeyboardInterrupt):
            tr.fit(model, tiny.tokenizer, rows, val, cfg, out, device="cpu")
    finally:
        tr._build = real_build
    assert tr.last_good_checkpoint(out) is not None
    logs = []
    res = tr.fit(tr.prepare_model(tiny.model, cfg, "cpu"), tiny.tokenizer, rows, val, cfg, out, device="cpu",
                 log=logs.append)
    assert res.resumed_from == "checkpoint-6" and res.steps == res.max_steps == 12
    assert any("resuming" in m for m in logs)


def test_faults_give_one_clear_error(env, tiny):
    from bench.errors import BenchError

    suite = load_suite(str(toy_suite(env / "s", n_train=1)))
    task = suite.tasks["colour"]
    with pytest.raises(BenchError, match="at least 2"):
        arm_for(spec()).trained_model(make_ctx(suite, tiny), task)
    suite = load_suite(str(toy_suite(env / "t")))
    task = suite.tasks["colour"]
    with pytest.raises(BenchError, match="CUDA"):
        arm_for(spec(method="qlora")).trained_model(make_ctx(suite, tiny), task)


def test_nan_loss_stops_with_a_clear_error_and_caches_nothing(env, tiny, monkeypatch):
    import bench.training.trainer as tr
    from bench.errors import TrainingError

    suite = load_suite(str(toy_suite(env / "s")))
    task = suite.tasks["colour"]
    real = tr.prepare_model

    def poisoned(*a, **k):
        m = real(*a, **k)
        m.get_base_model().model.norm.register_forward_hook(lambda mod, i, o: o * math.nan)
        return m

    monkeypatch.setattr(tr, "prepare_model", poisoned)
    with pytest.raises(TrainingError, match="nan"):
        arm_for(spec()).trained_model(make_ctx(suite, tiny), task)
    adapters = Path(env / "cache" / "adapters")
    assert not any((p / "COMPLETE").is_file() for p in adapters.iterdir() if not p.name.startswith("."))


def test_out_of_memory_halves_the_batch_and_keeps_the_effective_batch(env, tiny, monkeypatch):
    import torch

    import bench.training.trainer as tr

    suite = load_suite(str(toy_suite(env / "s")))
    task = suite.tasks["colour"]
    real_train = tr._Trainer.train
    state = {"n": 0}

    def flaky(self, *a, **k):
        state["n"] += 1
        if state["n"] == 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_train(self, *a, **k)

    monkeypatch.setattr(tr._Trainer, "train", flaky)
    logs = []
    arm = arm_for(spec(epochs=1, micro_batch_size=8))  # one pass of 8 examples a step, halved to two of 4
    arm.trained_model(make_ctx(suite, tiny, logs=logs), task)
    c = trained_costs(arm)
    assert (c["batch_size"], c["grad_accum"]) == (4, 2)
    assert any("out of memory" in m and "grad_accum 2" in m for m in logs)


def test_multi_task_scope_trains_one_model_and_knowledge_injection_runs(env, tiny):
    root = env / "s"
    (root / "corpus").mkdir(parents=True)
    doc = {"id": "d1", "title": "Colours", "text": "Apples and cherries are red. The sky is blue. " * 4}
    (root / "corpus" / "docs.jsonl").write_text(json.dumps(doc) + "\n")
    extra = """  - name: colour2
    kind: classification
    data:
      file: data/toy.jsonl
    input_field: text
    target_field: label
    labels: [red, blue]
    instruction: Name the colour of these things.
    metrics: [accuracy]
corpus:
  files: [corpus/docs.jsonl]
"""
    suite = load_suite(str(toy_suite(root, extra=extra)))
    arm = arm_for(spec(scope="multi_task", epochs=1, knowledge="before"))
    ctx = make_ctx(suite, tiny)
    a = arm.trained_model(ctx, suite.tasks["colour"])
    b = arm.trained_model(ctx, suite.tasks["colour2"])
    assert a is b and len(arm._trained) == 1
    costs = trained_costs(arm)
    assert costs["tasks_trained"] == ["colour", "colour2"] and costs["train_examples"] == 48
    assert costs["loss_curves"]["corpus"]
    mixed = arm_for(spec(epochs=1, knowledge="mixed"))
    mixed.trained_model(ctx, suite.tasks["colour"])
    assert trained_costs(mixed)["cache_hit"] is False


def test_the_in_training_metric_samples_every_label_of_a_label_grouped_file():
    """Legal's validation rows are grouped by label: the first 48 of 84 cover 7 of 12 labels, so
    the metric during training must be a seeded sample, not the file's first rows."""
    from bench.data import Example
    from bench.training.recipe import metric_subset

    val = [Example(id=f"v{i:03d}", input="x", targets=(f"label{i // 7}",), split="validation") for i in range(84)]
    picked = metric_subset(val, 48, seed=0, task="clause_type")
    assert len(picked) == 48 and len({e.id for e in picked}) == 48
    assert len({e.targets[0] for e in picked}) == 12
    assert picked == metric_subset(val, 48, seed=0, task="clause_type")   # seeded: the same every run
    assert picked != metric_subset(val, 48, seed=1, task="clause_type")
    assert metric_subset(val[:10], 48, seed=0, task="clause_type") == val[:10]


def test_lora_adapters_start_from_the_run_seed_whatever_ran_before(tiny):
    """The same variant must train the same adapters however much of the global generator the
    arms before it used."""
    import torch

    from bench.training.trainer import TrainConfig, prepare_model

    inits = []
    for state in (1, 2):
        torch.manual_seed(state)
        torch.rand(100)
        model = prepare_model(tiny.model, TrainConfig(spec(method="lora", rank=4, alpha=8), seed=0), "cpu")
        inits.append({n: p.detach().clone() for n, p in model.named_parameters() if "lora_A" in n})
    assert inits[0] and inits[0].keys() == inits[1].keys()
    assert all(torch.equal(inits[0][n], inits[1][n]) for n in inits[0])


def test_each_evaluation_logs_and_records_the_predicted_label_distribution(env, tiny):
    """A model collapsing onto one label is visible while it trains: every evaluation logs the
    metric with the predicted-label shares, and the training log keeps the top label's share."""
    suite = load_suite(str(toy_suite(env / "s")))
    task, logs = suite.tasks["colour"], []
    arm = arm_for(spec(epochs=2))
    arm.trained_model(make_ctx(suite, tiny, logs=logs), task)
    lines = [m for m in logs if "evaluation on 6 validation examples of colour" in m]
    assert len(lines) == 2 and all("accuracy" in m and "predicted" in m for m in lines)
    shares = [h["eval_top_label_share"] for h in trained_costs(arm)["training_log"] if "eval_top_label_share" in h]
    assert len(shares) == 2 and all(0.5 <= s <= 1.0 for s in shares)    # 2 labels: the top one has at least half
    # the warning names the label when one label takes nearly every prediction
    from bench.training.recipe import _log_label_shares

    said = []
    top = _log_label_shares(said.append, "lora · colour", task, ["red"] * 19 + ["blue"], 0.5)
    assert top == 0.95 and "95% of predictions are 'red' (collapsing onto one label)" in said[0]


def test_micro_batches_change_how_a_step_runs_not_its_update(env, tiny):
    """In random order a step's batch runs as micro-batches of similar length whose gradients add
    up to the whole batch's (loss over the step's answer tokens): one step in micro-batches of 2
    leaves the adapters one padded pass of all 8 leaves, and logs the same loss."""
    import random

    import torch

    from bench.training.trainer import TrainConfig, fit, prepare_model

    rng = random.Random(0)
    rows = []
    for n in (6, 40, 9, 31, 12, 25, 7, 18):  # lengths that pad a lot in one pass
        ids = [rng.randrange(10, 200) for _ in range(n)]
        rows.append({"input_ids": ids, "labels": [-100] * (n - 3) + ids[-3:]})
    trained = {}
    for micro in (8, 2):
        cfg = TrainConfig(spec(epochs=1, micro_batch_size=micro, batch_order="random"), seed=0)
        res = fit(prepare_model(tiny.model, cfg, "cpu"), tiny.tokenizer, rows, None, cfg, env / f"micro{micro}",
                  device="cpu")
        assert (res.batch_size, res.grad_accum, res.steps) == (micro, 8 // micro, 1)
        weights = {n: p.detach().clone() for n, p in res.model.named_parameters() if "lora_B" in n}
        trained[micro] = (weights, [h["loss"] for h in res.history if "loss" in h])
    (one_pass, loss_one), (micro2, loss_micro) = trained[8], trained[2]
    assert loss_one == pytest.approx(loss_micro, rel=1e-5)
    assert any(w.abs().max() > 0 for w in one_pass.values())  # the step moved the adapters (B starts at 0)
    for name, w in one_pass.items():
        torch.testing.assert_close(micro2[name], w, rtol=1e-4, atol=1e-6)


def test_a_short_last_step_trains_each_example_once(env, tiny):
    """9 examples in steps of 8 run as micro-batches of 2: transformers' sampler would pad the
    last step (1 example, 4 micro-batches) with 3 repeats of the epoch's first examples; ours
    trains each example once an epoch, its full steps drawn as transformers draws them."""
    from transformers.trainer_pt_utils import BatchRebalanceSampler

    from bench.training.sampling import RandomStepSampler
    from bench.training.trainer import TrainConfig, fit, prepare_model

    lengths = [5, 9, 14, 6, 30, 11, 8, 21, 17]
    settings = dict(lengths=lengths, effective_batch_size=8, dp_size=1, grad_accum=4, drop_last=False, seed=3)
    ours, theirs = RandomStepSampler(**settings), BatchRebalanceSampler(**settings)
    for epoch in (0, 1):
        ours.set_epoch(epoch), theirs.set_epoch(epoch)
        batches = list(ours)
        assert len(batches) == len(ours) == 5 and len(batches[-1]) == 1
        assert sorted(i for b in batches for i in b) == list(range(9))         # each once
        assert batches[:4] == list(theirs)[:4]                                  # the full step unchanged
        assert sum(len(b) for b in theirs) == 12                               # what it replaces: 3 repeats
    rows = [{"input_ids": list(range(10, 10 + n)), "labels": list(range(10, 10 + n))} for n in lengths]
    cfg = TrainConfig(spec(epochs=1, micro_batch_size=2, batch_order="random"), seed=0)
    res = fit(prepare_model(tiny.model, cfg, "cpu"), tiny.tokenizer, rows, None, cfg, env / "tail", device="cpu")
    assert res.steps == 2 and res.train_tokens == sum(lengths)                 # no example trained twice
