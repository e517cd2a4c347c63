"""The batched SDL server against a plain one-signal-at-a-time priority queue: the same starts, exactly.

The reference below is the obvious sequential algorithm (whenever the thread is free, take the oldest
signal of the highest non-empty queue).  `serve_block` must reproduce it signal for signal, across block
boundaries (backlog and the signal in service carried over), for random loads of all four queues.
"""

from __future__ import annotations

import itertools
from collections import deque

import numpy as np
import pytest
from fixed_draws import fixed_draws
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cucm_sim.rules.priorities import QUEUES
from cucm_sim.sdl.block import (
    NO_TAG,
    TIE_S,
    Arrivals,
    RouterState,
    ServiceDraws,
    commit,
    crash,
    serve_block,
    serve_fifo_block,
    tagged_ends_in_slots,
    tagged_ends_one_by_one,
)


def reference(
    arrivals: list[list[float]], service_ms: list[float], capacity: float, until_s: float
) -> tuple[list[list[float]], float, list[int]]:
    """Sequential non-preemptive priority FIFO: start time of every signal that starts before until_s.

    Whenever the thread is free and something has arrived, it takes the oldest signal of the highest
    queue, counting as there any signal that arrives up to TIE_S later (sdl_batch's rounding rule).
    """
    pending = sorted((t, q, i) for q in range(QUEUES) for i, t in enumerate(arrivals[q]))
    queues: list[deque[tuple[float, int]]] = [deque() for _ in range(QUEUES)]
    starts: list[list[float]] = [[] for _ in range(QUEUES)]
    free_s, k, p = 0.0, 0, 0
    while True:
        arrived = any(queue and queue[0][0] <= free_s for queue in queues) or (
            p < len(pending) and pending[p][0] <= free_s
        )
        if not arrived:
            if p == len(pending) and not any(queues):
                break
            heads = [queue[0][0] for queue in queues if queue] + ([pending[p][0]] if p < len(pending) else [])
            free_s = min(heads)
        while p < len(pending) and pending[p][0] <= free_s + TIE_S:
            queues[pending[p][1]].append((pending[p][0], pending[p][2]))
            p += 1
        if free_s >= until_s:
            break
        q = next(q for q in range(QUEUES) if queues[q])
        queues[q].popleft()
        starts[q].append(free_s)
        free_s += service_ms[k] / 1000.0 / capacity
        k += 1
    return starts, free_s, [len(queue) for queue in queues]


def run_blocks(
    arrivals: list[list[float]], service_ms: list[float], capacity: float, edges_s: list[float]
) -> tuple[list[list[float]], RouterState, list[int]]:
    """The batched server over consecutive blocks [edges[i], edges[i+1])."""
    state = RouterState.idle()
    draws = fixed_draws(service_ms)
    starts: list[list[float]] = [[] for _ in range(QUEUES)]
    waiting: list[int] = []
    for t0_s, t1_s in itertools.pairwise(edges_s):
        block = Arrivals(
            [np.array([t for t in arrivals[q] if t0_s <= t < t1_s]) for q in range(QUEUES)],
            [np.full(sum(t0_s <= t < t1_s for t in arrivals[q]), -1, dtype=np.int64) for q in range(QUEUES)],
        )
        plan = serve_block(state, t0_s, t1_s, block, draws, capacity)
        for q in range(QUEUES):
            starts[q].extend(plan.served[q].start_s.tolist())
            assert np.all(plan.served[q].start_s >= plan.served[q].arrival_s - 2e-9)
        waiting = plan.waiting
        commit(state, plan, draws)
    return starts, state, waiting


times = st.lists(st.floats(0.0, 0.999, allow_nan=False), max_size=40)


