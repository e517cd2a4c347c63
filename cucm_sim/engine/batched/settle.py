"""The settle step of the batched engine: decide and serve a block again until they agree (its fixed point).

The decide step needs the tagged signals the block handles (a call's off-hook signal gives dial tone
and queues its set-up signals; a registration step queues the next), and the serve step needs what the
decide step queues.  `settle` alternates them from what is known -- at first only the signal carried in
service -- until the handled signals no longer change.  A pass is exact up to the first follow-on signal
it did not know of, and the next pass knows it, so the fixed point is reached and is what the per-signal
engine would have done.  Where follow-ons chain (a registration storm), the exact slow paths of
`sdl.block` (`_play_chain`) find the handled signals and the passes confirm them.  Also: the SCCP
closures must agree with the decisions they come from, and a block whose only work is the normal
queue's is served by `serve_fifo_block`, which queues a call's follow-ons itself.  Changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cucm_sim.engine.batched.arrivals import PrimaryArrivals
from cucm_sim.engine.batched.decide import Decisions, decide
from cucm_sim.engine.batched.events import Closure, TearsDown
from cucm_sim.engine.batched.sccp_block import sccp_closures
from cucm_sim.engine.batched.serve import (
    ALL_FOLLOWS,
    FIFO_FOLLOWS,
    NO_FOLLOWS,
    REGISTRATION_FOLLOWS,
    completions,
    follow_ons,
    normal_only,
    queue_arrivals,
)
from cucm_sim.engine.batched.state import NodeSnapshot
from cucm_sim.engine.batched.tags import OFFHOOK, Completion, unpack
from cucm_sim.rules.priorities import HIGH, LOW, LOWEST, NORMAL
from cucm_sim.sdl.block import (
    TIE_S,
    BlockPlan,
    serve_block,
    serve_fifo_block,
    tagged_ends_in_slots,
    tagged_ends_one_by_one,
)

MAX_PASSES = 100_000
"""A block needing more passes than this is a bug, not a load: each pass learns one follow-on at least."""

FAST_PASSES = 3
"""Vectorized passes before a block is played one signal at a time to find its handled signals."""

SLOW_ROUNDS = 4
"""Rounds of the slow path on its own answer, until the device states it assumes are those it finds."""

MAX_SLOW_USES = 3
"""Slow-path answers per block; after them, plain passes alone (which always settle, one link a pass)."""


@dataclass(frozen=True)
class Settled:
    """A block settled: its router plan and decisions, the passes it took, and whether it needed the slow path."""

    plan: BlockPlan
    decisions: Decisions
    passes: int
    chained: bool


def settle(node: NodeSnapshot, t0_s: float, t1_s: float, primary: PrimaryArrivals) -> Settled:
    """The block [t0_s, t1_s)'s plan and decisions, settled (see the module doc)."""
    handled: list[Completion] = []
    if node.carried is not None and node.carried[0] < t1_s:
        handled.append(node.carried)
    closures: list[Closure] = []
    fast_passes = 0 if node.chained else FAST_PASSES  # a chain often lasts: play it at once
    slow_uses = 0
    chained = False
    fifo = normal_only(node, primary)
    served: tuple[Decisions, BlockPlan] | None = None  # the last FIFO plan and what it was made from
    passes = 0
    for _ in range(MAX_PASSES):
        passes += 1
        decisions = decide(node, t0_s, t1_s, primary, handled, closures, FIFO_FOLLOWS if fifo else NO_FOLLOWS)
        decisions.closures = closures
        new_closures = sccp_closures(node, t0_s, primary, decisions)
        if new_closures != closures:
            closures = new_closures
            continue
        if fifo and any(decisions.signal_s[q] for q in (HIGH, LOW, LOWEST)):
            fifo, served = False, None  # a registration began: the general path
            continue
        if fifo:
            if served is not None and decisions.same_arrivals(served[0]):
                plan = served[1]  # same arrivals, same plan: its handled signals are `handled`
                break
            fifo_plan = serve_fifo_block(
                node.router, NORMAL, t0_s, t1_s, queue_arrivals(node.constants, primary, decisions), node.draws,
                node.follow_draws, node.capacity_factor, follow_ons(node, decisions, FIFO_FOLLOWS),
            )
            if fifo_plan is None:  # follow-ons that delay each other did not settle: the general path
                fifo, served = False, None
                continue
            plan = fifo_plan
            served = (decisions, plan)
        else:
            plan = serve_block(
                node.router, t0_s, t1_s, queue_arrivals(node.constants, primary, decisions), node.draws,
                node.capacity_factor,
            )
        found = completions(node, plan, t1_s)
        if same_completions(found, handled):
            break
        if fifo:  # usually the new handled signals only give dial tone: no need to decide again
            known = set(handled)
            if known.issubset(found):
                quick = with_dial_tones(node, decisions, [c for c in found if c not in known], t1_s)
                if quick is not None and sccp_closures(node, t0_s, primary, quick) == closures:
                    decisions = quick
                    break
        if fifo or fast_passes or slow_uses >= MAX_SLOW_USES:
            fast_passes -= 0 if fifo or not fast_passes else 1
            handled = found
            continue
        # A chain of follow-ons (a registration storm): the slow path, from what this pass found.
        handled = _play_chain(node, t0_s, t1_s, primary, found, closures)
        chained = True
        # The slow path's answer starts the fixed point near its end; plain passes settle it (the two
        # round differently, so its answer is not compared with a pass's, only passes with passes).
        slow_uses += 1
        fast_passes = FAST_PASSES
    else:
        raise RuntimeError(f"block [{t0_s}, {t1_s}) did not settle in {MAX_PASSES} passes")
    return Settled(plan, decisions, passes, chained)


