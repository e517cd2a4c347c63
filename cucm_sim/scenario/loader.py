"""Reading scenarios: safe, bounded YAML, `--set dotted.key=value` overrides, and messages a person can act on.

`load_scenario(path)` returns a validated `Scenario` or raises `ScenarioError` whose lines each name the
file and line (`FILE:LINE:`), the field path, the value and what is allowed (taken from the schema's own
constraints, so the message can never disagree with the check); a problem in a value a `--set` wrote is
named by that `--set KEY=VALUE` instead.  YAML is parsed with a safe loader: tags that would construct
Python objects are refused, a key given twice in one mapping is an error rather than a silent overwrite,
and YAML 1.2 floats such as `1e9` are numbers (PyYAML's YAML 1.1 reads them as strings).  Base-60 numbers
(`1:30`) and octal ones with a leading zero (`0600`), YAML 1.1 surprises, are refused.

Whatever the input, reading it is bounded: at most `MAX_SCENARIO_BYTES` are read, nesting deeper than
`MAX_YAML_DEPTH` and documents that expand (aliases counted each time they are used) past `MAX_YAML_NODES`
values are refused while they are parsed, and so are integers of more than `MAX_INT_DIGITS` digits.  Every
refusal is a `ScenarioError` naming the file (and line) and the limit.
"""

from __future__ import annotations

import copy
import datetime
import functools
import itertools
import re
import reprlib
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

import annotated_types
import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from yaml.composer import Composer, ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from cucm_sim.errors import ScenarioError, printable
from cucm_sim.scenario.replay import check_recording, recording_warnings
from cucm_sim.scenario.schema import Bound, Scenario
from cucm_sim.scenario.trace import anchor_trace_file

MAX_SCENARIO_BYTES: Final = 2_000_000
"""The most bytes a scenario file (or YAML text) may hold.  The largest legal scenario (a 10,000-point
calls_profile, every metric bounded, a 10,000-character description, a full sweep grid) is well under half
of it, and PyYAML parses a file at the limit in about two seconds."""
MAX_YAML_DEPTH: Final = 32
"""The deepest nesting of lists and mappings a scenario may have; a legal one needs at most five levels."""
MAX_YAML_NODES: Final = 250_000
"""The most values (scalars, lists and mappings) a document may expand to, an alias counting everything it
repeats each time it is used; the largest legal scenario has about 50,000."""
MAX_INT_DIGITS: Final = 100
"""The most digits an integer may have; the largest legal one (a seed, 2**64 - 1) has 20."""
MAX_UNKNOWN_KEYS_SHOWN: Final = 5
"""Unknown keys of one mapping named one per line; the rest are counted in one more line."""

_UNIT_SUFFIXES = (("_per_s", "per s"), ("_ms", "ms"), ("_min", "min"), ("_pct", "%"), ("_s", "s"))
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlong = 40
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 4
_SHORT.maxlevel = 3

# ------------------------------------------------------------------ YAML: resolving, composing, constructing
_YAML12_FLOAT: Final = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+|[-+]\.[0-9][0-9_]*)$"
)
"""The YAML 1.2 floats PyYAML's YAML 1.1 rules read as strings: an exponent without a dot or without a sign
(1e9, 1.5e9, 2E-3, .5e3) and a signed number with no digit before its dot (-.5)."""
_OCTAL: Final = re.compile(r"^[-+]?0[0-7_]+$")


class _ScenarioResolver(Resolver):
    """PyYAML's resolver with YAML 1.2's floats added."""


_ScenarioResolver.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+0123456789."))


class ScenarioDumper(yaml.SafeDumper):
    """SafeDumper that quotes every string the scenario loader would read as something else: '1e9' too, which
    PyYAML's own dumper writes plain (YAML 1.1 reads it as a string, this loader as a number)."""


ScenarioDumper.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+0123456789."))

