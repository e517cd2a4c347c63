r"""The Perfmon counters cucm-sim writes and reads, under Cisco's and Microsoft's names (DOMAIN.md section 6).

A counter's path is `\\HOST\Object(instance)\Counter` (the instance and its parentheses only for objects
that have instances).  Each counter is one of three kinds, which says how a recording of it becomes load:
- `CUMULATIVE`: a running total since the service started (CallsAttempted); the count of an interval is
  the difference of its two samples, and a fall means the counter restarted from zero.
- `PER_SECOND`: the count of the one-second interval before the sample (QueueSignalsProcessed); a
  sample every 15 s reads one second in fifteen, so the interval's count is estimated as rate x length.
- `READING`: a level at the sample time (QueueSignalsPresent, AverageExpectedDelay, DPC Rate).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

SYSTEM_PERFORMANCE: Final = "Cisco CallManager System Performance"
CALLMANAGER: Final = "Cisco CallManager"
PROCESSOR: Final = "Processor"
NETWORK_INTERFACE: Final = "Network Interface"

QUEUE_NAMES: Final = ("1-High", "2-Normal", "3-Low", "4-Lowest")
"""The four SDL queues as Cisco's counters name them, highest first."""

AVERAGE_EXPECTED_DELAY: Final = "AverageExpectedDelay"
CALLS_REJECTED: Final = "CallsRejectedDueToThrottling"
CODE_YELLOW_ENTRY_EXIT: Final = "CodeYellowEntryExit"
CODE_RED_ENTRY_EXIT: Final = "CodeRedEntryExit"
SKINNY_DEVICES_THROTTLED: Final = "SkinnyDevicesThrottled"
THROTTLING_SAMPLE_ACTIVITY: Final = "ThrottlingSampleActivity"
TOTAL_CODE_YELLOW_ENTRY: Final = "TotalCodeYellowEntry"
CALLS_ATTEMPTED: Final = "CallsAttempted"
HEARTBEAT: Final = "CallManagerHeartBeat"
DPC_RATE: Final = "DPC Rate"
DPC_TIME: Final = "% DPC Time"
PACKETS_RECEIVED_DISCARDED: Final = "Packets Received Discarded"


def queue_signals_present(queue: int) -> str:
    """The counter of signals waiting in queue `queue` (0 = 1-High .. 3 = 4-Lowest)."""
    return f"QueueSignalsPresent {QUEUE_NAMES[queue]}"


def queue_signals_processed(queue: int | None) -> str:
    """The counter of signals handled in the last second in queue `queue` (None: all queues, 'Total')."""
    return f"QueueSignalsProcessed {'Total' if queue is None else QUEUE_NAMES[queue]}"


class Kind(StrEnum):
    """How a counter counts (see the module doc)."""

    CUMULATIVE = "cumulative"
    PER_SECOND = "per_second"
    READING = "reading"


_CUMULATIVE: Final = frozenset({
    CALLS_ATTEMPTED, CALLS_REJECTED, SKINNY_DEVICES_THROTTLED, TOTAL_CODE_YELLOW_ENTRY, HEARTBEAT,
    PACKETS_RECEIVED_DISCARDED, "CallsCompleted",
})
_PER_SECOND_PREFIXES: Final = ("QueueSignalsProcessed ",)


def kind_of(counter: str) -> Kind:
    """The kind of the counter named `counter` (the last part of its path); unknown counters are readings."""
    if counter in _CUMULATIVE:
        return Kind.CUMULATIVE
    if counter.startswith(_PER_SECOND_PREFIXES):
        return Kind.PER_SECOND
    return Kind.READING


_PATH: Final = re.compile(r"^\\\\(?P<host>[^\\]+)\\(?P<object>[^\\(]+?)(?:\((?P<instance>[^\\]*)\))?\\(?P<counter>.+)$")


@dataclass(frozen=True)
class CounterPath:
    r"""One counter of one host: `\\HOST\Object(instance)\Counter`."""

    host: str
    object: str
    counter: str
    instance: str | None = None

    @property
    def text(self) -> str:
        """The path as Perfmon writes it in a header cell."""
        instance = f"({self.instance})" if self.instance is not None else ""
        return f"\\\\{self.host}\\{self.object}{instance}\\{self.counter}"

    @property
    def kind(self) -> Kind:
        return kind_of(self.counter)

    @classmethod
    def parse(cls, text: str) -> CounterPath | None:
        """The path in `text`, or None when it is not one."""
        match = _PATH.match(text)
        if match is None:
            return None
        return cls(match["host"], match["object"], match["counter"], match["instance"])

    def matches(self, wanted: str) -> bool:
        """Whether this counter is the one `wanted` names: its whole path, or its path without the host
        (`Object(instance)\\Counter`, leading backslashes optional), compared without regard to case."""
        wanted = wanted.strip().lstrip("\\").casefold()
        full = self.text.lstrip("\\").casefold()
        without_host = full.split("\\", 1)[1]
        return wanted in (full, without_host)
