"""The batched model's own guarantees, beyond agreeing with the signal engine in distribution."""

from __future__ import annotations

import numpy as np
import pytest

from cucm_sim import Scenario
from cucm_sim.engine.batched import node as batched_model
from cucm_sim.engine.batched import settle
from cucm_sim.sdl.block import MIN_SERVICE_S, ServiceDraws
from cucm_sim.world.world import NodeSetup, World


def test_a_storm_with_a_sub_nanosecond_service_settles(monkeypatch: pytest.MonkeyPatch) -> None:
    # This seed draws a service shorter than the 1 ns tie allowance during a registration storm: the
    # follow-on of that signal then looked ready at its parent's own start, took its slot, and the
    # block's fixed point cycled between two answers forever.  A few hundred passes is plenty now.
    monkeypatch.setattr(settle, "MAX_PASSES", 400)
    scenario = Scenario.model_validate({
        "name": "storm", "duration_s": 10, "seed": 10033762954876074632,
        "node": {"signal_service_time_ms": {"distribution": "exponential", "mean": 0.15}},
        "load": {"background": [{"signals_per_s": 4000}], "calls_per_s": 10, "signals_per_call": 12},
        "devices": {"count": 2000, "registered_at_start": False, "registration_spread_s": 20},
    })
    world = World([NodeSetup(scenario, np.random.SeedSequence(10033762954876074632))])
    world.run(10)
    model = world.nodes[0].engine
    assert isinstance(model, batched_model.BatchedNodeModel)
    assert model.counters().registered_devices > 0
    assert model.passes < 400


def test_no_service_is_shorter_than_the_floor() -> None:
    draws = ServiceDraws(
        Scenario.model_validate({"name": "x", "duration_s": 1}).node.signal_service_time_ms,
        np.random.default_rng(1),
    )
    services_s = draws.services_s(500_000, 1.0 / 1000.0)
    assert services_s.min() >= MIN_SERVICE_S
    assert services_s.mean() == pytest.approx(0.16e-3, rel=0.01)  # the default mean, 0.16 ms
