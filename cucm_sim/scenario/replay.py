r"""From a recorded Perfmon / RTMT CSV file to a node's load: counts per interval, and the rules that make them.

`recorded_load(trace)` reads the file a `load.trace` names (`perfmon.pdh_csv`, streamed) and returns a
`RecordedLoad`: per driving counter, the arrivals of each interval between consecutive rows, and the capacity
factor per interval.  It is cached per process by path, size, modification time and the trace's settings, so
a sweep's points, the work estimate, the warnings and the engines read a file once.  The engines then draw
the arrival times (`whole_count` and the spread below); nothing here is random.

The recording's first row is simulated time 0; row k is at `t_k`, its real time since the first row (across a
daylight-saving change, through the file's time zone).  Interval k is (t_{k-1}, t_k].  The rules:

- **Cumulative counters** (CallsAttempted) are differenced: interval k counts C_k - C_{k-1}.  A fall is a
  counter restart (the service restarted and counts from zero): the interval counts C_k, what came before
  the restart in it being unknown, and the restart is reported with its line.
- **Per-second counters** (QueueSignalsProcessed) hold the count of the second before the sample: interval k
  counts rate_k x (t_k - t_{k-1}).  Exact at 1-s sampling; at 15 s the one second read stands for fifteen.
- **Processed and present.**  For a `QueueSignalsProcessed Q` background counter whose host also has
  `QueueSignalsPresent Q` in the file, the arrivals are the signals processed plus the change in those
  present: processed_k x length + P_k - P_{k-1}, clamped at 0 (the clamps are kept as a finding, not
  printed as a warning: at 15-s sampling a draining backlog does it by itself, the one second read
  standing for fifteen; it is the rule at work, not a fault of the file).  At
  1-s sampling this is exact up to the one signal in service at either end (a signal leaves the queue when
  its service starts and counts as processed when it ends), and it keeps a backlog's arrivals that the
  router had not handled yet.  Without the present counter the arrivals are the signals processed.
- **Readings** (QueueSignalsPresent, % Processor Time) are levels: they cannot drive calls or signals.  The
  capacity factor of interval k is the mapped reading at t_k (a Windows processor counter is the average
  over the interval that ends at its sample), piecewise constant over the interval.
- **Blank cells** (blank or a single space) in a used column: where a rule is exact they are bridged and
  reported, never filled: a running total's next difference spans the blank rows, so its count is spread
  over the merged interval (and so is a backlog correction across a blank `present`).  Everywhere else (a
  rate, a capacity reading, a running total blank at the first or last row) a blank is an error that lists
  the lines.  A blank `present` at the first or last rows leaves those intervals without the correction.
- **Gaps** (an interval more than 1.5 x the usual one, reported by the reader): the interval spans the gap; a
  running total's count is spread over it, a rate counts rate x its whole length.
- **Whole numbers.**  A count that is not whole (rate x 15 s, a merged correction) gives its whole part plus
  one more with probability equal to its fraction (`whole_count`), drawn from the run's random stream.
- **The spread within an interval.**  The n arrivals of an interval are n independent uniform times in it,
  sorted: a Poisson process conditioned on its count, so every interval's recorded count is reproduced
  exactly and nothing is assumed about the shape of the load inside an interval.

The run's `duration_s` may not pass the recording's length (`check_recording`, at load time).
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from pathlib import Path
from typing import Final

import numpy as np

from cucm_sim.errors import RecordingError, ScenarioError
from cucm_sim.perfmon.counters import CounterPath, Kind
from cucm_sim.perfmon.pdh_csv import Finding, Recording, format_time, read_header, read_pdh_csv
from cucm_sim.rules.priorities import PRIORITY_INDEX
from cucm_sim.scenario.schema import Scenario
from cucm_sim.scenario.trace import Trace, TraceCapacity

LINES_SHOWN: Final = 5
"""Line numbers an error or a warning lists before it counts the rest."""
WARNINGS_PER_KIND: Final = 5
"""Findings of one kind (gap, repeat, restart, blank, ...) shown as warnings; the rest are counted in one line."""
QUIET_KINDS: Final = frozenset({"clamped"})
"""Findings kept in `RecordedLoad.findings` but not printed as warnings."""
CACHE_SIZE: Final = 4
"""Recordings kept per process (the most recently used)."""


@dataclass(frozen=True)
class IntervalCounts:
    """One driving counter's arrivals per interval: `counts[k]` (not always whole) in (starts_s[k], ends_s[k]]
    (s since the first row).  The intervals are consecutive, from 0 to the recording's end."""

    key: str
    """The trace's key that names it (`calls`, `background.0.counter`)."""
    counter: str
    """The counter's path as the file writes it."""
    starts_s: np.ndarray
    ends_s: np.ndarray
    counts: np.ndarray

    def rates_per_s(self) -> np.ndarray:
        """Each interval's mean rate (arrivals/s)."""
        rates: np.ndarray = self.counts / (self.ends_s - self.starts_s)
        return rates

    def cumulative_at(self, times_s: np.ndarray) -> np.ndarray:
        """Arrivals from 0 up to each of `times_s` (s), spread evenly within an interval (their expectation)."""
        at: np.ndarray = np.interp(times_s, np.concatenate((self.starts_s[:1], self.ends_s)),
                                   np.concatenate(([0.0], np.cumsum(self.counts))))
        return at

    def peak_rates_per_s(self, starts_s: np.ndarray, ends_s: np.ndarray) -> np.ndarray:
        """For each span (starts_s[j], ends_s[j]), the highest rate of an interval that overlaps it (arrivals/s;
        0 where none does)."""
        rates = self.rates_per_s()
        firsts = np.searchsorted(self.ends_s, starts_s, side="right").tolist()
        lasts = np.searchsorted(self.starts_s, ends_s, side="left").tolist()
        return np.array([float(rates[first:last].max()) if last > first else 0.0
                         for first, last in zip(firsts, lasts, strict=True)])


