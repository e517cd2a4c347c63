"""The batched engine's block steps, each against an independent, plain computation.

`engine.batched` computes a block in steps over a read-only snapshot of the node (see its `node`
module doc).  Here each step is checked on its own, mostly with hypothesis: the tag packing round-trips;
the timed events come out in (time, rank, arrival) order; the device-state helpers agree with a loop
over each device's changes; the decide step plays simultaneous events in the per-signal engine's order
(checked against a reference player that sorts a list); the call's device is the first registered
candidate or the fallback's rank among the registered; the SCCP closures of consecutive blocks are
those of `rules.sccp.SccpEventLimiter` fed one event at a time; the tally's per-second counts and
readings are those counted one signal at a time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pytest
from fixed_draws import fixed_draws
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cucm_sim.engine.batched.arrivals import CANDIDATES_PER_CALL, PrimaryArrivals
from cucm_sim.engine.batched.decide import Decisions, decide, pick_devices
from cucm_sim.engine.batched.device_states import registered_at, registered_counts, state_at
from cucm_sim.engine.batched.events import (
    Closes,
    Closure,
    Entry,
    Event,
    Handled,
    Leaves,
    Registers,
    TearsDown,
    TimedEvents,
)
from cucm_sim.engine.batched.sccp_block import closures_in, remember
from cucm_sim.engine.batched.state import NodeConstants, NodeSnapshot, RingBlock
from cucm_sim.engine.batched.tags import KIND_BITS, OFFHOOK, REG_INITIAL, REG_LOW, ident_of, kind_of, pack, unpack
from cucm_sim.engine.batched.tally import counts_and_sums_per_row, counts_per_row, tally
from cucm_sim.engine.vocabulary import REGISTERED, REGISTERING, UNREGISTERED
from cucm_sim.rules.priorities import LOW, LOWEST, NORMAL, QUEUES
from cucm_sim.rules.sccp import SccpEventLimiter
from cucm_sim.sdl.block import NO_TAG, Arrivals, RouterState, serve_block


def _node(
    states: Sequence[int], *, registration_rest: int = 2, reregister_delay_s: float = 60.0,
    calls_in_progress: dict[int, tuple[int, float]] | None = None,
) -> NodeSnapshot:
    """A node at a block's start with phones in `states`, an idle router, no SCCP limit."""
    device_states = np.array(states, dtype=np.int8)
    constants = NodeConstants(
        setup_signals=5, teardown_signals=6, rejection_signals=1, registration_rest=registration_rest,
        reregister_delay_s=reregister_delay_s, keepalive_queue=LOW, chatty_queues=(), sccp_limit=0,
    )
    return NodeSnapshot(
        constants, RouterState.idle(), fixed_draws(), fixed_draws(), 1.0, False, device_states,
        int(np.count_nonzero(device_states == REGISTERED)), calls_in_progress or {}, 0, None, None, 0, [], {}, 0,
        False,
    )


def _primary(call_s: Sequence[float] = (), candidates: Sequence[Sequence[int]] = (),
             due: list[Entry] | None = None) -> PrimaryArrivals:
    """A block's arrivals: no stream signal, keepalive or chatty event; the given calls and timed events."""
    calls = len(call_s)
    return PrimaryArrivals(
        [np.empty(0) for _ in range(QUEUES)], np.empty(0), np.empty(0, dtype=np.int64), [],
        np.array(call_s, dtype=float), np.array(candidates, dtype=np.int64).reshape(calls, CANDIDATES_PER_CALL),
        np.zeros(calls), np.full(calls, 1000.0), due or [],
    )


def _due(events: Sequence[tuple[float, Event]]) -> list[Entry]:
    timed = TimedEvents()
    for t_s, event in events:
        timed.push(t_s, event)
    return timed.pop_before(math.inf)


# ------------------------------------------------------------------ tags
@given(kind=st.sampled_from([OFFHOOK, REG_INITIAL, REG_LOW]), ident=st.integers(0, 2**60))
def test_a_tag_gives_back_its_kind_and_id(kind: int, ident: int) -> None:
    tag = pack(kind, ident)
    assert (kind_of(tag), ident_of(tag)) == unpack(tag) == (kind, ident)
    assert tag != NO_TAG and tag >= 0


@given(kind=st.sampled_from([OFFHOOK, REG_INITIAL, REG_LOW]), idents=st.lists(st.integers(0, 2**50), max_size=20))
def test_tags_pack_an_array_as_they_pack_each_id(kind: int, idents: list[int]) -> None:
    ids = np.array(idents, dtype=np.int64)
    tags = pack(kind, ids)
    assert tags.dtype == np.int64
    assert tags.tolist() == [pack(kind, ident) for ident in idents] == [ident * 2**KIND_BITS + kind for ident in idents]
    assert kind_of(tags).tolist() == [kind] * len(idents)
    assert ident_of(tags).tolist() == idents


