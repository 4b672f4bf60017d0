"""The prompt-sensitivity experiment on a tiny suite and a tiny random Llama: paraphrases are
validated and change no cache key of a run; every arm is scored under each wording, the suite's
instruction reusing the run's own cells; a fine-tune is trained once and asked under each wording;
the spread and the verdicts come out right on synthetic scores; `bench report` rebuilds the report.
"""

import io
import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from rich.console import Console

from bench.__main__ import main
from bench.arms import build_arms, suite_context
from bench.config import SuiteError, TaskSpec, parse_suite_yaml
from bench.errors import ConfigError
from bench.experiments.borrowed_finetune import BorrowedFinetune, borrowed_arms, same_name_in
from bench.experiments.prompt_sensitivity import DEFAULT_TEST_LIMIT, plan_sensitivity, run_prompt_sensitivity, sized
from bench.experiments.sensitivity_figures import CellScore, arm_spread, task_sensitivity
from bench.results import list_runs
from bench.runner import RunOptions, run_suite
from bench.suites import load_suite

PARAPHRASES = ["What kind of clause is this?", "Label the clause by its purpose."]
LORA = {"arm": "finetune", "name": "lora", "method": "lora", "rank": 4, "alpha": 8, "dropout": 0.0, "epochs": 1,
        "batch_size": 4, "max_length": 96, "evals_per_epoch": 1, "holdout": 0.0}
ARMS = [{"arm": "prompt", "name": "zero-shot"}, {"arm": "prompt", "name": "1-shot", "shots": 1}, LORA]


def write_suite(root: Path, *, paraphrases=PARAPHRASES, arms=ARMS) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"c{i}", "text": f"clause {i} about {'money' if i % 2 else 'secrets'}",
             "label": "payment" if i % 2 else "confidentiality",
             "split": "train" if i < 12 else "validation" if i < 16 else "test"} for i in range(24)]
    (root / "data" / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "data" / "q.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "q": f"question {i}", "a": "yes",
                                                                "split": s}) + "\n"
                                                    for i, s in enumerate(["train"] * 4 + ["test"] * 2)))
    task = {"name": "kind", "kind": "classification", "data": {"file": "data/c.jsonl"}, "input_field": "text",
            "target_field": "label", "labels": ["payment", "confidentiality"], "instruction": "Classify the clause.",
            "metrics": ["accuracy"]}
    if paraphrases:
        task["paraphrases"] = paraphrases
    plain = {"name": "plain", "kind": "qa", "data": {"file": "data/q.jsonl"}, "input_field": "q", "target_field": "a",
             "instruction": "Answer.", "metrics": ["exact_match"], "max_new_tokens": 2}
    (root / "suite.yaml").write_text(yaml.safe_dump({"name": "tiny", "model": "random:tiny-llama", "seed": 0,
                                                     "tasks": [task, plain], "arms": arms}, sort_keys=False))
    return root / "suite.yaml"


def options(root: Path, **kw) -> RunOptions:
    return RunOptions(results=root / "results", device="cpu", dtype="float32", batch_size=4, n_boot=100, **kw)


def quiet() -> Console:
    return Console(file=io.StringIO(), width=160)


def spec(**kw) -> dict:
    return {"name": "t", "kind": "qa", "data": {"file": "x.jsonl"}, "input_field": "q", "target_field": "a",
            "instruction": "Answer the question.", "metrics": ["exact_match"], **kw}


# ---- the suite field --------------------------------------------------------------------------

@pytest.mark.parametrize("paraphrases, message", [
    (["  "], r"paraphrases\[0\] is empty"),
    (["answer  the QUESTION."], r"paraphrases\[0\] repeats the instruction"),
    (["Reply to it.", "reply to it."], r"paraphrases\[1\] repeats paraphrases\[0\]"),
])
def test_a_paraphrase_that_is_empty_or_repeats_a_wording_is_refused(paraphrases, message):
    with pytest.raises(ValidationError, match=message):
        TaskSpec.model_validate(spec(paraphrases=paraphrases))
    assert TaskSpec.model_validate(spec(paraphrases=["Reply to it.", "Say the answer."])).paraphrases


def test_the_problem_is_reported_at_its_task_in_suite_yaml(tmp_path):
    path = write_suite(tmp_path / "s", paraphrases=["Classify the clause. "])
    with pytest.raises(SuiteError) as e:
        parse_suite_yaml(path)
    assert "repeats the instruction" in str(e.value) and "suite.yaml:" in str(e.value)


