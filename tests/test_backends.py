"""Inference backends (bench.backends): every arm generates and scores labels through the run's backend.

On the CPU: the hf backend gives exactly bench.generate's outputs; a fake backend plugged in
through `--backend` receives every arm's prompts (the base model, a LoRA adapter's folder,
retrieved context); vLLM's glue (bench.backends_vllm) runs against a stand-in for vllm.LLM that
computes with the tiny transformers model; asking for vllm without it is one line before compute.
"""

import json
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from rich.console import Console

from bench import backends
from bench.__main__ import main
from bench.arms import suite_context
from bench.arms.prompt import PromptArm, predict_with
from bench.backends import BackendIdentity, BackendSettings, HFBackend, TrainedWeights
from bench.errors import ConfigError, ResourceError
from bench.generate import Generation, ScoreResult, generate, score_continuations
from bench.models import byte_tokenizer
from bench.prompts import label_continuations, render_prompt
from bench.runner import RunOptions, run_suite
from bench.suites import load_suite
from bench.training import artifacts

MINI = "tests/fixtures/mini"
ANSWER = "an answer from the fake engine"

DOCS = [{"id": "bond", "title": "Bonds", "text": "A bond must be lodged within ten business days."},
        {"id": "pets", "title": "Pets", "text": "A landlord may not refuse a cat without a reason."},
        {"id": "fix", "title": "Repairs", "text": "Urgent repairs must be done within 24 hours."}]
QA = [{"id": "q1", "question": "When must a bond be lodged?", "answers": ["ten business days"], "split": "test"},
      {"id": "q2", "question": "How fast are urgent repairs done?", "answers": ["24 hours"], "split": "test"},
      {"id": "q3", "question": "Can a landlord refuse a cat?", "answers": ["no"], "split": "train"},
      {"id": "q4", "question": "Within what time is a bond lodged?", "answers": ["ten days"], "split": "train"},
      {"id": "q5", "question": "How quickly must a burst pipe be fixed?", "answers": ["24 hours"], "split": "train"},
      {"id": "q6", "question": "May a landlord say no to a cat?", "answers": ["no"], "split": "train"}]
TOPIC = [("t1", "The cat purred on the sofa.", "animals", "test"), ("t2", "Shares fell on Monday.", "finance", "test"),
         ("t3", "A dog barked at the door.", "animals", "train"), ("t4", "Rates rose again.", "finance", "train"),
         ("t5", "The kitten slept.", "animals", "train"), ("t6", "Bond yields climbed.", "finance", "train")]
LORA = {"arm": "finetune", "name": "lora", "method": "lora", "rank": 4, "alpha": 8, "dropout": 0.0, "epochs": 1,
        "batch_size": 4, "max_length": 96, "evals_per_epoch": 1, "holdout": 0.0}
RAG = {"arm": "rag", "k": 1, "retriever": "bm25", "chunk_tokens": 64, "chunk_overlap": 8, "tasks": ["qa"]}


