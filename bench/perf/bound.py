"""The least time a finished run's work needs on this machine: FLOPs it cannot avoid at the matmul peak.

    python -m bench.perf bound results/legal/RUN_ID

For every cell of the run, the matrix multiplications it could not have skipped, counted from
run.json alone, divided by this machine's measured matmul peak in the run's dtype. The sum is a
lower bound on the run's wall time on this machine: no implementation of the same work (same
prompts, same generated tokens, same training tokens) can finish sooner without a faster
machine or a cheaper number format. What is counted, per cell:

- generation (QA, summaries): every prompt token and every generated token but the last of each
  answer through the model's body (2 x N FLOPs each, N = its matmul parameters without the
  embedding and the output head), plus the output head once per generated token;
- label scoring (classification): the prompts' tokens less the prefix they share, which the scorer
  computes once. How long that prefix is, run.json does not say; it cannot be longer than the
  shortest prompt less one token (each prompt feeds at least its last token), so the count takes
  that longest possible prefix off every prompt but one (the stored predictions give each
  prompt's length). The label tokens scored after each prompt are left out;
- training (fine-tunes): 4 x N per trained token (the forward pass and the gradient with respect
  to the activations; the frozen base needs no weight gradient; a full fine-tune 6 x N), once per
  trained model, on the first cell that used it. Validation passes, attention and the LoRA
  matrices are left out: all of them only add work.

The matmul peak is the best of square fp32/bf16 matmuls of three sizes (bench.perf.common), so
the bound is as low as this machine can make it. It is meaningful for a cold run: cells served
from a cache are listed but their work is not counted (it was done another time).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..results import Cell, load_predictions, load_run
from .common import matmul_peak

PEAK_SIZES = (1024, 2048, 3072)
"""Square matmul sizes tried for the peak; the best one is the ceiling."""


@dataclass(frozen=True)
class ModelShape:
    """What the FLOP count needs of a model."""

    body_params: int
    """Matmul parameters every token passes through: not the embedding lookup, not the output head."""
    head_params: int
    """Parameters of the output head (hidden size x vocabulary)."""


@dataclass(frozen=True)
class CellWork:
    """One cell's measured seconds beside the FLOPs it could not avoid."""

    variant: str
    task: str
    measured_s: float
    inference_flops: float
    training_flops: float
    counted: str
    """What was counted, in words (for the table)."""

    @property
    def flops(self) -> float:
        return self.inference_flops + self.training_flops


def label_scoring_tokens(prompt_lengths: Sequence[int]) -> int:
    """Prompt tokens a shared-prefix scorer must compute at the least: every prompt's tokens, less
    the longest prefix they could share (the shortest prompt but its last token) on all but one."""
    if not prompt_lengths:
        return 0
    longest_shared = max(0, min(prompt_lengths) - 1)
    return sum(prompt_lengths) - (len(prompt_lengths) - 1) * longest_shared


def cell_work(cell: Cell, shape: ModelShape, trained_already: set[str],
              prompt_lengths: Sequence[int] = ()) -> CellWork:
    """The unavoidable FLOPs of one cell; `trained_already` holds the trained models counted so far
    (this cell's is added), so a model used by several cells is counted once. `prompt_lengths`:
    each prediction's prompt tokens, which a label-scoring cell's count needs."""
    if cell.cached:
        return CellWork(cell.arm, cell.task, cell.predict_s, 0.0, 0.0, "cached: not counted")
    generated = cell.output_tokens
    if generated:
        body_tokens = cell.prompt_tokens + max(0, generated - cell.n)
        inference = 2.0 * shape.body_params * body_tokens + 2.0 * shape.head_params * generated
        counted = f"{body_tokens:,} tokens through the body, {generated:,} through the head"
    else:
        body_tokens = label_scoring_tokens(prompt_lengths)
        inference = 2.0 * shape.body_params * body_tokens
        counted = f"label scoring: at least {body_tokens:,} of {cell.prompt_tokens:,} prompt tokens"
    training = 0.0
    artifact, tokens = cell.reported.get("artifact"), cell.reported.get("train_tokens")
    if isinstance(tokens, (int, float)) and tokens > 0 and artifact not in trained_already:
        per_token = 6.0 if cell.reported.get("method") == "full" else 4.0
        training = per_token * shape.body_params * tokens
        counted += f"; training {int(tokens):,} tokens"
        if artifact:
            trained_already.add(str(artifact))
    return CellWork(cell.arm, cell.task, cell.predict_s, inference, training, counted)


