"""cucm-sim: a discrete-event simulator of Cisco Unified Communications Manager call throttling.

The public API: `load_scenario(path)` reads and validates a scenario YAML, `simulate(scenario)` runs it
and returns a `RunResult` whose `.summary` is the dict summary.json holds, and `write_results(result, dir)`
writes the result files.  The throttling rules live in `cucm_sim.throttling`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from cucm_sim.errors import ScenarioError, UserError
from cucm_sim.loader import load_scenario
from cucm_sim.output import write_results
from cucm_sim.runner import RunResult, simulate
from cucm_sim.schema import Scenario
from cucm_sim.throttling import ThrottleState, ThrottleStateMachine, ThrottlingParams

__all__ = [
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
