"""Both engines against queueing theory, call throttling off (sample size 0).

Every check runs for the per-signal reference (``engine: signal``) and for the batched engine
(``engine: batched``): several independent replications (seeds 1..R; R = 5 for the signal engine, 10 for
the much cheaper batched one) whose mean is compared with the closed-form value: M/M/1 (mean wait
rho/(mu - lambda), sojourn p95 ln(20)/(mu - lambda)), M/D/1 and M/G/1 (Pollaczek-Khinchine), two-class
non-preemptive priority (Cobham), and Little's law on the sampled queue depths.  Tolerances are relative,
several standard errors wide and the same for both engines; the standard error over replications is
asserted to be small enough that the tolerance is meaningful.  Replications run on two spawned worker
processes.
"""

from __future__ import annotations

import math
import multiprocessing
import multiprocessing.pool
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from cucm_sim import Scenario, simulate

ENGINES = ("signal", "batched")
REPLICATIONS = {"signal": 5, "batched": 10}
"""More replications for the batched engine: they cost little, and a standard error sqrt(2) smaller lets the same
tolerance catch a smaller bias."""

RUNS_TIMEOUT_S = 300.0
"""Wall time allowed for one check's replications (they take seconds): a hung run fails the check."""


def _run(data: dict[str, Any]) -> dict[str, Any]:
    """One replication, in a worker process: its summary and its mean sampled normal-queue depth."""
    result = simulate(Scenario.model_validate(data))
    return {**result.summary, "mean_queue_normal": float(np.mean(result.timeline["queue_normal"]))}


@pytest.fixture(scope="module")
def pool() -> Iterator[multiprocessing.pool.Pool]:
    # spawn, not fork, as `cucm_sim.studies.check` does: a forked worker would inherit the parent's threads' locks.
    with multiprocessing.get_context("spawn").Pool(2) as workers:
        yield workers


def _replicate(pool: multiprocessing.pool.Pool, engine: str, duration_s: int, service: dict[str, Any],
               capacity_factor: float = 1.0, **load: Any) -> list[dict[str, Any]]:
    jobs = [{
        "name": "theory",
        "engine": engine,
        "seed": seed,
        "duration_s": duration_s,
        "throttling": {"system_throttle_sample_size_s": 0, "max_events_allowed": 0},
        "node": {"signal_service_time_ms": service, "capacity_factor": capacity_factor},
        "load": load,
    } for seed in range(1, REPLICATIONS[engine] + 1)]
    return pool.map_async(_run, jobs).get(RUNS_TIMEOUT_S)