def test_every_legal_task_lists_three_to_five_paraphrases_of_its_own():
    spec = parse_suite_yaml(Path(__file__).parent.parent / "suites" / "legal" / "suite.yaml")
    for task in spec.tasks:
        assert 3 <= len(task.paraphrases) <= 5, task.name


def test_adding_paraphrases_changes_no_cache_key_of_a_run(env):
    path = write_suite(env / "s", paraphrases=None)
    first = json.loads((run_suite(str(path), options(env), quiet()) / "run.json").read_text())["cells"]
    write_suite(env / "s")  # the same suite, now with paraphrases
    second = json.loads((run_suite(str(path), options(env), quiet()) / "run.json").read_text())["cells"]
    assert [c["cache_key"] for c in first] == [c["cache_key"] for c in second]
    assert all(c["cached"] for c in second)


# ---- planning ---------------------------------------------------------------------------------

def test_the_default_asks_a_seeded_subsample_and_full_asks_every_example(tmp_path):
    assert sized(options(tmp_path), full=False).limit == DEFAULT_TEST_LIMIT
    assert sized(options(tmp_path), full=True).limit is None
    assert sized(options(tmp_path, limit=3), full=False).limit == 3
    with pytest.raises(ConfigError, match="--full .* --limit"):
        sized(options(tmp_path, limit=3), full=True)


def test_the_plan_asks_only_tasks_with_paraphrases_and_says_why_not(env):
    path = write_suite(env / "s")
    plan = plan_sensitivity(str(path), options(env))
    assert plan.tasks == ["kind"] and plan.wordings["kind"] == ("Classify the clause.", *PARAPHRASES)
    with pytest.raises(ConfigError, match="task.s. plain list no paraphrases; tasks with some: kind"):
        plan_sensitivity(str(path), options(env, tasks=["kind", "plain"]))
    with pytest.raises(ConfigError, match="no task lists `paraphrases:`"):
        plan_sensitivity(str(write_suite(env / "none", paraphrases=None)), options(env))


