"""The end of every simulated second, the same for both engines: sample, throttling, alarms, timeline row.

The expected-delay sample is the mean wait of the signals that started service in the second, else the
age of the oldest signal still waiting, else 0.  It feeds the throttling state machine while the node is
up (while the service restarts its counters read 0).  The alarms raised get Cisco's parameters: the
queue depths, and for an exit or Code Red the calls rejected in that Code Yellow episode.  The timeline
row is written from readings the engine takes after it has acted on the alarms, so the second that
raises Code Red shows the restart's effect.  Pure: the engine hands in its readings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cucm_sim.alarms import CODE_YELLOW_ENTRY, Alarm
from cucm_sim.throttling import ThrottleState, ThrottleStateMachine
from cucm_sim.timeline import TIMELINE_COLUMNS


def expected_delay_ms(starts: int, wait_s: float, oldest_waiting_s: float | None, now_s: float) -> float:
    """The sample for the second ending at `now_s`: `starts` signals began service after waiting `wait_s`
    in all; `oldest_waiting_s` is when the longest-waiting signal arrived (None: none waits)."""
    if starts:
        return float(wait_s / starts * 1000.0)
    if oldest_waiting_s is None:
        return 0.0
    return (now_s - oldest_waiting_s) * 1000.0


@dataclass(frozen=True)
class Sample:
    """What taking one second's sample gave: the alarms raised (with their parameters) and the window."""

    alarms: list[Alarm]
    average_ms: float
    activity: int


@dataclass(frozen=True)
class Readings:
    """The node at a second's end, read after the engine acted on the alarms; counts are per second."""

    depths: Sequence[int]
    """Signals waiting per queue, highest first."""
    signals_processed: int
    calls_attempted: int
    calls_rejected: int
    skinny_devices_throttled: int
    registered_devices: int
    capacity_factor: float


class SecondEnds:
    """Takes each second's sample and writes its timeline row; keeps the run's maximum average."""

    def __init__(self, throttle: ThrottleStateMachine, duration_s: int) -> None:
        self.throttle = throttle
        self.timeline: dict[str, np.ndarray] = {
            name: np.zeros(duration_s, dtype=np.float64) for name in TIMELINE_COLUMNS if name != "state"
        }
        self.states = np.empty(duration_s, dtype="<U10")
        self.max_average_expected_delay_ms = 0.0
        self._rejected_at_code_yellow_entry = 0

    def sample(
        self, now_s: float, delay_ms: float, up: bool, depths: Sequence[int], calls_rejected_total: int
    ) -> Sample:
        """Feed the second's sample to the state machine (if the node is up); the alarms it raised."""
        if not up:
            return Sample([], 0.0, 0)
        raised = self.throttle.observe(now_s, delay_ms)
        average_ms = self.throttle.average_expected_delay_ms
        self.max_average_expected_delay_ms = max(self.max_average_expected_delay_ms, average_ms)
        alarms = []
        for alarm in raised:
            high, normal, low, lowest = depths
            extra: dict[str, float | int | str] = {
                "HighPriorityQueueDepth": high,
                "NormalPriorityQueueDepth": normal,
                "LowPriorityQueueDepth": low,
                "LowestPriorityQueueDepth": lowest,
            }
            if alarm.name == CODE_YELLOW_ENTRY:
                self._rejected_at_code_yellow_entry = calls_rejected_total
            else:  # calls rejected during this Code Yellow episode
                extra["NumberOfCallsRejectedDueToCallThrottling"] = (
                    calls_rejected_total - self._rejected_at_code_yellow_entry
                )
            alarms.append(alarm.with_params(**extra))
        return Sample(alarms, average_ms, self.throttle.throttling_sample_activity)

    def write_row(
        self, row: int, state_during_second: ThrottleState, delay_ms: float, sample: Sample, now: Readings
    ) -> None:
        """Row `row` (the second ending at row + 1) of the timeline."""
        timeline = self.timeline
        self.states[row] = state_during_second.value
        timeline["t_s"][row] = float(row + 1)
        timeline["expected_delay_ms"][row] = delay_ms
        timeline["average_expected_delay_ms"][row] = sample.average_ms
        timeline["throttling_sample_activity"][row] = sample.activity
        high, normal, low, lowest = now.depths
        timeline["queue_high"][row] = high
        timeline["queue_normal"][row] = normal
        timeline["queue_low"][row] = low
        timeline["queue_lowest"][row] = lowest
        timeline["signals_processed"][row] = now.signals_processed
        timeline["calls_attempted"][row] = now.calls_attempted
        timeline["calls_rejected"][row] = now.calls_rejected
        timeline["skinny_devices_throttled"][row] = now.skinny_devices_throttled
        timeline["registered_devices"][row] = now.registered_devices
        timeline["capacity_factor"][row] = now.capacity_factor
