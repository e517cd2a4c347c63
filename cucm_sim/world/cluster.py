"""A cluster's phones, as the world owns them: which node each is with, and how each moves when a node goes
down or comes back.

Every node's device table holds every phone of the cluster (`engine.devices`); a phone is registered in at
most one of them.  The rules (DOMAIN.md section 4; every timing is a scenario input, `scenario.cluster`):

* **Start**: each phone is registered with its group's primary; a cold start (`registered_at_start:
  false`) has each start registering with it at a uniformly random time within `registration_spread_s`.
* **Code Red** of node k at t: every phone registered or registering with k loses it at t
  (DeviceUnregistered, reason ConnectivityError, for those registered).  Each notices: `tcp_close`, at
  t; `keepalive`, at its `missed_keepalives`-th unanswered keepalive, t + U(0, I) + (m - 1) I with I
  its pool's keepalive interval.  It then registers with the first node of its group, in order, that is
  up when it gets there: `tcp_close` phones spread over U(0, `registration_spread_s`) after noticing,
  `keepalive` phones at once (their keepalive phases spread them).  A phone that was on its way to k
  finds it down when it gets there and goes on to the next at once (or registers with k, if k is back).
* **No node of the group up**: the phone keeps trying, which is modelled as registering with the first
  node of its group to come back, within `registration_spread_s` of its CallManagerOnline.
* **CallManagerOnline** of node j at t: the phones waiting for any node of a group with j register with
  j (the storm); each phone of j's groups' primaries on another node sees j back at its next secondary
  keepalive, t + U(0, `secondary_keepalive_interval_s`), and `rehome_delay_s` later unregisters from
  the secondary (DeviceUnregistered, reason DeviceUnregistered: it leaves on its own) and registers with
  j, unless by then j is down again or the phone has moved.
* **SCCP closure**: DeviceUnregistered (SCCPDeviceThrottling); the engine registers it again with the
  same node (`world.phones`).

A move is delivered to an engine (`engine.interface`) before that engine can make the move's time its
past: the world holds the moves it plans and hands them over a second ahead (`due`), and keeps every
engine's lookahead at one second while a node is in Code Yellow or down or a move is pending, since only
then can a node fail (Code Red comes at least a minute after Code Yellow begins).  A move the engine can
no longer take at its own time (its time already past, which only a delay under a second can cause) is
taken at the earliest time it can.  Draws come from the cluster's own stream, in phone order.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

import numpy as np

from cucm_sim.engine.devices import DeviceTable, PoolLayout
from cucm_sim.engine.interface import NodeEngine, PhoneArrives, PhoneLeaves
from cucm_sim.engine.vocabulary import REGISTERED, UNREGISTERED
from cucm_sim.rules.alarms import (
    CALLMANAGER_ONLINE,
    CODE_RED_ENTRY,
    CODE_YELLOW_ENTRY,
    CODE_YELLOW_EXIT,
    CONNECTIVITY_ERROR,
    DEVICE_CLOSE_MAX_EVENTS_EXCEEDED,
    DEVICE_INITIATED_UNREGISTER,
    SCCP_DEVICE_THROTTLING,
    Alarm,
    device_number,
    device_unregistered,
)
from cucm_sim.scenario.schema import Scenario

NOWHERE = -1
"""A phone's node when it is registered with none (it waits for one of its group to come back)."""

ARRIVE, REHOME = 0, 1


@dataclass(frozen=True)
class Move:
    """A phone's planned move: at `t_s`, `device` starts registering with `node` (ARRIVE), or leaves `source`
    for its primary `node` (REHOME).  `ticket` is the phone's ticket when planned: a later plan voids it."""

    t_s: float
    device: int
    ticket: int
    kind: int
    node: int
    source: int = NOWHERE


def pool_layouts(scenario: Scenario) -> tuple[PoolLayout, ...]:
    """The cluster's pools as the device tables lay them out: one after the other, in scenario order."""
    devices = scenario.devices
    layouts, first = [], 0
    for pool in devices.pools:
        interval_s = devices.keepalive_interval_s if pool.keepalive_interval_s is None else pool.keepalive_interval_s
        layouts.append(PoolLayout(first, pool.count, interval_s, tuple(pool.chatty)))
        first += pool.count
    return tuple(layouts)


