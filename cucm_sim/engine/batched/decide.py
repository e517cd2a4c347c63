"""The decide step of the batched engine: a block's sparse events, played in time order, and what they queue.

Given the node at the block's start (`state.NodeSnapshot`), the block's arrivals, the tagged signals
handled in it (`tags.Completion`, from the serve step) and its SCCP closures, `decide` plays every
event that changes something -- registrations, closures, phones that leave, handled signals that
someone waits for, teardowns -- and the call attempts, and returns `Decisions`: which signals join which
queue when, every device event, every state change, the calls admitted or rejected, and what falls past
the block.  It changes nothing else; the settle step calls it again as the handled signals become known.

The events are named records (`events`) on a heap ordered by (time, rank, seq), exactly the order of the
per-signal engine; `_Play` plays them.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import numpy as np

from cucm_sim.engine.batched.arrivals import PrimaryArrivals
from cucm_sim.engine.batched.device_states import Changes, registered_at, registered_counts, state_at
from cucm_sim.engine.batched.events import (
    CLOSES,
    HANDLED,
    REGISTERS,
    TEARS_DOWN,
    Closes,
    Closure,
    Entry,
    Event,
    Handled,
    Leaves,
    Registers,
    TearsDown,
)
from cucm_sim.engine.batched.state import NodeConstants, NodeSnapshot
from cucm_sim.engine.batched.tags import OFFHOOK, REG_INITIAL, REG_LOW, Completion, kind_of, pack, unpack
from cucm_sim.engine.vocabulary import REGISTERED, REGISTERING, UNREGISTERED
from cucm_sim.rules.priorities import LOW, LOWEST, NORMAL, QUEUES
from cucm_sim.sdl.block import NO_TAG


@dataclass
class Decisions:
    """What the decide step made of a block: the signals to queue and every change they imply."""

    signal_s: list[list[float]] = field(default_factory=lambda: [[] for _ in range(QUEUES)])
    """Per queue, the signals the block's events queue (times s, in the order decided)."""
    signal_tag: list[list[int]] = field(default_factory=lambda: [[] for _ in range(QUEUES)])
    event_s: list[float] = field(default_factory=list)
    """Device events of those signals (and of follow-ons a server queues itself): times s ..."""
    event_device: list[int] = field(default_factory=list)
    """... and devices."""
    state: dict[int, int] = field(default_factory=dict)
    """Each changed device's state at the block's end."""
    changes: dict[int, list[tuple[float, int]]] = field(default_factory=dict)
    """Each changed device's changes, (t_s, new state) in time order (`device_states.Changes`)."""
    registered_delta: int = 0
    calls_accepted: int = 0
    calls_rejected: int = 0
    rejected_s: list[float] = field(default_factory=list)
    new_calls: dict[int, tuple[int, float]] = field(default_factory=dict)
    """Calls admitted in the block: call id -> (device, -1 for none; holding time s)."""
    done_calls: list[int] = field(default_factory=list)
    """Calls whose off-hook signal was handled (they got dial tone)."""
    dial_tone_ms: list[float] = field(default_factory=list)
    later: list[tuple[float, Event]] = field(default_factory=list)
    """Events past the block, with their time (s): for the node's `events.TimedEvents`."""
    closures: list[Closure] = field(default_factory=list)
    """SCCP closures in the block, in time order (the settle step sets them)."""
    keepalive_keep: np.ndarray | None = None
    """Per keepalive of the block: was its phone registered (did it send it)?"""
    chatty_keep: list[np.ndarray] = field(default_factory=list)
    """Per chatty group, the same for its events."""
    calls_here_s: np.ndarray | None = None
    """A cluster's node: the times (s) of the block's call attempts whose phone is registered here."""

    def same_arrivals(self, other: Decisions) -> bool:
        """Whether these decisions queue exactly the signals `other` does."""
        assert self.keepalive_keep is not None and other.keepalive_keep is not None
        return (
            self.signal_s == other.signal_s
            and self.signal_tag == other.signal_tag
            and np.array_equal(self.keepalive_keep, other.keepalive_keep)
            and all(np.array_equal(a, b) for a, b in zip(self.chatty_keep, other.chatty_keep, strict=True))
        )


