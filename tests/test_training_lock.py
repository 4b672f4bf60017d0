"""One lock per trained-model key: two processes that need the same fine-tune at once train it
once; the second waits for the first (saying so) and then predicts with the entry it wrote."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from pathlib import Path

from test_distributed import FINETUNE, write_suite

from bench.training import artifacts


def _predict_in_child(cache: str, suite_dir: str, start: multiprocessing.synchronize.Barrier, out: str) -> None:
    """One process: train-or-load the suite's fine-tune and predict its test split, recording
    each training it starts (a line in `cache`/training-starts) and what it logged."""
    os.environ["TRIDENT_CACHE"] = cache
    from bench.arms import suite_context
    from bench.arms.finetune import FinetuneArm
    from bench.config import FinetuneArm as Spec
    from bench.models import load_model
    from bench.suites import load_suite
    from bench.training import recipe

    train = recipe.train

    def counted_train(*args, **kw):
        with open(Path(cache) / "training-starts", "a") as f:
            f.write(f"{os.getpid()}\n")
        return train(*args, **kw)

    recipe.train = counted_train
    suite = load_suite(suite_dir)
    lm = load_model("random:tiny-llama", device="cpu", dtype="float32", seed=0)
    logs: list[str] = []
    ctx = suite_context(suite, lambda: lm, batch_size=8, log=logs.append)
    task = suite.tasks["colour"]
    arm = FinetuneArm(Spec(**FINETUNE))
    start.wait(timeout=120)  # both ask for the model at the same moment
    result = arm.predict(ctx, task, task.split("test"))
    rows = [(p.id, p.output, p.label_scores) for p in result.predictions]
    Path(out).write_text(json.dumps({"predictions": rows, "logs": logs, "cache_hit": result.costs.cache_hit}))


def test_two_processes_needing_one_fine_tune_train_it_once(tmp_path):
    suite = write_suite(tmp_path / "suite", FINETUNE)
    cache = tmp_path / "cache"
    cache.mkdir()
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter each, as two `bench run`s would be
    start = spawn.Barrier(2)
    outs = [tmp_path / f"out-{i}.json" for i in range(2)]
    procs = [spawn.Process(target=_predict_in_child, args=(str(cache), str(suite), start, str(o))) for o in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    assert [p.exitcode for p in procs] == [0, 0]

    assert len((cache / "training-starts").read_text().splitlines()) == 1  # trained once
    first, second = sorted((json.loads(o.read_text()) for o in outs), key=lambda r: r["cache_hit"])
    assert (first["cache_hit"], second["cache_hit"]) == (False, True)
    waits = [line for line in second["logs"] if "waiting for another process" in line]
    assert len(waits) == 1 and not any("waiting" in line for line in first["logs"])
    assert first["predictions"] == second["predictions"]  # the same model, read whole
    assert len(list((cache / "adapters").glob("*/COMPLETE"))) == 1


def test_a_retrain_that_waited_takes_the_entry_finished_meanwhile(tmp_path, monkeypatch):
    """With --retrain, the model a process finished while this one waited is already retrained;
    an entry that was there before this process asked is not."""
    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))
    key = "k" * 20
    (artifacts.adapters_root() / key).mkdir(parents=True)
    (artifacts.adapters_root() / key / artifacts.MARKER).write_text("ok\n")
    with artifacts.claim(key, "lora", print) as waited_since:  # nobody else holds it
        assert waited_since is None
    assert not artifacts.completed_after(key, waited_since)

    holding, logs = threading.Event(), []

    def other_process():  # flock locks conflict between open files, so a thread stands in for a process
        with artifacts.claim(key, "lora", print):
            holding.set()
            time.sleep(0.5)
            (artifacts.adapters_root() / key / artifacts.MARKER).write_text("ok\n")  # it finished training

    other = threading.Thread(target=other_process)
    other.start()
    holding.wait(10)
    with artifacts.claim(key, "lora", logs.append) as waited_since:
        assert waited_since is not None
        assert artifacts.completed_after(key, waited_since)
    other.join()
    assert len(logs) == 1 and "lora: waiting for another process" in logs[0]