@settings(max_examples=300, deadline=None)
@example(  # the last start is 1 ulp before the end by one sum, on it by the other: either is right
    arrivals=[[], [], [], [0.0] * 8 + [0.9989999999999999, 0.999]],
    service_ms=[1.0, 1.0, 1.0, 37.0, 73.0, 1.5, 1.5, 1.5] + [1.0] * 192, capacity=1.0, cuts=[],
)
@given(
    arrivals=st.lists(times, min_size=QUEUES, max_size=QUEUES),
    service_ms=st.lists(st.floats(0.5, 120.0), min_size=200, max_size=200),
    capacity=st.sampled_from([1.0, 0.5, 2.0]),
    cuts=st.lists(st.floats(0.01, 0.99), max_size=4),
)
def test_blocks_reproduce_the_sequential_queue(
    arrivals: list[list[float]], service_ms: list[float], capacity: float, cuts: list[float]
) -> None:
    arrivals = [sorted(q) for q in arrivals]
    edges_s = [0.0, *sorted(set(cuts)), 1.0]
    expected, _, expected_waiting = reference(arrivals, service_ms, capacity, until_s=1.0)
    got, _, waiting = run_blocks(arrivals, service_ms, capacity, edges_s)
    # A start within TIE_S of the run's end falls on either side of it as the two sum the services in
    # different orders (rounding): such a start is in one list and still waiting in the other.
    for q in range(QUEUES):
        inside, expected_inside = [s for s in got[q] if s < 1.0 - TIE_S], [s for s in expected[q] if s < 1.0 - TIE_S]
        assert inside == pytest.approx(expected_inside, abs=1e-9)
        assert len(got[q]) - len(inside) <= 1 and len(expected[q]) - len(expected_inside) <= 1
        assert len(got[q]) + waiting[q] == len(expected[q]) + expected_waiting[q]


def test_priority_order_and_non_preemption_by_hand() -> None:
    # A lowest signal at 0 is in service when a high one arrives: it finishes first (non-preemptive).
    # Then, of the normal (t=0.001) and high (t=0.002), the high goes first although it came later.
    arrivals = [[0.002], [0.001], [], [0.0]]
    got, state, _ = run_blocks(arrivals, [10.0, 10.0, 10.0], 1.0, [0.0, 1.0])
    assert got[3] == [0.0]
    assert got[0] == pytest.approx([0.010])
    assert got[1] == pytest.approx([0.020])
    assert state.busy_until_s == pytest.approx(0.030)


def test_the_signal_in_service_and_the_backlog_carry_over() -> None:
    # 5 signals at t=0, 400 ms each: one block of 1 s starts 3 of them; 2 wait, one is in service.
    arrivals = [[], [0.0] * 5, [], []]
    _, state, waiting = run_blocks(arrivals, [400.0] * 5, 1.0, [0.0, 1.0])
    assert waiting == [0, 2, 0, 0]
    assert state.busy_until_s == pytest.approx(1.2)
    assert crash(state, 1.0) == 3  # two waiting + the one in service
    assert state.waiting() == 0


def test_a_follow_on_signal_at_a_service_end_is_there_for_the_next_slot() -> None:
    # A chain: each normal signal queues the next one exactly when its service ends, while a lowest one
    # waits from the start.  At t = 1000 s the cumulative sums put about one slot start in eight a few
    # ulps before the end it should equal; the follow-on must still take that slot.
    service_ms = np.random.default_rng(7).exponential(0.15, 400).tolist()
    t0_s, chain = 1000.0, 40
    state = RouterState.idle()
    state.busy_until_s = t0_s
    draws = fixed_draws(service_ms)
    normal_s = np.array([t0_s])
    for _ in range(chain):  # each pass adds the follow-on of the last signal handled
        times = [np.empty(0), normal_s, np.empty(0), np.array([t0_s])]
        plan = serve_block(state, t0_s, t0_s + 1, Arrivals(times, [np.full(len(t), -1) for t in times]), draws, 1.0)
        normal_s = np.concatenate(([t0_s], plan.served[1].end_s[:chain]))
    assert plan.served[1].count == chain
    assert plan.served[3].start_s[0] == pytest.approx(t0_s + sum(service_ms[:chain]) / 1000.0, abs=1e-9)