def write_suite(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    (root / "data" / "qa.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QA))
    (root / "data" / "topic.jsonl").write_text("".join(
        json.dumps({"id": i, "text": t, "label": l, "split": s}) + "\n" for i, t, l, s in TOPIC))
    arms = [{"arm": "prompt", "name": "zero-shot"}, LORA, {**RAG, "name": "rag-k1"},
            {**RAG, "name": "rag-k1+lora", "finetuned": "lora"}]
    (root / "suite.yaml").write_text(yaml.safe_dump({
        "name": "engines", "model": "random:tiny-llama", "seed": 0,
        "tasks": [{"name": "qa", "kind": "qa", "data": {"file": "data/qa.jsonl"}, "input_field": "question",
                   "target_field": "answers", "instruction": "Answer briefly.", "metrics": ["exact_match"],
                   "max_new_tokens": 3},
                  {"name": "topic", "kind": "classification", "data": {"file": "data/topic.jsonl"},
                   "input_field": "text", "target_field": "label", "labels": ["animals", "finance"],
                   "instruction": "What is the text about?", "metrics": ["accuracy"]}],
        "corpus": {"files": ["corpus.jsonl"]}, "arms": arms}, sort_keys=False))
    return root


# ---- a fake engine: fixed answers, the last label always best, every call recorded ----

@dataclass
class Call:
    kind: str
    """'generate' or 'score'."""
    model: str
    """The fingerprint of the LoadedModel the engine was bound to."""
    trained: TrainedWeights | None
    prompts: list[str]


@dataclass
class FakeEngine:
    backend: "FakeBackend"
    model: str
    trained: TrainedWeights | None

    @property
    def scores_labels(self) -> bool:
        return self.backend.scores_labels

    def generate(self, prompts, max_new_tokens, progress=None) -> Generation:
        self.backend.calls.append(Call("generate", self.model, self.trained, list(prompts)))
        n = len(prompts)
        return Generation([ANSWER] * n, np.full(n, 0.001), np.ones(n, dtype=int), np.full(n, 5))

    def score(self, prompts, continuations, progress=None) -> ScoreResult:
        self.backend.calls.append(Call("score", self.model, self.trained, list(prompts)))
        n = len(prompts)
        sums = np.tile(np.arange(len(continuations), dtype=float), (n, 1))  # the last label scores highest
        return ScoreResult(sums, np.ones(len(continuations), dtype=int), np.full(n, 0.001), np.ones(n, dtype=int))


@dataclass
class FakeBackend:
    scores_labels: bool = True
    version: str = "1"
    name: str = "fake"
    runs_loaded_model: bool = False
    calls: list[Call] = field(default_factory=list)

    def identity(self) -> BackendIdentity:
        return BackendIdentity(self.name, self.version, "test")

    def engine(self, lm, trained, batch_size) -> FakeEngine:
        return FakeEngine(self, lm.fingerprint, trained)


class TokenizerOnly:
    """Stands in for the sentence-transformers embedder: bm25 retrieval needs only a tokenizer to cut chunks."""

    def __init__(self, name, **settings):
        self.tokenizer, self.max_seq_length = byte_tokenizer(), 256


@pytest.fixture()
def fake(monkeypatch):
    """`--backend fake` makes a FakeBackend (the instances made are in the list returned)."""
    made: list[FakeBackend] = []

    def make(settings: BackendSettings) -> FakeBackend:
        made.append(FakeBackend())
        return made[-1]

    monkeypatch.setitem(backends.BACKENDS, "fake", make)
    monkeypatch.setattr("bench.arms.rag.Embedder", TokenizerOnly)
    return made


def run(root: Path, backend: str):
    opts = RunOptions(results=root / "results", device="cpu", dtype="float32", batch_size=4, n_boot=50,
                      backend=backend)
    return run_suite(str(root / "s"), opts, Console(quiet=True))


def predictions(run_dir: Path, arm: str, task: str) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "predictions" / arm / f"{task}.jsonl").read_text().splitlines()]


# ---- hf: today's outputs, through the interface ----

def test_the_hf_engine_gives_exactly_bench_generates_outputs(tiny_lm):
    prompts = ["hello", "a longer prompt here", "x"]
    engine = HFBackend().engine(tiny_lm, None, 2)
    got, want = engine.generate(prompts, 6), generate(tiny_lm.model, tiny_lm.tokenizer, prompts, max_new_tokens=6,
                                                      batch_size=2)
    assert got.texts == want.texts and list(got.output_tokens) == list(want.output_tokens)
    scored = engine.score(prompts, ["yes", "no"]).logprob_sum
    np.testing.assert_array_equal(scored, score_continuations(tiny_lm.model, tiny_lm.tokenizer, prompts, ["yes", "no"],
                                                              batch_size=2).logprob_sum)


