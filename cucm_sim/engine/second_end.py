"""The end of every simulated second, the same for both engines: sample, throttling, alarms, timeline row.

The expected-delay sample is the mean wait of the signals that started service in the second, else the
age of the oldest signal still waiting, else 0.  It feeds the throttling state machine while the node is
up (while the service restarts its counters read 0).  The alarms raised get Cisco's parameters: the
queue depths, and for an exit or Code Red the calls rejected in that Code Yellow episode.  The timeline
row is written from readings the engine takes after it has acted on the alarms, so the second that
raises Code Red shows the restart's effect.  A backlog past the engine's `BacklogLimit` stops the run
there, with a `WorkLimitError` that says when, how large, the offered load against what the thread serves,
and what to change: a backlog that outgrows memory says nothing more about throttling.  Pure: the engine
hands in its readings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cucm_sim.errors import WorkLimitError
from cucm_sim.measures.timeline import QUEUE_PROCESSED_COLUMNS, TIMELINE_COLUMNS
from cucm_sim.rules.alarms import CODE_YELLOW_ENTRY, Alarm
from cucm_sim.rules.throttling import ThrottleState, ThrottleStateMachine


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
    processed_by_queue: Sequence[int]
    """`signals_processed` per queue, highest first."""


@dataclass(frozen=True)
class BacklogLimit:
    """How many signals the four queues may hold together before the run stops, and what the message needs."""

    max_queued_signals: int
    engine: str
    scenario: str
    """The scenario's name."""
    full_speed_per_s: float
    """Signals/s the thread serves at capacity factor 1 (1000 / mean service time in ms)."""
    queued_signal_bytes: float
    """Memory one queued signal takes in this engine (bytes)."""


class SecondEnds:
    """Takes each second's sample and writes its timeline row; keeps the run's maximum average."""

    def __init__(
        self, throttle: ThrottleStateMachine, duration_s: int, backlog_limit: BacklogLimit | None = None
    ) -> None:
        self.throttle = throttle
        self.backlog_limit = backlog_limit
        self.timeline: dict[str, np.ndarray] = {
            name: np.zeros(duration_s, dtype=np.float64)
            for name in (*TIMELINE_COLUMNS, *QUEUE_PROCESSED_COLUMNS) if name != "state"
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
        for name, processed in zip(QUEUE_PROCESSED_COLUMNS, now.processed_by_queue, strict=True):
            timeline[name][row] = processed
        if self.backlog_limit is not None and high + normal + low + lowest > self.backlog_limit.max_queued_signals:
            raise self._backlog_error(row)

    def _backlog_error(self, row: int) -> WorkLimitError:
        """The run stops at the end of row `row`: its queues passed the limit."""
        limit = self.backlog_limit
        assert limit is not None
        timeline = self.timeline
        queues = ("queue_high", "queue_normal", "queue_low", "queue_lowest")
        queued = int(sum(timeline[name][row] for name in queues))
        before = int(sum(timeline[name][row - 1] for name in queues)) if row else 0
        served = int(timeline["signals_processed"][row])
        factor = float(timeline["capacity_factor"][row])
        advice = "shorten duration_s, lower the load"
        if not self.throttle.params.throttling_enabled:
            advice += ", turn call throttling on (throttling.system_throttle_sample_size_s: 10)"
        return WorkLimitError([
            f"scenario {limit.scenario!r}: stopped at {row + 1:,} s simulated: {queued:,} signals wait in the "
            f"router's queues, past the {limit.engine} engine's limit of {limit.max_queued_signals:,} (about "
            f"{limit.max_queued_signals * limit.queued_signal_bytes / 2**30:.1f} GiB); in that second "
            f"{served + queued - before:,} signals arrived and the thread served {served:,} (its full speed: "
            f"{limit.full_speed_per_s * factor:,.0f}/s at capacity factor {factor:g}), so the backlog grows "
            f"without bound. To finish: {advice}, or split the run into shorter ones"
        ])
