r"""The PDH-CSV layout of Perfmon logs (Windows Perfmon, typeperf, RTMT's Performance Log Viewer): write and read.

The layout (DOMAIN.md section 6): every field quoted; the first header cell `(PDH-CSV 4.0) (ZONE)(BIAS)`
(the time zone's name and its bias in minutes, UTC minus local, at the first sample; `typeperf` writes
`(PDH-CSV 4.0)` alone); the other header cells counter paths `\\HOST\Object(instance)\Counter`; every row
a local time stamp `MM/DD/YYYY HH:MM:SS.mmm`, then one cell per counter.  A counter that could not be read
is a blank or a single space.  cucm-sim writes the zone's IANA name (`Europe/London`) where Windows writes
its own (`GMT Standard Time`), and CRLF line ends as Windows does.

Reading is streamed, row by row, keeping only the counters asked for.  A file that breaks the layout (no
PDH-CSV header, a bad time stamp, a cell that is not a number, a row with too few or too many cells, a
counter asked for that the file lacks) stops the reading with one `RecordingError` naming the file and
the line.  What real files have and a reader must not hide is kept as `Finding`s with their lines, never
filled in: blank cells (their value is NaN), gaps (an interval more than 1.5 times the usual one), and
daylight-saving changes.  Local times become seconds since the first row through the file's time zone
(given by the caller, else the header's when zoneinfo knows it, else the header's fixed bias, else none):
with a zone, a repeated hour (clocks going back) is told apart by its order and reported; without one, a
time stamp that goes back is an error that says to name the zone.
"""

from __future__ import annotations

import csv
import io
import math
import re
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from cucm_sim.errors import RecordingError
from cucm_sim.perfmon.counters import CounterPath

PDH_VERSION: Final = "(PDH-CSV 4.0)"
TIME_FORMAT: Final = "%m/%d/%Y %H:%M:%S.%f"
GAP_FACTOR: Final = 1.5
"""An interval longer than this many times the file's usual one (its median) is reported as a gap."""
MAX_FINDINGS_KEPT: Final = 10_000
"""Findings kept per kind (the rest are counted): a file with a blank column has one per row."""
_HEADER: Final = re.compile(r"^\(PDH-CSV 4\.0\)(?:\s*\((?P<zone>[^()]*)\)\s*\((?P<bias>[-+]?\d+)\))?\s*$")
_TIME: Final = re.compile(r"^(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$")


# ----------------------------------------------------------------------------------------------- writing
def header_cell(zone: tzinfo | None, first_sample: datetime | None) -> str:
    """The first header cell: `(PDH-CSV 4.0) (ZONE)(BIAS)` for an aware `first_sample`, else the typeperf form."""
    if zone is None or first_sample is None:
        return PDH_VERSION
    offset = first_sample.utcoffset() or timedelta(0)
    bias_min = -round(offset.total_seconds() / 60)
    return f"{PDH_VERSION} ({zone_name(zone)})({bias_min})"


def zone_name(zone: tzinfo) -> str:
    """The name a header gives `zone`: its IANA key, or its name for a fixed offset."""
    return zone.key if isinstance(zone, ZoneInfo) else str(zone)


def format_time(local: datetime) -> str:
    """A row's time stamp: local wall-clock time to the millisecond, `MM/DD/YYYY HH:MM:SS.mmm`."""
    return local.strftime("%m/%d/%Y %H:%M:%S.") + f"{local.microsecond // 1000:03d}"


