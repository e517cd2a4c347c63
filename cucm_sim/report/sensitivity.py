"""What a sensitivity study found, and how it is shown: the records, the conclusion in words, and the files.

`studies.sensitivity` runs a scenario under every reading of Cisco's ambiguous throttling rules
(`scenario.readings`), with the same seeds under each, and builds these records; here they are plain,
immutable data (`BoundVerdict`, `SensitivityResult`) and everything that presents them:

- a bound's verdict across the readings: it holds under `all`, `some` or `none` of them (a reading holds a
  bound when every replication meets it, the `check` rule), and the switches it `depends_on`: a switch
  matters when two readings that differ in that switch alone disagree on the bound;
- `conclusion`, the lines printed under the tables;
- `sensitivity.json` (the scenario's name, source and root seed, the readings, the seeds, every metric's
  values under every reading, every bound's verdict), `readings.csv` (one row per run) and
  `sensitivity.png` (`sensitivity_plot`), written by `write_sensitivity` into the staging directory
  `files.prepare_directory` made for a `SENSITIVITY_DIRECTORY`.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Final, Literal

from cucm_sim.report.csv_text import csv_text
from cucm_sim.report.files import DirectoryKind
from cucm_sim.report.formats import csv_cell
from cucm_sim.report.narrative import plural
from cucm_sim.scenario.readings import SWITCHES, Reading
from cucm_sim.scenario.schema import Bound

SENSITIVITY_FILES: Final = ("sensitivity.json", "readings.csv", "sensitivity.png")
SENSITIVITY_DIRECTORY: Final = DirectoryKind("cucm-sim sensitivity", frozenset(SENSITIVITY_FILES), "sensitivity.json")
"""A sensitivity study's result directory, as --force recognises it (`files.DirectoryKind`)."""

Verdict = Literal["all", "some", "none"]
Values = tuple[float | None, ...]
"""A metric's value in each replication (None: it did not happen in that run)."""


@dataclass(frozen=True)
class BoundVerdict:
    """An `expect:` bound judged under every reading."""

    metric: str
    bound: Bound
    holds: tuple[bool, ...]
    """Under each reading (in the result's order): does every replication meet the bound?"""
    depends_on: tuple[str, ...]
    """The switches (`readings.SWITCHES`) whose value alone can turn the bound from holding to failing."""

    @property
    def verdict(self) -> Verdict:
        """'all', 'some' or 'none': under how many readings the bound holds."""
        if all(self.holds):
            return "all"
        return "some" if any(self.holds) else "none"

    def describe(self) -> str:
        """'all 12', '7 of 12', 'none of 12'."""
        held, count = sum(self.holds), len(self.holds)
        return {"all": f"all {count}", "some": f"{held} of {count}", "none": f"none of {count}"}[self.verdict]


@dataclass(frozen=True)
class SensitivityResult:
    """A scenario run under every reading: `values[r][m]` are metric m's values under reading r."""

    name: str
    source: str
    root_seed: int
    readings: tuple[Reading, ...]
    seeds: tuple[int, ...]
    metrics: tuple[str, ...]
    values: tuple[tuple[Values, ...], ...]
    bounds: tuple[BoundVerdict, ...]
    own_reading: Reading
    """The reading the scenario itself sets (the one a plain `run` or `check` uses)."""

    def mean(self, reading: int, metric: int) -> float | None:
        """A metric's mean under a reading, over the replications in which it happened (None: in none)."""
        happened = [value for value in self.values[reading][metric] if value is not None]
        return statistics.fmean(happened) if happened else None

    def bound_of(self, metric: str) -> BoundVerdict | None:
        """The verdict of the bound on `metric`, if the scenario expects one."""
        return next((verdict for verdict in self.bounds if verdict.metric == metric), None)


def judge_bounds(expect: dict[str, Bound], readings: Sequence[Reading], metrics: Sequence[str],
                 values: Sequence[Sequence[Values]]) -> tuple[BoundVerdict, ...]:
    """Every bound's verdict across the readings (see the module doc); `metrics` includes the bounds'."""
    verdicts = []
    for metric, bound in expect.items():
        column = metrics.index(metric)
        holds = tuple(all(bound.holds(value) for value in values[r][column]) for r in range(len(readings)))
        verdicts.append(BoundVerdict(metric, bound, holds, _switches_that_matter(readings, holds)))
    return tuple(verdicts)


def _switches_that_matter(readings: Sequence[Reading], holds: Sequence[bool]) -> tuple[str, ...]:
    """The switches for which two readings differing in that switch alone disagree on the bound: grouped by
    the values of the other switches, some group holds under one value of it and fails under another."""
    matters = []
    for position, switch in enumerate(SWITCHES):
        verdicts_of: dict[tuple[str, ...], set[bool]] = {}
        for reading, held in zip(readings, holds, strict=True):
            others = reading.values[:position] + reading.values[position + 1:]
            verdicts_of.setdefault(others, set()).add(held)
        if any(len(verdicts) == 2 for verdicts in verdicts_of.values()):
            matters.append(switch)
    return tuple(matters)


