"""The one confidence level cucm-sim states, and what is computed with it over replications.

`CONFIDENCE` (95 %) is the level of every interval and bound cucm-sim reports: the Student-t interval of a
mean over replications (`check`, a sweep's points.csv) and the bound on how often a value that a capacity
search judged safe trips (`safe_trip_rate_bound`).  Pure functions of the replications' values.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Final

CONFIDENCE: Final = 0.95


def mean_confidence_interval(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean of `values` and the half-width of its 95 % Student-t confidence interval (None for one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    from scipy import stats as scipy_stats  # slow to import: not in every worker a pool or Dask spawns

    t_quantile = float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, df=len(values) - 1))
    return mean, t_quantile * statistics.stdev(values) / math.sqrt(len(values))


def safe_trip_rate_bound(replications: int, confidence: float = CONFIDENCE) -> float:
    """The per-run trip probability below which a value judged safe lies, with `confidence`: 1 - (1-c)^(1/R).

    A value whose runs trip with probability p is judged safe (no trip in R runs) with probability (1-p)^R;
    (1-p)^R >= 1 - c only for p <= 1 - (1-c)^(1/R).
    """
    return float(1.0 - (1.0 - confidence) ** (1.0 / replications))
