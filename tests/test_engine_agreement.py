"""The batched engine against the per-signal reference: issue 4's acceptance tests.

The two engines simulate the same model with different random streams, so they must agree in
distribution, not sample path.  Each test runs one scenario over independent replications on both
engines (disjoint seed sets, from `replication_seeds` under two roots) and compares replication means:

* a mean must agree within a stated tolerance (relative to the reference, or absolute);
* a count that the reference gives identically in every replication (deterministic in practice, e.g. one
  Code Yellow entry in a starvation) must be exactly that in every batched replication too.

Each tolerance was fixed after measuring the spread over replications (numbers in each test's docstring,
measured at commit dee7139 with the seeds below: mean +- standard error, signal engine first).  It is at
least ~4 standard errors of the difference of the two means, so a correct engine fails by chance only very
rarely, and each docstring states the error the test detects.  At run time a test refuses to judge ("too
noisy to test") if the standard error of the difference exceeds half its tolerance.

Budget: the signal engine dominates (~190k signals/s); the replications run on two spawned worker processes.
A run that does not finish within `BATCH_TIMEOUT_S` fails the test (and its workers are replaced) instead
of stalling the suite.
"""

from __future__ import annotations

import copy
import math
import multiprocessing
import multiprocessing.pool
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from cucm_sim import Scenario, simulate
from cucm_sim.scenario.seeds import replication_seeds

ROOT_SEEDS = {"signal": 4001, "batched": 4002}
"""Different roots: the engines share stream names, so equal seeds would correlate their runs."""

WORKERS = 2
BATCH_TIMEOUT_S = 240.0
"""Wall time allowed for one test's replications (10-45 s on two free cores; a hung run fails the test)."""

Summary = dict[str, Any]


# ------------------------------------------------------------------ scenarios
def _r1(duration_s: int) -> dict[str, Any]:
    """Issue 4's R1 "busy hour": 5,000 devices (keepalive 30 s), 10 calls/s x 12 signals, 5,000 normal
    background signals/s, exponential service mean 0.15 ms, default throttling: rho ~0.79."""
    return {
        "name": "r1-busy-hour",
        "duration_s": duration_s,
        "node": {"signal_service_time_ms": {"distribution": "exponential", "mean": 0.15}},
        "load": {"background": [{"signals_per_s": 5000, "priority": "normal"}], "calls_per_s": 10,
                 "signals_per_call": 12},
        "devices": {"count": 5000, "keepalive_interval_s": 30},
    }


def _starvation(duration_s: int, start_s: float, end_s: float, **throttling: Any) -> dict[str, Any]:
    """R2-like: R1 with the router at 0.2 of its speed between start_s and end_s (rho ~4 meanwhile)."""
    data = _r1(duration_s)
    data["name"] = "r2-starvation"
    data["disturbances"] = [{"kind": "cpu_slowdown", "start_s": start_s, "end_s": end_s, "capacity_factor": 0.2}]
    data["throttling"] = throttling
    return data


# ------------------------------------------------------------------ replications
def _summary(data: dict[str, Any]) -> Summary:
    """One run, in a worker process: its summary (a plain dict, cheap to send back)."""
    return dict(simulate(Scenario.model_validate(data)).summary)


class _Workers:
    """Spawned worker processes (spawn, like `cucm_sim.studies.check`), replaced when a batch overstays its time."""

    def __init__(self) -> None:
        self._pool: multiprocessing.pool.Pool | None = None

    def run(self, jobs: list[dict[str, Any]]) -> list[Summary]:
        if self._pool is None:
            self._pool = multiprocessing.get_context("spawn").Pool(WORKERS)
        pending = [self._pool.apply_async(_summary, (job,)) for job in jobs]
        deadline = time.monotonic() + BATCH_TIMEOUT_S
        try:
            return [result.get(max(deadline - time.monotonic(), 0.0)) for result in pending]
        except multiprocessing.TimeoutError:
            unfinished = [(job["engine"], job["seed"]) for job, result in zip(jobs, pending, strict=True)
                          if not result.ready()]
            self.close()  # the hung run still holds a worker: start afresh for the next test
            pytest.fail(f"{jobs[0]['name']}: runs not finished after {BATCH_TIMEOUT_S:.0f} s "
                        f"(engine, seed): {unfinished}")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


