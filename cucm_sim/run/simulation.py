"""Run a scenario: build its world, run it, collect one immutable result.

The lifecycle (after desmod): the seed is made concrete first, so the result's scenario reproduces the
run; the world runs in chunks so a caller can show progress; the result carries the resolved scenario,
the summary (the same dict summary.json holds), the per-second timeline, the alarms and the wall time.
A run that outgrows its limits (the backlog bound, or memory) ends in a `WorkLimitError`, never a
MemoryError.  Writes nothing: `report.output` writes files.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cucm_sim.engine.interface import NodeCounters
from cucm_sim.errors import WorkLimitError
from cucm_sim.host.host import LogLine
from cucm_sim.measures.metrics import derived_metrics
from cucm_sim.rules.alarms import CODE_RED_ENTRY, CODE_YELLOW_ENTRY, CODE_YELLOW_EXIT, Alarm
from cucm_sim.rules.priorities import PRIORITIES
from cucm_sim.rules.throttling import ThrottleState
from cucm_sim.run.cluster import NodeRun, cluster_counters, cluster_summary, node_runs
from cucm_sim.scenario.schema import Scenario
from cucm_sim.scenario.workload import out_of_memory
from cucm_sim.world.world import ClusterSetup, HostsSetup, NodeSetup, World, node_seeds

ProgressCallback = Callable[[float, float], None]
"""Called as the run advances with (simulated seconds done, simulated seconds in all)."""

PROGRESS_STEPS = 200


@dataclass(frozen=True)
class RunResult:
    """Everything one run produced. `summary` is the dict written to summary.json."""

    scenario: Scenario
    summary: Mapping[str, Any]
    timeline: Mapping[str, np.ndarray]
    alarms: tuple[Alarm, ...]
    wall_s: float
    log: tuple[LogLine, ...] = ()
    """The hosts' log lines in the order written (events.log); empty for a CUCM node alone."""
    nodes: tuple[NodeRun, ...] = ()
    """A cluster's nodes, each with its timeline and alarms (`timeline` and `alarms` are then the cluster's:
    the worst state of each second, every alarm in time order); empty for one node."""

    @property
    def seed(self) -> int:
        """The concrete seed this run used."""
        assert self.scenario.seed is not None
        return self.scenario.seed


def simulate(scenario: Scenario, progress: ProgressCallback | None = None) -> RunResult:
    """Run `scenario` to its end and return its result; the same seed gives the same result."""
    scenario = scenario.with_concrete_seed()
    assert scenario.seed is not None
    started = time.perf_counter()
    step_s = max(1.0, scenario.duration_s / PROGRESS_STEPS)
    done_s = 0.0
    if scenario.cluster is not None:
        nodes = scenario.node_scenarios()
        world = World([NodeSetup(node, seeds) for node, seeds in zip(nodes, node_seeds(scenario.seed, len(nodes)),
                                                                      strict=True)],
                      cluster=ClusterSetup(scenario, np.random.SeedSequence(scenario.seed, spawn_key=(len(nodes),))))
    elif scenario.has_node:
        world = World([NodeSetup(scenario, node_seeds(scenario.seed, 1)[0])])
    else:
        world = World([], HostsSetup(scenario, np.random.SeedSequence(scenario.seed)))
    try:
        while done_s < scenario.duration_s:
            done_s = min(done_s + step_s, float(scenario.duration_s))
            world.run(done_s)
            if progress is not None:
                progress(done_s, float(scenario.duration_s))
    except WorkLimitError as copy:  # SimPy re-raises a copy made from the args: the original keeps its lines
        raise copy.__cause__ if isinstance(copy.__cause__, WorkLimitError) else copy from None
    except MemoryError as error:  # never a traceback: the run ends with what it was doing and its estimate
        raise out_of_memory(scenario, world.now_s, error) from error
    wall_s = time.perf_counter() - started
    if world.hosts is not None:
        summary = {"scenario": scenario.name, "seed": scenario.seed, "duration_s": scenario.duration_s,
                   **world.hosts.summary(), "wall_s": wall_s}
        return RunResult(scenario, summary, world.hosts.timeline(), (), wall_s, tuple(world.hosts.log.lines))
    if world.cluster is not None:
        runs = node_runs(world, scenario.node_names, summarize, wall_s)
        summary = cluster_summary(scenario, world, runs, summarize, wall_s)
        states = cluster_counters([node.engine.counters() for node in world.nodes]).states
        every = tuple(sorted((alarm for run in runs for alarm in run.alarms), key=lambda alarm: alarm.t_s))
        return RunResult(scenario, summary, {"state": states}, every, wall_s, nodes=runs)
    node = world.nodes[0]
    counters = node.engine.counters()
    alarms = tuple(node.alarms)
    summary = summarize(scenario, counters, alarms, wall_s)
    return RunResult(scenario, summary, {"state": counters.states, **counters.timeline}, alarms, wall_s)


def summarize(
    scenario: Scenario, counters: NodeCounters, alarms: tuple[Alarm, ...], wall_s: float
) -> dict[str, Any]:
    """The run's summary: counts, delays (ms), time in each state (s) and the derived metrics (see `metrics`)."""
    states, counts = np.unique(counters.states, return_counts=True)
    in_state = dict(zip(states.tolist(), counts.tolist(), strict=True))
    names = [alarm.name for alarm in alarms]
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "duration_s": scenario.duration_s,
        "engine": scenario.engine,
        "time_in_state_s": {state.value: float(in_state.get(state.value, 0)) for state in ThrottleState},
        "code_yellow_entries": names.count(CODE_YELLOW_ENTRY),
        "code_yellow_exits": names.count(CODE_YELLOW_EXIT),
        "code_red_entries": names.count(CODE_RED_ENTRY),
        "calls_attempted": counters.calls_attempted,
        "calls_accepted": counters.calls_accepted,
        "calls_rejected_throttled": counters.calls_rejected_throttled,
        "calls_failed_node_down": counters.calls_failed_node_down,
        "dial_tone_delay_ms": counters.dial_tone_delay_ms.describe(),
        "signals_processed": counters.signals_processed,
        "signals_lost_restart": counters.signals_lost_restart,
        "signals_dropped_node_down": counters.signals_dropped_node_down,
        "signal_wait_ms": counters.wait_ms.describe(),
        "signal_wait_ms_by_priority": {
            name: {"count": hist.count, "mean": hist.mean, "p95": hist.quantile(0.95)}
            for name, hist in zip(PRIORITIES, counters.wait_ms_by_priority, strict=True)
        },
        "max_average_expected_delay_ms": counters.max_average_expected_delay_ms,
        "skinny_devices_throttled": counters.skinny_devices_throttled,
        "registered_devices_at_end": counters.registered_devices,
    }
    return {**summary, **derived_metrics(summary, alarms), "wall_s": wall_s}
