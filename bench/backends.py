"""Inference backends: the engine that turns every arm's prompts into answers and label scores.

Every arm predicts through `bench.arms.prompt`'s `classify` and `answer`, and those ask the run's
backend (`bench run --backend hf|vllm`, `ArmContext.backend`) for an `Engine` bound to one model:
the base model, a fine-tune (its cached artifact, `TrainedWeights`, for engines that load weights
themselves) or the model a retrieval variant builds on. An engine generates greedy answers and,
where it offers prompt log-probabilities, scores label continuations; where it does not, labels
are scored with transformers and the run log says so.

The backend is a run option, not a suite field: it says where and how fast a run computes, not
what is measured (the suite's model, data, prompts and scorer stay the same), like --device and
--batch-size. It is in every cell's cache key and in run.json, with its version, because another
engine's kernels round differently.

`hf` is bench.generate on the loaded transformers model (row-width padding, batch-size invariant).
`vllm` is bench.backends_vllm, imported only when asked for (`pip install 'trident-bench[vllm]'`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .data import stable_hash
from .errors import ConfigError, ResourceError, unknown_name
from .generate import Generation, ScoreResult, generate, score_continuations
from .models import LoadedModel

Progress = Callable[[int], None]

BACKEND_HELP = ("the engine that generates answers and scores labels: hf (transformers, the default) | vllm "
                "(a CUDA machine; pip install 'trident-bench[vllm]')")


@dataclass(frozen=True)
class TrainedWeights:
    """A fine-tune's files in the trained-model cache, for engines that load weights themselves."""

    path: Path
    """The cache entry (bench.training.artifacts): a PEFT adapter folder, or a whole model's."""
    method: str
    """The fine-tune's method: lora and qlora leave an adapter, full a whole model."""

    @property
    def is_adapter(self) -> bool:
        return self.method in ("lora", "qlora")


@dataclass(frozen=True)
class BackendIdentity:
    """What a backend's outputs depend on beyond the model and the prompts: it keys every cell."""

    name: str
    version: str
    """The engine package's version (transformers for hf)."""
    code: str
    """A hash of trident's code for this backend."""

    def to_record(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "code": self.code}


@dataclass(frozen=True)
class BackendSettings:
    """What a backend needs from the run to start an engine of its own."""

    device: str
    dtype: str
    seed: int
    """The suite seed: a `random:` model is rebuilt from it where an engine loads weights from disk."""


class Engine(Protocol):
    """One model on one inference engine."""

    scores_labels: bool
    """Whether `score` works: the engine returns the log-probabilities of a prompt's tokens."""

    def generate(self, prompts: Sequence[str], max_new_tokens: int, progress: Progress | None = None) -> Generation:
        """Greedy answers (texts, per-prompt seconds, prompt and output token counts)."""
        ...

    def score(self, prompts: Sequence[str], continuations: Sequence[str],
              progress: Progress | None = None) -> ScoreResult:
        """log P(continuation | prompt) for every pair."""
        ...


class Backend(Protocol):
    """Makes engines for a run's models."""

    name: str
    runs_loaded_model: bool
    """True when the engine computes with the transformers model in memory (hf): comparisons of that
    model's variants (a LoRA merged or not) mean something only then."""

    def identity(self) -> BackendIdentity: ...

    def engine(self, lm: LoadedModel, trained: TrainedWeights | None, batch_size: int) -> Engine:
        """An engine for `lm` (the base model, or a fine-tune loaded from `trained`)."""
        ...


@dataclass(frozen=True)
class HFEngine:
    """bench.generate's scorer and decoder on the loaded transformers model."""

    lm: LoadedModel
    batch_size: int
    scores_labels: bool = True

    def generate(self, prompts: Sequence[str], max_new_tokens: int, progress: Progress | None = None) -> Generation:
        return generate(self.lm.model, self.lm.tokenizer, prompts, max_new_tokens=max_new_tokens,
                        batch_size=self.batch_size, device=self.lm.device, progress=progress)

    def score(self, prompts: Sequence[str], continuations: Sequence[str],
              progress: Progress | None = None) -> ScoreResult:
        return score_continuations(self.lm.model, self.lm.tokenizer, prompts, continuations,
                                   batch_size=self.batch_size, device=self.lm.device, progress=progress)


class HFBackend:
    """transformers: the model trident loaded (a fine-tune is already in it, adapter and all)."""

    name = "hf"
    runs_loaded_model = True

    def __init__(self, settings: BackendSettings | None = None):
        # `settings` is not needed: the loaded model carries its device and dtype
        self._identity = BackendIdentity(self.name, package_version("transformers"), code_hash(Path(__file__)))

    def identity(self) -> BackendIdentity:
        return self._identity

    def engine(self, lm: LoadedModel, trained: TrainedWeights | None, batch_size: int) -> Engine:
        return HFEngine(lm, batch_size)


def _vllm(settings: BackendSettings) -> Backend:
    from .backends_vllm import VllmBackend  # vLLM (and CUDA) only when asked for

    return VllmBackend(settings)


BACKENDS: dict[str, Callable[[BackendSettings], Backend]] = {"hf": HFBackend, "vllm": _vllm}
"""Backend name -> what makes it."""
PACKAGES = {"vllm": "vllm"}
"""The optional package a backend needs (checked before a run starts)."""


def check_backend(name: str) -> None:
    """Refuse an unknown backend, or one whose package is missing, before anything loads or computes."""
    if name not in BACKENDS:
        raise ConfigError(unknown_name("backend (--backend)", name, list(BACKENDS)))
    package = PACKAGES.get(name)
    if package and importlib.util.find_spec(package) is None:
        raise ResourceError(f"--backend {name} needs the package '{package}', which is not installed: "
                            f"pip install 'trident-bench[{name}]' on a CUDA machine, or use --backend hf")


def make_backend(name: str, settings: BackendSettings) -> Backend:
    check_backend(name)
    return BACKENDS[name](settings)


def label_scorer(backend: Backend, lm: LoadedModel, trained: TrainedWeights | None, batch_size: int,
                 log: Callable[[str], None], label: str) -> Engine:
    """The engine that scores labels for `lm`: the backend's, or transformers' where that engine
    returns no prompt log-probabilities (said in one log line)."""
    engine = backend.engine(lm, trained, batch_size)
    if engine.scores_labels:
        return engine
    log(f"{label}: the {backend.name} backend returns no prompt log-probabilities, so labels are scored with "
        "transformers (hf); answers are still generated on it")
    return HFEngine(lm, batch_size)


def code_hash(*files: Path) -> str:
    return stable_hash([(f.name, f.read_text(encoding="utf-8")) for f in files], length=12)


def package_version(dist: str) -> str:
    """An installed distribution's version, or 'missing'."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "missing"
