"""Tests of a sweep's design (`cucm_sim.studies.grid`) and of the `sweep:` block (`cucm_sim.scenario.schema`).

Contract under test (issue 5): `--grid KEY=V1,V2,...` values are YAML scalars like `--set` values;
`--grid KEY=START:STOP:STEP` includes its stop, gives ints when all three are ints, and needs step > 0 and
start <= stop.  The points are the Cartesian product of the axes in the order given, the last axis fastest,
and every point is validated before anything runs (a bad value names the point, the key, the value and the
allowed range).  Run (p, r) has the seed `derive_seed(root_seed, p, r)`, whatever else the sweep holds.
`cucm-sim run` and `check` ignore `sweep:`.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cucm_sim.errors import UserError
from cucm_sim.report.output import resolved_yaml
from cucm_sim.scenario.loader import parse_scenario, parse_yaml_text
from cucm_sim.scenario.schema import DEFAULT_SWEEP_METRICS, GridRange, Scenario
from cucm_sim.scenario.seeds import derive_seed
from cucm_sim.studies.grid import (
    NO_GRID,
    Axis,
    design_sweep,
    parse_grid_option,
    parse_grid_options,
    yaml_scalar,
)

BASE: dict[str, Any] = {
    "name": "grid-test", "seed": 11, "duration_s": 60,
    "load": {"calls_per_s": 2, "signals_per_call": 10},
}


def design(data: dict[str, Any] | None = None, **options: Any) -> Any:
    return design_sweep(copy.deepcopy(data or BASE), "s.yaml", **options)


def problems(action: Any) -> list[str]:
    with pytest.raises(UserError) as excinfo:
        action()
    return excinfo.value.problems


# ------------------------------------------------------------------ --grid options
@pytest.mark.parametrize(("option", "key", "values"), [
    ("load.calls_per_s=2,4,8", "load.calls_per_s", (2, 4, 8)),
    ("load.calls_per_s=0.5,1.5", "load.calls_per_s", (0.5, 1.5)),
    ("load.calls_per_s=3", "load.calls_per_s", (3,)),
    ("engine=batched,signal", "engine", ("batched", "signal")),
    ("devices.registered_at_start=true,false", "devices.registered_at_start", (True, False)),
    ("description='20',20", "description", ("20", 20)),  # quoted: a string, as with --set
    (" load.calls_per_s = 2, 4 ", "load.calls_per_s", (2, 4)),
])
def test_value_lists_are_yaml_scalars(option: str, key: str, values: tuple[Any, ...]) -> None:
    axis = parse_grid_option(option)

    assert axis.key == key
    assert axis.values == values
    assert [type(value) for value in axis.values] == [type(value) for value in values]


@pytest.mark.parametrize(("option", "values"), [
    ("a=2:16:2", (2, 4, 6, 8, 10, 12, 14, 16)),
    ("a=1:10:4", (1, 5, 9)),                       # the stop need not be hit
    ("a=5:5:1", (5,)),
    ("a=0.1:0.3:0.1", (0.1, 0.2, 0.3)),            # decimal steps land exactly, stop included
    ("a=0:1:0.1", tuple(round(0.1 * k, 1) for k in range(11))),
    ("a=1:3:0.5", (1.0, 1.5, 2.0, 2.5, 3.0)),     # a float step gives floats
    ("a=1e-3:3e-3:1e-3", (0.001, 0.002, 0.003)),  # exponents without a dot are numbers too
    ("a=-2:2:2", (-2, 0, 2)),
])
def test_ranges_include_their_stop(option: str, values: tuple[Any, ...]) -> None:
    axis = parse_grid_option(option)

    assert axis.values == values
    assert all(type(got) is type(want) for got, want in zip(axis.values, values, strict=True))


def test_a_range_within_a_billionth_of_a_step_of_its_stop_includes_it() -> None:
    assert GridRange(start=0, stop=0.3 - 1e-12, step=0.1).values()[-1] == 0.3
    assert GridRange(start=0, stop=0.3 - 1e-6, step=0.1).values()[-1] == 0.2


@pytest.mark.parametrize(("option", "expected"), [
    ("load.calls_per_s", ["--grid 'load.calls_per_s'", "expected KEY=V1,V2,... or KEY=START:STOP:STEP"]),
    ("=2,4", ["expected KEY=V1,V2"]),
    ("load.calls_per_s=", ["--grid load.calls_per_s=", "no values"]),
    ("load.calls_per_s=2,,4", ["an empty value"]),
    ("load.calls_per_s=2,2", ["the value 2 is given twice"]),
    ("load.calls_per_s=[2],4", ["'[2]' is not a number, string or true/false"]),
    ("load.calls_per_s=1:2", ["a range has three parts, START:STOP:STEP"]),
    ("load.calls_per_s=8:2:2", ["--grid load.calls_per_s=8:2:2", "stop (2) is below start (8)"]),
    ("load.calls_per_s=2:8:0", ["step (0) must be greater than 0"]),
    ("load.calls_per_s=2:8:-1", ["step (-1) must be greater than 0"]),
    ("load.calls_per_s=2:x:1", ["stop 'x' is not a number"]),
    ("load.calls_per_s=0:5000:1", ["5,001 values; an axis holds at most 1000"]),
    ("seed=1,2", ["the seed cannot be a grid axis"]),
    ("load..calls_per_s=1", ["'load..calls_per_s' is not a dotted scenario key"]),
])
def test_bad_grid_options_say_what_is_allowed(option: str, expected: list[str]) -> None:
    (problem,) = problems(lambda: parse_grid_option(option))

    assert problem.startswith("--grid ")
    for fragment in expected:
        assert fragment in problem


def test_every_bad_option_is_reported_and_a_key_given_twice_too() -> None:
    found = problems(lambda: parse_grid_options(["a=1,2", "b=", "a=3", "c=1:0:1"]))

    assert len(found) == 3
    assert any("--grid b=" in problem for problem in found)
    assert any("--grid c=1:0:1" in problem for problem in found)
    assert any("--grid a: the key is given twice" in problem for problem in found)


@example("\x85")  # YAML's line breaks besides \n and \r: written raw, a quoted scalar folds them to spaces
@example("a\u2028b\u2029é")
@given(st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text()))
def test_a_value_written_as_yaml_reads_back_as_itself(value: Any) -> None:
    back = parse_yaml_text(yaml_scalar(value), "test")

    assert back == value
    assert type(back) is type(value)


# ------------------------------------------------------------------ points
def test_points_are_the_product_in_axis_order_last_axis_fastest() -> None:
    sweep = design(grid=["load.calls_per_s=2,4,8", "throttling.code_yellow_entry_latency_ms=20,50"])

    assert [axis.key for axis in sweep.axes] == ["load.calls_per_s", "throttling.code_yellow_entry_latency_ms"]
    assert [point.index for point in sweep.points] == list(range(6))
    assert [point.values for point in sweep.points] == [(2, 20), (2, 50), (4, 20), (4, 50), (8, 20), (8, 50)]
    for point in sweep.points:  # each point is the scenario with its values applied, validated
        assert point.scenario.load.calls_per_s == point.values[0]
        assert point.scenario.throttling.code_yellow_entry_latency_ms == point.values[1]
        assert point.scenario.load.signals_per_call == 10
        assert point.scenario.sweep is None
    assert sweep.runs == 6 * 3


def test_set_overrides_apply_at_every_point_and_the_grid_wins_on_its_keys() -> None:
    sweep = design(grid=["load.calls_per_s=2,4"], overrides=["duration_s=30", "load.calls_per_s=99"])

    assert [point.scenario.duration_s for point in sweep.points] == [30, 30]
    assert [point.scenario.load.calls_per_s for point in sweep.points] == [2, 4]


def test_an_out_of_range_value_names_the_point_key_value_and_allowed_range() -> None:
    found = problems(lambda: design(grid=["load.calls_per_s=2,20000", "throttling.code_yellow_entry_latency_ms=20,50"]))

    (problem,) = found  # the same problem at two points: said once
    assert problem == ("s.yaml, grid point 2 (load.calls_per_s=20000, throttling.code_yellow_entry_latency_ms=20) "
                       "and 1 more point: load.calls_per_s: 20000 is not allowed; allowed: 0 to 10000 per s")


def test_an_unknown_key_is_named_with_the_keys_allowed_there() -> None:
    (problem,) = problems(lambda: design(grid=["load.calls_pr_s=2,4"]))

    assert "load.calls_pr_s: unknown key" in problem
    assert "calls_per_s" in problem


def test_values_are_validated_together_not_one_axis_at_a_time() -> None:
    # setup_signals_per_call 12 is too many for 10 signals per call but fine for 20: only that point fails.
    grid = ["load.signals_per_call=10,20", "load.setup_signals_per_call=4,12"]
    (problem,) = problems(lambda: design(grid=grid))

    assert "grid point 1 (load.signals_per_call=10, load.setup_signals_per_call=12)" in problem
    assert "cannot exceed signals_per_call" in problem
    assert "more point" not in problem


def test_a_path_through_a_value_is_reported_as_a_grid_problem() -> None:
    (problem,) = problems(lambda: design(grid=["duration_s.x=1"]))

    assert "--grid duration_s.x" in problem
    assert "--set" not in problem


def test_no_grid_is_a_user_error() -> None:
    (problem,) = problems(lambda: design())

    assert problem == f"s.yaml: {NO_GRID}"


def test_unknown_metric_is_a_user_error_with_a_suggestion() -> None:
    (problem,) = problems(lambda: design(grid=["load.calls_per_s=2"], metrics=["calls_rejected_fractoin"]))

    assert problem.startswith("--metric calls_rejected_fractoin: unknown metric")
    assert "did you mean 'calls_rejected_fraction'" in problem


# ------------------------------------------------------------------ the sweep: block
SWEEP_BLOCK: dict[str, Any] = {
    **BASE,
    "sweep": {
        "grid": {"load.calls_per_s": {"start": 1, "stop": 3, "step": 1}, "engine": ["batched", "signal"]},
        "replications": 2,
        "metrics": ["code_yellow_entries"],
    },
}


def test_the_sweep_block_gives_axes_replications_and_metrics() -> None:
    sweep = design(SWEEP_BLOCK)

    assert sweep.axes == (Axis("load.calls_per_s", (1, 2, 3)), Axis("engine", ("batched", "signal")))
    assert sweep.replications == 2
    assert sweep.metrics == ("code_yellow_entries",)
    assert len(sweep.points) == 6
    assert sweep.scenario.sweep is None


def test_options_replace_the_blocks_grid_replications_and_metrics() -> None:
    sweep = design(SWEEP_BLOCK, grid=["devices.count=10,20"], replications=5,
                   metrics=["calls_attempted", "calls_attempted"])

    assert sweep.axes == (Axis("devices.count", (10, 20)),)
    assert sweep.replications == 5
    assert sweep.metrics == ("calls_attempted",)


def test_defaults_without_a_block() -> None:
    sweep = design(grid=["load.calls_per_s=2"])

    assert sweep.replications == 3
    assert sweep.metrics == DEFAULT_SWEEP_METRICS == (
        "calls_rejected_fraction", "dial_tone_delay_ms.p95", "time_in_state_s.CodeYellow")


@pytest.mark.parametrize(("sweep_block", "expected"), [
    ({"grid": {"load.calls_per_s": {"start": 4, "stop": 1, "step": 1}}},
     "sweep.grid.load.calls_per_s.range: stop (1) is below start (4)"),
    ({"grid": {"load.calls_per_s": {"start": 1, "stop": 4, "step": 0}}},
     "sweep.grid.load.calls_per_s.range: step (0) must be greater than 0"),
    ({"grid": {"load.calls_per_s": 5}}, "sweep.grid.load.calls_per_s: expected a list of values"),
    ({"grid": {"load.calls_per_s": []}}, "sweep.grid.load.calls_per_s.values: List should have at least 1 item"),
    ({"grid": {"load.calls_per_s": [1, 1]}}, "the value 1 is given twice"),
    ({"grid": {"load.calls_per_s": [None]}}, "sweep.grid.load.calls_per_s.values.0: a grid value is a number"),
    ({"grid": {}}, "sweep.grid: Dictionary should have at least 1 item"),
    ({"grid": {f"k{i}": [1] for i in range(9)}}, "sweep.grid: Dictionary should have at most 8 items"),
    ({"grid": {"load.calls_per_s": [1]}, "replications": 0}, "sweep.replications: 0 is not allowed"),
    ({"grid": {"load.calls_per_s": [1]}, "metrics": ["nope"]}, "sweep.metrics.0: unknown metric 'nope'"),
    ({"grid": {"load.calls_per_s": [1]}, "repetitions": 2}, "sweep.repetitions: unknown key"),
])
def test_bad_sweep_blocks_are_scenario_errors(sweep_block: dict[str, Any], expected: str) -> None:
    found = problems(lambda: parse_scenario({**BASE, "sweep": sweep_block}, "s.yaml"))

    assert any(expected in problem for problem in found), found


def test_run_and_check_ignore_the_sweep_block() -> None:
    scenario = parse_scenario(copy.deepcopy(SWEEP_BLOCK), "s.yaml")

    assert scenario.sweep is not None
    assert "sweep" not in scenario.model_dump()
    assert "sweep" not in resolved_yaml(scenario)
    assert scenario.model_dump() == Scenario.model_validate(BASE).model_dump()


# ------------------------------------------------------------------ seeds
def test_every_run_seed_derives_from_root_point_and_replication() -> None:
    sweep = design(grid=["load.calls_per_s=2,4,8"], replications=4)
    seeds = {(p, r): sweep.run_seed(p, r) for p in range(3) for r in range(4)}

    assert seeds == {(p, r): derive_seed(11, p, r) for p in range(3) for r in range(4)}
    assert len(set(seeds.values())) == len(seeds)
    assert sweep.run_scenario(2, 3).seed == derive_seed(11, 2, 3)
    assert sweep.run_scenario(2, 3).load.calls_per_s == 8


def test_a_runs_seed_does_not_depend_on_the_size_of_the_sweep() -> None:
    small = design(grid=["load.calls_per_s=2,4"], replications=2)
    large = design(grid=["load.calls_per_s=2,4,8,16"], replications=7)

    assert all(small.run_seed(p, r) == large.run_seed(p, r) for p in range(2) for r in range(2))


def test_a_seedless_scenario_has_no_root_seed_until_one_is_given() -> None:
    sweep = design({**BASE, "seed": None}, grid=["load.calls_per_s=2"])

    assert sweep.root_seed is None
    with pytest.raises(ValueError, match="no root seed"):
        sweep.run_seed(0, 0)
    assert sweep.with_root_seed(5).run_seed(0, 1) == derive_seed(5, 0, 1)


def test_seed_override_sets_the_root_seed() -> None:
    assert design(grid=["load.calls_per_s=2"], overrides=["seed=99"]).root_seed == 99


def test_too_many_points_is_refused_before_validating_them() -> None:
    grid = ["devices.count=1:100:1", "load.calls_per_s=1:100:1", "throttling.code_yellow_entry_latency_ms=5:505:50"]
    (problem,) = problems(lambda: design(grid=grid))

    assert problem == "s.yaml: the grid has 110,000 points; a sweep has at most 100,000"
