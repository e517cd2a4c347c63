"""The commit step of the batched engine: a settled block becomes the past.

The one step that writes: the router moves on (`sdl.block.commit`), the waits and dial tones join their
histograms, the signal in service at the block's end is carried, the phones' states and the calls in
progress are updated, events past the block are kept for later, and SCCP closures are counted, kept and
reported.
"""

from __future__ import annotations

import numpy as np

from cucm_sim.engine.batched.arrivals import PrimaryArrivals
from cucm_sim.engine.batched.decide import Decisions, calls_made
from cucm_sim.engine.batched.sccp_block import block_events, remember
from cucm_sim.engine.batched.state import NodeConstants, NodeState
from cucm_sim.engine.batched.tally import Rows
from cucm_sim.engine.interface import OnAlarm
from cucm_sim.engine.vocabulary import REGISTERED
from cucm_sim.rules.alarms import device_closed, device_registered
from cucm_sim.sdl.block import NO_TAG, BlockPlan, commit


def commit_block(
    state: NodeState, constants: NodeConstants, t1_s: float, plan: BlockPlan, primary: PrimaryArrivals,
    d: Decisions, rows: Rows, report: OnAlarm,
) -> None:
    """Make the settled block that ends at `t1_s` (s) the past of `state`; report its SCCP closures (and, in a
    cluster, its completed registrations)."""
    commit(state.router, plan, state.draws, state.follow_draws)
    totals = state.totals
    if state.uncounted_end_s is not None and state.uncounted_end_s < t1_s:
        state.uncounted_end_s = None
    carried = None
    for queue, served in enumerate(plan.served):
        if not served.count:
            continue
        totals.wait_ms_by_priority[queue].add_many(served.wait_s * 1000.0)
        last = int(np.argmax(served.end_s))
        if served.end_s[last] >= t1_s:  # the one still in service at t1
            state.uncounted_end_s = float(served.end_s[last])
            state.uncounted_queue = queue
            if served.tags[last] != NO_TAG:
                carried = (float(served.end_s[last]), int(served.tags[last]), float(served.arrival_s[last]))
    if state.carried is not None and state.carried[0] >= t1_s:
        carried = state.carried
    state.carried = carried
    totals.signals_processed += int(rows.processed.sum())
    totals.calls_attempted += len(calls_made(constants, primary, d))

    phones = state.phones
    for device, new in d.state.items():
        phones.array[device] = new
    phones.registered += d.registered_delta
    if constants.announces_registrations:
        registrations = sorted((t_s, device) for device, changes in d.changes.items()
                               for t_s, new in changes if new == REGISTERED)
        for t_s, device in registrations:
            report(device_registered(t_s, device))
    totals.calls_accepted += d.calls_accepted
    totals.calls_rejected_throttled += d.calls_rejected
    state.calls_in_progress.update(d.new_calls)
    for call_id in d.done_calls:
        state.calls_in_progress.pop(call_id, None)
    state.next_call_id += d.calls_accepted
    if d.dial_tone_ms:
        totals.dial_tone_delay_ms.add_many(np.array(d.dial_tone_ms))
    for t_s, event in d.later:
        state.timed.push(t_s, event)
    limit = constants.sccp_limit
    if limit:
        for close_s, device, total in d.closures:
            totals.skinny_devices_throttled += 1
            state.last_close_s[device] = close_s
            report(device_closed(close_s, device, total, limit, totals.skinny_devices_throttled))
        times_s, ids = block_events(primary, d)
        remember(state.sccp_ring, t1_s, times_s, ids)
