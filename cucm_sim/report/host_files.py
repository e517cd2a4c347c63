"""events.log, a hosts-and-links run's own file: the hosts' log lines stamped in the run's clock, and
reading it back.

A host run's result directory holds summary.json, timeline.csv, events.log, scenario.resolved.yaml,
narrative.txt and timeline.png; `output` writes and reads the others, as for a CUCM node.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cucm_sim.errors import UserError
from cucm_sim.host.host import LogLine

EVENTS_LOG = "events.log"
_LOG_LINE = re.compile(r"(\d{2,}):(\d{2}):(\d{2})\.(\d{3})  t=(\d+\.\d{3}) s  (\S+)  (.*)")


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
