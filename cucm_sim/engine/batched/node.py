"""The batched model of one CUCM node (engine ``batched``): SimPy keeps the clock, numpy does the SDL work.

The same world and the same rules as the per-signal engine (`engine.signal`, whose module doc states the
modelling choices; all hold here), simulated a block of time at a time.  A block is a span of up to
`workload.SPAN_ROWS` seconds (fewer when the load is so heavy that a block's arrivals would take more
than `workload.MAX_BLOCK_BYTES`) while the throttling state holds (every second's sample is checked on a
copy of the state machine first; if the state would change inside the span, it is redone second by
second), or one second cut where the capacity changes or the node comes back from a restart.  This
module keeps that clock and the engine's side of the seam (`engine.interface`); each block goes through
steps that read the node only through a frozen snapshot (`state.NodeSnapshot`), each in its module:

1. generate (`arrivals`): the arrival streams hand out everything that arrives in the block, whatever
   the node's state: background and burst signals, keepalives, chatty-device events, call attempts;
   with them, the node's timed events that fall in it (`events.TimedEvents`: phones that arrive or
   leave, teardowns and re-registrations decided by earlier blocks);
2. decide (`decide`): the block's sparse events, played in time order as named records (`events`) --
   call attempts (admitted or rejected by the throttling state, which cannot change inside the block),
   registrations, teardowns, SCCP closures (`sccp_block`), and the signals handled with something
   waiting on them (a tag, `tags`: a call's off-hook signal gives dial tone and queues the set-up
   signals, a registration step queues the next) -- say which signals enter which queue when;
3. serve (`serve`, over `sdl.block`): every service that starts in the block, exactly:
   `serve_fifo_block` when only the normal queue has work (it queues a call's follow-ons itself), else
   `serve_block`;
4. settle (`settle`): the handled signals of step 3 go back into step 2, until they no longer change.
   A pass is exact up to the first follow-on signal it did not know of, and the next pass knows it, so
   the fixed point is reached and is what the per-signal engine would have done.  Where follow-ons
   chain (a registration storm), the exact slow paths of `sdl.block` find the handled signals and the
   passes confirm them;
5. tally (`tally`): per-second counts and the readings at each second's end in the block, from which
   the span is checked against the throttling rules;
6. commit (`commit`): the block becomes the past (`state.NodeState`), and each second's end is sampled
   and written (`second_end`).

Nothing grows with the run: waits go into fixed-size histograms, the timeline has one row per second,
and the queues hold only the signals actually waiting (at most `workload.MAX_QUEUED_SIGNALS`: past
it the run stops, see `second_end`).
"""

from __future__ import annotations

import bisect
import copy
import math
from collections.abc import Generator, Mapping
from typing import Any, ClassVar

import numpy as np
import simpy

from cucm_sim.engine.batched.arrivals import ArrivalStreams, PrimaryArrivals
from cucm_sim.engine.batched.commit import commit_block
from cucm_sim.engine.batched.decide import calls_made
from cucm_sim.engine.batched.events import Leaves, Registers
from cucm_sim.engine.batched.settle import settle
from cucm_sim.engine.batched.state import NodeConstants, NodeSnapshot, NodeState
from cucm_sim.engine.batched.tally import Rows, delay_ms, tally
from cucm_sim.engine.devices import DeviceTable
from cucm_sim.engine.interface import NodeCounters, OnAlarm, PhoneArrives, PhoneEvent
from cucm_sim.engine.second_end import BacklogLimit, Readings, SecondEnds
from cucm_sim.engine.vocabulary import BATCHED_STREAMS
from cucm_sim.measures.stats import LogHistogram
from cucm_sim.rules.alarms import CODE_RED_ENTRY, callmanager_online
from cucm_sim.rules.priorities import QUEUES
from cucm_sim.rules.throttling import ThrottleState, ThrottleStateMachine
from cucm_sim.scenario.profiles import capacity_breakpoints
from cucm_sim.scenario.schema import Scenario
from cucm_sim.scenario.workload import BATCHED_COSTS, MAX_QUEUED_SIGNALS, batched_block_seconds
from cucm_sim.sdl.block import RouterState, ServiceDraws

