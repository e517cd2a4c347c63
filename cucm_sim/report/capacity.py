"""What a capacity search found, and how it is shown: the records, the lines printed, capacity.json, probes.csv
and capacity.png.

`studies.capacity` makes the search and builds these records; here they are plain, immutable data
(`Condition`, `Probe`, `CapacityResult`), and everything that presents them: the result in a few lines
(`describe_capacity`), the confidence rule in words (`confidence_rule`), capacity.json (`capacity_json`),
probes.csv (`probes_csv`), what the figure draws (`capacity_plot`, drawn by `sweep_plots.capacity_figure`)
and the files of a result directory (`write_capacity`, into the staging directory `files.prepare_directory`
made for a `CAPACITY_DIRECTORY`).
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np

from cucm_sim.errors import UserError
from cucm_sim.measures.confidence import CONFIDENCE, safe_trip_rate_bound
from cucm_sim.measures.metrics import ANY_METRIC_PATHS, is_metric, lookup
from cucm_sim.report.files import DirectoryKind
from cucm_sim.report.formats import csv_cell, format_plain

if TYPE_CHECKING:  # matplotlib is slow to import: only when a figure is asked for
    from cucm_sim.report.sweep_plots import CapacityPlot

CAPACITY_FILES: Final = ("capacity.json", "probes.csv", "capacity.png")
CAPACITY_DIRECTORY: Final = DirectoryKind("cucm-sim capacity", frozenset(CAPACITY_FILES), "capacity.json")
"""A capacity search's result directory, as --force recognises it (`files.DirectoryKind`)."""

OPERATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt,
}
CONDITION_SYNTAX: Final = ('write "METRIC OP NUMBER", e.g. "code_yellow_entries > 0": METRIC a path listed by '
                           "`cucm-sim metrics`, OP one of > >= < <= == !=")
_CONDITION_PATTERN: Final = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")
"""METRIC OP NUMBER; a metric may hold '-' (a cluster node's name: nodes.cm-2.code_red_entries)."""

Status = Literal["found", "trips_at_lo", "safe_at_hi"]


# ------------------------------------------------------------------ the records
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
        if not is_metric(metric):
            close = difflib.get_close_matches(metric, ANY_METRIC_PATHS, n=1)
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
        if not is_metric(self.metric):
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


# ------------------------------------------------------------------ presentation
def confidence_rule(replications: int) -> str:
    """The confidence rule in words, with the numbers for `replications`."""
    bound = safe_trip_rate_bound(replications)
    runs = "its replication" if replications == 1 else f"every one of its {replications} replications"
    return (f"A probe is safe when the condition is false in {runs}, tripped otherwise; a value whose runs trip "
            f"with probability p passes as safe with probability (1-p)^{replications}, so with "
            f"{CONFIDENCE * 100:.0f} % confidence a safe value trips in fewer than {bound * 100:.0f} % of runs. "
            "Every probe uses the same seeds (common random numbers).")


def describe_capacity(result: CapacityResult) -> list[str]:
    """The result for people, a few lines: the answer, the bracket, the rule and the effort."""
    condition = f"'{result.condition}'"
    if result.status == "found":
        assert result.highest_safe is not None and result.lowest_tripped is not None
        tripped = next(p for p in result.probes if p.value == result.lowest_tripped and not p.safe)
        lines = [
            f"capacity: {result.key} = {format_plain(result.highest_safe)} keeps {condition} false in all "
            f"{result.replications} replication{_s(result.replications)}",
            f"it held at {format_plain(result.lowest_tripped)} ({tripped.tripped} of {tripped.runs}): the knee "
            f"lies between {format_plain(result.highest_safe)} and {format_plain(result.lowest_tripped)} (width "
            f"{format_plain(result.lowest_tripped - result.highest_safe)}, tolerance {format_plain(result.tolerance)})",
        ]
    elif result.status == "trips_at_lo":
        first = result.probes[0]
        lines = [f"{condition} already holds at {result.key} = {format_plain(result.lo)} ({first.tripped} of "
                 f"{first.runs} replications): no capacity in [{format_plain(result.lo)}, {format_plain(result.hi)}]; "
                 "try a lower --lo"]
    else:
        lines = [f"{condition} never held up to {result.key} = {format_plain(result.hi)} (in any of "
                 f"{result.replications} replication{_s(result.replications)}): the capacity is above "
                 f"{format_plain(result.hi)}; try a higher --hi"]
    per_round = (f", {result.probes_per_round} probes per round on {result.workers} workers"
                 if result.probes_per_round > 1 else "")
    lines.append(f"{len(result.probes)} probes in {result.rounds} rounds, {result.runs} runs{per_round}")
    lines.append(confidence_rule(result.replications))
    return lines


