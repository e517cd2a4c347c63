"""`expect:` blocks: the metric catalogue, bounds, derived metrics, replication seeds and the pass rule.

Fast tests of the pieces `cucm-sim check` and the pytest plugin are built from; the commands themselves
are tested in test_check_cli.py.
"""

from __future__ import annotations

import math
import typing
from typing import Any

import numpy as np
import pytest

from cucm_sim import Scenario, simulate
from cucm_sim.errors import ScenarioError
from cucm_sim.measures.confidence import mean_confidence_interval
from cucm_sim.measures.metrics import METRIC_PATHS, METRICS, STATES, derived_metrics, lookup
from cucm_sim.rules.alarms import CODE_RED_ENTRY, CODE_YELLOW_ENTRY, CODE_YELLOW_EXIT, Alarm
from cucm_sim.rules.priorities import PRIORITIES, Priority
from cucm_sim.rules.throttling import ThrottleState
from cucm_sim.scenario.loader import parse_scenario
from cucm_sim.scenario.schema import Bound
from cucm_sim.scenario.seeds import derive_seed, replication_seeds
from cucm_sim.studies.check import Outcome, evaluate

EVENTFUL = {
    "name": "eventful", "seed": 5, "duration_s": 60,
    "throttling": {"system_throttle_sample_size_s": 5, "code_yellow_duration_min": 1},
    "load": {"background": [{"signals_per_s": 300}], "calls_per_s": 2, "signals_per_call": 10},
    "devices": {"count": 20, "keepalive_interval_s": 10},
    "disturbances": [{"kind": "cpu_slowdown", "start_s": 5, "end_s": 20, "capacity_factor": 0.05}],
}


def _leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        return {path: value for key, child in tree.items() for path, value in _leaves(child, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): tree}


# ------------------------------------------------------------------ the catalogue
def test_catalogue_is_exactly_the_summary_s_numbers() -> None:
    summary = simulate(Scenario.model_validate(EVENTFUL)).summary
    numeric = {path for path, value in _leaves(dict(summary)).items()
               if value is None or (isinstance(value, int | float) and not isinstance(value, bool))}
    not_metrics = {"seed", "duration_s", "wall_s"}  # inputs and machine noise, never expectations
    assert numeric - not_metrics == METRIC_PATHS
    assert len(METRICS) == len(METRIC_PATHS), "a metric is listed twice"
    assert all(metric.unit and metric.description for metric in METRICS)


def test_catalogue_names_match_the_schema_and_states() -> None:
    assert typing.get_args(Priority) == PRIORITIES  # the schema's literal and the queues' order
    assert tuple(state.value for state in ThrottleState) == STATES


def test_lookup_follows_dotted_paths_and_refuses_unknown_names() -> None:
    summary = {"dial_tone_delay_ms": {"p95": 12.5}, "time_in_state_s": {"CodeYellow": 3.0}}
    assert lookup(summary, "dial_tone_delay_ms.p95") == 12.5
    assert lookup(summary, "time_in_state_s.CodeYellow") == 3.0
    with pytest.raises(KeyError):
        lookup(summary, "dial_tone_delay_ms.p42")


def test_derived_metrics_from_counts_and_alarms() -> None:
    summary = {"calls_attempted": 200, "calls_rejected_throttled": 30, "calls_failed_node_down": 10,
               "time_in_state_s": {"CodeYellow": 50.0}, "duration_s": 500}
    alarms = [Alarm(CODE_YELLOW_ENTRY, 100.0), Alarm(CODE_YELLOW_EXIT, 120.0),
              Alarm(CODE_YELLOW_ENTRY, 200.0), Alarm(CODE_RED_ENTRY, 260.0),
              Alarm(CODE_YELLOW_ENTRY, 480.0)]  # still in Code Yellow at the end (500 s)
    derived = derived_metrics(summary, alarms)
    assert derived == {
        "calls_rejected_fraction": 30 / 200, "calls_lost_fraction": 40 / 200, "code_yellow_time_fraction": 0.1,
        "first_code_yellow_entry_s": 100.0, "first_code_red_entry_s": 260.0, "longest_code_yellow_s": 60.0,
    }
    quiet = derived_metrics({**summary, "calls_attempted": 0, "calls_rejected_throttled": 0,
                             "calls_failed_node_down": 0}, [])
    assert quiet["calls_rejected_fraction"] == 0 and quiet["longest_code_yellow_s"] == 0
    assert quiet["first_code_yellow_entry_s"] is None and quiet["first_code_red_entry_s"] is None


