"""Recreate cm1_incident_15s.csv, the synthetic RTMT-like recording scenarios/replay_recorded_incident.yaml replays.

    .venv/bin/python scenarios/data/make_recording.py [--out FILE]

Runs cm1_incident.yaml (beside this script; seed 20260310, batched engine) and writes its counters as
Perfmon CSV sampled every 15 s (RTMT's default polling), stamped from 2026-03-10 09:00:00 in America/Chicago,
host cm1: what

    cucm-sim run scenarios/data/cm1_incident.yaml --out results/cm1-incident --perfmon --interval 15 \\
        --start 2026-03-10T09:00:00 --tz America/Chicago --host cm1

writes as results/cm1-incident/perfmon.csv.  Same seed, same bytes (tests/test_trace_replay.py checks that the
shipped file is what this script writes).  The recording is made by cucm-sim, not captured from a real CUCM.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from cucm_sim import load_scenario, simulate
from cucm_sim.report.perfmon_export import PerfmonOptions, perfmon_text

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "cm1_incident.yaml"
RECORDING = HERE / "cm1_incident_15s.csv"
OPTIONS = PerfmonOptions(interval_s=15, start=datetime(2026, 3, 10, 9, 0, 0), zone=ZoneInfo("America/Chicago"),
                         host="cm1")


def recording_text() -> str:
    """The recording's text: cm1_incident.yaml run, sampled as OPTIONS says."""
    return perfmon_text(simulate(load_scenario(SCENARIO)), OPTIONS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=RECORDING, help=f"the file to write (default {RECORDING})")
    out = parser.parse_args().out
    out.write_bytes(recording_text().encode("utf-8"))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
