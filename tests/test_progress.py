"""Progress where there is no terminal: start, progress and end lines at a steady pace, flushed as
written; rich bars on a terminal; training lines with loss and tokens/s; corpus embedding counted."""

import functools
import io
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from bench import progress as progress_module
from bench.progress import LogDisplay, Pace, TerminalDisplay, duration, open_display


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def log_display(pace=None, out=None):
    out = out if out is not None else io.StringIO()
    clock = FakeClock()
    return LogDisplay(Console(file=out, width=200), pace=pace or Pace(), clock=clock), clock, out


def lines(out: io.StringIO) -> list[str]:
    return [re.sub(r"^\d\d:\d\d:\d\d  ", "", line) for line in out.getvalue().splitlines()]


def test_a_stage_prints_its_start_a_line_every_tenth_and_its_end_with_rate_and_eta():
    display, clock, out = log_display()
    stage = display.stage("zero-shot · clause_type", 100, unit="examples")
    for _ in range(100):
        clock.now += 1.0  # one example a second: a tenth every 10 s, sooner than the 30 s interval
        stage(1)
    got = lines(out)
    assert got[0] == "zero-shot · clause_type: started, 100 examples"
    assert got[1] == "zero-shot · clause_type: 10/100 examples (10%), 1 examples/s, ETA 1m30s"
    assert got[5] == "zero-shot · clause_type: 50/100 examples (50%), 1 examples/s, ETA 50.0s"
    assert got[-1] == "zero-shot · clause_type: done, 100/100 examples in 1m40s (1 examples/s)"
    assert len(got) == 11  # start, nine progress lines (10% ... 90%), end


def test_a_slow_stage_prints_at_the_interval_before_a_tenth_is_done():
    display, clock, out = log_display(Pace(interval_s=30.0, fraction=0.10, min_gap_s=3.0))
    stage = display.stage("lora · clause_type · training", 1000, unit="steps")
    for _ in range(95):  # 95 steps in 95 s: never a tenth (100 steps) in one stretch
        clock.now += 1.0
        stage(1, detail="loss 1.2000")
    progress_lines = lines(out)[1:]
    assert [line.split(": ")[1].split(" (")[0] for line in progress_lines] == ["30/1000 steps", "60/1000 steps",
                                                                                 "90/1000 steps"]
    assert progress_lines[0].endswith("1 steps/s, ETA 16m10s, loss 1.2000")


def test_a_fast_stage_prints_only_its_start_and_end():
    display, clock, out = log_display()
    stage = display.stage("embedding", 50, unit="texts")
    for _ in range(50):
        clock.now += 0.01
        stage(1)
    assert [line.split(": ")[1].split(",")[0] for line in lines(out)] == ["started", "done"]


def test_a_stage_that_ends_short_says_so_and_open_stages_close_with_the_display():
    display, clock, out = log_display()
    stage = display.stage("lora · training", 20, unit="steps")
    clock.now = 12.0
    stage(8, detail="loss 0.5000")
    stage.finish()
    stage(1)  # after finish: ignored
    left_open = display.stage("rag-k3 · dense index", 300, unit="items")
    display.close()
    got = lines(out)
    assert "lora · training: done (stopped short), 8/20 steps in 12.0s (0.667 steps/s), loss 0.5000" in got
    assert got[-1] == "rag-k3 · dense index: done (stopped short), 0/300 items in 0.0s (0 items/s)"
    assert left_open.over


def test_a_stage_with_nothing_to_do_ends_at_once():
    display, _, out = log_display()
    display.stage("rag-k2 · tenancy_qa", 0)
    assert lines(out) == ["rag-k2 · tenancy_qa: started, 0", "rag-k2 · tenancy_qa: done, 0/0 in 0.0s (0/s)"]
    assert not display.open