def pdh_csv_text(first_cell: str, paths: Sequence[CounterPath], times: Sequence[datetime],
                 rows: Iterable[Sequence[str]]) -> str:
    """A whole PDH-CSV file: the header, then one row per time stamp (its cells already formatted; "" is a
    counter that could not be read and is written as a single space, as Perfmon does)."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow([first_cell, *(path.text for path in paths)])
    for when, cells in zip(times, rows, strict=True):
        writer.writerow([format_time(when), *(cell if cell else " " for cell in cells)])
    return out.getvalue()


# ----------------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Finding:
    """Something in a recording a reader must report: `kind` is 'blank', 'gap', 'repeat' (a daylight-saving
    hour seen twice), 'forward' (clocks moved forward) or 'restart' (a cumulative counter fell)."""

    line: int
    kind: str
    detail: str


@dataclass
class Recording:
    """The counters read from a PDH-CSV file, row by row (see the module doc)."""

    source: str
    paths: list[CounterPath]
    """The counters kept, in the order asked for."""
    values: np.ndarray
    """(rows, counters): each counter's samples; NaN where a cell was blank."""
    elapsed_s: np.ndarray
    """Each row's time: seconds since the first row (real time, across daylight-saving changes)."""
    lines: np.ndarray
    """Each row's line number in the file."""
    first_local: datetime
    """The first row's time stamp as written (local, naive)."""
    zone: tzinfo | None
    """The zone the time stamps were read in (None: none known; they were taken as they stand)."""
    findings: list[Finding] = field(default_factory=list)
    findings_dropped: dict[str, int] = field(default_factory=dict)
    """Per kind, findings not kept past `MAX_FINDINGS_KEPT`."""
    _kept: dict[str, int] = field(default_factory=dict)

    def column(self, index: int) -> np.ndarray:
        return self.values[:, index]

    def interval_s(self) -> float:
        """The usual interval between rows (their median; 0 with fewer than two rows)."""
        return float(np.median(np.diff(self.elapsed_s))) if len(self.elapsed_s) > 1 else 0.0

    def note(self, finding: Finding) -> None:
        """Keep `finding` (up to `MAX_FINDINGS_KEPT` per kind; the rest are counted)."""
        kept = self._kept.get(finding.kind, 0)
        if kept >= MAX_FINDINGS_KEPT:
            self.findings_dropped[finding.kind] = self.findings_dropped.get(finding.kind, 0) + 1
        else:
            self._kept[finding.kind] = kept + 1
            self.findings.append(finding)


def read_header(path: Path) -> tuple[str, list[CounterPath]]:
    """The first header cell and the counter paths of the PDH-CSV file at `path`."""
    with _open(path) as handle:
        return _header(csv.reader(handle), str(path))


def read_pdh_csv(path: Path, wanted: Sequence[str] | None = None, time_zone: str | None = None) -> Recording:
    """The counters `wanted` (each a whole path or a path without its host; None: every counter) of the
    PDH-CSV file at `path`, with the time stamps read in `time_zone` (an IANA name; None: the header's)."""
    source = str(path)
    with _open(path) as handle:
        reader = csv.reader(handle)
        first_cell, paths = _header(reader, source)
        columns = list(range(len(paths))) if wanted is None else [_find(paths, name, source) for name in wanted]
        zone = _zone(first_cell, time_zone, source)
        clock = _Clock(zone, source)
        width = len(paths) + 1
        values = array("d")  # row after row, flat: a long file is held as numbers, not Python objects
        lines = array("q")
        blanks: list[Finding] = []
        blanks_dropped = 0
        for row in reader:
            line = reader.line_num
            if not row:
                continue  # an empty line (a file's last line often is)
            if len(row) != width:
                raise RecordingError([f"{source}, line {line}: {len(row)} cells where the header has {width} "
                                      f"(a time stamp and {len(paths)} counters): a truncated or damaged row"])
            clock.add(row[0], line)
            for column in columns:
                text = row[column + 1]
                if not text.strip():
                    if len(blanks) < MAX_FINDINGS_KEPT:
                        blanks.append(Finding(line, "blank", f"{paths[column].text} is blank (not read)"))
                    else:
                        blanks_dropped += 1
                    values.append(math.nan)
                    continue
                values.append(_number(text, source, line, paths[column]))
            lines.append(line)
    if not lines:
        raise RecordingError([f"{source}: no rows after the header (a recording needs at least two samples)"])
    recording = Recording(
        source, [paths[c] for c in columns], np.frombuffer(values, dtype=float).reshape(len(lines), len(columns)),
        np.frombuffer(clock.elapsed_s, dtype=float), np.frombuffer(lines, dtype=np.int64), clock.first_local, zone,
    )
    for finding in [*clock.findings, *blanks]:
        recording.note(finding)
    if blanks_dropped:
        recording.findings_dropped["blank"] = recording.findings_dropped.get("blank", 0) + blanks_dropped
    _note_gaps(recording)
    return recording


