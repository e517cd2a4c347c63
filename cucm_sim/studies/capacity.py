"""Capacity search: the highest value of one scenario key that keeps a condition false, by bisection.

`cucm-sim capacity SCENARIO --vary load.calls_per_s --lo 1 --hi 200 --until "code_yellow_entries > 0"` asks
how far a key can go before something happens.  The search probes values of the key (`--set`-style
overrides of the scenario, validated like any scenario), runs each probe `replications` times on an
execution back end (`backends`) and narrows the interval [highest safe value, lowest tripped value] until
it is no wider than the tolerance.  It assumes the condition becomes true as the value grows (more load,
more trouble); a probe order that contradicts this is reported as it happened, not smoothed over.

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
Returns objects (`CapacityResult`); the CLI prints, writes and plots them.
"""

from __future__ import annotations

import copy
import csv
import difflib
import io
import json
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np

from cucm_sim.errors import ScenarioError, UserError
from cucm_sim.measures.confidence import CONFIDENCE, safe_trip_rate_bound
from cucm_sim.measures.metrics import METRIC_PATHS, lookup
from cucm_sim.report.files import DirectoryKind
from cucm_sim.report.formats import csv_cell, format_plain
from cucm_sim.scenario.loader import apply_overrides, parse_scenario
from cucm_sim.scenario.schema import Scenario
from cucm_sim.scenario.seeds import replication_seeds
from cucm_sim.studies.backends import Backend, Job, Outcome, RunFunction, run_job

if TYPE_CHECKING:  # matplotlib is slow to import: only when a figure is asked for
    from cucm_sim.report.sweep_plots import AggFigure, CapacityPlot

CAPACITY_FILES: Final = ("capacity.json", "probes.csv", "capacity.png")
CAPACITY_DIRECTORY: Final = DirectoryKind("cucm-sim capacity", frozenset(CAPACITY_FILES), "capacity.json")
"""A capacity search's result directory, as --force recognises it (`files.DirectoryKind`)."""
DEFAULT_TOLERANCE_PARTS: Final = 64
"""Default tolerance: the initial range / 64 (six halvings after the first round); at least 1 for whole numbers."""
MAX_ROUNDS: Final = 200
"""A safety stop: no search needs more rounds (a float range halves below its precision long before)."""
MAX_REPLICATIONS: Final = 1000

OPERATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt,
}
CONDITION_SYNTAX: Final = ('write "METRIC OP NUMBER", e.g. "code_yellow_entries > 0": METRIC a path listed by '
                           "`cucm-sim metrics`, OP one of > >= < <= == !=")
_CONDITION_PATTERN: Final = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")

Status = Literal["found", "trips_at_lo", "safe_at_hi"]
CapacityProgress = Callable[[int, int, int], None]
"""Called as the search advances with (probes done, runs done, runs started so far in all)."""


def confidence_rule(replications: int) -> str:
    """The confidence rule in words, with the numbers for `replications`."""
    bound = safe_trip_rate_bound(replications)
    runs = "its replication" if replications == 1 else f"every one of its {replications} replications"
    return (f"A probe is safe when the condition is false in {runs}, tripped otherwise; a value whose runs trip "
            f"with probability p passes as safe with probability (1-p)^{replications}, so with "
            f"{CONFIDENCE * 100:.0f} % confidence a safe value trips in fewer than {bound * 100:.0f} % of runs. "
            "Every probe uses the same seeds (common random numbers).")


