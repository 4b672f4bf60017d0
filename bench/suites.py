"""Find suites, load their data into Examples and Documents, and check every record.

Loading and validating are one pass: each record is checked as it is read, and every
problem (file, line, field, what was expected) is collected before anything is raised.
Files are read by `bench.records` (JSONL line by line so errors carry line numbers; CSV and
parquet through `datasets`), hub datasets through `datasets.load_dataset`, and the corpus by
`bench.corpus`.
"""

from __future__ import annotations

import difflib
import os
import random
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import (
    SPLITS,
    ArmSpec,
    DataSpec,
    Profile,
    SuiteError,
    SuiteSpec,
    TaskKind,
    TaskSpec,
    composition_problem,
    parse_suite_yaml,
    unknown_name,
)
from .corpus import load_corpus
from .data import Document, Example
from .experiments import update_checks
from .records import outside_problem, read_records, shown_path
from .suite_checks import check_arm_needs, check_filters, check_gold_documents
from .yaml_problems import Problem, yaml_line

SUITE_FILE = "suite.yaml"


@dataclass
class Task:
    """A task's spec with its examples per split (after any seeded `limit`)."""

    spec: TaskSpec
    examples: dict[str, list[Example]]
    full_sizes: dict[str, int] = field(default_factory=dict)
    corpus: list[Document] | None = None
    """The task's own documents (its `corpus:`), or None: it uses the suite's corpus."""

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
               limit: int | None = None, allow_outside: bool = False) -> Suite:
    """Load and check a suite; raise SuiteError with every problem found.

    Every profile of the suite is checked whichever one is chosen, so `bench validate SUITE`
    covers them all. `profile` applies that profile's arms and limits (an unknown name is a
    ConfigError naming the known ones); `limit` caps every task's test split (a seeded
    subsample) for quick runs. Data and corpus files must lie in the suite's folder unless
    `allow_outside` (--allow-outside-paths) says otherwise.
    """
    path = find_suite(name_or_path)
    try:
        declared = parse_suite_yaml(path)
    except SuiteError as e:
        raise SuiteError(e.problems + _problems_of_valid_tasks(path, allow_outside)) from e
    spec = declared.resolve(profile)
    problems: list[Problem] = []
    tasks = {t.name: _load_task(path, i, t, spec.seed, problems, apply_limits, limit, allow_outside)
             for i, t in enumerate(spec.tasks)}
    before_corpus = len(problems)
    corpus = load_corpus(path, spec.corpus, problems, allow_outside=allow_outside)
    corpus_ok = len(problems) == before_corpus  # gold ids are checked against a corpus that loaded whole
    corpora = _task_corpora(path, spec, tasks, problems, allow_outside,
                            corpus if declared.corpus is not None and corpus_ok else None)
    with_corpus = {t.name for t in spec.tasks if t.corpus is not None or declared.corpus is not None}
    for i, t in enumerate(spec.tasks):
        problems += _check_metrics(path, i, t.kind, t.metrics)
        if t.name in corpora:
            problems += check_gold_documents(path, i, tasks[t.name], corpora[t.name])
        problems += update_checks.task_problems(path, i, tasks[t.name], declared.corpus, corpus if corpus_ok else None)
    problems += _check_arms(path, ("arms",), declared.arms, tasks)
    problems += check_arm_needs(path, ("arms",), declared.arms, tasks, with_corpus)
    problems += _check_compositions(path, ("arms",), declared.arms, tasks, with_corpus)
    problems += check_filters(path, ("arms",), declared.arms, tasks, corpora)
    for name, p in declared.profiles.items():
        problems += _check_profile(path, name, p, tasks)
        problems += check_arm_needs(path, ("profiles", name, "arms"), p.arms or [], tasks, with_corpus)
        problems += check_filters(path, ("profiles", name, "arms"), p.arms or [], tasks, corpora)
        if p.arms:
            problems += _check_compositions(path, ("profiles", name, "arms"), p.arms, tasks, with_corpus)
    if problems:
        raise SuiteError(problems)
    return Suite(spec=spec, path=path, tasks=tasks, corpus=corpus, profile=profile)


