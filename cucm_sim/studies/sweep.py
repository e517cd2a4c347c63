"""Running a sweep and owning its directory: sweep.json, runs.csv, points.csv and sweep.png.

`run_sweep(design, backend, out_dir)` hands every run of a `grid.SweepDesign` to a `backends.Backend` and
writes, in DIR:

- `sweep.json`, the manifest, first: the resolved scenario with its root seed, the axes and their values,
  replications, metrics and the cucm-sim version.  `--resume` refuses a DIR whose manifest differs from the
  sweep asked for, and says what differs; a scenario without a seed takes the manifest's root seed back.
- `runs.csv`, one row per run: `point,replication,<grid keys>,seed,status,error,<every metric>,wall_s`
  (a cluster's every metric: its totals, its own metrics, then `nodes.NAME.METRIC` for each node).
  Each finished run is appended, flushed and fsync'd as it completes, so a Ctrl-C or a killed process
  loses no finished run.  When every run is done the file is rewritten (`files.write_text_atomically`) in
  (point, replication) order, so its bytes depend neither on the order runs finished in nor on the backend;
  only wall_s differs.  Ints are written as ints, floats by repr (the shortest text that reads back as the
  same float), a metric that did not happen as an empty cell.  A failed run has status `error`, the error
  on one line and empty metric cells.
- `points.csv`, one row per point: `point,<grid keys>,runs_ok,runs_failed`, then for every metric its mean
  and 95 % Student-t confidence interval (`<metric>.mean,<metric>.ci95_low,<metric>.ci95_high`) over the
  point's ok runs in which it happened.  With one such run the interval cells are empty; with none, all three.
  It is computed from runs.csv's cells as written, so a resumed sweep gives the same bytes.
- `sweep.png` (unless `plots=False`): `sweep_plots.sweep_figure` of the chosen metrics.

`resume=True` reads runs.csv (a torn last line, left by a killed writer, is dropped), keeps every run whose
status is ok and runs the rest again, failed runs included (a failure may have been a dead worker), then
writes the same final files an uninterrupted sweep would.  A failed run never stops the sweep; the report
counts them.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Final

from cucm_sim.errors import OutputExistsError, UserError
from cucm_sim.measures.confidence import mean_confidence_interval
from cucm_sim.measures.metrics import Metric, catalogue, lookup
from cucm_sim.report.files import (
    DirectoryKind,
    lock_directory,
    reason,
    refuse_unreplaceable,
    remove_stale_partial_files,
    write_bytes_atomically,
    write_text_atomically,
)
from cucm_sim.report.formats import csv_cell
from cucm_sim.studies.backends import Backend, Job, Outcome, RunFunction, run_job
from cucm_sim.studies.grid import SweepDesign

MANIFEST_FILE: Final = "sweep.json"
RUNS_FILE: Final = "runs.csv"
POINTS_FILE: Final = "points.csv"
FIGURE_FILE: Final = "sweep.png"
MANIFEST_FORMAT: Final = "cucm-sim sweep manifest 1"
COMPARED: Final = ("cucm_sim_version", "scenario", "grid", "replications", "metrics")
"""The manifest entries that must match for --resume (the source path may change)."""
OK, ERROR = "ok", "error"
MAX_DIFFERENCES_SHOWN: Final = 8


@dataclass(frozen=True)
class SweepCounts:
    """How far a sweep is: runs and points (all of whose replications have finished) done, of all."""

    runs_done: int
    runs_total: int
    points_done: int
    points_total: int


SweepProgress = Callable[[SweepCounts], None]
"""Called once when a sweep starts (runs already on disk count as done) and after every finished run."""


@dataclass(frozen=True)
class SweepReport:
    """What a finished sweep did: the design (with its root seed), the runs ok and failed (all of them, resumed
    ones included), the points with a failed run, the runs made now, the wall time (s) and the files written."""

    design: SweepDesign
    out_dir: Path
    runs_ok: int
    runs_failed: int
    failed_points: tuple[int, ...]
    runs_made: int
    runs_kept: int
    wall_s: float
    files: tuple[Path, ...]

    @property
    def runs_per_s(self) -> float:
        """Runs made by this invocation per second of its wall time."""
        return self.runs_made / self.wall_s if self.wall_s > 0 else 0.0


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep: every finished run is already in `runs_csv` (`finished_runs` of them)."""

    def __init__(self, runs_csv: Path, finished_runs: int) -> None:
        super().__init__(f"interrupted: {finished_runs} finished runs are in {runs_csv}")
        self.runs_csv = runs_csv
        self.finished_runs = finished_runs


