"""The `cucm-sim` command line: one click group (`app`), its commands, one module per group of them, and the way
each ends (exit 0, 1, 2, 130).

- `app`: the group `main`, SIGTERM as Ctrl-C, the exit codes and what the commands share.
- `run`: `run` and `explain`.  `scenarios`: `validate`, `metrics`, `schema`, `params`.
- `check`: `check`.  `studies`: `sweep` and `capacity`.  `export`: `export` (Perfmon CSV, syslog).
- `compare`: `compare` (a run against a Perfmon recording: compare.png, compare.csv).
- `calibrate`: `calibrate` (a scenario estimated from a node's Perfmon recording).
- `sensitivity`: `sensitivity` (a scenario under every reading of Cisco's ambiguous throttling rules).
- `progress`: the progress bars.

`main` is the console script's entry point; `python -m cucm_sim.cli` runs it too.
"""

from __future__ import annotations

from cucm_sim.cli import calibrate, check, compare, export, run, scenarios, sensitivity, studies
from cucm_sim.cli.app import main

for command in (run.run, run.explain, scenarios.validate, scenarios.metrics, scenarios.schema, scenarios.params,
                check.check, studies.sweep, studies.capacity, export.export, compare.compare_command,
                calibrate.calibrate, sensitivity.sensitivity):
    main.add_command(command)

__all__ = ["main"]
