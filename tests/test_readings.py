"""The readings of Cisco's ambiguous throttling rules: the switches end to end, `cucm-sim sensitivity` and
`cucm-sim check --all-readings`.

The state machine's rules under each reading are table-tested in test_throttling.py; here: the set of
readings, a scenario under a reading (a cluster's overrides included), the verdicts a study draws from
numbers made up to have a known answer, the default reading's results left as they were, and the two
commands on a one-minute scenario whose first Code Yellow entry is known to move under `batch`.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from cucm_sim.cli import main
from cucm_sim.report.output import narrative_for, resolved_yaml
from cucm_sim.report.sensitivity import SensitivityResult, conclusion, judge_bounds
from cucm_sim.rules.throttling import ThrottlingParams
from cucm_sim.run.simulation import simulate
from cucm_sim.scenario.loader import load_scenario, parse_scenario
from cucm_sim.scenario.readings import ALL_READINGS, DEFAULT_READING, SWITCHES, Reading, reading_of, with_reading
from cucm_sim.scenario.schema import Bound

ROOT = Path(__file__).resolve().parent.parent
# A 20-s deep CPU slowdown from 5 s, N = 5: the first five non-zero samples come at 6..10 s.  Under
# consecutive_nonzero and rolling the node enters Code Yellow as soon as the window holds five of them; under
# `batch` the first batch can be judged with a mean under 20 ms and the entry waits for the next one.
SHORT = """\
name: short
seed: 11
duration_s: 60
throttling: {system_throttle_sample_size_s: 5}
load:
  background: [{signals_per_s: 300}]
  calls_per_s: 4
  signals_per_call: 10
disturbances:
  - {kind: cpu_slowdown, start_s: 5, end_s: 25, capacity_factor: 0.05}
expect:
  code_yellow_entries: {min: 1}
  code_red_entries: {equals: 0}
