"""Call throttling: Cisco's service parameters and the Code Yellow / Code Red state machine.

Pure logic, no SimPy and no clock: the caller feeds one expected-delay sample per simulated second
with an explicit `now_s`.  The rules, as DOMAIN.md section 3 and Cisco's parameter help state them:

* The window is the last N one-second samples, N = System Throttle Sample Size (seconds).
  `average_expected_delay_ms` is the mean of that window, zeros included (the AverageExpectedDelay
  counter); while fewer than N samples exist it is the mean of those there are.
* Entry (from Normal), `sample_rule`:
  - ``consecutive_nonzero`` (default): the last N samples are all non-zero and their mean is
    **greater than** the entry latency.  A zero sample resets the run; ThrottlingSampleActivity is
    the length of the current non-zero run, capped at N.
  - ``rolling``: N samples exist and their mean (zeros included) is greater than the entry latency.
  - ``batch`` (the Managed Services Guide's ThrottlingSampleActivity help): ThrottlingSampleActivity
    counts the non-zero samples since the last zero sample or the last judged batch (0..N); a zero
    resets it; when it reaches N, the mean of those N samples (the window, then) is compared with the
    entry latency and the next non-zero sample starts a new batch at 1.  Entry is judged once per N
    non-zero samples, not every second.
* In Code Yellow, checked in this order every second:
  1. exit when the window mean is at or below the exit latency (entry x exit % / 100), `exit_rule`:
     ``at_or_below`` (default, "drops to 6 msec or lower") or ``below`` ("less than", "falls below");
  2. otherwise enter Code Red once ``now_s - entry time >= duration`` (never for 99999).
  The exit is judged every second on the window under every sample rule, `batch` included: Cisco's
  batch text is the help of the entry counter, its exit text speaks of the average (the counter) alone,
  and a batch of non-zero samples never completes on an idle node, which would then never leave.
* `delay_resolution`: ``exact`` (default) compares the mean itself; ``whole_ms`` compares whole
  milliseconds, as the alarms' unsigned-integer fields suggest: the mean rounded down (truncated, as
  converting a non-negative average to an unsigned integer does) against the entry latency and against
  the exit latency rounded down (entry x % / 100 in integer arithmetic: 21 ms x 45 % gives 9 ms).  So
  entry needs a mean of at least entry + 1 ms; `at_or_below` exits below exit + 1 ms, `below` below exit.
  The AverageExpectedDelay counter and the alarms keep the exact mean.
* Code Red holds until `reset()` (the node restarts).  N = 0 disables throttling: the machine
  never leaves Normal.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from cucm_sim.rules.alarms import CODE_RED_ENTRY, CODE_YELLOW_ENTRY, CODE_YELLOW_EXIT, Alarm

NEAR_TIE_RELATIVE: Final = 1e-9
"""Window sums this close (relative) to threshold x N are compared exactly, with fractions."""

NEVER_CODE_RED_MIN: Final = 99999
"""Cisco's special Code Yellow Duration value: stay in Code Yellow forever, never Code Red."""


def _whole_number(value: Any) -> Any:
    """A float with no fractional part (40.0, or 4e1 in YAML) as the int it is: a number is a number.  A
    fractional float is refused ('whole_number'); anything else is left to the strict int check."""
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise PydanticCustomError("whole_number", "{value} is not a whole number", {"value": value})
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
"""An int field of a scenario model (they validate strictly): an int, or a float with no fractional part;
never a string or a boolean."""


def _check_duration_min(value: int) -> int:
    if not (1 <= value <= 30 or value == NEVER_CODE_RED_MIN):
        raise ValueError(f"must be 1..30 minutes, or {NEVER_CODE_RED_MIN} (never Code Red)")
    return value


class ThrottleState(StrEnum):
    """The node's throttling state, as the CodeYellowEntryExit / CodeRedEntryExit counters show it."""

    NORMAL = "Normal"
    CODE_YELLOW = "CodeYellow"
    CODE_RED = "CodeRed"