def test_summary_derived_metrics_agree_with_its_counts() -> None:
    summary = simulate(Scenario.model_validate(EVENTFUL)).summary
    assert summary["code_yellow_entries"] >= 1, "the scenario is meant to throttle"
    assert summary["calls_rejected_fraction"] == summary["calls_rejected_throttled"] / summary["calls_attempted"]
    assert 0 < summary["longest_code_yellow_s"] <= summary["time_in_state_s"]["CodeYellow"]


# ------------------------------------------------------------------ bounds
@pytest.mark.parametrize(("bound", "value", "holds", "miss"), [
    ({"max": 0.02}, 0.02, True, 0.0),          # bounds are inclusive
    ({"max": 0.02}, 0.03, False, 0.01),
    ({"min": 1}, 0, False, 1.0),
    ({"min": 1, "max": 5}, 3, True, 0.0),
    ({"min": 1, "max": 5}, 7, False, 2.0),
    ({"equals": 0}, 0, True, 0.0),
    ({"equals": 0}, 2, False, 2.0),
    ({"max": 10}, None, False, None),          # did not happen: fails every bound
    ({"min": 0}, None, False, None),
])
def test_bound_holds_and_miss(bound: dict[str, float], value: float | None, holds: bool, miss: float | None) -> None:
    parsed = Bound.model_validate(bound)
    assert parsed.holds(value) is holds
    assert parsed.miss(value) == (None if miss is None else pytest.approx(miss))


def test_bound_describe() -> None:
    bounds = ({"max": 0.02}, {"min": 1}, {"equals": 0}, {"min": 1, "max": 5})
    assert [Bound.model_validate(b).describe() for b in bounds] == ["<= 0.02", ">= 1", "== 0", "1 .. 5"]


