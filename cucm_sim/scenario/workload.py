"""How much work a run or a sweep asks for, estimated before it starts, and the limits it must stay within.

Values inside every field's range can still ask for more than any machine has (10,000 phones at 100,000
events/s each; a million background signals/s with nothing to stop the backlog; a sweep of 99 million runs).
`estimate_run` says, from the scenario alone, how many signals a run will generate, how many in its busiest
second, the peak memory of the engine it names, its wall time and the backlog it builds; `check_run` and
`check_sweep` refuse what passes the limits below with a `WorkLimitError` (exit code 2) that names the fields
driving the estimate and the option that overrides it.  `MAX_QUEUED_SIGNALS` bounds the router's backlog
while a run goes: the engines stop the run (`second_end`) rather than let it grow into a MemoryError, and
`check_run` refuses at once a run whose backlog would pass it.  Should memory run out all the same, the
engines end the run with a `WorkLimitError` too (`out_of_memory`), never a MemoryError traceback.

How the estimate is made.  Time is cut into segments wherever a rate changes (a window's start or end, a
point of the call profile, the end of a cold start's registration storm); in each, every source's mean rate
is known: background and burst signals, keepalives (every device registered all the time), chatty-device
events (all of them: both engines generate a chatty phone's events while SCCP has closed it), call attempts
times max(signals_per_call, rejection_signals_per_call), and registration storms (a cold start; one more
per restart the overload can cause, see below; one re-registration per SCCP closure).  The signals are the
sum over segments: an upper-ish count, as if every call were accepted and every device registered.  A fluid
model (offered load against the thread's full speed times the capacity factor, per segment) gives the
backlog the run would build if nothing stopped it: an overload that lasts the sample window plus Code Yellow
Duration ends in Code Red (throttling on), which loses the backlog and brings one more registration storm.
A recording (`load.trace`) is read through `replay.recorded_load` and cut into at most `TRACE_PIECES` equal
pieces of the run: in each, its calls and signals count at their mean rate there (the recording's counts
over the piece), its busiest interval gives the peak, and its capacity factor its mean; so a recording's real
load, not a declared rate, is what is estimated and refused.

The costs per signal, per device, per call and per simulated second (`EngineCosts`) were measured on the
development machine (2 CPUs, AMD EPYC, Python 3.11, numpy 2.4): each kind of load alone, in a fresh process,
wall time and peak RSS (`getrusage`) against its signals, with service fast enough to keep the thread below
saturation, then checked on the library.  Each figure is at or near the largest measured for its kind, so the
estimate errs high: for the nine library scenarios it came to 0.9x-2.8x the measured wall time on the batched
engine and 0.95x-2.4x on the signal engine, above the measured peak RSS on both; for benchmarks/run.py's R1
and R3, 2.1x and 1.8x.  Chatty phones that SCCP keeps closing cost the batched engine far more per event
(0.5-8 us, the limiter's search), and so do calls beside work in other queues (a block a second): both are in
the costs.  The batched engine holds a whole block of arrivals at once (up to `SPAN_ROWS` seconds; fewer when
the load is so heavy that one block would pass `MAX_BLOCK_BYTES`, see `block_seconds`), so its memory follows
the busiest block; the signal engine holds one event per source, so its memory follows what it keeps per
device, per call and per queued signal.  Pure: no SimPy, nothing runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import numpy as np

from cucm_sim.errors import WorkLimitError
from cucm_sim.rules.priorities import PRIORITIES
from cucm_sim.rules.sccp import SCCP_WINDOW_S
from cucm_sim.scenario.cluster import DevicePool
from cucm_sim.scenario.hosts import DpcStorm
from cucm_sim.scenario.replay import RecordedLoad, recorded_load
from cucm_sim.scenario.schema import CallSurge, CpuSlowdown, Scenario, SignalBurst

GIB: Final = 2**30
MIB: Final = 2**20

MAX_RUN_MEMORY_BYTES: Final = 8 * GIB
"""The largest estimated peak memory a run may have (bytes): a third of the 24 GiB development machine, so
that two runs of a sweep, one per core, fit beside the rest of the system."""
MAX_RUN_WALL_S: Final = 3600.0
"""The longest estimated wall time a run may have (s)."""
MAX_SWEEP_RUNS: Final = 100_000
"""The most runs (points x replications) a sweep may make.  A sweep keeps about `SWEEP_BYTES_PER_RUN` for
each run until it ends (its job and scenario copy, then its row of runs.csv): 100,000 runs hold about 0.5 GiB."""
SWEEP_BYTES_PER_RUN: Final = 5_400
"""Measured: 1,550 bytes per job (key and scenario copy) and 3,870 per runs.csv row (53 cells), over 100,000
runs of a two-axis sweep of baseline.yaml."""
SWEEP_BYTES_PER_METRIC: Final = 73
"""Of those, one cell of a runs.csv row (3,870 / 53): what each metric a run has beyond a CUCM node's 46 adds
(a cluster has 50 more and 46 per node)."""
NODE_METRIC_COUNT: Final = 46
"""How many metrics a CUCM node has (`metrics.METRICS`; a test keeps them equal)."""
MAX_QUEUED_SIGNALS: Final[Mapping[str, int]] = {"batched": 50_000_000, "signal": 10_000_000}
"""Signals the four SDL queues may hold together before the run stops (per engine).  Measured per queued
signal: 18 bytes in the batched engine (arrival time and tag in numpy chunks), 104 in the signal engine (a
tuple in a deque): the limits keep the queues under 1 GiB (0.84 and 0.97 GiB).  Either is hours of the
thread's work at nominal speed; past it the run says nothing more about throttling.  A dict so a test can
lower it."""
ALLOW_LARGE: Final = "pass --allow-large to run it anyway"

TRACE_PIECES: Final = 256
"""A recording (`load.trace`) is estimated in at most this many equal pieces of the run: in each, its mean rate
(its counts over the piece) and its highest interval rate."""
SPAN_ROWS: Final = 8
"""Seconds the batched engine computes as one block while the throttling state holds (it is checked at every
second's end); `block_seconds` cuts it shorter under a heavy load.  Here, not in `engine.batched`, because
the estimate needs it."""
MAX_BLOCK_BYTES: Final = 512 * MIB
"""The memory one batched block may take at the estimated peak (bytes) before blocks are cut shorter."""


@dataclass(frozen=True)
class EngineCosts:
    """What one engine costs, measured (see the module doc): bytes and wall seconds per unit of work."""

    base_bytes: float
    """An idle run: the interpreter, numpy, SimPy, cucm_sim and the model."""
    bytes_per_simulated_s: float
    """The timeline's row and state (16 float64 columns, a 10-character state)."""
    wall_s_per_simulated_s: float
    wall_s_per_simulated_s_mixed: float
    """Batched: a second costs this much instead when calls or registrations share the thread with work in
    another queue (the general server and the slow path for chained follow-ons, a block a second)."""
    wall_s_per_call_mixed: float
    """Batched: a call attempt costs this much instead in that case."""
    bytes_per_device: float
    bytes_per_chatty_device: float
    bytes_per_call_in_progress: float
    bytes_per_queued_signal: float
    # Per signal held in one block (batched engine only; 0 for the signal engine).
    block_bytes_per_plain_signal: float
    block_bytes_per_device_event: float
    block_bytes_per_call: float
    block_bytes_per_call_signal: float
    block_bytes_per_registration_signal: float
    block_bytes_per_service_slot: float
    # Wall time.
    wall_s_per_plain_signal: float
    wall_s_per_keepalive: float
    wall_s_per_chatty_event: float
    wall_s_per_call: float
    wall_s_per_call_signal: float
    wall_s_per_registration: float
    wall_s_per_registration_signal: float
    wall_s_per_chatty_event_per_block_ratio: float
    """Batched, SCCP on: more per event for each time a device's events in one block exceed Max Events
    Allowed (the limiter's window search grows with them)."""
    wall_s_per_chatty_event_per_flagged_device: float
    """Batched, SCCP on: more per event for each device that can pass Max Events Allowed (each one's events
    are searched for in the whole SCCP window)."""


BATCHED_COSTS: Final = EngineCosts(
    # 47.5 MiB before the model is built, 58 MiB peak for an empty run.
    base_bytes=64 * MIB,
    # 864,000 simulated seconds of nothing: 48.5 s wall, 125 MiB: 56 us and 152 bytes a second.
    bytes_per_simulated_s=152, wall_s_per_simulated_s=60e-6,
    # The library's scenarios with calls beside high-priority background: 1.0-2.1 ms a simulated second
    # (baseline.yaml: 3,600 s in 6.2 s, 3,124 blocks); flash_crowd.yaml's surge: about 26 us a call.
    wall_s_per_simulated_s_mixed=2e-3, wall_s_per_call_mixed=30e-6,
    # 200,000 devices registering: 43 MiB when the storm is queued (timed events), 16 bytes at rest.
    bytes_per_device=250, bytes_per_chatty_device=0,
    # 60,000 calls held 1000 s: 15.8 MiB.
    bytes_per_call_in_progress=280,
    # 29.8 million queued signals (1e6/s, throttling off): 509 MiB at the end.
    bytes_per_queued_signal=18,
    # Peak RSS less the rest, over one block's signals: 1e6 background/s (one and two sources) 98-117;
    # keepalives of 200,000 devices every second 156; chatty events 85-148; calls 10,000/s x 2 and 1,000/s
    # x 200: 600 per attempt and 110 per signal; registration storms 500-545 per signal.
    block_bytes_per_plain_signal=120, block_bytes_per_device_event=160,
    block_bytes_per_call=600, block_bytes_per_call_signal=110, block_bytes_per_registration_signal=550,
    # Service draws read ahead over a block the thread could fill (registration slow paths): 28-75 bytes.
    block_bytes_per_service_slot=48,
    # 16 M background signals in 1.3-2.5 s; 3.2 M keepalives in 0.47 s; 160,882 calls x 2 / x 40 in
    # 0.48 / 1.67 s, 16,037 x 200 in 0.73 s; 20,000 registrations x 2 / x 40 signals in 1.31 / 3.36 s,
    # 200,000 x 10 in 20 s; chatty events, SCCP off 0.07 us, under the limit 0.24 us, else see below.
    wall_s_per_plain_signal=0.16e-6, wall_s_per_keepalive=0.15e-6, wall_s_per_chatty_event=0.25e-6,
    wall_s_per_call=3e-6, wall_s_per_call_signal=0.2e-6,
    wall_s_per_registration=80e-6, wall_s_per_registration_signal=3e-6,
    # Fitted to 1 x 100,000, 10 x 100,000, 100 x 10,000, 100 x 1,000 and 1,000 x 1,000 events/s (Max
    # Events Allowed 2000): 0.56-6.5 us per event, within 30 % (the 100 x 1,000 case: 60 % high).
    wall_s_per_chatty_event_per_block_ratio=0.0094e-6, wall_s_per_chatty_event_per_flagged_device=0.006e-6,
)

SIGNAL_COSTS: Final = EngineCosts(
    base_bytes=64 * MIB,
    # 86,400 simulated seconds of nothing: 0.52 s wall.
    bytes_per_simulated_s=152, wall_s_per_simulated_s=6e-6,
    wall_s_per_simulated_s_mixed=6e-6, wall_s_per_call_mixed=15e-6,
    # 100,000 devices: 1.05 KiB each (keepalive schedule, SCCP history); a registration storm 0.73 KiB more.
    bytes_per_device=1_900,
    # 1,000 chatty devices: 177 KiB each (a 4,096-variate buffer as a list, the limiter's window).
    bytes_per_chatty_device=181_000,
    # 60,000 calls held 1000 s: 1.1 KiB each (a pending timeout and its closures).
    bytes_per_call_in_progress=1_100,
    # 1.93 million queued signals: 192 MiB.
    bytes_per_queued_signal=104,
    block_bytes_per_plain_signal=0, block_bytes_per_device_event=0, block_bytes_per_call=0,
    block_bytes_per_call_signal=0, block_bytes_per_registration_signal=0, block_bytes_per_service_slot=0,
    # 500,000 background signals in 2.06 s; 500,000 keepalives in 2.6 s; chatty events 1.3-7.4 us; 10,176
    # calls x 2 / x 40 in 0.27 / 0.99 s; 20,000 registrations x 10 / x 40 in 1.04 / 3.29 s.  The library's
    # scenarios, a mix of all of these: 5.1-7.5 us per signal processed (R1 of benchmarks/run.py: 5.1 us).
    wall_s_per_plain_signal=5.5e-6, wall_s_per_keepalive=6e-6, wall_s_per_chatty_event=7.5e-6,
    wall_s_per_call=15e-6, wall_s_per_call_signal=6e-6,
    wall_s_per_registration=15e-6, wall_s_per_registration_signal=6e-6,
    wall_s_per_chatty_event_per_block_ratio=0.0, wall_s_per_chatty_event_per_flagged_device=0.0,
)

ENGINE_COSTS: Final[Mapping[str, EngineCosts]] = {"batched": BATCHED_COSTS, "signal": SIGNAL_COSTS}


@dataclass(frozen=True)
class Contribution:
    """One field's share of a run's estimate: what it asks for, in words, and its signals, bytes and seconds."""

    field: str
    """Where it is in the scenario, as a dotted path (`devices.chatty.0`)."""
    text: str
    """The values that make it large (`10,000 devices x 100,000 events/s`)."""
    signals: float
    memory_bytes: float
    wall_s: float

    def describe(self) -> str:
        """`field: text`, as messages name it."""
        return f"{self.field}: {self.text}"


@dataclass(frozen=True)
class RunEstimate:
    """What a run will ask for, estimated from its scenario (see the module doc for how)."""

    engine: str
    duration_s: int
    signals: float
    """SDL signals the engine will generate over the run (upper-ish: all calls accepted, all devices
    registered, a chatty phone's events counted while it is closed too)."""
    peak_signals_per_s: float
    """Signals generated in the busiest second (the mean rate then, registration storms included)."""
    peak_memory_bytes: float
    """The engine's peak memory (bytes): its base, the timeline, per device and call, the busiest block
    (batched), and the backlog the fluid model builds, up to `MAX_QUEUED_SIGNALS`."""
    wall_s: float
    """Wall time (s) on the development machine."""
    backlog_signals: float
    """The largest backlog of the fluid model (signals), before any bound: offered load above the thread's
    speed, lost only when an overload lasts long enough for Code Red."""
    backlog_limit_at_s: float | None
    """When the fluid backlog passes `MAX_QUEUED_SIGNALS` and the run would stop (s simulated); None: never."""
    offered_per_s: float
    """At `backlog_limit_at_s`: the signals offered per second ..."""
    served_per_s: float
    """... and what the thread serves per second (its speed then)."""
    block_s: int
    """Seconds per block of the batched engine at the busiest moment (`block_seconds`); 0 for the signal engine."""
    contributions: tuple[Contribution, ...]

    def drivers(self, key: str, share: float = 0.1, most: int = 2) -> tuple[Contribution, ...]:
        """The contributions that make up at least `share` of `key` ('signals', 'memory_bytes' or 'wall_s'),
        largest first (at most `most`)."""
        total = sum(getattr(part, key) for part in self.contributions)
        ranked = sorted(self.contributions, key=lambda part: -getattr(part, key))
        return tuple(part for part in ranked[:most] if total and getattr(part, key) >= share * total)


# ------------------------------------------------------------------ the scenario in segments
@dataclass(frozen=True)
class _Source:
    """One source of work: its field, its words, and its mean rate in each segment."""

    field: str
    text: str
    kind: str
    """plain, keepalive, chatty, calls or registration."""
    rate_per_s: np.ndarray
    peak_rate_per_s: np.ndarray
    """Per segment, the highest rate in it (calls follow a linear profile: its larger end)."""
    priority: str = "normal"
    devices: int = 0
    events_per_s: float = 0.0


@dataclass(frozen=True)
class _Segments:
    length_s: np.ndarray
    capacity_per_s: np.ndarray
    sources: list[_Source]


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:,.3g}"


