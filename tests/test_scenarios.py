"""Every shipped scenario validates, runs end to end through the CLI, and shows what its header says.

These are full-length runs of the files in scenarios/ (marked slow).  Each assertion is the behaviour the
scenario's header comment promises, with wide margins, not a number pinned to one seed.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
from click.testing import CliRunner

from cucm_sim.cli import main

SCENARIOS = pathlib.Path(__file__).resolve().parent.parent / "scenarios"
FILES = sorted(SCENARIOS.glob("*.yaml"))


def test_the_issue_s_scenarios_ship() -> None:
    names = {path.stem for path in FILES}
    assert {"baseline", "cpu_starvation", "code_red", "sccp_chatty_device", "throttling_disabled"} <= names


def test_every_scenario_validates() -> None:
    result = CliRunner().invoke(main, ["validate", *map(str, FILES)])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == len(FILES)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("scenario-runs")
    results: dict[str, dict[str, Any]] = {}
    for path in FILES:
        result = CliRunner().invoke(main, ["run", str(path), "--out", str(out / path.stem)])
        assert result.exit_code == 0, result.output
        assert (out / path.stem / "timeline.png").stat().st_size > 10_000
        alarms = (out / path.stem / "alarms.csv").read_text().splitlines()[1:]
        results[path.stem] = {
            "summary": json.loads((out / path.stem / "summary.json").read_text()),
            "alarms": [(float(line.split(",")[0]), line.split(",")[1]) for line in alarms],
        }
    return results


@pytest.mark.slow
def test_baseline_is_healthy(runs: dict[str, dict[str, Any]]) -> None:
    summary = runs["baseline"]["summary"]
    assert summary["code_yellow_entries"] == 0 and summary["calls_rejected_throttled"] == 0
    assert summary["max_average_expected_delay_ms"] < 20 / 4
    assert summary["dial_tone_delay_ms"]["p99"] < 10


@pytest.mark.slow
def test_cpu_starvation_yellow_then_recovery(runs: dict[str, dict[str, Any]]) -> None:
    summary, alarms = runs["cpu_starvation"]["summary"], runs["cpu_starvation"]["alarms"]
    assert summary["code_yellow_entries"] >= 1 and summary["code_yellow_exits"] == summary["code_yellow_entries"]
    assert summary["code_red_entries"] == 0
    assert all(600 <= t_s <= 1300 for t_s, _ in alarms)  # only while (and just after) the backup job runs
    assert 0 < summary["calls_rejected_throttled"] < summary["calls_attempted"] / 2


@pytest.mark.slow
def test_throttling_disabled_shows_what_throttling_protects(runs: dict[str, dict[str, Any]]) -> None:
    disabled, enabled = runs["throttling_disabled"]["summary"], runs["cpu_starvation"]["summary"]
    assert disabled["code_yellow_entries"] == 0 and disabled["calls_rejected_throttled"] == 0
    assert disabled["calls_attempted"] == enabled["calls_attempted"]  # same seed, same offered calls
    assert disabled["dial_tone_delay_ms"]["p95"] > 5 * enabled["dial_tone_delay_ms"]["p95"]


@pytest.mark.slow
def test_code_red_restart_and_registration_storm(runs: dict[str, dict[str, Any]]) -> None:
    summary, alarms = runs["code_red"]["summary"], runs["code_red"]["alarms"]
    names = [name for _, name in alarms]
    assert names[:3] == ["CodeYellowEntry", "CodeRedEntry", "CallManagerOnline"]
    (entry_s, _), (red_s, _), (online_s, _) = alarms[:3]
    assert red_s - entry_s == 300 and online_s - red_s == 180
    # The registration storm after the restart pushes the node into Code Yellow again, briefly.
    assert "CodeYellowEntry" in names[3:] and "CodeYellowExit" in names[3:]
    assert summary["code_red_entries"] == 1 and summary["signals_lost_restart"] > 1000
    assert summary["registered_devices_at_end"] == 5000


@pytest.mark.slow
def test_chatty_device_throttled_repeatedly(runs: dict[str, dict[str, Any]]) -> None:
    summary, alarms = runs["sccp_chatty_device"]["summary"], runs["sccp_chatty_device"]["alarms"]
    throttled = [t_s for t_s, name in alarms if name == "DeviceCloseMaxEventsExceeded"]
    assert summary["skinny_devices_throttled"] == len(throttled) >= 15  # ~every 13 s for 300 s
    assert all(120 < t_s < 421 for t_s in throttled)
    assert summary["code_yellow_entries"] == 0
