"""A cluster's run, read: each node's result, and the cluster's totals where a node's summary keeps its numbers.

The summary of a cluster has every key of a one-node summary, with the cluster's totals: counts summed
over the nodes, waits and dial-tone delays over every node's signals and calls, the largest
AverageExpectedDelay of any node, phones registered with any node at the end.  A second's cluster state
is the worst of its nodes' (Normal < CodeYellow < CodeRed), so `time_in_state_s` still adds up to the
duration; first entries are the earliest of any node and the longest Code Yellow the longest of any node.
Beside them: the cluster's own metrics (`metrics.CLUSTER_METRICS`) and `nodes: {NAME: {...}}` with every
node metric per node.

Calls of phones registered with no node cannot be made (`calls_not_placed`): their number is drawn,
Poisson, from the call rate and the share of the cluster's phones registered nowhere at each second's
end, from the cluster's own stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from cucm_sim.engine.interface import NodeCounters
from cucm_sim.measures.metrics import METRICS
from cucm_sim.measures.stats import LogHistogram
from cucm_sim.rules.alarms import Alarm
from cucm_sim.rules.throttling import ThrottleState
from cucm_sim.scenario.profiles import CallRateProfile
from cucm_sim.scenario.schema import Scenario
from cucm_sim.world.world import World

Summarize = Callable[[Scenario, NodeCounters, tuple[Alarm, ...], float], dict[str, Any]]
"""`simulation.summarize`: a one-node summary from a node's counters and alarms."""
_SEVERITY = {state.value: rank for rank, state in enumerate(ThrottleState)}
_NODE_KEYS = ("scenario", "seed", "duration_s", "engine", "wall_s")
"""Keys of a node's summary that are the run's, not the node's."""
_LARGEST = ("max_average_expected_delay_ms", "longest_code_yellow_s")
_EARLIEST = ("first_code_yellow_entry_s", "first_code_red_entry_s")


@dataclass(frozen=True)
class NodeRun:
    """One node of a cluster's run: its name, its per-second timeline, and its alarms with those the world
    raised for its phones (DeviceUnregistered), in time order."""

    name: str
    timeline: Mapping[str, np.ndarray]
    alarms: tuple[Alarm, ...]
    summary: Mapping[str, Any]
    """The node's metrics (every key of `metrics.METRICS`)."""


def node_runs(world: World, names: tuple[str, ...], summarize: Summarize, wall_s: float) -> tuple[NodeRun, ...]:
    """Each node of `world`'s cluster, by name (`summarize` makes a one-node summary from its counters)."""
    assert world.cluster is not None
    runs = []
    for k, (name, node) in enumerate(zip(names, world.nodes, strict=True)):
        counters = node.engine.counters()
        alarms = tuple(sorted([*node.alarms, *world.cluster.alarms[k]], key=lambda alarm: alarm.t_s))
        throttling = tuple(alarm for alarm in node.alarms)
        summary = summarize(node.setup.scenario, counters, throttling, wall_s)
        runs.append(NodeRun(name, {"state": counters.states, **counters.timeline}, alarms,
                            {key: value for key, value in summary.items() if key not in _NODE_KEYS}))
    return tuple(runs)


def cluster_counters(counters: list[NodeCounters]) -> NodeCounters:
    """The nodes' counters as one: totals summed, histograms merged, the worst state of each second."""
    first = counters[0]
    states = np.array([max((c.states[row] for c in counters), key=_SEVERITY.__getitem__)
                       for row in range(len(first.states))], dtype=first.states.dtype)
    total = sum
    return replace(
        first,
        calls_attempted=total(c.calls_attempted for c in counters),
        calls_accepted=total(c.calls_accepted for c in counters),
        calls_rejected_throttled=total(c.calls_rejected_throttled for c in counters),
        calls_failed_node_down=total(c.calls_failed_node_down for c in counters),
        signals_processed=total(c.signals_processed for c in counters),
        signals_lost_restart=total(c.signals_lost_restart for c in counters),
        signals_dropped_node_down=total(c.signals_dropped_node_down for c in counters),
        skinny_devices_throttled=total(c.skinny_devices_throttled for c in counters),
        registered_devices=total(c.registered_devices for c in counters),
        max_average_expected_delay_ms=max(c.max_average_expected_delay_ms for c in counters),
        wait_ms=LogHistogram.merged([c.wait_ms for c in counters]),
        wait_ms_by_priority=tuple(LogHistogram.merged([c.wait_ms_by_priority[q] for c in counters])
                                  for q in range(len(first.wait_ms_by_priority))),
        dial_tone_delay_ms=LogHistogram.merged([c.dial_tone_delay_ms for c in counters]),
        states=states,
        timeline={},
    )


def cluster_summary(scenario: Scenario, world: World, runs: tuple[NodeRun, ...], summarize: Summarize,
                    wall_s: float) -> dict[str, Any]:
    """The cluster's summary (see the module doc)."""
    assert world.cluster is not None and scenario.seed is not None
    counters = cluster_counters([node.engine.counters() for node in world.nodes])
    throttling = tuple(sorted((alarm for node in world.nodes for alarm in node.alarms), key=lambda a: a.t_s))
    summary = summarize(scenario, counters, throttling, wall_s)
    wall = summary.pop("wall_s")
    for key in _LARGEST:
        summary[key] = max(run.summary[key] for run in runs)
    for key in _EARLIEST:
        times = [run.summary[key] for run in runs if run.summary[key] is not None]
        summary[key] = min(times) if times else None
    phones = scenario.devices.phone_count
    summary.update({
        "calls_not_placed": _calls_not_placed(scenario, runs, phones),
        "phone_failovers": world.cluster.failovers,
        "phone_rehomes": world.cluster.rehomes,
        "phones_unregistered_at_end": phones - counters.registered_devices,
        "nodes": {run.name: dict(run.summary) for run in runs},
        "wall_s": wall,
    })
    assert all(metric.path.split(".")[0] in summary for metric in METRICS)
    return summary


def _calls_not_placed(scenario: Scenario, runs: tuple[NodeRun, ...], phones: int) -> int:
    if not phones:
        return 0
    registered = np.sum([run.timeline["registered_devices"] for run in runs], axis=0)
    mid_s = np.arange(len(registered)) + 0.5
    rate_per_s = CallRateProfile.from_scenario(scenario).rates_per_s(mid_s)
    expected = float(np.sum(rate_per_s * (phones - registered) / phones))
    assert scenario.seed is not None
    rng = np.random.default_rng(np.random.SeedSequence(scenario.seed, spawn_key=(len(runs) + 1,)))
    return int(rng.poisson(max(expected, 0.0)))
