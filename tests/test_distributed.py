"""`bench run` under `torchrun --nproc_per_node 2` on the CPU (gloo DDP) with a tiny random Llama:
the two processes train one model (the loss curve of one process with the same global batch),
only the main process writes the adapter, the run and its report, prediction runs once, and a
process that dies mid-training leaves no cache entry that looks complete.

This file is also the program torchrun starts (`python -m torch.distributed.run ... THIS_FILE
run SUITE ...`): `drive` wraps bench's command line with what the test reads back, one JSON file
per process and event, and, when asked, kills one process mid-training."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bench.arms import suite_context
from bench.config import FinetuneArm as Spec
from bench.store import read_json
from bench.suites import load_suite

HERE = Path(__file__).resolve()
PER_DEVICE_BATCH = 4
TRAIN_N = 24

FINETUNE = dict(arm="finetune", name="lora", method="lora", rank=4, alpha=8, dropout=0.0, epochs=2,
                learning_rate=3e-3, batch_size=PER_DEVICE_BATCH, batch_order="random", warmup_ratio=0.0,
                max_length=128, evals_per_epoch=3, select_on="last", patience=10)
"""batch_order random: length grouping sorts within groups of the sampler's batch, which is the
per-process batch under DDP, so its order differs from one process's by design; random order gives
two processes exactly the examples one process takes in a batch twice their size."""


def write_suite(root: Path, finetune: dict) -> Path:
    """A learnable two-label task (words typical of each colour) with a prompt and a fine-tune variant."""
    words = {"red": "apple cherry strawberry tomato ruby".split(), "blue": "sky ocean sapphire blueberry navy".split()}
    rng, rows = random.Random(0), []
    for split, n in (("train", TRAIN_N), ("validation", 6), ("test", 6)):
        for i in range(n):
            label = ["red", "blue"][i % 2]
            text = " ".join(rng.choice(words[label]) for _ in range(4))
            rows.append({"id": f"{split}-{i}", "text": text, "label": label, "split": split})
    (root / "data").mkdir(parents=True)
    (root / "data" / "toy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ft = "".join(f"    {k}: {v}\n" for k, v in finetune.items() if k not in ("arm", "name"))
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
    metrics: [accuracy]
arms:
  - arm: prompt
    name: zero-shot
  - arm: finetune
    name: {finetune['name']}
{ft}""")
    return root


def launch(tmp_path: Path, suite: Path, *, crash_at_step: int | None = None) -> subprocess.CompletedProcess:
    """`bench run SUITE` as two torchrun processes; `crash_at_step`: process 1 dies at that step."""
    env = {**os.environ, "TRIDENT_CACHE": str(tmp_path / "cache"), "TRIDENT_RESULTS": str(tmp_path / "results"),
           "DRIVER_EVENTS": str(tmp_path / "events"), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    if crash_at_step is not None:
        env["DRIVER_CRASH"] = f"1:{crash_at_step}"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(HERE),
           "run", str(suite), "--device", "cpu", "--dtype", "float32", "--n-boot", "20"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)


def events(tmp_path: Path, kind: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "events").glob(f"{kind}-*.json"))]


def train_in_one_process(tmp_path: Path, monkeypatch, tiny_lm, suite: Path):
    """The same fine-tune in one process, with a batch as large as both processes' together."""
    from bench.arms.finetune import FinetuneArm

    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "single-cache"))
    loaded = load_suite(str(suite / "suite.yaml"))
    ctx = suite_context(loaded, lambda: tiny_lm, batch_size=8)
    arm = FinetuneArm(Spec(**{**FINETUNE, "batch_size": 2 * PER_DEVICE_BATCH}))
    return arm.trained(ctx, loaded.tasks["colour"])


def test_two_processes_train_one_model_and_only_the_main_one_writes(tmp_path, monkeypatch, tiny_lm):
    suite = write_suite(tmp_path / "suite", FINETUNE)
    done = launch(tmp_path, suite)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    # one trained model: both processes end with the same weights after the same steps
    fits = {e["rank"]: e for e in events(tmp_path, "fit")}
    assert set(fits) == {0, 1}
    assert fits[0]["weights"] == pytest.approx(fits[1]["weights"], rel=1e-6)
    assert fits[0]["steps"] == fits[1]["steps"] == 2 * TRAIN_N // (2 * PER_DEVICE_BATCH)

    # ... whose loss curve is one process's with the same global batch
    (entry,) = [p for p in (tmp_path / "cache" / "adapters").iterdir() if not p.name.startswith(".")]
    curves = read_json(entry / "meta.json")["costs"]["loss_curves"]
    alone = train_in_one_process(tmp_path, monkeypatch, tiny_lm, suite)
    single = alone.costs.loss_curves
    assert alone.key == entry.name  # keyed by the global batch: one GPU at batch 8 reuses it, and vice versa
    # Training losses agree to rounding (the same examples make each step); validation losses a
    # little less (under DDP each process evaluates a shard of validation, gathered by Trainer).
    for kind, tolerance in (("train", 1e-4), ("validation", 2e-3)):
        assert [s for s, _ in curves[kind]] == [s for s, _ in single[kind]], kind
        assert [v for _, v in curves[kind]] == pytest.approx([v for _, v in single[kind]], rel=tolerance), kind

    # only the main process predicts (each cell once) and writes the run, which is complete
    predicted = events(tmp_path, "predict")
    assert sorted((e["rank"], e["arm"]) for e in predicted) == [(0, "lora"), (0, "zero-shot")]
    (run_dir,) = (tmp_path / "results" / "toy").iterdir()
    assert read_json(run_dir / "run.json")["status"] == "complete"
    assert (run_dir / "report.md").is_file()
    assert (entry / "COMPLETE").is_file()
    assert not list((tmp_path / "cache" / "adapters").glob(".tmp-*"))  # no second writer left a copy


