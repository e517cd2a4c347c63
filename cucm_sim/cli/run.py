"""`cucm-sim run` and `cucm-sim explain`: one run, written to its result directory, and its story told again.

`run` loads and checks the scenario, simulates it with a progress bar, writes the result directory
(`report.output`) and prints a summary table and the start of the story; `explain` reads a result directory
back and prints the whole story, exactly as narrative.txt holds it.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from cucm_sim.cli.app import (
    ALLOW_LARGE_OPTION,
    ENGINE_OPTION,
    EXIT_INTERRUPTED,
    check_work,
    overrides_with,
    safe_name,
    stderr,
    stdout,
    user_errors_exit_2,
    warn,
)
from cucm_sim.cli.export import perfmon_options, sampling_options
from cucm_sim.cli.progress import SimulatedTimeBar
from cucm_sim.report.cluster_narrative import narrate_cluster
from cucm_sim.report.host_narrative import narrate_hosts
from cucm_sim.report.narrative import narrate, narrative_text
from cucm_sim.report.output import prepare_output_dir, read_run, write_results
from cucm_sim.run.simulation import RunResult, simulate
from cucm_sim.scenario.loader import load_scenario
from cucm_sim.scenario.schema import Scenario


@click.command(short_help="Run a scenario and write its result directory.")
@click.argument("scenario_file", metavar="SCENARIO", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Result directory (default: results/<scenario name>). Written atomically.")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), help="Override the scenario's seed.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario field, e.g. --set throttling.code_yellow_entry_latency_ms=50 (repeatable).")
@ENGINE_OPTION
@ALLOW_LARGE_OPTION
@click.option("--no-plots", is_flag=True, help="Skip timeline.png (faster).")
@click.option("--force", is_flag=True, help="Replace the result directory if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the result directory.")
@click.option("--perfmon", is_flag=True,
              help="Write perfmon.csv too: the counters as Perfmon CSV (sampled as the options below say).")
@sampling_options
def run(scenario_file: Path, out_dir: Path | None, seed: int | None, overrides: tuple[str, ...],
        engine: str | None, allow_large: bool, no_plots: bool, force: bool, quiet: bool, perfmon: bool,
        interval_s: int, start: datetime, zone_name: str, host: str, typeperf: bool) -> None:
    """Run SCENARIO and write its result directory.

    Writes summary.json, timeline.csv, alarms.csv, alarms.log (the alarms as CUCM syslog lines),
    signals_by_queue.csv, scenario.resolved.yaml, narrative.txt and timeline.png; with --perfmon, perfmon.csv
    (`cucm-sim export DIR --format perfmon` writes it later just as well).  Unless --quiet, prints a summary
    and the start of the story (all of it: `cucm-sim explain DIR`).
    """
    perfmon_sampling = (user_errors_exit_2(lambda: perfmon_options(interval_s, start, zone_name, host, typeperf))
                        if perfmon else None)
    all_overrides = overrides_with(overrides, seed, engine)
    scenario = user_errors_exit_2(lambda: load_scenario(scenario_file, all_overrides))
    warn(scenario, str(scenario_file))
    check_work(scenario, str(scenario_file), allow_large)
    out_dir = out_dir or Path("results") / safe_name(scenario.name)
    with user_errors_exit_2(lambda: prepare_output_dir(out_dir, force)) as prepared:
        result = _simulate_or_exit(scenario)
        user_errors_exit_2(lambda: write_results(result, prepared, plots=not no_plots, perfmon=perfmon_sampling))
    if quiet:
        click.echo(str(out_dir))
        return
    stdout.print(_summary_table(result))
    if result.nodes:
        stdout.print(_node_table(result))
    _print_what_happened((out_dir / "narrative.txt").read_text(encoding="utf-8"), out_dir)  # just written
    stdout.print(Text.assemble("results: ", (str(out_dir), "bold"), f" (seed {result.seed})"),
                 highlight=False, soft_wrap=True)


def _simulate_or_exit(scenario: Scenario) -> RunResult:
    """Run `scenario` with a progress bar; exit 130 on Ctrl-C or SIGTERM, 2 when it outgrows the limits."""
    progress = SimulatedTimeBar(scenario.name)
    try:
        return user_errors_exit_2(lambda: simulate(scenario, progress=progress))
    except KeyboardInterrupt:
        progress.close()  # first, so the bar does not cover the message
        stderr.print("interrupted: nothing was written")
        sys.exit(EXIT_INTERRUPTED)
    finally:
        progress.close()  # idempotent: also on success and on a user error


WHAT_HAPPENED_LINES = 12
"""Lines of the run's story `run` prints; the whole story is in narrative.txt and `cucm-sim explain`."""


def _print_what_happened(story: str, out_dir: Path) -> None:
    lines = story.splitlines()
    stdout.print(Text("What happened", style="bold"))
    for line in lines[:WHAT_HAPPENED_LINES]:  # user text (the scenario name): never rich markup
        stdout.print(Text(line), highlight=False, soft_wrap=True)
    if len(lines) > WHAT_HAPPENED_LINES:
        stdout.print(Text(f"... {len(lines) - WHAT_HAPPENED_LINES} more lines: cucm-sim explain {out_dir}"),
                     highlight=False, soft_wrap=True)


