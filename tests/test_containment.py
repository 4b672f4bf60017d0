"""The containment metric on hand-checked cases (tests/fixtures/containment_cases.json)."""

import json
from pathlib import Path

import pytest

from bench.metrics import get_metric

CASES = json.loads((Path(__file__).parent / "fixtures" / "containment_cases.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["why"] for c in CASES])
def test_containment_matches_the_hand_checked_answer(case):
    metric = get_metric("containment")
    assert metric.per_example(case["output"], case["references"]) == case["expected"]


def test_exact_match_implies_containment():
    """Exact match implies containment: every output EM accepts, containment accepts."""
    em, contained = get_metric("exact_match"), get_metric("containment")
    for c in CASES:
        if em.per_example(c["output"], c["references"]):
            assert contained.per_example(c["output"], c["references"]) == 1
