"""The number formats that more than one writer shares: for people (tables, messages, labels) and for CSV cells.

- `format_value`: a measured value, as `check`'s table, its JUnit XML and the pytest plugin show it: whole
  numbers with thousands separators, others from 1,000 up without decimals, smaller ones to 4 significant
  digits (`1,234,567`, `2,501`, `12.35`).
- `format_label`: the same, to 3 significant digits, for the labels in a figure.
- `format_plain`: a value a user gave or a search probed, in a message: whole numbers without a decimal
  point or separators, others to 6 significant digits (`1234567`, `12.5`).
- `csv_cell`: a value in a CSV cell that reads back as the same value: nothing for None, true/false, ints as
  ints, floats by repr (the shortest text that reads back as the same float).

Formats only one writer uses stay beside it: the story's times and delays (`narrative`), the columns of
timeline.csv and alarms.csv (`output`), the ticks of a figure (`plotting`, `sweep_plots`), the summary table
`cucm-sim run` prints (`cli.run`).
"""

from __future__ import annotations

from typing import Final

MEASURED_DIGITS: Final = 4
"""Significant digits of a measured value below 1,000 (`format_value`)."""
LABEL_DIGITS: Final = 3
"""Significant digits of a figure's label below 1,000 (`format_label`)."""
PLAIN_DIGITS: Final = 6
"""Significant digits of a fractional value in a message (`format_plain`)."""


def format_value(value: float) -> str:
    """A measured value for people: '1,234,567', '2,501', '12.35' (see the module docstring)."""
    return _readable(value, MEASURED_DIGITS)


def format_label(value: float) -> str:
    """A number for a figure's label: '1,234,567', '2,501', '12.3' (see the module docstring)."""
    return _readable(value, LABEL_DIGITS)


def _readable(value: float, significant_digits: int) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:  # also inf, whose text is 'inf' whatever the format
        return f"{value:,.0f}"
    return f"{value:.{significant_digits}g}"


def format_plain(value: float) -> str:
    """A number for a message: whole numbers without a decimal point, others to 6 significant digits."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.{PLAIN_DIGITS}g}"


def csv_cell(value: bool | int | float | str | None) -> str:
    """A value for a CSV cell: '' for None, 'true'/'false', ints as ints, floats by repr (shortest round trip)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(float(value))
    return str(value)