YAML_LINE_BREAKS = ("\x85", "\u2028", "\u2029")
"""Characters YAML reads as line breaks besides \\n and \\r: a plain or single-quoted scalar folds them into
spaces; a double-quoted one writes them as escapes, and reads back as itself."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = '"' if any(character in text for character in YAML_LINE_BREAKS) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


ScenarioDumper.add_representer(str, _represent_str)


class _LimitedComposer(Composer):
    """PyYAML's composer, refusing nesting deeper than MAX_YAML_DEPTH, a document that expands past
    MAX_YAML_NODES values, and an alias used inside the node it names, as the nodes are composed (so a
    bomb is refused after reading the few bytes that define it, and nothing recurses past the limit)."""

    # from the parser (PyYAML's or libyaml's) and the resolver it is mixed with
    peek_event: Callable[[], Any]
    get_event: Callable[[], Any]
    descend_resolver: Callable[[Node | None, Any], None]
    ascend_resolver: Callable[[], None]

    def __init__(self) -> None:
        Composer.__init__(self)
        self._depth = 0
        self._expanded_nodes = 0
        self._anchored_sizes: dict[int, int] = {}  # id(anchored node) -> the values it expands to

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        # Composer.compose_node with the limits checked (one peek per event: this runs once per value)
        event = self.peek_event()
        mark = event.start_mark
        anchor = event.anchor
        if isinstance(event, yaml.AliasEvent):
            self.get_event()
            if anchor not in self.anchors:
                raise ComposerError(None, None, f"found undefined alias {_show(anchor)}", mark)
            node: Node = self.anchors[anchor]
            size = self._anchored_sizes.get(id(node))
            if size is None:  # its anchor's node is still being composed: the alias is inside it
                raise ComposerError(None, None, f"a recursive alias: *{_short_text(anchor or '')} is used inside "
                                    "the node it names", mark)
            self._count(size, mark)
            return node
        if anchor is not None and anchor in self.anchors:
            first = self.anchors[anchor].start_mark
            raise ComposerError(None, None, f"the anchor &{_short_text(anchor)} is defined twice (first at line "
                                f"{first.line + 1}, column {first.column + 1})", mark)
        if self._depth >= MAX_YAML_DEPTH:
            raise ComposerError(None, None, f"nested more than {MAX_YAML_DEPTH} levels deep (MAX_YAML_DEPTH); a "
                                "scenario needs at most five", mark)
        self._depth += 1
        before = self._expanded_nodes
        self._count(1, mark)
        self.descend_resolver(parent, index)
        if isinstance(event, yaml.ScalarEvent):
            node = self.compose_scalar_node(anchor)
        elif isinstance(event, yaml.SequenceStartEvent):
            node = self.compose_sequence_node(anchor)
        else:
            node = self.compose_mapping_node(anchor)
        self.ascend_resolver()
        self._depth -= 1
        if anchor is not None:
            self._anchored_sizes[id(node)] = self._expanded_nodes - before
        return node

    def _count(self, nodes: int, mark: Any) -> None:
        self._expanded_nodes += nodes
        if self._expanded_nodes > MAX_YAML_NODES:
            raise ComposerError(None, None, f"the document expands to more than {MAX_YAML_NODES:,} values "
                                "(MAX_YAML_NODES; an alias counts all it repeats, each time it is used); a "
                                "scenario needs far fewer", mark)


class _ScenarioConstructor(SafeConstructor):
    """SafeConstructor that refuses duplicate and unhashable keys, integers of more than MAX_INT_DIGITS
    digits, and YAML 1.1's base-60 and leading-zero octal numbers."""

    def __init__(self) -> None:
        SafeConstructor.__init__(self)
        self._own_pairs: dict[int, int] = {}  # id(mapping node) -> pairs it writes itself (merged ones aside)

    def construct_yaml_int(self, node: ScalarNode) -> int:
        text = str(node.value)
        digits = text.replace("_", "").lstrip("+-")
        if len(digits) > MAX_INT_DIGITS:
            raise ConstructorError(None, None, f"an integer of {len(digits):,} digits; at most {MAX_INT_DIGITS} "
                                   "(MAX_INT_DIGITS)", node.start_mark)
        if ":" in digits:
            raise ConstructorError(None, None, f"{_short_text(text)} is a base-60 number in YAML 1.1 "
                                   f"({super().construct_yaml_int(node)}); write the number itself, or quote it "
                                   "if it is text", node.start_mark)
        if _OCTAL.match(text):
            raise ConstructorError(None, None, f"{text} is an octal number in YAML 1.1 "
                                   f"({super().construct_yaml_int(node)}) because of its leading zero; write it "
                                   "without the zero, or quote it if it is text", node.start_mark)
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node: ScalarNode) -> float:
        if ":" in str(node.value):
            raise ConstructorError(None, None, f"{_short_text(str(node.value))} is a base-60 number in YAML 1.1; "
                                   "write the number itself, or quote it if it is text", node.start_mark)
        return super().construct_yaml_float(node)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        # PyYAML's own constructors raise ValueError, AttributeError and the like for a bad value under an
        # explicit tag (!!int abc, !!timestamp abc, !!float 1:x): a problem in the file, located at its node.
        try:
            return super().construct_object(node, deep=deep)
        except (yaml.YAMLError, MemoryError, RecursionError):
            raise
        except Exception as error:
            tag = str(node.tag).removeprefix("tag:yaml.org,2002:")
            what = _show(node.value) if isinstance(node, ScalarNode) else f"a {getattr(node, 'id', 'value')}"
            why = f" ({_short_text(str(error))})" if isinstance(error, ValueError) and str(error) else ""
            raise ConstructorError(None, None, f"{what} is not a valid !!{_short_text(tag)}{why}",
                                   node.start_mark) from None

    def flatten_mapping(self, node: MappingNode) -> None:
        # Remember how many pairs the mapping itself writes: flattening puts the merged ones (<<: *anchor) first.
        self._own_pairs.setdefault(id(node), sum(1 for key, _ in node.value if key.tag != _MERGE_TAG))
        super().flatten_mapping(node)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """SafeConstructor.construct_mapping, refusing an unhashable key and a key the mapping itself gives
        twice (a merged key, from <<: *anchor, may be given again: that is what merging is for)."""
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, f"expected a mapping, but found a {node.id}", node.start_mark)
        self.flatten_mapping(node)
        first_own = len(node.value) - self._own_pairs[id(node)]
        mapping: dict[Any, Any] = {}
        own_keys: set[Any] = set()
        for position, (key_node, value_node) in enumerate(node.value):
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise ConstructorError("while reading a mapping", node.start_mark, "a key must be a plain value "
                                       f"(a name or number), not a {_yaml_type(key)}", key_node.start_mark) from None
            if position >= first_own:
                if key in own_keys:
                    raise ConstructorError("while reading a mapping", node.start_mark,
                                           f"found the key {_show(key)} twice", key_node.start_mark)
                own_keys.add(key)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_ScenarioConstructor.yaml_constructors = {  # what add_constructor does, without its loader-typed signature
    **SafeConstructor.yaml_constructors,
    "tag:yaml.org,2002:int": _ScenarioConstructor.construct_yaml_int,
    "tag:yaml.org,2002:float": _ScenarioConstructor.construct_yaml_float,
}


