"""The seam between a node and the world: many node engines on one clock, phones the world owns.

The proof (issue 12): a world of two independent nodes, each with its own load and its own phones, on
one shared clock, gives node by node exactly what a world of that node alone gives when seeded with the
node's own seed sequence, `SeedSequence(seed, spawn_key=(k,))`; on both engines.  Node A starves its
CPU into Code Red (so the world unregisters its phones and delivers the restart's registration storm),
node B cold-starts its phones (a storm from t = 0) and has a chatty phone that SCCP closes again and
again; the nodes run for different durations.  Then the interface's own promises: a delivery into an
engine's committed past is refused, the world can cap the lookahead, the nodes of a world draw
different numbers, and a one-node world draws what `simulate` always drew.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cucm_sim import Scenario, simulate
from cucm_sim.engine.interface import NodeCounters, PhoneArrives, PhoneLeaves
from cucm_sim.engine.vocabulary import UNREGISTERED
from cucm_sim.rules.alarms import CALLMANAGER_ONLINE, CODE_RED_ENTRY, DEVICE_CLOSE_MAX_EVENTS_EXCEEDED
from cucm_sim.world.world import NodeSetup, World, node_seeds
from tests.known_runs import starvation

SEED = 20261124
ENGINES = ("batched", "signal")


def node_a(engine: str) -> Scenario:
    """CPU starvation into Code Red and a restart (240 s)."""
    return Scenario.model_validate(starvation(engine=engine))


def node_b(engine: str) -> Scenario:
    """A cold start of 300 phones, then a phone chatty enough to be closed repeatedly (200 s)."""
    return Scenario.model_validate({
        "name": "cold-chatty", "duration_s": 200, "engine": engine,
        "throttling": {"max_events_allowed": 400},
        "node": {"signal_service_time_ms": {"distribution": "exponential", "mean": 0.5}},
        "load": {"background": [{"signals_per_s": 200}], "calls_per_s": 3, "signals_per_call": 8,
                 "holding_time_s": {"distribution": "exponential", "mean": 30}},
        "devices": {"count": 300, "registered_at_start": False, "registration_spread_s": 30,
                    "throttled_reregister_delay_s": 5,
                    "chatty": [{"count": 1, "events_per_s": 200, "start_s": 60, "end_s": 150}]},
    })


def run_world(setups: list[NodeSetup], lookahead_s: int | None = None) -> World:
    world = World(setups)
    if lookahead_s is not None:
        for node in world.nodes:
            node.engine.limit_lookahead(lookahead_s)
    world.run(world.end_s)
    return world


def comparable(counters: NodeCounters) -> dict[str, Any]:
    """Everything a node's counters hold, in a form `==` compares exactly."""
    fields = {name: value for name, value in vars(counters).items()
              if name not in ("wait_ms", "wait_ms_by_priority", "dial_tone_delay_ms", "states", "timeline")}
    return {
        **fields,
        "wait_ms": counters.wait_ms.describe(),
        "by_priority": [hist.describe() for hist in counters.wait_ms_by_priority],
        "dial_tone_delay_ms": counters.dial_tone_delay_ms.describe(),
        "states": counters.states.tolist(),
        "timeline": {name: column.tolist() for name, column in counters.timeline.items()},
    }


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_two_nodes_on_one_clock_are_each_what_they_are_alone(engine: str) -> None:
    scenarios = [node_a(engine), node_b(engine)]
    together = run_world([NodeSetup(s, seeds) for s, seeds in zip(scenarios, node_seeds(SEED, 2), strict=True)])
    assert together.now_s == 240.0
    for k, scenario in enumerate(scenarios):
        alone = run_world([NodeSetup(scenario, np.random.SeedSequence(SEED, spawn_key=(k,)))])
        mine, theirs = together.nodes[k], alone.nodes[0]
        assert mine.alarms == theirs.alarms, f"node {k}"
        assert comparable(mine.engine.counters()) == comparable(theirs.engine.counters()), f"node {k}"
    # The run exercised what the world does for phones: a restart, its storm, a cold start, SCCP closures.
    names_a = [alarm.name for alarm in together.nodes[0].alarms]
    names_b = [alarm.name for alarm in together.nodes[1].alarms]
    assert CODE_RED_ENTRY in names_a and CALLMANAGER_ONLINE in names_a
    assert together.nodes[0].engine.counters().registered_devices == 200  # the storm after the restart
    assert names_b.count(DEVICE_CLOSE_MAX_EVENTS_EXCEEDED) >= 3
    timeline_b = together.nodes[1].engine.counters().timeline
    assert timeline_b["registered_devices"][0] < 50 and timeline_b["registered_devices"][-1] == 300


