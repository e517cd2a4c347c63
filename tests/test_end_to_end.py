"""Whole runs of both engines against Cisco's documented behaviour (each test runs on each engine).

Small, fast scenarios built for one behaviour each: a CPU starvation that goes Normal -> Code Yellow ->
Code Red -> restart -> Normal with every alarm at the time the rules put it; SCCP Max Events Allowed
throttling a chatty phone and sparing one under the limit; the switches that turn each mechanism off;
reproducibility; and accounting identities that must hold in any run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from known_runs import ENTRY_MS, SAMPLE_S
from known_runs import starvation as starvation_scenario

from cucm_sim import RunResult, Scenario, simulate


def _starvation(**overrides: Any) -> dict[str, Any]:
    return starvation_scenario(**{"name": "starvation-e2e", **overrides})


def _run(data: dict[str, Any], engine: str) -> RunResult:
    return simulate(Scenario.model_validate({**data, "engine": engine}))


@pytest.fixture(scope="module", params=["batched", "signal"])
def engine(request: pytest.FixtureRequest) -> str:
    engine_name: str = request.param
    return engine_name


@pytest.fixture(scope="module")
def starvation(engine: str) -> RunResult:
    return _run(_starvation(), engine)


def _alarm_times(result: RunResult, name: str) -> list[float]:
    return [alarm.t_s for alarm in result.alarms if alarm.name == name]


def test_starvation_walks_normal_yellow_red_restart_normal(starvation: RunResult) -> None:
    names = [a.name for a in starvation.alarms if a.name != "DeviceCloseMaxEventsExceeded"]
    assert names == ["CodeYellowEntry", "CodeRedEntry", "CallManagerOnline"]
    (entry_s,) = _alarm_times(starvation, "CodeYellowEntry")
    (red_s,) = _alarm_times(starvation, "CodeRedEntry")
    (online_s,) = _alarm_times(starvation, "CallManagerOnline")
    # Entry needs N consecutive non-zero samples whose mean passes 20 ms: within the window after the slowdown.
    assert 30 < entry_s <= 30 + SAMPLE_S
    assert red_s == entry_s + 60  # Code Yellow Duration 1 min, to the second
    assert online_s == pytest.approx(red_s + 30)  # restart_duration_s
    states = starvation.timeline["state"]
    t_s = starvation.timeline["t_s"]
    # A row holds the state in force during its second: the new state shows from the row after the alarm.
    assert set(states[t_s <= entry_s]) == {"Normal"}
    assert set(states[(t_s > entry_s) & (t_s <= red_s)]) == {"CodeYellow"}
    assert set(states[(t_s > red_s) & (t_s <= online_s)]) == {"CodeRed"}
    assert set(states[t_s > online_s + 1]) == {"Normal"}
    summary = starvation.summary
    assert summary["time_in_state_s"] == {"Normal": 240 - 90.0, "CodeYellow": 60.0, "CodeRed": 30.0}
    assert (summary["code_yellow_entries"], summary["code_yellow_exits"], summary["code_red_entries"]) == (1, 0, 1)


def test_alarm_parameters_carry_cisco_fields(starvation: RunResult) -> None:
    entry, red, online = (a for a in starvation.alarms if a.name != "DeviceCloseMaxEventsExceeded")
    assert entry.params["ExpectedAverageDelay"] > ENTRY_MS
    assert entry.params["EntryLatency"] == ENTRY_MS and entry.params["ExitLatency"] == 8.0
    assert entry.params["SampleSize"] == SAMPLE_S and entry.params["TotalCodeYellowEntry"] == 1
    assert entry.params["NormalPriorityQueueDepth"] > 0
    assert red.params["CodeYellowDuration"] == 1 and red.params["TimeSpentInCodeYellow"] == 60
    assert red.params["NumberOfCallsRejectedDueToCallThrottling"] == starvation.summary["calls_rejected_throttled"]
    assert online.params["SignalsLostInRestart"] == starvation.summary["signals_lost_restart"] > 0


def test_restart_loses_queue_unregisters_phones_and_storm_reregisters(starvation: RunResult) -> None:
    timeline, summary = starvation.timeline, starvation.summary
    down = timeline["state"] == "CodeRed"
    assert np.all(timeline["signals_processed"][down] == 0)
    assert np.all(timeline["registered_devices"][down] == 0)
    assert np.all(timeline["calls_rejected"][down] == 0)
    # The second that raises Code Red is read after the restart began: queues emptied, phones gone.
    red_row = int(_alarm_times(starvation, "CodeRedEntry")[0]) - 1
    assert timeline["queue_normal"][red_row] == timeline["registered_devices"][red_row] == 0
    assert summary["calls_failed_node_down"] == pytest.approx(timeline["calls_attempted"][down].sum(), abs=5)
    # The registration storm: every phone back within the spread plus queueing.
    assert timeline["registered_devices"][-1] == 200 == summary["registered_devices_at_end"]
    assert summary["signal_wait_ms_by_priority"]["lowest"]["count"] >= 200


def test_calls_are_rejected_only_in_code_yellow(starvation: RunResult) -> None:
    timeline = starvation.timeline
    rejecting = timeline["calls_rejected"] > 0
    assert rejecting.any()
    assert set(timeline["state"][rejecting]) == {"CodeYellow"}
    yellow = timeline["state"] == "CodeYellow"
    assert np.array_equal(timeline["calls_rejected"][yellow], timeline["calls_attempted"][yellow])


def test_accounting_identities(starvation: RunResult) -> None:
    summary, timeline = starvation.summary, starvation.timeline
    assert summary["calls_attempted"] == (
        summary["calls_accepted"] + summary["calls_rejected_throttled"] + summary["calls_failed_node_down"]
    )
    assert summary["calls_attempted"] == timeline["calls_attempted"].sum()
    assert summary["calls_rejected_throttled"] == timeline["calls_rejected"].sum()
    assert summary["signals_processed"] == timeline["signals_processed"].sum()
    assert sum(summary["time_in_state_s"].values()) == summary["duration_s"] == len(timeline["t_s"])
    by_priority = summary["signal_wait_ms_by_priority"]
    assert sum(p["count"] for p in by_priority.values()) == summary["signal_wait_ms"]["count"]
    assert summary["max_average_expected_delay_ms"] == pytest.approx(timeline["average_expected_delay_ms"].max())


def test_throttling_disabled_never_leaves_normal(engine: str) -> None:
    data = _starvation()
    data["throttling"] = {**data["throttling"], "system_throttle_sample_size_s": 0}
    result = _run(data, engine)
    assert set(result.timeline["state"]) == {"Normal"}
    assert not [a for a in result.alarms if a.name.startswith("Code")]
    assert result.summary["calls_rejected_throttled"] == 0
    # What throttling protects: without it dial tone waits far longer than with it.
    with_throttling = _run(_starvation(), engine)
    assert result.summary["dial_tone_delay_ms"]["p95"] > 10 * with_throttling.summary["dial_tone_delay_ms"]["p95"]


def test_never_code_red_with_99999(engine: str) -> None:
    data = _starvation(duration_s=200)
    data["throttling"] = {**data["throttling"], "code_yellow_duration_min": 99999}
    result = _run(data, engine)
    assert result.summary["code_red_entries"] == 0
    assert result.summary["code_yellow_entries"] >= 1


def test_code_yellow_recovery_when_the_overload_ends(engine: str) -> None:
    """A short slowdown: Code Yellow, then exit once the average is at or below 8 ms; no Code Red."""
    data = _starvation(disturbances=[{"kind": "cpu_slowdown", "start_s": 30, "end_s": 45, "capacity_factor": 0.1}])
    result = _run(data, engine)
    assert [a.name for a in result.alarms][:2] == ["CodeYellowEntry", "CodeYellowExit"]
    exit_alarm = next(a for a in result.alarms if a.name == "CodeYellowExit")
    assert exit_alarm.params["ExpectedAverageDelay"] <= 8.0
    row = int(exit_alarm.t_s) - 1
    average_ms = result.timeline["average_expected_delay_ms"]
    assert average_ms[row] <= 8.0 < average_ms[row - 1]
    assert result.summary["code_red_entries"] == 0


def _chatty(**throttling: Any) -> dict[str, Any]:
    return {
        "name": "chatty-e2e", "seed": 9, "duration_s": 120,
        "throttling": {"max_events_allowed": 2000, **throttling},
        "load": {"background": [{"signals_per_s": 100}]},
        "devices": {"count": 10, "throttled_reregister_delay_s": 10, "registration_signals": 3, "chatty": [
            {"count": 1, "events_per_s": 800, "start_s": 20, "end_s": 80},  # 4000 / 5 s: over the limit
            {"count": 1, "events_per_s": 300, "start_s": 20, "end_s": 80},  # 1500 / 5 s: under it
        ]},
    }


def test_chatty_device_is_throttled_and_reregisters(engine: str) -> None:
    result = _run(_chatty(), engine)
    throttles = [a for a in result.alarms if a.name == "DeviceCloseMaxEventsExceeded"]
    assert result.summary["skinny_devices_throttled"] == len(throttles) >= 3
    assert {a.params["DeviceName"] for a in throttles} == {"SEP000000000000"}  # only the device over the limit
    assert all(a.params["TotalEventsReceived"] == 2001 and a.params["MaxEventsAllowed"] == 2000 for a in throttles)
    times_s = np.array([a.t_s for a in throttles])
    assert 20 + 2000 / 800 * 0.8 < times_s[0] < 20 + 2000 / 800 * 1.25  # ~2.5 s of events at 800/s
    # Between throttles: the 10 s re-register delay, then another ~2.5 s of chatter.
    assert np.all(np.diff(times_s) > 10 + 2.0) and np.all(np.diff(times_s) < 10 + 4.0)
    assert times_s[-1] < 80 + 1
    assert list(result.timeline["skinny_devices_throttled"])[-1] == len(throttles)
    registered = result.timeline["registered_devices"]
    assert registered.min() == 9 and registered[-1] == 10


def test_max_events_zero_disables_sccp_throttling(engine: str) -> None:
    result = _run(_chatty(max_events_allowed=0), engine)
    assert result.summary["skinny_devices_throttled"] == 0
    assert not [a for a in result.alarms if a.name == "DeviceCloseMaxEventsExceeded"]


def test_same_seed_same_result_different_seed_differs(engine: str) -> None:
    first, second = _run(_starvation(duration_s=90), engine), _run(_starvation(duration_s=90), engine)
    strip = lambda summary: {k: v for k, v in summary.items() if k != "wall_s"}  # noqa: E731
    assert strip(first.summary) == strip(second.summary)
    assert all(np.array_equal(first.timeline[k], second.timeline[k]) for k in first.timeline)
    assert first.alarms == second.alarms
    other = _run(_starvation(duration_s=90, seed=4), engine)
    assert strip(other.summary) != strip(first.summary)


def test_missing_seed_is_drawn_and_reported(engine: str) -> None:
    data = _starvation(duration_s=20)
    del data["seed"]
    result = _run(data, engine)
    assert isinstance(result.seed, int) and result.summary["seed"] == result.seed == result.scenario.seed
    again = simulate(result.scenario)
    assert np.array_equal(again.timeline["expected_delay_ms"], result.timeline["expected_delay_ms"])


def test_the_code_red_second_shows_the_average_that_raised_it(starvation: RunResult) -> None:
    (red,) = [alarm for alarm in starvation.alarms if alarm.name == "CodeRedEntry"]
    row = int(red.t_s) - 1  # row k covers (k - 1, k]
    assert starvation.timeline["average_expected_delay_ms"][row] == red.params["ExpectedAverageDelay"]
    assert starvation.timeline["average_expected_delay_ms"][row + 1] == 0  # the service is down: counters read 0
    assert starvation.summary["max_average_expected_delay_ms"] >= red.params["ExpectedAverageDelay"]
