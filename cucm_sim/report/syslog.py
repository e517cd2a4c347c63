"""alarms.log: a run's alarms as the lines a CUCM node writes to its syslog (CiscoSyslog, or a remote server).

One line per alarm, in time order, in the layout of CUCM's own syslog lines:

    Nov 24 09:00:12 cm1 local7 2 : 17: cm1: Nov 24 2026 09:00:12.000 UTC :  %UC_CALLMANAGER-2-CodeYellowEntry:
    %[ExpectedAverageDelay=27][EntryLatency=20]...[AppID=Cisco CallManager][ClusterID=StandAloneCluster]
    [NodeID=cm1]: <text>

(one line, wrapped here): the syslog header (the node's local wall-clock time, RFC 3164's day padded with a
space, the host, facility local7, the severity), then the CiscoLog message: a sequence number counted per host
from 0, the host, the time in UTC to the millisecond, `%UC_CALLMANAGER-<severity>-<alarm>`, Cisco's
`%[Name=value]...` parameter block closed by the AppID/ClusterID/NodeID tags, and a short text of our own.
Sources of the layout: Cisco's CiscoLog format (CUCM Managed Services Guide, "CiscoLog Message Format" and
"SEQNUM Field"), and CiscoSyslog lines quoted in Cisco TAC documents 200410 and 214607, which show the local
header time beside the UTC CiscoLog time.  Severities are those of Cisco's alarm catalogue (`SEVERITY`).

Parameters keep Cisco's names (the `Alarm.params` keys) in Cisco's order where it is known, then the others.
Cisco's numeric fields are whole numbers (UInt), so every number is written whole: the value as alarms.csv
holds it (four decimals) is rounded to the nearest whole number, a half upwards (27.5 ms -> 28, 27.4999 -> 27);
alarms.csv keeps the fractions.  Times are alarms.csv's, to the millisecond, so a result directory read back
gives the same lines as the run.  DeviceUnregistered's Reason is written as Cisco's reason code
(ConnectivityError -> 6), as real lines carry it; other text as is.
A run of hosts and links has no CUCM node and so no alarms: it writes no alarms.log.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from cucm_sim.errors import UserError
from cucm_sim.rules.alarms import (
    ALARM_COLUMNS,
    CALLMANAGER_ONLINE,
    CLUSTER_ALARM_COLUMNS,
    CODE_RED_ENTRY,
    CODE_YELLOW_ENTRY,
    CODE_YELLOW_EXIT,
    CONNECTIVITY_ERROR,
    DEVICE_CLOSE_MAX_EVENTS_EXCEEDED,
    DEVICE_INITIATED_UNREGISTER,
    DEVICE_REGISTERED,
    DEVICE_UNREGISTERED,
    SCCP_DEVICE_THROTTLING,
    Alarm,
)
from cucm_sim.run.simulation import RunResult

ALARMS_LOG: Final = "alarms.log"
DEFAULT_HOST: Final = "cucm"
"""The host (and NodeID) of a single node's lines unless the caller names one."""
DEFAULT_START: Final = datetime(2026, 1, 1, tzinfo=UTC)
"""Wall-clock time of t = 0 unless the caller gives one: fixed, so the same run gives the same bytes."""
CLUSTER_ID: Final = "StandAloneCluster"
"""CUCM's default Cluster ID (enterprise parameter), as Cisco's own example lines carry it."""
APP_ID: Final = "Cisco CallManager"
FACILITY: Final = "local7"
"""The syslog facility of CUCM's alarm lines in CiscoSyslog."""

SEVERITY: Final[Mapping[str, int]] = {
    CODE_YELLOW_ENTRY: 2,  # Critical since CUCM 8.0 (Error before), Cisco's alarm catalogue
    CODE_RED_ENTRY: 2,  # Critical since CUCM 8.0 (Error before), Cisco's alarm catalogue
    DEVICE_CLOSE_MAX_EVENTS_EXCEEDED: 3,  # Error: %UC_CALLMANAGER-3-..., CUCM 15 System Error Messages
    DEVICE_UNREGISTERED: 4,  # Warning since 8.0 (the catalogue lowers it to Informational for the reasons
    # CallManagerReset, CallManagerRestart and DeviceInitiatedReset, which the simulator never gives)
    CODE_YELLOW_EXIT: 5,  # ASSUMPTION: Notice.  Not found in the catalogue; Notice is what CUCM 15 gives the
    # exit of its other throttling states (MemoryThrottlingExit: %UC_CALLMANAGER-5-...)
    CALLMANAGER_ONLINE: 6,  # ASSUMPTION: Informational (the service started; no action).  Not found
    DEVICE_REGISTERED: 6,  # ASSUMPTION: Informational (normal operation).  Not found
}
"""Each alarm's syslog severity (2 Critical, 3 Error, 4 Warning, 5 Notice, 6 Informational)."""

