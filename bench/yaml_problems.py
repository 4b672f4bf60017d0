"""Turns pydantic errors into Problems located by YAML line.

A `Problem` names the file, the 1-based YAML line, the dotted field path and what was expected.
`problem_from_error` builds one from a pydantic error of a model validated from YAML (a `Schema`),
and `yaml_line` finds the line of a key path for problems found after parsing (files, labels).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from .errors import unknown_name


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a suite, located so a person can go straight to it."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclass(frozen=True)
class Schema:
    """The model a YAML document is validated against, and its tagged union: a mapping whose
    `tag` key holds a name of `tagged` is validated as that model (e.g. `arm: rag` -> RagArm)."""

    root: type[BaseModel]
    tag: str
    tagged: Mapping[str, type[BaseModel]]


def problem_from_error(shown: str, root: yaml.Node | None, raw: Any, err: dict[str, Any], schema: Schema) -> Problem:
    """A pydantic error (one of `ValidationError.errors()`) of `raw`, composed as `root`, as a Problem."""
    loc = _yaml_path(raw, err["loc"], schema)
    field = _dotted(loc)
    line = _line_of(root, loc)
    kind, msg = err["type"], err["msg"]
    if loc and loc[-1] == "[key]":  # a mapping's key failed (a profile name): name the mapping and the key
        field = f"{_dotted(loc[:-2])}: key {loc[-2]!r}"
    if kind == "extra_forbidden":
        parent_model = _model_at(loc[:-1], raw, schema)
        known = list(parent_model.model_fields) if parent_model else []
        return Problem(shown, line, field, unknown_name("key", str(loc[-1]), known))
    if kind == "missing":
        return Problem(shown, line, field, "required key is missing")
    if kind == "literal_error":
        got = err.get("input")
        return Problem(shown, line, field, f"expected {err['ctx']['expected']}, got {got!r}")
    if kind == "union_tag_invalid":
        ctx = err["ctx"]
        return Problem(shown, line, field, f"unknown {schema.tag} {ctx['tag']!r}; expected {ctx['expected_tags']}")
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    got = err.get("input")
    suffix = f", got {got!r}" if kind.endswith(("_type", "_parsing")) and not isinstance(got, (dict, list)) else ""
    return Problem(shown, line, field, f"{msg[0].lower()}{msg[1:]}{suffix}")


def yaml_line(path: Path, loc: tuple[Any, ...]) -> int | None:
    """Line of a key path in a YAML file, for problems found after parsing (files, labels)."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return _line_of(root, loc)


def duplicate_keys(shown: str, root: yaml.Node | None) -> list[Problem]:
    """Keys given twice in one mapping. A YAML loader keeps the last silently (a second `arms:`
    replaces the first), so each repeat is a Problem naming both lines."""
    out: list[Problem] = []
    _find_duplicates(shown, root, (), out)
    return out


def _find_duplicates(shown: str, node: yaml.Node | None, loc: tuple[Any, ...], out: list[Problem]) -> None:
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _find_duplicates(shown, item, (*loc, i), out)
    elif isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` merges a mapping in; it is not a key of its own
            line = key.start_mark.line + 1
            if key.value in first:
                out.append(Problem(shown, line, _dotted((*loc, key.value)),
                                   f"key given twice (lines {first[key.value]} and {line}); "
                                   "YAML would silently keep only the last: remove one"))
            else:
                first[key.value] = line
            _find_duplicates(shown, value, (*loc, key.value), out)


def _yaml_path(raw: Any, loc: tuple[Any, ...], schema: Schema) -> tuple[Any, ...]:
    """Drop pydantic's union-tag steps (e.g. 'prompt' in arms.0.prompt.shots) from a location."""
    out: list[Any] = []
    node = raw
    for step in loc:
        if isinstance(node, dict) and step in node:
            out.append(step)
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            out.append(step)
            node = node[step]
        elif isinstance(node, dict) and isinstance(step, str) and step not in node and step in schema.tagged:
            continue
        else:
            out.append(step)
            node = None
    return tuple(out)


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for step in loc:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest YAML node that `loc` reaches."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for step in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == step), None)
            if match is None:
                return line
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _model_at(loc: tuple[Any, ...], raw: Any, schema: Schema) -> type[BaseModel] | None:
    """The pydantic model class that owns the mapping at `loc`, to suggest its known keys."""
    model: type[BaseModel] | None = schema.root
    node = raw
    keyed: type[BaseModel] | None = None  # the value model of a dict of models (profiles)
    for step in loc:
        if keyed is not None:  # this step is a key of that dict
            model, keyed = keyed, None
            node = node.get(step) if isinstance(node, dict) else None
            continue
        if isinstance(step, int):
            node = node[step] if isinstance(node, list) and step < len(node) else None
            if isinstance(node, dict) and node.get(schema.tag) in schema.tagged:
                model = schema.tagged[node[schema.tag]]
            continue
        field = model.model_fields.get(step) if model else None
        node = node.get(step) if isinstance(node, dict) else None
        if field is None:
            return None
        keyed = _dict_value_model(field.annotation)
        model = None if keyed else _models_in(field.annotation, node, schema)
    return model


def _dict_value_model(annotation: Any) -> type[BaseModel] | None:
    """Profile for `dict[str, Profile]`; None for any other annotation."""
    if typing.get_origin(annotation) is dict:
        value = typing.get_args(annotation)[1]
        return value if isinstance(value, type) and issubclass(value, BaseModel) else None
    return None


def _models_in(annotation: Any, node: Any, schema: Schema) -> type[BaseModel] | None:
    """Unwrap list/Optional/Annotated/Union to the model class; a tagged union member is picked by its tag."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(node, dict) and node.get(schema.tag) in schema.tagged:
        return schema.tagged[node[schema.tag]]
    candidates = [m for a in typing.get_args(annotation) if (m := _models_in(a, node, schema)) is not None]
    return candidates[0] if candidates else None
