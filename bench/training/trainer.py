"""Train a causal LM with transformers' Trainer (and PEFT for LoRA): early stopping on
validation, best checkpoint restored, resume after an interruption, OOM fallback.

Why Trainer rather than a hand-written loop: the arm's speed comes from what is fed to the model
(length-grouped, right-padded batches with logits only at answer positions, see sft.py), not from
the loop around it, and Trainer brings DDP / `accelerate launch` / torchrun, checkpoint + resume,
gradient accumulation with correct token-count normalisation, warm-up and decay for free. The
benchmark (`python -m bench.perf train`) measures the Trainer path against a naive loop.
"""

from __future__ import annotations

import copy
import errno
import math
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..generate import contiguous_head
from .sft import RightPadCollator, ListDataset

# LoRA targets per architecture (config.model_type); anything else gets PEFT's "all-linear".
DEFAULT_TARGETS: dict[str, list[str]] = {
    **{k: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
       for k in ("llama", "qwen2", "qwen3", "mistral", "gemma", "gemma2", "olmo", "olmo2", "granite", "smollm3")},
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
}


class TrainingError(Exception):
    """Training could not produce a trustworthy model; the message says why and what to do."""


@dataclass
class TrainConfig:
    """What `fit` needs, taken from the arm spec (see bench.config.FinetuneArm)."""

    method: str = "lora"
    rank: int = 16
    alpha: float = 32
    dropout: float = 0.05
    target_modules: list[str] | None = None
    epochs: float = 3
    learning_rate: float = 2e-4
    batch_size: int = 8
    grad_accum: int = 1
    warmup_ratio: float = 0.1
    patience: int = 2
    evals_per_epoch: int = 2
    select_on: str = "loss"
    weight_decay: float = 0.0
    seed: int = 0
    base_dtype: str = "float32"  # LoRA only: dtype of the frozen base weights (adapters stay fp32); see lora_base_dtype


@dataclass
class FitResult:
    model: Any
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    max_steps: int = 0
    best_step: int | None = None
    stopped_early: bool = False
    train_tokens: int = 0
    step_seconds: float = 0.0
    wall_seconds: float = 0.0
    peak_memory_mb: float = 0.0
    peak_memory_kind: str = ""
    batch_size: int = 0
    grad_accum: int = 0
    precision: str = "float32"
    resumed_from: str | None = None
    is_main: bool = True
    wait: Callable[[], None] = lambda: None

    @property
    def tokens_per_s(self) -> float:
        return self.train_tokens / self.step_seconds if self.step_seconds else 0.0


def lora_base_dtype(device: str) -> str:
    """bf16 frozen base weights where bf16 matmul is native (CUDA with bf16, CPUs with AVX512-BF16
    or AMX): measured faster than fp32 on this project's CPU (docs/performance.md), with the
    adapters, their gradients and optimiser state kept in fp32. fp32 elsewhere."""
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    from ..models import cpu_has_native_bf16

    return "bfloat16" if cpu_has_native_bf16() else "float32"


def default_targets(model: Any) -> list[str] | str:
    return DEFAULT_TARGETS.get(getattr(model.config, "model_type", ""), "all-linear")


def prepare_model(base: Any, cfg: TrainConfig, device: str) -> Any:
    """A trainable copy of `base` (never the shared model itself): fp32 weights; LoRA wrapped."""
    import torch

    if cfg.method == "qlora":
        raise TrainingError("qlora is prepared by prepare_qlora (CUDA + bitsandbytes), not from an in-memory model")
    frozen_dtype = cfg.base_dtype if cfg.method == "lora" else "float32"
    model = copy.deepcopy(base).to(device=device, dtype=getattr(torch, frozen_dtype))
    model.config.use_cache = False
    contiguous_head(model)  # logits_to_keep's strided slice would copy the 49k-row head weight per sequence
    if cfg.method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    if cfg.method != "lora":
        raise TrainingError(f"method '{cfg.method}' is not trained by the Trainer path")
    return _wrap_lora(model, cfg)


def _wrap_lora(model: Any, cfg: TrainConfig) -> Any:
    import torch
    from peft import LoraConfig, get_peft_model

    targets = cfg.target_modules or default_targets(model)
    # The adapters' random init must come from the run's seed, not from whatever the arms
    # before this one left in the global generator (the same variant trained to different
    # adapters depending on which other variants ran first).
    torch.manual_seed(cfg.seed)
    try:
        return get_peft_model(model, LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                                                target_modules=targets, task_type="CAUSAL_LM"))
    except ValueError as e:
        raise TrainingError(f"LoRA target modules {targets} do not fit this model: {str(e).splitlines()[0]}") from None