@dataclass(frozen=True)
class CapacitySteps:
    """The capacity factor a recording gives: `factors[k]` over (starts_s[k], starts_s[k + 1]]."""

    starts_s: np.ndarray
    factors: np.ndarray


@dataclass(frozen=True)
class RecordedLoad:
    """A recording read as load (see the module doc)."""

    source: str
    """The file."""
    rows: int
    length_s: float
    """The last row's time, s since the first."""
    interval_s: float
    """The usual interval between rows (their median, s)."""
    first_stamp: str
    last_stamp: str
    calls: IntervalCounts | None
    background: tuple[tuple[IntervalCounts, int], ...]
    """Each background counter's arrivals, with the queue (0 = high .. 3 = lowest) they wait in."""
    capacity: CapacitySteps | None
    findings: tuple[Finding, ...] = ()
    """What the reading found and did not fill in, with lines: gaps, daylight-saving changes, restarts, blanks
    bridged, corrections clamped."""
    findings_dropped: dict[str, int] = field(default_factory=dict)
    """Per kind, findings the reader counted past its limit."""

    def streams(self) -> list[IntervalCounts]:
        """Every driving counter: the calls', then the background's."""
        return ([self.calls] if self.calls is not None else []) + [counts for counts, _ in self.background]

    def describe(self) -> str:
        """'FILE (241 rows, 3,600 s from 03/10/2026 09:00:00.000 to ...)'."""
        return (f"{self.source} ({self.rows:,} rows every {self.interval_s:g} s, {self.length_s:,.0f} s from "
                f"{self.first_stamp} to {self.last_stamp})")


# ------------------------------------------------------------------ the rules, on arrays
def whole_count(count: float, uniform: float) -> int:
    """The arrivals of an interval whose count is `count`: its whole part, plus one when `uniform` (a draw in
    [0, 1)) falls below its fraction; so the expected count is `count`."""
    whole = math.floor(count)
    return whole + int(uniform < count - whole)


def _lines_text(lines: Sequence[int]) -> str:
    shown = ", ".join(str(line) for line in lines[:LINES_SHOWN])
    more = f" and {len(lines) - LINES_SHOWN:,} more" if len(lines) > LINES_SHOWN else ""
    return f"line{'s' if len(lines) > 1 else ''} {shown}{more}"


