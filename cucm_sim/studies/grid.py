"""The points of a sweep: grid axes, their Cartesian product as validated scenarios, and every run's seed.

Axes come from `--grid KEY=V1,V2,...` / `--grid KEY=START:STOP:STEP` options or from a scenario's `sweep:`
block (the options replace the block's grid).  The points are the Cartesian product of the axes in the order
given, the last axis varying fastest; a point's index is its position.  Each point is the scenario with the
point's values applied like `--set` overrides and validated, every point before anything runs, so a value out
of range is a user error naming the point, the key, the value and what is allowed (the loader's messages).
Run (point p, replication r) gets the seed `derive_seed(root_seed, p, r)`: it depends on nothing else, not on
the backend, the number of workers or the order runs finish in.  Pure: nothing runs and nothing is written here.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import TypeAdapter, ValidationError

from cucm_sim.errors import ScenarioError, UserError
from cucm_sim.scenario.loader import (
    ScenarioDumper,
    apply_overrides,
    parse_scenario,
    parse_yaml_text,
    read_yaml,
)
from cucm_sim.scenario.schema import (
    DEFAULT_HOST_SWEEP_METRICS,
    DEFAULT_SWEEP_METRICS,
    MAX_GRID_AXES,
    GridKey,
    GridList,
    GridRange,
    GridScalar,
    MetricName,
    Scenario,
    SweepSpec,
)
from cucm_sim.scenario.seeds import derive_seed
from cucm_sim.scenario.workload import check_run, check_sweep
from cucm_sim.studies.scenario_metrics import check_metrics

MAX_POINTS: Final = 100_000
"""The most grid points a sweep may have (every one is validated up front)."""
MAX_PROBLEMS_SHOWN: Final = 20
GRID_SYNTAX: Final = ("expected KEY=V1,V2,... or KEY=START:STOP:STEP, e.g. load.calls_per_s=2,4,8 or "
                      "load.calls_per_s=2:16:2")
YAML_LINE_WIDTH: Final = 1_000_000
"""Wide enough that PyYAML never folds a long string value over lines."""
NO_GRID: Final = "no grid: give --grid KEY=V1,V2 or a sweep: block"

_KEY_ADAPTER: Final = TypeAdapter(GridKey)
_LIST_ADAPTER: Final = TypeAdapter(GridList)
_METRIC_ADAPTER: Final = TypeAdapter(MetricName)


@dataclass(frozen=True)
class Axis:
    """One grid axis: a dotted scenario key and its values, in order."""

    key: str
    values: tuple[GridScalar, ...]

    def override(self, index: int) -> str:
        """The `--set`-style override that gives this axis its `index`-th value (the value written as YAML)."""
        return f"{self.key}={yaml_scalar(self.values[index])}"


@dataclass(frozen=True)
class Point:
    """One grid point: its index, its value on each axis (axis order) and its validated scenario (no sweep)."""

    index: int
    values: tuple[GridScalar, ...]
    scenario: Scenario


@dataclass(frozen=True)
class SweepDesign:
    """Everything a sweep will run, validated: the base scenario (overrides applied, `sweep:` removed; its seed
    is the root seed, None until drawn), the axes, every point, replications per point and the plotted metrics."""

    source: str
    scenario: Scenario
    axes: tuple[Axis, ...]
    points: tuple[Point, ...]
    replications: int
    metrics: tuple[str, ...]

    @property
    def root_seed(self) -> int | None:
        """The seed every run's seed derives from (the scenario's), None while the scenario has none."""
        return self.scenario.seed

    @property
    def runs(self) -> int:
        """How many runs the sweep makes: points x replications."""
        return len(self.points) * self.replications

    def with_root_seed(self, root_seed: int) -> SweepDesign:
        """This design with `root_seed` as the scenario's seed (the root of every run's seed)."""
        return replace(self, scenario=self.scenario.model_copy(update={"seed": root_seed}))

    def run_seed(self, point: int, replication: int) -> int:
        """The seed of run (`point`, `replication`): `derive_seed(root_seed, point, replication)`."""
        if self.root_seed is None:
            raise ValueError("the sweep has no root seed yet: call with_root_seed first")
        return derive_seed(self.root_seed, point, replication)

    def run_scenario(self, point: int, replication: int) -> Scenario:
        """The scenario of run (`point`, `replication`): the point's scenario with the run's seed."""
        return self.points[point].scenario.model_copy(update={"seed": self.run_seed(point, replication)})


def yaml_scalar(value: GridScalar) -> str:
    """`value` as YAML text that reads back as the same value and type ('20' stays a string, 0.1 a float)."""
    text = yaml.dump(value, Dumper=ScenarioDumper, default_flow_style=True, allow_unicode=True, width=YAML_LINE_WIDTH)
    return text.removesuffix("\n").removesuffix("\n...").strip(" \n")


# ------------------------------------------------------------------ axes from --grid options
def parse_grid_option(option: str) -> Axis:
    """One `--grid` option: KEY=V1,V2,... (values read as YAML scalars, like --set) or KEY=START:STOP:STEP
    (inclusive stop; ints when all three are ints).  ScenarioError naming the option and what is allowed."""
    key, sep, spec = option.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ScenarioError([f"--grid {option!r}: {GRID_SYNTAX}"])
    try:
        key = _KEY_ADAPTER.validate_python(key)
    except ValidationError as error:
        raise ScenarioError([f"--grid {option}: {_message(error)}"]) from None
    if not spec.strip():
        raise ScenarioError([f"--grid {option}: no values; {GRID_SYNTAX}"])
    if "," not in spec and ":" in spec:
        return Axis(key, _range_values(option, spec))
    values = [_scalar(option, part) for part in spec.split(",")]
    try:
        return Axis(key, tuple(_LIST_ADAPTER.validate_python(values)))
    except ValidationError as error:
        raise ScenarioError([f"--grid {option}: {_message(error)}"]) from None


def parse_grid_options(options: Sequence[str]) -> tuple[Axis, ...]:
    """Every `--grid` option as an axis, in order; ScenarioError listing every problem (a key given twice too)."""
    axes: list[Axis] = []
    problems: list[str] = []
    for option in options:
        try:
            axes.append(parse_grid_option(option))
        except ScenarioError as error:
            problems.extend(error.problems)
    keys = [axis.key for axis in axes]
    problems.extend(f"--grid {key}: the key is given twice; give all its values in one --grid"
                    for key in dict.fromkeys(key for key in keys if keys.count(key) > 1))
    if len(options) > MAX_GRID_AXES:
        problems.append(f"{len(options)} --grid options; a sweep has at most {MAX_GRID_AXES} axes")
    if problems:
        raise ScenarioError(problems)
    return tuple(axes)


def axes_of_spec(spec: SweepSpec) -> tuple[Axis, ...]:
    """The axes of a scenario's (validated) `sweep:` block, in the order written."""
    return tuple(
        Axis(key, tuple(values.values()) if isinstance(values, GridRange) else tuple(values))
        for key, values in spec.grid.items()
    )


