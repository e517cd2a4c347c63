"""Reading scenarios: safe YAML, `--set dotted.key=value` overrides, and messages a person can act on.

`load_scenario(path)` returns a validated `Scenario` or raises `ScenarioError` whose lines each name the
file, the field path, the value and what is allowed (taken from the schema's own constraints, so the
message can never disagree with the check).  YAML is parsed with a safe loader: tags that would construct
Python objects are refused, and a key given twice in one mapping is an error rather than a silent overwrite.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import annotated_types
import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from cucm_sim.errors import ScenarioError
from cucm_sim.schema import Bound, Scenario

_UNIT_SUFFIXES = (("_per_s", "per s"), ("_ms", "ms"), ("_min", "min"), ("_pct", "%"), ("_s", "s"))


class _StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys."""


def _construct_mapping_no_duplicates(loader: _StrictSafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)  # resolve YAML merge keys (<<: *anchor) first, as SafeLoader does
    seen: set[Any] = set()
    for key_node, _value_node in node.value:
        key = loader.construct_object(key_node)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark, "a key must be a plain value (a name or number), "
                f"not a {_yaml_type(key)}", key_node.start_mark,
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark, f"found the key {key!r} twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictSafeLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping_no_duplicates
)


SCENARIO_SUFFIXES = (".yaml", ".yml")


def read_yaml(path: Path) -> Any:
    """Parse a YAML file safely; raise ScenarioError naming the file (and line) on any problem."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([f"{source}: no such file"]) from None
    except IsADirectoryError:
        raise ScenarioError([f"{source}: is a directory, expected a scenario YAML file"]) from None
    except UnicodeDecodeError as error:
        raise ScenarioError([f"{source}: not UTF-8 text ({error.reason} at byte {error.start})"]) from None
    except OSError as error:
        raise ScenarioError([f"{source}: cannot read ({error.strerror})"]) from None
    return parse_yaml_text(text, source)


def parse_yaml_text(text: str, source: str) -> Any:
    """Parse YAML text safely (see `read_yaml`); `source` names it in messages."""
    try:
        return yaml.load(text, Loader=_StrictSafeLoader)  # a SafeLoader subclass: no object construction
    except yaml.constructor.ConstructorError as error:
        where = _mark(source, error.problem_mark)
        if error.problem and "could not determine a constructor" in error.problem:
            tag = error.problem.split("for the tag", 1)[-1].strip().strip("'")
            return _raise(f"{where}: the YAML tag {tag} is not allowed: scenarios are plain data "
                          "(mappings, lists, numbers, strings)")
        return _raise(f"{where}: {error.problem}")
    except yaml.MarkedYAMLError as error:
        return _raise(f"{_mark(source, error.problem_mark)}: invalid YAML: {error.problem}")
    except yaml.YAMLError as error:
        return _raise(f"{source}: invalid YAML: {error}")


def _raise(problem: str) -> Any:
    raise ScenarioError([problem])


def _mark(source: str, mark: yaml.Mark | None) -> str:
    return f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read, override (``dotted.key=value``) and validate a scenario file."""
    path = Path(path)
    return parse_scenario(read_yaml(path), str(path), overrides)


def scenario_files(paths: Iterable[str | Path]) -> list[Path]:
    """The scenario files named by `paths`: files as given, directories' *.yaml / *.yml (not recursive),
    sorted and without repeats.  UserError for a missing path or a directory with no scenario in it."""
    files: list[Path] = []
    problems: list[str] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in SCENARIO_SUFFIXES and p.is_file())
            if not found:
                problems.append(f"{path}: no scenario files (*.yaml, *.yml) in this directory")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(f"{path}: no such file or directory")
    if problems:
        raise ScenarioError(problems)
    return list(dict.fromkeys(files))


