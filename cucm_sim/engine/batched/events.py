"""The sparse events of the batched engine, as named records, and the order of simultaneous ones.

The decide step (`decide`) plays a block's sparse events in time order from a heap of entries
``(t_s, rank, seq, event)``.  At one time they go by rank -- a signal handled at t first (what it
starts happens at t), then SCCP closures, registrations, teardowns, and a phone that leaves last --
then by `seq`, the order in which they became known.  That order decides results: it is the per-signal
engine's.  Events that fall past the block wait in the node's `TimedEvents`, ordered the same way.
"""

from __future__ import annotations

import heapq
import itertools
from typing import NamedTuple

HANDLED, CLOSES, REGISTERS, TEARS_DOWN, LEAVES = range(5)
"""The ranks of simultaneous events, first to last."""


class Handled(NamedTuple):
    """A tagged signal's service ended: what waited for it goes on (`tags`)."""

    tag: int
    arrival_s: float


class Closes(NamedTuple):
    """The SCCP limiter closes `device`: it unregisters, and registers again a delay later."""

    device: int


class Registers(NamedTuple):
    """`device` starts registering (if it is unregistered): its request joins the lowest queue."""

    device: int


class TearsDown(NamedTuple):
    """A call ends: `signals` teardown signals, caused by `device` (-1: by no device).

    `queued` False: the server that computes the block queues them itself; they count as device events only.
    """

    device: int
    signals: int
    queued: bool


class Leaves(NamedTuple):
    """`device` is no longer registered with the node."""

    device: int


Event = Handled | Closes | Registers | TearsDown | Leaves
Entry = tuple[float, int, int, Event]
"""A heap entry: (t_s, rank, seq, event)."""
Closure = tuple[float, int, int]
"""An SCCP closure the limiter makes (`sccp_block`): (t_s, device, events in the window)."""

RANK: dict[type, int] = {Handled: HANDLED, Closes: CLOSES, Registers: REGISTERS, TearsDown: TEARS_DOWN,
                         Leaves: LEAVES}


class TimedEvents:
    """The node's events still to come, across blocks: phones that arrive or leave (the world's), and the
    teardowns and re-registrations a block decided past its end.  A heap by (t_s, rank, seq)."""

    def __init__(self) -> None:
        self._heap: list[Entry] = []
        self._seq = itertools.count()

    def push(self, t_s: float, event: Event) -> None:
        """`event` happens at `t_s` (s), after every event already known for that time and rank."""
        heapq.heappush(self._heap, (t_s, RANK[type(event)], next(self._seq), event))

    def pop_before(self, t1_s: float) -> list[Entry]:
        """Take out every event before `t1_s` (s), in order."""
        due = []
        while self._heap and self._heap[0][0] < t1_s:
            due.append(heapq.heappop(self._heap))
        return due

    def put_back(self, entries: list[Entry]) -> None:
        """Return entries taken out (their block was undone), with their place in the order."""
        for entry in entries:
            heapq.heappush(self._heap, entry)

    def clear(self) -> None:
        """Forget every event (the node restarts)."""
        self._heap.clear()
