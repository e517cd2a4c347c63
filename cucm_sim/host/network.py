"""The hosts and links of a scenario on the world's clock, sampled once a second as Perfmon would.

Builds one `host.HostModel` per host and one `link.LinkModel` per link on a shared SimPy environment,
each with its own child of the scenario's seed sequence (hosts in order, then links), and samples every
processor, ring and link at the end of each second (`HostTimeline`).  `summary` gives the run's totals
and each host's and link's.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from cucm_sim.host import messages
from cucm_sim.host.host import EventLog, HostModel
from cucm_sim.host.link import LinkModel
from cucm_sim.measures.stats import LogHistogram
from cucm_sim.scenario.hosts import DpcStorm
from cucm_sim.scenario.schema import Scenario

HOST_COLUMNS = ("ring_occupancy", "packets_dropped")
PROCESSOR_COLUMNS = ("dpc_rate", "dpc_time_pct")
LINK_COLUMNS = ("heartbeats_sent", "heartbeats_received", "heartbeats_missed", "session_open")


def timeline_columns(scenario: Scenario) -> list[str]:
    """The per-second columns of a host scenario, after t_s: each host's, each processor's, each link's."""
    columns = []
    for host in scenario.hosts:
        columns += [f"{host.name}.cpu{k}.{column}" for k in range(host.processors) for column in PROCESSOR_COLUMNS]
        columns += [f"{host.name}.{column}" for column in HOST_COLUMNS]
    for link in scenario.links:
        columns += [f"{link.name}.{column}" for column in LINK_COLUMNS]
    return columns


class HostNetwork:
    """A scenario's hosts and links on `env` (see the module doc)."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, seeds: np.random.SeedSequence) -> None:
        self.env = env
        self.scenario = scenario
        self.log = EventLog()
        children = seeds.spawn(len(scenario.hosts) + len(scenario.links))
        receivers = {link.receiver for link in scenario.links}
        self.hosts: dict[str, HostModel] = {}
        for host, child in zip(scenario.hosts, children[:len(scenario.hosts)], strict=True):
            storms = [d for d in scenario.disturbances if isinstance(d, DpcStorm) and d.host == host.name]
            routine = messages.cvp_routine if host.name in receivers else messages.pim_routine
            self.hosts[host.name] = HostModel(env, host, storms, child, self.log, routine)
        self.links = [
            LinkModel(env, link, self.hosts[link.sender], self.hosts[link.receiver], child)
            for link, child in zip(scenario.links, children[len(scenario.hosts):], strict=True)
        ]
        self.columns = timeline_columns(scenario)
        self._table = np.zeros((scenario.duration_s, len(self.columns)))
        self._rows = 0
        self._dropped = {name: 0 for name in self.hosts}
        self._link_seen = [(0, 0, 0) for _ in self.links]
        self.max_dpc_rate = 0
        self.finished = env.process(self._sample())

    def _sample(self) -> Generator[simpy.Event, Any, None]:
        for _ in range(self.scenario.duration_s):
            yield self.env.timeout(1.0)
            row: list[float] = []
            for name, host in self.hosts.items():
                for processor in host.processors:
                    rate, busy_pct = processor.sample()
                    self.max_dpc_rate = max(self.max_dpc_rate, rate)
                    row += [rate, busy_pct]
                dropped = host.packets_dropped
                row += [host.ring_occupancy, dropped - self._dropped[name]]
                self._dropped[name] = dropped
            for k, link in enumerate(self.links):
                counts = link.counts
                now = (counts.heartbeats_sent, counts.heartbeats_received, counts.heartbeats_missed)
                row += [now[i] - self._link_seen[k][i] for i in range(3)] + [1 if link.is_open else 0]
                self._link_seen[k] = now
            self._table[self._rows] = row
            self._rows += 1

    def timeline(self) -> dict[str, np.ndarray]:
        """The per-second samples, by column (t_s: the second's end)."""
        table = self._table[:self._rows]
        out = {"t_s": np.arange(1, self._rows + 1, dtype=float)}
        out.update({column: table[:, k] for k, column in enumerate(self.columns)})
        return out

    def summary(self) -> dict[str, Any]:
        """The run's totals, then each host's and each link's (the metric names of `measures.metrics`)."""
        now_s = float(self.env.now)
        hosts: dict[str, Any] = {}
        for name, host in self.hosts.items():
            waits = LogHistogram.merged([processor.waits_ms for processor in host.processors])
            hosts[name] = {
                "packets_dropped": host.packets_dropped,
                "packets_received": sum(ring.received for ring in host.rings.values()),
                "dpcs_queued": sum(processor.dpcs_queued for processor in host.processors),
                "dpc_wait_ms": waits.describe(),
            }
        links: dict[str, Any] = {}
        for link in self.links:
            counts = link.counts
            links[link.link.name] = {
                "heartbeats_sent": counts.heartbeats_sent,
                "heartbeats_received": counts.heartbeats_received,
                "heartbeats_missed": counts.heartbeats_missed,
                "sessions_closed": counts.sessions_closed,
                "time_in_partial_service_s": link.partial_service_s(now_s),
                "segments_dropped": counts.segments_dropped,
                "retransmissions": counts.retransmissions,
                "messages_sent": counts.messages_sent,
                "messages_received": counts.messages_received,
                "heartbeat_delay_ms": link.heartbeat_delay_ms.describe(),
            }
        total = {
            key: sum(link[key] for link in links.values())
            for key in ("heartbeats_sent", "heartbeats_received", "heartbeats_missed", "sessions_closed",
                        "time_in_partial_service_s")
        }
        return {
            **total,
            "packets_dropped": sum(host["packets_dropped"] for host in hosts.values()),
            "max_dpc_rate": self.max_dpc_rate,
            "hosts": hosts,
            "links": links,
        }
