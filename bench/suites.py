"""Find suites, load their data into Examples and Documents, and check every record.

Loading and validating are one pass: each record is checked as it is read, and every
problem (file, line, field, what was expected) is collected before anything is raised.
JSONL is parsed here line by line so errors carry line numbers; CSV and parquet go
through `datasets` (row numbers), and hub datasets through `datasets.load_dataset`.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .config import SPLITS, Problem, SuiteError, SuiteSpec, TaskSpec, parse_suite_yaml, unknown_name, yaml_line
from .data import Document, Example

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
    """A loaded, validated suite: what every arm and the report work from."""

    spec: SuiteSpec
    path: Path
    tasks: dict[str, Task]
    corpus: list[Document]

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


def load_suite(name_or_path: str, *, apply_limits: bool = True, limit: int | None = None) -> Suite:
    """Load and check a suite; raise SuiteError with every problem found.

    `limit` caps every task's test split (a seeded subsample) for quick runs.
    """
    path = find_suite(name_or_path)
    try:
        spec = parse_suite_yaml(path)
    except SuiteError as e:
        raise SuiteError(e.problems + _problems_of_valid_tasks(path)) from None
    problems: list[Problem] = []
    tasks = {t.name: _load_task(path, i, t, spec.seed, problems, apply_limits, limit) for i, t in enumerate(spec.tasks)}
    corpus = _load_corpus(path, spec, problems)
    problems += _check_arms(path, spec, tasks)
    problems += _check_metrics(path, spec)
    if problems:
        raise SuiteError(problems)
    return Suite(spec=spec, path=path, tasks=tasks, corpus=corpus)


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _problems_of_valid_tasks(path: Path) -> list[Problem]:
    """When suite.yaml has schema errors, still check the data of every task that parses,
    so one `bench validate` lists every problem at once."""
    import yaml
    from pydantic import ValidationError

    from .metrics import METRICS

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
        for m in task.metrics:
            if m not in METRICS:
                problems.append(Problem(_rel(path), yaml_line(path, ("tasks", i, "metrics")), f"tasks[{i}].metrics",
                                        unknown_name("metric", m, list(METRICS))))
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
                problems.append(Problem(shown, line, task.id_field, f"duplicate id {ex.id!r} (first at {seen_ids[ex.id]})"))
                continue
            seen_ids[ex.id] = f"{shown}:{line}" if line else shown
            by_split[ex.split].append(ex)
    yaml_shown = _rel(path)
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
                problems.append(Problem(_rel(path), yaml_line(path, ("tasks", index, "data", "files", split)),
                                        f"task {task.name}: data.files.{split}", f"file not found: {_rel(f)}"))
                continue
            out.append((split, _rel(f), list(read_records(f, problems))))
    elif data.file:
        f = base / data.file
        if not f.is_file():
            problems.append(Problem(_rel(path), yaml_line(path, ("tasks", index, "data", "file")),
                                    f"task {task.name}: data.file", f"file not found: {_rel(f)}"))
        else:
            out.append((None, _rel(f), list(read_records(f, problems))))
    elif data.hub:
        out += _hub_sources(task, problems, _rel(path))
    return out


def read_records(f: Path, problems: list[Problem]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line or row number, record) from JSONL, CSV or parquet; bad lines become problems."""
    shown = _rel(f)
    suffix = f.suffix.lower()
    if suffix in (".jsonl", ".json"):
        try:
            raw = f.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            line = f.read_bytes()[: e.start].count(b"\n") + 1
            problems.append(Problem(shown, line, "", f"not valid UTF-8 (byte {e.start}); save the file as UTF-8"))
            return
        for n, text in enumerate(raw.splitlines(), 1):
            if not text.strip():
                continue
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as e:
                problems.append(Problem(shown, n, "", f"not valid JSON ({e.msg} at column {e.colno})"))
                continue
            if not isinstance(rec, dict):
                problems.append(Problem(shown, n, "", f"expected a JSON object per line, got {type(rec).__name__}"))
                continue
            yield n, rec
    elif suffix in (".csv", ".parquet"):
        import datasets

        try:
            ds = datasets.load_dataset("csv" if suffix == ".csv" else "parquet", data_files=str(f), split="train")
        except Exception as e:  # datasets raises many types; the message is what the user needs
            problems.append(Problem(shown, None, "", f"cannot read {suffix[1:]}: {str(e).splitlines()[0]}"))
            return
        first = 2 if suffix == ".csv" else 1  # CSV: row 1 is the header
        for i, rec in enumerate(ds):
            yield i + first, rec
    else:
        problems.append(Problem(shown, None, "", f"unsupported data format '{suffix}'; expected .jsonl, .csv or .parquet"))