class _PythonLoader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, _LimitedComposer,
                    _ScenarioConstructor, _ScenarioResolver):
    """The loader in pure Python (PyYAML's scanner and parser)."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _LimitedComposer.__init__(self)
        _ScenarioConstructor.__init__(self)
        _ScenarioResolver.__init__(self)


_Loader: type[_PythonLoader] | type[_FastLoader]
try:
    from yaml._yaml import CParser
except ImportError:  # PyYAML built without libyaml
    _Loader = _PythonLoader
else:

    class _FastLoader(_LimitedComposer, CParser, _ScenarioConstructor, _ScenarioResolver):
        """The loader on libyaml's scanner and parser (four times faster); composing stays in Python, where the
        limits are checked."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _LimitedComposer.__init__(self)
            _ScenarioConstructor.__init__(self)
            _ScenarioResolver.__init__(self)

    _Loader = _FastLoader


SCENARIO_SUFFIXES = (".yaml", ".yml")


class KeyLines:
    """Where the keys of a parsed YAML document are: the line of a path's key (or of its nearest enclosing key
    that is in the document).  Looks up the composed nodes; each mapping is indexed once, when first asked."""

    def __init__(self, root: Node) -> None:
        self._root = root
        self._indexes: dict[int, dict[str, tuple[Node, Node]]] = {}

    def find(self, path: Sequence[str | int]) -> tuple[int, bool]:
        """(the 1-based line of `path`'s last key found, whether the whole path was found)."""
        node = self._root
        line = node.start_mark.line + 1
        for part in path:
            if isinstance(node, MappingNode):
                pair = self._index(node).get(str(part))
                if pair is None:
                    return line, False
                key_node, node = pair
                line = key_node.start_mark.line + 1
            elif isinstance(node, SequenceNode) and _is_index(part) and int(part) < len(node.value):
                node = node.value[int(part)]
                line = node.start_mark.line + 1
            else:
                return line, False
        return line, True

    def _index(self, node: MappingNode) -> dict[str, tuple[Node, Node]]:
        index = self._indexes.get(id(node))
        if index is None:
            index = {str(key.value): (key, value) for key, value in node.value if isinstance(key, ScalarNode)}
            self._indexes[id(node)] = index
        return index