def run_work(cells: list[Cell], shape: ModelShape,
             prompt_lengths: Callable[[Cell], Sequence[int]] = lambda cell: ()) -> list[CellWork]:
    trained: set[str] = set()
    return [cell_work(c, shape, trained, () if c.output_tokens or c.cached else prompt_lengths(c)) for c in cells]


def model_shape(spec: str) -> ModelShape:
    """Counted on the meta device from the model's config: no weights are loaded."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from ..models import EMBEDDED, _random_config, embedded_dir, local_path
    from .common import body_params

    if spec in EMBEDDED:
        config = AutoConfig.from_pretrained(str(embedded_dir(spec)))
    elif spec.startswith("random:"):
        config = AutoConfig.for_model(**_random_config(spec[7:]))
    else:
        config = AutoConfig.from_pretrained(str(local_path(spec) or spec))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    head = model.get_output_embeddings()
    return ModelShape(body_params(model), head.weight.numel() if head is not None else 0)


def table(work: list[CellWork], peak: float, wall_s: float, model_load_s: float | None) -> str:
    lines = ["| cell | measured s | FLOPs it cannot avoid | s at the matmul peak | share of the measured time |",
             "|---|---|---|---|---|"]
    for w in work:
        at_peak = w.flops / peak
        share = f"{at_peak / w.measured_s:.0%}" if w.flops and w.measured_s else ""
        lines.append(f"| {w.variant} · {w.task} | {w.measured_s:.1f} | {w.flops / 1e12:.2f} T ({w.counted}) "
                     f"| {at_peak:.1f} | {share} |")
    total = sum(w.flops for w in work) / peak
    lines.append(f"| **whole run** | **{wall_s:.1f}** (model load {model_load_s or 0:.1f}) "
                 f"| {sum(w.flops for w in work) / 1e12:.2f} T | **{total:.1f}** | {total / wall_s:.0%} |")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="a run directory (results/SUITE/RUN_ID), best a cold run")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per matmul size when measuring the peak")
    parser.add_argument("--peak-gflops", type=float, default=None,
                        help="use this matmul peak (GFLOP/s, measured earlier on an idle machine) instead of measuring "
                             "it now, when other work shares the machine")


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    import torch

    results = load_run(args.run_dir)
    shape = model_shape(results.model_spec)
    dtype = results.dtype if results.dtype in ("float32", "bfloat16", "float16") else "float32"
    if args.peak_gflops:
        peaks = {0: args.peak_gflops * 1e9}
    else:
        peaks = {size: matmul_peak(dtype, size=size, seconds=args.seconds) for size in PEAK_SIZES}
    peak = max(peaks.values())
    def prompt_lengths(cell: Cell) -> list[int]:
        return [p.prediction.prompt_tokens for p in load_predictions(args.run_dir, cell.arm, cell.task)]

    work = run_work(results.cells, shape, prompt_lengths)
    print(f"run {args.run_dir} ({results.model_spec}, {dtype}, {results.device}); torch threads "
          f"{torch.get_num_threads()}; N = {shape.body_params:,} body + {shape.head_params:,} head parameters")
    measured = ", ".join(f"{s}^3 {p / 1e9:.1f}" for s, p in peaks.items()) if not args.peak_gflops else "given"
    print(f"matmul peak ({measured}): {peak / 1e9:.1f} GFLOP/s used\n")
    n = shape.body_params
    print(f"ceilings at that peak: prompt tokens {peak / (2 * n):,.0f}/s (2N each), LoRA training "
          f"{peak / (4 * n):,.0f} real tokens/s (4N), full fine-tuning {peak / (6 * n):,.0f} (6N)\n")
    print(table(work, peak, results.wall_s, results.model_load_s))
    return None
