"""A full disk however the writer words it: torch.save, safetensors and faiss raise RuntimeError or
their own error types, not OSError(ENOSPC). Each must end in the store's one-line ResourceError that
names the path and what to free, and leave nothing in the cache that looks complete.

The faults are injected: the writer is patched to write part of its file and then raise.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import SafetensorError

import bench.store
from bench.errors import ResourceError
from bench.store import is_disk_full, writing_to

SAFETENSORS_FULL = SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: '
                                   '"No space left on device" })')
TORCH_FULL = RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 8704 vs 8598: "
                          "No space left on device")
FAISS_FULL = RuntimeError("Error in void faiss::write_index(const faiss::Index*, faiss::IOWriter*) at "
                          "faiss/impl/index_write.cpp:561: 'ret == (1)' failed: write error ([Errno 28])")


def one_line_naming(error: ResourceError, path: Path) -> str:
    message = str(error)
    assert "\n" not in message
    assert f"disk full while writing {path}" in message and "free space" in message
    return message


def chained() -> ValueError:
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError as e:
        try:
            raise ValueError("could not save the checkpoint") from e
        except ValueError as wrapped:
            return wrapped


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"), OSError(errno.EDQUOT, "Disk quota exceeded"),
    SAFETENSORS_FULL, TORCH_FULL, FAISS_FULL, chained(),
], ids=["ENOSPC", "EDQUOT", "safetensors", "torch", "faiss", "a cause"])
def test_every_wording_of_a_full_disk_becomes_the_one_line_error(error, tmp_path):
    target = tmp_path / "cache" / "thing.bin"
    with pytest.raises(ResourceError) as raised:
        with writing_to(target):
            raise error
    one_line_naming(raised.value, target)
    assert raised.value.__cause__ is error  # TRIDENT_DEBUG=1 still shows the writer's own words


@pytest.mark.parametrize("error", [RuntimeError("shape mismatch in layer 3"), PermissionError(errno.EACCES, "denied"),
                                   OSError(errno.EIO, "Input/output error 28"), KeyError("weights")])
def test_other_errors_pass_unchanged(error, tmp_path):
    with pytest.raises(type(error)) as raised:
        with writing_to(tmp_path / "thing.bin"):
            raise error
    assert raised.value is error


def test_a_torch_write_failure_counts_as_a_full_disk_only_when_the_disk_is_nearly_full(tmp_path, monkeypatch):
    """torch.save's only words for ENOSPC: 'file write failed'."""
    failed = RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")
    assert not is_disk_full(failed, tmp_path / "model.bin")
    monkeypatch.setattr(bench.store, "_free_bytes", lambda path: 4096)
    assert is_disk_full(failed, tmp_path / "model.bin")
    assert not is_disk_full(KeyError("weights"), tmp_path / "model.bin")  # a bug is a bug, full disk or not


# ---- the FAISS index ----


