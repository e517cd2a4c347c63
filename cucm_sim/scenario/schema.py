"""The scenario schema: every field of a scenario YAML, with its unit, range, default and meaning.

Frozen pydantic models with ``extra="forbid"`` (a typo is an error, never silently ignored).  Units are
in the field names (`_ms`, `_s`, `_min`, `_pct`, `_per_s`); the model layer converts them once.
Numbers no Cisco source gives (signals per call, service time, restart duration, registration cost)
are inputs here with stated defaults, never constants in the model.
"""

from __future__ import annotations

import difflib
import itertools
import math
import reprlib
import secrets
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    PlainValidator,
    Strict,
    Tag,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cucm_sim.measures.metrics import (
    ANY_METRIC_PATHS,
    CLUSTER_METRIC_PATHS,
    METRIC_PATHS,
    catalogue,
    is_metric,
    link_metric,
    node_metric,
)
from cucm_sim.rules.priorities import Priority
from cucm_sim.rules.throttling import ThrottlingParams, WholeNumber
from cucm_sim.scenario.base import MAX_DURATION_S, PartName, problem_at
from cucm_sim.scenario.base import Section as _Section
from cucm_sim.scenario.base import Window as _Window
from cucm_sim.scenario.base import plain as _plain
from cucm_sim.scenario.cluster import MAX_PHONES, Cluster, DevicePool
from cucm_sim.scenario.distributions import Distribution, Exponential
from cucm_sim.scenario.hosts import DpcStorm, Host, Link
from cucm_sim.scenario.node import BackgroundSource, ChattyDevices, NodeParams, OneLineName, Text
from cucm_sim.scenario.trace import Trace

MAX_SEED = 2**64 - 1
MAX_CALLS_PER_S = 10_000

ProfileTime = Annotated[float, Field(ge=0, le=MAX_DURATION_S, allow_inf_nan=False, strict=True)]
ProfileRate = Annotated[float, Field(ge=0, le=MAX_CALLS_PER_S, allow_inf_nan=False, strict=True)]
ProfilePoint = Annotated[tuple[ProfileTime, ProfileRate], Strict(False)]
"""[t_s, calls_per_s]: YAML writes it as a list, which only a lax tuple takes; its numbers stay strict."""

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
class LoadParams(_Section):
    """Offered load: background signals and call attempts."""

    background: list[BackgroundSource] = Field(
        default_factory=list, max_length=32, description="Background Poisson signal sources."
    )
    calls_per_s: float | None = Field(
        None, ge=0, le=10_000,
        description="Constant call-attempt rate (calls/s). Give this or calls_profile, not both; neither = 0.",
    )
    calls_profile: list[ProfilePoint] | None = Field(
        None, min_length=1, max_length=10_000,
        description="Piecewise-linear call-attempt rate: points [t_s, calls_per_s], t_s increasing; "
        "the rate holds its first/last value before/after the points (s, calls/s).",
    )
    call_arrivals: Literal["poisson", "constant"] = Field(
        "poisson", description="Call-attempt arrival process: Poisson, or evenly spaced at the current rate."
    )
    trace: Trace | None = Field(
        None, exclude_if=lambda trace: trace is None,
        description="Load replayed from a recorded Perfmon / RTMT CSV file: its call attempts (instead of "
        "calls_per_s or calls_profile), background signals per queue and, optionally, the capacity factor; one "
        "CUCM node only (see scenario.replay for how a recording becomes load).",
    )
    signals_per_call: WholeNumber = Field(
        12, ge=1, le=1000,
        description="SDL signals an accepted call costs over its life, the off-hook signal included "
        "(no Cisco figure; calibrate as QueueSignalsProcessed / calls per second).",
    )
    setup_signals_per_call: WholeNumber | None = Field(
        None, ge=1, le=1000,
        description="Of signals_per_call, how many are set-up signals (off-hook first, the rest right after "
        "dial tone); the remainder come at teardown. Default: half, rounded up.",
    )
    rejection_signals_per_call: WholeNumber = Field(
        1, ge=0, le=100,
        description="Normal-priority signals a call rejected in Code Yellow still costs (the reorder tone).",
    )
    holding_time_s: Distribution = Field(
        default_factory=lambda: Exponential(mean=180.0),
        description="Call holding time, from dial tone to teardown (s). 180 s is a common assumption.",
    )

    @model_validator(mode="after")
    def _check_calls(self) -> Self:
        if self.calls_per_s is not None and self.calls_profile is not None:
            raise ValueError("give calls_per_s or calls_profile, not both")
        if self.trace is not None:
            given = [key for key in ("calls_per_s", "calls_profile") if getattr(self, key) is not None]
            if given:
                raise problem_at(given[0], "load.trace gives the load: leave out calls_per_s and calls_profile "
                                 f"(this scenario gives {' and '.join(given)})")
        if self.calls_profile is not None:
            for index, (earlier, later) in enumerate(itertools.pairwise(self.calls_profile), start=1):
                if later[0] <= earlier[0]:
                    raise problem_at(f"calls_profile.{index}", f"t_s {_plain(later[0])} is not after the "
                                     f"previous point's t_s {_plain(earlier[0])}")
        if self.setup_signals_per_call is None:
            # The default follows the validated signals_per_call (40.0 in YAML is 40, so 20 here), hence after.
            object.__setattr__(self, "setup_signals_per_call", math.ceil(self.signals_per_call / 2))
            self.__pydantic_fields_set__.add("setup_signals_per_call")
        elif self.setup_signals_per_call > self.signals_per_call:
            raise problem_at("setup_signals_per_call", f"setup_signals_per_call ({self.setup_signals_per_call}) "
                             f"cannot exceed signals_per_call ({self.signals_per_call})")
        return self