# ------------------------------------------------------------------ the condition
@dataclass(frozen=True)
class Condition:
    """`metric op threshold`, e.g. code_yellow_entries > 0, judged on one run's summary.

    A metric that did not happen in a run (None: no Code Yellow entry to time) makes every comparison
    false, `!=` included: "first_code_yellow_entry_s < 600" does not hold in a run without Code Yellow.
    """

    metric: str
    op: str
    threshold: float

    @classmethod
    def parse(cls, text: str) -> Condition:
        """The condition written in `text` ("metric op number"); UserError with one line naming the text and
        what is allowed when it is not one."""
        match = _CONDITION_PATTERN.match(text)
        if match is None:
            raise UserError([f"--until {text!r}: not a condition; {CONDITION_SYNTAX}"])
        metric, op, number = match.groups()
        if metric not in METRIC_PATHS:
            close = difflib.get_close_matches(metric, METRIC_PATHS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError([f"--until {text!r}: unknown metric {metric!r}{hint}; {CONDITION_SYNTAX}"])
        try:
            threshold = float(number)
        except ValueError:
            threshold = math.nan
        if not math.isfinite(threshold):
            raise UserError([f"--until {text!r}: {number!r} is not a finite number; {CONDITION_SYNTAX}"])
        return cls(metric, op, threshold)

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"unknown operator {self.op!r}; one of {' '.join(OPERATORS)}")
        if self.metric not in METRIC_PATHS:
            raise ValueError(f"unknown metric {self.metric!r}")

    def holds_for(self, value: float | None) -> bool:
        """Whether the metric's `value` satisfies the condition; False for a metric that did not happen."""
        if value is None:
            return False
        return OPERATORS[self.op](value, self.threshold)

    def holds(self, summary: Mapping[str, Any]) -> bool:
        """Whether the condition holds in a run's `summary`; False when its metric did not happen (None)."""
        return self.holds_for(lookup(summary, self.metric))

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {format_plain(self.threshold)}"


# ------------------------------------------------------------------ results
@dataclass(frozen=True)
class Probe:
    """One value of the varied key and its R runs: each replication's metric value and whether it tripped.

    `order` counts probes from 1 in the order they were made; `round` is the batch they ran in (0: the
    first, lo and hi).  `metric_values[r]` is the condition's metric in replication r (None when it did
    not happen), `tripped_runs[r]` whether the condition held there.
    """

    order: int
    round: int
    value: float
    metric_values: tuple[float | None, ...]
    tripped_runs: tuple[bool, ...]

    @property
    def runs(self) -> int:
        """How many replications ran at this probe."""
        return len(self.tripped_runs)

    @property
    def tripped(self) -> int:
        """In how many replications the condition held."""
        return sum(self.tripped_runs)

    @property
    def safe(self) -> bool:
        """The confidence rule: safe only when the condition held in none of the replications."""
        return self.tripped == 0

    @property
    def verdict(self) -> str:
        """'safe' or 'tripped'."""
        return "safe" if self.safe else "tripped"

    @property
    def mean(self) -> float | None:
        """Mean of the metric over the replications where it happened; None when it happened in none."""
        values = [value for value in self.metric_values if value is not None]
        return float(np.mean(values)) if values else None


class CapacityRunError(UserError):
    """A run of the search failed, so the search stopped; `probes` holds the probes completed before it."""

    def __init__(self, problems: list[str], probes: tuple[Probe, ...]) -> None:
        super().__init__(problems)
        self.probes = probes