def _segments(scenario: Scenario) -> _Segments:
    duration_s = float(scenario.duration_s)
    load, devices = scenario.load, scenario.devices
    cuts = {0.0, duration_s}
    windows: list[tuple[float, float]] = [
        (d.start_s, d.end_s) for d in scenario.disturbances] + [(g.start_s, g.end_s) for g in devices.chatty]
    for start_s, end_s in windows:
        cuts.update((min(start_s, duration_s), min(end_s, duration_s)))
    if load.calls_profile is not None:
        cuts.update(min(t_s, duration_s) for t_s, _ in load.calls_profile)
    cold_start = devices.count > 0 and not devices.registered_at_start
    storm_s = max(devices.registration_spread_s, 1.0)
    if cold_start:
        cuts.add(min(storm_s, duration_s))
    recorded = recorded_load(load.trace) if load.trace is not None else None
    if recorded is not None:
        pieces = min(TRACE_PIECES, max(1, math.ceil(duration_s / max(recorded.interval_s, 1e-3))))
        cuts.update(np.linspace(0.0, duration_s, pieces + 1).tolist())
    bounds = np.array(sorted(cuts))
    starts_s, ends_s = bounds[:-1], bounds[1:]
    length_s = ends_s - starts_s

    def windowed(start_s: float, end_s: float, value: float) -> np.ndarray:
        rate = np.zeros(len(bounds))
        first = int(np.searchsorted(bounds, min(start_s, duration_s)))
        last = int(np.searchsorted(bounds, min(end_s, duration_s)))
        rate[first] += value
        rate[last] -= value
        return np.cumsum(rate)[:-1]

    always = np.ones(len(length_s))
    sources: list[_Source] = []

    def add(field: str, text: str, kind: str, rate: np.ndarray, peak: np.ndarray | None = None,
            priority: str = "normal", count: int = 0, events_per_s: float = 0.0) -> None:
        sources.append(_Source(field, text, kind, rate, rate if peak is None else peak, priority, count,
                               events_per_s))

    for index, source in enumerate(load.background):
        add(f"load.background.{index}", f"{_number(source.signals_per_s)} signals/s", "plain",
            always * source.signals_per_s, priority=source.priority)
    for index, disturbance in enumerate(scenario.disturbances):
        if isinstance(disturbance, SignalBurst):
            add(f"disturbances.{index}",
                f"signal_burst {_number(disturbance.signals_per_s)} signals/s for "
                f"{_number(disturbance.end_s - disturbance.start_s)} s", "plain",
                windowed(disturbance.start_s, disturbance.end_s, disturbance.signals_per_s),
                priority=disturbance.priority)
    if devices.count:
        add("devices.count", f"{devices.count:,} devices, a keepalive every {_number(devices.keepalive_interval_s)} s",
            "keepalive", always * devices.count / devices.keepalive_interval_s, priority=devices.keepalive_priority)
    for index, group in enumerate(devices.chatty):
        add(f"devices.chatty.{index}", f"{group.count:,} devices x {_number(group.events_per_s)} events/s", "chatty",
            windowed(group.start_s, group.end_s, group.count * group.events_per_s),
            priority=group.priority, count=group.count, events_per_s=group.events_per_s)
    signals_per_call = max(load.signals_per_call, load.rejection_signals_per_call)
    if load.calls_profile is not None:
        times_s = [t_s for t_s, _ in load.calls_profile]
        rates = [rate for _, rate in load.calls_profile]
        at_start, at_end = np.interp(starts_s, times_s, rates), np.interp(ends_s, times_s, rates)
        add("load.calls_profile", f"up to {_number(max(rates))} calls/s x {signals_per_call} signals per call",
            "calls", (at_start + at_end) / 2, np.maximum(at_start, at_end))
    elif load.calls_per_s:
        add("load.calls_per_s", f"{_number(load.calls_per_s)} calls/s x {signals_per_call} signals per call",
            "calls", always * load.calls_per_s)
    if recorded is not None:
        _recorded_sources(recorded, starts_s, ends_s, signals_per_call, add)
    for index, disturbance in enumerate(scenario.disturbances):
        if isinstance(disturbance, CallSurge):
            add(f"disturbances.{index}",
                f"call_surge {_number(disturbance.calls_per_s)} calls/s x {signals_per_call} signals per call",
                "calls", windowed(disturbance.start_s, disturbance.end_s, disturbance.calls_per_s))
    if cold_start:
        add("devices.registered_at_start",
            f"false: {devices.count:,} devices x {devices.registration_signals} registration signals in "
            f"{_number(devices.registration_spread_s)} s", "registration",
            windowed(0.0, storm_s, devices.count / storm_s), priority="low")

    factor = np.full(len(length_s), math.log(scenario.node.capacity_factor))
    for disturbance in scenario.disturbances:
        if isinstance(disturbance, CpuSlowdown):
            factor += windowed(disturbance.start_s, disturbance.end_s, math.log(disturbance.capacity_factor))
    if recorded is not None and recorded.capacity is not None:  # the recorded factor's mean over each segment
        knots_s = np.append(recorded.capacity.starts_s, recorded.length_s)
        integral = np.concatenate(([0.0], np.cumsum(recorded.capacity.factors * np.diff(knots_s))))
        factor += np.log((np.interp(ends_s, knots_s, integral) - np.interp(starts_s, knots_s, integral)) / length_s)
    capacity_per_s = np.exp(factor) * 1000.0 / scenario.node.signal_service_time_ms.mean
    return _Segments(length_s, capacity_per_s, sources)


