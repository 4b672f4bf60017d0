import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from bench.errors import ConfigError, ResourceError
from bench.metrics import METRICS, get_metric, macro_f1
from bench.stats import bootstrap

CASES = json.loads((Path(__file__).parent / "cases" / "metrics.json").read_text())


@pytest.mark.parametrize("case", CASES["per_example"], ids=lambda c: f"{c['metric']}:{c['pred']}")
def test_per_example_cases(case):
    got = get_metric(case["metric"]).per_example(case["pred"], case["refs"])
    assert got == pytest.approx(case["expected"], abs=1e-5)


@pytest.mark.parametrize("case", CASES["corpus"], ids=lambda c: c["metric"])
def test_corpus_cases(case):
    got = get_metric(case["metric"]).aggregate(case["preds"], case["refs"])
    assert got == pytest.approx(case["expected"], abs=1e-5)


def test_macro_f1_agrees_with_scikit_learn():
    rng = np.random.default_rng(1)
    labels = list("abcde")
    for _ in range(50):
        gold = list(rng.choice(labels, 40))
        pred = list(rng.choice(labels[:4], 40))
        want = f1_score(gold, pred, labels=sorted(set(gold) | set(pred)), average="macro", zero_division=0)
        assert macro_f1(pred, [[g] for g in gold]) == pytest.approx(want)


def test_unknown_metric_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'accuracy'"):
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


def test_paired_bootstrap_detects_a_real_difference_and_not_a_fake_one():
    from bench.stats import paired_bootstrap

    m = METRICS["accuracy"]
    refs = [["a"]] * 200
    better = ["a"] * 150 + ["b"] * 50
    worse = ["a"] * 100 + ["b"] * 100
    c = paired_bootstrap(m, better, worse, refs, seed=0)
    assert c.difference == pytest.approx(0.25) and c.p_value < 0.01 and c.low > 0
    # Same accuracy (150/200) with 50 discordant pairs each way: no difference, and the test must
    # say so (a wide interval around 0, a large p-value).
    same = paired_bootstrap(m, better, list(reversed(better)), refs, seed=0)
    assert same.difference == 0.0
    assert same.low < 0 < same.high
    assert same.p_value > 0.5


def test_mcnemar_hand_checked():
    from bench.stats import mcnemar

    # 10 discordant pairs, all won by A: two-sided exact binomial p = 2 * 0.5**10
    a = [True] * 10 + [True] * 5
    b = [False] * 10 + [True] * 5
    assert mcnemar(a, b) == pytest.approx(2 * 0.5**10)
    assert mcnemar(a, a) == 1.0


def test_holm_adjustment_hand_checked():
    from bench.stats import holm

    # sorted p: 0.01 (x3 = 0.03), 0.02 (x2 = 0.04), 0.04 (x1 = 0.04, monotone)
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])


def test_evaluate_metric_from_a_local_script_stands_in_for_the_hub(tmp_path):
    script = tmp_path / "share_equal.py"
    script.write_text('''
import datasets
import evaluate


class ShareEqual(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(description="share of equal strings", citation="", inputs_description="",
                                   features=datasets.Features({"predictions": datasets.Value("string"),
                                                               "references": datasets.Value("string")}))

    def _compute(self, predictions, references):
        return {"share_equal": sum(p == r for p, r in zip(predictions, references)) / len(predictions)}
''')
    m = get_metric(f"evaluate:{script}")
    assert m.aggregate(["a", "b", "c", "d"], [["a"], ["x"], ["c"], ["d"]]) == pytest.approx(0.75)
    est = bootstrap(m, ["a", "b", "c", "d"], [["a"], ["x"], ["c"], ["d"]], n_boot=50)
    assert est.low <= 0.75 <= est.high


def test_evaluate_metric_that_cannot_load_is_one_clear_error(tmp_path):
    with pytest.raises(ResourceError, match="cannot load metric"):
        get_metric(f"evaluate:{tmp_path / 'missing.py'}")
