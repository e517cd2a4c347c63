"""Checking a scenario's `expect:` block: run it (over replications) and judge every bound.

A check runs the scenario once per replication seed (`seeds.replication_seeds`: the scenario's own
seed first, then seeds derived with `SeedSequence`), reads each expected metric from every run's summary
and keeps all the values.  The rule, stated wherever results are shown: **a bound passes only if every
replication meets it**.  The mean and a 95 % Student-t confidence interval over the replications are
reported beside it, to show how close to the bound the scenario lives, but they never decide a result.
A percentile (`metrics.HISTOGRAM_QUANTILES`) is read from a log histogram and is only known to within
`stats.QUANTILE_RELATIVE_RESOLUTION` (±0.58 %); wherever its value is shown, that resolution is shown
beside it.  The runs go through `backends`, like every other study's.  Returns objects; the CLI, the
JUnit writer and the pytest plugin present them.

Under several readings of Cisco's ambiguous rules (`readings`; `check --all-readings`) every replication
runs under every reading, with the same seeds, and the rule becomes: **a bound passes only if it holds
under every reading, in every replication**.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Final

from cucm_sim.measures.confidence import mean_confidence_interval
from cucm_sim.measures.metrics import HISTOGRAM_QUANTILES, lookup
from cucm_sim.measures.stats import QUANTILE_RELATIVE_RESOLUTION, QUANTILE_RESOLUTION_TEXT
from cucm_sim.report.formats import format_value
from cucm_sim.run.simulation import simulate
from cucm_sim.scenario.readings import Reading, with_reading
from cucm_sim.scenario.schema import Bound, Scenario
from cucm_sim.scenario.seeds import replication_seeds
from cucm_sim.studies.backends import Backend, InProcess, Job, LocalPool, RunFunction
from cucm_sim.studies.backends import Outcome as RunOutcome

PASS_RULE: Final = "a bound passes only if every replication meets it"
ALL_READINGS_RULE: Final = "a bound passes only if it holds under every reading, in every replication"

Progress = Callable[[float, float], None]
"""Called as a check advances with (simulated s done, simulated s in all runs of the check)."""


@dataclass(frozen=True)
class Outcome:
    """One expectation judged over all replications: the bound and every replication's value."""

    metric: str
    bound: Bound
    values: tuple[float | None, ...]
    seeds: tuple[int, ...]
    readings: tuple[str, ...] = ()
    """Under several readings: each value's reading label (`readings.Reading.label`); else empty."""

    @property
    def reading_count(self) -> int:
        """How many readings the values come from (1 without readings)."""
        return len(dict.fromkeys(self.readings)) or 1

    @property
    def failing_readings(self) -> tuple[str, ...]:
        """The readings under which some replication misses the bound, in the order they ran."""
        return tuple(dict.fromkeys(
            reading for reading, value in zip(self.readings, self.values, strict=True)
            if not self.bound.holds(value)))

    @property
    def passed(self) -> bool:
        """True when every replication meets the bound."""
        return all(self.bound.holds(value) for value in self.values)

    @property
    def failures(self) -> int:
        """How many replications miss the bound."""
        return sum(not self.bound.holds(value) for value in self.values)

    @property
    def worst_miss(self) -> float | None:
        """The largest distance outside the bound over the replications (0 when all pass, None when the
        metric did not happen in some replication)."""
        misses = [self.bound.miss(value) for value in self.values]
        if any(miss is None for miss in misses):
            return None
        return max(miss for miss in misses if miss is not None)

    @property
    def worst_seed(self) -> int:
        """The seed of the replication furthest outside the bound (a None value counts as furthest)."""
        misses = [self.bound.miss(value) for value in self.values]
        ranked = [math.inf if miss is None else miss for miss in misses]
        return self.seeds[ranked.index(max(ranked))]

    def mean_and_half_width(self) -> tuple[float, float | None] | None:
        """Mean over the replications and the half-width of its 95 % t interval (None for one replication);
        None when the metric did not happen in some replication."""
        values = [value for value in self.values if value is not None]
        if len(values) < len(self.values):
            return None
        return mean_confidence_interval(values)

    @property
    def relative_resolution(self) -> float:
        """How far each value may be from the exact one, as a fraction of it: the histogram's resolution
        for a percentile (`metrics.HISTOGRAM_QUANTILES`), 0 for an exact metric (a count, mean or max)."""
        return QUANTILE_RELATIVE_RESOLUTION if self.metric in HISTOGRAM_QUANTILES else 0.0

    def describe_measured(self) -> str:
        """The measured value: one number, or mean ± half-width [min .. max] over replications; for a
        percentile followed by the histogram's resolution: '40.2 ± 0 [40.2 .. 40.2] (histogram resolution
        ±0.58 %)'.

        The ± is the Student-t interval of the replications' spread alone.  The resolution is shown beside
        it, not added to it: the binning error is not independent between replications (values in one bin
        share it), so it does not shrink with more replications and does not belong inside a t interval.
        """
        missing = sum(value is None for value in self.values)
        if missing:
            return f"did not happen ({missing} of {len(self.values)})" if len(self.values) > 1 else "did not happen"
        values = [value for value in self.values if value is not None]
        resolution = f" (histogram resolution {QUANTILE_RESOLUTION_TEXT})" if self.relative_resolution else ""
        if len(values) == 1:
            return format_value(values[0]) + resolution
        mean, half_width = mean_confidence_interval(values)
        assert half_width is not None
        return (f"{format_value(mean)} ± {format_value(half_width)} "
                f"[{format_value(min(values))} .. {format_value(max(values))}]{resolution}")

    def describe_replications(self) -> list[str]:
        """One line per replication: 'seed 7: 12.5' (or 'did not happen'); under several readings
        'batch / below / exact, seed 7: 12.5'."""
        labels = self.readings or ("",) * len(self.values)
        return [
            f"{f'{label}, ' if label else ''}seed {seed}: {'did not happen' if value is None else format_value(value)}"
            for label, seed, value in zip(labels, self.seeds, self.values, strict=True)
        ]

    def describe_result(self) -> str:
        """'pass', or what failed and by how much: 'FAIL: 0.013 above max (+65 %), 3 of 5 replications'; a
        percentile that misses by no more than the histogram's resolution adds '; within the histogram
        resolution (±0.58 %)' (its exact value may meet the bound)."""
        if self.passed:
            return f"pass under all {self.reading_count} readings" if self.readings else "pass"
        if self.readings:
            failing = self.failing_readings
            named = "; ".join(failing[:3]) + ("; ..." if len(failing) > 3 else "")
            of = f", under {len(failing)} of {self.reading_count} readings ({named})"
        else:
            of = f", {self.failures} of {len(self.values)} replications" if len(self.values) > 1 else ""
        miss = self.worst_miss
        if miss is None:
            return f"FAIL: did not happen{of}"
        bound = self.bound
        if bound.equals is not None:
            return f"FAIL: off by {format_value(miss)}{of}"
        values = [value for value in self.values if value is not None]
        above = bound.max is not None and max(values) > bound.max
        limit = bound.max if above else bound.min
        assert limit is not None
        side = "above max" if above else "below min"
        relative = f" ({'+' if above else '-'}{miss / abs(limit) * 100:.0f} %)" if limit else ""
        worst = max(values) if above else min(values)
        near = (f"; within the histogram resolution ({QUANTILE_RESOLUTION_TEXT})"
                if miss <= self.relative_resolution * abs(worst) else "")
        return f"FAIL: {format_value(miss)} {side}{relative}{of}{near}"


