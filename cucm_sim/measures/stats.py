"""Streaming statistics whose memory does not grow with the run.

`LogHistogram` keeps count, exact sum and max, and a histogram over log-spaced bins for quantiles:
with 200 bins per decade a quantile is within `QUANTILE_RELATIVE_RESOLUTION` (about +-0.58 %, half a bin)
of the true order statistic; count, mean and max are exact.  Values below `MIN_VALUE` (including the many
exact zeros of an idle server) fall in a zero bin and are reported as 0.  Pure Python + numpy; any unit,
as long as the caller is consistent.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

BINS_PER_DECADE = 200
MIN_VALUE = 1e-6
DECADES = 15

QUANTILE_RELATIVE_RESOLUTION: Final = 10 ** (1 / (2 * BINS_PER_DECADE)) - 1
"""How far a reported quantile may be from the exact order statistic, as a fraction of it (about 0.0058).

A quantile is reported as the geometric midpoint m of the bin [low, high] that holds the order statistic
(high / low = 10 ** (1 / BINS_PER_DECADE)), or the maximum if that is smaller; the exact value then lies in
[m / sqrt(high / low), m * sqrt(high / low)], so within this fraction of m, and of itself.  (Below
MIN_VALUE the error is absolute: at most MIN_VALUE, in the caller's unit.)"""
QUANTILE_RESOLUTION_TEXT: Final = f"±{QUANTILE_RELATIVE_RESOLUTION * 100:.2g} %"
"""The resolution for people: '±0.58 %'."""


class LogHistogram:
    """Count, mean, max and quantiles of a stream of non-negative values."""

    def __init__(self) -> None:
        self._counts = [0] * (BINS_PER_DECADE * DECADES + 1)
        self._log_min = math.log10(MIN_VALUE)
        self._last_bin = len(self._counts) - 1
        self._bulk_counts = np.zeros(len(self._counts), dtype=np.int64)  # what add_many recorded
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, value: float) -> None:
        """Record one value (>= 0)."""
        self.count += 1
        self.total += value
        if value > self.max:
            self.max = value
        if value < MIN_VALUE:
            self._counts[0] += 1
            return
        index = 1 + int((math.log10(value) - self._log_min) * BINS_PER_DECADE)
        self._counts[min(index, self._last_bin)] += 1

    def add_many(self, values: np.ndarray) -> None:
        """Record an array of values (>= 0): the same bins as `add`, in one pass."""
        if not len(values):
            return
        self.count += len(values)
        self.total += float(values.sum())
        self.max = max(self.max, float(values.max()))
        # Below MIN_VALUE lands below bin 1 and is clipped into the zero bin, as `add` does.
        index = np.log10(np.maximum(values, MIN_VALUE / 10))
        index -= self._log_min
        index *= BINS_PER_DECADE
        index += 1
        bins = np.clip(index.astype(np.int64), 0, self._last_bin)
        self._bulk_counts += np.bincount(bins, minlength=len(self._bulk_counts))

    @classmethod
    def merged(cls, parts: list[LogHistogram]) -> LogHistogram:
        """One histogram of all the values recorded in `parts`."""
        whole = cls()
        for part in parts:
            whole.count += part.count
            whole.total += part.total
            whole.max = max(whole.max, part.max)
            whole._counts = [a + b for a, b in zip(whole._counts, part._counts, strict=True)]
            whole._bulk_counts += part._bulk_counts
        return whole

    @property
    def mean(self) -> float | None:
        """Mean of the values, None when there are none."""
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 <= q <= 1, nearest rank), None when empty."""
        if not 0 <= q <= 1:
            raise ValueError(f"q must be in [0, 1], got {q}")
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        cumulative = np.cumsum(np.asarray(self._counts) + self._bulk_counts)
        index = int(np.searchsorted(cumulative, rank))
        if index == 0:
            return 0.0
        low = 10 ** (self._log_min + (index - 1) / BINS_PER_DECADE)
        high = 10 ** (self._log_min + index / BINS_PER_DECADE)
        return min(math.sqrt(low * high), self.max)

    def describe(self) -> dict[str, Any]:
        """{count, mean, p50, p95, p99, max} (values None when empty)."""
        return {
            "count": self.count,
            "mean": self.mean,
            "p50": self.quantile(0.50),
            "p95": self.quantile(0.95),
            "p99": self.quantile(0.99),
            "max": self.max if self.count else None,
        }