def test_the_command_line_dry_run_says_what_would_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("bench.models.load_model", lambda *a, **k: pytest.fail("a dry run loaded a model"))
    assert main(["experiment", "prompt-sensitivity", str(write_suite(tmp_path / "s")), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"a seeded {DEFAULT_TEST_LIMIT} test example" in out and "kind: 3 wordings x 3 variants" in out


def test_a_rag_variant_on_a_fine_tune_is_rebuilt_on_the_borrowed_one(tmp_path):
    rag = {"arm": "rag", "name": "rag+lora", "mode": "examples", "k": 1, "finetuned": "lora"}
    suite = load_suite(str(write_suite(tmp_path / "s", arms=[*ARMS, rag])))
    home = build_arms(suite.spec.arms)
    ctx = suite_context(suite, lambda: None, batch_size=4)
    arms = borrowed_arms(home, ctx, same_name_in(ctx))
    assert isinstance(arms["lora"], BorrowedFinetune) and arms["rag+lora"].provider is arms["lora"]
    assert arms["zero-shot"] is home["zero-shot"]  # prompt variants are the run's own objects
    task = suite.tasks["kind"]
    assert arms["lora"].cache_key(ctx, task) == home["lora"].cache_key(ctx, task)  # the run's trained model


# ---- running ----------------------------------------------------------------------------------

def test_every_arm_runs_under_each_wording_and_the_fine_tune_trains_once(env, monkeypatch):
    path = write_suite(env / "s")
    run_dir = run_suite(str(path), options(env), quiet())
    run_keys = {(c["arm"], c["task"]): c["cache_key"] for c in json.loads((run_dir / "run.json").read_text())["cells"]}

    def no_training(*args, **kwargs):
        raise AssertionError("the experiment trained a model the run had trained")

    monkeypatch.setattr("bench.training.recipe.train", no_training)
    out, result = run_prompt_sensitivity(str(path), sized(options(env), full=True), quiet())

    cells = {(c.wording, c.arm): c for c in result.cells}
    assert set(cells) == {(w, a) for w in range(3) for a in ("zero-shot", "1-shot", "lora")}
    # the suite's own instruction: the run's very cells, served from the cache
    arms = ("zero-shot", "1-shot", "lora")
    assert all(cells[(0, a)].cached and cells[(0, a)].cache_key == run_keys[(a, "kind")] for a in arms)
    assert not any(cells[(w, a)].cached for w in (1, 2) for a in arms)

    def prompts(wording, arm):
        rows = (out / f"wording-{wording}" / "predictions" / arm / "kind.jsonl").read_text().splitlines()
        return [json.loads(r)["prompt_hash"] for r in rows]

    for arm in ("zero-shot", "lora"):  # each wording reached the prompt, the fine-tune's too
        assert len({tuple(prompts(w, arm)) for w in range(3)}) == 3
    (t,) = result.tasks
    assert [a.arm for a in t.arms] == ["zero-shot", "1-shot", "lora"] and t.n == 8
    assert all(len(a.scores) == 3 and a.minimum <= a.mean <= a.maximum for a in t.arms)

    again, second = run_prompt_sensitivity(str(path), sized(options(env), full=True), quiet())
    assert all(c.cached for c in second.cells)  # a rerun recomputes nothing


def test_the_directory_is_complete_and_bench_report_rebuilds_it_without_a_model(env, monkeypatch):
    path = write_suite(env / "s")
    out, result = run_prompt_sensitivity(str(path), sized(options(env), full=True), quiet())
    for name in ("prompt_sensitivity.json", "report.md", "report.html", "plots/prompt-sensitivity-kind.png"):
        assert (out / name).is_file(), name
    assert "| lora | finetune |" in (out / "report.md").read_text()
    (listing,) = [r for r in list_runs(env / "results") if r.path == out]
    assert listing.kind == "prompt-sensitivity" and listing.complete

    (out / "report.md").unlink()
    monkeypatch.setattr("bench.models.load_model", lambda *a, **k: pytest.fail("the report loaded a model"))
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").read_text().startswith("# tiny: prompt sensitivity")


# ---- the figures ------------------------------------------------------------------------------

def cells(arm: str, values: list[float]) -> list[CellScore]:
    return [CellScore(task="t", arm=arm, wording=i, metrics={"accuracy": {"value": v, "low": v, "high": v, "n": 50}},
                      cached=False, cache_key="k", predict_s=0.0) for i, v in enumerate(values)]


def test_a_spread_wider_than_the_gap_is_said_and_a_narrow_one_is_not():
    steady = arm_spread("zero-shot", "prompt", cells("zero-shot", [0.60, 0.60, 0.61, 0.59]), "accuracy")
    shaky = arm_spread("lora", "finetune", cells("lora", [0.55, 0.70, 0.40, 0.50]), "accuracy")
    assert (shaky.minimum, shaky.maximum) == (0.40, 0.70) and shaky.spread == pytest.approx(0.30)
    assert shaky.sd == pytest.approx(0.125) and shaky.mean == pytest.approx(0.5375)  # sample sd, n - 1
    t = task_sensitivity("t", "accuracy", ["i", "p1", "p2", "p3"], [steady, shaky], n=50)
    (c,) = t.comparisons
    assert t.best == "zero-shot" and c.gap == pytest.approx(0.05)
    assert c.within_spread and c.other_not_behind == 1  # lora is ahead under the first paraphrase
    assert "lora's spread" in c.verdict and "exceeds that gap" in c.verdict

    far = arm_spread("lora", "finetune", cells("lora", [0.30, 0.32, 0.29, 0.31]), "accuracy")
    (c,) = task_sensitivity("t", "accuracy", ["i", "p1", "p2", "p3"], [steady, far], n=50).comparisons
    assert not c.within_spread and c.other_not_behind == 0
    assert "no less than either arm's spread" in c.verdict


def test_a_task_with_one_arm_gets_a_sentence_not_an_empty_comparison_table():
    from bench.experiments.sensitivity_figures import SensitivityResult
    from bench.experiments.sensitivity_report import ONE_ARM, html_report, markdown_report

    alone = arm_spread("zero-shot", "prompt", cells("zero-shot", [0.30, 0.31, 0.29]), "accuracy")
    task = task_sensitivity("t", "accuracy", ["i", "p1", "p2"], [alone], n=50)
    assert task.comparisons == []
    result = SensitivityResult(provenance={"suite": "s", "model": "m", "device": "cpu", "dtype": "float32",
                                           "seed": 0, "test_limit": 16}, tasks=[task], cells=[])
    md = markdown_report("run", result)
    assert ONE_ARM in md and "against each arm" not in md
    assert "against each arm" not in html_report("run", result, {"t": b"png"})