class DevicesParams(_Section):
    """SCCP phones registered to the node."""

    count: WholeNumber = Field(0, ge=0, le=200_000, description="Registered devices (phones); 0 allowed.")
    keepalive_interval_s: float = Field(
        30, ge=1, le=3600, description="Station KeepAlive Interval: each device sends one keepalive per interval (s)."
    )
    keepalive_priority: Priority = Field(
        "normal", description="SDL queue a station keepalive waits in (not documented by Cisco; assumption)."
    )
    registered_at_start: bool = Field(
        True, description="True: devices are registered at t=0. False: a cold start, all register over "
        "registration_spread_s (a registration storm)."
    )
    registration_signals: WholeNumber = Field(
        10, ge=1, le=1000,
        description="SDL signals one registration costs: the first in the lowest queue (initial request), "
        "the rest in the low queue once it is handled.",
    )
    registration_spread_s: float = Field(
        120, ge=0, le=3600,
        description="After a restart (or a cold start), devices begin registering at uniformly random "
        "times over this window (s).",
    )
    throttled_reregister_delay_s: float = Field(
        10, ge=0, le=3600,
        description="A device closed for exceeding Max Events Allowed starts re-registering this long after (s).",
    )
    chatty: list[ChattyDevices] = Field(default_factory=list, max_length=32, description="Misbehaving devices.")
    pools: list[DevicePool] = Field(
        default_factory=list, max_length=64, exclude_if=lambda pools: not pools,
        description="A cluster's phones, by pool (count, CM group, keepalive, chatty phones), instead of count "
        "and chatty; the other keys here apply to every pool.",
    )

    @model_validator(mode="after")
    def _chatty_fit(self) -> Self:
        chatty_total = sum(group.count for group in self.chatty)
        if chatty_total > self.count:
            raise ValueError(f"chatty devices ({chatty_total}) exceed devices.count ({self.count})")
        if self.pools:
            for key in ("count", "chatty"):
                if key in self.model_fields_set:
                    raise problem_at(key, f"give {key} per pool (devices.pools), not for the whole cluster")
            seen: set[str] = set()
            for k, pool in enumerate(self.pools):
                if pool.name in seen:
                    raise problem_at(f"pools.{k}.name", f"{pool.name!r} is already the name of another pool")
                seen.add(pool.name)
            total = sum(pool.count for pool in self.pools)
            if total > MAX_PHONES:
                raise problem_at("pools", f"{total:,} phones in all; a cluster holds at most {MAX_PHONES:,}")
        return self

    @property
    def phone_count(self) -> int:
        """Every phone: the pools' counts, or `count`."""
        return sum(pool.count for pool in self.pools) if self.pools else self.count