def test_the_arms_default_hf_backend_predicts_what_bench_generate_computes(tiny_lm):
    suite = load_suite(MINI)
    ctx = suite_context(suite, lambda: tiny_lm, batch_size=3)
    assert isinstance(ctx.backend, HFBackend)
    for name in ("sentiment", "capitals"):
        task = suite.tasks[name]
        examples = task.split("test")
        preds = predict_with(ctx, tiny_lm, task, examples, name)
        prompts = [render_prompt(tiny_lm.tokenizer, task.spec, e.input) for e in examples]
        if task.spec.kind == "classification":
            words = label_continuations(tiny_lm.tokenizer, task.spec)
            res = score_continuations(tiny_lm.model, tiny_lm.tokenizer, prompts, words, batch_size=3)
            want = [task.spec.labels[int(np.argmax(s))] for s in res.label_scores(task.spec.label_score)]
            assert [p.label_scores for p in preds] == [{n: round(float(v), 4) for n, v in zip(task.spec.labels, s)}
                                                       for s in res.label_scores(task.spec.label_score)]
        else:
            want = generate(tiny_lm.model, tiny_lm.tokenizer, prompts, max_new_tokens=task.spec.max_new_tokens,
                            batch_size=3).texts
        assert [p.output for p in preds] == want


# ---- the selection path: --backend reaches every arm ----

def test_every_arm_predicts_through_the_chosen_backend(env, fake):
    write_suite(env / "s")
    run_dir = run(env, "fake")
    calls = fake[0].calls
    for arm in ("zero-shot", "lora", "rag-k1", "rag-k1+lora"):
        assert [p["output"] for p in predictions(run_dir, arm, "qa")] == [ANSWER, ANSWER]
    for arm in ("zero-shot", "lora"):  # scored by the engine: its last label wins
        assert [p["output"] for p in predictions(run_dir, arm, "topic")] == ["finance", "finance"]
    trained = [c.trained for c in calls if c.trained is not None]
    assert trained and all(t.method == "lora" and t.path.parent == artifacts.adapters_root() for t in trained)
    assert all((t.path / "adapter_config.json").is_file() for t in trained)  # a folder vLLM can load
    kinds = {(c.kind, c.trained is not None) for c in calls}
    assert kinds == {("generate", False), ("generate", True), ("score", False), ("score", True)}
    with_context = [c for c in calls if c.kind == "generate" and all("[1] " in p for p in c.prompts)]
    # rag-k1 on the base model, rag-k1+lora with the adapter: two questions each, with their passage
    assert sorted(c.trained is not None for c in with_context) == [False, True]
    assert all(len(c.prompts) == 2 and all(any(d["text"] in p for d in DOCS) for p in c.prompts) for c in with_context)
    assert not any("[1] " in p for c in calls if c not in with_context for p in c.prompts)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["model"]["backend"] == {"name": "fake", "version": "1", "code": "test"}
    assert record["options"]["backend"] == "fake"


def test_the_backend_and_its_version_key_every_cell(env, fake, monkeypatch):
    write_suite(env / "s")
    first = json.loads((run(env, "fake") / "run.json").read_text())
    again = json.loads((run(env, "fake") / "run.json").read_text())
    assert all(c["cached"] for c in again["cells"])
    monkeypatch.setitem(backends.BACKENDS, "fake", lambda settings: FakeBackend(version="2"))
    newer = json.loads((run(env, "fake") / "run.json").read_text())
    assert not any(c["cached"] for c in newer["cells"])
    assert {c["cache_key"] for c in newer["cells"]}.isdisjoint(c["cache_key"] for c in first["cells"])


def test_an_engine_without_prompt_log_probs_leaves_label_scoring_on_hf_and_says_so(tiny_lm):
    suite = load_suite(MINI)
    task = suite.tasks["sentiment"]
    logs: list[str] = []
    engine = FakeBackend(scores_labels=False)
    ctx = suite_context(suite, lambda: tiny_lm, batch_size=3, backend=engine, log=logs.append)
    spec = next(a for a in suite.spec.arms if a.name == "zero-shot")
    got = PromptArm(spec).predict(ctx, task, task.split("test")).predictions
    want = PromptArm(spec).predict(suite_context(suite, lambda: tiny_lm, batch_size=3), task,
                                   task.split("test")).predictions
    assert [p.label_scores for p in got] == [p.label_scores for p in want]  # scored by transformers
    assert engine.calls == []
    assert len(logs) == 1 and "no prompt log-probabilities" in logs[0] and "transformers" in logs[0]
    generated = next(a for a in suite.spec.arms if a.name == "zero-shot-gen")  # answers still go to the engine
    PromptArm(generated).predict(ctx, task, task.split("test"))
    assert [c.kind for c in engine.calls] == ["generate"]


