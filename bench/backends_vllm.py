"""vLLM behind bench.backends' Engine (`bench run --backend vllm`); imported only when asked for.

Prompts go in as token ids made by the run's own tokenizer, encoded as bench.generate encodes them,
so both engines read the same tokens; answers come back as token ids and are cut at the same stop
tokens and decoded by bench.generate.answer_text. Label scores are vLLM's prompt log-probabilities
of each prompt followed by each label, one request per pair (vLLM's prefix cache can reuse what
the pairs of one prompt share). A LoRA or QLoRA fine-tune is applied per request, unmerged, with a
`LoRARequest` on its adapter folder in trident's cache (a QLoRA adapter then runs on the
unquantised base, not on the 4-bit one it was trained on); a full fine-tune is a model folder of
its own and gets its own engine. One engine is kept at a time, so two never share the GPU.
Per-prompt seconds are a call's time over its prompts: vLLM schedules them all together.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .backends import BackendIdentity, BackendSettings, Engine, Progress, TrainedWeights, code_hash, package_version
from .data import stable_hash
from .errors import ConfigError, ResourceError
from .generate import Generation, ScoreResult, _encode, answer_text, stop_token_ids
from .models import EMBEDDED, LoadedModel, cache_root, embedded_dir, fingerprint, load_model, local_path

MAX_LORA_RANK = 64
"""The largest adapter rank the engine makes room for: vLLM fixes it when the engine starts, before
any adapter is seen."""
MEMORY_SHARE = 0.5
"""The share of the GPU memory free when an engine starts that vLLM may take (weights, activations,
KV cache). vLLM's default, 0.9 of the whole GPU, assumes it is alone; in a trident run the
transformers copy of the model stays loaded (tokenizer, context window, training) and the
fine-tunes still to train need room."""


@dataclass(frozen=True)
class VllmEngine:
    """One vllm.LLM, with or without an adapter, behind bench.backends.Engine."""

    llm: Any
    tokenizer: Any
    lora: Any | None
    """A vllm LoRARequest, or None for the engine's own weights."""
    scores_labels: bool = True

    def generate(self, prompts: Sequence[str], max_new_tokens: int, progress: Progress | None = None) -> Generation:
        from vllm import SamplingParams

        ids = _encode(self.tokenizer, prompts)
        stop = stop_token_ids(self.tokenizer)
        # stop where transformers' generate stops, at these ids only (not also at a generation config's eos)
        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, stop_token_ids=stop, ignore_eos=True)
        outputs, took = self._run(ids, params, progress)
        seconds = np.full(len(ids), took / max(1, len(ids)))
        answers = [answer_text(self.tokenizer, list(o.outputs[0].token_ids), stop) for o in outputs]
        return Generation([text for text, _ in answers], seconds, np.array([len(p) for p in ids]),
                          np.array([n for _, n in answers], dtype=int))

    def score(self, prompts: Sequence[str], continuations: Sequence[str],
              progress: Progress | None = None) -> ScoreResult:
        from vllm import SamplingParams

        prompt_ids, cont_ids = _encode(self.tokenizer, prompts), _encode(self.tokenizer, continuations)
        if any(len(c) == 0 for c in cont_ids):
            raise ValueError("a continuation encodes to no tokens")
        # 1: each prompt token's own log-probability comes with the top one (0 asked for none in some versions)
        params = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=1)
        pairs = [p + c for p in prompt_ids for c in cont_ids]
        outputs, took = self._run(pairs, params, None)
        sums = np.zeros((len(prompt_ids), len(cont_ids)))
        for k, out in enumerate(outputs):
            i, j = divmod(k, len(cont_ids))
            start = len(prompt_ids[i])
            sums[i, j] = sum(out.prompt_logprobs[start + n][t].logprob for n, t in enumerate(cont_ids[j]))
        if progress:
            progress(len(prompts))
        seconds = np.full(len(prompt_ids), took / max(1, len(prompt_ids)))
        return ScoreResult(sums, np.array([len(c) for c in cont_ids]), seconds, np.array([len(p) for p in prompt_ids]))

    def _run(self, token_ids: list[list[int]], params: Any, progress: Progress | None) -> tuple[list[Any], float]:
        """vLLM's outputs for these token-id prompts, in their order, and the seconds the call took."""
        if not token_ids:
            return [], 0.0
        start = time.perf_counter()
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in token_ids], params,
                                    lora_request=self.lora, use_tqdm=False)
        took = time.perf_counter() - start
        if progress:
            progress(len(token_ids))
        return outputs, took


