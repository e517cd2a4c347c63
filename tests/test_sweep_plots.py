"""Sweep and capacity figures (`cucm_sim.report.sweep_plots`): what each draws, and that it renders cleanly.

Every figure is rendered to PNG through the Agg canvas it comes with; pytest turns warnings into errors,
so a figure that warns (a log axis with zeros, a layout that does not fit) fails here.  The tests look at
what was drawn: the values on the lines, the cells of the heatmaps and their text, labels with metric and
unit, missing values drawn as missing (never as zero), and the capacity figure's dots, threshold and knee.
"""

from __future__ import annotations

import ast
import io
import math
import pathlib

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection, QuadMesh
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from cucm_sim.report.sweep_plots import (
    MAX_LINES,
    CapacityPlot,
    PlotPoint,
    ProbePlot,
    capacity_figure,
    metric_style,
    sweep_figure,
)

CALLS = "load.calls_per_s"
LATENCY = "throttling.code_yellow_entry_latency_ms"
RULE = "throttling.sample_rule"
REJECTED = "calls_rejected_fraction"
P95 = "dial_tone_delay_ms.p95"


def render(figure: Figure) -> bytes:
    """The figure as PNG bytes (through the Agg canvas the figure carries)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    data = buffer.getvalue()
    assert data.startswith(b"\x89PNG")
    return data


def data_axes(figure: Figure) -> list[Axes]:
    """The visible panels, without colourbars."""
    return [ax for ax in figure.axes if ax.get_label() != "<colorbar>" and ax.get_visible()]


def all_text(figure: Figure) -> str:
    """Every text in the figure (titles, caption, labels, annotations), line breaks as spaces."""
    return " ".join(text.get_text().replace("\n", " ") for text in figure.findobj(Text))


def values(data: object) -> list[float]:
    """A line's x or y data as floats."""
    return [float(value) for value in np.asarray(data, dtype=float)]