def _fixed_point_ends(
    state: RouterState, t0_s: float, t1_s: float, base: list[list[tuple[float, int]]], draws: ServiceDraws,
    follow: dict[int, tuple[int, int, int]],
) -> list[tuple[float, int, float]]:
    """Tagged ends by iterating serve_block, adding each handled signal's follow-ons at its end."""
    ends: list[tuple[float, int, float]] = []
    for _ in range(1000):
        signals = [list(queue) for queue in base]
        for end_s, tag, _ in ends:
            follow_queue, count, follow_tag = follow.get(tag, (0, 0, NO_TAG))
            signals[follow_queue].extend([(end_s, follow_tag)] * count)
        for queue in signals:
            queue.sort()
        block = Arrivals(
            [np.array([t for t, _ in queue]) for queue in signals],
            [np.array([tag for _, tag in queue], dtype=np.int64) for queue in signals],
        )
        plan = serve_block(state, t0_s, t1_s, block, draws, 1.0)
        found = sorted(
            (e, tag, a)
            for served in plan.served
            for e, tag, a in zip(served.end_s.tolist(), served.tags.tolist(), served.arrival_s.tolist(), strict=True)
            if tag != NO_TAG and e < t1_s
        )
        if [tag for _, tag, _ in found] == [tag for _, tag, _ in ends] and np.allclose(
            [(e, a) for e, _, a in found], [(e, a) for e, _, a in ends], rtol=0, atol=1e-9
        ):
            return found
        ends = found
    raise AssertionError("no fixed point")


@settings(max_examples=200, deadline=None)
@given(
    lowest=st.lists(st.floats(0.0, 0.5, allow_nan=False), min_size=1, max_size=15),
    normal=st.lists(st.floats(0.0, 0.999, allow_nan=False), max_size=60),
    follow_count=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
    t0_s=st.sampled_from([0.0, 1000.0]),
)
def test_one_by_one_equals_the_fixed_point_of_blocks(
    lowest: list[float], normal: list[float], follow_count: int, seed: int, t0_s: float
) -> None:
    # A registration storm in miniature: each lowest signal, handled, queues `follow_count` low ones
    # (tagged, no follow-ons of their own) that go before the next lowest signal.
    base: list[list[tuple[float, int]]] = [
        [], [(t0_s + t, NO_TAG) for t in sorted(normal)], [], [(t0_s + t, 10 + i) for i, t in enumerate(sorted(lowest))]
    ]
    follow = {10 + i: (2, follow_count, 1000 + i) for i in range(len(lowest))}
    service_ms = np.random.default_rng(seed).exponential(5.0, 4000).tolist()
    state = RouterState.idle()
    state.busy_until_s = t0_s
    draws = fixed_draws(service_ms)
    iterated = _fixed_point_ends(state, t0_s, t0_s + 1, base, draws, follow)
    block = Arrivals(
        [np.array([t for t, _ in queue]) for queue in base],
        [np.array([tag for _, tag in queue], dtype=np.int64) for queue in base],
    )
    one_by_one = tagged_ends_one_by_one(
        state, t0_s, t0_s + 1, block, draws, 1.0, lambda tag: [(*follow[tag], 0.0)] if tag in follow else []
    )
    assert [tag for _, tag, _ in one_by_one] == [tag for _, tag, _ in iterated]
    # A signal arriving within TIE_S after a slot's start may take it, so times agree to a few TIE_S.
    assert [x for e, _, a in one_by_one for x in (e, a)] == pytest.approx(
        [x for e, _, a in iterated for x in (e, a)], abs=3 * TIE_S
    )


