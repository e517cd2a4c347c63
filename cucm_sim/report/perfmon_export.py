r"""A run as Perfmon counters, in the PDH-CSV layout (`perfmon.pdh_csv`): what `export --format perfmon` writes.

Samples are taken every `interval_s` seconds of simulated time from 0 (1 s as Windows Perfmon, 15 s as
RTMT's logging), stamped with local time from a start time in a time zone.  Each counter's value at a
sample time t (whole seconds), from the run's per-second timeline (row k is the second (k, k+1]):
- per CUCM node, host `\\NODE` (a one-node run's host name is an option), object "Cisco CallManager System
  Performance": AverageExpectedDelay and ThrottlingSampleActivity as the sampler had them at t;
  QueueSignalsPresent 1-High..4-Lowest, the queues at t; QueueSignalsProcessed 1-High..4-Lowest and Total,
  the signals handled in the second before t (a 15-s sample reads one second in fifteen, as Perfmon does);
  CallsRejectedDueToThrottling, SkinnyDevicesThrottled and TotalCodeYellowEntry, running totals;
  CodeYellowEntryExit and CodeRedEntryExit, 1 from the entry alarm to the exit (Code Red ends at
  CallManagerOnline); object "Cisco CallManager": CallsAttempted (running total) and CallManagerHeartBeat,
  one more for each second the service was up, so it stands still while it restarts.  The running totals
  run from the start of the run: the simulated restart does not reset them (a real one does; a reader of
  recordings must allow for that, `scenario.replay` does).
- per host: `Processor(N)\DPC Rate` and `% DPC Time` as sampled in the second before t, and `Network
  Interface(NIC)\Packets Received Discarded`, a running total.
At t = 0 every counter reads 0.  QueueSignalsProcessed per queue comes from signals_by_queue.csv; a run
directory written before it existed has none, and those four columns are left blank, Perfmon's mark of a
counter it could not read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np

from cucm_sim.measures.timeline import QUEUE_PROCESSED_COLUMNS
from cucm_sim.perfmon import counters as names
from cucm_sim.perfmon.counters import CounterPath
from cucm_sim.perfmon.pdh_csv import header_cell, pdh_csv_text
from cucm_sim.report.formats import csv_cell
from cucm_sim.rules.alarms import (
    CALLMANAGER_ONLINE,
    CODE_RED_ENTRY,
    CODE_YELLOW_ENTRY,
    CODE_YELLOW_EXIT,
    Alarm,
)
from cucm_sim.rules.throttling import ThrottleState
from cucm_sim.run.simulation import RunResult

DEFAULT_START: Final = datetime(2026, 1, 1, 0, 0, 0)
"""The wall-clock time of simulated second 0 unless a start is given (fixed, so the same run gives the same
bytes)."""
DEFAULT_HOST: Final = "cucm"
"""A one-node run's host name unless one is given."""
NIC_INSTANCE: Final = "nic0"
DECIMALS: Final = 4
"""Decimal places of a counter's value, as timeline.csv has them: a run exported from its result directory
gives the same bytes as `run --perfmon`."""
MAX_INTERVAL_S: Final = 300
"""RTMT's longest polling interval (5-300 s; Perfmon's own is 1 s)."""


@dataclass(frozen=True)
class PerfmonOptions:
    """How to sample and stamp a run's counters."""

    interval_s: int = 1
    start: datetime = DEFAULT_START
    """Local wall-clock time of simulated second 0 (naive: in `zone`)."""
    zone: tzinfo = field(default_factory=lambda: ZoneInfo("UTC"))
    host: str = DEFAULT_HOST
    """The host name of a one-node run's counters (a cluster's are its nodes' names)."""
    typeperf_header: bool = False
    """Write the header's first cell as typeperf does, `(PDH-CSV 4.0)` alone, without zone and bias."""


def sample_times_s(duration_s: int, interval_s: int) -> np.ndarray:
    """The simulated seconds sampled: 0, interval, 2 x interval, ... up to the run's end."""
    return np.arange(0, duration_s + 1, interval_s, dtype=np.int64)


def perfmon_counters(result: RunResult, options: PerfmonOptions) -> list[tuple[CounterPath, np.ndarray]]:
    """Every counter of the run with its value at each second 0..duration_s (None-free; NaN = not read)."""
    columns: list[tuple[CounterPath, np.ndarray]] = []
    if result.nodes:
        for node in result.nodes:
            columns += node_counters(node.name, node.timeline, node.alarms)
    elif result.scenario.has_node:
        columns += node_counters(options.host, result.timeline, result.alarms)
    for host in result.scenario.hosts:
        columns += host_counters(host.name, host.processors, result.timeline)
    return columns


def perfmon_text(result: RunResult, options: PerfmonOptions) -> str:
    """perfmon.csv: the run's counters sampled every `options.interval_s` seconds (see the module doc)."""
    columns = perfmon_counters(result, options)
    times_s = sample_times_s(result.scenario.duration_s, options.interval_s)
    stamps = [_local(options, int(t)) for t in times_s]
    first = None if options.typeperf_header else options.start.replace(tzinfo=options.zone)
    cells = [[_cell(values[t]) for _, values in columns] for t in times_s]
    return pdh_csv_text(header_cell(None if first is None else options.zone, first), [p for p, _ in columns],
                        stamps, cells)