# ------------------------------------------------------------------ timed events
_ORDER = [Handled, Closes, Registers, TearsDown, Leaves]
"""The per-signal engine's order of simultaneous events, first to last (a phone that leaves: last)."""
_events = st.one_of(
    st.builds(Registers, st.integers(0, 3)), st.builds(Leaves, st.integers(0, 3)),
    st.builds(Closes, st.integers(0, 3)), st.builds(TearsDown, st.integers(-1, 3), st.integers(0, 3), st.booleans()),
)


@given(st.lists(st.tuples(st.sampled_from([0.5, 1.0, 1.5, 2.5]), _events), max_size=30))
def test_timed_events_come_out_by_time_then_rank_then_arrival(pushed: list[tuple[float, Event]]) -> None:
    timed = TimedEvents()
    for t_s, event in pushed:
        timed.push(t_s, event)
    expected = sorted(pushed, key=lambda item: (item[0], _ORDER.index(type(item[1]))))  # stable: pushed order
    timed.put_back(timed.pop_before(1.5))  # an undone block's, back in their places
    again = timed.pop_before(1.5)
    rest = timed.pop_before(math.inf)
    assert [(t_s, event) for t_s, _, _, event in again + rest] == expected
    assert all(t_s < 1.5 for t_s, _, _, _ in again) and all(t_s >= 1.5 for t_s, _, _, _ in rest)


# ------------------------------------------------------------------ device states
_changes = st.dictionaries(
    st.integers(0, 5),
    st.lists(st.tuples(st.sampled_from([0.1, 0.2, 0.3, 0.4]), st.sampled_from([UNREGISTERED, REGISTERING,
                                                                                REGISTERED])),
             min_size=1, max_size=4).map(sorted),
    max_size=4,
)
_states = st.lists(st.sampled_from([UNREGISTERED, REGISTERING, REGISTERED]), min_size=6, max_size=6)


def _state_then(states: list[int], changes: dict[int, list[tuple[float, int]]], device: int, t_s: float,
                made_at_t: bool) -> int:
    """A device's state at t_s, by walking its changes; `made_at_t`: a change at t_s itself counts."""
    state = states[device]
    for change_s, new in changes.get(device, []):
        if change_s < t_s or (made_at_t and change_s == t_s):
            state = new
    return state


@settings(max_examples=300, deadline=None)
@given(states=_states, changes=_changes,
       events=st.lists(st.tuples(st.sampled_from([0.0, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5]), st.integers(0, 5)),
                       max_size=20))
def test_device_states_at_a_time_follow_each_device_s_changes(
    states: list[int], changes: dict[int, list[tuple[float, int]]], events: list[tuple[float, int]]
) -> None:
    states_before = np.array(states, dtype=np.int8)
    events = sorted(events)
    times_s = np.array([t for t, _ in events], dtype=float)
    ids = np.array([device for _, device in events], dtype=np.int64)
    # An event at a change's own time was sent before the change.
    assert registered_at(states_before, changes, times_s, ids).tolist() == [
        _state_then(states, changes, device, t_s, made_at_t=False) == REGISTERED for t_s, device in events
    ]
    registered_before = states.count(REGISTERED)
    sides: tuple[tuple[Literal["left", "right"], bool], ...] = (("left", False), ("right", True))
    for side, made_at_t in sides:
        assert registered_counts(states_before, registered_before, changes, times_s, side).tolist() == [
            sum(_state_then(states, changes, device, t_s, made_at_t) == REGISTERED for device in range(len(states)))
            for t_s in times_s.tolist()
        ]
    for t_s, device in events:
        change_s = [t for t, _ in changes.get(device, [])]
        if change_s:
            assert state_at(states_before, changes, device, change_s, t_s) == _state_then(
                states, changes, device, t_s, made_at_t=True)


