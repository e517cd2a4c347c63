"""The words both node engines share, defined once: phone states and random streams.

The two engines are independent implementations of the same rules; what they must agree on to be
compared (and to give every existing seed its old results) lives here.  The order of the stream names
fixes which child of the node's `SeedSequence` feeds which source, so it never changes: new streams go
at the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np

UNREGISTERED, REGISTERING, REGISTERED = range(3)
"""A phone's registration state, as the device table holds it."""

NODE_STREAMS: Final[tuple[str, ...]] = (
    "service", "background", "calls", "holding", "devices", "keepalive_phase", "chatty", "bursts", "registration",
)
"""Every engine's random sources, in the order that fixes the seeds (the signal engine has just these).
"registration" (when each phone of a storm starts) belongs to the world's phones, not to the engine."""

TRACE_STREAM: Final = "trace"
"""A recording's arrivals (`load.trace`): one child of it per driving counter, the calls' first, then each
background counter's.  Last in each engine's list, so it moved no earlier stream."""

SIGNAL_STREAMS: Final[tuple[str, ...]] = (*NODE_STREAMS, TRACE_STREAM)
"""The signal engine's sources: the node's, then the recording's."""

BATCHED_STREAMS: Final[tuple[str, ...]] = (
    *NODE_STREAMS,
    "follow_on_service", "calls_thinning", "devices_fallback", "chatty_devices", TRACE_STREAM,
)
"""The batched engine's sources: the node's, then its own (it draws some things apart, in bulk), then the
recording's."""


def spawn_streams(root: np.random.SeedSequence, names: tuple[str, ...]) -> Mapping[str, np.random.SeedSequence]:
    """One child of `root` per name, in order: the seed of each random source of a node."""
    return dict(zip(names, root.spawn(len(names)), strict=True))
