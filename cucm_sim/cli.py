"""The `cucm-sim` command line: run, validate, schema, params.

Exit codes: 0 success, 2 a user error (bad YAML, unknown key, out-of-range value, missing file, existing
output directory): one clear message per problem on stderr, never a traceback.  Progress bars appear only
on a terminal and only for runs that take more than a moment.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.padding import Padding
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from cucm_sim import __version__
from cucm_sim.errors import UserError
from cucm_sim.loader import load_scenario, unit_of
from cucm_sim.output import check_output_dir, write_results
from cucm_sim.runner import RunResult, simulate
from cucm_sim.schema import Scenario
from cucm_sim.throttling import ThrottlingParams

EXIT_USER_ERROR = 2
PROGRESS_AFTER_S = 1.0

stdout = Console()
stderr = Console(stderr=True)
T = TypeVar("T")


def _fail(problems: list[str]) -> NoReturn:
    for problem in problems:  # user text: never interpreted as rich markup
        stderr.print(Text.assemble(("error:", "bold red"), " ", problem), highlight=False, soft_wrap=True)
    sys.exit(EXIT_USER_ERROR)


def _user_errors_exit_2(action: Callable[[], T]) -> T:
    try:
        return action()
    except UserError as error:
        _fail(error.problems)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="cucm-sim")
def main() -> None:
    """Simulate CUCM call throttling: Code Yellow, Code Red and SCCP device throttling.

    Write a scenario YAML (see scenarios/), then `cucm-sim run SCENARIO`.
    """


class _LazyProgress:
    """A progress bar that appears only once a run has taken PROGRESS_AFTER_S, and only on a terminal."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._started = time.perf_counter()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, done_s: float, total_s: float) -> None:
        if self._progress is None:
            if not stderr.is_terminal or time.perf_counter() - self._started < PROGRESS_AFTER_S:
                return
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(),
                TextColumn("{task.completed:.0f}/{task.total:.0f} simulated s"),
                TimeElapsedColumn(), TimeRemainingColumn(), console=stderr, transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self._label, total=total_s)
        assert self._task is not None
        self._progress.update(self._task, completed=done_s)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


@main.command()
@click.argument("scenario_file", metavar="SCENARIO", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Result directory (default: results/<scenario name>). Written atomically.")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), help="Override the scenario's seed.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario field, e.g. --set throttling.code_yellow_entry_latency_ms=50 (repeatable).")
@click.option("--no-plots", is_flag=True, help="Skip timeline.png (faster).")
@click.option("--force", is_flag=True, help="Replace the result directory if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the result directory.")
def run(scenario_file: Path, out_dir: Path | None, seed: int | None, overrides: tuple[str, ...],
        no_plots: bool, force: bool, quiet: bool) -> None:
    """Run SCENARIO and write summary.json, timeline.csv, alarms.csv, scenario.resolved.yaml, timeline.png."""
    all_overrides = [*overrides, *([f"seed={seed}"] if seed is not None else [])]
    scenario = _user_errors_exit_2(lambda: load_scenario(scenario_file, all_overrides))
    out_dir = out_dir or Path("results") / _safe_name(scenario.name)
    _user_errors_exit_2(lambda: check_output_dir(out_dir, force))
    progress = _LazyProgress(scenario.name)
    try:
        result = simulate(scenario, progress=progress)
    except KeyboardInterrupt:
        progress.close()
        stderr.print("interrupted: nothing was written")
        sys.exit(130)
    progress.close()
    _user_errors_exit_2(lambda: write_results(result, out_dir, force=force, plots=not no_plots))
    if quiet:
        click.echo(str(out_dir))
        return
    stdout.print(_summary_table(result))
    stdout.print(Text.assemble("results: ", (str(out_dir), "bold"), f" (seed {result.seed})"),
                 highlight=False, soft_wrap=True)


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".") or "run"


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if not isinstance(value, float):
        return f"{value:,} {unit}".rstrip()
    text = f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def _summary_table(result: RunResult) -> Table:
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
    table.add_row("dial-tone delay p95 / max", f"{_fmt(dial_tone['p95'])} / {_fmt(dial_tone['max'], 'ms')}")
    table.add_row("signal wait mean / p99", f"{_fmt(wait['mean'])} / {_fmt(wait['p99'], 'ms')}")
    table.add_row("max average expected delay", _fmt(summary["max_average_expected_delay_ms"], "ms"))
    table.add_row("signals processed / lost in restarts",
                  f"{summary['signals_processed']:,} / {summary['signals_lost_restart']:,}")
    table.add_row("SCCP devices throttled", f"{summary['skinny_devices_throttled']:,}")
    table.add_row("wall time", f"{result.wall_s:.1f} s")
    return table


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Validate with these overrides.")
def validate(files: tuple[Path, ...], overrides: tuple[str, ...]) -> None:
    """Check scenario FILES; print one line per problem (file, field, value, allowed range)."""
    problems: list[str] = []
    for path in files:
        try:
            load_scenario(path, overrides)
        except UserError as error:
            problems.extend(error.problems)
        else:
            stdout.print(Text.assemble(("ok", "green"), f" {path}"), highlight=False, soft_wrap=True)
    if problems:
        _fail(problems)


@main.command()
def schema() -> None:
    """Print the scenario JSON Schema (for editor completion and validation)."""
    click.echo(json.dumps(Scenario.model_json_schema(), indent=2))


@main.command()
def params() -> None:
    """Show the call-throttling service parameters: name, unit, default, range, meaning."""
    stdout.print("[bold]Cisco CallManager service parameters, Call Throttling[/] (scenario section `throttling:`)\n")
    for name, field in ThrottlingParams.model_fields.items():
        unit = "events per 5 s" if name == "max_events_allowed" else unit_of(name)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        allowed = str(extra.get("allowed", ""))
        if not allowed:
            bounds = {type(m).__name__: m for m in field.metadata}
            if "Ge" in bounds and "Le" in bounds:
                allowed = f"{bounds['Ge'].ge}..{bounds['Le'].le}"
            else:
                allowed = " or ".join(getattr(field.annotation, "__args__", ()))
        line = f"[bold cyan]{name}[/]  default {field.default} {unit}, allowed {allowed} {unit}"
        stdout.print(line.replace(" ,", ",").rstrip(), highlight=False)
        stdout.print(Padding(field.description or "", (0, 0, 1, 4)), highlight=False)


if __name__ == "__main__":
    main()