def _hub_sources(task: TaskSpec, problems: list[Problem], shown_yaml: str) -> list:
    import datasets

    hub, out = task.data.hub, []
    for split, hub_split in hub.splits.items():
        try:
            ds = datasets.load_dataset(hub.path, hub.name, revision=hub.revision, split=hub_split)
        except Exception as e:  # offline, unknown dataset, unknown split: all need the same advice
            problems.append(Problem(shown_yaml, None, f"task {task.name}: data.hub",
                                    f"cannot load hub dataset {hub.path!r} split {hub_split!r}: {str(e).splitlines()[0]}"))
            continue
        out.append((split, f"hub:{hub.path}/{hub_split}", [(i + 1, r) for i, r in enumerate(ds)]))
    return out


def _example(task: TaskSpec, rec: dict[str, Any], split_hint: str | None, where: tuple[str, int],
             problems: list[Problem]) -> Example | None:
    shown, line = where
    bad = len(problems)

    def need(key: str) -> Any:
        if key not in rec or rec[key] is None:
            problems.append(Problem(shown, line, key, f"missing; expected the field '{key}' (record keys: {', '.join(sorted(rec)) or 'none'})"))
            return None
        return rec[key]

    rid, text, target = need(task.id_field), need(task.input_field), need(task.target_field)
    split = split_hint
    if split is None:
        split = need(task.data.split_field)
        if split is not None and split not in SPLITS:
            problems.append(Problem(shown, line, task.data.split_field, f"expected one of {', '.join(SPLITS)}, got {split!r}"))
    if rid is not None and not isinstance(rid, (str, int)):
        problems.append(Problem(shown, line, task.id_field, f"expected a string or integer id, got {type(rid).__name__}"))
    if text is not None and (not isinstance(text, str) or not text.strip()):
        problems.append(Problem(shown, line, task.input_field, "expected non-empty text"))
    targets: tuple[str, ...] = ()
    if target is not None:
        if isinstance(target, str) and target.strip():
            targets = (target,)
        elif isinstance(target, list) and target and all(isinstance(t, str) and t.strip() for t in target):
            targets = tuple(target)
        else:
            problems.append(Problem(shown, line, task.target_field, "expected non-empty text or a non-empty list of texts"))
    if task.labels and targets:
        for t in targets:
            if t not in task.labels:
                problems.append(Problem(shown, line, task.target_field, unknown_name("label", t, task.labels)))
    if len(problems) > bad:
        return None
    meta = {k: v for k, v in rec.items() if k not in (task.id_field, task.input_field, task.target_field, task.data.split_field)}
    return Example(id=str(rid), input=text, targets=targets, split=split, meta=meta)