def run_sweep(design: SweepDesign, backend: Backend, out_dir: Path, *, resume: bool = False, force: bool = False,
              plots: bool = True, progress: SweepProgress | None = None, run: RunFunction = run_job) -> SweepReport:
    """Make every run of `design` on `backend` and write `out_dir` (see the module docstring).

    An existing `out_dir` is a UserError unless `resume` (continue it: its manifest must match) or `force`
    (replace it; only an empty directory or a sweep's).  `run` makes one job's run (tests inject failures with
    it; for a process pool or Dask it must be importable by name).  Ctrl-C raises SweepInterrupted.
    """
    started = time.perf_counter()
    check_out_dir(out_dir, resume=resume, force=force)
    resuming = resume and out_dir.exists()
    _open_dir(out_dir)
    with lock_directory(out_dir, "a sweep"):
        remove_stale_partial_files(out_dir, SWEEP_DIRECTORY.files)  # left by a killed sweep: none of ours lives
        return _run_locked(design, backend, out_dir, resuming, force, plots, progress, run, started)


def _run_locked(design: SweepDesign, backend: Backend, out_dir: Path, resuming: bool, force: bool, plots: bool,
                progress: SweepProgress | None, run: RunFunction, started: float) -> SweepReport:
    runs_csv = out_dir / RUNS_FILE
    if resuming:
        design = _resumable(design, out_dir)
        rows = _read_runs(runs_csv, design)
    else:
        design = _start(design, out_dir, force)
        rows = {}
    status = _status_column(design)
    kept = {key for key, row in rows.items() if row[status] == OK}
    jobs = [Job((point, replication), design.run_scenario(point, replication))
            for point in range(len(design.points)) for replication in range(design.replications)
            if (point, replication) not in kept]
    try:
        _run_jobs(design, backend, jobs, run, runs_csv, rows, set(kept), progress)
    except KeyboardInterrupt as interrupt:
        raise SweepInterrupted(runs_csv, len(rows)) from interrupt
    if len(rows) != design.runs:
        raise RuntimeError(f"the backend returned {len(rows)} of {design.runs} runs")  # a bug, not a user error
    files = _finish(design, out_dir, rows, plots)
    failed = sorted(key for key, row in rows.items() if row[status] != OK)
    return SweepReport(design, out_dir, design.runs - len(failed), len(failed),
                       tuple(sorted({point for point, _ in failed})), len(jobs), len(kept),
                       time.perf_counter() - started, files)


# ------------------------------------------------------------------ the directory and its manifest
SWEEP_DIRECTORY: Final = DirectoryKind(
    "cucm-sim sweep", frozenset((MANIFEST_FILE, RUNS_FILE, POINTS_FILE, FIGURE_FILE)), MANIFEST_FILE)
"""A sweep's directory, as --force recognises it (`files.DirectoryKind`)."""


def check_out_dir(out_dir: Path, *, resume: bool, force: bool) -> None:
    """Refuse (UserError) what `run_sweep` would refuse about `out_dir` before anything starts: --resume with
    --force, an existing DIR without either, --force on anything but a sweep's directory (or an empty one)."""
    if resume and force:
        raise UserError(["--resume and --force given together: --resume continues DIR, --force starts it over"])
    if resume and os.path.lexists(out_dir) and not out_dir.is_dir():
        raise UserError([f"{out_dir}: exists and is not a directory; cannot --resume it"])
    if not os.path.lexists(out_dir) or resume:
        return
    if not force:
        raise OutputExistsError([f"{out_dir}: already exists; choose another --out, pass --resume to continue "
                                 "the sweep in it or --force to start it over"])
    refuse_unreplaceable(out_dir, SWEEP_DIRECTORY)


