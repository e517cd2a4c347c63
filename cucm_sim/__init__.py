"""cucm-sim: a discrete-event simulator of Cisco Unified Communications Manager call throttling.

The public API: `load_scenario(path)` reads and validates a scenario YAML, `simulate(scenario)` runs it
and returns a `RunResult` whose `.summary` is the dict summary.json holds, and `write_results(result, dir)`
writes the result files (with `perfmon=PerfmonOptions(...)`, perfmon.csv too).  The throttling rules live
in `cucm_sim.rules.throttling`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from cucm_sim.errors import ScenarioError, UserError
from cucm_sim.report.output import write_results
from cucm_sim.report.perfmon_export import PerfmonOptions
from cucm_sim.rules.throttling import ThrottleState, ThrottleStateMachine, ThrottlingParams
from cucm_sim.run.simulation import RunResult, simulate
from cucm_sim.scenario.loader import load_scenario
from cucm_sim.scenario.schema import Scenario

__all__ = [
    "PerfmonOptions",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "ThrottleState",
    "ThrottleStateMachine",
    "ThrottlingParams",
    "UserError",
    "__version__",
    "load_scenario",
    "simulate",
    "write_results",
]
