"""The hub-dataset code path (`data.hub`), exercised offline with a local dataset folder."""

import json

from bench.suites import load_suite


def test_hub_reference_loads_through_datasets(tmp_path):
    ds = tmp_path / "my_dataset"
    ds.mkdir()
    for split, n in (("train", 5), ("test", 3)):
        rows = [{"id": f"{split}{i}", "text": f"item {i}", "label": "a" if i % 2 else "b"} for i in range(n)]
        (ds / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "suite.yaml").write_text(f"""
name: hubby
tasks:
  - name: t
    kind: classification
    data:
      hub: {{path: {ds}, splits: {{train: train, test: test}}}}
    input_field: text
    target_field: label
    labels: [a, b]
    instruction: Pick.
    metrics: [accuracy]
arms:
  - {{arm: prompt, name: zero-shot}}
""")
    suite = load_suite(str(tmp_path))
    assert [len(suite.tasks["t"].split(s)) for s in ("train", "test")] == [5, 3]