# ---- asking for what is not there ----

def test_vllm_without_the_package_is_one_line_before_anything_loads(tmp_path, monkeypatch, capsys):
    assert backends.PACKAGES["vllm"] == "vllm"
    monkeypatch.setitem(backends.PACKAGES, "vllm", "no_such_package_for_trident_tests")
    monkeypatch.setattr("bench.runner.load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    assert main(["run", MINI, "--backend", "vllm", "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--backend vllm needs the package" in err and "trident-bench[vllm]" in err
    assert not (tmp_path / "results").exists()
    assert main(["run", MINI, "--backend", "vlm", "--results", str(tmp_path / "results")]) == 2
    assert "unknown backend (--backend) 'vlm'; did you mean 'vllm'?" in capsys.readouterr().err


def test_vllm_refuses_a_cpu_device_when_the_run_is_planned():
    from bench.backends_vllm import VllmBackend

    with pytest.raises(ResourceError, match="runs on a CUDA GPU; this run's device is cpu"):
        VllmBackend(BackendSettings("cpu", "float32", 0))


# ---- vLLM's glue, against a stand-in for vllm.LLM that computes with the tiny model ----

class LLMStandIn:
    """What VllmEngine reads from vllm.LLM.generate (token ids, prompt log-probabilities), computed
    one request at a time with the tiny transformers model; the keyword arguments it was built with."""

    def __init__(self, lm=None, **engine_args):
        self.lm, self.engine_args, self.loras = lm, engine_args, []

    def generate(self, requests, params, lora_request=None, use_tqdm=True):
        self.loras.append(lora_request)
        return [self._one(r["prompt_token_ids"], params) for r in requests]

    def _one(self, ids, params):
        model, x = self.lm.model, torch.tensor([ids])
        with torch.no_grad():
            logp = torch.log_softmax(model(x).logits[0].float(), -1)
            out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=params.max_tokens,
                                 do_sample=False, eos_token_id=params.stop_token_ids or None,
                                 pad_token_id=self.lm.tokenizer.pad_token_id)
        prompt_logprobs = None
        if params.prompt_logprobs:
            prompt_logprobs = [None] + [{t: types.SimpleNamespace(logprob=logp[k - 1, t].item())}
                                        for k, t in enumerate(ids) if k > 0]
        completion = types.SimpleNamespace(token_ids=out[0, len(ids):].tolist())
        return types.SimpleNamespace(outputs=[completion], prompt_logprobs=prompt_logprobs)


class SamplingParams:
    def __init__(self, temperature=1.0, max_tokens=16, stop_token_ids=None, prompt_logprobs=None, ignore_eos=False):
        assert temperature == 0.0  # greedy, always
        self.max_tokens, self.stop_token_ids, self.prompt_logprobs = max_tokens, stop_token_ids, prompt_logprobs


