import subprocess
import sys
from pathlib import Path

import pytest

from bench.config import SuiteError
from bench.suites import list_suites, load_suite

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


def problems_of(path):
    with pytest.raises(SuiteError) as info:
        load_suite(str(path), apply_limits=False)
    return [str(p) for p in info.value.problems]


def test_every_planted_error_is_reported_with_file_line_and_field():
    found = problems_of(FIXTURES / "broken")
    expected = [
        ("suite.yaml:33", "tasks[3].kind", "expected 'classification', 'qa' or 'generation', got 'classify'"),
        ("suite.yaml:34", "tasks[3].lables", "did you mean 'labels'"),
        ("suite.yaml:41", "tasks[3].max_new_tokens", "valid integer"),
        ("suite.yaml:45", "arms[0].shotz", "did you mean 'shots'"),
        ("suite.yaml:46", "arms[1]", "unknown arm 'retrieval'"),
        ("suite.yaml:13", "tasks[0].metrics", "did you mean 'accuracy'"),
        ("clauses.jsonl:3", "id", "duplicate id 'c1'"),
        ("clauses.jsonl:4", "label", "unknown label 'invoicing'"),
        ("clauses.jsonl:5", "", "not valid JSON"),
        ("clauses.jsonl:6", "text", "expected non-empty text"),
        ("clauses.jsonl:7", "split", "got 'dev'"),
        ("clauses.jsonl:8", "text", "missing"),
        ("suite.yaml:17", "data.file", "file not found"),
        ("latin1.jsonl:1", "", "not valid UTF-8"),
        ("suite.yaml:24", "task latin1", "split 'test' is empty"),
    ]
    for where, field, message in expected:
        assert any(where in p and field in p and message in p for p in found), (where, field, message, found)
    assert len(found) == 16


def test_cli_validate_exits_nonzero_without_traceback():
    out = subprocess.run([sys.executable, "-m", "bench", "validate", str(FIXTURES / "broken")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr + out.stdout
    assert "16 problem(s) found" in out.stderr
    assert "clauses.jsonl:4: label: unknown label 'invoicing'" in out.stderr


def test_unknown_suite_suggests_closest():
    out = subprocess.run([sys.executable, "-m", "bench", "validate", "legl"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and "did you mean 'legal'" in out.stderr and "Traceback" not in out.stderr


def test_yaml_syntax_error_is_located(tmp_path):
    (tmp_path / "suite.yaml").write_text("name: x\ntasks: [\n  - oops: {\n")
    found = problems_of(tmp_path)
    assert len(found) == 1 and "suite.yaml:" in found[0] and "not valid YAML" in found[0]


@pytest.mark.parametrize("name", sorted(list_suites()))
def test_every_shipped_suite_validates(name):
    suite = load_suite(name, apply_limits=False)
    assert suite.tasks and all(t.split("test") for t in suite.tasks.values())


def test_limit_is_a_seeded_subsample():
    a = load_suite(str(FIXTURES / "mini"), limit=2)
    b = load_suite(str(FIXTURES / "mini"), limit=2)
    ids = [e.id for e in a.tasks["sentiment"].split("test")]
    assert len(ids) == 2 and ids == [e.id for e in b.tasks["sentiment"].split("test")]
    assert a.tasks["sentiment"].full_sizes["test"] == 4


def test_label_score_is_only_for_classification(tmp_path):
    import shutil

    shutil.copytree(FIXTURES / "mini", tmp_path / "mini")
    yaml = tmp_path / "mini" / "suite.yaml"
    yaml.write_text(yaml.read_text().replace("    max_new_tokens: 4\n", "    max_new_tokens: 4\n    label_score: mean\n", 1))
    found = problems_of(tmp_path / "mini")
    assert len(found) == 1 and "tasks[1]" in found[0] and "label_score" in found[0] and "classification" in found[0]
