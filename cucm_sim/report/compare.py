r"""A run against a Perfmon recording of the real node: the same counters side by side, and the Code Yellow
episodes of each side matched in time (what `cucm-sim compare` prints and writes; `compare_plot` draws it).

**Counters** (`COMPARED`, under Cisco's names): "Cisco CallManager System Performance" AverageExpectedDelay,
CodeYellowEntryExit, CodeRedEntryExit, QueueSignalsPresent 1-High..4-Lowest, QueueSignalsProcessed Total and
CallsRejectedDueToThrottling, and "Cisco CallManager" CallsAttempted.  The recording's are read from one host
(`choose_host`); a counter it lacks is left out (AverageExpectedDelay it must have).  The simulated side is
the run's own counters as `export --format perfmon` defines them (`perfmon_export.perfmon_counters`), so a
name means the same thing on both sides.

**Time.** The recording's row taken `e` seconds after its first row is simulated second `e + offset_s`
(`offset_s` 0 unless told otherwise).  Only the rows inside the run, seconds 0..duration, are compared (the
overlap); the simulated counters are read at each of those rows' times (the whole second at or before it,
which is what a sampler would have read).  Cumulative counters (CallsAttempted, CallsRejectedDueToThrottling)
are compared as rates: the rise between two consecutive rows over their interval; a fall (a real counter
starts again from 0 when the service restarts) leaves that interval unknown, on the recorded side.

**Code Yellow episodes.**  Recorded ones come from CodeYellowEntryExit at the recording's sample resolution:
an entry happened somewhere between the last sample reading 0 and the first reading 1; the first 1 is given
as the entry (`entry_s`) and the 0 before it as its lower bound (`entry_after_s`); an exit likewise, at the
first sample reading 0.  A blank cell is skipped: the bracket around it widens.  Simulated episodes come from
the run's alarms, to the second: CodeYellowEntry to CodeYellowExit, or to CodeRedEntry (the episode ended in
Code Red), or open at the run's end.  To compare like with like, the simulated CodeYellowEntryExit is read at
the same rows as the recorded one; simulated episodes those samples cannot tell apart (an exit and a new
entry between two samples) make one row, from the first's entry to the last's exit (`simulated_episodes`
counts them), and a simulated episode between two samples that no sample sees is listed as not visible at
that sampling.  Recorded and simulated episodes are matched one to one by their overlap on the sample rows,
the largest overlap first.  A difference is recorded minus simulated (positive: the recording is later).

**Statistics** (`CompareSummary`): episodes matched, the mean absolute entry and exit differences over the
matched pairs whose times are both known, and AverageExpectedDelay's RMSE and Pearson correlation over the
overlap's rows where the recording has a value.

**Files** (`write_comparison`): compare.png (`compare_plot`) and compare.csv (`CSV_COLUMNS`, one row per
episode row), each written atomically (`files`).  An existing compare.png or compare.csv is replaced only if
compare wrote it (its PNG Software text, its CSV header); anything else in its place is refused.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from cucm_sim.errors import RecordingError, UserError
from cucm_sim.perfmon import counters as names
from cucm_sim.perfmon.counters import CounterPath
from cucm_sim.perfmon.pdh_csv import Finding, Recording, read_header, read_pdh_csv
from cucm_sim.report.csv_text import csv_text
from cucm_sim.report.files import write_bytes_atomically, write_text_atomically
from cucm_sim.report.formats import csv_cell
from cucm_sim.report.perfmon_export import PerfmonOptions, perfmon_counters
from cucm_sim.rules.alarms import CODE_RED_ENTRY, CODE_YELLOW_ENTRY, CODE_YELLOW_EXIT, Alarm
from cucm_sim.rules.throttling import ThrottlingParams
from cucm_sim.run.simulation import RunResult

SYSTEM: Final = names.SYSTEM_PERFORMANCE


@dataclass(frozen=True)
class CounterSpec:
    """One counter compared: its object and name, the unit it is shown in, and whether it is a running total
    (shown as a rate per second)."""

    object: str
    counter: str
    unit: str
    cumulative: bool = False

    @property
    def name(self) -> str:
        r"""Cisco's name without the host: `Object\Counter`."""
        return f"{self.object}\\{self.counter}"