@pytest.fixture(scope="module")
def workers() -> Iterator[_Workers]:
    pool = _Workers()
    yield pool
    pool.close()


def _replicate(
    workers: _Workers, data: dict[str, Any], signal_runs: int, batched_runs: int
) -> dict[str, list[Summary]]:
    """`data` run `signal_runs` times on the signal engine and `batched_runs` times on the batched one."""
    counts = {"signal": signal_runs, "batched": batched_runs}
    jobs = [
        {**copy.deepcopy(data), "engine": engine, "seed": seed}
        for engine, count in counts.items()  # the slow signal runs first: the pool finishes sooner
        for seed in replication_seeds(ROOT_SEEDS[engine], count)
    ]
    summaries = workers.run(jobs)
    return {engine: [s for s, job in zip(summaries, jobs, strict=True) if job["engine"] == engine] for engine in counts}


def _values(runs: list[Summary], path: str) -> list[float]:
    """The metric at dotted `path` in every run; a metric that did not happen fails the test."""
    values = []
    for summary in runs:
        value: Any = summary
        for key in path.split("."):
            value = value[key]
        assert value is not None, f"{path} did not happen in the {summary['engine']} run with seed {summary['seed']}"
        values.append(float(value))
    return values


# ------------------------------------------------------------------ comparisons
@dataclass(frozen=True)
class _Estimate:
    mean: float
    standard_error: float
    count: int

    @classmethod
    def of(cls, values: Sequence[float]) -> _Estimate:
        array = np.asarray(values, dtype=float)
        return cls(float(array.mean()), float(array.std(ddof=1) / math.sqrt(len(array))), len(array))

    def __str__(self) -> str:
        return f"{self.mean:.5g} +- {self.standard_error:.2g} (n={self.count})"


def _assert_means_agree(runs: dict[str, list[Summary]], path: str, *,
                        rel_tol: float | None = None, abs_tol: float | None = None) -> None:
    """The batched mean of `path` within `rel_tol` (of the reference mean) or `abs_tol` of the signal mean."""
    signal, batched = _Estimate.of(_values(runs["signal"], path)), _Estimate.of(_values(runs["batched"], path))
    tolerance = rel_tol * abs(signal.mean) if rel_tol is not None else abs_tol
    assert tolerance is not None, "give rel_tol or abs_tol"
    difference = batched.mean - signal.mean
    se_difference = math.hypot(signal.standard_error, batched.standard_error)
    relative = f" ({difference / signal.mean:+.2%})" if signal.mean else ""
    detail = (
        f"{path}: signal {signal}, batched {batched}; difference {difference:+.4g}{relative}, "
        f"tolerance {tolerance:.4g} = {tolerance / se_difference if se_difference else math.inf:.1f} SE of "
        f"the difference (SE {se_difference:.2g})"
    )
    assert se_difference <= tolerance / 2, f"too noisy to test: {detail}"
    assert abs(difference) <= tolerance, detail


def _assert_same_count(runs: dict[str, list[Summary]], path: str) -> None:
    """A count the reference gives identically in every replication: the batched engine must give it too."""
    signal, batched = _values(runs["signal"], path), _values(runs["batched"], path)
    assert len(set(signal)) == 1, f"{path}: the reference varies ({signal}); compare its mean instead"
    assert set(batched) == set(signal), (
        f"{path}: the signal engine gives {signal[0]:g} in all {len(signal)} replications, "
        f"the batched engine {[f'{v:g}' for v in batched]}"
    )


