"""The batched model of one CUCM node (engine ``batched``): SimPy keeps the clock, numpy does the SDL work.

The same world and the same rules as the per-signal `model` (its module doc states the modelling
choices; all hold here), simulated a block of time at a time.  A block is a span of up to
`workload.SPAN_ROWS` seconds (fewer when the load is so heavy that a block's arrivals would take more
than `workload.MAX_BLOCK_BYTES`) while the throttling state holds (every second's sample is checked on a
copy of the state machine first; if the state would change inside the span, it is redone second by
second), or one second cut where the capacity changes or the node comes back from a restart.  For each
block:

1. the arrival streams (`batch_sources`) hand out everything that arrives in it, whatever the node's
   state: background and burst signals, keepalives, chatty-device events, call attempts;
2. `_decide` plays the block's sparse events in time order -- call attempts (admitted or rejected by
   the throttling state, which cannot change inside the block), registrations, teardowns, SCCP
   closures, and the signals handled with something waiting on them (a call's off-hook signal gives
   dial tone and queues the set-up signals, a registration step queues the next) -- and says which
   signals enter which queue when;
3. `sdl_batch` computes every service that starts in the block, exactly: `serve_fifo_block` when only
   the normal queue has work (it queues a call's follow-ons itself), else `serve_block`;
4. the handled signals of step 3 go back into step 2, until they no longer change.  A pass is exact up
   to the first follow-on signal it did not know of, and the next pass knows it, so the fixed point is
   reached and is what the per-signal engine would have done.  Where follow-ons chain (a registration
   storm), the exact slow paths of `sdl_batch` find the handled signals and the passes confirm them.
   Then the block is committed.

Nothing grows with the run: waits go into fixed-size histograms, the timeline has one row per second,
and the queues hold only the signals actually waiting (at most `workload.MAX_QUEUED_SIGNALS`: past
it the run stops, see `second_end`).
"""

from __future__ import annotations

import bisect
import copy
import heapq
import itertools
import math
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import numpy as np
import simpy

from cucm_sim.engine.batched.sources import CallAttemptTimes, KeepaliveTimes, PoissonTimes
from cucm_sim.engine.devices import DeviceTable
from cucm_sim.engine.interface import NodeCounters, OnAlarm, PhoneArrives, PhoneEvent
from cucm_sim.engine.second_end import BacklogLimit, Readings, SecondEnds, expected_delay_ms
from cucm_sim.engine.vocabulary import (
    BATCHED_STREAMS,
    HIGH,
    LOW,
    LOWEST,
    NORMAL,
    PRIORITY_INDEX,
    REGISTERED,
    REGISTERING,
    UNREGISTERED,
)
from cucm_sim.measures.stats import LogHistogram
from cucm_sim.rules.alarms import CODE_RED_ENTRY, callmanager_online, device_closed
from cucm_sim.rules.sccp import SCCP_WINDOW_S
from cucm_sim.rules.throttling import ThrottleState, ThrottleStateMachine
from cucm_sim.scenario.profiles import CallRateProfile, capacity_breakpoints, capacity_factor_at
from cucm_sim.scenario.schema import PRIORITIES, Scenario, SignalBurst
from cucm_sim.scenario.workload import BATCHED_COSTS, MAX_QUEUED_SIGNALS, batched_block_seconds
from cucm_sim.sdl.block import (
    NO_TAG,
    QUEUES,
    TIE_S,
    Arrivals,
    BlockPlan,
    FollowOns,
    RouterState,
    ServiceDraws,
    commit,
    crash,
    serve_block,
    serve_fifo_block,
    tagged_ends_in_slots,
    tagged_ends_one_by_one,
)

# A queued signal's tag says what waits for it: kind in the low 2 bits, a call or device id above.
OFFHOOK, REG_INITIAL, REG_LOW = range(1, 4)
_KIND_BITS = 2
# Whose follow-ons a server queues itself: none (serve_block), a call's (serve_fifo_block), a
# registration's (tagged_ends_in_slots), all (tagged_ends_one_by_one).
_NONE: frozenset[int] = frozenset()
_FIFO_FOLLOWS = frozenset({OFFHOOK})
_REGISTRATION_FOLLOWS = frozenset({REG_INITIAL})
_ALL_FOLLOWS = frozenset({OFFHOOK, REG_INITIAL})

# Sparse events of a block, in this order when simultaneous (a phone that leaves: last).
_COMPLETE, _CLOSE, _REGISTER, _TEARDOWN, _CALL, _LEAVE = range(6)

CANDIDATES_PER_CALL = 4
"""Random devices drawn per call attempt; the first registered one makes the call (see `_pick_devices`)."""

MAX_PASSES = 100_000
"""A block needing more passes than this is a bug, not a load: each pass learns one follow-on at least."""

FAST_PASSES = 3
"""Vectorized passes before a block is played one signal at a time to find its handled signals."""

SLOW_ROUNDS = 4
"""Rounds of the slow path on its own answer, until the device states it assumes are those it finds."""

MAX_SLOW_USES = 3
"""Slow-path answers per block; after them, plain passes alone (which always settle, one link a pass)."""

CALM_ROWS = 16
"""After a state change inside a span, seconds computed one at a time before spans are tried again."""



@dataclass
class _Primary:
    """A block's arrivals, decided by no state: what the streams hand out."""

    plain_s: list[np.ndarray]
    keepalive_s: np.ndarray
    keepalive_device: np.ndarray
    chatty: list[tuple[np.ndarray, np.ndarray]]
    call_s: np.ndarray
    call_candidates: np.ndarray
    call_fallback: np.ndarray
    call_holding_s: np.ndarray
    due: list[tuple[float, int, int, int, int]] = field(default_factory=list)
    """Timed events falling in the block: (t_s, kind, seq, device, count); filled when it is computed."""

    def window(self, t0_s: float, t1_s: float) -> _Primary:
        """The arrivals that fall in [t0_s, t1_s)."""

        def cut(times_s: np.ndarray) -> slice:
            lo, hi = np.searchsorted(times_s, [t0_s, t1_s], side="left")
            return slice(int(lo), int(hi))

        calls = cut(self.call_s)
        keepalives = cut(self.keepalive_s)
        return _Primary(
            [times_s[cut(times_s)] for times_s in self.plain_s],
            self.keepalive_s[keepalives], self.keepalive_device[keepalives],
            [(times_s[cut(times_s)], ids[cut(times_s)]) for times_s, ids in self.chatty],
            self.call_s[calls], self.call_candidates[calls], self.call_fallback[calls], self.call_holding_s[calls],
        )

    @classmethod
    def joined(cls, parts: list[_Primary]) -> _Primary:
        """Consecutive blocks' arrivals as one block's."""
        if len(parts) == 1:
            return replace(parts[0], due=[])
        return cls(
            [np.concatenate([p.plain_s[q] for p in parts]) for q in range(QUEUES)],
            np.concatenate([p.keepalive_s for p in parts]),
            np.concatenate([p.keepalive_device for p in parts]),
            [
                (np.concatenate([p.chatty[g][0] for p in parts]), np.concatenate([p.chatty[g][1] for p in parts]))
                for g in range(len(parts[0].chatty))
            ],
            np.concatenate([p.call_s for p in parts]),
            np.concatenate([p.call_candidates for p in parts]),
            np.concatenate([p.call_fallback for p in parts]),
            np.concatenate([p.call_holding_s for p in parts]),
        )


