"""The learner notebooks: committed with outputs stripped, using only the public API, and executed (STYLE.md rule 7).

Execution runs each notebook in a fresh python3 kernel from `notebooks/`, with CUCM_SIM_FAST=1 (the notebooks
shorten their runs) and the Agg backend.  The notebooks hold `assert` statements that check what their text
claims, so a notebook that runs is also a notebook that is still right.
"""

from __future__ import annotations

import ast
import pathlib

import nbformat
import pytest

import cucm_sim

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = ("01_code_yellow_walkthrough.ipynb", "02_capacity_what_if.ipynb", "03_sccp_and_restarts.ipynb",
             "04_perfmon_replay.ipynb")
CELL_TIMEOUT_S = 300
"""Per cell; a fast-mode notebook takes well under a minute in all."""


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK_DIR / name, as_version=nbformat.NO_CONVERT)


def _code(notebook: nbformat.NotebookNode) -> list[str]:
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_stripped(name: str) -> None:
    notebook = _read(name)
    nbformat.validate(notebook)
    assert notebook.nbformat == 4
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    assert "widgets" not in notebook.metadata, "widget state must not be committed"
    assert _code(notebook), "a notebook without code"
    for index, cell in enumerate(notebook.cells):
        assert "widgets" not in cell.metadata, f"cell {index} keeps widget state"
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} has outputs: strip them before committing"
            assert cell.execution_count is None, f"cell {index} has an execution count"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_uses_only_the_public_api(name: str) -> None:
    public = set(cucm_sim.__all__)
    sources = _code(_read(name))
    assert any("CUCM_SIM_FAST" in source for source in sources), "the notebook must honour fast mode"
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                assert all(not alias.name.startswith("cucm_sim.") for alias in node.names), ast.unparse(node)
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cucm_sim":
                assert node.module == "cucm_sim", f"{ast.unparse(node)}: import from the package, not a module"
                assert {alias.name for alias in node.names} <= public, ast.unparse(node)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "cucm_sim":
                assert node.attr in public, f"cucm_sim.{node.attr} is not in cucm_sim.__all__"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    # The kernel inherits this environment.
    monkeypatch.setenv("CUCM_SIM_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # no platformdirs migration warning from jupyter_core
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))  # connection files stay out of the home directory
    notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    client = NotebookClient(
        notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    try:
        client.execute()
    except CellExecutionError as error:
        pytest.fail(f"{name}: a cell raised\n{error}", pytrace=False)