class ScenarioData(dict[str, Any]):
    """A parsed scenario mapping that also knows the line of each key in its file (`lines`), for messages.
    A copy (or a pickle) of it is a plain dict."""

    def __init__(self, data: dict[str, Any], lines: KeyLines) -> None:
        super().__init__(data)
        self.lines = lines

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


def read_yaml(path: Path) -> Any:
    """Parse a YAML file safely (at most MAX_SCENARIO_BYTES of it); raise ScenarioError naming the file (and
    line) on any problem.  A mapping comes back as a `ScenarioData`, which knows its keys' lines.  A relative
    `load.trace.file` is made absolute against the file's folder here, so every copy, override and grid point
    of the data names the same recording."""
    data = parse_yaml_text(read_scenario_text(path), str(path))
    anchor_trace_file(data, path.parent)
    return data


def read_scenario_text(path: Path) -> str:
    """The text of a scenario file: at most MAX_SCENARIO_BYTES bytes of UTF-8 (more is refused unread, so
    /dev/zero or a 50 MB file costs nothing); ScenarioError naming the file on any problem."""
    source = str(path)
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_SCENARIO_BYTES + 1)
    except FileNotFoundError:
        raise ScenarioError([f"{source}: no such file"]) from None
    except IsADirectoryError:
        raise ScenarioError([f"{source}: is a directory, expected a scenario YAML file"]) from None
    except OSError as error:
        raise ScenarioError([f"{source}: cannot read ({error.strerror or error})"]) from None
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ScenarioError([f"{source}: larger than {MAX_SCENARIO_BYTES:,} bytes, the most a scenario file may "
                             "hold (MAX_SCENARIO_BYTES); the largest legal scenario needs well under half of it"])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ScenarioError([f"{source}: not UTF-8 text ({error.reason} at byte {error.start})"]) from None


def parse_yaml_text(text: str, source: str) -> Any:
    """Parse YAML text safely and within the limits (see the module doc); `source` names it in messages.
    A mapping comes back as a `ScenarioData`, which knows its keys' lines."""
    data, root = _parse(text, source)
    if isinstance(data, dict) and root is not None:
        return ScenarioData(data, KeyLines(root))
    return data


