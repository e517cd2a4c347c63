"""`cucm-sim sensitivity`: a scenario under every reading of Cisco's ambiguous throttling rules.

Runs the scenario under the 12 combinations of `sample_rule`, `exit_rule` and `delay_resolution`
(`studies.sensitivity`), with the same seeds under each, prints each metric under each reading (red where a
reading breaks the scenario's bound, * on the scenario's own reading), each bound's verdict (holds under all,
some or none of the readings, and the switches it depends on) and the conclusion, and writes
sensitivity.json, readings.csv and sensitivity.png (`report.sensitivity`).  Exit 0 when the study ran
(whatever it found: `check --all-readings` is the gate), 2 on a user error, 130 on Ctrl-C.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Final

import click
from rich import box
from rich.table import Table
from rich.text import Text

from cucm_sim.cli.app import (
    ALLOW_LARGE_OPTION,
    ENGINE_OPTION,
    EXIT_INTERRUPTED,
    check_work,
    fail,
    overrides_with,
    safe_name,
    stderr,
    stdout,
    user_errors_exit_2,
    warn,
)
from cucm_sim.cli.progress import SimulatedTimeBar
from cucm_sim.errors import UserError
from cucm_sim.report.files import prepare_directory
from cucm_sim.report.formats import format_value
from cucm_sim.report.sensitivity import (
    SENSITIVITY_DIRECTORY,
    SensitivityResult,
    conclusion,
    write_sensitivity,
)
from cucm_sim.scenario.loader import load_scenario
from cucm_sim.studies.scenario_metrics import check_metrics
from cucm_sim.studies.sensitivity import check_has_throttling, run_sensitivity


@click.command(short_help="Run a scenario under every reading of Cisco's ambiguous throttling rules.")
@click.argument("scenario_file", metavar="SCENARIO", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--replications", "-n", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Runs per reading: the scenario's seed, then seeds derived from it; the same under every reading.")
@click.option("--metric", "metrics", multiple=True, metavar="METRIC",
              help="A metric to show besides the expect: bounds' (repeatable; default: Code Yellow entries and "
              "time, Code Red entries, the rejected share and dial-tone p95). `cucm-sim metrics` lists them.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Result directory (default: results/<scenario name>-sensitivity): sensitivity.json, readings.csv, "
              "sensitivity.png. Written atomically.")
@click.option("--workers", "-j", type=click.IntRange(1, 1024), default=None,
              help="Processes to run on (default: one per CPU). Results do not depend on it.")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), help="Override the scenario's seed.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario field under every reading, e.g. --set duration_s=600 (repeatable).")
@ENGINE_OPTION
@ALLOW_LARGE_OPTION
@click.option("--no-plots", is_flag=True, help="Skip sensitivity.png.")
@click.option("--force", is_flag=True, help="Replace the result directory if it holds a sensitivity study.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the result directory.")
def sensitivity(scenario_file: Path, replications: int, metrics: tuple[str, ...], out_dir: Path | None,
                workers: int | None, seed: int | None, overrides: tuple[str, ...], engine: str | None,
                allow_large: bool, no_plots: bool, force: bool, quiet: bool) -> None:
    """Run SCENARIO under every reading of Cisco's ambiguous throttling rules, with the same random numbers.

    The readings: sample_rule consecutive_nonzero | rolling | batch, exit_rule at_or_below | below,
    delay_resolution exact | whole_ms (12 in all).  Prints each metric under each reading and which expect:
    bounds hold under all, some or none of them; writes the result directory.
    """
    scenario = user_errors_exit_2(lambda: load_scenario(scenario_file, overrides_with(overrides, seed, engine)))
    warn(scenario, str(scenario_file))
    user_errors_exit_2(lambda: check_has_throttling(scenario, str(scenario_file)))
    user_errors_exit_2(lambda: check_metrics(scenario, [(f"--metric {metric}", metric) for metric in metrics]))
    check_work(scenario, str(scenario_file), allow_large)
    out_dir = out_dir or Path("results") / f"{safe_name(scenario.name)}-sensitivity"
    with user_errors_exit_2(lambda: prepare_directory(out_dir, SENSITIVITY_DIRECTORY, force=force)) as prepared:
        progress = SimulatedTimeBar(f"sensitivity: {scenario.name}")
        try:
            result = run_sensitivity(str(scenario_file), scenario, replications, workers or os.cpu_count() or 1,
                                     progress, metrics)
        except KeyboardInterrupt:
            progress.close()
            stderr.print("interrupted: nothing was written")
            sys.exit(EXIT_INTERRUPTED)
        except UserError as error:
            progress.close()
            fail(error.problems)
        progress.close()
        user_errors_exit_2(lambda: prepared.fill(
            lambda directory: write_sensitivity(result, directory, plots=not no_plots)))
    if quiet:
        click.echo(str(out_dir))
        return
    stdout.print(_readings_table(result))
    if result.bounds:
        stdout.print(_bounds_table(result))
    for line in conclusion(result):
        stdout.print(Text(line), highlight=False, soft_wrap=True)
    seeds = ", ".join(map(str, result.seeds))
    stdout.print(Text.assemble("results: ", (str(out_dir), "bold"), f" (seed{'s' if len(result.seeds) > 1 else ''} "
                               f"{seeds}, the same under every reading)"), highlight=False, soft_wrap=True)


HEADER_WORDS: Final = {"consecutive_nonzero": "cons", "rolling": "roll", "batch": "batch", "at_or_below": "<=",
                       "below": "<", "exact": "exact", "whole_ms": "whole"}
"""A reading's column header, one short word per switch (the legend under the title spells them out)."""


def _readings_table(result: SensitivityResult) -> Table:
    """Metrics down, readings across (so a metric's name is never folded): each cell the metric's mean."""
    runs = "one run each" if len(result.seeds) == 1 else f"means of {len(result.seeds)} replications"
    title = Text.assemble(
        (f"{result.name} under every reading", "bold"), f" ({runs}; red: the reading breaks the bound; *: the "
        "scenario's own reading)\ncolumns: sample_rule (cons = consecutive_nonzero, roll = rolling, batch) / "
        "exit_rule (<= at_or_below, < below) / delay_resolution (exact, whole = whole_ms)")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False)
    table.add_column("metric", no_wrap=True)
    for reading in result.readings:
        own = "*" if reading == result.own_reading else ""
        table.add_column("\n".join(HEADER_WORDS.get(value, value) for value in reading.values) + own,
                         justify="right", no_wrap=True)
    for m, metric in enumerate(result.metrics):
        verdict = result.bound_of(metric)
        cells = []
        for r in range(len(result.readings)):
            mean = result.mean(r, m)
            broken = verdict is not None and not verdict.holds[r]
            cells.append(Text("-" if mean is None else format_value(mean), style="bold red" if broken else ""))
        table.add_row(metric, *cells)
    return table


def _bounds_table(result: SensitivityResult) -> Table:
    table = Table(title=Text("expect: bounds across the readings"), title_justify="left", box=box.SIMPLE_HEAD)
    for header in ("metric", "bound", "holds under", "depends on"):
        table.add_column(header, no_wrap=header != "depends on")
    for verdict in result.bounds:
        style = {"all": "green", "some": "bold yellow", "none": "bold red"}[verdict.verdict]
        table.add_row(verdict.metric, verdict.bound.describe(), Text(f"{verdict.describe()} readings", style=style),
                      ", ".join(verdict.depends_on) or ("-" if verdict.verdict != "some" else "switches together"))
    return table