AVERAGE_EXPECTED_DELAY: Final = CounterSpec(SYSTEM, names.AVERAGE_EXPECTED_DELAY, "ms")
CODE_YELLOW: Final = CounterSpec(SYSTEM, names.CODE_YELLOW_ENTRY_EXIT, "0/1")
CODE_RED: Final = CounterSpec(SYSTEM, names.CODE_RED_ENTRY_EXIT, "0/1")
QUEUES_PRESENT: Final = tuple(CounterSpec(SYSTEM, names.queue_signals_present(q), "signals") for q in range(4))
PROCESSED_TOTAL: Final = CounterSpec(SYSTEM, names.queue_signals_processed(None), "signals/s")
CALLS_ATTEMPTED: Final = CounterSpec(names.CALLMANAGER, names.CALLS_ATTEMPTED, "calls/s", cumulative=True)
CALLS_REJECTED: Final = CounterSpec(SYSTEM, names.CALLS_REJECTED, "calls/s", cumulative=True)
COMPARED: Final = (AVERAGE_EXPECTED_DELAY, CODE_YELLOW, CODE_RED, *QUEUES_PRESENT, PROCESSED_TOTAL,
                   CALLS_ATTEMPTED, CALLS_REJECTED)
"""Every counter compared, in the order the figure and the messages take them."""

TIME_TOLERANCE_S: Final = 1e-6
"""A row this close to a whole second (or to the run's ends) is taken as on it (time stamps are to the ms)."""

CSV_COLUMNS: Final = (
    "recorded_entry_s", "recorded_entry_after_s", "simulated_entry_s", "entry_difference_s",
    "recorded_exit_s", "recorded_exit_after_s", "simulated_exit_s", "exit_difference_s",
    "recorded_duration_s", "simulated_duration_s", "simulated_episodes", "recorded_entry_line",
    "recorded_exit_line", "note",
)
"""compare.csv's header (its first line also tells a file compare wrote from any other)."""


# ----------------------------------------------------------------------------------------------- the recording
@dataclass(frozen=True)
class HostRecording:
    """The compared counters of one host of a recording: those it has (`recording.paths`, in `COMPARED`
    order) and those it lacks."""

    recording: Recording
    host: str
    present: tuple[CounterSpec, ...]
    missing: tuple[CounterSpec, ...]

    def values(self, spec: CounterSpec) -> np.ndarray | None:
        """The counter's samples (NaN where blank), or None when the recording lacks it."""
        if spec not in self.present:
            return None
        return self.recording.column(self.present.index(spec))


def _has(paths: Sequence[CounterPath], host: str, spec: CounterSpec) -> CounterPath | None:
    found = [path for path in paths if path.host.casefold() == host.casefold()
             and path.object.casefold() == spec.object.casefold()
             and path.counter.casefold() == spec.counter.casefold()]
    return found[0] if found else None


def choose_host(paths: Sequence[CounterPath], source: str, host: str | None, node_names: Sequence[str],
                node: str | None) -> str:
    """The host of the recording to compare: `host` if given; else the only host with AverageExpectedDelay;
    else the one named like the cluster node asked for (`node`).  UserError when there is none or no telling."""
    candidates = list(dict.fromkeys(path.host for path in paths if _has([path], path.host, AVERAGE_EXPECTED_DELAY)))
    if host is not None:
        if any(candidate.casefold() == host.casefold() for candidate in candidates):
            return next(candidate for candidate in candidates if candidate.casefold() == host.casefold())
        hosts = list(dict.fromkeys(path.host for path in paths))
        what = (f"its hosts with {AVERAGE_EXPECTED_DELAY.name}: {', '.join(candidates)}" if candidates else
                f"no host has {AVERAGE_EXPECTED_DELAY.name}")
        raise RecordingError([f"{source}: --host {host!r}: " + (
            f"that host has no {AVERAGE_EXPECTED_DELAY.name}; {what}" if host.casefold() in
            {known.casefold() for known in hosts} else f"no such host in the recording; {what}")])
    if not candidates:
        raise RecordingError([f"{source}: no counter {AVERAGE_EXPECTED_DELAY.name} (on any host): compare needs "
                              "it; record the 'Cisco CallManager System Performance' object in RTMT or Perfmon"])
    if len(candidates) == 1:
        return candidates[0]
    if node is not None and node in node_names:
        by_node = [candidate for candidate in candidates if candidate.casefold() == node.casefold()]
        if by_node:
            return by_node[0]
    raise RecordingError([f"{source}: counters of {len(candidates)} CUCM hosts ({', '.join(candidates[:8])}); "
                          "choose one with --host"])


