"""One clock, N node engines and the hosts and links beside them: the world a run builds, runs and reads.

Each node is set up from its own scenario (its load, its phones, its engine) and its own seed sequence;
`node_seeds` gives node k `SeedSequence(seed, spawn_key=(k,))`, or, for a world of one node, the
scenario's `SeedSequence(seed)` itself, so every one-node result stays what it was.  Every alarm a node
reports is kept in that node's list and heard by its phones at once, at the alarm's own time (the batched
engine reports alarms up to a span ahead of the clock).  `run(until_s)` advances the shared clock; at or
past the last node's duration it runs until every node has taken its last sample.  A scenario's hosts
and links (`host.network.HostNetwork`) join the same clock, with their own seed sequence.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from cucm_sim.engine.devices import DeviceTable
from cucm_sim.engine.interface import NodeEngine
from cucm_sim.engine.registry import engine_named
from cucm_sim.engine.vocabulary import spawn_streams
from cucm_sim.host.network import HostNetwork
from cucm_sim.rules.alarms import Alarm
from cucm_sim.scenario.schema import Scenario
from cucm_sim.scenario.workload import SPAN_ROWS
from cucm_sim.world.cluster import ClusterPhones
from cucm_sim.world.phones import Phones


def node_seeds(seed: int, nodes: int) -> list[np.random.SeedSequence]:
    """The root seed sequence of each of `nodes` nodes under `seed`."""
    if nodes == 1:
        return [np.random.SeedSequence(seed)]
    return [np.random.SeedSequence(seed, spawn_key=(k,)) for k in range(nodes)]


@dataclass(frozen=True)
class NodeSetup:
    """What one node of a world is made of: its scenario (load, phones, engine, rules) and its seeds."""

    scenario: Scenario
    seeds: np.random.SeedSequence


@dataclass
class WorldNode:
    """One node of a running world: its engine, its device table, what reacts to its alarms, and the alarms it
    raised, in order."""

    setup: NodeSetup
    engine: NodeEngine
    table: DeviceTable
    react: Callable[[Alarm], None]
    """The phones' reaction to an alarm of this node (`Phones.hear`, or the cluster's)."""
    alarms: list[Alarm] = field(default_factory=list)

    def hear(self, alarm: Alarm) -> None:
        """The node raised `alarm`: keep it, and let the phones react at its time."""
        self.alarms.append(alarm)
        self.react(alarm)


@dataclass(frozen=True)
class HostsSetup:
    """The hosts and links of a world: the scenario that describes them and their seeds."""

    scenario: Scenario
    seeds: np.random.SeedSequence


@dataclass(frozen=True)
class ClusterSetup:
    """A cluster's phones: the scenario that describes the cluster and the seeds of the phones' own draws."""

    scenario: Scenario
    seeds: np.random.SeedSequence


class World:
    """N node engines on one SimPy clock, each with the phones the world gave it, and the hosts beside them.

    With a cluster (`world.cluster`), the nodes share the cluster's phones, and the world moves them from
    node to node; it hands the engines each move a second ahead and keeps their lookahead at a second
    while a node could fail (see `ClusterPhones`).
    """

    def __init__(self, setups: list[NodeSetup], hosts: HostsSetup | None = None,
                 cluster: ClusterSetup | None = None) -> None:
        if not setups and hosts is None:
            raise ValueError("a world needs at least one node or host")
        self.env = simpy.Environment()
        self.nodes: list[WorldNode] = []
        self.cluster = (ClusterPhones(cluster.scenario, tuple(setup.scenario for setup in setups), cluster.seeds)
                        if cluster is not None else None)
        for index, setup in enumerate(setups):
            kind = engine_named(setup.scenario.engine)
            streams = spawn_streams(setup.seeds, kind.stream_names)
            engine = kind.build(setup.scenario, streams)
            if self.cluster is None:
                phones = Phones(setup.scenario.devices, index, streams["registration"])
                node = WorldNode(setup, engine, phones.table, functools.partial(phones.hear, engine))
            else:
                node = WorldNode(setup, engine, self.cluster.tables[index],
                                 functools.partial(self._cluster_hears, index))
            engine.attach(self.env, node.table, node.hear)
            if self.cluster is None:
                phones.start(engine)
            self.nodes.append(node)
        if self.cluster is not None:
            self._engines = [node.engine for node in self.nodes]
            self.cluster.engines = self._engines
            self.cluster.start()
            self._lookahead_s = 0
            self._set_lookahead()
            self.env.process(self._mover())
        self.hosts = HostNetwork(self.env, hosts.scenario, hosts.seeds) if hosts is not None else None
        durations = [setup.scenario.duration_s for setup in setups] + ([hosts.scenario.duration_s] if hosts else [])
        self.end_s = float(max(durations))

    def _cluster_hears(self, index: int, alarm: Alarm) -> None:
        assert self.cluster is not None
        self.cluster.hear(index, alarm)
        self._set_lookahead()

    def _set_lookahead(self) -> None:
        """A second while a node could fail or a move is pending; else the engines' own spans."""
        assert self.cluster is not None
        seconds = SPAN_ROWS if self.cluster.quiet else 1
        if seconds != self._lookahead_s:
            self._lookahead_s = seconds
            for engine in self._engines:
                engine.limit_lookahead(seconds)

    def _mover(self) -> Generator[simpy.Event, Any, None]:
        """Half a second before each second: hand the engines the moves they could otherwise pass."""
        assert self.cluster is not None
        yield self.env.timeout(0.5)
        while self.env.now < self.end_s:
            self.cluster.due(self.env.now + 1.5)
            self._set_lookahead()
            yield self.env.timeout(1.0)

    @property
    def now_s(self) -> float:
        """The shared clock (s)."""
        return float(self.env.now)

    def run(self, until_s: float) -> None:
        """Advance the clock to `until_s` (s); at or past the end, until every node has taken its last sample."""
        if until_s < self.end_s:
            self.env.run(until=until_s)
            return
        pending = [node.engine.finished for node in self.nodes if not node.engine.finished.triggered]
        if self.hosts is not None and not self.hosts.finished.triggered:
            pending.append(self.hosts.finished)
        if len(pending) == 1:
            self.env.run(until=pending[0])
        elif pending:
            self.env.run(until=simpy.AllOf(self.env, pending))
