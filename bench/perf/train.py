"""Fine-tuning arm: training tokens/s of the arm's Trainer path against naive baselines.

LoRA training tokens/s, counting real tokens only (never padding): the arm's Trainer path
(right-padded batches, in random order as length-balanced micro-batches, logits only from the
first answer position) against a naive fp32
loop (right-padded to --naive-length, full logits), on the same examples; optionally against
transformers' Trainer padded to --max-length, and full fine-tuning; MFU (4N / 6N FLOPs per
token) against the device's measured matmul peak.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .common import body_params, matmul_peak, release_cuda_memory

if TYPE_CHECKING:
    from ..training.trainer import FitResult, TrainConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", default="legal")
    parser.add_argument("--task", default="clause_type")
    parser.add_argument("--model", default=None, help="default: the suite's model (e.g. random:qwen2.5-0.5b on a GPU)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--steps", type=int, default=6, help="optimiser steps timed per variant")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--naive-length", type=int, default=128, help="the naive loop pads every batch to this")
    parser.add_argument("--learning-rate", type=float, default=2e-4,
                        help="LoRA learning rate (full fine-tuning uses a tenth); throughput does not depend on it")
    parser.add_argument("--hf-baseline", action="store_true",
                        help="also time transformers' Trainer with padding to --max-length and full logits")
    parser.add_argument("--with-full", action="store_true", help="also time full fine-tuning (6N FLOPs per token)")
    parser.add_argument("--with-bf16", action="store_true",
                        help="also time a bf16 frozen base with fp32 adapters, with and without LoRA dropout")
    parser.add_argument("--batchings", default=None,
                        help="also time the fp32 LoRA in these batchings, comma-separated: 'random:M' (random "
                             "order, micro-batches of M examples) or 'length_grouped', e.g. "
                             "random:8,random:4,random:2,random:1,length_grouped")


class Variant(NamedTuple):
    """One timed configuration of the arm's Trainer path; its name is its key in the output."""

    name: str
    method: str
    base_dtype: str
    dropout: float

    def wanted(self, *, with_bf16: bool, with_full: bool) -> bool:
        """The fp32 LoRA variant always runs; the others when their option asks for them."""
        return not ((self.base_dtype == "bfloat16" and not with_bf16) or (self.method == "full" and not with_full))


VARIANTS = (Variant("trident_fp32", "lora", "float32", 0.05),
            Variant("trident_bf16_frozen_base", "lora", "bfloat16", 0.05),
            Variant("trident_bf16_frozen_base_no_dropout", "lora", "bfloat16", 0.0),
            Variant("trident_full", "full", "float32", 0.0))


def run(args: argparse.Namespace) -> dict:
    """Training throughput of the fine-tuning arm against a naive padded fp32 loop."""
    import torch

    from ..errors import TrainingError
    from ..models import load_model
    from ..suites import load_suite
    from ..training.sft import encode_task

    suite = load_suite(args.suite, apply_limits=False)
    task = suite.tasks[args.task]
    lm = load_model(args.model or suite.spec.model, device=args.device, dtype="float32")
    # sorted by id: the same examples whatever order the suite loader returns them in
    train = sorted(task.split("train"), key=lambda e: e.id)[: args.steps * args.batch_size]
    rows = encode_task(lm.tokenizer, task.spec, train, args.max_length)
    real = [len(r["input_ids"]) for r in rows]
    out: dict = {"suite": args.suite, "task": args.task, "model": lm.spec, "device": lm.device,
                 "threads": torch.get_num_threads(), "examples": len(rows), "batch_size": args.batch_size,
                 "mean_real_tokens": float(np.mean(real)), "max_real_tokens": max(real)}
    cfg = base_config(args.batch_size, args.learning_rate)

    out["naive_fp32_padded"] = _naive_loop(lm, rows, cfg, args.batch_size, args.naive_length)
    basis = MfuBasis.measure(lm, args.with_bf16)
    out["mfu_basis"] = basis.as_json()
    if args.hf_baseline:
        out["hf_trainer_padded"] = _hf_padded_baseline(lm, rows, cfg, args.batch_size, args.max_length)
        out["hf_trainer_padded"]["mfu"] = basis.utilisation(out["hf_trainer_padded"]["real_tokens_per_s"], "lora")
    for variant in VARIANTS:
        if not variant.wanted(with_bf16=args.with_bf16, with_full=args.with_full):
            continue
        try:
            res = _fit_variant(lm, rows, variant_config(cfg, variant), args.batch_size)
        except TrainingError as e:  # reported, not hidden: the other variants still get timed
            out[variant.name] = {"error": str(e), "method": variant.method, "base_dtype": variant.base_dtype}
            continue
        out[variant.name] = _variant_figures(res, variant, basis, naive=out["naive_fp32_padded"],
                                             hf=out.get("hf_trainer_padded"))
    fp32 = VARIANTS[0]
    for name in (args.batchings or "").split(",") if args.batchings else ():
        res = _fit_variant(lm, rows, batching_config(variant_config(cfg, fp32), name), args.batch_size)
        out[f"{fp32.name} {name}"] = _variant_figures(res, fp32, basis, naive=out["naive_fp32_padded"],
                                                      hf=out.get("hf_trainer_padded"))
    return out


