"""The learning-curve experiment: nested seeded train sizes, the full size served by `bench run`'s own
cells, flat lines for variants without train data, every cell cached, the report rebuilt without a
model; and, on hand-made predictions, the smallest size at which one arm beats another after Holm's
correction over the sizes."""

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from test_finetune import toy_suite

from bench.__main__ import main
from bench.config import FinetuneArm, PromptArm, RagArm
from bench.errors import ConfigError
from bench.experiments.cells import CellRef, TaskInfo
from bench.experiments.curve_figures import CurveRecord, curve_result
from bench.experiments.learning_curve import (
    at_size,
    nested_train,
    parse_sizes,
    plan_curve,
    run_learning_curve,
    uses_train_data,
)
from bench.predictions import Prediction, ScoredPrediction
from bench.runner import RunOptions, run_suite
from bench.stats import Estimate
from bench.store import write_jsonl
from bench.suites import load_suite

ARMS = """  - arm: prompt
    name: zero-shot
  - arm: prompt
    name: 3-shot
    shots: 3
  - arm: rag
    name: rag-ex-k3
    mode: examples
    k: 3
  - arm: finetune
    name: lora
    method: lora
    rank: 4
    alpha: 8
    dropout: 0.0
    epochs: 1
    batch_size: 4
    max_length: 64
    evals_per_epoch: 1
"""


def options(root: Path, **kw) -> RunOptions:
    return RunOptions(results=root / "results", device="cpu", dtype="float32", batch_size=4, n_boot=100, **kw)


def quiet() -> Console:
    return Console(file=io.StringIO(), width=160)


def test_train_sizes_are_nested_seeded_subsets_and_only_train_is_cut(env):
    suite = load_suite(str(toy_suite(env / "s", n_train=20, n_val=4, n_test=6)))
    task = suite.tasks["colour"]
    small, large = nested_train(task, 4, seed=0), nested_train(task, 12, seed=0)
    assert len(small) == 4 and len(large) == 12 and set(small) < set(large)
    assert nested_train(task, 12, seed=0) == large  # seeded: the same draw every time
    assert nested_train(task, 12, seed=1) != large
    cut = at_size(suite, 4).tasks["colour"]
    assert cut.split("train") == small
    assert cut.split("validation") == task.split("validation") and cut.split("test") == task.split("test")
    assert at_size(suite, 20).tasks["colour"] is task  # no more than its split: untouched


def test_which_variants_use_train_data():
    assert not uses_train_data(PromptArm(arm="prompt", name="zero-shot"))
    assert uses_train_data(PromptArm(arm="prompt", name="k", shots=2))
    assert not uses_train_data(RagArm(arm="rag", name="rag"))
    assert uses_train_data(RagArm(arm="rag", name="ex", mode="examples"))
    assert uses_train_data(RagArm(arm="rag", name="on-ft", finetuned="lora"))
    assert uses_train_data(FinetuneArm(arm="finetune", name="lora"))


def test_sizes_are_parsed_and_bad_ones_refused():
    assert parse_sizes("32,16,all,16") == (16, 32)
    for bad in ("all", "0,all", "16,x", ""):
        with pytest.raises(ConfigError, match="--sizes"):
            parse_sizes(bad)