@pytest.fixture()
def vllm_stand_in(monkeypatch):
    """A `vllm` package of stand-ins; returns the LLMs made."""
    made: list[LLMStandIn] = []
    vllm = types.ModuleType("vllm")
    vllm.SamplingParams = SamplingParams
    vllm.LLM = lambda **kw: made.append(LLMStandIn(**kw)) or made[-1]
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda name, lora_id, path: ("lora", name, lora_id, path)
    for name, module in (("vllm", vllm), ("vllm.lora", types.ModuleType("vllm.lora")), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr("bench.backends_vllm._memory_utilisation", lambda: 0.4)
    return made


def test_the_vllm_engine_reads_label_log_probs_and_answers_as_transformers_computes_them(tiny_lm, vllm_stand_in):
    from bench.backends_vllm import VllmEngine

    prompts = ["short", "a much longer prompt with more bytes in it", "mid-size prompt"]
    conts = ["yes", "no", "maybe so"]
    engine = VllmEngine(LLMStandIn(tiny_lm), tiny_lm.tokenizer, lora=None)
    got = engine.score(prompts, conts)
    want = score_continuations(tiny_lm.model, tiny_lm.tokenizer, prompts, conts, batch_size=2)
    np.testing.assert_allclose(got.logprob_sum, want.logprob_sum, rtol=1e-4, atol=1e-4)
    assert list(got.n_tokens) == list(want.n_tokens) and list(got.prompt_tokens) == list(want.prompt_tokens)
    answers = engine.generate(prompts, 6)
    hf = generate(tiny_lm.model, tiny_lm.tokenizer, prompts, max_new_tokens=6, batch_size=1)
    assert answers.texts == hf.texts and list(answers.output_tokens) == list(hf.output_tokens)


def test_the_vllm_backend_serves_an_adapter_per_request_and_a_full_fine_tune_as_its_own_engine(
        env, tiny_lm, vllm_stand_in):
    from bench.backends_vllm import MAX_LORA_RANK, VllmBackend

    adapter, full = env / "adapter", env / "full"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 4}))
    backend = VllmBackend(BackendSettings("cuda", "float32", 0))
    base = backend.engine(tiny_lm, None, 8)
    folder = Path(vllm_stand_in[0].engine_args["model"])
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()  # random weights, saved once
    assert vllm_stand_in[0].engine_args["enable_lora"] and base.lora is None
    lora = backend.engine(tiny_lm, TrainedWeights(adapter, "lora"), 8)
    assert len(vllm_stand_in) == 1 and lora.llm is base.llm  # one engine, the adapter per request
    assert lora.lora == ("lora", "adapter", 1, str(adapter))
    backend.engine(tiny_lm, TrainedWeights(full, "full"), 8)
    assert len(vllm_stand_in) == 2 and vllm_stand_in[1].engine_args["model"] == str(full)
    full_args = vllm_stand_in[1].engine_args
    assert full_args["tokenizer"] == str(folder) and "enable_lora" not in full_args
    (adapter / "adapter_config.json").write_text(json.dumps({"r": MAX_LORA_RANK * 2}))
    with pytest.raises(ConfigError, match="use --backend hf"):
        VllmBackend(BackendSettings("cuda", "float32", 0)).engine(tiny_lm, TrainedWeights(adapter, "lora"), 8)


def test_the_gpu_check_compares_two_engines_on_legal_prompts(env, monkeypatch):
    """bench.perf engines on the CPU, with transformers twice: every answer and label agrees."""
    from bench.perf.__main__ import build_parser
    from bench.perf.engines import run as engines

    monkeypatch.setitem(backends.BACKENDS, "hf-again", HFBackend)
    args = build_parser().parse_args(["engines", "--model", "random:tiny-llama", "--backends", "hf,hf-again",
                                      "--device", "cpu", "--dtype", "float32", "--n", "6", "--max-new-tokens", "3",
                                      "--batch-size", "4"])
    out = engines(args)
    assert out["n"] == 6 and set(out["backends"]) == {"hf", "hf-again"}
    assert out["backends"]["hf"]["output_tokens_per_s"] > 0 and out["backends"]["hf"]["identity"]["name"] == "hf"
    assert out["backends"]["hf-again"]["agreement_with_hf"] == {"identical_answers": 1.0, "mean_agreed_share": 1.0,
                                                                "same_label": 1.0, "max_label_score_diff": 0.0}


def test_the_hf_path_never_imports_vllm():
    import subprocess

    code = ("import sys, bench.__main__ as m, bench.runner as r; m.parser(); r.RunOptions(); "
            "print('vllm' in sys.modules or 'bench.backends_vllm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