def _recorded_sources(recorded: RecordedLoad, starts_s: np.ndarray, ends_s: np.ndarray, signals_per_call: int,
                      add: Callable[..., None]) -> None:
    """A recording's calls and background as sources: per segment, the counts it holds there over its length,
    and the highest rate of an interval of the recording that overlaps it."""
    name = Path(recorded.source).name
    for counts, queue in [(recorded.calls, None), *recorded.background]:
        if counts is None:
            continue
        rate = (counts.cumulative_at(ends_s) - counts.cumulative_at(starts_s)) / (ends_s - starts_s)
        peak = counts.peak_rates_per_s(starts_s, ends_s)
        busiest = f"up to {_number(float(peak.max(initial=0.0)))}/s in an interval of {name}"
        if queue is None:
            add("load.trace.calls", f"{_number(float(rate.mean()))} calls/s on average ({busiest}) x "
                f"{signals_per_call} signals per call", "calls", rate, peak)
        else:
            add(f"load.trace.{counts.key.removesuffix('.counter')}", f"{_number(float(rate.mean()))} signals/s on "
                f"average ({busiest})", "plain", rate, peak, priority=PRIORITIES[queue])


def _full_speed_per_s(scenario: Scenario) -> float:
    """Signals/s the thread serves at the node's baseline capacity, with no slowdown."""
    return scenario.node.capacity_factor * 1000.0 / scenario.node.signal_service_time_ms.mean


