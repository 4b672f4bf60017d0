"""The validation-only sweep on a tiny random Llama: trials are trained and scored on validation, the
best on validation is the one scored on test, test data never reaches the choice (a poisoned test
split changes no validation score and no choice; the test split is read once, by the chosen trial),
every cell is cached, and bad sweep declarations are refused before compute, located."""

import io
import json
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from bench.__main__ import main
from bench.arms import suite_context
from bench.arms.finetune import FinetuneArm
from bench.config import SuiteError, parse_suite_yaml
from bench.errors import ConfigError, TrainingError
from bench.experiments.sweep import combinations, plan_sweep, run_sweep, trials_of
from bench.experiments.sweep_results import choose
from bench.runner import RunOptions
from bench.suites import load_suite

WORDS = {"red": "apple cherry strawberry tomato ruby", "blue": "sky ocean sapphire blueberry navy"}
LORA = {"arm": "finetune", "name": "lora", "method": "lora", "rank": 4, "alpha": 8, "dropout": 0.0, "epochs": 1,
        "learning_rate": 0.0001, "batch_size": 8, "warmup_ratio": 0.0, "max_length": 64, "evals_per_epoch": 1}
SWEEP = {"space": {"learning_rate": [0.0001, 0.003]}, "metric": "loss"}


def rows(n_train=16, n_val=6, n_test=6, poison_test=False):
    out = []
    for split, n in (("train", n_train), ("validation", n_val), ("test", n_test)):
        for i in range(n):
            label = ["red", "blue"][i % 2]
            words = WORDS[label].split()
            text = " ".join(words[(i + j) % len(words)] for j in range(3))
            if poison_test and split == "test":  # other inputs, every label flipped
                text, label = f"poisoned {i} {text[::-1]}", "blue" if label == "red" else "red"
            out.append({"id": f"{split}-{i}", "text": text, "label": label, "split": split})
    return out


