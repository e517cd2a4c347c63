"""The story of a hosts-and-links run in plain words: the storm, the starved processor, the full ring, the
missed heartbeats, the closed session and the way back.

Pure: `narrate_hosts(scenario, timeline, log, summary)` turns what a run produced into lines of text
(`output` writes them to narrative.txt; `explain` prints them from the files read back).  It opens with
the hosts and links in words, tells each DPC storm with the DPC Rate and % DPC Time it caused, the seconds
a ring overflowed, each host's longest silence in its log, each link's missed heartbeats and every
session closed and opened again (quoting the log lines), and closes with a verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from cucm_sim.host.host import LogLine
from cucm_sim.report.narrative import format_seconds, format_t
from cucm_sim.scenario.hosts import DpcStorm, Link
from cucm_sim.scenario.schema import Scenario

LOG_GAP_TOLD_S: Final = 2.0
"""A host's longest silence in its log is told when it is at least this long (s)."""
CLOSES_TOLD: Final = 5
"""Session closes told one by one per link; the rest share one line."""


def narrate_hosts(scenario: Scenario, timeline: Mapping[str, np.ndarray], log: Sequence[LogLine],
                  summary: Mapping[str, Any]) -> list[str]:
    """The run's story, line by line (see the module doc)."""
    lines = [f"Run of scenario '{scenario.name}': {scenario.duration_s:,} s simulated, seed {scenario.seed}; "
             "hosts and links only (no CUCM node)."]
    for host in scenario.hosts:
        rss = ("RSS on: one receive ring per processor" if host.rss else
               f"RSS off: every receive DPC on processor {host.interrupt_processor}")
        lines.append(f"Host {host.name}: {host.processors} processors, {rss}, {host.receive_descriptors} receive "
                     f"descriptors per ring; its application runs on processor {host.app_processor}.")
    for link in scenario.links:
        lines.append(f"Link {link.name}: {link.sender} -> {link.receiver} over {link.transport.upper()}, a heartbeat "
                     f"every {format_seconds(link.heartbeat_interval_s)}, closed after "
                     f"{link.missed_heartbeats_to_close} missed; {link.messages_per_s:g} other messages/s.")
    lines.append("")
    told: list[tuple[float, str]] = []  # (time, line): the events, told in time order
    for storm in (d for d in scenario.disturbances if isinstance(d, DpcStorm)):
        told += _tell_storm(scenario, storm, timeline)
    for host in scenario.hosts:
        told += _tell_drops(host.name, timeline)
        told += _tell_log_gap(host.name, log)
    for link in scenario.links:
        told += _tell_link(link.name, log)
        told += _tell_closes(link, timeline)
    lines += [line for _, line in sorted(told, key=lambda item: item[0])]
    lines += [_link_totals(link.name, summary["links"][link.name]) for link in scenario.links]
    lines += ["", _verdict(summary)]
    return lines


def _tell_storm(scenario: Scenario, storm: DpcStorm, timeline: Mapping[str, np.ndarray]) -> list[tuple[float, str]]:
    host = next(h for h in scenario.hosts if h.name == storm.host)
    processor = host.interrupt_processor if storm.processor is None else storm.processor
    rows = (timeline["t_s"] > storm.start_s) & (timeline["t_s"] <= storm.end_s)
    rate = timeline[f"{host.name}.cpu{processor}.dpc_rate"]
    busy = timeline[f"{host.name}.cpu{processor}.dpc_time_pct"]
    load = storm.dpc_rate * storm.dpc_cost_us / (host.tick_ms * 1000.0)
    before = rate[timeline["t_s"] <= storm.start_s]
    line = (f"{format_t(storm.start_s)}: a DPC storm on {host.name} processor {processor}: {storm.dpc_rate:g} DPCs "
            f"per {host.tick_ms:g}-ms tick of {storm.dpc_cost_us:g} us each, {load:.0%} of the processor, until "
            f"{format_t(storm.end_s)}.")
    if rows.any():
        line += (f" DPC Rate read {int(rate[rows].max())} at most (before it: {int(before.max()) if len(before) else 0}"
                 f"), % DPC Time {busy[rows].max():.0f} %.")
    after = np.flatnonzero((timeline["t_s"] > storm.start_s) & (busy >= 99.5))
    if len(after):
        line += (f" The processor ran nothing but DPCs from {format_t(timeline['t_s'][after[0]] - 1)} to "
                 f"{format_t(timeline['t_s'][after[-1]])}: its queue outlasted the storm.")
    return [(storm.start_s, line)]