def _local(options: PerfmonOptions, t_s: int) -> datetime:
    """The local wall-clock time of simulated second `t_s`: the start plus `t_s` of real time, across any
    daylight-saving change."""
    start = options.start.replace(tzinfo=options.zone)
    return (start.astimezone(ZoneInfo("UTC")) + timedelta(seconds=t_s)).astimezone(options.zone).replace(tzinfo=None)


def _cell(value: float) -> str:
    """A counter's value: whole numbers as such, others to `DECIMALS` places, written as short as they read
    back (0.269, not 0.2690)."""
    if np.isnan(value):
        return ""
    value = round(float(value), DECIMALS)
    return csv_cell(int(value)) if value.is_integer() else csv_cell(value)


def node_counters(host: str, timeline: Mapping[str, np.ndarray],
                  alarms: Sequence[Alarm]) -> list[tuple[CounterPath, np.ndarray]]:
    """One CUCM node's counters (see the module doc), each with a value per second 0..duration."""
    system = names.SYSTEM_PERFORMANCE

    def path(counter: str, obj: str = system) -> CounterPath:
        return CounterPath(host, obj, counter)

    def at_ends(column: np.ndarray) -> np.ndarray:
        """A per-row column as the value at each second 0..duration (0 at second 0)."""
        return np.concatenate(([0.0], np.asarray(column, dtype=float)))

    def running(column: np.ndarray) -> np.ndarray:
        return at_ends(np.cumsum(np.asarray(column, dtype=float)))

    duration_s = len(timeline["t_s"])
    yellow, red, entries = _alarm_levels(alarms, duration_s)
    up = np.asarray(timeline["state"]) != ThrottleState.CODE_RED.value
    queues = ("queue_high", "queue_normal", "queue_low", "queue_lowest")
    by_queue = [at_ends(timeline[name]) if name in timeline else np.full(duration_s + 1, np.nan)
                for name in QUEUE_PROCESSED_COLUMNS]
    return [
        (path(names.AVERAGE_EXPECTED_DELAY), at_ends(timeline["average_expected_delay_ms"])),
        (path(names.CALLS_REJECTED), running(timeline["calls_rejected"])),
        (path(names.CODE_RED_ENTRY_EXIT), red),
        (path(names.CODE_YELLOW_ENTRY_EXIT), yellow),
        *((path(names.queue_signals_present(q)), at_ends(timeline[queues[q]])) for q in range(4)),
        *((path(names.queue_signals_processed(q)), by_queue[q]) for q in range(4)),
        (path(names.queue_signals_processed(None)), at_ends(timeline["signals_processed"])),
        (path(names.SKINNY_DEVICES_THROTTLED), at_ends(timeline["skinny_devices_throttled"])),
        (path(names.THROTTLING_SAMPLE_ACTIVITY), at_ends(timeline["throttling_sample_activity"])),
        (path(names.TOTAL_CODE_YELLOW_ENTRY), entries),
        (path(names.CALLS_ATTEMPTED, names.CALLMANAGER), running(timeline["calls_attempted"])),
        (path(names.HEARTBEAT, names.CALLMANAGER), running(up.astype(float))),
    ]


def _alarm_levels(alarms: Sequence[Alarm], duration_s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CodeYellowEntryExit, CodeRedEntryExit and TotalCodeYellowEntry at each second 0..duration: an alarm
    at t_s counts from the first whole second at or after it."""
    yellow, red, entries = (np.zeros(duration_s + 1) for _ in range(3))
    for alarm in alarms:
        first = min(int(np.ceil(alarm.t_s)), duration_s + 1)
        if alarm.name == CODE_YELLOW_ENTRY:
            yellow[first:] = 1.0
            entries[first:] += 1.0
        elif alarm.name == CODE_YELLOW_EXIT:
            yellow[first:] = 0.0
        elif alarm.name == CODE_RED_ENTRY:
            yellow[first:] = 0.0
            red[first:] = 1.0
        elif alarm.name == CALLMANAGER_ONLINE:
            red[first:] = 0.0
    return yellow, red, entries


def host_counters(host: str, processors: int, timeline: Mapping[str, np.ndarray]
                  ) -> list[tuple[CounterPath, np.ndarray]]:
    """One Windows host's counters: DPC Rate and % DPC Time per processor, packets discarded by its NIC."""
    columns = []
    for k in range(processors):
        for counter, column in ((names.DPC_RATE, "dpc_rate"), (names.DPC_TIME, "dpc_time_pct")):
            values = np.concatenate(([0.0], np.asarray(timeline[f"{host}.cpu{k}.{column}"], dtype=float)))
            columns.append((CounterPath(host, names.PROCESSOR, counter, str(k)), values))
    dropped = np.concatenate(([0.0], np.cumsum(np.asarray(timeline[f"{host}.packets_dropped"], dtype=float))))
    columns.append((CounterPath(host, names.NETWORK_INTERFACE, names.PACKETS_RECEIVED_DISCARDED, NIC_INSTANCE),
                    dropped))
    return columns
