"""What a user writes about Windows hosts and the heartbeat links between them (the VRU PIM incident).

The seeds (000-002, DOMAIN.md section 7) give the incident, not its numbers: every value they do not
give is an input here, and its description says what its default assumes.  `Host`, `Link` and the
`dpc_storm` disturbance (`DpcStorm`) are sections of a scenario (`schema.Scenario`), which checks the
names they refer to.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cucm_sim.rules.throttling import WholeNumber
from cucm_sim.scenario.base import PartName, Section, Window

MAX_PROCESSORS = 64

class BackgroundDpcs(Section):
    """Other drivers' ordinary DPCs on each processor of a host (Poisson arrivals, exponential costs)."""

    per_s: float = Field(
        20.0, ge=0, le=100_000,
        description="DPCs queued per second on each processor (DPCs/s). Assumption: under one per 15.6-ms tick, "
        "so Perfmon's DPC Rate reads 0 or 1 outside a storm, as in the seed's Perfmon.",
    )
    cost_us: float = Field(20.0, gt=0, le=100_000, description="Mean cost of one (us), exponential.")


class Host(Section):
    """A Windows server: processors with their DPC queues, a NIC with a receive ring, an application."""

    name: PartName
    processors: WholeNumber = Field(2, ge=1, le=MAX_PROCESSORS, description="Logical processors.")
    rss: bool = Field(
        False,
        description="Receive-Side Scaling: off, every receive DPC runs on the interrupt processor; on, the NIC "
        "has one receive ring per processor and each flow stays on one of them (a link's `rss_processor`).",
    )
    interrupt_processor: WholeNumber = Field(
        0, ge=0, lt=MAX_PROCESSORS, description="The processor that takes the NIC's interrupt (and, RSS off, "
        "runs every receive DPC).",
    )
    receive_descriptors: WholeNumber = Field(
        256, ge=1, le=65_536,
        description="Receive descriptors per ring: packets the NIC holds until a receive DPC takes them; a "
        "packet that finds them all taken is dropped (Packets Received Discarded). Assumption: a common NIC "
        "default (DOMAIN.md section 7).",
    )
    receive_dpc_cost_us: float = Field(10.0, ge=0, le=100_000, description="Fixed cost of one receive DPC (us).")
    receive_cost_us_per_packet: float = Field(
        5.0, ge=0, le=100_000, description="Cost of each packet a receive DPC takes from the ring (us)."
    )
    background_packets_per_s: float = Field(
        100.0, ge=0, le=1_000_000,
        description="Other traffic reaching the NIC over many flows, Poisson (packets/s); RSS on, spread evenly "
        "over the processors. Assumption: with the other drivers' DPCs, about two DPCs per tick outside a "
        "storm (the seed's Perfmon shows DPC Rate near 0 before it).",
    )
    background_dpcs: BackgroundDpcs = Field(default_factory=BackgroundDpcs, description="Other drivers' DPCs.")
    app_processor: WholeNumber = Field(
        0, ge=0, lt=MAX_PROCESSORS,
        description="The processor the application's threads run on (they run only when its DPC queue is "
        "empty). Assumption: the interrupt processor, as the seed's log gap shows the application starved "
        "with the receive processing.",
    )
    log_interval_s: float = Field(
        0.5, ge=0.01, le=3600, description="The application writes a routine log line this often (s)."
    )
    tick_ms: float = Field(
        15.625, gt=0, le=1000,
        description="The Windows clock tick (ms): Perfmon's DPC Rate counts the DPCs queued in the last tick.",
    )


class Link(Section):
    """A heartbeat-supervised session from a sender host (the VRU PIM) to a receiver host (the CVP)."""

    name: PartName
    sender: PartName = Field(description="The host that sends the heartbeats (the PIM's peripheral gateway).")
    receiver: PartName = Field(description="The host that supervises them (the CVP Call Server).")
    transport: Literal["tcp", "udp"] = Field(
        "tcp",
        description="tcp: a dropped segment is resent after the retransmission timeout and delivery is in "
        "order (GED-125, the seed's own logs); udp: a dropped heartbeat is gone (the Microsoft article).",
    )
    heartbeat_interval_s: float = Field(
        5.0, ge=0.1, le=3600,
        description="The sender's heartbeat period (s). Assumption: 2 missed in the seed's 11-s gap suggests 5 s.",
    )
    missed_heartbeats_to_close: WholeNumber = Field(
        2, ge=1, le=100,
        description="Consecutive checks without a heartbeat after which the receiver closes the session.",
    )
    check_phase_s: float | None = Field(
        None, ge=0, le=3600,
        description="The receiver checks once per heartbeat interval, this long after the sender's heartbeat "
        "times (s); absent: half an interval, so a heartbeat's normal delay of milliseconds is never a miss.",
    )
    messages_per_s: float = Field(
        10.0, ge=0, le=100_000,
        description="Other messages on the session (GED-125 call traffic), Poisson (messages/s); over TCP a "
        "heartbeat waits behind a lost one.",
    )
    latency_ms: float = Field(1.0, ge=0, le=10_000, description="One-way network delay (ms).")
    rss_processor: WholeNumber | None = Field(
        None, ge=0, lt=MAX_PROCESSORS,
        description="With RSS on at the receiver, the processor this flow hashes to; absent: the one after "
        "the interrupt processor. RSS does not choose it: set it to the interrupt processor to see RSS not help.",
    )
    rto_initial_s: float = Field(
        1.0, gt=0, le=600,
        description="TCP retransmission timeout before the connection has its first acknowledgement (s; RFC 6298).",
    )
    rto_min_s: float = Field(
        0.3, gt=0, le=600,
        description="TCP retransmission timeout once acknowledged, at its minimum on a LAN (s). Assumption: "
        "Windows' 300 ms.",
    )
    rto_max_s: float = Field(60.0, gt=0, le=3600, description="The doubling timeout's ceiling (s).")
    max_retransmissions: WholeNumber = Field(
        5, ge=1, le=100,
        description="TCP resends of one segment before the sender gives the connection up (Windows' "
        "TcpMaxDataRetransmissions default).",
    )
    reconnect_delay_s: float = Field(
        10.0, ge=0, le=3600,
        description="After the session closes, the sender connects again this much later (s); the peripheral "
        "is in partial service until then. Assumption.",
    )


class DpcStorm(Window):
    """Other drivers' DPCs flooding one processor of a host (the seed's Perfmon: DPC Rate from 0 to 10)."""

    kind: Literal["dpc_storm"]
    host: PartName = Field(description="The host it hits.")
    dpc_rate: float = Field(
        gt=0, le=100_000, description="DPCs queued per clock tick (Perfmon's DPC Rate), evenly spread over the tick."
    )
    dpc_cost_us: float = Field(
        3125.0, gt=0, le=1_000_000,
        description="Cost of each (us). Assumption: at 10 per 15.625-ms tick, 3.125 ms each asks twice what the "
        "processor can do, so its DPC queue grows and the receive DPC waits behind it (see the scenario).",
    )
    processor: WholeNumber | None = Field(
        None, ge=0, lt=MAX_PROCESSORS, description="The processor its DPCs are queued on; absent: the host's "
        "interrupt processor.",
    )