@dataclass(frozen=True)
class CapacityResult:
    """What a capacity search found, and every probe it made to find it.

    `status`: "found" (the condition is false at `highest_safe` and held at `lowest_tripped`, at most
    `tolerance` apart), "trips_at_lo" (it already holds at `lo`; `highest_safe` is None) or "safe_at_hi"
    (it never held up to `hi`; `lowest_tripped` is None).  Values are in the varied key's unit; whole
    numbers (ints) when the key is an integer field.
    """

    scenario_name: str
    key: str
    condition: Condition
    lo: float
    hi: float
    integer: bool
    tolerance: float
    replications: int
    seeds: tuple[int, ...]
    probes_per_round: int
    workers: int
    probes: tuple[Probe, ...]
    status: Status
    highest_safe: float | None
    lowest_tripped: float | None
    rule: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rule", confidence_rule(self.replications))

    @property
    def capacity(self) -> float | None:
        """The answer: the highest value found safe (None when the condition holds already at lo)."""
        return self.highest_safe

    @property
    def rounds(self) -> int:
        """How many rounds (batches of probes run together) the search took."""
        return max((probe.round for probe in self.probes), default=-1) + 1

    @property
    def runs(self) -> int:
        """How many runs the search made."""
        return sum(probe.runs for probe in self.probes)

    def describe(self) -> list[str]:
        """The result for people, a few lines: the answer, the bracket, the rule and the effort."""
        condition = f"'{self.condition}'"
        if self.status == "found":
            assert self.highest_safe is not None and self.lowest_tripped is not None
            tripped = next(p for p in self.probes if p.value == self.lowest_tripped and not p.safe)
            lines = [
                f"capacity: {self.key} = {format_plain(self.highest_safe)} keeps {condition} false in all "
                f"{self.replications} replication{_s(self.replications)}",
                f"it held at {format_plain(self.lowest_tripped)} ({tripped.tripped} of {tripped.runs}): the knee "
                f"lies between {format_plain(self.highest_safe)} and {format_plain(self.lowest_tripped)} (width "
                f"{format_plain(self.lowest_tripped - self.highest_safe)}, tolerance {format_plain(self.tolerance)})",
            ]
        elif self.status == "trips_at_lo":
            first = self.probes[0]
            lines = [f"{condition} already holds at {self.key} = {format_plain(self.lo)} ({first.tripped} of "
                     f"{first.runs} replications): no capacity in [{format_plain(self.lo)}, {format_plain(self.hi)}]; "
                     "try a lower --lo"]
        else:
            lines = [f"{condition} never held up to {self.key} = {format_plain(self.hi)} (in any of "
                     f"{self.replications} replication{_s(self.replications)}): the capacity is above "
                     f"{format_plain(self.hi)}; try a higher --hi"]
        per_round = (f", {self.probes_per_round} probes per round on {self.workers} workers"
                     if self.probes_per_round > 1 else "")
        lines.append(f"{len(self.probes)} probes in {self.rounds} rounds, {self.runs} runs{per_round}")
        lines.append(self.rule)
        return lines

    def to_dict(self) -> dict[str, Any]:
        """Everything, as JSON-ready plain data (probes in the order made)."""
        return {
            "scenario": self.scenario_name,
            "key": self.key,
            "condition": str(self.condition),
            "status": self.status,
            "capacity": self.highest_safe,
            "highest_safe": self.highest_safe,
            "lowest_tripped": self.lowest_tripped,
            "lo": self.lo,
            "hi": self.hi,
            "integer": self.integer,
            "tolerance": self.tolerance,
            "replications": self.replications,
            "seeds": list(self.seeds),
            "rule": self.rule,
            "safe_trip_rate_bound": safe_trip_rate_bound(self.replications),
            "confidence": CONFIDENCE,
            "probes_per_round": self.probes_per_round,
            "workers": self.workers,
            "rounds": self.rounds,
            "runs": self.runs,
            "probes": [
                {
                    "order": probe.order,
                    "round": probe.round,
                    "value": probe.value,
                    "verdict": probe.verdict,
                    "runs": probe.runs,
                    "tripped_runs": probe.tripped,
                    "mean": probe.mean,
                    "metric_values": list(probe.metric_values),
                    "tripped": list(probe.tripped_runs),
                }
                for probe in self.probes
            ],
        }

    def probes_csv(self) -> str:
        """The probes as CSV text, one row per probe in the order made: order, round, the value, verdict,
        runs, tripped runs, the metric's mean and each replication's metric (empty when it did not happen)."""
        metric = self.condition.metric
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["order", "round", self.key, "verdict", "runs", "tripped_runs", f"{metric}.mean",
                         *(f"{metric}.rep{index}" for index in range(self.replications))])
        for probe in self.probes:
            writer.writerow([probe.order, probe.round, csv_cell(probe.value), probe.verdict, probe.runs, probe.tripped,
                             csv_cell(probe.mean), *(csv_cell(value) for value in probe.metric_values)])
        return buffer.getvalue()

    def write(self, directory: Path, plots: bool = True) -> list[str]:
        """Write capacity.json, probes.csv and (with `plots`) capacity.png into `directory`; return the names."""
        (directory / "capacity.json").write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        (directory / "probes.csv").write_text(self.probes_csv(), encoding="utf-8")
        if not plots:
            return ["capacity.json", "probes.csv"]
        self.figure().savefig(directory / "capacity.png")
        return list(CAPACITY_FILES)

    def plot_data(self, title: str | None = None) -> CapacityPlot:
        """What `sweep_plots.capacity_figure` draws for this result."""
        from cucm_sim.report.sweep_plots import CapacityPlot, ProbePlot

        return CapacityPlot(
            title=title or f"Capacity search: {self.scenario_name}",
            key=self.key,
            metric=self.condition.metric,
            condition=str(self.condition),
            threshold=self.condition.threshold,
            rule=self.rule,
            probes=tuple(ProbePlot(probe.order, float(probe.value), probe.metric_values, probe.tripped_runs)
                         for probe in self.probes),
            highest_safe=None if self.highest_safe is None else float(self.highest_safe),
            lowest_tripped=None if self.lowest_tripped is None else float(self.lowest_tripped),
        )

    def figure(self, title: str | None = None) -> AggFigure:
        """The probes plotted (see `sweep_plots.capacity_figure`); save with ``figure.savefig(path)``."""
        from cucm_sim.report.sweep_plots import capacity_figure

        return capacity_figure(self.plot_data(title))


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
    in --set (``load.background.0.signals_per_s``); an integer field (``devices.count``) is searched in
    whole numbers.  `tolerance` (the key's unit): stop when highest safe and lowest tripped are at most
    this far apart; default (hi - lo) / 64, at least 1 for whole numbers.  The seed is made concrete first
    (a missing one is drawn); replication r runs with the same seed at every probe.

    Everything a user can get wrong (the condition, lo >= hi, lo or hi out of the key's range, a key that
    is not a number, a bad tolerance or replication count) is a UserError raised before anything runs.  A
    failed run stops the search with `CapacityRunError`.  `progress` hears (probes done, runs done, runs
    started) after every run.  `run` makes one job's run (tests substitute a model of the scenario).
    """
    parsed = Condition.parse(condition) if isinstance(condition, str) else condition
    data, name, root_seed = _base_data(scenario, source, key)
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
def _base_data(scenario: Scenario | Mapping[str, Any], source: str, key: str) -> tuple[dict[str, Any], str, int]:
    """(plain data to override, scenario name, root seed): validated, with a concrete seed.

    Sections on the way to `key` that the data leaves out are filled in from the resolved scenario (their
    defaults), so ``node.signal_service_time_ms.mean`` can be varied in a scenario that never names the
    service time; nothing beside the path is filled, so defaults derived from the key still follow it.
    """
    if isinstance(scenario, Scenario):
        validated = scenario.with_concrete_seed()
        data = validated.model_dump(mode="json")
    else:
        data = copy.deepcopy(dict(scenario))
        validated = parse_scenario(data, source).with_concrete_seed()
        data["seed"] = validated.seed
        _fill_path(data, validated.model_dump(mode="json"), key.split(".")[:-1])
    assert validated.seed is not None
    return data, validated.name, validated.seed


def _fill_path(data: dict[str, Any], resolved: Mapping[str, Any], parts: Sequence[str]) -> None:
    """Copy into `data` each section along `parts` that it lacks (or holds as null) from `resolved`."""
    target: Any = data
    source: Any = resolved
    for part in parts:
        if isinstance(target, dict) and isinstance(source, dict) and part in source:
            if target.get(part) is None:
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


def _s(count: int) -> str:
    return "" if count == 1 else "s"
