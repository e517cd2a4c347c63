r"""`load.trace`: a scenario's load taken from a recorded Perfmon / RTMT CSV file (what a user writes).

A trace names a PDH-CSV file (`perfmon.pdh_csv`) and the counters in it that drive the node:
- `calls`: a counter whose increase is call attempts (`Cisco CallManager\CallsAttempted`, a running total;
  a per-second counter is taken as a rate).  The attempts then take the normal call path: a device, the
  admission by the throttling state, the signals of each call;
- `background`: counters whose counts are SDL signals arriving in a queue (`Cisco CallManager System
  Performance\QueueSignalsProcessed 1-High`, per second), each with the queue the signals wait in;
- `capacity_factor` (optional): a counter read as a level (`Processor(_Total)\% Processor Time`) mapped
  linearly onto the router thread's capacity factor, clipped to the two factors given.

How a recording becomes load (differencing, restarts, gaps, blanks, the spread within an interval) is in
`scenario.replay`; this module only validates what is written.  A counter is named by its whole path
(`\\HOST\Object(instance)\Counter`) or without its host (`Object(instance)\Counter`), as
`perfmon.counters.CounterPath.matches` compares them.  `file` may be relative: the loader makes it absolute
against the scenario file's folder as the file is read (`anchor_trace_file`), and a path this model is given
relative (an API caller's, a `--set`) is taken against the working directory; the resolved scenario holds it
absolute, so it reads back as the run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Final, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from pydantic import AfterValidator, Field, model_validator

from cucm_sim.perfmon.counters import QUEUE_NAMES, Kind, kind_of
from cucm_sim.rules.priorities import PRIORITIES, Priority
from cucm_sim.scenario.base import Section, plain, problem_at
from cucm_sim.scenario.node import OneLineName

MAX_TRACE_COUNTERS: Final = 32
"""Background counters one trace may name (as many as `load.background` sources)."""
TRACE_FILE_KEYS: Final = ("load", "trace", "file")
"""Where a scenario's recording is named: the key the loader anchors to the scenario's folder."""
_QUEUE_IN_COUNTER: Final = re.compile(r"QueueSignals(?:Processed|Present) (\d-\w+)$", re.IGNORECASE)


def _check_counter(name: str) -> str:
    body = name.strip().lstrip("\\")
    if "\\" not in body or not body.split("\\")[-1].strip():
        raise ValueError(f"{name!r} is not a counter path: write Object\\Counter (e.g. Cisco CallManager\\"
                         "CallsAttempted), with the instance in parentheses where the object has one, or the "
                         "whole \\\\HOST\\Object\\Counter")
    return name


CounterName = Annotated[OneLineName, AfterValidator(_check_counter)]
"""A counter as a trace names it: `Object(instance)\\Counter` or `\\\\HOST\\Object(instance)\\Counter`."""


def _check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone name (such as Europe/London or "
                         "America/Chicago)") from None
    return name


def _absolute(text: str) -> str:
    return os.path.abspath(text)


def counter_name(text: str) -> str:
    """The counter's own name, the last part of its path (`CallsAttempted`)."""
    return text.strip().rsplit("\\", 1)[-1].strip()


def queue_of_counter(text: str) -> Priority | None:
    """The queue a QueueSignalsProcessed / QueueSignalsPresent counter names ('high' for 1-High), else None."""
    match = _QUEUE_IN_COUNTER.search(counter_name(text))
    if match is None:
        return None
    names = [name.casefold() for name in QUEUE_NAMES]
    found = match[1].casefold()
    return PRIORITIES[names.index(found)] if found in names else None


class TraceSignals(Section):
    """One recorded counter whose counts are SDL signals arriving in one queue."""

    counter: CounterName = Field(
        min_length=3, max_length=1000,
        description="The counter (Object\\Counter or \\\\HOST\\Object\\Counter), cumulative or per second, e.g. "
        "Cisco CallManager System Performance\\QueueSignalsProcessed 1-High.",
    )
    priority: Priority | None = Field(
        None,
        description="SDL queue the signals wait in. Default: the queue a QueueSignalsProcessed counter names "
        "(1-High: high); required for any other counter.",
    )

    @model_validator(mode="after")
    def _queue(self) -> Self:
        kind = kind_of(counter_name(self.counter))
        if kind is Kind.READING:
            raise problem_at("counter", f"{counter_name(self.counter)} is a reading (a level at the sample time), "
                             "not a count: it cannot drive signals; name a per-second counter (QueueSignalsProcessed "
                             "1-High) or a running total")
        if self.priority is None:
            named = queue_of_counter(self.counter)
            if named is None:
                raise problem_at("priority", f"say which queue the signals of {counter_name(self.counter)} wait in "
                                 "(high, normal, low or lowest)")
            object.__setattr__(self, "priority", named)  # the resolved scenario writes it
            self.__pydantic_fields_set__.add("priority")
        return self

    @property
    def queue(self) -> Priority:
        """The queue the signals wait in (inferred when not given)."""
        assert self.priority is not None
        return self.priority