def test_timed_steps_and_cached_cells_print_one_line_each_side():
    display, clock, out = log_display()
    with display.timed("Loading smollm2-135m on cpu (float32)"):
        clock.now = 4.2
    display.cached("zero-shot · tenancy_qa", 80)
    display.log("[finetune] training lora")  # literal text, not rich markup
    with pytest.raises(RuntimeError), display.timed("Loading broken"):
        clock.now = 5.0
        raise RuntimeError("boom")
    assert lines(out) == ["Loading smollm2-135m on cpu (float32): started",
                          "Loading smollm2-135m on cpu (float32): done in 4.2s",
                          "zero-shot · tenancy_qa: 80 from the cache",
                          "[finetune] training lora",
                          "Loading broken: started",
                          "Loading broken: failed after 0.8s"]


def test_each_line_reaches_the_log_file_before_the_stage_ends(tmp_path):
    path = tmp_path / "log.txt"
    with path.open("w") as f:
        display, clock, _ = log_display(out=f)
        stage = display.stage("lora · training", 10, unit="steps")
        assert "lora · training: started" in path.read_text()  # flushed, as `tail -f` under nohup needs
        clock.now = 31.0
        stage(1)
        assert "1/10 steps (10%)" in path.read_text()


def test_durations_read_at_a_glance():
    assert [duration(s) for s in (3.21, 65, 3725, float("inf"))] == ["3.2s", "1m05s", "1h02m", "?"]


def test_a_terminal_gets_rich_bars_and_anything_else_gets_lines():
    with open_display(Console(file=io.StringIO(), force_terminal=True, width=120)) as display:
        assert isinstance(display, TerminalDisplay)
        stage = display.stage("zero-shot · clause_type", 10)
        stage(4, detail="loss 1.0000")
        (task,) = display.progress.tasks
        assert (task.completed, task.total, task.fields["detail"]) == (4, 10, "loss 1.0000")
        stage.finish()
    with open_display(Console(file=io.StringIO())) as display:
        assert isinstance(display, LogDisplay)


# -- the stages a run reports ---------------------------------------------------------------------


def test_training_reports_steps_loss_and_tokens_per_second():
    from bench.training.callbacks import StepProgress, StepTimer

    display, clock, out = log_display(Pace(interval_s=30.0, fraction=0.10, min_gap_s=0.0))
    timer = StepTimer()
    callback = StepProgress(display.stage, "lora · clause_type", timer)
    state = SimpleNamespace(max_steps=5, global_step=0, num_input_tokens_seen=100)
    callback.on_train_begin(None, state, None)
    for step in range(1, 4):  # as the Trainer calls them: the step ends, then its loss is logged
        clock.now += 2.0
        timer.seconds += 2.0
        state.num_input_tokens_seen += 1000
        state.global_step = step
        callback.on_step_end(None, state, None)
        callback.on_log(None, state, None, logs={"loss": 3.0 / step})
    callback.on_train_end(None, state, None)  # early stopping after 3 of 5 steps
    assert lines(out) == [
        "lora · clause_type · training: started, 5 steps",
        "lora · clause_type · training: 1/5 steps (20%), 0.5 steps/s, ETA 8.0s, 500 tokens/s",
        "lora · clause_type · training: 2/5 steps (40%), 0.5 steps/s, ETA 6.0s, loss 3.0000, 500 tokens/s",
        "lora · clause_type · training: 3/5 steps (60%), 0.5 steps/s, ETA 4.0s, loss 1.5000, 500 tokens/s",
        "lora · clause_type · training: done (stopped short), 3/5 steps in 6.0s (0.5 steps/s), loss 1.0000, "
        "500 tokens/s"]