# ------------------------------------------------------------------ steady busy hour
@pytest.mark.slow
def test_r1_busy_hour_mean_wait(workers: _Workers) -> None:
    """R1 for 150 s, 10 signal and 20 batched replications.

    Measured (mean +- SE, signal then batched): normal-priority mean wait 0.5813 +- 0.0025 ms vs
    0.5763 +- 0.0012 ms, SE of the difference 0.47 %, so the 3 % tolerance is 6.4 SE.  The test fails,
    with probability > 97 %, for a true difference of 4 % or more; at rho 0.79 the mean wait moves ~5.8
    times as much as the mean service time, so a 0.7 % error in the service work (or the load) is caught.
    Signals processed 787,808 +- 401 vs 787,178 +- 174 (SE of the difference 0.055 %): the 0.3 % tolerance
    (5.4 SE) catches one signal in ~250 lost or doubled.  The dial-tone p95 is compared on the two-priority
    load, which has four times the calls: with 1,500 calls a run, its SE of the difference here (~1.8 %)
    would not carry a 5 % tolerance.
    """
    runs = _replicate(workers, _r1(150), signal_runs=10, batched_runs=20)
    _assert_means_agree(runs, "signal_wait_ms_by_priority.normal.mean", rel_tol=0.03)
    _assert_means_agree(runs, "signals_processed", rel_tol=0.003)


@pytest.mark.slow
def test_two_priority_waits_and_dial_tone_p95(workers: _Workers) -> None:
    """R1's load with a fifth of it at high priority, 200 s, 10 replications per engine.

    1,000 high + 3,640 normal background signals/s, 40 calls/s x 12 signals, 5,000 devices: the same
    ~5,290 signals/s (rho ~0.79) as R1, through the batched engine's priority path, with 8,000 calls a run
    for the dial-tone p95.  Measured: high-priority mean wait 0.13601 +- 0.00024 ms vs 0.13599 +- 0.00017 ms
    (SE of the difference 0.22 %: 3 % is 13.7 SE); normal 0.6941 +- 0.0023 ms vs 0.6912 +- 0.0037 ms
    (0.63 %: 3 % is 4.8 SE); dial-tone p95 2.622 +- 0.017 ms vs 2.616 +- 0.023 ms (1.1 %: 5 % is 4.5 SE).
    Each check fails, with probability > 97 %, for a true difference above its tolerance plus 2 SE:
    3.4 % (high), 4.3 % (normal), 7.2 % (dial-tone p95).
    """
    data = _r1(200)
    data["name"] = "two-priority"
    data["load"] = {"background": [{"signals_per_s": 1000, "priority": "high"},
                                   {"signals_per_s": 3640, "priority": "normal"}],
                    "calls_per_s": 40, "signals_per_call": 12}
    runs = _replicate(workers, data, signal_runs=10, batched_runs=10)
    _assert_means_agree(runs, "signal_wait_ms_by_priority.high.mean", rel_tol=0.03)
    _assert_means_agree(runs, "signal_wait_ms_by_priority.normal.mean", rel_tol=0.03)
    _assert_means_agree(runs, "dial_tone_delay_ms.p95", rel_tol=0.05)