def _open(path: Path) -> io.TextIOWrapper:
    try:
        return open(path, encoding="utf-8-sig", errors="replace", newline="")
    except OSError as error:
        raise RecordingError([f"cannot read {path} ({error.strerror or error})"]) from None


def _header(reader: Iterable[list[str]], source: str) -> tuple[str, list[CounterPath]]:
    try:
        header = next(iter(reader))
    except StopIteration:
        raise RecordingError([f"{source}: the file is empty (a Perfmon CSV starts with a "
                              f"'{PDH_VERSION} ...' header)"]) from None
    except csv.Error as error:
        raise RecordingError([f"{source}, line 1: not a CSV header ({error})"]) from None
    if not header or _HEADER.match(header[0].strip()) is None:
        first = header[0] if header else ""
        raise RecordingError([f"{source}, line 1: the first cell is {first[:60]!r}, not a Perfmon header "
                              f"('{PDH_VERSION} (ZONE)(BIAS)' or '{PDH_VERSION}')"])
    paths = []
    for index, cell in enumerate(header[1:], start=2):
        path = CounterPath.parse(cell)
        if path is None:
            raise RecordingError([f"{source}, line 1, column {index}: {cell[:80]!r} is not a counter path "
                                  "(\\\\HOST\\Object(instance)\\Counter)"])
        paths.append(path)
    if not paths:
        raise RecordingError([f"{source}, line 1: the header names no counters"])
    return header[0].strip(), paths


def _find(paths: Sequence[CounterPath], wanted: str, source: str) -> int:
    """The column of the counter `wanted` names."""
    found = [index for index, path in enumerate(paths) if path.matches(wanted)]
    if len(found) == 1:
        return found[0]
    if found:
        raise RecordingError([f"{source}, line 1: {wanted!r} matches {len(found)} counters "
                              f"({', '.join(paths[i].text for i in found[:4])}); give the whole path with its host"])
    name = wanted.rstrip().rsplit("\\", 1)[-1].casefold()
    similar = [path.text for path in paths if path.counter.casefold() == name]
    listed = ", ".join(similar[:4] if similar else [p.text for p in paths[:6]])
    hint = f"; it has {listed}" if similar else f"; its counters: {listed}"
    more = f" and {len(paths) - 6} more" if not similar and len(paths) > 6 else ""
    raise RecordingError([f"{source}, line 1: no counter {wanted!r} in the header{hint}{more}"])


def _number(text: str, source: str, line: int, path: CounterPath) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise RecordingError([f"{source}, line {line}: {path.text} is {text[:40]!r}, not a number"])
    return value


def _zone(first_cell: str, time_zone: str | None, source: str) -> tzinfo | None:
    """The zone the time stamps are in: the caller's, else the header's name if zoneinfo knows it, else the
    header's bias as a fixed offset, else None."""
    if time_zone is not None:
        try:
            return ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise RecordingError([f"{source}: time zone {time_zone!r} is not an IANA time zone name "
                                  "(such as Europe/London or America/New_York)"]) from None
    match = _HEADER.match(first_cell)
    assert match is not None
    if match["zone"] is None:
        return None
    try:
        return ZoneInfo(match["zone"].strip())
    except (ZoneInfoNotFoundError, ValueError):
        bias_min = int(match["bias"])
        return timezone(-timedelta(minutes=bias_min), match["zone"].strip())


