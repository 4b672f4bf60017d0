"""Train a causal LM with transformers' Trainer (and PEFT for LoRA): validation evaluated and
logged (early stopping and the best checkpoint with `select_on: loss|metric`), resume after an
interruption, OOM fallback. By default it trains as a plain loop would (constant rate, random
order, no clipping, final weights): issue 18's measurements, DESIGN.md.

Why Trainer rather than a hand-written loop: the arm's speed comes from what is fed to the model
(right-padded batches, length-grouped on request, with logits only from the batch's first answer
position on, see sft.py), not from
the loop around it, and Trainer brings DDP / `accelerate launch` / torchrun, checkpoint + resume,
gradient accumulation with correct token-count normalisation, warm-up and decay for free. The
benchmark (`python -m bench.perf train`) measures the Trainer path against a naive loop.
"""

from __future__ import annotations

import copy
import math
import resource
import shutil
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import FinetuneArm as FinetuneSpec
from ..errors import ConfigError, ResourceError, TrainingError
from ..generate import contiguous_head
from ..store import is_disk_full
from . import distributed
from .callbacks import FiniteLoss, StepProgress, StepTimer, loss_history
from .sft import ListDataset, RightPadCollator

# LoRA targets per architecture (config.model_type); anything else gets PEFT's "all-linear".
DEFAULT_TARGETS: dict[str, list[str]] = {
    **{k: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
       for k in ("llama", "qwen2", "qwen3", "mistral", "gemma", "gemma2", "olmo", "olmo2", "granite", "smollm3")},
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
}




@dataclass(frozen=True)
class TrainConfig:
    """One training run: the variant's hyperparameters, declared once with their docstrings on
    the suite's spec (bench.config.FinetuneArm), plus what the run itself decides."""

    hp: FinetuneSpec
    """The fine-tune variant's settings: method, LoRA shape, epochs, learning rate, batch, ..."""
    seed: int = 0
    """The suite seed: adapter init, data order, dropout."""
    base_dtype: str = "float32"
    """LoRA only: dtype of the frozen base weights (adapters stay fp32); see lora_base_dtype."""

    def replace_hp(self, **changes: Any) -> TrainConfig:
        """The same run with some hyperparameters changed (e.g. one epoch over the corpus)."""
        return TrainConfig(self.hp.model_copy(update=changes), self.seed, self.base_dtype)


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

    if cfg.hp.method == "qlora":
        raise TrainingError("qlora is prepared by prepare_qlora (CUDA + bitsandbytes), not from an in-memory model")
    frozen_dtype = cfg.base_dtype if cfg.hp.method == "lora" else "float32"
    model = copy.deepcopy(base).to(device=device, dtype=getattr(torch, frozen_dtype))
    model.config.use_cache = False
    contiguous_head(model)  # logits_to_keep's strided slice would copy the 49k-row head weight per sequence
    if cfg.hp.method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    if cfg.hp.method != "lora":
        raise TrainingError(f"method '{cfg.hp.method}' is not trained by the Trainer path")
    return _wrap_lora(model, cfg)


def _wrap_lora(model: Any, cfg: TrainConfig) -> Any:
    import torch
    from peft import LoraConfig, get_peft_model

    targets = cfg.hp.target_modules or default_targets(model)
    config = LoraConfig(r=cfg.hp.rank, lora_alpha=cfg.hp.alpha, lora_dropout=cfg.hp.dropout, target_modules=targets,
                        task_type="CAUSAL_LM")
    try:
        # The adapters' random init must come from the run's seed, not from whatever the arms
        # before this one left in the global generator (the same variant trained to different
        # adapters depending on which other variants ran first); fork_rng leaves that generator
        # as it was for whoever runs next. peft 0.21 asks transformers 5 for a deprecated
        # attribute each time it wraps a model: that FutureWarning is silenced here only.
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            torch.manual_seed(cfg.seed)
            return get_peft_model(model, config)
    except ValueError as e:
        raise TrainingError(f"LoRA target modules {targets} do not fit this model: {str(e).splitlines()[0]}") from e


