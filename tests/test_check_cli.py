"""`cucm-sim check`, its JUnit XML, and the pytest plugin, on small scenarios with known outcomes.

The scenario here throttles for certain (a deep CPU slowdown) and is short, so a check takes about a
second.  Bounds are chosen to pass or fail by a wide margin; the shipped library is checked in
test_scenario_library.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cucm_sim.cli import main
from cucm_sim.scenario.loader import load_scenario
from cucm_sim.scenario.schema import Scenario
from cucm_sim.studies.check import check_scenarios

SCENARIO = """\
name: {name}
seed: 11
duration_s: 60
throttling: {{system_throttle_sample_size_s: 5}}
load:
  background: [{{signals_per_s: 300}}]
  calls_per_s: 4
  signals_per_call: 10
disturbances:
  - {{kind: cpu_slowdown, start_s: 5, end_s: 25, capacity_factor: 0.05}}
"""
# Entry needs 5 one-second samples after the slowdown starts at 5 s, so the first entry is in (5, 15].
PASSING = """\
expect:
  code_yellow_entries: {min: 1}
  first_code_yellow_entry_s: {min: 5, max: 15}
  code_red_entries: {equals: 0}
  calls_rejected_fraction: {min: 0.01, max: 0.9}
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _write(folder: Path, name: str, expect: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(SCENARIO.format(name=name) + expect, encoding="utf-8")
    return path


def _check(*args: object) -> Result:
    result = CliRunner().invoke(main, ["check", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def test_all_bounds_hold_exit_0(tmp_path: Path) -> None:
    path = _write(tmp_path, "good", PASSING)
    result = _check(path)
    assert result.exit_code == 0, result.output
    assert "4 of 4 expectations passed" in result.output
    for metric in ("code_yellow_entries", "first_code_yellow_entry_s", "code_red_entries", "calls_rejected_fraction"):
        assert re.search(rf"{metric}\s+\S.*\s+pass", result.output), metric
    assert "seed 11" in result.output


def test_a_broken_bound_exits_1_and_says_which_and_by_how_much(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad", PASSING + "  time_in_state_s.CodeYellow: {max: 1}\n")
    result = _check(path)
    assert result.exit_code == 1, result.output
    line = next(line for line in result.output.splitlines() if "time_in_state_s.CodeYellow" in line)
    measured = int(re.search(r"<= 1\s+(\d+)", line).group(1))  # type: ignore[union-attr]
    assert measured > 1
    assert f"FAIL: {measured - 1} above max (+{(measured - 1) * 100} %)" in line
    assert "4 of 5 expectations passed; 1 failed" in result.output


def test_set_changes_the_scenario_under_check(tmp_path: Path) -> None:
    path = _write(tmp_path, "good", PASSING)
    # Throttling disabled: no Code Yellow, so the bounds that need one fail.
    result = _check(path, "--set", "throttling.system_throttle_sample_size_s=0")
    assert result.exit_code == 1
    assert "code_yellow_entries" in result.output and "FAIL: did not happen" in result.output
    assert _check(path, "--set", "expect.code_yellow_entries.min=1000").exit_code == 1


def test_replications_report_mean_ci_and_the_rule(tmp_path: Path) -> None:
    path = _write(tmp_path, "good", PASSING)
    result = _check(path, "--replications", "3")
    assert result.exit_code == 0, result.output
    assert "3 replications each, mean ± 95 % CI [min .. max]" in result.output
    assert "a bound passes only if every replication meets it" in result.output
    assert "seed 11 + 2 derived" in result.output
    assert re.search(r"calls_rejected_fraction\s+0.01 \.\. 0.9\s+\S+ ± \S+ \[\S+ \.\. \S+\]\s+pass", result.output)


def test_junit_xml_parses_and_counts(tmp_path: Path) -> None:
    good = _write(tmp_path / "lib", "good", PASSING)
    bad = _write(tmp_path / "lib", "bad", "expect:\n  code_red_entries: {equals: 0}\n  calls_attempted: {max: 3}\n")
    report = tmp_path / "report.xml"
    result = _check(tmp_path / "lib", "--junit", report)
    assert result.exit_code == 1
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    assert set(suites) == {str(good), str(bad)}
    assert (suites[str(good)].get("tests"), suites[str(good)].get("failures")) == ("4", "0")
    assert (suites[str(bad)].get("tests"), suites[str(bad)].get("failures")) == ("2", "1")
    (failure,) = root.iter("failure")
    assert failure.get("message", "").startswith("calls_attempted <= 3: measured ")
    assert "above max" in failure.get("message", "") and failure.text and failure.text.startswith("seed 11: ")
    names = [case.get("name") for case in root.iter("testcase")]
    assert "calls_attempted <= 3" in names and len(names) == 6
    assert not list(tmp_path.glob(".report.xml.*")), "no staging file left behind"


def test_directories_expand_and_scenarios_without_expectations_are_listed(tmp_path: Path) -> None:
    _write(tmp_path, "good", PASSING)
    _write(tmp_path, "plain", "")
    (tmp_path / "notes.txt").write_text("not a scenario", encoding="utf-8")
    result = _check(tmp_path)
    assert result.exit_code == 0, result.output
    assert "1 scenario, one run each" in result.output
    assert f"skipped (no expect: block): {tmp_path / 'plain.yaml'}" in result.output


@pytest.mark.parametrize(("setup", "message"), [
    (lambda d: d / "missing.yaml", "missing.yaml: no such file or directory"),
    (lambda d: _write(d, "plain", ""), "no scenario with an expect: block to check"),  # with good.yaml: ok
    (lambda d: _write(d, "typo", "expect:\n  code_red_entrys: {max: 0}\n"),
     "expect.code_red_entrys: unknown metric 'code_red_entrys' (did you mean 'code_red_entries'?)"),
])
def test_user_errors_exit_2_before_running(tmp_path: Path, setup: object, message: str) -> None:
    bad = setup(tmp_path)  # type: ignore[operator]
    good = [] if "expect: block" in message else [_write(tmp_path / "ok", "good", PASSING)]
    result = _check(*good, bad)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert "expectations passed" not in result.output, "nothing runs when any input is bad"


def test_junit_into_a_missing_folder_is_a_user_error(tmp_path: Path) -> None:
    result = _check(_write(tmp_path, "good", PASSING), "--junit", tmp_path / "nope" / "r.xml")
    assert result.exit_code == 2 and "does not exist" in result.output


# ------------------------------------------------------------------ the pytest plugin
def _pytest_outside(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run pytest in a folder that is not this project, as a team would in its own repository."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_plugin_collects_one_item_per_expectation_from_outside(tmp_path: Path) -> None:
    lib = tmp_path / "team-repo" / "scenarios"
    _write(lib, "good", PASSING)
    _write(lib, "plain", "")
    run = _pytest_outside(tmp_path / "team-repo", "--cucm-scenarios", "scenarios", "--collect-only", "-q")
    assert run.returncode == 0, run.stdout + run.stderr
    items = [line for line in run.stdout.splitlines() if "::" in line]
    metrics = ("code_yellow_entries", "first_code_yellow_entry_s", "code_red_entries", "calls_rejected_fraction")
    assert items == [f"scenarios/good.yaml::{metric}" for metric in metrics]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_plugin_passes_and_fails_with_a_readable_message(tmp_path: Path, workers: str) -> None:
    lib = tmp_path / "team-repo" / "scenarios"
    _write(lib, "good", PASSING + "  calls_attempted: {max: 3}\n")
    _write(lib, "other", PASSING)
    (lib / "broken.yaml").write_text("name: broken\nduration_s: -5\n", encoding="utf-8")
    run = _pytest_outside(tmp_path / "team-repo", "--cucm-scenarios", "scenarios", "--cucm-replications", "2",
                          "--cucm-workers", workers)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "2 failed, 8 passed" in run.stdout
    assert "scenario 'good' (" in run.stdout and "expected calls_attempted <= 3" in run.stdout
    assert re.search(r"FAIL: \d+ above max \(\+\d+ %\), 2 of 2 replications", run.stdout)
    assert "a bound passes only if every replication meets it" in run.stdout
    assert "broken.yaml:2: duration_s: -5 is not allowed" in run.stdout
    assert "Traceback" not in run.stdout


def test_plugin_is_inert_without_the_option(tmp_path: Path) -> None:
    _write(tmp_path, "good", PASSING)
    run = _pytest_outside(tmp_path, "--collect-only", "-q")
    assert run.returncode == 5, run.stdout  # nothing collected: YAML files are left alone
    run = _pytest_outside(tmp_path, "--cucm-scenarios", "nowhere")
    assert run.returncode == 4 and "nowhere: no such file or directory" in run.stderr


def test_results_do_not_depend_on_the_number_of_workers(tmp_path: Path) -> None:
    _write(tmp_path, "good", PASSING)
    _write(tmp_path, "other", PASSING.replace("{min: 1}", "{min: 2}"))
    one, two = (_check(tmp_path, "--replications", "2", "--workers", workers) for workers in ("1", "2"))
    assert one.exit_code == two.exit_code
    assert one.output == two.output and "± " in one.output


def test_a_run_that_raises_stops_the_check_with_its_own_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_simulate(scenario: Scenario, progress: object = None) -> None:
        raise ValueError("the model broke")

    monkeypatch.setattr("cucm_sim.studies.check.simulate", broken_simulate)
    scenario = load_scenario(_write(tmp_path, "good", PASSING))
    with pytest.raises(ValueError, match="the model broke"):
        check_scenarios([("good.yaml", scenario)], replications=2, workers=1)