def read_recording(path: Path, host: str | None = None, time_zone: str | None = None,
                   node_names: Sequence[str] = (), node: str | None = None) -> HostRecording:
    """The compared counters of one host (`choose_host`) of the PDH-CSV file at `path`, its time stamps read
    in `time_zone` (an IANA name; None: the header's).  RecordingError naming the file (and line) otherwise."""
    source = str(path)
    if not path.exists():
        raise RecordingError([f"{source}: no such file; give a Perfmon CSV recording (PDH-CSV, from RTMT's "
                              "Performance Log Viewer, Windows Perfmon or typeperf)"])
    if path.is_dir():
        raise RecordingError([f"{source}: is a directory; give a Perfmon CSV recording (a .csv file)"])
    _first_cell, paths = read_header(path)
    chosen = choose_host(paths, source, host, node_names, node)
    found = [(spec, _has(paths, chosen, spec)) for spec in COMPARED]
    present = tuple(spec for spec, counter in found if counter is not None)
    wanted = [counter.text for _spec, counter in found if counter is not None]
    recording = read_pdh_csv(path, wanted, time_zone)
    return HostRecording(recording, chosen, present, tuple(spec for spec, counter in found if counter is None))


# ----------------------------------------------------------------------------------------------- episodes
@dataclass(frozen=True)
class SampledEpisode:
    """A Code Yellow episode as samples show it: rows `first_row`..`end_row - 1` of the sample grid read 1.
    Times are simulated seconds; None where the samples do not tell (see the module doc)."""

    first_row: int
    end_row: int
    entry_s: float | None
    """The first sample reading 1; None when the first sample already did (entered before it)."""
    entry_after_s: float | None
    """The last sample reading 0 before the entry: the entry happened after it (None: no such sample)."""
    exit_s: float | None
    """The first sample reading 0 after; None when the last sample still read 1 (not over)."""
    exit_after_s: float
    """The last sample reading 1: the exit happened after it."""
    ended_in_code_red: bool = False

    @property
    def duration_s(self) -> float | None:
        """From the first sample reading 1 to the first reading 0 again (None when either is unknown)."""
        return None if self.entry_s is None or self.exit_s is None else self.exit_s - self.entry_s


def episodes_from_samples(times_s: np.ndarray, yellow: np.ndarray,
                          red: np.ndarray | None = None) -> list[SampledEpisode]:
    """The Code Yellow episodes of CodeYellowEntryExit samples `yellow` (0/1, no NaN) taken at `times_s` (s,
    increasing); `red`, CodeRedEntryExit at the same times, says which ended in Code Red (Code Red reads 1 at
    the first sample after them)."""
    on = np.asarray(yellow, dtype=float) > 0.5
    if len(on) == 0:
        return []
    edges = np.flatnonzero(np.diff(np.concatenate(([False], on, [False])).astype(np.int8)))
    episodes = []
    for start, end in zip(edges[0::2], edges[1::2], strict=True):
        exit_row = int(end) if end < len(on) else None
        episodes.append(SampledEpisode(
            int(start), int(end),
            entry_s=float(times_s[start]) if start > 0 else None,
            entry_after_s=float(times_s[start - 1]) if start > 0 else None,
            exit_s=float(times_s[exit_row]) if exit_row is not None else None,
            exit_after_s=float(times_s[end - 1]),
            ended_in_code_red=bool(red is not None and exit_row is not None and red[exit_row] > 0.5),
        ))
    return episodes


@dataclass(frozen=True)
class AlarmEpisode:
    """A Code Yellow episode of a run, from its alarms (simulated seconds)."""

    entry_s: float
    exit_s: float | None
    """CodeYellowExit, or CodeRedEntry when it ended in Code Red; None when still in Code Yellow at the end."""
    ended_in_code_red: bool = False


def episodes_from_alarms(alarms: Sequence[Alarm]) -> list[AlarmEpisode]:
    """The Code Yellow episodes of `alarms` (one node's): CodeYellowEntry to CodeYellowExit or CodeRedEntry."""
    episodes: list[AlarmEpisode] = []
    entry_s: float | None = None
    for alarm in sorted(alarms, key=lambda a: a.t_s):
        if alarm.name == CODE_YELLOW_ENTRY and entry_s is None:
            entry_s = alarm.t_s
        elif alarm.name in (CODE_YELLOW_EXIT, CODE_RED_ENTRY) and entry_s is not None:
            episodes.append(AlarmEpisode(entry_s, alarm.t_s, alarm.name == CODE_RED_ENTRY))
            entry_s = None
    if entry_s is not None:
        episodes.append(AlarmEpisode(entry_s, None))
    return episodes