def legend_texts(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None, "the panel has no legend"
    return [text.get_text() for text in legend.get_texts()]


def colourbars(figure: Figure) -> list[Axes]:
    return [ax for ax in figure.axes if ax.get_label() == "<colorbar>"]


def interval(mean: float, half_width: float) -> tuple[float, float, float]:
    return mean, mean - half_width, mean + half_width


def test_metric_style_takes_units_from_the_catalogue_and_shows_fractions_in_percent() -> None:
    assert metric_style(REJECTED) == ("calls_rejected_fraction (%)", "%", 100.0)
    assert metric_style(P95) == ("dial_tone_delay_ms.p95 (ms)", "ms", 1.0)
    assert metric_style("code_yellow_entries") == ("code_yellow_entries (count)", "count", 1.0)
    assert metric_style("time_in_state_s.CodeYellow")[1] == "s"


# ------------------------------------------------------------------ one axis
def test_one_axis_draws_means_with_a_confidence_band_and_missing_points_as_missing() -> None:
    calls = [2, 4, 8, 16, 32, 64, 128, 256]
    points = [
        PlotPoint((rate,), {REJECTED: interval(rate / 512, 0.01),
                            P95: None if rate == 16 else interval(rate * 3.0, 2.0)})
        for rate in calls if rate != 64  # 64 has no point at all (its runs failed)
    ]
    figure = sweep_figure([(CALLS, calls)], points, [REJECTED, P95], "flash crowd: load sweep", replications=5)
    render(figure)
    rejected_ax, p95_ax = data_axes(figure)
    assert figure.get_suptitle() == "flash crowd: load sweep"

    # Fractions in %: the line is the mean x 100, NaN (a gap, not a zero) where the point is missing.
    line = rejected_ax.get_lines()[0]
    expected = [math.nan if rate == 64 else rate / 512 * 100 for rate in calls]
    np.testing.assert_allclose(np.asarray(line.get_ydata(), dtype=float), expected)
    assert rejected_ax.get_ylabel() == "calls_rejected_fraction (%)"
    assert p95_ax.get_ylabel() == "dial_tone_delay_ms.p95 (ms)"
    assert "95th percentile" in p95_ax.get_title()
    assert rejected_ax.get_xlabel() == CALLS

    # The 95 % band is drawn (a filled polygon) and named in the legend.
    assert any(isinstance(collection, PolyCollection) for collection in rejected_ax.collections)
    assert "95 % CI" in legend_texts(rejected_ax)
    # Missing values are marked on the axis: 64 for both panels, 16 too for the p95.
    markers = [line for line in p95_ax.get_lines() if line.get_label() == "no value"]
    assert sorted(values(markers[0].get_xdata())) == [16.0, 64.0]

    # 2 .. 256 spans more than two decades: a log axis with a tick (and label) at every value.
    assert rejected_ax.get_xscale() == "log"
    assert [float(tick) for tick in rejected_ax.get_xticks()] == [float(rate) for rate in calls]
    caption = all_text(figure)
    assert "mean over 5 replications" in caption and "95 % Student-t confidence interval" in caption


def test_one_axis_with_single_runs_draws_line_and_markers_without_a_band() -> None:
    points = [PlotPoint((rate,), {P95: (rate * 2.0, None, None)}) for rate in (1, 2, 3)]
    figure = sweep_figure([(CALLS, [1, 2, 3])], points, [P95], "one run per point")
    render(figure)
    [ax] = data_axes(figure)
    assert not any(isinstance(collection, PolyCollection) for collection in ax.collections)
    assert ax.get_lines()[0].get_marker() == "o"
    assert ax.get_xscale() == "linear"
    np.testing.assert_allclose(np.asarray(ax.get_lines()[0].get_ydata(), dtype=float), [2.0, 4.0, 6.0])


def test_one_string_axis_is_categorical() -> None:
    rules = ["consecutive_nonzero", "rolling"]
    points = [PlotPoint((rule,), {REJECTED: interval(0.1 * (index + 1), 0.02)}) for index, rule in enumerate(rules)]
    figure = sweep_figure([(RULE, rules)], points, [REJECTED], "sample rule")
    render(figure)
    [ax] = data_axes(figure)
    assert list(ax.get_xticks()) == [0.0, 1.0]
    assert [label.get_text() for label in ax.get_xticklabels()] == rules
    assert ax.get_xlim() == (-0.5, 1.5)


def test_a_metric_with_no_value_anywhere_says_so() -> None:
    points = [PlotPoint((rate,), {"first_code_red_entry_s": None}) for rate in (1, 2)]
    figure = sweep_figure([(CALLS, [1, 2])], points, ["first_code_red_entry_s"], "no Code Red")
    render(figure)
    [ax] = data_axes(figure)
    assert "no values at any point" in [text.get_text() for text in ax.texts]


# ------------------------------------------------------------------ two axes
def test_two_axes_draw_an_annotated_heatmap_with_missing_cells_hatched() -> None:
    calls = [2, 4, 8]
    latencies = [20, 50]
    points = [
        PlotPoint((rate, latency), {P95: interval(rate * latency / 10, 1.5), REJECTED: interval(rate / 100, 0.01)})
        for rate in calls for latency in latencies if (rate, latency) != (8, 50)
    ]
    figure = sweep_figure([(CALLS, calls), (LATENCY, latencies)], points, [P95, REJECTED], "load x latency",
                          replications=3)
    render(figure)
    p95_ax, rejected_ax = data_axes(figure)
    [mesh] = [c for c in p95_ax.collections if isinstance(c, QuadMesh)]
    cells = np.ma.masked_invalid(np.asarray(mesh.get_array(), dtype=float).reshape(2, 3))
    # First axis across (columns), second up (rows); the missing cell is masked, not zero.
    assert cells[0].tolist() == [4.0, 8.0, 16.0]
    assert cells[1, :2].tolist() == [10.0, 20.0]
    assert np.ma.getmaskarray(cells)[1, 2]
    assert p95_ax.get_xlabel() == CALLS and p95_ax.get_ylabel() == LATENCY
    assert [label.get_text() for label in p95_ax.get_yticklabels()] == ["20", "50"]

    texts = {text.get_text(): text for text in p95_ax.texts}
    assert "4\n± 1.5" in texts and "20\n± 1.5" in texts
    assert "n/a" in texts and "0" not in texts
    hatched = [patch for patch in p95_ax.patches if isinstance(patch, Rectangle) and patch.get_hatch()]
    assert [(patch.get_x(), patch.get_y()) for patch in hatched] == [(1.5, 0.5)]
    # Readable text: white on the darkest (lowest) cell of viridis, black on the brightest (highest).
    assert to_hex(texts["4\n± 1.5"].get_color()) == "#ffffff"
    assert to_hex(texts["20\n± 1.5"].get_color()) == "#000000"

    labels = [bar.get_ylabel() for bar in colourbars(figure)]
    assert labels == ["dial_tone_delay_ms.p95 (ms)", "calls_rejected_fraction (%)"]
    assert "8" in {text.get_text().split("\n")[0] for text in rejected_ax.texts}  # 0.08 shown as 8 %
    caption = all_text(figure)
    assert "hatched grey" in caption and "3 replications" in caption


def test_heatmap_with_a_string_axis_and_values_spanning_decades() -> None:
    rules = ["consecutive_nonzero", "rolling"]
    calls = [1, 10, 100, 1000]
    points = [PlotPoint((rule, rate), {P95: (rate * (1 + index), None, None)})
              for index, rule in enumerate(rules) for rate in calls]
    figure = sweep_figure([(RULE, rules), (CALLS, calls)], points, [P95], "rule x load")
    render(figure)
    [ax] = data_axes(figure)
    assert [label.get_text() for label in ax.get_xticklabels()] == rules
    assert [label.get_text() for label in ax.get_yticklabels()] == ["1", "10", "100", "1,000"]
    [bar] = colourbars(figure)
    assert bar.get_ylabel() == "dial_tone_delay_ms.p95 (ms), log scale"
    assert "2,000" in [text.get_text() for text in ax.texts]


def test_heatmap_of_a_metric_with_no_values_has_no_colourbar() -> None:
    points = [PlotPoint((rate, latency), {"first_code_red_entry_s": None}) for rate in (1, 2) for latency in (20, 50)]
    figure = sweep_figure([(CALLS, [1, 2]), (LATENCY, [20, 50])], points, ["first_code_red_entry_s"], "none")
    render(figure)
    [ax] = data_axes(figure)
    assert not colourbars(figure)
    assert "no values at any point" in [text.get_text() for text in ax.texts]
    assert len([patch for patch in ax.patches if isinstance(patch, Rectangle) and patch.get_hatch()]) == 4


# ------------------------------------------------------------------ three axes
def test_three_axes_draw_one_line_per_combination_of_the_others() -> None:
    calls, latencies, rules = [2, 4, 8], [20, 50], ["consecutive_nonzero", "rolling"]
    points = [PlotPoint((rate, latency, rule), {REJECTED: interval(rate / latency / (2 if rule == "rolling" else 1),
                                                                   0.005)})
              for rate in calls for latency in latencies for rule in rules]
    figure = sweep_figure([(CALLS, calls), (LATENCY, latencies), (RULE, rules)], points, [REJECTED, P95],
                          "three axes")
    render(figure)
    rejected_ax, p95_ax = data_axes(figure)
    lines = [line for line in rejected_ax.get_lines() if not str(line.get_label()).startswith("_")]
    assert [line.get_label() for line in lines] == ["20, consecutive_nonzero", "20, rolling", "50, consecutive_nonzero",
                                                    "50, rolling"]
    np.testing.assert_allclose(np.asarray(lines[1].get_ydata(), dtype=float), [rate / 20 / 2 * 100 for rate in calls])
    [legend] = figure.legends
    assert legend.get_title().get_text() == f"{LATENCY}\n{RULE}"
    assert "no values at any point" in [text.get_text() for text in p95_ax.texts]
    assert "showing the first" not in all_text(figure)


def test_three_axes_with_many_combinations_are_capped_and_say_so() -> None:
    calls, latencies, windows = [2, 4], [5, 10, 20, 50, 100], [5, 10, 30]
    window = "throttling.system_throttle_sample_size_s"
    points = [PlotPoint((rate, latency, size), {REJECTED: (rate / latency, None, None)})
              for rate in calls for latency in latencies for size in windows]
    figure = sweep_figure([(CALLS, calls), (LATENCY, latencies), (window, windows)], points, [REJECTED], "capped")
    render(figure)
    [ax] = data_axes(figure)
    drawn = [line for line in ax.get_lines() if not str(line.get_label()).startswith("_")]
    assert len(drawn) == MAX_LINES
    caption = all_text(figure)
    assert f"showing the first {MAX_LINES} of 15 combinations of {LATENCY}, {window}" in caption


def test_bad_figure_requests_are_value_errors() -> None:
    with pytest.raises(ValueError, match="at least one axis"):
        sweep_figure([], [], [REJECTED], "x")
    with pytest.raises(ValueError, match="at least one metric"):
        sweep_figure([(CALLS, [1])], [], [], "x")
    with pytest.raises(ValueError, match="2 values for 1 axes"):
        sweep_figure([(CALLS, [1])], [PlotPoint((1, 2), {})], [REJECTED], "x")


# ------------------------------------------------------------------ capacity
def _probes(knee: float, values: list[float], replications: int = 3) -> tuple[ProbePlot, ...]:
    """Probes of a wait that grows with the value; replication r adds r x 1 % (so verdicts can differ)."""
    probes = []
    for order, value in enumerate(values, start=1):
        waits = tuple(value / knee * (1 + 0.01 * replication) for replication in range(replications))
        probes.append(ProbePlot(order, value, waits, tuple(wait > 1.0 for wait in waits)))
    return tuple(probes)


def _plot(probes: tuple[ProbePlot, ...], metric: str = "signal_wait_ms.mean", threshold: float = 1.0,
          safe: float | None = None, tripped: float | None = None) -> CapacityPlot:
    return CapacityPlot(title="Capacity search: test", key="load.background.0.signals_per_s", metric=metric,
                        condition=f"{metric} > {threshold:g}", threshold=threshold,
                        rule="A probe is safe when the condition is false in every one of its 3 replications.",
                        probes=probes, highest_safe=safe, lowest_tripped=tripped)


def test_capacity_figure_shows_every_replication_the_threshold_and_the_knee() -> None:
    probed = [1000.0, 7000.0, 4000.0, 5500.0, 6250.0, 5875.0, 5687.5, 5781.25, 5734.375]
    probes = _probes(5780.0, probed)
    safe = max(p.value for p in probes if p.safe)
    tripped = min(p.value for p in probes if not p.safe)
    figure = capacity_figure(_plot(probes, safe=safe, tripped=tripped))
    render(figure)
    overview, zoom = data_axes(figure)  # the knee is narrow: a second panel zooms in on the last probes
    dots = [line for line in overview.get_lines() if line.get_marker() == "o"]
    red = sum(len(values(line.get_xdata())) for line in dots if to_hex(line.get_color()) == "#d32f2f")
    green = sum(len(values(line.get_xdata())) for line in dots if to_hex(line.get_color()) == "#2e7d32")
    assert red == sum(sum(p.tripped_runs) for p in probes)
    assert green == sum(len(p.tripped_runs) - sum(p.tripped_runs) for p in probes)
    assert red > 0 and green > 0
    threshold = [line for line in overview.get_lines() if line.get_linestyle() == "--"]
    assert values(threshold[0].get_ydata()) == [1.0, 1.0]
    knee = [patch for patch in overview.patches if to_hex(patch.get_facecolor()) == "#ffb300"]
    assert knee, "the knee interval is shaded"
    assert overview.get_xlabel() == "load.background.0.signals_per_s"
    assert overview.get_ylabel() == "signal_wait_ms.mean (ms)"
    numbers = {text.get_text() for ax in (overview, zoom) for text in ax.texts}
    assert {str(order) for order in range(1, len(probed) + 1)} <= numbers
    assert "near the knee" in zoom.get_title()
    assert f"{safe:,.0f}" in overview.get_title()
    assert figure.get_suptitle() == "Capacity search: test"
    legend = legend_texts(overview)
    assert "threshold: signal_wait_ms.mean > 1" in legend
    assert any(text.startswith("knee: ") for text in legend)


def test_capacity_figure_of_a_search_that_never_trips_with_metrics_that_did_not_happen() -> None:
    probes = (ProbePlot(1, 1.0, (None, None), (False, False)), ProbePlot(2, 50.0, (None, 0.02), (False, False)))
    figure = capacity_figure(_plot(probes, metric=REJECTED, threshold=0.05, safe=50.0))
    render(figure)
    [ax] = data_axes(figure)
    assert ax.get_ylabel() == "calls_rejected_fraction (%)"
    threshold = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert values(threshold[0].get_ydata()) == [5.0, 5.0]  # 0.05 as 5 %
    hollow = [line for line in ax.get_lines() if line.get_marker() == "o" and line.get_markerfacecolor() == "none"]
    assert len(hollow) == 2  # one per probe with a run where the metric did not happen
    assert "never held up to 50" in ax.get_title()
    assert any("did not happen" in text for text in legend_texts(ax))


def test_capacity_figure_of_a_condition_true_at_lo() -> None:
    probes = _probes(1.0, [5.0, 50.0])
    figure = capacity_figure(_plot(probes, tripped=5.0))
    render(figure)
    [ax] = data_axes(figure)
    assert "already holds at the lowest value probed, 5" in ax.get_title()


def test_no_pyplot() -> None:
    """House rule: the object-oriented Figure API only, never pyplot's global state."""
    source = pathlib.Path(__file__).resolve().parent.parent / "cucm_sim" / "report" / "sweep_plots.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any("pyplot" in name for name in imported)
