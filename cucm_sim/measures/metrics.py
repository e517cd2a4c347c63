"""The run metrics: every number in summary.json that an `expect:` block may bound, with unit and meaning.

A metric is named by its dotted path into the summary (`dial_tone_delay_ms.p95`,
`time_in_state_s.CodeYellow`).  The catalogue below is the one place metric names are defined; the
schema checks `expect:` keys against it, `cucm-sim metrics` prints it and a test keeps it equal to what
the runner writes.  Derived metrics (fractions, first-transition times, the longest Code Yellow episode)
are computed once here, by `derived_metrics`, and written into the summary beside the raw counts, so
summary.json, `expect:` and sweeps all see the same numbers.  A metric is None when it did not happen
(no Code Red, no calls to take a percentile of); a None value fails every bound.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cucm_sim.rules.alarms import CODE_RED_ENTRY, CODE_YELLOW_ENTRY, CODE_YELLOW_EXIT, Alarm
from cucm_sim.rules.priorities import PRIORITIES
from cucm_sim.rules.throttling import ThrottleState


@dataclass(frozen=True)
class Metric:
    """One number of the summary: its dotted path, unit and meaning."""

    path: str
    unit: str
    description: str


STATES: Final = tuple(state.value for state in ThrottleState)
_DELAY_STATS: Final = {
    "count": ("count", "how many values"),
    "mean": ("ms", "mean"),
    "p50": ("ms", "median"),
    "p95": ("ms", "95th percentile"),
    "p99": ("ms", "99th percentile"),
    "max": ("ms", "largest"),
}
_QUANTILES: Final = ("p50", "p95", "p99")
"""The keys of `_DELAY_STATS` that `LogHistogram.quantile` makes (count, mean and max are exact)."""


def _delay_metrics(prefix: str, what: str) -> list[Metric]:
    return [Metric(f"{prefix}.{key}", unit, f"{text} of {what}") for key, (unit, text) in _DELAY_STATS.items()]


DERIVED: Final[tuple[Metric, ...]] = (
    Metric("calls_rejected_fraction", "fraction",
           "calls rejected by call throttling (reorder tone) / calls attempted; 0 when no calls"),
    Metric("calls_lost_fraction", "fraction",
           "calls rejected by throttling or failed while the node restarted / calls attempted; 0 when no calls"),
    Metric("code_yellow_time_fraction", "fraction", "time in Code Yellow / run duration"),
    Metric("first_code_yellow_entry_s", "s", "time of the first CodeYellowEntry; None when there was none"),
    Metric("first_code_red_entry_s", "s", "time of the first CodeRedEntry; None when there was none"),
    Metric("longest_code_yellow_s", "s",
           "longest Code Yellow episode, entry to exit, Code Red or the run's end; 0 when there was none"),
)

METRICS: Final[tuple[Metric, ...]] = (
    *(Metric(f"time_in_state_s.{state}", "s", f"simulated seconds spent in {state}") for state in STATES),
    Metric("code_yellow_entries", "count", "CodeYellowEntry alarms"),
    Metric("code_yellow_exits", "count", "CodeYellowExit alarms"),
    Metric("code_red_entries", "count", "CodeRedEntry alarms (each restarts the CallManager service)"),
    Metric("calls_attempted", "count", "call attempts (off-hook) offered to the node"),
    Metric("calls_accepted", "count", "call attempts that got dial tone"),
    Metric("calls_rejected_throttled", "count", "call attempts rejected in Code Yellow (reorder tone)"),
    Metric("calls_failed_node_down", "count", "call attempts that failed while the node restarted"),
    *_delay_metrics("dial_tone_delay_ms", "the dial-tone delay of accepted calls (off-hook to dial tone)"),
    Metric("signals_processed", "count", "SDL signals the router thread handled"),
    Metric("signals_lost_restart", "count", "signals queued when the node restarted (lost)"),
    Metric("signals_dropped_node_down", "count", "signals that arrived while the node was down"),
    *_delay_metrics("signal_wait_ms", "the wait of every SDL signal in its queue"),
    *(
        Metric(f"signal_wait_ms_by_priority.{priority}.{key}", unit, f"{text} of the {priority}-priority queue wait")
        for priority in PRIORITIES
        for key, (unit, text) in _DELAY_STATS.items()
        if key in ("count", "mean", "p95")
    ),
    Metric("max_average_expected_delay_ms", "ms", "largest AverageExpectedDelay (the throttling window's mean)"),
    Metric("skinny_devices_throttled", "count", "SCCP devices closed for exceeding Max Events Allowed"),
    Metric("registered_devices_at_end", "count", "devices registered when the run ended"),
    *DERIVED,
)

METRIC_PATHS: Final[frozenset[str]] = frozenset(metric.path for metric in METRICS)
"""The CUCM node's metrics (a scenario with a node: every one is in its summary)."""

