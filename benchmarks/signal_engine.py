"""Speed of the per-signal SimPy engine on issue 4's R1 "busy hour" load, over a short prefix.

R1: 5,000 devices (keepalive 30 s), 10 calls/s with 12 signals each, 5,000 normal-priority background
signals/s, exponential service mean 0.15 ms, default throttling.  Runs the first PREFIX_S simulated
seconds REPEATS times and prints the median signals per wall second and simulated seconds per wall
second.  A measurement, not a test: run it on a quiet machine and compare numbers from one invocation.

    python benchmarks/signal_engine.py [--prefix-s 120] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from cucm_sim import Scenario, simulate


def r1(duration_s: int, seed: int) -> Scenario:
    return Scenario.model_validate({
        "name": "R1-busy-hour", "seed": seed, "duration_s": duration_s,
        "node": {"signal_service_time_ms": {"distribution": "exponential", "mean": 0.15}},
        "load": {"background": [{"signals_per_s": 5000, "priority": "normal"}], "calls_per_s": 10,
                 "signals_per_call": 12},
        "devices": {"count": 5000, "keepalive_interval_s": 30},
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prefix-s", type=int, default=120, help="simulated seconds per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    signals_per_wall_s, sim_s_per_wall_s = [], []
    for repeat in range(args.repeats):
        started = time.perf_counter()
        result = simulate(r1(args.prefix_s, seed=repeat + 1))
        wall_s = time.perf_counter() - started
        signals_per_wall_s.append(result.summary["signals_processed"] / wall_s)
        sim_s_per_wall_s.append(args.prefix_s / wall_s)
    print(json.dumps({
        "scenario": "R1 prefix", "engine": "signal", "prefix_s": args.prefix_s, "repeats": args.repeats,
        "median_signals_per_wall_s": round(statistics.median(signals_per_wall_s)),
        "median_simulated_s_per_wall_s": round(statistics.median(sim_s_per_wall_s), 3),
    }, indent=2))


if __name__ == "__main__":
    main()
