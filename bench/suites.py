"""Find suites, load their data into Examples and Documents, and check every record.

Loading and validating are one pass: each record is checked as it is read, and every
problem (file, line, field, what was expected) is collected before anything is raised.
Files are read by `bench.records` (JSONL line by line so errors carry line numbers; CSV and
parquet through `datasets`), hub datasets through `datasets.load_dataset`, and the corpus by
`bench.corpus`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import SPLITS, ArmSpec, Profile, SuiteError, SuiteSpec, TaskSpec, parse_suite_yaml, unknown_name
from .corpus import load_corpus
from .data import Document, Example
from .records import read_records, shown_path
from .yaml_problems import Problem, yaml_line

SUITE_FILE = "suite.yaml"


@dataclass
class Task:
    """A task's spec with its examples per split (after any seeded `limit`)."""

    spec: TaskSpec
    examples: dict[str, list[Example]]
    full_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    def split(self, name: str) -> list[Example]:
        return self.examples.get(name, [])


@dataclass
class Suite:
    """A loaded, validated suite: what every arm and the report work from. `spec` is resolved:
    the chosen profile's arms and limits are applied, and its `profiles` are left out."""

    spec: SuiteSpec
    path: Path
    tasks: dict[str, Task]
    corpus: list[Document]
    profile: str | None = None

    @property
    def root(self) -> Path:
        return self.path.parent


def search_dirs() -> list[Path]:
    """Where suites are looked up: $TRIDENT_SUITES (os.pathsep-separated), ./suites, the project's."""
    dirs = [Path(p) for p in os.environ.get("TRIDENT_SUITES", "").split(os.pathsep) if p]
    dirs += [Path.cwd() / "suites", Path(__file__).resolve().parent.parent / "suites"]
    seen, out = set(), []
    for d in dirs:
        r = d.resolve()
        if r not in seen and r.is_dir():
            seen.add(r)
            out.append(r)
    return out


def list_suites() -> dict[str, Path]:
    """Suite name -> suite.yaml, first search directory wins."""
    found: dict[str, Path] = {}
    for d in search_dirs():
        for y in sorted(d.glob(f"*/{SUITE_FILE}")):
            found.setdefault(y.parent.name, y)
    return found


