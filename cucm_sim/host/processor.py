"""One logical processor of a Windows host: its DPC queue, served in order, and what Perfmon reads of it.

The rules (Windows' own, as Microsoft's Processor object and the seed describe them):

- A deferred procedure call (DPC) is queued on one processor and runs there at DISPATCH_LEVEL: the
  processor's DPCs run one at a time, first queued first run, and always before any thread.  So the
  DPC queue is a FIFO single server that threads never delay; threads get the processor only while the
  DPC queue is empty (`when_idle`).  Interrupt service routines are taken to cost nothing (a few
  microseconds beside DPCs of milliseconds).
- A DPC's cost is known when it starts: a receive DPC's grows with the packets it takes from the NIC's
  ring at that moment (`nic.ReceiveRing`), so a queued DPC is either a fixed cost or a ring to ask.
- Perfmon's "DPC Rate" is the number of DPCs queued in the last whole clock tick before the sample (the
  last observed value, not an average); "% DPC Time" the share of the sample interval spent running DPCs.

The processor is a SimPy process on the world's clock; every DPC's wait (queued to started) joins a
histogram, which is how the queueing-theory tests read it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Generator
from typing import Any, Protocol

import simpy

from cucm_sim.measures.stats import LogHistogram


class Ring(Protocol):
    """What a processor asks of a NIC receive ring whose DPC it runs."""

    def begin_dpc(self, now_s: float) -> float:
        """The receive DPC starts now: take the ring's packets; return the DPC's cost (s)."""
        ...

    def end_dpc(self, now_s: float) -> None:
        """The receive DPC ends now: hand its packets on."""
        ...


class Processor:
    """A processor's DPC queue on the world's clock (see the module doc)."""

    def __init__(self, env: simpy.Environment, index: int, tick_s: float) -> None:
        self.env = env
        self.index = index
        self.tick_s = tick_s
        self._queue: deque[tuple[float, float, Ring | None]] = deque()  # (queued s, cost s, ring or None)
        self._wake: simpy.Event | None = None
        self._idle: simpy.Event | None = None
        self._running_since_s: float | None = None
        self._recent_s: deque[float] = deque()  # queue times within the last two ticks
        self._busy_s = 0.0  # DPC time since the last sample
        self._sampled_at_s = 0.0
        self.dpcs_queued = 0
        self.waits_ms = LogHistogram()
        env.process(self._serve())

    # ------------------------------------------------------------ queueing
    def queue_dpc(self, cost_s: float) -> None:
        """Queue a DPC of `cost_s` (s) now."""
        self._queue_at_tail(cost_s, None)

    def queue_receive(self, ring: Ring) -> None:
        """Queue `ring`'s receive DPC now (its cost is known when it starts)."""
        self._queue_at_tail(0.0, ring)

    def _queue_at_tail(self, cost_s: float, ring: Ring | None) -> None:
        now_s = self.env.now
        self._queue.append((now_s, cost_s, ring))
        self.dpcs_queued += 1
        self._recent_s.append(now_s)
        if self._wake is not None:
            wake, self._wake = self._wake, None
            wake.succeed()

    @property
    def busy(self) -> bool:
        """Whether a DPC runs or waits: no thread can run."""
        return self._running_since_s is not None or bool(self._queue)

    def when_idle(self) -> simpy.Event | None:
        """None if threads can run now; else the event of the DPC queue's next running empty."""
        if not self.busy:
            return None
        if self._idle is None:
            self._idle = self.env.event()
        return self._idle

    def _serve(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        while True:
            if not self._queue:
                if self._idle is not None:
                    idle, self._idle = self._idle, None
                    idle.succeed()
                self._wake = env.event()
                yield self._wake
                continue
            queued_s, cost_s, ring = self._queue.popleft()
            now_s = env.now
            self.waits_ms.add((now_s - queued_s) * 1000.0)
            if ring is not None:
                cost_s = ring.begin_dpc(now_s)
            self._running_since_s = now_s
            yield env.timeout(cost_s)
            self._busy_s += env.now - max(now_s, self._sampled_at_s)
            self._running_since_s = None
            if ring is not None:
                ring.end_dpc(env.now)

    # ------------------------------------------------------------ Perfmon
    def sample(self) -> tuple[int, float]:
        """Perfmon's reading now: (DPC Rate, % DPC Time since the last sample)."""
        now_s = float(self.env.now)
        tick_end_s = math.floor(now_s / self.tick_s + 1e-9) * self.tick_s
        recent = self._recent_s
        while recent and recent[0] < tick_end_s - self.tick_s:
            recent.popleft()
        rate = sum(1 for t_s in recent if t_s < tick_end_s)
        busy_s = self._busy_s
        if self._running_since_s is not None:
            busy_s += now_s - max(self._running_since_s, self._sampled_at_s)
        interval_s = now_s - self._sampled_at_s
        self._busy_s = 0.0
        self._sampled_at_s = now_s
        return rate, (100.0 * min(busy_s / interval_s, 1.0) if interval_s > 0 else 0.0)
