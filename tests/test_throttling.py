"""Tests of the call-throttling service parameters and the Code Yellow / Code Red state machine.

Rules under test: DOMAIN.md sections 2 and 3, and the module docstring of `cucm_sim.rules.throttling`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cucm_sim.rules.alarms import CODE_RED_ENTRY, CODE_YELLOW_ENTRY, CODE_YELLOW_EXIT, Alarm
from cucm_sim.rules.throttling import (
    NEVER_CODE_RED_MIN,
    ThrottleState,
    ThrottleStateMachine,
    ThrottlingParams,
)

COMMON_ALARM_KEYS = {
    "ExpectedAverageDelay",
    "EntryLatency",
    "ExitLatency",
    "SampleSize",
    "TotalCodeYellowEntry",
    "TotalCodeYellowExit",
}


def make(**overrides: Any) -> ThrottleStateMachine:
    return ThrottleStateMachine(ThrottlingParams(**overrides))


def feed(machine: ThrottleStateMachine, samples: Iterable[float], start_s: float = 1.0) -> list[Alarm]:
    """Feed one sample per second, the first at `start_s`; return every alarm raised, in order."""
    alarms: list[Alarm] = []
    for i, sample in enumerate(samples):
        alarms.extend(machine.observe(start_s + i, sample))
    return alarms


def enter_code_yellow(machine: ThrottleStateMachine, level_ms: float = 100.0) -> float:
    """Drive a fresh machine into Code Yellow with a constant high delay; return the entry time."""
    n = machine.params.system_throttle_sample_size_s
    alarms = feed(machine, [level_ms] * n)
    assert [a.name for a in alarms] == [CODE_YELLOW_ENTRY]
    assert machine.state is ThrottleState.CODE_YELLOW
    assert alarms[0].t_s == float(n)
    return alarms[0].t_s


# --------------------------------------------------------------------------------------------------
# ThrottlingParams
# --------------------------------------------------------------------------------------------------


def test_defaults_are_cisco_defaults() -> None:
    p = ThrottlingParams()
    assert p.code_yellow_entry_latency_ms == 20
    assert p.code_yellow_exit_latency_pct == 40
    assert p.code_yellow_duration_min == 5
    assert p.system_throttle_sample_size_s == 10
    assert p.max_events_allowed == 2000
    assert p.sample_rule == "consecutive_nonzero"
    assert p.exit_rule == "at_or_below"
    assert p.delay_resolution == "exact"
    assert p.exit_latency_ms == 8.0
    assert p.code_yellow_duration_s == 300.0
    assert p.throttling_enabled is True


@pytest.mark.parametrize(
    ("entry_ms", "exit_pct", "expected_exit_ms"),
    [
        (20, 40, 8.0),  # Cisco's worked example
        (15, 40, 6.0),  # Cisco's worked example
        (5, 20, 1.0),
        (500, 70, 350.0),
        (100, 50, 50.0),
    ],
)
def test_exit_latency_is_entry_times_percentage(
    entry_ms: int, exit_pct: int, expected_exit_ms: float
) -> None:
    p = ThrottlingParams(code_yellow_entry_latency_ms=entry_ms, code_yellow_exit_latency_pct=exit_pct)
    assert p.exit_latency_ms == expected_exit_ms


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code_yellow_entry_latency_ms", 5),
        ("code_yellow_entry_latency_ms", 500),
        ("code_yellow_exit_latency_pct", 20),
        ("code_yellow_exit_latency_pct", 70),
        ("code_yellow_duration_min", 1),
        ("code_yellow_duration_min", 30),
        ("code_yellow_duration_min", NEVER_CODE_RED_MIN),
        ("system_throttle_sample_size_s", 0),
        ("system_throttle_sample_size_s", 60),
        ("max_events_allowed", 0),
        ("max_events_allowed", 5000),
        ("sample_rule", "consecutive_nonzero"),
        ("sample_rule", "rolling"),
    ],
)
def test_boundary_values_accepted(field: str, value: Any) -> None:
    p = ThrottlingParams(**{field: value})
    assert getattr(p, field) == value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code_yellow_entry_latency_ms", 4),
        ("code_yellow_entry_latency_ms", 501),
        ("code_yellow_exit_latency_pct", 19),
        ("code_yellow_exit_latency_pct", 71),
        ("code_yellow_duration_min", 0),
        ("code_yellow_duration_min", 31),
        ("code_yellow_duration_min", 99998),
        ("code_yellow_duration_min", 100000),
        ("code_yellow_duration_min", -1),
        ("system_throttle_sample_size_s", -1),
        ("system_throttle_sample_size_s", 61),
        ("max_events_allowed", -1),
        ("max_events_allowed", 5001),
        ("sample_rule", "average"),
        ("sample_rule", ""),
    ],
)
def test_out_of_range_values_rejected(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as excinfo:
        ThrottlingParams(**{field: value})
    assert [err["loc"] for err in excinfo.value.errors()] == [(field,)]


@pytest.mark.parametrize("duration_min", [*range(1, 31), NEVER_CODE_RED_MIN])
def test_every_allowed_duration_accepted(duration_min: int) -> None:
    p = ThrottlingParams(code_yellow_duration_min=duration_min)
    if duration_min == NEVER_CODE_RED_MIN:
        assert p.code_yellow_duration_s is None
    else:
        assert p.code_yellow_duration_s == duration_min * 60.0


def test_unknown_key_rejected() -> None:
    with pytest.raises(ValidationError) as excinfo:
        ThrottlingParams(code_yellow_entry_latency=20)  # type: ignore[call-arg]
    assert excinfo.value.errors()[0]["type"] == "extra_forbidden"


def test_params_are_frozen() -> None:
    p = ThrottlingParams()
    with pytest.raises(ValidationError):
        p.code_yellow_entry_latency_ms = 30  # type: ignore[misc]
    assert p.code_yellow_entry_latency_ms == 20


@pytest.mark.parametrize(("sample_size", "enabled"), [(0, False), (1, True), (60, True)])
def test_throttling_enabled(sample_size: int, enabled: bool) -> None:
    assert ThrottlingParams(system_throttle_sample_size_s=sample_size).throttling_enabled is enabled


# --------------------------------------------------------------------------------------------------
# Entry: consecutive_nonzero
# --------------------------------------------------------------------------------------------------


def test_fresh_machine_state() -> None:
    m = make()
    assert m.state is ThrottleState.NORMAL
    assert m.average_expected_delay_ms == 0.0
    assert m.throttling_sample_activity == 0
    assert m.code_yellow_entered_s is None
    assert (m.total_code_yellow_entries, m.total_code_yellow_exits, m.total_code_red_entries) == (0, 0, 0)


def test_consecutive_nonzero_enters_on_tenth_sample() -> None:
    m = make(system_throttle_sample_size_s=10, code_yellow_entry_latency_ms=20)
    for t in range(1, 10):
        assert m.observe(float(t), 50.0) == []
        assert m.state is ThrottleState.NORMAL
        assert m.throttling_sample_activity == t
    alarms = m.observe(10.0, 50.0)
    assert len(alarms) == 1
    assert alarms[0].name == CODE_YELLOW_ENTRY
    assert alarms[0].t_s == 10.0
    assert m.state is ThrottleState.CODE_YELLOW
    assert m.code_yellow_entered_s == 10.0
    assert m.total_code_yellow_entries == 1


def test_entry_time_is_the_now_passed_in() -> None:
    m = make(system_throttle_sample_size_s=3)
    assert m.observe(100.5, 50.0) == []
    assert m.observe(101.5, 50.0) == []
    alarms = m.observe(102.5, 50.0)
    assert [(a.name, a.t_s) for a in alarms] == [(CODE_YELLOW_ENTRY, 102.5)]
    assert m.code_yellow_entered_s == 102.5


def test_zero_sample_resets_the_nonzero_run() -> None:
    m = make(system_throttle_sample_size_s=10, code_yellow_entry_latency_ms=20)
    assert feed(m, [50.0] * 5, start_s=1) == []
    assert m.throttling_sample_activity == 5
    assert m.observe(6.0, 0.0) == []
    assert m.throttling_sample_activity == 0
    # Nine more non-zero samples: window mean is (9 * 50 + 0) / 10 = 45 > 20, but the run is only 9.
    for i in range(9):
        assert m.observe(7.0 + i, 50.0) == []
        assert m.throttling_sample_activity == i + 1
    assert m.average_expected_delay_ms == 45.0
    assert m.state is ThrottleState.NORMAL
    alarms = m.observe(16.0, 50.0)
    assert [(a.name, a.t_s) for a in alarms] == [(CODE_YELLOW_ENTRY, 16.0)]


@pytest.mark.parametrize(
    ("n", "samples", "expected_activity"),
    [
        (3, [1, 1, 1, 1, 1], [1, 2, 3, 3, 3]),
        (3, [1, 0, 1, 1, 0, 0, 1], [1, 0, 1, 2, 0, 0, 1]),
        (1, [5, 5, 0, 5], [1, 1, 0, 1]),
        (5, [0, 0, 0.001, 2, 3, 4, 5, 6, 0], [0, 0, 1, 2, 3, 4, 5, 5, 0]),
    ],
)
def test_throttling_sample_activity(n: int, samples: list[float], expected_activity: list[int]) -> None:
    # Entry latency 500 with tiny samples: the machine stays Normal and only the counter moves.
    m = make(system_throttle_sample_size_s=n, code_yellow_entry_latency_ms=500)
    activity = []
    for t, sample in enumerate(samples, start=1):
        assert m.observe(float(t), float(sample)) == []
        activity.append(m.throttling_sample_activity)
    assert activity == expected_activity


# --------------------------------------------------------------------------------------------------
# Entry: rolling
# --------------------------------------------------------------------------------------------------


def test_rolling_enters_with_zeros_inside_the_window() -> None:
    samples = [100.0, 0.0, 100.0, 0.0, 100.0]  # mean 60 > 20 once 5 samples exist
    rolling = make(system_throttle_sample_size_s=5, sample_rule="rolling")
    alarms = feed(rolling, samples)
    assert [(a.name, a.t_s) for a in alarms] == [(CODE_YELLOW_ENTRY, 5.0)]
    assert alarms[0].params["ExpectedAverageDelay"] == 60.0
    # The default rule does not enter on the same samples: the zeros break the run.
    consecutive = make(system_throttle_sample_size_s=5)
    assert feed(consecutive, samples) == []
    assert consecutive.state is ThrottleState.NORMAL


def test_rolling_does_not_enter_before_n_samples_exist() -> None:
    m = make(system_throttle_sample_size_s=5, sample_rule="rolling")
    assert feed(m, [400.0] * 4) == []
    assert m.state is ThrottleState.NORMAL
    assert m.average_expected_delay_ms == 400.0
    assert [a.name for a in m.observe(5.0, 400.0)] == [CODE_YELLOW_ENTRY]


def test_rolling_mean_includes_zeros() -> None:
    # 5 samples [30, 0, 0, 0, 30]: mean 12 <= 20, no entry; the window then slides to mean 24 > 20.
    m = make(system_throttle_sample_size_s=5, sample_rule="rolling")
    assert feed(m, [30.0, 0.0, 0.0, 0.0, 30.0]) == []
    assert m.average_expected_delay_ms == 12.0
    assert m.observe(6.0, 60.0) == []  # [0, 0, 0, 30, 60] -> 18
    alarms = m.observe(7.0, 30.0)  # [0, 0, 30, 60, 30] -> 24
    assert [(a.name, a.t_s) for a in alarms] == [(CODE_YELLOW_ENTRY, 7.0)]


# --------------------------------------------------------------------------------------------------
# "Greater than" at entry
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["consecutive_nonzero", "rolling"])
@pytest.mark.parametrize(
    ("samples", "enters"),
    [
        ([20.0] * 10, False),  # mean exactly 20: not greater
        ([10.0, 30.0] * 5, False),  # mean exactly 20
        ([20.0] * 9 + [20.5], True),  # mean 20.05
        ([21.0] * 10, True),
        ([19.99] * 10, False),
    ],
)
def test_entry_needs_mean_strictly_greater(rule: str, samples: list[float], enters: bool) -> None:
    m = make(system_throttle_sample_size_s=10, code_yellow_entry_latency_ms=20, sample_rule=rule)
    alarms = feed(m, samples)
    assert [a.name for a in alarms] == ([CODE_YELLOW_ENTRY] if enters else [])
    assert m.state is (ThrottleState.CODE_YELLOW if enters else ThrottleState.NORMAL)


@pytest.mark.parametrize("entry_ms", [5, 17, 333, 500])
def test_mean_equal_to_entry_never_enters(entry_ms: int) -> None:
    m = make(system_throttle_sample_size_s=4, code_yellow_entry_latency_ms=entry_ms,
             code_yellow_duration_min=NEVER_CODE_RED_MIN)
    assert feed(m, [float(entry_ms)] * 50) == []
    assert m.state is ThrottleState.NORMAL


# --------------------------------------------------------------------------------------------------
# Exit
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry_ms", "exit_pct", "exit_ms"),
    [(20, 40, 8.0), (15, 40, 6.0), (500, 70, 350.0), (5, 20, 1.0)],
)
def test_exit_when_mean_exactly_equals_exit_latency(entry_ms: int, exit_pct: int, exit_ms: float) -> None:
    m = make(code_yellow_entry_latency_ms=entry_ms, code_yellow_exit_latency_pct=exit_pct,
             system_throttle_sample_size_s=10)
    entered_s = enter_code_yellow(m, level_ms=entry_ms * 3.0)
    # Nine samples at the exit latency: the window still holds one high sample, mean above exit.
    for i in range(1, 10):
        assert m.observe(entered_s + i, exit_ms) == []
        assert m.average_expected_delay_ms > exit_ms
        assert m.state is ThrottleState.CODE_YELLOW
    alarms = m.observe(entered_s + 10, exit_ms)
    assert m.average_expected_delay_ms == exit_ms
    assert [(a.name, a.t_s) for a in alarms] == [(CODE_YELLOW_EXIT, entered_s + 10)]
    assert alarms[0].params["TimeSpentInCodeYellow"] == 10.0
    assert m.state is ThrottleState.NORMAL
    assert m.code_yellow_entered_s is None
    assert m.total_code_yellow_exits == 1


@pytest.mark.parametrize(
    ("entry_ms", "exit_pct", "n"),
    [
        (20, 40, 10),
        (15, 40, 10),
        (15, 23, 3),  # exit latency 3.45
        (5, 27, 3),  # exit latency 1.35
        (15, 24, 13),  # exit latency 3.6
    ],
)
def test_constant_samples_at_exit_latency_exit(entry_ms: int, exit_pct: int, n: int) -> None:
    """N samples each exactly equal to the exit latency average to the exit latency: "at or below" exits.

    Fails for some parameter sets: the mean computed as fsum(window) / N rounds to one ulp above the
    exit latency (e.g. 3 x 3.45 -> 10.350000000000001 -> 3.4500000000000006), so the node stays in
    Code Yellow although every sample equals the exit threshold.
    """
    m = make(code_yellow_entry_latency_ms=entry_ms, code_yellow_exit_latency_pct=exit_pct,
             system_throttle_sample_size_s=n, code_yellow_duration_min=NEVER_CODE_RED_MIN)
    exit_ms = m.params.exit_latency_ms
    entered_s = enter_code_yellow(m, level_ms=entry_ms * 3.0)
    alarms = feed(m, [exit_ms] * n, start_s=entered_s + 1)
    assert [(a.name, a.t_s) for a in alarms] == [(CODE_YELLOW_EXIT, entered_s + n)]
    assert m.state is ThrottleState.NORMAL


def test_no_exit_slightly_above_exit_latency() -> None:
    m = make(code_yellow_duration_min=NEVER_CODE_RED_MIN)  # 20 ms / 40 % -> exit at 8.0
    enter_code_yellow(m)
    assert feed(m, [8.01] * 200, start_s=11) == []
    assert m.average_expected_delay_ms == pytest.approx(8.01)
    assert m.state is ThrottleState.CODE_YELLOW
    assert m.total_code_yellow_exits == 0


def test_hysteresis_stays_yellow_between_exit_and_entry() -> None:
    # Below the entry latency but above the exit latency: no exit.
    m = make(code_yellow_duration_min=NEVER_CODE_RED_MIN)
    enter_code_yellow(m)
    assert feed(m, [15.0] * 100, start_s=11) == []
    assert m.state is ThrottleState.CODE_YELLOW


def test_exit_uses_window_mean_including_zeros() -> None:
    # consecutive_nonzero only governs entry; exit reads the plain mean of the last N samples.
    m = make(system_throttle_sample_size_s=10)  # entry 20, exit 8.0
    entered_s = enter_code_yellow(m, level_ms=30.0)
    # After k zeros the mean is 30 * (10 - k) / 10: 9.0 at k = 7 (stay), 6.0 at k = 8 (exit).
    for k in range(1, 8):
        assert m.observe(entered_s + k, 0.0) == []
    alarms = m.observe(entered_s + 8, 0.0)
    assert [a.name for a in alarms] == [CODE_YELLOW_EXIT]
    assert alarms[0].params["ExpectedAverageDelay"] == 6.0
    assert alarms[0].params["TimeSpentInCodeYellow"] == 8.0


def test_exit_alarm_time_spent_in_code_yellow() -> None:
    m = make(system_throttle_sample_size_s=2, code_yellow_duration_min=NEVER_CODE_RED_MIN)
    alarms = feed(m, [50.0, 50.0], start_s=3.5)  # samples at 3.5 and 4.5
    assert [(a.name, a.t_s) for a in alarms] == [(CODE_YELLOW_ENTRY, 4.5)]
    assert m.code_yellow_entered_s == 4.5
    assert feed(m, [50.0] * 30, start_s=5.5) == []  # t = 5.5..34.5
    # t = 35.5: window [50, 0], mean 25 > 8; t = 36.5: window [0, 0], mean 0 -> exit.
    alarms = feed(m, [0.0, 0.0], start_s=35.5)
    assert [(a.name, a.t_s) for a in alarms] == [(CODE_YELLOW_EXIT, 36.5)]
    assert alarms[0].params["TimeSpentInCodeYellow"] == 36.5 - 4.5


# --------------------------------------------------------------------------------------------------
# Code Red
# --------------------------------------------------------------------------------------------------


def test_code_red_after_exactly_the_duration_then_holds_until_reset() -> None:
    m = make(code_yellow_duration_min=1, system_throttle_sample_size_s=10)
    assert enter_code_yellow(m) == 10.0
    for t in range(11, 70):
        assert m.observe(float(t), 100.0) == [], t
    assert m.state is ThrottleState.CODE_YELLOW
    alarms = m.observe(70.0, 100.0)
    assert [(a.name, a.t_s) for a in alarms] == [(CODE_RED_ENTRY, 70.0)]
    red = alarms[0]
    assert red.params["TimeSpentInCodeYellow"] == 60.0
    assert red.params["CodeYellowDuration"] == 1
    assert set(red.params) == COMMON_ALARM_KEYS | {"TimeSpentInCodeYellow", "CodeYellowDuration"}
    assert m.state is ThrottleState.CODE_RED
    assert m.total_code_red_entries == 1

    # Code Red holds: whatever the samples, nothing happens.
    for t, sample in enumerate([100.0, 0.0, 0.0, 0.0, 1.0, 0.0] * 5, start=71):
        assert m.observe(float(t), sample) == []
        assert m.state is ThrottleState.CODE_RED
    assert (m.total_code_yellow_entries, m.total_code_yellow_exits, m.total_code_red_entries) == (1, 0, 1)

    m.reset()
    assert m.state is ThrottleState.NORMAL
    assert m.average_expected_delay_ms == 0.0
    assert m.throttling_sample_activity == 0
    assert m.code_yellow_entered_s is None
    assert (m.total_code_yellow_entries, m.total_code_yellow_exits, m.total_code_red_entries) == (1, 0, 1)

    # The window really is empty: nine high samples are not enough to re-enter, the tenth is.
    assert feed(m, [100.0] * 9, start_s=200) == []
    alarms = m.observe(209.0, 100.0)
    assert [(a.name, a.t_s) for a in alarms] == [(CODE_YELLOW_ENTRY, 209.0)]
    assert alarms[0].params["TotalCodeYellowEntry"] == 2
    assert m.total_code_yellow_entries == 2


@pytest.mark.parametrize("duration_min", [1, 2, 7, 30])
def test_code_red_exactly_at_duration(duration_min: int) -> None:
    m = make(code_yellow_duration_min=duration_min, system_throttle_sample_size_s=5)
    entered_s = enter_code_yellow(m)
    red_s = entered_s + duration_min * 60
    assert feed(m, [100.0] * int(red_s - entered_s - 1), start_s=entered_s + 1) == []
    assert m.state is ThrottleState.CODE_YELLOW
    alarms = m.observe(red_s, 100.0)
    assert [(a.name, a.t_s) for a in alarms] == [(CODE_RED_ENTRY, red_s)]
    assert alarms[0].params["CodeYellowDuration"] == duration_min


def test_exit_is_checked_before_code_red() -> None:
    m = make(code_yellow_duration_min=1, system_throttle_sample_size_s=10)  # exit latency 8.0
    assert enter_code_yellow(m) == 10.0
    assert feed(m, [100.0] * 50, start_s=11) == []  # t = 11..60
    assert feed(m, [8.0] * 9, start_s=61) == []  # t = 61..69: window still holds a 100
    assert m.state is ThrottleState.CODE_YELLOW
    alarms = m.observe(70.0, 8.0)  # duration reached and mean exactly 8.0
    assert [(a.name, a.t_s) for a in alarms] == [(CODE_YELLOW_EXIT, 70.0)]
    assert alarms[0].params["TimeSpentInCodeYellow"] == 60.0
    assert m.state is ThrottleState.NORMAL
    assert m.total_code_red_entries == 0


def test_code_red_when_mean_just_above_exit_at_duration() -> None:
    # Control for the test above: same schedule with 8.01 goes Code Red.
    m = make(code_yellow_duration_min=1, system_throttle_sample_size_s=10)
    enter_code_yellow(m)
    feed(m, [100.0] * 50, start_s=11)
    assert feed(m, [8.01] * 9, start_s=61) == []
    assert [a.name for a in m.observe(70.0, 8.01)] == [CODE_RED_ENTRY]


def test_code_yellow_clock_restarts_after_exit() -> None:
    # Leaving and re-entering Code Yellow starts the duration afresh.
    m = make(code_yellow_duration_min=1, system_throttle_sample_size_s=2)
    alarms = feed(m, [100.0, 100.0], start_s=1)  # enter at 2
    alarms += feed(m, [100.0] * 38, start_s=3)  # t = 3..40
    alarms += feed(m, [0.0, 0.0], start_s=41)  # exit at 42 (mean 0)
    alarms += feed(m, [100.0, 100.0], start_s=43)  # re-enter at 44
    alarms += feed(m, [100.0] * 58, start_s=45)  # t = 45..102: 58 s in Code Yellow, no Code Red
    assert [(a.name, a.t_s) for a in alarms] == [
        (CODE_YELLOW_ENTRY, 2.0),
        (CODE_YELLOW_EXIT, 42.0),
        (CODE_YELLOW_ENTRY, 44.0),
    ]
    assert m.observe(103.0, 100.0) == []  # 59 s since the second entry (101 s since the first)
    assert [(a.name, a.t_s) for a in m.observe(104.0, 100.0)] == [(CODE_RED_ENTRY, 104.0)]


def test_99999_never_goes_code_red() -> None:
    m = make(code_yellow_duration_min=NEVER_CODE_RED_MIN, system_throttle_sample_size_s=10)
    enter_code_yellow(m)
    hours = 3
    assert feed(m, [400.0] * (hours * 3600), start_s=11) == []
    assert m.state is ThrottleState.CODE_YELLOW
    assert m.total_code_red_entries == 0


@pytest.mark.parametrize("rule", ["consecutive_nonzero", "rolling"])
def test_sample_size_zero_disables_throttling(rule: str) -> None:
    m = make(system_throttle_sample_size_s=0, sample_rule=rule, code_yellow_duration_min=1)
    samples = [0.0, 1000.0, 1e9, 0.0, 500.0, 5.0] * 200
    for t, sample in enumerate(samples, start=1):
        assert m.observe(float(t), sample) == []
        assert m.state is ThrottleState.NORMAL
    assert m.average_expected_delay_ms == 0.0
    assert m.throttling_sample_activity == 0
    assert (m.total_code_yellow_entries, m.total_code_yellow_exits, m.total_code_red_entries) == (0, 0, 0)


# --------------------------------------------------------------------------------------------------
# Alarm contents
# --------------------------------------------------------------------------------------------------


def test_alarm_parameters() -> None:
    m = make(code_yellow_entry_latency_ms=15, code_yellow_exit_latency_pct=40,
             system_throttle_sample_size_s=4, code_yellow_duration_min=1)
    alarms = feed(m, [10.0, 20.0, 30.0, 40.0])  # mean 25 > 15
    assert len(alarms) == 1
    entry = alarms[0]
    assert entry.name == CODE_YELLOW_ENTRY
    assert dict(entry.params) == {
        "ExpectedAverageDelay": 25.0,
        "EntryLatency": 15,
        "ExitLatency": 6.0,
        "SampleSize": 4,
        "TotalCodeYellowEntry": 1,
        "TotalCodeYellowExit": 0,
    }

    # Windows: t=5 [20, 30, 40, 0] 22.5; t=6 [30, 40, 0, 0] 17.5; t=7 [40, 0, 0, 0] 10;
    # t=8 [0, 0, 0, 24] 6.0 = exit latency -> exit.
    exit_alarms = feed(m, [0.0, 0.0, 0.0, 24.0], start_s=5)
    assert [(a.name, a.t_s) for a in exit_alarms] == [(CODE_YELLOW_EXIT, 8.0)]
    assert dict(exit_alarms[0].params) == {
        "ExpectedAverageDelay": 6.0,
        "EntryLatency": 15,
        "ExitLatency": 6.0,
        "SampleSize": 4,
        "TotalCodeYellowEntry": 1,
        "TotalCodeYellowExit": 1,
        "TimeSpentInCodeYellow": 4.0,
    }


def test_alarm_totals_across_cycles() -> None:
    m = make(system_throttle_sample_size_s=1, code_yellow_duration_min=1)
    alarms = feed(m, [100.0, 0.0, 100.0, 0.0, 100.0])
    assert [a.name for a in alarms] == [CODE_YELLOW_ENTRY, CODE_YELLOW_EXIT] * 2 + [CODE_YELLOW_ENTRY]
    totals = [(a.params["TotalCodeYellowEntry"], a.params["TotalCodeYellowExit"]) for a in alarms]
    assert totals == [(1, 0), (1, 1), (2, 1), (2, 2), (3, 2)]
    assert all(a.params["SampleSize"] == 1 for a in alarms)
    assert all(a.params["ExitLatency"] == 8.0 and a.params["EntryLatency"] == 20 for a in alarms)
    assert [a.params["ExpectedAverageDelay"] for a in alarms] == [100.0, 0.0, 100.0, 0.0, 100.0]
    assert set(alarms[0].params) == COMMON_ALARM_KEYS
    assert set(alarms[1].params) == COMMON_ALARM_KEYS | {"TimeSpentInCodeYellow"}


# --------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sample_size", [0, 1, 10])
@pytest.mark.parametrize("bad", [-1.0, -1e-9, -math.inf])
def test_negative_sample_raises(sample_size: int, bad: float) -> None:
    m = make(system_throttle_sample_size_s=sample_size)
    m.observe(1.0, 3.0)
    avg_before = m.average_expected_delay_ms
    with pytest.raises(ValueError, match="negative"):
        m.observe(2.0, bad)
    assert m.average_expected_delay_ms == avg_before


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_sample_raises(bad: float) -> None:
    m = make()
    m.observe(1.0, 3.0)
    with pytest.raises(ValueError, match="finite"):
        m.observe(2.0, bad)
    assert m.average_expected_delay_ms == 3.0


def test_negative_sample_raises_in_code_red() -> None:
    m = make(system_throttle_sample_size_s=1, code_yellow_duration_min=1)
    feed(m, [100.0] * 62)
    assert m.state is ThrottleState.CODE_RED
    with pytest.raises(ValueError):
        m.observe(100.0, -5.0)


# --------------------------------------------------------------------------------------------------
# Cisco's ambiguous rules as switches: sample_rule batch, exit_rule, delay_resolution (DOMAIN.md 3)
# --------------------------------------------------------------------------------------------------


def entry_sample(rule: str, samples: Sequence[float], **overrides: Any) -> int | None:
    """The 1-based index of the sample at which Code Yellow is entered, or None."""
    m = make(sample_rule=rule, **overrides)
    for index, sample in enumerate(samples, start=1):
        if [a.name for a in m.observe(float(index), sample)] == [CODE_YELLOW_ENTRY]:
            return index
    return None


@pytest.mark.parametrize(("rule", "entered_at"), [("consecutive_nonzero", 11), ("rolling", 11), ("batch", 20)])
def test_the_worked_example_enters_at_the_11th_or_the_20th_sample(rule: str, entered_at: int) -> None:
    # N = 10, entry 20 ms: ten samples of 15 ms, then ten of 100 ms.  The 11th sample makes the sliding
    # window 23.5 ms; under `batch` the first batch (mean 15) was judged at the 10th and the second is
    # complete, and judged (mean 100), only at the 20th.
    samples = [15.0] * 10 + [100.0] * 10
    assert entry_sample(rule, samples, system_throttle_sample_size_s=10, code_yellow_entry_latency_ms=20) \
        == entered_at


@pytest.mark.parametrize(
    ("n", "samples", "expected_activity"),
    [
        (3, [1, 1, 1, 1, 1, 1, 1], [1, 2, 3, 1, 2, 3, 1]),  # a judged batch starts again at 1
        (3, [1, 1, 0, 1, 1, 1, 0], [1, 2, 0, 1, 2, 3, 0]),  # a zero resets a batch in progress
        (1, [5, 5, 0, 5], [1, 1, 0, 1]),
        (4, [0, 2, 2, 2, 2, 0, 0, 2], [0, 1, 2, 3, 4, 0, 0, 1]),
    ],
)
def test_batch_throttling_sample_activity(n: int, samples: list[float], expected_activity: list[int]) -> None:
    m = make(system_throttle_sample_size_s=n, code_yellow_entry_latency_ms=500, sample_rule="batch")
    activity = []
    for t, sample in enumerate(samples, start=1):
        assert m.observe(float(t), float(sample)) == []
        activity.append(m.throttling_sample_activity)
    assert activity == expected_activity


def test_batch_judges_only_complete_batches() -> None:
    # Five 10 ms samples (a batch, mean 10: no), then 100 ms: the window passes 20 ms at once, but the
    # next batch is complete only five samples later.
    samples = [10.0] * 5 + [100.0] * 5
    assert entry_sample("batch", samples, system_throttle_sample_size_s=5) == 10
    assert entry_sample("consecutive_nonzero", samples, system_throttle_sample_size_s=5) == 6
    # A zero sample in the second batch starts it again: five more non-zero samples are needed.
    assert entry_sample("batch", [10.0] * 5 + [100.0] * 3 + [0.0] + [100.0] * 5,
                        system_throttle_sample_size_s=5) == 14


def test_batch_leaves_code_yellow_on_the_sliding_average() -> None:
    # The exit is judged every second on the window, also under `batch`: an idle node (zero samples,
    # which never complete a batch) still leaves Code Yellow once the window's mean is down to 8 ms.
    m = make(system_throttle_sample_size_s=5, sample_rule="batch")
    assert [a.name for a in feed(m, [100.0] * 5)] == [CODE_YELLOW_ENTRY]
    alarms = feed(m, [0.0] * 5, start_s=6)
    assert [(a.name, a.t_s) for a in alarms] == [(CODE_YELLOW_EXIT, 10.0)]
    assert m.throttling_sample_activity == 0


def yellow_at(exit_rule: str, window_ms: float, resolution: str = "exact", **overrides: Any) -> bool:
    """Does a node in Code Yellow stay there once its whole window (N = 5) is `window_ms`?"""
    m = make(system_throttle_sample_size_s=5, exit_rule=exit_rule, delay_resolution=resolution, **overrides)
    feed(m, [500.0] * 5)
    assert m.state is ThrottleState.CODE_YELLOW
    feed(m, [window_ms] * 5, start_s=6)
    return m.state is ThrottleState.CODE_YELLOW


@pytest.mark.parametrize(
    ("exit_rule", "window_ms", "stays"),
    [
        ("at_or_below", 8.0, False),  # exactly 20 ms x 40 %: "drops to 8 msec or lower" exits
        ("below", 8.0, True),  # "less than 8": an average of exactly 8.0 does not exit
        ("below", 7.999, False),
        ("at_or_below", 8.001, True),
        ("below", 8.001, True),
    ],
)
def test_exit_rule_at_an_average_of_exactly_the_exit_latency(exit_rule: str, window_ms: float, stays: bool) -> None:
    assert yellow_at(exit_rule, window_ms) is stays


def test_below_leaves_with_the_same_window_mean_one_sample_later() -> None:
    # Exit samples 8, 8, 8, 8, 8 then 7: `at_or_below` leaves when the window is all 8s, `below` when the
    # 7 comes in.  (Window N = 5 after 5 samples of 500.)
    def exit_time(rule: str) -> float | None:
        m = make(system_throttle_sample_size_s=5, exit_rule=rule)
        alarms = feed(m, [500.0] * 5 + [8.0] * 5 + [7.0])
        return next((a.t_s for a in alarms if a.name == CODE_YELLOW_EXIT), None)

    assert (exit_time("at_or_below"), exit_time("below")) == (10.0, 11.0)


@pytest.mark.parametrize(
    ("window_ms", "resolution", "enters"),
    [
        (20.5, "exact", True),
        (20.5, "whole_ms", False),  # 20.5 rounds down to 20: not above 20
        (20.999, "whole_ms", False),
        (21.0, "whole_ms", True),
        (20.0, "exact", False),
    ],
)
def test_whole_ms_entry_needs_a_whole_ms_above(window_ms: float, resolution: str, enters: bool) -> None:
    m = make(system_throttle_sample_size_s=5, delay_resolution=resolution)
    feed(m, [window_ms] * 5)
    assert (m.state is ThrottleState.CODE_YELLOW) is enters
    assert m.average_expected_delay_ms == window_ms  # the counter keeps the exact mean


@pytest.mark.parametrize(
    ("entry_ms", "exit_pct", "exit_rule", "window_ms", "stays"),
    [
        (20, 40, "at_or_below", 8.99, False),  # 8 whole ms <= 8
        (20, 40, "at_or_below", 9.0, True),
        (20, 40, "below", 8.0, True),  # 8 whole ms is not below 8
        (20, 40, "below", 7.99, False),
        (21, 45, "at_or_below", 9.99, False),  # exit latency 9.45 ms, 9 in whole ms
        (21, 45, "at_or_below", 10.0, True),
        (21, 45, "below", 9.2, True),  # exact: 9.2 < 9.45 would exit; whole: 9 is not below 9
        (21, 45, "below", 8.99, False),
    ],
)
def test_whole_ms_exit_rounds_the_mean_and_the_exit_latency_down(
    entry_ms: int, exit_pct: int, exit_rule: str, window_ms: float, stays: bool
) -> None:
    assert yellow_at(exit_rule, window_ms, "whole_ms", code_yellow_entry_latency_ms=entry_ms,
                     code_yellow_exit_latency_pct=exit_pct) is stays


def test_exact_exit_latency_with_a_fraction() -> None:
    # 21 ms x 45 % = 9.45 ms, compared exactly by default.
    assert not yellow_at("at_or_below", 9.45, code_yellow_entry_latency_ms=21, code_yellow_exit_latency_pct=45)
    assert yellow_at("below", 9.45, code_yellow_entry_latency_ms=21, code_yellow_exit_latency_pct=45)
    assert not yellow_at("below", 9.2, code_yellow_entry_latency_ms=21, code_yellow_exit_latency_pct=45)


@pytest.mark.parametrize(("field", "value"), [("sample_rule", "window"), ("exit_rule", "less_than"),
                                              ("delay_resolution", "whole"), ("exit_rule", 1)])
def test_unknown_readings_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=field):
        ThrottlingParams(**{field: value})


# --------------------------------------------------------------------------------------------------
# Property tests against an independent reference
# --------------------------------------------------------------------------------------------------

params_strategy = st.builds(
    ThrottlingParams,
    code_yellow_entry_latency_ms=st.one_of(st.sampled_from([5, 20, 500]), st.integers(5, 500)),
    code_yellow_exit_latency_pct=st.integers(20, 70),
    code_yellow_duration_min=st.sampled_from([1, 2, NEVER_CODE_RED_MIN]),
    system_throttle_sample_size_s=st.one_of(st.integers(0, 6), st.integers(0, 60)),
    sample_rule=st.sampled_from(["consecutive_nonzero", "rolling", "batch"]),
    exit_rule=st.sampled_from(["at_or_below", "below"]),
    delay_resolution=st.sampled_from(["exact", "whole_ms"]),
)

@st.composite
def params_and_samples(draw: st.DrawFn) -> tuple[ThrottlingParams, list[float]]:
    """Random params and a sample sequence scaled to them: runs of one value, with zeros, values
    around the entry latency and values exactly at the entry and exit thresholds."""
    params = draw(params_strategy)
    entry = float(params.code_yellow_entry_latency_ms)
    whole_exit = float(params.code_yellow_entry_latency_ms * params.code_yellow_exit_latency_pct // 100)
    value = st.one_of(
        st.just(0.0),
        st.sampled_from([entry, params.exit_latency_ms, entry + 0.5, entry + 1, entry * 3, whole_exit,
                         whole_exit + 1, whole_exit + 0.999]),
        st.floats(min_value=0.0, max_value=entry * 3, allow_nan=False),
        st.integers(0, 1000).map(float),
    )
    segments = draw(st.lists(st.tuples(value, st.integers(1, 90)), max_size=12))
    samples = [v for v, count in segments for _ in range(count)]
    return params, samples[:400]


def reference_batch_count(params: ThrottlingParams, history: Sequence[float]) -> int:
    """The `batch` rule's ThrottlingSampleActivity after the history, counted from the start: a zero
    sample sets it to 0; a non-zero one adds 1, or starts a new batch at 1 after a judged (full) one."""
    n = params.system_throttle_sample_size_s
    count = 0
    for sample in history:
        count = 0 if sample == 0 else (1 if count == n else count + 1)
    return count


def reference_activity(params: ThrottlingParams, history: Sequence[float]) -> int:
    """ThrottlingSampleActivity after the history: the batch count, or the trailing non-zero run capped at N."""
    if params.sample_rule == "batch":
        return reference_batch_count(params, history)
    n = params.system_throttle_sample_size_s
    trailing = list(itertools.takewhile(lambda sample: sample != 0, reversed(history)))
    return min(len(trailing), n)


def judged(params: ThrottlingParams, history: Sequence[float]) -> Fraction:
    """The mean the comparisons read: exact, or rounded down to whole ms under `whole_ms`."""
    mean = exact_mean(params, history)
    return Fraction(math.floor(mean)) if params.delay_resolution == "whole_ms" else mean


def reference_exit_latency(params: ThrottlingParams) -> Fraction:
    if params.delay_resolution == "whole_ms":
        return Fraction(params.code_yellow_entry_latency_ms * params.code_yellow_exit_latency_pct // 100)
    return Fraction(params.exit_latency_ms)


def reference_exits(params: ThrottlingParams, history: Sequence[float]) -> bool:
    """Independent exit rule: does the history take a node in Code Yellow back to Normal?"""
    mean, exit_ms = judged(params, history), reference_exit_latency(params)
    return mean < exit_ms if params.exit_rule == "below" else mean <= exit_ms


def reference_entry(params: ThrottlingParams, history: Sequence[float]) -> bool:
    """Independent entry rule: does the history (samples fed so far) put a Normal node in Code Yellow?"""
    n = params.system_throttle_sample_size_s
    if n == 0 or len(history) < n:
        return False
    last = history[-n:]
    if params.sample_rule == "consecutive_nonzero" and any(s == 0 for s in last):
        return False
    if params.sample_rule == "batch" and reference_batch_count(params, history) != n:
        return False
    return judged(params, history) > params.code_yellow_entry_latency_ms


def exact_mean(params: ThrottlingParams, history: Sequence[float]) -> Fraction:
    """The window's mean as an exact rational (no rounding at all): what threshold comparisons mean."""
    n = params.system_throttle_sample_size_s
    last = history[-n:] if n else []
    return sum(map(Fraction, last), Fraction(0)) / len(last) if last else Fraction(0)