def decide(
    node: NodeSnapshot, t0_s: float, t1_s: float, primary: PrimaryArrivals, completions: list[Completion],
    closures: list[Closure], server_follows: frozenset[int] = frozenset(),
) -> Decisions:
    """Play the block [t0_s, t1_s)'s sparse events in time order, given its handled signals and SCCP closures.

    Signals of the tag kinds in `server_follows` handled in the block queue none of their follow-ons
    here: the server that computes the block queues them itself (they still count as device events).
    The one in service when the block began is not the server's: it queues its own.

    In three rounds, each in time order, which gives what one time-ordered round would: first the
    events that change device states (registrations, closures, handled registration signals), then
    the call attempts, in bulk (they depend only on device states and on the throttling state, which
    holds over the block), then handled off-hook signals and teardowns (which depend on the calls).
    """
    d = Decisions()
    play = _Play(node, t1_s, d, server_follows)
    states: list[Entry] = []
    calls: list[Entry] = []  # the third round's
    seq = play.seq
    for end_s, tag, arrival_s in completions:
        (calls if kind_of(tag) == OFFHOOK else states).append((end_s, HANDLED, next(seq), Handled(tag, arrival_s)))
    for t_s, device, _total in closures:
        states.append((t_s, CLOSES, next(seq), Closes(device)))
    for t_s, rank, _, event in primary.due:
        (calls if rank == TEARS_DOWN else states).append((t_s, rank, next(seq), event))
    heapq.heapify(states)
    play.play(states)
    decide_calls(node, primary, d)
    heapq.heapify(calls)
    play.play(calls)
    d.registered_delta = play.registered - node.registered
    d.keepalive_keep = registered_at(node.device_states, d.changes, primary.keepalive_s, primary.keepalive_device)
    d.chatty_keep = [registered_at(node.device_states, d.changes, times_s, ids) for times_s, ids in primary.chatty]
    return d


class _Play:
    """One decide step's play of a heap of events, writing into `d` (see `decide`)."""

    def __init__(self, node: NodeSnapshot, t1_s: float, d: Decisions, server_follows: frozenset[int]) -> None:
        self.node = node
        self.t1_s = t1_s
        self.d = d
        self.server_follows = server_follows
        self.registered = node.registered
        self.seq = itertools.count()
        self._states = d.state
        self._states_before = node.device_states

    def play(self, heap: list[Entry]) -> None:
        """Play every event of `heap` in order, and those the events add to it."""
        pop = heapq.heappop
        while heap:
            t_s, _, _, event = pop(heap)
            # isinstance, not `match`: this is the per-event loop of a registration storm, where a `match`
            # on the record's class took a tenth of the engine's time (measured on R2).
            if isinstance(event, Handled):
                self.handled(heap, t_s, event.tag, event.arrival_s)
            elif isinstance(event, Registers):
                device = event.device
                if self.state(device) == UNREGISTERED:
                    self.set_state(device, t_s, REGISTERING)
                    self.signal(t_s, LOWEST, device, tag=pack(REG_INITIAL, device))
            elif isinstance(event, TearsDown):
                self.signal(t_s, NORMAL, event.device, count=event.signals, queued=event.queued)
            elif isinstance(event, Leaves):
                if self.state(event.device) != UNREGISTERED:
                    self.set_state(event.device, t_s, UNREGISTERED)
            else:  # Closes
                device = event.device
                if self.state(device) != UNREGISTERED:
                    self.set_state(device, t_s, UNREGISTERED)
                again_s = t_s + self.node.constants.reregister_delay_s
                if again_s < self.t1_s:
                    heapq.heappush(heap, (again_s, REGISTERS, next(self.seq), Registers(device)))
                else:
                    self.d.later.append((again_s, Registers(device)))

    def handled(self, heap: list[Entry], t_s: float, tag: int, arrival_s: float) -> None:
        """A tagged signal's service ended at `t_s`: what waited for it goes on."""
        kind, ident = unpack(tag)
        immediate = kind not in self.server_follows or (t_s, tag, arrival_s) == self.node.carried
        constants = self.node.constants
        d = self.d
        if kind == OFFHOOK:
            call = d.new_calls.get(ident) or self.node.calls_in_progress.get(ident)
            if call is None:  # a cluster's earlier pass admitted a call this pass does not (its phone's
                return  # registration ends later now); the next pass's services no longer hold it
            device, holding_s = call
            d.done_calls.append(ident)
            d.dial_tone_ms.append((t_s - arrival_s) * 1000.0)
            self.signal(t_s, NORMAL, device, count=constants.setup_signals, queued=immediate)
            if constants.teardown_signals:
                end_s = t_s + holding_s
                if end_s < self.t1_s:  # not `immediate`: the server queues it (see `serve.follow_ons`)
                    teardown = TearsDown(device, constants.teardown_signals, immediate)
                    heapq.heappush(heap, (end_s, TEARS_DOWN, next(self.seq), teardown))
                else:  # the block that plays it queues it
                    d.later.append((end_s, TearsDown(device, constants.teardown_signals, True)))
        elif kind == REG_INITIAL:
            rest = constants.registration_rest
            if not rest and self.state(ident) == REGISTERING:
                self.set_state(ident, t_s, REGISTERED)
            if rest:  # the low queue is FIFO: its last low signal ends it
                self.signal(t_s, LOW, ident, count=rest - 1, queued=immediate)
                self.signal(t_s, LOW, ident, tag=pack(REG_LOW, ident), queued=immediate)
        elif self.state(ident) == REGISTERING:  # REG_LOW: the last signal of a registration (this one's or not)
            self.set_state(ident, t_s, REGISTERED)

    def state(self, device: int) -> int:
        """`device`'s state now."""
        return self._states.get(device, int(self._states_before[device]))

    def set_state(self, device: int, t_s: float, new: int) -> None:
        self.registered += (new == REGISTERED) - (self.state(device) == REGISTERED)
        self._states[device] = new
        self.d.changes.setdefault(device, []).append((t_s, new))

    def signal(
        self, t_s: float, queue: int, device: int, tag: int = NO_TAG, count: int = 1, queued: bool = True
    ) -> None:
        """`count` signals caused by `device` (-1: none); `queued` False: the server queues them itself."""
        d = self.d
        if queued:
            d.signal_s[queue].extend([t_s] * count)
            d.signal_tag[queue].extend([tag] * count)
        if device >= 0:
            d.event_s.extend([t_s] * count)
            d.event_device.extend([device] * count)