def prepare_qlora(model_path: Callable[[], str], cfg: TrainConfig, device: str) -> Any:
    """4-bit base (bitsandbytes NF4) + LoRA adapters; CUDA only. `model_path` is asked for the
    base model's files only once CUDA and bitsandbytes are known to be there."""
    if not device.startswith("cuda"):
        raise TrainingError("qlora needs a CUDA GPU (bitsandbytes 4-bit kernels); use method: lora on this machine")
    try:
        import bitsandbytes  # noqa: F401
    except Exception as e:  # ImportError, or a CUDA-setup error raised at import
        raise TrainingError(f"qlora needs bitsandbytes, which does not import here ({type(e).__name__}): "
                            "pip install bitsandbytes, or use method: lora") from None
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(model_path(), quantization_config=quant, device_map={"": device})
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return _wrap_lora(model, cfg)


def count_params(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def last_good_checkpoint(out_dir: Path) -> str | None:
    """The newest checkpoint whose files were all written (a disk-full or killed save leaves a
    partial one behind: it is removed, and the one before it is used)."""
    if not out_dir.is_dir():
        return None
    found = sorted((p for p in out_dir.glob("checkpoint-*") if p.is_dir() and p.name[11:].isdigit()),
                   key=lambda p: int(p.name[11:]), reverse=True)
    for ck in found:
        weights = (ck / "adapter_model.safetensors").is_file() or (ck / "model.safetensors").is_file()
        if weights and (ck / "trainer_state.json").is_file() and (ck / "optimizer.pt").is_file():
            return str(ck)
        shutil.rmtree(ck, ignore_errors=True)
    return None


def fit(model: Any, tokenizer: Any, train_rows: list[dict], val_rows: list[dict] | None, cfg: TrainConfig,
        out_dir: Path, *, device: str, log: Callable[[str], None] = print,
        metric: tuple[str, Callable[[Any], float]] | None = None,
        progress: Callable[[str, int], Callable[[int], None]] | None = None, label: str = "train") -> FitResult:
    """Train `model` in place on encoded rows; with `val_rows`, evaluate (loss, and `metric` if
    given) `evals_per_epoch` times an epoch, stop after `patience` evaluations without
    improvement and restore the best checkpoint. Interrupted runs resume from `out_dir`."""
    import torch

    if not train_rows:
        raise TrainingError("no training examples")
    bs, accum = cfg.batch_size, cfg.grad_accum
    started = time.perf_counter()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    while True:
        trainer, timer = _build(model, tokenizer, train_rows, val_rows, cfg, out_dir, device, bs, accum, metric,
                                progress, label)
        resume = last_good_checkpoint(out_dir)
        if resume:
            log(f"[finetune] resuming {label} from {Path(resume).name}")
        try:
            trainer.train(resume_from_checkpoint=resume)
            break
        except torch.OutOfMemoryError:
            if bs == 1:
                raise TrainingError("out of memory even at batch size 1: lower max_length, or use method lora/qlora")
            exact = bs % 2 == 0
            bs, accum = bs // 2, accum * 2
            log(f"[finetune] out of memory: batch size halved to {bs} with grad_accum {accum} "
                f"({'same' if exact else 'slightly smaller'} effective batch {bs * accum}); retrying")
            del trainer
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise TrainingError(f"disk full while writing checkpoints under {out_dir}: free space (or set "
                                    "TRIDENT_CACHE to a bigger disk) and rerun; training resumes from the last "
                                    "complete checkpoint") from None
            raise
    state = trainer.state
    history = _history(state.log_history)
    if device.startswith("cuda"):
        peak, kind = torch.cuda.max_memory_allocated() / 2**20, "cuda max allocated"
    else:
        peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"
    best_step = None
    if state.best_model_checkpoint:
        best_step = int(Path(state.best_model_checkpoint).name.split("-")[-1])
    return FitResult(
        model=trainer.model, history=history, steps=state.global_step, max_steps=state.max_steps,
        best_step=best_step, stopped_early=bool(val_rows) and state.global_step < state.max_steps,
        train_tokens=int(state.num_input_tokens_seen - timer.tokens_at_start), step_seconds=timer.seconds,
        wall_seconds=time.perf_counter() - started, peak_memory_mb=round(peak, 1), peak_memory_kind=kind,
        batch_size=bs, grad_accum=accum, precision=(f"{cfg.base_dtype if cfg.method == 'lora' else 'float32'} weights"
                                                 + (" + bf16 autocast" if trainer.args.bf16 else "")),
        resumed_from=Path(resume).name if resume else None, is_main=trainer.is_world_process_zero(),
        wait=trainer.accelerator.wait_for_everyone)


def _build(model, tokenizer, train_rows, val_rows, cfg, out_dir, device, bs, accum, metric, progress, label):
    import torch
    import transformers
    from transformers import EarlyStoppingCallback, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    transformers.logging.set_verbosity_error()
    steps_per_epoch = max(1, math.ceil(len(train_rows) / (bs * accum)))
    eval_steps = max(1, steps_per_epoch // max(1, cfg.evals_per_epoch))
    has_val = bool(val_rows)
    cuda = device.startswith("cuda")
    select = f"eval_{metric[0]}" if (metric and cfg.select_on == "metric") else "eval_loss"
    args = TrainingArguments(
        output_dir=str(out_dir), num_train_epochs=cfg.epochs, learning_rate=cfg.learning_rate,
        per_device_train_batch_size=bs, per_device_eval_batch_size=max(bs, 8), gradient_accumulation_steps=accum,
        warmup_steps=cfg.warmup_ratio, lr_scheduler_type="linear", weight_decay=cfg.weight_decay, seed=cfg.seed,
        data_seed=cfg.seed, eval_strategy="steps" if has_val else "no", eval_steps=eval_steps,
        save_strategy="steps", save_steps=eval_steps, save_total_limit=2, load_best_model_at_end=has_val,
        metric_for_best_model=select if has_val else None, greater_is_better=select != "eval_loss",
        logging_steps=max(1, min(10, eval_steps)), logging_nan_inf_filter=False, report_to="none",
        disable_tqdm=True, remove_unused_columns=False, train_sampling_strategy="group_by_length",
        include_num_input_tokens_seen="non_padding", use_cpu=not cuda and device == "cpu",
        bf16=cuda and torch.cuda.is_bf16_supported(), dataloader_pin_memory=cuda, dataloader_num_workers=0,
        ddp_find_unused_parameters=False, save_only_model=False,
    )
    timer = _StepTimer()
    callbacks: list[Any] = [timer, _FiniteLoss()]
    if has_val:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.patience))
    if progress:
        callbacks.append(_Progress(progress, label))
    trainer = _Trainer(model=model, args=args, train_dataset=ListDataset(train_rows),
                       eval_dataset=ListDataset(val_rows) if has_val else None,
                       data_collator=RightPadCollator(tokenizer.pad_token_id, pad_to_multiple_of=64 if cuda else 1), callbacks=callbacks, task_metric=metric)
    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    return trainer, timer


