"""What a node engine offers the world, and what it hands back: the seam between one node and many.

An engine simulates one CUCM node's router thread.  It is built from its node's scenario and the seeds
of its random sources (`vocabulary.spawn_streams`), then joins a world:

* `attach(env, phones, on_alarm)`: it runs on the world's shared SimPy environment, serves the phones of
  a device table the world owns, and reports every alarm to `on_alarm` as soon as the alarm is final.
  An alarm carries its own time: the batched engine computes up to a span ahead of `env.now`, so the
  world reacts at `alarm.t_s`, never at `env.now`, and it reacts at once (inside the callback), before
  the engine goes on.
* `deliver(t_s, event)`: the world hands the engine a phone that arrives (starts registering with the
  node) or leaves, at `t_s` no earlier than `committed_until_s()`: the engine has not yet made that time
  its past.  Delivering into the committed past is a bug and raises.
* `limit_lookahead(seconds)`: the world caps how far ahead of `env.now` the engine may commit, when it
  must be able to deliver sooner than the engine's own span (an engine that never looks ahead ignores it).
* `finished`: the event that fires when the node has taken its last second's sample.
* `counters()`: the node's totals and its timeline, as a typed record that `summarize` reads.

Engines register by name in `registry`.  Both implement this protocol independently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import simpy

from cucm_sim.engine.devices import DeviceTable
from cucm_sim.measures.stats import LogHistogram
from cucm_sim.rules.alarms import Alarm
from cucm_sim.scenario.schema import Scenario


@dataclass(frozen=True)
class PhoneArrives:
    """Phone `device` starts registering with the node (a storm, a failover, a rehoming)."""

    device: int


@dataclass(frozen=True)
class PhoneLeaves:
    """Phone `device` is no longer registered with the node (it went elsewhere, or was switched off)."""

    device: int


PhoneEvent = PhoneArrives | PhoneLeaves
OnAlarm = Callable[[Alarm], None]


@dataclass(frozen=True)
class NodeCounters:
    """One node's totals over a run and its per-second timeline: what `summarize` reads."""

    calls_attempted: int
    calls_accepted: int
    calls_rejected_throttled: int
    calls_failed_node_down: int
    signals_processed: int
    signals_lost_restart: int
    signals_dropped_node_down: int
    skinny_devices_throttled: int
    registered_devices: int
    """Registered at the end."""
    max_average_expected_delay_ms: float
    wait_ms: LogHistogram
    """Every signal's wait in its queue (ms)."""
    wait_ms_by_priority: tuple[LogHistogram, ...]
    dial_tone_delay_ms: LogHistogram
    states: np.ndarray
    """The throttling state during each second (the timeline's `state` column)."""
    timeline: Mapping[str, np.ndarray]
    """Every other timeline column, one value per second."""


class NodeEngine(Protocol):
    """One CUCM node on a shared clock (see the module doc)."""

    stream_names: ClassVar[tuple[str, ...]]
    """The random sources it draws from, in the order that fixes their seeds."""

    def attach(self, env: simpy.Environment, phones: DeviceTable, on_alarm: OnAlarm) -> None:
        """Join the world: its clock, its phones, its ear for alarms."""
        ...

    def deliver(self, t_s: float, event: PhoneEvent) -> None:
        """A phone arrives or leaves at `t_s` (s), not before `committed_until_s()`."""
        ...

    def committed_until_s(self) -> float:
        """The simulated time (s) up to which the engine has made its results final."""
        ...

    def limit_lookahead(self, seconds: int) -> None:
        """Never commit more than `seconds` ahead of the clock."""
        ...

    @property
    def finished(self) -> simpy.Event:
        """Fires when the node's last second is sampled."""
        ...

    def counters(self) -> NodeCounters:
        """The node's totals and timeline so far."""
        ...


EngineFactory = Callable[[Scenario, Mapping[str, np.random.SeedSequence]], NodeEngine]
"""Builds an engine from its node's scenario and the seeds of its `stream_names`."""
