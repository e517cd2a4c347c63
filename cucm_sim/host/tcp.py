"""TCP's two rules the heartbeat incident turns on, pure: in-order delivery, and the doubling timeout.

- The receiver hands segments up in sequence order: a segment that arrives after a missing one waits
  until the missing one arrives (`InOrder`); a segment received twice is handed up once.
- The sender resends a segment not acknowledged within the retransmission timeout (RTO); every further
  loss of the same segment doubles the timeout, up to a ceiling (`backed_off_s`).  The first resend of a
  segment lost once comes one RTO after it was sent.
"""

from __future__ import annotations

from typing import Generic, TypeVar

Payload = TypeVar("Payload")


class InOrder(Generic[Payload]):
    """The receiving end's reassembly: segments numbered 0, 1, 2 ... handed up in order."""

    def __init__(self) -> None:
        self.expected = 0
        self._held: dict[int, Payload] = {}

    def receive(self, seq: int, payload: Payload) -> list[Payload]:
        """Segment `seq` arrived: what can now be handed up, in order (empty while a gap is open)."""
        if seq < self.expected or seq in self._held:
            return []
        self._held[seq] = payload
        ready = []
        while self.expected in self._held:
            ready.append(self._held.pop(self.expected))
            self.expected += 1
        return ready

    @property
    def held(self) -> int:
        """Segments received but waiting behind a missing one."""
        return len(self._held)


def backed_off_s(rto_s: float, losses: int, rto_max_s: float) -> float:
    """The timeout after `losses` losses of one segment: `rto_s` doubled each time, at most `rto_max_s`."""
    return min(rto_s * 2.0**losses, rto_max_s)
