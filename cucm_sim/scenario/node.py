"""The CUCM node's own sections: its router thread, its background sources, its misbehaving phones.

A scenario gives them once at the top; a cluster's node may override them (`cluster.ClusterNode`), and a
device pool has its own chatty phones.  Also the text types every section's names and descriptions use.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from cucm_sim.rules.priorities import Priority
from cucm_sim.rules.throttling import WholeNumber
from cucm_sim.scenario.base import Section, Window
from cucm_sim.scenario.distributions import Distribution, Exponential

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _no_control_characters(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(text: str) -> str:
        found = pattern.search(text)
        if found is not None:
            escaped = found.group().encode("unicode_escape").decode("ascii")
            raise ValueError(f"holds the control character {escaped} (character {found.start() + 1}); {what}")
        return text

    return AfterValidator(check)


OneLineName = Annotated[str, _no_control_characters(_CONTROL, "a name is one line of printable text")]
"""A name shown on one line (in a terminal, a file name, a plot title): no control character, tab and
newline included."""
Text = Annotated[str, _no_control_characters(_CONTROL_BUT_LINES, "text may hold newlines and tabs but no "
                                             "other control character")]


class NodeParams(Section):
    """The CUCM node: one SDL router thread serving four strict-priority queues, non-preemptive."""

    signal_service_time_ms: Distribution = Field(
        default_factory=lambda: Exponential(mean=0.16),
        description="Time the router thread spends on one SDL signal at full speed (ms). "
        "No Cisco source gives it; calibrate from perfmon (busy time / QueueSignalsProcessed).",
    )
    capacity_factor: float = Field(
        1.0, gt=0, le=10,
        description="Baseline speed of the router thread (1.0 = nominal); disturbances multiply it.",
    )
    restart_duration_s: float = Field(
        180, gt=0, le=3600,
        description="How long the CallManager service takes to restart after Code Red (s). Not documented "
        "by Cisco; a scenario input.",
    )


class BackgroundSource(Section):
    """A Poisson stream of SDL signals that are not modelled call by call."""

    name: OneLineName = Field("background", min_length=1, max_length=64, description="Label for this source.")
    signals_per_s: float = Field(ge=0, le=1e6, description="Mean arrival rate (signals/s).")
    priority: Priority = Field("normal", description="SDL queue the signals wait in.")


class ChattyDevices(Window):
    """Misbehaving SCCP phones that send far more events than normal between start_s and end_s."""

    count: WholeNumber = Field(ge=1, le=10_000, description="How many devices misbehave (taken from devices.count).")
    events_per_s: float = Field(gt=0, le=100_000, description="Events each sends per second, Poisson (events/s).")
    priority: Priority = Field("normal", description="SDL queue their signals wait in.")