def _play_chain(
    node: NodeSnapshot, t0_s: float, t1_s: float, primary: PrimaryArrivals, basis: list[Completion],
    closures: list[Closure],
) -> list[Completion]:
    """The handled signals of a block whose follow-ons chain (a registration storm), by the slow path.

    Plays only the low and lowest queues slot by slot (the slot path), or, if other follow-ons chain
    too, the whole block one signal at a time; starting from the arrivals `basis` implies, less the
    follow-ons the path queues itself, and again on its own answer until the device states it assumes
    are those it finds (at most SLOW_ROUNDS).
    """
    carried = [c for c in [node.carried] if c is not None and c[0] < t1_s]
    for _ in range(SLOW_ROUNDS):
        unfollowed = decide(node, t0_s, t1_s, primary, basis, closures, REGISTRATION_FOLLOWS)
        ends = tagged_ends_in_slots(
            node.router, t0_s, t1_s, queue_arrivals(node.constants, primary, unfollowed), node.draws,
            node.capacity_factor, follow_ons(node, unfollowed, REGISTRATION_FOLLOWS),
        )
        if ends is None:
            unfollowed = decide(node, t0_s, t1_s, primary, basis, closures, ALL_FOLLOWS)
            ends = tagged_ends_one_by_one(
                node.router, t0_s, t1_s, queue_arrivals(node.constants, primary, unfollowed), node.draws,
                node.capacity_factor, follow_ons(node, unfollowed, ALL_FOLLOWS),
            )
        answer = sorted(carried + ends)
        settled = same_completions(answer, basis)
        basis = answer
        if settled:
            break
    return basis


def with_dial_tones(node: NodeSnapshot, d: Decisions, handled: list[Completion], t1_s: float) -> Decisions | None:
    """`d` plus handled off-hook signals that change none of the block's arrivals; None if one would.

    Such a signal gives dial tone, and its set-up and teardown signals count as device events (the
    FIFO server queues those in the block itself).  `decide` would do the same, in more time.
    """
    out = replace(
        d, event_s=list(d.event_s), event_device=list(d.event_device), done_calls=list(d.done_calls),
        dial_tone_ms=list(d.dial_tone_ms), later=list(d.later),
    )
    setup_signals, teardown_signals = node.constants.setup_signals, node.constants.teardown_signals
    for end_s, tag, arrival_s in handled:
        kind, ident = unpack(tag)
        if kind != OFFHOOK:
            return None
        device, holding_s = d.new_calls.get(ident) or node.calls_in_progress[ident]
        out.done_calls.append(ident)
        out.dial_tone_ms.append((end_s - arrival_s) * 1000.0)
        if device >= 0:
            out.event_s.extend([end_s] * setup_signals)
            out.event_device.extend([device] * setup_signals)
        if teardown_signals and end_s + holding_s < t1_s:  # the FIFO server queues it
            if device >= 0:
                out.event_s.extend([end_s + holding_s] * teardown_signals)
                out.event_device.extend([device] * teardown_signals)
        elif teardown_signals:
            out.later.append((end_s + holding_s, TearsDown(device, teardown_signals, True)))
    return out


def same_completions(a: list[Completion], b: list[Completion]) -> bool:
    """The same handled signals, at the same times to within `TIE_S` (the paths round differently, so
    near-simultaneous ones are matched by tag, not by their order in time)."""
    if len(a) != len(b):
        return False
    if a == b:
        return True
    by_tag_a = sorted(a, key=lambda c: (c[1], c[0]))
    by_tag_b = sorted(b, key=lambda c: (c[1], c[0]))
    return all(
        tag_a == tag_b and abs(end_a - end_b) <= TIE_S and abs(arrival_a - arrival_b) <= TIE_S
        for (end_a, tag_a, arrival_a), (end_b, tag_b, arrival_b) in zip(by_tag_a, by_tag_b, strict=True)
    )