def _history(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Loss curves: training loss, validation loss and the task metric by step."""
    keep = ("loss", "eval_loss", "learning_rate", "grad_norm")
    out = []
    for h in log_history:
        row = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in h.items()
               if k in keep or (k.startswith("eval_") and not k.endswith(("_runtime", "_per_second")))}
        if row:
            out.append({"step": h.get("step"), "epoch": round(h.get("epoch") or 0, 3), **row})
    return out


def _trainer_base():
    from transformers import Trainer

    return Trainer


class _Trainer(_trainer_base()):  # type: ignore[misc]
    """Trainer plus the task metric computed on validation at each evaluation."""

    def __init__(self, *args: Any, task_metric: tuple[str, Callable[[Any], float]] | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self.task_metric = task_metric

    def evaluation_loop(self, *args: Any, **kw: Any):
        out = super().evaluation_loop(*args, **kw)
        if self.task_metric:
            name, fn = self.task_metric
            model = self.accelerator.unwrap_model(self.model)
            was_training = model.training
            model.eval()
            out.metrics[f"{kw.get('metric_key_prefix', 'eval')}_{name}"] = float(fn(model))
            model.train(was_training)
        return out


def _callback_base():
    from transformers import TrainerCallback

    return TrainerCallback


class _StepTimer(_callback_base()):  # type: ignore[misc]
    """Seconds spent in optimiser steps only (evaluation and checkpointing excluded)."""

    def __init__(self):
        self.seconds, self.tokens_at_start, self._t = 0.0, 0, None

    def on_train_begin(self, args, state, control, **kw):
        self.tokens_at_start = state.num_input_tokens_seen

    def on_step_begin(self, args, state, control, **kw):
        _sync()
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if self._t is not None:
            _sync()  # CUDA runs ahead of Python: a step has taken its time only once the GPU is done
            self.seconds += time.perf_counter() - self._t
            self._t = None


def _sync() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


class _FiniteLoss(_callback_base()):  # type: ignore[misc]
    """A NaN or infinite loss stops training with a clear error, never a silently broken model."""

    def on_log(self, args, state, control, logs=None, **kw):
        for key in ("loss", "eval_loss", "grad_norm"):
            v = (logs or {}).get(key)
            if isinstance(v, float) and not math.isfinite(v):
                raise TrainingError(f"{key} became {v} at step {state.global_step}: lower learning_rate "
                                    f"(now {args.learning_rate:g}) or check the data; nothing was cached")


class _Progress(_callback_base()):  # type: ignore[misc]
    def __init__(self, progress, label):
        self.progress, self.label, self.advance = progress, label, None

    def on_train_begin(self, args, state, control, **kw):
        self.advance = self.progress(f"{self.label} (train steps)", state.max_steps)
        if state.global_step:
            self.advance(state.global_step)

    def on_step_end(self, args, state, control, **kw):
        if self.advance:
            self.advance(1)