@settings(max_examples=300, deadline=None)
@given(states=_states, changes=_changes, data=st.data())
def test_a_call_s_device_is_its_first_registered_candidate_or_the_fallback_s_rank(
    states: list[int], changes: dict[int, list[tuple[float, int]]], data: st.DataObject
) -> None:
    calls = data.draw(st.integers(0, 8))
    call_s = sorted(data.draw(st.lists(st.sampled_from([0.0, 0.1, 0.2, 0.25, 0.3, 0.4]), min_size=calls,
                                       max_size=calls)))
    candidates = data.draw(st.lists(st.lists(st.integers(0, 5), min_size=CANDIDATES_PER_CALL,
                                             max_size=CANDIDATES_PER_CALL), min_size=calls, max_size=calls))
    fallback = data.draw(st.lists(st.floats(0.0, 0.999), min_size=calls, max_size=calls))
    got = pick_devices(
        np.array(states, dtype=np.int8), states.count(REGISTERED), changes, np.array(call_s, dtype=float),
        np.array(candidates, dtype=np.int64).reshape(calls, CANDIDATES_PER_CALL), np.array(fallback),
    )
    expected = []
    for t_s, mine, draw in zip(call_s, candidates, fallback, strict=True):
        # A state change at the call's own time came before it.
        registered = [device for device in range(len(states))
                      if _state_then(states, changes, device, t_s, made_at_t=True) == REGISTERED]
        first = [device for device in mine if device in registered]
        expected.append(first[0] if first else registered[int(draw * len(registered))] if registered else -1)
    assert got.tolist() == expected


# ------------------------------------------------------------------ decide
_TIMES_S = [0.2, 0.4, 0.6]


class _Reference:
    """The registration rules played one event at a time from a sorted list (no heap, no closures)."""

    def __init__(self, states: list[int], rest: int, delay_s: float, t1_s: float) -> None:
        self.state = dict(enumerate(states))
        self.rest, self.delay_s, self.t1_s = rest, delay_s, t1_s
        self.changes: dict[int, list[tuple[float, int]]] = {}
        self.queued: dict[int, list[tuple[float, int]]] = {LOW: [], LOWEST: []}
        self.later: list[tuple[float, Event]] = []

    def set(self, device: int, t_s: float, new: int) -> None:
        self.state[device] = new
        self.changes.setdefault(device, []).append((t_s, new))

    def play(self, events: list[tuple[float, int, int, tuple[str, int]]]) -> None:
        """`events`: (t_s, rank, order known, (what, device)), played sorted; new ones join the list."""
        known = len(events)
        while events:
            events.sort()
            t_s, _, _, (what, device) = events.pop(0)
            if what == "initial":
                if not self.rest and self.state[device] == REGISTERING:
                    self.set(device, t_s, REGISTERED)
                if self.rest:
                    self.queued[LOW] += [(t_s, NO_TAG)] * (self.rest - 1) + [(t_s, pack(REG_LOW, device))]
            elif what == "low":
                if self.state[device] == REGISTERING:
                    self.set(device, t_s, REGISTERED)
            elif what == "register":
                if self.state[device] == UNREGISTERED:
                    self.set(device, t_s, REGISTERING)
                    self.queued[LOWEST].append((t_s, pack(REG_INITIAL, device)))
            elif what == "leave":
                if self.state[device] != UNREGISTERED:
                    self.set(device, t_s, UNREGISTERED)
            else:  # close
                if self.state[device] != UNREGISTERED:
                    self.set(device, t_s, UNREGISTERED)
                if t_s + self.delay_s < self.t1_s:
                    events.append((t_s + self.delay_s, _ORDER.index(Registers), known, ("register", device)))
                    known += 1
                else:
                    self.later.append((t_s + self.delay_s, Registers(device)))


_sparse = st.lists(
    st.tuples(st.sampled_from(_TIMES_S), st.sampled_from(["initial", "low", "close", "register", "leave"]),
              st.integers(0, 3)),
    max_size=14,
)


@settings(max_examples=400, deadline=None)
@given(states=st.lists(st.sampled_from([UNREGISTERED, REGISTERING, REGISTERED]), min_size=4, max_size=4),
       sparse=_sparse, rest=st.integers(0, 3), delay_s=st.sampled_from([0.2, 0.4, 5.0]))