def _overlap_s(start_s: float, end_s: float | None, low_s: float, high_s: float) -> float:
    """Length of [start_s, end_s) (None: open) within (low_s, high_s)."""
    return min(math.inf if end_s is None else end_s, high_s) - max(start_s, low_s)


def group_alarm_episodes(seen: Sequence[SampledEpisode], episodes: Sequence[AlarmEpisode], first_s: float,
                         last_s: float) -> tuple[list[tuple[AlarmEpisode, ...]], list[AlarmEpisode], int]:
    """The run's alarm `episodes` grouped by the sampled episode `seen` each falls in (the sampled episode's
    bracket: after the 0 before it, until the 0 after it), in `seen`'s order; the episodes within the samples'
    span [first_s, last_s] that no sampled episode holds (too short for the sampling); and how many lay outside
    that span (not compared)."""
    inside = [episode for episode in episodes
              if episode.entry_s <= last_s + TIME_TOLERANCE_S
              and (episode.exit_s is None or episode.exit_s > first_s + TIME_TOLERANCE_S)]
    groups: list[list[AlarmEpisode]] = [[] for _ in seen]
    unseen = []
    for episode in inside:
        overlaps = [_overlap_s(episode.entry_s, episode.exit_s,
                               -math.inf if sampled.entry_after_s is None else sampled.entry_after_s,
                               math.inf if sampled.exit_s is None else sampled.exit_s) for sampled in seen]
        best = int(np.argmax(overlaps)) if overlaps else -1
        if best >= 0 and overlaps[best] > 0:
            groups[best].append(episode)
        else:
            unseen.append(episode)
    return [tuple(group) for group in groups], unseen, len(episodes) - len(inside)


def match_episodes(recorded: Sequence[SampledEpisode], simulated: Sequence[SampledEpisode],
                   weights_s: np.ndarray) -> list[tuple[int | None, int | None]]:
    """Pairs (recorded index, simulated index) of episodes on one sample grid, matched one to one by overlap
    (the sum of `weights_s`, each row's interval, over the rows both read 1), the largest overlap first; then
    the unmatched of either side with None.  Sorted by time (the first row)."""
    cumulative = np.concatenate(([0.0], np.cumsum(weights_s)))
    candidates = []
    for r, rec in enumerate(recorded):
        for s, sim in enumerate(simulated):
            low, high = max(rec.first_row, sim.first_row), min(rec.end_row, sim.end_row)
            if high > low:
                candidates.append((-(cumulative[high] - cumulative[low]), low, r, s))
    pairs: list[tuple[int | None, int | None]] = []
    used_recorded: set[int] = set()
    used_simulated: set[int] = set()
    for _overlap, _low, r, s in sorted(candidates):
        if r not in used_recorded and s not in used_simulated:
            pairs.append((r, s))
            used_recorded.add(r)
            used_simulated.add(s)
    pairs += [(r, None) for r in range(len(recorded)) if r not in used_recorded]
    pairs += [(None, s) for s in range(len(simulated)) if s not in used_simulated]

    def first_row(pair: tuple[int | None, int | None]) -> tuple[int, int]:
        r, s = pair
        rows = [recorded[r].first_row] if r is not None else []
        rows += [simulated[s].first_row] if s is not None else []
        return min(rows), 0 if r is not None else 1

    return sorted(pairs, key=first_row)