def block_seconds(peak_block_bytes_per_s: float) -> int:
    """Seconds per batched block, at most SPAN_ROWS, so that one block stays under MAX_BLOCK_BYTES (at least 1)."""
    if peak_block_bytes_per_s * SPAN_ROWS <= MAX_BLOCK_BYTES:
        return SPAN_ROWS
    return max(1, min(SPAN_ROWS, math.floor(MAX_BLOCK_BYTES / peak_block_bytes_per_s)))


def out_of_memory(scenario: Scenario, now_s: float, error: MemoryError) -> WorkLimitError:
    """The error a run ends with when the machine had no more memory for it (at `now_s` simulated)."""
    estimate = estimate_run(scenario)
    drivers = "; ".join(part.describe() for part in estimate.drivers("memory_bytes"))
    return WorkLimitError([
        f"scenario {scenario.name!r}: the {scenario.engine} engine ran out of memory at {now_s:,.0f} s simulated "
        f"({' '.join(str(error).split()) or 'MemoryError'}); its estimate for this run was "
        f"{format_bytes(estimate.peak_memory_bytes)} at peak ({drivers}): lower the load, shorten duration_s or "
        "split the run"
    ])


def batched_block_seconds(scenario: Scenario) -> int:
    """Seconds per block the batched engine uses for `scenario` (its busiest moment decides)."""
    return estimate_run(scenario.model_copy(update={"engine": "batched"})).block_s


# ------------------------------------------------------------------ the estimate
def estimate_run(scenario: Scenario) -> RunEstimate:
    """The work `scenario` asks of the engine it names (`scenario.engine`); see the module doc for how, and
    `_cluster_estimate` for a cluster."""
    if scenario.cluster is not None:
        return _cluster_estimate(scenario)
    return _node_estimate(scenario)


