"""Random-variate distributions used by scenarios (service times, holding times).

Each distribution is a frozen pydantic model selected by its `distribution` key; it knows its own
mean and variance (so tests can compare simulation with queueing theory) and draws arrays of variates
from a caller-owned `numpy.random.Generator`.  Units are the caller's: the field that holds the
distribution carries the unit suffix (`signal_service_time_ms`, `holding_time_s`).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class _Distribution(BaseModel):
    # strict: a number must be a number (an int is taken as a float), never a string or a boolean
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)

    mean: float = Field(gt=0, le=1e7, description="Mean of the distribution, in the unit of the field.")

    @property
    def variance(self) -> float:
        raise NotImplementedError

    @property
    def second_moment(self) -> float:
        """E[X^2] = variance + mean^2 (used by the Pollaczek-Khinchine and Cobham formulas)."""
        return self.variance + self.mean**2

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        raise NotImplementedError


class Exponential(_Distribution):
    """Exponential with the given mean (coefficient of variation 1)."""

    distribution: Literal["exponential"] = "exponential"

    @property
    def variance(self) -> float:
        return self.mean**2

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.exponential(self.mean, size)


class Deterministic(_Distribution):
    """Always exactly `mean`."""

    distribution: Literal["deterministic"] = "deterministic"

    @property
    def variance(self) -> float:
        return 0.0

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, self.mean)


class LogNormal(_Distribution):
    """Log-normal with the given mean and coefficient of variation `cv` (std / mean)."""

    distribution: Literal["lognormal"] = "lognormal"
    cv: float = Field(1.0, gt=0, le=20, description="Coefficient of variation: standard deviation / mean.")

    @property
    def variance(self) -> float:
        return (self.cv * self.mean) ** 2

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        sigma_sq = math.log1p(self.cv**2)
        mu = math.log(self.mean) - sigma_sq / 2
        return rng.lognormal(mu, math.sqrt(sigma_sq), size)


Distribution = Annotated[Exponential | Deterministic | LogNormal, Field(discriminator="distribution")]


class DrawBuffer:
    """Hands out one variate at a time from blocks drawn in bulk (per-variate numpy calls are slow)."""

    def __init__(self, distribution: _Distribution, rng: np.random.Generator, block: int = 4096) -> None:
        self._distribution = distribution
        self._rng = rng
        self._block = block
        self._values: list[float] = []
        self._index = 0

    def next(self) -> float:
        """The next variate."""
        if self._index >= len(self._values):
            self._values = self._distribution.sample(self._rng, self._block).tolist()
            self._index = 0
        value = self._values[self._index]
        self._index += 1
        return value
