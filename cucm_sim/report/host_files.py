"""The files of a hosts-and-links run, and reading them back: timeline.csv with the hosts' columns, and
events.log, the hosts' log lines stamped in the run's clock.

A host run's result directory holds summary.json, timeline.csv, events.log, scenario.resolved.yaml,
narrative.txt and timeline.png (`output` writes them, through `files`, like a CUCM node's).  Numbers are
formatted deterministically: the same seed gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence

import numpy as np

from cucm_sim.errors import UserError
from cucm_sim.host.host import LogLine

EVENTS_LOG = "events.log"
_LOG_LINE = re.compile(r"(\d{2,}):(\d{2}):(\d{2})\.(\d{3})  t=(\d+\.\d{3}) s  (\S+)  (.*)")
_INTEGER_SUFFIXES = (".dpc_rate", ".ring_occupancy", ".packets_dropped", ".heartbeats_sent",
                     ".heartbeats_received", ".heartbeats_missed", ".session_open")


def clock(t_s: float) -> str:
    """`t_s` (s) as the run's clock, HH:MM:SS.mmm from its start."""
    millis = round(t_s * 1000)
    seconds, millis = divmod(millis, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def events_log(lines: Sequence[LogLine]) -> str:
    """events.log: one line per log line, in the order written: run clock, seconds, host, text."""
    return "".join(f"{clock(line.t_s)}  t={line.t_s:.3f} s  {line.host}  {line.text}\n" for line in lines)


def parse_events_log(text: str, source: str) -> list[LogLine]:
    """The log lines of events.log text; UserError naming `source` and the line if one is malformed."""
    lines = []
    for number, row in enumerate(text.splitlines(), start=1):
        found = _LOG_LINE.fullmatch(row)
        if found is None:
            raise UserError([f"{source}:{number}: not a line of events.log (CLOCK  t=SECONDS s  HOST  TEXT)"])
        lines.append(LogLine(float(found.group(5)), number - 1, found.group(6), found.group(7)))
    return lines


def host_timeline_csv(timeline: Mapping[str, np.ndarray]) -> str:
    """timeline.csv of a host run: t_s, then every host's, processor's and link's column."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    names = list(timeline)
    writer.writerow(names)
    cells = [[str(int(v)) if name == "t_s" or name.endswith(_INTEGER_SUFFIXES) else f"{v:.4f}"
              for v in timeline[name].tolist()] for name in names]
    writer.writerows(zip(*cells, strict=True))
    return buffer.getvalue()


def parse_host_timeline_csv(text: str, source: str, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """The per-second columns of a host run's timeline.csv; UserError naming `source` if it is not one."""
    rows = list(csv.reader(io.StringIO(text)))
    expected = ["t_s", *columns]
    if not rows or rows[0] != expected:
        raise UserError([f"{source}: the header is not this scenario's host columns (t_s, then "
                         f"{', '.join(columns[:3])} ...)"])
    values = np.empty((len(rows) - 1, len(expected)))
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(expected):
            raise UserError([f"{source}:{number}: {len(row)} cells, expected {len(expected)}"])
        try:
            values[number - 2] = [float(cell) for cell in row]
        except ValueError:
            raise UserError([f"{source}:{number}: a cell is not a number"]) from None
    return {name: values[:, k] for k, name in enumerate(expected)}