class ClusterPhones:
    """Every phone of a cluster: its node, its group, its moves (see the module doc)."""

    def __init__(self, scenario: Scenario, node_scenarios: tuple[Scenario, ...],
                 seed: np.random.SeedSequence) -> None:
        assert scenario.cluster is not None
        names = scenario.cluster.names
        devices = scenario.devices
        self.failover = scenario.cluster.failover
        self.spread_s = devices.registration_spread_s
        self.layouts = pool_layouts(scenario)
        count = devices.phone_count
        self.groups = [tuple(names.index(name) for name in pool.cm_group) for pool in devices.pools]
        self.pool_of = np.repeat(np.arange(len(self.layouts)), [layout.count for layout in self.layouts])
        self.home = np.array([self.groups[pool][0] for pool in self.pool_of.tolist()], dtype=np.int64)
        self.keepalive_s = np.repeat([layout.keepalive_interval_s for layout in self.layouts],
                                     [layout.count for layout in self.layouts])
        self.node_of = self.home.copy() if count else np.empty(0, dtype=np.int64)
        self.arrive_s = np.zeros(count)
        self.ticket = np.zeros(count, dtype=np.int64)
        at_start = devices.registered_at_start
        self.tables = [
            DeviceTable(node.devices, self.layouts, np.flatnonzero(self.home == k) if at_start else ())
            for k, node in enumerate(node_scenarios)
        ]
        self.restart_s = [node.node.restart_duration_s for node in node_scenarios]
        self.back_at_s: list[float | None] = [None] * len(names)
        """Per node, when it comes back from a restart (None: up)."""
        self.yellow = [False] * len(names)
        self.alarms: list[list[Alarm]] = [[] for _ in names]
        """The alarms the world raises for each node's phones (DeviceUnregistered)."""
        self.failovers = 0
        self.rehomes = 0
        self._moves: list[tuple[float, int, Move]] = []
        self._handed_before_s = 0.0  # every move before this time (s) has been handed to its engine
        self.engines: list[NodeEngine] = []
        """The nodes' engines, in node order (the world sets them once they are built)."""
        self._seq = itertools.count()
        self._rng = np.random.default_rng(seed)
        self._cold_start = not at_start

    # ------------------------------------------------------------------ the world's side
    def start(self) -> None:
        """At t = 0: a cold start's phones begin registering with their primaries."""
        if self._cold_start and len(self.home):
            starts_s = self._rng.uniform(0.0, self.spread_s, len(self.home))
            for device, (node, t_s) in enumerate(zip(self.home.tolist(), starts_s.tolist(), strict=True)):
                self._arrive(device, node, t_s)

    @property
    def quiet(self) -> bool:
        """No node in Code Yellow or down, and no move pending: no node can fail within a span."""
        return not self._moves and not any(self.yellow) and all(back is None for back in self.back_at_s)

    def due(self, before_s: float) -> None:
        """Hand the engines every planned move before `before_s` (s) that still holds; from now on a move
        planned before that time is handed over at once."""
        self._handed_before_s = max(self._handed_before_s, before_s)
        engines = self.engines
        while self._moves and self._moves[0][0] < self._handed_before_s:
            _, _, move = heapq.heappop(self._moves)
            if move.ticket != self.ticket[move.device]:
                continue
            if move.kind == ARRIVE:
                _deliver(engines[move.node], move.t_s, PhoneArrives(move.device))
            elif self.back_at_s[move.node] is None and self.node_of[move.device] == move.source:
                self._rehome(move)

    def hear(self, node: int, alarm: Alarm) -> None:
        """React to node `node`'s alarm, at the alarm's own time."""
        if alarm.name == CODE_YELLOW_ENTRY:
            self.yellow[node] = True
        elif alarm.name == CODE_YELLOW_EXIT:
            self.yellow[node] = False
        elif alarm.name == CODE_RED_ENTRY:
            self.yellow[node] = False
            self.back_at_s[node] = alarm.t_s + self.restart_s[node]
            self._node_down(node, alarm.t_s)
        elif alarm.name == CALLMANAGER_ONLINE:
            self.back_at_s[node] = None
            self._node_back(node, alarm.t_s)
        elif alarm.name == DEVICE_CLOSE_MAX_EVENTS_EXCEEDED:
            device = device_number(str(alarm.params["DeviceName"]))
            self.alarms[node].append(device_unregistered(alarm.t_s, device, SCCP_DEVICE_THROTTLING))

    # ------------------------------------------------------------------ the rules
    def _node_down(self, node: int, t_s: float) -> None:
        table = self.tables[node]
        back_s = self.back_at_s[node]
        assert back_s is not None
        phones = np.flatnonzero(self.node_of == node)
        there = self.arrive_s[phones] <= t_s
        gone = phones[there]
        registered = gone[table.array[gone] == REGISTERED]
        for device in registered.tolist():
            self.alarms[node].append(device_unregistered(t_s, device, CONNECTIVITY_ERROR))
        self.failovers += len(gone)
        noticed_s = np.full(len(gone), t_s)
        if self.failover.detection == "keepalive":
            interval_s = self.keepalive_s[gone]
            noticed_s += self._rng.uniform(0.0, 1.0, len(gone)) * interval_s
            noticed_s += (self.failover.missed_keepalives - 1) * interval_s
            reach_s = noticed_s
        else:
            reach_s = noticed_s + self._rng.uniform(0.0, self.spread_s, len(gone))
        for device, at_s in zip(gone.tolist(), reach_s.tolist(), strict=True):
            self._go_on(device, at_s)
        for device in phones[~there].tolist():  # on their way: they find the node down, or back
            at_s = float(self.arrive_s[device])
            if at_s < back_s:
                self._go_on(device, at_s)
            else:  # the engine forgot what it was handed before its restart: hand it again
                self._arrive(device, node, at_s, self.engines[node])
        table.unregister_all()

    def _node_back(self, node: int, t_s: float) -> None:
        waiting = [device for device in np.flatnonzero(self.node_of == NOWHERE).tolist()
                   if node in self.groups[self.pool_of[device]]]
        starts_s = self._rng.uniform(0.0, self.spread_s, len(waiting))
        for device, delay_s in zip(waiting, starts_s.tolist(), strict=True):
            self._arrive(device, node, t_s + delay_s)
        away = np.flatnonzero((self.home == node) & (self.node_of != node) & (self.node_of != NOWHERE))
        seen_s = np.maximum(t_s, self.arrive_s[away]) + self._rng.uniform(
            0.0, self.failover.secondary_keepalive_interval_s, len(away))
        for device, at_s in zip(away.tolist(), (seen_s + self.failover.rehome_delay_s).tolist(), strict=True):
            # the phone's own ticket: a move it makes before then (it fails over again) voids the rehoming
            self._plan(Move(at_s, device, int(self.ticket[device]), REHOME, node, int(self.node_of[device])))

    def _go_on(self, device: int, at_s: float) -> None:
        """`device` looks for a node at `at_s` (s): the first of its group up by then (a node that is down
        comes back at a known time, its restart's end)."""
        for node in self.groups[self.pool_of[device]]:
            back_s = self.back_at_s[node]
            if back_s is None or back_s <= at_s:
                self._arrive(device, node, at_s)
                return
        self._new_ticket(device)
        self.node_of[device] = NOWHERE

    def _arrive(self, device: int, node: int, at_s: float, engine: NodeEngine | None = None) -> None:
        """`device` starts registering with `node` at `at_s` (s): at once to `engine`, else when due."""
        self.node_of[device] = node
        self.arrive_s[device] = at_s
        move = Move(at_s, device, self._new_ticket(device), ARRIVE, node)
        if engine is not None:
            _deliver(engine, at_s, PhoneArrives(device))
        else:
            self._plan(move)

    def _rehome(self, move: Move) -> None:
        engines = self.engines
        t_s = max(move.t_s, engines[move.source].committed_until_s(), engines[move.node].committed_until_s())
        engines[move.source].deliver(t_s, PhoneLeaves(move.device))
        if self.tables[move.source].array[move.device] != UNREGISTERED:
            self.alarms[move.source].append(device_unregistered(t_s, move.device, DEVICE_INITIATED_UNREGISTER))
        self.rehomes += 1
        self.node_of[move.device] = move.node
        self.arrive_s[move.device] = t_s
        engines[move.node].deliver(t_s, PhoneArrives(move.device))

    def _plan(self, move: Move) -> None:
        heapq.heappush(self._moves, (move.t_s, next(self._seq), move))
        if move.t_s < self._handed_before_s:  # its time comes before the world's next hand-over
            self.due(self._handed_before_s)

    def _new_ticket(self, device: int) -> int:
        self.ticket[device] += 1
        return int(self.ticket[device])


def _deliver(engine: NodeEngine, t_s: float, event: PhoneArrives | PhoneLeaves) -> None:
    """Deliver `event` at `t_s`, or at the engine's committed time if that is later (see the module doc)."""
    engine.deliver(max(t_s, engine.committed_until_s()), event)