_TEXT: Final[Mapping[str, str]] = {
    CODE_YELLOW_ENTRY: "Code Yellow entered, new calls throttled",
    CODE_YELLOW_EXIT: "Code Yellow left, new calls accepted again",
    CODE_RED_ENTRY: "Code Red entered, the service restarts",
    CALLMANAGER_ONLINE: "CallManager service back online after a restart",
    DEVICE_CLOSE_MAX_EVENTS_EXCEEDED: "SCCP connection closed, Max Events Allowed exceeded",
    DEVICE_REGISTERED: "Phone registered with this node",
    DEVICE_UNREGISTERED: "Phone no longer registered with this node",
}
"""The text that ends each line: our own words (Cisco's wording is not copied)."""

_QUEUE_DEPTHS = ("HighPriorityQueueDepth", "NormalPriorityQueueDepth", "LowPriorityQueueDepth",
                 "LowestPriorityQueueDepth")
_CISCO_ORDER: Final[Mapping[str, tuple[str, ...]]] = {
    # The catalogue's parameter lists; syslog copies add the queue depths after them
    CODE_YELLOW_ENTRY: ("ExpectedAverageDelay", "EntryLatency", "ExitLatency", "SampleSize",
                        "TotalCodeYellowEntry", *_QUEUE_DEPTHS),
    CODE_YELLOW_EXIT: ("ExpectedAverageDelay", "EntryLatency", "ExitLatency", "SampleSize", "TimeSpentInCodeYellow",
                       "NumberOfCallsRejectedDueToCallThrottling", "TotalCodeYellowExit", *_QUEUE_DEPTHS),
    CODE_RED_ENTRY: ("ExpectedAverageDelay", "EntryLatency", "ExitLatency", "SampleSize", "CodeYellowDuration",
                     "NumberOfCallsRejectedDueToCallThrottling", "TotalCodeYellowEntry", "TotalCodeYellowExit",
                     *_QUEUE_DEPTHS),
    DEVICE_CLOSE_MAX_EVENTS_EXCEEDED: ("TotalEventsReceived", "MaxEventsAllowed", "NumberOfSkinnyDeviceThrottled"),
    DEVICE_UNREGISTERED: ("DeviceName", "Reason"),
}
"""Cisco's order of an alarm's parameters; the rest follow in alarms.csv's order."""
_COLUMN_ORDER: Final = (*ALARM_COLUMNS, *CLUSTER_ALARM_COLUMNS)

REASON_CODES: Final[Mapping[str, int]] = {
    CONNECTIVITY_ERROR: 6,
    DEVICE_INITIATED_UNREGISTER: 10,
    SCCP_DEVICE_THROTTLING: 12,
}
"""DeviceUnregistered's reasons as Cisco's reason codes (`alarms`, DOMAIN.md section 4)."""

HOST_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
"""A host name a syslog line can carry: a host name or an FQDN, like a cluster node's name."""
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
"""English month names whatever the locale (strftime's %b follows it)."""