def colour_suite(root: Path) -> Path:
    """Two colours a few words each give away, a zero-shot prompt and a one-epoch LoRA (6 steps)."""
    words = {"red": "apple cherry tomato ruby", "blue": "sky ocean sapphire navy"}
    rows = [{"id": f"{split}-{i}", "text": f"{split} {i}: " + " ".join(words[label].split()[i % 4:]),
             "label": label, "split": split}
            for split, n in (("train", 24), ("validation", 6), ("test", 8)) for i in range(n)
            for label in [("red", "blue")[i % 2]]]
    (root / "data").mkdir(parents=True)
    (root / "data" / "colours.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "suite.yaml").write_text("""name: colours
model: random:tiny-llama
tasks:
  - name: colour
    kind: classification
    data: {file: data/colours.jsonl}
    input_field: text
    target_field: label
    labels: [red, blue]
    instruction: Which colour do these things have?
    metrics: [accuracy]
arms:
  - {arm: prompt, name: zero-shot}
  - {arm: finetune, name: lora, method: lora, rank: 4, alpha: 8, epochs: 1, batch_size: 4, max_length: 64,
     evals_per_epoch: 1}
""")
    return root / "suite.yaml"


def test_a_run_without_a_terminal_logs_every_stage(env, monkeypatch):
    from bench import runner
    from bench.runner import RunOptions, run_suite

    suite = colour_suite(env / "s")
    every_step = Pace(interval_s=0.0, fraction=0.0, min_gap_s=0.0)
    monkeypatch.setattr(runner, "open_display", functools.partial(progress_module.open_display, pace=every_step))
    out = io.StringIO()
    run_suite(str(suite), RunOptions(results=env / "results"), Console(file=out, width=200))
    got = lines(out)
    assert "Loading random:tiny-llama on cpu (float32): started" in got
    assert any(re.fullmatch(r"Loading random:tiny-llama on cpu \(float32\): done in [\d.]+s", line) for line in got)
    for stage, total, unit in (("zero-shot · colour", 8, ""), ("lora · colour · training", 6, " steps"),
                               ("lora · colour", 8, "")):
        assert f"{stage}: started, {total}{unit}" in got
        assert any(line.startswith(f"{stage}: done, {total}/{total}{unit} in ") for line in got), stage
    # the loss shows from the Trainer's first logging step (here the sixth, its evaluation step) on
    halfway = next(line for line in got if line.startswith("lora · colour · training: 3/6 steps (50%)"))
    assert re.search(r"[\d.]+ steps/s, ETA [\d.]+s, [\d,]+ tokens/s$", halfway), halfway
    done = next(line for line in got if line.startswith("lora · colour · training: done"))
    assert re.search(r"loss \d+\.\d{4}, [\d,]+ tokens/s$", done), done

    out = io.StringIO()
    run_suite(str(suite), RunOptions(results=env / "results"), Console(file=out, width=200))
    assert lines(out) == ["zero-shot · colour: 8 from the cache", "lora · colour: 8 from the cache"]


def test_embedding_a_corpus_is_a_stage_counted_batch_by_batch(tmp_path):
    from bench.retrieval.embedding import Embedder, embed_cached

    display, clock, out = log_display(Pace(interval_s=0.0, fraction=0.0, min_gap_s=0.0))
    embedder = Embedder(str(tiny_sentence_model(tmp_path / "bert")), batch_size=4, progress=display.stage)
    texts = [f"the tenant gives {n} days notice" for n in range(10)]
    plain = embedder.encode(texts)
    vectors, _, _ = embed_cached(embedder, texts, [str(i) for i in range(10)], {}, tmp_path / "cache")
    assert (vectors == plain).all()  # counting changes no vector
    name = f"{tmp_path / 'bert'} · embedding"
    assert [line.split(": ", 1)[1].split(" (")[0] for line in lines(out)] == [
        "started, 10 texts", "4/10 texts", "8/10 texts", "done, 10/10 texts in 0.0s"]
    assert all(line.startswith(name) for line in lines(out))


def tiny_sentence_model(folder: Path) -> Path:
    """A randomly initialised one-layer BERT with a ten-word vocabulary: sentence-transformers loads it
    (mean pooling) without the embedded MiniLM."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True)
    words = "the tenant gives days notice rent".split()
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    config = BertConfig(vocab_size=len(words) + 5, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=40)
    BertModel(config).save_pretrained(folder)
    return folder
