"""`bench export RUN_DIR VARIANT --out DIR`: a run's trained model, in the format people load.

A LoRA or QLoRA variant becomes a PEFT adapter folder (`PeftModel.from_pretrained(base, DIR)`),
or with `merged` one whole safetensors model (`AutoModelForCausalLM.from_pretrained(DIR)`); a
full fine-tune is a whole model either way. The run's tokenizer goes with it (pad token and chat
template as every arm used them), and README.md is the card bench.model_card writes.

The model is found through the run, never guessed: every cell in run.json names the trained model
that answered it (`costs.artifact`, its key in the trained-model cache). Every refusal (an arm that
trains nothing, an unknown variant, an unfinished run, a model gone from the cache, a base model
that changed, an output folder in use) comes before anything is loaded or written, and the folder
appears only when it is whole (written beside it, then renamed).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from .config import ARM_SPECS, ArmSpec, FinetuneArm, TaskSpec, unknown_name
from .decision import TaskDecision, decisions_from_json
from .errors import ConfigError, ModelError
from .model_card import CardFacts, TaskResult, render_card
from .results import RunResults, load_run
from .store import COMPLETE, atomic_write_text, read_json, write_json, writing_to
from .training import artifacts

CACHE_ONLY = {"meta.json", artifacts.MARKER, "README.md"}
"""Files of a cache entry that stay behind: trident's bookkeeping and PEFT's empty card template."""


@dataclass(frozen=True)
class ExportRequest:
    """What `bench export` was asked for."""

    run_dir: Path
    variant: str
    """The arm variant to export: a fine-tune, or a rag variant built on one (its fine-tune is exported)."""
    out: Path
    """The folder to create; it must not exist, or be empty."""
    merged: bool = False
    """LoRA/QLoRA: merge the adapter into the base and write a whole model."""
    task: str | None = None
    """Which task's model, when the variant trained one per task."""
    licence: str | None = None
    """The card's licence; None: the base model's, where its package declares one, else 'other'."""


@dataclass(frozen=True)
class RunRecord:
    """What export reads of run.json beyond bench.results: how the run was made."""

    suite_path: str
    profile: str | None
    arms: dict[str, ArmSpec]
    """The run's arm variants by name, as it resolved them."""
    tasks: dict[str, TaskSpec]
    model_fingerprint: str
    batch_size: int | None
    options: dict[str, Any]
    """`bench run`'s options as recorded (RunOptions' fields)."""


@dataclass(frozen=True)
class TrainedModel:
    """The trained model an export writes, as the run used it."""

    variant: str
    """The fine-tune variant that trained it."""
    spec: FinetuneArm
    key: str
    """Its key in the trained-model cache (adapters/<key>)."""
    tasks: tuple[str, ...]
    """The tasks the requested variant answered with it, in run order."""
    note: str | None
    """Why another variant than the requested one is exported, if it is."""

    @property
    def path(self) -> Path:
        return artifacts.adapters_root() / self.key


@dataclass(frozen=True)
class Exported:
    """What `export_model` wrote."""

    out: Path
    export_format: str
    """adapter, merged or full (bench.model_card.FORMATS)."""
    variant: str
    note: str | None


@dataclass(frozen=True)
class ExportPlan:
    """An export that passed every check: what is written, from what."""

    run: RunResults
    record: RunRecord
    model: TrainedModel
    export_format: str
    """adapter, merged or full (bench.model_card.FORMATS)."""
    commands: list[str]
    """The commands that train and export the model again."""


