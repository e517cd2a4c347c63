"""The story of a run (`cucm_sim.report.narrative`), narrative.txt, `read_run` and `cucm-sim explain`.

Two kinds of test.  Hand-made timelines and alarms (no simulation, milliseconds each) pin the wording:
each alarm told at its time with its own numbers, the exit arithmetic, the rejected calls of an episode
summed over exactly the rows the episode owns (row k covers (k - 1, k]), and the folding of repeated
events.  Small simulated runs with known transitions (Code Yellow entered and left; Code Red exactly the
Code Yellow Duration after entry; a chatty phone closed again and again) check the story against what the
run really did, and that `cucm-sim explain DIR` prints byte for byte the narrative.txt the run wrote.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from known_runs import starvation

from cucm_sim import RunResult, Scenario, simulate
from cucm_sim.cli import main
from cucm_sim.cli.run import WHAT_HAPPENED_LINES
from cucm_sim.errors import UserError
from cucm_sim.measures.timeline import TIMELINE_COLUMNS
from cucm_sim.report.narrative import (
    DEVICE_CLOSES_TOLD_PER_DEVICE,
    DEVICES_TOLD,
    EPISODES_TOLD_IN_FULL,
    EPISODES_TOLD_IN_ONE_LINE,
    LEAD_IN_SAMPLES,
    format_ms,
    format_t,
    narrate,
    narrative_text,
)
from cucm_sim.report.output import RUN_FILES, narrative_for, read_run, write_results
from cucm_sim.rules.alarms import (
    CALLMANAGER_ONLINE,
    CODE_RED_ENTRY,
    CODE_YELLOW_ENTRY,
    CODE_YELLOW_EXIT,
    DEVICE_CLOSE_MAX_EVENTS_EXCEEDED,
    Alarm,
)

NARRATIVE_MODULE = Path(__file__).resolve().parents[1] / "cucm_sim" / "report" / "narrative.py"
CALLS_REJECTED = re.compile(r"([\d,]+) calls? rejected")


# ------------------------------------------------------------------ helpers
def _scenario(**fields: Any) -> Scenario:
    data: dict[str, Any] = {"name": "hand", "seed": 1, "duration_s": 40,
                            "throttling": {"system_throttle_sample_size_s": 5, "code_yellow_duration_min": 1}}
    data.update(fields)
    return Scenario.model_validate(data)


def _timeline(duration_s: int) -> dict[str, np.ndarray]:
    """An all-Normal, all-zero timeline of `duration_s` rows, t_s = 1..duration_s."""
    columns = {name: np.zeros(duration_s) for name in TIMELINE_COLUMNS if name != "state"}
    columns["t_s"] = np.arange(1, duration_s + 1, dtype=np.float64)
    columns["state"] = np.array(["Normal"] * duration_s, dtype="<U10")
    return columns


def _span(timeline: dict[str, np.ndarray], after_s: float, until_s: float) -> np.ndarray:
    """The rows of the seconds in (after_s, until_s]."""
    t_s = timeline["t_s"]
    mask: np.ndarray = (t_s > after_s) & (t_s <= until_s)
    return mask


def _yellow(timeline: dict[str, np.ndarray], entry_s: float, end_s: float, rejected_per_s: float = 1) -> None:
    """Mark (entry_s, end_s] Code Yellow, every attempt there rejected."""
    rows = _span(timeline, entry_s, end_s)
    timeline["state"][rows] = "CodeYellow"
    timeline["calls_rejected"][rows] = timeline["calls_attempted"][rows] = rejected_per_s


def _common(average_ms: float, **extra: Any) -> dict[str, Any]:
    return {"ExpectedAverageDelay": average_ms, "EntryLatency": 20, "ExitLatency": 8.0, "SampleSize": 5, **extra}


def _events(lines: list[str]) -> list[str]:
    """The middle part of the story: the events between the opening and the closing paragraphs."""
    first_blank = lines.index("")
    last_blank = len(lines) - 1 - lines[::-1].index("")
    return lines[first_blank + 1:last_blank]


def _lines_at(lines: list[str], t_s: float) -> list[str]:
    return [line for line in lines if line.startswith(f"{format_t(t_s)}: ") or line.startswith(f"{format_t(t_s)} to")]


def _rejected_in_story(lines: list[str]) -> int:
    return sum(int(match.replace(",", "")) for line in _events(lines) for match in CALLS_REJECTED.findall(line))


def _rejected_in_rows(timeline: dict[str, np.ndarray] | Any, after_s: float, until_s: float) -> int:
    t_s = timeline["t_s"]
    return int(timeline["calls_rejected"][(t_s > after_s) & (t_s <= until_s)].sum())


# ------------------------------------------------------------------ numbers
def test_numbers_are_formatted_one_way() -> None:
    assert format_t(612.0) == "t=612 s"
    assert format_t(22.5) == "t=22.5 s"
    assert format_ms(23.44) == "23.4 ms"
    assert format_ms(31513.78) == "31,513.8 ms"
    assert format_ms(0.95) == "0.95 ms"
    assert format_ms(0.0) == "0.0 ms"
    assert narrative_text(["a", "", "b"]) == "a\n\nb\n"


def test_narrative_module_is_pure() -> None:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(NARRATIVE_MODULE.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"open", "print"}, "the story module does no I/O"
    assert imported <= {"__future__", "math", "collections", "dataclasses", "typing", "numpy", "cucm_sim"}, imported


# ------------------------------------------------------------------ hand-made: wording
@pytest.fixture
def one_episode() -> tuple[Scenario, dict[str, np.ndarray], list[Alarm]]:
    """Code Yellow entered at t=10 (average 23.44 ms) and left at t=20 (average 7.96 ms)."""
    scenario = _scenario(devices={"count": 0})
    timeline = _timeline(40)
    timeline["calls_attempted"][:] = 2
    timeline["expected_delay_ms"][_span(timeline, 5, 10)] = [3.0, 10.0, 25.0, 40.0, 39.2]
    timeline["average_expected_delay_ms"][_span(timeline, 4, 10)] = [0.5, 1.1, 3.1, 8.1, 16.1, 23.44]
    _yellow(timeline, 10, 20)
    # Rejections 1, 2, ..., 10 in the rows of t=11..20: an off-by-one row convention would count 45, not 55.
    yellow = _span(timeline, 10, 20)
    timeline["calls_rejected"][yellow] = timeline["calls_attempted"][yellow] = np.arange(1, 11)
    alarms = [
        Alarm(CODE_YELLOW_ENTRY, 10.0, _common(23.44, NormalPriorityQueueDepth=57, HighPriorityQueueDepth=0)),
        Alarm(CODE_YELLOW_EXIT, 20.0, _common(7.96, TimeSpentInCodeYellow=10.0)),
    ]
    return scenario, timeline, alarms


def test_entry_and_exit_are_told_with_their_numbers(
    one_episode: tuple[Scenario, dict[str, np.ndarray], list[Alarm]],
) -> None:
    scenario, timeline, alarms = one_episode

    lines = narrate(scenario, timeline, alarms)

    entry_line, lead_in = _lines_at(lines, 10)[0], lines[lines.index(_lines_at(lines, 10)[0]) + 1]
    assert entry_line == ("t=10 s: the 5-second average expected delay (23.4 ms) rose above the Code Yellow entry "
                          "latency (20 ms): CodeYellowEntry. New calls now get reorder tone.")
    assert lead_in == ("    Second by second, t=6..10 s: expected-delay samples 3.0, 10.0, 25.0, 40.0, 39.2 ms; "
                       "the 5-second average went from 0.50 ms to 23.4 ms. Signals waiting at entry: 57 normal.")
    assert _lines_at(lines, 20) == [
        "t=20 s: average 8.0 ms <= exit latency 8.0 ms (20 ms x 40 %): CodeYellowExit after 10 s, 55 calls "
        "rejected. New calls are admitted again."
    ]
    assert "Calls: 115 attempted, 55 rejected by call throttling (47.8 %)." in lines
    assert lines[-1] == ("Verdict: throttling protected dial tone: 1 Code Yellow episode rejected 55 calls (47.8 %), "
                         "and the node never reached Code Red.")


def test_story_has_three_parts_in_time_order(
    one_episode: tuple[Scenario, dict[str, np.ndarray], list[Alarm]],
) -> None:
    scenario, timeline, alarms = one_episode
    scenario = scenario.model_copy(update={"disturbances": [
        *_scenario(disturbances=[{"kind": "cpu_slowdown", "start_s": 4, "end_s": 15, "capacity_factor": 0.25}])
        .disturbances]})

    lines = narrate(scenario, timeline, alarms)

    assert lines.count("") == 2
    assert lines[0] == "Run of scenario 'hand': 40 s simulated, seed 1."
    assert "exit latency 8.0 ms (20 ms x 40 %)" in lines[1]
    assert "Code Red after 1 min in Code Yellow" in lines[1]
    events = [line for line in _events(lines) if line.startswith("t=")]
    times = [float(line.removeprefix("t=").split(" s")[0]) for line in events]
    assert times == sorted(times) == [4, 10, 15, 20]
    assert events[0] == "t=4 s: cpu_slowdown starts: the router thread now runs at 25 % of its speed (until t=15 s)."
    assert events[2] == "t=15 s: cpu_slowdown ends: the router thread is back to full speed."
    assert lines[-4] == "In all, over 40 s: Normal 30 s, Code Yellow 10 s, Code Red 0 s."


def test_exit_latency_arithmetic_keeps_two_decimals_when_needed() -> None:
    scenario = _scenario(throttling={"system_throttle_sample_size_s": 5, "code_yellow_entry_latency_ms": 15,
                                     "code_yellow_exit_latency_pct": 33})
    timeline = _timeline(40)
    _yellow(timeline, 10, 22)
    alarms = [Alarm(CODE_YELLOW_ENTRY, 10.0, _common(16.0)), Alarm(CODE_YELLOW_EXIT, 22.0, _common(4.9))]

    lines = narrate(scenario, timeline, alarms)

    assert "exit latency 4.95 ms (15 ms x 33 %)" in lines[1]
    assert _lines_at(lines, 22)[0].startswith(
        "t=22 s: average 4.9 ms <= exit latency 4.95 ms (15 ms x 33 %): CodeYellowExit after 12 s, 12 calls rejected.")


def test_an_average_just_above_a_threshold_never_prints_equal_to_it() -> None:
    scenario = _scenario()
    timeline = _timeline(40)
    _yellow(timeline, 10, 20)
    alarms = [Alarm(CODE_YELLOW_ENTRY, 10.0, _common(20.0058)), Alarm(CODE_YELLOW_EXIT, 20.0, _common(8.0))]

    lines = narrate(scenario, timeline, alarms)

    assert "average expected delay (20.01 ms) rose above the Code Yellow entry latency (20 ms)" in lines[5]
    assert _lines_at(lines, 20)[0].startswith("t=20 s: average 8.0 ms <= exit latency 8.0 ms (20 ms x 40 %)")


def test_code_red_restart_and_registration_storm() -> None:
    scenario = _scenario(duration_s=130, node={"restart_duration_s": 30},
                         devices={"count": 100, "registration_spread_s": 20})
    timeline = _timeline(130)
    timeline["calls_attempted"][:] = 1
    timeline["registered_devices"][:] = 100
    _yellow(timeline, 10, 70)
    down = _span(timeline, 70, 100)
    timeline["state"][down] = "CodeRed"
    timeline["registered_devices"][_span(timeline, 69, 100)] = 0  # the row of t=70 is sampled after the crash
    timeline["registered_devices"][_span(timeline, 100, 115)] = np.linspace(10, 100, 15)
    alarms = [
        Alarm(CODE_YELLOW_ENTRY, 10.0, _common(25.0)),
        Alarm(CODE_RED_ENTRY, 70.0, _common(900.0, TimeSpentInCodeYellow=60.0, CodeYellowDuration=1,
                                             NormalPriorityQueueDepth=4000, LowPriorityQueueDepth=321)),
        Alarm(CALLMANAGER_ONLINE, 100.0, {"SignalsLostInRestart": 4322, "RestartDuration": 30.0}),
    ]

    lines = narrate(scenario, timeline, alarms)

    (red,) = _lines_at(lines, 70)
    assert red.startswith("t=70 s: Code Yellow has lasted the Code Yellow Duration (1 min) and the average (900.0 ms) "
                          "is still above the exit latency 8.0 ms: CodeRedEntry after 60 s in Code Yellow, 60 calls "
                          "rejected in that episode.")
    assert "the signals in its queues (4,321) are lost, its 100 registered phones lose it" in red
    assert "new calls fail until it is back, 30 s later (restart_duration_s)" in red
    (online,) = _lines_at(lines, 100)
    assert online.startswith("t=100 s: CallManagerOnline: the node is back after 30 s down; 4,322 signals were lost "
                             "and 30 call attempts failed while it was down.")
    assert "re-register over 20 s (registration_spread_s)" in online
    assert online.endswith("a registration storm; all were registered again by t=115 s.")
    assert "Calls: 130 attempted, 60 rejected by call throttling (46.2 %), 30 failed while the node was down " \
           "(23.1 %)." in lines
    assert lines[-1].startswith("Verdict: throttling could not cure this overload")
    assert "restarted once (Code Red)" in lines[-1]


def test_many_episodes_are_folded_and_still_add_up() -> None:
    episodes = 15
    duration_s = 20 * episodes + 40
    scenario = _scenario(duration_s=duration_s)
    timeline = _timeline(duration_s)
    alarms: list[Alarm] = []
    for index in range(episodes):
        entry_s = 10.0 + 20 * index
        exit_s = entry_s + 5 + index % 3
        _yellow(timeline, entry_s, exit_s, rejected_per_s=index + 1)
        alarms += [Alarm(CODE_YELLOW_ENTRY, entry_s, _common(21.0 + index)),
                   Alarm(CODE_YELLOW_EXIT, exit_s, _common(7.0, TimeSpentInCodeYellow=exit_s - entry_s))]

    lines = narrate(scenario, timeline, alarms)

    events = _events(lines)
    assert sum(CODE_YELLOW_ENTRY in line for line in events) == EPISODES_TOLD_IN_FULL
    assert sum(CODE_YELLOW_EXIT in line for line in events) == EPISODES_TOLD_IN_FULL
    one_liners = [line for line in events if re.search(r": Code Yellow episode \d+ \(", line)]
    assert len(one_liners) == EPISODES_TOLD_IN_ONE_LINE
    assert one_liners[0] == ("t=50 s: Code Yellow episode 3 (average 23.0 ms > 20 ms) until t=57 s (average 7.0 ms "
                             "<= 8.0 ms): 7 s, 21 calls rejected.")
    first_folded = EPISODES_TOLD_IN_FULL + EPISODES_TOLD_IN_ONE_LINE + 1
    (folded,) = [line for line in events if "more Code Yellow episodes" in line]
    assert folded.startswith(f"t={10 + 20 * (first_folded - 1)} s to t={10 + 20 * (episodes - 1) + 5 + 14 % 3} s: "
                             f"{episodes - first_folded + 1} more Code Yellow episodes (numbers {first_folded} to "
                             f"{episodes}), not told one by one: 5 s to 7 s each")
    assert len(events) == 2 * EPISODES_TOLD_IN_FULL * 1 + EPISODES_TOLD_IN_FULL + EPISODES_TOLD_IN_ONE_LINE + 1
    assert _rejected_in_story(lines) == int(timeline["calls_rejected"].sum())


def test_an_episode_ending_in_code_red_is_told_in_full_even_late() -> None:
    episodes = EPISODES_TOLD_IN_FULL + EPISODES_TOLD_IN_ONE_LINE + 3
    duration_s = 20 * episodes + 200
    scenario = _scenario(duration_s=duration_s, node={"restart_duration_s": 30})
    timeline = _timeline(duration_s)
    alarms: list[Alarm] = []
    for index in range(episodes - 1):
        entry_s = 10.0 + 20 * index
        _yellow(timeline, entry_s, entry_s + 5)
        alarms += [Alarm(CODE_YELLOW_ENTRY, entry_s, _common(21.0)), Alarm(CODE_YELLOW_EXIT, entry_s + 5, _common(7.0))]
    last_entry_s = 10.0 + 20 * (episodes - 1)
    _yellow(timeline, last_entry_s, last_entry_s + 60)
    timeline["state"][_span(timeline, last_entry_s + 60, last_entry_s + 90)] = "CodeRed"
    alarms += [Alarm(CODE_YELLOW_ENTRY, last_entry_s, _common(30.0)),
               Alarm(CODE_RED_ENTRY, last_entry_s + 60, _common(500.0, TimeSpentInCodeYellow=60.0)),
               Alarm(CALLMANAGER_ONLINE, last_entry_s + 90, {"SignalsLostInRestart": 10})]

    lines = narrate(scenario, timeline, alarms)

    assert any(line.startswith(f"{format_t(last_entry_s)}: the 5-second average") for line in lines)
    assert any(CODE_RED_ENTRY in line for line in _lines_at(lines, last_entry_s + 60))
    assert any(CALLMANAGER_ONLINE in line for line in _lines_at(lines, last_entry_s + 90))
    assert _rejected_in_story(lines) == int(timeline["calls_rejected"].sum())


def test_run_ending_in_code_yellow() -> None:
    scenario = _scenario(throttling={"system_throttle_sample_size_s": 5, "code_yellow_duration_min": 99999})
    timeline = _timeline(40)
    _yellow(timeline, 25, 40, rejected_per_s=2)
    alarms = [Alarm(CODE_YELLOW_ENTRY, 25.0, _common(30.0))]

    lines = narrate(scenario, timeline, alarms)

    assert "never Code Red (Code Yellow Duration 99999)" in lines[1]
    assert "t=40 s: the run ends in Code Yellow, 15 s after entry; 30 calls rejected so far." in lines
    assert lines[-1].endswith("(Code Yellow Duration 99999: it never would); the run ends in Code Yellow.")


def test_device_closes_are_folded_per_device_and_across_devices() -> None:
    scenario = _scenario(duration_s=60, devices={"count": 10, "throttled_reregister_delay_s": 0})
    timeline = _timeline(60)
    chatty = "SEP00000000000A"
    closes = [Alarm(DEVICE_CLOSE_MAX_EVENTS_EXCEEDED, 1.5 + index, {
        "DeviceName": chatty, "TotalEventsReceived": 2001, "MaxEventsAllowed": 2000,
        "NumberOfSkinnyDeviceThrottled": index + 1}) for index in range(30)]
    others = [f"SEP00000000000{n}" for n in range(1, 6)]
    closes += [Alarm(DEVICE_CLOSE_MAX_EVENTS_EXCEEDED, 40.25 + n, {"DeviceName": name, "TotalEventsReceived": 2001,
                                                                   "MaxEventsAllowed": 2000})
               for n, name in enumerate(others)]

    lines = narrate(scenario, timeline, closes)

    about_chatty = [line for line in _events(lines) if chatty in line]
    assert about_chatty == [
        f"t=1.5 s: phone {chatty} sent 2,001 events within 5 s, more than Max Events Allowed (2,000): "
        "DeviceCloseMaxEventsExceeded. CUCM closes its connection; it re-registers after 0 s "
        "(throttled_reregister_delay_s).",
        f"t=2.5 s: {chatty} closed again (2,001 events within 5 s): DeviceCloseMaxEventsExceeded, the 2nd time.",
        f"t=3.5 s: {chatty} keeps going over the limit: closed 30 times in all between t=1.5 s and t=30.5 s.",
    ]
    assert len(about_chatty) == DEVICE_CLOSES_TOLD_PER_DEVICE + 1
    told_others = others[:DEVICES_TOLD - 1]
    for name in told_others:
        assert sum(name in line for line in _events(lines)) == 1
    (rest,) = [line for line in _events(lines) if "more phones" in line]
    assert rest == (f"t=42.2 s: 3 more phones ({', '.join(others[2:])}) exceeded Max Events Allowed too: 3 closes "
                    "(DeviceCloseMaxEventsExceeded) between t=42.2 s and t=44.2 s.")
    assert "SCCP device throttling closed 35 connections of 6 phones." in lines


def test_throttling_disabled_and_quiet_runs() -> None:
    disabled = _scenario(throttling={"system_throttle_sample_size_s": 0})
    timeline = _timeline(40)
    timeline["expected_delay_ms"][_span(timeline, 20, 21)] = 512.0

    lines = narrate(disabled, timeline, [], {"dial_tone_delay_ms": {"p95": 480.5, "max": 900.0}})

    assert lines[1].startswith("Call throttling: disabled (System Throttle Sample Size 0 s)")
    assert "Highest one-second expected delay: 512.0 ms at t=21 s." in lines
    assert "Dial tone (off-hook to dial tone, calls admitted): p95 480.5 ms, max 900.0 ms." in lines
    assert lines[-1] == "Verdict: call throttling was off, so nothing held new calls back (dial-tone p95 480.5 ms)."

    calm = narrate(_scenario(), _timeline(40), [])
    assert _events(calm) == ["Nothing happened: no disturbance, no alarm."]
    assert calm[-1] == "Verdict: the node never throttled: the average expected delay peaked at 0.0 ms, below the " \
                       "20 ms entry latency."
    spiky = _timeline(40)
    spiky["average_expected_delay_ms"][_span(spiky, 30, 31)] = 21.5
    assert narrate(_scenario(), spiky, [], {"dial_tone_delay_ms": {"p95": 3.0, "max": 9.0}})[-1] == (
        "Verdict: the node never throttled: the average expected delay peaked at 21.5 ms, above the 20 ms entry "
        "latency, but never after 5 consecutive non-zero samples (sample_rule consecutive_nonzero); dial-tone p95 "
        "3.0 ms.")


# ------------------------------------------------------------------ simulated runs with known transitions
def _starvation(**overrides: Any) -> dict[str, Any]:
    return starvation(**{"name": "starvation-story", **overrides})


@pytest.fixture(scope="module")
def code_red() -> RunResult:
    return simulate(Scenario.model_validate(_starvation()))


@pytest.fixture(scope="module")
def recovery() -> RunResult:
    """A 15 s slowdown: Code Yellow entered and left, no Code Red."""
    return simulate(Scenario.model_validate(_starvation(
        name="recovery-story",
        disturbances=[{"kind": "cpu_slowdown", "start_s": 30, "end_s": 45, "capacity_factor": 0.1}])))


def _story(result: RunResult) -> list[str]:
    return narrate(result.scenario, result.timeline, result.alarms, result.summary)


def test_recovery_story_matches_the_run(recovery: RunResult) -> None:
    entry, exit_alarm = (a for a in recovery.alarms if a.name.startswith("CodeYellow"))
    assert (entry.name, exit_alarm.name) == (CODE_YELLOW_ENTRY, CODE_YELLOW_EXIT)

    lines = _story(recovery)

    (entry_line,) = [line for line in _lines_at(lines, entry.t_s) if CODE_YELLOW_ENTRY in line]
    assert f"average expected delay ({format_ms(float(entry.params['ExpectedAverageDelay']))}) rose above" in entry_line
    lead_in = lines[lines.index(entry_line) + 1]
    window = _span(dict(recovery.timeline), entry.t_s - LEAD_IN_SAMPLES, entry.t_s)
    samples = ", ".join(format_ms(v).removesuffix(" ms") for v in recovery.timeline["expected_delay_ms"][window])
    assert f"expected-delay samples {samples} ms;" in lead_in
    (exit_line,) = _lines_at(lines, exit_alarm.t_s)
    rejected = _rejected_in_rows(recovery.timeline, entry.t_s, exit_alarm.t_s)
    assert rejected == exit_alarm.params["NumberOfCallsRejectedDueToCallThrottling"]
    assert rejected > 0
    spent_s = exit_alarm.t_s - entry.t_s
    average = format_ms(float(exit_alarm.params["ExpectedAverageDelay"]))
    assert exit_line.startswith(
        f"{format_t(exit_alarm.t_s)}: average {average} <= exit latency 8.0 ms (20 ms x 40 %): CodeYellowExit after "
        f"{spent_s:.0f} s, {rejected:,} calls rejected.")
    assert _rejected_in_story(lines) == recovery.summary["calls_rejected_throttled"]
    assert lines[-1].startswith("Verdict: throttling protected dial tone")


def test_code_red_story_matches_the_run(code_red: RunResult) -> None:
    entry, red, online = (a for a in code_red.alarms if a.name != DEVICE_CLOSE_MAX_EVENTS_EXCEEDED)
    assert red.t_s == entry.t_s + 60  # the Code Yellow Duration, 1 min

    lines = _story(code_red)

    for alarm in (entry, red, online):
        assert any(alarm.name in line for line in _lines_at(lines, alarm.t_s)), alarm
    (red_line,) = _lines_at(lines, red.t_s)
    rejected = _rejected_in_rows(code_red.timeline, entry.t_s, red.t_s)
    assert f"the average ({format_ms(float(red.params['ExpectedAverageDelay']))}) is still above" in red_line
    assert f"CodeRedEntry after 60 s in Code Yellow, {rejected:,} calls rejected in that episode" in red_line
    assert rejected == code_red.summary["calls_rejected_throttled"] == red.params[
        "NumberOfCallsRejectedDueToCallThrottling"]
    assert "new calls fail until it is back, 30 s later (restart_duration_s)" in red_line
    (online_line,) = _lines_at(lines, online.t_s)
    failed = code_red.summary["calls_failed_node_down"]
    assert (f"CallManagerOnline: the node is back after 30 s down; {online.params['SignalsLostInRestart']:,} "
            f"signals were lost and {failed:,} call attempts failed while it was down") in online_line
    assert "Its 200 phones re-register over 20 s" in online_line
    time_in_state = code_red.summary["time_in_state_s"]
    (in_all,) = [line for line in lines if line.startswith("In all")]
    assert in_all == (f"In all, over 240 s (4 min): Normal {time_in_state['Normal']:.0f} s (2.5 min), Code Yellow "
                      f"{time_in_state['CodeYellow']:.0f} s, Code Red {time_in_state['CodeRed']:.0f} s.")
    assert "restarted once (Code Red)" in lines[-1]
    # The peak is the average that raised Code Red (the node still runs slow): the Code Red row holds it.
    peak = f"{format_ms(float(red.params['ExpectedAverageDelay']))} at {format_t(red.t_s)}."
    assert f"Highest 10-second average expected delay: {peak}" in lines


def test_a_chatty_phone_closed_many_times_is_summed_up() -> None:
    result = simulate(Scenario.model_validate({
        "name": "chatty-story", "seed": 9, "duration_s": 60, "load": {"background": [{"signals_per_s": 100}]},
        "devices": {"count": 10, "throttled_reregister_delay_s": 0, "registration_signals": 3, "chatty": [
            {"count": 1, "events_per_s": 2000, "start_s": 5, "end_s": 55}]},
    }))
    closes = [a for a in result.alarms if a.name == DEVICE_CLOSE_MAX_EVENTS_EXCEEDED]
    assert len(closes) > 10
    (device,) = {a.params["DeviceName"] for a in closes}

    lines = _story(result)

    about = [line for line in _events(lines) if str(device) in line]
    assert len(about) == DEVICE_CLOSES_TOLD_PER_DEVICE + 1
    assert about[0].startswith(f"{format_t(closes[0].t_s)}: phone {device} sent 2,001 events within 5 s")
    assert about[-1] == (f"{format_t(closes[DEVICE_CLOSES_TOLD_PER_DEVICE].t_s)}: {device} keeps going over the limit: "
                         f"closed {len(closes)} times in all between {format_t(closes[0].t_s)} and "
                         f"{format_t(closes[-1].t_s)}.")
    assert len(lines) < 20


# ------------------------------------------------------------------ files and the command line
def _invoke(*args: str | Path) -> Result:
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def written(recovery: RunResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("story") / "run"
    write_results(recovery, out, plots=False)
    return out


def test_narrative_txt_is_written_and_explain_prints_it(written: Path, recovery: RunResult) -> None:
    text = (written / "narrative.txt").read_text(encoding="utf-8")
    assert text == narrative_for(recovery)
    assert text.startswith("Run of scenario 'recovery-story': 240 s (4 min) simulated, seed 3.\n")
    assert "CodeYellowExit" in text

    result = _invoke("explain", written)

    assert result.exit_code == 0, result.output
    assert result.stdout == text
    assert result.stderr == ""


def test_read_run_gives_back_what_was_written(written: Path, recovery: RunResult) -> None:
    saved = read_run(written)

    assert saved.scenario == recovery.scenario
    assert {k: v for k, v in saved.summary.items() if k != "wall_s"} == \
        {k: v for k, v in json.loads(json.dumps(recovery.summary)).items() if k != "wall_s"}
    assert [(a.name, a.t_s) for a in saved.alarms] == [(a.name, a.t_s) for a in recovery.alarms]
    for original, back in zip(recovery.alarms, saved.alarms, strict=True):
        assert back.params.keys() == original.params.keys()
        for key, value in original.params.items():
            assert back.params[key] == (pytest.approx(value, abs=1e-4) if isinstance(value, float) else value)
    assert list(saved.timeline["state"]) == list(recovery.timeline["state"])
    for name in TIMELINE_COLUMNS:
        if name != "state":
            np.testing.assert_allclose(saved.timeline[name], recovery.timeline[name], atol=1e-4)


def test_same_seed_same_story_bytes(recovery: RunResult, written: Path, tmp_path: Path) -> None:
    again = simulate(recovery.scenario)
    write_results(again, tmp_path / "again", plots=False)

    assert (tmp_path / "again" / "narrative.txt").read_bytes() == (written / "narrative.txt").read_bytes()


def test_explain_missing_directory_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-run"

    result = _invoke("explain", missing)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"error: {missing}: no such directory; give a result directory written by `cucm-sim run`\n"


@pytest.mark.parametrize("name", RUN_FILES)
def test_explain_incomplete_directory_names_the_missing_file(written: Path, tmp_path: Path, name: str) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for other in RUN_FILES:
        if other != name:
            (broken / other).write_bytes((written / other).read_bytes())

    result = _invoke("explain", broken)

    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {broken / name}: no such file")


@pytest.mark.parametrize(("name", "damage", "expected"), [
    ("timeline.csv", lambda text: text.replace("CodeYellow", "Purple", 1), "state: 'Purple'"),
    ("timeline.csv", lambda text: "\n".join(text.splitlines()[:-5]) + "\n", "rows, but the run lasted 240 s"),
    ("timeline.csv", lambda text: text.replace("t_s,state", "time,state", 1), "line 1: expected the header"),
    ("alarms.csv", lambda text: text.replace(",CodeYellowEntry,", ",CodeYellowEntry,oops,", 1), "fields, expected"),
    ("summary.json", lambda text: text[:-3], "invalid JSON"),
    ("scenario.resolved.yaml", lambda text: text.replace("duration_s: 240", "duration_s: -1"), "duration_s"),
], ids=["bad-state", "short", "header", "extra-field", "json", "yaml"])
def test_malformed_files_are_user_errors_naming_the_file(
    written: Path, tmp_path: Path, name: str, damage: Any, expected: str,
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for other in RUN_FILES:
        (broken / other).write_bytes((written / other).read_bytes())
    (broken / name).write_text(damage((written / name).read_text(encoding="utf-8")), encoding="utf-8")

    with pytest.raises(UserError) as raised:
        read_run(broken)
    (problem,) = raised.value.problems
    assert problem.startswith(str(broken / name)) and expected in problem, problem
    assert _invoke("explain", broken).exit_code == 2


def test_run_prints_what_happened(tmp_path: Path) -> None:
    scenario = tmp_path / "story.yaml"
    scenario.write_text(json.dumps(_starvation(name="[bold]story")), encoding="utf-8")  # JSON is YAML
    out = tmp_path / "out"

    result = _invoke("run", scenario, "--out", out, "--no-plots")

    assert result.exit_code == 0, result.output
    story = (out / "narrative.txt").read_text(encoding="utf-8").splitlines()
    assert len(story) > WHAT_HAPPENED_LINES
    printed = result.stdout.splitlines()
    start = printed.index("What happened") + 1
    assert printed[start:start + WHAT_HAPPENED_LINES] == story[:WHAT_HAPPENED_LINES]  # "[bold]" printed as is
    assert printed[start + WHAT_HAPPENED_LINES] == (
        f"... {len(story) - WHAT_HAPPENED_LINES} more lines: cucm-sim explain {out}")

    quiet = _invoke("run", scenario, "--out", tmp_path / "quiet", "--no-plots", "--quiet")
    assert "What happened" not in quiet.stdout