def find_suite(name_or_path: str) -> Path:
    """A suite name, a suite directory or a suite.yaml path -> the suite.yaml path."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    if (p / SUITE_FILE).is_file():
        return p / SUITE_FILE
    known = list_suites()
    if name_or_path in known:
        return known[name_or_path]
    raise SuiteError([Problem(name_or_path, None, "", unknown_name("suite", name_or_path, list(known)))])


def load_suite(name_or_path: str, *, profile: str | None = None, apply_limits: bool = True,
               limit: int | None = None) -> Suite:
    """Load and check a suite; raise SuiteError with every problem found.

    Every profile of the suite is checked whichever one is chosen, so `bench validate SUITE`
    covers them all. `profile` applies that profile's arms and limits (an unknown name is a
    ConfigError naming the known ones); `limit` caps every task's test split (a seeded
    subsample) for quick runs.
    """
    path = find_suite(name_or_path)
    try:
        declared = parse_suite_yaml(path)
    except SuiteError as e:
        raise SuiteError(e.problems + _problems_of_valid_tasks(path)) from e
    spec = declared.resolve(profile)
    problems: list[Problem] = []
    tasks = {t.name: _load_task(path, i, t, spec.seed, problems, apply_limits, limit) for i, t in enumerate(spec.tasks)}
    corpus = load_corpus(path, spec, problems)
    for i, t in enumerate(spec.tasks):
        problems += _check_metrics(path, i, t)
    problems += _check_arms(path, ("arms",), declared.arms, tasks)
    problems += _check_compositions(path, ("arms",), declared.arms, bool(declared.corpus))
    for name, p in declared.profiles.items():
        problems += _check_profile(path, name, p, tasks)
        if p.arms:
            problems += _check_compositions(path, ("profiles", name, "arms"), p.arms, bool(declared.corpus))
    if problems:
        raise SuiteError(problems)
    return Suite(spec=spec, path=path, tasks=tasks, corpus=corpus, profile=profile)


def list_profiles(name_or_path: str) -> dict[str, Profile]:
    """A suite's profiles in declaration order (name -> Profile, with its description);
    schema errors raise SuiteError, as for `load_suite`."""
    return parse_suite_yaml(find_suite(name_or_path)).profiles


def _problems_of_valid_tasks(path: Path) -> list[Problem]:
    """When suite.yaml has schema errors, still check the data of every task that parses,
    so one `bench validate` lists every problem at once."""
    import yaml
    from pydantic import ValidationError

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    tasks = raw.get("tasks") if isinstance(raw, dict) else None
    problems: list[Problem] = []
    for i, t in enumerate(tasks if isinstance(tasks, list) else []):
        try:
            task = TaskSpec.model_validate(t)
        except ValidationError:
            continue
        _load_task(path, i, task, 0, problems, apply_limits=False, limit=None)
        problems += _check_metrics(path, i, task)
    return problems


def _load_task(path: Path, index: int, task: TaskSpec, seed: int, problems: list[Problem],
               apply_limits: bool, limit: int | None) -> Task:
    by_split: dict[str, list[Example]] = {s: [] for s in SPLITS}
    seen_ids: dict[str, str] = {}
    sources = _sources(path, index, task, problems)
    for split_hint, shown, rows in sources:
        for line, rec in rows:
            where = (shown, line)
            ex = _example(task, rec, split_hint, where, problems)
            if ex is None:
                continue
            if ex.id in seen_ids:
                problems.append(Problem(shown, line, task.id_field,
                                        f"duplicate id {ex.id!r} (first at {seen_ids[ex.id]})"))
                continue
            seen_ids[ex.id] = f"{shown}:{line}" if line else shown
            by_split[ex.split].append(ex)
    yaml_shown = shown_path(path)
    declared = set(task.data.files or {}) | set((task.data.hub.splits if task.data.hub else {}) or {})
    required = declared or {"train", "test"}
    if sources:
        for s in SPLITS:
            if s in required and not by_split[s]:
                problems.append(Problem(yaml_shown, yaml_line(path, ("tasks", index, "data")), f"task {task.name}",
                                        f"split '{s}' is empty; expected at least one example"))
    full_sizes = {s: len(v) for s, v in by_split.items()}
    caps = dict(task.limit or {}) if apply_limits else {}
    if limit is not None:
        caps["test"] = min(limit, caps.get("test", limit))
    for s, k in caps.items():
        if len(by_split[s]) > k:
            pool = sorted(by_split[s], key=lambda e: e.id)
            by_split[s] = sorted(random.Random(f"{seed}:{task.name}:{s}").sample(pool, k), key=lambda e: e.id)
    return Task(spec=task, examples={s: v for s, v in by_split.items() if v}, full_sizes=full_sizes)


def _sources(path: Path, index: int, task: TaskSpec, problems: list[Problem]) -> list[tuple[str | None, str, Iterator]]:
    """(split or None when the record names it, shown file name, iterator of (line, record))."""
    data, base, out = task.data, path.parent, []
    if data.files:
        for split, rel in data.files.items():
            f = base / rel
            if not f.is_file():
                problems.append(Problem(shown_path(path), yaml_line(path, ("tasks", index, "data", "files", split)),
                                        f"task {task.name}: data.files.{split}", f"file not found: {shown_path(f)}"))
                continue
            out.append((split, shown_path(f), list(read_records(f, problems))))
    elif data.file:
        f = base / data.file
        if not f.is_file():
            problems.append(Problem(shown_path(path), yaml_line(path, ("tasks", index, "data", "file")),
                                    f"task {task.name}: data.file", f"file not found: {shown_path(f)}"))
        else:
            out.append((None, shown_path(f), list(read_records(f, problems))))
    elif data.hub:
        out += _hub_sources(task, problems, shown_path(path))
    return out


def _hub_sources(task: TaskSpec, problems: list[Problem], shown_yaml: str) -> list:
    import datasets

    hub, out = task.data.hub, []
    for split, hub_split in hub.splits.items():
        try:
            ds = datasets.load_dataset(hub.path, hub.name, revision=hub.revision, split=hub_split)
        except Exception as e:  # offline, unknown dataset, unknown split: all need the same advice
            problems.append(Problem(shown_yaml, None, f"task {task.name}: data.hub",
                                    f"cannot load hub dataset {hub.path!r} split {hub_split!r}: "
                                    f"{str(e).splitlines()[0]}"))
            continue
        out.append((split, f"hub:{hub.path}/{hub_split}", [(i + 1, r) for i, r in enumerate(ds)]))
    return out


def _example(task: TaskSpec, rec: dict[str, Any], split_hint: str | None, where: tuple[str, int],
             problems: list[Problem]) -> Example | None:
    shown, line = where
    bad = len(problems)

    def need(key: str) -> Any:
        if key not in rec or rec[key] is None:
            keys = ", ".join(sorted(rec)) or "none"
            problems.append(Problem(shown, line, key, f"missing; expected the field '{key}' (record keys: {keys})"))
            return None
        return rec[key]

    rid, text, target = need(task.id_field), need(task.input_field), need(task.target_field)
    split = split_hint
    if split is None:
        split = need(task.data.split_field)
        if split is not None and split not in SPLITS:
            problems.append(Problem(shown, line, task.data.split_field,
                                    f"expected one of {', '.join(SPLITS)}, got {split!r}"))
    if rid is not None and not isinstance(rid, (str, int)):
        problems.append(Problem(shown, line, task.id_field,
                                f"expected a string or integer id, got {type(rid).__name__}"))
    if text is not None and (not isinstance(text, str) or not text.strip()):
        problems.append(Problem(shown, line, task.input_field, "expected non-empty text"))
    targets: tuple[str, ...] = ()
    if target is not None:
        if isinstance(target, str) and target.strip():
            targets = (target,)
        elif isinstance(target, list) and target and all(isinstance(t, str) and t.strip() for t in target):
            targets = tuple(target)
        else:
            problems.append(Problem(shown, line, task.target_field,
                                    "expected non-empty text or a non-empty list of texts"))
    if task.labels and targets:
        for t in targets:
            if t not in task.labels:
                problems.append(Problem(shown, line, task.target_field, unknown_name("label", t, task.labels)))
    if len(problems) > bad:
        return None
    own = (task.id_field, task.input_field, task.target_field, task.data.split_field)
    meta = {k: v for k, v in rec.items() if k not in own}
    return Example(id=str(rid), input=text, targets=targets, split=split, meta=meta)


def _check_arms(path: Path, at: tuple[str, ...], arms: list[ArmSpec], tasks: dict[str, Task]) -> list[Problem]:
    """Arm variants (the suite's `arms`, or a profile's at `at`) against the tasks they name."""
    out, shown = [], ".".join(at)
    for i, arm in enumerate(arms):
        for name in arm.tasks or []:
            if name not in tasks:
                out.append(Problem(shown_path(path), yaml_line(path, (*at, i, "tasks")), f"{shown}[{i}].tasks",
                                   unknown_name("task", name, list(tasks))))
        shots = getattr(arm, "shots", 0)
        for t in tasks.values():
            if arm.tasks and t.name not in arm.tasks:
                continue
            n_train = t.full_sizes.get("train", 0)
            if shots > n_train:
                out.append(Problem(shown_path(path), yaml_line(path, (*at, i, "shots")), f"{shown}[{i}].shots",
                                   f"{shots} shots but task {t.name} has only {n_train} train examples"))
    return out


def _check_compositions(path: Path, at: tuple[str, ...], arms: list[ArmSpec], has_corpus: bool) -> list[Problem]:
    """What a retrieval variant needs that another part of the suite must supply: the fine-tune
    variant named by `finetuned:` (in the same arm list) and, in corpus mode, a corpus."""
    out, shown, kinds = [], ".".join(at), {a.name: a.arm for a in arms}
    for i, arm in enumerate(arms):
        if arm.arm != "rag":
            continue
        if arm.finetuned and kinds.get(arm.finetuned) != "finetune":
            what = (f"'{arm.finetuned}' is a {kinds[arm.finetuned]} variant; expected a finetune variant"
                    if arm.finetuned in kinds else unknown_name("arm variant", arm.finetuned, list(kinds)))
            out.append(Problem(shown_path(path), yaml_line(path, (*at, i, "finetuned")),
                               f"{shown}[{i}].finetuned", what))
        if arm.mode == "corpus" and not has_corpus:
            out.append(Problem(shown_path(path), yaml_line(path, (*at, i, "mode")) or yaml_line(path, (*at, i)),
                               f"{shown}[{i}].mode", "corpus retrieval needs a `corpus:` in suite.yaml; add one "
                               "or use `mode: examples`"))
    return out


def _check_profile(path: Path, name: str, profile: Profile, tasks: dict[str, Task]) -> list[Problem]:
    """What the schema cannot see: task names in `limits`, and the profile's arms as the suite's."""
    out = []
    for task in profile.limits:
        if task not in tasks:
            out.append(Problem(shown_path(path), yaml_line(path, ("profiles", name, "limits", task)),
                               f"profiles.{name}.limits", unknown_name("task", task, list(tasks))))
    if profile.arms:
        out += _check_arms(path, ("profiles", name, "arms"), profile.arms, tasks)
    return out


def _check_metrics(path: Path, index: int, task: TaskSpec) -> list[Problem]:
    """The one place metric names are checked (also for the tasks that parse when others do not)."""
    from .metrics import METRICS

    out, line, shown = [], yaml_line(path, ("tasks", index, "metrics")), f"tasks[{index}].metrics"
    for m in task.metrics:
        if m.startswith("evaluate:"):
            continue  # loaded (and checked) when scoring: it may need a network
        if m not in METRICS:
            out.append(Problem(shown_path(path), line, shown, unknown_name("metric", m, list(METRICS))))
        elif task.kind not in METRICS[m].kinds:
            out.append(Problem(shown_path(path), line, shown,
                               f"metric '{m}' does not apply to {task.kind} tasks "
                               f"(it is for {', '.join(METRICS[m].kinds)})"))
    return out
