"""Feature extraction: a frozen base model, and a linear classification head trained on its
pooled hidden states (classification tasks only).

The base runs once per example (features are extracted, then cached in memory), so training is
a few hundred steps of a softmax regression on [n, hidden] features: a plain loop over a tensor
is the right tool here, Trainer would only add overhead. Early-stopped on validation loss, best
weights kept.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POOLING = "last"  # the hidden state at the last prompt token: what the LM head would answer from


@dataclass
class HeadResult:
    weight: Any
    bias: Any
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    feature_seconds: float = 0.0
    train_tokens: int = 0


def features(model: Any, tokenizer: Any, prompts: Sequence[str], *, batch_size: int = 16, device: str = "cpu",
             progress: Callable[[int], None] | None = None) -> tuple[Any, int]:
    """[n, hidden] fp32 last-token hidden states of the final layer, and the tokens read."""
    import torch

    from ..generate import _batches, _encode, _left_pad, row_width

    ids = _encode(tokenizer, prompts)
    hidden = model.config.hidden_size
    out = torch.zeros((len(prompts), hidden), dtype=torch.float32)
    backbone = getattr(model, model.base_model_prefix, model)
    widths = [row_width(len(p) + 1) for p in ids]  # as generate pads: features that do not depend on the batch size
    with torch.inference_mode():
        for batch in _batches(widths, batch_size):
            x, mask = _left_pad([ids[i] for i in batch], widths[batch[0]], tokenizer.pad_token_id, device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            h = backbone(input_ids=x, attention_mask=mask, position_ids=positions).last_hidden_state
            out[batch] = h[:, -1].float().cpu()
            if progress:
                progress(len(batch))
    return out, sum(len(p) for p in ids)


def train_head(x_train, y_train, x_val, y_val, n_labels: int, *, epochs: int = 200, learning_rate: float = 1e-2,
               weight_decay: float = 1e-3, patience: int = 20, seed: int = 0) -> HeadResult:
    """Full-batch AdamW softmax regression on standardised features, early-stopped on val loss."""
    import torch

    with torch.random.fork_rng(devices=[]):  # the seed decides the head; the global generator is left alone
        torch.manual_seed(seed)
        return _train_head(x_train, y_train, x_val, y_val, n_labels, epochs, learning_rate, weight_decay, patience)


def _train_head(x_train, y_train, x_val, y_val, n_labels, epochs, learning_rate, weight_decay, patience) -> HeadResult:
    import torch
    import torch.nn.functional as F

    start = time.perf_counter()
    mean, std = x_train.mean(0), x_train.std(0).clamp(min=1e-6)
    xt, xv = (x_train - mean) / std, (x_val - mean) / std
    layer = torch.nn.Linear(x_train.shape[1], n_labels)
    opt = torch.optim.AdamW(layer.parameters(), lr=learning_rate, weight_decay=weight_decay)
    best, best_state, best_epoch, bad, history = math.inf, None, 0, 0, []
    for epoch in range(1, epochs + 1):
        layer.train()
        loss = F.cross_entropy(layer(xt), y_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            v_logits = layer(xv)
            v_loss = float(F.cross_entropy(v_logits, y_val))
            v_acc = float((v_logits.argmax(-1) == y_val).float().mean())
        if not math.isfinite(v_loss):
            from .trainer import TrainingError

            raise TrainingError(f"head validation loss became {v_loss} at epoch {epoch}; nothing was cached")
        if epoch == 1 or epoch % 10 == 0:
            history.append({"step": epoch, "loss": round(float(loss.detach()), 5), "eval_loss": round(v_loss, 5),
                            "eval_accuracy": round(v_acc, 4)})
        if v_loss < best - 1e-5:
            best, best_state, best_epoch, bad = v_loss, copy.deepcopy(layer.state_dict()), epoch, 0
        else:
            bad += 1
            if bad >= patience:
                break
    layer.load_state_dict(best_state)
    # Fold the standardisation into the layer: logits = W((x - mean)/std) + b.
    w = layer.weight.detach() / std[None, :]
    b = layer.bias.detach() - (w * mean[None, :]).sum(1)
    return HeadResult(w, b, history, best_epoch, stopped_early=epoch < epochs, seconds=time.perf_counter() - start)


def save_head(path: Path, res: HeadResult, labels: list[str]) -> None:
    from safetensors.torch import save_file

    save_file({"weight": res.weight.contiguous(), "bias": res.bias.contiguous()}, str(path / "head.safetensors"),
              metadata={"labels": "\n".join(labels), "pooling": POOLING})


def load_head(path: Path) -> tuple[Any, Any, list[str]]:
    from safetensors import safe_open

    with safe_open(str(path / "head.safetensors"), framework="pt") as f:
        labels = f.metadata()["labels"].split("\n")
        return f.get_tensor("weight"), f.get_tensor("bias"), labels