def test_the_curve_reuses_the_runs_cells_caches_every_cell_and_rebuilds(env, capsys):
    path = toy_suite(env / "s", n_train=12, n_val=4, n_test=8, arms=ARMS)
    run_dir = run_suite(str(path), options(env), quiet())
    run_keys = {(c["arm"], c["task"]): c["cache_key"] for c in json.loads((run_dir / "run.json").read_text())["cells"]}

    out, result = run_learning_curve(str(path), options(env), quiet(), parse_sizes("2,4,all"))
    full = {(c.arm, c.task): c for c in result.record.cells if c.group == "size-all"}
    assert {k: c.cache_key for k, c in full.items()} == run_keys  # the full size is `bench run`'s cells
    assert all(c.cached for c in full.values())
    smaller = [c for c in result.record.cells if c.group != "size-all"]
    assert {(c.arm, c.group) for c in smaller} == {("lora", "size-2"), ("3-shot", "size-4"),
                                                   ("rag-ex-k3", "size-4"), ("lora", "size-4")}
    # fewer train examples than its shots or k: not run at that size, and said so
    assert {(s.arm, s.size) for s in result.record.skipped} == {("3-shot", 2), ("rag-ex-k3", 2)}
    lora = {c.group: c for c in result.record.cells if c.arm == "lora"}
    assert (lora["size-2"].train_examples, lora["size-4"].train_examples, lora["size-all"].train_examples) == (2, 4, 12)
    assert result.record.flat == ("zero-shot",)
    # every pair with a variant that learns, tested at every size both ran at (zero-shot's one cell stands for all)
    pair = next(p for p in result.pairs if (p.a, p.b) == ("zero-shot", "lora"))
    assert [t.size for t in pair.tests] == [2, 4, 12]
    assert not any((p.a, p.b) == ("zero-shot", "zero-shot") for p in result.pairs)
    for name in ("report.md", "report.html", "plots/learning-curve-colour.png", "learning_curve.json"):
        assert (out / name).is_file()
    assert "not within the sizes tried" in (out / "report.md").read_text()

    again_dir, again = run_learning_curve(str(path), options(env), quiet(), parse_sizes("2,4,all"))
    assert all(c.cached for c in again.record.cells)  # a rerun recomputes nothing
    before = (again_dir / "learning_curve.json").read_text()
    (again_dir / "report.md").unlink()
    assert main(["report", str(again_dir)]) == 0  # no model: from the stored predictions
    assert (again_dir / "learning_curve.json").read_text() == before and (again_dir / "report.md").is_file()


def test_a_task_no_variant_learns_on_is_refused_when_asked(env):
    path = toy_suite(env / "s", n_train=12, arms="  - arm: prompt\n    name: zero-shot\n")
    with pytest.raises(ConfigError, match="uses train data"):
        plan_curve(str(path), options(env), (4,))


# ---- the verdict per pair, on hand-made predictions ---------------------------------------------

def _write(folder: Path, group: str, arm: str, right: int, n: int) -> CellRef:
    """A cell whose first `right` of `n` answers are correct."""
    rows = [ScoredPrediction(Prediction(id=f"t{i:03d}", prompt_hash="h", output="yes" if i < right else "no",
                                        references=("yes",), mode="loglik", latency_s=0.0, prompt_tokens=1,
                                        output_tokens=0)) for i in range(n)]
    write_jsonl(folder / group / "predictions" / arm / "t.jsonl", [r.to_record() for r in rows])
    return CellRef(arm, "t", group, f"{group}-{arm}", True, 0.0, None, None)


def _record(cells: list[CellRef], n: int) -> CurveRecord:
    floor = {"accuracy": Estimate(0.0, 0.0, 0.0, n)}
    return CurveRecord({"seed": 0}, {"t": TaskInfo("t", "classification", ("accuracy",), n, "majority", floor)},
                       {"t": 100}, (10, 30), ("learner",), ("flat",), (), tuple(cells))


def test_the_first_significant_size_is_found_after_holm_over_sizes(tmp_path):
    n = 60
    cells = [_write(tmp_path, "size-all", "flat", 20, n), _write(tmp_path, "size-10", "learner", 20, n),
             _write(tmp_path, "size-30", "learner", 24, n), _write(tmp_path, "size-all", "learner", 50, n)]
    result = curve_result(tmp_path, _record(cells, n), n_boot=200)
    (pair,) = result.pairs
    assert (pair.a, pair.b) == ("flat", "learner")
    assert [t.size for t in pair.tests] == [10, 30, 100]
    assert pair.b_from == 100 and pair.a_from is None  # +4 at 30 is not significant, +30 at all is
    assert "learner beats flat from 100 train examples" in pair.sentence()
    assert "flat beats learner: not within the sizes tried" in pair.sentence()


def test_a_win_at_one_size_that_holm_does_not_keep_is_not_claimed(tmp_path):
    n = 60
    # 6 answers right that the other gets wrong, none the other way: exact McNemar p = 0.031 at that size,
    # but three sizes were looked at: Holm makes it 0.094
    cells = [_write(tmp_path, "size-all", "flat", 20, n), _write(tmp_path, "size-10", "learner", 20, n),
             _write(tmp_path, "size-30", "learner", 26, n), _write(tmp_path, "size-all", "learner", 21, n)]
    (pair,) = curve_result(tmp_path, _record(cells, n), n_boot=200).pairs
    test = next(t for t in pair.tests if t.size == 30)
    assert test.p_value < 0.05 <= test.p_holm
    assert pair.a_from is None and pair.b_from is None