def batching_config(cfg: TrainConfig, name: str) -> TrainConfig:
    """`cfg` in the batching `name`: 'random:M' (random order in micro-batches of M) or 'length_grouped'."""
    from ..errors import ConfigError

    order, _, micro = name.partition(":")
    if order == "length_grouped" and not micro:
        return cfg.replace_hp(batch_order="length_grouped")
    if order == "random" and micro.isdigit() and int(micro) >= 1 and cfg.hp.batch_size % int(micro) == 0:
        return cfg.replace_hp(batch_order="random", micro_batch_size=int(micro))
    raise ConfigError(f"--batchings: '{name}' is not 'length_grouped' or 'random:M' with M dividing the batch size "
                      f"{cfg.hp.batch_size}")


def base_config(batch_size: int, learning_rate: float) -> TrainConfig:
    """The LoRA run every variant and baseline starts from: a throughput run (one epoch, no
    learning-rate warm-up), not a training recipe."""
    from ..config import FinetuneArm
    from ..training.trainer import TrainConfig

    spec = FinetuneArm(arm="finetune", name="perf", method="lora", rank=16, alpha=32, dropout=0.05, epochs=1,
                       batch_size=batch_size, learning_rate=learning_rate, warmup_ratio=0.0)
    return TrainConfig(spec, seed=0)


def variant_config(cfg: TrainConfig, variant: Variant) -> TrainConfig:
    """`cfg` changed to `variant`; full fine-tuning at a tenth of the LoRA learning rate (every
    weight moves; a LoRA-sized step could diverge, and throughput does not depend on it)."""
    lr = cfg.hp.learning_rate / 10 if variant.method == "full" else cfg.hp.learning_rate
    changed = cfg.replace_hp(method=variant.method, dropout=variant.dropout, learning_rate=lr)
    return dataclasses.replace(changed, base_dtype=variant.base_dtype)


def naive_batch(batch: list[dict], width: int, pad: int) -> tuple[Any, Any, Any]:
    """(input_ids, labels, attention_mask) right-padded to `width`; longer rows keep their last
    `width` tokens, where the answer (the only labelled part) is."""
    import torch

    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, r in enumerate(batch):
        k = min(width, len(r["input_ids"]))
        ids[i, :k], labels[i, :k], mask[i, :k] = torch.tensor(r["input_ids"][-k:]), torch.tensor(r["labels"][-k:]), 1
    return ids, labels, mask


def _naive_loop(lm: Any, rows: list[dict], cfg: TrainConfig, batch_size: int, width: int) -> dict:
    """A hand-written fp32 loop as a first attempt would write it: every batch right-padded to
    `width`, loss from logits at every position."""
    seconds, real_tokens, steps = _naive_train_seconds(lm, rows, cfg, batch_size, width)
    release_cuda_memory(lm.device)  # the naive model went with the call that trained it
    return {"real_tokens_per_s": real_tokens / seconds, "padded_tokens_per_s": len(rows) * width / seconds,
            "s_per_step": seconds / steps, "width": width}


def _naive_train_seconds(lm: Any, rows: list[dict], cfg: TrainConfig, batch_size: int,
                         width: int) -> tuple[float, int, int]:
    """(seconds, real tokens, steps) of one pass over `rows` after a one-batch warm-up step."""
    import torch

    from ..training.trainer import prepare_model

    model = prepare_model(lm.model, cfg, lm.device)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.hp.learning_rate)
    batches = [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]

    def step(batch: list[dict]) -> int:
        ids, labels, mask = naive_batch(batch, width, lm.tokenizer.pad_token_id)
        loss = model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device), labels=labels.to(lm.device)).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        return int(mask.sum())  # counted on the host copy: no GPU sync inside the timed loop

    step(batches[0])  # warm-up
    start, tokens = time.perf_counter(), 0
    for b in batches:
        tokens += step(b)
    return time.perf_counter() - start, tokens, len(batches)


@dataclass(frozen=True)
class MfuBasis:
    """What model FLOPs utilisation is measured against: N (body parameters) and this device's
    matmul peak in the dtype the variants train in."""

    body_params: int
    peak_flops: float
    peak_dtype: str

    @classmethod
    def measure(cls, lm: Any, with_bf16: bool) -> MfuBasis:
        # bf16 where a variant trains in it (always on CUDA, whose Trainer path autocasts), else fp32
        peak_dtype = "bfloat16" if (with_bf16 or lm.device.startswith("cuda")) else "float32"
        return cls(body_params(lm.model), matmul_peak(peak_dtype, device=lm.device), peak_dtype)

    def utilisation(self, tokens_per_s: float, method: str) -> float:
        """4N FLOPs a token for LoRA (no weight gradients for the frozen base), 6N for full."""
        return (6 if method == "full" else 4) * self.body_params * tokens_per_s / self.peak_flops

    def as_json(self) -> dict:
        return {"body_params": self.body_params, "flops_per_token_lora": 4 * self.body_params,
                "flops_per_token_full": 6 * self.body_params, "matmul_peak_tflops": self.peak_flops / 1e12,
                "peak_dtype": self.peak_dtype}