def parse_scenario(data: Any, source: str, overrides: Sequence[str] = ()) -> Scenario:
    """Validate already-parsed scenario data; `source` names it in messages."""
    if data is None:
        raise ScenarioError([f"{source}: the file is empty; a scenario needs at least name and duration_s"])
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}: a scenario is a mapping of keys to values, not a {_yaml_type(data)}"])
    data = apply_overrides(data, overrides)
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(describe_validation_error(error, source)) from None


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A copy of `data` with each ``dotted.key=value`` applied; values are parsed as YAML scalars/lists."""
    import copy

    data = copy.deepcopy(data)
    for override in overrides:
        key, sep, raw_value = override.partition("=")
        if not sep or not key.strip():
            raise ScenarioError([f"--set {override!r}: expected dotted.key=value, e.g. "
                                 "throttling.code_yellow_entry_latency_ms=50"])
        value = parse_yaml_text(raw_value, f"--set {key}")
        parts = _override_path(key.strip())
        target: Any = data
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(target, list):
                if not part.isdigit() or int(part) >= len(target):
                    raise ScenarioError([f"--set {key}: {where!r} is not an index of a list of {len(target)}"])
                if last:
                    target[int(part)] = value
                else:
                    target = target[int(part)]
            elif isinstance(target, dict):
                if last:
                    target[part] = value
                else:
                    target = target.setdefault(part, {})
            else:
                raise ScenarioError([f"--set {key}: {'.'.join(parts[:depth])!r} is a value, not a section"])
    return data


def _override_path(key: str) -> list[str]:
    """The parts of an override key; metric names contain dots: expect.<metric>[.min|.max|.equals]."""
    parts = key.split(".")
    if parts[0] != "expect" or len(parts) <= 2:
        return parts
    if parts[-1] in Bound.model_fields:
        return ["expect", ".".join(parts[1:-1]), parts[-1]]
    return ["expect", ".".join(parts[1:])]


# ------------------------------------------------------------------ messages
def describe_validation_error(error: ValidationError, source: str) -> list[str]:
    """One line per problem: file, field path, value, and what is allowed."""
    problems = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        path = _dotted(loc)
        kind = item["type"]
        if kind == "extra_forbidden":
            parent_fields = _fields_at(loc[:-1])
            allowed = f"; allowed keys here: {', '.join(parent_fields)}" if parent_fields else ""
            problems.append(f"{source}: {path}: unknown key{allowed}")
            continue
        if kind == "missing":
            info = _field_at(loc)
            what = f" ({info.description})" if info is not None and info.description else ""
            problems.append(f"{source}: {path}: required field is missing{what}")
            continue
        message = item["msg"].removeprefix("Value error, ")
        if loc and loc[-1] == _DICT_KEY:  # a bad key of a mapping (an unknown metric): the message names it
            problems.append(f"{source}: {_dotted(loc[:-1])}: {message}")
            continue
        value = _show(item.get("input"))
        allowed = _allowed(loc)
        at = f"{path}: " if path else ""
        ctx = item.get("ctx", {})
        if kind == "union_tag_invalid":
            problems.append(
                f"{source}: {path}.{ctx['discriminator'].strip(chr(39))}: {ctx['tag']!r} is not allowed; "
                f"allowed: one of {ctx['expected_tags']}"
            )
        elif kind == "union_tag_not_found":
            tags = ", ".join(repr(tag) for tag in _tags_at(loc))
            problems.append(f"{source}: {path}.{ctx['discriminator'].strip(chr(39))}: required field is missing; "
                            f"allowed: one of {tags}")
        elif isinstance(item.get("input"), dict) and kind == "value_error":
            problems.append(f"{source}: {path or '(top level)'}: {message}")
        elif allowed and kind in _SELF_EXPLAINED:
            problems.append(f"{source}: {at}{value} is not allowed; allowed: {allowed}")
        elif allowed:
            problems.append(f"{source}: {at}{value} is not allowed ({message}); allowed: {allowed}")
        else:
            problems.append(f"{source}: {at}{message} (got {value})")
    return problems


_DICT_KEY = "[key]"
"""The last part of pydantic's location of a problem with a mapping's key rather than its value."""

_SELF_EXPLAINED = {
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "literal_error", "bool_parsing",
}


def _dotted(loc: tuple[Any, ...]) -> str:
    # Drop the discriminator tags pydantic inserts into the location of a tagged union's member
    # (never the last part: that is the key the problem is about).
    return ".".join(str(part) for index, part in enumerate(loc) if not _is_tag_at(loc, index))


def _is_tag_at(loc: tuple[Any, ...], index: int) -> bool:
    """Whether loc[index] is the tag pydantic inserted after a tagged union (not a key from the file)."""
    return loc[index] in _TAGS and loc[index] in _tags_at(loc[:index])


def _tags_at(loc: tuple[Any, ...]) -> list[str]:
    candidates, _ = _walk(loc)
    members = [t for c in candidates for t in _unwrap(c) if isinstance(t, type) and issubclass(t, BaseModel)]
    return [tag for tag in map(_tag_of, members) if tag is not None]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _yaml_type(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "value")


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types an annotation may hold (Annotated, Optional and unions flattened)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg) if t is not type(None)]
    return [annotation]


def _tag_of(model: type[BaseModel]) -> str | None:
    for name in ("kind", "distribution"):
        field = model.model_fields.get(name)
        if field is not None and typing.get_origin(field.annotation) is typing.Literal:
            return str(typing.get_args(field.annotation)[0])
    return None


def _collect_tags() -> set[str]:
    tags: set[str] = set()
    pending: list[Any] = [Scenario]
    seen: set[Any] = set()
    while pending:
        annotation = pending.pop()
        for candidate in _unwrap(annotation):
            if candidate in seen:
                continue
            seen.add(candidate)
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                tag = _tag_of(candidate)
                if tag is not None:
                    tags.add(tag)
                pending.extend(field.annotation for field in candidate.model_fields.values())
            else:
                pending.extend(typing.get_args(candidate))
    return tags


_TAGS = _collect_tags()


def _walk(loc: tuple[Any, ...]) -> tuple[list[Any], FieldInfo | None]:
    """The possible types at `loc` in the Scenario schema, and the field that declares it."""
    candidates: list[Any] = [Scenario]
    info: FieldInfo | None = None
    for part in loc:
        next_candidates: list[Any] = []
        next_info: FieldInfo | None = None
        for candidate in (t for c in candidates for t in _unwrap(c)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                if isinstance(part, str) and part in candidate.model_fields:
                    next_info = candidate.model_fields[part]
                    next_candidates.append(next_info.annotation)
                elif isinstance(part, str) and _tag_of(candidate) == part:
                    next_candidates.append(candidate)
            elif typing.get_origin(candidate) is list and isinstance(part, int):
                next_candidates.append(typing.get_args(candidate)[0])
            elif typing.get_origin(candidate) is dict and isinstance(part, str):
                next_candidates.append(typing.get_args(candidate)[1])
            elif typing.get_origin(candidate) is tuple and isinstance(part, int):
                args = typing.get_args(candidate)
                if part < len(args):
                    next_candidates.append(args[part])
                    next_info = _annotated_field_info(args[part])
        if not next_candidates:
            return [], None
        candidates, info = next_candidates, next_info if next_info is not None else info
        if next_info is None:
            info = None
    return candidates, info


def _annotated_field_info(annotation: Any) -> FieldInfo | None:
    """The FieldInfo inside ``Annotated[T, Field(...)]`` (constraints on a tuple element), if any."""
    if typing.get_origin(annotation) is typing.Annotated:
        return next((m for m in typing.get_args(annotation)[1:] if isinstance(m, FieldInfo)), None)
    return None


def _field_at(loc: tuple[Any, ...]) -> FieldInfo | None:
    return _walk(loc)[1]


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    candidates, _ = _walk(loc)
    for candidate in (t for c in candidates for t in _unwrap(c)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return list(candidate.model_fields)
    return []


def _allowed(loc: tuple[Any, ...]) -> str:
    """What the schema allows at `loc`, e.g. '5 to 500 ms', or '' when it cannot say more than the message."""
    candidates, info = _walk(loc)
    if info is not None and isinstance(info.json_schema_extra, dict) and "allowed" in info.json_schema_extra:
        return f"{info.json_schema_extra['allowed']}{_unit(loc)}"
    for candidate in (t for c in candidates for t in _unwrap(c)):
        if typing.get_origin(candidate) is typing.Literal:
            return "one of " + ", ".join(repr(v) for v in typing.get_args(candidate))
        if candidate is bool:
            return "true or false"
    if info is None:
        return ""
    low: Any = None
    high: Any = None
    low_op, high_op = ">=", "<="
    for meta in info.metadata:
        if isinstance(meta, annotated_types.Ge):
            low = meta.ge
        elif isinstance(meta, annotated_types.Gt):
            low, low_op = meta.gt, ">"
        elif isinstance(meta, annotated_types.Le):
            high = meta.le
        elif isinstance(meta, annotated_types.Lt):
            high, high_op = meta.lt, "<"
    kind = "a whole number " if int in candidates else "a number " if float in candidates else ""
    if low is not None and high is not None and low_op == ">=" and high_op == "<=":
        return f"{kind}{_number(low)} to {_number(high)}{_unit(loc)}"
    bounds = [f"{op} {_number(bound)}" for op, bound in ((low_op, low), (high_op, high)) if bound is not None]
    if bounds:
        return f"{kind}{' and '.join(bounds)}{_unit(loc)}"
    return kind.strip()


def _number(value: Any) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _unit(loc: tuple[Any, ...]) -> str:
    name = next((part for part in reversed(loc) if isinstance(part, str)), "")
    unit = unit_of(name)
    return f" {unit}" if unit else ""


def unit_of(field_name: str) -> str:
    """The unit a field's name carries in its suffix ('ms' for `..._ms`), '' when it has none."""
    return next((unit for suffix, unit in _UNIT_SUFFIXES if field_name.endswith(suffix)), "")
