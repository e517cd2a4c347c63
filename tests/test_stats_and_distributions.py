"""The streaming histogram's stated precision, and the distributions' own mean and variance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cucm_sim.measures.stats import BINS_PER_DECADE, LogHistogram
from cucm_sim.scenario.distributions import Deterministic, DrawBuffer, Exponential, LogNormal

HALF_BIN = 10 ** (1 / (2 * BINS_PER_DECADE)) - 1  # relative error bound of a reported quantile


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(min_value=1e-5, max_value=1e6, allow_nan=False), min_size=1, max_size=400),
    q=st.sampled_from([0.0, 0.1, 0.5, 0.95, 0.99, 1.0]),
)
def test_quantile_within_half_a_bin_of_the_order_statistic(values: list[float], q: float) -> None:
    histogram = LogHistogram()
    for value in values:
        histogram.add(value)
    exact = float(np.sort(values)[max(1, math.ceil(q * len(values))) - 1])  # nearest rank
    estimate = histogram.quantile(q)
    assert estimate is not None
    assert estimate == pytest.approx(exact, rel=HALF_BIN * 1.001)
    assert histogram.mean == pytest.approx(np.mean(values)) and histogram.max == max(values)


def test_zeros_are_reported_as_zero_and_empty_as_none() -> None:
    histogram = LogHistogram()
    assert histogram.describe() == {"count": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}
    for value in [0.0] * 90 + [5.0] * 10:
        histogram.add(value)
    assert histogram.quantile(0.5) == 0.0 and histogram.quantile(0.95) == pytest.approx(5.0, rel=HALF_BIN)
    with pytest.raises(ValueError):
        histogram.quantile(1.5)


@pytest.mark.parametrize("distribution", [
    Exponential(mean=2.0), Deterministic(mean=0.5), LogNormal(mean=3.0, cv=0.5), LogNormal(mean=1.0, cv=2.0),
])
def test_distributions_know_their_moments(distribution: Exponential | Deterministic | LogNormal) -> None:
    samples = distribution.sample(np.random.default_rng(12345), 400_000)
    assert samples.mean() == pytest.approx(distribution.mean, rel=0.01)
    assert samples.var() == pytest.approx(distribution.variance, rel=0.08, abs=1e-12)
    assert distribution.second_moment == pytest.approx(distribution.variance + distribution.mean**2)


def test_draw_buffer_hands_out_the_same_stream_as_bulk_sampling() -> None:
    buffer = DrawBuffer(Exponential(mean=1.0), np.random.default_rng(7), block=16)
    drawn = [buffer.next() for _ in range(40)]
    rng = np.random.default_rng(7)
    expected = np.concatenate([rng.exponential(1.0, 16) for _ in range(3)])[:40]
    assert drawn == expected.tolist()


@given(st.lists(st.one_of(st.just(0.0), st.floats(0.0, 1e12, allow_nan=False)), max_size=300))
def test_add_many_bins_exactly_as_add(values: list[float]) -> None:
    one_by_one, at_once = LogHistogram(), LogHistogram()
    for value in values:
        one_by_one.add(value)
    at_once.add_many(np.array(values))
    assert at_once.count == one_by_one.count
    assert at_once.max == one_by_one.max
    assert at_once.total == pytest.approx(one_by_one.total, rel=1e-9)
    for q in (0.0, 0.5, 0.95, 0.99, 1.0):
        assert at_once.quantile(q) == one_by_one.quantile(q)


def test_merged_histograms_are_their_union() -> None:
    rng = np.random.default_rng(3)
    parts = [LogHistogram() for _ in range(3)]
    everything = LogHistogram()
    for part in parts:
        values = rng.exponential(2.0, 500)
        part.add_many(values)
        everything.add_many(values)
    whole = LogHistogram.merged(parts)
    assert whole.describe() == pytest.approx(everything.describe())
