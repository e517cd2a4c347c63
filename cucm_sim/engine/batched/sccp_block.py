"""SCCP Max Events Allowed over a block (batched engine): which phones the limiter closes, and when.

The rule is `rules.sccp`'s: a phone that sends more than the limit of events in the half-open window
``(t - SCCP_WINDOW_S, t]`` is closed at its event t, and only its events after that count again.  Here it
is applied to a whole block at once: its device events (`block_events`) with those of the blocks before
it still inside the window (the ring, `state.RingBlock`), for the few phones that can exceed the limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from cucm_sim.engine.batched.arrivals import PrimaryArrivals
from cucm_sim.engine.batched.decide import Decisions
from cucm_sim.engine.batched.events import Closure
from cucm_sim.engine.batched.state import NodeSnapshot, RingBlock
from cucm_sim.rules.sccp import SCCP_WINDOW_S


def block_events(primary: PrimaryArrivals, d: Decisions) -> tuple[np.ndarray, np.ndarray]:
    """Every device event of the block (times s, devices), in time order: the decided ones, then the
    keepalives and chatty events that registered phones sent (equal times keep that order)."""
    assert d.keepalive_keep is not None
    times = [np.array(d.event_s), primary.keepalive_s[d.keepalive_keep]]
    ids = [np.array(d.event_device, dtype=np.int64), primary.keepalive_device[d.keepalive_keep]]
    for (chatty_s, chatty_ids), keep in zip(primary.chatty, d.chatty_keep, strict=True):
        times.append(chatty_s[keep])
        ids.append(chatty_ids[keep])
    all_s, all_ids = np.concatenate(times), np.concatenate(ids).astype(np.int64)
    order = np.argsort(all_s, kind="stable")
    return all_s[order], all_ids[order]


def sccp_closures(node: NodeSnapshot, t0_s: float, primary: PrimaryArrivals, d: Decisions) -> list[Closure]:
    """The phones the limiter closes in the block starting at `t0_s` (s), given its decisions `d`."""
    limit = node.constants.sccp_limit
    if limit == 0:
        return []
    recent = sum(len(ids) for _, _, ids in node.sccp_ring)
    assert d.keepalive_keep is not None
    events = len(d.event_s) + int(np.count_nonzero(d.keepalive_keep)) + sum(
        int(np.count_nonzero(keep)) for keep in d.chatty_keep
    )
    if recent + events <= limit:
        return []  # no device can have more than `limit` events in any window
    times_s, ids = block_events(primary, d)
    return closures_in(limit, node.sccp_ring, node.last_close_s, t0_s, times_s, ids)


def closures_in(
    limit: int, ring: Sequence[RingBlock], last_close_s: Mapping[int, float], t0_s: float, times_s: np.ndarray,
    ids: np.ndarray,
) -> list[Closure]:
    """Closures at the events (sorted `times_s` s, devices `ids`) of a block starting at `t0_s`: (time,
    device, events in window), in time order.  `ring`: the blocks before it within the window;
    `last_close_s`: each device's last closure before the block."""
    ring_s = np.concatenate([t for _, t, _ in ring] + [times_s])
    ring_ids = np.concatenate([i for _, _, i in ring] + [ids])
    counts = np.bincount(ring_ids)
    closures: list[Closure] = []
    for device in np.flatnonzero(counts > limit).tolist():
        mine_s = ring_s[ring_ids == device]
        since_s = last_close_s.get(device, -math.inf)
        while True:
            events_s = mine_s[mine_s > since_s]
            in_window = np.arange(len(events_s)) - np.searchsorted(events_s, events_s - SCCP_WINDOW_S,
                                                                   side="right") + 1
            over = np.flatnonzero((in_window > limit) & (events_s >= t0_s))
            if not len(over):
                break
            close_s = float(events_s[over[0]])
            closures.append((close_s, device, int(in_window[over[0]])))
            since_s = close_s
    closures.sort()
    return closures


def remember(ring: list[RingBlock], t1_s: float, times_s: np.ndarray, ids: np.ndarray) -> None:
    """Add a committed block's device events (it ends at `t1_s` s) to `ring`, and drop the blocks that
    ended a second or more before the window of any later event opens."""
    ring.append((t1_s, times_s, ids))
    while ring and ring[0][0] <= t1_s - SCCP_WINDOW_S - 1.0:
        ring.pop(0)
