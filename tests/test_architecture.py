"""House rules that keep the package layered (STYLE.md rules 1 and 9), checked on the folders.

Each top-level part of `cucm_sim` (a sub-package, or one of the few modules left at the top) has a layer;
a module imports only from its own part or from parts of lower layers.  The two engines are independent
implementations of the same rules, so `engine.signal` and `engine.batched` never import each other.
SimPy is imported only by the hosts, the engines and the world, matplotlib only by the report, Dask only by the
backends.  The shared vocabulary (queue names and numbers, phone states, random streams, the confidence
level, the throttling states) is defined in one module each.  Every module opens with a docstring.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "cucm_sim"

LAYERS: dict[str, int] = {
    "errors": 0,
    "rules": 1,  # throttling, sccp, alarms, priorities: pure, explicit now
    "measures": 2,  # stats, metrics, timeline columns
    "perfmon": 2,  # Perfmon counter names and the PDH-CSV layout
    "scenario": 3,  # schema, hosts, loader, distributions, profiles, seeds, workload
    "sdl": 4,  # the router thread's block algebra
    "host": 5,  # processors and DPC queues, NIC rings, heartbeat links
    "engine": 6,  # the node engine interface, shared vocabulary, second_end, signal/, batched/
    "world": 7,  # one clock, N node engines and the hosts, the phones
    "run": 8,  # simulate(), summarize()
    "report": 9,  # files, narrative, plots, formats
    "studies": 10,  # backends, check, junit, grid, sweep, capacity
    "cli": 11, "pytest_plugin": 11,
    "__init__": 12,
}
ONLY_IN = {
    "simpy": ("host", "engine", "world"),
    "matplotlib": ("report",),
    "dask": ("studies.backends",),
    "distributed": ("studies.backends",),
}
INDEPENDENT = ("engine.signal", "engine.batched")


def _modules() -> list[pathlib.Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _dotted(path: pathlib.Path) -> str:
    """`engine.batched.node` for cucm_sim/engine/batched/node.py; `engine` for cucm_sim/engine/__init__.py."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _part(dotted: str) -> str:
    return dotted.split(".")[0]


def _imports(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import; write `from cucm_sim.... import`"
            names.add(node.module)
    return names


def _within(dotted: str, prefix: str) -> bool:
    return dotted == prefix or dotted.startswith(prefix + ".")


def test_every_part_has_a_layer() -> None:
    parts = {_part(_dotted(path)) for path in _modules()} - {"__main__"}
    assert parts == set(LAYERS) - {"world"} or parts == set(LAYERS)


def _violations(me: str, imports: set[str]) -> list[str]:
    """What is wrong with module `me` (dotted, below cucm_sim) importing `imports`."""
    own_layer = LAYERS[_part(me)]
    found = []
    for name in sorted(imports):
        top = name.split(".")[0]
        if name.startswith("cucm_sim."):
            target = name.removeprefix("cucm_sim.")
            if _part(target) != _part(me) and LAYERS[_part(target)] >= own_layer:
                found.append(f"{me} (layer {own_layer}) imports {target} (layer {LAYERS[_part(target)]})")
            for engine, other in (INDEPENDENT, INDEPENDENT[::-1]):
                if _within(me, engine) and _within(target, other):
                    found.append(f"{me} imports {target}: the engines stay independent")
        elif name == "cucm_sim" and _part(me) not in ("__init__", "cli"):
            found.append(f"{me} imports the package root")
        if top in ONLY_IN and not any(_within(me, allowed) for allowed in ONLY_IN[top]):
            found.append(f"{top} may only be imported by {ONLY_IN[top]}, not {me}")
    return found


@pytest.mark.parametrize("path", _modules(), ids=_dotted)
def test_imports_flow_downwards(path: pathlib.Path) -> None:
    assert _violations(_dotted(path), _imports(path)) == []


def test_violations_are_seen() -> None:
    """The rule above can fail: an upward import, a stray SimPy and one engine reaching into the other."""
    assert len(_violations("rules.stray", {"simpy", "cucm_sim.run.simulation", "cucm_sim.errors"})) == 2
    assert len(_violations("engine.batched.node", {"cucm_sim.engine.signal.node", "cucm_sim.sdl.block"})) == 1
    assert _violations("report.plotting", {"matplotlib.figure", "cucm_sim.run.simulation"}) == []


@pytest.mark.parametrize("path", _modules(), ids=_dotted)
def test_module_docstring(path: pathlib.Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring and len(docstring) > 40, f"{path.relative_to(PACKAGE)} needs a docstring saying what it owns"


SHARED_WORDS = frozenset({
    "Priority", "PRIORITIES", "QUEUES", "HIGH", "NORMAL", "LOW", "LOWEST", "PRIORITY_INDEX",
    "UNREGISTERED", "REGISTERING", "REGISTERED", "NODE_STREAMS", "BATCHED_STREAMS", "CONFIDENCE", "STATES",
})
"""Names of the vocabulary every layer shares: each is given a value at the top of one module only."""


def _definitions(tree: ast.Module) -> set[str]:
    """The names a module gives a value at its top level (plain and annotated assignments, tuple targets)."""
    names: set[str] = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        for target in targets:
            names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _defined_twice(trees: dict[str, ast.Module]) -> dict[str, list[str]]:
    """Each shared word defined in more than one of `trees` (module -> parsed source), with where."""
    where: dict[str, list[str]] = {}
    for module, tree in trees.items():
        for name in _definitions(tree) & SHARED_WORDS:
            where.setdefault(name, []).append(module)
    return {name: sorted(modules) for name, modules in where.items() if len(modules) > 1}


def test_the_shared_vocabulary_is_defined_once() -> None:
    trees = {_dotted(path): ast.parse(path.read_text(encoding="utf-8")) for path in _modules()}
    assert _defined_twice(trees) == {}


def test_a_second_definition_is_seen() -> None:
    trees = {"rules.priorities": ast.parse("HIGH, NORMAL, LOW, LOWEST = range(4)"),
             "sdl.block": ast.parse("QUEUES: int = 4\nLOW = 2\nOTHER = 1"), "engine.x": ast.parse("QUEUES = 4")}
    assert _defined_twice(trees) == {"LOW": ["rules.priorities", "sdl.block"], "QUEUES": ["engine.x", "sdl.block"]}
