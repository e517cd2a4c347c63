"""A simulated hour of the VRU PIM incident: wall time, CPU time and peak memory, each run in a fresh process.

    python benchmarks/host_incident.py [--repeats 3]

Runs `scenarios/vru_pim_heartbeat_loss.yaml` (its storm at t=60..71 s) for 900, 1,800 and 3,600 simulated
seconds, each in a new interpreter, and prints the median wall and CPU seconds and the peak RSS of each
length: the hour must take under 10 s on one core, and the peak memory must not grow with the length
(the model keeps fixed-size histograms and one timeline row per second).  A measurement, never a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCENARIO = REPO / "scenarios" / "vru_pim_heartbeat_loss.yaml"
LENGTHS_S = (900, 1800, 3600)


def child(duration_s: int) -> None:
    """In the fresh process: simulate, print wall s, CPU s and peak RSS (MB) as JSON."""
    from cucm_sim import load_scenario, simulate

    scenario = load_scenario(SCENARIO, [f"duration_s={duration_s}"])
    started, cpu_started = time.perf_counter(), time.process_time()
    summary = simulate(scenario).summary
    print(json.dumps({
        "wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu_started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "sessions_closed": summary["sessions_closed"], "heartbeats_sent": summary["heartbeats_sent"],
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each length (default 3)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(options.child)
        return
    print("length s | wall s (median, min..max) | CPU s | peak RSS MB | sessions closed")
    for length_s in LENGTHS_S:
        runs = []
        for _ in range(options.repeats):
            done = subprocess.run([sys.executable, __file__, "--child", str(length_s)], capture_output=True,
                                  text=True, check=True)
            runs.append(json.loads(done.stdout))
        walls = [run["wall_s"] for run in runs]
        print(f"{length_s:8,} | {statistics.median(walls):6.2f} ({min(walls):.2f}..{max(walls):.2f}) | "
              f"{statistics.median(run['cpu_s'] for run in runs):5.2f} | "
              f"{max(run['peak_rss_mb'] for run in runs):11.1f} | {runs[0]['sessions_closed']}")


if __name__ == "__main__":
    main()
