"""The serve step's side of the batched engine: what `sdl.block`'s servers are given, and what is read back.

`sdl.block` computes every service of a block from each queue's arrivals (`queue_arrivals`: the
streams' signals that were sent, merged with those the decide step queued, with their tags).  Some of
its servers queue follow-on signals themselves (`follow_ons`): none (`serve_block`), a call's
(`serve_fifo_block`, when only the normal queue has work: `normal_only`), a registration's
(`tagged_ends_in_slots`) or all (`tagged_ends_one_by_one`); the FOLLOWS sets name those kinds.  What is
read back for the decide step are the tagged signals handled in the block (`completions`).
"""

from __future__ import annotations

import numpy as np

from cucm_sim.engine.batched.arrivals import PrimaryArrivals
from cucm_sim.engine.batched.decide import Decisions
from cucm_sim.engine.batched.events import REGISTERS
from cucm_sim.engine.batched.state import NodeConstants, NodeSnapshot
from cucm_sim.engine.batched.tags import OFFHOOK, REG_INITIAL, REG_LOW, Completion, kind_of, pack, unpack
from cucm_sim.rules.priorities import HIGH, LOW, LOWEST, NORMAL, QUEUES
from cucm_sim.sdl.block import NO_TAG, Arrivals, BlockPlan, FollowOns

NO_FOLLOWS: frozenset[int] = frozenset()
FIFO_FOLLOWS = frozenset({OFFHOOK})
REGISTRATION_FOLLOWS = frozenset({REG_INITIAL})
ALL_FOLLOWS = frozenset({OFFHOOK, REG_INITIAL})


def normal_only(node: NodeSnapshot, primary: PrimaryArrivals) -> bool:
    """Whether only the normal queue can have work in the block (then `serve_fifo_block` serves it)."""
    if any(len(node.router.queues[q]) for q in (HIGH, LOW, LOWEST)):
        return False
    if any(len(primary.plain_s[q]) for q in (HIGH, LOW, LOWEST)):
        return False
    constants = node.constants
    if len(primary.keepalive_s) and constants.keepalive_queue != NORMAL:
        return False
    if any(len(times_s) and queue != NORMAL
           for (times_s, _), queue in zip(primary.chatty, constants.chatty_queues, strict=True)):
        return False
    carried_kind = kind_of(node.carried[1]) if node.carried is not None else OFFHOOK
    return carried_kind == OFFHOOK and not any(rank == REGISTERS for _, rank, _, _ in primary.due)


def queue_arrivals(constants: NodeConstants, primary: PrimaryArrivals, decisions: Decisions) -> Arrivals:
    """Each queue's arrivals in the block, in time order: the streams' (those sent) and the decided ones.

    Every stream's part is sorted already, so a merge sort joins them in about linear time (the decided
    signals are sorted too when they come alone); the decided signals' tags are then put where their times
    landed.
    """
    times: list[np.ndarray] = []
    tags: list[np.ndarray] = []
    for queue in range(QUEUES):
        parts = [primary.plain_s[queue]]
        if queue == constants.keepalive_queue and len(primary.keepalive_s):
            assert decisions.keepalive_keep is not None
            parts.append(primary.keepalive_s[decisions.keepalive_keep])
        for (chatty_s, _devices), keep, chatty_queue in zip(
            primary.chatty, decisions.chatty_keep, constants.chatty_queues, strict=True
        ):
            if chatty_queue == queue:
                parts.append(chatty_s[keep])
        sparse_s = np.array(decisions.signal_s[queue])
        parts.append(sparse_s)
        parts = [part for part in parts if len(part)]
        if len(parts) > 1:
            queue_s = np.sort(np.concatenate(parts), kind="stable")
        elif parts:  # the decided signals are not in time order (a call's set-up signals follow its dial tone)
            queue_s = parts[0] if parts[0] is not sparse_s else np.sort(sparse_s, kind="stable")
        else:
            queue_s = np.empty(0)
        queue_tags = np.full(len(queue_s), NO_TAG, dtype=np.int64)
        sparse_tags = np.array(decisions.signal_tag[queue], dtype=np.int64)
        tagged = np.flatnonzero(sparse_tags != NO_TAG)
        if len(tagged):
            # Among signals of equal time (a registration's low signals, queued at once), the tagged ones
            # take the last places, in the order decided: the registration's last signal is its tagged one.
            order = np.argsort(sparse_s[tagged], kind="stable")
            when_s = sparse_s[tagged][order]
            after = np.searchsorted(queue_s, when_s, side="right")
            later = np.searchsorted(when_s, when_s, side="right") - np.arange(len(when_s))
            queue_tags[after - later] = sparse_tags[tagged][order]
        times.append(queue_s)
        tags.append(queue_tags)
    return Arrivals(times, tags)


def follow_ons(node: NodeSnapshot, d: Decisions, kinds: frozenset[int]) -> FollowOns:
    """What a handled tagged signal of one of `kinds` queues (as `decide` does), for the servers that
    queue it themselves: a call's set-up signals at once and its teardown a holding time later; a
    registration's next steps."""
    constants = node.constants
    rest = constants.registration_rest

    def follow_ons_of(tag: int) -> list[tuple[int, int, int, float]]:
        kind, ident = unpack(tag)
        if kind not in kinds:
            return []
        if kind == OFFHOOK:
            _device, holding_s = d.new_calls.get(ident) or node.calls_in_progress[ident]
            return [(NORMAL, constants.setup_signals, NO_TAG, 0.0), (NORMAL, constants.teardown_signals, NO_TAG,
                                                                     holding_s)]
        if kind == REG_INITIAL and rest:
            return [(LOW, rest - 1, NO_TAG, 0.0), (LOW, 1, pack(REG_LOW, ident), 0.0)]
        return []

    return follow_ons_of


def completions(node: NodeSnapshot, plan: BlockPlan, t1_s: float) -> list[Completion]:
    """Tagged signals whose service ends in the block (before `t1_s` s), in end order: the one carried
    into it, and those of `plan`."""
    found: list[Completion] = []
    if node.carried is not None and node.carried[0] < t1_s:
        found.append(node.carried)
    for served in plan.served:
        tagged = np.flatnonzero(served.tags != NO_TAG)
        if len(tagged):
            ends, tags, arrivals = served.end_s[tagged], served.tags[tagged], served.arrival_s[tagged]
            inside = ends < t1_s
            found.extend(zip(ends[inside].tolist(), tags[inside].tolist(), arrivals[inside].tolist(), strict=True))
    found.sort()
    return found
