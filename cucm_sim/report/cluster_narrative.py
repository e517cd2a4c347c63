"""The story of a cluster's run in plain words: the cascade, node by node and phone group by phone group.

Pure: `narrate_cluster(scenario, nodes, summary)` turns each node's timeline, alarms and metrics (as
`output` writes and reads them back) into lines of text.  It opens with the cluster (its nodes, its pools and
their CM groups, how phones fail over and come home, the throttling settings and the load); tells in time
order the disturbances, each node's Code Yellow entries and exits and Code Reds, the phones each Code Red
unregistered (how they noticed, where they registered next and how fast, and whether that node absorbed
them or followed into Code Yellow: a cascade) and each CallManagerOnline with the rehoming it started
(`cluster_moves`); and closes with each node's time in each state and calls, the phones' failovers,
rehomes and calls not placed, the phones registered at the end and a verdict.  Numbers are written as the
one-node story writes them (`narrative`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from cucm_sim.report.cluster_moves import Failover, Return, phone_moves
from cucm_sim.report.narrative import (
    compared_ms,
    exit_rule_note,
    exit_words,
    format_duration,
    format_latency_ms,
    format_ms,
    format_ordinal,
    format_rate,
    format_seconds,
    format_share,
    format_t,
    plural,
    whole_ms_note,
)
from cucm_sim.rules.alarms import (
    CALLMANAGER_ONLINE,
    CODE_RED_ENTRY,
    CODE_YELLOW_ENTRY,
    CODE_YELLOW_EXIT,
    DEVICE_CLOSE_MAX_EVENTS_EXCEEDED,
    Alarm,
)
from cucm_sim.rules.throttling import NEVER_CODE_RED_MIN, ThrottlingParams
from cucm_sim.run.cluster import NodeRun
from cucm_sim.scenario.schema import CallSurge, CpuSlowdown, Scenario, SignalBurst

EPISODES_TOLD_PER_NODE: Final = 4
"""A node's first Code Yellow episodes are told one by one (entry, exit or Code Red, the node back online,
the phones' moves); its further ones share one line."""
DISTURBANCES_TOLD: Final = 8
"""Disturbances (by start time) told one by one; the rest share one line."""
_RANK_EVENT, _RANK_DISTURBANCE = 0, 1
_THROTTLING_ALARMS: Final = (CODE_YELLOW_ENTRY, CODE_YELLOW_EXIT, CODE_RED_ENTRY, CALLMANAGER_ONLINE)


@dataclass(frozen=True)
class _Node:
    """A node of the cluster as the story reads it: its run, its settings, its timeline's columns."""

    run: NodeRun
    throttling: ThrottlingParams
    restart_s: float

    @property
    def name(self) -> str:
        return self.run.name

    def column(self, name: str) -> np.ndarray:
        return np.asarray(self.run.timeline[name], dtype=np.float64)

    def rows(self, after_s: float, until_s: float) -> np.ndarray:
        """The rows of the seconds in (after_s, until_s]."""
        t_s = self.column("t_s")
        mask: np.ndarray = (t_s > after_s) & (t_s <= until_s)
        return mask