def _fifo_reference(
    backlog: list[tuple[float, int]], busy_until_s: float, arrivals: list[tuple[float, int]],
    service_ms: list[float], follow_ms: list[float], follow: dict[int, list[tuple[int, float]]], t0_s: float,
    t1_s: float,
) -> tuple[list[tuple[float, float, int]], int]:
    """One FIFO queue, one signal at a time; a handled tagged signal queues, for each (count, delay) in
    follow[tag], count untagged follow-ons delay after its end.

    Follow-ons take their service times from follow_ms in the order they are made, the others from
    service_ms in the order they are served.  Returns (arrival, start, tag) of each start before t1_s and
    the signals waiting at t1_s.
    """
    free_s = max(t0_s, busy_until_s)
    queue: deque[tuple[float, int, int]] = deque((t, tag, -1) for t, tag in backlog)
    pending = sorted(arrivals, key=lambda a: a[0])
    made: list[tuple[float, int, int]] = []  # follow-ons not yet queued: (t, tag, index in follow_ms)
    starts: list[tuple[float, float, int]] = []
    p = used = made_count = 0
    while free_s < t1_s:
        ready = free_s  # one queue: no priority to settle, so no rounding allowance
        incoming = [(t, tag, -1) for t, tag in pending[p:] if t <= ready] + [m for m in made if m[0] <= ready]
        p += sum(1 for t, _ in pending[p:] if t <= ready)
        made = [m for m in made if m[0] > ready]
        queue.extend(sorted(incoming, key=lambda m: m[0]))
        if not queue:
            upcoming = [t for t, _ in pending[p:]] + [m[0] for m in made]
            if not upcoming:
                break
            free_s = min(upcoming)
            continue
        arrival_s, tag, index = queue.popleft()
        if index >= 0:
            service = follow_ms[index]
        else:
            service, used = service_ms[used], used + 1
        starts.append((arrival_s, free_s, tag))
        free_s += service / 1000.0
        for count, delay_s in follow.get(tag, []):
            for _ in range(count):
                made.append((free_s + delay_s, NO_TAG, made_count))
                made_count += 1
    waiting = len(queue) + sum(1 for t, _ in pending[p:] if t < t1_s) + sum(1 for m in made if m[0] < t1_s)
    return starts, waiting


@settings(max_examples=300, deadline=None)
@given(
    backlog=st.lists(st.tuples(st.floats(0.0, 0.999), st.booleans()), max_size=8),
    arrivals=st.lists(st.tuples(st.floats(0.0, 0.999), st.booleans()), max_size=40),
    busy_ms=st.floats(0.0, 50.0),
    follow_count=st.integers(0, 5),
    late_count=st.integers(0, 4),
    seed=st.integers(0, 2**32 - 1),
    t0_s=st.sampled_from([1.0, 1000.0]),
)
def test_the_fifo_block_with_follow_ons_matches_one_signal_at_a_time(
    backlog: list[tuple[float, bool]], arrivals: list[tuple[float, bool]], busy_ms: float, follow_count: int,
    late_count: int, seed: int, t0_s: float,
) -> None:
    # Each tagged signal queues follow_count signals at once (a call's set-up) and late_count after a
    # random delay (its teardown), which may land in the block among other signals.
    rng = np.random.default_rng(seed)
    service_ms = rng.exponential(20.0, 400).tolist()
    follow_ms = rng.exponential(20.0, 400).tolist()
    old = [(t0_s - 1 + t, 100 + i if parent else NO_TAG) for i, (t, parent) in enumerate(sorted(backlog))]
    new = [(t0_s + t, 200 + i if parent else NO_TAG) for i, (t, parent) in enumerate(sorted(arrivals))]
    delays_s = rng.exponential(0.2, len(old) + len(new)).tolist()
    follow = {tag: [(follow_count, 0.0), (late_count, delay_s)]
              for (_, tag), delay_s in zip(old + new, delays_s, strict=True) if tag != NO_TAG}
    expected, expected_waiting = _fifo_reference(
        old, t0_s + busy_ms / 1000, new, service_ms, follow_ms, follow, t0_s, t0_s + 1
    )

    state = RouterState.idle()
    state.queues[1].push(np.array([t for t, _ in old]), np.array([g for _, g in old], dtype=np.int64))
    state.busy_until_s = t0_s + busy_ms / 1000
    block = Arrivals.empty()
    block.times_s[1] = np.array([t for t, _ in new])
    block.tags[1] = np.array([g for _, g in new], dtype=np.int64)
    draws = fixed_draws(service_ms)
    follow_draws = fixed_draws(follow_ms)
    plan = serve_fifo_block(
        state, 1, t0_s, t0_s + 1, block, draws, follow_draws, 1.0,
        lambda tag: [(1, count, NO_TAG, delay_s) for count, delay_s in follow.get(tag, [])],
    )
    assert plan is not None
    got = sorted(zip(plan.served[1].start_s.tolist(), plan.served[1].arrival_s.tolist(),
                     plan.served[1].tags.tolist(), strict=True))
    want = sorted((start, arrival, tag) for arrival, start, tag in expected)
    assert [tag for _, _, tag in got] == [tag for _, _, tag in want]
    assert [x for start, arrival, _ in got for x in (start, arrival)] == pytest.approx(
        [x for start, arrival, _ in want for x in (start, arrival)], abs=1e-9
    )
    assert plan.waiting[1] == expected_waiting
    commit(state, plan, draws, follow_draws)
    assert len(state.queues[1]) == expected_waiting


