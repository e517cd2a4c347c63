"""A heartbeat-supervised session between two hosts (GED-125 between the VRU PIM and the CVP Call Server).

The rules:

- While the session is open the sender sends a heartbeat every `heartbeat_interval_s` (the first one an
  interval after it opened) and other messages as a Poisson stream.  Each reaches the receiver host's
  NIC one `latency_ms` later, on the ring of the flow (`host.HostModel.ring_of_flow`), where it may be
  dropped; what the receive DPC hands up reaches the session.
- TCP: a segment not acknowledged within the retransmission timeout is sent again, the timeout doubling
  for every further loss of it (`tcp`); each segment has its own timer, as with selective
  acknowledgements (a real stack keeps one timer per connection, so resends are somewhat overstated).
  The timeout is `rto_initial_s` until the connection's first acknowledgement, then `rto_min_s` (a LAN's
  round trip is far below it).  An acknowledgement reaches
  the sender one latency after the receive DPC handed the segment up, and is never lost (the return path
  is not modelled as packets).  Segments are handed up in order.  After `max_retransmissions` resends of
  one segment the sender gives the connection up.  UDP: a dropped message is gone.
- The receiver checks once per interval, `check_phase_s` after the sender's heartbeat times: a check
  that finds no heartbeat handed up since the last one is a missed heartbeat; `missed_heartbeats_to_close`
  in a row close the session (the CVP logs [id:2006], [id:1] and [id:2007], through its application, so
  a starved processor delays the lines).  The sender sees the reset one latency later (the PIM's 10054
  error and "TCP connection to VRU has been broken."), and connects again `reconnect_delay_s` after
  that.  From the close to the new connection the peripheral is in partial service.  The new connection
  starts afresh: segments of the old one still on the way are discarded.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from cucm_sim.host import messages
from cucm_sim.host.draws import exponentials
from cucm_sim.host.host import HostModel
from cucm_sim.host.tcp import InOrder, backed_off_s
from cucm_sim.measures.stats import LogHistogram
from cucm_sim.scenario.hosts import Link

LINK_STREAMS = ("messages",)
"""A link's random streams, in the order that fixes its seeds."""

HEARTBEAT, MESSAGE = "heartbeat", "message"


@dataclass(frozen=True)
class Segment:
    """What the sender sent: a heartbeat or a message, first sent at `sent_s`."""

    kind: str
    sent_s: float


@dataclass
class LinkCounts:
    """A link's running totals."""

    heartbeats_sent: int = 0
    heartbeats_received: int = 0
    heartbeats_missed: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    segments_dropped: int = 0
    retransmissions: int = 0
    sessions_closed: int = 0
    sender_gave_up: int = 0
    partial_service_s: float = 0.0


