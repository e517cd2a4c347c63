"""Where a cluster's phones went, read from its nodes' DeviceRegistered and DeviceUnregistered alarms.

Pure: each node's alarms in, records out, for the story (`cluster_narrative`) and the figure (`cluster_plot`).
A `Failover` is what followed one Code Red: the phones that lost their registration with the node then
(DeviceUnregistered, ConnectivityError) and the node each registered with next, with its time.  A `Return` is
what followed one CallManagerOnline: the phones that left another node for it (DeviceUnregistered, reason
DeviceUnregistered: rehoming; the CallManagerOnline at least rehome_delay_s before planned it), and those
that registered with it from no node until its next Code Red (they had found their whole group down, or
were still on their way).  A phone's alarms are read in
time order, and at one instant (alarms.csv keeps milliseconds) its unregistration before its registration:
a phone leaves a node before it gets to the next, so a registration follows the loss it answers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from cucm_sim.report.cluster_files import alarms_in_order
from cucm_sim.rules.alarms import (
    CALLMANAGER_ONLINE,
    CODE_RED_ENTRY,
    CONNECTIVITY_ERROR,
    DEVICE_INITIATED_UNREGISTER,
    DEVICE_REGISTERED,
    DEVICE_UNREGISTERED,
)
from cucm_sim.run.cluster import NodeRun

SAME_INSTANT_S = 1e-6
"""Alarms this close in time are at the same instant (alarms.csv keeps milliseconds)."""


@dataclass(frozen=True)
class _Event:
    """One DeviceRegistered / DeviceUnregistered of a phone, at a node."""

    t_s: float
    node: str
    registered: bool
    reason: str


@dataclass
class Failover:
    """The phones a node's Code Red at `t_s` unregistered, and where they registered next."""

    node: str
    t_s: float
    lost: int = 0
    """Phones registered with the node when it went down (DeviceUnregistered, ConnectivityError)."""
    arrivals_s: dict[str, list[float]] = field(default_factory=dict)
    """By node (the failed one too: those that waited for it), when each of them registered there, in order."""

    @property
    def never_registered(self) -> int:
        """Of the phones lost, those that registered nowhere before the run ended."""
        return self.lost - sum(len(times) for times in self.arrivals_s.values())


@dataclass
class Return:
    """What a node's CallManagerOnline at `t_s` brought back: the phones it made rehome (when each left the
    other node), and those that came from no node until its next Code Red (`until_s`)."""

    node: str
    t_s: float
    until_s: float
    rehomed_s: dict[str, list[float]] = field(default_factory=dict)
    """By the node they left, when phones unregistered from it to register with this one, in order."""
    from_nowhere_s: list[float] = field(default_factory=list)
    """When phones registered with no node registered with this one, in order."""

    @property
    def rehomes(self) -> int:
        return sum(len(times) for times in self.rehomed_s.values())


def phone_moves(nodes: Sequence[NodeRun], rehome_delay_s: float) -> tuple[list[Failover], list[Return]]:
    """Every Code Red's failover and every CallManagerOnline's return, in time order.  A rehome belongs to the
    node's last CallManagerOnline at least `rehome_delay_s` (the scenario's) before it: the one that planned it."""
    events: dict[str, list[_Event]] = {}
    for node, alarm in alarms_in_order(nodes):
        if alarm.name in (DEVICE_REGISTERED, DEVICE_UNREGISTERED):
            events.setdefault(str(alarm.params.get("DeviceName", "")), []).append(
                _Event(alarm.t_s, node, alarm.name == DEVICE_REGISTERED, str(alarm.params.get("Reason", ""))))
    for history in events.values():  # at one instant (alarms.csv's millisecond) a phone leaves, then arrives
        history.sort(key=lambda event: (event.t_s, event.registered))
    failovers: list[Failover] = []
    returns: dict[str, list[Return]] = {}
    for run in nodes:
        reds = [alarm.t_s for alarm in run.alarms if alarm.name == CODE_RED_ENTRY]
        failovers += [_failover(run.name, red_s, events) for red_s in reds]
        returns[run.name] = [Return(run.name, alarm.t_s, min((t_s for t_s in reds if t_s > alarm.t_s),
                                                             default=math.inf))
                             for alarm in run.alarms if alarm.name == CALLMANAGER_ONLINE]
    for history in events.values():
        for k, event in enumerate(history):
            if event.registered and event.node in returns:
                _count_return(history[k - 1] if k else None, event, returns[event.node], rehome_delay_s)
    every_return = [back for backs in returns.values() for back in backs]
    for back in every_return:
        back.from_nowhere_s.sort()
        for times in back.rehomed_s.values():
            times.sort()
    return sorted(failovers, key=lambda f: f.t_s), sorted(every_return, key=lambda r: r.t_s)


def _failover(node: str, red_s: float, events: dict[str, list[_Event]]) -> Failover:
    failover = Failover(node, red_s)
    for history in events.values():
        for k, event in enumerate(history):
            if event.node == node and not event.registered and event.reason == CONNECTIVITY_ERROR \
                    and abs(event.t_s - red_s) < SAME_INSTANT_S:
                failover.lost += 1
                after = next((later for later in history[k + 1:] if later.registered), None)
                if after is not None:
                    failover.arrivals_s.setdefault(after.node, []).append(after.t_s)
                break
    for times in failover.arrivals_s.values():
        times.sort()
    return failover


def _count_return(before: _Event | None, event: _Event, backs: list[Return], rehome_delay_s: float) -> None:
    """Count `event`, a registration with a node, in the return it belongs to, if any (`before`: the phone's
    event before it)."""
    if before is not None and before.reason == DEVICE_INITIATED_UNREGISTER and before.node != event.node:
        planned = [back for back in backs if back.t_s <= before.t_s - rehome_delay_s + SAME_INSTANT_S]
        if planned:
            planned[-1].rehomed_s.setdefault(before.node, []).append(before.t_s)
        return
    if before is None or before.registered or before.reason == CONNECTIVITY_ERROR:
        within = [back for back in backs if back.t_s < event.t_s <= back.until_s]
        if within:
            within[-1].from_nowhere_s.append(event.t_s)
