"""`cucm-sim sweep` and `cucm-sim capacity`: the studies of many runs, on the backend the options choose.

`sweep` runs a scenario at every point of a grid (`studies.sweep`) and prints what it did; `capacity`
searches for the highest value of a key that keeps a condition false (`studies.capacity`), prints its
probes and answer (`report.capacity`) and writes its result directory.  Both run on `--workers` local
processes, a Dask `--scheduler` or a `--dask-local` cluster (`studies.backends`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.table import Table
from rich.text import Text

from cucm_sim.cli.app import (
    ALLOW_LARGE_OPTION,
    ENGINE_OPTION,
    EXIT_INTERRUPTED,
    EXIT_RUNS_FAILED,
    backend_options,
    check_work,
    fail,
    overrides_with,
    safe_name,
    stderr,
    stdout,
    user_errors_exit_2,
    warn,
)
from cucm_sim.cli.progress import CapacityBar, SweepBar
from cucm_sim.errors import UserError
from cucm_sim.report.capacity import (
    CAPACITY_DIRECTORY,
    CapacityResult,
    Condition,
    Probe,
    describe_capacity,
    write_capacity,
)
from cucm_sim.report.files import prepare_directory
from cucm_sim.scenario.loader import apply_overrides, parse_scenario, read_yaml
from cucm_sim.scenario.schema import DEFAULT_SWEEP_METRICS
from cucm_sim.studies.backends import open_backend
from cucm_sim.studies.capacity import CapacityRunError, probe_scenario, search
from cucm_sim.studies.grid import SweepDesign, load_sweep
from cucm_sim.studies.scenario_metrics import check_metrics
from cucm_sim.studies.sweep import RUNS_FILE, SweepInterrupted, SweepReport, check_out_dir, run_sweep


@click.command(short_help="Run a scenario at every point of a grid.")
@click.argument("scenario_file", metavar="SCENARIO", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--grid", "grid", multiple=True, metavar="KEY=SPEC",
              help="A grid axis: KEY=V1,V2,... or KEY=START:STOP:STEP (stop included), e.g. "
              "load.calls_per_s=2,4,8. Repeatable; the last axis varies fastest. Replaces the scenario's "
              "sweep: grid.")
@click.option("--replications", "-n", type=click.IntRange(1, 1000), default=None,
              help="Runs per grid point, each with its own derived seed (default: the sweep: block's, else 3).")
@click.option("--metric", "metrics", multiple=True, metavar="METRIC",
              help=f"A metric to plot (repeatable; `cucm-sim metrics SCENARIO` lists them, a cluster's "
              f"nodes.NAME.* too). Default: the sweep: block's, else {', '.join(DEFAULT_SWEEP_METRICS)}.")
@click.option("--out", "out_dir", required=True, metavar="DIR", type=click.Path(path_type=Path, file_okay=False),
              help="The sweep's directory: sweep.json, runs.csv, points.csv, sweep.png.")
@backend_options
@click.option("--resume", is_flag=True,
              help="Continue the sweep in DIR (same scenario and options): keep the runs runs.csv holds as ok, "
              "make the rest.")
@click.option("--force", is_flag=True, help="Start over: replace DIR if it holds a sweep (or is empty).")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), help="Override the scenario's seed (the root seed).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario field at every point, e.g. --set duration_s=600 (repeatable).")
@ENGINE_OPTION
@ALLOW_LARGE_OPTION
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
    all_overrides = overrides_with(overrides, seed, engine)
    design = user_errors_exit_2(lambda: load_sweep(scenario_file, overrides=all_overrides, grid=grid,
                                                   replications=replications, metrics=metrics,
                                                   allow_large=allow_large))
    warn(design.scenario, str(scenario_file))
    user_errors_exit_2(lambda: check_out_dir(out_dir, resume=resume, force=force))
    progress = SweepBar(design.scenario.name)
    try:
        with user_errors_exit_2(lambda: open_backend(workers, scheduler, dask_local)) as backend:
            report = user_errors_exit_2(lambda: run_sweep(design, backend, out_dir, resume=resume, force=force,
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


@click.command(short_help="Find the highest value of a key that keeps a condition false.")
@click.argument("scenario_file", metavar="SCENARIO", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--vary", "key", required=True, metavar="KEY",
              help="The scenario key to search, as in --set, e.g. load.calls_per_s, load.background.0.signals_per_s "
              "or devices.pools.0.count.")
@click.option("--lo", type=float, required=True, help="The lowest value to consider (the key's unit).")
@click.option("--hi", type=float, required=True, help="The highest value to consider (the key's unit).")
@click.option("--until", "condition", required=True, metavar="CONDITION",
              help='What must not happen, as "METRIC OP NUMBER", e.g. "code_yellow_entries > 0", '
              '"dial_tone_delay_ms.p95 > 100" or, in a cluster, "nodes.cm2.code_red_entries > 0" (`cucm-sim '
              'metrics SCENARIO` lists the metrics).')
@click.option("--replications", "-n", type=click.IntRange(1, 1000), default=5, show_default=True,
              help="Runs per probed value, with the same seeds at every value.")
@click.option("--tolerance", type=float, default=None,
              help="Stop when the knee is bracketed this tightly (the key's unit). Default: (hi - lo) / 64.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Result directory (default: results/<scenario name>-capacity): capacity.json, probes.csv, "
              "capacity.png. Written atomically.")
@backend_options
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), help="Override the scenario's seed (the root seed).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario field at every probe, e.g. --set duration_s=600 (repeatable).")
@ENGINE_OPTION
@ALLOW_LARGE_OPTION
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
    all_overrides = overrides_with(overrides, seed, engine)
    raw = user_errors_exit_2(lambda: read_yaml(scenario_file))
    scenario = user_errors_exit_2(lambda: parse_scenario(raw, str(scenario_file), all_overrides))  # all checked
    warn(scenario, str(scenario_file))
    # The condition's metric must be one of this scenario's (a node of its cluster), before DIR is made.
    metric = user_errors_exit_2(lambda: Condition.parse(condition)).metric
    user_errors_exit_2(lambda: check_metrics(scenario, [(f"--until {condition!r}", metric)]))
    data = apply_overrides(raw, all_overrides)  # what each probe changes, as --set would (valid: parsed above)
    for end in (lo, hi):  # the work of a probe grows with the load: the ends of the range bound it
        try:
            probe = probe_scenario(data, key, end, str(scenario_file))
        except UserError:
            continue  # an end the key cannot take: the search itself says so, with the allowed range
        check_work(probe, f"{scenario_file} (--vary {key} at {end:g})", allow_large)
    out_dir = out_dir or Path("results") / f"{safe_name(scenario.name)}-capacity"
    with user_errors_exit_2(lambda: prepare_directory(out_dir, CAPACITY_DIRECTORY, force=force)) as prepared:
        result = _search_or_exit(data, key, lo, hi, condition, replications, tolerance, scenario_file, scenario.name,
                                 workers, scheduler, dask_local)
        user_errors_exit_2(lambda: prepared.fill(
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
    progress = CapacityBar(f"{name}: {key}")
    try:
        with user_errors_exit_2(lambda: open_backend(workers, scheduler, dask_local)) as backend:
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
        fail(error.problems)
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