def _node_estimate(scenario: Scenario) -> RunEstimate:
    """The estimate of one CUCM node (see the module doc)."""
    costs = ENGINE_COSTS[scenario.engine]
    segments = _segments(scenario)
    devices, load = scenario.devices, scenario.load
    duration_s = float(scenario.duration_s)
    length_s, capacity_per_s = segments.length_s, segments.capacity_per_s
    signals_per_call = max(load.signals_per_call, load.rejection_signals_per_call)
    limit = scenario.throttling.max_events_allowed
    registration = devices.registration_signals

    # The fluid model: the backlog nothing serves, and how long the node is overloaded.
    offered = np.zeros(len(length_s))
    for source in segments.sources:
        if source.kind == "calls":
            offered += source.rate_per_s * signals_per_call
        elif source.kind == "registration":
            offered += source.rate_per_s * registration
        elif source.kind == "chatty" and limit and source.events_per_s * SCCP_WINDOW_S > limit:
            cycle_s = limit / source.events_per_s + devices.throttled_reregister_delay_s
            offered += source.rate_per_s * min(1.0, limit / source.events_per_s / cycle_s)
        else:
            offered += source.rate_per_s
    throttling = scenario.throttling
    yellow_s = throttling.code_yellow_duration_s
    red_after_s = throttling.system_throttle_sample_size_s + yellow_s if (
        throttling.throttling_enabled and yellow_s is not None) else math.inf
    fluid = _fluid(length_s, offered, capacity_per_s, red_after_s, scenario.node.restart_duration_s,
                   MAX_QUEUED_SIGNALS[scenario.engine])
    backlog_signals, overloaded_s = fluid.peak_backlog, fluid.overloaded_s
    restarts = fluid.restarts if devices.count else 0
    storm_per_s = devices.count / max(devices.registration_spread_s, 1.0) if restarts else 0.0

    # The batched engine's busiest block.
    block_rate = np.zeros(len(length_s))  # bytes/s held by a block, per segment
    for source in segments.sources:
        block_rate += source.peak_rate_per_s * _block_bytes_per_signal(costs, source.kind, signals_per_call,
                                                                         registration)
    block_rate_peak = float(block_rate.max()) + storm_per_s * registration * costs.block_bytes_per_registration_signal
    block_s = block_seconds(block_rate_peak) if scenario.engine == "batched" else 0
    flagged_devices = sum(source.devices for source in segments.sources
                          if source.kind == "chatty" and limit and source.events_per_s * (
                              SCCP_WINDOW_S + 1 + SPAN_ROWS) > limit)

    # Calls or registrations beside work in another queue: the general server, a block a second (see
    # EngineCosts.wall_s_per_simulated_s_mixed).
    calls = any(source.kind == "calls" for source in segments.sources)
    chatty_closures = [source for source in segments.sources
                       if source.kind == "chatty" and limit and source.events_per_s * SCCP_WINDOW_S > limit]
    cold_start = any(source.kind == "registration" for source in segments.sources)
    registers = cold_start or bool(restarts) or bool(chatty_closures)
    other_queue = any(source.priority != "normal" for source in segments.sources)
    if calls and (other_queue or registers):
        mixed_s = duration_s
    elif registers:
        storms = (int(cold_start) + restarts) * (devices.registration_spread_s + 60.0)
        chatty_s = sum(float(((source.rate_per_s > 0) * length_s).sum()) for source in chatty_closures)
        mixed_s = min(duration_s, storms + chatty_s)
    else:
        mixed_s = 0.0
    per_call = costs.wall_s_per_call_mixed if mixed_s == duration_s and calls else costs.wall_s_per_call

    contributions: list[Contribution] = []
    peak_rate = np.zeros(len(length_s))
    total_signals = 0.0
    for source in segments.sources:
        rate, peak = source.rate_per_s, source.peak_rate_per_s
        block_bytes = block_s * float(peak.max()) * _block_bytes_per_signal(costs, source.kind, signals_per_call,
                                                                             registration)
        count = float((rate * length_s).sum())
        if source.kind == "plain":
            signals, memory, wall = count, block_bytes, count * costs.wall_s_per_plain_signal
            peak_rate += peak
        elif source.kind == "keepalive":
            signals, wall = count, count * costs.wall_s_per_keepalive
            memory = block_bytes + devices.count * costs.bytes_per_device
            peak_rate += peak
        elif source.kind == "chatty":
            per_event = costs.wall_s_per_chatty_event
            if limit and scenario.engine == "batched" and source.events_per_s * (SCCP_WINDOW_S + 1 + SPAN_ROWS) > limit:
                per_event += (costs.wall_s_per_chatty_event_per_block_ratio * source.events_per_s * max(block_s, 1)
                              / limit + costs.wall_s_per_chatty_event_per_flagged_device * flagged_devices)
            closures = 0.0
            if limit and source.events_per_s * SCCP_WINDOW_S > limit:
                cycle_s = limit / source.events_per_s + devices.throttled_reregister_delay_s
                closures = source.devices * float(((rate > 0) * length_s).sum()) / cycle_s
            signals = count + closures * registration
            memory = block_bytes + source.devices * costs.bytes_per_chatty_device
            wall = count * per_event + closures * (
                costs.wall_s_per_registration + registration * costs.wall_s_per_registration_signal)
            peak_rate += peak
        elif source.kind == "calls":
            holding_s = min(load.holding_time_s.mean, duration_s)
            signals = count * signals_per_call
            memory = block_bytes + float(peak.max()) * holding_s * costs.bytes_per_call_in_progress
            wall = count * (per_call + signals_per_call * costs.wall_s_per_call_signal)
            peak_rate += peak * signals_per_call
        else:  # a cold start's registration storm
            signals = count * registration
            memory = block_bytes
            wall = count * (costs.wall_s_per_registration + registration * costs.wall_s_per_registration_signal)
            peak_rate += peak * registration
        total_signals += signals
        contributions.append(Contribution(source.field, source.text, signals, memory, wall))
    if restarts:
        signals = restarts * devices.count * registration
        total_signals += signals
        contributions.append(Contribution(
            "node.restart_duration_s", f"{restarts} restart(s) after Code Red, {devices.count:,} devices x "
            f"{registration} registration signals each", signals,
            block_s * storm_per_s * registration * costs.block_bytes_per_registration_signal,
            restarts * devices.count * (costs.wall_s_per_registration
                                        + registration * costs.wall_s_per_registration_signal)))
    peak_signals_per_s = float(peak_rate.max()) + storm_per_s * registration if len(peak_rate) else 0.0

    queued = min(backlog_signals, MAX_QUEUED_SIGNALS[scenario.engine])
    if queued >= 1:
        contributions.append(Contribution(
            "duration_s", f"{scenario.duration_s:,} s with the offered load above the thread's speed for "
            f"{_number(overloaded_s)} s (a backlog of {_number(queued)} signals)", 0.0,
            queued * costs.bytes_per_queued_signal, 0.0))
    if block_s:
        most_jobs = block_rate_peak / costs.block_bytes_per_plain_signal * block_s + queued
        slots = block_s * _full_speed_per_s(scenario)
        slots = slots if devices.count else min(slots, most_jobs)
        contributions.append(Contribution(
            "node.signal_service_time_ms", f"mean {scenario.node.signal_service_time_ms.mean:g} ms "
            f"({_number(_full_speed_per_s(scenario))} services/s read ahead per block second)", 0.0,
            slots * costs.block_bytes_per_service_slot, 0.0))
    contributions.append(Contribution(
        "duration_s", f"{scenario.duration_s:,} s", 0.0, duration_s * costs.bytes_per_simulated_s,
        (duration_s - mixed_s) * costs.wall_s_per_simulated_s + mixed_s * costs.wall_s_per_simulated_s_mixed))
    memory = costs.base_bytes + sum(part.memory_bytes for part in contributions)
    wall = sum(part.wall_s for part in contributions)
    return RunEstimate(scenario.engine, scenario.duration_s, total_signals, peak_signals_per_s, memory, wall,
                       backlog_signals, fluid.limit_at_s, fluid.offered_per_s, fluid.served_per_s, block_s,
                       tuple(contributions))


