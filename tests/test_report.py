"""The decision report: built from results alone, with verdicts, CSV, HTML — and checked in a
real headless Chromium (tables and plots render; a dataset string holding <script> never runs)."""

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from bench.report import write_report
from bench.runner import RunOptions, run_suite

MINI = Path(__file__).parent / "fixtures" / "mini"
XSS = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """The mini suite with <script> planted in inputs and in the most frequent train answer."""
    root = tmp_path_factory.mktemp("hostile")
    suite = root / "suite"
    shutil.copytree(MINI, suite)
    for name in ("capitals_train.jsonl", "capitals_test.jsonl"):
        path = suite / "data" / name
        rows = [json.loads(l) for l in path.read_text().splitlines()]
        for r in rows:
            r["question"] = r["question"] + " " + XSS
            if name.endswith("train.jsonl"):
                r["answers"] = [XSS]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.environ["TRIDENT_CACHE"] = str(root / "cache")
    try:
        run_dir = run_suite(str(suite), RunOptions(results=root / "results", dtype="float32", n_boot=200),
                            Console(quiet=True))
    finally:
        os.environ.pop("TRIDENT_CACHE")
    return run_dir, write_report(run_dir)


def test_report_files_and_verdicts(hostile_run):
    _, paths = hostile_run
    for p in paths.values():
        assert p.is_file() and p.stat().st_size > 0
    decision = json.loads(paths["decision"].read_text())
    assert set(decision) == {"sentiment", "capitals", "shorten"}
    for d in decision.values():
        assert d["best"] and d["verdict"].startswith("On ")
        for comp in d["comparisons"].values():
            for c in comp.values():
                assert 0 <= c["p_holm"] <= 1 and c["p_holm"] >= c["p_value"] - 1e-12
    md = paths["md"].read_text()
    assert "## Verdicts" in md and "plots/sentiment-bars.png" in md
    rows = list(csv.DictReader(paths["csv"].open()))
    assert {r["arm"] for r in rows} >= {"floor", "zero-shot", "2-shot"}
    assert sum(r["is_best"] == "True" for r in rows if r["metric"] == "accuracy") == 1


def test_html_escapes_every_dataset_string(hostile_run):
    html = hostile_run[1]["html"].read_text()
    assert "<script" not in html.lower()
    assert "onerror=" not in html.replace("onerror=&quot;", "")
    assert "&lt;script&gt;" in html
    assert "Content-Security-Policy" in html


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _chrome(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp / 'profile'}"]
    return subprocess.run([_chromium(), *flags, *args], check=False, capture_output=True, text=True, timeout=120)


def test_report_renders_in_headless_chromium(hostile_run, tmp_path):
    if _chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    url = hostile_run[1]["html"].resolve().as_uri()
    dom = _chrome(["--dump-dom", url], tmp_path).stdout
    assert "<title>mini report" in dom and "pwned" not in dom.split("</title>")[0]
    assert dom.count("<table>") >= 7 and dom.count('src="data:image/png;base64,') >= 6
    shot = tmp_path / "report.png"
    _chrome(["--window-size=1200,1800", f"--screenshot={shot}", url], tmp_path)
    assert shot.is_file()
    import matplotlib.image as mpimg
    import numpy as np

    pixels = mpimg.imread(str(shot))[..., :3]
    assert pixels.shape[0] == 1800 and pixels.shape[1] == 1200
    blue = np.abs(pixels - np.array([0x1F, 0x77, 0xB4]) / 255).sum(-1) < 0.08  # matplotlib's first colour
    assert blue.sum() > 500, "the embedded plots did not render"
    assert (pixels.sum(-1) < 1.5).mean() > 0.01, "no text or tables rendered"


def test_break_even_counts_only_savings_beyond_timing_noise():
    from bench.decision import break_even

    costs = {"lora": {"latency_s": 0.20, "train_wall_s": 100.0}, "zero-shot": {"latency_s": 0.21},
             "rag": {"latency_s": 1.20}, "fast": {"latency_s": 0.10}}
    got = {b["versus"]: b for b in break_even(costs, {}, "accuracy")}
    assert got["rag"]["queries"] == 101 and got["rag"]["why_none"] is None      # 100 s / 1.0 s saved, +1
    assert got["zero-shot"]["queries"] is None and "timing noise" in got["zero-shot"]["why_none"]
    assert got["fast"]["queries"] is None and "not cheaper" in got["fast"]["why_none"]


def test_costs_are_a_short_summary_then_one_transposed_table_per_arm_kind():
    from bench.report import cost_tables

    decision = {"qa": {"costs": {
        "zero-shot": {"latency_s": 0.2, "prompt_tokens": 90.0, "predict_s": 9.0, "cached": False},
        "rag-k3": {"latency_s": 1.0, "prompt_tokens": 700.0, "predict_s": 50.0, "k": 3, "index": "flat"},
        "lora": {"latency_s": 0.2, "prompt_tokens": 90.0, "predict_s": 30.0, "train_wall_s": 150.0, "steps": 24}}}}
    run = {"spec": {"arms": [{"name": "zero-shot", "arm": "prompt"}, {"name": "rag-k3", "arm": "rag"},
                             {"name": "lora", "arm": "finetune"}]}}
    tables = cost_tables(decision, run)
    title, head, rows = tables[0]
    assert title == "Costs" and head[:2] == ["task", "arm variant"] and "training s" in head
    assert rows[2][head.index("training s")] == "150.0" and rows[0][head.index("training s")] == ""
    details = {t: (h, r) for t, h, r in tables[1:]}
    assert set(details) == {"Retrieval details", "Fine-tuning details"}      # prompting measured nothing more
    h, r = details["Retrieval details"]
    assert h == ["measured", "rag-k3 · qa"] and ["k", "3"] in r and ["index", "flat"] in r
    assert all(row[0] not in ("latency_s", "cached") for _, (_, rr) in details.items() for row in rr)
