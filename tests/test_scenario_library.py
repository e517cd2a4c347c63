"""The shipped scenario library holds its own `expect:` blocks, through both ways a team would check it.

`cucm-sim check scenarios/` (with JUnit XML) is one full pass over the library (marked slow).  The pytest
plugin, run from a folder outside this project as a voice team would in its own repository, checks a copy
of three of its scenarios (one node, a cluster, hosts): the plugin's work is to turn each bound into a test
item and judge it as `check` does, which a second full pass would not test any better.  Breaking a bound on
purpose must turn the check red and say by how much.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from cucm_sim import load_scenario
from cucm_sim.cli import main

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
FILES = sorted(SCENARIOS.glob("*.yaml"))
EXPECTATIONS = sum(len(load_scenario(path).expect) for path in FILES)
PLUGIN_LIBRARY = ("cpu_starvation.yaml", "cluster_failover_absorbed.yaml", "vru_pim_heartbeat_rss.yaml")
"""The scenarios the plugin test copies into a team's repository: one of each kind."""


@pytest.mark.slow
def test_cucm_sim_check_scenarios_passes_with_junit(tmp_path: Path) -> None:
    report = tmp_path / "check.xml"
    result = CliRunner().invoke(main, ["check", str(SCENARIOS), "--junit", str(report), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert f"{EXPECTATIONS} of {EXPECTATIONS} expectations passed" in result.output
    root = ET.parse(report).getroot()
    assert sum(int(suite.get("tests", "0")) for suite in root.iter("testsuite")) == EXPECTATIONS
    assert not list(root.iter("failure"))
    assert len(list(root.iter("testsuite"))) == len(FILES)


@pytest.mark.slow
def test_pytest_plugin_passes_library_scenarios_from_outside_the_project(tmp_path: Path) -> None:
    library = tmp_path / "team-repo" / "scenarios"
    library.mkdir(parents=True)
    for name in PLUGIN_LIBRARY:
        (library / name).write_bytes((SCENARIOS / name).read_bytes())
    expectations = sum(len(load_scenario(library / name).expect) for name in PLUGIN_LIBRARY)
    env = {key: value for key, value in os.environ.items() if key != "PYTEST_ADDOPTS"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--cucm-scenarios", "scenarios", "-q",
         "--cucm-workers", "2"],
        cwd=library.parent, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert re.search(rf"\b{expectations} passed\b", run.stdout), run.stdout[-2000:]


@pytest.mark.slow
def test_breaking_one_bound_fails_and_says_by_how_much() -> None:
    path = SCENARIOS / "sccp_chatty_device.yaml"
    scenario = load_scenario(path)
    assert scenario.expect.get("skinny_devices_throttled") is not None, "the chatty phone must be expected closed"
    result = CliRunner().invoke(main, ["check", str(path), "--set", "expect.skinny_devices_throttled={max: 1}"])
    assert result.exit_code == 1, result.output
    line = next(line for line in result.output.splitlines() if line.strip().startswith("skinny_devices_throttled"))
    closed = int(re.search(r"<= 1\s+(\d+)", line).group(1))  # type: ignore[union-attr]
    assert f"FAIL: {closed - 1} above max (+{(closed - 1) * 100} %)" in line
    passed = len(scenario.expect) - 1
    assert f"{passed} of {len(scenario.expect)} expectations passed; 1 failed" in result.output