@dataclass(frozen=True)
class ScenarioCheck:
    """A scenario's check: where it came from, the seeds it ran with and every expectation's outcome."""

    source: str
    scenario: Scenario
    seeds: tuple[int, ...]
    outcomes: tuple[Outcome, ...]
    wall_s: float
    readings: tuple[Reading, ...] = ()
    """The readings it ran under (`check --all-readings`, `sensitivity`); empty: the scenario's own."""
    summaries: tuple[Mapping[str, Any], ...] = ()
    """Every run's summary: reading by reading (if any), then seed by seed, as `seeds` orders them."""

    @property
    def passed(self) -> bool:
        """True when every expectation passed."""
        return all(outcome.passed for outcome in self.outcomes)


def evaluate(
    expect: Mapping[str, Bound], summaries: Sequence[Mapping[str, Any]], seeds: Sequence[int],
    readings: Sequence[str] = (),
) -> tuple[Outcome, ...]:
    """Judge every expectation against the summaries of the replications (one summary per seed; under
    several readings, one per (reading, seed), with `readings` naming each summary's reading)."""
    if len(summaries) != len(seeds) or not summaries:
        raise ValueError(f"need one summary per seed, got {len(summaries)} summaries and {len(seeds)} seeds")
    if readings and len(readings) != len(seeds):
        raise ValueError(f"need one reading per summary, got {len(readings)} for {len(summaries)}")
    return tuple(
        Outcome(metric, bound, tuple(lookup(summary, metric) for summary in summaries), tuple(seeds),
                tuple(readings))
        for metric, bound in expect.items()
    )