def cumulative_counts(source: str, path: str, elapsed_s: np.ndarray, totals: np.ndarray, lines: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Finding]]:
    """(starts, ends, counts, findings) of a running total sampled at `elapsed_s` (NaN: blank): differenced,
    a fall read as a restart, blank rows bridged by the next difference (see the module doc)."""
    known = np.flatnonzero(np.isfinite(totals))
    ends_blank = [int(lines[row]) for row in (0, len(totals) - 1) if not np.isfinite(totals[row])]
    if ends_blank:
        raise RecordingError([f"{source}: {path} is blank at {_lines_text(ends_blank)} (the first or last row): "
                              "the count before or after it cannot be known, and cucm-sim does not fill it in; "
                              "mend the file or cut it to the rows that were read"])
    before, after = known[:-1], known[1:]
    rise = totals[after] - totals[before]
    restarted = rise < 0
    counts = np.where(restarted, totals[after], rise)
    findings = [Finding(int(lines[row]), "restart", f"{path} fell from {totals[previous]:,.0f} to {totals[row]:,.0f}: "
                        f"the counter restarted (the service restarted); the interval counts {totals[row]:,.0f}, what "
                        "came before the restart in it is unknown")
                for previous, row in zip(before[restarted].tolist(), after[restarted].tolist(), strict=True)]
    findings += _bridged(path, before, after, lines, "running total")
    return elapsed_s[before], elapsed_s[after], counts, findings


def _bridged(path: str, before: np.ndarray, after: np.ndarray, lines: np.ndarray, what: str) -> list[Finding]:
    """A finding per run of blank rows bridged (rows strictly between `before[k]` and `after[k]`)."""
    findings = []
    for first, last in zip(before[after - before > 1].tolist(), after[after - before > 1].tolist(), strict=True):
        blank = [int(line) for line in lines[first + 1:last]]
        findings.append(Finding(blank[0], "blank", f"{path} is blank at {_lines_text(blank)}: the {what} from line "
                                f"{int(lines[first])} to line {int(lines[last])} is spread over those "
                                f"{last - first} intervals"))
    return findings


def per_second_counts(source: str, path: str, elapsed_s: np.ndarray, rates: np.ndarray, lines: np.ndarray,
                      present: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Finding]]:
    """(starts, ends, counts, findings) of a per-second counter: rate x interval length, plus the change in
    the signals `present` when given (clamped at 0; blank present rows bridged; see the module doc)."""
    used = rates[1:]
    _refuse_blanks(source, path, used, lines, "a per-second count", "cut it to the rows that were read")
    starts_s, ends_s = elapsed_s[:-1], elapsed_s[1:]
    counts = used * (ends_s - starts_s)
    if present is None:
        return starts_s, ends_s, counts, []
    findings: list[Finding] = []
    known = np.flatnonzero(np.isfinite(present))
    if not len(known):
        findings.append(Finding(int(lines[0]), "blank", f"{_present_name(path)} is blank throughout: the arrivals "
                                "are the signals processed, without the change in those present"))
        return starts_s, ends_s, counts, findings
    # intervals before the first known present and after the last keep their processed counts alone
    head, tail = int(known[0]), int(known[-1])
    if head > 0 or tail < len(present) - 1:
        rows = [int(lines[row]) for row in [*range(head), *range(tail + 1, len(present))]]
        findings.append(Finding(rows[0], "blank", f"{_present_name(path)} is blank at {_lines_text(rows)} (the first "
                                "or last rows): the intervals there count the signals processed alone"))
    processed_to = np.concatenate(([0.0], np.cumsum(counts)))  # signals processed from row 0 to each row
    before, after = known[:-1], known[1:]
    corrected = processed_to[after] - processed_to[before] + present[after] - present[before]
    clamped = np.flatnonzero(corrected < 0)
    if len(clamped):
        rows = [int(lines[after[k]]) for k in clamped]
        findings.append(Finding(rows[0], "clamped", f"{path}: the signals processed plus the change in "
                                f"{_present_name(path).rsplit(chr(92), 1)[-1]} came out below 0 in {len(rows):,} "
                                f"interval{'s' if len(rows) > 1 else ''} ({_lines_text(rows)}), taken as 0"))
    findings += _bridged(_present_name(path), before, after, lines, "correction")
    return (np.concatenate((starts_s[:head], elapsed_s[before], starts_s[tail:])),
            np.concatenate((ends_s[:head], elapsed_s[after], ends_s[tail:])),
            np.concatenate((counts[:head], np.maximum(corrected, 0.0), counts[tail:])), findings)


