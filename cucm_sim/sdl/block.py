"""The SDL router thread's work over a block of time, computed in bulk with numpy (engine ``batched``).

One server, four strict-priority FIFO queues, non-preemptive, as in the per-signal engine; but instead of
one event per signal, `serve_block` takes every signal that arrives in ``[t0_s, t1_s)`` at once and
returns when each one that starts service in the block starts.  Pure: no SimPy, no clock, nothing
mutated until the caller `commit`s the plan, so a caller may compute a block several times (with more
arrivals) and keep the last.

Why this is exact, not an approximation:

* **Service times belong to service slots.**  The k-th service the thread performs lasts the k-th draw
  of one i.i.d. stream (`ServiceDraws`), whichever signal it serves: exactly what the per-signal engine
  does, which draws at service start.  A work-conserving server's busy and idle times then do not
  depend on the order it serves in, so the slot start times follow from the merged arrival stream with
  the Lindley recursion in closed form: ``T_k = C_k + max_{j<=k}(A_j - C_j)``, C the cumulative service.
* **Slots go to queues by a recursion with a closed form.**  Slot k goes to the highest queue with a
  signal waiting at T_k.  For the high queue, with a_k its arrivals by T_k, the number it has been given
  obeys ``s_k = min(a_k, s_{k-1} + 1)``, whose solution is ``s_k = k + min(1, min_{j<=k}(a_j - j))``
  (0-based k) -- a cumulative minimum.  The next queue does the same over the slots the higher queues
  left free, and so on down; within a queue signals are served in arrival order.

Besides `serve_block`: `serve_fifo_block` serves a block where only one queue has work together with
the follow-on signals its handled signals queue (one pass, see its doc), and `tagged_ends_in_slots` /
`tagged_ends_one_by_one` are the exact slow paths for follow-ons that chain (a registration storm).

A signal arriving at a slot's start, or up to `TIE_S` after it, may take it: the follow-on
signals a handled signal queues arrive exactly at the end of its service, and must be there for the very
next slot, as in the per-signal engine, even when rounding puts that slot's start a few ulps earlier.
Times are seconds; service draws are milliseconds at full speed, divided by the block's capacity factor
(and no service is shorter than `MIN_SERVICE_S`).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from cucm_sim.rules.priorities import HIGH, LOW, LOWEST, NORMAL, QUEUES
from cucm_sim.scenario.distributions import _Distribution

NO_TAG = -1
"""The tag of a signal nobody waits for (background work, keepalives)."""

TIE_S = 1e-9
"""A signal arriving up to this long (s) after a slot's start may take that slot (rounding, not a real
wait); its wait can then read up to 1 ns below zero, which the model clamps."""

MIN_SERVICE_S = 4 * TIE_S
"""No service is shorter (s): else a follow-on, queued at its parent's end, would count as there at the
parent's own start and take that slot from it.  (An exponential service of mean 0.15 ms is below 4 ns
once in 37,000 draws; it is lengthened by at most 4 ns: no statistic can see it.)"""

_DRAW_BLOCK = 1 << 16

FollowOns = Callable[[int], list[tuple[int, int, int, float]]]
"""For a handled signal's tag: what it queues when its service ends, as (queue, count, tag, delay_s): the
signals arrive delay_s after the end (0: at once, as a call's set-up signals; a holding time for its
teardown)."""

MAX_ROUNDS = 32
"""Rounds `serve_fifo_block` gives overlapping follow-on groups to settle before it gives up."""


class ServiceDraws:
    """The router's service times at full speed (ms), in service order; read ahead, then consumed."""

    def __init__(self, distribution: _Distribution, rng: np.random.Generator) -> None:
        self._distribution = distribution
        self._rng = rng
        self._values = np.empty(0)
        self._position = 0
        self.mean_ms = distribution.mean

    def peek(self, count: int) -> np.ndarray:
        """The next `count` draws (ms), without consuming them."""
        missing = self._position + count - len(self._values)
        if missing > 0:
            fresh = self._distribution.sample(self._rng, max(missing, _DRAW_BLOCK))
            self._values = np.concatenate((self._values[self._position:], fresh))
            self._position = 0
        return self._values[self._position:self._position + count]

    def services_s(self, count: int, scale: float) -> np.ndarray:
        """The next `count` service times in seconds (draws x `scale`), none shorter than MIN_SERVICE_S."""
        services: np.ndarray = np.maximum(self.peek(count) * scale, MIN_SERVICE_S)
        return services

    def consume(self, count: int) -> None:
        """Mark the next `count` draws as used."""
        self.peek(count)
        self._position += count


