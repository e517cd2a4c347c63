"""The `cucm-sim` command line: run, explain, check, sweep, capacity, validate, metrics, schema, params.

Exit codes: 0 success, 1 an expectation of `check` failed or some runs of a `sweep` failed, 2 a user error
(bad YAML, unknown key, out-of-range value, missing file, existing output directory): one clear message per
problem on stderr, never a traceback; 130 when interrupted (Ctrl-C).  Progress bars appear only
on a terminal and only for runs that take more than a moment.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich import box
from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from cucm_sim import __version__
from cucm_sim.errors import UserError, bounded
from cucm_sim.measures.metrics import METRICS
from cucm_sim.report.capacity import (
    CAPACITY_DIRECTORY,
    CapacityResult,
    Condition,
    Probe,
    describe_capacity,
    write_capacity,
)
from cucm_sim.report.files import prepare_directory
from cucm_sim.report.narrative import narrate, narrative_text
from cucm_sim.report.output import prepare_output_dir, read_run, write_results
from cucm_sim.rules.throttling import ThrottlingParams
from cucm_sim.run.simulation import RunResult, simulate
from cucm_sim.scenario.loader import (
    apply_overrides,
    load_scenario,
    parse_scenario,
    read_yaml,
    scenario_files,
    scenario_warnings,
    unit_of,
)
from cucm_sim.scenario.schema import DEFAULT_SWEEP_METRICS, Scenario
from cucm_sim.scenario.workload import check_run
from cucm_sim.studies.backends import open_backend
from cucm_sim.studies.capacity import CapacityRunError, probe_scenario, search
from cucm_sim.studies.check import PASS_RULE, ScenarioCheck, check_scenarios
from cucm_sim.studies.grid import SweepDesign, load_sweep
from cucm_sim.studies.junit import check_junit_path, write_junit
from cucm_sim.studies.sweep import (
    RUNS_FILE,
    SweepCounts,
    SweepInterrupted,
    SweepReport,
    check_out_dir,
    run_sweep,
)

EXIT_CHECK_FAILED = 1
EXIT_RUNS_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
PROGRESS_AFTER_S = 1.0
LOG_WIDTH = 120

stdout = Console()
if not stdout.is_terminal and "COLUMNS" not in os.environ:
    stdout.width = LOG_WIDTH  # CI logs and pipes: rich would assume 80 columns and fold the tables
stderr = Console(stderr=True)
T = TypeVar("T")


def _fail(problems: list[str]) -> NoReturn:
    for problem in problems:  # user text: never interpreted as rich markup
        stderr.print(Text.assemble(("error:", "bold red"), " ", problem), highlight=False, soft_wrap=True)
    sys.exit(EXIT_USER_ERROR)


def _warn(scenario: Scenario, source: str) -> None:
    """Print on stderr what in `scenario` can have no effect (it starts after the run's end)."""
    for warning in scenario_warnings(scenario, source):
        stderr.print(Text.assemble(("warning:", "bold yellow"), " ", bounded(warning)), highlight=False,
                     soft_wrap=True)


def _user_errors_exit_2(action: Callable[[], T]) -> T:
    try:
        return action()
    except UserError as error:
        _fail(error.problems)


class _Commands(click.Group):
    """The command group, with what every command shares: SIGTERM is handled like Ctrl-C (what `timeout`, CI
    cancellation and `kill` send), and an interrupt anywhere, the writing of results included, ends in exit
    130; running out of memory or an operating-system error nobody expected is one line and exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        with _sigterm_as_interrupt():
            try:
                return super().invoke(ctx)
            except (KeyboardInterrupt, click.exceptions.Abort):
                stderr.print("interrupted", highlight=False)
                sys.exit(EXIT_INTERRUPTED)
            except MemoryError:
                _fail(["out of memory: the run asked for more memory than this machine could give; lower the "
                       "load, shorten duration_s or run fewer workers (docs/limits.md)"])
            except OSError as error:
                if error.errno == errno.EPIPE:
                    raise  # click says nothing for a closed pipe (`cucm-sim ... | head`)
                where = f"{error.filename}: " if error.filename else ""
                _fail([f"{where}{error.strerror or error}"])


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises KeyboardInterrupt, as Ctrl-C does (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signal: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


_ALLOW_LARGE_OPTION = click.option(
    "--allow-large", is_flag=True,
    help="Run even when the estimated work passes the limits (memory, wall time, runs in a sweep; "
    "docs/limits.md).",
)


def _check_work(scenario: Scenario, source: str, allow_large: bool) -> None:
    """Refuse (exit 2) a run whose estimated memory or wall time passes the limits, unless --allow-large."""
    if not allow_large:
        _user_errors_exit_2(lambda: check_run(scenario, source))


_ENGINE_OPTION = click.option(
    "--engine", type=click.Choice(["batched", "signal"]), default=None,
    help="Simulation engine, overriding the scenario's: batched (default, fast) or signal (the per-signal "
    "reference, slow).",
)


@main.command(short_help="Run a scenario and write its result directory.")
@click.argument("scenario_file", metavar="SCENARIO", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Result directory (default: results/<scenario name>). Written atomically.")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), help="Override the scenario's seed.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario field, e.g. --set throttling.code_yellow_entry_latency_ms=50 (repeatable).")
@_ENGINE_OPTION
@_ALLOW_LARGE_OPTION
@click.option("--no-plots", is_flag=True, help="Skip timeline.png (faster).")
@click.option("--force", is_flag=True, help="Replace the result directory if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the result directory.")
def run(scenario_file: Path, out_dir: Path | None, seed: int | None, overrides: tuple[str, ...],
        engine: str | None, allow_large: bool, no_plots: bool, force: bool, quiet: bool) -> None:
    """Run SCENARIO and write its result directory.

    Writes summary.json, timeline.csv, alarms.csv, scenario.resolved.yaml, narrative.txt and timeline.png.
    Unless --quiet, prints a summary and the start of the story (all of it: `cucm-sim explain DIR`).
    """
    all_overrides = [*overrides, *([f"seed={seed}"] if seed is not None else []),
                     *([f"engine={engine}"] if engine is not None else [])]
    scenario = _user_errors_exit_2(lambda: load_scenario(scenario_file, all_overrides))
    _warn(scenario, str(scenario_file))
    _check_work(scenario, str(scenario_file), allow_large)
    out_dir = out_dir or Path("results") / _safe_name(scenario.name)
    with _user_errors_exit_2(lambda: prepare_output_dir(out_dir, force)) as prepared:
        result = _simulate_or_exit(scenario)
        _user_errors_exit_2(lambda: write_results(result, prepared, plots=not no_plots))
    if quiet:
        click.echo(str(out_dir))
        return
    stdout.print(_summary_table(result))
    _print_what_happened((out_dir / "narrative.txt").read_text(encoding="utf-8"), out_dir)  # just written
    stdout.print(Text.assemble("results: ", (str(out_dir), "bold"), f" (seed {result.seed})"),
                 highlight=False, soft_wrap=True)


def _simulate_or_exit(scenario: Scenario) -> RunResult:
    """Run `scenario` with a progress bar; exit 130 on Ctrl-C or SIGTERM, 2 when it outgrows the limits."""
    progress = _LazyProgress(scenario.name)
    try:
        return _user_errors_exit_2(lambda: simulate(scenario, progress=progress))
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


@main.command(short_help="Check scenario files: one line per problem.")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Validate with these overrides.")
def validate(files: tuple[Path, ...], overrides: tuple[str, ...]) -> None:
    """Check scenario FILES; print one line per problem (file, field, value, allowed range)."""
    loaded, problems = _load_each(files, overrides)
    for path, _ in loaded:
        stdout.print(Text.assemble(("ok", "green"), f" {path}"), highlight=False, soft_wrap=True)
    if problems:
        _fail(problems)


def _load_each(files: Iterable[Path], overrides: tuple[str, ...]) -> tuple[list[tuple[Path, Scenario]], list[str]]:
    """Load every file: the scenarios that load, and every problem of those that do not."""
    loaded: list[tuple[Path, Scenario]] = []
    problems: list[str] = []
    for path in files:
        try:
            loaded.append((path, load_scenario(path, overrides)))
        except UserError as error:
            problems.extend(error.problems)
        else:
            _warn(loaded[-1][1], str(path))
    return loaded, problems


@main.command(short_help="Run scenarios and judge their expect: bounds.")
@click.argument("paths", nargs=-1, required=True, metavar="SCENARIO_OR_DIR...", type=click.Path(path_type=Path))
@click.option("--replications", "-n", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Independent runs per scenario: its own seed, then seeds derived from it (SeedSequence).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a field of every scenario, e.g. --set throttling.code_yellow_entry_latency_ms=50.")
@click.option("--junit", "junit_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the results as JUnit XML to this file.")
@click.option("--workers", "-j", type=click.IntRange(1, 1024), default=None,
              help="Processes to run on (default: one per CPU). Results do not depend on it.")
@_ENGINE_OPTION
@_ALLOW_LARGE_OPTION
def check(paths: tuple[Path, ...], replications: int, overrides: tuple[str, ...], junit_file: Path | None,
          workers: int | None, engine: str | None, allow_large: bool) -> None:
    """Run every scenario that has an `expect:` block and judge its bounds.

    Exit 0 when every expectation holds, 1 when any fails, 2 on a user error (nothing is run then).
    """
    files = _user_errors_exit_2(lambda: scenario_files(paths))
    scenarios, problems = _load_each(files, (*overrides, *([f"engine={engine}"] if engine is not None else [])))
    if problems:
        _fail(problems)
    to_check = [(path, scenario) for path, scenario in scenarios if scenario.expect]
    for path, scenario in to_check:
        _check_work(scenario, str(path), allow_large)
    skipped = [path for path, scenario in scenarios if not scenario.expect]
    if not to_check:
        _fail([f"{', '.join(map(str, paths))}: no scenario with an expect: block to check"])
    if junit_file is not None:
        _user_errors_exit_2(lambda: check_junit_path(junit_file))
    progress = _LazyProgress("check")
    try:
        checks = check_scenarios([(str(path), scenario) for path, scenario in to_check], replications,
                                 workers=workers or os.cpu_count() or 1, progress=progress)
    except KeyboardInterrupt:
        progress.close()
        stderr.print("interrupted: nothing was written")
        sys.exit(130)
    progress.close()
    stdout.print(_check_tables(checks, replications))
    for path in skipped:
        stdout.print(Text(f"skipped (no expect: block): {path}", style="dim"), highlight=False, soft_wrap=True)
    if junit_file is not None:
        _user_errors_exit_2(lambda: write_junit(checks, junit_file))
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
    scenarios = f"{len(checks)} scenario{'s' if len(checks) != 1 else ''}"
    parts: list[RenderableType] = [Text(f"cucm-sim check: {scenarios}, {runs}", style="bold")]
    if replications > 1:
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


class _RunsBar:
    """A progress bar over runs, on a terminal only: a detail (points or probes), runs done of all, runs per
    second (of the runs made now) and, when the total is known, the time left."""

    def __init__(self, label: str, eta: bool) -> None:
        self._label = label
        self._eta = eta
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._started = time.perf_counter()
        self._runs_at_start = 0

    def show(self, runs_done: int, runs_total: int, detail: str) -> None:
        if not stderr.is_terminal:
            return
        if self._progress is None:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"),
                TextColumn("{task.completed:.0f}/{task.total:.0f} runs"), TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(), *([TimeRemainingColumn()] if self._eta else []), console=stderr, transient=True,
            )
            self._progress.start()
            self._runs_at_start = runs_done
            self._task = self._progress.add_task(self._label, total=runs_total, completed=runs_done, detail="",
                                                 rate="")
        assert self._task is not None
        elapsed_s = time.perf_counter() - self._started
        made = runs_done - self._runs_at_start
        rate = f"{made / elapsed_s:.2f} runs/s" if made and elapsed_s > 0 else ""
        self._progress.update(self._task, completed=runs_done, total=runs_total, detail=detail, rate=rate)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


class _SweepProgress(_RunsBar):
    """A sweep's progress: points and runs done, runs per second, ETA."""

    def __init__(self, label: str) -> None:
        super().__init__(label, eta=True)

    def __call__(self, counts: SweepCounts) -> None:
        self.show(counts.runs_done, counts.runs_total, f"{counts.points_done}/{counts.points_total} points")


def _backend_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--workers, --scheduler and --dask-local: where the runs of a sweep or a capacity search go."""
    for option in reversed((
        click.option("--workers", "-j", type=click.IntRange(1, 1024), default=None,
                     help="Local processes to run on (default: one per CPU; 1 runs here). Results do not depend "
                     "on it."),
        click.option("--scheduler", metavar="tcp://HOST:PORT", default=None,
                     help="Run on the Dask cluster of this scheduler (needs pip install 'cucm-sim[dask]')."),
        click.option("--dask-local", "dask_local", type=click.IntRange(1, 1024), default=None, metavar="N",
                     help="Run on a Dask LocalCluster of N worker processes on this machine (loopback only)."),
    )):
        command = option(command)
    return command


@main.command(short_help="Run a scenario at every point of a grid.")
@click.argument("scenario_file", metavar="SCENARIO", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--grid", "grid", multiple=True, metavar="KEY=SPEC",
              help="A grid axis: KEY=V1,V2,... or KEY=START:STOP:STEP (stop included), e.g. "
              "load.calls_per_s=2,4,8. Repeatable; the last axis varies fastest. Replaces the scenario's "
              "sweep: grid.")
@click.option("--replications", "-n", type=click.IntRange(1, 1000), default=None,
              help="Runs per grid point, each with its own derived seed (default: the sweep: block's, else 3).")
@click.option("--metric", "metrics", multiple=True, metavar="METRIC",
              help=f"A metric to plot (repeatable; `cucm-sim metrics` lists them). Default: the sweep: block's, "
              f"else {', '.join(DEFAULT_SWEEP_METRICS)}.")
@click.option("--out", "out_dir", required=True, metavar="DIR", type=click.Path(path_type=Path, file_okay=False),
              help="The sweep's directory: sweep.json, runs.csv, points.csv, sweep.png.")
@_backend_options
@click.option("--resume", is_flag=True,
              help="Continue the sweep in DIR (same scenario and options): keep the runs runs.csv holds as ok, "
              "make the rest.")
@click.option("--force", is_flag=True, help="Start over: replace DIR if it holds a sweep (or is empty).")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), help="Override the scenario's seed (the root seed).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario field at every point, e.g. --set duration_s=600 (repeatable).")
@_ENGINE_OPTION
@_ALLOW_LARGE_OPTION
@click.option("--no-plots", is_flag=True, help="Skip sweep.png.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the sweep directory.")
def sweep(scenario_file: Path, grid: tuple[str, ...], replications: int | None, metrics: tuple[str, ...],
          out_dir: Path, workers: int | None, scheduler: str | None, dask_local: int | None, resume: bool,
          force: bool, seed: int | None, overrides: tuple[str, ...], engine: str | None, allow_large: bool,
          no_plots: bool, quiet: bool) -> None:
    """Run SCENARIO at every point of a grid, REPLICATIONS times each, and write DIR.

    Writes sweep.json (what was asked), runs.csv (one row per run, appended as each finishes), points.csv
    (per point: mean and 95 % CI of every metric) and sweep.png.  Each run's seed derives from the scenario
    seed, the point and the replication: the same sweep gives the same runs.csv on any backend.  Exit 0 when
    every run finished, 1 when some failed (the sweep goes on), 2 on a user error, 130 on Ctrl-C (every
    finished run is in runs.csv; --resume continues).
    """
    all_overrides = [*overrides, *([f"seed={seed}"] if seed is not None else []),
                     *([f"engine={engine}"] if engine is not None else [])]
    design = _user_errors_exit_2(lambda: load_sweep(scenario_file, overrides=all_overrides, grid=grid,
                                                    replications=replications, metrics=metrics,
                                                    allow_large=allow_large))
    _warn(design.scenario, str(scenario_file))
    _user_errors_exit_2(lambda: check_out_dir(out_dir, resume=resume, force=force))
    progress = _SweepProgress(design.scenario.name)
    try:
        with _user_errors_exit_2(lambda: open_backend(workers, scheduler, dask_local)) as backend:
            report = _user_errors_exit_2(lambda: run_sweep(design, backend, out_dir, resume=resume, force=force,
                                                           plots=not no_plots, progress=progress))
            description = backend.description
    except KeyboardInterrupt as interrupt:
        progress.close()
        if isinstance(interrupt, SweepInterrupted):
            stderr.print(f"interrupted: {interrupt.finished_runs} finished runs are in {interrupt.runs_csv}; "
                         "--resume continues", highlight=False, soft_wrap=True)
        else:
            stderr.print("interrupted before any run finished", highlight=False)
        sys.exit(EXIT_INTERRUPTED)
    progress.close()
    if quiet:
        click.echo(str(out_dir))
    else:
        stdout.print(_sweep_table(design, report, description))
    if report.runs_failed:
        points = ", ".join(map(str, report.failed_points))
        stderr.print(Text(f"{report.runs_failed} of {report.runs_ok + report.runs_failed} runs failed, at point"
                          f"{'s' if len(report.failed_points) > 1 else ''} {points}; their errors are in "
                          f"{out_dir / RUNS_FILE} (column error); --resume runs them again"),
                     highlight=False, soft_wrap=True)
        sys.exit(EXIT_RUNS_FAILED)


def _sweep_table(design: SweepDesign, report: SweepReport, backend: str) -> Table:
    axes = " x ".join(f"{axis.key} ({len(axis.values)})" for axis in design.axes)
    table = Table(title=Text(f"{design.scenario.name}: sweep"), show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("points", Text(f"{len(design.points):,}: {axes}"))  # user text: never rich markup
    table.add_row("runs ok / failed", f"{report.runs_ok:,} / {report.runs_failed:,} "
                  f"({design.replications} per point, root seed {design.root_seed})")
    kept = f", {report.runs_kept:,} kept from before" if report.runs_kept else ""
    table.add_row("runs made now", f"{report.runs_made:,}{kept}")
    table.add_row("wall time", f"{report.wall_s:.1f} s")
    table.add_row("runs per second", f"{report.runs_per_s:.2f}")
    table.add_row("ran on", backend)
    table.add_row("files", Text("\n".join(str(path) for path in report.files)))
    return table


class _CapacityProgress(_RunsBar):
    """A capacity search's progress: probes done, runs done of those started so far, runs per second (no
    ETA: how many probes a search makes is not known ahead)."""

    def __init__(self, label: str) -> None:
        super().__init__(label, eta=False)

    def __call__(self, probes_done: int, runs_done: int, runs_started: int) -> None:
        self.show(runs_done, runs_started, f"{probes_done} probes")


@main.command(short_help="Find the highest value of a key that keeps a condition false.")
@click.argument("scenario_file", metavar="SCENARIO", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--vary", "key", required=True, metavar="KEY",
              help="The scenario key to search, as in --set, e.g. load.calls_per_s or load.background.0.signals_per_s.")
@click.option("--lo", type=float, required=True, help="The lowest value to consider (the key's unit).")
@click.option("--hi", type=float, required=True, help="The highest value to consider (the key's unit).")
@click.option("--until", "condition", required=True, metavar="CONDITION",
              help='What must not happen, as "METRIC OP NUMBER", e.g. "code_yellow_entries > 0" or '
              '"dial_tone_delay_ms.p95 > 100" (`cucm-sim metrics` lists the metrics).')
@click.option("--replications", "-n", type=click.IntRange(1, 1000), default=5, show_default=True,
              help="Runs per probed value, with the same seeds at every value.")
@click.option("--tolerance", type=float, default=None,
              help="Stop when the knee is bracketed this tightly (the key's unit). Default: (hi - lo) / 64.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Result directory (default: results/<scenario name>-capacity): capacity.json, probes.csv, "
              "capacity.png. Written atomically.")
@_backend_options
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), help="Override the scenario's seed (the root seed).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario field at every probe, e.g. --set duration_s=600 (repeatable).")
@_ENGINE_OPTION
@_ALLOW_LARGE_OPTION
@click.option("--no-plots", is_flag=True, help="Skip capacity.png.")
@click.option("--force", is_flag=True, help="Replace the result directory if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the result directory.")
def capacity(scenario_file: Path, key: str, lo: float, hi: float, condition: str, replications: int,
             tolerance: float | None, out_dir: Path | None, workers: int | None, scheduler: str | None,
             dask_local: int | None, seed: int | None, overrides: tuple[str, ...], engine: str | None,
             allow_large: bool, no_plots: bool, force: bool, quiet: bool) -> None:
    """Find the highest value of a scenario KEY that keeps a CONDITION false, by bisection.

    Probes lo and hi, then splits the bracket [highest safe value, lowest tripped value] until it is no wider
    than the tolerance.  A value is safe when the condition is false in every replication (the confidence
    this gives is printed with the result).  Exit 0 with an answer (also when the condition already holds at
    lo or never holds up to hi: the message says so), 1 when a run failed (the search stops), 2 on a user
    error, 130 on Ctrl-C.
    """
    all_overrides = [*overrides, *([f"seed={seed}"] if seed is not None else []),
                     *([f"engine={engine}"] if engine is not None else [])]
    raw = _user_errors_exit_2(lambda: read_yaml(scenario_file))
    scenario = _user_errors_exit_2(lambda: parse_scenario(raw, str(scenario_file), all_overrides))  # all checked
    _warn(scenario, str(scenario_file))
    data = apply_overrides(raw, all_overrides)  # what each probe changes, as --set would (valid: parsed above)
    for end in (lo, hi):  # the work of a probe grows with the load: the ends of the range bound it
        try:
            probe = probe_scenario(data, key, end, str(scenario_file))
        except UserError:
            continue  # an end the key cannot take: the search itself says so, with the allowed range
        _check_work(probe, f"{scenario_file} (--vary {key} at {end:g})", allow_large)
    out_dir = out_dir or Path("results") / f"{_safe_name(scenario.name)}-capacity"
    with _user_errors_exit_2(lambda: prepare_directory(out_dir, CAPACITY_DIRECTORY, force=force)) as prepared:
        result = _search_or_exit(data, key, lo, hi, condition, replications, tolerance, scenario_file, scenario.name,
                                 workers, scheduler, dask_local)
        _user_errors_exit_2(lambda: prepared.fill(
            lambda directory: write_capacity(result, directory, plots=not no_plots)))
    if quiet:
        click.echo(str(out_dir))
        return
    stdout.print(_probes_table(result.probes, key, result.condition))
    for line in describe_capacity(result):
        stdout.print(Text(line), highlight=False, soft_wrap=True)
    stdout.print(Text.assemble("results: ", (str(out_dir), "bold"), f" (seeds {', '.join(map(str, result.seeds))})"),
                 highlight=False, soft_wrap=True)


def _search_or_exit(data: dict[str, Any], key: str, lo: float, hi: float, condition: str, replications: int,
                    tolerance: float | None, scenario_file: Path, name: str, workers: int | None,
                    scheduler: str | None, dask_local: int | None) -> CapacityResult:
    """The capacity search with a progress bar; exit 1 when a run failed, 2 on a user error, 130 on Ctrl-C."""
    progress = _CapacityProgress(f"{name}: {key}")
    try:
        with _user_errors_exit_2(lambda: open_backend(workers, scheduler, dask_local)) as backend:
            result = search(data, key, lo, hi, condition, replications, backend, tolerance, progress,
                            source=str(scenario_file))
    except CapacityRunError as failure:
        progress.close()
        if failure.probes:
            stdout.print(_probes_table(failure.probes, key, Condition.parse(condition)))
        for problem in failure.problems:
            stderr.print(Text.assemble(("error:", "bold red"), " ", problem), highlight=False, soft_wrap=True)
        sys.exit(EXIT_RUNS_FAILED)
    except UserError as error:
        progress.close()
        _fail(error.problems)
    except KeyboardInterrupt:
        progress.close()
        stderr.print("interrupted: nothing was written")
        sys.exit(EXIT_INTERRUPTED)
    progress.close()
    return result


def _probes_table(probes: Iterable[Probe], key: str, condition: Condition) -> Table:
    table = Table(title=Text(f"probes of {key}, until {condition}"), title_justify="left", box=box.SIMPLE_HEAD)
    for header, justify in (("#", "right"), ("round", "right"), (key, "right"), ("verdict", "left"),
                            ("tripped", "right"), (f"{condition.metric} mean", "right")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for probe in sorted(probes, key=lambda probe: probe.value):
        verdict = Text(probe.verdict, style="green" if probe.safe else "bold red")
        mean = probe.mean
        table.add_row(str(probe.order), str(probe.round), f"{probe.value:g}", verdict,
                      f"{probe.tripped}/{probe.runs}", "-" if mean is None else f"{mean:.4g}")
    return table


@main.command(short_help="List the metrics an expect: block may bound.")
def metrics() -> None:
    """List the metrics an `expect:` block may bound: dotted path, unit, meaning."""
    table = Table(title="Metrics for expect: (dotted paths into summary.json)", title_justify="left")
    for header in ("metric", "unit", "meaning"):
        table.add_column(header, overflow="fold")
    for metric in METRICS:
        table.add_row(metric.path, metric.unit, metric.description)
    stdout.print(table)
    stdout.print("A bound is {min: X}, {max: X}, {min: X, max: Y} or {equals: X}; a metric that did not happen "
                 "(None) fails every bound.", highlight=False)


@main.command(short_help="Print the scenario JSON Schema.")
def schema() -> None:
    """Print the scenario JSON Schema (for editor completion and validation)."""
    click.echo(json.dumps(Scenario.model_json_schema(), indent=2))


@main.command(short_help="Show the call-throttling service parameters.")
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
        # wrapped by hand: rich's Padding would pad every line with spaces to the full width (ugly in a pipe)
        description = textwrap.fill(field.description or "", width=stdout.width, initial_indent="    ",
                                    subsequent_indent="    ")
        stdout.print(Text(description + "\n"), highlight=False, soft_wrap=True)


@main.command(short_help="Tell the story of a written run in plain words.")
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(path_type=Path))
def explain(run_dir: Path) -> None:
    """Tell the story of the run in RUN_DIR in plain words (the text narrative.txt holds).

    Settings in words, then every disturbance and alarm in time order, second by second where it matters,
    then time in each state, calls rejected and a verdict.  Exit 2 if RUN_DIR is not a complete result.
    """
    saved = _user_errors_exit_2(lambda: read_run(run_dir))
    click.echo(narrative_text(narrate(saved.scenario, saved.timeline, saved.alarms, saved.summary)), nl=False)