@settings(max_examples=300, deadline=None)
@given(
    high=st.lists(st.floats(0.0, 0.999, allow_nan=False), max_size=30),
    normal=st.lists(st.floats(0.0, 0.999, allow_nan=False), max_size=60),
    low=st.lists(st.floats(0.0, 0.999, allow_nan=False), max_size=10),
    lowest=st.lists(st.floats(0.0, 0.999, allow_nan=False), max_size=15),
    waiting_lowest=st.integers(0, 120),
    waiting_low=st.integers(0, 5),
    follow_count=st.integers(0, 9),
    busy_for_s=st.sampled_from([0.0, 0.002, 0.5]),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_slot_path_equals_one_signal_at_a_time(
    high: list[float], normal: list[float], low: list[float], lowest: list[float], waiting_lowest: int,
    waiting_low: int, follow_count: int, busy_for_s: float, seed: int,
) -> None:
    # A registration storm: lowest requests, each queuing `follow_count` low signals when handled, behind
    # high and normal work, with or without a backlog of requests (so the thread may idle between them).
    t0_s = 1000.0
    state = RouterState.idle()
    state.busy_until_s = t0_s + busy_for_s
    state.queues[2].push(np.full(waiting_low, t0_s - 2), 700 + np.arange(waiting_low))
    state.queues[3].push(np.full(waiting_lowest, t0_s - 1), 500 + np.arange(waiting_lowest))
    times = [sorted(high), sorted(normal), sorted(low), sorted(lowest)]
    block = Arrivals(
        [t0_s + np.array(t, dtype=float) for t in times],
        [np.full(len(times[0]), NO_TAG), 100 + np.arange(len(times[1])), np.full(len(times[2]), NO_TAG),
         200 + np.arange(len(times[3]))],
    )

    def follow(tag: int) -> list[tuple[int, int, int, float]]:
        return [(2, follow_count, 10_000 + tag, 0.0)] if 200 <= tag < 700 else []

    service_ms = np.random.default_rng(seed).exponential(6.0, 2000).tolist()
    draws = fixed_draws(service_ms)
    slots = tagged_ends_in_slots(state, t0_s, t0_s + 1, block, draws, 1.0, follow)
    exact = tagged_ends_one_by_one(state, t0_s, t0_s + 1, block, draws, 1.0, follow)
    assert slots is not None  # follow-ons of the registration form: the slot path always answers
    assert [tag for _, tag, _ in slots] == [tag for _, tag, _ in exact]
    assert [x for e, _, a in slots for x in (e, a)] == pytest.approx([x for e, _, a in exact for x in (e, a)], abs=3e-9)


def test_the_slot_path_declines_other_follow_ons() -> None:
    # A follow-on that is delayed, or queued by a low signal, breaks the rule the slot times rest on.
    t0_s = 10.0
    block = Arrivals(
        [np.empty(0), np.empty(0), np.array([t0_s + 0.1]), np.array([t0_s + 0.2])],
        [np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.array([7]), np.array([8])],
    )
    draws = fixed_draws([1.0] * 100)
    state = RouterState.idle()

    def delayed(tag: int) -> list[tuple[int, int, int, float]]:
        return [(2, 1, NO_TAG, 0.5)] if tag == 8 else []

    def from_low(tag: int) -> list[tuple[int, int, int, float]]:
        return [(2, 1, NO_TAG, 0.0)] if tag == 7 else []

    assert tagged_ends_in_slots(state, t0_s, t0_s + 1, block, draws, 1.0, delayed) is None
    assert tagged_ends_in_slots(state, t0_s, t0_s + 1, block, draws, 1.0, from_low) is None
