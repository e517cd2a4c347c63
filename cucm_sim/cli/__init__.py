"""The `cucm-sim` command line: one click group, its commands, and the way each ends (exit 0, 1, 2, 130).

`main` is the console script's entry point; `python -m cucm_sim.cli` runs it too.
"""

from __future__ import annotations

from cucm_sim.cli.commands import main

__all__ = ["main"]
