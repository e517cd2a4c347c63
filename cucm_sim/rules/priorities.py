"""The router thread's four priority queues, named and numbered once (Cisco's 1-High .. 4-Lowest).

Every per-queue list in cucm-sim is indexed by these numbers, highest first; scenario files, summaries
and the metric catalogue use the names.
"""

from __future__ import annotations

from typing import Final, Literal

Priority = Literal["high", "normal", "low", "lowest"]
PRIORITIES: Final[tuple[Priority, ...]] = ("high", "normal", "low", "lowest")
"""The four SDL queues' names, highest first (1-High .. 4-Lowest)."""

QUEUES: Final = len(PRIORITIES)
HIGH, NORMAL, LOW, LOWEST = range(QUEUES)
"""The queues' indices in every per-queue list, highest first."""

PRIORITY_INDEX: Final[dict[Priority, int]] = {name: index for index, name in enumerate(PRIORITIES)}
