"""Issue 5's scaling measurement: runs per second of one sweep on 1 worker, 2 local workers and Dask.

Runs the same sweep (by default 8 grid points x 3 replications = 24 runs of a simulated hour, about a second
each with the batched engine) with `cucm_sim.studies.sweep.run_sweep` on three backends, side by side:

- `1 worker`: the runs one after another in this process (`InProcess`);
- `2 local processes`: a spawned process pool (`LocalPool(2)`);
- `Dask LocalCluster, 2 workers`: two single-threaded Dask worker processes on the loopback interface.

Each configuration is measured `--repeats` times (default 3), interleaved, and the tables show medians:

- `runs/s`: runs per second of wall time of the sweep alone, on a backend already started (a warm-up run
  went through it first), which is the rate a long sweep settles at;
- `cold s`: the wall time of the whole thing as the command line pays it: starting the backend (spawning
  processes, starting the cluster), the sweep, and closing the backend.

It also checks that every configuration wrote the same runs.csv (wall_s aside).  Writes
`sweep_scaling.json`, `sweep_scaling.csv` and `sweep_scaling.png` to `--out` (default benchmarks/results/).
`--quick` runs 8 short runs once (a smoke check; its numbers are not the measurement).  A measurement,
not a test.

    python benchmarks/sweep_scaling.py [--quick] [--repeats 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCHMARKS_DIR = Path(__file__).resolve().parent
DEFAULT_OUT_DIR = BENCHMARKS_DIR / "results"
sys.path.insert(0, str(BENCHMARKS_DIR.parent))  # run from a checkout without installing

from cucm_sim.studies.backends import Backend, Dask, InProcess, Job, LocalPool  # noqa: E402
from cucm_sim.studies.grid import SweepDesign, design_sweep  # noqa: E402
from cucm_sim.studies.sweep import run_sweep  # noqa: E402

SCENARIO: dict[str, Any] = {
    "name": "sweep-scaling",
    "seed": 1,
    "duration_s": 3600,
    "load": {"background": [{"signals_per_s": 1000}], "calls_per_s": 4, "signals_per_call": 12},
    "devices": {"count": 1000, "keepalive_interval_s": 30},
    "disturbances": [{"kind": "cpu_slowdown", "start_s": 1200, "end_s": 1800, "capacity_factor": 0.2}],
}
GRID = ("load.calls_per_s=4,8,12,16", "throttling.code_yellow_entry_latency_ms=20,50")
REPLICATIONS = 3
QUICK_DURATION_S = 360
QUICK_GRID = ("load.calls_per_s=4,8", "throttling.code_yellow_entry_latency_ms=20,50")
QUICK_REPLICATIONS = 2
WORKERS = 2

BACKENDS: dict[str, Callable[[], Backend]] = {
    "1 worker": InProcess,
    "2 local processes": lambda: LocalPool(WORKERS),
    "Dask LocalCluster, 2 workers": lambda: Dask.start_local_cluster(WORKERS),
}


@dataclass(frozen=True)
class Measurement:
    """One sweep on one backend: runs, wall time of the sweep on a started backend, and cold wall time."""

    backend: str
    repeat: int
    runs: int
    warm_wall_s: float
    cold_wall_s: float

    @property
    def runs_per_s(self) -> float:
        return self.runs / self.warm_wall_s


def measure(name: str, design: SweepDesign, work_dir: Path, repeat: int) -> tuple[Measurement, str]:
    """Start the backend, warm it up with one run, time the sweep, close; return the timings and runs.csv."""
    out_dir = work_dir / f"{name.replace(' ', '_').replace(',', '')}-{repeat}"
    cold_started = time.perf_counter()
    with BACKENDS[name]() as backend:
        short = design.run_scenario(0, 0).model_copy(update={"duration_s": 10})
        # as many short runs at once as there are workers: every worker starts and imports cucm_sim first
        list(backend.run([Job((0, index), short) for index in range(backend.workers)]))
        warm_started = time.perf_counter()
        report = run_sweep(design, backend, out_dir, plots=False)
        warm_wall_s = time.perf_counter() - warm_started
    cold_wall_s = time.perf_counter() - cold_started
    assert report.runs_failed == 0, f"{name}: {report.runs_failed} runs failed"
    runs_csv = (out_dir / "runs.csv").read_text(encoding="utf-8")
    return Measurement(name, repeat, report.runs_made, warm_wall_s, cold_wall_s), runs_csv


def without_wall_s(text: str) -> str:
    return "\n".join(line.rsplit(",", 1)[0] for line in text.splitlines())


def summarise(measurements: list[Measurement]) -> list[dict[str, Any]]:
    rows = []
    baseline: float | None = None
    for name in BACKENDS:
        mine = [m for m in measurements if m.backend == name]
        rates = [m.runs_per_s for m in mine]
        rate = statistics.median(rates)
        baseline = baseline or rate
        rows.append({
            "backend": name,
            "runs": mine[0].runs,
            "runs_per_s": round(rate, 3),
            "runs_per_s_min": round(min(rates), 3),
            "runs_per_s_max": round(max(rates), 3),
            "speed_up": round(rate / baseline, 2),
            "warm_wall_s": round(statistics.median(m.warm_wall_s for m in mine), 2),
            "cold_wall_s": round(statistics.median(m.cold_wall_s for m in mine), 2),
            "repeats": len(mine),
        })
    return rows


def machine() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_before": os.getloadavg(),
    }


def write_outputs(out_dir: Path, table: list[dict[str, Any]], measurements: list[Measurement],
                  info: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "sweep_scaling.json").write_text(json.dumps(
        {"machine": info, "table": table, "measurements": [{**asdict(m), "runs_per_s": m.runs_per_s}
                                                           for m in measurements]}, indent=2) + "\n",
        encoding="utf-8")
    with (out_dir / "sweep_scaling.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
    plot(out_dir / "sweep_scaling.png", table, info)


def plot(path: Path, table: list[dict[str, Any]], info: dict[str, Any]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 4.2), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    names = [row["backend"] for row in table]
    rates = [row["runs_per_s"] for row in table]
    errors = [[row["runs_per_s"] - row["runs_per_s_min"] for row in table],
              [row["runs_per_s_max"] - row["runs_per_s"] for row in table]]
    bars = ax.bar(names, rates, yerr=errors, capsize=6, color=["#90a4ae", "#1f77b4", "#ff7f0e"])
    ax.axhline(rates[0] * WORKERS, color="#555555", linestyle="--", linewidth=1,
               label=f"{WORKERS} x the 1-worker rate (ideal)")
    for bar, row in zip(bars, table, strict=True):
        ax.annotate(f"{row['runs_per_s']:.2f}/s (x{row['speed_up']:.2f})",
                    (bar.get_x() + bar.get_width() / 2, row["runs_per_s_max"]), xytext=(0, 6),
                    textcoords="offset points", ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("runs per second (median; bars: min..max)")
    ax.set_ylim(0, max(rates[0] * WORKERS, *rates) * 1.3)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"cucm-sim sweep: {table[0]['runs']} runs, {info['cpus']} CPUs, {info['date']}", fontsize=10)
    figure.savefig(path, format="png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 short runs, once: a smoke check, not the numbers")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per backend (median shown)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR, help="where the table and figure go")
    args = parser.parse_args()
    scenario = {**SCENARIO, "duration_s": QUICK_DURATION_S} if args.quick else SCENARIO
    design = design_sweep(scenario, "benchmarks/sweep_scaling.py", grid=QUICK_GRID if args.quick else GRID,
                          replications=QUICK_REPLICATIONS if args.quick else REPLICATIONS)
    repeats = 1 if args.quick else args.repeats
    info = machine()
    print(f"{design.runs} runs x {len(BACKENDS)} backends x {repeats} repeats; "
          f"load average {info['load_average_before']}")
    measurements: list[Measurement] = []
    runs_files: dict[str, str] = {}
    work_dir = Path(tempfile.mkdtemp(prefix="sweep_scaling."))
    try:
        for repeat in range(repeats):
            for name in BACKENDS:
                measurement, runs_csv = measure(name, design, work_dir, repeat)
                measurements.append(measurement)
                runs_files[f"{name} #{repeat}"] = without_wall_s(runs_csv)
                print(f"  {name:30s} repeat {repeat}: {measurement.runs_per_s:.3f} runs/s "
                      f"(sweep {measurement.warm_wall_s:.1f} s, cold {measurement.cold_wall_s:.1f} s)", flush=True)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    identical = len(set(runs_files.values())) == 1
    info["runs_csv_identical_across_backends"] = identical
    info["load_average_after"] = os.getloadavg()
    table = summarise(measurements)
    write_outputs(args.out, table, measurements, info)
    print(f"\nruns.csv identical on every backend and repeat (wall_s aside): {identical}")
    print("| backend | runs/s (median) | min..max | speed-up | sweep s | cold s |")
    print("|---|---|---|---|---|---|")
    for row in table:
        print(f"| {row['backend']} | {row['runs_per_s']:.2f} | {row['runs_per_s_min']:.2f}..{row['runs_per_s_max']:.2f}"
              f" | x{row['speed_up']:.2f} | {row['warm_wall_s']:.1f} | {row['cold_wall_s']:.1f} |")
    print(f"wrote {args.out / 'sweep_scaling.json'}, .csv, .png")
    if not identical:
        sys.exit(1)


if __name__ == "__main__":
    main()