def _scalar(option: str, text: str) -> GridScalar:
    if not text.strip():
        raise ScenarioError([f"--grid {option}: an empty value; {GRID_SYNTAX}"])
    value = parse_yaml_text(text, f"--grid {option}")
    if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    raise ScenarioError([f"--grid {option}: {text.strip()!r} is not a number, string or true/false"])


def _range_values(option: str, spec: str) -> tuple[int | float, ...]:
    parts = spec.split(":")
    if len(parts) != 3:
        raise ScenarioError([f"--grid {option}: a range has three parts, START:STOP:STEP; {GRID_SYNTAX}"])
    numbers = [_number(option, name, text) for name, text in zip(("start", "stop", "step"), parts, strict=True)]
    try:
        grid_range = GridRange.model_validate(dict(zip(("start", "stop", "step"), numbers, strict=True)))
    except ValidationError as error:
        raise ScenarioError([f"--grid {option}: {_message(error)}"]) from None
    return grid_range.values()


def _number(option: str, name: str, text: str) -> int | float:
    value = parse_yaml_text(text, f"--grid {option}") if text.strip() else None
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScenarioError([f"--grid {option}: {name} {text.strip()!r} is not a number"])
    return value


def _message(error: ValidationError) -> str:
    return "; ".join(item["msg"].removeprefix("Value error, ") for item in error.errors(include_url=False))


# ------------------------------------------------------------------ the whole design
def load_sweep(path: Path, *, overrides: Sequence[str] = (), grid: Sequence[str] = (),
               replications: int | None = None, metrics: Sequence[str] = (), allow_large: bool = False
               ) -> SweepDesign:
    """Read the scenario at `path` and design its sweep (see `design_sweep`)."""
    return design_sweep(read_yaml(path), str(path), overrides=overrides, grid=grid, replications=replications,
                        metrics=metrics, allow_large=allow_large)