def test_decide_plays_simultaneous_events_in_the_per_signal_engine_s_order(
    states: list[int], sparse: list[tuple[float, str, int]], rest: int, delay_s: float
) -> None:
    # Handled signals (in end order), then SCCP closures (in time order), then the node's timed events.
    handled = sorted((t_s, pack(REG_INITIAL if what == "initial" else REG_LOW, device), t_s - 0.01)
                     for t_s, what, device in sparse if what in ("initial", "low"))
    closures: list[Closure] = sorted((t_s, device, 9) for t_s, what, device in sparse if what == "close")
    timed = [(t_s, Registers(device) if what == "register" else Leaves(device))
             for t_s, what, device in sparse if what in ("register", "leave")]
    t1_s = 1.0
    d = decide(_node(states, registration_rest=rest, reregister_delay_s=delay_s), 0.0, t1_s,
               _primary(due=_due(timed)), handled, closures)

    reference = _Reference(states, rest, delay_s, t1_s)
    known: list[tuple[float, int, int, tuple[str, int]]] = []
    for t_s, tag, _ in handled:
        known.append((t_s, _ORDER.index(Handled), len(known),
                      ("initial" if kind_of(tag) == REG_INITIAL else "low", ident_of(tag))))
    for t_s, device, _ in closures:
        known.append((t_s, _ORDER.index(Closes), len(known), ("close", device)))
    for t_s, event in sorted(timed, key=lambda item: (item[0], _ORDER.index(type(item[1])))):
        known.append((t_s, _ORDER.index(type(event)), len(known),
                      ("register" if isinstance(event, Registers) else "leave", event.device)))
    reference.play(known)

    assert d.changes == reference.changes
    assert d.state == {device: changes[-1][1] for device, changes in reference.changes.items()}
    assert d.registered_delta == sum(s == REGISTERED for s in reference.state.values()) - states.count(REGISTERED)
    for queue in (LOW, LOWEST):
        assert list(zip(d.signal_s[queue], d.signal_tag[queue], strict=True)) == reference.queued[queue]
    assert d.later == reference.later


def test_a_phone_that_registers_and_leaves_at_once_leaves_last() -> None:
    both: list[tuple[float, Event]] = [(0.5, Leaves(0)), (0.5, Registers(0))]
    d = decide(_node([UNREGISTERED]), 0.0, 1.0, _primary(due=_due(both)), [], [])
    assert d.changes == {0: [(0.5, REGISTERING), (0.5, UNREGISTERED)]}
    assert d.signal_tag[LOWEST] == [pack(REG_INITIAL, 0)]


def test_a_registration_ended_at_a_call_s_time_lets_the_call_use_the_phone() -> None:
    # The phone's last registration signal is handled at 0.5, as a call attempt picks it: the state
    # changes first, so the call has a device; one handled just after leaves the call without one.
    for end_s, caller in ((0.5, 0), (0.5 + 1e-6, -1)):
        d = decide(_node([REGISTERING]), 0.0, 1.0, _primary([0.5], [[0] * CANDIDATES_PER_CALL]),
                   [(end_s, pack(REG_LOW, 0), 0.2)], [])
        assert d.new_calls == {0: (caller, 1000.0)}
        assert d.signal_tag[NORMAL] == [pack(OFFHOOK, 0)]
        assert d.event_device == ([0] if caller == 0 else [])


def test_a_teardown_and_a_handled_off_hook_signal_at_once_keep_their_places() -> None:
    # The off-hook signal handled at 0.25 (call 7, holding 0.25 s) queues its set-up signals at 0.25 and its
    # teardown at 0.5, where a teardown from an earlier block is already due: that one goes first.
    node = _node([REGISTERED, REGISTERED], calls_in_progress={7: (1, 0.25)})
    d = decide(node, 0.0, 1.0, _primary(due=_due([(0.5, TearsDown(0, 2, True))])), [(0.25, pack(OFFHOOK, 7), 0.05)],
               [])
    assert d.done_calls == [7]
    assert d.dial_tone_ms == pytest.approx([200.0])
    assert d.signal_s[NORMAL] == [0.25] * 5 + [0.5] * 8
    assert d.event_device == [1] * 5 + [0] * 2 + [1] * 6


# ------------------------------------------------------------------ SCCP
@settings(max_examples=300, deadline=None)
@given(
    times_s=st.lists(st.integers(0, 47).map(lambda k: k * 0.25), unique=True, max_size=48),
    devices=st.lists(st.integers(0, 3), min_size=48, max_size=48),
    limit=st.integers(1, 6),
)
def test_sccp_closures_of_consecutive_blocks_are_the_limiter_s(times_s: list[float], devices: list[int],
                                                               limit: int) -> None:
    events = sorted(zip(times_s, devices[:len(times_s)], strict=True))
    limiter = SccpEventLimiter(limit)
    expected = []
    for t_s, device in events:
        total = limiter.record(device, t_s)
        if total is not None:
            expected.append((t_s, device, total))

    ring: list[RingBlock] = []
    last_close_s: dict[int, float] = {}
    found: list[Closure] = []
    for t0_s in range(12):
        mine = [(t_s, device) for t_s, device in events if t0_s <= t_s < t0_s + 1]
        block_s = np.array([t for t, _ in mine], dtype=float)
        block_ids = np.array([device for _, device in mine], dtype=np.int64)
        closures = closures_in(limit, ring, last_close_s, float(t0_s), block_s, block_ids)
        assert closures == sorted(closures)
        for close_s, device, _ in closures:
            last_close_s[device] = close_s
        found += closures
        remember(ring, float(t0_s + 1), block_s, block_ids)
        assert all(end_s > t0_s + 1 - 6.0 for end_s, _, _ in ring)  # the ring stays short
    assert found == expected