class TraceCapacity(Section):
    """A recorded level mapped linearly onto the router thread's capacity factor, clipped to the two factors:
    `reading_low` gives `factor_at_low`, `reading_high` gives `factor_at_high`, and a reading beyond either end
    gives that end's factor."""

    counter: CounterName = Field(
        min_length=3, max_length=1000,
        description="A counter read as a level at each sample (e.g. Processor(_Total)\\% Processor Time).",
    )
    reading_low: float = Field(
        0, ge=-1e12, le=1e12, description="The reading mapped to factor_at_low, in the counter's unit (e.g. 0 %).",
    )
    factor_at_low: float = Field(
        1.0, gt=0, le=10, description="Capacity factor at reading_low and below (1.0 = full speed).",
    )
    reading_high: float = Field(
        100, ge=-1e12, le=1e12,
        description="The reading mapped to factor_at_high, in the counter's unit (e.g. 100 %); above reading_low.",
    )
    factor_at_high: float = Field(
        0.05, gt=0, le=10, description="Capacity factor at reading_high and above (0.05 = a twentieth of the speed).",
    )

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.reading_high <= self.reading_low:
            raise problem_at("reading_high", f"{plain(self.reading_high)} must be above reading_low "
                             f"({plain(self.reading_low)})")
        if kind_of(counter_name(self.counter)) is not Kind.READING:
            raise problem_at("counter", f"{counter_name(self.counter)} is a count, not a level: the capacity factor "
                             "follows a reading such as % Processor Time")
        return self

    def factor(self, readings: np.ndarray) -> np.ndarray:
        """The capacity factor at each of `readings`: linear between the two readings, clipped beyond them."""
        share = np.clip((np.asarray(readings, dtype=float) - self.reading_low)
                        / (self.reading_high - self.reading_low), 0.0, 1.0)
        factors: np.ndarray = self.factor_at_low + share * (self.factor_at_high - self.factor_at_low)
        return factors


class Trace(Section):
    """A recorded Perfmon / RTMT CSV file (PDH-CSV) and the counters in it that drive the node's load."""

    file: Annotated[str, AfterValidator(_absolute)] = Field(
        min_length=1, max_length=4096,
        description="The recording (PDH-CSV, as Windows Perfmon, typeperf or RTMT's logging write it); relative to "
        "the scenario file's folder. The resolved scenario holds it as an absolute path.",
    )
    time_zone: Annotated[str, AfterValidator(_check_zone)] | None = Field(
        None, max_length=64,
        description="IANA time zone of the file's time stamps (e.g. Europe/London), needed to read a daylight-saving "
        "change; absent: the one in the file's header, when it names one.",
    )
    calls: CounterName | None = Field(
        None, min_length=3, max_length=1000,
        description="The counter whose increase is call attempts (e.g. Cisco CallManager\\CallsAttempted); absent: "
        "the trace makes no calls.",
    )
    background: list[TraceSignals] = Field(
        default_factory=list, max_length=MAX_TRACE_COUNTERS,
        description="Counters whose counts are SDL signals arriving in a queue ({counter, priority}), besides "
        "load.background's Poisson sources.",
    )
    capacity_factor: TraceCapacity | None = Field(
        None,
        description="A recorded level (e.g. % Processor Time) mapped linearly onto the router thread's capacity "
        "factor, which multiplies node.capacity_factor and any cpu_slowdown; absent: the trace leaves it alone.",
    )

    @model_validator(mode="after")
    def _drives_something(self) -> Self:
        if self.calls is None and not self.background and self.capacity_factor is None:
            raise ValueError("a trace drives nothing: name calls, background or capacity_factor")
        if self.calls is not None and kind_of(counter_name(self.calls)) is Kind.READING:
            raise problem_at("calls", f"{counter_name(self.calls)} is a reading (a level at the sample time), not a "
                             "count: it cannot drive call attempts; name a running total such as "
                             "Cisco CallManager\\CallsAttempted")
        return self

    def counters(self) -> list[tuple[str, str]]:
        """Every counter the trace reads, with the dotted path of the key that names it."""
        named: list[tuple[str, str]] = [("calls", self.calls)] if self.calls is not None else []
        named += [(f"background.{k}.counter", entry.counter) for k, entry in enumerate(self.background)]
        if self.capacity_factor is not None:
            named.append(("capacity_factor.counter", self.capacity_factor.counter))
        return named


def anchor_trace_file(data: Any, folder: Path) -> None:
    """Make a scenario's relative `load.trace.file` absolute against `folder` (the scenario file's), in place,
    in the parsed data; anything else is left for validation to judge."""
    trace = data.get("load") if isinstance(data, dict) else None
    trace = trace.get("trace") if isinstance(trace, dict) else None
    if isinstance(trace, dict) and isinstance(trace.get("file"), str) and trace["file"].strip():
        path = Path(trace["file"])
        if not path.is_absolute():
            trace["file"] = os.path.abspath(folder / path)