class _Clock:
    """Turns the rows' local time stamps into seconds since the first row (see the module doc)."""

    def __init__(self, zone: tzinfo | None, source: str) -> None:
        self.zone = zone
        self.source = source
        self.elapsed_s = array("d")
        self.findings: list[Finding] = []
        self.first_local = datetime(1, 1, 1)
        self._first_utc = 0.0
        self._previous_local: datetime | None = None
        self._previous_utc = 0.0
        self._repeating = False

    def add(self, text: str, line: int) -> None:
        local = _parse_time(text, self.source, line)
        previous = self._previous_local
        if previous is None:
            self.first_local = local
            self._first_utc = self._utc(local, 0)
            self._previous_local, self._previous_utc = local, self._first_utc
            self.elapsed_s.append(0.0)
            return
        if local < previous:
            if not (isinstance(self.zone, ZoneInfo) and self._ambiguous(local)):
                raise RecordingError([
                    f"{self.source}, line {line}: the time stamp {text} is before the previous row's "
                    f"({format_time(previous)})" + (
                        "; if the clocks went back (a daylight-saving repeat), name the file's time zone "
                        "(time_zone: Europe/London, or --tz) so the repeated hour can be told apart"
                        if previous - local <= timedelta(hours=2) else "")])
            self._repeating = True
            self.findings.append(Finding(line, "repeat", f"clocks went back: {text} follows "
                                         f"{format_time(previous)}; read as the hour's second pass"))
        elif self._repeating and not self._ambiguous(local):
            self._repeating = False
        utc = self._utc(local, 1 if self._repeating and self._ambiguous(local) else 0)
        if utc <= self._previous_utc:
            raise RecordingError([f"{self.source}, line {line}: the time stamp {text} does not come after the "
                                  f"previous row's ({format_time(previous)})"])
        wall_step_s = (local - previous).total_seconds()
        if isinstance(self.zone, ZoneInfo) and wall_step_s - (utc - self._previous_utc) >= 1800:
            self.findings.append(Finding(line, "forward", f"clocks moved forward: {text} follows "
                                         f"{format_time(previous)}, {utc - self._previous_utc:g} s later"))
        self._previous_local, self._previous_utc = local, utc
        self.elapsed_s.append(utc - self._first_utc)

    def _ambiguous(self, local: datetime) -> bool:
        if not isinstance(self.zone, ZoneInfo):
            return False
        return local.replace(tzinfo=self.zone, fold=0).utcoffset() != local.replace(
            tzinfo=self.zone, fold=1).utcoffset()

    def _utc(self, local: datetime, fold: int) -> float:
        if self.zone is None:
            return local.replace(tzinfo=UTC).timestamp()
        return local.replace(tzinfo=self.zone, fold=fold).timestamp()


def _parse_time(text: str, source: str, line: int) -> datetime:
    match = _TIME.match(text.strip())
    if match is not None:
        month, day, year, hour, minute, second, fraction = match.groups()
        try:
            return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                            int((fraction or "0").ljust(6, "0")))
        except ValueError:
            pass
    raise RecordingError([f"{source}, line {line}: the time stamp {text[:40]!r} is not a date and time "
                          "MM/DD/YYYY HH:MM:SS.mmm"])


def _note_gaps(recording: Recording) -> None:
    """Report every interval longer than `GAP_FACTOR` times the usual one."""
    steps_s = np.diff(recording.elapsed_s)
    if not len(steps_s):
        return
    usual_s = float(np.median(steps_s))
    for index in np.flatnonzero(steps_s > GAP_FACTOR * usual_s):
        recording.note(Finding(int(recording.lines[index + 1]), "gap",
                               f"{steps_s[index]:g} s since the previous row (usually {usual_s:g} s)"))
    recording.findings.sort(key=lambda finding: finding.line)
