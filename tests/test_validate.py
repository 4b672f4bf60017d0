import subprocess
import sys
from pathlib import Path

import pytest

from bench.config import SuiteError
from bench.suites import list_profiles, list_suites, load_suite

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
    # latin1's train file is unreadable: that is its one problem, not also "split 'train' is empty"
    assert not any("split 'train' is empty" in p for p in found), found
    assert len(found) == 15


def test_cli_validate_exits_nonzero_without_traceback():
    out = subprocess.run([sys.executable, "-m", "bench", "validate", str(FIXTURES / "broken")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr + out.stdout
    assert "15 problem(s) found" in out.stderr
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
    yaml.write_text(yaml.read_text().replace("    max_new_tokens: 4\n",
                                             "    max_new_tokens: 4\n    label_score: mean\n", 1))
    found = problems_of(tmp_path / "mini")
    assert len(found) == 1 and "tasks[1]" in found[0] and "label_score" in found[0] and "classification" in found[0]


@pytest.mark.parametrize("name,profile", [(s, p) for s in sorted(list_suites()) for p in list_profiles(s)])
def test_every_profile_of_every_shipped_suite_loads(name, profile):
    suite = load_suite(name, profile=profile)
    assert suite.profile == profile and not suite.spec.profiles
    assert suite.spec.arms and all(t.split("test") for t in suite.tasks.values())


PROFILES = """
profiles:
  quick:
    description: two examples, zero-shot only
    limits:
      sentiment: {train: 2, test: 2}
      capitals: null
    arms:
      - arm: prompt
        name: zero-shot
"""


def mini_with(tmp_path, extra: str) -> Path:
    import shutil

    shutil.copytree(FIXTURES / "mini", tmp_path / "mini")
    yaml = tmp_path / "mini" / "suite.yaml"
    yaml.write_text(yaml.read_text() + extra)
    return tmp_path / "mini"


def test_a_profile_replaces_arms_and_limits_and_keeps_the_tasks(tmp_path):
    path = mini_with(tmp_path, PROFILES + "  full:\n    limits: {sentiment: null}\n")
    assert list(list_profiles(str(path))) == ["quick", "full"]
    assert list_profiles(str(path))["quick"].description == "two examples, zero-shot only"
    base, quick = load_suite(str(path)), load_suite(str(path), profile="quick")
    assert [a.name for a in base.spec.arms] == ["zero-shot", "2-shot", "zero-shot-gen"] and base.profile is None
    assert [a.name for a in quick.spec.arms] == ["zero-shot"] and quick.profile == "quick"
    assert quick.tasks["sentiment"].spec.limit == {"train": 2, "test": 2}
    assert len(quick.tasks["sentiment"].split("test")) == 2 and len(quick.tasks["sentiment"].split("train")) == 2
    assert quick.tasks["capitals"].spec.limit is None
    # everything but arms and limits is the suite's own declaration
    for name, task in base.tasks.items():
        assert task.spec.model_dump(exclude={"limit"}) == quick.tasks[name].spec.model_dump(exclude={"limit"})
    # a profile without `arms` keeps the suite's arms
    assert [a.name for a in load_suite(str(path), profile="full").spec.arms] == [a.name for a in base.spec.arms]


def test_no_limit_in_a_profile_means_every_example(tmp_path):
    path = mini_with(tmp_path, "")
    yaml = path / "suite.yaml"
    yaml.write_text(yaml.read_text().replace("    metrics: [accuracy, macro_f1]\n",
                                             "    metrics: [accuracy, macro_f1]\n    limit: {test: 1}\n", 1)
                    + "profiles:\n  all:\n    limits: {sentiment: null}\n")
    assert len(load_suite(str(path)).tasks["sentiment"].split("test")) == 1
    assert len(load_suite(str(path), profile="all").tasks["sentiment"].split("test")) == 4


def test_unknown_profile_names_the_known_ones_and_the_closest():
    from bench.errors import ConfigError

    known = r"\(known: full, smoke, sweep\)"
    with pytest.raises(ConfigError, match=r"unknown profile 'smok'; did you mean 'smoke'\? " + known):
        load_suite("legal", profile="smok")
    with pytest.raises(ConfigError, match="has no profiles"):
        load_suite(str(FIXTURES / "mini"), profile="smoke")


def test_problems_inside_a_profile_are_located_by_line(tmp_path):
    bad = PROFILES.replace("    limits:\n", "    limitz:\n").replace("        name: zero-shot\n",
                                                                      "        name: zero-shot\n        shotz: 2\n")
    path = mini_with(tmp_path, bad)
    lines = (path / "suite.yaml").read_text().splitlines()
    at = {key: next(i + 1 for i, l in enumerate(lines) if l.strip().startswith(key)) for key in ("limitz:", "shotz:")}
    found = problems_of(path)
    assert len(found) == 2, found
    assert any(f"suite.yaml:{at['limitz:']}" in p and "profiles.quick.limitz" in p and "did you mean 'limits'" in p
               for p in found), found
    assert any(f"suite.yaml:{at['shotz:']}" in p and "profiles.quick.arms[0].shotz" in p and "did you mean 'shots'" in p
               for p in found), found


def test_profile_task_names_and_arm_tasks_are_checked_like_the_suites(tmp_path):
    bad = PROFILES.replace("      sentiment: {", "      sentimnt: {").replace(
        "        name: zero-shot\n", "        name: zero-shot\n        tasks: [capitols]\n").replace(
        "      capitals: null\n", "      capitals: {test: 0}\n")
    path = mini_with(tmp_path, bad)
    lines = (path / "suite.yaml").read_text().splitlines()
    line = {key: next(i + 1 for i, l in enumerate(lines) if l.strip().startswith(key))
            for key in ("sentimnt:", "tasks: [capitols]", "capitals: {test: 0}")}
    found = problems_of(path)
    assert len(found) == 1 and f"suite.yaml:{line['capitals: {test: 0}']}" in found[0] \
        and "greater than or equal to 1" in found[0], found  # schema first: a limit is at least 1
    path2 = mini_with(tmp_path / "b", bad.replace("{test: 0}", "{test: 1}"))
    found = problems_of(path2)
    assert len(found) == 2, found
    assert any(f"suite.yaml:{line['sentimnt:']}" in p and "profiles.quick.limits" in p
               and "unknown task 'sentimnt'; did you mean 'sentiment'" in p for p in found), found
    assert any(f"suite.yaml:{line['tasks: [capitols]']}" in p and "profiles.quick.arms[0].tasks" in p
               and "did you mean 'capitals'" in p for p in found), found


def test_a_profile_must_change_something_and_name_its_arms_once(tmp_path):
    path = mini_with(tmp_path, "profiles:\n  empty:\n    description: nothing\n  twice:\n    arms:\n"
                               "      - {arm: prompt, name: a}\n      - {arm: prompt, name: a}\n")
    found = problems_of(path)
    assert any("profiles.empty" in p and "needs 'arms' and/or 'limits'" in p for p in found), found
    assert any("profiles.twice.arms" in p and "repeated: a" in p for p in found), found


def test_evaluate_metrics_are_not_reported_unknown_when_the_suite_has_other_errors(tmp_path):
    path = mini_with(tmp_path, "")
    yaml = path / "suite.yaml"
    text = yaml.read_text().replace("    metrics: [rougeL]\n", "    metrics: [rougeL, 'evaluate:bleu', rouge9]\n")
    yaml.write_text(text.replace("seed: 0\n", "seed: 0\nsede: 1\n"))  # a schema error elsewhere
    found = problems_of(path)
    assert not any("evaluate:bleu" in p for p in found), found
    assert any("unknown metric 'rouge9'" in p for p in found), found
    assert len(found) == 2, found
    yaml.write_text(text)  # and the same verdict without the schema error
    found = problems_of(path)
    assert len(found) == 1 and "unknown metric 'rouge9'" in found[0], found


def test_retrieval_variants_that_cannot_run_are_reported_before_any_compute(tmp_path):
    """`finetuned:` must name a finetune variant of the same arm list, and corpus retrieval needs a
    corpus: each is a located problem at validation, not a failure after other cells ran."""
    path = mini_with(tmp_path, """  - arm: rag
    name: rag-on-prompt
    finetuned: zero-shot
  - arm: rag
    name: rag-on-nothing
    mode: examples
    finetuned: lorra
""")
    found = problems_of(path)
    expected = [
        ("suite.yaml:50", "arms[3].finetuned", "'zero-shot' is a prompt variant; expected a finetune variant"),
        ("suite.yaml:48", "arms[3].mode", "corpus retrieval needs a `corpus:`"),
        ("suite.yaml:54", "arms[4].finetuned", "unknown arm variant 'lorra'"),
    ]
    for where, field, message in expected:
        assert any(where in p and field in p and message in p for p in found), (where, field, message, found)
    assert not any("arms[4].mode" in p for p in found)           # examples mode needs no corpus