def reference_mean(params: ThrottlingParams, history: Sequence[float]) -> float:
    n = params.system_throttle_sample_size_s
    last = history[-n:] if n else []
    return math.fsum(last) / len(last) if last else 0.0


@settings(max_examples=200, deadline=None)
@given(case=params_and_samples())
def test_property_against_reference(case: tuple[ThrottlingParams, list[float]]) -> None:
    params, samples = case
    m = ThrottleStateMachine(params)
    n = params.system_throttle_sample_size_s
    history: list[float] = []  # samples the machine took (none while in Code Red)
    open_entry = False  # a CodeYellowEntry without its exit / Code Red yet
    entered_s: float | None = None
    for t, sample in enumerate(samples, start=1):
        now_s = float(t)
        before = m.state
        alarms = m.observe(now_s, sample)
        if before is not ThrottleState.CODE_RED:
            history.append(sample)

        # (a) state is one of the three
        assert m.state in (ThrottleState.NORMAL, ThrottleState.CODE_YELLOW, ThrottleState.CODE_RED)
        assert len(alarms) <= 1

        # (c) the average is the mean of the last N samples fed
        assert m.average_expected_delay_ms == reference_mean(params, history)
        if n and before is not ThrottleState.CODE_RED:
            assert m.throttling_sample_activity == reference_activity(params, history)

        # (b) alarms alternate properly
        for alarm in alarms:
            assert alarm.t_s == now_s
            if alarm.name == CODE_YELLOW_ENTRY:
                assert not open_entry
                open_entry = True
            else:
                assert alarm.name in (CODE_YELLOW_EXIT, CODE_RED_ENTRY)
                assert open_entry
                open_entry = False
        open_count = m.total_code_yellow_entries - m.total_code_yellow_exits - m.total_code_red_entries
        assert open_count in (0, 1)
        assert (open_count == 1) is (m.state is ThrottleState.CODE_YELLOW)
        assert open_count == int(open_entry)

        # (d) transitions match the reference rules
        mean = reference_mean(params, history)
        if before is ThrottleState.NORMAL:
            should_enter = reference_entry(params, history)
            assert (m.state is ThrottleState.CODE_YELLOW) is should_enter
            assert [a.name for a in alarms] == ([CODE_YELLOW_ENTRY] if should_enter else [])
            if should_enter:
                entered_s = now_s
        elif before is ThrottleState.CODE_YELLOW:
            assert entered_s is not None
            duration_s = params.code_yellow_duration_s
            if reference_exits(params, history):
                expected = (ThrottleState.NORMAL, [CODE_YELLOW_EXIT])
            elif duration_s is not None and now_s - entered_s >= duration_s:
                expected = (ThrottleState.CODE_RED, [CODE_RED_ENTRY])
            else:
                expected = (ThrottleState.CODE_YELLOW, [])
            assert (m.state, [a.name for a in alarms]) == expected
            for alarm in alarms:
                assert alarm.params["TimeSpentInCodeYellow"] == now_s - entered_s
        else:
            assert alarms == []
            assert m.state is ThrottleState.CODE_RED

        for alarm in alarms:
            event(alarm.name)

        # (e) sample size 0: nothing ever happens
        if n == 0:
            assert alarms == []
            assert m.state is ThrottleState.NORMAL
            assert m.average_expected_delay_ms == 0.0
            assert m.throttling_sample_activity == 0

        for alarm in alarms:
            assert alarm.params["ExpectedAverageDelay"] == mean
            assert alarm.params["SampleSize"] == n
            assert alarm.params["TotalCodeYellowEntry"] == m.total_code_yellow_entries
            assert alarm.params["TotalCodeYellowExit"] == m.total_code_yellow_exits