def check_scenario(scenario: Scenario, source: str, replications: int = 1,
                   readings: Sequence[Reading] = ()) -> ScenarioCheck:
    """Run `scenario` `replications` times (under each of `readings`, if any) and judge its `expect:` block
    (seed made concrete first)."""
    return check_scenarios([(source, scenario)], replications, readings=readings)[0]


def check_scenarios(
    scenarios: Sequence[tuple[str, Scenario]],
    replications: int = 1,
    workers: int = 1,
    progress: Progress | None = None,
    readings: Sequence[Reading] = (),
) -> list[ScenarioCheck]:
    """Check each (source, scenario), running all their replications on `workers` processes; with
    `readings`, under each of them (`readings.with_reading`), with the same seeds under every reading.

    The runs go through `backends`: with one worker (or one run) to `InProcess`, in order, and `progress`
    hears about every simulated stretch; with more to a `LocalPool`, and `progress` hears about each finished
    run.  Results do not depend on the number of workers: each run's seed is fixed before any run starts.
    The first run that raises stops the check: the other runs are stopped and its exception is raised here.
    """
    concrete = [(source, scenario.with_concrete_seed()) for source, scenario in scenarios]
    seeds_of = [replication_seeds(_seed(scenario), replications) for _, scenario in concrete]
    under: list[Reading | None] = [*readings] or [None]
    scenario_runs = [
        (scenario if reading is None else with_reading(scenario, reading)).model_copy(update={"seed": seed})
        for (_, scenario), seeds in zip(concrete, seeds_of, strict=True)
        for reading in under
        for seed in seeds
    ]
    summaries = _run_all([Job((index,), run) for index, run in enumerate(scenario_runs)], workers, progress)
    runs_each = replications * len(under)
    checks = []
    for index, ((source, scenario), seeds) in enumerate(zip(concrete, seeds_of, strict=True)):
        mine = summaries[index * runs_each:(index + 1) * runs_each]
        wall_s = sum(float(summary["wall_s"]) for summary in mine)
        labels = [reading.label for reading in readings for _ in seeds]
        outcomes = evaluate(scenario.expect, mine, list(seeds) * len(under), labels)
        checks.append(ScenarioCheck(source, scenario, tuple(seeds), outcomes, wall_s, tuple(readings), tuple(mine)))
    return checks


def _seed(scenario: Scenario) -> int:
    assert scenario.seed is not None
    return scenario.seed


def _run_all(jobs: list[Job], workers: int, progress: Progress | None) -> list[Mapping[str, Any]]:
    """The summary of every job's run, in the jobs' order (see `check_scenarios`)."""
    durations_s = [float(job.scenario.duration_s) for job in jobs]
    total_s = sum(durations_s)
    in_process = workers <= 1 or len(jobs) == 1
    if in_process:
        backend: Backend = InProcess()
        run = _run_with_progress(list(itertools.accumulate(durations_s, initial=0.0)), total_s, progress)
    else:
        backend = LocalPool(min(workers, len(jobs)))  # spawned workers that end with this process
        run = _run_or_raise
    summaries: dict[int, Mapping[str, Any]] = {}
    done_s = 0.0
    # Leaving the block by an exception (a failed run, Ctrl-C, SIGTERM) stops the other runs at once.
    with backend, closing(backend.run(jobs, run)) as outcomes:
        for outcome in outcomes:
            if outcome.summary is None:
                raise outcome.exception or RuntimeError(outcome.error)
            (index,) = outcome.key
            summaries[index] = outcome.summary
            done_s += durations_s[index]
            if progress is not None and not in_process:
                progress(done_s, total_s)
    return [summaries[index] for index in range(len(jobs))]


def _run_with_progress(starts_s: list[float], total_s: float, progress: Progress | None) -> RunFunction:
    """A run function for `InProcess` that tells `progress` of every simulated stretch of the whole check;
    job (i,) starts `starts_s[i]` simulated seconds into it."""
    def run(job: Job) -> RunOutcome:
        (index,) = job.key
        callback = None if progress is None else _shifted(progress, starts_s[index], total_s)
        return RunOutcome(job.key, simulate(job.scenario, progress=callback).summary, None)

    return run


def _shifted(progress: Progress, done_before_s: float, total_s: float) -> Callable[[float, float], None]:
    return lambda done_s, _run_s: progress(done_before_s + done_s, total_s)


def _run_or_raise(job: Job) -> RunOutcome:
    """Simulate `job.scenario` and return its summary; an error is raised, not reported (a check stops at it).
    Module-level: a process pool finds it by name."""
    return RunOutcome(job.key, dict(simulate(job.scenario).summary), None)
