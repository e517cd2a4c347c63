"""`cucm-sim export`: a run's result directory in the formats voice engineers already read.

- `--format perfmon`: perfmon.csv, the run's counters in the PDH-CSV layout Windows Perfmon, typeperf and
  RTMT's Performance Log Viewer read (`report.perfmon_export`), sampled every `--interval` seconds (1 as
  Perfmon, 15 as RTMT), stamped with local time from `--start` in `--tz`.
- `--format syslog`: alarms.log, the run's alarms as CUCM syslog lines (`report.syslog`).

By default the file goes into the run directory (replacing the one an earlier export wrote there); `--out
FILE` writes it elsewhere, and refuses to replace an existing file unless `--force`.  Written atomically.
The same sampling options serve `cucm-sim run --perfmon` (`perfmon_options`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from cucm_sim.cli.app import stdout, user_errors_exit_2
from cucm_sim.errors import UserError
from cucm_sim.report.files import check_file_target, write_text_atomically
from cucm_sim.report.output import read_run
from cucm_sim.report.perfmon_export import (
    DEFAULT_HOST,
    DEFAULT_START,
    MAX_INTERVAL_S,
    PerfmonOptions,
    perfmon_text,
)
from cucm_sim.report.syslog import HOST_NAME, syslog_text

FILE_NAMES: Final = {"perfmon": "perfmon.csv", "syslog": "alarms.log"}


def sampling_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The options that say how counters are sampled and stamped (export and run --perfmon)."""
    options = [
        click.option("--interval", "interval_s", type=click.IntRange(1, MAX_INTERVAL_S), default=1,
                     show_default=True,
                     help="Seconds between Perfmon samples: 1 as Windows Perfmon, 15 as RTMT (5-300)."),
        click.option("--start", type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]),
                     default=DEFAULT_START.isoformat(), show_default=True,
                     help="Local wall-clock time of simulated second 0."),
        click.option("--tz", "zone_name", default="UTC", show_default=True, metavar="ZONE",
                     help="IANA time zone of the time stamps, e.g. Europe/London (daylight saving included)."),
        click.option("--host", default=DEFAULT_HOST, show_default=True,
                     help="Host name of a one-node run's counters and syslog lines (a cluster uses its node names)."),
        click.option("--typeperf", is_flag=True,
                     help="Write the header's first cell as typeperf does, '(PDH-CSV 4.0)' without zone and bias."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def perfmon_options(interval_s: int, start: datetime, zone_name: str, host: str, typeperf: bool) -> PerfmonOptions:
    """The sampling options given on the command line (UserError for an unknown zone or a bad host name)."""
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError([f"--tz {zone_name!r}: not an IANA time zone name (such as UTC, Europe/London or "
                         "America/New_York)"]) from None
    if HOST_NAME.fullmatch(host) is None:
        raise UserError([f"--host {host!r}: give 1 to 255 letters, digits, '_', '.' or '-', starting with a letter "
                         "or digit (it goes into \\\\HOST\\Object\\Counter and into each syslog line)"])
    return PerfmonOptions(interval_s=interval_s, start=start, zone=zone, host=host, typeperf_header=typeperf)


@click.command(short_help="Write a run's counters as Perfmon CSV, or its alarms as syslog.")
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(path_type=Path, file_okay=False))
@click.option("--format", "kind", type=click.Choice(sorted(FILE_NAMES)), required=True,
              help="perfmon: perfmon.csv (PDH-CSV); syslog: alarms.log (CUCM syslog lines).")
@click.option("--out", "out_file", type=click.Path(path_type=Path, dir_okay=False),
              help="The file to write (default: perfmon.csv or alarms.log in RUN_DIR).")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@sampling_options
def export(run_dir: Path, kind: str, out_file: Path | None, force: bool, interval_s: int, start: datetime,
           zone_name: str, host: str, typeperf: bool) -> None:
    """Write RUN_DIR's counters as a Perfmon CSV file, or its alarms as CUCM syslog lines.

    perfmon.csv holds, per CUCM node, the "Cisco CallManager System Performance" counters
    (AverageExpectedDelay, CodeYellowEntryExit, QueueSignalsPresent/Processed, ...) and "Cisco CallManager"
    CallsAttempted and CallManagerHeartBeat; per Windows host, Processor(N) DPC Rate and % DPC Time and the
    NIC's Packets Received Discarded.  It opens in Windows Perfmon, RTMT's Performance Log Viewer, Excel
    and pandas (pandas.read_csv(path, index_col=0)).
    """
    options = user_errors_exit_2(lambda: perfmon_options(interval_s, start, zone_name, host, typeperf))
    result = user_errors_exit_2(lambda: read_run(run_dir))
    target = out_file or run_dir / FILE_NAMES[kind]
    if out_file is not None:
        user_errors_exit_2(lambda: _check_target(out_file, force))
    if kind == "perfmon":
        text = perfmon_text(result, options)
    else:
        aware_start = options.start.replace(tzinfo=options.zone)
        text = user_errors_exit_2(lambda: syslog_text(result, aware_start, None if result.nodes else options.host))
    user_errors_exit_2(lambda: write_text_atomically(target, text))
    stdout.print(f"wrote {target}", highlight=False, soft_wrap=True)


def _check_target(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise UserError([f"--out {path}: exists; pass --force to replace it"])
    check_file_target(path, "--out")
