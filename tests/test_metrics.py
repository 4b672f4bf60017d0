import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from bench.metrics import METRICS, get_metric, macro_f1
from bench.stats import bootstrap

CASES = json.loads((Path(__file__).parent / "cases" / "metrics.json").read_text())


@pytest.mark.parametrize("case", CASES["per_example"], ids=lambda c: f"{c['metric']}:{c['pred']}")
def test_per_example_cases(case):
    assert get_metric(case["metric"]).per_example(case["pred"], case["refs"]) == pytest.approx(case["expected"], abs=1e-5)


@pytest.mark.parametrize("case", CASES["corpus"], ids=lambda c: c["metric"])
def test_corpus_cases(case):
    assert get_metric(case["metric"]).aggregate(case["preds"], case["refs"]) == pytest.approx(case["expected"], abs=1e-5)


def test_macro_f1_agrees_with_scikit_learn():
    rng = np.random.default_rng(1)
    labels = list("abcde")
    for _ in range(50):
        gold = list(rng.choice(labels, 40))
        pred = list(rng.choice(labels[:4], 40))
        want = f1_score(gold, pred, labels=sorted(set(gold) | set(pred)), average="macro", zero_division=0)
        assert macro_f1(pred, [[g] for g in gold]) == pytest.approx(want)


def test_unknown_metric_suggests_the_closest():
    with pytest.raises(KeyError, match="did you mean 'accuracy'"):
        get_metric("acuracy")


def test_bootstrap_interval_is_seeded_and_brackets_the_value():
    m = METRICS["accuracy"]
    preds = ["a"] * 60 + ["b"] * 40
    refs = [["a"]] * 100
    a = bootstrap(m, preds, refs, seed=3)
    b = bootstrap(m, preds, refs, seed=3)
    assert a == b
    assert a.value == pytest.approx(0.6)
    assert a.low < 0.6 < a.high
    # binomial standard error sqrt(.6*.4/100) = 0.049: the 95% interval is about +-0.096
    assert 0.07 < (a.high - a.low) / 2 < 0.12


def test_bootstrap_of_corpus_metric():
    m = METRICS["macro_f1"]
    preds = ["a", "b"] * 30
    refs = [["a"], ["b"]] * 25 + [["b"], ["a"]] * 5
    est = bootstrap(m, preds, refs, seed=0, n_boot=300)
    assert est.low <= est.value <= est.high
    assert est.high - est.low > 0