# ------------------------------------------------------------------ tally
@given(times_s=st.lists(st.floats(10.0, 13.9, allow_nan=False).map(lambda t: round(t, 1)), max_size=40),
       values=st.lists(st.floats(0.0, 1.0), min_size=40, max_size=40))
def test_counts_per_row_are_the_times_in_each_second(times_s: list[float], values: list[float]) -> None:
    times_s = sorted(times_s)  # rounding to 0.1 s puts some times on a second's boundary exactly
    inner_s = np.array([11.0, 12.0, 13.0])
    by_row = [[v for t, v in zip(times_s, values, strict=False) if math.floor(t) == 10 + row] for row in range(4)]
    assert counts_per_row(np.array(times_s), inner_s).tolist() == [len(row) for row in by_row]
    counts, sums = counts_and_sums_per_row(np.array(times_s), np.array(values[:len(times_s)]), inner_s)
    assert counts.tolist() == [len(row) for row in by_row]
    assert sums.tolist() == pytest.approx([sum(row) for row in by_row])


_off_second_ends = st.floats(0.0, 2.999, allow_nan=False).filter(lambda t: t < 1.0 or t - math.floor(t) > 1e-6)
"""An arrival at most TIE_S after a second's end may take a slot that starts before it: not counted here."""


@settings(max_examples=200, deadline=None)
@example(arrivals=[[], [0.0] * 12, [], []], service_ms=[250.0] * 120, call_s=[], closed_s=[])  # on the seconds
@given(
    arrivals=st.lists(st.lists(_off_second_ends, max_size=25), min_size=QUEUES, max_size=QUEUES),
    service_ms=st.lists(st.one_of(st.floats(5.0, 400.0), st.sampled_from([62.5, 125.0, 250.0])), min_size=120,
                        max_size=120),
    call_s=st.lists(st.floats(0.0, 2.999, allow_nan=False), max_size=10),
    closed_s=st.lists(st.floats(0.0, 2.999, allow_nan=False), max_size=3),
)
def test_a_block_s_tally_is_its_signals_counted_one_by_one(
    arrivals: list[list[float]], service_ms: list[float], call_s: list[float], closed_s: list[float]
) -> None:
    t0_s, t1_s = 0.0, 3.0
    arrivals = [sorted(queue) for queue in arrivals]
    node = _node([REGISTERED] * 3)
    plan = serve_block(node.router, t0_s, t1_s, Arrivals(
        [np.array(queue, dtype=float) for queue in arrivals], [np.full(len(queue), NO_TAG) for queue in arrivals]
    ), fixed_draws(service_ms), 1.0)
    d = Decisions(rejected_s=sorted(call_s)[::2], closures=[(t, 0, 9) for t in sorted(closed_s)])
    counted = tally(node, t0_s, t1_s, plan, _primary(sorted(call_s), [[0] * CANDIDATES_PER_CALL] * len(call_s)), d)

    services = [(float(a), float(s), float(e), q) for q, served in enumerate(plan.served)
                for a, s, e in zip(served.arrival_s, served.start_s, served.end_s, strict=True)]
    for row in range(3):
        in_row = [(a, s, e) for a, s, e, _ in services if math.floor(s) == row]
        assert counted.starts[row] == len(in_row)
        assert counted.wait_s[row] == pytest.approx(sum(max(s - a, 0.0) for a, s, _ in in_row))
        assert counted.processed[row] == sum(math.floor(e) == row for _, _, e, _ in services if e < t1_s)
        assert counted.attempted[row] == sum(math.floor(t) == row for t in call_s)
        assert counted.rejected[row] == sum(math.floor(t) == row for t in sorted(call_s)[::2])
    assert counted.end_rows == [0, 1, 2]
    for k, end_s in enumerate([1.0, 2.0, 3.0]):
        waiting = [[a for a in arrivals[q] if a < end_s][sum(s < end_s for _, s, _, p in services if p == q):]
                   for q in range(QUEUES)]
        assert counted.depths[k] == [len(queue) for queue in waiting]
        heads = [queue[0] for queue in waiting if queue]
        quiet = not counted.starts[k]  # the oldest waiting arrival is read only in a second without a start
        assert counted.oldest_s[k] == (min(heads) if heads and quiet else None)
        assert counted.skinny[k] == sum(t < end_s for t in closed_s)
        assert counted.registered[k] == 3
