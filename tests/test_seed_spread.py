"""The training-seed spread: the training seed reaches training and the cache keys (and the suite
seed keeps the keys a run always had), the experiment trains one model per seed and reuses `bench
run`'s cells at the suite seed, and the verdict counts training variance: on hand-made predictions,
seeds that each beat the other arm significantly but spread wider than the gap give no significant
verdict, and a gap larger than the seed noise does."""

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from test_finetune import toy_suite

from bench.__main__ import main
from bench.arms.finetune import FinetuneArm
from bench.config import FinetuneArm as FinetuneSpec
from bench.errors import ConfigError
from bench.experiments.cells import CellRef, TaskInfo
from bench.experiments.seed_figures import SeedRecord, seed_result, verdict
from bench.experiments.seed_spread import parse_seeds, plan_spread, run_seed_spread
from bench.experiments.seed_stats import seeds_and_examples
from bench.metrics import get_metric
from bench.predictions import Prediction, ScoredPrediction
from bench.runner import RunOptions, run_suite
from bench.stats import Estimate
from bench.store import write_jsonl
from bench.suites import load_suite

LORA = """  - arm: finetune
    name: lora
    method: lora
    rank: 4
    alpha: 8
    dropout: 0.1
    epochs: 1
    learning_rate: 0.01
    batch_size: 4
    max_length: 64
    evals_per_epoch: 1
"""
ARMS = "  - arm: prompt\n    name: zero-shot\n" + LORA + """  - arm: finetune
    name: lora-b
    method: lora
    rank: 4
    alpha: 8
    epochs: 1
    batch_size: 4
    max_length: 64
  - arm: rag
    name: rag-on-lora
    k: 1
    chunk_tokens: 32
    chunk_overlap: 4
    finetuned: lora
"""
CORPUS = "corpus:\n  files: [corpus.jsonl]\n"


def suite_with_corpus(root: Path, arms: str = ARMS) -> Path:
    path = toy_suite(root, n_train=12, n_val=4, n_test=8, arms=arms, extra=CORPUS)
    docs = [{"id": "red", "title": "Red", "text": "Apples, cherries and rubies are red."},
            {"id": "blue", "title": "Blue", "text": "The sky, the ocean and sapphires are blue."}]
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def options(root: Path, **kw) -> RunOptions:
    return RunOptions(results=root / "results", device="cpu", dtype="float32", batch_size=4, n_boot=100, **kw)


def quiet() -> Console:
    return Console(file=io.StringIO(), width=160)


# ---- the training seed ----------------------------------------------------------------------------

def _flat_keys(obj) -> set[str]:
    if isinstance(obj, dict):
        return set(obj) | {k for v in obj.values() for k in _flat_keys(v)}
    if isinstance(obj, list):
        return {k for v in obj for k in _flat_keys(v)}
    return set()


def test_the_training_seed_names_another_model_and_the_suite_seed_the_same_one(env, tiny_lm):
    from bench.arms import suite_context

    suite = load_suite(str(toy_suite(env / "s", n_train=8)))
    ctx, task = suite_context(suite, lambda: tiny_lm, batch_size=4), suite.tasks["colour"]

    def keys(**kw):
        arm = FinetuneArm(FinetuneSpec(arm="finetune", name="lora", **kw))
        return arm.cache_key(ctx, task), arm.artifact_key(ctx, tiny_lm, task), arm._config(ctx, tiny_lm).seed

    default, at_suite_seed, other = keys(), keys(training_seed=suite.spec.seed), keys(training_seed=7)
    assert "training_seed" not in _flat_keys(default[0])  # the key a run made before the setting existed
    assert default == at_suite_seed
    assert other[0] != default[0] and other[1] != default[1] and other[0]["training_seed"] == 7
    assert (default[2], other[2]) == (0, 7)  # what training is seeded with


def test_seeds_are_parsed_and_one_seed_is_refused():
    assert parse_seeds("2, 0,2") == (2, 0)
    for bad in ("1", "1,1", "a,b", "-1,2"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)


def test_variants_default_to_the_first_finetune_and_bad_ones_are_refused(env):
    path = suite_with_corpus(env / "s")
    plan = plan_spread(str(path), options(env), None, None)
    assert plan.seeds == (0, 1, 2) and plan.finetunes == ("lora",) and plan.seeded == ("lora", "rag-on-lora")
    assert plan.groups["fixed"] == [("zero-shot", "colour"), ("lora-b", "colour")]
    assert plan_spread(str(path), options(env), (0, 1), ["all"]).finetunes == ("lora", "lora-b")
    with pytest.raises(ConfigError, match="unknown fine-tune variant 'zero-shot'"):
        plan_spread(str(path), options(env), None, ["zero-shot"])
    with pytest.raises(ConfigError, match="no fine-tune variant"):
        plan_spread(str(toy_suite(env / "t")), options(env), None, None)