def design_sweep(data: Any, source: str, *, overrides: Sequence[str] = (), grid: Sequence[str] = (),
                 replications: int | None = None, metrics: Sequence[str] = (), allow_large: bool = False
                 ) -> SweepDesign:
    """Validate a sweep of the scenario `data` (parsed YAML; `source` names it in messages).

    `grid` (--grid options), when given, replaces the `sweep:` block's grid; `replications` and `metrics`,
    when given, replace the block's (defaults: 3 and DEFAULT_SWEEP_METRICS); a metric must be one of the
    scenario's (a per-node metric names one of its cluster's nodes).  Every point is validated, and must have
    the scenario's metrics (the grid may not rename a node or a link); a UserError lists every problem (each
    distinct one once, with the first point that has it).  Unless `allow_large`, a sweep of more runs than
    `workload.check_sweep` allows (`MAX_SWEEP_RUNS`, fewer for a cluster's longer rows), or with a point whose
    run passes `workload.check_run`'s limits, is a WorkLimitError.
    """
    base = parse_scenario(data, source, overrides)  # the scenario and its sweep: block, --set applied
    spec = base.sweep
    if grid:
        axes = parse_grid_options(grid)
    elif spec is not None:
        axes = axes_of_spec(spec)
    else:
        raise UserError([f"{source}: {NO_GRID}"])
    defaults = DEFAULT_SWEEP_METRICS if base.has_node else DEFAULT_HOST_SWEEP_METRICS
    given = spec is not None and "metrics" in spec.model_fields_set
    chosen_metrics = _metrics(metrics) if metrics else tuple(spec.metrics if spec and given else defaults)
    check_metrics(base, [(f"--metric {name}", name) for name in metrics])  # e.g. a node the cluster lacks
    count = math.prod(len(axis.values) for axis in axes)
    if count > MAX_POINTS:
        raise UserError([f"{source}: the grid has {count:,} points; a sweep has at most {MAX_POINTS:,}"])
    chosen_replications = replications if replications is not None else spec.replications if spec else 3
    if not allow_large:  # before the points are made: that alone takes memory and time in proportion
        check_sweep(count, chosen_replications, source, len(base.metric_paths()))
    plain = {name: value for name, value in apply_overrides(data, overrides).items() if name != "sweep"}
    points = _points(plain, source, axes)
    _same_parts(base, points, source)
    if not allow_large:
        for point in points:
            check_run(point.scenario, f"{source}, grid point {point.index}")
    return SweepDesign(source, base.model_copy(update={"sweep": None}), axes, points, chosen_replications,
                       chosen_metrics)


def _parts(scenario: Scenario) -> tuple[bool, tuple[str, ...], tuple[str, ...]]:
    """What decides a scenario's metrics (`Scenario.metric_paths`): a CUCM node or not, its links', its nodes'
    names."""
    return scenario.has_node, tuple(link.name for link in scenario.links), scenario.node_names


def _same_parts(base: Scenario, points: Sequence[Point], source: str) -> None:
    """UserError unless every point has the base scenario's metrics: runs.csv has one set of columns."""
    parts = _parts(base)
    for point in points:
        if _parts(point.scenario) != parts:
            raise UserError([f"{source}, grid point {point.index}: the grid changes which nodes, links or parts "
                             "the scenario has, and with them its metrics; every point of a sweep must have the same "
                             "metrics (the columns of runs.csv): vary their settings, not their names"])


def _metrics(names: Sequence[str]) -> tuple[str, ...]:
    problems = []
    for name in names:
        try:
            _METRIC_ADAPTER.validate_python(name)
        except ValidationError as error:
            problems.append(f"--metric {name}: {_message(error)}")
    if problems:
        raise UserError(problems)
    return tuple(dict.fromkeys(names))


def _points(plain: dict[str, Any], source: str, axes: Sequence[Axis]) -> tuple[Point, ...]:
    points: list[Point] = []
    first_seen: dict[str, list[str]] = {}  # each distinct problem -> the points that have it
    for index, positions in enumerate(itertools.product(*(range(len(axis.values)) for axis in axes))):
        values = tuple(axis.values[position] for axis, position in zip(axes, positions, strict=True))
        overrides = [axis.override(position) for axis, position in zip(axes, positions, strict=True)]
        where = f"{source}, grid point {index} ({', '.join(overrides)})"
        try:
            points.append(Point(index, values, parse_scenario(plain, where, overrides, blame_overrides=False)))
        except ScenarioError as error:
            for problem in error.problems:
                # The loader says --set for an override it cannot apply; here the override is a grid value.
                text = problem.removeprefix(f"{where}: ").replace("--set ", "--grid ", 1)
                first_seen.setdefault(text, []).append(where)
    if first_seen:
        raise ScenarioError(_problem_lines(first_seen))
    return tuple(points)


def _problem_lines(first_seen: dict[str, list[str]]) -> list[str]:
    lines = []
    for text, wheres in itertools.islice(first_seen.items(), MAX_PROBLEMS_SHOWN):
        more = f" and {len(wheres) - 1} more point{'s' if len(wheres) > 2 else ''}" if len(wheres) > 1 else ""
        lines.append(f"{wheres[0]}{more}: {text}")
    if len(first_seen) > MAX_PROBLEMS_SHOWN:
        lines.append(f"... and {len(first_seen) - MAX_PROBLEMS_SHOWN} more problems")
    return lines