"""


def _write(folder: Path, extra: str = "", text: str = SHORT) -> Path:
    path = folder / "short.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def _cli(*args: object) -> Result:
    result = CliRunner().invoke(main, [*map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


# ------------------------------------------------------------------ the readings
def test_twelve_readings_each_once_the_default_first() -> None:
    assert len(ALL_READINGS) == 12 == len(set(ALL_READINGS))
    assert ALL_READINGS[0] == DEFAULT_READING == reading_of(ThrottlingParams())
    assert DEFAULT_READING.settings == {"sample_rule": "consecutive_nonzero", "exit_rule": "at_or_below",
                                        "delay_resolution": "exact"}
    for key in SWITCHES:  # every value of every switch occurs, and is one the schema accepts
        for reading in ALL_READINGS:
            ThrottlingParams(**{key: reading.settings[key]})
    assert {reading.settings["sample_rule"] for reading in ALL_READINGS} == {"consecutive_nonzero", "rolling", "batch"}


def test_a_reading_changes_the_switches_and_nothing_else() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "cpu_starvation.yaml")
    reading = Reading(("batch", "below", "whole_ms"))
    changed = with_reading(scenario, reading)
    assert reading_of(changed.throttling) == reading
    assert changed.seed == scenario.seed and changed.load == scenario.load
    assert changed.throttling.model_copy(update=DEFAULT_READING.settings) == scenario.throttling
    # the same as setting the keys on the command line
    assert changed == load_scenario(ROOT / "scenarios" / "cpu_starvation.yaml", reading.overrides())


def test_a_cluster_node_that_sets_a_switch_follows_the_reading() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "cluster_failover_cascade.yaml", [
        "cluster.nodes.0.throttling.sample_rule=rolling", "cluster.nodes.1.throttling.code_yellow_entry_latency_ms=30"])
    changed = with_reading(scenario, Reading(("batch", "below", "exact")))
    first, second = (node.throttling for node in changed.node_scenarios())
    assert (first.sample_rule, first.exit_rule) == ("batch", "below")  # its own override follows the reading
    assert (second.sample_rule, second.exit_rule, second.code_yellow_entry_latency_ms) == ("batch", "below", 30)


def test_the_default_reading_writes_what_it_wrote_before_the_switches() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "cpu_starvation.yaml")
    text = resolved_yaml(scenario)
    assert "exit_rule" not in text and "delay_resolution" not in text and "sample_rule: consecutive_nonzero" in text
    other = resolved_yaml(with_reading(scenario, Reading(("batch", "below", "whole_ms"))))
    assert "sample_rule: batch" in other and "exit_rule: below" in other and "delay_resolution: whole_ms" in other


def test_the_narrative_names_each_reading_it_runs_under(tmp_path: Path) -> None:
    scenario = parse_scenario({**_data(), "throttling": {"system_throttle_sample_size_s": 5, "sample_rule": "batch",
                                                         "exit_rule": "below", "delay_resolution": "whole_ms"}}, "x")
    text = narrative_for(simulate(scenario))
    assert "judged once per batch of 5 consecutive non-zero samples" in text
    assert "back to Normal when it is below the exit latency 8.0 ms (20 ms x 40 %) (exit_rule below)" in text
    assert "averages are compared in whole ms, rounded down, with the exit latency as 8 ms" in text
    default = narrative_for(simulate(parse_scenario(_data(), "x")))
    assert "at or below the exit latency" in default and "exit_rule" not in default and "whole ms" not in default


def _data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SHORT)
    return data


# ------------------------------------------------------------------ verdicts from made-up numbers
def _result(holding: Any, expect: dict[str, Bound] | None = None) -> SensitivityResult:
    """A study of one metric 'code_yellow_entries' whose value is 1 under the readings `holding` picks, else 0."""
    expect = expect if expect is not None else {"code_yellow_entries": Bound(min=1)}
    values = tuple(((1.0 if holding(reading) else 0.0, 1.0 if holding(reading) else 0.0),)
                   for reading in ALL_READINGS)
    metrics = ("code_yellow_entries",)
    return SensitivityResult("made-up", "x", 1, ALL_READINGS, (1, 2), metrics, values,
                             judge_bounds(expect, ALL_READINGS, metrics, values), DEFAULT_READING)


@pytest.mark.parametrize(("holding", "verdict", "described", "depends_on"), [
    (lambda r: True, "all", "all 12", ()),
    (lambda r: False, "none", "none of 12", ()),
    (lambda r: r.settings["exit_rule"] == "at_or_below", "some", "6 of 12", ("exit_rule",)),
    (lambda r: r.settings["sample_rule"] != "batch", "some", "8 of 12", ("sample_rule",)),
    (lambda r: r != Reading(("batch", "below", "whole_ms")), "some", "11 of 12", SWITCHES),
    # fails when both exit_rule below and whole_ms: either switch alone can turn it back
    (lambda r: not (r.settings["exit_rule"] == "below" and r.settings["delay_resolution"] == "whole_ms"),
     "some", "9 of 12", ("exit_rule", "delay_resolution")),
])
def test_a_bound_holds_under_all_some_or_none_and_the_switches_it_depends_on(
    holding: Any, verdict: str, described: str, depends_on: tuple[str, ...]
) -> None:
    (bound,) = _result(holding).bounds
    assert (bound.verdict, bound.describe(), bound.depends_on) == (verdict, described, depends_on)


def test_a_reading_breaks_a_bound_when_one_replication_misses_it() -> None:
    values = tuple(((1.0, 0.0 if reading.settings["sample_rule"] == "rolling" else 1.0),) for reading in ALL_READINGS)
    metrics = ("code_yellow_entries",)
    (bound,) = judge_bounds({"code_yellow_entries": Bound(min=1)}, ALL_READINGS, metrics, values)
    assert bound.describe() == "8 of 12" and bound.depends_on == ("sample_rule",)


def test_the_conclusion_names_the_fragile_bounds_and_the_readings_that_break_them() -> None:
    lines = conclusion(_result(lambda r: r.settings["exit_rule"] == "at_or_below"))
    assert lines[0] == "1 of 1 bound depends on the reading:"
    assert "code_yellow_entries >= 1: holds under 6 of 12 readings; depends on exit_rule" in lines[1]
    assert "consecutive_nonzero / below / exact" in lines[1] and "at_or_below" not in lines[1].split("fails")[1]
    assert conclusion(_result(lambda r: True)) == ["No bound depends on the reading (12 readings).",
                                                   "1 holds under every reading: code_yellow_entries."]


# ------------------------------------------------------------------ the commands
def test_sensitivity_runs_every_reading_with_the_same_seed_and_says_what_depends(tmp_path: Path) -> None:
    path = _write(tmp_path, "  first_code_yellow_entry_s: {max: 9}\n")
    out = tmp_path / "study"
    result = _cli("sensitivity", path, "--out", out, "--workers", 1)
    assert result.exit_code == 0, result.output
    assert "1 of 3 bounds depends on the reading:" in result.output
    assert "first_code_yellow_entry_s <= 9: holds under 8 of 12 readings; depends on sample_rule" in result.output
    assert "2 hold under every reading: code_yellow_entries, code_red_entries." in result.output
    assert sorted(os.listdir(out)) == ["readings.csv", "sensitivity.json", "sensitivity.png"]
    with (out / "readings.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 and {row["seed"] for row in rows} == {"11"}
    # Same random numbers: call arrivals do not depend on throttling, so every reading sees the same calls.
    study = json.loads((out / "sensitivity.json").read_text(encoding="utf-8"))
    assert study["seed"] == 11 and study["own_reading"] == DEFAULT_READING.settings
    entries = {tuple(reading["reading"].values()): reading["values"]["first_code_yellow_entry_s"][0]
               for reading in study["readings"]}
    assert {entries[reading.values] for reading in ALL_READINGS if reading.settings["sample_rule"] == "batch"} == {10}
    assert {entries[reading.values] for reading in ALL_READINGS if reading.settings["sample_rule"] != "batch"} == {9}
    (fragile,) = [bound for bound in study["bounds"] if bound["verdict"] == "some"]
    assert fragile["metric"] == "first_code_yellow_entry_s" and fragile["depends_on"] == ["sample_rule"]


def test_sensitivity_runs_are_the_runs_a_plain_run_makes_under_that_reading(tmp_path: Path) -> None:
    out = tmp_path / "study"
    assert _cli("sensitivity", _write(tmp_path), "--out", out, "--no-plots", "--metric", "calls_attempted",
                "-n", 2).exit_code == 0
    study = json.loads((out / "sensitivity.json").read_text(encoding="utf-8"))
    attempted = {tuple(reading["values"]["calls_attempted"]) for reading in study["readings"]}
    assert len(attempted) == 1  # the same calls under every reading, replication by replication
    batch = Reading(("batch", "below", "whole_ms"))
    under = with_reading(parse_scenario(_data(), "x"), batch).model_copy(update={"seed": study["seeds"][1]})
    row = next(reading for reading in study["readings"] if tuple(reading["reading"].values()) == batch.values)
    assert row["values"]["code_yellow_entries"][1] == simulate(under).summary["code_yellow_entries"]


def test_check_all_readings_fails_a_bound_that_only_some_readings_meet(tmp_path: Path) -> None:
    path = _write(tmp_path, "  first_code_yellow_entry_s: {max: 9}\n")
    assert _cli("check", path).exit_code == 0  # the scenario's own reading meets it
    result = _cli("check", path, "--all-readings")
    assert result.exit_code == 1
    line = next(line for line in result.output.splitlines() if "first_code_yellow_entry_s" in line)
    assert "FAIL: 1 above max (+11 %), under 4 of 12 readings" in line
    assert "a bound passes only if it holds under every reading, in every replication" in result.output
    passing = _cli("check", _write(tmp_path), "--all-readings")
    assert passing.exit_code == 0 and passing.output.count("pass under all 12 readings") == 2


@pytest.mark.parametrize(("args", "message"), [
    (["--metric", "no_such_metric"], "--metric no_such_metric:"),
    (["--replications", "0"], "Invalid value for '--replications'"),
])
def test_sensitivity_refuses_bad_options_with_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = _cli("sensitivity", _write(tmp_path), "--out", tmp_path / "out", *args)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "out").exists()


def test_sensitivity_will_not_replace_a_directory_it_did_not_write(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me", encoding="utf-8")
    result = _cli("sensitivity", _write(tmp_path), "--out", mine, "--force")
    assert result.exit_code == 2 and (mine / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_sensitivity_of_a_hosts_only_scenario_is_refused_in_one_line(tmp_path: Path) -> None:
    hosts = ROOT / "scenarios" / "vru_pim_heartbeat_loss.yaml"
    run = subprocess.run([sys.executable, "-m", "cucm_sim.cli", "sensitivity", str(hosts), "--out",
                          str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert "no CUCM node" in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_sensitivity_of_cpu_starvation_says_which_bounds_depend_on_the_reading(tmp_path: Path) -> None:
    out = tmp_path / "study"
    run = subprocess.run([sys.executable, "-m", "cucm_sim.cli", "sensitivity", str(ROOT / "scenarios" /
                          "cpu_starvation.yaml"), "--out", str(out), "--workers", "2"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    study = json.loads((out / "sensitivity.json").read_text(encoding="utf-8"))
    verdicts = {bound["metric"]: bound["verdict"] for bound in study["bounds"]}
    assert set(verdicts) == set(load_scenario(ROOT / "scenarios" / "cpu_starvation.yaml").expect)
    fragile = [metric for metric, verdict in verdicts.items() if verdict == "some"]
    robust = [metric for metric, verdict in verdicts.items() if verdict == "all"]
    if fragile:
        told = re.search(r"of 8 bounds depends? on the reading:\n(.*?)\n\d+ holds? under every reading", run.stdout,
                         re.DOTALL)
        assert told is not None, run.stdout
        assert all(metric in told.group(1) for metric in fragile), told.group(1)
    else:
        assert "No bound depends on the reading" in run.stdout
    assert robust, "the scenario's own reading passes its bounds, so some must hold under all"
    assert verdicts["code_red_entries"] == "all"


def test_the_pytest_plugin_takes_all_readings_too(tmp_path: Path) -> None:
    team = tmp_path / "team-repo"
    team.mkdir()
    _write(team, "  first_code_yellow_entry_s: {max: 9}\n")
    env = {key: value for key, value in os.environ.items() if key != "PYTEST_ADDOPTS"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--cucm-scenarios", "short.yaml",
                          "--cucm-all-readings", "-q"], cwd=team, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "1 failed, 2 passed" in run.stdout
    assert "under 4 of 12 readings" in run.stdout
    assert "a bound passes only if it holds under every reading, in every replication" in run.stdout
    assert "batch / at_or_below / exact, seed 11: 10" in run.stdout  # every reading's value, named


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_sensitivity_study_exits_130_and_writes_nothing(tmp_path: Path, signal_number: int) -> None:
    out = tmp_path / "study"
    process = subprocess.Popen([sys.executable, "-m", "cucm_sim.cli", "sensitivity",
                                str(ROOT / "scenarios" / "cpu_starvation.yaml"), "--out", str(out), "--workers", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)  # the runs are under way (a study takes about 30 s on one worker)
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted: nothing was written"
    assert os.listdir(tmp_path) == []