def test_each_seed_trains_its_own_model_and_the_suite_seed_reuses_the_run(env):
    path = suite_with_corpus(env / "s")
    run_dir = run_suite(str(path), options(env), quiet())
    run_keys = {(c["arm"], c["task"]): c["cache_key"] for c in json.loads((run_dir / "run.json").read_text())["cells"]}

    out, result = run_seed_spread(str(path), options(env), quiet(), seeds=(0, 1, 2))
    cells = {(c.arm, c.group): c for c in result.record.cells}
    for arm in ("lora", "rag-on-lora"):
        assert cells[(arm, "seed-0")].cache_key == run_keys[(arm, "colour")] and cells[(arm, "seed-0")].cached
        assert len({cells[(arm, f"seed-{s}")].cache_key for s in (0, 1, 2)}) == 3
        assert not cells[(arm, "seed-1")].cached
    assert cells[("zero-shot", "fixed")].cache_key == run_keys[("zero-shot", "colour")]
    adapters = [d for d in (env / "cache" / "adapters").iterdir() if (d / "COMPLETE").is_file()]
    assert len(adapters) == 4  # lora at seeds 0, 1, 2, and lora-b once
    scores = [[r.prediction.label_scores for r in cells[("lora", f"seed-{s}")].predictions(out)] for s in (0, 1, 2)]
    assert scores[0] != scores[1] and scores[1] != scores[2]  # really different models
    spread = result.spread_of("lora", "colour")
    assert spread.seeds == (0, 1, 2) and spread.low <= spread.mean <= spread.high
    assert {(c.arm, c.other) for c in result.comparisons} == {
        ("lora", "zero-shot"), ("lora", "lora-b"), ("lora", "rag-on-lora"), ("rag-on-lora", "zero-shot"),
        ("rag-on-lora", "lora-b")}
    assert "lora-b was trained once" in verdict(result, next(c for c in result.comparisons if c.other == "lora-b"))
    for name in ("report.md", "report.html", "plots/seed-spread-colour.png", "seed_spread.json"):
        assert (out / name).is_file()

    again_dir, again = run_seed_spread(str(path), options(env), quiet(), seeds=(0, 1, 2))
    assert all(c.cached for c in again.record.cells)  # a rerun recomputes nothing
    before = (again_dir / "seed_spread.json").read_text()
    (again_dir / "report.html").unlink()
    assert main(["report", str(again_dir)]) == 0  # no model: from the stored predictions
    assert (again_dir / "seed_spread.json").read_text() == before and (again_dir / "report.html").is_file()


# ---- the verdict, on hand-made predictions ---------------------------------------------------------

N = 400


def _cell(folder: Path, arm: str, group: str, right: int) -> CellRef:
    """A cell whose first `right` of N answers are correct (so a better cell is right wherever a worse one is)."""
    rows = [ScoredPrediction(Prediction(id=f"t{i:03d}", prompt_hash="h", output="yes" if i < right else "no",
                                        references=("yes",), mode="loglik", latency_s=0.0, prompt_tokens=1,
                                        output_tokens=0)) for i in range(N)]
    write_jsonl(folder / group / "predictions" / arm / "t.jsonl", [r.to_record() for r in rows])
    return CellRef(arm, "t", group, f"{group}-{arm}", True, 0.0, None, None)


def _result(folder: Path, seed_scores: list[int], other: int):
    cells = [_cell(folder, "ft", f"seed-{s}", right) for s, right in enumerate(seed_scores)]
    cells.append(_cell(folder, "prompt", "fixed", other))
    info = TaskInfo("t", "classification", ("accuracy",), N, "majority", {"accuracy": Estimate(0.5, 0.45, 0.55, N)})
    record = SeedRecord({"seed": 0}, {"t": info}, tuple(range(len(seed_scores))), ("ft",), tuple(cells))
    result = seed_result(folder, record, n_boot=500)
    (comparison,) = result.comparisons
    return result, comparison


def test_seed_noise_larger_than_the_gap_is_not_significant_though_every_seed_is(tmp_path):
    # the prompt arm gets 240 of 400 right; the fine-tune's seeds 280, 300 and 380: each seed's McNemar
    # test is far below 0.05, but seeds 0.70 to 0.95 apart cannot pin down a 0.2 gap with three of them
    result, c = _result(tmp_path, [280, 300, 380], 240)
    assert c.every_seed_significant and c.weakest_p < 1e-6
    assert c.seed_aware.difference == pytest.approx(0.2) and c.p_holm >= 0.05 and c.seed_aware.low < 0
    assert c.seed_aware.df < 5  # the seeds' variance dominates: about the seeds' two degrees of freedom
    text = verdict(result, c)
    assert text.startswith("Each seed's paired test puts ft ahead of prompt") and "not significant" in text
    assert "spread wider" in text


def test_a_gap_larger_than_the_seed_noise_holds(tmp_path):
    result, c = _result(tmp_path, [320, 322, 324], 240)
    assert c.p_holm < 0.001 and c.seed_aware.low > 0.15
    assert verdict(result, c).startswith("ft beats prompt") and "holds against training variance" in verdict(result, c)
    assert c.seed_aware.df > 100  # the seeds agree: it is the usual test over examples


def test_a_corpus_level_metric_is_resampled_whole():
    refs = [["a"], ["b"]] * 30
    good = ["a", "b"] * 30
    half = ["a", "a"] * 30
    test = seeds_and_examples(get_metric("macro_f1"), [good, good], [half], refs, n_boot=200)
    assert test.difference == pytest.approx(1.0 - get_metric("macro_f1").aggregate(half, refs))
    assert test.example_var > 0 and test.seed_var == 0 and test.p_value < 0.001