def _task_corpora(path: Path, spec: SuiteSpec, tasks: dict[str, Task], problems: list[Problem],
                  allow_outside: bool, suite_corpus: list[Document] | None) -> dict[str, list[Document] | None]:
    """Load each task's own `corpus:` into its Task (one declaration written twice loads once) and
    return, per task, the documents its gold ids and filters are checked against: its own, else
    the suite's (None: it has no corpus at all). A task whose corpus did not load whole is left
    out: its corpus's own problems say what is wrong."""
    loaded: dict[str, tuple[list[Document], bool]] = {}
    out: dict[str, list[Document] | None] = {}
    for i, t in enumerate(spec.tasks):
        if t.corpus is None:
            if spec.corpus is None or suite_corpus is not None:
                out[t.name] = suite_corpus
            continue
        key = t.corpus.model_dump_json()
        if key not in loaded:
            before = len(problems)
            docs = load_corpus(path, t.corpus, problems, at=("tasks", i, "corpus"), allow_outside=allow_outside)
            loaded[key] = (docs, len(problems) == before)
        docs, whole = loaded[key]
        tasks[t.name].corpus = docs
        if whole:
            out[t.name] = docs
    return out


def list_profiles(name_or_path: str) -> dict[str, Profile]:
    """A suite's profiles in declaration order (name -> Profile, with its description);
    schema errors raise SuiteError, as for `load_suite`."""
    return parse_suite_yaml(find_suite(name_or_path)).profiles


def _problems_of_valid_tasks(path: Path, allow_outside: bool) -> list[Problem]:
    """When suite.yaml has schema errors, still check the data of every task that parses, and
    the data files and metric names of every task that does not, so one `bench validate` lists
    every problem at once."""
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
            problems += _problems_of_invalid_task(path, i, t, allow_outside)
            continue
        _load_task(path, i, task, 0, problems, False, None, allow_outside)
        load_corpus(path, task.corpus, problems, at=("tasks", i, "corpus"), allow_outside=allow_outside)
        problems += _check_metrics(path, i, task.kind, task.metrics)
    return problems


def _problems_of_invalid_task(path: Path, index: int, raw: Any, allow_outside: bool) -> list[Problem]:
    """A task with a schema error cannot be loaded, but its data files can still be looked for and
    its metric names checked: a typo in one field should not hide a missing file."""
    from pydantic import ValidationError

    if not isinstance(raw, dict):
        return []
    problems: list[Problem] = []
    name = raw["name"] if isinstance(raw.get("name"), str) else f"tasks[{index}]"
    try:
        data = DataSpec.model_validate(raw.get("data"))
    except ValidationError:
        data = None  # the schema problem already names what is wrong with `data`
    if data is not None:
        _data_files(path, index, name, data, problems, allow_outside)
    metrics = raw.get("metrics")
    if isinstance(metrics, list) and all(isinstance(m, str) for m in metrics):
        kind = raw.get("kind") if raw.get("kind") in typing.get_args(TaskKind) else None
        problems += _check_metrics(path, index, kind, metrics)
    return problems


def _load_task(path: Path, index: int, task: TaskSpec, seed: int, problems: list[Problem],
               apply_limits: bool, limit: int | None, allow_outside: bool) -> Task:
    by_split: dict[str, list[Example]] = {s: [] for s in SPLITS}
    seen_ids: dict[str, str] = {}
    sources = _sources(path, index, task, problems, allow_outside)
    troubled: set[str | None] = set()  # sources (by split; None: the one file) that had problems of their own
    for split_hint, shown, rows in sources:
        before = len(problems)
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
        if len(problems) > before:
            troubled.add(split_hint)
    yaml_shown = shown_path(path)
    declared = set(task.data.files or {}) | set((task.data.hub.splits if task.data.hub else {}) or {})
    required = declared or {"train", "test"}
    read_cleanly = {hint for hint, _, _ in sources} - troubled
    for s in SPLITS:
        # An empty split is a problem of its own only when its source was read without one: a
        # missing, unreadable or outside file, or bad rows, already say why it is empty.
        if s in required and not by_split[s] and {s, None} & read_cleanly:
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


