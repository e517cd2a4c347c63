"""Alarm records: the Cisco-style events a run raises.

An `Alarm` is an immutable record of one alarm (CodeYellowEntry, CodeYellowExit, CodeRedEntry,
CallManagerOnline, DeviceCloseMaxEventsExceeded; a cluster's also DeviceRegistered, DeviceUnregistered)
at a simulated time, with the parameters Cisco's alarm of the same name carries.  Parameter names follow
Cisco's alarm text with the spaces removed; delays are in milliseconds, times in seconds, as the
`ALARM_COLUMNS` units say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

CODE_YELLOW_ENTRY: Final = "CodeYellowEntry"
CODE_YELLOW_EXIT: Final = "CodeYellowExit"
CODE_RED_ENTRY: Final = "CodeRedEntry"
CALLMANAGER_ONLINE: Final = "CallManagerOnline"
DEVICE_CLOSE_MAX_EVENTS_EXCEEDED: Final = "DeviceCloseMaxEventsExceeded"
DEVICE_REGISTERED: Final = "DeviceRegistered"
DEVICE_UNREGISTERED: Final = "DeviceUnregistered"

CONNECTIVITY_ERROR: Final = "ConnectivityError"
"""DeviceUnregistered reason 6: communication between the phone and the node was interrupted (its node went
down: Code Red).  Reason names and codes: Cisco's alarm catalogue (DOMAIN.md section 4)."""
DEVICE_INITIATED_UNREGISTER: Final = "DeviceUnregistered"
"""DeviceUnregistered reason 10: the phone explicitly unregistered (it leaves a secondary for its primary;
the catalogue names rehoming as a cause of the alarm without a reason of its own)."""
SCCP_DEVICE_THROTTLING: Final = "SCCPDeviceThrottling"
"""DeviceUnregistered reason 12: the node closed the phone for exceeding Max Events Allowed."""

#: Every parameter an alarm may carry, in the order alarms.csv lists them, with its unit.
ALARM_COLUMNS: Final[dict[str, str]] = {
    "ExpectedAverageDelay": "ms",
    "EntryLatency": "ms",
    "ExitLatency": "ms",
    "SampleSize": "s",
    "TotalCodeYellowEntry": "count",
    "TotalCodeYellowExit": "count",
    "TimeSpentInCodeYellow": "s",
    "NumberOfCallsRejectedDueToCallThrottling": "count",
    "CodeYellowDuration": "min",
    "HighPriorityQueueDepth": "signals",
    "NormalPriorityQueueDepth": "signals",
    "LowPriorityQueueDepth": "signals",
    "LowestPriorityQueueDepth": "signals",
    "SignalsLostInRestart": "signals",
    "RestartDuration": "s",
    "DeviceName": "name",
    "TotalEventsReceived": "events",
    "MaxEventsAllowed": "events per 5 s",
    "NumberOfSkinnyDeviceThrottled": "count",
}
#: The parameter only a cluster's alarms carry (DeviceUnregistered's reason); its alarms.csv adds the column.
CLUSTER_ALARM_COLUMNS: Final[dict[str, str]] = {"Reason": "name"}


@dataclass(frozen=True)
class Alarm:
    """One alarm raised at simulated time `t_s` (seconds), with Cisco's parameters."""

    name: str
    t_s: float
    params: Mapping[str, float | int | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.params) - set(ALARM_COLUMNS) - set(CLUSTER_ALARM_COLUMNS)
        if unknown:
            raise ValueError(f"alarm {self.name} has undocumented parameters {sorted(unknown)}")
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def with_params(self, **extra: float | int | str) -> Alarm:
        """A copy of this alarm with more parameters (e.g. queue depths known only to the model)."""
        return Alarm(self.name, self.t_s, {**self.params, **extra})


def device_name(device: int) -> str:
    """The SCCP device name a simulated phone goes by: SEP and its index as 12 hex digits."""
    return f"SEP{device:012X}"


def device_number(name: str) -> int:
    """The index of the simulated phone that goes by SCCP device `name` (the inverse of `device_name`)."""
    return int(name[3:], 16)


def device_closed(
    t_s: float, device: int, total_events: int, max_events_allowed: int, throttled_so_far: int
) -> Alarm:
    """DeviceCloseMaxEventsExceeded: `device` sent `total_events` in the SCCP window, past the limit;
    `throttled_so_far` counts this closure."""
    return Alarm(DEVICE_CLOSE_MAX_EVENTS_EXCEEDED, t_s, {
        "DeviceName": device_name(device),
        "TotalEventsReceived": total_events,
        "MaxEventsAllowed": max_events_allowed,
        "NumberOfSkinnyDeviceThrottled": throttled_so_far,
    })


def callmanager_online(t_s: float, signals_lost: int, restart_duration_s: float) -> Alarm:
    """CallManagerOnline: the service is back `restart_duration_s` after a Code Red that lost `signals_lost`."""
    return Alarm(CALLMANAGER_ONLINE, t_s, {
        "SignalsLostInRestart": signals_lost,
        "RestartDuration": restart_duration_s,
    })


def device_registered(t_s: float, device: int) -> Alarm:
    """DeviceRegistered: `device`'s registration dialogue with the node ended (a cluster's phones only)."""
    return Alarm(DEVICE_REGISTERED, t_s, {"DeviceName": device_name(device)})


def device_unregistered(t_s: float, device: int, reason: str) -> Alarm:
    """DeviceUnregistered: `device` is no longer registered with the node, for `reason` (a cluster's phones)."""
    return Alarm(DEVICE_UNREGISTERED, t_s, {"DeviceName": device_name(device), "Reason": reason})