@dataclass(frozen=True)
class EpisodeRow:
    """One line of the episode table: a recorded episode, the simulated one(s) matched with it, or either
    alone.  `simulated` holds the run's alarm episodes the samples show as one (see the module doc)."""

    recorded: SampledEpisode | None
    simulated: tuple[AlarmEpisode, ...]
    recorded_lines: tuple[int | None, int | None] = (None, None)
    """The recording's line numbers of the entry and exit samples."""
    visible: bool = True
    """False for simulated episodes no sample of the recording falls in."""

    @property
    def matched(self) -> bool:
        return self.recorded is not None and bool(self.simulated)

    @property
    def simulated_entry_s(self) -> float | None:
        return self.simulated[0].entry_s if self.simulated else None

    @property
    def simulated_exit_s(self) -> float | None:
        return self.simulated[-1].exit_s if self.simulated else None

    @property
    def simulated_duration_s(self) -> float | None:
        exit_s = self.simulated_exit_s
        return None if exit_s is None or not self.simulated else exit_s - self.simulated[0].entry_s

    @property
    def entry_difference_s(self) -> float | None:
        """Recorded entry minus simulated entry (s); None unless both are known."""
        return _difference(self.recorded.entry_s if self.recorded else None, self.simulated_entry_s)

    @property
    def exit_difference_s(self) -> float | None:
        """Recorded exit minus simulated exit (s); None unless both are known."""
        return _difference(self.recorded.exit_s if self.recorded else None, self.simulated_exit_s)

    @property
    def note(self) -> str:
        notes = []
        if self.recorded is None and not self.visible:
            notes.append("not visible: between two samples")
        elif self.recorded is None:
            notes.append("simulated only")
        elif not self.simulated:
            notes.append("recorded only")
        if len(self.simulated) > 1:
            notes.append(f"{len(self.simulated)} simulated, seen as one")
        if self.recorded is not None and self.recorded.entry_s is None:
            notes.append("recorded: in Code Yellow from the first sample")
        if self.recorded is not None and self.recorded.exit_s is None:
            notes.append("recorded: in Code Yellow at the last sample")
        if self.simulated and self.simulated[-1].exit_s is None:
            notes.append("simulated: in Code Yellow at the run's end")
        red = (self.recorded is not None and self.recorded.ended_in_code_red,
               bool(self.simulated) and self.simulated[-1].ended_in_code_red)
        if all(red):
            notes.append("both ended in Code Red")
        elif red[0]:
            notes.append("recorded: ended in Code Red")
        elif red[1]:
            notes.append("simulated: ended in Code Red")
        return "; ".join(notes)


def _difference(recorded_s: float | None, simulated_s: float | None) -> float | None:
    return None if recorded_s is None or simulated_s is None else recorded_s - simulated_s


def episode_rows(times_s: np.ndarray, recorded_yellow: np.ndarray | None, simulated_yellow: np.ndarray,
                 alarms: Sequence[Alarm], *, recorded_red: np.ndarray | None = None,
                 lines: np.ndarray | None = None) -> tuple[list[EpisodeRow], int]:
    """The episode table of one node (see the module doc) and the number of the run's episodes outside the
    samples' span.  `times_s`: the rows' simulated seconds; `recorded_yellow`, `recorded_red`: the recording's
    CodeYellowEntryExit and CodeRedEntryExit there (NaN: blank; None: not recorded); `simulated_yellow`: the
    run's CodeYellowEntryExit read at the same times; `alarms`: the node's; `lines`: the rows' line numbers."""
    read = np.ones(len(times_s), dtype=bool) if recorded_yellow is None else np.isfinite(recorded_yellow)
    grid_s = np.asarray(times_s, dtype=float)[read]
    if len(grid_s) == 0:
        return [], len(episodes_from_alarms(alarms))
    red = None if recorded_red is None else np.nan_to_num(recorded_red[read])
    recorded = ([] if recorded_yellow is None else episodes_from_samples(grid_s, recorded_yellow[read], red))
    seen = episodes_from_samples(grid_s, simulated_yellow[read])
    groups, unseen, outside = group_alarm_episodes(seen, episodes_from_alarms(alarms), float(grid_s[0]),
                                                   float(grid_s[-1]))
    steps = np.diff(grid_s)
    weights_s = np.concatenate((steps, [float(np.median(steps)) if len(steps) else 1.0]))
    line_of = None if lines is None else np.asarray(lines)[read]
    rows = []
    for r, s in match_episodes(recorded, seen, weights_s):
        episode = recorded[r] if r is not None else None
        row_lines: tuple[int | None, int | None] = (None, None)
        if episode is not None and line_of is not None:
            row_lines = (int(line_of[episode.first_row]) if episode.entry_s is not None else None,
                         int(line_of[episode.end_row]) if episode.exit_s is not None else None)
        rows.append(EpisodeRow(episode, groups[s] if s is not None else (), row_lines))
    rows += [EpisodeRow(None, (episode,), visible=False) for episode in unseen]
    rows.sort(key=_row_time)
    return rows, outside


def _row_time(row: EpisodeRow) -> float:
    times = [t for t in (row.recorded.entry_s if row.recorded else None,
                         row.recorded.exit_after_s if row.recorded else None, row.simulated_entry_s) if t is not None]
    return min(times)