# ------------------------------------------------------------------ starvation, Code Yellow and Code Red
@pytest.mark.slow
def test_r2_starvation_code_yellow_entry_and_exit(workers: _Workers) -> None:
    """R2 shortened: R1 with the CPU at 0.2 from 30 s to 40 s, 100 s; 10 signal and 20 batched replications.

    The backlog (~6 s of work) trips Code Yellow at the first sample after the slowdown begins and drains
    ~30 s after it ends; the average then falls to the exit latency: one entry, one exit, no Code Red, in
    every replication of both engines, and the first entry at 31 s in every one.  Measured: time in Code
    Yellow 45.2 +- 0.20 s vs 44.85 +- 0.11 s (SE of the difference 0.23 s: the 1 s tolerance is 4.4 SE);
    normal mean wait 1,345.7 +- 7.4 ms vs 1,337.8 +- 5.5 ms (0.68 %: 3 % is 4.4 SE); share of calls
    rejected 0.4508 +- 0.0058 vs 0.4490 +- 0.0043 (SE 0.0072: 0.03 is 4.2 SE).  Detects an entry or exit
    missed or added, the first entry moved by 2 s (issue 4's bound) or the episode by ~1.5 s on average,
    a ~4.5 % error in the wait under overload and a ~4.5-point error in the share of calls rejected.
    """
    runs = _replicate(workers, _starvation(100, start_s=30, end_s=40), signal_runs=10, batched_runs=20)
    for count in ("code_yellow_entries", "code_yellow_exits", "code_red_entries"):
        _assert_same_count(runs, count)
    _assert_means_agree(runs, "first_code_yellow_entry_s", abs_tol=2.0)
    _assert_means_agree(runs, "time_in_state_s.CodeYellow", abs_tol=1.0)
    _assert_means_agree(runs, "signal_wait_ms_by_priority.normal.mean", rel_tol=0.03)
    _assert_means_agree(runs, "calls_rejected_fraction", abs_tol=0.03)


@pytest.mark.slow
def test_r2_code_red_restart_and_reregistration(workers: _Workers) -> None:
    """R2 with Code Yellow Duration 1 min: Code Red, a 30 s restart and the phones' re-registration storm.

    R1 with the CPU at 0.2 from 30 s to 95 s, 180 s, restart 30 s, re-registration spread over 60 s;
    10 replications per engine.  Measured, identical in every replication of both engines: Code Yellow at
    31 s, Code Red at 91 s (exactly 1 min later), back online at 121 s and no further Code Yellow: 1 entry,
    0 exits, 1 Code Red, 30 s in Code Red.  Registered devices at the end (the storm still runs at 180 s):
    4,913.4 +- 0.86 vs 4,913.3 +- 2.7 (SE of the difference 2.8: the 20-device tolerance is 7.1 SE and
    catches ~26 registrations lost or added on average, 0.5 % of them).
    This test caught a disagreement at fe0cd1e, since fixed: the batched engine's first sample after the
    restart read the age of a signal lost in it (~75,000 ms), so it entered Code Yellow again 9 s later in
    every replication (2 entries and 1 exit instead of 1 and 0, 29 s in Code Red instead of 30).
    """
    data = _starvation(180, start_s=30, end_s=95, code_yellow_duration_min=1)
    data["name"] = "r2-code-red"
    data["node"]["restart_duration_s"] = 30
    data["devices"]["registration_spread_s"] = 60
    runs = _replicate(workers, data, signal_runs=10, batched_runs=10)
    for count in ("code_yellow_entries", "code_yellow_exits", "code_red_entries"):
        _assert_same_count(runs, count)
    _assert_means_agree(runs, "first_code_yellow_entry_s", abs_tol=2.0)
    _assert_means_agree(runs, "first_code_red_entry_s", abs_tol=2.0)
    _assert_means_agree(runs, "time_in_state_s.CodeRed", abs_tol=0.5)
    _assert_means_agree(runs, "registered_devices_at_end", abs_tol=20)