def decide_calls(node: NodeSnapshot, primary: PrimaryArrivals, d: Decisions) -> None:
    """The block's call attempts, in bulk, once the device states are decided: each one's device
    (`pick_devices`; in a cluster, the phone drawn for it, and only the calls whose phone is registered here
    are the node's), then reorder tone in Code Yellow, else an off-hook signal that waits for dial tone (its
    call ids in time order)."""
    if not len(primary.call_s):
        return
    call_s, holding_s = primary.call_s, primary.call_holding_s
    if node.constants.calls_follow_phones:
        devices = primary.call_candidates[:, 0]
        mine = (registered_at(node.device_states, d.changes, call_s, devices) if len(node.device_states)
                else np.zeros(len(call_s), dtype=bool))
        call_s, devices, holding_s = call_s[mine], devices[mine], holding_s[mine]
        d.calls_here_s = call_s
    else:
        devices = pick_devices(node.device_states, node.registered, d.changes, call_s, primary.call_candidates,
                               primary.call_fallback)
    calls = len(call_s)
    if not calls:
        return
    with_device = devices >= 0
    if node.in_yellow:
        count = node.constants.rejection_signals
        d.calls_rejected += calls
        d.rejected_s.extend(call_s.tolist())
        d.signal_s[NORMAL].extend(np.repeat(call_s, count).tolist())
        d.signal_tag[NORMAL].extend([NO_TAG] * (calls * count))
        d.event_s.extend(np.repeat(call_s[with_device], count).tolist())
        d.event_device.extend(np.repeat(devices[with_device], count).tolist())
        return
    ids = node.next_call_id + d.calls_accepted + np.arange(calls)
    d.calls_accepted += calls
    d.new_calls.update(zip(ids.tolist(), zip(devices.tolist(), holding_s.tolist(), strict=True),
                           strict=True))
    d.signal_s[NORMAL].extend(call_s.tolist())
    d.signal_tag[NORMAL].extend(pack(OFFHOOK, ids).tolist())
    d.event_s.extend(call_s[with_device].tolist())
    d.event_device.extend(devices[with_device].tolist())


def calls_made(constants: NodeConstants, primary: PrimaryArrivals, d: Decisions | None) -> np.ndarray:
    """The times (s) of the block's call attempts that are the node's: all of them for a node alone; in a
    cluster, those whose phone was registered here (none while the node is down: `d` None)."""
    if not constants.calls_follow_phones:
        return primary.call_s
    if d is None or d.calls_here_s is None:
        return primary.call_s[:0]
    return d.calls_here_s


def pick_devices(
    states_before: np.ndarray, registered_before: int, changes: Changes, call_s: np.ndarray,
    candidates: np.ndarray, fallback: np.ndarray,
) -> np.ndarray:
    """Each call's device: a uniformly random one registered at the call's time (s), -1 if none.

    Rejection sampling, as the per-signal engine: the first registered of the call's `candidates`; if
    none is, the registered device of rank `fallback` x count (uniform too).  A state change at a call's
    own time came before it (`decide`'s order).
    """
    if not len(states_before):
        return np.full(len(call_s), -1, dtype=np.int64)
    registered = states_before[candidates] == REGISTERED
    change_s: dict[int, list[float]] = {device: [t for t, _ in device_changes]
                                        for device, device_changes in changes.items()}
    if change_s:
        rows, columns = np.nonzero(np.isin(candidates, np.fromiter(change_s, dtype=np.int64)))
        for row, column in zip(rows.tolist(), columns.tolist(), strict=True):
            device = int(candidates[row, column])
            registered[row, column] = state_at(states_before, changes, device, change_s[device],
                                               float(call_s[row])) == REGISTERED
    devices: np.ndarray = candidates[np.arange(len(call_s)), registered.argmax(axis=1)]
    none_picked = np.flatnonzero(~registered.any(axis=1))
    if len(none_picked):
        registered_then = registered_counts(states_before, registered_before, changes, call_s[none_picked],
                                            side="right")
        for row, count in zip(none_picked.tolist(), registered_then.tolist(), strict=True):
            t_s = float(call_s[row])
            if not count:
                devices[row] = -1
                continue
            mask = states_before == REGISTERED
            for device, times_s in change_s.items():
                mask[device] = state_at(states_before, changes, device, times_s, t_s) == REGISTERED
            everyone = np.flatnonzero(mask)
            devices[row] = everyone[int(fallback[row] * len(everyone))]
    return devices