class _Story:
    """Lines with their time, told in time order (a line's continuation keeps its place)."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, int, int, str]] = []

    def add(self, t_s: float, text: str, rank: int = _RANK_EVENT) -> None:
        self.lines.append((t_s, rank, len(self.lines), text))

    def told(self) -> list[str]:
        return [text for _t, _rank, _seq, text in sorted(self.lines)]


# ------------------------------------------------------------------ public
def narrate_cluster(scenario: Scenario, nodes: Sequence[NodeRun], summary: Mapping[str, Any]) -> list[str]:
    """The story of a cluster's run as lines of text: opening, events in time order, closing (see the module doc).

    `nodes` are the cluster's nodes in order, each with its timeline (`measures.timeline.TIMELINE_COLUMNS`),
    its alarms in time order and its metrics; `summary` is the cluster's summary.json.
    """
    settings = scenario.node_scenarios()
    told = [_Node(run, setting.throttling, setting.node.restart_duration_s)
            for run, setting in zip(nodes, settings, strict=True)]
    assert scenario.cluster is not None
    failovers, returns = phone_moves(nodes, scenario.cluster.failover.rehome_delay_s)
    story = _Story()
    _tell_disturbances(story, scenario)
    _tell_cold_start(story, scenario, told)
    for node in told:
        _tell_node(story, scenario, node, told, failovers, returns)
        _tell_device_closes(story, node)
    events = story.told() or ["Nothing happened: no disturbance, no alarm."]
    return [*_opening(scenario, told), "", *events, "", *_closing(scenario, told, failovers, summary)]


# ------------------------------------------------------------------ opening
def _opening(scenario: Scenario, nodes: Sequence[_Node]) -> list[str]:
    cluster = scenario.cluster
    assert cluster is not None
    devices = scenario.devices
    names = [node.name for node in nodes]
    lines = [f"Run of scenario {scenario.name!r}: {format_duration(float(scenario.duration_s))} simulated, seed "
             f"{scenario.seed}. A cluster of {plural(len(names), 'CUCM node')} ({', '.join(names)}) sharing "
             f"{plural(devices.phone_count, 'SCCP phone')}."]
    for pool in devices.pools:
        roles = ", then ".join(f"{name} ({role})" for name, role in zip(pool.cm_group, ("primary", "secondary",
                                                                                        "tertiary"), strict=False))
        keepalive_s = devices.keepalive_interval_s if pool.keepalive_interval_s is None else pool.keepalive_interval_s
        lines.append(f"Pool {pool.name}: {plural(pool.count, 'phone')} on {roles}; a keepalive every "
                     f"{format_seconds(keepalive_s)}.")
    homes = [sum(pool.count for pool in devices.pools if pool.cm_group[0] == name) for name in names]
    start = "registered with" if devices.registered_at_start else "registering (a cold start) with"
    lines.append("At the start, each phone is " + start + " its group's primary: " + ", ".join(
        f"{name} {count:,}" for name, count in zip(names, homes, strict=True)) + ".")
    lines.append(_failover_rules(scenario))
    lines += _throttling_lines(nodes)
    lines.append(_load_line(scenario, nodes))
    return lines


def _failover_rules(scenario: Scenario) -> str:
    assert scenario.cluster is not None
    failover = scenario.cluster.failover
    spread = format_duration(scenario.devices.registration_spread_s)
    if failover.detection == "tcp_close":
        notice = ("a node's restart closes its phones' TCP connections, so each notices at once (detection "
                  f"tcp_close) and registers with the next node of its group that is up, the phones spread over "
                  f"{spread} (registration_spread_s)")
    else:
        notice = (f"a node that hangs answers no keepalive, so each of its phones notices at its "
                  f"{format_ordinal(failover.missed_keepalives)} unanswered keepalive in a row (detection keepalive, "
                  "missed_keepalives) and then registers with the next node of its group that is up")
    return (f"Failover: {notice}. A phone on a secondary checks its primary every "
            f"{format_seconds(failover.secondary_keepalive_interval_s)} (Station2ndKeepAliveInterval) and goes back "
            f"{format_duration(failover.rehome_delay_s)} after it sees it up (rehome_delay_s).")


def _throttling_lines(nodes: Sequence[_Node]) -> list[str]:
    """One line for the throttling settings every node shares, or one per node where they differ."""
    texts = [_throttling_text(node) for node in nodes]
    if len(set(texts)) == 1:
        return [f"Call throttling on every node: {texts[0]}."]
    return [f"Call throttling on {node.name}: {text}." for node, text in zip(nodes, texts, strict=True)]


def _throttling_text(node: _Node) -> str:
    throttling = node.throttling
    restart = f"a restart takes {format_duration(node.restart_s)} (restart_duration_s)"
    if not throttling.throttling_enabled:
        return f"disabled (System Throttle Sample Size 0 s); {restart}"
    red = (f"never Code Red (Code Yellow Duration {NEVER_CODE_RED_MIN})"
           if throttling.code_yellow_duration_min == NEVER_CODE_RED_MIN else
           f"Code Red after {throttling.code_yellow_duration_min} min in Code Yellow")
    return (f"Code Yellow when the {throttling.system_throttle_sample_size_s}-second average expected delay is "
            f"above {throttling.code_yellow_entry_latency_ms} ms{_sample_rule_note(throttling)}, back to Normal "
            f"{exit_words(throttling)} "
            f"{format_latency_ms(throttling.exit_latency_ms)} ({throttling.code_yellow_exit_latency_pct} %)"
            f"{exit_rule_note(throttling)}, {red}; {restart}{whole_ms_note(throttling)}")


def _sample_rule_note(throttling: ThrottlingParams) -> str:
    """' (sample_rule batch)' for a reading other than the default; '' for consecutive_nonzero."""
    return "" if throttling.sample_rule == "consecutive_nonzero" else f" (sample_rule {throttling.sample_rule})"


def _load_line(scenario: Scenario, nodes: Sequence[_Node]) -> str:
    load = scenario.load
    if load.calls_profile is not None:
        rates = [rate for _t, rate in load.calls_profile]
        calls = (f"call attempts follow a profile between {format_rate(min(rates))} and {format_rate(max(rates))} "
                 "calls/s")
    elif load.calls_per_s:
        calls = f"{format_rate(load.calls_per_s)} call attempts/s"
    else:
        calls = "no call attempts"
    if load.calls_profile is not None or load.calls_per_s:
        calls += " across the cluster, each through the node its phone is registered with"
    backgrounds = [sum(source.signals_per_s for source in setting.load.background)
                   for setting in scenario.node_scenarios()]
    if len(set(backgrounds)) == 1:
        background = f"background {format_rate(backgrounds[0])} signals/s on each node"
    else:
        background = "background " + ", ".join(f"{format_rate(rate)} signals/s on {node.name}"
                                               for node, rate in zip(nodes, backgrounds, strict=True))
    return f"Load: {calls}; {background}."


# ------------------------------------------------------------------ disturbances, cold start
def _tell_disturbances(story: _Story, scenario: Scenario) -> None:
    run_end_s = float(scenario.duration_s)
    ordered = [d for d in sorted(scenario.disturbances, key=lambda d: (d.start_s, d.end_s)) if d.start_s < run_end_s]
    for disturbance in ordered[:DISTURBANCES_TOLD]:
        if isinstance(disturbance, CpuSlowdown):
            began = (f"cpu_slowdown on {disturbance.node}: its router thread now runs at "
                     f"{format_rate(round(100 * disturbance.capacity_factor, 3))} % of its speed")
        elif isinstance(disturbance, SignalBurst):
            began = (f"signal_burst on {disturbance.node}: {format_rate(disturbance.signals_per_s)} extra "
                     f"signals/s in its {disturbance.priority} queue")
        elif isinstance(disturbance, CallSurge):
            began = f"call_surge: {format_rate(disturbance.calls_per_s)} extra call attempts/s across the cluster"
        else:  # pragma: no cover - a disturbance kind of hosts cannot be in a cluster's scenario
            began = f"{disturbance.kind}"
        end_s = disturbance.end_s
        until = f"until {format_t(end_s)}" if end_s < run_end_s else "until the end of the run"
        story.add(disturbance.start_s, f"{format_t(disturbance.start_s)}: {began} ({until}).", _RANK_DISTURBANCE)
        if end_s < run_end_s:
            story.add(end_s, f"{format_t(end_s)}: {began.split(':')[0]} ends.", _RANK_DISTURBANCE)
    rest = ordered[DISTURBANCES_TOLD:]
    if rest:
        story.add(rest[0].start_s, f"{format_t(rest[0].start_s)}: {plural(len(rest), 'more disturbance')} from here "
                  f"to {format_t(rest[-1].start_s)}, not told one by one (see scenario.resolved.yaml).",
                  _RANK_DISTURBANCE)


def _tell_cold_start(story: _Story, scenario: Scenario, nodes: Sequence[_Node]) -> None:
    devices = scenario.devices
    if devices.registered_at_start or not devices.phone_count:
        return
    text = (f"{format_t(0)}: cold start: the {devices.phone_count:,} phones begin registering with their "
            f"primaries over {format_duration(devices.registration_spread_s)} (registration_spread_s)")
    total = np.sum([node.column("registered_devices") for node in nodes], axis=0)
    done = np.flatnonzero(total >= devices.phone_count)
    t_s = nodes[0].column("t_s")
    text += f"; all were registered by {format_t(t_s[int(done[0])])}." if done.size else "."
    story.add(0.0, text, _RANK_DISTURBANCE)


# ------------------------------------------------------------------ a node's episodes
def _tell_node(story: _Story, scenario: Scenario, node: _Node, nodes: Sequence[_Node],
               failovers: Sequence[Failover], returns: Sequence[Return]) -> None:
    throttling = node.throttling
    episodes = 0
    entry: Alarm | None = None
    folded: list[Alarm] = []
    for alarm in node.run.alarms:
        if alarm.name not in _THROTTLING_ALARMS:
            continue
        if alarm.name == CODE_YELLOW_ENTRY:
            entry = alarm
            episodes += 1
        if episodes > EPISODES_TOLD_PER_NODE:
            folded.append(alarm)
            continue
        if alarm.name == CODE_YELLOW_ENTRY:
            story.add(alarm.t_s, f"{format_t(alarm.t_s)}: {node.name} enters Code Yellow: its "
                      f"{throttling.system_throttle_sample_size_s}-second average expected delay "
                      f"({format_ms(_average_ms(alarm, node))}) rose above its entry latency "
                      f"({throttling.code_yellow_entry_latency_ms} ms); calls through {node.name} now get reorder "
                      f"tone.{_cascade(node, alarm.t_s, failovers)}")
        elif alarm.name == CODE_YELLOW_EXIT and entry is not None:
            story.add(alarm.t_s, f"{format_t(alarm.t_s)}: {node.name} is back to Normal (CodeYellowExit) after "
                      f"{format_duration(alarm.t_s - entry.t_s)} in Code Yellow, its average "
                      f"({compared_ms(_average_ms(alarm, node), throttling)}) {exit_words(throttling)} its exit "
                      "latency "
                      f"({format_latency_ms(throttling.exit_latency_ms)}); {_rejected(node, entry.t_s, alarm.t_s)} "
                      "rejected.")
        elif alarm.name == CODE_RED_ENTRY:
            since = f"after {format_duration(alarm.t_s - entry.t_s)} in Code Yellow " if entry is not None else ""
            rejected = _rejected(node, entry.t_s, alarm.t_s) if entry is not None else "no call"
            story.add(alarm.t_s, f"{format_t(alarm.t_s)}: {node.name} enters Code Red {since}(Code Yellow Duration "
                      f"{throttling.code_yellow_duration_min} min; its average, "
                      f"{format_ms(_average_ms(alarm, node))}, still above "
                      f"{format_latency_ms(throttling.exit_latency_ms)}); {rejected} rejected in that episode. Its "
                      f"CallManager service restarts for {format_duration(_restart_s(node, alarm))}: "
                      f"{_queued(alarm)}.")
            failover = next(f for f in failovers if f.node == node.name and f.t_s == alarm.t_s)
            for line in _failover_lines(scenario, failover, nodes):
                story.add(alarm.t_s, line)
        elif alarm.name == CALLMANAGER_ONLINE:
            back = next(r for r in returns if r.node == node.name and r.t_s == alarm.t_s)
            for line in _return_lines(node, alarm, back):
                story.add(alarm.t_s, line)
            if back.rehomes:
                _tell_rehoming(story, scenario, back)
    if folded:
        _tell_folded(story, node, folded)


def _average_ms(alarm: Alarm, node: _Node) -> float:
    value = alarm.params.get("ExpectedAverageDelay")
    if isinstance(value, int | float):
        return float(value)
    row = np.flatnonzero(np.isclose(node.column("t_s"), alarm.t_s))
    return float(node.column("average_expected_delay_ms")[row[0]]) if row.size else math.nan


def _restart_s(node: _Node, red: Alarm) -> float:
    """How long the restart that `red` began lasts (s): its CallManagerOnline's RestartDuration, else the node's
    restart_duration_s."""
    online = next((alarm for alarm in node.run.alarms if alarm.name == CALLMANAGER_ONLINE and alarm.t_s > red.t_s),
                  None)
    duration_s = online.params.get("RestartDuration") if online is not None else None
    return float(duration_s) if isinstance(duration_s, int | float) else node.restart_s


def _rejected(node: _Node, after_s: float, until_s: float) -> str:
    return plural(int(node.column("calls_rejected")[node.rows(after_s, until_s)].sum()), "call")


def _queued(alarm: Alarm) -> str:
    """What the restart loses: the signals in the queues (the alarm's depths), in words."""
    depths = [alarm.params.get(f"{queue}PriorityQueueDepth") for queue in ("High", "Normal", "Low", "Lowest")]
    queued = round(sum(float(depth) for depth in depths if isinstance(depth, int | float)))
    if not queued and any(isinstance(depth, int | float) for depth in depths):
        return "its queues were empty"
    return f"the {queued:,} signals in its queues are lost" if queued else "the signals in its queues are lost"


def _cascade(node: _Node, t_s: float, failovers: Sequence[Failover]) -> str:
    """' It had just taken ...' when this Code Yellow entry at `t_s` is how `node` took another node's phones."""
    for failover in reversed(failovers):
        outcome = _outcome(node, failover)
        if outcome is not None and outcome.entry_s == t_s:
            return (f" It had just taken {plural(len(failover.arrivals_s[node.name]), 'phone')} of "
                    f"{failover.node}'s Code Red at {format_t(failover.t_s)}.")
    return ""


@dataclass(frozen=True)
class _Outcome:
    """How a node took the phones a failover brought it: its peak average while they came (ms), and the Code
    Yellow it entered meanwhile and the Code Red that episode ended in, if any (s)."""

    peak_ms: float
    entry_s: float | None = None
    red_s: float | None = None


def _outcome(node: _Node, failover: Failover) -> _Outcome | None:
    """How `node` took the phones of `failover` (None if none came): the span from the failed node's Code Red to
    the last phone's registration and one throttle sample window more."""
    arrivals = failover.arrivals_s.get(node.name)
    if failover.node == node.name or not arrivals:
        return None
    until_s = arrivals[-1] + node.throttling.system_throttle_sample_size_s
    rows = node.rows(failover.t_s, until_s)
    peak_ms = float(node.column("average_expected_delay_ms")[rows].max()) if rows.any() else 0.0
    alarms = [alarm for alarm in node.run.alarms if alarm.name in _THROTTLING_ALARMS and alarm.t_s > failover.t_s]
    entry = next((alarm for alarm in alarms if alarm.name == CODE_YELLOW_ENTRY), None)
    if entry is None or entry.t_s > until_s:
        return _Outcome(peak_ms)
    end = next((alarm for alarm in alarms if alarm.t_s > entry.t_s and alarm.name in (CODE_YELLOW_EXIT,
                                                                                      CODE_RED_ENTRY)), None)
    red_s = end.t_s if end is not None and end.name == CODE_RED_ENTRY else None
    return _Outcome(peak_ms, entry.t_s, red_s)


def _tell_folded(story: _Story, node: _Node, folded: Sequence[Alarm]) -> None:
    entries = [alarm for alarm in folded if alarm.name == CODE_YELLOW_ENTRY]
    reds = sum(alarm.name == CODE_RED_ENTRY for alarm in folded)
    red = f", {reds:,} of them ending in Code Red" if reds else ""
    first = folded[0].t_s
    story.add(first, f"{format_t(first)} to {format_t(folded[-1].t_s)}: "
              f"{plural(len(entries), 'more Code Yellow episode')} on {node.name}{red}, not told one by one; "
              f"{_rejected(node, first, math.inf)} rejected from here on.")


# ------------------------------------------------------------------ the phones' moves
def _failover_lines(scenario: Scenario, failover: Failover, nodes: Sequence[_Node]) -> list[str]:
    assert scenario.cluster is not None
    rules = scenario.cluster.failover
    name = failover.node
    if not failover.lost:
        return [f"    No phone was registered with {name} when it went down."]
    if rules.detection == "tcp_close":
        noticed = ("its restart closes their TCP connections, so each noticed at once and looked for the next node "
                   f"of its group, the phones spread over {format_duration(scenario.devices.registration_spread_s)}")
    else:
        intervals_s = sorted({_keepalive_s(scenario, pool) for pool in scenario.devices.pools if name in pool.cm_group})
        m = rules.missed_keepalives
        noticed = (f"its process hangs, so each noticed only at its {format_ordinal(m)} unanswered keepalive in a row, "
                   f"{format_seconds((m - 1) * intervals_s[0])} to {format_seconds(m * intervals_s[-1])} later "
                   f"(a keepalive every {' or '.join(format_seconds(s) for s in intervals_s)}), and at once looked "
                   "for the next node of its group")
    lines = [f"    {plural(failover.lost, 'phone')} lost their registration with {name} (DeviceUnregistered, "
             f"ConnectivityError): {noticed}."]
    for node in nodes:
        arrivals = failover.arrivals_s.get(node.name)
        if not arrivals:
            continue
        first, middle, last = arrivals[0], arrivals[len(arrivals) // 2], arrivals[-1]
        where = f"registered next with {name} itself, once it was back" if node.name == name else \
            f"registered next with {node.name}"
        text = (f"    {plural(len(arrivals), 'phone')} {where}: half of them within "
                f"{format_seconds(round(middle - failover.t_s, 1))} of the restart, the first at {format_t(first)}, "
                f"the last at {format_t(last)}.")
        if node.name != name:
            text += _absorbed(node, failover)
        lines.append(text)
    if failover.never_registered:
        lines.append(f"    {plural(failover.never_registered, 'phone')} of them registered with no node before the "
                     "run ended.")
    return lines


def _keepalive_s(scenario: Scenario, pool: Any) -> float:
    interval_s = pool.keepalive_interval_s
    return float(scenario.devices.keepalive_interval_s if interval_s is None else interval_s)


def _absorbed(node: _Node, failover: Failover) -> str:
    """Whether `node` took the phones of `failover` in its stride, in words."""
    outcome = _outcome(node, failover)
    assert outcome is not None
    if outcome.red_s is not None and outcome.entry_s is not None:
        return (f" {node.name} could not absorb them: Code Yellow at {format_t(outcome.entry_s)}, Code Red at "
                f"{format_t(outcome.red_s)} (a cascade).")
    if outcome.entry_s is not None:
        return f" {node.name} took them with throttling: it entered Code Yellow at {format_t(outcome.entry_s)}."
    return (f" {node.name} absorbed them: its average expected delay peaked at {format_ms(outcome.peak_ms)} against "
            f"its entry latency of {node.throttling.code_yellow_entry_latency_ms} ms.")


def _return_lines(node: _Node, online: Alarm, back: Return) -> list[str]:
    red = [alarm.t_s for alarm in node.run.alarms if alarm.name == CODE_RED_ENTRY and alarm.t_s < online.t_s]
    down = f" after {format_duration(online.t_s - red[-1])} down" if red else ""
    lost = online.params.get("SignalsLostInRestart")
    lost_text = f"; {int(lost):,} signals were lost in the restart" if isinstance(lost, int | float) else ""
    down_rows = node.rows(red[-1], online.t_s) if red else node.rows(0, 0)
    failed = int(node.column("calls_attempted")[down_rows].sum())
    failed_text = f", {plural(failed, 'call attempt')} through it failed while it was down" if failed else ""
    lines = [f"{format_t(online.t_s)}: {node.name} is back (CallManagerOnline){down}{lost_text}{failed_text}."]
    if back.from_nowhere_s:
        times = back.from_nowhere_s
        lines.append(f"    {plural(len(times), 'phone')} registered with no node (their group was down, or they were "
                     f"on their way) registered with {node.name} from {format_t(times[0])} to {format_t(times[-1])}.")
    return lines


def _tell_rehoming(story: _Story, scenario: Scenario, back: Return) -> None:
    """The rehoming `back`'s CallManagerOnline started, told when its first phone leaves."""
    assert scenario.cluster is not None
    rules = scenario.cluster.failover
    every = sorted(t_s for times in back.rehomed_s.values() for t_s in times)
    sources = " and ".join(f"{plural(len(times), 'phone')} from {source}" for source, times in back.rehomed_s.items())
    story.add(every[0], f"{format_t(every[0])}: rehoming to {back.node} begins: its phones on other nodes saw it up "
              f"at their first check after its CallManagerOnline at {format_t(back.t_s)} (every "
              f"{format_seconds(rules.secondary_keepalive_interval_s)}) and go back "
              f"{format_duration(rules.rehome_delay_s)} later (rehome_delay_s): {sources} (DeviceUnregistered, reason "
              f"DeviceUnregistered, then DeviceRegistered with {back.node}) until {format_t(every[-1])}, "
              f"{format_duration(round(every[-1] - back.t_s, 1))} after CallManagerOnline.")


# ------------------------------------------------------------------ SCCP device throttling
def _tell_device_closes(story: _Story, node: _Node) -> None:
    closes = [alarm for alarm in node.run.alarms if alarm.name == DEVICE_CLOSE_MAX_EVENTS_EXCEEDED]
    if not closes:
        return
    phones = {str(alarm.params.get("DeviceName", "")) for alarm in closes}
    limit = closes[0].params.get("MaxEventsAllowed")
    over = f" (more than {limit:,} events within 5 s)" if isinstance(limit, int) else ""
    story.add(closes[0].t_s, f"{format_t(closes[0].t_s)}: SCCP device throttling on {node.name} closes "
              f"{plural(len(closes), 'connection')} of {plural(len(phones), 'phone')}{over} "
              f"({DEVICE_CLOSE_MAX_EVENTS_EXCEEDED}), the last at {format_t(closes[-1].t_s)}; each registers with "
              f"{node.name} again after throttled_reregister_delay_s.")


# ------------------------------------------------------------------ closing
def _closing(scenario: Scenario, nodes: Sequence[_Node], failovers: Sequence[Failover],
             summary: Mapping[str, Any]) -> list[str]:
    lines = [f"In all, over {format_duration(float(scenario.duration_s))}:"]
    for node in nodes:
        metrics = node.run.summary
        seconds = metrics["time_in_state_s"]
        attempted = int(metrics["calls_attempted"])
        rejected = int(metrics["calls_rejected_throttled"])
        average = node.column("average_expected_delay_ms")
        peak = int(np.argmax(average))
        lines.append(f"{node.name}: Normal {format_duration(float(seconds['Normal']))}, Code Yellow "
                     f"{format_duration(float(seconds['CodeYellow']))}, Code Red "
                     f"{format_duration(float(seconds['CodeRed']))}; {attempted:,} call attempts through it, "
                     f"{rejected:,} rejected by call throttling ({format_share(rejected, attempted)}), "
                     f"{int(metrics['calls_failed_node_down']):,} failed while it was down; highest average expected "
                     f"delay {format_ms(float(average[peak]))} at {format_t(float(node.column('t_s')[peak]))}.")
    phones = scenario.devices.phone_count
    lines.append(f"Phones: {plural(int(summary['phone_failovers']), 'failover')} and "
                 f"{plural(int(summary['phone_rehomes']), 'rehome')}; "
                 f"{plural(int(summary['calls_not_placed']), 'call')} could not be placed (phones registered with no "
                 "node: calls_not_placed).")
    registered = np.sum([node.column("registered_devices") for node in nodes], axis=0)
    if phones and registered.size and registered.min() < phones:
        worst = int(np.argmin(registered))
        lines.append(f"At worst, {int(phones - registered[worst]):,} of the {phones:,} phones were registered with no "
                     f"node ({format_t(nodes[0].column('t_s')[worst])}).")
    dial_tone = summary.get("dial_tone_delay_ms")
    if isinstance(dial_tone, Mapping) and isinstance(dial_tone.get("p95"), int | float):
        lines.append(f"Dial tone (calls admitted, every node): p95 {format_ms(float(dial_tone['p95']))}, max "
                     f"{format_ms(float(dial_tone['max']))}.")
    lines.append(_end_state(scenario, nodes, summary))
    lines.append(_verdict(nodes, failovers, summary))
    return lines


def _end_state(scenario: Scenario, nodes: Sequence[_Node], summary: Mapping[str, Any]) -> str:
    phones = scenario.devices.phone_count
    on = ", ".join(f"{node.name} {int(node.run.summary['registered_devices_at_end']):,}" for node in nodes)
    missing = int(summary["phones_unregistered_at_end"])
    if not missing:
        return f"At the end, all {phones:,} phones are registered: {on}."
    return f"At the end, {phones - missing:,} of the {phones:,} phones are registered ({on}); {missing:,} with no node."


def _verdict(nodes: Sequence[_Node], failovers: Sequence[Failover], summary: Mapping[str, Any]) -> str:
    first_red_s = {failover.node: failover.t_s for failover in reversed(failovers)}
    restarted = sorted(first_red_s, key=first_red_s.__getitem__)
    if not restarted:
        yellow = [node.name for node in nodes if node.run.summary["code_yellow_entries"]]
        if yellow:
            return (f"Verdict: throttling held: {_names(yellow)} went into Code Yellow and rejected "
                    f"{plural(int(summary['calls_rejected_throttled']), 'call')}, but no node reached Code Red and no "
                    "phone had to fail over.")
        return "Verdict: no node throttled and no phone had to move."
    outcomes = [(node.name, outcome) for failover in failovers for node in nodes
                if (outcome := _outcome(node, failover)) is not None]
    fell = list(dict.fromkeys(name for name, outcome in outcomes if outcome.red_s is not None))
    totals = (f"{plural(len(failovers), 'Code Red')} and {plural(int(summary['phone_failovers']), 'phone failover')}"
              " in all")
    first = f"{restarted[0]} restarted (Code Red) first, at {format_t(first_red_s[restarted[0]])}"
    if fell:
        again = [f"{name} again" if name == restarted[0] else name for name in fell]
        return f"Verdict: a cascade: {first}, and the phones that failed over took down {_names(again)}; {totals}."
    if len(restarted) > 1:
        return (f"Verdict: {_names(restarted)} restarted (Code Red), each under its own load: no node went down under "
                f"phones that failed over to it; {totals}.")
    receivers = list(dict.fromkeys(name for name, _how in outcomes))
    throttled = list(dict.fromkeys(name for name, outcome in outcomes if outcome.entry_s is not None))
    took = (f"its phones failed over to {_names(receivers)}, which took them" + (
        f" ({_names(throttled)} with a spell of Code Yellow)" if throttled else " without Code Yellow")
        if receivers else "no phone had another node to go to")
    home = f", and {plural(int(summary['phone_rehomes']), 'phone')} came home" if summary["phone_rehomes"] else ""
    return f"Verdict: {restarted[0]} restarted (Code Red); {took}{home}."


def _names(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"
