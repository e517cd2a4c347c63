"""What a batched node carries from one block to the next, and the read-only snapshot its block steps get.

`NodeState` is the node's memory between blocks: the router thread's queues and service draws, the
calls in progress, the tagged signal in service, the SCCP history, the events still to come and the
running totals.  Only the commit step (`commit`) and a restart (`NodeState.crash`) change it.

`NodeSnapshot` is what the other steps -- decide, serve, settle, tally -- read of the node at a block's
start: the state above, the node's `NodeConstants`, the throttling state and the capacity.  It is
frozen and the steps never write through it, so a block can be computed, recomputed and thrown away
(an undone span) without the node noticing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from cucm_sim.engine.batched.events import TimedEvents
from cucm_sim.engine.batched.tags import Completion
from cucm_sim.engine.devices import DeviceTable
from cucm_sim.measures.stats import LogHistogram
from cucm_sim.rules.priorities import PRIORITIES
from cucm_sim.sdl.block import RouterState, ServiceDraws, crash

RingBlock = tuple[float, np.ndarray, np.ndarray]
"""One committed block's device events, for the SCCP window: (block end s, times s, devices), in time order."""


@dataclass(frozen=True)
class NodeConstants:
    """What a node's rules and phones fix for the whole run."""

    setup_signals: int
    """Set-up signals a call queues when its off-hook signal is handled (the off-hook signal apart)."""
    teardown_signals: int
    """Signals a call queues when it ends, a holding time after its dial tone."""
    rejection_signals: int
    """Signals of a call attempt rejected with reorder tone (Code Yellow)."""
    registration_rest: int
    """Low signals of a registration after its request; the last one ends the registration."""
    reregister_delay_s: float
    """A phone the SCCP limiter closed starts registering again this long after (s)."""
    keepalive_queue: int
    chatty_queues: tuple[int, ...]
    """Each chatty group's queue."""
    sccp_limit: int
    """Max Events Allowed per device in the SCCP window (0: no limit)."""
    calls_follow_phones: bool = False
    """A cluster's node: a call attempt's phone is drawn from the whole cluster and the call is this node's only
    if that phone is registered here (`devices.DeviceTable`)."""
    announces_registrations: bool = False
    """Report each completed registration (DeviceRegistered), as a cluster's nodes do."""


@dataclass(frozen=True)
class NodeSnapshot:
    """The node at a block's start, as the block's steps read it (see the module doc)."""

    constants: NodeConstants
    router: RouterState
    draws: ServiceDraws
    """The router's service times (peeked at, consumed only by the commit)."""
    follow_draws: ServiceDraws
    """Service times of the follow-ons `sdl.block.serve_fifo_block` queues itself."""
    capacity_factor: float
    """The node's capacity over the block (a block never spans a change of it)."""
    in_yellow: bool
    """Code Yellow holds over the block: call attempts get reorder tone."""
    device_states: np.ndarray
    """Each phone's registration state (`vocabulary`), int8."""
    registered: int
    calls_in_progress: Mapping[int, tuple[int, float]]
    """Admitted calls still waiting for dial tone: call id -> (device, -1 for none; holding time s)."""
    next_call_id: int
    carried: Completion | None
    """The tagged signal in service at the block's start, when it is one."""
    uncounted_end_s: float | None
    """The end (s) of the service in progress at the block's start, not counted yet as processed."""
    uncounted_queue: int
    """The queue of that signal."""
    sccp_ring: Sequence[RingBlock]
    last_close_s: Mapping[int, float]
    """When the SCCP limiter last closed each device (s): its events before that no longer count."""
    devices_closed: int
    """SCCP closures so far (the skinny_devices_throttled counter)."""
    chained: bool
    """The block before needed the slow path (`settle`): a chain of follow-ons often lasts."""


@dataclass
class Totals:
    """A node's running counts over the run (`interface.NodeCounters` reports them)."""

    calls_attempted: int = 0
    calls_accepted: int = 0
    calls_rejected_throttled: int = 0
    calls_failed_node_down: int = 0
    signals_processed: int = 0
    signals_lost_restart: int = 0
    signals_dropped_node_down: int = 0
    skinny_devices_throttled: int = 0
    wait_ms_by_priority: list[LogHistogram] = field(default_factory=lambda: [LogHistogram() for _ in PRIORITIES])
    dial_tone_delay_ms: LogHistogram = field(default_factory=LogHistogram)


@dataclass
class NodeState:
    """The node's memory between blocks (see the module doc)."""

    router: RouterState
    draws: ServiceDraws
    follow_draws: ServiceDraws
    phones: DeviceTable
    """The world's device table: the node writes a phone's state only as its rules say."""
    totals: Totals = field(default_factory=Totals)
    timed: TimedEvents = field(default_factory=TimedEvents)
    calls_in_progress: dict[int, tuple[int, float]] = field(default_factory=dict)
    next_call_id: int = 0
    carried: Completion | None = None
    uncounted_end_s: float | None = None
    uncounted_queue: int = 0
    sccp_ring: list[RingBlock] = field(default_factory=list)
    """The device events of the blocks that end within the SCCP window (and a second) of the last one."""
    last_close_s: dict[int, float] = field(default_factory=dict)

    def snapshot(
        self, constants: NodeConstants, capacity_factor: float, in_yellow: bool, chained: bool
    ) -> NodeSnapshot:
        """The node as the next block's steps see it."""
        return NodeSnapshot(
            constants, self.router, self.draws, self.follow_draws, capacity_factor, in_yellow, self.phones.array,
            self.phones.registered, self.calls_in_progress, self.next_call_id, self.carried, self.uncounted_end_s,
            self.uncounted_queue, self.sccp_ring, self.last_close_s, self.totals.skinny_devices_throttled, chained,
        )

    def crash(self, now_s: float) -> int:
        """Code Red at `now_s` (s): every waiting signal and the one in service are lost, calls and the SCCP
        history forgotten, no event is still to come.  Returns the signals lost."""
        lost = crash(self.router, now_s)
        self.totals.signals_lost_restart += lost
        self.carried = None
        self.uncounted_end_s = None
        self.calls_in_progress.clear()
        self.timed.clear()
        self.sccp_ring.clear()
        self.last_close_s.clear()
        return lost