def _summary_value(value: Any, unit: str = "") -> str:
    """A value of the summary table: '-' for None, ints with thousands separators, floats to one decimal from
    10 up and to two below, then the unit."""
    if value is None:
        return "-"
    if not isinstance(value, float):
        return f"{value:,} {unit}".rstrip()
    text = f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def _summary_table(result: RunResult) -> Table:
    if not result.scenario.has_node:
        return _host_summary_table(result)
    summary = result.summary
    calls = summary["calls_attempted"]
    rejected = summary["calls_rejected_throttled"]
    states = summary["time_in_state_s"]
    dial_tone = summary["dial_tone_delay_ms"]
    wait = summary["signal_wait_ms"]
    table = Table(title=Text(f"{summary['scenario']}: {summary['duration_s']:,} simulated s"), show_header=False,
                  title_justify="left")
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    table.add_row("time Normal / Code Yellow / Code Red",
                  f"{states['Normal']:,.0f} / {states['CodeYellow']:,.0f} / {states['CodeRed']:,.0f} s")
    table.add_row("Code Yellow entries / exits, Code Red entries",
                  f"{summary['code_yellow_entries']} / {summary['code_yellow_exits']}, {summary['code_red_entries']}")
    share = f" ({rejected / calls:.1%})" if calls else ""
    table.add_row("calls attempted / accepted", f"{calls:,} / {summary['calls_accepted']:,}")
    table.add_row("calls rejected (throttled) / failed (node down)",
                  f"{rejected:,}{share} / {summary['calls_failed_node_down']:,}")
    table.add_row("dial-tone delay p95 / max",
                  f"{_summary_value(dial_tone['p95'])} / {_summary_value(dial_tone['max'], 'ms')}")
    table.add_row("signal wait mean / p99", f"{_summary_value(wait['mean'])} / {_summary_value(wait['p99'], 'ms')}")
    table.add_row("max average expected delay", _summary_value(summary["max_average_expected_delay_ms"], "ms"))
    table.add_row("signals processed / lost in restarts",
                  f"{summary['signals_processed']:,} / {summary['signals_lost_restart']:,}")
    table.add_row("SCCP devices throttled", f"{summary['skinny_devices_throttled']:,}")
    if result.nodes:
        table.add_row("phone failovers / rehomes", f"{summary['phone_failovers']:,} / {summary['phone_rehomes']:,}")
        table.add_row("calls not placed (phones with no node)", f"{summary['calls_not_placed']:,}")
        table.add_row("phones with no node at the end", f"{summary['phones_unregistered_at_end']:,}")
    table.add_row("wall time", f"{result.wall_s:.1f} s")
    return table


def _node_table(result: RunResult) -> Table:
    """A cluster's nodes, one line each: time in each state, calls rejected and failed, the largest average
    expected delay and the phones registered at the end."""
    table = Table(title=Text("each node"), title_justify="left")
    for heading in ("node", "Normal / Code Yellow / Code Red", "calls rejected / failed", "max average delay",
                    "phones at the end"):
        table.add_column(heading, justify="left" if heading == "node" else "right")
    for node in result.nodes:
        metrics = node.summary
        states = metrics["time_in_state_s"]
        table.add_row(
            Text(node.name),
            f"{states['Normal']:,.0f} / {states['CodeYellow']:,.0f} / {states['CodeRed']:,.0f} s",
            f"{metrics['calls_rejected_throttled']:,} / {metrics['calls_failed_node_down']:,}",
            _summary_value(metrics["max_average_expected_delay_ms"], "ms"),
            f"{metrics['registered_devices_at_end']:,}",
        )
    return table


@click.command(short_help="Tell the story of a written run in plain words.")
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(path_type=Path))
def explain(run_dir: Path) -> None:
    """Tell the story of the run in RUN_DIR in plain words (the text narrative.txt holds).

    Settings in words, then every disturbance and alarm in time order, second by second where it matters,
    then time in each state, calls rejected and a verdict.  Exit 2 if RUN_DIR is not a complete result.
    """
    saved = user_errors_exit_2(lambda: read_run(run_dir))
    if saved.scenario.cluster is not None:
        story = narrate_cluster(saved.scenario, saved.nodes, saved.summary)
    elif not saved.scenario.has_node:
        story = narrate_hosts(saved.scenario, saved.timeline, saved.log, saved.summary)
    else:
        story = narrate(saved.scenario, saved.timeline, saved.alarms, saved.summary)
    click.echo(narrative_text(story), nl=False)


def _host_summary_table(result: RunResult) -> Table:
    summary = result.summary
    table = Table(title=Text(f"{summary['scenario']}: {summary['duration_s']:,} simulated s"), show_header=False,
                  title_justify="left")
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    heartbeats = (summary["heartbeats_sent"], summary["heartbeats_received"], summary["heartbeats_missed"])
    table.add_row("heartbeats sent / received / missed", " / ".join(f"{count:,}" for count in heartbeats))
    table.add_row("sessions closed", f"{summary['sessions_closed']:,}")
    table.add_row("time in partial service", _summary_value(float(summary["time_in_partial_service_s"]), "s"))
    table.add_row("packets dropped (Packets Received Discarded)", f"{summary['packets_dropped']:,}")
    table.add_row("max DPC Rate (DPCs per tick)", f"{summary['max_dpc_rate']:,}")
    table.add_row("wall time", f"{result.wall_s:.1f} s")
    return table