def _problems(expect: dict[str, Any], overrides: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({"name": "x", "duration_s": 10, "expect": expect}, "s.yaml", overrides)
    return caught.value.problems


def test_unknown_metric_names_the_valid_ones_and_the_closest() -> None:
    (problem,) = _problems({"calls_rejected_fractoin": {"max": 0.02}})
    assert problem.startswith("s.yaml: expect.calls_rejected_fractoin: unknown metric 'calls_rejected_fractoin'")
    assert "did you mean 'calls_rejected_fraction'?" in problem
    assert all(path in problem for path in METRIC_PATHS)


@pytest.mark.parametrize(("expect", "message"), [
    ({"code_red_entries": {}}, "s.yaml: expect.code_red_entries: give min, max, or equals"),
    ({"code_red_entries": {"min": 3, "max": 1}}, "s.yaml: expect.code_red_entries: min (3) is greater than max (1)"),
    ({"code_red_entries": {"equals": 0, "max": 1}}, "s.yaml: expect.code_red_entries: give equals alone"),
    ({"code_red_entries": {"maxx": 1}},
     "s.yaml: expect.code_red_entries.maxx: unknown key; allowed keys here: min, max, equals"),
    ({"code_red_entries": {"max": ".inf"}}, "s.yaml: expect.code_red_entries.max"),
])
def test_bad_bounds_are_one_clear_line(expect: dict[str, Any], message: str) -> None:
    (problem,) = _problems(expect)
    assert problem.startswith(message)


def test_set_reaches_metric_names_with_dots() -> None:
    scenario = parse_scenario({"name": "x", "duration_s": 10, "expect": {"dial_tone_delay_ms.p95": {"max": 150}}},
                              "s.yaml", ["expect.dial_tone_delay_ms.p95.max=50", "expect.code_red_entries.equals=0",
                                         "expect.signal_wait_ms.p99={max: 3}"])
    assert scenario.expect == {"dial_tone_delay_ms.p95": Bound(max=50), "code_red_entries": Bound(equals=0),
                               "signal_wait_ms.p99": Bound(max=3)}
    (problem,) = _problems({}, ("expect.no_such.metric.max=1",))
    assert problem.startswith("--set expect.no_such.metric.max=1: expect.no_such.metric: unknown metric")


# ------------------------------------------------------------------ seeds
def test_replication_seeds_start_with_the_scenario_seed_and_grow_by_prefix() -> None:
    five = replication_seeds(7, 5)
    assert five[0] == 7
    assert replication_seeds(7, 3) == five[:3]  # asking for more never changes the first ones
    assert len(set(five)) == 5 and all(0 <= seed < 2**64 for seed in five)
    assert five[1:] == [derive_seed(7, index) for index in range(1, 5)]
    assert replication_seeds(8, 5)[1:] != five[1:]


def test_derived_seeds_are_what_seedsequence_gives() -> None:
    expected = np.random.SeedSequence(7, spawn_key=(3, 1)).generate_state(1, np.uint64)[0]
    assert derive_seed(7, 3, 1) == int(expected)
    with pytest.raises(ValueError, match="non-negative"):
        derive_seed(-1)


# ------------------------------------------------------------------ judging
def test_confidence_interval_uses_student_t() -> None:
    mean, half_width = mean_confidence_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    # t(0.975, 4 df) = 2.7764 (any table); stdev = sqrt(2.5)
    assert mean == 3.0 and half_width == pytest.approx(2.7764 * math.sqrt(2.5) / math.sqrt(5), rel=1e-4)
    assert mean_confidence_interval([4.0]) == (4.0, None)


def _outcome(bound: dict[str, float], values: list[float | None]) -> Outcome:
    summaries = [{"code_yellow_entries": value} for value in values]
    (outcome,) = evaluate({"code_yellow_entries": Bound.model_validate(bound)}, summaries, list(range(len(values))))
    return outcome


def test_a_bound_passes_only_if_every_replication_meets_it() -> None:
    mostly = _outcome({"max": 3}, [1, 2, 2, 5])  # the mean (2.5) is inside; one replication is not
    assert not mostly.passed and mostly.failures == 1
    assert mostly.worst_miss == 2 and mostly.worst_seed == 3
    assert mostly.describe_result() == "FAIL: 2 above max (+67 %), 1 of 4 replications"
    assert _outcome({"max": 5}, [1, 2, 2, 5]).passed


def test_failure_text_says_which_side_and_how_far() -> None:
    assert _outcome({"min": 4}, [1]).describe_result() == "FAIL: 3 below min (-75 %)"
    assert _outcome({"equals": 0}, [2]).describe_result() == "FAIL: off by 2"
    assert _outcome({"max": 0}, [2]).describe_result() == "FAIL: 2 above max"
    assert _outcome({"min": 1}, [None, 3]).describe_result() == "FAIL: did not happen, 1 of 2 replications"
    assert _outcome({"min": 1}, [None, 3]).describe_measured() == "did not happen (1 of 2)"


def test_measured_text_over_replications() -> None:
    assert _outcome({"max": 9}, [2]).describe_measured() == "2"
    assert _outcome({"max": 9}, [1, 2, 3, 4, 5]).describe_measured() == "3 ± 1.963 [1 .. 5]"  # 2.7764 x 0.7071


def test_evaluate_needs_one_summary_per_seed() -> None:
    with pytest.raises(ValueError, match="one summary per seed"):
        evaluate({"code_red_entries": Bound(equals=0)}, [{}], [1, 2])
