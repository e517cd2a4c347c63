r"""`cucm-sim compare RUN_DIR PERFMON.csv`: a run set beside a Perfmon recording of the real node.

Reads the run directory (`report.output.read_run`) and the recording (PDH-CSV, `perfmon.pdh_csv`), compares
them counter by counter under Cisco's names and episode by episode (`report.compare`), draws compare.png
(`report.compare_plot`) and writes compare.csv, by default into RUN_DIR (`--out DIR` elsewhere).  Prints
what the recording lacks and what its reader found (blank cells, gaps, daylight-saving changes), the table of
Code Yellow episodes, recorded against simulated, and a one-line summary.  A missing or malformed file, a
recording without AverageExpectedDelay or with no row inside the run: one message, exit 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import click
from rich.table import Table
from rich.text import Text

from cucm_sim.cli.app import fail, stdout, user_errors_exit_2
from cucm_sim.perfmon.pdh_csv import Finding
from cucm_sim.report.compare import (
    Comparison,
    EpisodeRow,
    compare,
    node_choice,
    read_recording,
    summary_line,
    write_comparison,
)
from cucm_sim.report.narrative import plural
from cucm_sim.report.output import read_run

NOTE_WIDTH: Final = 24
"""Columns kept for the episode table's notes."""
FINDINGS_SHOWN: Final = 3
"""Findings of each kind printed (blank cells, gaps, clock changes); the rest are counted."""
FINDING_WORDS: Final = {
    "blank": ("blank cell", "blank cells"), "gap": ("gap", "gaps"),
    "repeat": ("row in an hour seen twice (clocks went back)", "rows in an hour seen twice (clocks went back)"),
    "forward": ("jump of the clocks forward", "jumps of the clocks forward"),
    "restart": ("counter restart", "counter restarts"),
}
"""How the stdout notes name each kind of `Finding`: (one, several)."""


@click.command("compare", short_help="Compare a run with a Perfmon recording: a figure, a table of Code Yellow "
               "episodes.")
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(path_type=Path))
@click.argument("recording_file", metavar="PERFMON.csv", type=click.Path(path_type=Path))
@click.option("--offset-s", "offset_s", type=float, default=0.0, show_default=True,
              help="Simulated second of the recording's first row (negative: the recording starts before the run).")
@click.option("--host", default=None,
              help="The recording's host to compare, when it holds several CUCM hosts' counters.")
@click.option("--node", default=None,
              help="The cluster node to compare (default: the one named like the recording's host, else the first).")
@click.option("--tz", "zone_name", default=None, metavar="ZONE",
              help="IANA time zone of the recording's time stamps (default: its header's); needed to read a "
              "daylight-saving repeat.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), metavar="DIR",
              help="Directory for compare.png and compare.csv (default: RUN_DIR). Made if missing.")
def compare_command(run_dir: Path, recording_file: Path, offset_s: float, host: str | None, node: str | None,
                    zone_name: str | None, out_dir: Path | None) -> None:
    r"""Compare the run in RUN_DIR with PERFMON.csv, a Perfmon recording of the real node.

    PERFMON.csv is a PDH-CSV file (RTMT's Performance Log Viewer, Windows Perfmon, typeperf, or `cucm-sim
    export --format perfmon`).  Its counters are taken by Cisco's names: "Cisco CallManager System
    Performance" AverageExpectedDelay (required), CodeYellowEntryExit, CodeRedEntryExit, QueueSignalsPresent
    1-High..4-Lowest, QueueSignalsProcessed Total and CallsRejectedDueToThrottling, and "Cisco
    CallManager\CallsAttempted"; those it lacks are not drawn.  The run's side is the same counters as
    `export --format perfmon` computes them, read at the recording's sample times.  The recording's first
    row is simulated second 0 unless --offset-s says otherwise; rows outside the run are left out.

    Writes compare.png (the counters recorded, solid, against simulated, dashed, with the state bands of
    each) and compare.csv (the Code Yellow episodes) into RUN_DIR, or --out DIR; an existing compare.png or
    compare.csv is replaced only if compare wrote it.  Recorded episode times are at the recording's sample
    resolution: an entry lies between the last sample reading 0 and the first reading 1 (the 1 is given, the
    CSV has both); simulated times are the run's alarms, and simulated episodes the samples cannot tell
    apart are one row.  Episodes are matched one to one by overlap in time.  Prints the table and a summary:
    episodes matched, mean absolute entry and exit error, AverageExpectedDelay RMSE and correlation.
    Exit 2 on a missing or malformed file, a recording without AverageExpectedDelay, or no overlap in time.
    """
    if not math.isfinite(offset_s):
        fail([f"--offset-s {offset_s}: give a finite number of seconds"])
    result = user_errors_exit_2(lambda: read_run(run_dir))
    recording = user_errors_exit_2(lambda: read_recording(recording_file, host, zone_name,
                                                          result.scenario.node_names, node))
    chosen = user_errors_exit_2(lambda: node_choice(result, node, recording.host))
    comparison = user_errors_exit_2(lambda: compare(result, recording, node=chosen, offset_s=offset_s,
                                                    run_name=run_dir.resolve().name or str(run_dir)))
    written = user_errors_exit_2(lambda: write_comparison(comparison, out_dir or run_dir))
    _print_notes(comparison)
    stdout.print(episode_table(comparison))
    stdout.print(Text(summary_line(comparison)), highlight=False, soft_wrap=True)
    for path in written:
        stdout.print(Text(f"wrote {path}"), highlight=False, soft_wrap=True)