@dataclass
class _Rows:
    """A block's per-second tallies: counts for each second (row) it touches, readings at each row end in it."""

    first_row: int
    starts: np.ndarray
    wait_s: np.ndarray
    processed: np.ndarray
    attempted: np.ndarray
    rejected: np.ndarray
    end_rows: list[int]
    """Rows whose end lies in the block, with, for each: queue depths, oldest waiting arrival (None: none
    waits), registered devices and SCCP closures so far."""
    depths: list[list[int]]
    oldest_s: list[float | None]
    registered: list[int]
    skinny: list[int]


@dataclass
class _Decisions:
    """What `_decide` made of a block: the signals to queue and every change it implies."""

    signal_s: list[list[float]] = field(default_factory=lambda: [[] for _ in range(QUEUES)])
    signal_tag: list[list[int]] = field(default_factory=lambda: [[] for _ in range(QUEUES)])
    event_s: list[float] = field(default_factory=list)
    event_device: list[int] = field(default_factory=list)
    state: dict[int, int] = field(default_factory=dict)
    changes: dict[int, list[tuple[float, int]]] = field(default_factory=dict)
    registered_delta: int = 0
    calls_accepted: int = 0
    calls_rejected: int = 0
    rejected_s: list[float] = field(default_factory=list)
    new_calls: dict[int, tuple[int, float]] = field(default_factory=dict)
    done_calls: list[int] = field(default_factory=list)
    dial_tone_ms: list[float] = field(default_factory=list)
    later: list[tuple[float, int, int, int]] = field(default_factory=list)
    """Timed events past the block: (t_s, kind, device, count)."""
    closures: list[tuple[float, int, int]] = field(default_factory=list)
    """SCCP closures in the block: (time, device, events in window)."""
    keepalive_keep: np.ndarray | None = None
    chatty_keep: list[np.ndarray] = field(default_factory=list)

    def same_arrivals(self, other: _Decisions) -> bool:
        """Whether these decisions queue exactly the signals `other` does."""
        assert self.keepalive_keep is not None and other.keepalive_keep is not None
        return (
            self.signal_s == other.signal_s
            and self.signal_tag == other.signal_tag
            and np.array_equal(self.keepalive_keep, other.keepalive_keep)
            and all(np.array_equal(a, b) for a, b in zip(self.chatty_keep, other.chatty_keep, strict=True))
        )


def _same_completions(a: list[tuple[float, int, float]], b: list[tuple[float, int, float]]) -> bool:
    """The same handled signals, at the same times to within `TIE_S` (the paths round differently, so
    near-simultaneous ones are matched by tag, not by their order in time)."""
    if len(a) != len(b):
        return False
    if a == b:
        return True
    by_tag_a = sorted(a, key=lambda c: (c[1], c[0]))
    by_tag_b = sorted(b, key=lambda c: (c[1], c[0]))
    return all(
        tag_a == tag_b and abs(end_a - end_b) <= TIE_S and abs(arrival_a - arrival_b) <= TIE_S
        for (end_a, tag_a, arrival_a), (end_b, tag_b, arrival_b) in zip(by_tag_a, by_tag_b, strict=True)
    )