class CpuSlowdown(_Window):
    """The router thread gets only `capacity_factor` of its speed (a backup job, tracing, disk I/O)."""

    kind: Literal["cpu_slowdown"]
    node: PartName | None = Field(
        None, exclude_if=lambda node: node is None,
        description="The cluster node it hits (cluster.nodes); absent in a scenario of one node.",
    )
    capacity_factor: float = Field(
        gt=0, le=1, description="Share of nominal speed left (0.25 = a quarter); overlapping slowdowns multiply."
    )


class SignalBurst(_Window):
    """Extra Poisson signals, e.g. a routing loop."""

    kind: Literal["signal_burst"]
    node: PartName | None = Field(
        None, exclude_if=lambda node: node is None,
        description="The cluster node it hits (cluster.nodes); absent in a scenario of one node.",
    )
    signals_per_s: float = Field(gt=0, le=1e6, description="Extra signals (signals/s).")
    priority: Priority = Field("normal", description="SDL queue the extra signals wait in.")


class CallSurge(_Window):
    """Extra call attempts, e.g. a mass-calling event."""

    kind: Literal["call_surge"]
    calls_per_s: float = Field(
        gt=0, le=10_000, description="Extra call attempts (calls/s); in a cluster, made by its phones wherever they "
        "are registered (a call surge names no node).",
    )


Disturbance = Annotated[CpuSlowdown | SignalBurst | CallSurge | DpcStorm, Field(discriminator="kind")]
NODE_DISTURBANCES = (CpuSlowdown, SignalBurst, CallSurge)
"""The disturbances that hit the CUCM node (a `dpc_storm` hits a host)."""
NODE_SECTIONS = ("throttling", "node", "load", "devices", "cluster")
QUIET_DEFAULT_READINGS = ("exit_rule", "delay_resolution")
"""Throttling keys a resolved scenario writes only when set otherwise than their default (issue 16's switches:
results written before they existed keep their bytes)."""
"""The sections that describe the CUCM node."""


class Bound(_Section):
    """What a metric must be at the end of a run: at least `min`, at most `max`, or exactly `equals`.

    Bounds are inclusive.  `equals` is an exact comparison, meant for counts; bound measured times and
    delays with `min`/`max`.
    """

    min: float | None = Field(None, description="Smallest allowed value (inclusive), in the metric's unit.")
    max: float | None = Field(None, description="Largest allowed value (inclusive), in the metric's unit.")
    equals: float | None = Field(None, description="The exact value required (for counts), in the metric's unit.")

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if self.min is None and self.max is None and self.equals is None:
            raise ValueError("give min, max, or equals")
        if self.equals is not None and (self.min is not None or self.max is not None):
            raise ValueError("give equals alone, or min and/or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g})")
        return self

    def holds(self, value: float | None) -> bool:
        """Whether `value` meets this bound; a metric that did not happen (None) meets none."""
        if value is None:
            return False
        if self.equals is not None:
            return value == self.equals
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def miss(self, value: float | None) -> float | None:
        """How far `value` lies outside the bound (0 inside it; None when the metric did not happen)."""
        if value is None:
            return None
        if self.equals is not None:
            return abs(value - self.equals)
        below = self.min - value if self.min is not None else 0.0
        above = value - self.max if self.max is not None else 0.0
        return max(below, above, 0.0)

    def describe(self) -> str:
        """The bound as a person writes it: '<= 0.02', '>= 1', '== 0', '1 .. 5'."""
        if self.equals is not None:
            return f"== {_number(self.equals)}"
        if self.min is not None and self.max is not None:
            return f"{_number(self.min)} .. {_number(self.max)}"
        if self.min is not None:
            return f">= {_number(self.min)}"
        return f"<= {_number(self.max)}"


