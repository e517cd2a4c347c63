"""A sensitivity study: one scenario under every reading of Cisco's ambiguous throttling rules.

`run_sensitivity` runs the scenario under each of `readings.ALL_READINGS` (12), each with the same
replication seeds (the scenario's own seed first, then derived ones), through `check.check_scenarios`,
so the runs go through `backends` like every other study's and the bounds are judged by the same rule.
It returns a `report.sensitivity.SensitivityResult`: the chosen metrics' values under every reading and
every `expect:` bound's verdict (holds under all, some or none of the readings, and on which switches
that depends).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from cucm_sim.errors import UserError
from cucm_sim.measures.metrics import lookup
from cucm_sim.report.sensitivity import SensitivityResult, judge_bounds
from cucm_sim.scenario.readings import ALL_READINGS, reading_of
from cucm_sim.scenario.schema import Scenario
from cucm_sim.studies.check import Progress, check_scenarios

HEADLINE_METRICS: Final = ("code_yellow_entries", "time_in_state_s.CodeYellow", "code_red_entries",
                           "calls_rejected_fraction", "dial_tone_delay_ms.p95")
"""What the table shows besides the scenario's own bounds, unless metrics are named."""


def study_metrics(scenario: Scenario, metrics: Sequence[str] = ()) -> tuple[str, ...]:
    """The metrics a study shows: those of the scenario's bounds, then `metrics` (or the headline ones)."""
    return tuple(dict.fromkeys([*scenario.expect, *(metrics or HEADLINE_METRICS)]))


def check_has_throttling(scenario: Scenario, source: str) -> None:
    """UserError when the scenario has no CUCM node (hosts only): no call throttling, no reading to vary."""
    if not scenario.has_node:
        raise UserError([f"{source}: the scenario has no CUCM node (hosts only): there is no call throttling, so "
                         "no reading of its rules to vary"])


def run_sensitivity(source: str, scenario: Scenario, replications: int = 1, workers: int = 1,
                    progress: Progress | None = None, metrics: Sequence[str] = ()) -> SensitivityResult:
    """Run `scenario` under every reading, `replications` times each with the same seeds (module doc)."""
    check_has_throttling(scenario, source)
    concrete = scenario.with_concrete_seed()
    assert concrete.seed is not None
    (check,) = check_scenarios([(source, concrete)], replications, workers, progress, readings=ALL_READINGS)
    names = study_metrics(concrete, metrics)
    runs = len(check.seeds)
    values = tuple(
        tuple(tuple(lookup(summary, name) for summary in check.summaries[r * runs:(r + 1) * runs]) for name in names)
        for r in range(len(ALL_READINGS))
    )
    return SensitivityResult(
        name=concrete.name, source=source, root_seed=concrete.seed, readings=ALL_READINGS, seeds=check.seeds,
        metrics=names, values=values, bounds=judge_bounds(dict(concrete.expect), ALL_READINGS, names, values),
        own_reading=reading_of(concrete.throttling),
    )