class SignalQueue:
    """One priority's FIFO of waiting signals: arrival times (s) and tags, kept as array chunks."""

    def __init__(self) -> None:
        self._chunks: deque[tuple[np.ndarray, np.ndarray]] = deque()
        self._head = 0  # signals already taken from the first chunk
        self._length = 0

    def __len__(self) -> int:
        return self._length

    def push(self, times_s: np.ndarray, tags: np.ndarray) -> None:
        """Append signals (arrival order) behind those already waiting."""
        if len(times_s):
            self._chunks.append((times_s, tags))
            self._length += len(times_s)

    def peek(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Arrival times and tags of the first `count` waiting signals."""
        times: list[np.ndarray] = []
        tags: list[np.ndarray] = []
        head, needed = self._head, count
        for chunk_times, chunk_tags in self._chunks:
            if needed <= 0:
                break
            taken = chunk_times[head:head + needed]
            times.append(taken)
            tags.append(chunk_tags[head:head + needed])
            needed -= len(taken)
            head = 0
        if len(times) == 1:
            return times[0], tags[0]
        if not times:
            return np.empty(0), np.empty(0, dtype=np.int64)
        return np.concatenate(times), np.concatenate(tags)

    def first_arrival_s(self) -> float | None:
        """Arrival time of the signal at the head, None when empty."""
        if not self._length:
            return None
        return float(self._chunks[0][0][self._head])

    def arrival_at(self, position: int) -> float:
        """Arrival time of the waiting signal at `position` (0: the head)."""
        position += self._head
        for chunk_times, _ in self._chunks:
            if position < len(chunk_times):
                return float(chunk_times[position])
            position -= len(chunk_times)
        raise IndexError("position past the end of the queue")

    def pop(self, count: int) -> None:
        """Remove the first `count` signals."""
        self._length -= count
        while count > 0:
            chunk_length = len(self._chunks[0][0]) - self._head
            if count < chunk_length:
                self._head += count
                return
            count -= chunk_length
            self._chunks.popleft()
            self._head = 0

    def clear(self) -> None:
        """Drop every waiting signal."""
        self._chunks.clear()
        self._head = 0
        self._length = 0


@dataclass
class Arrivals:
    """Signals arriving in a block, per queue: sorted arrival times (s) and their tags."""

    times_s: list[np.ndarray]
    tags: list[np.ndarray]

    @classmethod
    def empty(cls) -> Arrivals:
        return cls([np.empty(0)] * QUEUES, [np.empty(0, dtype=np.int64)] * QUEUES)


@dataclass
class ServedQueue:
    """What one queue got in a block: its first `count` signals, with their arrival, start and end times.

    In start order within two runs, [:split] and [split:] (the second: follow-ons of `serve_fifo_block`),
    so start_s and end_s are sorted within each run.
    """

    count: int
    from_backlog: int
    arrival_s: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    tags: np.ndarray
    split: int = -1
    """Where the second sorted run begins (-1: there is none)."""

    @cached_property
    def wait_s(self) -> np.ndarray:
        """Each one's wait (s), start minus arrival (a signal may take a slot up to TIE_S early: clamped)."""
        waits: np.ndarray = np.maximum(self.start_s - self.arrival_s, 0.0)
        return waits

    def runs(self) -> list[slice]:
        """The sorted runs, as slices."""
        if self.split < 0:
            return [slice(0, self.count)]
        return [slice(0, self.split), slice(self.split, self.count)]


@dataclass
class BlockPlan:
    """The router's work in ``[t0_s, t1_s)``, as `serve_block` computed it (apply it with `commit`)."""

    t0_s: float
    t1_s: float
    consumed: int
    """Service draws used (services started in the block, follow-ons of `serve_fifo_block` apart)."""
    served: list[ServedQueue]
    busy_until_s: float
    """When the thread finishes its last service started so far (<= t1_s: idle at t1_s)."""
    waiting: list[int]
    """Signals waiting per queue at t1_s (the one in service excluded)."""
    oldest_waiting_s: float | None
    """Arrival time of the longest-waiting signal at t1_s, None when none waits."""
    unserved: list[tuple[np.ndarray, np.ndarray]]
    """Per queue, the block's arrivals still waiting at t1_s (times, tags), to join the queue."""
    arrived_s: list[list[np.ndarray]]
    """Per queue, arrival times of every signal that joined it in the block (follow-ons too), as sorted
    runs; merged, and after the queue's backlog, they are its FIFO order."""
    consumed_follow: int = 0
    """Draws used from the follow-on stream (`serve_fifo_block` only)."""


@dataclass
class RouterState:
    """What carries from one block to the next: the queues and when the thread is next free."""

    queues: list[SignalQueue]
    busy_until_s: float = 0.0

    @classmethod
    def idle(cls) -> RouterState:
        return cls([SignalQueue() for _ in range(QUEUES)])

    def waiting(self) -> int:
        return sum(len(queue) for queue in self.queues)


def _slot_starts(
    free_s: float, ready_s: np.ndarray, service_s: np.ndarray, waiting: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Start times of consecutive services (signal k ready at ready_s[k], lasting service_s[k]), and the
    service time before each.  The first `waiting` signals wait already (their ready_s is not read); the
    others' ready_s are sorted."""
    before_s = np.empty(len(service_s))
    before_s[0] = 0.0
    np.cumsum(service_s[:-1], out=before_s[1:])
    lead: np.ndarray = ready_s - before_s
    early = waiting + int(np.searchsorted(ready_s[waiting:], free_s, side="left"))  # ready by free_s
    lead[:early] = free_s - before_s[:early]
    np.maximum.accumulate(lead, out=lead)
    return lead + before_s, before_s


def _allocate(slot_s: np.ndarray, backlog: int, ready_s: np.ndarray) -> np.ndarray:
    """Which of the free slots (start times `slot_s`) one queue takes, given when its signals are ready."""
    available = backlog + np.searchsorted(ready_s, slot_s, side="right")
    index = np.arange(len(slot_s))
    given = index + np.minimum(1, np.minimum.accumulate(available - index))
    took = np.empty(len(slot_s), dtype=bool)
    if len(slot_s):
        took[0] = given[0] > 0
        np.not_equal(given[1:], given[:-1], out=took[1:])
    return took


def serve_block(
    state: RouterState, t0_s: float, t1_s: float, arrivals: Arrivals, draws: ServiceDraws, capacity_factor: float,
) -> BlockPlan:
    """Every service that starts in ``[t0_s, t1_s)``, given the queues at t0_s and the block's arrivals.

    Reads `state` and `draws` but changes neither; `commit` applies the plan.
    """
    backlog = [len(queue) for queue in state.queues]
    nonempty = [q for q in range(QUEUES) if backlog[q] or len(arrivals.times_s[q])]
    free_s = max(t0_s, state.busy_until_s)
    new_s = [arrivals.times_s[q] for q in nonempty if len(arrivals.times_s[q])]
    merged_s = new_s[0] if len(new_s) == 1 else np.sort(np.concatenate(new_s)) if new_s else np.empty(0)
    total_backlog = sum(backlog)
    jobs = total_backlog + len(merged_s)

    slots = 0
    slot_s = service_s = np.empty(0)
    if jobs and free_s < t1_s:
        # Read ahead enough draws to pass t1_s (a slot cannot start before free_s + the services before it).
        service_s = _read_ahead(draws, jobs, free_s, t1_s, 1.0 / (1000.0 * capacity_factor))
        count = len(service_s)
        ready_s = np.empty(count)
        in_backlog = min(total_backlog, count)
        ready_s[:in_backlog] = free_s
        ready_s[in_backlog:] = merged_s[:count - in_backlog]
        slot_s, _ = _slot_starts(free_s, ready_s, service_s, waiting=in_backlog)
        slots = int(np.searchsorted(slot_s, t1_s, side="left"))
        slot_s, service_s = slot_s[:slots], service_s[:slots]

    served: list[ServedQueue] = []
    free_slots = np.arange(slots)
    last = nonempty[-1] if nonempty else -1
    for q in range(QUEUES):
        times_s, tags = arrivals.times_s[q], arrivals.tags[q]
        if q not in nonempty or not len(free_slots):
            served.append(ServedQueue(0, 0, np.empty(0), np.empty(0), np.empty(0), np.empty(0, dtype=np.int64)))
            continue
        if q == last:  # the lowest queue with work takes every slot left
            mine = free_slots
            free_slots = free_slots[:0]
        else:
            took = _allocate(slot_s[free_slots], backlog[q], times_s - TIE_S)
            mine = free_slots[took]
            free_slots = free_slots[~took]
        count = len(mine)
        from_backlog = min(count, backlog[q])
        old_s, old_tags = state.queues[q].peek(from_backlog)
        fresh = count - from_backlog
        arrival_s = np.concatenate((old_s, times_s[:fresh])) if from_backlog else times_s[:fresh]
        job_tags = np.concatenate((old_tags, tags[:fresh])) if from_backlog else tags[:fresh]
        start_s = slot_s[mine]
        served.append(ServedQueue(count, from_backlog, arrival_s, start_s, start_s + service_s[mine], job_tags))

    busy_until_s = float(slot_s[-1] + service_s[-1]) if slots else state.busy_until_s
    waiting = [backlog[q] + len(arrivals.times_s[q]) - served[q].count for q in range(QUEUES)]
    oldest: float | None = None
    for q in range(QUEUES):
        if not waiting[q]:
            continue
        unserved_backlog = backlog[q] - served[q].from_backlog
        if unserved_backlog:
            head_s, _ = state.queues[q].peek(served[q].from_backlog + 1)
            candidate = float(head_s[-1])
        else:
            candidate = float(arrivals.times_s[q][served[q].count - backlog[q]])
        oldest = candidate if oldest is None else min(oldest, candidate)
    unserved = []
    for q in range(QUEUES):
        fresh = served[q].count - served[q].from_backlog
        unserved.append((arrivals.times_s[q][fresh:], arrivals.tags[q][fresh:]))
    arrived = [[times_s] for times_s in arrivals.times_s]
    return BlockPlan(t0_s, t1_s, slots, served, busy_until_s, waiting, oldest, unserved, arrived)


def _read_ahead(draws: ServiceDraws, jobs: int, free_s: float, t1_s: float, scale: float) -> np.ndarray:
    """Service times (s) of the next services, enough of them to pass t1_s (or all `jobs`)."""
    expected = (t1_s - free_s) / (draws.mean_ms * scale)
    count = min(jobs, int(expected * 1.25) + 64)
    while True:
        service_s: np.ndarray = draws.services_s(count, scale)
        if count == jobs or free_s + float(service_s.sum()) >= t1_s:
            return service_s
        count = min(jobs, count * 2)


def _settle_groups(
    group_parent: np.ndarray, group_delay_s: np.ndarray, group_work_s: np.ndarray, arrival_s: np.ndarray,
    plain_end_s: np.ndarray, idle_at_start_s: np.ndarray, t1_s: float, in_backlog: int,
    idle_s: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """When each follow-on group arrives, and the extra work then, settled over parents that delay each other.

    A group arrives `delay` after its parent ends, and its parent ends late by the extra work left when it
    arrived.  The extra work over the groups in time order is a Lindley recursion (each adds its work; in
    between it drains only while the thread would have idled), solved in closed form; the parents' delays
    then follow, and the rounds repeat until they no longer change (each round settles one more link of a
    chain).  Returns, for the groups in the block in time order: which group (index), time, extra work
    before and just after it, and the idle time at it; or None if MAX_ROUNDS did not settle them.
    """
    delay_at_arrival_s = np.zeros(len(group_parent))
    later_parent = group_parent >= in_backlog  # the backlog went before every group
    for _ in range(MAX_ROUNDS):
        parent_end_s = plain_end_s[group_parent] + delay_at_arrival_s
        times_s = parent_end_s + group_delay_s
        inside = np.flatnonzero((parent_end_s < t1_s) & (times_s < t1_s))
        which = inside[np.argsort(times_s[inside], kind="stable")]
        group_s, work_s = times_s[which], group_work_s[which]
        idle_at_group = idle_s(group_s)
        drift = np.zeros(len(which))
        drift[1:] = work_s[:-1] - np.diff(idle_at_group)
        total = np.cumsum(drift)
        before_s = total - np.minimum.accumulate(np.minimum(total, 0.0))
        after_s = before_s + work_s
        last = np.searchsorted(group_s, arrival_s[group_parent], side="right") - 1
        mine = np.maximum(last, 0)
        left_s = after_s[mine] - (idle_at_start_s[group_parent] - idle_at_group[mine]) if len(which) else 0.0
        settled_s = np.where((last >= 0) & later_parent, np.maximum(left_s, 0.0), 0.0)
        if np.array_equal(settled_s, delay_at_arrival_s):
            return which, group_s, before_s, after_s, idle_at_group
        delay_at_arrival_s = settled_s
    return None


def serve_fifo_block(
    state: RouterState, queue: int, t0_s: float, t1_s: float, arrivals: Arrivals, draws: ServiceDraws,
    follow_draws: ServiceDraws, capacity_factor: float, follow_ons: FollowOns,
) -> BlockPlan | None:
    """`serve_block` for a block where only `queue` has work, with its follow-ons, in one pass.

    Follow-on signals (`follow_ons` of each tagged signal, all to `queue`) are queued at their parent's
    end, as the per-signal engine does; they take their service times from `follow_draws`, so that they
    do not shift anyone else's.  Their effect is then exact without iterating: in a FIFO queue, work w
    added at time tau leaves every later start as it was plus the extra work still there, which goes
    down only while the thread would otherwise have been idle:
    ``E(t) = max(0, E(tau) + w - (I(t) - I(tau)))``, I the idle time of the schedule without them.
    None when follow-on groups that delay each other do not settle (see `_settle_groups`): use serve_block.
    """
    scale = 1.0 / (1000.0 * capacity_factor)
    backlog = len(state.queues[queue])
    new_s, new_tags = arrivals.times_s[queue], arrivals.tags[queue]
    free_s = max(t0_s, state.busy_until_s)
    jobs = backlog + len(new_s)
    service_s = _read_ahead(draws, jobs, free_s, t1_s, scale) if jobs and free_s < t1_s else np.empty(0)
    count = len(service_s)
    in_backlog = min(backlog, count)
    if in_backlog:
        old_s, old_tags = state.queues[queue].peek(in_backlog)
        arrival_s = np.concatenate((old_s, new_s[:count - in_backlog]))
        tags = np.concatenate((old_tags, new_tags[:count - in_backlog]))
    else:
        arrival_s, tags = new_s[:count], new_tags[:count]
    # The schedule without the block's follow-ons, and its idle time up to each start.
    plain_start_s, before_s = _slot_starts(free_s, arrival_s, service_s, waiting=in_backlog) if count else (
        np.empty(0), np.empty(0))
    plain_end_s = plain_start_s + service_s
    idle_at_start_s = plain_start_s - free_s - before_s

    def idle_s(t: np.ndarray) -> np.ndarray:
        """Idle time of the thread in [free_s, t], in the schedule without the block's follow-ons."""
        started = np.searchsorted(plain_start_s, t, side="right")
        last = np.maximum(started - 1, 0)
        after = idle_at_start_s[last] + np.maximum(t - plain_end_s[last], 0.0) if count else np.zeros(len(t))
        return np.where(started == 0, np.maximum(t - free_s, 0.0), after)

    def ahead_end_s(t: np.ndarray) -> np.ndarray:
        """When the signals that arrived by `t` are done, in the schedule without follow-ons (inf: not in it)."""
        ahead = backlog + np.searchsorted(new_s, t, side="right")
        ends = np.where(ahead > 0, plain_end_s[np.clip(ahead - 1, 0, max(count - 1, 0))], -np.inf) if count else (
            np.full(len(t), -np.inf))
        return np.where(ahead > count, np.inf, ends)

    # Every follow-on group the computed signals could make, in a fixed order that takes its service
    # draws (all of them are used up, whatever happens: no draw's value decides which draws are used).
    group_parent, group_delay, group_size, made_tags = [], [], [], []
    parents = np.flatnonzero(tags != NO_TAG)
    for index, tag in zip(parents.tolist(), tags[parents].tolist(), strict=True):
        for follow_queue, size, follow_tag, delay_s in follow_ons(tag):
            if size:
                assert follow_queue == queue, "serve_fifo_block: a follow-on to another queue"
                group_parent.append(index)
                group_delay.append(delay_s)
                group_size.append(size)
                made_tags += [follow_tag] * size
    sizes = np.array(group_size, dtype=np.int64)
    follow_services_s = follow_draws.services_s(len(made_tags), scale)
    first_draw = np.cumsum(sizes) - sizes
    work_s = np.add.reduceat(follow_services_s, first_draw) if len(sizes) else np.empty(0)
    settled = _settle_groups(
        np.array(group_parent, dtype=np.int64), np.array(group_delay), work_s, arrival_s, plain_end_s,
        idle_at_start_s, t1_s, in_backlog, idle_s,
    )
    if settled is None:
        return None
    which, group_s, before_s, extra_after, idle_at_group = settled
    # A group's signals start after those ahead of it and the extra work already there, one after another.
    member_sizes = sizes[which]
    members = np.repeat(first_draw[which], member_sizes) + (
        np.arange(int(member_sizes.sum())) - np.repeat(np.cumsum(member_sizes) - member_sizes, member_sizes))
    member_services_s = follow_services_s[members]
    within_s = np.cumsum(member_services_s) - member_services_s
    within_s -= np.repeat(within_s[np.cumsum(member_sizes) - member_sizes], member_sizes) if len(members) else 0.0
    head_s = group_s + np.maximum(ahead_end_s(group_s) - group_s, 0.0) + before_s
    follow_start_s = np.repeat(head_s, member_sizes) + within_s
    follow_s = np.repeat(group_s, member_sizes)
    follow_tags = np.array(made_tags, dtype=np.int64)[members] if len(members) else np.empty(0, dtype=np.int64)

    # Delay the signals that arrive while a group's extra work is left.  Between a signal's arrival and its
    # start the thread is never idle (FIFO), so the idle time at its arrival is that at its start.
    start_s = plain_start_s
    if len(group_s):
        first = np.searchsorted(arrival_s, group_s, side="right")  # the first signal behind each group
        done = np.searchsorted(idle_at_start_s, idle_at_group + extra_after, side="left")  # its work gone
        last = np.minimum(np.maximum(done, first), np.append(first[1:], count))
        lengths = last - first
        if lengths.sum():
            group_of = np.repeat(np.arange(len(group_s)), lengths)
            index = np.arange(int(lengths.sum())) + np.repeat(first - (np.cumsum(lengths) - lengths), lengths)
            start_s = plain_start_s.copy()
            start_s[index] += np.maximum(
                extra_after[group_of] - (idle_at_start_s[index] - idle_at_group[group_of]), 0.0
            )
    end_s = start_s + service_s
    started = int(np.searchsorted(start_s, t1_s, side="left"))
    begun = follow_start_s < t1_s
    follow_started = int(np.count_nonzero(begun))

    served = [ServedQueue(0, 0, np.empty(0), np.empty(0), np.empty(0), np.empty(0, dtype=np.int64))
              for _ in range(QUEUES)]
    from_backlog = min(started, backlog)
    # The follow-ons that started, as a second sorted run after the others.
    follow_begun_s = follow_start_s[begun]
    order = np.argsort(follow_begun_s, kind="stable")
    served[queue] = ServedQueue(
        started + follow_started,
        from_backlog,
        np.concatenate((arrival_s[:started], follow_s[begun][order])),
        np.concatenate((start_s[:started], follow_begun_s[order])),
        np.concatenate((end_s[:started], (follow_begun_s + member_services_s[begun])[order])),
        np.concatenate((tags[:started], follow_tags[begun][order])),
        split=started,
    )
    ends = served[queue].end_s  # two sorted runs: the plain signals' (FIFO) and the follow-ons'
    busy_until_s = max(float(ends[started - 1]) if started else state.busy_until_s,
                       float(ends[started:].max()) if follow_started else state.busy_until_s)
    fresh = started - from_backlog
    later_s = np.concatenate((new_s[fresh:], follow_s[~begun]))
    later_tags = np.concatenate((new_tags[fresh:], follow_tags[~begun]))
    order = np.argsort(later_s, kind="stable")
    unserved = [(np.empty(0), np.empty(0, dtype=np.int64)) for _ in range(QUEUES)]
    unserved[queue] = (later_s[order], later_tags[order])
    waiting = [0] * QUEUES
    waiting[queue] = backlog - from_backlog + len(later_s)
    oldest: float | None = None
    if backlog > from_backlog:
        head_s, _ = state.queues[queue].peek(from_backlog + 1)
        oldest = float(head_s[-1])
    elif len(later_s):
        oldest = float(later_s[order[0]])
    arrived_s: list[list[np.ndarray]] = [[] for _ in range(QUEUES)]
    arrived_s[queue] = [new_s, np.sort(follow_s, kind="stable")]
    return BlockPlan(
        t0_s, t1_s, started, served, busy_until_s, waiting, oldest, unserved, arrived_s, len(made_tags)
    )


def commit(
    state: RouterState, plan: BlockPlan, draws: ServiceDraws, follow_draws: ServiceDraws | None = None
) -> None:
    """Apply a plan: served signals leave their queues, the rest of the block's arrivals join them."""
    draws.consume(plan.consumed)
    if plan.consumed_follow:
        assert follow_draws is not None
        follow_draws.consume(plan.consumed_follow)
    for q, queue in enumerate(state.queues):
        queue.pop(plan.served[q].from_backlog)
        queue.push(*plan.unserved[q])
    state.busy_until_s = plan.busy_until_s


def crash(state: RouterState, now_s: float) -> int:
    """Drop every waiting signal and the one in service at `now_s`; return how many were lost."""
    lost = state.waiting() + int(state.busy_until_s > now_s)
    for queue in state.queues:
        queue.clear()
    state.busy_until_s = now_s
    return lost


def tagged_ends_one_by_one(
    state: RouterState, t0_s: float, t1_s: float, arrivals: Arrivals, draws: ServiceDraws, capacity_factor: float,
    follow_ons: FollowOns,
) -> list[tuple[float, int, float]]:
    """(end, tag, arrival) of the tagged signals whose service ends in the block, one signal at a time.

    The slow exact path, for blocks whose follow-on signals chain (a registration storm: each handled
    initial request queues low-priority signals that go before the next request), where the caller's
    fixed point would learn one follow-on per pass.  Plays the services in order, queuing each tagged
    signal's follow-ons at its end, as the per-signal engine does.  Changes nothing.
    """
    scale = 1.0 / (1000.0 * capacity_factor)
    free_s = max(t0_s, state.busy_until_s)
    # No signal can start in the block behind more services than fit in it.
    reach = 64
    while reach < 1 << 26 and free_s + float(draws.services_s(reach, scale).sum()) < t1_s:
        reach *= 2
    service_s = draws.services_s(reach, scale).tolist()
    # Per queue: its backlog, its arrivals (sorted) and its follow-ons (in time order), each read by an
    # index or from the left: the queue's FIFO is the backlog, then the other two merged by time.
    backlog = []
    for queue in state.queues:
        times_s, tags = queue.peek(min(len(queue), reach))
        backlog.append((times_s.tolist(), tags.tolist()))
    incoming = [(times_s.tolist(), tags.tolist()) for times_s, tags in zip(arrivals.times_s, arrivals.tags,
                                                                           strict=True)]
    taken_old = [0] * QUEUES
    taken_new = [0] * QUEUES
    made: list[deque[tuple[float, int]]] = [deque() for _ in range(QUEUES)]
    later: list[tuple[float, int, int, int]] = []  # follow-ons not yet arrived: heap of (t, seq, queue, tag)
    seq = 0
    ends: list[tuple[float, int, float]] = []
    inf = math.inf
    for took_s in service_s:
        # Whose turn: the first queue with a signal there by free_s (up to TIE_S after it).
        while True:
            ready_s = free_s + TIE_S
            while later and later[0][0] <= ready_s:
                t_s, _, q, tag = heapq.heappop(later)
                made[q].append((t_s, tag))
            chosen = -1
            soonest = inf
            for q in range(QUEUES):
                if taken_old[q] < len(backlog[q][0]):
                    chosen = q
                    break
                new_times = incoming[q][0]
                head_s = new_times[taken_new[q]] if taken_new[q] < len(new_times) else inf
                if made[q] and made[q][0][0] < head_s:
                    head_s = made[q][0][0]
                if head_s <= ready_s:
                    chosen = q
                    break
                soonest = min(soonest, head_s)
            if chosen >= 0:
                break
            if later:
                soonest = min(soonest, later[0][0])
            if soonest == inf:
                return sorted(ends)
            free_s = soonest
        if free_s >= t1_s:
            break
        q = chosen
        if taken_old[q] < len(backlog[q][0]):
            arrival_s, tag = backlog[q][0][taken_old[q]], backlog[q][1][taken_old[q]]
            taken_old[q] += 1
        else:
            new_times, new_tags = incoming[q]
            i = taken_new[q]
            if made[q] and (i >= len(new_times) or made[q][0][0] < new_times[i]):
                arrival_s, tag = made[q].popleft()
            else:
                arrival_s, tag = new_times[i], new_tags[i]
                taken_new[q] = i + 1
        end_s = free_s + took_s
        if tag != NO_TAG:
            if end_s < t1_s:
                ends.append((end_s, tag, arrival_s))
            for follow_queue, count, follow_tag, delay_s in follow_ons(tag):
                for _ in range(count):
                    heapq.heappush(later, (end_s + delay_s, seq, follow_queue, follow_tag))
                    seq += 1
        free_s = end_s
    return sorted(ends)


def tagged_ends_in_slots(
    state: RouterState, t0_s: float, t1_s: float, arrivals: Arrivals, draws: ServiceDraws, capacity_factor: float,
    follow_ons: FollowOns,
) -> list[tuple[float, int, float]] | None:
    """`tagged_ends_one_by_one` for a registration storm, mostly in bulk.

    Valid when the only follow-ons are low signals that a handled lowest signal queues at once (a
    registration's next steps).  Such follow-ons keep the thread busy from their parent's arrival until
    the last of them is served (first the parent waits, then they do), so for *when* the thread works
    or idles they count as if they arrived with their parent.  The slot start times then follow from
    the Lindley recursion over every signal, as in `serve_block`; the high and normal queues take their
    slots in bulk (`_allocate`), as their arrivals are all known; only the low and lowest queues, where
    a handled request queues low signals that go before the next request, are played slot by slot, over
    the slots left to them.  None when a follow-on has another form (the caller plays the block one
    signal at a time then).  Changes nothing.
    """
    scale = 1.0 / (1000.0 * capacity_factor)
    free_s = max(t0_s, state.busy_until_s)
    if free_s >= t1_s:
        return []
    backlog = [len(queue) for queue in state.queues]
    # At most this many services start in the block (follow-ons add jobs: read as if busy to t1_s).
    service_s = _read_ahead(draws, 1 << 40, free_s, t1_s, scale)
    most = len(service_s)

    known: dict[int, int | None] = {}  # asked once per tag: for the count below, then again when it is served

    def chained(tag: int) -> int | None:
        """How many low signals the lowest signal `tag` queues at once when handled; None: another form."""
        if tag not in known:
            follows = follow_ons(tag)
            regular = all(
                not count or (queue == LOW and delay_s == 0.0 and (made == NO_TAG or not follow_ons(made)))
                for queue, count, made, delay_s in follows
            )
            known[tag] = sum(count for _, count, _, _ in follows) if regular else None
        return known[tag]

    # When each signal (and each follow-on, with its parent) can be served: the waiting ones at free_s.
    ready_now = sum(backlog)
    # Past `most` waiting signals the count below stops at once: no need to copy a longer backlog.
    _, lowest_tags = state.queues[LOWEST].peek(min(backlog[LOWEST], most))
    for tag in lowest_tags[lowest_tags != NO_TAG].tolist():
        if ready_now >= most:
            break
        extra = chained(tag)
        if extra is None:
            return None
        ready_now += extra
    new_lowest_s, new_lowest_tags = arrivals.times_s[LOWEST], arrivals.tags[LOWEST]
    tagged = np.flatnonzero(new_lowest_tags != NO_TAG)
    extras = [chained(tag) for tag in new_lowest_tags[tagged].tolist()]
    if None in extras:
        return None
    ready_s = np.sort(np.concatenate((
        np.full(min(ready_now, most), free_s), *arrivals.times_s,
        np.repeat(new_lowest_s[tagged], np.array(extras, dtype=np.int64)),
    )))[:most]
    if not len(ready_s):
        return []
    slot_s, _ = _slot_starts(free_s, ready_s, service_s[:len(ready_s)])
    slots = int(np.searchsorted(slot_s, t1_s, side="left"))
    slot_s, service_s = slot_s[:slots], service_s[:slots]
    ends: list[tuple[float, int, float]] = []
    free_slots = np.arange(slots)
    for q in (HIGH, NORMAL):
        times_s, tags = arrivals.times_s[q], arrivals.tags[q]
        took = _allocate(slot_s[free_slots], backlog[q], times_s - TIE_S)
        mine = free_slots[took]
        free_slots = free_slots[~took]
        old_s, old_tags = state.queues[q].peek(min(len(mine), backlog[q]))
        job_s = np.concatenate((old_s, times_s[:len(mine) - len(old_s)]))
        job_tags = np.concatenate((old_tags, tags[:len(mine) - len(old_s)]))
        tagged = np.flatnonzero(job_tags != NO_TAG)
        if any(follow_ons(tag) for tag in job_tags[tagged].tolist()):
            return None
        end_s = slot_s[mine[tagged]] + service_s[mine[tagged]]
        inside = end_s < t1_s
        ends += zip(end_s[inside].tolist(), job_tags[tagged][inside].tolist(), job_s[tagged][inside].tolist(),
                    strict=True)

    # The low and lowest queues, slot by slot: each a FIFO of its backlog, then its arrivals (and for the
    # low queue, follow-ons) in arrival order.
    def fifo(q: int) -> deque[tuple[float, int]]:
        times_s, tags = state.queues[q].peek(min(backlog[q], len(free_slots)))
        return deque(zip(times_s.tolist(), tags.tolist(), strict=True))

    waiting = {q: fifo(q) for q in (LOW, LOWEST)}
    incoming = {q: list(zip(arrivals.times_s[q].tolist(), arrivals.tags[q].tolist(), strict=True))
                for q in (LOW, LOWEST)}
    next_in = {LOW: 0, LOWEST: 0}
    made: deque[tuple[float, int]] = deque()  # follow-ons to the low queue, in time order
    for at_s, took_s in zip(slot_s[free_slots].tolist(), service_s[free_slots].tolist(), strict=True):
        ready_s = at_s + TIE_S
        for q in (LOW, LOWEST):
            pending, i = incoming[q], next_in[q]
            while i < len(pending) and pending[i][0] <= ready_s:
                if q == LOW:
                    while made and made[0][0] <= pending[i][0]:
                        waiting[q].append(made.popleft())
                waiting[q].append(pending[i])
                i += 1
            next_in[q] = i
        while made and made[0][0] <= ready_s:
            waiting[LOW].append(made.popleft())
        if waiting[LOW]:
            arrival_s, tag = waiting[LOW].popleft()
            if tag != NO_TAG and follow_ons(tag):
                return None
        elif waiting[LOWEST]:
            arrival_s, tag = waiting[LOWEST].popleft()
            if tag != NO_TAG and chained(tag) is None:  # a backlog the count above did not reach
                return None
        else:  # cannot happen (see the doc): the Lindley slots only start when a signal waits
            raise AssertionError(f"slot at {at_s} s: nothing waits in the low or lowest queue")
        end_s = at_s + took_s
        if tag != NO_TAG:
            if end_s < t1_s:
                ends.append((end_s, tag, arrival_s))
            for _, count, follow_tag, _ in follow_ons(tag):  # low ones, at once (checked)
                made.extend([(end_s, follow_tag)] * count)
    return sorted(ends)