HOST_METRICS: Final[tuple[Metric, ...]] = (
    Metric("heartbeats_sent", "count", "heartbeats the links' senders sent"),
    Metric("heartbeats_received", "count", "heartbeats the receivers' NICs and TCP handed up to the application"),
    Metric("heartbeats_missed", "count", "receiver checks that found no heartbeat since the one before"),
    Metric("sessions_closed", "count", "sessions closed (missed heartbeats, or a TCP sender giving up)"),
    Metric("time_in_partial_service_s", "s", "time with a session closed (the peripheral in partial service), summed "
           "over links"),
    Metric("packets_dropped", "count", "packets the hosts' NICs dropped for a full receive ring (Packets Received "
           "Discarded)"),
    Metric("max_dpc_rate", "count", "largest DPC Rate reading (DPCs queued in one clock tick) of any processor"),
)
HOST_METRIC_PATHS: Final[frozenset[str]] = frozenset(metric.path for metric in HOST_METRICS)
"""The metrics of a scenario of hosts and links (every one is in its summary)."""
ANY_METRIC_PATHS: Final[frozenset[str]] = METRIC_PATHS | HOST_METRIC_PATHS

LINK_METRICS: Final[tuple[Metric, ...]] = (
    Metric("heartbeats_sent", "count", "heartbeats this link's sender sent"),
    Metric("heartbeats_received", "count", "of them, handed up to the receiver's application"),
    Metric("heartbeats_missed", "count", "this link's receiver checks that found no heartbeat"),
    Metric("sessions_closed", "count", "times this link's session closed"),
    Metric("time_in_partial_service_s", "s", "time this link's session was closed"),
    Metric("retransmissions", "count", "TCP segments this link's sender sent again"),
    Metric("segments_dropped", "count", "this link's packets dropped at the receiver's NIC (every send counted)"),
)
"""Each link's metrics, at links.NAME.METRIC."""
_PER_LINK = re.compile(r"links\.(.+)\.(" + "|".join(metric.path for metric in LINK_METRICS) + ")")


def link_metric(path: str) -> tuple[str, str] | None:
    """(link name, metric) of a per-link path `links.NAME.METRIC`; None for any other path."""
    found = _PER_LINK.fullmatch(path)
    return (found.group(1), found.group(2)) if found else None


CLUSTER_METRICS: Final[tuple[Metric, ...]] = (
    Metric("calls_not_placed", "count", "call attempts of phones registered with no node (they cannot call)"),
    Metric("phone_failovers", "count", "times a phone left a node that went down for another node of its group"),
    Metric("phone_rehomes", "count", "times a phone on a secondary went back to its primary"),
    Metric("phones_unregistered_at_end", "count", "phones registered with no node when the run ended"),
)
"""A cluster's own metrics, beside the node metrics (whose values in a cluster are its totals)."""
CLUSTER_METRIC_PATHS: Final[frozenset[str]] = frozenset(metric.path for metric in CLUSTER_METRICS)
_PER_NODE = re.compile(r"nodes\.(.+)\.(" + "|".join(re.escape(metric.path) for metric in METRICS) + ")")


def node_metric(path: str) -> tuple[str, str] | None:
    """(node name, metric) of a per-node path `nodes.NAME.METRIC` (a cluster's); None for any other path."""
    found = _PER_NODE.fullmatch(path)
    return (found.group(1), found.group(2)) if found else None


def is_metric(path: str) -> bool:
    """Whether `path` names a metric of some scenario (a per-link or per-node path names one of a scenario with
    that link or node)."""
    return (path in ANY_METRIC_PATHS or path in CLUSTER_METRIC_PATHS or link_metric(path) is not None
            or node_metric(path) is not None)


