"""`cucm-sim check`: run scenarios with an `expect:` block and judge their bounds (`studies.check`).

Prints one table per scenario (bound, measured value or mean ± 95 % CI over replications, result), the
scenarios skipped for want of an `expect:` block and a verdict; `--junit` also writes JUnit XML.  Exit 0 when
every expectation holds, 1 when any fails, 2 on a user error (nothing is run then), 130 on Ctrl-C.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from cucm_sim.cli.app import (
    ALLOW_LARGE_OPTION,
    ENGINE_OPTION,
    EXIT_CHECK_FAILED,
    EXIT_INTERRUPTED,
    check_work,
    fail,
    load_each,
    overrides_with,
    stderr,
    stdout,
    user_errors_exit_2,
)
from cucm_sim.cli.progress import SimulatedTimeBar
from cucm_sim.scenario.loader import scenario_files
from cucm_sim.scenario.readings import ALL_READINGS
from cucm_sim.studies.check import ALL_READINGS_RULE, PASS_RULE, ScenarioCheck, check_scenarios
from cucm_sim.studies.junit import check_junit_path, write_junit


@click.command(short_help="Run scenarios and judge their expect: bounds.")
@click.argument("paths", nargs=-1, required=True, metavar="SCENARIO_OR_DIR...", type=click.Path(path_type=Path))
@click.option("--replications", "-n", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Independent runs per scenario: its own seed, then seeds derived from it (SeedSequence).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a field of every scenario, e.g. --set throttling.code_yellow_entry_latency_ms=50.")
@click.option("--junit", "junit_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the results as JUnit XML to this file.")
@click.option("--workers", "-j", type=click.IntRange(1, 1024), default=None,
              help="Processes to run on (default: one per CPU). Results do not depend on it.")
@click.option("--all-readings", is_flag=True,
              help="Run every scenario under all 12 readings of Cisco's ambiguous throttling rules (sample_rule, "
              "exit_rule, delay_resolution), with the same seeds; a bound passes only if it holds under every one.")
@ENGINE_OPTION
@ALLOW_LARGE_OPTION
def check(paths: tuple[Path, ...], replications: int, overrides: tuple[str, ...], junit_file: Path | None,
          workers: int | None, all_readings: bool, engine: str | None, allow_large: bool) -> None:
    """Run every scenario that has an `expect:` block and judge its bounds.

    Exit 0 when every expectation holds, 1 when any fails, 2 on a user error (nothing is run then).
    """
    files = user_errors_exit_2(lambda: scenario_files(paths))
    scenarios, problems = load_each(files, overrides_with(overrides, None, engine))
    if problems:
        fail(problems)
    to_check = [(path, scenario) for path, scenario in scenarios if scenario.expect]
    for path, scenario in to_check:
        check_work(scenario, str(path), allow_large)
    skipped = [path for path, scenario in scenarios if not scenario.expect]
    if not to_check:
        fail([f"{', '.join(map(str, paths))}: no scenario with an expect: block to check"])
    if junit_file is not None:
        user_errors_exit_2(lambda: check_junit_path(junit_file))
    progress = SimulatedTimeBar("check")
    try:
        checks = check_scenarios([(str(path), scenario) for path, scenario in to_check], replications,
                                 workers=workers or os.cpu_count() or 1, progress=progress,
                                 readings=ALL_READINGS if all_readings else ())
    except KeyboardInterrupt:
        progress.close()
        stderr.print("interrupted: nothing was written")
        sys.exit(EXIT_INTERRUPTED)
    progress.close()
    stdout.print(_check_tables(checks, replications))
    for path in skipped:
        stdout.print(Text(f"skipped (no expect: block): {path}", style="dim"), highlight=False, soft_wrap=True)
    if junit_file is not None:
        user_errors_exit_2(lambda: write_junit(checks, junit_file))
    outcomes = [outcome for check in checks for outcome in check.outcomes]
    failed = sum(not outcome.passed for outcome in outcomes)
    verdict = Text.assemble(
        (f"{len(outcomes) - failed} of {len(outcomes)} expectations passed", "bold green" if not failed else "bold"),
        (f"; {failed} failed" if failed else "", "bold red"),
    )
    stdout.print(verdict, highlight=False)
    if failed:
        sys.exit(EXIT_CHECK_FAILED)


def _check_tables(checks: list[ScenarioCheck], replications: int) -> Group:
    runs = "one run each" if replications == 1 else f"{replications} replications each, mean ± 95 % CI [min .. max]"
    readings = len(checks[0].readings) if checks else 0
    if readings:
        runs = (f"{'one run' if replications == 1 else f'{replications} replications'} under each of {readings} "
                "readings (same seeds); measured: mean ± 95 % CI [min .. max] of all")
    scenarios = f"{len(checks)} scenario{'s' if len(checks) != 1 else ''}"
    parts: list[RenderableType] = [Text(f"cucm-sim check: {scenarios}, {runs}", style="bold")]
    if readings:
        parts.append(Text(f"{ALL_READINGS_RULE}.", style="italic"))
    elif replications > 1:
        parts.append(Text(f"{PASS_RULE}.", style="italic"))
    for check in checks:
        derived = f" + {len(check.seeds) - 1} derived" if len(check.seeds) > 1 else ""
        where = f"  {check.source}, seed {check.seeds[0]}{derived}"
        parts.append(Text.assemble("\n", (check.scenario.name, "bold"), where))
        table = Table(box=box.SIMPLE_HEAD, padding=(0, 1))
        table.add_column("metric", no_wrap=True)
        table.add_column("bound", no_wrap=True)
        table.add_column("measured", overflow="fold")
        table.add_column("result", overflow="fold")
        for outcome in check.outcomes:
            result = Text(outcome.describe_result(), style="green" if outcome.passed else "bold red")
            table.add_row(outcome.metric, outcome.bound.describe(), outcome.describe_measured(), result)
        parts.append(table)
    return Group(*parts)