def prepare_qlora(model_path: Callable[[], str], cfg: TrainConfig, device: str) -> Any:
    """4-bit base (bitsandbytes NF4) + LoRA adapters; CUDA only. `model_path` is asked for the
    base model's files only once CUDA and bitsandbytes are known to be there."""
    if not device.startswith("cuda"):
        raise ResourceError("qlora needs a CUDA GPU (bitsandbytes 4-bit kernels); use method: lora on this machine")
    try:
        import bitsandbytes  # noqa: F401  (imported only to learn whether it loads here)
    except Exception as e:  # ImportError, or a CUDA-setup error raised at import
        raise ResourceError(f"qlora needs bitsandbytes, which does not import here ({type(e).__name__}): "
                            "pip install bitsandbytes, or use method: lora") from e
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


@dataclass(frozen=True)
class FitData:
    """Encoded rows to train on, and to validate on (None: no evaluation, no early stopping)."""

    train: list[dict]
    validation: list[dict] | None


@dataclass(frozen=True)
class FitHooks:
    """What a training run reports to: the in-training task metric, progress bars and the log."""

    metric: tuple[str, Callable[[Any], dict[str, float]]] | None = None
    """(name, fn(model) -> {name: value, other readings}) computed on validation at each evaluation."""
    progress: Callable[[str, int], Callable[[int], None]] | None = None
    label: str = "train"
    log: Callable[[str], None] = print