def write_suite(root: Path, *, arms=None, data=None, profiles=None, metrics=("accuracy",)) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "toy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (data or rows())))
    suite = {"name": "toy", "model": "random:tiny-llama", "seed": 0,
             "tasks": [{"name": "colour", "kind": "classification", "data": {"file": "data/toy.jsonl"},
                        "input_field": "text", "target_field": "label", "labels": ["red", "blue"],
                        "instruction": "Which colour do these things have?", "metrics": list(metrics)}],
             "arms": arms or [{"arm": "prompt", "name": "zero-shot"}, {**LORA, "sweep": SWEEP}]}
    if profiles:
        suite["profiles"] = profiles
    (root / "suite.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
    return root / "suite.yaml"


def options(root: Path, **kw) -> RunOptions:
    return RunOptions(results=root / "results", device="cpu", dtype="float32", batch_size=4, n_boot=100, **kw)


def quiet() -> Console:
    return Console(file=io.StringIO(), width=160)


def validation_view(result):
    """What the choice rests on: every trial's validation scores, and the choice."""
    (v,) = result.variants
    scores = [(s.trial, s.task, s.loss, {m: e.value for m, e in s.metrics.items()}, s.best_step) for s in v.scores]
    return scores, [(c.tasks, c.trial, c.validation_value) for c in v.choices]


def test_the_best_trial_on_validation_is_the_one_scored_on_test_and_a_rerun_recomputes_nothing(env):
    path = write_suite(env / "s")
    folder, result = run_sweep(str(path), options(env), quiet())

    (v,) = result.variants
    assert [t.name for t in v.trials] == ["lora-trial-1", "lora-trial-2"]
    assert [t.settings for t in v.trials] == [{"learning_rate": 0.0001}, {"learning_rate": 0.003}]
    assert [t.declared for t in v.trials] == [True, False]  # the variant's own settings are trial 1
    losses = {s.trial: s.loss for s in v.scores}
    assert all(loss is not None and loss > 0 for loss in losses.values()) and len(set(losses.values())) == 2
    (choice,) = v.choices
    assert choice.trial == min(losses, key=losses.get) and choice.validation_value == losses[choice.trial]
    assert set(choice.test) == {"colour"} and choice.test_n == {"colour": 6}
    assert v.validation_n == {"colour": 6} and all(s.metrics["accuracy"].n == 6 for s in v.scores)

    # validation cells for every trial, a test cell for the chosen one only
    assert sorted(p.parent.name for p in (folder / "validation" / "predictions").rglob("*.jsonl")) == \
        ["lora-trial-1", "lora-trial-2"]
    assert [p.parent.name for p in (folder / "test" / "predictions").rglob("*.jsonl")] == [choice.trial]
    saved = json.loads((folder / "sweep.json").read_text())
    assert saved["experiment"] == "sweep" and saved["variants"][0]["choices"][0]["trial"] == choice.trial
    report = (folder / "report.md").read_text()
    assert "lora · colour: trials on 6 validation examples" in report and "chosen" in report
    assert "as declared" in report and (folder / "plots" / "sweep-lora-colour.png").stat().st_size > 0
    assert "<table>" in (folder / "report.html").read_text()

    _, again = run_sweep(str(path), options(env), quiet())
    (v2,) = again.variants
    assert all(s.cached for s in v2.scores) and v2.choices[0].test_cached == {"colour": True}
    assert again.provenance["model_load_s"] is None  # every cell cached: the model never loaded
    assert validation_view(again) == validation_view(result)

    # `bench report` rebuilds the report from sweep.json alone; `bench ls --runs` lists it as finished
    (folder / "report.md").unlink()
    assert main(["report", str(folder)]) == 0
    assert (folder / "report.md").read_text() == report
    listed = [r for r in __import__("bench.results", fromlist=["list_runs"]).list_runs(env / "results")
              if r.path == folder]
    assert [(r.kind, r.status) for r in listed] == [("sweep", "complete")]


def test_test_data_never_reaches_selection(env, monkeypatch):
    """The same sweep on a suite whose test split is poisoned (other inputs, flipped labels): every
    validation score and the choice are identical, each validation cell is served from the cache
    (its key does not depend on the test split), and the test split is read once, by the chosen trial."""
    from bench.training import recipe

    seen: list[tuple[str, str, tuple[str, ...]]] = []
    predict, train = FinetuneArm.predict, recipe.train

    def counting_predict(self, ctx, task, examples):
        seen.append(("predict", self.spec.name, tuple(e.id for e in examples)))
        return predict(self, ctx, task, examples)

    def counting_train(job, base, **kw):
        ids = tuple(e.id for d in job.data for e in [*d.train, *d.validation])
        seen.append(("train", job.spec.name, ids))
        return train(job, base, **kw)

    monkeypatch.setattr(FinetuneArm, "predict", counting_predict)
    monkeypatch.setattr(recipe, "train", counting_train)
    _, clean = run_sweep(str(write_suite(env / "clean")), options(env), quiet())
    test_ids = {f"test-{i}" for i in range(6)}
    chosen = clean.variants[0].choices[0].trial
    reading_test = [(what, who) for what, who, ids in seen if test_ids & set(ids)]
    assert reading_test == [("predict", chosen)]  # once, by the chosen trial, for its test score
    assert [(what, who) for what, who, _ in seen if what == "train"] == [("train", "lora-trial-1"),
                                                                         ("train", "lora-trial-2")]

    seen.clear()
    _, poisoned = run_sweep(str(write_suite(env / "poisoned", data=rows(poison_test=True))), options(env), quiet())
    assert validation_view(poisoned) == validation_view(clean)
    assert all(s.cached for s in poisoned.variants[0].scores)  # the validation cells never keyed the test split
    assert [(what, who) for what, who, _ in seen] == [("predict", chosen)]  # only the chosen trial's test cell ran
    assert poisoned.variants[0].choices[0].test != clean.variants[0].choices[0].test  # and it saw the new test split


def test_a_trial_whose_training_fails_is_left_out_of_the_choice(env, monkeypatch):
    from bench.training import recipe

    train = recipe.train

    def failing_at_high_rate(job, base, **kw):
        if job.spec.learning_rate > 0.001:
            raise TrainingError("loss became nan at step 1")
        return train(job, base, **kw)

    monkeypatch.setattr(recipe, "train", failing_at_high_rate)
    folder, result = run_sweep(str(write_suite(env / "s")), options(env), quiet())
    (v,) = result.variants
    failed = {s.trial: s.error for s in v.scores}
    assert failed == {"lora-trial-1": None, "lora-trial-2": "loss became nan at step 1"}
    assert v.choices[0].trial == "lora-trial-1"
    assert "failed: loss became nan at step 1" in (folder / "report.md").read_text()


# ---- declarations, plans and keys: no model ----------------------------------------------------

def test_a_grid_tries_every_combination_and_a_random_search_a_seeded_draw(env):
    space = {"learning_rate": [0.0001, 0.001, 0.003], "rank": [4, 8], "epochs": [1, 2]}
    grid_spec = parse_spec({**LORA, "sweep": {"space": space}})
    grid = combinations(grid_spec.sweep, 0, "lora")
    assert len(grid) == 12 and grid[0] == {"rank": 4, "epochs": 1.0, "learning_rate": 0.0001}
    drawn = parse_spec({**LORA, "sweep": {"space": space, "search": "random", "trials": 4}})
    picks = combinations(drawn.sweep, 0, "lora")
    assert len(picks) == 4 and picks == combinations(drawn.sweep, 0, "lora")  # seeded
    assert picks == sorted(picks, key=grid.index)  # kept in grid order
    assert combinations(drawn.sweep, 1, "lora") != picks  # another suite seed, another draw
    trials = trials_of(drawn, 0)
    assert [t.spec.name for t in trials] == [f"lora-trial-{i}" for i in range(1, 5)]
    assert all(t.spec.sweep is None and t.spec.rank == t.info.settings["rank"] for t in trials)


def parse_spec(arm):
    from bench.config import FinetuneArm as Spec

    return Spec.model_validate(arm)


def test_a_sweep_leaves_every_cache_key_as_it_was(env, tiny_lm):
    """Declaring a sweep changes no key of the variant (a run trains and caches it as before), and the
    trial with the declared settings is that very model and cell."""
    suite = load_suite(str(write_suite(env / "s")))
    task, ctx = suite.tasks["colour"], suite_context(suite, lambda: tiny_lm, batch_size=4)
    plain, swept = parse_spec(LORA), parse_spec({**LORA, "sweep": SWEEP})
    declared = trials_of(swept, 0)[0]
    keys = {name: (arm.cache_key(ctx, task), arm.artifact_key(ctx, tiny_lm, task))
            for name, arm in (("plain", FinetuneArm(plain)), ("swept", FinetuneArm(swept)),
                              ("trial", FinetuneArm(declared.spec)))}
    assert keys["plain"] == keys["swept"] == keys["trial"]
    assert "sweep" not in keys["plain"][0]["spec"]
    other = FinetuneArm(trials_of(swept, 0)[1].spec)
    assert other.artifact_key(ctx, tiny_lm, task) != keys["plain"][1]


def test_trials_are_validated_on_the_examples_the_variant_holds_out_and_never_on_test(env):
    no_validation = [r for r in rows(n_train=20) if r["split"] != "validation"]
    path = write_suite(env / "s", data=no_validation, arms=[{**LORA, "holdout": 0.25, "sweep": SWEEP}])
    (v,) = plan_sweep(str(path), options(env)).variants
    asked = v.validation.tasks["colour"].split("test")
    assert len(asked) == 5 and all(e.id.startswith("train-") for e in asked)
    held_out = FinetuneArm(v.spec).task_data(suite_context(v.validation, None, batch_size=1),
                                             v.validation.tasks["colour"]).validation
    assert [e.id for e in asked] == [e.id for e in held_out]
    no_holdout = write_suite(env / "t", data=no_validation, arms=[{**LORA, "holdout": 0.0, "sweep": SWEEP}])
    with pytest.raises(ConfigError, match="no validation examples for task colour"):
        plan_sweep(str(no_holdout), options(env))


def test_plans_refuse_what_cannot_be_swept(env, capsys):
    profiles = {"search": {"arms": [{**LORA, "sweep": SWEEP}]}}
    bare = write_suite(env / "a", arms=[{"arm": "prompt", "name": "zero-shot"}, LORA], profiles=profiles)
    with pytest.raises(ConfigError, match=r"declares `sweep:`; profiles with one: search \(--profile NAME\)"):
        plan_sweep(str(bare), options(env))
    assert len(plan_sweep(str(bare), options(env, profile="search")).variants) == 1
    both = write_suite(env / "b")
    with pytest.raises(ConfigError, match="zero-shot declare no `sweep:`"):
        plan_sweep(str(both), options(env, arms=["zero-shot", "lora"]))
    f1 = write_suite(env / "c", arms=[{**LORA, "sweep": {**SWEEP, "metric": "macro_f1"}}])
    with pytest.raises(ConfigError, match=r"suite.yaml:\d+: arms\[0\].sweep.metric: task colour does not declare "
                                          r"metric 'macro_f1'"):
        plan_sweep(str(f1), options(env))
    assert main(["experiment", "sweep", str(both), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "lora: grid search, 2 trials chosen by validation loss (validation examples: colour 6)" in out
    assert "lora-trial-1: learning_rate=0.0001 (as declared)" in out


@pytest.mark.parametrize(("sweep", "where", "message"), [
    ({"space": {"lerning_rate": [0.001]}}, "arms[0].sweep.space.lerning_rate", "did you mean 'learning_rate'"),
    ({"space": {"holdout": [0.1, 0.2]}}, "arms[0].sweep.space", "'holdout' cannot be searched"),
    ({"space": {"rank": [8, 0]}}, "arms[0].sweep.space.rank[1]", "greater than or equal to 1"),
    ({"space": {"lr_scheduler": ["cosine", "step"]}}, "arms[0].sweep.space.lr_scheduler[1]", "expected"),
    ({"space": {"rank": 8}}, "arms[0].sweep.space.rank", "valid list"),
    ({"space": {"rank": [8, 8]}}, "arms[0].sweep.space", "rank lists a value twice"),
    ({"space": {}}, "arms[0].sweep.space", "name at least one fine-tune setting"),
    ({"space": {"rank": [4, 8]}, "search": "random"}, "arms[0].sweep", "search: random needs `trials`"),
    ({"space": {"rank": [4, 8]}, "trials": 2}, "arms[0].sweep", "trials is for search: random"),
    ({"space": {"rank": [4, 8]}, "metric": "acurracy"}, "arms[0].sweep.metric", "did you mean 'accuracy'"),
])
def test_bad_sweep_declarations_are_one_located_problem_each(env, sweep, where, message):
    path = write_suite(env / "s", arms=[{**LORA, "sweep": sweep}])
    with pytest.raises(SuiteError) as info:
        parse_suite_yaml(path)
    (problem,) = info.value.problems
    assert problem.field == where and message in problem.message, str(problem)
    assert problem.line is not None and problem.line > 1


def test_choose_prefers_lower_loss_higher_metrics_and_the_earlier_trial_on_a_tie():
    from bench.experiments.sweep_results import TrialInfo, TrialScore
    from bench.stats import Estimate

    trials = [TrialInfo("v", i, f"v-trial-{i}", {"rank": r}, False) for i, r in ((1, 4), (2, 8), (3, 16))]

    def score(i, loss, acc, error=None):
        return TrialScore(f"v-trial-{i}", "t", loss, {"accuracy": Estimate(acc, acc, acc, 4)}, None, None, None,
                          None, False, None, error)

    scores = [score(1, 0.9, 0.50), score(2, 0.7, 0.75), score(3, 0.7, 0.75)]
    assert choose(trials, scores, ["t"], "loss") == ("v-trial-2", 0.7)  # a tie: the earlier trial
    assert choose(trials, scores, ["t"], "accuracy") == ("v-trial-2", 0.75)
    tied_accuracy = [score(1, 0.9, 0.75), score(2, 0.8, 0.5), score(3, 0.6, 0.75)]
    assert choose(trials, tied_accuracy, ["t"], "accuracy") == ("v-trial-3", 0.75)  # then the lower loss
    failed = [score(1, 0.9, 0.5), score(2, None, 0.0, error="nan"), score(3, 0.95, 0.9)]
    assert choose(trials, failed, ["t"], "loss") == ("v-trial-1", 0.9)
    assert choose(trials, [], ["t"], "loss") == (None, None)


def test_legal_sweep_profile_reuses_the_default_runs_lora():
    """`bench experiment sweep legal --profile sweep`: its declared trial is the default run's clause_type
    LoRA (the same prediction cache key, hence the same trained model), so `make bench` pays for it."""
    plan = plan_sweep("legal", RunOptions(profile="sweep", device="cpu"))
    (v,) = plan.variants
    assert [t.info.settings["learning_rate"] for t in v.trials] == [0.0003, 0.001, 0.003]
    (declared,) = [t for t in v.trials if t.info.declared]
    default = load_suite("legal")
    (lora,) = [a for a in default.spec.arms if a.name == "lora"]
    ctx = suite_context(default, None, batch_size=8)
    task = default.tasks["clause_type"]
    assert FinetuneArm(declared.spec).cache_key(ctx, task) == FinetuneArm(lora).cache_key(ctx, task)
