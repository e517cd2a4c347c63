"""A node's phones, as the world owns them: their device table, their home and CM group, their storms.

The world hands the table to the node's engine, which runs each phone's registration dialogue and its
SCCP limiter under the node's rules.  What happens to phones beyond one node is the world's:

* a **cold start** (`registered_at_start: false`): every phone starts registering at a uniformly random
  time within `registration_spread_s` of t = 0;
* **Code Red** (alarm CodeRedEntry): every phone of the node loses its registration at the alarm's time;
* **CallManagerOnline**: every phone starts registering at a uniformly random time within
  `registration_spread_s` of the alarm's time: the registration storm.

Each storm draws the phones' start times from the node's "registration" stream, in phone order, and
delivers them to the engine (`engine.interface`) as arrivals.  An SCCP closure (DeviceCloseMaxEventsExceeded)
is the phones' too, but its re-registration comes `throttled_reregister_delay_s` later, possibly inside
the block the batched engine is computing, so the engine plays that rule itself from the device table.
"""

from __future__ import annotations

import numpy as np

from cucm_sim.engine.devices import DeviceTable
from cucm_sim.engine.interface import NodeEngine, PhoneArrives
from cucm_sim.rules.alarms import CALLMANAGER_ONLINE, CODE_RED_ENTRY, Alarm
from cucm_sim.scenario.schema import DevicesParams


class Phones:
    """The phones homed on one node: their table, their CM group, and their reactions to the node's alarms."""

    def __init__(self, devices: DevicesParams, home_node: int, registration_seed: np.random.SeedSequence) -> None:
        self.table = DeviceTable(devices)
        self.home_node = home_node
        self.cm_group: tuple[int, ...] = (home_node,)
        """The nodes the phones may register with, in order (their CUCM group; one node for now)."""
        self.spread_s = devices.registration_spread_s
        self._cold_start = bool(devices.count) and not devices.registered_at_start
        self._registration = np.random.default_rng(registration_seed)

    def start(self, engine: NodeEngine) -> None:
        """At t = 0: a cold start's phones begin registering with `engine`."""
        if self._cold_start:
            self.storm(engine, 0.0)

    def storm(self, engine: NodeEngine, t_s: float) -> None:
        """Every phone starts registering with `engine` at a uniformly random time in [t_s, t_s + spread)."""
        starts_s = self._registration.uniform(0.0, self.spread_s, len(self.table))
        for device, delay_s in enumerate(starts_s.tolist()):
            engine.deliver(t_s + delay_s, PhoneArrives(device))

    def hear(self, engine: NodeEngine, alarm: Alarm) -> None:
        """React to an alarm of the phones' node, at the alarm's own time."""
        if alarm.name == CODE_RED_ENTRY:
            self.table.unregister_all()
        elif alarm.name == CALLMANAGER_ONLINE:
            self.storm(engine, alarm.t_s)