@dataclass(frozen=True)
class Batching:
    """Examples per forward pass and passes per optimiser step; halved/doubled together when
    memory runs out."""

    size: int
    accum: int

    def halved(self) -> Batching:
        return Batching(self.size // 2, self.accum * 2)

    @staticmethod
    def of(hp: FinetuneSpec, device: str) -> Batching:
        """The spec's batch as forward passes. In random order each step's batch is split into
        micro-batches of similar length (see `micro_batch_size`): a random batch of clauses is
        padded to ~1.9x its real tokens in one pass, ~1.3x in micro-batches of 4."""
        if hp.batch_order != "random":
            return Batching(hp.batch_size, hp.grad_accum)
        micro = hp.micro_batch_size or (hp.batch_size if device.startswith("cuda") else CPU_MICRO_BATCH)
        micro = math.gcd(micro, hp.batch_size)  # the spec checks a declared size divides the batch
        return Batching(micro, hp.batch_size // micro * hp.grad_accum)


# Examples per forward pass on the CPU in random order. Timed against each other on 2 fp32 cores
# (`bench.perf train --batchings`, docs/performance.md "Which micro-batch size"): on clauses of
# 60-256 tokens, 4 and 2 were equal and 1.36x one pass of 8; on questions of ~100 tokens, which
# pad little, 4 was within 4% of one pass and 2 was 19% slower. 4 is never far from the best.
CPU_MICRO_BATCH = 4


def fit(model: Any, tokenizer: Any, train_rows: list[dict], val_rows: list[dict] | None, cfg: TrainConfig,
        out_dir: Path, *, device: str, log: Callable[[str], None] = print,
        metric: tuple[str, Callable[[Any], dict[str, float]]] | None = None,
        progress: Callable[[str, int], Callable[[int], None]] | None = None, label: str = "train") -> FitResult:
    """Train `model` in place on encoded rows; with `val_rows`, evaluate (loss, and `metric` if
    given) `evals_per_epoch` times an epoch, stop after `patience` evaluations without
    improvement and restore the best checkpoint. Interrupted runs resume from `out_dir`."""
    import torch

    if not train_rows:
        raise TrainingError("no training examples")
    data, hooks = FitData(train_rows, val_rows), FitHooks(metric, progress, label, log)
    started = time.perf_counter()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    trainer, timer, batching, resume = _train_with_fallbacks(model, tokenizer, data, cfg, out_dir, device, hooks)
    return _fit_result(trainer, timer, batching, resume, cfg, device, started, has_val=bool(val_rows))


def _train_with_fallbacks(model, tokenizer, data: FitData, cfg: TrainConfig, out_dir: Path, device: str,
                          hooks: FitHooks):
    """Train, resuming from the last complete checkpoint; out of memory halves the batch (same
    effective batch through accumulation); a full disk is a ResourceError naming the folder."""
    import torch

    batching = Batching.of(cfg.hp, device)
    while True:
        with _quiet_transformers():
            trainer, timer = _build(model, tokenizer, data, cfg, out_dir, device, batching, hooks)
        _refuse_sharded_weights(trainer)
        # the main process decides (and removes a partial checkpoint); its peers resume from the same one
        resume = distributed.agree(last_good_checkpoint(out_dir) if distributed.is_main() else None)
        if resume:
            hooks.log(f"[finetune] resuming {hooks.label} from {Path(resume).name}")
        try:
            with _quiet_transformers():
                trainer.train(resume_from_checkpoint=resume)
            return trainer, timer, batching, resume
        except torch.OutOfMemoryError as e:
            if batching.size == 1:
                raise ResourceError("out of memory even at batch size 1: lower max_length, or use method "
                                    "lora/qlora") from e
            exact = batching.size % 2 == 0
            batching = batching.halved()
            hooks.log(f"[finetune] out of memory: batch size halved to {batching.size} with grad_accum "
                      f"{batching.accum} ({'same' if exact else 'slightly smaller'} effective batch "
                      f"{batching.size * batching.accum}); retrying")
            del trainer
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
        except Exception as e:  # torch.save and safetensors word a full disk in other types than OSError
            if is_disk_full(e, out_dir):
                raise ResourceError(f"disk full while writing checkpoints under {out_dir}: free space (or set "
                                    "TRIDENT_CACHE to a bigger disk) and rerun; training resumes from the last "
                                    "complete checkpoint") from e
            raise


def _refuse_sharded_weights(trainer: Any) -> None:
    """The main process caches its own copy of the trained weights: whole under DDP and DeepSpeed
    ZeRO-1/2, which shard optimiser state and gradients only; a part of the model under FSDP and
    ZeRO-3, which shard the weights themselves. Those launches are refused before training."""
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    zero3 = plugin is not None and plugin.deepspeed_config.get("zero_optimization", {}).get("stage") == 3
    if trainer.is_fsdp_enabled or zero3:
        raise ConfigError(f"accelerate's config shards the model's weights ({'ZeRO-3' if zero3 else 'FSDP'}); the "
                          "fine-tuning arm caches the main process's copy, which would be a part of the model: "
                          "use DDP (distributed_type: MULTI_GPU) or DeepSpeed with zero_stage 1 or 2")


def _fit_result(trainer, timer, batching: Batching, resume: str | None, cfg: TrainConfig, device: str,
                started: float, has_val: bool) -> FitResult:
    import torch

    state = trainer.state
    if device.startswith("cuda"):
        peak, kind = torch.cuda.max_memory_allocated() / 2**20, "cuda max allocated"
    else:
        peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"
    best_step = None
    if state.best_model_checkpoint:
        best_step = int(Path(state.best_model_checkpoint).name.split("-")[-1])
    weights = cfg.base_dtype if cfg.hp.method == "lora" else "float32"
    return FitResult(
        model=trainer.model, history=loss_history(state.log_history), steps=state.global_step,
        max_steps=state.max_steps,
        best_step=best_step, stopped_early=has_val and state.global_step < state.max_steps,
        train_tokens=int(state.num_input_tokens_seen - timer.tokens_at_start), step_seconds=timer.seconds,
        wall_seconds=time.perf_counter() - started, peak_memory_mb=round(peak, 1), peak_memory_kind=kind,
        batch_size=batching.size, grad_accum=batching.accum,
        precision=f"{weights} weights" + (" + bf16 autocast" if trainer.args.bf16 else ""),
        resumed_from=Path(resume).name if resume else None)


# The spec's names -> transformers' names ("constant" keeps any warm-up).
SCHEDULERS = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}
# random: transformers' batch_rebalance sampler draws each step's examples at random and splits
# them into the step's micro-batches by length (one micro-batch when a pass takes the whole batch);
# _Trainer swaps in bench.training.sampling's version of it.
SAMPLERS = {"random": "batch_rebalance", "length_grouped": "group_by_length"}


def _arguments(cfg: TrainConfig, out_dir: Path, device: str, batching: Batching, n_train: int, has_val: bool,
               select: str | None):
    """transformers' TrainingArguments for one run: evaluation and checkpoints `evals_per_epoch`
    times an epoch, batches in `batch_order`, real-token counting, bf16 autocast on CUDA."""
    import torch
    from transformers import TrainingArguments

    # one optimiser step takes a batch from every process of a multi-process launch (DDP)
    global_batch = batching.size * batching.accum * distributed.world_size()
    steps_per_epoch = max(1, math.ceil(n_train / global_batch))
    eval_steps = max(1, steps_per_epoch // max(1, cfg.hp.evals_per_epoch))
    cuda = device.startswith("cuda")
    return TrainingArguments(
        output_dir=str(out_dir), num_train_epochs=cfg.hp.epochs, learning_rate=cfg.hp.learning_rate,
        per_device_train_batch_size=batching.size, per_device_eval_batch_size=max(batching.size, 8),
        gradient_accumulation_steps=batching.accum, warmup_steps=cfg.hp.warmup_ratio,
        lr_scheduler_type=SCHEDULERS[cfg.hp.lr_scheduler], max_grad_norm=cfg.hp.max_grad_norm,
        weight_decay=cfg.hp.weight_decay, seed=cfg.seed, data_seed=cfg.seed,
        eval_strategy="steps" if has_val else "no", eval_steps=eval_steps, save_strategy="steps",
        save_steps=eval_steps, save_total_limit=2, load_best_model_at_end=has_val and select is not None,
        metric_for_best_model=select if has_val else None, greater_is_better=select not in (None, "eval_loss"),
        logging_steps=max(1, min(10, eval_steps)), logging_nan_inf_filter=False, report_to="none",
        disable_tqdm=True, remove_unused_columns=False, train_sampling_strategy=SAMPLERS[cfg.hp.batch_order],
        include_num_input_tokens_seen="non_padding", use_cpu=not cuda and device == "cpu",
        bf16=cuda and torch.cuda.is_bf16_supported(), dataloader_pin_memory=cuda, dataloader_num_workers=0,
        ddp_find_unused_parameters=False, save_only_model=False,
    )


def _build(model, tokenizer, data: FitData, cfg: TrainConfig, out_dir: Path, device: str, batching: Batching,
           hooks: FitHooks):
    from transformers import EarlyStoppingCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    has_val = bool(data.validation)
    select = _selection_metric(cfg, hooks)
    args = _arguments(cfg, out_dir, device, batching, len(data.train), has_val, select)
    timer = StepTimer()
    callbacks: list[Any] = [timer, FiniteLoss()]
    if has_val and select is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.hp.patience))
    if hooks.progress:
        callbacks.append(StepProgress(hooks.progress, hooks.label, timer))
    # CUDA tunes kernels per shape: widths rounded up to a multiple of 64 (see RightPadCollator)
    collator = RightPadCollator(tokenizer.pad_token_id, pad_to_multiple_of=64 if device.startswith("cuda") else 1)
    trainer = _Trainer(model=model, args=args, train_dataset=ListDataset(data.train),
                       eval_dataset=ListDataset(data.validation) if has_val else None, data_collator=collator,
                       callbacks=callbacks, task_metric=hooks.metric)
    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    return trainer, timer


