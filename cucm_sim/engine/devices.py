"""The device table: the phones a node serves, as the world keeps them and the engine reads and updates them.

The world makes the table and owns it; an engine is handed it when it joins the world and changes a
phone's registration state only as its rules say (a registration dialogue that ends, an SCCP closure, a
restart).  The table also says which phones misbehave (chatty groups), how often each phone sends a
keepalive (by pool), and how long a closed phone waits before registering again: the phones' own behaviour, the
world's to define.  States are kept in a bytearray, which the per-signal engine indexes directly and
the batched engine reads through a numpy view of the same memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cucm_sim.engine.vocabulary import REGISTERED, UNREGISTERED
from cucm_sim.rules.priorities import PRIORITY_INDEX
from cucm_sim.scenario.node import ChattyDevices
from cucm_sim.scenario.schema import DevicesParams


@dataclass(frozen=True)
class ChattyGroup:
    """Phones `first` .. `first + count - 1` send `events_per_s` each (Poisson) between `start_s` and `end_s`."""

    first: int
    count: int
    events_per_s: float
    start_s: float
    end_s: float
    queue: int


@dataclass(frozen=True)
class KeepaliveGroup:
    """Phones `first` .. `first + count - 1` send one keepalive every `interval_s` (s)."""

    first: int
    count: int
    interval_s: float


@dataclass(frozen=True)
class PoolLayout:
    """A pool of a cluster's phones as the table lays them out: `count` phones from `first`, their keepalive
    interval (s) and their chatty groups (with `first` counted from the pool's first phone)."""

    first: int
    count: int
    keepalive_interval_s: float
    chatty: tuple[ChattyDevices, ...] = ()


class DeviceTable:
    """A node's phones: registration state per phone and the count registered, plus how the phones behave.

    In a cluster every node's table holds every phone of the cluster, in the same order, and a phone is
    registered in at most one node's table; `calls_follow_phones` then says that a call attempt is made by
    a uniformly random phone of the cluster and reaches this node only if that phone is registered here,
    and `announces_registrations` that the engine reports each completed registration (DeviceRegistered).
    """

    def __init__(self, devices: DevicesParams, pools: Sequence[PoolLayout] | None = None,
                 registered: np.ndarray | Sequence[int] = ()) -> None:
        """The table of `devices` (a node alone); with `pools`, a cluster node's, `registered` its phones
        registered at t = 0."""
        cluster = pools is not None
        count = devices.phone_count
        start = REGISTERED if devices.registered_at_start and not cluster else UNREGISTERED
        self.state = bytearray([start] * count)
        self.array = np.frombuffer(self.state, dtype=np.int8)
        """The same states as an int8 array (a view: writing one writes the other)."""
        if cluster:
            self.array[np.asarray(registered, dtype=np.int64)] = REGISTERED
        self.registered = int(np.count_nonzero(self.array == REGISTERED))
        self.calls_follow_phones = cluster
        self.announces_registrations = cluster
        self.keepalive_queue = PRIORITY_INDEX[devices.keepalive_priority]
        self.registration_signals = devices.registration_signals
        self.reregister_delay_s = devices.throttled_reregister_delay_s
        """A phone closed for too many events starts registering again this long after (s)."""
        layout = pools if pools is not None else (PoolLayout(0, count, devices.keepalive_interval_s,
                                                             tuple(devices.chatty)),)
        self.keepalives = tuple(KeepaliveGroup(pool.first, pool.count, pool.keepalive_interval_s)
                                for pool in layout if pool.count)
        """The phones' keepalive intervals, by pool (one group for a node alone)."""
        groups = []
        for pool in layout:
            first = pool.first
            for group in pool.chatty:
                groups.append(ChattyGroup(first, group.count, group.events_per_s, group.start_s, group.end_s,
                                          PRIORITY_INDEX[group.priority]))
                first += group.count
        self.chatty = tuple(groups)

    def __len__(self) -> int:
        return len(self.state)

    def unregister_all(self) -> None:
        """Every phone loses its registration (its node restarted)."""
        self.array[:] = UNREGISTERED
        self.registered = 0
