"""SCCP device throttling (Cisco's Max Events Allowed): a pure per-device sliding-window limiter.

Every event a device causes is recorded with an explicit `now_s`.  A device that has sent **more than**
`max_events_allowed` events in the last `window_s` seconds (the half-open window ``(now_s - window_s,
now_s]``) is throttled: `record` returns the number of events in the window, and the device's history
is cleared (CUCM closes its connection; it starts afresh when it re-registers).  0 disables the check.
No SimPy, no clock reads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

SCCP_WINDOW_S = 5.0
"""Cisco's period for Max Events Allowed: five seconds."""


class SccpEventLimiter:
    """Counts each device's events over a sliding `window_s` and reports when one exceeds the limit."""

    def __init__(self, max_events_allowed: int, window_s: float = SCCP_WINDOW_S) -> None:
        if max_events_allowed < 0:
            raise ValueError(f"max_events_allowed must be >= 0, got {max_events_allowed}")
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.max_events_allowed = max_events_allowed
        self.window_s = window_s
        self._event_times_s: dict[Hashable, deque[float]] = {}

    @property
    def enabled(self) -> bool:
        """False when Max Events Allowed is 0."""
        return self.max_events_allowed > 0

    def events_in_window(self, device: Hashable, now_s: float) -> int:
        """How many events `device` sent in ``(now_s - window_s, now_s]``."""
        times = self._event_times_s.get(device)
        if times is None:
            return 0
        self._expire(times, now_s)
        return len(times)

    def record(self, device: Hashable, now_s: float) -> int | None:
        """Record one event of `device` at `now_s` (s).

        Returns None while the device is within its allowance; when this event takes it past
        `max_events_allowed`, returns the events counted in the window (Cisco's Total Events
        Received) and forgets the device's history.
        """
        if not self.enabled:
            return None
        times = self._event_times_s.setdefault(device, deque())
        if times and now_s < times[-1]:
            raise ValueError(f"time went backwards for device {device!r}: {now_s} < {times[-1]}")
        times.append(now_s)
        self._expire(times, now_s)
        if len(times) > self.max_events_allowed:
            total = len(times)
            del self._event_times_s[device]
            return total
        return None

    def forget(self, device: Hashable) -> None:
        """Drop a device's history (it unregistered)."""
        self._event_times_s.pop(device, None)

    def _expire(self, times: deque[float], now_s: float) -> None:
        oldest_kept_s = now_s - self.window_s
        while times and times[0] <= oldest_kept_s:
            times.popleft()