@settings(max_examples=200, deadline=None)
@given(
    params=st.builds(
        ThrottlingParams,
        code_yellow_entry_latency_ms=st.integers(5, 500),
        code_yellow_duration_min=st.sampled_from([1, NEVER_CODE_RED_MIN]),
        system_throttle_sample_size_s=st.just(0),
        sample_rule=st.sampled_from(["consecutive_nonzero", "rolling"]),
    ),
    samples=st.lists(st.floats(min_value=0.0, allow_nan=False, allow_infinity=False), max_size=300),
)
def test_property_sample_size_zero_never_throttles(params: ThrottlingParams, samples: list[float]) -> None:
    m = ThrottleStateMachine(params)
    for t, sample in enumerate(samples, start=1):
        assert m.observe(float(t), sample) == []
    assert m.state is ThrottleState.NORMAL
    assert m.total_code_yellow_entries == 0
    assert m.average_expected_delay_ms == 0.0


def test_a_window_exactly_at_the_exit_latency_exits_however_it_rounds() -> None:
    # Found by hypothesis: 403 ms x 22 % = 88.66 ms; three samples of 88.66 average to 88.66000000000001
    # in floating point, yet their mean is exactly the exit latency, so the node must leave Code Yellow.
    params = ThrottlingParams(code_yellow_entry_latency_ms=403, code_yellow_exit_latency_pct=22,
                              system_throttle_sample_size_s=3)
    machine = ThrottleStateMachine(params)
    names = [[alarm.name for alarm in machine.observe(float(t), sample)]
             for t, sample in enumerate([404.0, 404.0, 404.0, 88.66, 88.66, 88.66], start=1)]
    assert names == [[], [], [CODE_YELLOW_ENTRY], [], [], [CODE_YELLOW_EXIT]]