def _print_notes(comparison: Comparison) -> None:
    node = f", node {comparison.node}" if comparison.node is not None else ""
    lines = [f"comparing {comparison.run_name} (seed {comparison.seed}{node}) with host {comparison.host} of "
             f"{comparison.recording_source}: {plural(len(comparison.times_s), 'sample')}, one every "
             f"{comparison.interval_s:g} s; the recording's first row is simulated second {comparison.offset_s:g}"]
    left_out = [*([f"{plural(comparison.rows_before, 'row')} before simulated second 0"]
                  if comparison.rows_before else []),
                *([f"{plural(comparison.rows_after, 'row')} after the run's end ({comparison.duration_s:,} s)"]
                  if comparison.rows_after else [])]
    if left_out:
        lines.append("left out: " + " and ".join(left_out))
    if comparison.missing:
        lines.append("not in the recording, not drawn: " + ", ".join(spec.counter for spec in comparison.missing))
    lines += _finding_lines(comparison.findings, comparison.findings_dropped)
    if comparison.recorded_restarts:
        lines.append(f"a recorded running total fell {comparison.recorded_restarts} time(s) (the service "
                     "restarted): those intervals' rates are left out")
    if comparison.summary.outside:
        lines.append(f"{plural(comparison.summary.outside, 'Code Yellow episode')} of the run outside the "
                     "recording's time: not compared")
    for line in lines:  # file names and host names are user text: never rich markup
        stdout.print(Text(line), highlight=False, soft_wrap=True)


def _finding_lines(findings: Sequence[Finding], dropped: dict[str, int]) -> list[str]:
    """What the recording's reader found, one line per kind: how many, and the first few with their lines."""
    lines = []
    for kind in dict.fromkeys(finding.kind for finding in findings):
        of_kind = [finding for finding in findings if finding.kind == kind]
        count = len(of_kind) + dropped.get(kind, 0)
        one, several = FINDING_WORDS.get(kind, (kind, kind))
        shown = "; ".join(f"line {finding.line}: {finding.detail}" for finding in of_kind[:FINDINGS_SHOWN])
        more = f"; and {count - FINDINGS_SHOWN:,} more" if count > FINDINGS_SHOWN else ""
        lines.append(f"the recording has {plural(count, one, several)}: {shown}{more}")
    return lines


def _time(value_s: float | None) -> str:
    if value_s is None:
        return "-"
    return f"{value_s:,.0f} s" if float(value_s).is_integer() else f"{value_s:,.1f} s"


def _difference(value_s: float | None) -> str:
    if value_s is None:
        return "-"
    return "0 s" if value_s == 0 else f"{value_s:+,.0f} s" if float(value_s).is_integer() else f"{value_s:+,.1f} s"


def episode_table(comparison: Comparison) -> Table:
    """The Code Yellow episodes, recorded against simulated, one row each (see `report.compare`)."""
    interval = f"{comparison.interval_s:g} s"
    table = Table(title=Text("Code Yellow episodes, recorded against simulated (simulated seconds)"),
                  title_justify="left", caption=Text(
                      f"Recorded times are samples (one every {interval}): an entry lies between the last sample "
                      "reading 0 and the first reading 1, which is shown (compare.csv has both); an exit likewise. "
                      "Simulated times are the run's alarms. diff. = recorded - simulated."),
                  caption_justify="left")
    for heading in ("#", "recorded\nentry", "simulated\nentry", "entry\ndiff.", "recorded\nexit", "simulated\nexit",
                    "exit\ndiff.", "duration\nrec. / sim.", "note"):
        if heading == "note":
            table.add_column(heading, justify="left", min_width=NOTE_WIDTH, overflow="fold")
        else:
            table.add_column(heading, justify="right", no_wrap=True)
    for number, row in enumerate(comparison.rows, start=1):
        table.add_row(*_cells(number, row))
    if not comparison.rows:
        table.add_row("", *(["-"] * 7), "no Code Yellow episode on either side")
    return table


def _cells(number: int, row: EpisodeRow) -> list[str | Text]:
    recorded = row.recorded
    return [
        str(number),
        _time(recorded.entry_s) if recorded else "-", _time(row.simulated_entry_s), _difference(row.entry_difference_s),
        _time(recorded.exit_s) if recorded else "-", _time(row.simulated_exit_s), _difference(row.exit_difference_s),
        f"{_time(recorded.duration_s) if recorded else '-'} / {_time(row.simulated_duration_s)}", Text(row.note),
    ]
