"""The per-second timeline: its column names, units and the record type that holds it.

One row per simulated second; row k describes the second ``(k - 1, k]`` and `t_s` is its end (k).
`state` is the throttling state in force *during* that second (the one that decided whether its calls
were rejected); the expected-delay sample and the average are taken at its end, so an alarm raised at
``t_s = k`` shows its new state from row k + 1 on.
Counts (`signals_processed`, `calls_attempted`, `calls_rejected`) are per that second; queue depths and
`registered_devices` are read at `t_s`; `skinny_devices_throttled` is cumulative (as the perfmon counter).
`QUEUE_PROCESSED_COLUMNS` split `signals_processed` by queue: a node's timeline holds them, timeline.csv
does not (its columns stay as users' scripts read them); signals_by_queue.csv does.
"""

from __future__ import annotations

from typing import Final

TIMELINE_COLUMNS: Final[tuple[str, ...]] = (
    "t_s",
    "state",
    "expected_delay_ms",
    "average_expected_delay_ms",
    "throttling_sample_activity",
    "queue_high",
    "queue_normal",
    "queue_low",
    "queue_lowest",
    "signals_processed",
    "calls_attempted",
    "calls_rejected",
    "skinny_devices_throttled",
    "registered_devices",
    "capacity_factor",
)

QUEUE_PROCESSED_COLUMNS: Final[tuple[str, ...]] = (
    "signals_processed_high",
    "signals_processed_normal",
    "signals_processed_low",
    "signals_processed_lowest",
)
"""Signals handled in the second per queue, highest first (they add up to `signals_processed`)."""