def _assert_close(samples: list[float], expected: float, rel_tol: float) -> None:
    values = np.asarray(samples)
    mean = float(values.mean())
    standard_error = float(values.std(ddof=1) / math.sqrt(len(values)))
    assert standard_error < rel_tol * expected / 2, f"too noisy to test: SE {standard_error:.4g} vs {expected:.4g}"
    assert mean == pytest.approx(expected, rel=rel_tol), (
        f"mean {mean:.4g} vs theory {expected:.4g} (SE {standard_error:.3g})"
    )


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_mm1_mean_wait_and_littles_law(pool: multiprocessing.pool.Pool, engine: str) -> None:
    service_ms, rate_per_s = 1.0, 500.0  # rho = 0.5
    rho = rate_per_s * service_ms / 1000
    runs = _replicate(pool, engine, 240, {"distribution": "exponential", "mean": service_ms},
                      background=[{"signals_per_s": rate_per_s, "priority": "normal"}])
    expected_wait_ms = rho * service_ms / (1 - rho)  # rho / (mu - lambda)
    _assert_close([r["signal_wait_ms_by_priority"]["normal"]["mean"] for r in runs], expected_wait_ms, 0.03)
    # Throughput: everything offered is served.
    _assert_close([r["signals_processed"] / r["duration_s"] for r in runs], rate_per_s, 0.01)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_mm1_littles_law_on_sampled_queue_depth(pool: multiprocessing.pool.Pool, engine: str) -> None:
    # Depth is sampled once a second, so precision comes from many seconds, not many signals:
    # slow signals (20 ms) keep the run cheap and the samples nearly independent.
    service_ms, rate_per_s = 20.0, 25.0
    runs = _replicate(pool, engine, 2400, {"distribution": "exponential", "mean": service_ms},
                      background=[{"signals_per_s": rate_per_s}])
    depths = [r["mean_queue_normal"] for r in runs]
    rho = rate_per_s * service_ms / 1000
    expected_lq = rho**2 / (1 - rho)  # L_q = lambda * W_q
    _assert_close(depths, expected_lq, 0.08)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_mm1_dial_tone_delay_is_the_sojourn_time(pool: multiprocessing.pool.Pool, engine: str) -> None:
    """One signal per call, no teardown: dial-tone delay = M/M/1 sojourn, exponential with rate mu - lambda."""
    service_ms, calls_per_s = 1.0, 500.0
    runs = _replicate(pool, engine, 240, {"distribution": "exponential", "mean": service_ms},
                      calls_per_s=calls_per_s, signals_per_call=1, setup_signals_per_call=1)
    gap_per_ms = 1 / service_ms - calls_per_s / 1000
    _assert_close([r["dial_tone_delay_ms"]["mean"] for r in runs], 1 / gap_per_ms, 0.03)
    _assert_close([r["dial_tone_delay_ms"]["p95"] for r in runs], math.log(20) / gap_per_ms, 0.04)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_md1_mean_wait(pool: multiprocessing.pool.Pool, engine: str) -> None:
    service_ms, rate_per_s = 1.0, 600.0  # rho = 0.6
    rho = rate_per_s * service_ms / 1000
    runs = _replicate(pool, engine, 240, {"distribution": "deterministic", "mean": service_ms},
                      background=[{"signals_per_s": rate_per_s}])
    expected_wait_ms = rho * service_ms / (2 * (1 - rho))
    _assert_close([r["signal_wait_ms_by_priority"]["normal"]["mean"] for r in runs], expected_wait_ms, 0.03)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_mg1_lognormal_mean_wait_pollaczek_khinchine(pool: multiprocessing.pool.Pool, engine: str) -> None:
    service_ms, cv, rate_per_s = 1.0, 1.5, 400.0  # rho = 0.4
    rho = rate_per_s * service_ms / 1000
    runs = _replicate(pool, engine, 300, {"distribution": "lognormal", "mean": service_ms, "cv": cv},
                      background=[{"signals_per_s": rate_per_s}])
    second_moment_ms2 = service_ms**2 * (1 + cv**2)
    expected_wait_ms = rate_per_s / 1000 * second_moment_ms2 / (2 * (1 - rho))
    _assert_close([r["signal_wait_ms_by_priority"]["normal"]["mean"] for r in runs], expected_wait_ms, 0.05)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_two_class_non_preemptive_priority_cobham(pool: multiprocessing.pool.Pool, engine: str) -> None:
    service_ms, high_per_s, normal_per_s = 1.0, 300.0, 400.0  # rho_high 0.3, rho 0.7
    runs = _replicate(pool, engine, 240, {"distribution": "exponential", "mean": service_ms},
                      background=[{"signals_per_s": high_per_s, "priority": "high"},
                                  {"signals_per_s": normal_per_s, "priority": "normal"}])
    rho_high, rho = high_per_s * service_ms / 1000, (high_per_s + normal_per_s) * service_ms / 1000
    residual_ms = (high_per_s + normal_per_s) / 1000 * 2 * service_ms**2 / 2  # W0 = sum(lambda E[S^2]) / 2
    expected_high_ms = residual_ms / (1 - rho_high)
    expected_normal_ms = residual_ms / ((1 - rho_high) * (1 - rho))
    _assert_close([r["signal_wait_ms_by_priority"]["high"]["mean"] for r in runs], expected_high_ms, 0.04)
    _assert_close([r["signal_wait_ms_by_priority"]["normal"]["mean"] for r in runs], expected_normal_ms, 0.04)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_capacity_factor_scales_service_time(pool: multiprocessing.pool.Pool, engine: str) -> None:
    """A node at half speed with 0.5 ms signals is an M/M/1 with 1 ms signals."""
    rate_per_s = 500.0
    runs = _replicate(pool, engine, 240, {"distribution": "exponential", "mean": 0.5}, capacity_factor=0.5,
                      background=[{"signals_per_s": rate_per_s}])
    waits = [r["signal_wait_ms_by_priority"]["normal"]["mean"] for r in runs]
    _assert_close(waits, 1.0, 0.03)  # rho 0.5, service 1 ms: W = 0.5 * 1 / 0.5
