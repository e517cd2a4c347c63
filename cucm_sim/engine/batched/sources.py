"""Arrival streams for the batched engine, read one block of time at a time (numpy, no SimPy).

Each stream owns its generator and hands out the arrivals in ``[t0_s, t1_s)`` for consecutive blocks.
What arrives depends neither on the node's state (that is decided later, per block) nor on how time is
cut into blocks: a stream draws its variates in one sequence and keeps what it read ahead, so the same
seed offers the same load to every parameter choice (common random numbers for what-if comparisons).
Every stream has the distribution of its per-signal counterpart in `model`: Poisson streams by
exponential gaps (a group of chatty devices is one Poisson stream, each event belonging to a uniformly
random member), keepalives at each device's fixed phase, call attempts by thinning or at even spacing, and
a recording's counts (`load.trace`) spread as `scenario.replay` says: each interval's whole count, its
arrivals uniform in it and sorted.
"""

from __future__ import annotations

import math

import numpy as np

from cucm_sim.scenario.profiles import CallRateProfile
from cucm_sim.scenario.replay import IntervalCounts

_EMPTY = np.empty(0)
RECORDED_CHUNK_INTERVALS = 256
"""Intervals of a recording drawn at once (fewer when they hold more than `RECORDED_CHUNK_ARRIVALS`)."""
RECORDED_CHUNK_ARRIVALS = 1 << 20


class PoissonTimes:
    """A Poisson stream of `rate_per_s` arrivals/s, active in ``[start_s, end_s)``."""

    def __init__(self, rate_per_s: float, rng: np.random.Generator, start_s: float = 0.0,
                 end_s: float = math.inf) -> None:
        self._mean_gap_s = 1.0 / rate_per_s
        self._rng = rng
        self._end_s = end_s
        self._last_s = start_s  # the latest arrival drawn (or the start)
        self._ahead_s = _EMPTY  # drawn, not yet handed out

    def take(self, t0_s: float, t1_s: float) -> np.ndarray:
        """Arrival times in ``[t0_s, t1_s)``, sorted; blocks must come in order."""
        limit_s = min(t1_s, self._end_s)
        parts = [self._ahead_s]
        while self._last_s < limit_s:
            count = int((limit_s - self._last_s) / self._mean_gap_s * 1.1) + 16
            times_s = self._last_s + np.cumsum(self._rng.exponential(self._mean_gap_s, count))
            parts.append(times_s)
            self._last_s = float(times_s[-1])
        drawn_s = parts[0] if len(parts) == 1 else np.concatenate(parts)
        inside = int(np.searchsorted(drawn_s, limit_s))
        self._ahead_s = drawn_s[inside:] if limit_s < self._end_s else _EMPTY
        return drawn_s[:inside]