def _number(value: float | None) -> str:
    return f"{value:g}"


def _check_metric(name: str) -> str:
    if not is_metric(name):
        close = difflib.get_close_matches(name, ANY_METRIC_PATHS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown metric {_SHORT.repr(name)}{hint}; valid metrics: "
                         f"{', '.join(sorted(ANY_METRIC_PATHS))}")
    return name


MetricName = Annotated[str, AfterValidator(_check_metric)]
MAX_EXPECTATIONS = 1000


def _at_most_entries(limit: int) -> BeforeValidator:
    """Refuse a mapping of more than `limit` entries before its entries are validated: pydantic checks a dict's
    max_length only after validating every key and value (60,000 unknown metric names took 10 s and 500 MB)."""

    def check(value: Any) -> Any:
        if isinstance(value, dict) and len(value) > limit:
            raise PydanticCustomError("too_long", "a mapping of at most {limit} entries is allowed, not {count}",
                                      {"limit": limit, "count": f"{len(value):,}"})
        return value

    return BeforeValidator(check)


# ------------------------------------------------------------------ sweeps (`cucm-sim sweep`)
MAX_GRID_AXES = 8
MAX_GRID_VALUES = 1000
MAX_SWEEP_REPLICATIONS = 1000
DEFAULT_SWEEP_METRICS: tuple[str, ...] = ("calls_rejected_fraction", "dial_tone_delay_ms.p95",
                                          "time_in_state_s.CodeYellow")
DEFAULT_HOST_SWEEP_METRICS: tuple[str, ...] = ("heartbeats_missed", "sessions_closed", "time_in_partial_service_s")
"""What a sweep of a scenario of hosts and links plots unless told otherwise."""
GRID_RANGE_TOLERANCE = Decimal("1e-9")
"""A range's stop counts as reached when the steps land within this fraction of a step of it."""

GridScalar = bool | int | float | str


def _check_grid_value(value: Any) -> GridScalar:
    if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    raise ValueError("a grid value is a number, a string or true/false")


GridValue = Annotated[
    GridScalar, PlainValidator(_check_grid_value), WithJsonSchema({"type": ["number", "string", "boolean"]})
]
"""One value of a grid axis: a YAML scalar (number, string or boolean), kept as written, as --set would."""


def _check_grid_key(key: str) -> str:
    if not key or any(not part for part in key.split(".")):
        raise ValueError(f"{_SHORT.repr(key)} is not a dotted scenario key (e.g. load.calls_per_s)")
    if key == "seed":
        raise ValueError("the seed cannot be a grid axis: every run's seed is derived from the scenario's; "
                         "use replications for more seeds")
    if key.split(".")[0] == "sweep":
        raise ValueError(f"{_SHORT.repr(key)} cannot be a grid axis; sweep the scenario's settings")
    return key


GridKey = Annotated[str, AfterValidator(_check_grid_key)]


def _distinct(values: list[GridScalar]) -> list[GridScalar]:
    seen: list[GridScalar] = []
    for value in values:
        if any(value == earlier and type(value) is type(earlier) for earlier in seen):
            raise ValueError(f"the value {_SHORT.repr(value)} is given twice")
        seen.append(value)
    return values


GridList = Annotated[list[GridValue], Field(min_length=1, max_length=MAX_GRID_VALUES), AfterValidator(_distinct)]


def _check_grid_number(value: Any) -> int | float:
    if not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value):
        return value
    raise ValueError("expected a number")