# ------------------------------------------------------------------ a cluster
def _cluster_estimate(scenario: Scenario) -> RunEstimate:
    """The estimate of a cluster: the sum over its nodes of one node's estimate each, in one process.

    Each node's scenario (`Scenario.node_scenarios`) carries every phone of the cluster and the cluster's
    whole call rate, of which the node takes only the share of its registered phones.  So a node is estimated
    as carrying its primary pools' phones (their keepalives at their pools' intervals, their chatty phones, a
    cold start's storm) and their share of the calls (of `load.calls_per_s` or `calls_profile` and of every
    call surge), with its own background, overrides and disturbances.  Beside that, its device table holds
    every other phone of the cluster, whose keepalives, chatty events and calls it draws and drops
    (`_other_phones`).  Phones that fail over load a secondary for a while instead;
    the estimate does not know when a node fails, but each node's fluid model counts the registration storms
    of its own phones after a Code Red it predicts.  The engines share one process (one base), and a backlog
    passes `MAX_QUEUED_SIGNALS` when any node's does.  Contributions name the cluster's own fields
    (`devices.pools.0.count`, `cluster.nodes.1.node.capacity_factor`) and the nodes they are at.
    """
    assert scenario.cluster is not None
    costs = ENGINE_COSTS[scenario.engine]
    pools, phones = scenario.devices.pools, scenario.devices.phone_count
    estimates: list[tuple[str, RunEstimate]] = []
    contributions: dict[tuple[str, str], list[tuple[str, Contribution]]] = {}
    for k, (entry, node) in enumerate(zip(scenario.cluster.nodes, scenario.node_scenarios(), strict=True)):
        own = [(p, pool) for p, pool in enumerate(pools) if pool.cm_group[0] == entry.name]
        count = sum(pool.count for _, pool in own)
        share = count / phones if phones else 1.0 / len(scenario.cluster.nodes)
        kept = [index for index, d in enumerate(scenario.disturbances)  # as node_scenarios keeps them, in order
                if isinstance(d, CallSurge) or getattr(d, "node", None) in (entry.name, None)]
        assert len(kept) == len(node.disturbances)
        estimate = _node_estimate(_own_load(scenario, node, [pool for _, pool in own], share))
        fields = _cluster_fields(scenario, k, own, kept)
        parts = list(estimate.contributions)
        if phones > count:
            other_phones = _other_phones(scenario, node, [pool for _, pool in own], share)
            parts.append(other_phones)
            estimate = replace(estimate, peak_memory_bytes=estimate.peak_memory_bytes + other_phones.memory_bytes,
                               wall_s=estimate.wall_s + other_phones.wall_s)
        calls = {"load.calls_per_s", "load.calls_profile",
                 *(f"disturbances.{j}" for j, d in enumerate(node.disturbances) if isinstance(d, CallSurge))}
        for part in parts:
            field = fields.get(part.field, part.field)
            shared = part.field in calls and share < 1
            text = f"{part.text} (its phones' {share * 100:.0f} % of the calls)" if shared else part.text
            contributions.setdefault((field, text), []).append((entry.name, part))
        estimates.append((entry.name, estimate))
    limited = [estimate for _, estimate in estimates if estimate.backlog_limit_at_s is not None]
    first = min(limited, key=lambda estimate: estimate.backlog_limit_at_s or 0.0, default=None)
    return RunEstimate(
        scenario.engine, scenario.duration_s,
        signals=sum(estimate.signals for _, estimate in estimates),
        peak_signals_per_s=sum(estimate.peak_signals_per_s for _, estimate in estimates),
        peak_memory_bytes=costs.base_bytes + sum(estimate.peak_memory_bytes - costs.base_bytes
                                                 for _, estimate in estimates),
        wall_s=sum(estimate.wall_s for _, estimate in estimates),
        backlog_signals=max(estimate.backlog_signals for _, estimate in estimates),
        backlog_limit_at_s=None if first is None else first.backlog_limit_at_s,
        offered_per_s=0.0 if first is None else first.offered_per_s,
        served_per_s=0.0 if first is None else first.served_per_s,
        block_s=min(estimate.block_s for _, estimate in estimates),
        contributions=tuple(_merged(field, text, parts) for (field, text), parts in contributions.items()),
    )


def _own_load(scenario: Scenario, node: Scenario, own: list[DevicePool], share: float) -> Scenario:
    """A node's scenario (from `node_scenarios`) carrying only its primary pools' phones (`own`) and their
    `share` of the calls, for its estimate (not validated: a share of a rate may be under a field's minimum)."""
    count = sum(pool.count for pool in own)
    keepalives_per_s = sum(pool.count / (pool.keepalive_interval_s or scenario.devices.keepalive_interval_s)
                           for pool in own)
    load = node.load.model_copy(update={
        "calls_per_s": None if node.load.calls_per_s is None else node.load.calls_per_s * share,
        "calls_profile": None if node.load.calls_profile is None else [
            (t_s, rate * share) for t_s, rate in node.load.calls_profile]})
    devices = node.devices.model_copy(update={
        "count": count, "chatty": [group for pool in own for group in pool.chatty],
        # one interval for all: the same keepalives per second as the pools' own intervals give
        "keepalive_interval_s": count / keepalives_per_s if keepalives_per_s else node.devices.keepalive_interval_s})
    disturbances = [d.model_copy(update={"calls_per_s": d.calls_per_s * share}) if isinstance(d, CallSurge) else d
                    for d in node.disturbances]
    return node.model_copy(update={"load": load, "devices": devices, "disturbances": disturbances})