class ThrottlingParams(BaseModel):
    """Cisco CallManager service parameters, section "Call Throttling" (CUCM 7 help: defaults, ranges)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    code_yellow_entry_latency_ms: WholeNumber = Field(
        20, ge=5, le=500,
        description="Code Yellow Entry Latency: largest acceptable average expected delay to handle an "
        "SDL signal; above it the node enters Code Yellow (ms).",
    )
    code_yellow_exit_latency_pct: WholeNumber = Field(
        40, ge=20, le=70,
        description="Code Yellow Exit Latency: exit threshold as a percentage of the entry latency (%).",
    )
    code_yellow_duration_min: Annotated[WholeNumber, AfterValidator(_check_duration_min)] = Field(
        5, ge=1, le=NEVER_CODE_RED_MIN,
        description="Code Yellow Duration: longest time in Code Yellow before Code Red (min); "
        "99999 means never Code Red.",
        json_schema_extra={"allowed": "1..30 or 99999"},
    )
    system_throttle_sample_size_s: WholeNumber = Field(
        10, ge=0, le=60,
        description="System Throttle Sample Size: number of one-second expected-delay samples averaged (s); "
        "0 disables call throttling.",
    )
    max_events_allowed: WholeNumber = Field(
        2000, ge=0, le=5000,
        description="Max Events Allowed: most events one SCCP device may send in 5 seconds; "
        "0 disables SCCP device throttling.",
    )
    sample_rule: Literal["consecutive_nonzero", "rolling", "batch"] = Field(
        "consecutive_nonzero",
        description="How the entry check reads the window: 'consecutive_nonzero' needs N consecutive "
        "non-zero samples (Cisco's ThrottlingSampleActivity); 'rolling' uses the mean of the last N; "
        "'batch' judges each completed batch of N non-zero samples once (Managed Services Guide).",
    )
    exit_rule: Literal["at_or_below", "below"] = Field(
        "at_or_below",
        description="When Code Yellow ends: the average 'at_or_below' the exit latency (Cisco's \"6 msec or "
        "lower\") or strictly 'below' it (\"less than\", \"falls below\").",
    )
    delay_resolution: Literal["exact", "whole_ms"] = Field(
        "exact",
        description="How the average is compared with the latencies: 'exact', or 'whole_ms' (the average "
        "and the exit latency rounded down to whole ms, as the alarms' integer fields suggest).",
    )

    @property
    def exit_latency_ms(self) -> float:
        """Code Yellow exit latency in ms: entry latency x exit percentage / 100 (20 ms x 40 % = 8.0)."""
        return self.code_yellow_entry_latency_ms * self.code_yellow_exit_latency_pct / 100

    @property
    def whole_exit_latency_ms(self) -> int:
        """The exit latency in whole ms, rounded down as `delay_resolution: whole_ms` compares it: entry x exit
        % / 100 in integer arithmetic (21 ms x 45 % = 9.45 ms gives 9)."""
        return self.code_yellow_entry_latency_ms * self.code_yellow_exit_latency_pct // 100

    @property
    def code_yellow_duration_s(self) -> float | None:
        """Code Yellow Duration in seconds, or None when Code Red is disabled (99999)."""
        if self.code_yellow_duration_min == NEVER_CODE_RED_MIN:
            return None
        return self.code_yellow_duration_min * 60.0

    @property
    def throttling_enabled(self) -> bool:
        """False when System Throttle Sample Size is 0."""
        return self.system_throttle_sample_size_s > 0


@dataclass(frozen=True)
class Threshold:
    """A comparison of the window's mean with a level: above it, or also at it when `inclusive`."""

    level_ms: Fraction
    inclusive: bool


def _thresholds(params: ThrottlingParams) -> tuple[Threshold, Threshold]:
    """(what the window's mean must be above to enter Code Yellow, what it must stay above to remain in
    Code Yellow), under the params' `exit_rule` and `delay_resolution`.

    `exact`: enter above the entry latency E; stay above the exit latency X (`at_or_below`) or at or
    above it (`below`).  `whole_ms`, with the mean m rounded down: floor(m) > E is m >= E + 1;
    floor(m) > floor(X) (`at_or_below` stays) is m >= floor(X) + 1; floor(m) >= floor(X) (`below`
    stays) is m >= floor(X).  So every reading is one exact comparison of the mean itself.
    """
    below = params.exit_rule == "below"
    if params.delay_resolution == "exact":
        # The exit latency as the exact rational of the float a user sees, so a sample equal to it, as
        # printed and as computed, is at it, not above it.
        return (Threshold(Fraction(params.code_yellow_entry_latency_ms), inclusive=False),
                Threshold(Fraction(params.exit_latency_ms), inclusive=below))
    return (Threshold(Fraction(params.code_yellow_entry_latency_ms + 1), inclusive=True),
            Threshold(Fraction(params.whole_exit_latency_ms + (0 if below else 1)), inclusive=True))