def _open_dir(out_dir: Path) -> None:
    """Make DIR (and its parents) if missing; UserError if it cannot be made."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError([f"{out_dir}: cannot create the sweep directory ({reason(error)})"]) from None


def _start(design: SweepDesign, out_dir: Path, force: bool) -> SweepDesign:
    """A fresh DIR (held locked by the caller): empty an existing one (--force: only a sweep's files, checked
    again here), fix the root seed, write the manifest and runs.csv's header."""
    if not force and any(out_dir.iterdir()):  # another sweep made and finished DIR since it was checked
        raise OutputExistsError([f"{out_dir}: already exists (another cucm-sim wrote it meanwhile); choose "
                                 "another --out, or pass --resume or --force"])
    if force:
        refuse_unreplaceable(out_dir, SWEEP_DIRECTORY)
        for entry in out_dir.iterdir():  # every entry is a sweep's file: refuse_unreplaceable checked it
            try:
                entry.unlink()
            except OSError as error:
                raise UserError([f"{entry}: cannot remove it to start over ({reason(error)})"]) from None
    if design.root_seed is None:  # drawn once, here, and saved in the manifest for --resume
        drawn = design.scenario.with_concrete_seed().seed
        assert drawn is not None
        design = design.with_root_seed(drawn)
    write_text_atomically(out_dir / MANIFEST_FILE, json.dumps(manifest(design), indent=2, allow_nan=False) + "\n")
    write_text_atomically(out_dir / RUNS_FILE, _csv_line(runs_header(design)))
    return design


def manifest(design: SweepDesign) -> dict[str, Any]:
    """sweep.json's content: everything that decides the sweep's runs (the root seed must be concrete)."""
    if design.root_seed is None:
        raise ValueError("the manifest needs a concrete root seed")
    content = {
        "format": MANIFEST_FORMAT,
        "cucm_sim_version": _version(),
        "source": design.source,
        "root_seed": design.root_seed,
        "scenario": design.scenario.resolved_data(),
        "grid": [{"key": axis.key, "values": list(axis.values)} for axis in design.axes],
        "replications": design.replications,
        "metrics": list(design.metrics),
        "points": len(design.points),
        "runs": design.runs,
    }
    return dict(json.loads(json.dumps(content)))  # as it reads back from the file (lists, JSON numbers)


def _version() -> str:
    try:
        return metadata.version("cucm-sim")
    except metadata.PackageNotFoundError:
        return "unknown"


def _resumable(design: SweepDesign, out_dir: Path) -> SweepDesign:
    """The design, with the saved root seed if it had none, after checking DIR's manifest matches it."""
    path = out_dir / MANIFEST_FILE
    saved = _read_manifest(path)
    if design.root_seed is None and isinstance(saved.get("root_seed"), int):
        design = design.with_root_seed(saved["root_seed"])
    elif design.root_seed is None:
        raise UserError([f"{path}: no root_seed; the manifest is damaged: start over with --force"])
    asked = manifest(design)
    differences = [line for name in COMPARED for line in _differences(name, saved.get(name), asked[name])]
    if differences:
        shown = [f"{out_dir}: --resume: {line}" for line in differences[:MAX_DIFFERENCES_SHOWN]]
        more = [f"... and {len(differences) - MAX_DIFFERENCES_SHOWN} more differences"
                ] if len(differences) > MAX_DIFFERENCES_SHOWN else []
        raise UserError([*shown, *more, f"{out_dir}: --resume continues only the same sweep: give the same scenario "
                         "and options, or choose another --out, or --force to start over"])
    return design


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError([f"{path.parent}: not a sweep directory (no {MANIFEST_FILE}); cannot --resume it"]) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError([f"{path}: cannot read the manifest ({error}); start over with --force"]) from None
    if not isinstance(content, dict) or content.get("format") != MANIFEST_FORMAT:
        raise UserError([f"{path}: not a cucm-sim sweep manifest; start over with --force"])
    return content