def conclusion(result: SensitivityResult) -> list[str]:
    """The study's answer in a few lines: which bounds depend on the reading, and on which switches."""
    count = len(result.readings)
    if not result.bounds:
        return [f"The scenario has no expect: block: the table shows its metrics under the {count} readings; "
                "add bounds to learn which conclusions depend on them."]
    robust = [verdict for verdict in result.bounds if verdict.verdict == "all"]
    fragile = [verdict for verdict in result.bounds if verdict.verdict == "some"]
    broken = [verdict for verdict in result.bounds if verdict.verdict == "none"]
    lines = []
    if fragile:
        lines.append(f"{len(fragile)} of {plural(len(result.bounds), 'bound')} {_verb(len(fragile), 'depend')} on the "
                     "reading:")
        lines.extend(f"  {verdict.metric} {verdict.bound.describe()}: holds under {verdict.describe()} readings; "
                     f"depends on {_switch_list(verdict.depends_on)}; fails under "
                     f"{_reading_list(result, verdict, held=False)}" for verdict in fragile)
    else:
        lines.append(f"No bound depends on the reading ({count} readings).")
    for group, verb in ((robust, "hold"), (broken, "fail")):
        if group:
            lines.append(f"{len(group)} {_verb(len(group), verb)} under every reading: "
                         f"{', '.join(verdict.metric for verdict in group)}.")
    return lines


def _verb(count: int, verb: str) -> str:
    """'holds' for one, 'hold' for several."""
    return f"{verb}s" if count == 1 else verb


def _switch_list(switches: Sequence[str]) -> str:
    # Over the full grid of readings a bound that holds under some and fails under others always has a
    # switch whose flip alone changes it (the grid is connected); over a part of it, it may have none.
    return ", ".join(switches) if switches else "a combination of switches (no single one alone)"


def _reading_list(result: SensitivityResult, verdict: BoundVerdict, *, held: bool) -> str:
    return "; ".join(reading.label for reading, holds in zip(result.readings, verdict.holds, strict=True)
                     if holds == held)


# ------------------------------------------------------------------ files
def sensitivity_json(result: SensitivityResult) -> str:
    """sensitivity.json: the study's manifest and every number in it (see the module doc)."""
    data = {
        "scenario": result.name,
        "source": result.source,
        "seed": result.root_seed,
        "seeds": list(result.seeds),
        "switches": list(SWITCHES),
        "own_reading": result.own_reading.settings,
        "metrics": list(result.metrics),
        "readings": [
            {"reading": reading.settings,
             "values": {metric: list(result.values[r][m]) for m, metric in enumerate(result.metrics)},
             "means": {metric: result.mean(r, m) for m, metric in enumerate(result.metrics)}}
            for r, reading in enumerate(result.readings)
        ],
        "bounds": [
            {"metric": verdict.metric, "bound": verdict.bound.describe(), "verdict": verdict.verdict,
             "holds_under": [reading.settings for reading, held in zip(result.readings, verdict.holds, strict=True)
                             if held],
             "depends_on": list(verdict.depends_on)}
            for verdict in result.bounds
        ],
        "cucm_sim_version": metadata.version("cucm-sim"),
    }
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def readings_csv(result: SensitivityResult) -> str:
    """readings.csv: one row per run, `<switches>,replication,seed,<metrics>`; a metric that did not happen
    is an empty cell."""
    rows = ([*reading.values, k, seed, *(csv_cell(result.values[r][m][k]) for m in range(len(result.metrics)))]
            for r, reading in enumerate(result.readings) for k, seed in enumerate(result.seeds))
    return csv_text([*SWITCHES, "replication", "seed", *result.metrics], rows)


def write_sensitivity(result: SensitivityResult, directory: Path, plots: bool = True) -> list[str]:
    """Write sensitivity.json, readings.csv and (with `plots`) sensitivity.png into `directory`, the staging
    directory of a prepared result directory (`files.PreparedDirectory.fill`); return the names written."""
    (directory / "sensitivity.json").write_text(sensitivity_json(result), encoding="utf-8")
    (directory / "readings.csv").write_text(readings_csv(result), encoding="utf-8")
    if not plots:
        return ["sensitivity.json", "readings.csv"]
    from cucm_sim.report.sensitivity_plot import sensitivity_figure  # matplotlib is slow to import

    sensitivity_figure(result).savefig(directory / "sensitivity.png")
    return list(SENSITIVITY_FILES)