def test_a_full_disk_while_saving_a_faiss_index_names_it_and_leaves_no_index(tmp_path, monkeypatch):
    from bench.retrieval import index as ix

    def partial_then_full(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[: len(data) // 2])  # a writer that is not atomic leaves half a file
        raise FAISS_FULL

    monkeypatch.setattr(bench.store, "atomic_write_bytes", partial_then_full)
    built = ix.build(np.eye(8, dtype=np.float32), "flat")
    path = tmp_path / "cache" / "embeddings" / "k" / "index-flat.faiss"
    expect = {"embedder": "e", "dim": 8, "kind": "flat", "n": 8, "vectors": "k"}
    with pytest.raises(ResourceError) as raised:
        ix.save(built.index, path, expect)
    one_line_naming(raised.value, path)
    assert list(path.parent.iterdir()) == []
    assert ix.load(path, expect) == (None, None)


def test_a_full_disk_while_writing_the_index_meta_leaves_neither_file(tmp_path, monkeypatch):
    from bench.retrieval import index as ix

    real = bench.store.write_json

    def full(path: Path, obj) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bench.store, "write_json", full)
    built = ix.build(np.eye(8, dtype=np.float32), "flat")
    path = tmp_path / "index-flat.faiss"
    with pytest.raises(ResourceError):
        ix.save(built.index, path, {"kind": "flat"})
    assert list(tmp_path.iterdir()) == []  # the index without its meta is not kept either
    monkeypatch.setattr(bench.store, "write_json", real)
    ix.save(built.index, path, {"kind": "flat"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index-flat.faiss", "index-flat.json"]


# ---- the trained adapter ----

SUITE = """name: toy
model: random:tiny-llama
seed: 0
tasks:
  - name: colour
    kind: classification
    data:
      file: data/toy.jsonl
    input_field: text
    target_field: label
    labels: [red, blue]
    instruction: Which colour?
    metrics: [accuracy]
arms:
  - arm: finetune
    name: lora
    method: lora
    rank: 4
    epochs: 1
    batch_size: 4
    max_length: 64
"""
WORDS = {"red": "apple cherry ruby tomato", "blue": "sky ocean navy sapphire"}


def toy_suite(root: Path) -> Path:
    rows = [{"id": f"{split}-{i}", "text": WORDS[label], "label": label, "split": split}
            for split, n in (("train", 8), ("validation", 2), ("test", 2))
            for i, label in enumerate(["red", "blue"] * (n // 2))]
    (root / "data").mkdir(parents=True)
    (root / "data" / "toy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "suite.yaml").write_text(SUITE)
    return root


def adapter_save_fails(monkeypatch, error: BaseException) -> list[Path]:
    """peft's safetensors writer, when it writes the finished adapter (into the artifact's temp
    folder; training checkpoints are left alone), writes part of the file and raises `error`."""
    import peft.peft_model

    real = peft.peft_model.safe_save_file
    hits: list[Path] = []

    def save(tensors, filename, *args, **kwargs):
        if ".tmp-" not in str(filename):
            return real(tensors, filename, *args, **kwargs)
        hits.append(Path(filename))
        Path(filename).write_bytes(b"\0" * 100)
        raise error

    monkeypatch.setattr(peft.peft_model, "safe_save_file", save)
    return hits


def nothing_complete_in(adapters: Path) -> None:
    assert not list(adapters.rglob("COMPLETE")), "a trained model looks complete"
    assert not [p for p in adapters.iterdir() if p.name.startswith(".tmp-")], "a half-saved model was left"
    assert not [p for p in adapters.iterdir() if not p.name.startswith(".")], "an adapter entry was left"


def test_a_full_disk_while_saving_the_adapter_names_it_and_caches_nothing(env, tiny_lm, monkeypatch):
    from bench.arms import suite_context
    from bench.arms.finetune import FinetuneArm
    from bench.suites import load_suite
    from bench.training import artifacts

    suite = load_suite(str(toy_suite(env / "suite")))
    task = suite.tasks["colour"]
    hits = adapter_save_fails(monkeypatch, SAFETENSORS_FULL)
    with pytest.raises(ResourceError) as raised:
        FinetuneArm(suite.spec.arms[0]).trained_model(suite_context(suite, lambda: tiny_lm, batch_size=4), task)
    assert hits, "the adapter writer was never reached"
    (entry,) = {p.parent.name.split("-")[1] for p in hits}  # adapters/.tmp-<key>-<random>/<file>
    message = one_line_naming(raised.value, artifacts.adapters_root() / entry)
    assert "TRIDENT_CACHE" in message
    nothing_complete_in(artifacts.adapters_root())


def test_bench_run_says_it_in_one_line_and_leaves_no_run(env, monkeypatch, capsys):
    from bench.__main__ import main

    monkeypatch.setenv("TRIDENT_RESULTS", str(env / "results"))
    monkeypatch.delenv("TRIDENT_DEBUG", raising=False)
    adapter_save_fails(monkeypatch, TORCH_FULL)
    code = main(["run", str(toy_suite(env / "suite")), "--dtype", "float32", "--n-boot", "20"])
    out, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "disk full while writing" in errors[0] and "adapters" in errors[0], err
    nothing_complete_in(env / "cache" / "adapters")
    assert not (env / "results").exists() or not any((env / "results").rglob("*")), "a run directory was left"


def test_a_full_disk_while_writing_a_training_checkpoint_names_the_checkpoint_folder(env, tiny_lm, monkeypatch):
    """The Trainer saves checkpoints through peft/safetensors, which word a full disk as their own
    error type: it still ends as one line naming the checkpoint folder, and no adapter is cached."""
    import peft.peft_model

    from bench.arms import suite_context
    from bench.arms.finetune import FinetuneArm
    from bench.suites import load_suite
    from bench.training import artifacts

    real = peft.peft_model.safe_save_file
    hits: list[Path] = []

    def save(tensors, filename, *args, **kwargs):
        if "checkpoint-" not in str(filename):
            return real(tensors, filename, *args, **kwargs)
        hits.append(Path(filename))
        raise SAFETENSORS_FULL

    monkeypatch.setattr(peft.peft_model, "safe_save_file", save)
    suite = load_suite(str(toy_suite(env / "suite")))
    with pytest.raises(ResourceError) as raised:
        FinetuneArm(suite.spec.arms[0]).trained_model(suite_context(suite, lambda: tiny_lm, batch_size=4),
                                                      suite.tasks["colour"])
    assert hits, "no checkpoint was written"
    message = str(raised.value)
    assert "\n" not in message and "disk full while writing checkpoints under" in message, message
    assert "resumes from the last complete checkpoint" in message
    assert not list(artifacts.adapters_root().rglob("COMPLETE")), "a trained model looks complete"