def _tell_drops(host: str, timeline: Mapping[str, np.ndarray]) -> list[tuple[float, str]]:
    dropped = timeline[f"{host}.packets_dropped"]
    seconds = np.flatnonzero(dropped > 0)
    if not len(seconds):
        return []
    t_s = timeline["t_s"]
    first_s, last_s = t_s[seconds[0]] - 1, t_s[seconds[-1]]
    return [(first_s, f"{format_t(first_s)} .. {format_t(last_s)}: {host}'s receive ring was full in "
            f"{len(seconds)} seconds; {int(dropped.sum()):,} packets dropped (Packets Received Discarded).")]


def _tell_log_gap(host: str, log: Sequence[LogLine]) -> list[tuple[float, str]]:
    times = [line.t_s for line in log if line.host == host]
    if len(times) < 2:
        return []
    gaps = np.diff(times)
    k = int(np.argmax(gaps))
    if gaps[k] < LOG_GAP_TOLD_S:
        return []
    return [(times[k], f"{format_t(times[k])} .. {format_t(times[k + 1])}: {host} wrote nothing to its log for "
            f"{format_seconds(round(float(gaps[k]), 1))}: its application's processor was taken by DPCs (the seed's "
            "log gap).")]


def _tell_link(link: str, log: Sequence[LogLine]) -> list[tuple[float, str]]:
    told = []
    quoted = ("[id:2007]", "gives the connection up", "TCP connection to VRU has been broken")
    lines = [line for line in log if any(mark in line.text for mark in quoted)]
    for line in lines[:CLOSES_TOLD]:
        told.append((line.t_s, f"{format_t(line.t_s)}: {line.host} logs \"{line.text}\""))
    if len(lines) > CLOSES_TOLD:
        told.append((lines[CLOSES_TOLD].t_s, f"... and {len(lines) - CLOSES_TOLD} more such lines."))
    for line in log:
        if line.text.startswith(f"[cucm-sim] session {link} "):
            told.append((line.t_s, f"{format_t(line.t_s)}: the session is open again; full service."))
            break
    return told


def _tell_closes(link: Link, timeline: Mapping[str, np.ndarray]) -> list[tuple[float, str]]:
    """The seconds in which the session closed, from the timeline (the log lines may come later)."""
    is_open = timeline[f"{link.name}.session_open"] > 0.5
    closed = np.flatnonzero(~is_open[1:] & is_open[:-1]) + 1
    if len(is_open) and not is_open[0]:
        closed = np.concatenate(([0], closed))
    t_s = timeline["t_s"]
    return [(t_s[k] - 1, f"{format_t(t_s[k] - 1)} .. {format_t(t_s[k])}: the session {link.name} closed (at "
             f"{link.missed_heartbeats_to_close} missed heartbeats, or the sender giving up); partial service "
             "until it is open again.") for k in closed[:CLOSES_TOLD]]


def _link_totals(link: str, counts: Mapping[str, Any]) -> str:
    return (f"Link {link}: {counts['heartbeats_sent']:,} heartbeats sent, {counts['heartbeats_received']:,} "
            f"received, {counts['heartbeats_missed']:,} missed; {counts['sessions_closed']} "
            f"session{'s' if counts['sessions_closed'] != 1 else ''} closed, "
            f"{format_seconds(round(counts['time_in_partial_service_s'], 1))} in partial service; "
            f"{counts['retransmissions']:,} TCP retransmissions.")


def _verdict(summary: Mapping[str, Any]) -> str:
    if summary["sessions_closed"]:
        return (f"Verdict: the storm cost {summary['heartbeats_missed']} missed heartbeats and "
                f"{summary['sessions_closed']} closed session{'s' if summary['sessions_closed'] != 1 else ''}: "
                f"{format_seconds(round(summary['time_in_partial_service_s'], 1))} of partial service.")
    if summary["heartbeats_missed"]:
        return (f"Verdict: {summary['heartbeats_missed']} heartbeats missed, but never enough in a row to close a "
                "session.")
    return "Verdict: no heartbeat missed; every session stayed open."