@pytest.mark.slow
def test_cycling_starvation_code_yellow_count_distribution(workers: _Workers) -> None:
    """A starvation that cycles in and out of Code Yellow: the entry counts vary, so compare their means.

    `scenarios/cpu_starvation.yaml`'s load (1,150 background signals/s, 8 calls/s x 40 signals, 3,000
    phones, 0.16 ms) with the CPU at 0.25 from 30 s to 240 s, 240 s; 10 signal and 20 batched replications.
    Rejecting calls brings the load back under the reduced capacity, so the node leaves Code Yellow and
    re-enters it: ~8 episodes a run, +-1 between runs; never Code Red (identical, 0, in every run).
    Measured: Code Yellow entries 8.6 +- 0.34 vs 7.85 +- 0.22 (SE of the difference 0.41: the 2-entry
    tolerance is 4.9 SE); time in Code Yellow 82.0 +- 2.7 s vs 74.5 +- 2.1 s (3.4 s: 18 s is 5.3 SE).  A
    larger sample (30 and 60 other replications) gave 8.17 +- 0.15 vs 8.47 +- 0.12 entries and
    78.1 +- 1.4 s vs 81.4 +- 1.1 s: differences of either sign, i.e. chance.  Coarse by nature (the count
    varies ~12 % from run to run): it catches a change of ~3 episodes a run (~35 %) or ~25 s in Code
    Yellow, e.g. an exit rule or sample window that is off.
    """
    data: dict[str, Any] = {
        "name": "cycling-starvation",
        "duration_s": 240,
        "node": {"signal_service_time_ms": {"distribution": "exponential", "mean": 0.16}},
        "load": {"background": [{"signals_per_s": 150, "priority": "high"},
                                {"signals_per_s": 1000, "priority": "normal"}],
                 "calls_per_s": 8, "signals_per_call": 40},
        "devices": {"count": 3000, "keepalive_interval_s": 30},
        "disturbances": [{"kind": "cpu_slowdown", "start_s": 30, "end_s": 240, "capacity_factor": 0.25}],
    }
    runs = _replicate(workers, data, signal_runs=10, batched_runs=20)
    _assert_same_count(runs, "code_red_entries")
    _assert_means_agree(runs, "code_yellow_entries", abs_tol=2.0)
    _assert_means_agree(runs, "time_in_state_s.CodeYellow", abs_tol=18.0)


# ------------------------------------------------------------------ registration storm
@pytest.mark.slow
def test_registration_storm_waits_per_priority(workers: _Workers) -> None:
    """A cold start: 2,000 phones register over 20 s (10 signals each: lowest, then 9 low) under calls.

    4,000 normal background signals/s, 10 calls/s x 12 signals, 0.15 ms; the run is the storm (20 s), which
    the batched engine plays on its slow exact path; 20 replications per engine.  Measured mean waits:
    normal 0.3056 +- 0.0013 ms vs 0.3061 +- 0.0012 ms (SE of the difference 0.58 %: 3 % is 5.2 SE), low
    1.7934 +- 0.0073 ms vs 1.7934 +- 0.0070 ms (0.57 %: 3 % is 5.3 SE), lowest 2.378 +- 0.041 ms vs
    2.403 +- 0.031 ms (2.2 %: 10 % is 4.6 SE); registered devices at the end 1,999.55 +- 0.15 vs
    1,999.50 +- 0.15 (SE 0.22: 2 devices is 9.2 SE; those still in their dialogue at the end).  Detects
    ~4 % errors in the normal and low waits, ~15 % in the lowest (the initial requests), and an engine
    that loses or stalls ~2.5 or more of the 2,000 registrations on average.
    """
    data = _r1(20)
    data["name"] = "registration-storm"
    data["load"]["background"] = [{"signals_per_s": 4000, "priority": "normal"}]
    data["devices"] = {"count": 2000, "keepalive_interval_s": 30, "registered_at_start": False,
                       "registration_spread_s": 20}
    runs = _replicate(workers, data, signal_runs=20, batched_runs=20)
    _assert_means_agree(runs, "signal_wait_ms_by_priority.normal.mean", rel_tol=0.03)
    _assert_means_agree(runs, "signal_wait_ms_by_priority.low.mean", rel_tol=0.03)
    _assert_means_agree(runs, "signal_wait_ms_by_priority.lowest.mean", rel_tol=0.10)
    _assert_means_agree(runs, "registered_devices_at_end", abs_tol=2.0)
