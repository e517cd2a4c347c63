"""Load inputs do what the schema says: call profiles, constant arrivals, surges, bursts, keepalives.

Counts are compared with their expectation under Poisson noise (a few standard deviations wide), or
exactly where the input is deterministic.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from cucm_sim import Scenario, simulate


def _run(**sections: Any) -> Any:
    data = {"name": "shapes", "seed": 21, "duration_s": 300,
            "throttling": {"system_throttle_sample_size_s": 0}, **sections}
    return simulate(Scenario.model_validate(data))


def _assert_poisson_count(observed: float, expected: float) -> None:
    assert abs(observed - expected) < 4 * math.sqrt(expected) + 1, f"{observed} vs {expected}"


def test_piecewise_linear_calls_profile() -> None:
    # 0 -> 20 calls/s linearly over 0..200 s, then held at 20: 2000 + 2000 calls expected.
    result = _run(load={"calls_profile": [[0, 0], [200, 20]], "signals_per_call": 1})
    attempted = result.timeline["calls_attempted"]
    _assert_poisson_count(attempted[:200].sum(), 0.5 * 200 * 20)
    _assert_poisson_count(attempted[200:].sum(), 100 * 20)
    _assert_poisson_count(attempted[:100].sum(), 0.5 * 100 * 10)  # the ramp is linear, not a step


def test_constant_arrivals_are_evenly_spaced() -> None:
    result = _run(load={"calls_per_s": 4, "call_arrivals": "constant", "signals_per_call": 1})
    assert set(result.timeline["calls_attempted"][1:].tolist()) == {4.0}


def test_call_surge_adds_calls_only_in_its_window() -> None:
    result = _run(load={"calls_per_s": 2, "signals_per_call": 1},
                  disturbances=[{"kind": "call_surge", "start_s": 100, "end_s": 200, "calls_per_s": 10}])
    attempted = result.timeline["calls_attempted"]
    _assert_poisson_count(attempted[100:200].sum(), 100 * 12)
    _assert_poisson_count(attempted[:100].sum() + attempted[200:].sum(), 200 * 2)


def test_signal_burst_adds_signals_at_its_priority() -> None:
    result = _run(disturbances=[{"kind": "signal_burst", "start_s": 50, "end_s": 150, "signals_per_s": 200,
                                 "priority": "low"}])
    _assert_poisson_count(result.summary["signal_wait_ms_by_priority"]["low"]["count"], 100 * 200)
    processed = result.timeline["signals_processed"]
    assert processed[:50].sum() == 0 and processed[150:].sum() == 0


@pytest.mark.parametrize("priority", ["normal", "low"])
def test_every_registered_device_sends_one_keepalive_per_interval(priority: str) -> None:
    result = _run(devices={"count": 600, "keepalive_interval_s": 30, "keepalive_priority": priority})
    # 300 s = 10 intervals, each device once per interval at its own phase: exactly 6000 keepalives.
    assert result.summary["signal_wait_ms_by_priority"][priority]["count"] == 6000
    per_second = result.timeline["signals_processed"]
    assert np.mean(per_second) == pytest.approx(600 / 30, rel=0.01)


def test_cold_start_registers_every_device_over_the_spread() -> None:
    result = _run(devices={"count": 400, "registered_at_start": False, "registration_spread_s": 60,
                           "registration_signals": 4})
    registered = result.timeline["registered_devices"]
    assert registered[0] < 400 and registered[70] == 400
    assert result.summary["signal_wait_ms_by_priority"]["lowest"]["count"] == 400
    assert result.summary["signal_wait_ms_by_priority"]["low"]["count"] == 400 * 3