def _other_phones(scenario: Scenario, node: Scenario, own: list[DevicePool], share: float) -> Contribution:
    """What a node's engine spends on the phones of other nodes' pools: its device table holds them, and it
    draws their keepalives, their chatty events and their calls (at the whole rate) and drops those of phones
    not registered with it (each such draw costs about what an event does)."""
    costs = ENGINE_COSTS[scenario.engine]
    duration_s = float(scenario.duration_s)
    others = [pool for pool in scenario.devices.pools if pool not in own]
    phones = sum(pool.count for pool in others)
    keepalives = duration_s * sum(pool.count / (pool.keepalive_interval_s or scenario.devices.keepalive_interval_s)
                                  for pool in others)
    groups = [group for pool in others for group in pool.chatty]
    chatty = sum(group.count * group.events_per_s * (min(group.end_s, duration_s) - min(group.start_s, duration_s))
                 for group in groups)
    segments = _segments(node)
    calls = (1.0 - share) * sum(float((source.rate_per_s * segments.length_s).sum())
                                for source in segments.sources if source.kind == "calls")
    memory = phones * costs.bytes_per_device + sum(group.count for group in groups) * costs.bytes_per_chatty_device
    wall = (keepalives * costs.wall_s_per_keepalive + chatty * costs.wall_s_per_chatty_event
            + calls * costs.wall_s_per_plain_signal)
    return Contribution("devices.pools", f"{phones:,} phones of other nodes' pools in its device table, their "
                        "keepalives and calls drawn and dropped", 0.0, memory, wall)


def _cluster_fields(scenario: Scenario, k: int, own: list[tuple[int, DevicePool]], kept: list[int]) -> dict[str, str]:
    """Node `k`'s estimate's fields, as the cluster's scenario names them (its pools, its own overrides, the
    disturbances' indexes in the whole list)."""
    assert scenario.cluster is not None
    entry = scenario.cluster.nodes[k]
    fields = {"devices.count": f"devices.pools.{own[0][0]}.count" if len(own) == 1 else "devices.pools"}
    chatty = [f"devices.pools.{p}.chatty.{j}" for p, pool in own for j in range(len(pool.chatty))]
    fields.update((f"devices.chatty.{j}", field) for j, field in enumerate(chatty))
    fields.update((f"disturbances.{j}", f"disturbances.{index}") for j, index in enumerate(kept))
    if entry.load is not None:
        fields.update((f"load.background.{j}", f"cluster.nodes.{k}.load.background.{j}")
                      for j in range(len(entry.load.background)))
    for section, override in (("node", entry.node), ("throttling", entry.throttling)):
        if override is not None:
            fields.update((f"{section}.{key}", f"cluster.nodes.{k}.{section}.{key}")
                          for key in override.model_fields_set)
    return fields


def _merged(field: str, text: str, parts: list[tuple[str, Contribution]]) -> Contribution:
    """The same contribution (`field`: `text`) at several nodes as one: their sums, the text saying where."""
    names = [name for name, _ in parts]
    return Contribution(field, f"{text} at {'each of ' if len(names) > 1 else ''}{', '.join(names)}",
                        sum(part.signals for _, part in parts), sum(part.memory_bytes for _, part in parts),
                        sum(part.wall_s for _, part in parts))


@dataclass(frozen=True)
class _Fluid:
    peak_backlog: float
    overloaded_s: float
    restarts: int
    limit_at_s: float | None
    offered_per_s: float
    served_per_s: float


def _fluid(length_s: np.ndarray, offered_per_s: np.ndarray, capacity_per_s: np.ndarray, red_after_s: float,
           restart_s: float, limit: int) -> _Fluid:
    """The backlog as a fluid: it grows by (offered - capacity) x time and never goes below 0.

    An overload that lasts `red_after_s` (the sample window plus Code Yellow Duration; inf when throttling or
    Code Red is off) ends in Code Red: the backlog is lost and the node is down for `restart_s`, then it
    starts again.  Returns the largest backlog, the overloaded time, the restarts, when the backlog first
    passes `limit` (None: never) with the offered load and the thread's speed then (signals/s).
    """
    backlog = peak = overloaded = 0.0
    overloaded_for_s = 0.0
    restarts = 0
    limit_at_s: float | None = None
    offered_then = served_then = 0.0
    t_s = 0.0
    for length, offered, capacity in zip(length_s.tolist(), offered_per_s.tolist(), capacity_per_s.tolist(),
                                         strict=True):
        net = offered - capacity
        left = length
        while left > 0:
            if net <= 0:
                backlog = max(0.0, backlog + net * left)
                if backlog == 0.0:
                    overloaded_for_s = 0.0
                break
            step = min(left, red_after_s - overloaded_for_s)
            if limit_at_s is None and backlog + net * step > limit:
                limit_at_s = t_s + length - left + (limit - backlog) / net
                offered_then, served_then = offered, capacity
            backlog += net * step
            peak = max(peak, backlog)
            overloaded += step
            overloaded_for_s += step
            left -= step
            if left > 0:  # Code Red: the queues are lost, the node restarts
                restarts += 1
                backlog = overloaded_for_s = 0.0
                left -= restart_s
        t_s += length
    return _Fluid(peak, overloaded, restarts, limit_at_s, offered_then, served_then)


def _block_bytes_per_signal(costs: EngineCosts, kind: str, signals_per_call: int, registration: int) -> float:
    """Bytes one block holds per unit of a source's rate (a signal; a call attempt; a registration)."""
    if kind == "plain":
        return costs.block_bytes_per_plain_signal
    if kind in ("keepalive", "chatty"):
        return costs.block_bytes_per_device_event
    if kind == "calls":
        return costs.block_bytes_per_call + signals_per_call * costs.block_bytes_per_call_signal
    return registration * costs.block_bytes_per_registration_signal


# ------------------------------------------------------------------ the checks
def format_bytes(count: float) -> str:
    """'745.1 GiB', '8 GiB', '512 MiB'."""
    if count < GIB:
        return f"{count / MIB:,.0f} MiB"
    return f"{count / GIB:,.0f} GiB" if count % GIB == 0 or count >= 100 * GIB else f"{count / GIB:,.1f} GiB"


