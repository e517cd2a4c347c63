"""Capacity search: the highest value of one scenario key that keeps a condition false, by bisection.

`cucm-sim capacity SCENARIO --vary load.calls_per_s --lo 1 --hi 200 --until "code_yellow_entries > 0"` asks
how far a key can go before something happens.  The search probes values of the key (`--set`-style
overrides of the scenario, validated like any scenario), runs each probe `replications` times on an
execution back end (`backends`) and narrows the interval [highest safe value, lowest tripped value] until
it is no wider than the tolerance.  It assumes the condition becomes true as the value grows (more load,
more trouble); a probe order that contradicts this is reported as it happened, not smoothed over.  In a
cluster the key and the condition reach its parts: `--vary devices.pools.0.count --until
"nodes.cm2.code_red_entries > 0"` asks how many phones of a pool whose primary fails can fail over onto cm2
before cm2 enters Code Red.

**The confidence rule.**  A probe is SAFE when the condition is false in every one of its R replications,
and TRIPPED otherwise.  A value at which one run trips with probability p passes as safe with probability
(1 - p)^R, so a value judged safe trips, with 95 % confidence, in fewer than 1 - 0.05^(1/R) of runs: 45 %
for R = 5, 26 % for R = 10, 14 % for R = 20.  The reported capacity is conservative: when noise makes the
verdicts disagree with the order of the values, the lowest tripped probe bounds the search.

**Common random numbers.**  Replication r uses the same seed at every probe (`seeds.replication_seeds`,
as `check` does: the scenario's own seed, then seeds derived from it), so two probes differ only by the
varied value.  The streams of arrivals are then the same load, scaled, at every probe; a comparison of
two probes is not blurred by different random draws, and the verdicts along the search are far more often
monotone in the value than with fresh seeds, which is what a bisection needs.

**Parallelism.**  The first round probes lo and hi together (2R runs).  Each later round splits the
interval into k + 1 equal parts and probes the k inner points at once, k = max(1, workers // R), so a
back end with more workers than replications narrows the interval (k + 1)-fold per round instead of
2-fold; with workers to spare the first round probes inner points too.

**Failed runs.**  A bisection cannot skip a probe, so the first run that fails (raises, or its worker
dies) stops the search with a `CapacityRunError` naming the probe, the replication, its seed and the error.
Returns objects (`report.capacity.CapacityResult`, plain data); `report.capacity` presents, writes and plots
them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np

from cucm_sim.errors import ScenarioError, UserError
from cucm_sim.measures.metrics import lookup
from cucm_sim.report.capacity import CapacityResult, Condition, Probe, Status
from cucm_sim.report.formats import format_plain
from cucm_sim.scenario.loader import apply_overrides, parse_scenario
from cucm_sim.scenario.schema import Scenario
from cucm_sim.scenario.seeds import replication_seeds
from cucm_sim.studies.backends import Backend, Job, Outcome, RunFunction, run_job
from cucm_sim.studies.scenario_metrics import check_metrics

DEFAULT_TOLERANCE_PARTS: Final = 64
"""Default tolerance: the initial range / 64 (six halvings after the first round); at least 1 for whole numbers."""
MAX_ROUNDS: Final = 200
"""A safety stop: no search needs more rounds (a float range halves below its precision long before)."""
MAX_REPLICATIONS: Final = 1000

CapacityProgress = Callable[[int, int, int], None]
"""Called as the search advances with (probes done, runs done, runs started so far in all)."""


class CapacityRunError(UserError):
    """A run of the search failed, so the search stopped; `probes` holds the probes completed before it."""

    def __init__(self, problems: list[str], probes: tuple[Probe, ...]) -> None:
        super().__init__(problems)
        self.probes = probes


# ------------------------------------------------------------------ the search
def search(
    scenario: Scenario | Mapping[str, Any],
    key: str,
    lo: float,
    hi: float,
    condition: Condition | str,
    replications: int,
    backend: Backend,
    tolerance: float | None = None,
    progress: CapacityProgress | None = None,
    *,
    source: str = "scenario",
    run: RunFunction = run_job,
) -> CapacityResult:
    """Find the highest value of `key` in [lo, hi] that keeps `condition` false (see the module docstring).

    `scenario` is a validated Scenario or the scenario's parsed YAML (overrides applied).  Give the YAML
    when you have it: each probe then applies its value to it exactly as ``--set key=value`` would, so
    defaults derived from the varied key (setup_signals_per_call from signals_per_call) follow it; a
    Scenario is first dumped with every default resolved, which freezes them.  `key` is a dotted key as
    in --set (``load.background.0.signals_per_s``, ``devices.pools.0.count``); an integer field
    (``devices.count``) is searched in whole numbers.  `tolerance` (the key's unit): stop when highest safe
    and lowest tripped are at most this far apart; default (hi - lo) / 64, at least 1 for whole numbers.  The
    seed is made concrete first (a missing one is drawn); replication r runs with the same seed at every probe.

    Everything a user can get wrong (the condition, a metric the scenario's runs lack such as a node its
    cluster does not have, lo >= hi, lo or hi out of the key's range, a key that is not a number, a bad
    tolerance or replication count) is a UserError raised before anything runs.  A failed run stops the
    search with `CapacityRunError`.  `progress` hears (probes done, runs done, runs started) after every run.
    `run` makes one job's run (tests substitute a model of the scenario).
    """
    parsed = Condition.parse(condition) if isinstance(condition, str) else condition
    data, validated = _base_data(scenario, source, key)
    name, root_seed = validated.name, _seed(validated)
    check_metrics(validated, [(f"--until {str(condition)!r}", parsed.metric)])  # e.g. a node the cluster lacks
    integer = _check_inputs(data, source, key, lo, hi, replications)
    lo, hi = (int(lo), int(hi)) if integer else (float(lo), float(hi))
    tolerance = _tolerance(tolerance, lo, hi, integer)
    seeds = tuple(replication_seeds(root_seed, replications))

    per_round = max(1, backend.workers // replications)
    state = _Search(data, source, key, parsed, seeds, backend, run, progress)
    first = [lo, *_inner_points(lo, hi, max(0, backend.workers // replications - 2), integer), hi]
    state.run_round(first)
    while True:
        bracket = state.bracket()
        if bracket is None:
            break
        low, high = bracket
        if high - low <= tolerance or state.round >= MAX_ROUNDS:
            break
        points = _inner_points(low, high, per_round, integer)
        if not points:  # the interval cannot be split further (whole numbers, or float precision)
            break
        state.run_round(points)

    probes = tuple(state.probes)
    lowest_tripped = min((probe.value for probe in probes if not probe.safe), default=None)
    if lowest_tripped is not None and lowest_tripped <= lo:
        status: Status = "trips_at_lo"
        highest_safe = None
    elif lowest_tripped is None:
        status, highest_safe = "safe_at_hi", hi
    else:
        status = "found"
        highest_safe = max(probe.value for probe in probes if probe.safe and probe.value < lowest_tripped)
    return CapacityResult(
        scenario_name=name, key=key, condition=parsed, lo=lo, hi=hi, integer=integer, tolerance=tolerance,
        replications=replications, seeds=seeds, probes_per_round=per_round, workers=backend.workers,
        probes=probes, status=status, highest_safe=highest_safe, lowest_tripped=lowest_tripped,
    )


class _Search:
    """The probes made so far, and how to make the next round of them."""

    def __init__(self, data: Mapping[str, Any], source: str, key: str, condition: Condition,
                 seeds: tuple[int, ...], backend: Backend, run: RunFunction,
                 progress: CapacityProgress | None) -> None:
        self.data, self.source, self.key, self.condition = data, source, key, condition
        self.seeds, self.backend, self.run, self.progress = seeds, backend, run, progress
        self.probes: list[Probe] = []
        self.round = 0
        self.runs_done = 0
        self.runs_started = 0

    def bracket(self) -> tuple[float, float] | None:
        """(highest safe value below the lowest tripped one, lowest tripped value); None when either is missing."""
        tripped = [probe.value for probe in self.probes if not probe.safe]
        if not tripped:
            return None
        lowest_tripped = min(tripped)
        safe = [probe.value for probe in self.probes if probe.safe and probe.value < lowest_tripped]
        return (max(safe), lowest_tripped) if safe else None

    def run_round(self, values: Sequence[float]) -> None:
        """Probe every value at once: R runs each, all handed to the back end in one batch."""
        first_index = len(self.probes)
        scenarios = [
            probe_scenario(self.data, self.key, value, f"{self.source} (probe {self.key}={format_plain(value)})")
            for value in values
        ]
        jobs = [
            Job((first_index + offset, replication), probe_scenario.model_copy(update={"seed": seed}))
            for offset, probe_scenario in enumerate(scenarios)
            for replication, seed in enumerate(self.seeds)
        ]
        replications = len(self.seeds)
        results: dict[tuple[int, ...], Outcome] = {}
        self.runs_started += len(jobs)
        probes_done = len(self.probes)
        self._report(probes_done)
        outcomes = self.backend.run(jobs, self.run)
        try:
            for outcome in outcomes:
                if not outcome.ok:
                    probe_index, replication = outcome.key
                    value = values[probe_index - first_index]
                    raise CapacityRunError([
                        f"{self.source}: capacity search stopped: the run at {self.key}={format_plain(value)} "
                        f"(probe {probe_index + 1}, replication {replication}, seed {self.seeds[replication]}) "
                        f"failed: {outcome.error}; a bisection cannot skip a probe: fix the cause or narrow "
                        "--lo/--hi, then search again"
                    ], tuple(self.probes))
                results[outcome.key] = outcome
                self.runs_done += 1
                done_here = sum(
                    all((first_index + offset, r) in results for r in range(replications))
                    for offset in range(len(values))
                )
                self._report(probes_done + done_here)
        finally:
            outcomes.close()  # cancels the runs not yet started when the round stopped early
        for offset, value in enumerate(values):
            metric_values = tuple(
                lookup(_summary(results[(first_index + offset, r)]), self.condition.metric) for r in range(replications)
            )
            self.probes.append(Probe(
                order=first_index + offset + 1, round=self.round, value=value, metric_values=metric_values,
                tripped_runs=tuple(self.condition.holds_for(metric) for metric in metric_values),
            ))
        self.round += 1

    def _report(self, probes_done: int) -> None:
        if self.progress is not None:
            self.progress(probes_done, self.runs_done, self.runs_started)


def _summary(outcome: Outcome) -> Mapping[str, Any]:
    assert outcome.summary is not None  # failed runs stopped the round before this
    return outcome.summary


def _inner_points(low: float, high: float, count: int, integer: bool) -> list[float]:
    """`count` points splitting (low, high) into count + 1 equal parts, strictly inside it.  For an integer
    key, whole numbers: every one inside when there are at most `count`, else the rounded points (more than
    1 apart, so distinct).  For a float key, fewer when the interval is below float precision."""
    if count <= 0:
        return []
    if integer:
        inside = list(range(int(low) + 1, int(high)))
        if len(inside) <= count:
            return list(inside)
        return [round(low + (high - low) * index / (count + 1)) for index in range(1, count + 1)]
    points = [low + (high - low) * index / (count + 1) for index in range(1, count + 1)]
    return sorted({point for point in points if low < point < high})


# ------------------------------------------------------------------ checks before anything runs
def _base_data(scenario: Scenario | Mapping[str, Any], source: str, key: str) -> tuple[dict[str, Any], Scenario]:
    """(plain data to override, the scenario it validates to): with a concrete seed.

    Sections on the way to `key` that the data leaves out are filled in from the resolved scenario (their
    defaults), so ``node.signal_service_time_ms.mean`` can be varied in a scenario that never names the
    service time; nothing beside the path is filled, so defaults derived from the key still follow it.
    """
    if isinstance(scenario, Scenario):
        validated = scenario.with_concrete_seed()
        data = validated.resolved_data()
    else:
        data = copy.deepcopy(dict(scenario))
        validated = parse_scenario(data, source).with_concrete_seed()
        data["seed"] = validated.seed
        _fill_path(data, validated.resolved_data(), key.split(".")[:-1])
    return data, validated


def _seed(scenario: Scenario) -> int:
    assert scenario.seed is not None
    return scenario.seed


def _fill_path(data: dict[str, Any], resolved: Mapping[str, Any], parts: Sequence[str]) -> None:
    """Copy into `data` each section along `parts` that it lacks (or holds as null) from `resolved`."""
    target: Any = data
    source: Any = resolved
    for part in parts:
        if isinstance(target, dict) and isinstance(source, dict) and part in source:
            if target.get(part) is None:
                if source[part] is None:  # an optional section left out (a cluster node's `node`): --set makes it
                    return
                target[part] = copy.deepcopy(source[part])
            target, source = target[part], source[part]
        elif (isinstance(target, list) and isinstance(source, list) and part.isdigit()
              and int(part) < min(len(target), len(source))):
            target, source = target[int(part)], source[int(part)]
        else:
            return


def _check_inputs(data: Mapping[str, Any], source: str, key: str, lo: float, hi: float, replications: int) -> bool:
    """UserError for anything wrong with the search's inputs; True when `key` is an integer field."""
    problems = []
    if not isinstance(replications, int) or not 1 <= replications <= MAX_REPLICATIONS:
        problems.append(f"--replications {replications}: allowed: a whole number from 1 to {MAX_REPLICATIONS}")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        problems.append(f"--lo {lo} --hi {hi}: both must be finite numbers")
    elif lo >= hi:
        problems.append(f"--lo {format_plain(lo)} --hi {format_plain(hi)}: --lo must be below --hi")
    parts = key.split(".")
    if not key or any(not part for part in parts) or parts[0] in ("seed", "expect", "name", "sweep"):
        problems.append(f"--vary {key!r}: not a key to search over; give a dotted numeric scenario key, "
                        "e.g. load.calls_per_s or load.background.0.signals_per_s")
    if problems:
        raise UserError(problems)
    # Both ends are validated, each with its own message, before anything runs.
    ends: list[Scenario] = []
    for option, value in (("--lo", lo), ("--hi", hi)):
        try:
            ends.append(probe_scenario(data, key, value, f"{source} ({option} {format_plain(value)})"))
        except ScenarioError as error:
            problems.extend(error.problems)
    if problems:
        raise ScenarioError(problems)
    # The key's type, as the schema makes it: what comes back from validating lo.
    current = _value_at(ends[0].model_dump(mode="json"), parts)
    if isinstance(current, bool) or not isinstance(current, int | float):
        raise UserError([f"--vary {key}: the value there is {current!r}, not a number; the search varies a "
                         "numeric scenario key"])
    integer = isinstance(current, int)
    if integer and not (float(lo).is_integer() and float(hi).is_integer()):
        raise UserError([f"--vary {key}: a whole number; --lo {format_plain(lo)} and --hi {format_plain(hi)} must be "
                         "whole numbers too"])
    return integer


def _tolerance(tolerance: float | None, lo: float, hi: float, integer: bool) -> float:
    if tolerance is None:
        default = (hi - lo) / DEFAULT_TOLERANCE_PARTS
        return float(max(1, math.floor(default))) if integer else default
    if not math.isfinite(tolerance) or tolerance <= 0:
        raise UserError([f"--tolerance {tolerance}: allowed: a number above 0, in the varied key's unit"])
    if integer and tolerance < 1:
        raise UserError([f"--tolerance {format_plain(tolerance)}: the key is a whole number, so the tolerance must be "
                         "at least 1"])
    return float(tolerance)


def probe_scenario(data: Mapping[str, Any], key: str, value: float, source: str) -> Scenario:
    """The scenario with `key` set to `value` as --set would, validated; ScenarioError naming `source`."""
    try:
        return parse_scenario(apply_overrides(dict(data), [f"{key}={_yaml_number(value)}"]), source)
    except ScenarioError as error:
        # apply_overrides names the problem "--set KEY"; here the key is the searched one.
        raise ScenarioError([problem.replace(f"--set {key}", f"{source}: --vary {key}", 1)
                             for problem in error.problems]) from None


def _value_at(data: Any, parts: Sequence[str]) -> Any:
    for part in parts:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


# ------------------------------------------------------------------ formats
def _yaml_number(value: float) -> str:
    """`value` as YAML text that reads back as the same number: whole numbers as integers (a float field takes
    them as floats, an integer field as they are), others positional with a point (PyYAML reads 1e-05, without
    one, as a string)."""
    if float(value).is_integer():
        return str(int(value))
    return str(np.format_float_positional(value, unique=True, trim="0"))