class LinkModel:
    """One session between `sender` and `receiver` on the world's clock (see the module doc)."""

    def __init__(self, env: simpy.Environment, link: Link, sender: HostModel, receiver: HostModel,
                 seeds: np.random.SeedSequence) -> None:
        self.env = env
        self.link = link
        self.sender = sender
        self.receiver = receiver
        self._ring = receiver.ring_of_flow(link.rss_processor)
        streams = dict(zip(LINK_STREAMS, seeds.spawn(len(LINK_STREAMS)), strict=True))
        self._gaps = exponentials(np.random.default_rng(streams["messages"]), 1.0 / link.messages_per_s) if (
            link.messages_per_s > 0) else None
        self.counts = LinkCounts()
        self.heartbeat_delay_ms = LogHistogram()
        self._latency_s = link.latency_ms / 1000.0
        self._phase_s = link.heartbeat_interval_s / 2 if link.check_phase_s is None else link.check_phase_s
        self._connection = 0
        self._closed_at_s: float | None = None
        self._open()

    @property
    def is_open(self) -> bool:
        return self._closed_at_s is None

    def partial_service_s(self, now_s: float) -> float:
        """Time in partial service so far (s), the current stretch included."""
        current = now_s - self._closed_at_s if self._closed_at_s is not None else 0.0
        return self.counts.partial_service_s + current

    # ------------------------------------------------------------ the session's life
    def _open(self) -> None:
        if self._closed_at_s is not None:
            self.counts.partial_service_s += self.env.now - self._closed_at_s
            self._closed_at_s = None
            self.receiver.log(messages.session_open(self.link.name, self.link.transport))
        self._connection += 1
        connection = self._connection
        self._seq = itertools.count()
        self._in_order: InOrder[Segment] = InOrder()
        self._acked: set[int] = set()
        self._rto_s = self.link.rto_initial_s
        self._heard = False
        self.env.process(self._heartbeats(connection))
        self.env.process(self._supervise(connection))
        if self._gaps is not None:
            self.env.process(self._messages(connection))

    def _close(self, by_receiver: bool) -> None:
        self._connection += 1  # the old connection's processes, timers and packets stop counting
        self._closed_at_s = float(self.env.now)
        self.counts.sessions_closed += 1
        if by_receiver:
            self.receiver.log(messages.cvp_partial_service())
            self.receiver.log(messages.cvp_terminate_connection(self.sender.host.name))
            self.receiver.log(messages.cvp_missed_heartbeats(self.link.missed_heartbeats_to_close))
            self._after(self._latency_s, self._sender_sees_reset)
        else:
            self.counts.sender_gave_up += 1
            self.sender.log(messages.sender_gave_up(self.link.name, self.link.max_retransmissions))
            self.receiver.log(messages.cvp_partial_service())
            self._after(self.link.reconnect_delay_s, self._open)

    def _sender_sees_reset(self) -> None:
        self.sender.log(messages.pim_receive_error())
        self.sender.log(messages.pim_connection_broken())
        self._after(self.link.reconnect_delay_s, self._open)

    def _after(self, delay_s: float, action: Callable[[], None]) -> None:
        event = self.env.timeout(delay_s)
        event.callbacks.append(lambda _event: action())

    # ------------------------------------------------------------ the sender
    def _heartbeats(self, connection: int) -> Generator[simpy.Event, Any, None]:
        while True:
            yield self.env.timeout(self.link.heartbeat_interval_s)
            if connection != self._connection:
                return
            self.counts.heartbeats_sent += 1
            self._send(connection, HEARTBEAT)

    def _messages(self, connection: int) -> Generator[simpy.Event, Any, None]:
        assert self._gaps is not None
        while True:
            yield self.env.timeout(self._gaps())
            if connection != self._connection:
                return
            self.counts.messages_sent += 1
            self._send(connection, MESSAGE)

    def _send(self, connection: int, kind: str) -> None:
        seq = next(self._seq)
        self._transmit(connection, seq, Segment(kind, float(self.env.now)), 0)

    def _transmit(self, connection: int, seq: int, segment: Segment, losses: int) -> None:
        """Send `segment` now (after `losses` unanswered sends of it): it reaches the receiver's NIC a latency on."""
        def arrives(_event: simpy.Event) -> None:
            if connection != self._connection:
                return
            if not self._ring.arrive(lambda t_s: self._handed_up(connection, seq, segment, t_s)):
                self.counts.segments_dropped += 1

        event = self.env.timeout(self._latency_s)
        event.callbacks.append(arrives)
        if self.link.transport == "tcp":
            timeout_s = backed_off_s(self._rto_s, losses, self.link.rto_max_s)
            timer = self.env.timeout(timeout_s)
            timer.callbacks.append(lambda _event: self._timer(connection, seq, segment, losses))

    def _timer(self, connection: int, seq: int, segment: Segment, losses: int) -> None:
        if connection != self._connection:
            return
        if seq in self._acked:
            self._acked.discard(seq)  # its last timer: the set holds only segments still timed
            return
        if losses + 1 > self.link.max_retransmissions:
            self._close(by_receiver=False)
            return
        self.counts.retransmissions += 1
        self._transmit(connection, seq, segment, losses + 1)

    # ------------------------------------------------------------ the receiver
    def _handed_up(self, connection: int, seq: int, segment: Segment, t_s: float) -> None:
        """The receive DPC handed the segment up at `t_s` (now)."""
        if connection != self._connection:
            return
        if self.link.transport == "udp":
            self._deliver(segment, t_s)
            return
        self._after(self._latency_s, lambda: self._acknowledged(connection, seq))
        for ready in self._in_order.receive(seq, segment):
            self._deliver(ready, t_s)

    def _acknowledged(self, connection: int, seq: int) -> None:
        if connection == self._connection:
            self._acked.add(seq)
            self._rto_s = self.link.rto_min_s

    def _deliver(self, segment: Segment, t_s: float) -> None:
        if segment.kind == HEARTBEAT:
            self.counts.heartbeats_received += 1
            self.heartbeat_delay_ms.add((t_s - segment.sent_s) * 1000.0)
            self._heard = True
        else:
            self.counts.messages_received += 1

    def _supervise(self, connection: int) -> Generator[simpy.Event, Any, None]:
        interval_s = self.link.heartbeat_interval_s
        yield self.env.timeout(interval_s + self._phase_s)
        missed = 0
        while connection == self._connection:
            if self._heard:
                missed = 0
            else:
                missed += 1
                self.counts.heartbeats_missed += 1
                if missed >= self.link.missed_heartbeats_to_close:
                    self._close(by_receiver=True)
                    return
            self._heard = False
            yield self.env.timeout(interval_s)