# ----------------------------------------------------------------------------------------------- the comparison
@dataclass(frozen=True)
class Series:
    """One counter over the overlap's rows, recorded and simulated (a rate per second for a running total)."""

    spec: CounterSpec
    recorded: np.ndarray | None
    """None when the recording lacks the counter; NaN where a cell was blank (or a rate is unknown)."""
    simulated: np.ndarray


@dataclass(frozen=True)
class CompareSummary:
    """The comparison in a few numbers (see the module doc); NaN where there is nothing to measure."""

    recorded_episodes: int
    simulated_episodes: int
    """The run's episodes within the recording's span, as rows (those the samples show as one count once)."""
    matched: int
    not_visible: int
    outside: int
    """The run's episodes outside the recording's span (not compared)."""
    mean_abs_entry_s: float
    mean_abs_exit_s: float
    delay_rmse_ms: float
    delay_correlation: float
    delay_samples: int


@dataclass(frozen=True)
class Comparison:
    """A run compared with a recording (see the module doc); everything the table, the CSV and the figure show."""

    run_name: str
    """The run directory's name (or the scenario's)."""
    scenario_name: str
    seed: int
    node: str | None
    """The cluster node compared (None: a one-node run)."""
    host: str
    recording_source: str
    offset_s: float
    interval_s: float
    throttling: ThrottlingParams
    duration_s: int
    times_s: np.ndarray
    """The overlap's rows, in simulated seconds."""
    lines: np.ndarray
    series: tuple[Series, ...]
    rows: tuple[EpisodeRow, ...]
    summary: CompareSummary
    missing: tuple[CounterSpec, ...]
    findings: tuple[Finding, ...] = ()
    findings_dropped: dict[str, int] = field(default_factory=dict)
    recorded_restarts: int = 0
    """Intervals where a recorded running total fell (the service restarted): their rate is left unknown."""
    rows_before: int = 0
    rows_after: int = 0
    """Rows of the recording before simulated second 0 and after the run's end (not compared)."""

    def get(self, spec: CounterSpec) -> Series:
        return next(series for series in self.series if series.spec == spec)


def node_choice(result: RunResult, node: str | None, host: str) -> str | None:
    """The cluster node to compare: `node`, else the one named like the recording's `host`, else the first
    (None for a one-node run).  UserError for a node the run does not have."""
    node_names = result.scenario.node_names
    if not node_names:
        if node is not None:
            raise UserError([f"--node {node!r}: the run is of one node, not a cluster; leave --node out"])
        return None
    if node is not None:
        if node not in node_names:
            raise UserError([f"--node {node!r}: the run's nodes are {', '.join(node_names)}"])
        return node
    return next((name for name in node_names if name.casefold() == host.casefold()), node_names[0])


def compare(result: RunResult, recording: HostRecording, *, node: str | None = None, offset_s: float = 0.0,
            run_name: str | None = None) -> Comparison:
    """Compare `result` (one node of it: `node`, a cluster's node name, None for a one-node run) with the
    counters of `recording`, whose first row is simulated second `offset_s`.  UserError when the run has no
    CUCM node, or when no row of the recording falls within the run."""
    scenario = result.scenario
    if not scenario.has_node:
        raise UserError([f"the run {run_name or scenario.name!r} simulates hosts and links but no CUCM node: "
                         "there are no CallManager counters to compare"])
    if scenario.node_names and node is None:
        node = scenario.node_names[0]
    host = node if node is not None else "cucm"
    if node is not None:
        index = scenario.node_names.index(node)
        throttling = scenario.node_scenarios()[index].throttling
        alarms = result.nodes[index].alarms
    else:
        throttling = scenario.throttling
        alarms = result.alarms
    simulated = {(path.object, path.counter): values
                 for path, values in perfmon_counters(result, PerfmonOptions(host=host))
                 if path.host == host and path.object in (SYSTEM, names.CALLMANAGER)}

    rec = recording.recording
    times_all_s = rec.elapsed_s + offset_s
    duration_s = scenario.duration_s
    inside = (times_all_s >= -TIME_TOLERANCE_S) & (times_all_s <= duration_s + TIME_TOLERANCE_S)
    if not inside.any():
        first_s, last_s = float(times_all_s[0]), float(times_all_s[-1])
        raise UserError([f"{rec.source}: no overlap in time with the run: its rows fall at simulated seconds "
                         f"{first_s:g} to {last_s:g} (its first row is simulated second {offset_s:g}; --offset-s "
                         f"moves it), the run lasts 0 to {duration_s} s"])
    times_s = np.clip(times_all_s[inside], 0.0, float(duration_s))
    seconds = np.floor(times_s + TIME_TOLERANCE_S).astype(np.int64)
    restarts = 0
    series = []
    for spec in COMPARED:
        sim = np.asarray(simulated[(spec.object, spec.counter)], dtype=float)[seconds]
        values = recording.values(spec)
        rec_values = None if values is None else values[inside]
        if spec.cumulative:
            sim = _rate(times_s, sim)[0]
            if rec_values is not None:
                rec_values, falls = _rate(times_s, rec_values)
                restarts = max(restarts, falls)
        series.append(Series(spec, rec_values, sim))
    by_spec = {item.spec: item for item in series}
    rows, outside = episode_rows(times_s, by_spec[CODE_YELLOW].recorded, by_spec[CODE_YELLOW].simulated, alarms,
                                 recorded_red=by_spec[CODE_RED].recorded, lines=rec.lines[inside])
    summary = _summary(rows, outside, by_spec[AVERAGE_EXPECTED_DELAY])
    return Comparison(
        run_name=run_name or scenario.name, scenario_name=scenario.name, seed=result.seed, node=node,
        host=recording.host, recording_source=rec.source, offset_s=offset_s, interval_s=rec.interval_s(),
        throttling=throttling, duration_s=duration_s, times_s=times_s, lines=rec.lines[inside],
        series=tuple(series), rows=tuple(rows), summary=summary, missing=recording.missing,
        findings=tuple(rec.findings), findings_dropped=dict(rec.findings_dropped), recorded_restarts=restarts,
        rows_before=int(np.sum(times_all_s < -TIME_TOLERANCE_S)),
        rows_after=int(np.sum(times_all_s > duration_s + TIME_TOLERANCE_S)),
    )