class ThrottleStateMachine:
    """Normal / Code Yellow / Code Red, fed one expected-delay sample per second (see module doc)."""

    def __init__(self, params: ThrottlingParams) -> None:
        self.params = params
        self._window_size = params.system_throttle_sample_size_s
        self._window: deque[float] = deque(maxlen=max(self._window_size, 1))
        self._entry_above, self._stay_above = _thresholds(params)
        self._nonzero_run = 0
        self._batch_count = 0
        self.state = ThrottleState.NORMAL
        self.code_yellow_entered_s: float | None = None
        self.total_code_yellow_entries = 0
        self.total_code_yellow_exits = 0
        self.total_code_red_entries = 0

    @property
    def average_expected_delay_ms(self) -> float:
        """Mean of the last N samples, zeros included (Cisco's AverageExpectedDelay), in ms."""
        if not self._window:
            return 0.0
        return math.fsum(self._window) / len(self._window)

    @property
    def throttling_sample_activity(self) -> int:
        """ThrottlingSampleActivity: the current run of non-zero samples capped at N, or under the `batch`
        rule the non-zero samples of the current batch (N at the second a batch is judged)."""
        return self._batch_count if self.params.sample_rule == "batch" else self._nonzero_run

    def reset(self) -> None:
        """Back to Normal with an empty window, as after a restart; cumulative totals are kept."""
        self._window.clear()
        self._nonzero_run = 0
        self._batch_count = 0
        self.state = ThrottleState.NORMAL
        self.code_yellow_entered_s = None

    def observe(self, now_s: float, expected_delay_ms: float) -> list[Alarm]:
        """Take the expected-delay sample (ms) for the second ending at `now_s` (s); return the alarms raised."""
        if not (math.isfinite(expected_delay_ms) and expected_delay_ms >= 0):
            raise ValueError(f"expected delay must be finite and non-negative, got {expected_delay_ms}")
        if self._window_size == 0 or self.state is ThrottleState.CODE_RED:
            return []
        self._window.append(expected_delay_ms)
        self._nonzero_run = min(self._nonzero_run + 1, self._window_size) if expected_delay_ms > 0 else 0
        self._batch_count = self._batch_count % self._window_size + 1 if expected_delay_ms > 0 else 0
        if self.state is ThrottleState.NORMAL:
            return self._maybe_enter_code_yellow(now_s)
        return self._code_yellow_step(now_s)

    def _entry_window_ready(self) -> bool:
        rule = self.params.sample_rule
        if rule == "consecutive_nonzero":
            return self._nonzero_run >= self._window_size
        if rule == "batch":
            return self._batch_count == self._window_size
        return len(self._window) >= self._window_size

    def _window_mean_above(self, threshold: Threshold) -> bool:
        """Is the window's mean above the threshold (or at it, when the threshold includes it)?"""
        sign = self._window_mean_sign(threshold.level_ms)
        return sign > 0 or (sign == 0 and threshold.inclusive)

    def _window_mean_sign(self, level_ms: Fraction) -> int:
        # Exact: the sign of (mean of the samples, as the floats they are) - level, with no rounding.
        # Rounded arithmetic decides ties and near-ties by the last bit (a window of samples all equal to
        # the threshold must not "exceed" it, yet sum / N can land one ulp above), so only a clear float
        # answer is trusted, and anything within 1e-9 is settled with fractions.
        count = len(self._window)
        total_ms = math.fsum(self._window)
        limit_ms = float(level_ms) * count
        if abs(total_ms - limit_ms) > NEAR_TIE_RELATIVE * max(limit_ms, 1.0):
            return 1 if total_ms > limit_ms else -1
        difference = sum(map(Fraction, self._window), Fraction(0)) - level_ms * count
        return (difference > 0) - (difference < 0)

    def _maybe_enter_code_yellow(self, now_s: float) -> list[Alarm]:
        if not (self._entry_window_ready() and self._window_mean_above(self._entry_above)):
            return []
        average_ms = self.average_expected_delay_ms
        self.state = ThrottleState.CODE_YELLOW
        self.code_yellow_entered_s = now_s
        self.total_code_yellow_entries += 1
        return [Alarm(CODE_YELLOW_ENTRY, now_s, self._common_params(average_ms))]

    def _code_yellow_step(self, now_s: float) -> list[Alarm]:
        assert self.code_yellow_entered_s is not None
        average_ms = self.average_expected_delay_ms
        time_in_yellow_s = now_s - self.code_yellow_entered_s
        if not self._window_mean_above(self._stay_above):
            self.state = ThrottleState.NORMAL
            self.code_yellow_entered_s = None
            self.total_code_yellow_exits += 1
            return [
                Alarm(CODE_YELLOW_EXIT, now_s, {
                    **self._common_params(average_ms), "TimeSpentInCodeYellow": time_in_yellow_s,
                })
            ]
        duration_s = self.params.code_yellow_duration_s
        if duration_s is not None and time_in_yellow_s >= duration_s:
            self.state = ThrottleState.CODE_RED
            self.total_code_red_entries += 1
            return [
                Alarm(CODE_RED_ENTRY, now_s, {
                    **self._common_params(average_ms),
                    "TimeSpentInCodeYellow": time_in_yellow_s,
                    "CodeYellowDuration": self.params.code_yellow_duration_min,
                })
            ]
        return []

    def _common_params(self, average_ms: float) -> dict[str, float | int | str]:
        return {
            "ExpectedAverageDelay": average_ms,
            "EntryLatency": self.params.code_yellow_entry_latency_ms,
            "ExitLatency": self.params.exit_latency_ms,
            "SampleSize": self._window_size,
            "TotalCodeYellowEntry": self.total_code_yellow_entries,
            "TotalCodeYellowExit": self.total_code_yellow_exits,
        }