def capacity_json(result: CapacityResult) -> str:
    """capacity.json's text: everything, probes in the order made."""
    data = {
        "scenario": result.scenario_name,
        "key": result.key,
        "condition": str(result.condition),
        "status": result.status,
        "capacity": result.highest_safe,
        "highest_safe": result.highest_safe,
        "lowest_tripped": result.lowest_tripped,
        "lo": result.lo,
        "hi": result.hi,
        "integer": result.integer,
        "tolerance": result.tolerance,
        "replications": result.replications,
        "seeds": list(result.seeds),
        "rule": confidence_rule(result.replications),
        "safe_trip_rate_bound": safe_trip_rate_bound(result.replications),
        "confidence": CONFIDENCE,
        "probes_per_round": result.probes_per_round,
        "workers": result.workers,
        "rounds": result.rounds,
        "runs": result.runs,
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
            for probe in result.probes
        ],
    }
    return json.dumps(data, indent=2) + "\n"


def probes_csv(result: CapacityResult) -> str:
    """probes.csv's text, one row per probe in the order made: order, round, the value, verdict, runs, tripped
    runs, the metric's mean and each replication's metric (empty when it did not happen)."""
    metric = result.condition.metric
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["order", "round", result.key, "verdict", "runs", "tripped_runs", f"{metric}.mean",
                     *(f"{metric}.rep{index}" for index in range(result.replications))])
    for probe in result.probes:
        writer.writerow([probe.order, probe.round, csv_cell(probe.value), probe.verdict, probe.runs, probe.tripped,
                         csv_cell(probe.mean), *(csv_cell(value) for value in probe.metric_values)])
    return buffer.getvalue()


def capacity_plot(result: CapacityResult) -> CapacityPlot:
    """What `sweep_plots.capacity_figure` draws for `result`."""
    from cucm_sim.report.sweep_plots import CapacityPlot, ProbePlot

    return CapacityPlot(
        title=f"Capacity search: {result.scenario_name}",
        key=result.key,
        metric=result.condition.metric,
        condition=str(result.condition),
        threshold=result.condition.threshold,
        rule=confidence_rule(result.replications),
        probes=tuple(ProbePlot(probe.order, float(probe.value), probe.metric_values, probe.tripped_runs)
                     for probe in result.probes),
        highest_safe=None if result.highest_safe is None else float(result.highest_safe),
        lowest_tripped=None if result.lowest_tripped is None else float(result.lowest_tripped),
    )


def write_capacity(result: CapacityResult, directory: Path, plots: bool = True) -> list[str]:
    """Write capacity.json, probes.csv and (with `plots`) capacity.png into `directory`, the staging directory
    of a prepared result directory (`files.PreparedDirectory.fill`); return the names written."""
    (directory / "capacity.json").write_text(capacity_json(result), encoding="utf-8")
    (directory / "probes.csv").write_text(probes_csv(result), encoding="utf-8")
    if not plots:
        return ["capacity.json", "probes.csv"]
    from cucm_sim.report.sweep_plots import capacity_figure  # matplotlib is slow to import: only when plotting

    capacity_figure(capacity_plot(result)).savefig(directory / "capacity.png")
    return list(CAPACITY_FILES)


def _s(count: int) -> str:
    return "" if count == 1 else "s"
