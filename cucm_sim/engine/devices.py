"""The device table: the phones a node serves, as the world keeps them and the engine reads and updates them.

The world makes the table and owns it; an engine is handed it when it joins the world and changes a
phone's registration state only as its rules say (a registration dialogue that ends, an SCCP closure, a
restart).  The table also says which phones misbehave (chatty groups), how often every phone sends a
keepalive, and how long a closed phone waits before registering again: the phones' own behaviour, the
world's to define.  States are kept in a bytearray, which the per-signal engine indexes directly and
the batched engine reads through a numpy view of the same memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cucm_sim.engine.vocabulary import REGISTERED, UNREGISTERED
from cucm_sim.rules.priorities import PRIORITY_INDEX
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


class DeviceTable:
    """A node's phones: registration state per phone and the count registered, plus how the phones behave."""

    def __init__(self, devices: DevicesParams) -> None:
        count = devices.count
        self.state = bytearray([REGISTERED if devices.registered_at_start else UNREGISTERED] * count)
        self.array = np.frombuffer(self.state, dtype=np.int8)
        """The same states as an int8 array (a view: writing one writes the other)."""
        self.registered = count if devices.registered_at_start else 0
        self.keepalive_interval_s = devices.keepalive_interval_s
        self.keepalive_queue = PRIORITY_INDEX[devices.keepalive_priority]
        self.registration_signals = devices.registration_signals
        self.reregister_delay_s = devices.throttled_reregister_delay_s
        """A phone closed for too many events starts registering again this long after (s)."""
        groups = []
        first = 0
        for group in devices.chatty:
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
