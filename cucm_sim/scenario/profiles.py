"""Time-varying inputs of a scenario, as pure functions of simulated time (seconds).

Owns: the call-attempt rate (constant or piecewise-linear profile, plus call surges) and the router
thread's capacity factor (baseline times every active cpu_slowdown, times the recorded factor of a
`load.trace` with a `capacity_factor`, piecewise constant per interval of the recording: `scenario.replay`).
No SimPy: the model asks these functions what holds at a given time.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from cucm_sim.scenario.replay import recorded_load
from cucm_sim.scenario.schema import CallSurge, CpuSlowdown, Scenario


@dataclass(frozen=True)
class CallRateProfile:
    """Call-attempt rate over time (calls/s): base rate or profile, plus active surges."""

    profile_times_s: tuple[float, ...]
    profile_rates_per_s: tuple[float, ...]
    surges: tuple[CallSurge, ...]

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> CallRateProfile:
        load = scenario.load
        if load.calls_profile is not None:
            times_s = tuple(point[0] for point in load.calls_profile)
            rates = tuple(point[1] for point in load.calls_profile)
        else:
            times_s, rates = (0.0,), (load.calls_per_s or 0.0,)
        surges = tuple(d for d in scenario.disturbances if isinstance(d, CallSurge))
        return cls(times_s, rates, surges)

    def rate_per_s(self, t_s: float) -> float:
        """Call attempts per second at time `t_s` (s)."""
        base = float(np.interp(t_s, self.profile_times_s, self.profile_rates_per_s))
        return base + sum(s.calls_per_s for s in self.surges if s.start_s <= t_s < s.end_s)

    def rates_per_s(self, times_s: np.ndarray) -> np.ndarray:
        """`rate_per_s` at each of `times_s` (s), vectorized."""
        rates: np.ndarray = np.interp(times_s, self.profile_times_s, self.profile_rates_per_s)
        for surge in self.surges:
            rates = rates + np.where((times_s >= surge.start_s) & (times_s < surge.end_s), surge.calls_per_s, 0.0)
        return rates

    def max_rate_per_s(self) -> float:
        """An upper bound of `rate_per_s` over all time (for thinning a Poisson process)."""
        return max(self.profile_rates_per_s) + sum(s.calls_per_s for s in self.surges)


def capacity_breakpoints(scenario: Scenario) -> list[tuple[float, float]]:
    """Piecewise-constant capacity factor: [(from t_s, factor)], sorted, starting at t_s = 0.

    The factor is the node's baseline times the factors of all cpu_slowdowns active at that time, times the
    recorded factor then when the scenario's `load.trace` maps one (`replay.CapacitySteps`).
    """
    slowdowns = [d for d in scenario.disturbances if isinstance(d, CpuSlowdown)]
    trace = scenario.load.trace
    if trace is not None and trace.capacity_factor is not None:
        return _with_recorded_capacity(scenario, slowdowns)
    change_times_s = sorted({0.0} | {d.start_s for d in slowdowns} | {d.end_s for d in slowdowns})
    points: list[tuple[float, float]] = []
    for t_s in change_times_s:
        factor = scenario.node.capacity_factor
        for slowdown in slowdowns:
            if slowdown.start_s <= t_s < slowdown.end_s:
                factor *= slowdown.capacity_factor
        if not points or points[-1][1] != factor:
            points.append((t_s, factor))
    return points


def _with_recorded_capacity(scenario: Scenario, slowdowns: list[CpuSlowdown]) -> list[tuple[float, float]]:
    """`capacity_breakpoints` of a scenario whose recording gives a capacity factor per interval."""
    assert scenario.load.trace is not None
    steps = recorded_load(scenario.load.trace).capacity
    assert steps is not None
    windows = [t_s for slowdown in slowdowns for t_s in (slowdown.start_s, slowdown.end_s)]
    times_s = np.union1d(np.array([0.0, *windows]), steps.starts_s)
    recorded = steps.factors[np.maximum(np.searchsorted(steps.starts_s, times_s, side="right") - 1, 0)]
    factors = scenario.node.capacity_factor * recorded
    for slowdown in slowdowns:
        active = (times_s >= slowdown.start_s) & (times_s < slowdown.end_s)
        factors = np.where(active, factors * slowdown.capacity_factor, factors)
    changes = np.concatenate(([True], factors[1:] != factors[:-1]))
    return list(zip(times_s[changes].tolist(), factors[changes].tolist(), strict=True))


def capacity_factor_at(breakpoints: list[tuple[float, float]], t_s: float) -> float:
    """The capacity factor in force at `t_s` (s), from `capacity_breakpoints`."""
    index = bisect.bisect_right([t for t, _ in breakpoints], t_s) - 1
    return breakpoints[max(index, 0)][1]