def _sources(path: Path, index: int, task: TaskSpec, problems: list[Problem],
             allow_outside: bool) -> list[tuple[str | None, str, Iterator]]:
    """(split or None when the record names it, shown file name, iterator of (line, record))."""
    if task.data.hub:
        return _hub_sources(task, problems, shown_path(path))
    return [(split, shown_path(f), read_records(f, problems))  # read as the caller iterates
            for split, f in _data_files(path, index, task.name, task.data, problems, allow_outside)]


def _data_files(path: Path, index: int, task_name: str, data: DataSpec, problems: list[Problem],
                allow_outside: bool) -> list[tuple[str | None, Path]]:
    """(split, or None when the records name it; file) for each data file that exists and may be
    read; every other one becomes a problem at its line of suite.yaml."""
    named: list[tuple[str | None, tuple[str, ...], str]] = [
        (split, ("files", split), rel) for split, rel in (data.files or {}).items()]
    if data.file:
        named.append((None, ("file",), data.file))
    out = []
    for split, key, rel in named:
        f = path.parent / rel
        why = outside_problem(path.parent, f, allow_outside)  # before is_file: say nothing of files outside
        if why is None and not f.is_file():
            why = f"file not found: {shown_path(f)}"
        if why:
            problems.append(Problem(shown_path(path), yaml_line(path, ("tasks", index, "data", *key)),
                                    f"task {task_name}: data.{'.'.join(key)}", why))
        else:
            out.append((split, f))
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
            problems.append(Problem(shown, line, key, _missing(key, rec)))
            return None
        return rec[key]

    rid, text, target = need(task.id_field), need(task.input_field), need(task.target_field)
    split = split_hint
    if split is None:
        split = need(task.data.split_field)
        if split is not None and split not in SPLITS:
            problems.append(Problem(shown, line, task.data.split_field,
                                    f"expected one of {', '.join(SPLITS)}, got {split!r}"))
    if rid is not None and _as_text(rid) is None:
        problems.append(Problem(shown, line, task.id_field,
                                f"expected a non-empty string or whole-number id, got {_described(rid)}"))
    if text is not None and (not isinstance(text, str) or not text.strip()):
        problems.append(Problem(shown, line, task.input_field, f"expected non-empty text, got {_described(text)}"))
    targets: tuple[str, ...] = ()
    if target is not None:
        targets, why = _targets(task, target)
        if why:
            problems.append(Problem(shown, line, task.target_field, why))
    gold, why = _gold_document(task, rec)
    if why:
        problems.append(Problem(shown, line, str(task.gold_doc_field), why))
    problems += update_checks.record_problems(task, rec, shown, line)
    if len(problems) > bad:
        return None
    own = (task.id_field, task.input_field, task.target_field, task.data.split_field)
    meta = {k: v for k, v in rec.items() if k not in own}
    if gold is not None:
        meta[str(task.gold_doc_field)] = gold  # as text, as corpus document ids are
    return Example(id=str(rid), input=text, targets=targets, split=split, meta=meta)