def export_model(req: ExportRequest) -> Exported:
    """Check everything, then write the model, its tokenizer and its card into `req.out`, which
    appears only when it is whole."""
    plan = plan_export(req)
    base = _load_base(plan.run, plan.record)
    staging = req.out.parent / f".{req.out.name}.export-tmp"
    with writing_to(req.out):
        shutil.rmtree(staging, ignore_errors=True)  # left by an export that was killed
        staging.mkdir(parents=True)
        try:
            named_as = _write_weights(plan.model, base, plan.export_format, plan.run.dtype, staging)
            base.tokenizer.save_pretrained(str(staging))
            card = render_card(_card_facts(plan, req, named_as, _saved_dtype(staging)))
            atomic_write_text(staging / "README.md", card)
            if req.out.exists():
                req.out.rmdir()  # empty: plan_export said so
            staging.rename(req.out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return Exported(req.out, plan.export_format, plan.model.variant, plan.model.note)


def plan_export(req: ExportRequest) -> ExportPlan:
    """Every refusal, before a model is loaded or a file written."""
    from .export_facts import check_base, reproduce_commands

    run = load_run(req.run_dir)  # refuses, in one line, a run stopped or failed while predicting
    if run.status != COMPLETE:
        raise ConfigError(f"{run.run_dir}: the run is not complete (status '{run.status}'): `bench report "
                          f"{run.run_dir}` finishes it, then export")
    record = read_record(run.run_dir)
    model = locate(run, record, req.variant, req.task)
    _check_out(req.out)
    fmt = "full" if model.spec.method == "full" else "merged" if req.merged else "adapter"
    commands = reproduce_commands(run, record, req.variant, model.tasks, fmt, req.task)
    if not artifacts.is_complete(model.key):
        raise ModelError(f"the trained model of '{model.variant}' ({model.key}) is no longer in the cache at "
                         f"{artifacts.adapters_root()} (cleared, or TRIDENT_CACHE points elsewhere): train it again "
                         f"with `{commands[0]}`, then export from that run")
    check_base(run, record)
    return ExportPlan(run, record, model, fmt, commands)


def _card_facts(plan: ExportPlan, req: ExportRequest, named_as: str, saved_dtype: str) -> CardFacts:
    from .export_facts import base_facts, training_data

    run, record, model = plan.run, plan.record, plan.model
    return CardFacts(
        variant=model.variant, export_format=plan.export_format, note=model.note, suite=run.suite,
        run_dir=str(run.run_dir), git_sha=run.git_sha, started=run.started, device=run.device,
        saved_dtype=saved_dtype, base=base_facts(run, record, named_as),
        hyperparameters=model.spec.model_dump(mode="json"), training=artifacts.read_costs(model.key),
        artifact_key=model.key, data=training_data(run, record, model), prompts=_prompts(record, model),
        results=_results(run, model), licence=req.licence or _default_licence(run.model_spec),
        reproduce=plan.commands)


def read_record(run_dir: Path) -> RunRecord:
    """run.json's suite, options, model and resolved arm and task specs, typed."""
    path = run_dir / "run.json"
    run = read_json(path)
    spec, model = run.get("spec", {}), run.get("model", {})
    try:
        arms = {a["name"]: _revalidated(ARM_SPECS[a["arm"]], a) for a in spec.get("arms", [])}
        tasks = {t["name"]: _revalidated(TaskSpec, t) for t in spec.get("tasks", [])}
    except (ValidationError, KeyError) as e:
        raise ConfigError(f"{path}: its suite spec does not read with this version of trident "
                          f"({str(e).splitlines()[0]}); export it with the version that ran it") from e
    return RunRecord(suite_path=run.get("suite_path", ""), profile=run.get("profile"), arms=arms, tasks=tasks,
                     model_fingerprint=model.get("fingerprint", ""), batch_size=model.get("batch_size"),
                     options=run.get("options", {}))


def _revalidated(cls: type[BaseModel], record: dict[str, Any]) -> Any:
    """A spec as run.json holds it (every default written out) validated again. Fields at their
    default are left unset, as in the suite.yaml it came from: some checks refuse a setting that does
    not apply (rrf_k without a hybrid retriever) only when it is set."""
    def at_default(name: str, value: Any) -> bool:
        field = cls.model_fields.get(name)
        return field is not None and not field.is_required() and \
            to_jsonable_python(field.get_default(call_default_factory=True)) == value

    return cls.model_validate({k: v for k, v in record.items() if not at_default(k, v)})


def locate(run: RunResults, record: RunRecord, variant: str, task: str | None) -> TrainedModel:
    """The trained model behind `variant` in the run; a ConfigError for a variant that trains nothing,
    is unknown, did not run, or trained one model per task when no (known) task is named."""
    spec = record.arms.get(variant)
    if spec is None:
        raise ConfigError(f"{run.run_dir}: " + unknown_name("arm variant", variant, list(record.arms)))
    trained_by, note = variant, None
    if spec.arm == "rag":
        if not spec.finetuned:
            raise ConfigError(f"'{variant}' is a rag variant on the untrained base model: it trains nothing, so "
                              "there is no model to export (a rag variant with `finetuned:` exports that fine-tune)")
        trained_by = spec.finetuned
        note = (f"'{variant}' retrieves passages for the fine-tune '{trained_by}': this is that fine-tune's model "
                "(the retrieval, index and corpus are not part of it)")
        spec = record.arms[trained_by]
    if not isinstance(spec, FinetuneArm):
        raise ConfigError(f"'{variant}' is a {spec.arm} variant: it trains nothing, so there is no model to export "
                          "(export a finetune variant, or a rag variant with `finetuned:`)")
    if spec.method == "head":
        raise ConfigError(f"'{variant}' trains a linear head on the frozen base model's features (method head), which "
                          "neither PEFT nor transformers loads as a model; export a lora, qlora or full variant")
    return TrainedModel(trained_by, spec, *_key(run, variant, task), note)


def _key(run: RunResults, variant: str, task: str | None) -> tuple[str, tuple[str, ...]]:
    """(cache key, the tasks it answered) of the model the variant answered `task` with."""
    by_task = {c.task: c.reported["artifact"] for c in run.cells if c.arm == variant and c.reported.get("artifact")}
    if not by_task:
        raise ConfigError(f"{run.run_dir}: '{variant}' made no prediction in this run (not selected with --arms, or "
                          "restricted to tasks that did not run)")
    if task is not None:
        if task not in by_task:
            raise ConfigError(f"'{variant}' answered no task '{task}' in this run (it ran on {', '.join(by_task)})")
        key = by_task[task]
    elif len(set(by_task.values())) > 1:
        raise ConfigError(f"'{variant}' trained one model per task ({', '.join(by_task)}): name one with --task")
    else:
        key = next(iter(by_task.values()))
    return key, tuple(t for t, k in by_task.items() if k == key)


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out}: exists and is not an empty folder; an export never overwrites, choose a new "
                          "folder")


