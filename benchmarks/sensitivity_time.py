"""How long `cucm-sim sensitivity` takes: the command as a user runs it, in a fresh process, several times.

The issue's target: `cucm-sim sensitivity scenarios/cpu_starvation.yaml` in under a minute.  Each repeat
runs the 12 readings (one run each, 1,800 simulated seconds on the batched engine) on the default workers
(one per CPU) and writes the result directory; the table gives every wall time and the median.

    .venv/bin/python benchmarks/sensitivity_time.py [--scenario scenarios/cpu_starvation.yaml] [--repeats 5]

The numbers are in README's section on readings.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=REPO_DIR / "scenarios" / "cpu_starvation.yaml")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--replications", type=int, default=1)
    args = parser.parse_args()
    walls_s = []
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "cucm_sim.cli", "sensitivity", str(args.scenario), "--out",
                            str(Path(scratch) / "study"), "--force", "--quiet", "--replications",
                            str(args.replications)], check=True, capture_output=True)
            walls_s.append(time.perf_counter() - started)
            print(f"repeat {repeat + 1}: {walls_s[-1]:.1f} s", flush=True)
    print(f"{args.scenario.name}, {args.replications} replication(s) x 12 readings on {os.cpu_count()} CPUs: "
          f"median {statistics.median(walls_s):.1f} s, min {min(walls_s):.1f} s, max {max(walls_s):.1f} s "
          f"over {len(walls_s)} runs")


if __name__ == "__main__":
    main()