def _missing(key: str, rec: dict[str, Any]) -> str:
    """A missing field, with the record's closest field name but not all of them: a CSV's field
    names are its first line, which may be anything when the data path was wrong."""
    if key in rec:
        return f"is null; expected a value in the field '{key}'"
    close = difflib.get_close_matches(key, [str(k) for k in rec], n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"missing; expected the field '{key}' (not among the record's {len(rec)} fields{hint})"


def _as_text(value: Any) -> str | None:
    """A field value as text, or None when it is none. Whole numbers count as their digits: a CSV
    column of 0/1 labels or of numeric ids is read as numbers. Booleans and fractions do not: a
    boolean id would silently become 'True', and 3.50 reads back as 3.5."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _described(value: Any) -> str:
    """What a value is, for a problem; never its contents, which may be long or private."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "empty text" if not value.strip() else "text"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return f"a {type(value).__name__}"


def _targets(task: TaskSpec, value: Any) -> tuple[tuple[str, ...], str | None]:
    """The references a target value holds, or why it holds none."""
    if task.kind == "classification":
        if isinstance(value, list):
            return (), (f"expected one label, got a list of {len(value)}; a classification example has exactly "
                        "one label (with a list, any prediction in it would count as correct)")
        label = _as_text(value)
        if label is None:
            return (), f"expected a label, got {_described(value)}"
        if label not in (task.labels or []):
            number = "" if isinstance(value, str) else f"; the value is the number {value}"
            return (), unknown_name("label", label, task.labels or []) + number
        return (label,), None
    values = value if isinstance(value, list) else [value]
    texts = [_as_text(v) for v in values]
    if not values or None in texts:
        got = _described(values[texts.index(None)]) if values else "an empty list"
        return (), f"expected non-empty text or a non-empty list of texts, got {got}"
    return tuple(t for t in texts if t is not None), None


def _gold_document(task: TaskSpec, rec: dict[str, Any]) -> tuple[str | None, str | None]:
    """(the id of the example's gold corpus document as text, or None; why it is unusable, or None)."""
    value = rec.get(task.gold_doc_field) if task.gold_doc_field else None
    if value is None:
        return None, None  # not every example needs a gold document
    doc_id = _as_text(value)
    if doc_id is None:
        return None, f"expected a document id (text or a whole number), got {_described(value)}"
    return doc_id, None


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


def _check_compositions(path: Path, at: tuple[str, ...], arms: list[ArmSpec], tasks: dict[str, Task],
                        with_corpus: set[str]) -> list[Problem]:
    """What a retrieval variant needs that another part of the suite must supply: the fine-tune
    variant named by `finetuned:` (in the same arm list) and, in corpus mode, a corpus for every
    task it runs on (`with_corpus`: the tasks that have one, their own or the suite's)."""
    out, shown, kinds = [], ".".join(at), {a.name: a.arm for a in arms}
    by_name = {a.name: a for a in arms}
    for i, arm in enumerate(arms):
        if arm.arm == "finetune" and arm.retrieval_from:
            what = composition_problem(arm, by_name)
            if what:
                out.append(Problem(shown_path(path), yaml_line(path, (*at, i, "retrieval_from")),
                                   f"{shown}[{i}].retrieval_from", what))
        if arm.arm != "rag":
            continue
        if arm.finetuned and kinds.get(arm.finetuned) != "finetune":
            what = (f"'{arm.finetuned}' is a {kinds[arm.finetuned]} variant; expected a finetune variant"
                    if arm.finetuned in kinds else unknown_name("arm variant", arm.finetuned, list(kinds)))
            out.append(Problem(shown_path(path), yaml_line(path, (*at, i, "finetuned")),
                               f"{shown}[{i}].finetuned", what))
        lacking = [t for t in tasks if (not arm.tasks or t in arm.tasks) and t not in with_corpus]
        if arm.mode == "corpus" and lacking:
            where = "in suite.yaml" if not with_corpus else f"in suite.yaml or on task {', '.join(lacking)}"
            out.append(Problem(shown_path(path), yaml_line(path, (*at, i, "mode")) or yaml_line(path, (*at, i)),
                               f"{shown}[{i}].mode", f"corpus retrieval needs a `corpus:` {where}; add one "
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


def _check_metrics(path: Path, index: int, kind: str | None, metrics: list[str]) -> list[Problem]:
    """The one place metric names are checked (also for tasks with schema errors; `kind` None:
    the task's kind is itself wrong, so only the names are checked)."""
    from .metrics import METRICS

    out, line, shown = [], yaml_line(path, ("tasks", index, "metrics")), f"tasks[{index}].metrics"
    for m in metrics:
        if m.startswith("evaluate:"):
            continue  # loaded (and checked) when scoring: it may need a network
        if m not in METRICS:
            out.append(Problem(shown_path(path), line, shown, unknown_name("metric", m, list(METRICS))))
        elif kind is not None and kind not in METRICS[m].kinds:
            out.append(Problem(shown_path(path), line, shown,
                               f"metric '{m}' does not apply to {kind} tasks "
                               f"(it is for {', '.join(METRICS[m].kinds)})"))
    return out