def _present_name(path: str) -> str:
    return path.replace("QueueSignalsProcessed", "QueueSignalsPresent")


def capacity_steps(source: str, mapping: TraceCapacity, path: str, elapsed_s: np.ndarray, readings: np.ndarray,
                   lines: np.ndarray) -> CapacitySteps:
    """The capacity factor of each interval: the mapped reading at its end (see the module doc)."""
    used = readings[1:]
    _refuse_blanks(source, path, used, lines, "the capacity factor", "leave out capacity_factor")
    return CapacitySteps(elapsed_s[:-1].copy(), mapping.factor(used))


def _refuse_blanks(source: str, path: str, used: np.ndarray, lines: np.ndarray, what: str, remedy: str) -> None:
    """RecordingError naming the lines where `used` (a counter's values from the second row on) is blank."""
    blank = np.flatnonzero(~np.isfinite(used)) + 1
    if len(blank):
        raise RecordingError([f"{source}: {path} is blank at {_lines_text([int(lines[row]) for row in blank])}: "
                              f"{what} cannot be known there, and cucm-sim does not fill it in; mend the file or "
                              f"{remedy}"])


# ------------------------------------------------------------------ reading a trace
def read_recorded_load(trace: Trace) -> RecordedLoad:
    """The load the recording `trace` names gives (not cached: see `recorded_load`)."""
    source = trace.file
    paths = read_header(Path(source))[1]
    wanted = [counter for _, counter in trace.counters()]
    present_of: dict[int, int] = {}  # background index -> column of its QueueSignalsPresent
    for k, entry in enumerate(trace.background):
        matching = [path for path in paths if path.matches(entry.counter)]
        if len(matching) != 1 or not matching[0].counter.startswith("QueueSignalsProcessed "):
            continue
        processed = matching[0]
        companion = CounterPath(processed.host, processed.object,
                                processed.counter.replace("QueueSignalsProcessed", "QueueSignalsPresent", 1),
                                processed.instance)
        if companion in paths:
            present_of[k] = len(wanted)
            wanted.append(companion.text)
    recording = read_pdh_csv(Path(source), wanted, trace.time_zone)
    if len(recording.elapsed_s) < 2:
        raise RecordingError([f"{source}: one row after the header; a recording needs at least two samples (an "
                              "interval)"])
    findings = [finding for finding in recording.findings if finding.kind != "blank"]
    columns = iter(range(len(wanted)))
    calls = None
    if trace.calls is not None:
        calls, found = _counts(recording, next(columns), "calls", None)
        findings += found
    background = []
    for k, entry in enumerate(trace.background):
        column = next(columns)
        present = recording.column(present_of[k]) if k in present_of else None
        counts, found = _counts(recording, column, f"background.{k}.counter", present)
        findings += found
        background.append((counts, PRIORITY_INDEX[entry.queue]))
    capacity = None
    if trace.capacity_factor is not None:
        column = next(columns)
        capacity = capacity_steps(source, trace.capacity_factor, recording.paths[column].text, recording.elapsed_s,
                                  recording.column(column), recording.lines)
    dropped = {kind: count for kind, count in recording.findings_dropped.items() if kind != "blank"}
    return RecordedLoad(
        source, len(recording.elapsed_s), float(recording.elapsed_s[-1]), recording.interval_s(),
        format_time(recording.first_local), _last_stamp(recording), calls, tuple(background), capacity,
        tuple(sorted(findings, key=lambda finding: finding.line)), dropped,
    )


def _last_stamp(recording: Recording) -> str:
    """The last row's local time (from the first row's and the real time since, in the file's zone)."""
    later = timedelta(seconds=float(recording.elapsed_s[-1]))
    if recording.zone is None:
        return format_time(recording.first_local + later)
    first = recording.first_local.replace(tzinfo=recording.zone)
    return format_time((first.astimezone(UTC) + later).astimezone(recording.zone).replace(tzinfo=None))