@pytest.mark.parametrize("engine", ENGINES)
def test_the_nodes_of_a_world_draw_different_numbers(engine: str) -> None:
    scenario = node_b(engine).model_copy(update={"duration_s": 40})
    world = run_world([NodeSetup(scenario, seeds) for seeds in node_seeds(SEED, 2)])
    first, second = (node.engine.counters() for node in world.nodes)
    assert first.signals_processed != second.signals_processed
    assert first.timeline["registered_devices"].tolist() != second.timeline["registered_devices"].tolist()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_one_node_world_is_what_simulate_runs(engine: str) -> None:
    scenario = node_b(engine).model_copy(update={"duration_s": 40, "seed": SEED})
    world = run_world([NodeSetup(scenario, node_seeds(SEED, 1)[0])])
    result = simulate(scenario)
    counters = world.nodes[0].engine.counters()
    assert counters.signals_processed == result.summary["signals_processed"]
    assert tuple(world.nodes[0].alarms) == result.alarms
    assert np.array_equal(counters.timeline["expected_delay_ms"], result.timeline["expected_delay_ms"])


@pytest.mark.parametrize("engine", ENGINES)
def test_a_delivery_into_the_committed_past_is_refused(engine: str) -> None:
    world = World([NodeSetup(node_b(engine), node_seeds(SEED, 1)[0])])
    world.run(20.0)
    engine_under_test = world.nodes[0].engine
    committed_s = engine_under_test.committed_until_s()
    assert committed_s >= 20.0
    with pytest.raises(ValueError, match="in the past"):
        engine_under_test.deliver(committed_s - 0.5, PhoneArrives(0))
    engine_under_test.deliver(committed_s, PhoneArrives(0))  # the committed edge itself is still open


def largest_lead_s(lookahead_s: int | None) -> float:
    """How far past the clock the batched engine of node A committed, at most, over its run."""
    world = World([NodeSetup(node_a("batched"), node_seeds(SEED, 1)[0])])
    engine = world.nodes[0].engine
    if lookahead_s is not None:
        engine.limit_lookahead(lookahead_s)
    lead_s = 0.0
    for t_s in range(1, 241):
        world.run(float(t_s))
        lead_s = max(lead_s, engine.committed_until_s() - world.now_s)
    return lead_s


def test_the_world_can_cap_how_far_ahead_the_batched_engine_commits() -> None:
    """Left alone it commits spans of up to 8 s ahead of the clock; held to 1 s, never more than 1 s.
    (The results are the same in distribution, not in bytes: a block's service draws are dealt out per
    block, so other block boundaries deal them to other signals.)"""
    assert largest_lead_s(None) > 1.0
    assert largest_lead_s(1) <= 1.0


def test_a_world_needs_a_node() -> None:
    with pytest.raises(ValueError, match="at least one node"):
        World([])


@pytest.mark.parametrize("engine", ENGINES)
def test_a_phone_that_leaves_is_no_longer_registered_from_that_time(engine: str) -> None:
    scenario = Scenario.model_validate({"name": "leave", "duration_s": 30, "engine": engine,
                                        "load": {"calls_per_s": 5, "signals_per_call": 8},
                                        "devices": {"count": 50}})
    world = World([NodeSetup(scenario, node_seeds(SEED, 1)[0])])
    world.run(5.0)
    node = world.nodes[0]
    at_s = node.engine.committed_until_s() + 2.5
    for device in (3, 7):
        node.engine.deliver(at_s, PhoneLeaves(device))
    world.run(world.end_s)
    registered = node.engine.counters().timeline["registered_devices"]
    assert registered[int(at_s) - 1] == 50 and registered[int(at_s)] == 48 and registered[-1] == 48
    assert node.table.state[3] == node.table.state[7] == UNREGISTERED
