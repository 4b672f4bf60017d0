"""The speed benchmarks' pure helpers and command line (the benchmarks themselves are run by
hand for docs/performance.md, never timed in tests)."""

import numpy as np
import pytest
import torch

from bench.perf import body_params, flops_per_token, synthetic_vectors
from bench.perf.__main__ import SUBCOMMANDS, build_parser
from bench.perf.train import VARIANTS, base_config, naive_batch, pad_rows, variant_config
from bench.results import Cell


class _TinyLM(torch.nn.Module):
    """Named like a Hugging Face causal LM: the embedding and head are left out of N."""

    def __init__(self, vocab: int = 10, hidden: int = 4, layers: int = 2):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(vocab, hidden)
        self.layers = torch.nn.ModuleList(torch.nn.Linear(hidden, hidden, bias=False) for _ in range(layers))
        self.lm_head = torch.nn.Linear(hidden, vocab, bias=False)
        self.config = type("Config", (), {"num_hidden_layers": layers, "hidden_size": hidden})()


def test_body_params_leave_out_embedding_and_head():
    assert body_params(_TinyLM()) == 2 * 4 * 4


def test_flops_per_token_is_matmuls_plus_causal_attention():
    # 2N for the body's matmuls + 4 x layers x hidden x context / 2 for causal attention
    assert flops_per_token(_TinyLM(), context=10.0) == 2 * 32 + 4 * 2 * 4 * 10 / 2


def test_synthetic_vectors_are_unit_length_and_reproducible():
    x, q = synthetic_vectors(np.random.default_rng(0), 500, 16, 20)
    assert x.shape == (500, 16) and q.shape == (20, 16)
    assert x.dtype == np.float32 and x.flags["C_CONTIGUOUS"] and q.flags["C_CONTIGUOUS"]
    assert np.allclose(np.linalg.norm(np.vstack([x, q]), axis=1), 1.0, atol=1e-5)
    x2, _ = synthetic_vectors(np.random.default_rng(0), 500, 16, 20)
    assert np.array_equal(x, x2)