def _selection_metric(cfg: TrainConfig, hooks: FitHooks) -> str | None:
    """What early stopping and the best checkpoint go by; None: no selection (select_on: last)."""
    if cfg.hp.select_on == "last":
        return None
    if hooks.metric and cfg.hp.select_on == "metric":
        return f"eval_{hooks.metric[0]}"
    return "eval_loss"


@contextmanager
def _quiet_transformers():
    """Trainer logs notes meant for its own scripts (label names, checkpoint loading) at warning
    level; we report what matters ourselves. Scoped to training: the caller's verbosity returns."""
    import transformers

    before = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(before)


def _trainer_base():
    from transformers import Trainer

    return Trainer


class _Trainer(_trainer_base()):  # type: ignore[misc]
    """Trainer plus the task metric computed on validation at each evaluation."""

    def __init__(self, *args: Any, task_metric: tuple[str, Callable[[Any], dict[str, float]]] | None = None,
                 **kw: Any):
        super().__init__(*args, **kw)
        self.task_metric = task_metric

    def _get_train_sampler(self, train_dataset: Any = None):
        from transformers.trainer_pt_utils import BatchRebalanceSampler

        from .sampling import RandomStepSampler

        sampler = super()._get_train_sampler(train_dataset)
        if isinstance(sampler, BatchRebalanceSampler):  # random order: seeded by the run, no repeats
            return RandomStepSampler.like(sampler, seed=self.args.data_seed)
        return sampler

    def evaluation_loop(self, *args: Any, **kw: Any):
        out = super().evaluation_loop(*args, **kw)
        if self.task_metric:
            model = self.accelerator.unwrap_model(self.model)
            was_training = model.training
            model.eval()
            for name, value in self.task_metric[1](model).items():
                out.metrics[f"{kw.get('metric_key_prefix', 'eval')}_{name}"] = float(value)
            model.train(was_training)
        return out
