"""How accurately `cucm-sim calibrate` recovers known parameters: recordings made by the simulator, over seeds.

The recording is tests/test_calibrate.py's: a call rate ramping from 2 to 14 calls/s and back to 4 (40 signals a
call, half at set-up), 150 high-priority and 1,000 normal-priority background signals/s, 3,000 phones keeping
alive every 30 s (100 more normal signals/s), exponential service of mean 0.16 ms, and a minute of 8,000 extra
normal signals/s two thirds of the way through (a backlog at full CPU speed, one Code Yellow).  `--hours`
stretches it (the ramp and the burst keep their shape).  Each seed's run is exported as Perfmon CSV at each
`--interval` and calibrated; the table gives, per estimate, the mean, standard deviation and largest of the
relative errors over the seeds, and the mean relative standard error the calibration reported.

    .venv/bin/python benchmarks/calibrate_accuracy.py --seeds 20 --interval 1 --interval 15
    .venv/bin/python benchmarks/calibrate_accuracy.py --seeds 6 --hours 4 --interval 15

The numbers are in docs/calibrate.md.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from cucm_sim.perfmon.pdh_csv import read_header, read_pdh_csv
from cucm_sim.report.perfmon_export import PerfmonOptions, perfmon_text
from cucm_sim.run.simulation import simulate
from cucm_sim.scenario.loader import parse_scenario
from cucm_sim.studies.calibrate import Calibration, calibrate, choose_node, series_from_recording, wanted_paths

TRUTH = {"signals per call": 40.0, "background 1-High": 150.0, "background 2-Normal": 1100.0, "service time": 0.16}


def recording(seed: int, hours: float) -> dict[str, Any]:
    duration_s = round(hours * 3600)
    return {
        "name": "calibration-recording", "seed": seed, "duration_s": duration_s,
        "node": {"signal_service_time_ms": {"distribution": "exponential", "mean": TRUTH["service time"]}},
        "load": {"background": [{"signals_per_s": 150, "priority": "high"},
                                {"signals_per_s": 1000, "priority": "normal"}],
                 "calls_profile": [[0, 2], [duration_s / 2, 14], [duration_s, 4]], "signals_per_call": 40},
        "devices": {"count": 3000, "keepalive_interval_s": 30},
        "disturbances": [{"kind": "signal_burst", "start_s": round(duration_s * 2 / 3),
                          "end_s": round(duration_s * 2 / 3) + 60, "signals_per_s": 8000}],
    }


def estimates(calibration: Calibration) -> dict[str, tuple[float, float]]:
    """Each estimate's (value, standard error); NaN where there is none."""
    service = calibration.service_time
    found = {"signals per call": calibration.signals_per_call, "background 1-High": calibration.background[0],
             "background 2-Normal": calibration.background[1]}
    pairs = {key: (estimate.value, estimate.se if estimate.se is not None else math.nan)
             for key, estimate in found.items()}
    pairs["service time"] = ((service.mean_ms.value, service.mean_ms.se or math.nan) if service is not None
                             else (math.nan, math.nan))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="Recordings (seeds 1..N).")
    parser.add_argument("--interval", type=int, action="append", help="Sampling interval (s); repeatable.")
    parser.add_argument("--hours", type=float, default=0.5, help="Length of each recording (h).")
    args = parser.parse_args()
    intervals = args.interval or [1, 15]
    errors: dict[int, dict[str, list[float]]] = {k: {key: [] for key in TRUTH} for k in intervals}
    ses: dict[int, dict[str, list[float]]] = {k: {key: [] for key in TRUTH} for k in intervals}
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(1, args.seeds + 1):
            result = simulate(parse_scenario(recording(seed, args.hours), "recording"))
            for interval_s in intervals:
                path = Path(folder) / f"r{interval_s}.csv"
                path.write_text(perfmon_text(result, PerfmonOptions(interval_s=interval_s)), encoding="utf-8",
                                newline="")
                _, paths = read_header(path)
                node = choose_node(paths, str(path), None)
                calibration = calibrate(series_from_recording(read_pdh_csv(path, wanted_paths(node)), node))
                line = []
                for key, (value, se) in estimates(calibration).items():
                    errors[interval_s][key].append(value / TRUTH[key] - 1)
                    ses[interval_s][key].append(se / TRUTH[key])
                    line.append(f"{key} {100 * (value / TRUTH[key] - 1):+.2f} %")
                print(f"seed {seed}, {interval_s} s: " + ", ".join(line), flush=True)
    print(f"\n{args.seeds} recordings of {args.hours:g} h; relative errors over the seeds (%)")
    print(f"{'interval':>8}  {'estimate':<20} {'mean':>7} {'sd':>7} {'largest':>8} {'mean SE':>8}")
    for interval_s in intervals:
        for key in TRUTH:
            values = 100 * np.array(errors[interval_s][key])
            print(f"{interval_s:>6} s  {key:<20} {np.nanmean(values):7.2f} {np.nanstd(values, ddof=1):7.2f} "
                  f"{np.nanmax(np.abs(values)):8.2f} {100 * np.nanmean(ses[interval_s][key]):8.2f}")


if __name__ == "__main__":
    main()