def test_naive_batch_keeps_the_answer_end_of_long_rows():
    rows = [{"input_ids": [1, 2, 3, 4, 5], "labels": [-100, -100, -100, 4, 5]}, {"input_ids": [7], "labels": [7]}]
    ids, labels, mask = naive_batch(rows, width=3, pad=0)
    assert ids.tolist() == [[3, 4, 5], [7, 0, 0]]
    assert labels.tolist() == [[-100, 4, 5], [7, -100, -100]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_pad_rows_masks_and_ignores_padding():
    (row,) = pad_rows([{"input_ids": [5, 6], "labels": [-100, 6]}], width=4, pad=0)
    assert row == {"input_ids": [5, 6, 0, 0], "attention_mask": [1, 1, 0, 0], "labels": [-100, 6, -100, -100]}


def test_variant_configs_change_only_what_the_variant_names():
    cfg = base_config(batch_size=4, learning_rate=2e-4)
    full = variant_config(cfg, next(v for v in VARIANTS if v.method == "full"))
    assert full.hp.method == "full" and full.hp.learning_rate == pytest.approx(2e-5) and full.base_dtype == "float32"
    bf16 = variant_config(cfg, next(v for v in VARIANTS if v.base_dtype == "bfloat16" and v.dropout == 0.0))
    assert (bf16.hp.method, bf16.hp.dropout, bf16.base_dtype) == ("lora", 0.0, "bfloat16")
    assert bf16.hp.batch_size == 4 and bf16.hp.learning_rate == 2e-4 and bf16.hp.rank == cfg.hp.rank


def test_batchings_name_the_order_and_micro_batch_and_refuse_what_does_not_fit():
    from bench.errors import ConfigError
    from bench.perf.train import base_config, batching_config

    cfg = base_config(8, 2e-4)
    assert (batching_config(cfg, "random:2").hp.batch_order, batching_config(cfg, "random:2").hp.micro_batch_size) \
        == ("random", 2)
    assert batching_config(cfg, "length_grouped").hp.batch_order == "length_grouped"
    for bad in ("random:3", "random", "random:0", "sorted"):
        with pytest.raises(ConfigError, match="--batchings"):
            batching_config(cfg, bad)


def test_command_line_defaults():
    assert list(SUBCOMMANDS) == ["prompt", "generation", "train", "rag", "retrieval", "faiss-scale", "parity",
                                 "engines", "bound"]
    parse = build_parser().parse_args
    assert vars(parse(["prompt"])) == {"what": "prompt", "suite": "legal", "task": "clause_type", "n": 64,
                                       "naive_n": 16, "batch_size": 16}
    assert vars(parse(["generation"])) == {"what": "generation", "suite": "legal", "task": "tenancy_qa",
                                           "variant": "rag-k3", "split": "validation", "n": 32, "batch_size": 16}
    train = vars(parse(["train"]))
    assert train == {"what": "train", "suite": "legal", "task": "clause_type", "model": None, "device": None,
                     "steps": 6, "batch_size": 8, "max_length": 256, "naive_length": 128, "learning_rate": 2e-4,
                     "hf_baseline": False, "with_full": False, "with_bf16": False, "batchings": None}
    rag = parse(["rag", "--sizes", "1000,2000"])
    assert (rag.embedder, rag.batch_sizes, rag.sizes, rag.queries) == ("all-minilm-l6-v2", [16, 32, 64],
                                                                       [1000, 2000], 1000)


def _cell(arm: str, task: str, *, prompt: int, generated: int = 0, n: int = 10, cached: bool = False,
          **reported) -> Cell:
    return Cell(arm, task, n, cached, "2026-11-28T00:00:00Z", 50.0, 5.0, prompt, reported, output_tokens=generated)


def test_the_bound_counts_generation_and_each_trained_model_once():
    from bench.perf.bound import ModelShape, run_work

    shape = ModelShape(body_params=100, head_params=7)
    work = run_work([
        _cell("zero-shot", "qa", prompt=1000, generated=50, n=10),  # 1000 + (50 - 10) tokens through the body
        _cell("lora", "qa", prompt=1000, generated=50, artifact="abc", train_tokens=300, method="lora"),
        _cell("rag+lora", "qa", prompt=4000, generated=50, artifact="abc", train_tokens=300, method="lora"),
        _cell("full", "qa", prompt=1000, generated=50, artifact="def", train_tokens=300, method="full"),
    ], shape)
    inference = 2 * 100 * 1040 + 2 * 7 * 50
    assert work[0].flops == inference and work[0].training_flops == 0
    assert work[1].training_flops == 4 * 100 * 300                    # a frozen base: forward + activation gradient
    assert work[2].training_flops == 0 and work[2].inference_flops == 2 * 100 * 4040 + 2 * 7 * 50  # trained once
    assert work[3].training_flops == 6 * 100 * 300                    # every weight's gradient too


def test_the_bound_takes_the_longest_possible_shared_prefix_off_label_scoring():
    from bench.perf.bound import ModelShape, label_scoring_tokens, run_work

    # prompts of 30, 50 and 40 tokens can share at most 29: one prompt whole, the others past 29
    assert label_scoring_tokens([30, 50, 40]) == 30 + (50 - 29) + (40 - 29)
    assert label_scoring_tokens([]) == 0
    work = run_work([_cell("zero-shot", "cls", prompt=120, n=3)], ModelShape(100, 7), lambda cell: [30, 50, 40])
    assert work[0].flops == 2 * 100 * 62 and "at least 62 of 120" in work[0].counted


def test_the_bound_leaves_out_cached_cells():
    from bench.perf.bound import ModelShape, run_work

    asked = []
    work = run_work([_cell("rag", "qa", prompt=5000, generated=40, cached=True),
                     _cell("lora", "cls", prompt=5000, cached=True, artifact="x", train_tokens=900)],
                    ModelShape(100, 7), lambda cell: asked.append(cell) or [10, 10])
    assert [w.flops for w in work] == [0.0, 0.0] and not asked
    assert all("cached" in w.counted for w in work)


def test_the_model_shape_is_counted_without_weights():
    from bench.perf.bound import model_shape

    shape = model_shape("random:tiny-llama")
    model = __import__("bench.models", fromlist=["load_model"]).load_model("random:tiny-llama", device="cpu").model
    assert shape.body_params == body_params(model)
    assert shape.head_params == model.get_output_embeddings().weight.numel()