GridNumber = Annotated[int | float, PlainValidator(_check_grid_number), WithJsonSchema({"type": "number"})]


class GridRange(_Section):
    """Evenly spaced grid values: start, start + step, ... up to stop, inclusive.

    Computed in decimal from the numbers as written, so 0.1 to 0.3 by 0.1 gives exactly 0.1, 0.2, 0.3; the
    values are whole numbers when start, stop and step all are.
    """

    start: GridNumber = Field(description="The first value, in the unit of the swept field.")
    stop: GridNumber = Field(
        description="The last value, included when the steps land on it (within a billionth of a step)."
    )
    step: GridNumber = Field(description="The distance between values (> 0), in the unit of the swept field.")

    @model_validator(mode="after")
    def _check_range(self) -> Self:
        if self.step <= 0:
            raise ValueError(f"step ({self.step}) must be greater than 0")
        if self.stop < self.start:
            raise ValueError(f"stop ({self.stop}) is below start ({self.start})")
        if self.count() > MAX_GRID_VALUES:
            raise ValueError(f"{self.count():,} values; an axis holds at most {MAX_GRID_VALUES}")
        return self

    def count(self) -> int:
        """How many values the range holds."""
        start, stop, step = map(_decimal, (self.start, self.stop, self.step))
        return int((stop - start) / step + GRID_RANGE_TOLERANCE) + 1

    def values(self) -> tuple[int | float, ...]:
        """The values: ints when start, stop and step are all ints, floats otherwise."""
        whole = all(isinstance(value, int) for value in (self.start, self.stop, self.step))
        start, step = _decimal(self.start), _decimal(self.step)
        exact = [start + index * step for index in range(self.count())]
        return tuple(int(value) if whole else float(value) for value in exact)


def _decimal(value: int | float) -> Decimal:
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))  # repr: the number as written


def _grid_axis_kind(value: Any) -> str | None:
    if isinstance(value, list):
        return "values"
    if isinstance(value, dict | GridRange):
        return "range"
    return None


GridAxisSpec = Annotated[
    Annotated[GridList, Tag("values")] | Annotated[GridRange, Tag("range")],
    Discriminator(_grid_axis_kind, custom_error_type="grid_axis",
                  custom_error_message="expected a list of values, e.g. [2, 4, 8], or a range {start, stop, step}"),
]
"""A grid axis as written: a list of values or a range (the discriminator keeps errors to the kind given)."""


class SweepSpec(_Section):
    """What `cucm-sim sweep` varies: grid axes (dotted scenario keys to values), replications per grid point
    and the metrics it plots.  `cucm-sim run` and `check` ignore it."""

    grid: dict[GridKey, GridAxisSpec] = Field(
        min_length=1, max_length=MAX_GRID_AXES,
        description="The axes, in order (the last varies fastest): a dotted scenario key, as for --set, to a "
        "list of values or a range {start, stop, step}; 1 to 8 axes of 1 to 1000 values each.",
    )
    replications: WholeNumber = Field(
        3, ge=1, le=MAX_SWEEP_REPLICATIONS,
        description="Runs per grid point, each with its own seed derived from the scenario seed, the point "
        "and the replication.",
    )
    metrics: list[MetricName] = Field(
        default_factory=lambda: list(DEFAULT_SWEEP_METRICS), min_length=1, max_length=len(METRIC_PATHS),
        description="Metrics to plot (see `cucm-sim metrics`); runs.csv and points.csv hold every metric.",
    )