def test_a_process_dying_mid_training_leaves_no_entry_that_looks_complete(tmp_path):
    suite = write_suite(tmp_path / "suite", FINETUNE)
    done = launch(tmp_path, suite, crash_at_step=2)
    assert done.returncode != 0
    assert [e["step"] for e in events(tmp_path, "crash")] == [2]  # it died where it was told to
    adapters = tmp_path / "cache" / "adapters"
    assert not list(adapters.glob("*/COMPLETE"))
    assert not list(adapters.glob("[!.]*"))  # no entry at all, only the lock and resumable checkpoints
    assert not list(adapters.glob(".tmp-*"))
    assert not events(tmp_path, "predict")
    runs = list((tmp_path / "results").glob("toy/*/run.json"))
    assert all(read_json(r)["status"] != "complete" for r in runs)


def test_the_trained_models_key_holds_the_global_batch_not_how_it_is_split(monkeypatch):
    from bench.arms.finetune import FinetuneArm

    def key(processes=1, **settings):
        monkeypatch.setenv("WORLD_SIZE", str(processes))
        return FinetuneArm(Spec(**{**FINETUNE, **settings}))._spec_key()

    assert key(batch_size=8) == key(batch_size=4, grad_accum=2) == key(processes=2, batch_size=4)
    assert key(batch_size=8) != key(batch_size=4) != key(processes=2, batch_size=8)
    grouped = {"batch_order": "length_grouped"}
    assert key(batch_size=8, **grouped) == key(batch_size=4, grad_accum=2, **grouped)
    assert key(batch_size=8, **grouped) != key(processes=2, batch_size=4, **grouped)  # sorted in groups of 4


@pytest.mark.parametrize("launch_config, refused", [
    ({"fsdp": True}, "FSDP"), ({"zero_stage": 3}, "ZeRO-3"), ({"zero_stage": 2}, None), ({}, None)])
def test_launches_that_shard_the_weights_are_refused_before_training(launch_config, refused):
    """The main process caches its own copy of the weights: whole under DDP and ZeRO-1/2 only."""
    from types import SimpleNamespace

    from bench.errors import ConfigError
    from bench.training.trainer import _refuse_sharded_weights

    stage = launch_config.get("zero_stage")
    plugin = SimpleNamespace(deepspeed_config={"zero_optimization": {"stage": stage}}) if stage else None
    trainer = SimpleNamespace(accelerator=SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=plugin)),
                              is_fsdp_enabled=launch_config.get("fsdp", False))
    if refused is None:
        _refuse_sharded_weights(trainer)
    else:
        with pytest.raises(ConfigError, match=refused):
            _refuse_sharded_weights(trainer)


# ---- what torchrun starts: bench's command line, watched --------------------------------------------------------


def _record(kind: str, **fields) -> None:
    folder = Path(os.environ["DRIVER_EVENTS"])
    folder.mkdir(parents=True, exist_ok=True)
    rank = int(os.environ.get("RANK", "0"))
    n = len(list(folder.glob(f"{kind}-{rank}-*.json")))
    (folder / f"{kind}-{rank}-{n}.json").write_text(json.dumps({"rank": rank, **fields}))


def drive(argv: list[str]) -> int:
    import torch

    from bench.__main__ import main
    from bench.arms.finetune import FinetuneArm
    from bench.arms.prompt import PromptArm
    from bench.training import recipe, trainer

    fit_phases = recipe._fit_phases

    def watched_fit(*args, **kw):
        phases = fit_phases(*args, **kw)
        model = phases[-1].model
        weights = [float(p.detach().double().sum()) for p in model.parameters() if p.requires_grad]
        _record("fit", steps=phases[-1].steps, weights=weights)
        return phases

    recipe._fit_phases = watched_fit
    for arm in (FinetuneArm, PromptArm):
        arm.predict = _watched_predict(arm.predict)
    crash = os.environ.get("DRIVER_CRASH")
    if crash:
        trainer.StepTimer = _dying_timer(trainer.StepTimer, *map(int, crash.split(":")))
    torch.manual_seed(0)
    return main(argv)


def _watched_predict(predict):
    def watched(self, ctx, task, examples):
        _record("predict", arm=self.spec.name, task=task.name)
        return predict(self, ctx, task, examples)

    return watched


def _dying_timer(base, rank: int, step: int):
    class DyingTimer(base):
        """Kills its process outright (no exception, no cleanup: as the OOM killer would) at `step`."""

        def on_step_end(self, args, state, control, **kw):
            super().on_step_end(args, state, control, **kw)
            if int(os.environ.get("RANK", "0")) == rank and state.global_step == step:
                _record("crash", step=step)
                os._exit(17)

    return DyingTimer


if __name__ == "__main__":
    sys.exit(drive(sys.argv[1:]))