class KeepaliveTimes:
    """Every device's keepalive, once per interval at the device's own phase (device ids, from `first`, with
    times)."""

    def __init__(self, count: int, interval_s: float, rng: np.random.Generator, first: int = 0) -> None:
        phases_s = rng.uniform(0.0, interval_s, count)
        order = np.argsort(phases_s, kind="stable")
        self._phases_s = phases_s[order]
        self._order = first + order
        self._interval_s = interval_s

    def take(self, t0_s: float, t1_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(times, devices) of the keepalives due in ``[t0_s, t1_s)``, in time order."""
        times, devices = [], []
        cycle = math.floor(t0_s / self._interval_s)
        while cycle * self._interval_s < t1_s:
            start_s = cycle * self._interval_s
            lo = int(np.searchsorted(self._phases_s, t0_s - start_s, side="left"))
            hi = int(np.searchsorted(self._phases_s, t1_s - start_s, side="left"))
            if hi > lo:
                times.append(start_s + self._phases_s[lo:hi])
                devices.append(self._order[lo:hi])
            cycle += 1
        if not times:
            return _EMPTY, np.empty(0, dtype=np.int64)
        if len(times) == 1:
            return times[0], devices[0]
        return np.concatenate(times), np.concatenate(devices)


class CallAttemptTimes:
    """Call attempts: Poisson (thinned to the rate profile) or evenly spaced at the current rate."""

    def __init__(
        self, calls: CallRateProfile, arrivals: str, rng: np.random.Generator, thinning_rng: np.random.Generator
    ) -> None:
        self._calls = calls
        self._poisson = arrivals == "poisson"
        self._rng = thinning_rng
        max_rate = calls.max_rate_per_s()
        self._constant = max(calls.profile_rates_per_s) == min(calls.profile_rates_per_s) and not calls.surges
        self._candidates = PoissonTimes(max_rate, rng) if self._poisson and max_rate > 0 else None
        self._max_rate = max_rate
        self._now_s = 0.0  # evenly spaced attempts: when the rate was last looked at

    def take(self, t0_s: float, t1_s: float) -> np.ndarray:
        """Attempt times in ``[t0_s, t1_s)``, sorted."""
        if self._max_rate <= 0:
            return _EMPTY
        if self._candidates is not None:
            times_s = self._candidates.take(t0_s, t1_s)
            if self._constant or not len(times_s):
                return times_s
            keep = self._rng.random(len(times_s)) * self._max_rate < self._calls.rates_per_s(times_s)
            return times_s[keep]
        attempts: list[float] = []
        while True:  # as the per-signal engine: wait 1/rate (1 s while the rate is 0), then attempt
            rate = self._calls.rate_per_s(self._now_s)
            following_s = self._now_s + (1.0 / rate if rate > 0 else 1.0)
            if following_s >= t1_s:
                return np.array(attempts)
            self._now_s = following_s
            if rate > 0:
                attempts.append(following_s)


class RecordedTimes:
    """A recording's arrivals (`replay.IntervalCounts`): per interval, its whole count (`replay.whole_count`),
    then that many uniform times in the interval, sorted.

    The intervals are drawn in chunks fixed by the recording alone (up to `RECORDED_CHUNK_INTERVALS` intervals
    or `RECORDED_CHUNK_ARRIVALS` arrivals), each chunk's fractions first and its placements after, so what
    arrives does not depend on how time is cut into blocks.
    """

    def __init__(self, counts: IntervalCounts, rng: np.random.Generator) -> None:
        self._starts_s = counts.starts_s
        self._lengths_s = counts.ends_s - counts.starts_s
        self._counts = counts.counts
        self._running = np.cumsum(counts.counts)
        self._rng = rng
        self._next = 0  # the first interval not drawn yet
        self._ahead_s = _EMPTY  # drawn, not yet handed out

    def take(self, t0_s: float, t1_s: float) -> np.ndarray:
        """Arrival times in ``[t0_s, t1_s)``, sorted; blocks must come in order."""
        parts = [self._ahead_s]
        while self._next < len(self._starts_s) and self._starts_s[self._next] < t1_s:
            parts.append(self._draw_chunk())
        drawn_s = parts[0] if len(parts) == 1 else np.concatenate(parts)
        inside = int(np.searchsorted(drawn_s, t1_s))
        self._ahead_s = drawn_s[inside:]
        return drawn_s[:inside]

    def _draw_chunk(self) -> np.ndarray:
        first = self._next
        before = self._running[first - 1] if first else 0.0
        last = int(np.searchsorted(self._running, before + RECORDED_CHUNK_ARRIVALS, side="right"))
        last = min(max(last, first + 1), first + RECORDED_CHUNK_INTERVALS, len(self._counts))
        self._next = last
        counts = self._counts[first:last]
        whole = np.floor(counts)
        fraction = counts - whole
        partial = fraction > 0
        if partial.any():
            whole[partial] += self._rng.random(int(partial.sum())) < fraction[partial]
        arrivals = whole.astype(np.int64)
        total = int(arrivals.sum())
        if not total:
            return _EMPTY
        times_s: np.ndarray = (np.repeat(self._starts_s[first:last], arrivals)
                               + self._rng.random(total) * np.repeat(self._lengths_s[first:last], arrivals))
        times_s.sort()  # the intervals do not overlap: sorting all sorts each
        return times_s
