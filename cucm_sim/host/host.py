"""A Windows host on the world's clock: processors, the NIC's rings, other drivers' DPCs, the application.

The rules beyond those of `processor` and `nic`:

- Receive-Side Scaling off: one receive ring, whose DPC runs on the interrupt processor.  On: one ring
  per processor; a flow (a link) stays on its ring, and other traffic is spread evenly over them.
- Other traffic reaches the NIC as a Poisson stream (`background_packets_per_s`); other drivers' DPCs
  reach each processor as a Poisson stream with exponential costs (`background_dpcs`).
- A `dpc_storm` queues `dpc_rate` DPCs per clock tick, evenly spread, on one processor, between its start
  and its end.
- The application's threads run on one processor, and only while its DPC queue is empty.  A log line
  is stamped when the application writes it: a line due while the processor is taken by DPCs waits, and
  is written (with the others that waited) when the DPC queue runs empty.  A routine line is due every
  `log_interval_s`; so a starved processor shows as a gap in the log, as in the seed.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from cucm_sim.host.draws import choices, exponentials
from cucm_sim.host.nic import ReceiveRing
from cucm_sim.host.processor import Processor
from cucm_sim.scenario.hosts import DpcStorm, Host

HOST_STREAMS = ("background_packets", "packet_queues", "background_dpcs", "background_dpc_costs")
"""A host's random streams, in the order that fixes its seeds (each processor gets a child of the DPC ones)."""


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of events.log: when it was written (s), in which order, by which host, and what it says."""

    t_s: float
    seq: int
    host: str
    text: str


class EventLog:
    """Every host's log lines, in the order they were written."""

    def __init__(self) -> None:
        self.lines: list[LogLine] = []

    def write(self, t_s: float, host: str, text: str) -> None:
        self.lines.append(LogLine(t_s, len(self.lines), host, text))


class HostModel:
    """One host's processors, rings, background work and application (see the module doc)."""

    def __init__(self, env: simpy.Environment, host: Host, storms: list[DpcStorm], seeds: np.random.SeedSequence,
                 log: EventLog, routine: Callable[[int], str]) -> None:
        self.env = env
        self.host = host
        self.log_book = log
        self._routine_line = routine
        streams = dict(zip(HOST_STREAMS, seeds.spawn(len(HOST_STREAMS)), strict=True))
        tick_s = host.tick_ms / 1000.0
        self.processors = [Processor(env, k, tick_s) for k in range(host.processors)]
        ring_processors = range(host.processors) if host.rss else [host.interrupt_processor]
        self.rings = {k: ReceiveRing(self.processors[k], host.receive_descriptors, host.receive_dpc_cost_us / 1e6,
                                     host.receive_cost_us_per_packet / 1e6) for k in ring_processors}
        self._app = self.processors[host.app_processor]
        self._pending: list[str] = []
        self._routines = 0
        if host.background_packets_per_s > 0:
            env.process(self._background_packets(np.random.default_rng(streams["background_packets"]),
                                                 np.random.default_rng(streams["packet_queues"])))
        if host.background_dpcs.per_s > 0:
            for processor, arrivals, costs in zip(
                self.processors, streams["background_dpcs"].spawn(host.processors),
                streams["background_dpc_costs"].spawn(host.processors), strict=True,
            ):
                env.process(self._background_dpcs(processor, np.random.default_rng(arrivals),
                                                  np.random.default_rng(costs)))
        for storm in storms:
            env.process(self._storm(storm))
        env.process(self._routine())

    # ------------------------------------------------------------ the NIC
    def ring_of_flow(self, rss_processor: int | None) -> ReceiveRing:
        """The ring a flow's packets land in (`rss_processor`: its processor when RSS is on)."""
        if not self.host.rss:
            return self.rings[self.host.interrupt_processor]
        if rss_processor is None:
            rss_processor = (self.host.interrupt_processor + 1) % self.host.processors
        return self.rings[rss_processor]

    @property
    def packets_dropped(self) -> int:
        return sum(ring.dropped for ring in self.rings.values())

    @property
    def ring_occupancy(self) -> int:
        return sum(ring.occupancy for ring in self.rings.values())

    # ------------------------------------------------------------ the application
    def log(self, text: str) -> None:
        """The application writes `text` now, or, if its processor is taken by DPCs, when it is free."""
        if not self._pending and not self._app.busy:
            self.log_book.write(float(self.env.now), self.host.name, text)
            return
        self._pending.append(text)
        if len(self._pending) == 1:
            self.env.process(self._write_when_free())

    def _write_when_free(self) -> Generator[simpy.Event, Any, None]:
        idle = self._app.when_idle()
        while idle is not None:
            yield idle
            idle = self._app.when_idle()  # a DPC queued at the very moment the queue ran empty
        pending, self._pending = self._pending, []
        for text in pending:
            self.log_book.write(float(self.env.now), self.host.name, text)

    def _routine(self) -> Generator[simpy.Event, Any, None]:
        interval_s = self.host.log_interval_s
        while True:
            yield self.env.timeout(interval_s)
            self._routines += 1
            self.log(self._routine_line(self._routines))

    # ------------------------------------------------------------ other drivers and traffic
    def _background_packets(self, rng: np.random.Generator, queue_rng: np.random.Generator
                            ) -> Generator[simpy.Event, Any, None]:
        gaps = exponentials(rng, 1.0 / self.host.background_packets_per_s)
        rings = list(self.rings.values())
        pick = choices(queue_rng, len(rings))
        while True:
            yield self.env.timeout(gaps())
            rings[pick() if len(rings) > 1 else 0].arrive(None)

    def _background_dpcs(self, processor: Processor, rng: np.random.Generator, cost_rng: np.random.Generator
                         ) -> Generator[simpy.Event, Any, None]:
        gaps = exponentials(rng, 1.0 / self.host.background_dpcs.per_s)
        costs = exponentials(cost_rng, self.host.background_dpcs.cost_us / 1e6)
        while True:
            yield self.env.timeout(gaps())
            processor.queue_dpc(costs())

    def _storm(self, storm: DpcStorm) -> Generator[simpy.Event, Any, None]:
        processor = self.processors[self.host.interrupt_processor if storm.processor is None else storm.processor]
        spacing_s = self.host.tick_ms / 1000.0 / storm.dpc_rate
        cost_s = storm.dpc_cost_us / 1e6
        yield self.env.timeout(storm.start_s)
        k = 0
        while True:
            processor.queue_dpc(cost_s)
            k += 1
            next_s = storm.start_s + k * spacing_s
            if next_s >= storm.end_s:
                return
            yield self.env.timeout(next_s - self.env.now)
