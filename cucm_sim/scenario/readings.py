"""The readings of Cisco's ambiguous throttling rules, and a scenario under each of them.

Cisco's text leaves three things open (DOMAIN.md section 3, `rules.throttling`): how the entry check reads
its samples (`sample_rule`), whether an average exactly at the exit latency leaves Code Yellow
(`exit_rule`), and whether the averages are compared in whole milliseconds (`delay_resolution`).  A
`Reading` is one choice for each; `ALL_READINGS` is every combination, the default reading first (each
switch's allowed values are taken from `ThrottlingParams`, so a new value is a new reading here at once).

`with_reading` puts a scenario under a reading: the top-level `throttling` section, and every cluster node
whose own `throttling` override sets one of the switches (an override that does not set it follows the top
level).  Nothing else changes, the seed included, so every reading sees the same random numbers.
"""

from __future__ import annotations

import itertools
import typing
from dataclasses import dataclass
from typing import Final

from cucm_sim.rules.throttling import ThrottlingParams
from cucm_sim.scenario.schema import Scenario

SWITCHES: Final = ("sample_rule", "exit_rule", "delay_resolution")
"""The throttling keys whose reading of Cisco's text is open, in the order a reading's label names them."""


def _choices(key: str) -> tuple[str, ...]:
    """A switch's allowed values, its default first."""
    values = typing.get_args(ThrottlingParams.model_fields[key].annotation)
    default = ThrottlingParams.model_fields[key].default
    return (default, *(value for value in values if value != default))


CHOICES: Final = {key: _choices(key) for key in SWITCHES}


@dataclass(frozen=True)
class Reading:
    """One value for each switch, in `SWITCHES` order."""

    values: tuple[str, ...]

    @property
    def settings(self) -> dict[str, str]:
        """{switch: value}."""
        return dict(zip(SWITCHES, self.values, strict=True))

    @property
    def label(self) -> str:
        """'consecutive_nonzero / at_or_below / exact': the values, in `SWITCHES` order."""
        return " / ".join(self.values)

    @property
    def is_default(self) -> bool:
        """True for the reading a scenario gets when it sets none of the switches."""
        return self == DEFAULT_READING

    def overrides(self) -> tuple[str, ...]:
        """The reading as --set options of the top-level section: ('throttling.sample_rule=batch', ...)."""
        return tuple(f"throttling.{key}={value}" for key, value in self.settings.items())


DEFAULT_READING: Final = Reading(tuple(choices[0] for choices in CHOICES.values()))
ALL_READINGS: Final = tuple(Reading(values) for values in itertools.product(*CHOICES.values()))
"""Every combination of the switches' values (12), `DEFAULT_READING` first."""


def reading_of(throttling: ThrottlingParams) -> Reading:
    """The reading a throttling section makes."""
    return Reading(tuple(str(getattr(throttling, key)) for key in SWITCHES))


def with_reading(scenario: Scenario, reading: Reading) -> Scenario:
    """`scenario` under `reading` (see the module doc): the same scenario and seed, other switches."""
    settings = reading.settings
    update: dict[str, object] = {"throttling": scenario.throttling.model_copy(update=settings)}
    if scenario.cluster is not None:
        nodes = []
        for node in scenario.cluster.nodes:
            override = node.throttling
            if override is None or not (mine := {key: value for key, value in settings.items()
                                                 if key in override.model_fields_set}):
                nodes.append(node)
                continue
            nodes.append(node.model_copy(update={"throttling": override.model_copy(update=mine)}))
        update["cluster"] = scenario.cluster.model_copy(update={"nodes": nodes})
    return scenario.model_copy(update=update)