def _parse(text: str, source: str, *, value_of: str | None = None) -> tuple[Any, Node | None]:
    """(the data, its root node); `value_of` names the --set whose value `text` is (marks are then columns)."""
    if len(text) > MAX_SCENARIO_BYTES:  # characters: at least as many bytes
        _fail(f"{source}: larger than {MAX_SCENARIO_BYTES:,} bytes, the most YAML text may hold "
                      "(MAX_SCENARIO_BYTES)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        _fail(f"{source}: not valid text (character {error.start + 1} is not Unicode text: a byte that "
                      "is not UTF-8?)")
    loader = None
    try:
        loader = _Loader(text)  # PyYAML's own reader checks the characters here
        root = loader.get_single_node()
        return (loader.construct_document(root) if root is not None else None), root
    except ConstructorError as error:
        problem = error.problem or ""
        if "could not determine a constructor" in problem:
            tag = problem.split("for the tag", 1)[-1].strip().strip("'")
            problem = (f"the YAML tag {_short_text(tag)} is not allowed: scenarios are plain data (mappings, "
                       "lists, numbers, strings)")
        _fail(_at(source, error.problem_mark, value_of, problem))
    except ComposerError as error:
        _fail(_at(source, error.problem_mark, value_of, error.problem or "invalid YAML"))
    except yaml.MarkedYAMLError as error:
        _fail(_at(source, error.problem_mark, value_of, f"invalid YAML: {error.problem}"))
    except yaml.reader.ReaderError as error:
        character = printable(chr(error.character)) if isinstance(error.character, int) else "?"
        mark = _position_mark(text, error.position, in_bytes=_Loader is not _PythonLoader)
        _fail(_at(source, mark, value_of, f"invalid YAML: the character {character} is not allowed in "
                          "YAML text"))
    except yaml.YAMLError as error:
        _fail(f"{source}: invalid YAML: {_short_text(str(error))}")
    finally:
        if loader is not None:
            loader.dispose()


def _fail(problem: str) -> NoReturn:
    raise ScenarioError([problem])


def _at(source: str, mark: Any, value_of: str | None, problem: str) -> str:
    """`problem` located: 'FILE:LINE:COLUMN: problem', or for a --set value '--set K=V: problem (at column C of
    the value)'."""
    if mark is None:
        return f"{source}: {problem}"
    if value_of is not None:
        line = f"line {mark.line + 1}, " if mark.line else ""
        return f"{source}: {problem} (at {line}column {mark.column + 1} of the value)"
    return f"{source}:{mark.line + 1}:{mark.column + 1}: {problem}"


def _position_mark(text: str, position: int, *, in_bytes: bool) -> types.SimpleNamespace:
    """The line and column (0-based, as a yaml Mark has them) of `position` in `text`, a character index or, from
    libyaml, a byte offset in its UTF-8."""
    if in_bytes:
        position = len(text.encode("utf-8")[:position].decode("utf-8", "ignore"))
    position = min(max(position, 0), len(text))
    line = text.count("\n", 0, position)
    return types.SimpleNamespace(line=line, column=position - (text.rfind("\n", 0, position) + 1))


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


def parse_scenario(data: Any, source: str, overrides: Sequence[str] = (), *, blame_overrides: bool = True,
                   read_recording: bool = True) -> Scenario:
    """Validate already-parsed scenario data; `source` names it in messages (with the line of each key when
    `data` is a `ScenarioData`).  A problem in a value an override wrote is named by its ``--set KEY=VALUE``,
    unless `blame_overrides` is False (the caller names the overrides itself, as a sweep's grid point does).
    A scenario with a `load.trace` has its recording read (once per process, `replay.recorded_load`) and its
    duration checked against it, unless `read_recording` is False: a bad recording is a RecordingError naming
    the file and the line, before anything runs."""
    if data is None:
        raise ScenarioError([f"{source}: the file is empty; a scenario needs at least name and duration_s"])
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}: a scenario is a mapping of keys to values, not a {_yaml_type(data)}"])
    lines = data.lines if isinstance(data, ScenarioData) else None
    written: list[tuple[tuple[str, ...], str]] = []
    plain = copy.deepcopy(data) if overrides else dict(data)
    for override in overrides:
        written.append((_apply_override(plain, override), override))
    try:
        scenario = Scenario.model_validate(plain)
    except ValidationError as error:
        blamed = written if blame_overrides else []
        raise ScenarioError(describe_validation_error(error, source, lines=lines, overrides=blamed,
                                                      original=data)) from None
    if read_recording:
        check_recording(scenario, source)
    return scenario


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A copy of `data` with each ``dotted.key=value`` applied; values are parsed as YAML (as a file's are)."""
    data = copy.deepcopy(data)  # a ScenarioData copies to a plain dict
    for override in overrides:
        _apply_override(data, override)
    return data


def _apply_override(data: dict[str, Any], override: str) -> tuple[str, ...]:
    """Apply one ``dotted.key=value`` to `data` in place; the path it wrote."""
    key, sep, raw_value = override.partition("=")
    label = f"--set {_override_label(override)}"
    if not sep or not key.strip():
        raise ScenarioError([f"--set {_SHORT.repr(override)}: expected dotted.key=value, e.g. "
                             "throttling.code_yellow_entry_latency_ms=50"])
    key = key.strip()
    if any(not part.strip() for part in key.split(".")):
        raise ScenarioError([f"{label}: the key {_SHORT.repr(key)} has an empty part (a leading, trailing or "
                             "doubled dot); expected dotted.key=value, e.g. "
                             "throttling.code_yellow_entry_latency_ms=50"])
    value, _ = _parse(raw_value, label, value_of=key)
    parts = _override_path(key)
    target: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = _SHORT.repr(".".join(parts[: depth + 1]))
        if isinstance(target, list):
            if not _is_index(part) or int(part) >= len(target):
                raise ScenarioError([f"{label}: {where} is not an index of a list of {len(target)} "
                                     f"({_list_indexes(len(target))})"])
            if last:
                target[int(part)] = value
            else:
                target = target[int(part)]
        elif isinstance(target, dict):
            if last:
                target[part] = value
                continue
            if target.get(part) is None:
                # An absent (or null) section is made, so a key inside it can be set (cluster.nodes.1.node.
                # capacity_factor where the node overrides nothing yet); a list entry cannot be made.
                if _is_index(parts[depth + 1]):
                    raise ScenarioError([f"{label}: {where} is not in the scenario, so it has no entry "
                                         f"{_SHORT.repr(parts[depth + 1])}; write the list in the file first"])
                target[part] = {}
            target = target[part]
        else:
            raise ScenarioError([f"{label}: {_SHORT.repr('.'.join(parts[:depth]))} is a value, not a section"])
    return tuple(parts)


def _list_indexes(length: int) -> str:
    """The indexes of a list of `length` entries, in words."""
    if length == 0:
        return "the list is empty"
    return "its only index is 0" if length == 1 else f"its indexes are 0 to {length - 1}"


def _is_index(part: str | int) -> bool:
    """Whether `part` is a list index as a path writes it: ASCII digits, not too many to be one."""
    if isinstance(part, int):
        return part >= 0
    return part.isascii() and part.isdigit() and len(part) <= 18


def _override_label(override: str, limit: int = 120) -> str:
    """An override as a message shows it: control characters and undecodable bytes escaped, cut to `limit`."""
    text = printable(override[: limit + 1].encode("utf-8", "backslashreplace").decode("utf-8"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _override_path(key: str) -> list[str]:
    """The parts of an override key; metric names contain dots: expect.<metric>[.min|.max|.equals]."""
    parts = key.split(".")
    if parts[0] != "expect" or len(parts) <= 2:
        return parts
    if parts[-1] in Bound.model_fields:
        return ["expect", ".".join(parts[1:-1]), parts[-1]]
    return ["expect", ".".join(parts[1:])]


# ------------------------------------------------------------------ messages
def describe_validation_error(error: ValidationError, source: str, *, lines: KeyLines | None = None,
                              overrides: Sequence[tuple[tuple[str, ...], str]] = (),
                              original: Any = None) -> list[str]:
    """One line per problem: where (``FILE:LINE`` of the key, or of its nearest enclosing key in the file, when
    `lines` is given; ``--set KEY=VALUE`` for a value one of `overrides` (path written, override) wrote, judged
    against the `original` data), the field path, the value, and what is allowed.  The unknown keys of one
    mapping past the first MAX_UNKNOWN_KEYS_SHOWN are counted in one line."""
    items = error.errors(include_url=False)
    unknown_per_mapping: dict[tuple[Any, ...], int] = {}
    for item in items:
        if item["type"] == "extra_forbidden":
            parent = tuple(item["loc"])[:-1]
            unknown_per_mapping[parent] = unknown_per_mapping.get(parent, 0) + 1

    def where(loc: tuple[Any, ...]) -> str:
        keys = _key_path(loc)
        override = _blamed(keys, overrides, original)
        if override is not None:
            return f"--set {_override_label(override)}"
        return f"{source}:{lines.find(keys)[0]}" if lines is not None else source

    problems: list[str] = []
    unknown_named: dict[tuple[Any, ...], int] = {}
    for item in items:
        loc = tuple(item["loc"])
        if item["type"] == "extra_forbidden":
            parent = loc[:-1]
            named = unknown_named[parent] = unknown_named.get(parent, 0) + 1
            if named <= MAX_UNKNOWN_KEYS_SHOWN:
                parent_fields = _fields_at(parent)
                allowed = f"; allowed keys here: {', '.join(parent_fields)}" if parent_fields else ""
                problems.append(f"{where(loc)}: {_dotted(loc)}: unknown key{allowed}")
            elif named == MAX_UNKNOWN_KEYS_SHOWN + 1:
                more = unknown_per_mapping[parent] - MAX_UNKNOWN_KEYS_SHOWN
                problems.append(f"{where(parent)}: {_dotted(parent) or '(top level)'}: ... and {more:,} more "
                                f"unknown key{'s' if more > 1 else ''} (the first {MAX_UNKNOWN_KEYS_SHOWN} are "
                                "named above)")
            continue
        problem_loc, text = _describe(item)
        problems.append(f"{where(problem_loc)}: {text}")
    return problems


_DICT_KEY = "[key]"
"""The last part of pydantic's location of a problem with a mapping's key rather than its value."""

_SELF_EXPLAINED = {
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "literal_error", "bool_parsing",
}
_TYPE_EXPECTED: Final = {
    "int_type": "a whole number", "int_parsing": "a whole number", "int_from_float": "a whole number",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
    "bool_parsing": "true or false", "string_type": "a string", "list_type": "a list", "tuple_type": "a list",
    "set_type": "a list", "iterable_type": "a list",
}
"""Pydantic's type errors, and what the field wanted, as YAML says it."""
_MAPPING_EXPECTED: Final = {
    "model_type", "model_attributes_type", "dataclass_type", "dataclass_exact_type", "dict_type", "is_instance_of",
    "is_subclass_of", "mapping_type",
}
"""Pydantic's errors for a value that should have been a mapping (several name a Python class: never shown)."""


def _describe(item: Any) -> tuple[tuple[Any, ...], str]:
    """(the location the problem is about, 'path: what is wrong; allowed: ...') for one pydantic error."""
    loc = tuple(item["loc"])
    kind = item["type"]
    ctx = item.get("ctx") or {}
    message = str(item["msg"]).removeprefix("Value error, ")
    if kind == "problem_at":  # a model's validator found it in one of the model's keys (schema.problem_at)
        loc += tuple(int(part) if _is_index(part) else part for part in str(ctx["at"]).split("."))
        return loc, f"{_dotted(loc)}: {ctx['problem']}"
    path = _dotted(loc)
    at = f"{path}: " if path else ""
    if kind == "missing":
        info = _field_at(loc)
        what = f" ({info.description})" if info is not None and info.description else ""
        return loc, f"{path}: required field is missing{what}"
    raw = item.get("input")
    if loc and loc[-1] == _DICT_KEY:  # a bad key of a mapping (an unknown metric): the message names it
        if kind in _TYPE_EXPECTED:
            return loc[:-1], f"{_dotted(loc[:-1])}: the key {_show(raw)} is {_a_type(raw)}, not {_TYPE_EXPECTED[kind]}"
        return loc[:-1], f"{_dotted(loc[:-1])}: {message}"
    value = _show(raw)
    allowed = _allowed(loc)
    if kind == "union_tag_invalid":
        discriminator = str(ctx["discriminator"]).strip("'")
        return (*loc, discriminator), (f"{path}.{discriminator}: {_show(ctx['tag'])} is not allowed; allowed: "
                                        f"one of {ctx['expected_tags']}")
    if kind == "union_tag_not_found":
        discriminator = str(ctx["discriminator"]).strip("'")
        tags = ", ".join(repr(tag) for tag in _tags_at(loc))
        return loc, f"{path}.{discriminator}: required field is missing; allowed: one of {tags}"
    if kind in _MAPPING_EXPECTED:
        keys = _fields_at(loc)
        example = "{" + ", ".join(f"{key}: ..." for key in keys[:2]) + ("" if len(keys) <= 2 else ", ...") + "}"
        return loc, f"{at}{value} is {_a_type(raw)}; expected a mapping of keys, e.g. {example}"
    if kind == "whole_number":
        return loc, f"{at}{value} is not allowed (not a whole number); allowed: {allowed or 'a whole number'}"
    if kind in _TYPE_EXPECTED and not (kind == "bool_parsing" and allowed):
        expected = _TYPE_EXPECTED[kind]
        rest = f"; allowed: {allowed}" if allowed and allowed != expected else ""
        if raw is None:
            return loc, f"{at}no value (null); expected {expected}{rest}"
        return loc, f"{at}{value} is {_a_type(raw)}, not {expected}{_hint(raw, expected)}{rest}"
    if isinstance(raw, dict) and kind == "value_error":
        return loc, f"{path or '(top level)'}: {message}"
    if allowed and kind in _SELF_EXPLAINED:
        return loc, f"{at}{value} is not allowed; allowed: {allowed}"
    if allowed:
        return loc, f"{at}{value} is not allowed ({message}); allowed: {allowed}"
    return loc, f"{at}{message} (got {value})"


def _hint(value: Any, expected: str) -> str:
    """What to write instead, for a value YAML read as another type than the one the user meant."""
    if isinstance(value, str) and expected in ("a number", "a whole number") and _NUMBER.match(value.strip()):
        return " (write it without quotes to make it a number)"
    if isinstance(value, bool) and expected == "a string":
        return " (YAML reads yes, no, on, off, true and false as booleans: quote it to make it text)"
    if value is not None and not isinstance(value, list | dict | str) and expected == "a string":
        return " (quote it to make it text)"
    return ""


_NUMBER: Final = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?$")


def _key_path(loc: tuple[Any, ...]) -> tuple[str, ...]:
    """The keys of `loc` as the file has them: discriminator tags and the mapping-key marker dropped."""
    return tuple(str(part) for index, part in enumerate(loc) if part != _DICT_KEY and not _is_tag_at(loc, index))


def _blamed(keys: tuple[str, ...], overrides: Sequence[tuple[tuple[str, ...], str]], original: Any) -> str | None:
    """The override a problem at `keys` is about: the last one that wrote `keys` or a section holding it, or
    one that wrote below `keys` when `keys` itself is not in the `original` data (the override created it)."""
    for path, override in reversed(overrides):
        if keys[: len(path)] == path:
            return override
    if not _exists(original, keys):
        for path, override in reversed(overrides):
            if path[: len(keys)] == keys:
                return override
    return None


def _exists(data: Any, keys: tuple[str, ...]) -> bool:
    for key in keys:
        if isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and _is_index(key) and int(key) < len(data):
            data = data[int(key)]
        else:
            return False
    return True


def _dotted(loc: tuple[Any, ...]) -> str:
    # Drop the discriminator tags pydantic inserts into the location of a tagged union's member
    # (never the last part: that is the key the problem is about).
    # A key from the file may be long: each is cut to a message's size (never the whole of a 1 MB key).
    return ".".join(_short_text(str(part)) for index, part in enumerate(loc) if not _is_tag_at(loc, index))


def _is_tag_at(loc: tuple[Any, ...], index: int) -> bool:
    """Whether loc[index] is the tag pydantic inserted after a tagged union (not a key from the file)."""
    return loc[index] in _TAGS and loc[index] in _tags_at(loc[:index])


def _tags_at(loc: tuple[Any, ...]) -> list[str]:
    candidates, _ = _walk(loc)
    members = [t for c in candidates for t in _unwrap(c) if isinstance(t, type) and issubclass(t, BaseModel)]
    return [tag for tag in map(_tag_of, members) if tag is not None]


def _show(value: Any) -> str:
    """A value as a message shows it, YAML-like (true, false, null) and bounded: reprlib never builds more than
    a few levels and items of a container, or the head and tail of a long string or number."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and len(str(value)) <= 40:  # MAX_INT_DIGITS bounds it
        return str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return _SHORT.repr(value)


def _short_text(text: str) -> str:
    """`text` cut to a message's size (its head and tail)."""
    return _SHORT.repr(text)[1:-1] if len(text) > 80 else text


def _yaml_type(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "value")


def _a_type(value: Any) -> str:
    """What YAML made of `value`, with its article: 'a string', 'a boolean', 'null'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple | set):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, datetime.date):
        return "a date"
    return "a value"


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


@functools.lru_cache(maxsize=1024)  # the same few paths are asked for again and again; keys from files vary
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
    concrete = [t for c in candidates for t in _unwrap(c)]
    for candidate in concrete:
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
    """The unit of the field at `loc`; a distribution's mean has the unit of the field holding it."""
    names = [part for part in loc if isinstance(part, str)]
    unit = unit_of(names[-1]) if names else ""
    if not unit and names and names[-1] == "mean":
        unit = next((unit_of(name) for name in reversed(names[:-1]) if unit_of(name)), "")
    return f" {unit}" if unit else ""


def unit_of(field_name: str) -> str:
    """The unit a field's name carries in its suffix ('ms' for `..._ms`), '' when it has none."""
    return next((unit for suffix, unit in _UNIT_SUFFIXES if field_name.endswith(suffix)), "")


# ------------------------------------------------------------------ warnings
def scenario_warnings(scenario: Scenario, source: str) -> list[str]:
    """What in `scenario` can have no effect because it starts at or after the run's end (duration_s), one line
    each naming `source`, the path and the times: a disturbance or a group of chatty devices that starts then,
    and a calls_profile point that follows a point at or after the end (the rate before the end is interpolated
    from the points up to the first one at or after it; the points after that one are never reached).  Then
    what its recording (`load.trace`) holds that was not filled in: gaps, daylight-saving changes, counter
    restarts, blanks bridged (`replay.recording_warnings`)."""
    end_s = scenario.duration_s
    after_end = f"at or after the run's end (duration_s {end_s})"
    warnings = []
    for index, (previous, point) in enumerate(itertools.pairwise(scenario.load.calls_profile or []), start=1):
        if previous[0] >= end_s:
            warnings.append(f"{source}: load.calls_profile.{index}: the point at t_s {_number(point[0])} follows one "
                            f"at t_s {_number(previous[0])}, {after_end}: it has no effect")
    starts_s = [(f"devices.chatty.{index}", group.start_s) for index, group in enumerate(scenario.devices.chatty)]
    starts_s += [(f"disturbances.{index}", window.start_s) for index, window in enumerate(scenario.disturbances)]
    warnings.extend(f"{source}: {path}: starts at start_s {_number(start_s)}, {after_end}: it has no effect"
                    for path, start_s in starts_s if start_s >= end_s)
    return warnings + recording_warnings(scenario, source)
