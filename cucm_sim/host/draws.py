"""Random numbers for the per-event host model, drawn from numpy in chunks and handed out one at a time.

A SimPy process asks for one interval or one cost at a time; asking numpy for one number at a time
costs a microsecond each, so each stream draws a chunk and hands it out.  The chunk size never changes
what a stream hands out: a stream's numbers are its generator's, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

CHUNK = 4096


class Drawn:
    """Numbers from `draw(n)` (n at a time), handed out one per call."""

    def __init__(self, draw: Callable[[int], np.ndarray]) -> None:
        self._draw = draw
        self._values: list[Any] = []
        self._next = 0

    def __call__(self) -> Any:
        if self._next == len(self._values):
            self._values = self._draw(CHUNK).tolist()
            self._next = 0
        value = self._values[self._next]
        self._next += 1
        return value


def exponentials(rng: np.random.Generator, mean: float) -> Drawn:
    """Exponential draws of mean `mean`, one at a time."""
    return Drawn(lambda size: rng.exponential(mean, size))


def choices(rng: np.random.Generator, n: int) -> Drawn:
    """Uniform choices in range(n), one at a time."""
    return Drawn(lambda size: rng.integers(n, size=size))
