"""A three-node cluster's busy hour against a one-node busy hour: wall and CPU time, side by side.

    python benchmarks/cluster.py [--repeats 3]

The one-node busy hour is R1 of `run.py` (3,600 s, 5,000 phones with 30-s keepalives, 10 calls/s x 12
signals, 5,000 background signals/s, exponential service of mean 0.15 ms; batched engine).  The cluster's
busy hour gives each of three nodes that same load: three pools of 5,000 phones, each homed on its own
node with the next node as secondary, 30 calls/s for the cluster (10 per node, as calls follow the
phones), 5,000 background signals/s on every node.  A third run adds a failure to the cluster (cm1 at a
fifth of its speed for 200 s, so it goes through Code Red and its phones fail over and come back),
which keeps the engines' lookahead at a second for a while.  Each run is a fresh process; the order
alternates from one repeat to the next so the machine's noise falls on all alike.  Prints medians and
the ratios to the one-node hour: issue 14 asks for the quiet cluster at most 3.5 times.  A measurement,
never a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

SERVICE_MEAN_MS = 0.15
RUNS = ("one node", "three nodes", "three nodes, a failover")


def one_node() -> dict[str, Any]:
    """R1 of run.py."""
    return {
        "name": "R1", "seed": 1, "duration_s": 3600, "engine": "batched",
        "node": {"signal_service_time_ms": {"distribution": "exponential", "mean": SERVICE_MEAN_MS}},
        "load": {"background": [{"signals_per_s": 5000, "priority": "normal"}], "calls_per_s": 10,
                 "signals_per_call": 12},
        "devices": {"count": 5000, "keepalive_interval_s": 30},
    }


def three_nodes(failover: bool) -> dict[str, Any]:
    """Three nodes, each carrying R1."""
    names = ("cm1", "cm2", "cm3")
    scenario = one_node()
    scenario.update(name="R1x3", devices={"keepalive_interval_s": 30, "pools": [
        {"name": f"pool{k + 1}", "count": 5000, "cm_group": [names[k], names[(k + 1) % 3]]} for k in range(3)]},
        cluster={"nodes": [{"name": name} for name in names]})
    scenario["load"] = {**scenario["load"], "calls_per_s": 30}
    if failover:
        scenario["throttling"] = {"code_yellow_duration_min": 1}
        scenario["disturbances"] = [
            {"kind": "cpu_slowdown", "node": "cm1", "start_s": 1200, "end_s": 1400, "capacity_factor": 0.2}]
    return scenario


def child(which: str) -> None:
    """In the fresh process: simulate, print wall s, CPU s, peak RSS (MB) and signals as JSON."""
    from cucm_sim.run.simulation import simulate
    from cucm_sim.scenario.schema import Scenario

    data = one_node() if which == RUNS[0] else three_nodes(which == RUNS[2])
    scenario = Scenario.model_validate(data)
    started, cpu_started = time.perf_counter(), time.process_time()
    summary = simulate(scenario).summary
    print(json.dumps({
        "wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu_started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "signals": summary["signals_processed"], "code_red": summary["code_red_entries"],
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--child", choices=RUNS, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(options.child)
        return
    measured: dict[str, list[dict[str, Any]]] = {name: [] for name in RUNS}
    for repeat in range(options.repeats):
        order = RUNS if repeat % 2 == 0 else tuple(reversed(RUNS))
        for name in order:
            done = subprocess.run([sys.executable, __file__, "--child", name], capture_output=True, text=True,
                                  check=True)
            measured[name].append(json.loads(done.stdout))
    base_wall = statistics.median(run["wall_s"] for run in measured[RUNS[0]])
    base_cpu = statistics.median(run["cpu_s"] for run in measured[RUNS[0]])
    print("run | wall s (median, min..max) | CPU s | wall ratio | CPU ratio | signals | Code Red | peak RSS MB")
    for name in RUNS:
        runs = measured[name]
        walls = [run["wall_s"] for run in runs]
        wall, cpu = statistics.median(walls), statistics.median(run["cpu_s"] for run in runs)
        print(f"{name} | {wall:.2f} ({min(walls):.2f}..{max(walls):.2f}) | {cpu:.2f} | {wall / base_wall:.2f} | "
              f"{cpu / base_cpu:.2f} | {runs[0]['signals']:,} | {runs[0]['code_red']} | "
              f"{max(run['peak_rss_mb'] for run in runs):.0f}")


if __name__ == "__main__":
    main()
