"""Phones' registration states at any time inside a block, from their states at its start and its changes.

The decide step records each state change of a block as it plays it: `changes` maps a device to its
changes (t_s, new state), in time order.  These functions answer, in bulk, what the rest of the block
needs: whether a device event's phone was registered when it sent it, how many phones were registered
at given times, one device's state at a time.  Pure: they read their arguments only.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import Literal

import numpy as np

from cucm_sim.engine.vocabulary import REGISTERED

Changes = Mapping[int, list[tuple[float, int]]]
"""Per device, its state changes in a block: (t_s, new state), in time order."""


def state_at(states_before: np.ndarray, changes: Changes, device: int, change_s: list[float], t_s: float) -> int:
    """`device`'s state at `t_s` (s), its changes at `t_s` made (`change_s`: their times, in order)."""
    made = bisect.bisect_right(change_s, t_s)
    return changes[device][made - 1][1] if made else int(states_before[device])


def registered_at(states_before: np.ndarray, changes: Changes, times_s: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """For each device event (time `times_s`, device `ids`): was the device registered then?

    An event at a change's own time came before it (the event that got a device closed was sent).
    """
    keep: np.ndarray = states_before[ids] == REGISTERED
    for device, device_changes in changes.items():
        mine = np.flatnonzero(ids == device)
        if len(mine):
            change_s = np.array([t for t, _ in device_changes])
            states = np.array([int(states_before[device])] + [s for _, s in device_changes])
            keep[mine] = states[np.searchsorted(change_s, times_s[mine], side="left")] == REGISTERED
    return keep


def registered_counts(
    states_before: np.ndarray, registered_before: int, changes: Changes, times_s: np.ndarray,
    side: Literal["left", "right"],
) -> np.ndarray:
    """How many devices are registered at each of `times_s` (side "right": a change at that very time
    counts; "left": it does not yet), `registered_before` being registered at the block's start."""
    deltas: list[tuple[float, int]] = []
    for device, device_changes in changes.items():
        before = int(states_before[device])
        for t_s, new in device_changes:
            if (new == REGISTERED) != (before == REGISTERED):
                deltas.append((t_s, 1 if new == REGISTERED else -1))
            before = new
    deltas.sort()
    cumulative = np.cumsum([0] + [delta for _, delta in deltas])
    when = np.searchsorted(np.array([t for t, _ in deltas]), times_s, side=side)
    counts: np.ndarray = registered_before + cumulative[when]
    return counts