def _rate(times_s: np.ndarray, totals: np.ndarray) -> tuple[np.ndarray, int]:
    """A running total as a rate per second: the rise over each interval between rows, at the row that ends
    it (NaN at the first row, across a blank, and where the total fell); and how many times it fell."""
    rates = np.full(len(totals), np.nan)
    if len(totals) < 2:
        return rates, 0
    rises = np.diff(totals)
    steps = np.diff(times_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates[1:] = np.where((rises >= 0) & (steps > 0), rises / np.where(steps > 0, steps, 1.0), np.nan)
    return rates, int(np.sum(rises < 0))


def _summary(rows: Sequence[EpisodeRow], outside: int, delay: Series) -> CompareSummary:
    entry_errors = [abs(d) for row in rows if row.matched and (d := row.entry_difference_s) is not None]
    exit_errors = [abs(d) for row in rows if row.matched and (d := row.exit_difference_s) is not None]
    rmse, correlation, samples = math.nan, math.nan, 0
    if delay.recorded is not None:
        known = np.isfinite(delay.recorded)
        samples = int(known.sum())
        recorded, simulated = delay.recorded[known], delay.simulated[known]
        if samples:
            rmse = float(np.sqrt(np.mean((recorded - simulated) ** 2)))
        if samples > 1 and np.std(recorded) > 0 and np.std(simulated) > 0:
            correlation = float(np.corrcoef(recorded, simulated)[0, 1])
    return CompareSummary(
        recorded_episodes=sum(row.recorded is not None for row in rows),
        simulated_episodes=sum(bool(row.simulated) and row.visible for row in rows),
        matched=sum(row.matched for row in rows),
        not_visible=sum(not row.visible for row in rows),
        outside=outside,
        mean_abs_entry_s=float(np.mean(entry_errors)) if entry_errors else math.nan,
        mean_abs_exit_s=float(np.mean(exit_errors)) if exit_errors else math.nan,
        delay_rmse_ms=rmse, delay_correlation=correlation, delay_samples=samples,
    )


def summary_parts(comparison: Comparison) -> list[str]:
    """The comparison in three phrases: episodes matched; mean absolute entry/exit error; AverageExpectedDelay
    RMSE and correlation over the overlap."""
    summary = comparison.summary
    episodes = (f"Code Yellow episodes: {summary.matched} matched of {summary.recorded_episodes} recorded and "
                f"{summary.simulated_episodes} simulated")
    if summary.not_visible:
        episodes += f" ({summary.not_visible} more simulated between two samples, not visible)"
    errors = (f"mean |entry error| {_seconds(summary.mean_abs_entry_s)}, "
              f"mean |exit error| {_seconds(summary.mean_abs_exit_s)}")
    correlation = "n/a" if math.isnan(summary.delay_correlation) else f"{summary.delay_correlation:.3f}"
    rmse = "n/a" if math.isnan(summary.delay_rmse_ms) else f"{summary.delay_rmse_ms:.3g} ms"
    samples = f"{summary.delay_samples:,} sample{'' if summary.delay_samples == 1 else 's'}"
    delay = (f"AverageExpectedDelay RMSE {rmse}, correlation {correlation} over {samples} "
             f"(simulated {_seconds(float(comparison.times_s[0]))} to "
             f"{_seconds(float(comparison.times_s[-1]))})")
    return [episodes, errors, delay]


def summary_line(comparison: Comparison) -> str:
    """The comparison in one line (`summary_parts`)."""
    return "; ".join(summary_parts(comparison))


def _seconds(value_s: float | None) -> str:
    if value_s is None or math.isnan(value_s):
        return "n/a"
    return f"{value_s:,.0f} s" if float(value_s).is_integer() else f"{value_s:,.1f} s"


def compare_csv(comparison: Comparison) -> str:
    """compare.csv: one row per episode row (`CSV_COLUMNS`; times in simulated seconds, empty when unknown)."""
    def cells(row: EpisodeRow) -> list[str]:
        rec = row.recorded
        return [csv_cell(value) for value in (
            rec.entry_s if rec else None, rec.entry_after_s if rec else None, row.simulated_entry_s,
            row.entry_difference_s, rec.exit_s if rec else None, rec.exit_after_s if rec else None,
            row.simulated_exit_s, row.exit_difference_s, rec.duration_s if rec else None, row.simulated_duration_s,
            len(row.simulated), row.recorded_lines[0], row.recorded_lines[1], row.note,
        )]

    return csv_text(CSV_COLUMNS, (cells(row) for row in comparison.rows))


def is_compare_csv(data: bytes) -> bool:
    """Whether `data` (a file's first bytes) is a compare.csv: its first line is `CSV_COLUMNS`."""
    return data.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace") == ",".join(CSV_COLUMNS)


# ----------------------------------------------------------------------------------------------- writing
COMPARE_PNG: Final = "compare.png"
COMPARE_CSV: Final = "compare.csv"
SIGNATURE_BYTES: Final = 4096
"""How much of an existing compare.png / compare.csv is read to tell whether compare wrote it."""


def check_output_dir(out_dir: Path) -> None:
    """Refuse (UserError) an `out_dir` compare may not write in: not a directory, or holding a compare.png or
    compare.csv that compare did not write (it replaces only its own)."""
    from cucm_sim.report.compare_plot import is_compare_png  # matplotlib is slow to import: only when writing

    if out_dir.exists() and not out_dir.is_dir():
        raise UserError([f"{out_dir}: exists and is not a directory; give a directory for compare.png and "
                         "compare.csv (--out DIR)"])
    for name, is_ours in ((COMPARE_PNG, is_compare_png), (COMPARE_CSV, is_compare_csv)):
        path = out_dir / name
        if not os.path.lexists(path):
            continue
        if path.is_symlink() or not path.is_file():
            raise UserError([f"{path}: exists and is not a regular file; compare replaces only a {name} it wrote "
                             "itself: choose another --out"])
        try:
            with path.open("rb") as handle:
                start = handle.read(SIGNATURE_BYTES)
        except OSError as error:
            raise UserError([f"{path}: cannot read ({error.strerror or error})"]) from None
        if not is_ours(start):
            raise UserError([f"{path}: exists and was not written by `cucm-sim compare`; it is left alone: choose "
                             "another --out, or move the file away"])


def write_comparison(comparison: Comparison, out_dir: Path) -> list[Path]:
    """Write compare.png and compare.csv into `out_dir` (made if missing), each atomically, replacing only
    those compare wrote (`check_output_dir`); return their paths."""
    from cucm_sim.report.compare_plot import comparison_png  # matplotlib is slow to import: only when writing

    check_output_dir(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError([f"{out_dir}: cannot create the directory ({error.strerror or error})"]) from None
    png = comparison_png(comparison)
    check_output_dir(out_dir)  # again: the figure took a while
    write_bytes_atomically(out_dir / COMPARE_PNG, png)
    write_text_atomically(out_dir / COMPARE_CSV, compare_csv(comparison))
    return [out_dir / COMPARE_PNG, out_dir / COMPARE_CSV]