def _load_base(run: RunResults, record: RunRecord):
    """The run's base model on the CPU in float32 (merging is exact there; the weights are cast after)."""
    from .models import load_model

    return load_model(run.model_spec, device="cpu", dtype="float32", seed=run.seed,
                      trust_remote_code=bool(record.options.get("trust_remote_code")))


def _write_weights(model: TrainedModel, base, fmt: str, dtype: str, folder: Path) -> str:
    """Write the weights into `folder`; return what the base model is named as in them."""
    named_as = _base_name(base.spec)
    if fmt == "merged":
        import torch

        merged = artifacts.load_trained(base, model.key, merge=True).model
        merged.to(getattr(torch, dtype)).save_pretrained(str(folder))
        return named_as
    for f in sorted(model.path.iterdir()):
        if f.is_file() and f.name not in CACHE_ONLY:
            shutil.copy2(f, folder / f.name)
    config = folder / "adapter_config.json"
    if fmt == "adapter":  # the base as this machine knows it (PEFT wrote what training saw)
        write_json(config, {**read_json(config), "base_model_name_or_path": named_as})
    return named_as


def _saved_dtype(folder: Path) -> str:
    """The dtype of the weights as written (an adapter keeps the float32 it was trained in)."""
    from safetensors import safe_open

    path = min(folder.glob("*.safetensors"))
    with safe_open(str(path), framework="pt") as f:
        return str(f.get_tensor(next(iter(f.keys()))).dtype).removeprefix("torch.")


def _base_name(spec: str) -> str:
    """What an adapter names as its base: the folder it loads from here, or the spec itself."""
    from .models import EMBEDDED, embedded_dir, local_path

    if spec in EMBEDDED:
        return str(embedded_dir(spec))
    path = local_path(spec)
    return str(path.resolve()) if path is not None else spec


def _default_licence(spec: str) -> str:
    """The embedded base model's licence as its package declares it (lower case, as the hub spells SPDX
    ids), else 'other': trident cannot know a hub or local model's terms."""
    import importlib.metadata

    from .models import EMBEDDED

    if spec not in EMBEDDED:
        return "other"
    try:
        meta = importlib.metadata.metadata(EMBEDDED[spec].distribution)
    except importlib.metadata.PackageNotFoundError:  # loading the base would have said what to install
        return "other"
    declared = meta.get("License-Expression") or meta.get("License") or ""
    return declared.lower() if declared and " " not in declared.strip() else "other"


def _prompts(record: RunRecord, model: TrainedModel) -> dict[str, str]:
    """Task -> the user turn it was trained with, `{input}` standing for the input."""
    from .prompts import user_message

    context = "{retrieved passages}" if model.spec.retrieval_from else None
    trained = artifacts.read_costs(model.key).tasks_trained
    return {t: user_message(record.tasks[t], "{input}", context=context) for t in trained if t in record.tasks}


def _results(run: RunResults, model: TrainedModel) -> list[TaskResult]:
    """Every (variant, task) of the run answered by this trained model, with its scores and the verdict."""
    decisions = _decisions(run)
    seen: dict[tuple[str, str], TaskResult] = {}
    for c in run.cells:
        scores = run.tasks.get(c.task)
        if c.reported.get("artifact") != model.key or scores is None or c.arm not in scores.arms:
            continue
        seen[(c.arm, c.task)] = TaskResult(c.task, c.arm, scores.arms[c.arm].metrics, scores.floor,
                                           decisions.get(c.task), run.costs(c.arm, c.task))
    return list(seen.values())


def _decisions(run: RunResults) -> dict[str, TaskDecision]:
    path = run.run_dir / "decision.json"
    return decisions_from_json(read_json(path)) if path.is_file() else {}
