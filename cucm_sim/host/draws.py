"""Random numbers for the per-event host model, drawn from numpy in chunks and handed out one at a time.

A SimPy process asks for one interval or one cost at a time; asking numpy for one number at a time
costs a microsecond each, so each stream draws a chunk and hands it out.  The chunk size never changes
what a stream hands out: a stream's numbers are its generator's, in order.
"""

from __future__ import annotations

import numpy as np

CHUNK = 4096


class Exponentials:
    """Exponential draws of a given mean, one at a time."""

    def __init__(self, rng: np.random.Generator, mean: float) -> None:
        self._rng = rng
        self._mean = mean
        self._values: list[float] = []
        self._next = 0

    def __call__(self) -> float:
        if self._next == len(self._values):
            self._values = self._rng.exponential(self._mean, CHUNK).tolist()
            self._next = 0
        value = self._values[self._next]
        self._next += 1
        return value


class Choices:
    """Uniform choices in range(n), one at a time."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self._rng = rng
        self._n = n
        self._values: list[int] = []
        self._next = 0

    def __call__(self) -> int:
        if self._next == len(self._values):
            self._values = self._rng.integers(self._n, size=CHUNK).tolist()
            self._next = 0
        value = self._values[self._next]
        self._next += 1
        return value
