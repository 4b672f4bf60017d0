"""The report layer on stored run directories (no model is run): the files it writes are byte-identical
to those the report wrote before it was split into loading, tables and renderers; a run is read once;
edge cases that used to crash the report."""

import json
import re
import shutil
from pathlib import Path

import pytest

from bench.errors import ConfigError
from bench.report import terminal_tables, write_report
from bench.results import load_run

RUNS = Path(__file__).parent / "fixtures" / "report_runs"
SMOKE = RUNS / "legal-smoke" / "20261128-051822-21f4"  # prompt, rag (gold documents) and LoRA arms
HOSTILE = RUNS / "mini" / "20261128-051505-b417"  # <script> in inputs and in the qa floor's answer


def _copy_run(src: Path, root: Path) -> Path:
    """The run as `bench run` leaves it before reporting: run.json, scores.json, predictions/."""
    dst = root / src.parent.name / src.name
    dst.mkdir(parents=True)
    for name in ("run.json", "scores.json"):
        shutil.copy(src / name, dst / name)
    shutil.copytree(src / "predictions", dst / "predictions")
    return dst


def _without_images(html: str) -> str:
    # PNG bytes depend on matplotlib and freetype versions; the fixtures store a placeholder
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,PNG", html)


@pytest.mark.parametrize("fixture", [SMOKE, HOSTILE], ids=["legal-smoke", "mini-hostile"])
def test_report_files_are_byte_identical_to_the_stored_ones(fixture, tmp_path):
    paths = write_report(_copy_run(fixture, tmp_path))
    for key in ("md", "csv", "decision"):
        assert paths[key].read_bytes() == (fixture / paths[key].name).read_bytes(), paths[key].name
    assert _without_images(paths["html"].read_text(encoding="utf-8")) == (fixture / "report.html").read_text(
        encoding="utf-8")


def test_a_report_reads_scores_and_run_json_once(tmp_path, monkeypatch):
    run_dir = _copy_run(SMOKE, tmp_path)
    reads: list[str] = []
    read_text = Path.read_text

    def counting(self, *args, **kwargs):
        reads.append(self.name)
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    write_report(run_dir)
    assert reads.count("scores.json") == 1 and reads.count("run.json") == 1


def test_load_run_types_the_run():
    run = load_run(SMOKE)
    tenancy = run.tasks["tenancy_qa"]
    assert tenancy.metrics == ["exact_match", "token_f1"] and tenancy.floor.name.startswith("most frequent")
    assert set(tenancy.retrieval) == {"rag-k2"} and "recall@2" in tenancy.retrieval["rag-k2"]
    assert run.arm_kinds["lora"] == "finetune" and run.costs("lora", "clause_type").train_s == 6.71
    assert list(run.loss_curves) == ["lora · clause_type · train", "lora · clause_type · validation"]
    assert {p.id for p in run.predictions("zero-shot", "tenancy_qa")} == {
        p.id for p in run.predictions("rag-k2", "tenancy_qa")}


def test_a_directory_that_is_not_a_run_is_a_one_line_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not a run directory"):
        load_run(tmp_path)
    run_dir = _copy_run(SMOKE, tmp_path)
    shutil.rmtree(run_dir / "predictions" / "lora")
    with pytest.raises(ConfigError, match="lora/clause_type.jsonl: missing"):
        write_report(run_dir)


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_a_task_no_arm_ran_is_reported_without_a_best_arm(tmp_path):
    run_dir = _copy_run(SMOKE, tmp_path)  # as `bench run --arms lora` leaves the tasks lora skips
    _edit_json(run_dir / "scores.json", lambda s: s["tasks"]["plain_summary"].update(arms={}))
    _edit_json(run_dir / "run.json", lambda r: r.update(cells=[c for c in r["cells"] if c["task"] != "plain_summary"]))
    paths = write_report(run_dir)
    md = paths["md"].read_text()
    assert "## plain_summary (generation, n=3)\n\n| arm variant | rougeL | vs best | mode |" in md
    assert "plain_summary" not in json.loads(paths["decision"].read_text())


def test_retrieval_arms_with_different_k_share_one_table(tmp_path):
    run_dir = _copy_run(SMOKE, tmp_path)

    def add_rag_k3(scores):
        arms = scores["tasks"]["tenancy_qa"]["arms"]
        arms["rag-k3"] = json.loads(json.dumps(arms["rag-k2"]).replace("recall@2", "recall@3"))

    def add_cell(run):
        run["cells"].append({**next(c for c in run["cells"] if c["arm"] == "rag-k2"), "arm": "rag-k3"})
        run["spec"]["arms"].append({"name": "rag-k3", "arm": "rag"})

    _edit_json(run_dir / "scores.json", add_rag_k3)
    _edit_json(run_dir / "run.json", add_cell)
    shutil.copytree(run_dir / "predictions" / "rag-k2", run_dir / "predictions" / "rag-k3")
    md = write_report(run_dir)["md"].read_text()
    assert "| arm variant | recall@1 | recall@2 | mrr | recall@3 |" in md
    assert re.search(r"\| rag-k3 \| [^|]+ \| — \| [^|]+ \| [^|]+ \|", md)


def test_terminal_tables_read_a_decision_json_from_before_why_none(tmp_path):
    run_dir = _copy_run(SMOKE, tmp_path)
    decision = json.loads((SMOKE / "decision.json").read_text())
    for d in decision.values():
        for b in d["break_even"]:
            del b["why_none"]
    tables = terminal_tables(run_dir, decision)
    assert [t.title.split(" · ")[1].split(" (")[0] for t in tables] == ["clause_type", "tenancy_qa", "plain_summary"]


def test_a_loaded_run_is_reported_without_reading_it_again(tmp_path, monkeypatch):
    run = load_run(_copy_run(SMOKE, tmp_path))
    monkeypatch.setattr("bench.results.read_json", lambda path: pytest.fail(f"{path} read again"))
    paths = write_report(run)
    assert len(terminal_tables(run, json.loads(paths["decision"].read_text()))) == 3
