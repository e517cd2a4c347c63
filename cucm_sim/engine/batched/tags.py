"""A queued signal's tag: what waits for its service to end, packed in one int64 (batched engine).

A tag holds a kind in its low `KIND_BITS` bits and an id above them: a call's off-hook signal
(`OFFHOOK`, the call's id: it gives dial tone), a registration's request (`REG_INITIAL`, the device's
id) and a registration's last low signal (`REG_LOW`, the device's id).  `sdl.block.NO_TAG` marks a
signal nobody waits for; it is not a packed tag and is never taken apart.  `pack`, `kind_of`,
`ident_of` and `unpack` are the one spelling of the packing, for an int and for a numpy integer array
alike.

A `Completion` is a tagged signal whose service ended: what the serve step hands to the decide step.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

KIND_BITS = 2
"""The kind's bits, at the bottom of a tag."""
KIND_MASK = (1 << KIND_BITS) - 1

OFFHOOK, REG_INITIAL, REG_LOW = range(1, 4)
"""The kinds of tag: a call's off-hook signal, a registration's request, a registration's last low signal."""

Tags = TypeVar("Tags", int, np.ndarray)

Completion = tuple[float, int, float]
"""A tagged signal whose service ended: (end_s, tag, arrival_s)."""


def pack(kind: int, ident: Tags) -> Tags:
    """The tag of kind `kind` for call or device `ident` (an int, or an int array: one tag each)."""
    return ident << KIND_BITS | kind


def kind_of(tag: Tags) -> Tags:
    """The kind of `tag` (one of OFFHOOK, REG_INITIAL, REG_LOW)."""
    return tag & KIND_MASK


def ident_of(tag: Tags) -> Tags:
    """The call or device id of `tag`."""
    return tag >> KIND_BITS


def unpack(tag: int) -> tuple[int, int]:
    """(kind, id) of `tag`: `kind_of` and `ident_of` in one call, for the per-event loops."""
    return tag & KIND_MASK, tag >> KIND_BITS