def _counts(recording: Recording, column: int, key: str, present: np.ndarray | None
            ) -> tuple[IntervalCounts, list[Finding]]:
    path = recording.paths[column]
    values = recording.column(column)
    if path.kind is Kind.CUMULATIVE:
        starts, ends, counts, found = cumulative_counts(recording.source, path.text, recording.elapsed_s, values,
                                                        recording.lines)
    elif path.kind is Kind.PER_SECOND:
        starts, ends, counts, found = per_second_counts(recording.source, path.text, recording.elapsed_s, values,
                                                        recording.lines, present)
    else:  # the schema refuses a reading by the name written; a file's own name decides here
        raise RecordingError([f"{recording.source}: {path.text} is a reading (a level at the sample time), not a "
                              "count: it cannot drive calls or signals"])
    return IntervalCounts(key, path.text, starts, ends, counts), found


_CACHE: OrderedDict[tuple[str, int, int], RecordedLoad] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def recorded_load(trace: Trace) -> RecordedLoad:
    """The load `trace` gives, read once per process for as long as the file keeps its size and modification
    time (the `CACHE_SIZE` most recent); RecordingError naming the file and line if it cannot be read."""
    try:
        status = os.stat(trace.file)
    except OSError as error:
        raise RecordingError([f"cannot read {trace.file} ({error.strerror or error})"]) from None
    key = (trace.model_dump_json(), status.st_size, status.st_mtime_ns)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
            return cached
    loaded = read_recorded_load(trace)
    with _CACHE_LOCK:
        _CACHE[key] = loaded
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return loaded


# ------------------------------------------------------------------ at load time
def check_recording(scenario: Scenario, source: str) -> None:
    """Read `scenario`'s recording (if it has one) and check the run fits in it: a RecordingError (naming
    `source`, the file and the line) for a file that cannot be read, a ScenarioError for a run longer than it."""
    trace = scenario.load.trace
    if trace is None:
        return
    try:
        loaded = recorded_load(trace)
    except RecordingError as error:
        raise RecordingError([f"{source}: load.trace: {problem}" for problem in error.problems]) from None
    if scenario.duration_s > loaded.length_s:
        raise ScenarioError([f"{source}: duration_s {scenario.duration_s:,} s is longer than the recording "
                             f"{loaded.describe()}; a replay cannot pass the recording's end: shorten duration_s to "
                             f"at most {math.floor(loaded.length_s):,}"])


def recording_warnings(scenario: Scenario, source: str) -> list[str]:
    """What the recording of `scenario` holds that a reader must know (gaps, daylight-saving changes, counter
    restarts, blanks bridged), one line per finding naming `source`, the file and the line: at most
    `WARNINGS_PER_KIND` of each kind, the rest counted.  Corrections clamped at 0 are findings too but not
    warnings (see the module doc)."""
    trace = scenario.load.trace
    if trace is None:
        return []
    loaded = recorded_load(trace)
    where = f"{source}: load.trace: {loaded.source}"
    by_kind: dict[str, list[Finding]] = {}
    for finding in loaded.findings:
        if finding.kind not in QUIET_KINDS:
            by_kind.setdefault(finding.kind, []).append(finding)
    warnings = []
    for kind, found in by_kind.items():
        warnings += [f"{where}, line {finding.line}: {finding.detail}" for finding in found[:WARNINGS_PER_KIND]]
        more = len(found) - WARNINGS_PER_KIND + loaded.findings_dropped.get(kind, 0)
        if more > 0:
            rest = [finding.line for finding in found[WARNINGS_PER_KIND:]]
            warnings.append(f"{where}: ... and {more:,} more {_KIND_WORDS.get(kind, kind)}"
                            + (f" ({_lines_text(rest)})" if rest else ""))
    return warnings


_KIND_WORDS: Final = {"gap": "gaps", "repeat": "rows of a repeated hour", "forward": "clock changes",
                      "restart": "counter restarts", "blank": "blank runs"}