def syslog_lines(alarms: Iterable[tuple[str, Alarm]], *, start: datetime = DEFAULT_START) -> str:
    """alarms.log's text: one line per (host, alarm), in time order to the millisecond (ties as given), each
    host counting its own sequence numbers from 0.  `start` is the wall-clock time of t = 0 and must carry its
    time zone (a `zoneinfo.ZoneInfo`, say): the header shows local time in that zone, the CiscoLog stamp UTC.
    An alarm unknown to cucm-sim, or a number that is not finite, is a UserError."""
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be timezone-aware (e.g. datetime(..., tzinfo=ZoneInfo('Europe/London')))")
    zone = start.tzinfo
    start_utc = start.astimezone(UTC)
    sequence: dict[str, int] = {}
    lines = []
    for host, alarm in sorted(alarms, key=lambda tagged: _milliseconds(tagged[1].t_s)):
        number = sequence.get(host, 0)
        sequence[host] = number + 1
        at_utc = start_utc + timedelta(milliseconds=_milliseconds(alarm.t_s))
        local = at_utc.astimezone(zone)
        severity = _severity(alarm)
        lines.append(
            f"{_MONTHS[local.month - 1]} {local.day:2d} {local:%H:%M:%S} {host} {FACILITY} {severity} : "
            f"{number}: {host}: {_MONTHS[at_utc.month - 1]} {at_utc.day:02d} {at_utc:%Y %H:%M:%S}."
            f"{at_utc.microsecond // 1000:03d} UTC :  %UC_CALLMANAGER-{severity}-{alarm.name}: "
            f"%{_parameters(alarm)}[AppID={APP_ID}][ClusterID={CLUSTER_ID}][NodeID={host}]: {_TEXT[alarm.name]}\n"
        )
    return "".join(lines)


def syslog_text(result: RunResult, start: datetime = DEFAULT_START, host: str | None = None) -> str:
    """A run's alarms as alarms.log's lines (`syslog_lines`): a cluster's from each node under the node's name,
    a single node's under `host` (default DEFAULT_HOST); "" for a run of hosts and links (no CUCM node).
    `host` names one node, so it is a UserError for a cluster, as is a host name other than letters, digits,
    '_', '.' and '-' (a syslog line's host is one word)."""
    if result.scenario.cluster is not None:
        if host is not None:
            raise UserError([f"a host name ({host!r}) names one node; the lines of the cluster "
                             f"{result.scenario.name!r} carry their own nodes' names"])
        # within a millisecond in node order, as read back from alarms.csv: a run's alarms.log and the
        # lines of its result directory read back (`output.read_run`) are the same bytes
        tagged = [(_milliseconds(alarm.t_s), k, n, node.name, alarm) for k, node in enumerate(result.nodes)
                  for n, alarm in enumerate(node.alarms)]
        return syslog_lines([(name, alarm) for *_key, name, alarm in sorted(tagged, key=lambda item: item[:3])],
                            start=start)
    if not result.scenario.has_node:
        return ""
    host = DEFAULT_HOST if host is None else host
    if not HOST_NAME.fullmatch(host):
        raise UserError([f"host name {host!r}: give 1 to 255 letters, digits, '_', '.' or '-', starting with a "
                         "letter or digit (a syslog line's host is one word)"])
    return syslog_lines([(host, alarm) for alarm in result.alarms], start=start)


def _severity(alarm: Alarm) -> int:
    if alarm.name not in SEVERITY:
        raise UserError([f"alarm {alarm.name} at t={alarm.t_s:.3f} s: not an alarm cucm-sim raises, so it has no "
                         f"syslog line (known: {', '.join(SEVERITY)})"])
    return SEVERITY[alarm.name]


def _parameters(alarm: Alarm) -> str:
    """The `[Name=value]...` block of `alarm`'s parameters (see the module docstring for the values)."""
    first = _CISCO_ORDER.get(alarm.name, ())
    names = [*(name for name in first if name in alarm.params),
             *(name for name in _COLUMN_ORDER if name in alarm.params and name not in first)]
    return "".join(f"[{name}={_value(alarm, name)}]" for name in names)


def _value(alarm: Alarm, name: str) -> str:
    value = alarm.params[name]
    if isinstance(value, str):
        if name == "Reason" and value in REASON_CODES:
            return str(REASON_CODES[value])
        return value.replace("\r", " ").replace("\n", " ")  # one line per alarm, whatever a file held
    if not math.isfinite(value):
        raise UserError([f"alarm {alarm.name} at t={alarm.t_s:.3f} s: {name} is {value}, not a number a syslog "
                         "line can carry"])
    # Cisco's fields are whole numbers: the nearest to alarms.csv's four decimals, a half upwards (so the
    # lines are the same whether made from the run or from its files)
    return str(Decimal(f"{value:.4f}").quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _milliseconds(t_s: float) -> int:
    """`t_s` (s) in whole milliseconds, rounded as alarms.csv writes it."""
    return round(float(f"{t_s:.3f}") * 1000)