class Scenario(_Section):
    """A whole simulation run: the node, its load, its devices, disturbances and service parameters.

    A scenario has one or both of two parts.  The CUCM node: present when the scenario names any of its
    sections (throttling, node, load, devices) or a disturbance that hits it, or has no hosts.  Hosts and
    links: present when `hosts` is not empty.  So a scenario of hosts and links alone simulates no CUCM node.
    """

    name: OneLineName = Field(min_length=1, max_length=128, description="Scenario name, used in outputs.")
    description: Text = Field("", max_length=10_000, description="What the scenario shows.")
    seed: WholeNumber | None = Field(
        None, ge=0, le=MAX_SEED,
        description="Root seed of every random stream. Absent: a concrete one is drawn and saved with the results.",
    )
    duration_s: WholeNumber = Field(ge=1, le=MAX_DURATION_S, description="Simulated time (s).")
    engine: Literal["batched", "signal"] = Field(
        "batched",
        description="Simulation engine: 'batched' computes the router's work in blocks of seconds with numpy "
        "(the default: same model, tens of times faster); 'signal' simulates every SDL signal as a SimPy "
        "event (the reference; slow, but its event trace is the model itself).",
    )
    throttling: ThrottlingParams = Field(
        default_factory=ThrottlingParams, description="Cisco CallManager call-throttling service parameters."
    )
    node: NodeParams = Field(default_factory=NodeParams, description="The CUCM node.")
    load: LoadParams = Field(default_factory=LoadParams, description="Offered load.")
    devices: DevicesParams = Field(default_factory=DevicesParams, description="SCCP devices.")
    cluster: Cluster | None = Field(
        None, exclude_if=lambda cluster: cluster is None,
        description="Several CUCM nodes on one clock, their phones in pools with CM groups (devices.pools), and "
        "how the phones fail over; absent: one node.",
    )
    disturbances: list[Disturbance] = Field(
        default_factory=list, max_length=256, description="Time-limited disturbances."
    )
    hosts: list[Host] = Field(
        default_factory=list, max_length=64,
        description="Windows servers (processors, DPC queues, a NIC); a scenario with hosts and none of the CUCM "
        "node's sections simulates no CUCM node.",
    )
    links: list[Link] = Field(
        default_factory=list, max_length=256, description="Heartbeat-supervised sessions between two hosts."
    )
    expect: Annotated[dict[MetricName, Bound], _at_most_entries(MAX_EXPECTATIONS)] = Field(
        default_factory=dict, max_length=MAX_EXPECTATIONS,
        description="Expectations `cucm-sim check` tests after the run: metric path (see `cucm-sim metrics`) "
        "to a bound {min, max, equals}.",
    )
    sweep: SweepSpec | None = Field(
        None, exclude=True,
        description="What `cucm-sim sweep` varies (grid, replications, metrics); ignored by `run` and `check`, "
        "and not part of a run's resolved scenario.",
    )

    @property
    def has_node(self) -> bool:
        """Whether the scenario simulates a CUCM node (see the class doc)."""
        return (not self.hosts or any(section in self.model_fields_set for section in NODE_SECTIONS)
                or any(isinstance(d, NODE_DISTURBANCES) for d in self.disturbances))

    @model_validator(mode="after")
    def _hosts_and_links_fit(self) -> Self:
        hosts = {host.name: host for host in self.hosts}
        _no_repeats("hosts", [host.name for host in self.hosts])
        _no_repeats("links", [link.name for link in self.links])
        for k, host in enumerate(self.hosts):
            for key in ("interrupt_processor", "app_processor"):
                if getattr(host, key) >= host.processors:
                    raise problem_at(f"hosts.{k}.{key}", f"{getattr(host, key)} is not one of the host's processors "
                                     f"(0 .. {host.processors - 1})")
        for k, link in enumerate(self.links):
            for key in ("sender", "receiver"):
                if getattr(link, key) not in hosts:
                    raise problem_at(f"links.{k}.{key}", f"no host is named {getattr(link, key)!r}; hosts: "
                                     f"{', '.join(hosts) or 'none'}")
            if link.sender == link.receiver:
                raise problem_at(f"links.{k}.receiver", "a link joins two different hosts")
            receiver = hosts[link.receiver]
            if link.rss_processor is not None and link.rss_processor >= receiver.processors:
                raise problem_at(f"links.{k}.rss_processor", f"{link.rss_processor} is not one of {receiver.name}'s "
                                 f"processors (0 .. {receiver.processors - 1})")
            if link.rto_min_s > link.rto_max_s or link.rto_initial_s > link.rto_max_s:
                raise problem_at(f"links.{k}.rto_max_s",
                                 f"{_plain(link.rto_max_s)} is below rto_min_s or rto_initial_s")
        for k, disturbance in enumerate(self.disturbances):
            if not isinstance(disturbance, DpcStorm):
                continue
            if disturbance.host not in hosts:
                raise problem_at(f"disturbances.{k}.host", f"no host is named {disturbance.host!r}; hosts: "
                                 f"{', '.join(hosts) or 'none'}")
            processors = hosts[disturbance.host].processors
            if disturbance.processor is not None and disturbance.processor >= processors:
                raise problem_at(f"disturbances.{k}.processor", f"{disturbance.processor} is not one of "
                                 f"{disturbance.host}'s processors (0 .. {processors - 1})")
        paths = self.metric_paths()
        for name in self.expect:
            per_link = link_metric(name)
            if per_link is not None and per_link[0] not in {link.name for link in self.links}:
                raise problem_at(f"expect.{name}", f"no link is named {per_link[0]!r}")
            per_node = node_metric(name)
            if per_node is not None and self.cluster is not None and per_node[0] not in self.cluster.names:
                raise problem_at(f"expect.{name}", f"no node is named {per_node[0]!r}; nodes: "
                                 f"{', '.join(self.cluster.names)}")
            if name not in paths:
                raise problem_at(f"expect.{name}", "is a metric of " + (
                    "a cluster; this scenario has one node" if name in CLUSTER_METRIC_PATHS or per_node else
                    "hosts and links; this scenario has none" if self.has_node else
                    "the CUCM node; this scenario has hosts and links alone (see `cucm-sim metrics`)"))
        if self.sweep is not None and "metrics" in self.sweep.model_fields_set:
            for k, name in enumerate(self.sweep.metrics):
                if name not in paths:
                    raise problem_at(f"sweep.metrics.{k}", f"{name} is not a metric of this scenario's parts (see "
                                     "`cucm-sim metrics SCENARIO`)")
        if self.hosts and self.has_node:
            raise problem_at("hosts", "a scenario with both a CUCM node and hosts cannot run yet: give hosts and "
                             "links alone, or the CUCM node alone (no throttling, node, load or devices section)")
        return self

    @model_validator(mode="after")
    def _cluster_fits(self) -> Self:
        if self.cluster is None:
            if self.devices.pools:
                raise problem_at("devices.pools", "pools are a cluster's phones: add a cluster section (cluster.nodes)")
            for k, disturbance in enumerate(self.disturbances):
                if getattr(disturbance, "node", None) is not None:
                    raise problem_at(f"disturbances.{k}.node", "only a cluster's disturbance names a node; this "
                                     "scenario has one node")
            return self
        if self.load.trace is not None:
            raise problem_at("load.trace", "a recording drives one CUCM node; this scenario is a cluster "
                             "(cluster.nodes): leave out load.trace or the cluster section")
        names = self.cluster.names
        known = ", ".join(names)
        for k, pool in enumerate(self.devices.pools):
            for j, name in enumerate(pool.cm_group):
                if name not in names:
                    raise problem_at(f"devices.pools.{k}.cm_group.{j}", f"no node is named {name!r}; nodes: {known}")
        for k, disturbance in enumerate(self.disturbances):
            if not isinstance(disturbance, CpuSlowdown | SignalBurst):
                continue
            if disturbance.node is None and len(names) > 1:
                raise problem_at(f"disturbances.{k}", f"name the node a {disturbance.kind} hits (node: one of {known})")
            if disturbance.node is not None and disturbance.node not in names:
                raise problem_at(f"disturbances.{k}.node", f"no node is named {disturbance.node!r}; nodes: {known}")
        return self

    @property
    def node_names(self) -> tuple[str, ...]:
        """A cluster's node names, in order; empty for a scenario of one node."""
        return self.cluster.names if self.cluster is not None else ()

    def metric_paths(self) -> frozenset[str]:
        """Every metric a run of this scenario has (see `cucm-sim metrics SCENARIO`)."""
        return frozenset(metric.path for metric in catalogue(self.has_node, [link.name for link in self.links],
                                                             self.node_names))

    def node_scenarios(self) -> tuple[Scenario, ...]:
        """A cluster's nodes, each as the one-node scenario its engine runs: the top-level sections with the
        node's overrides, its disturbances (and every call surge: calls come from the phones), every phone of
        the cluster (`devices.count`; the world says which are the node's), no expectations."""
        assert self.cluster is not None
        nodes = []
        for entry in self.cluster.nodes:
            node = self.node if entry.node is None else self.node.model_copy(
                update={key: getattr(entry.node, key) for key in entry.node.model_fields_set})
            throttling = self.throttling if entry.throttling is None else self.throttling.model_copy(
                update={key: getattr(entry.throttling, key) for key in entry.throttling.model_fields_set})
            load = self.load if entry.load is None else self.load.model_copy(
                update={"background": entry.load.background})
            devices = self.devices.model_copy(update={
                "count": self.devices.phone_count, "pools": [],
                "chatty": [group for pool in self.devices.pools for group in pool.chatty]})
            disturbances = [
                d.model_copy(update={"node": None}) if isinstance(d, CpuSlowdown | SignalBurst) else d
                for d in self.disturbances
                if isinstance(d, CallSurge) or getattr(d, "node", None) in (entry.name, None)
            ]
            nodes.append(self.model_copy(update={
                "name": f"{self.name} ({entry.name})", "node": node, "throttling": throttling, "load": load,
                "devices": devices, "disturbances": disturbances, "cluster": None, "expect": {},
            }))
        return tuple(nodes)

    def resolved_data(self) -> dict[str, Any]:
        """Every default filled in, for the parts the scenario has only: read back, it is this scenario.
        The readings added after results were first published (`QUIET_DEFAULT_READINGS`) are written only
        when they differ from their default, so a resolved scenario of the defaults keeps its bytes."""
        left_out = set() if self.hosts else {"hosts", "links"}
        if not self.has_node:
            left_out |= {*NODE_SECTIONS, "engine"}
        exclude: dict[str, Any] = dict.fromkeys(left_out, True)
        if self.devices.pools:  # a cluster's phones are its pools'
            exclude["devices"] = {"count", "chatty"}
        quiet = {key for key in QUIET_DEFAULT_READINGS
                 if getattr(self.throttling, key) == ThrottlingParams.model_fields[key].default}
        if quiet and "throttling" not in exclude:
            exclude["throttling"] = quiet
        data = self.model_dump(mode="json", exclude=exclude)
        for entry, written in zip(self.cluster.nodes if self.cluster else [], data.get("cluster", {}).get("nodes", []),
                                  strict=True):
            for key in ("node", "throttling"):  # an override is the keys it sets: the rest are the top level's
                override = getattr(entry, key)
                if override is not None:
                    written[key] = override.model_dump(mode="json", exclude_unset=True)
        return data

    def with_concrete_seed(self) -> Scenario:
        """This scenario with a seed: its own, or a fresh random one that is then saved with the results."""
        if self.seed is not None:
            return self
        return self.model_copy(update={"seed": secrets.randbits(63)})


def _no_repeats(section: str, names: list[str]) -> None:
    """Names in a list section must differ."""
    seen: set[str] = set()
    for k, name in enumerate(names):
        if name in seen:
            raise problem_at(f"{section}.{k}.name", f"{name!r} is already the name of another entry of {section}")
        seen.add(name)
