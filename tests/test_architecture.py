"""House rules that keep the package layered (STYLE.md rule 1 and 9).

Imports flow one way: pure logic and the schema at the bottom, the SimPy model above them, the runner
above that, output, plotting and the CLI on top.  SimPy is imported only by the model, matplotlib only by
plotting; every module opens with a docstring.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "cucm_sim"

LAYERS: dict[str, int] = {
    "alarms": 0, "errors": 0, "processes": 0, "timeline": 0, "stats": 0, "distributions": 0, "seeds": 0,
    "throttling": 1, "sccp": 1, "files": 1, "metrics": 1, "sdl_batch": 1,
    "schema": 2,
    "profiles": 3, "loader": 3, "workload": 3, "narrative": 3, "second_end": 3,
    "batch_sources": 4, "grid": 4,
    "model": 5, "batched_model": 5,
    "runner": 6,
    "check": 7, "backends": 7,
    "plotting": 7, "sweep_plots": 7,
    "output": 8, "junit": 8, "sweep": 8, "capacity": 8,
    "cli": 9, "__init__": 9, "pytest_plugin": 9,
}
ONLY_IN = {
    "simpy": {"model", "batched_model"},
    "matplotlib": {"plotting", "sweep_plots"},
    "dask": {"backends"},
    "distributed": {"backends"},
}


def _modules() -> list[pathlib.Path]:
    return sorted(PACKAGE.glob("*.py"))


def _imports(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_every_module_has_a_layer() -> None:
    assert {path.stem for path in _modules()} == set(LAYERS)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.stem)
def test_imports_flow_downwards(path: pathlib.Path) -> None:
    own_layer = LAYERS[path.stem]
    for name in _imports(path):
        top = name.split(".")[0]
        if top == "cucm_sim" and name != "cucm_sim":
            target = name.split(".")[1]
            assert LAYERS[target] < own_layer, f"{path.stem} (layer {own_layer}) imports {target} ({LAYERS[target]})"
        elif name == "cucm_sim":
            assert path.stem == "cli", f"{path.stem} imports the package root"
        if top in ONLY_IN:
            assert path.stem in ONLY_IN[top], f"{top} may only be imported by {ONLY_IN[top]}, not {path.stem}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.stem)
def test_module_docstring(path: pathlib.Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring and len(docstring) > 40, f"{path.name} needs a docstring saying what it owns"