def _load_corpus(path: Path, spec: SuiteSpec, problems: list[Problem]) -> list[Document]:
    if spec.corpus is None:
        return []
    c, docs, seen = spec.corpus, [], {}
    for rel in c.files:
        f = path.parent / rel
        if not f.is_file():
            problems.append(Problem(_rel(path), yaml_line(path, ("corpus", "files")), "corpus.files", f"file not found: {_rel(f)}"))
            continue
        for line, rec in read_records(f, problems):
            shown = _rel(f)
            did, text = rec.get(c.id_field), rec.get(c.text_field)
            if did is None:
                problems.append(Problem(shown, line, c.id_field, "missing document id"))
                continue
            if not isinstance(text, str) or not text.strip():
                problems.append(Problem(shown, line, c.text_field, f"document {did!r} has no text"))
                continue
            if str(did) in seen:
                problems.append(Problem(shown, line, c.id_field, f"duplicate document id {did!r} (first at {seen[str(did)]})"))
                continue
            seen[str(did)] = f"{shown}:{line}"
            meta = {k: v for k, v in rec.items() if k not in (c.id_field, c.title_field, c.text_field)}
            docs.append(Document(id=str(did), title=str(rec.get(c.title_field) or ""), text=text, meta=meta))
    if c.folder is not None:
        docs += _folder_documents(path, c.folder, seen, problems)
    if not docs and not problems:
        problems.append(Problem(_rel(path), None, "corpus", "the corpus is empty; expected at least one document"))
    return docs


CORPUS_SUFFIXES = (".txt", ".md")


def _folder_documents(path: Path, folder: str, seen: dict[str, str], problems: list[Problem]) -> list[Document]:
    """One Document per .txt/.md file under `folder` (sorted, so ids and order are stable)."""
    root = path.parent / folder
    line = yaml_line(path, ("corpus", "folder"))
    if not root.is_dir():
        problems.append(Problem(_rel(path), line, "corpus.folder", f"folder not found: {_rel(root)}"))
        return []
    docs = []
    files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix.lower() in CORPUS_SUFFIXES)
    if not files:
        problems.append(Problem(_rel(path), line, "corpus.folder", f"no .txt or .md files in {_rel(root)}"))
    for f in files:
        did = f.relative_to(root).as_posix()
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            problems.append(Problem(_rel(f), None, "", f"not valid UTF-8 (byte {e.start}); save the file as UTF-8"))
            continue
        if not text.strip():
            problems.append(Problem(_rel(f), None, "", f"document {did!r} has no text"))
            continue
        if did in seen:
            problems.append(Problem(_rel(f), None, "", f"duplicate document id {did!r} (first at {seen[did]})"))
            continue
        seen[did] = _rel(f)
        heading = next((l.lstrip("#").strip() for l in text.splitlines() if l.startswith("#")), None)
        title = heading if f.suffix.lower() == ".md" and heading else f.stem.replace("_", " ")
        docs.append(Document(id=did, title=title, text=text.strip(), meta={"path": _rel(f)}))
    return docs


def _check_arms(path: Path, spec: SuiteSpec, tasks: dict[str, Task]) -> list[Problem]:
    out = []
    for i, arm in enumerate(spec.arms):
        for name in arm.tasks or []:
            if name not in tasks:
                out.append(Problem(_rel(path), yaml_line(path, ("arms", i, "tasks")), f"arms[{i}].tasks", unknown_name("task", name, list(tasks))))
        shots = getattr(arm, "shots", 0)
        for t in tasks.values():
            if arm.tasks and t.name not in arm.tasks:
                continue
            n_train = t.full_sizes.get("train", 0)
            if shots > n_train:
                out.append(Problem(_rel(path), yaml_line(path, ("arms", i, "shots")), f"arms[{i}].shots",
                                   f"{shots} shots but task {t.name} has only {n_train} train examples"))
    return out


def _check_metrics(path: Path, spec: SuiteSpec) -> list[Problem]:
    from .metrics import METRICS

    out = []
    for i, t in enumerate(spec.tasks):
        for m in t.metrics:
            if m.startswith("evaluate:"):
                continue  # loaded (and checked) when scoring: it may need a network
            if m not in METRICS:
                out.append(Problem(_rel(path), yaml_line(path, ("tasks", i, "metrics")), f"tasks[{i}].metrics", unknown_name("metric", m, list(METRICS))))
            elif t.kind not in METRICS[m].kinds:
                out.append(Problem(_rel(path), yaml_line(path, ("tasks", i, "metrics")), f"tasks[{i}].metrics",
                                   f"metric '{m}' does not apply to {t.kind} tasks (it is for {', '.join(METRICS[m].kinds)})"))
    return out