class BatchedNodeModel:
    """One CUCM node under a scenario's load, simulated in blocks; `attach` it to a world (`engine.interface`).

    Background sources, bursts and chatty groups get one child each of their stream's seed.
    """

    stream_names: ClassVar[tuple[str, ...]] = BATCHED_STREAMS

    def __init__(self, scenario: Scenario, streams: Mapping[str, np.random.SeedSequence]) -> None:
        self.scenario = scenario
        self._streams = streams
        self.rngs = {name: np.random.default_rng(streams[name]) for name in BATCHED_STREAMS if name != "registration"}
        self.duration_s = scenario.duration_s
        self.throttle = ThrottleStateMachine(scenario.throttling)
        self.wait_ms_by_priority = [LogHistogram() for _ in PRIORITIES]
        self.dial_tone_delay_ms = LogHistogram()
        self.router = RouterState.idle()
        self.draws = ServiceDraws(scenario.node.signal_service_time_ms, self.rngs["service"])
        self.follow_draws = ServiceDraws(scenario.node.signal_service_time_ms, self.rngs["follow_on_service"])
        self._breakpoints = capacity_breakpoints(scenario)
        self._cut_times_s = sorted(t for t, _ in self._breakpoints if t > 0)

        load = scenario.load
        self._setup_signals = (load.setup_signals_per_call or 1) - 1
        self._teardown_signals = load.signals_per_call - (load.setup_signals_per_call or 1)
        self._background = self._streams_per_queue(
            [(s.signals_per_s, PRIORITY_INDEX[s.priority], 0.0, math.inf) for s in load.background],
            streams["background"],
        )
        self._bursts = self._streams_per_queue(
            [(d.signals_per_s, PRIORITY_INDEX[d.priority], d.start_s, d.end_s)
             for d in scenario.disturbances if isinstance(d, SignalBurst)],
            streams["bursts"],
        )
        self._calls = CallAttemptTimes(
            CallRateProfile.from_scenario(scenario), load.call_arrivals, self.rngs["calls"], self.rngs["calls_thinning"]
        )
        self._calls_in_progress: dict[int, tuple[int, float]] = {}
        self._next_call_id = 0
        self._timed: list[tuple[float, int, int, int, int]] = []  # heap of (t_s, kind, seq, device, count)
        self._seq = itertools.count()
        self._carried: tuple[float, int, float] | None = None  # a tagged signal in service: (end, tag, arrival)
        self._uncounted_end_s: float | None = None  # end of the service in progress, not yet counted
        self._sccp_ring: list[tuple[float, np.ndarray, np.ndarray]] = []  # (block end, times, devices)
        self._last_close_s: dict[int, float] = {}
        self._up = True
        self._back_at_s: float | None = None
        self._ahead: dict[int, _Primary] = {}  # arrivals of seconds computed in a span that was undone
        self._calm_until_row = 0
        self._chained = False  # the last block computed needed the slow path
        self._committed_s = 0.0  # the end of the last block made the past

        self.calls_attempted = 0
        self.calls_accepted = 0
        self.calls_rejected_throttled = 0
        self.calls_failed_node_down = 0
        self.signals_processed = 0
        self.signals_lost_restart = 0
        self.signals_dropped_node_down = 0
        self.skinny_devices_throttled = 0
        self.passes = 0
        """Server passes over all blocks (one per block when no follow-on signal interacts)."""

        self._span_limit = batched_block_seconds(scenario)  # SPAN_ROWS, unless a block would take too much memory
        self.seconds = SecondEnds(self.throttle, self.duration_s, BacklogLimit(
            MAX_QUEUED_SIGNALS["batched"], "batched", scenario.name,
            scenario.node.capacity_factor * 1000.0 / scenario.node.signal_service_time_ms.mean,
            BATCHED_COSTS.bytes_per_queued_signal,
        ))
        self.timeline = self.seconds.timeline
        self.states = self.seconds.states

    # ------------------------------------------------------------ the seam
    def attach(self, env: simpy.Environment, phones: DeviceTable, on_alarm: OnAlarm) -> None:
        """Join the world: serve `phones` on `env`'s clock, reporting every alarm to `on_alarm` once final."""
        self.env = env
        self.phones = phones
        self._report = on_alarm
        self._registration_rest = phones.registration_signals - 1  # low signals after the request
        self._keepalives = KeepaliveTimes(len(phones), phones.keepalive_interval_s, self.rngs["keepalive_phase"])
        self._keepalive_queue = phones.keepalive_queue
        self._chatty: list[tuple[PoissonTimes, int, int, int, np.random.Generator]] = []
        groups = phones.chatty
        for group, times_seed, devices_seed in zip(groups, self._streams["chatty"].spawn(len(groups)),
                                                   self._streams["chatty_devices"].spawn(len(groups)), strict=True):
            stream = PoissonTimes(group.count * group.events_per_s, np.random.default_rng(times_seed), group.start_s,
                                  group.end_s)
            self._chatty.append((stream, group.first, group.count, group.queue, np.random.default_rng(devices_seed)))
        self._clock = env.process(self._run_blocks())

    def deliver(self, t_s: float, event: PhoneEvent) -> None:
        """A phone arrives (starts registering) or leaves at `t_s`, no earlier than `committed_until_s()`."""
        if t_s < self._committed_s:
            raise ValueError(f"delivery at {t_s} s is in the past of the batched engine ({self._committed_s} s)")
        kind = _REGISTER if isinstance(event, PhoneArrives) else _LEAVE
        heapq.heappush(self._timed, (t_s, kind, next(self._seq), event.device, 0))

    def committed_until_s(self) -> float:
        """The end of the last block made the past (s): up to a span ahead of `env.now`."""
        return self._committed_s

    def limit_lookahead(self, seconds: int) -> None:
        """Never compute a span of more than `seconds` (at least 1) ahead of the clock."""
        self._span_limit = max(1, min(self._span_limit, seconds))

    @property
    def finished(self) -> simpy.Event:
        """The clock's process: it ends with the last second's sample."""
        return self._clock

    def counters(self) -> NodeCounters:
        """The node's totals and timeline so far."""
        return NodeCounters(
            self.calls_attempted, self.calls_accepted, self.calls_rejected_throttled, self.calls_failed_node_down,
            self.signals_processed, self.signals_lost_restart, self.signals_dropped_node_down,
            self.skinny_devices_throttled, self.phones.registered, self.seconds.max_average_expected_delay_ms,
            LogHistogram.merged(self.wait_ms_by_priority), tuple(self.wait_ms_by_priority), self.dial_tone_delay_ms,
            self.states, self.timeline,
        )

    # ---------------------------------------------------------------- set-up
    @staticmethod
    def _streams_per_queue(
        sources: list[tuple[float, int, float, float]], seed: np.random.SeedSequence
    ) -> list[tuple[PoissonTimes, int]]:
        """One Poisson stream per source (rate > 0), each with its own generator, with its queue."""
        return [(PoissonTimes(rate, np.random.default_rng(child), start, end), queue)
                for (rate, queue, start, end), child in zip(sources, seed.spawn(len(sources)), strict=True)
                if rate > 0]

    # ------------------------------------------------------------ the clock
    def _run_blocks(self) -> Generator[simpy.Event, Any, None]:
        """The clock: whole spans of seconds when possible, else one second (in pieces if it must be)."""
        row = 0
        while row < self.duration_s:
            rows = self._span_rows(row)
            if rows == 0:
                self._second_in_pieces(row)
                rows = 1
            elif not self._span(row, rows):  # the state changed inside it: again, a second at a time
                self._calm_until_row = row + CALM_ROWS
                rows = 1
                assert self._span(row, rows)
            yield self.env.timeout(row + rows - self.env.now)
            row += rows

    def _span_rows(self, row: int) -> int:
        """How many seconds from `row` to compute as one block; 0: this second must go in pieces."""
        if not self._up:
            return 0
        # Speculate only when it pays: not right after a state change, nor while blocks need the slow path
        # (an undone span would throw away seconds of one-by-one work).
        rows = min(1 if row < self._calm_until_row or self._chained else self._span_limit, self.duration_s - row)
        for cut_s in self._cut_times_s:
            if row < cut_s < row + rows:
                if cut_s < row + 1:
                    return 0
                rows = math.floor(cut_s) - row
                break
        return rows

    def _primary(self, row: int, rows: int) -> _Primary:
        """The arrivals of whole seconds row .. row + rows - 1 (kept from a span that was undone, or new)."""
        if row not in self._ahead:
            return self._generate(float(row), float(row + rows))
        parts = [self._ahead.pop(r) if r in self._ahead else self._generate(float(r), float(r + 1))
                 for r in range(row, row + rows)]
        return _Primary.joined(parts)

    def _due(self, t1_s: float) -> list[tuple[float, int, int, int, int]]:
        due = []
        while self._timed and self._timed[0][0] < t1_s:
            due.append(heapq.heappop(self._timed))
        return due

    def _span(self, row: int, rows: int) -> bool:
        """Compute seconds row .. row + rows - 1 as one block, under this second's throttling state.

        Every second's sample is checked on a copy of the state machine first: if the state would change
        before the span's last second ends, nothing is kept (the arrivals are, for the next try) and this
        returns False.
        """
        t0_s, t1_s = float(row), float(row + rows)
        primary = self._primary(row, rows)
        primary.due = self._due(t1_s)
        plan, decisions = self._compute(t0_s, t1_s, primary)
        tally = self._tally(t0_s, t1_s, plan, primary, decisions)
        if rows > 1:
            trial = copy.deepcopy(self.throttle)
            for index in range(rows - 1):
                if trial.observe(float(row + index + 1), self._delay_ms(tally, index)):
                    for r in range(row, row + rows):
                        self._ahead[r] = primary.window(float(r), float(r + 1))
                    for event in primary.due:
                        heapq.heappush(self._timed, event)
                    return False
        self._commit(t0_s, t1_s, plan, primary, decisions, tally)
        self._committed_s = t1_s
        for index in range(rows):
            self._write_row(tally, index, index)
        return True

    def _second_in_pieces(self, row: int) -> None:
        """One second, cut where the capacity changes or the node comes back; or while it is down."""
        t0_s, end_s = float(row), float(row + 1)
        state_during_second = self.throttle.state  # a restart inside it resets the machine
        tallies = []
        while t0_s < end_s:
            t1_s = min([end_s] + [t for t in self._cut_times_s if t0_s < t < end_s])
            if self._back_at_s is not None and t0_s < self._back_at_s < t1_s:
                t1_s = self._back_at_s
            primary = self._generate(t0_s, t1_s)
            primary.due = self._due(t1_s)
            if self._up:
                plan, decisions = self._compute(t0_s, t1_s, primary)
                tally = self._tally(t0_s, t1_s, plan, primary, decisions)
                self._commit(t0_s, t1_s, plan, primary, decisions, tally)
            else:
                tally = self._tally(t0_s, t1_s, None, primary, None)
                self.calls_attempted += len(primary.call_s)
                self.calls_failed_node_down += len(primary.call_s)
                self.signals_dropped_node_down += sum(len(times_s) for times_s in primary.plain_s)
            tallies.append(tally)
            self._committed_s = t1_s
            if self._back_at_s is not None and t1_s >= self._back_at_s:
                self._back_online(t1_s)
            t0_s = t1_s
        whole = tallies[-1]
        for part in tallies[:-1]:
            for name in ("starts", "wait_s", "processed", "attempted", "rejected"):
                getattr(whole, name)[0] += getattr(part, name)[0]
        self._write_row(whole, 0, 0, state_during_second)

    # ------------------------------------------------------------ one block
    def _generate(self, t0_s: float, t1_s: float) -> _Primary:
        """What the streams hand out in [t0_s, t1_s)."""
        plain: list[list[np.ndarray]] = [[] for _ in range(QUEUES)]
        for stream, queue in self._background + self._bursts:
            times_s = stream.take(t0_s, t1_s)
            if len(times_s):
                plain[queue].append(times_s)
        merged = [
            parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts), kind="stable") if parts else np.empty(0)
            for parts in plain
        ]
        keepalive_s, keepalive_device = self._keepalives.take(t0_s, t1_s)
        chatty = []
        for stream, first, count, _queue, device_rng in self._chatty:
            times_s = stream.take(t0_s, t1_s)
            chatty.append((times_s, first + device_rng.integers(count, size=len(times_s))))
        call_s = self._calls.take(t0_s, t1_s)
        devices = max(len(self.phones.array), 1)
        candidates = self.rngs["devices"].integers(devices, size=(len(call_s), CANDIDATES_PER_CALL))
        fallback = self.rngs["devices_fallback"].random(len(call_s))
        holding_s = self.scenario.load.holding_time_s.sample(self.rngs["holding"], len(call_s))
        return _Primary(merged, keepalive_s, keepalive_device, chatty, call_s, candidates, fallback, holding_s)

    def _compute(self, t0_s: float, t1_s: float, primary: _Primary) -> tuple[BlockPlan, _Decisions]:
        """The block's plan and decisions, settled (see the module doc); changes nothing."""
        capacity = capacity_factor_at(self._breakpoints, t0_s)
        completions: list[tuple[float, int, float]] = []
        if self._carried is not None and self._carried[0] < t1_s:
            completions.append(self._carried)
        closures: list[tuple[float, int, int]] = []
        fast_passes = 0 if self._chained else FAST_PASSES  # a chain often lasts: play it at once
        slow_uses = 0
        self._chained = False
        fifo = self._normal_only(primary)
        served: tuple[_Decisions, BlockPlan] | None = None  # the last FIFO plan and what it was made from
        for _ in range(MAX_PASSES):
            self.passes += 1
            decisions = self._decide(t0_s, t1_s, primary, completions, closures, _FIFO_FOLLOWS if fifo else _NONE)
            decisions.closures = closures
            new_closures = self._sccp_closures(t0_s, primary, decisions)
            if new_closures != closures:
                closures = new_closures
                continue
            if fifo and any(decisions.signal_s[q] for q in (HIGH, LOW, LOWEST)):
                fifo, served = False, None  # a registration began: the general path
                continue
            if fifo:
                if served is not None and decisions.same_arrivals(served[0]):
                    plan = served[1]  # same arrivals, same plan: its handled signals are `completions`
                    break
                fifo_plan = serve_fifo_block(
                    self.router, NORMAL, t0_s, t1_s, self._arrivals(primary, decisions), self.draws,
                    self.follow_draws, capacity, self._follow_ons(decisions, _FIFO_FOLLOWS),
                )
                if fifo_plan is None:  # follow-ons that delay each other did not settle: the general path
                    fifo, served = False, None
                    continue
                plan = fifo_plan
                served = (decisions, plan)
            else:
                plan = serve_block(
                    self.router, t0_s, t1_s, self._arrivals(primary, decisions), self.draws, capacity
                )
            found = self._completions(plan, t1_s)
            if _same_completions(found, completions):
                break
            if fifo:  # usually the new handled signals only give dial tone: no need to decide again
                known = set(completions)
                if known.issubset(found):
                    quick = self._with_dial_tones(decisions, [c for c in found if c not in known], t1_s)
                    if quick is not None and self._sccp_closures(t0_s, primary, quick) == closures:
                        decisions = quick
                        break
            if fifo or fast_passes or slow_uses >= MAX_SLOW_USES:
                fast_passes -= 0 if fifo or not fast_passes else 1
                completions = found
                continue
            # A chain of follow-ons (a registration storm): the slow path, from what this pass found.
            completions = self._play_chain(t0_s, t1_s, primary, found, closures, capacity)
            # The slow path's answer starts the fixed point near its end; plain passes settle it (the two
            # round differently, so its answer is not compared with a pass's, only passes with passes).
            slow_uses += 1
            fast_passes = FAST_PASSES
        else:
            raise RuntimeError(f"block [{t0_s}, {t1_s}) did not settle in {MAX_PASSES} passes")
        return plan, decisions

    def _play_chain(
        self, t0_s: float, t1_s: float, primary: _Primary, basis: list[tuple[float, int, float]],
        closures: list[tuple[float, int, int]], capacity: float,
    ) -> list[tuple[float, int, float]]:
        """The handled signals of a block whose follow-ons chain (a registration storm), by the slow path.

        Plays only the low and lowest queues slot by slot (the slot path), or, if other follow-ons chain
        too, the whole block one signal at a time; starting from the arrivals `basis` implies, less the
        follow-ons the path queues itself, and again on its own answer until the device states it assumes
        are those it finds (at most SLOW_ROUNDS).
        """
        self._chained = True
        carried = [c for c in [self._carried] if c is not None and c[0] < t1_s]
        for _ in range(SLOW_ROUNDS):
            unfollowed = self._decide(t0_s, t1_s, primary, basis, closures, _REGISTRATION_FOLLOWS)
            ends = tagged_ends_in_slots(
                self.router, t0_s, t1_s, self._arrivals(primary, unfollowed), self.draws, capacity,
                self._follow_ons(unfollowed, _REGISTRATION_FOLLOWS),
            )
            if ends is None:
                unfollowed = self._decide(t0_s, t1_s, primary, basis, closures, _ALL_FOLLOWS)
                ends = tagged_ends_one_by_one(
                    self.router, t0_s, t1_s, self._arrivals(primary, unfollowed), self.draws, capacity,
                    self._follow_ons(unfollowed, _ALL_FOLLOWS),
                )
            answer = sorted(carried + ends)
            settled = _same_completions(answer, basis)
            basis = answer
            if settled:
                break
        return basis

    def _with_dial_tones(
        self, d: _Decisions, handled: list[tuple[float, int, float]], t1_s: float
    ) -> _Decisions | None:
        """`d` plus handled off-hook signals that change none of the block's arrivals; None if one would.

        Such a signal gives dial tone, and its set-up and teardown signals count as device events (the
        FIFO server queues those in the block itself).  `_decide` would do the same, in more time.
        """
        out = replace(
            d, event_s=list(d.event_s), event_device=list(d.event_device), done_calls=list(d.done_calls),
            dial_tone_ms=list(d.dial_tone_ms), later=list(d.later),
        )
        for end_s, tag, arrival_s in handled:
            if tag & ((1 << _KIND_BITS) - 1) != OFFHOOK:
                return None
            ident = tag >> _KIND_BITS
            device, holding_s = d.new_calls.get(ident) or self._calls_in_progress[ident]
            out.done_calls.append(ident)
            out.dial_tone_ms.append((end_s - arrival_s) * 1000.0)
            if device >= 0:
                out.event_s.extend([end_s] * self._setup_signals)
                out.event_device.extend([device] * self._setup_signals)
            if self._teardown_signals and end_s + holding_s < t1_s:  # the FIFO server queues it
                if device >= 0:
                    out.event_s.extend([end_s + holding_s] * self._teardown_signals)
                    out.event_device.extend([device] * self._teardown_signals)
            elif self._teardown_signals:
                out.later.append((end_s + holding_s, _TEARDOWN, device, self._teardown_signals))
        return out

    def _normal_only(self, primary: _Primary) -> bool:
        """Whether only the normal queue can have work in this block (then `serve_fifo_block` serves it)."""
        if any(len(self.router.queues[q]) for q in (HIGH, LOW, LOWEST)):
            return False
        if any(len(primary.plain_s[q]) for q in (HIGH, LOW, LOWEST)):
            return False
        if len(primary.keepalive_s) and self._keepalive_queue != NORMAL:
            return False
        if any(len(times_s) and queue != NORMAL for (times_s, _), (_, _, _, queue, _) in zip(
                primary.chatty, self._chatty, strict=True)):
            return False
        carried_kind = self._carried[1] & ((1 << _KIND_BITS) - 1) if self._carried is not None else OFFHOOK
        return carried_kind == OFFHOOK and not any(kind == _REGISTER for _, kind, _, _, _ in primary.due)

    def _follow_ons(self, d: _Decisions, kinds: frozenset[int]) -> FollowOns:
        """What a handled tagged signal of one of `kinds` queues (as `_decide` does), for the servers that
        queue it themselves: a call's set-up signals at once and its teardown a holding time later; a
        registration's next steps."""
        rest = self._registration_rest

        def follow_ons(tag: int) -> list[tuple[int, int, int, float]]:
            kind, ident = tag & ((1 << _KIND_BITS) - 1), tag >> _KIND_BITS
            if kind not in kinds:
                return []
            if kind == OFFHOOK:
                _device, holding_s = d.new_calls.get(ident) or self._calls_in_progress[ident]
                return [(NORMAL, self._setup_signals, NO_TAG, 0.0), (NORMAL, self._teardown_signals, NO_TAG, holding_s)]
            if kind == REG_INITIAL and rest:
                return [(LOW, rest - 1, NO_TAG, 0.0), (LOW, 1, ident << _KIND_BITS | REG_LOW, 0.0)]
            return []

        return follow_ons

    def _completions(self, plan: BlockPlan, t1_s: float) -> list[tuple[float, int, float]]:
        """Tagged signals whose service ends in the block: (end, tag, arrival), in end order."""
        found: list[tuple[float, int, float]] = []
        if self._carried is not None and self._carried[0] < t1_s:
            found.append(self._carried)
        for served in plan.served:
            tagged = np.flatnonzero(served.tags != NO_TAG)
            if len(tagged):
                ends, tags, arrivals = served.end_s[tagged], served.tags[tagged], served.arrival_s[tagged]
                inside = ends < t1_s
                found.extend(zip(ends[inside].tolist(), tags[inside].tolist(), arrivals[inside].tolist(), strict=True))
        found.sort()
        return found

    def _arrivals(self, primary: _Primary, decisions: _Decisions) -> Arrivals:
        """Each queue's arrivals in the block, in time order: the streams' (kept ones) and the decided ones.

        Every part is sorted already, so a merge sort joins them in about linear time; the decided signals'
        tags are then put where their times landed.
        """
        times: list[np.ndarray] = []
        tags: list[np.ndarray] = []
        for queue in range(QUEUES):
            parts = [primary.plain_s[queue]]
            if queue == self._keepalive_queue and len(primary.keepalive_s):
                assert decisions.keepalive_keep is not None
                parts.append(primary.keepalive_s[decisions.keepalive_keep])
            for (chatty_s, _devices), keep, (_, _, _, chatty_queue, _) in zip(
                primary.chatty, decisions.chatty_keep, self._chatty, strict=True
            ):
                if chatty_queue == queue:
                    parts.append(chatty_s[keep])
            sparse_s = np.array(decisions.signal_s[queue])
            parts.append(sparse_s)
            parts = [part for part in parts if len(part)]
            queue_s = np.sort(np.concatenate(parts), kind="stable") if len(parts) > 1 else (
                parts[0] if parts else np.empty(0))
            queue_tags = np.full(len(queue_s), NO_TAG, dtype=np.int64)
            sparse_tags = np.array(decisions.signal_tag[queue], dtype=np.int64)
            tagged = np.flatnonzero(sparse_tags != NO_TAG)
            if len(tagged):
                # Among signals of equal time (a registration's low signals, queued at once), the tagged ones
                # take the last places, in the order decided: the registration's last signal is its tagged one.
                order = np.argsort(sparse_s[tagged], kind="stable")
                when_s = sparse_s[tagged][order]
                after = np.searchsorted(queue_s, when_s, side="right")
                later = np.searchsorted(when_s, when_s, side="right") - np.arange(len(when_s))
                queue_tags[after - later] = sparse_tags[tagged][order]
            times.append(queue_s)
            tags.append(queue_tags)
        return Arrivals(times, tags)

    # ------------------------------------------------------- sparse events
    def _decide(
        self, t0_s: float, t1_s: float, primary: _Primary, completions: list[tuple[float, int, float]],
        closures: list[tuple[float, int, int]], server_follows: frozenset[int] = frozenset(),
    ) -> _Decisions:
        """Play the block's sparse events in time order, given the handled signals and SCCP closures.

        Signals of the tag kinds in `server_follows` handled in the block queue none of their follow-ons
        here: the server that computes the block queues them itself (they still count as device events).
        The one in service when the block began is not the server's: it queues its own.

        In three rounds, each in time order, which gives what one time-ordered round would: first the
        events that change device states (registrations, closures, handled registration signals), then
        the call attempts, in bulk (they depend only on device states and on the throttling state, which
        holds over the block), then handled off-hook signals and teardowns (which depend on the calls).
        """
        d = _Decisions()
        events: list[tuple[float, int, int, int, int, float]] = []  # (t, kind, seq, a, b, x)
        calls_done: list[tuple[float, int, int, int, int, float]] = []  # the third round's
        seq = itertools.count()
        for end_s, tag, arrival_s in completions:
            event = (end_s, _COMPLETE, next(seq), tag, 0, arrival_s)
            (calls_done if tag & ((1 << _KIND_BITS) - 1) == OFFHOOK else events).append(event)
        for t_s, device, total in closures:
            events.append((t_s, _CLOSE, next(seq), device, total, 0.0))
        for t_s, kind, _, device, count in primary.due:
            (calls_done if kind == _TEARDOWN else events).append((t_s, kind, next(seq), device, count, 0.0))
        heapq.heapify(events)
        in_yellow = self.throttle.state is ThrottleState.CODE_YELLOW
        reregister_delay_s = self.phones.reregister_delay_s
        registered = self.phones.registered

        def state(device: int) -> int:
            return d.state.get(device, int(self.phones.array[device]))

        def set_state(device: int, t_s: float, new: int) -> None:
            nonlocal registered
            old = state(device)
            registered += (new == REGISTERED) - (old == REGISTERED)
            d.state[device] = new
            d.changes.setdefault(device, []).append((t_s, new))

        def signal(t_s: float, queue: int, device: int, tag: int = NO_TAG, count: int = 1, queued: bool = True) -> None:
            """`count` signals caused by `device` (-1: none); `queued` False: the server queues them itself."""
            if queued:
                d.signal_s[queue].extend([t_s] * count)
                d.signal_tag[queue].extend([tag] * count)
            if device >= 0:
                d.event_s.extend([t_s] * count)
                d.event_device.extend([device] * count)

        def register_later(t_s: float, device: int) -> None:
            if t_s < t1_s:
                heapq.heappush(events, (t_s, _REGISTER, next(seq), device, 0, 0.0))
            else:
                d.later.append((t_s, _REGISTER, device, 0))

        def play(events: list[tuple[float, int, int, int, int, float]]) -> None:
            while events:
                t_s, kind, _, a, b, x = heapq.heappop(events)
                act(events, t_s, kind, a, b, x)

        def act(events: list[tuple[float, int, int, int, int, float]], t_s: float, kind: int, a: int, b: int,
                x: float) -> None:
            if kind == _COMPLETE:
                what, ident = a & ((1 << _KIND_BITS) - 1), a >> _KIND_BITS
                immediate = what not in server_follows or (t_s, a, x) == self._carried
                if what == OFFHOOK:
                    device, holding_s = d.new_calls.get(ident) or self._calls_in_progress[ident]
                    d.done_calls.append(ident)
                    d.dial_tone_ms.append((t_s - x) * 1000.0)
                    signal(t_s, NORMAL, device, count=self._setup_signals, queued=immediate)
                    if self._teardown_signals:
                        if t_s + holding_s < t1_s:  # x = 1: the server queues it (see follow_ons)
                            heapq.heappush(events, (t_s + holding_s, _TEARDOWN, next(seq), device,
                                                    self._teardown_signals, 0.0 if immediate else 1.0))
                        else:
                            d.later.append((t_s + holding_s, _TEARDOWN, device, self._teardown_signals))
                elif what == REG_INITIAL:
                    if not self._registration_rest and state(ident) == REGISTERING:
                        set_state(ident, t_s, REGISTERED)
                    if self._registration_rest:  # the low queue is FIFO: its last low signal ends it
                        signal(t_s, LOW, ident, count=self._registration_rest - 1, queued=immediate)
                        signal(t_s, LOW, ident, tag=ident << _KIND_BITS | REG_LOW, queued=immediate)
                else:  # REG_LOW: the last signal of a registration (of this one, or of an earlier attempt)
                    if state(ident) == REGISTERING:
                        set_state(ident, t_s, REGISTERED)
            elif kind == _REGISTER:
                if state(a) == UNREGISTERED:
                    set_state(a, t_s, REGISTERING)
                    signal(t_s, LOWEST, a, tag=a << _KIND_BITS | REG_INITIAL)
            elif kind == _TEARDOWN:
                signal(t_s, NORMAL, a, count=b, queued=x == 0.0)
            elif kind == _LEAVE:
                if state(a) != UNREGISTERED:
                    set_state(a, t_s, UNREGISTERED)
            else:  # _CLOSE
                if state(a) != UNREGISTERED:
                    set_state(a, t_s, UNREGISTERED)
                register_later(t_s + reregister_delay_s, a)

        play(events)
        self._decide_calls(primary, d, in_yellow)
        heapq.heapify(calls_done)
        play(calls_done)
        d.registered_delta = registered - self.phones.registered
        d.keepalive_keep = self._registered_at(primary.keepalive_s, primary.keepalive_device, d)
        d.chatty_keep = [self._registered_at(times_s, ids, d) for times_s, ids in primary.chatty]
        return d

    def _registered_at(self, times_s: np.ndarray, ids: np.ndarray, d: _Decisions) -> np.ndarray:
        """For each device event (time, device): was the device registered then?"""
        keep: np.ndarray = self.phones.array[ids] == REGISTERED
        for device, changes in d.changes.items():
            mine = np.flatnonzero(ids == device)
            if len(mine):
                change_s = np.array([t for t, _ in changes])
                states = np.array([int(self.phones.array[device])] + [s for _, s in changes])
                # An event at a change's own time came before it (the event that closed a device was sent).
                keep[mine] = states[np.searchsorted(change_s, times_s[mine], side="left")] == REGISTERED
        return keep

    def _decide_calls(self, primary: _Primary, d: _Decisions, in_yellow: bool) -> None:
        """The block's call attempts, in bulk, after the device states are decided: each one's device
        (`_pick_devices`), then reorder tone in Code Yellow, else an off-hook signal that waits for dial
        tone (its call ids in time order)."""
        calls = len(primary.call_s)
        if not calls:
            return
        call_s = primary.call_s
        devices = self._pick_devices(primary, d)
        with_device = devices >= 0
        if in_yellow:
            count = self.scenario.load.rejection_signals_per_call
            d.calls_rejected += calls
            d.rejected_s.extend(call_s.tolist())
            d.signal_s[NORMAL].extend(np.repeat(call_s, count).tolist())
            d.signal_tag[NORMAL].extend([NO_TAG] * (calls * count))
            d.event_s.extend(np.repeat(call_s[with_device], count).tolist())
            d.event_device.extend(np.repeat(devices[with_device], count).tolist())
            return
        ids = self._next_call_id + d.calls_accepted + np.arange(calls)
        d.calls_accepted += calls
        d.new_calls.update(zip(ids.tolist(), zip(devices.tolist(), primary.call_holding_s.tolist(), strict=True),
                               strict=True))
        d.signal_s[NORMAL].extend(call_s.tolist())
        d.signal_tag[NORMAL].extend((ids << _KIND_BITS | OFFHOOK).tolist())
        d.event_s.extend(call_s[with_device].tolist())
        d.event_device.extend(devices[with_device].tolist())

    def _pick_devices(self, primary: _Primary, d: _Decisions) -> np.ndarray:
        """Each call's device: a uniformly random one registered at the call's time, -1 if none.

        Rejection sampling, as the per-signal engine: the first registered of the call's candidates; if
        none is, the registered device of rank fallback x count (uniform too).  A state change at a call's
        own time came before it (`_decide`'s order).
        """
        call_s, candidates = primary.call_s, primary.call_candidates
        if not len(self.phones.array):
            return np.full(len(call_s), -1, dtype=np.int64)
        registered = self.phones.array[candidates] == REGISTERED
        change_s: dict[int, list[float]] = {device: [t for t, _ in changes] for device, changes in d.changes.items()}
        if change_s:
            rows, columns = np.nonzero(np.isin(candidates, np.fromiter(change_s, dtype=np.int64)))
            for row, column in zip(rows.tolist(), columns.tolist(), strict=True):
                device = int(candidates[row, column])
                registered[row, column] = self._state_at(device, change_s[device], d, float(call_s[row])) == REGISTERED
        devices: np.ndarray = candidates[np.arange(len(call_s)), registered.argmax(axis=1)]
        none_picked = np.flatnonzero(~registered.any(axis=1))
        if len(none_picked):
            registered_then = self._registered_counts(d, call_s[none_picked], side="right")
            for row, count in zip(none_picked.tolist(), registered_then.tolist(), strict=True):
                t_s = float(call_s[row])
                if not count:
                    devices[row] = -1
                    continue
                mask = self.phones.array == REGISTERED
                for device, times_s in change_s.items():
                    mask[device] = self._state_at(device, times_s, d, t_s) == REGISTERED
                everyone = np.flatnonzero(mask)
                devices[row] = everyone[int(primary.call_fallback[row] * len(everyone))]
        return devices

    def _registered_counts(self, d: _Decisions, times_s: np.ndarray, side: Literal["left", "right"]) -> np.ndarray:
        """How many devices are registered at each of `times_s`, given the block's state changes `d.changes`
        (side "right": a change at that very time counts; "left": it does not yet)."""
        deltas: list[tuple[float, int]] = []
        for device, changes in d.changes.items():
            before = int(self.phones.array[device])
            for t_s, new in changes:
                if (new == REGISTERED) != (before == REGISTERED):
                    deltas.append((t_s, 1 if new == REGISTERED else -1))
                before = new
        deltas.sort()
        cumulative = np.cumsum([0] + [delta for _, delta in deltas])
        when = np.searchsorted(np.array([t for t, _ in deltas]), times_s, side=side)
        counts: np.ndarray = self.phones.registered + cumulative[when]
        return counts

    def _state_at(self, device: int, change_s: list[float], d: _Decisions, t_s: float) -> int:
        """`device`'s state at `t_s`, its changes at `t_s` made (`change_s`: their times, in order)."""
        made = bisect.bisect_right(change_s, t_s)
        return d.changes[device][made - 1][1] if made else int(self.phones.array[device])

    # ------------------------------------------------------------------ SCCP
    def _block_events(self, primary: _Primary, d: _Decisions) -> tuple[np.ndarray, np.ndarray]:
        """Every device event of the block (time, device), in time order."""
        assert d.keepalive_keep is not None
        times = [np.array(d.event_s), primary.keepalive_s[d.keepalive_keep]]
        ids = [np.array(d.event_device, dtype=np.int64), primary.keepalive_device[d.keepalive_keep]]
        for (chatty_s, chatty_ids), keep in zip(primary.chatty, d.chatty_keep, strict=True):
            times.append(chatty_s[keep])
            ids.append(chatty_ids[keep])
        all_s, all_ids = np.concatenate(times), np.concatenate(ids).astype(np.int64)
        order = np.argsort(all_s, kind="stable")
        return all_s[order], all_ids[order]

    def _sccp_closures(self, t0_s: float, primary: _Primary, d: _Decisions) -> list[tuple[float, int, int]]:
        """Devices the limiter closes in the block: (time, device, events in window), in time order."""
        limit = self.scenario.throttling.max_events_allowed
        if limit == 0:
            return []
        recent = sum(len(ids) for _, _, ids in self._sccp_ring)
        assert d.keepalive_keep is not None
        block_events = len(d.event_s) + int(np.count_nonzero(d.keepalive_keep)) + sum(
            int(np.count_nonzero(keep)) for keep in d.chatty_keep
        )
        if recent + block_events <= limit:
            return []  # no device can have more than `limit` events in any window
        times_s, ids = self._block_events(primary, d)
        ring_s = np.concatenate([t for _, t, _ in self._sccp_ring] + [times_s])
        ring_ids = np.concatenate([i for _, _, i in self._sccp_ring] + [ids])
        counts = np.bincount(ring_ids)
        closures = []
        for device in np.flatnonzero(counts > limit).tolist():
            mine_s = ring_s[ring_ids == device]
            since_s = self._last_close_s.get(device, -math.inf)
            while True:
                events_s = mine_s[mine_s > since_s]
                in_window = np.arange(len(events_s)) - np.searchsorted(events_s, events_s - SCCP_WINDOW_S,
                                                                       side="right") + 1
                over = np.flatnonzero((in_window > limit) & (events_s >= t0_s))
                if not len(over):
                    break
                close_s = float(events_s[over[0]])
                closures.append((close_s, device, int(in_window[over[0]])))
                since_s = close_s
        closures.sort()
        return closures

    # ---------------------------------------------------------------- commit
    def _commit(
        self, t0_s: float, t1_s: float, plan: BlockPlan, primary: _Primary, d: _Decisions, tally: _Rows
    ) -> None:
        """Make a computed block the past: the router moves on, and every count and change is kept."""
        commit(self.router, plan, self.draws, self.follow_draws)
        if self._uncounted_end_s is not None and self._uncounted_end_s < t1_s:
            self._uncounted_end_s = None
        carried = None
        for queue, served in enumerate(plan.served):
            if not served.count:
                continue
            self.wait_ms_by_priority[queue].add_many(served.wait_s * 1000.0)
            last = int(np.argmax(served.end_s))
            if served.end_s[last] >= t1_s:  # the one still in service at t1
                self._uncounted_end_s = float(served.end_s[last])
                if served.tags[last] != NO_TAG:
                    carried = (float(served.end_s[last]), int(served.tags[last]), float(served.arrival_s[last]))
        if self._carried is not None and self._carried[0] >= t1_s:
            carried = self._carried
        self._carried = carried
        self.signals_processed += int(tally.processed.sum())
        self.calls_attempted += len(primary.call_s)

        for device, new in d.state.items():
            self.phones.array[device] = new
        self.phones.registered += d.registered_delta
        self.calls_accepted += d.calls_accepted
        self.calls_rejected_throttled += d.calls_rejected
        self._calls_in_progress.update(d.new_calls)
        for call_id in d.done_calls:
            self._calls_in_progress.pop(call_id, None)
        self._next_call_id += d.calls_accepted
        if d.dial_tone_ms:
            self.dial_tone_delay_ms.add_many(np.array(d.dial_tone_ms))
        for t_s, kind, device, count in d.later:
            heapq.heappush(self._timed, (t_s, kind, next(self._seq), device, count))
        limit = self.scenario.throttling.max_events_allowed
        if limit:
            for close_s, device, total in d.closures:
                self.skinny_devices_throttled += 1
                self._last_close_s[device] = close_s
                self._report(device_closed(close_s, device, total, limit, self.skinny_devices_throttled))
            times_s, ids = self._block_events(primary, d)
            self._sccp_ring.append((t1_s, times_s, ids))
            while self._sccp_ring and self._sccp_ring[0][0] <= t1_s - SCCP_WINDOW_S - 1.0:
                self._sccp_ring.pop(0)

    # ------------------------------------------------------------- restarts
    def _code_red(self, now_s: float) -> None:
        lost = crash(self.router, now_s)
        self.signals_lost_restart += lost
        self._carried = None
        self._uncounted_end_s = None
        self._up = False
        self._back_at_s = now_s + self.scenario.node.restart_duration_s
        self._lost_in_restart = lost
        self._calls_in_progress.clear()
        self._timed.clear()
        self._sccp_ring.clear()
        self._last_close_s.clear()

    def _back_online(self, now_s: float) -> None:
        self._up = True
        self._back_at_s = None
        self.throttle.reset()
        self._report(callmanager_online(now_s, self._lost_in_restart, self.scenario.node.restart_duration_s))

    # --------------------------------------------------------------- seconds
    def _tally(
        self, t0_s: float, t1_s: float, plan: BlockPlan | None, primary: _Primary, d: _Decisions | None
    ) -> _Rows:
        """Per-second counts of a computed block and the readings at each second's end inside it (pure)."""
        first_row = math.floor(t0_s)
        rows = math.ceil(t1_s) - first_row

        inner_s = np.arange(first_row + 1, first_row + rows, dtype=float)  # second boundaries inside

        def per_row(times_s: np.ndarray) -> np.ndarray:
            """How many of the sorted `times_s` fall in each row."""
            cut = np.concatenate(([0], np.searchsorted(times_s, inner_s, side="left"), [len(times_s)]))
            return np.diff(cut)

        def per_row_and_sum(times_s: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """How many of the sorted `times_s` fall in each row, and the sum of their `values`."""
            cut = np.concatenate(([0], np.searchsorted(times_s, inner_s, side="left"), [len(times_s)]))
            running = np.empty(len(values) + 1)
            running[0] = 0.0
            np.cumsum(values, out=running[1:])
            return np.diff(cut), np.diff(running[cut])

        starts, wait_s, processed = np.zeros(rows, dtype=np.int64), np.zeros(rows), np.zeros(rows, dtype=np.int64)
        if plan is not None:
            for served in plan.served:
                for run in served.runs():  # start_s and end_s are sorted within a run
                    start_s, end_s = served.start_s[run], served.end_s[run]
                    started_in_row, waited_s = per_row_and_sum(start_s, served.wait_s[run])
                    starts += started_in_row
                    wait_s += waited_s
                    processed += per_row(end_s[:np.searchsorted(end_s, t1_s, side="left")])
            if self._uncounted_end_s is not None and self._uncounted_end_s < t1_s:
                processed[min(math.floor(self._uncounted_end_s) - first_row, rows - 1)] += 1
        rejected = per_row(np.array(d.rejected_s)) if d is not None else np.zeros(rows, dtype=np.int64)
        attempted = per_row(primary.call_s)
        tally = _Rows(first_row, starts, wait_s, processed, attempted, rejected.astype(np.int64),
                      [], [], [], [], [])
        ends_s = np.arange(math.floor(t0_s) + 1, math.floor(t1_s) + 1, dtype=float)
        if not len(ends_s):
            return tally
        tally.end_rows = [int(e) - 1 for e in ends_s]
        closed_s = np.array([t for t, _, _ in d.closures] if d is not None else [])
        tally.skinny = (self.skinny_devices_throttled + np.searchsorted(closed_s, ends_s, side="left")).tolist()
        if plan is None or d is None:
            tally.depths = [[0] * QUEUES for _ in ends_s]
            tally.oldest_s = [None for _ in ends_s]
            tally.registered = [self.phones.registered for _ in ends_s]
            return tally
        started, depths = [], []
        for q, queue in enumerate(self.router.queues):
            served = plan.served[q]
            begun = np.zeros(len(ends_s), dtype=np.int64)
            for run in served.runs():
                begun += np.searchsorted(served.start_s[run], ends_s, side="left")
            started.append(begun)
            arrived = sum((np.searchsorted(run_s, ends_s, side="left") for run_s in plan.arrived_s[q]),
                          np.zeros(len(ends_s), dtype=np.int64))
            depths.append(len(queue) + arrived - begun)
        tally.depths = np.array(depths).T.tolist()
        for k in range(len(ends_s)):
            oldest: float | None = None
            if not starts[tally.end_rows[k] - first_row] and any(tally.depths[k]):
                for q, queue in enumerate(self.router.queues):
                    if tally.depths[k][q]:
                        position = int(started[q][k])
                        head_s = (queue.arrival_at(position) if position < len(queue) else float(
                            np.sort(np.concatenate(plan.arrived_s[q]), kind="stable")[position - len(queue)]))
                        oldest = head_s if oldest is None else min(oldest, head_s)
            tally.oldest_s.append(oldest)
        tally.registered = self._registered_counts(d, ends_s, side="left").tolist()
        return tally

    @staticmethod
    def _delay_ms(tally: _Rows, index: int, end_index: int | None = None) -> float:
        """The expected-delay sample for row `index` of a tally (its end: reading `end_index`)."""
        end_index = index if end_index is None else end_index
        return expected_delay_ms(int(tally.starts[index]), float(tally.wait_s[index]), tally.oldest_s[end_index],
                                 float(tally.end_rows[end_index] + 1))

    def _write_row(
        self, tally: _Rows, index: int, end_index: int, state_during_second: ThrottleState | None = None
    ) -> None:
        """The end of a second: the expected-delay sample, throttling, the timeline row (`second_end`)."""
        row = tally.end_rows[end_index]
        now_s = float(row + 1)
        state_during_second = state_during_second or self.throttle.state
        delay_ms = self._delay_ms(tally, index, end_index)
        sample = self.seconds.sample(now_s, delay_ms, self._up, tally.depths[end_index], self.calls_rejected_throttled)
        for alarm in sample.alarms:
            self._report(alarm)
            if alarm.name == CODE_RED_ENTRY:
                self._code_red(now_s)
        # Read after the alarms: a Code Red second shows the restart's effect (empty queues, no phone).
        self.seconds.write_row(row, state_during_second, delay_ms, sample, Readings(
            tally.depths[end_index] if self._up else [0] * QUEUES, int(tally.processed[index]),
            int(tally.attempted[index]), int(tally.rejected[index]), tally.skinny[end_index],
            tally.registered[end_index] if self._up else self.phones.registered,
            capacity_factor_at(self._breakpoints, now_s),
        ))