def _fit_variant(lm: Any, rows: list[dict], cfg: TrainConfig, batch_size: int) -> FitResult:
    """The arm's `fit` on `rows` after a one-batch warm-up run (first-step allocation and kernel
    selection are not the steady state); returns its FitResult."""
    from ..training.trainer import fit, prepare_model

    model = prepare_model(lm.model, cfg, lm.device)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            fit(model, lm.tokenizer, rows[:batch_size], None, cfg, Path(tmp) / "warm", device=lm.device, log=_discard)
            return fit(model, lm.tokenizer, rows, None, cfg, Path(tmp) / "run", device=lm.device, log=_discard)
    finally:
        del model
        release_cuda_memory(lm.device)


def _discard(message: str) -> None:
    """fit's progress log, dropped: the JSON on stdout is the benchmark's only output."""


def _variant_figures(res: FitResult, variant: Variant, basis: MfuBasis, naive: dict, hf: dict | None) -> dict:
    figures = {"real_tokens_per_s": res.tokens_per_s, "s_per_step": res.step_seconds / max(1, res.steps),
               "steps": res.steps, "wall_s_incl_setup_and_save": res.wall_seconds,
               "speedup_vs_naive": res.tokens_per_s / naive["real_tokens_per_s"],
               "mfu": basis.utilisation(res.tokens_per_s, variant.method), "method": variant.method,
               "precision": res.precision, "lora_dropout": variant.dropout if variant.method == "lora" else None,
               "peak_memory_mb": res.peak_memory_mb, "peak_memory_kind": res.peak_memory_kind}
    if hf is not None and variant.method == "lora":
        figures["speedup_vs_hf_trainer_padded"] = res.tokens_per_s / hf["real_tokens_per_s"]
    return figures


def pad_rows(rows: list[dict], width: int, pad: int) -> list[dict]:
    """Rows right-padded to `width` as a tutorial's data collator would feed them: attention off
    and labels -100 on the padding, so the loss is the same as unpadded."""
    return [{"input_ids": r["input_ids"] + [pad] * (width - len(r["input_ids"])),
             "attention_mask": [1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])),
             "labels": r["labels"] + [-100] * (width - len(r["input_ids"]))} for r in rows]


def _hf_padded_baseline(lm: Any, rows: list[dict], cfg: TrainConfig, batch_size: int, width: int) -> dict:
    """transformers' Trainer set up as its tutorials do: every example right-padded to
    --max-length, loss from logits at every position (labels -100 on prompt and padding), bf16
    autocast over fp32 weights on CUDA, no length grouping; the same LoRA and data as the arm."""
    padded = pad_rows(rows, width, lm.tokenizer.pad_token_id)
    with tempfile.TemporaryDirectory() as tmp:
        _hf_trainer_seconds(lm, padded[:batch_size], cfg, batch_size, tmp)  # warm-up
        seconds = _hf_trainer_seconds(lm, padded, cfg, batch_size, tmp)
    real = sum(len(r["input_ids"]) for r in rows)
    steps = -(-len(rows) // batch_size)
    return {"real_tokens_per_s": real / seconds, "padded_tokens_per_s": len(rows) * width / seconds,
            "s_per_step": seconds / steps, "steps": steps, "width": width}


def _hf_trainer_seconds(lm: Any, data: list[dict], cfg: TrainConfig, batch_size: int, output_dir: str) -> float:
    """Seconds spent in optimiser steps by a plain Trainer over `data` (one epoch)."""
    import torch
    from transformers import Trainer, TrainingArguments, default_data_collator
    from transformers.trainer_callback import PrinterCallback

    from ..training.callbacks import StepTimer
    from ..training.trainer import prepare_model

    cuda = lm.device.startswith("cuda")
    model = prepare_model(lm.model, dataclasses.replace(cfg, base_dtype="float32"), lm.device)
    timer = StepTimer()  # the arm's own timer, so both count the same part of a step
    targs = TrainingArguments(output_dir=output_dir, per_device_train_batch_size=batch_size, num_train_epochs=1,
                              learning_rate=cfg.hp.learning_rate, bf16=cuda and torch.cuda.is_bf16_supported(),
                              save_strategy="no", report_to="none", disable_tqdm=True, logging_steps=10,
                              use_cpu=not cuda, dataloader_pin_memory=cuda, remove_unused_columns=False)
    trainer = Trainer(model=model, args=targs, train_dataset=data, data_collator=default_data_collator,
                      callbacks=[timer])
    trainer.remove_callback(PrinterCallback)  # it prints the run's summary dict: stdout is for the JSON only
    trainer.train()
    return timer.seconds
