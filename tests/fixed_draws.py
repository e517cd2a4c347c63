"""Service draws the tests choose: a 'distribution' that hands out a given list of values, then a constant."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cucm_sim.sdl.block import ServiceDraws


class Fixed:
    """A 'distribution' handing out a given list of draws (ms), then a constant."""

    def __init__(self, values_ms: Sequence[float], after_ms: float = 1.0) -> None:
        self.values_ms = list(values_ms)
        self.after_ms = after_ms
        self.mean = after_ms

    def sample(self, _rng: np.random.Generator, size: int) -> np.ndarray:
        taken, self.values_ms = self.values_ms[:size], self.values_ms[size:]
        return np.array(taken + [self.after_ms] * (size - len(taken)), dtype=float)


def fixed_draws(values_ms: Sequence[float] = ()) -> ServiceDraws:
    """Service draws of `values_ms` (ms), in order, then 1 ms each."""
    return ServiceDraws(Fixed(values_ms), np.random.default_rng(0))  # type: ignore[arg-type]