CALM_ROWS = 16
"""After a state change inside a span, seconds computed one at a time before spans are tried again."""


class BatchedNodeModel:
    """One CUCM node under a scenario's load, simulated in blocks; `attach` it to a world (`engine.interface`)."""

    stream_names: ClassVar[tuple[str, ...]] = BATCHED_STREAMS

    def __init__(self, scenario: Scenario, streams: Mapping[str, np.random.SeedSequence]) -> None:
        self.scenario = scenario
        self._streams = streams
        self.rngs = {name: np.random.default_rng(streams[name]) for name in BATCHED_STREAMS if name != "registration"}
        self.duration_s = scenario.duration_s
        self.throttle = ThrottleStateMachine(scenario.throttling)
        self._breakpoints = capacity_breakpoints(scenario)
        self._breakpoint_times_s = [t for t, _ in self._breakpoints]
        self._cut_times_s = sorted(t for t, _ in self._breakpoints if t > 0)
        self._up = True
        self._back_at_s: float | None = None
        self._lost_in_restart = 0
        self._ahead: dict[int, PrimaryArrivals] = {}  # arrivals of seconds computed in a span that was undone
        self._calm_until_row = 0
        self._chained = False  # the last block computed needed the slow path
        self._committed_s = 0.0  # the end of the last block made the past
        self.passes = 0
        """Server passes over all blocks (one per block when no follow-on signal interacts)."""

        self._memory_span = batched_block_seconds(scenario)  # SPAN_ROWS, unless a block would take too much memory
        self._span_limit = self._memory_span
        self.seconds = SecondEnds(self.throttle, self.duration_s, BacklogLimit(
            MAX_QUEUED_SIGNALS["batched"], "batched", scenario.name,
            scenario.node.capacity_factor * 1000.0 / scenario.node.signal_service_time_ms.mean,
            BATCHED_COSTS.bytes_per_queued_signal,
        ))

    # ------------------------------------------------------------ the seam
    def attach(self, env: simpy.Environment, phones: DeviceTable, on_alarm: OnAlarm) -> None:
        """Join the world: serve `phones` on `env`'s clock, reporting every alarm to `on_alarm` once final."""
        self.env = env
        self._report = on_alarm
        service_ms = self.scenario.node.signal_service_time_ms
        self.state = NodeState(
            RouterState.idle(), ServiceDraws(service_ms, self.rngs["service"]),
            ServiceDraws(service_ms, self.rngs["follow_on_service"]), phones,
        )
        self._arrivals = ArrivalStreams(self.scenario, self._streams, self.rngs, phones)
        load = self.scenario.load
        self._constants = NodeConstants(
            setup_signals=(load.setup_signals_per_call or 1) - 1,
            teardown_signals=load.signals_per_call - (load.setup_signals_per_call or 1),
            rejection_signals=load.rejection_signals_per_call,
            registration_rest=phones.registration_signals - 1,
            reregister_delay_s=phones.reregister_delay_s,
            keepalive_queue=phones.keepalive_queue,
            chatty_queues=self._arrivals.chatty_queues,
            sccp_limit=self.scenario.throttling.max_events_allowed,
            calls_follow_phones=phones.calls_follow_phones,
            announces_registrations=phones.announces_registrations,
        )
        self._clock = env.process(self._run_blocks())

    def deliver(self, t_s: float, event: PhoneEvent) -> None:
        """A phone arrives (starts registering) or leaves at `t_s`, no earlier than `committed_until_s()`."""
        if t_s < self._committed_s:
            raise ValueError(f"delivery at {t_s} s is in the past of the batched engine ({self._committed_s} s)")
        self.state.timed.push(t_s, Registers(event.device) if isinstance(event, PhoneArrives) else Leaves(event.device))

    def committed_until_s(self) -> float:
        """The end of the last block made the past (s): up to a span ahead of `env.now`."""
        return self._committed_s

    def limit_lookahead(self, seconds: int) -> None:
        """From now on, never compute a span of more than `seconds` (at least 1) ahead of the clock (a larger
        limit than the engine's own memory bound gives that bound)."""
        self._span_limit = max(1, min(self._memory_span, seconds))

    @property
    def finished(self) -> simpy.Event:
        """The clock's process: it ends with the last second's sample."""
        return self._clock

    def counters(self) -> NodeCounters:
        """The node's totals and timeline so far."""
        totals = self.state.totals
        return NodeCounters(
            totals.calls_attempted, totals.calls_accepted, totals.calls_rejected_throttled,
            totals.calls_failed_node_down, totals.signals_processed, totals.signals_lost_restart,
            totals.signals_dropped_node_down, totals.skinny_devices_throttled, self.state.phones.registered,
            self.seconds.max_average_expected_delay_ms, LogHistogram.merged(totals.wait_ms_by_priority),
            tuple(totals.wait_ms_by_priority), totals.dial_tone_delay_ms, self.seconds.states, self.seconds.timeline,
        )

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
        next_cut = bisect.bisect_right(self._cut_times_s, row)  # the first cut after the row's start
        if next_cut < len(self._cut_times_s) and self._cut_times_s[next_cut] < row + rows:
            cut_s = self._cut_times_s[next_cut]
            if cut_s < row + 1:
                return 0
            rows = math.floor(cut_s) - row
        return rows

    def _primary(self, row: int, rows: int) -> PrimaryArrivals:
        """The arrivals of whole seconds row .. row + rows - 1 (kept from a span that was undone, or new)."""
        if row not in self._ahead:
            return self._arrivals.generate(float(row), float(row + rows))
        parts = [self._ahead.pop(r) if r in self._ahead else self._arrivals.generate(float(r), float(r + 1))
                 for r in range(row, row + rows)]
        return PrimaryArrivals.joined(parts)

    def _snapshot(self, t0_s: float) -> NodeSnapshot:
        """The node as the steps of a block that starts at `t0_s` (s) read it."""
        return self.state.snapshot(self._constants, self._capacity_at(t0_s),
                                   self.throttle.state is ThrottleState.CODE_YELLOW, self._chained)

    def _span(self, row: int, rows: int) -> bool:
        """Compute seconds row .. row + rows - 1 as one block, under this second's throttling state.

        Every second's sample is checked on a copy of the state machine first: if the state would change
        before the span's last second ends, nothing is kept (the arrivals are, for the next try) and this
        returns False.
        """
        t0_s, t1_s = float(row), float(row + rows)
        primary = self._primary(row, rows)
        primary.due = self.state.timed.pop_before(t1_s)
        node = self._snapshot(t0_s)
        settled = settle(node, t0_s, t1_s, primary)
        self.passes += settled.passes
        self._chained = settled.chained
        counted = tally(node, t0_s, t1_s, settled.plan, primary, settled.decisions)
        if rows > 1:
            trial = copy.deepcopy(self.throttle)
            for index in range(rows - 1):
                if trial.observe(float(row + index + 1), delay_ms(counted, index)):
                    for r in range(row, row + rows):
                        self._ahead[r] = primary.window(float(r), float(r + 1))
                    self.state.timed.put_back(primary.due)
                    return False
        commit_block(self.state, self._constants, t1_s, settled.plan, primary, settled.decisions, counted,
                     self._report)
        self._committed_s = t1_s
        for index in range(rows):
            self._write_row(counted, index, index)
        return True

    def _second_in_pieces(self, row: int) -> None:
        """One second, cut where the capacity changes or the node comes back; or while it is down."""
        t0_s, end_s = float(row), float(row + 1)
        state_during_second = self.throttle.state  # a restart inside it resets the machine
        pieces = []
        while t0_s < end_s:
            next_cut = bisect.bisect_right(self._cut_times_s, t0_s)
            t1_s = min(end_s, self._cut_times_s[next_cut]) if next_cut < len(self._cut_times_s) else end_s
            if self._back_at_s is not None and t0_s < self._back_at_s < t1_s:
                t1_s = self._back_at_s
            primary = self._arrivals.generate(t0_s, t1_s)
            primary.due = self.state.timed.pop_before(t1_s)
            node = self._snapshot(t0_s)
            if self._up:
                settled = settle(node, t0_s, t1_s, primary)
                self.passes += settled.passes
                self._chained = settled.chained
                counted = tally(node, t0_s, t1_s, settled.plan, primary, settled.decisions)
                commit_block(self.state, self._constants, t1_s, settled.plan, primary, settled.decisions, counted,
                             self._report)
            else:
                counted = tally(node, t0_s, t1_s, None, primary, None)
                totals = self.state.totals
                calls = len(calls_made(self._constants, primary, None))
                totals.calls_attempted += calls
                totals.calls_failed_node_down += calls
                totals.signals_dropped_node_down += sum(len(times_s) for times_s in primary.plain_s)
            pieces.append(counted)
            self._committed_s = t1_s
            if self._back_at_s is not None and t1_s >= self._back_at_s:
                self._back_online(t1_s)
            t0_s = t1_s
        whole = pieces[-1]
        for piece in pieces[:-1]:
            whole.add_earlier_piece(piece)
        self._write_row(whole, 0, 0, state_during_second)

    def _capacity_at(self, t_s: float) -> float:
        """The capacity factor in force at `t_s` (s): `profiles.capacity_factor_at`, by bisection over the
        breakpoints' times kept (a recording's capacity changes every interval)."""
        index = bisect.bisect_right(self._breakpoint_times_s, t_s) - 1
        return self._breakpoints[max(index, 0)][1]

    # ------------------------------------------------------------- restarts
    def _code_red(self, now_s: float) -> None:
        self._lost_in_restart = self.state.crash(now_s)
        self._up = False
        self._back_at_s = now_s + self.scenario.node.restart_duration_s

    def _back_online(self, now_s: float) -> None:
        self._up = True
        self._back_at_s = None
        self.throttle.reset()
        self._report(callmanager_online(now_s, self._lost_in_restart, self.scenario.node.restart_duration_s))

    # --------------------------------------------------------------- seconds
    def _write_row(
        self, counted: Rows, index: int, end_index: int, state_during_second: ThrottleState | None = None
    ) -> None:
        """The end of a second: the expected-delay sample, throttling, the timeline row (`second_end`)."""
        row = counted.end_rows[end_index]
        now_s = float(row + 1)
        state_during_second = state_during_second or self.throttle.state
        sample_delay_ms = delay_ms(counted, index, end_index)
        totals = self.state.totals
        sample = self.seconds.sample(now_s, sample_delay_ms, self._up, counted.depths[end_index],
                                     totals.calls_rejected_throttled)
        for alarm in sample.alarms:
            self._report(alarm)
            if alarm.name == CODE_RED_ENTRY:
                self._code_red(now_s)
        # Read after the alarms: a Code Red second shows the restart's effect (empty queues, no phone).
        self.seconds.write_row(row, state_during_second, sample_delay_ms, sample, Readings(
            counted.depths[end_index] if self._up else [0] * QUEUES, int(counted.processed[index]),
            int(counted.attempted[index]), int(counted.rejected[index]), counted.skinny[end_index],
            counted.registered[end_index] if self._up else self.state.phones.registered,
            self._capacity_at(now_s), counted.processed_by_queue[:, index].tolist(),
        ))