def _differences(path: str, saved: Any, asked: Any) -> list[str]:
    """Where two JSON values differ, one line per differing leaf: 'grid: DIR has ..., asked for ...'."""
    if path == "grid" and saved != asked:
        return [f"grid: DIR has {_grid_text(saved)}; asked for {_grid_text(asked)}"]
    if isinstance(saved, dict) and isinstance(asked, dict):
        return [line for key in dict.fromkeys([*saved, *asked])
                for line in _differences(f"{path}.{key}", saved.get(key), asked.get(key))]
    if saved != asked:
        return [f"{path}: DIR has {_json(saved)}, asked for {_json(asked)}"]
    return []


def _grid_text(grid: Any) -> str:
    if not isinstance(grid, list):
        return _json(grid)
    return " ".join(f"{axis.get('key')}={','.join(map(_json, axis.get('values', [])))}"
                    if isinstance(axis, dict) else _json(axis) for axis in grid)


def _json(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ------------------------------------------------------------------ runs.csv
def _metrics(design: SweepDesign) -> tuple[Metric, ...]:
    """The metrics runs.csv and points.csv hold: the scenario's (its CUCM node's, a cluster's totals, own metrics
    and every node's `nodes.NAME.METRIC`, or its hosts' and links'); every point has the same (`grid`)."""
    scenario = design.scenario
    return _catalogue(scenario.has_node, tuple(link.name for link in scenario.links), scenario.node_names)


@functools.lru_cache(maxsize=16)  # asked for at every row: a cluster of 8 nodes has 550 metrics
def _catalogue(has_node: bool, links: tuple[str, ...], nodes: tuple[str, ...]) -> tuple[Metric, ...]:
    return catalogue(has_node, links, nodes)


def runs_header(design: SweepDesign) -> list[str]:
    """runs.csv's columns: point, replication, the grid keys, seed, status, error, every metric, wall_s."""
    return ["point", "replication", *(axis.key for axis in design.axes), "seed", "status", "error",
            *(metric.path for metric in _metrics(design)), "wall_s"]


def _status_column(design: SweepDesign) -> int:
    """The index of runs.csv's status column (after point, replication, the grid keys and seed)."""
    return 3 + len(design.axes)


def run_row(design: SweepDesign, outcome: Outcome) -> list[str]:
    """The runs.csv row of one finished run (its key is (point, replication))."""
    point, replication = outcome.key
    grid_cells = [csv_cell(value) for value in design.points[point].values]
    seed = str(design.run_seed(point, replication))
    if outcome.ok:
        assert outcome.summary is not None
        metric_cells = [csv_cell(lookup(outcome.summary, metric.path)) for metric in _metrics(design)]
        return [str(point), str(replication), *grid_cells, seed, OK, "", *metric_cells,
                csv_cell(outcome.summary.get("wall_s"))]
    error = " ".join((outcome.error or "unknown error").splitlines())
    return [str(point), str(replication), *grid_cells, seed, ERROR, error, *([""] * len(_metrics(design))), ""]


def _csv_line(cells: Iterable[str]) -> str:
    return _csv_text([list(cells)])


def _csv_text(rows: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _run_jobs(design: SweepDesign, backend: Backend, jobs: Sequence[Job], run: RunFunction, runs_csv: Path,
              rows: dict[tuple[int, int], list[str]], done: set[tuple[int, int]],
              progress: SweepProgress | None) -> None:
    """Run `jobs`, appending (flush + fsync) each finished run's row to runs.csv and to `rows` as it comes;
    `done` holds the runs finished so far (the kept ones at first)."""
    done_per_point = [0] * len(design.points)
    for point, _ in done:
        done_per_point[point] += 1

    def report() -> None:
        if progress is not None:
            points_done = sum(count == design.replications for count in done_per_point)
            progress(SweepCounts(len(done), design.runs, points_done, len(design.points)))

    report()
    try:
        log = runs_csv.open("a", encoding="utf-8", newline="")
    except OSError as error:
        raise UserError([f"cannot write {runs_csv} ({reason(error)})"]) from None
    with log, closing(backend.run(jobs, run)) as outcomes:
        for outcome in outcomes:
            row = run_row(design, outcome)
            try:
                _append(log, row)
            except OSError as error:
                raise UserError([f"cannot write {runs_csv} ({reason(error)}); the {len(rows):,} runs finished "
                                 "before are in it: --resume continues once it can be written"]) from None
            point, replication = outcome.key
            rows[(point, replication)] = row
            if (point, replication) not in done:
                done.add((point, replication))
                done_per_point[point] += 1
            report()


def _append(log: IO[str], row: Sequence[str]) -> None:
    log.write(_csv_line(row))
    log.flush()
    os.fsync(log.fileno())  # on disk before the next run is counted: a killed sweep loses no finished run


def _read_runs(runs_csv: Path, design: SweepDesign) -> dict[tuple[int, int], list[str]]:
    """The rows of an existing runs.csv by (point, replication): an ok row wins over error rows, a later row
    over an earlier one.  A torn last line (no newline: a killed writer) is dropped and cut from the file, so
    appending goes on from a whole line.  UserError for a file that is not this sweep's."""
    if not runs_csv.exists():  # killed between writing the manifest and the header
        write_text_atomically(runs_csv, _csv_line(runs_header(design)))
        return {}
    try:
        data = runs_csv.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) < len(data):
            with runs_csv.open("r+b") as handle:
                handle.truncate(len(complete))
    except OSError as error:
        raise UserError([f"cannot read or repair {runs_csv} ({reason(error)})"]) from None
    try:
        lines = list(csv.reader(io.StringIO(complete.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error) as error:
        raise UserError([f"{runs_csv}: cannot read ({error}); start over with --force"]) from None
    header = runs_header(design)
    if not lines:
        write_text_atomically(runs_csv, _csv_line(header))
        return {}
    if lines[0] != header:
        raise UserError([f"{runs_csv}: line 1: not the header of this sweep's runs.csv; start over with --force"])
    rows: dict[tuple[int, int], list[str]] = {}
    status = _status_column(design)
    for number, row in enumerate(lines[1:], start=2):
        if len(row) != len(header):
            raise UserError([f"{runs_csv}: line {number}: {len(row)} fields, expected {len(header)}; the file is "
                             "damaged: start over with --force"])
        key = _row_key(runs_csv, number, row, design)
        if key not in rows or rows[key][status] != OK:
            rows[key] = row
    return rows


def _row_key(runs_csv: Path, number: int, row: list[str], design: SweepDesign) -> tuple[int, int]:
    problem = f"{runs_csv}: line {number}: "
    try:
        point, replication = int(row[0]), int(row[1])
    except ValueError:
        raise UserError([f"{problem}point and replication must be whole numbers; start over with --force"]) from None
    if not (0 <= point < len(design.points) and 0 <= replication < design.replications):
        raise UserError([f"{problem}run ({point}, {replication}) is not in this sweep; start over with --force"])
    expected = [csv_cell(value) for value in design.points[point].values]
    if row[2:2 + len(design.axes)] != expected or row[2 + len(design.axes)] != str(design.run_seed(point, replication)):
        raise UserError([f"{problem}the grid values or the seed differ from this sweep's; start over with --force"])
    if row[_status_column(design)] not in (OK, ERROR):
        raise UserError([f"{problem}status {row[_status_column(design)]!r} is neither ok nor error"])
    first_metric = _status_column(design) + 2
    for name, cell in zip([metric.path for metric in _metrics(design)] + ["wall_s"], row[first_metric:], strict=True):
        if cell and not _is_number(cell):
            raise UserError([f"{problem}{name}: {cell!r} is not a number (a metric cell holds a number, or "
                             "nothing when the metric did not happen); the file is damaged: start over with "
                             "--force"])
    return point, replication


def _is_number(cell: str) -> bool:
    try:
        return math.isfinite(float(cell))
    except ValueError:
        return False


# ------------------------------------------------------------------ the final files
def _finish(design: SweepDesign, out_dir: Path, rows: Mapping[tuple[int, int], list[str]],
            plots: bool) -> tuple[Path, ...]:
    ordered = [rows[key] for key in sorted(rows)]
    write_text_atomically(out_dir / RUNS_FILE, _csv_text([runs_header(design), *ordered]))
    stats = point_stats(design, ordered)
    write_text_atomically(out_dir / POINTS_FILE, points_csv(design, ordered, stats))
    files = [out_dir / MANIFEST_FILE, out_dir / RUNS_FILE, out_dir / POINTS_FILE]
    if plots:
        _write_figure(design, stats, out_dir / FIGURE_FILE)
        files.append(out_dir / FIGURE_FILE)
    return tuple(files)


PointStats = dict[str, tuple[float, float | None, float | None] | None]
"""Per metric path: (mean, ci95_low, ci95_high) over a point's ok runs where it happened; None when none did."""


def point_stats(design: SweepDesign, rows: Sequence[Sequence[str]]) -> list[PointStats]:
    """Each point's statistics of every metric, from runs.csv rows (cells as written)."""
    first_metric = _status_column(design) + 2
    values: list[dict[str, list[float]]] = [{metric.path: [] for metric in _metrics(design)} for _ in design.points]
    for row in sorted(rows, key=lambda row: (int(row[0]), int(row[1]))):
        if row[_status_column(design)] != OK:
            continue
        for offset, metric in enumerate(_metrics(design)):
            cell = row[first_metric + offset]
            if cell:
                values[int(row[0])][metric.path].append(float(cell))
    return [{path: _mean_and_interval(found) for path, found in point.items()} for point in values]


def _mean_and_interval(values: Sequence[float]) -> tuple[float, float | None, float | None] | None:
    if not values:
        return None
    mean, half_width = mean_confidence_interval(values)
    if half_width is None:
        return mean, None, None
    return mean, mean - half_width, mean + half_width


def points_header(design: SweepDesign) -> list[str]:
    """points.csv's columns: point, the grid keys, runs_ok, runs_failed, then mean and CI of every metric."""
    return ["point", *(axis.key for axis in design.axes), "runs_ok", "runs_failed",
            *(f"{metric.path}.{part}" for metric in _metrics(design) for part in ("mean", "ci95_low", "ci95_high"))]


def points_csv(design: SweepDesign, rows: Sequence[Sequence[str]], stats: Sequence[PointStats]) -> str:
    """points.csv's text: one row per point (see the module docstring)."""
    statuses: list[list[str]] = [[] for _ in design.points]
    for row in rows:
        statuses[int(row[0])].append(row[_status_column(design)])
    lines = [points_header(design)]
    for point, point_stat in zip(design.points, stats, strict=True):
        cells = [str(point.index), *map(csv_cell, point.values),
                 str(statuses[point.index].count(OK)), str(statuses[point.index].count(ERROR))]
        for metric in _metrics(design):
            stat = point_stat[metric.path]
            cells.extend(["", "", ""] if stat is None else [csv_cell(part) for part in stat])
        lines.append(cells)
    return _csv_text(lines)


def _write_figure(design: SweepDesign, stats: Sequence[PointStats], path: Path) -> None:
    from cucm_sim.report.sweep_plots import PlotPoint, sweep_figure  # matplotlib is slow to import: only when plotting

    axes = [(axis.key, [_plot_value(value) for value in axis.values]) for axis in design.axes]
    points = [PlotPoint(tuple(_plot_value(value) for value in point.values),
                        {metric: point_stat[metric] for metric in design.metrics})
              for point, point_stat in zip(design.points, stats, strict=True)]
    title = (f"{design.scenario.name}: sweep of {len(design.points)} point{'s' if len(design.points) != 1 else ''} "
             f"x {design.replications} replication{'s' if design.replications != 1 else ''}")
    figure = sweep_figure(axes, points, design.metrics, title, replications=design.replications)
    image = io.BytesIO()
    figure.savefig(image, format="png")
    write_bytes_atomically(path, image.getvalue())


def _plot_value(value: bool | int | float | str) -> float | str:
    return csv_cell(value) if isinstance(value, bool | str) else value
