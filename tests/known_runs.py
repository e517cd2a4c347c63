"""Scenarios with known transitions, shared by the tests that check a run against the rules.

`starvation()` is a CPU starvation from t=30 s: rho = 0.35 normally and 3.5 while the CPU is starved,
so the backlog can only grow: Code Yellow within the 10-sample window, Code Red exactly Code Yellow
Duration (1 min) later, a 30 s restart, and Normal again.
"""

from __future__ import annotations

from typing import Any

ENTRY_MS, EXIT_PCT, SAMPLE_S = 20, 40, 10


def starvation(**overrides: Any) -> dict[str, Any]:
    """The starvation scenario as a dict (Scenario.model_validate it); `overrides` replace top-level keys."""
    data: dict[str, Any] = {
        "name": "starvation",
        "seed": 3,
        "duration_s": 240,
        "throttling": {"code_yellow_duration_min": 1, "system_throttle_sample_size_s": SAMPLE_S,
                       "code_yellow_entry_latency_ms": ENTRY_MS, "code_yellow_exit_latency_pct": EXIT_PCT},
        "node": {"signal_service_time_ms": {"distribution": "exponential", "mean": 1.0}, "restart_duration_s": 30},
        "load": {"background": [{"signals_per_s": 300}], "calls_per_s": 5, "signals_per_call": 10,
                 "holding_time_s": {"distribution": "exponential", "mean": 60}},
        "devices": {"count": 200, "registration_signals": 5, "registration_spread_s": 20},
        "disturbances": [{"kind": "cpu_slowdown", "start_s": 30, "end_s": 110, "capacity_factor": 0.1}],
    }
    data.update(overrides)
    return data
