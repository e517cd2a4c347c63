"""Tests of SCCP device throttling (Max Events Allowed): DOMAIN.md section 5, `cucm_sim.rules.sccp`."""

from __future__ import annotations

from collections.abc import Hashable

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from cucm_sim.rules.sccp import SCCP_WINDOW_S, SccpEventLimiter


def record_all(limiter: SccpEventLimiter, device: Hashable, times: list[float]) -> list[int | None]:
    return [limiter.record(device, t) for t in times]


def test_window_is_cisco_five_seconds() -> None:
    assert SCCP_WINDOW_S == 5.0
    limiter = SccpEventLimiter(10)
    assert limiter.window_s == 5.0
    assert limiter.max_events_allowed == 10
    assert limiter.enabled is True


@pytest.mark.parametrize("max_events", [1, 2, 3, 10, 2000, 5000])
def test_exactly_max_events_is_fine_one_more_throttles(max_events: int) -> None:
    limiter = SccpEventLimiter(max_events)
    # max_events events spread over [0, 4.5]: all inside one 5-second window.
    times = [4.5 * i / max_events for i in range(max_events)]
    assert record_all(limiter, "SEP001", times) == [None] * max_events
    assert limiter.events_in_window("SEP001", 4.5) == max_events
    assert limiter.record("SEP001", 4.5) == max_events + 1
    # The device's history is forgotten after the throttle.
    assert limiter.events_in_window("SEP001", 4.5) == 0


def test_all_events_at_the_same_instant() -> None:
    limiter = SccpEventLimiter(3)
    assert record_all(limiter, "dev", [7.0, 7.0, 7.0]) == [None, None, None]
    assert limiter.record("dev", 7.0) == 4


def test_event_exactly_window_old_is_outside() -> None:
    limiter = SccpEventLimiter(2)
    assert record_all(limiter, "dev", [0.0, 2.5]) == [None, None]
    # At now = 5.0 the event at 0.0 is exactly 5.0 s old: window (0.0, 5.0] holds 2.5 and 5.0 only.
    assert limiter.record("dev", 5.0) is None
    assert limiter.events_in_window("dev", 5.0) == 2
    # A third event in (0.0, 5.0] does throttle, counting 3.
    assert limiter.record("dev", 5.0) == 3


def test_event_just_inside_window_counts() -> None:
    limiter = SccpEventLimiter(2)
    assert record_all(limiter, "dev", [0.0, 2.5]) == [None, None]
    assert limiter.record("dev", 4.875) == 3  # 0.0 is 4.875 s old: still inside


def test_steady_rate_at_the_limit_never_throttles() -> None:
    # One event per second with limit 5: every window (t-5, t] holds exactly 5 events.
    limiter = SccpEventLimiter(5)
    assert record_all(limiter, "dev", [float(t) for t in range(1000)]) == [None] * 1000
    assert limiter.events_in_window("dev", 999.0) == 5
    # Two events per second with limit 5: the sixth event within 5 s throttles.
    fast = SccpEventLimiter(5)
    results = record_all(fast, "dev", [t * 0.5 for t in range(6)])
    assert results == [None] * 5 + [6]


@pytest.mark.parametrize(
    ("times", "now", "expected"),
    [
        ([1.0, 2.0, 3.0], 3.0, 3),
        ([1.0, 2.0, 3.0], 5.5, 3),
        ([1.0, 2.0, 3.0], 6.0, 2),  # 1.0 is exactly 5 s old
        ([1.0, 2.0, 3.0], 7.75, 1),
        ([1.0, 2.0, 3.0], 8.0, 0),
        ([1.0, 2.0, 3.0], 100.0, 0),
    ],
)
def test_events_in_window(times: list[float], now: float, expected: int) -> None:
    limiter = SccpEventLimiter(100)
    record_all(limiter, "dev", times)
    assert limiter.events_in_window("dev", now) == expected


def test_unknown_device_has_no_events() -> None:
    assert SccpEventLimiter(5).events_in_window("nobody", 3.0) == 0


