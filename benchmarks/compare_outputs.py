"""Same seed, same bytes: the library scenarios' outputs here against those of any commit.

Runs every scenario in `scenarios/` on both engines (the signal engine over its first `--signal-s`
seconds, default 300) with this working tree and with COMMIT (unpacked with `git archive` into a
temporary folder, so the repository is not touched), each through its own CLI in a fresh process, and
compares `timeline.csv` and `alarms.csv` byte for byte and `summary.json` value for value (`wall_s`
aside).  Prints one line per run and exits 1 if any differs.  `--digests FILE` also writes the
sha256 digests of COMMIT's files: `tests/golden/outputs.json` is made that way.

    python benchmarks/compare_outputs.py 2c338ae [--signal-s 300] [--workers 2] [--digests FILE]

A regression check of the refactors that must not change a result, not a test of correctness.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO_DIR = Path(__file__).resolve().parent.parent
ENGINES = ("batched", "signal")
COMPARED_FILES = ("timeline.csv", "alarms.csv")


def library() -> list[Path]:
    """The scenario library's CUCM node scenarios, in name order (those of hosts alone have no engine)."""
    from cucm_sim import load_scenario

    return [path for path in sorted((REPO_DIR / "scenarios").glob("*.yaml")) if load_scenario(path).has_node]


def unpack(commit: str, into: Path) -> Path:
    """COMMIT's tree, unpacked under `into`."""
    tree = into / "tree"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO_DIR), "archive", commit], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


def run_one(source: Path, scenario: Path, engine: str, signal_s: int, out: Path) -> dict[str, Any]:
    """Run `scenario` on `engine` with the package in `source`; the files' digests and the summary."""
    command = [sys.executable, "-m", "cucm_sim.cli", "run", str(scenario), "--engine", engine, "--out", str(out),
               "--no-plots", "--quiet"]
    if engine == "signal":
        command += ["--set", f"duration_s={signal_s}"]
    environment = {**os.environ, "PYTHONPATH": str(source)}
    done = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=source)
    if done.returncode != 0:
        raise RuntimeError(f"{scenario.name} ({engine}) with {source}: exit {done.returncode}\n{done.stderr}")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    summary.pop("wall_s", None)
    digests = {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in COMPARED_FILES}
    return {"digests": digests, "summary": summary}


def key(scenario: Path, engine: str) -> str:
    return f"{scenario.stem}/{engine}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("commit", help="the commit to compare with, e.g. 2c338ae")
    parser.add_argument("--signal-s", type=int, default=300, help="seconds the signal engine runs (default 300)")
    parser.add_argument("--workers", type=int, default=2, help="runs at once (default 2)")
    parser.add_argument("--digests", type=Path, help="also write COMMIT's digests to this JSON file")
    args = parser.parse_args()
    runs = [(scenario, engine) for scenario in library() for engine in ENGINES]
    with tempfile.TemporaryDirectory(prefix="cucm-compare-") as temporary:
        base = Path(temporary)
        old_tree = unpack(args.commit, base)
        jobs = [(source, scenario, engine, base / f"{label}-{scenario.stem}-{engine}")
                for scenario, engine in runs for label, source in (("old", old_tree), ("new", REPO_DIR))]
        with ThreadPoolExecutor(args.workers) as pool:
            results = list(pool.map(lambda job: run_one(job[0], job[1], job[2], args.signal_s, job[3]), jobs))
    differ = 0
    old_digests: dict[str, Any] = {}
    for index, (scenario, engine) in enumerate(runs):
        old, new = results[2 * index], results[2 * index + 1]
        old_digests[key(scenario, engine)] = {**old["digests"], "summary": old["summary"]}
        problems = [name for name in COMPARED_FILES if old["digests"][name] != new["digests"][name]]
        if old["summary"] != new["summary"]:
            changed = sorted(k for k in old["summary"].keys() | new["summary"].keys()
                             if old["summary"].get(k) != new["summary"].get(k))
            problems.append("summary.json: " + ", ".join(changed))
        differ += bool(problems)
        print(f"{key(scenario, engine):45s} {'same' if not problems else 'DIFFERS: ' + '; '.join(problems)}")
    if args.digests:
        payload = {"commit": args.commit, "signal_s": args.signal_s, "runs": old_digests}
        args.digests.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(runs) - differ} of {len(runs)} runs the same as {args.commit}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
