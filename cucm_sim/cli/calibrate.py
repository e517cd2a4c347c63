"""`cucm-sim calibrate`: a scenario estimated from a node's Perfmon recording, and how well it reproduces it.

Reads one CUCM node's counters from a PDH-CSV file (`perfmon.pdh_csv`), estimates signals per call, the
background per queue and the service time (`studies.calibrate`), writes the scenario as commented YAML
(validated before it is written, written atomically; an existing --out only with --force), runs it with a
few seeds and prints the estimates and the goodness of fit.  A recording that lacks counters, is damaged,
too short, or has nothing to estimate from ends in exit 2 with one message saying why.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Final, NamedTuple

import click
from rich import box
from rich.table import Table
from rich.text import Text

from cucm_sim.cli.app import ALLOW_LARGE_OPTION, check_work, stderr, stdout, user_errors_exit_2
from cucm_sim.cli.progress import SimulatedTimeBar
from cucm_sim.errors import UserError
from cucm_sim.perfmon.counters import QUEUE_NAMES
from cucm_sim.perfmon.pdh_csv import Recording, read_header, read_pdh_csv
from cucm_sim.report.files import check_file_target, write_text_atomically
from cucm_sim.scenario.loader import ScenarioData, parse_scenario, parse_yaml_text
from cucm_sim.scenario.schema import Scenario
from cucm_sim.scenario.trace import anchor_trace_file
from cucm_sim.studies.calibrate import (
    GOOD_FIT_SEEDS,
    Calibration,
    CalibrationOptions,
    Estimate,
    GoodnessOfFit,
    Series,
    ServiceTime,
    choose_node,
    fit_service_time_by_delay,
    goodness_of_fit,
    scenario_data,
    scenario_text,
    series_from_recording,
    wanted_paths,
)
from cucm_sim.studies.calibrate import calibrate as estimate

FINDINGS_SHOWN: Final = 3


@click.command(short_help="Estimate a scenario from a node's Perfmon recording.")
@click.argument("recording_file", metavar="PERFMON.csv", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", "out_file", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="The scenario YAML to write.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--host", default=None, help="The CUCM node to calibrate when the file holds several (its host name).")
@click.option("--tz", "zone_name", default=None, metavar="ZONE",
              help="IANA time zone of the file's time stamps (default: the header's); needed across a "
                   "daylight-saving change.")
@click.option("--holding-time", "holding_time", default="180", show_default=True, metavar="SECONDS|auto",
              help="Mean call holding time (s, exponential): Perfmon does not show it; auto fits it to the calls' "
                   "ending (needs a call rate that varies over a holding time).")
@click.option("--capacity-factor", type=click.FloatRange(0.01, 10), default=1.0, show_default=True,
              help="The router thread's speed while recorded (1 = nominal): the service time is per signal at "
                   "full speed.")
@click.option("--signals-per-call", type=click.FloatRange(1, 1000), default=None,
              help="Signals per call if known: then it is not estimated (when the call rate hardly varies).")
@click.option("--profile", "as_profile", is_flag=True,
              help="Write the call rate as a calls_profile (the scenario stands alone) instead of replaying the "
                   "recording's call attempts (load.trace, which names PERFMON.csv).")
@click.option("--name", default=None, help="The scenario's name (default: calibrated-<file name>).")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=1, show_default=True,
              help="The written scenario's seed (the goodness of fit runs it and seeds derived from it).")
@click.option("--replications", "-n", type=click.IntRange(0, 100), default=GOOD_FIT_SEEDS, show_default=True,
              help="Runs of the written scenario for the goodness of fit (0: no fit).")
@ALLOW_LARGE_OPTION
def calibrate(recording_file: Path, out_file: Path, force: bool, host: str | None, zone_name: str | None,
              holding_time: str, capacity_factor: float, signals_per_call: float | None, as_profile: bool,
              name: str | None, seed: int, replications: int, allow_large: bool) -> None:
    """Estimate signals per call, background signal rates and the service time from PERFMON.csv, and write a
    scenario that replays the recording.

    PERFMON.csv is a PDH-CSV file (Windows Perfmon, typeperf, RTMT's Performance Log Viewer, `cucm-sim
    export`) holding one CUCM node's CallsAttempted, QueueSignalsProcessed and QueueSignalsPresent per
    queue, AverageExpectedDelay, CodeYellowEntryExit and CodeRedEntryExit (CallsRejectedDueToThrottling,
    QueueSignalsProcessed Total and CallManagerHeartBeat are used when present).  A good recording is an
    hour or more, at a 1-s interval (15 s works with a longer recording), with a call rate that varies and
    some seconds of backlog.  The scenario says each estimate with its standard error and method, and the
    assumptions; the goodness of fit compares its AverageExpectedDelay with the recording's.  Exit 0, or 2
    on a user error (missing counters, a damaged or too short file, an existing --out without --force).
    """
    user_errors_exit_2(lambda: _check_target(out_file, force))
    holding_time_s = user_errors_exit_2(lambda: _holding_time(holding_time))
    options = CalibrationOptions(holding_time_s=holding_time_s, capacity_factor=capacity_factor,
                                 signals_per_call=signals_per_call)
    recording, series = user_errors_exit_2(lambda: _read(recording_file, host, zone_name))
    calibration = user_errors_exit_2(lambda: estimate(series, options))
    scenario_name = name or f"calibrated-{recording_file.stem}"
    replay = None if as_profile else Replay(_relative_to(recording_file, out_file.parent), zone_name)
    service = calibration.service_time
    if service is None:
        service = user_errors_exit_2(lambda: _fit_service_time(calibration, scenario_name, seed, replay, out_file,
                                                               allow_large))
    data = scenario_data(calibration, scenario_name, seed, service, *replay or (None, None))
    scenario = _validated(data, out_file)
    check_work(scenario, f"{out_file} (the calibrated scenario)", allow_large)
    fit = _fit(series, scenario, replications) if replications else None
    text = scenario_text(calibration, data, service, fit)
    written = _validated(parse_yaml_text(text, str(out_file)), out_file)  # as load_scenario will read it
    assert written == scenario, "the commented YAML reads back as the calibrated scenario"
    user_errors_exit_2(lambda: write_text_atomically(out_file, text))
    stdout.print(_estimates_table(calibration, service))
    if fit is not None:
        stdout.print(_fit_table(fit))
    for warning in [*_recording_notes(recording), *calibration.warnings, *(fit.warnings() if fit else [])]:
        stderr.print(Text.assemble(("warning:", "bold yellow"), " ", warning), highlight=False, soft_wrap=True)
    stdout.print(Text.assemble("wrote ", (str(out_file), "bold")), highlight=False, soft_wrap=True)


MAX_HOLDING_TIME_S: Final = 86_400.0


def _holding_time(text: str) -> float | None:
    """--holding-time: seconds, or None for 'auto'."""
    if text.strip().casefold() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 1 <= value <= MAX_HOLDING_TIME_S:
        raise UserError([f"--holding-time {text!r}: give seconds from 1 to {MAX_HOLDING_TIME_S:,.0f}, or auto"])
    return value


def _check_target(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise UserError([f"--out {path}: exists; pass --force to replace it"])
    check_file_target(path, "--out")


class Replay(NamedTuple):
    """How the scenario names the recording it replays: its path (relative to the scenario's folder when it
    can be) and its time zone (None: the header's)."""

    file: str
    time_zone: str | None


def _relative_to(path: Path, folder: Path) -> str:
    """`path` as the scenario in `folder` names it: relative when it lies in the folder, below it, or below the
    folder's parent (so the two move together, as scenarios/ and data/ do), else absolute."""
    recording, home = path.resolve(), folder.resolve()
    for base, prefix in ((home, ""), (home.parent, "../")):
        if recording.is_relative_to(base) and base != base.parent:
            return prefix + recording.relative_to(base).as_posix()
    return str(recording)


def _validated(data: Any, out_file: Path) -> Scenario:
    """`data` validated as `load_scenario` would read it from `out_file` (its recording's path anchored to the
    file's folder); a failure is a bug in calibrate (it may raise), or a recording that cannot be replayed."""
    anchored = copy.deepcopy(data) if not isinstance(data, ScenarioData) else data
    anchor_trace_file(anchored, out_file.parent)
    return user_errors_exit_2(lambda: parse_scenario(anchored, str(out_file)))


def _read(path: Path, host: str | None, zone_name: str | None) -> tuple[Recording, Series]:
    """The recording's counters of the node to calibrate, as read and as series."""
    _, paths = read_header(path)
    node = choose_node(paths, str(path), host)
    recording = read_pdh_csv(path, wanted_paths(node), zone_name)
    return recording, series_from_recording(recording, node)


def _fit_service_time(calibration: Calibration, name: str, seed: int, replay: Replay | None, out_file: Path,
                      allow_large: bool) -> ServiceTime:
    """The service time by simulation, when the recording has no saturated second (see the studies module)."""
    stderr.print("no saturated seconds in the recording: fitting the service time by simulation", highlight=False)
    bar = SimulatedTimeBar("fitting the service time")
    checked = False

    def make(mean_ms: float) -> Scenario:
        nonlocal checked
        trial = ServiceTime(Estimate(mean_ms, None, "trial"), None, "exponential", 0,
                            calibration.options.capacity_factor)
        scenario = _validated(scenario_data(calibration, name, seed, trial, *replay or (None, None)), out_file)
        if not checked:
            check_work(scenario, f"{out_file} (the calibrated scenario)", allow_large)
            checked = True
        return scenario

    try:
        return fit_service_time_by_delay(calibration, make, progress=bar)
    finally:
        bar.close()


def _fit(series: Series, scenario: Scenario, replications: int) -> GoodnessOfFit:
    bar = SimulatedTimeBar(f"goodness of fit ({replications} run{'s' if replications > 1 else ''})")
    try:
        return goodness_of_fit(series, scenario, replications, progress=bar)
    finally:
        bar.close()


def _estimates_table(calibration: Calibration, service: ServiceTime) -> Table:
    series = calibration.series
    title = (f"{series.source} (host {series.host}): {series.duration_s:,.0f} s, a sample every "
             f"{series.interval_s:g} s; {calibration.clean_samples:,} clean samples, "
             f"{service.saturated_seconds:,} saturated seconds")
    table = Table(title=Text(title), title_justify="left", box=box.SIMPLE_HEAD)
    for header, justify in (("estimate", "left"), ("value", "right"), ("± SE", "right"), ("how", "left")):
        table.add_column(header, justify=justify, overflow="fold")  # type: ignore[arg-type]

    def row(label: str, estimate: Estimate, unit: str = "") -> None:
        value = Estimate(estimate.value, None, "").describe(unit)
        se = "-" if estimate.se is None else Estimate(estimate.se, None, "").describe(unit, digits=2)
        table.add_row(label, value, se, Text(estimate.method))

    row("signals per call", calibration.signals_per_call)
    if calibration.setup_signals is not None:
        row("  of them at set-up", calibration.setup_signals)
    row("holding time", calibration.holding_time, "s")
    for fit in calibration.queues:
        row(f"background {QUEUE_NAMES[fit.queue]}", fit.background_per_s, "/s")
    row("service time", service.mean_ms, "ms")
    if service.cv is not None:
        row(f"service-time cv ({service.shape})", service.cv)
    for burst in calibration.bursts:
        table.add_row(f"burst {QUEUE_NAMES[burst.queue]}", f"{burst.signals_per_s:,.0f} /s", "-",
                      f"{burst.start_s:,.0f} s to {burst.end_s:,.0f} s: arrivals beyond calls and background")
    return table


def _fit_table(fit: GoodnessOfFit) -> Table:
    table = Table(title=Text(f"goodness of fit: the scenario run {len(fit.seeds)} time(s), sampled as recorded"),
                  title_justify="left", box=box.SIMPLE_HEAD)
    for header, justify in (("AverageExpectedDelay / Code Yellow", "left"), ("recorded", "right"),
                            ("simulated", "right")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    table.add_row("mean (ms)", f"{fit.recorded_mean_ms:.3g}", f"{fit.simulated_mean_ms:.3g}")
    table.add_row("largest (ms)", f"{fit.recorded_max_ms:.3g}", " / ".join(f"{v:.3g}" for v in fit.simulated_max_ms))
    table.add_row("RMSE per run (ms)", "", f"{fit.rmse_ms:.3g}")
    table.add_row("RMSE of the runs' mean (ms)", "", f"{fit.mean_rmse_ms:.3g}")
    table.add_row("mean outside Code Yellow/Red (ms)", f"{fit.recorded_clean_mean_ms:.3g}",
                  f"{fit.simulated_clean_mean_ms:.3g}")
    table.add_row("RMSE outside Code Yellow/Red (ms)", "", f"{fit.clean_rmse_ms:.3g}")
    table.add_row("correlation", "", "-" if fit.correlation is None else f"{fit.correlation:.3f}")
    table.add_row("time in Code Yellow (s)", f"{fit.yellow_recorded_s:,.0f}",
                  " / ".join(f"{v:,.0f}" for v in fit.yellow_simulated_s))
    table.add_row("Code Yellow episodes", str(fit.episodes_recorded), " / ".join(map(str, fit.episodes_simulated)))
    table.add_row("  recorded episodes matched", "", f"{fit.episodes_matched} of {fit.episodes_recorded}")
    table.add_row("Code Red entries", str(fit.red_recorded), " / ".join(map(str, fit.red_simulated)))
    return table


def _recording_notes(recording: Recording) -> list[str]:
    """What the reader found in the file (blanks, gaps, clock changes), one line per kind."""
    notes = []
    kinds: dict[str, list[int]] = {}
    for finding in recording.findings:
        kinds.setdefault(finding.kind, []).append(finding.line)
    words = {"blank": "blank cells (those samples are left out)", "gap": "gaps between samples",
             "repeat": "rows of a repeated hour (clocks went back)", "forward": "clock changes forward",
             "restart": "restarts"}
    for kind, lines in kinds.items():
        count = len(lines) + recording.findings_dropped.get(kind, 0)
        shown = ", ".join(map(str, lines[:FINDINGS_SHOWN])) + (" ..." if len(lines) > FINDINGS_SHOWN else "")
        notes.append(f"{recording.source}: {count:,} {words.get(kind, kind)} (line {shown})")
    return notes
