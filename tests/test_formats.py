"""The shared number formats (`cucm_sim.report.formats`): what people read and what a CSV cell holds."""

from __future__ import annotations

import math

import pytest

from cucm_sim.report.formats import csv_cell, format_label, format_plain, format_value


@pytest.mark.parametrize(("value", "text"), [(0, "0"), (1234567, "1,234,567"), (0.0123449, "0.01234"),
                                             (12.3456, "12.35"), (2500.7, "2,501"), (3.0, "3")])
def test_format_value(value: float, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize(("value", "text"), [(1234567, "1,234,567"), (12.3456, "12.3"), (2500.7, "2,501"),
                                             (math.inf, "inf"), (-math.inf, "-inf"), (math.nan, "nan")])
def test_format_label(value: float, text: str) -> None:
    assert format_label(value) == text


@pytest.mark.parametrize(("value", "text"), [(1234567, "1234567"), (5.0, "5"), (12.5, "12.5"),
                                             (1 / 3, "0.333333"), (1e15, "1e+15")])
def test_format_plain(value: float, text: str) -> None:
    assert format_plain(value) == text


def test_csv_cells_read_back_as_the_same_values() -> None:
    assert [csv_cell(v) for v in (True, False, 4, 0.1, 1e-07, "batched", None)] == [
        "true", "false", "4", "0.1", "1e-07", "batched", ""]
    for value in (0.1 + 0.2, 1 / 3, 1e300, -2.5e-308):
        assert float(csv_cell(value)) == value