def test_devices_are_counted_separately() -> None:
    limiter = SccpEventLimiter(2)
    devices: list[Hashable] = ["SEPA", "SEPB", ("SEP", 3), 4]
    for t in (1.0, 2.0):
        for device in devices:
            assert limiter.record(device, t) is None
    assert limiter.record("SEPA", 3.0) == 3
    assert limiter.events_in_window("SEPA", 3.0) == 0
    for device in devices[1:]:
        assert limiter.events_in_window(device, 3.0) == 2
    assert limiter.record(("SEP", 3), 3.0) == 3
    assert limiter.events_in_window("SEPB", 3.0) == 2


def test_after_throttle_device_starts_afresh() -> None:
    limiter = SccpEventLimiter(3)
    assert record_all(limiter, "dev", [0.0, 1.0, 2.0, 3.0]) == [None, None, None, 4]
    assert limiter.events_in_window("dev", 3.0) == 0
    # The old events are gone: three more at the same instant are within the allowance.
    assert record_all(limiter, "dev", [3.0, 3.0, 3.0]) == [None, None, None]
    assert limiter.record("dev", 3.5) == 4


def test_forget_drops_history() -> None:
    limiter = SccpEventLimiter(2)
    record_all(limiter, "dev", [1.0, 2.0])
    limiter.forget("dev")
    assert limiter.events_in_window("dev", 2.0) == 0
    assert record_all(limiter, "dev", [2.0, 2.0]) == [None, None]
    limiter.forget("never seen")  # no error


def test_zero_disables() -> None:
    limiter = SccpEventLimiter(0)
    assert limiter.enabled is False
    assert record_all(limiter, "dev", [0.0] * 10_000) == [None] * 10_000
    assert limiter.events_in_window("dev", 0.0) == 0


def test_custom_window() -> None:
    limiter = SccpEventLimiter(1, window_s=0.5)
    assert limiter.record("dev", 0.0) is None
    assert limiter.record("dev", 0.5) is None  # 0.0 is exactly 0.5 s old: outside
    assert limiter.record("dev", 0.75) == 2


@pytest.mark.parametrize(
    ("max_events", "window_s"),
    [(-1, 5.0), (-2000, 5.0), (10, 0.0), (10, -5.0), (0, 0.0)],
)
def test_invalid_construction(max_events: int, window_s: float) -> None:
    with pytest.raises(ValueError):
        SccpEventLimiter(max_events, window_s=window_s)


def test_time_going_backwards_raises() -> None:
    limiter = SccpEventLimiter(10)
    record_all(limiter, "dev", [1.0, 5.0, 5.0])  # equal times are fine
    with pytest.raises(ValueError, match="backwards"):
        limiter.record("dev", 4.999)
    # The rejected event was not recorded.
    assert limiter.events_in_window("dev", 5.0) == 3
    # Another device has its own clock.
    assert limiter.record("other", 0.0) is None


# --------------------------------------------------------------------------------------------------
# Property test against a brute-force count
# --------------------------------------------------------------------------------------------------

# Times are multiples of 1/8 s, exact in binary, so the brute force and the limiter agree on the boundary.
event_strategy = st.tuples(
    st.integers(0, 2),  # device
    # time step from the previous event: mostly short (0..0.5 s, bursts), sometimes up to 3 s
    st.one_of(st.integers(0, 4), st.integers(0, 4), st.integers(0, 24)).map(lambda k: k / 8),
)


@settings(max_examples=200, deadline=None)
@given(
    max_events=st.integers(1, 8),
    window_s=st.sampled_from([SCCP_WINDOW_S, SCCP_WINDOW_S, 1.0, 2.5]),
    events=st.lists(event_strategy, max_size=200),
)
def test_property_matches_brute_force(
    max_events: int, window_s: float, events: list[tuple[int, float]]
) -> None:
    limiter = SccpEventLimiter(max_events, window_s=window_s)
    history: dict[int, list[float]] = {0: [], 1: [], 2: []}  # events since the device's last throttle
    now = 0.0
    for device, step in events:
        now += step
        history[device].append(now)
        in_window = sum(1 for t in history[device] if now - window_s < t <= now)
        result = limiter.record(device, now)
        if in_window > max_events:
            event("throttled")
            assert result == max_events + 1
            assert result == in_window
            history[device] = []
        else:
            assert result is None
        for d, times in history.items():
            expected = sum(1 for t in times if now - window_s < t <= now)
            assert limiter.events_in_window(d, now) == expected
