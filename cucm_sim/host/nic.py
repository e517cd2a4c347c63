"""A NIC's receive ring and its receive DPC: where a busy processor turns into dropped packets.

The rules:

- The ring has N descriptors.  A packet takes one when it arrives and keeps it until the receive DPC
  that takes it ends; a packet that finds all N taken is dropped (Perfmon's Network Interface "Packets
  Received Discarded").
- A packet that finds no receive DPC queued or running raises an interrupt, whose routine queues the
  ring's receive DPC on the ring's processor (one DPC object per ring: it is queued once at a time).
- The receive DPC takes every packet in the ring when it starts and costs a fixed part plus a part per
  packet; when it ends, it hands them up (in arrival order) and frees their descriptors; if packets came
  in meanwhile, it is queued again at once, behind whatever else the processor has queued.

So a ring of N filled at r packets/s and not drained overflows N/r after its DPC was queued.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from cucm_sim.host.processor import Processor

Delivery = Callable[[float], None]
"""What a packet does once the receive DPC has handed it up at the given time (s); None: nothing."""


class ReceiveRing:
    """One receive ring (one RSS queue) served by the receive DPC on one processor."""

    def __init__(self, processor: Processor, descriptors: int, dpc_cost_s: float, cost_s_per_packet: float) -> None:
        self.processor = processor
        self.descriptors = descriptors
        self.dpc_cost_s = dpc_cost_s
        self.cost_s_per_packet = cost_s_per_packet
        self._waiting: deque[Delivery | None] = deque()
        self._taken: list[Delivery | None] = []
        self._queued = False
        self.received = 0
        self.dropped = 0

    @property
    def occupancy(self) -> int:
        """Descriptors holding a packet now."""
        return len(self._waiting) + len(self._taken)

    def arrive(self, delivery: Delivery | None) -> bool:
        """A packet reaches the NIC now; False if it is dropped (the ring is full)."""
        if len(self._waiting) + len(self._taken) >= self.descriptors:
            self.dropped += 1
            return False
        self._waiting.append(delivery)
        self.received += 1
        if not self._queued:
            self._queued = True
            self.processor.queue_receive(self)
        return True

    def begin_dpc(self, now_s: float) -> float:
        """The receive DPC starts: it takes the waiting packets; its cost (s)."""
        self._taken = list(self._waiting)
        self._waiting.clear()
        return self.dpc_cost_s + self.cost_s_per_packet * len(self._taken)

    def end_dpc(self, now_s: float) -> None:
        """The receive DPC ends: its packets go up, their descriptors are free; again if more came."""
        taken, self._taken = self._taken, []
        for delivery in taken:
            if delivery is not None:
                delivery(now_s)
        if self._waiting:
            self.processor.queue_receive(self)
        else:
            self._queued = False