class VllmBackend:
    """Starts vLLM engines for a run's models, one at a time, and names the adapters they serve."""

    name = "vllm"
    runs_loaded_model = False

    def __init__(self, settings: BackendSettings):
        if not settings.device.startswith("cuda"):  # said before the run, not when the first cell predicts
            raise ResourceError(f"--backend vllm runs on a CUDA GPU; this run's device is {settings.device} "
                                "(use --backend hf, or --device cuda on a machine with one)")
        self.settings = settings
        self._identity = BackendIdentity(self.name, package_version("vllm"),
                                         code_hash(Path(__file__).with_name("backends.py"), Path(__file__)))
        self._folder: str | None = None
        self._llm: Any = None
        self._lora_ids: dict[str, int] = {}

    def identity(self) -> BackendIdentity:
        return self._identity

    def engine(self, lm: LoadedModel, trained: TrainedWeights | None, batch_size: int) -> Engine:
        """`lm`'s base model in vLLM (its weights from disk), with `trained` applied; vLLM batches
        by itself, so `batch_size` is not used."""
        base = base_folder(lm, self.settings)
        adapter = trained is not None and trained.is_adapter
        folder = str(trained.path) if trained is not None and not adapter else base
        llm = self._llm_for(folder, tokenizer=base, lora=folder == base)
        return VllmEngine(llm, lm.tokenizer, self._lora_request(trained) if adapter and trained else None)

    def _llm_for(self, folder: str, *, tokenizer: str, lora: bool) -> Any:
        if folder != self._folder:
            self._release()
            from vllm import LLM

            extra: dict[str, Any] = {"enable_lora": True, "max_lora_rank": MAX_LORA_RANK} if lora else {}
            self._llm = LLM(model=folder, tokenizer=tokenizer, dtype=self.settings.dtype, seed=self.settings.seed,
                            gpu_memory_utilization=_memory_utilisation(), **extra)
            self._folder = folder
        return self._llm

    def _release(self) -> None:
        if self._llm is None:
            return
        import torch

        self._llm, self._folder = None, None
        gc.collect()
        torch.cuda.empty_cache()

    def _lora_request(self, trained: TrainedWeights) -> Any:
        from vllm.lora.request import LoRARequest

        rank = json.loads((trained.path / "adapter_config.json").read_text())["r"]
        if rank > MAX_LORA_RANK:
            raise ConfigError(f"the adapter in {trained.path} has rank {rank}; --backend vllm serves ranks up to "
                              f"{MAX_LORA_RANK} (bench.backends_vllm.MAX_LORA_RANK); use --backend hf for it")
        lora_id = self._lora_ids.setdefault(str(trained.path), len(self._lora_ids) + 1)
        return LoRARequest(trained.path.name, lora_id, str(trained.path))


def base_folder(lm: LoadedModel, settings: BackendSettings) -> str:
    """Where vLLM loads `lm`'s base model from: the embedded model's safetensors copy, the local
    directory, the hub id, or, for a `random:` model, its weights rebuilt from the suite seed and
    saved once (never `lm`'s own, which may carry an adapter)."""
    if lm.spec in EMBEDDED:
        return str(embedded_dir(lm.spec))
    if lm.spec.startswith("random:"):
        return str(_saved_random(lm.spec, settings.dtype, settings.seed))
    path = local_path(lm.spec)
    return str(path) if path is not None else lm.spec


def _saved_random(spec: str, dtype: str, seed: int) -> Path:
    target = cache_root() / "models" / f"vllm-{spec[7:]}-{stable_hash([fingerprint(spec, seed), dtype], length=12)}"
    if (target / "config.json").is_file():
        return target
    fresh = load_model(spec, device="cpu", dtype=dtype, seed=seed)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    try:
        fresh.model.save_pretrained(tmp)
        fresh.tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _memory_utilisation() -> float:
    """vLLM's gpu_memory_utilization (a share of the whole GPU) that gives it MEMORY_SHARE of what is free now."""
    import torch

    free, total = torch.cuda.mem_get_info()
    return round(MEMORY_SHARE * free / total, 3)