def catalogue(has_node: bool, links: Sequence[str] = (), nodes: Sequence[str] = ()) -> tuple[Metric, ...]:
    """The metrics of a scenario with a CUCM node (a cluster of `nodes`: its totals, its own metrics and each
    node's), or of one of hosts and `links` alone."""
    if nodes:
        return METRICS + CLUSTER_METRICS + tuple(
            Metric(f"nodes.{node}.{metric.path}", metric.unit, f"{metric.description}, at node {node}")
            for node in nodes for metric in METRICS)
    if has_node:
        return METRICS
    return HOST_METRICS + tuple(Metric(f"links.{link}.{metric.path}", metric.unit, metric.description)
                                for link in links for metric in LINK_METRICS)

HISTOGRAM_QUANTILES: Final[frozenset[str]] = frozenset(
    metric.path for metric in METRICS if metric.path.rsplit(".", 1)[-1] in _QUANTILES
)
"""The metrics that are quantiles of a `stats.LogHistogram` (the p50 / p95 / p99 of the delays and waits):
each is within `stats.QUANTILE_RELATIVE_RESOLUTION` of the exact value.  Every other metric is exact."""


def lookup(summary: Mapping[str, Any], path: str) -> float | None:
    """The value of metric `path` in `summary` (None when it did not happen); KeyError for unknown paths.

    A per-node path (`nodes.NAME.METRIC`) is read at `summary["nodes"][NAME]` and a per-link one
    (`links.NAME.METRIC`) at `summary["links"][NAME]`, then the metric's own dotted path: a node's or a link's
    name may hold dots (`cm1.site`), so the path is never simply split.  KeyError too when the summary has no
    such node or link (a one-node run has no `nodes`)."""
    per_node, per_link = node_metric(path), link_metric(path)
    value: Any = summary
    if per_node is not None:
        name, metric = per_node
        value = _named(summary, "nodes", name, path)
    elif per_link is not None:
        name, metric = per_link
        value = _named(summary, "links", name, path)
    elif path in ANY_METRIC_PATHS or path in CLUSTER_METRIC_PATHS:
        metric = path
    else:
        raise KeyError(f"unknown metric {path!r}")
    for part in metric.split("."):
        value = value[part]
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise TypeError(f"metric {path!r} is {value!r}, not a number")
    return value


def _named(summary: Mapping[str, Any], section: str, name: str, path: str) -> Any:
    """`summary[section][name]`, a node's or a link's own metrics; KeyError naming `path` when there is none."""
    parts = summary.get(section)
    if not isinstance(parts, Mapping) or name not in parts:
        raise KeyError(f"metric {path!r}: the summary has no {section[:-1]} named {name!r}")
    return parts[name]


def derived_metrics(summary: Mapping[str, Any], alarms: Sequence[Alarm]) -> dict[str, float | None]:
    """The DERIVED metrics of a run from its raw summary counts and its alarms (times in s)."""
    attempted = summary["calls_attempted"]
    rejected = summary["calls_rejected_throttled"]
    lost = rejected + summary["calls_failed_node_down"]
    entries = [alarm.t_s for alarm in alarms if alarm.name == CODE_YELLOW_ENTRY]
    reds = [alarm.t_s for alarm in alarms if alarm.name == CODE_RED_ENTRY]
    return {
        "calls_rejected_fraction": rejected / attempted if attempted else 0.0,
        "calls_lost_fraction": lost / attempted if attempted else 0.0,
        "code_yellow_time_fraction": summary["time_in_state_s"]["CodeYellow"] / summary["duration_s"],
        "first_code_yellow_entry_s": entries[0] if entries else None,
        "first_code_red_entry_s": reds[0] if reds else None,
        "longest_code_yellow_s": _longest_code_yellow_s(alarms, float(summary["duration_s"])),
    }


def _longest_code_yellow_s(alarms: Sequence[Alarm], duration_s: float) -> float:
    longest_s = 0.0
    entered_s: float | None = None
    for alarm in alarms:
        if alarm.name == CODE_YELLOW_ENTRY:
            entered_s = alarm.t_s
        elif alarm.name in (CODE_YELLOW_EXIT, CODE_RED_ENTRY) and entered_s is not None:
            longest_s = max(longest_s, alarm.t_s - entered_s)
            entered_s = None
    if entered_s is not None:
        longest_s = max(longest_s, duration_s - entered_s)
    return longest_s