def format_wall(seconds: float) -> str:
    """'10,120 hours', '3.2 hours', '1 hour', '12 minutes', '40 s'."""
    if seconds >= 100 * 3600:
        return f"{seconds / 3600:,.0f} hours"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:,.1f} hours"
    if seconds == 3600:
        return "1 hour"
    if seconds >= 120:
        return f"{seconds / 60:,.0f} minutes"
    return f"{seconds:,.0f} s"


def check_run(scenario: Scenario, source: str) -> None:
    """Raise WorkLimitError if `scenario`'s estimate passes MAX_RUN_MEMORY_BYTES or MAX_RUN_WALL_S, or its
    backlog would pass MAX_QUEUED_SIGNALS (the run would stop there).

    Each message names `source` (the scenario file), the fields that drive the estimate, the estimate and the
    limit, and ends with how to override it.
    """
    if not scenario.has_node:
        _check_host_run(scenario, source)
        return
    estimate = estimate_run(scenario)
    over_memory = estimate.peak_memory_bytes > MAX_RUN_MEMORY_BYTES
    over_wall = estimate.wall_s > MAX_RUN_WALL_S
    problems = []
    if over_memory or over_wall:
        drivers = list(estimate.drivers("memory_bytes" if over_memory else "wall_s"))
        if over_wall and not any(part.field == "duration_s" for part in drivers):
            drivers.append(Contribution("duration_s", f"{scenario.duration_s:,} s", 0.0, 0.0, 0.0))
        limits = []
        if over_memory:
            limits.append(f"{format_bytes(estimate.peak_memory_bytes)} of memory at peak (the limit is "
                          f"{format_bytes(MAX_RUN_MEMORY_BYTES)})")
        if over_wall:
            limits.append(f"about {format_wall(estimate.wall_s)} of wall time (the limit is "
                          f"{format_wall(MAX_RUN_WALL_S)})")
        problems.append(
            f"{source}: {'; '.join(part.describe() for part in drivers)}: the {estimate.engine} engine would "
            f"generate about {estimate.signals:,.3g} signals ({estimate.peak_signals_per_s:,.3g} in the busiest "
            f"second) and needs {' and '.join(limits)}; {ALLOW_LARGE}"
        )
    if estimate.backlog_limit_at_s is not None:
        loads = estimate.drivers("signals")
        advice = "shorten duration_s, lower the load"
        if not scenario.throttling.throttling_enabled:
            advice += ", turn call throttling on (throttling.system_throttle_sample_size_s: 10)"
        problems.append(
            f"{source}: {'; '.join(part.describe() for part in loads)}: about "
            f"{estimate.offered_per_s:,.0f} signals/s arrive and the thread serves {estimate.served_per_s:,.0f}/s, "
            f"so the backlog would pass the {estimate.engine} engine's limit of "
            f"{MAX_QUEUED_SIGNALS[estimate.engine]:,} queued signals at about {estimate.backlog_limit_at_s:,.0f} s "
            f"of duration_s {scenario.duration_s:,} and the run would stop there; {advice}, or split the run; "
            f"{ALLOW_LARGE} (it stops if the backlog passes the limit)"
        )
    if problems:
        raise WorkLimitError(problems)


WALL_S_PER_HOST_EVENT: Final = 5e-6
"""Wall time per event of the host model (a DPC queued and run, a packet, a timer): 3.3 us measured on the
incident scenario (about 90,000 events in 0.3 s), rounded up."""


def host_events(scenario: Scenario) -> dict[str, float]:
    """About how many events each source of a scenario's hosts and links makes over the run, by its field."""
    events = {}
    for k, host in enumerate(scenario.hosts):
        events[f"hosts.{k}.background_dpcs.per_s"] = (
            2 * host.background_dpcs.per_s * host.processors * scenario.duration_s)
        events[f"hosts.{k}.background_packets_per_s"] = 3 * host.background_packets_per_s * scenario.duration_s
    for k, link in enumerate(scenario.links):
        events[f"links.{k}.messages_per_s"] = 6 * (link.messages_per_s + 1 / link.heartbeat_interval_s) * (
            scenario.duration_s)
    for k, storm in enumerate(scenario.disturbances):
        if isinstance(storm, DpcStorm):
            host = next(h for h in scenario.hosts if h.name == storm.host)
            length_s = min(storm.end_s, scenario.duration_s) - min(storm.start_s, scenario.duration_s)
            events[f"disturbances.{k}.dpc_rate"] = 2 * storm.dpc_rate / (host.tick_ms / 1000.0) * length_s
    return events


def _check_host_run(scenario: Scenario, source: str) -> None:
    events = host_events(scenario)
    wall_s = sum(events.values()) * WALL_S_PER_HOST_EVENT
    if wall_s <= MAX_RUN_WALL_S:
        return
    drivers = sorted(events.items(), key=lambda item: -item[1])[:3]
    raise WorkLimitError([
        f"{source}: duration_s {scenario.duration_s:,} s; "
        + "; ".join(f"{field} makes about {count:,.3g} events" for field, count in drivers)
        + f": the hosts and links would take about {format_wall(wall_s)} of wall time (the limit is "
        f"{format_wall(MAX_RUN_WALL_S)}); shorten duration_s or lower those rates, or {ALLOW_LARGE}"
    ])


def check_sweep(points: int, replications: int, source: str, metrics: int = NODE_METRIC_COUNT) -> None:
    """Raise WorkLimitError if a sweep of `points` x `replications` runs passes MAX_SWEEP_RUNS, or, for runs of
    more `metrics` than a CUCM node has (a cluster's, whose runs.csv rows are longer), the memory that many runs
    of a node would keep."""
    runs = points * replications
    per_run_bytes = SWEEP_BYTES_PER_RUN + SWEEP_BYTES_PER_METRIC * max(0, metrics - NODE_METRIC_COUNT)
    most_runs = MAX_SWEEP_RUNS * SWEEP_BYTES_PER_RUN // per_run_bytes
    if runs <= most_runs:
        return
    raise WorkLimitError([
        f"{source}: the sweep has {points:,} points x {replications:,} replications = {runs:,} runs; a sweep "
        f"{f'of runs with {metrics:,} metrics each ' if most_runs < MAX_SWEEP_RUNS else ''}makes at most "
        f"{most_runs:,} (it keeps about {per_run_bytes / 1000:.1f} kB per run until it ends: "
        f"{format_bytes(runs * per_run_bytes)} here); fewer grid values or replications, or {ALLOW_LARGE}"
    ])
