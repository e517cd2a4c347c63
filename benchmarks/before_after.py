"""R1 and R2 of `run.py` on two versions of cucm_sim, side by side: is a change slower?

    python benchmarks/before_after.py COMMIT [--repeats 5]

checks COMMIT out into a temporary git worktree (the "before"), takes the working tree as the "after",
and runs R1 (the busy hour) and R2 (the starvation) on the batched engine for each, alternating which goes
first from one repeat to the next, each run in a freshly spawned process (`run.run_in_fresh_process`), so that the
machine's noise falls on both alike.  Prints, per run, the median wall and CPU seconds before and after and
their ratio (after / before: above 1 is slower), with the min..max, and whether the two versions processed
the same number of signals.  A measurement, never a test.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import RunSpec, run_in_fresh_process

REPO = Path(__file__).resolve().parent.parent
R1_S = 3600
R2_SLOWDOWN = (1200, 1800, 0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", help="the commit to compare the working tree with")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each scenario per version (default 5)")
    parser.add_argument("--seed", type=int, default=1, help="the seed of every run (default 1)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cucm-sim-before-") as scratch:
        before = Path(scratch) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(before), options.before],
                       check=True)
        try:
            measure_both(before, options.repeats, options.seed)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before)], check=False)


def measure_both(before: Path, repeats: int, seed: int) -> None:
    versions = {"before": str(before), "after": str(REPO)}
    wall: dict[tuple[str, str], list[float]] = defaultdict(list)
    cpu: dict[tuple[str, str], list[float]] = defaultdict(list)
    signals: dict[tuple[str, str], set[int]] = defaultdict(set)
    for repeat in range(repeats):
        for scenario, slowdown in (("R1", None), ("R2", R2_SLOWDOWN)):
            order = list(versions.items())
            for version, parent in order if repeat % 2 == 0 else reversed(order):  # who goes first alternates
                spec = RunSpec(scenario, "batched", "headline", R1_S, repeat, seed, slowdown,
                               package_parent_dir=parent)
                measured = run_in_fresh_process(spec)
                wall[scenario, version].append(measured.wall_s)
                cpu[scenario, version].append(measured.cpu_s)
                signals[scenario, version].add(measured.signals_processed)
                print(f"repeat {repeat + 1}/{repeats} {scenario} {version}: {measured.wall_s:.2f} s wall, "
                      f"{measured.cpu_s:.2f} s CPU", flush=True)
    print(f"\nmedians over {repeats} repeats (min..max); ratio = after / before")
    for scenario in ("R1", "R2"):
        same = signals[scenario, "before"] == signals[scenario, "after"]
        for label, times in (("wall", wall), ("CPU", cpu)):
            old, new = times[scenario, "before"], times[scenario, "after"]
            print(f"{scenario} {label:4}: before {statistics.median(old):.2f} s ({min(old):.2f}..{max(old):.2f}), "
                  f"after {statistics.median(new):.2f} s ({min(new):.2f}..{max(new):.2f}), "
                  f"ratio {statistics.median(new) / statistics.median(old):.3f}")
        print(f"{scenario} signals processed: {'the same' if same else 'DIFFERENT'} "
              f"({sorted(signals[scenario, 'before'])} vs {sorted(signals[scenario, 'after'])})")


if __name__ == "__main__":
    main()
