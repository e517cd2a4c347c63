"""The figure of a sensitivity study: each metric under every reading of Cisco's ambiguous rules.

One panel per metric, the readings down the side (the same order in every panel, the scenario's own reading
on a shaded row).  Each replication is a small dot, the mean a bar; where the scenario expects a bound on the
metric, the allowed range is a green band and a reading that breaks the bound (in some replication) is drawn
in red.  So a bound that depends on the reading shows as a column of marks crossing the band's edge.  Like
`sweep_plots`, it draws on an Agg canvas with the object-oriented API and every text is plain text.
"""

from __future__ import annotations

import math
import textwrap
from typing import Final

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from cucm_sim.report.formats import format_label
from cucm_sim.report.sensitivity import SensitivityResult
from cucm_sim.report.sweep_plots import (
    CAPTION_CHARS_PER_IN,
    CAPTION_COLOUR,
    FIGURE_DPI,
    MEAN_COLOUR,
    SAFE_COLOUR,
    TRIPPED_COLOUR,
    PlainTextFigure,
    metric_style,
)

COLUMNS: Final = 3
PANEL_SIZE_IN: Final = (4.2, 3.4)
LABEL_WIDTH_IN: Final = 2.6
"""Room on the left for the readings' labels."""
OWN_ROW_COLOUR: Final = "#fff3c4"
SHORT: Final = {"consecutive_nonzero": "consecutive", "at_or_below": "<= exit", "below": "< exit",
                "whole_ms": "whole ms"}
"""Short forms of the switches' values for the row labels (the others are short already)."""


def reading_label(values: tuple[str, ...]) -> str:
    """A row label: 'consecutive, <= exit, exact'."""
    return ", ".join(SHORT.get(value, value) for value in values)


def sensitivity_figure(result: SensitivityResult) -> Figure:
    """Every metric of `result` under every reading (see the module doc)."""
    count = len(result.metrics)
    columns = min(COLUMNS, count)
    rows = math.ceil(count / columns)
    figure = PlainTextFigure(
        figsize=(PANEL_SIZE_IN[0] * columns + LABEL_WIDTH_IN, PANEL_SIZE_IN[1] * rows + 1.3),
        dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, sharey=True, squeeze=False)
    spare = None
    for index, ax in enumerate(axes.flat):
        if index < count:
            _panel(ax, result, index)
        else:
            ax.axis("off")
            spare = spare or ax
    labels = [reading_label(reading.values) for reading in result.readings]
    for row in axes:
        row[0].set_yticks(range(len(labels)), labels, fontsize=8)
    axes[0][0].invert_yaxis()
    seeds = (f"seed {result.seeds[0]}" if len(result.seeds) == 1
             else f"the same {len(result.seeds)} seeds ({result.seeds[0]} and derived)")
    figure.suptitle(f"{result.name}: every metric under the {len(result.readings)} readings of Cisco's throttling "
                    f"rules, {seeds} under each", fontsize=12, fontweight="bold")
    handles = [
        Line2D([], [], linestyle="none", marker="|", markersize=12, markeredgewidth=2.4, color=MEAN_COLOUR,
               label="mean over the replications"),
        Line2D([], [], linestyle="none", marker="o", markersize=4, color=MEAN_COLOUR, alpha=0.45,
               label="one replication"),
        Patch(facecolor=SAFE_COLOUR, alpha=0.15, label="expect: bound (allowed range)"),
        Line2D([], [], linestyle="none", marker="|", markersize=12, markeredgewidth=2.4, color=TRIPPED_COLOUR,
               label="the reading breaks the bound"),
        Patch(facecolor=OWN_ROW_COLOUR, label="the scenario's own reading"),
    ]
    if spare is not None:  # the legend in the first empty panel, else beside the panels
        spare.legend(handles=handles, loc="center", fontsize=9, frameon=False)
    else:
        figure.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    caption = ("Readings: sample_rule (consecutive = consecutive_nonzero, rolling, batch), exit_rule (<= exit: "
               "at_or_below, < exit: below), delay_resolution (exact, whole ms). A reading breaks a bound when "
               "any replication misses it, as in `cucm-sim check`.")
    figure.supxlabel("\n".join(textwrap.wrap(caption, int(figure.get_figwidth() * CAPTION_CHARS_PER_IN))),
                     fontsize=8, color=CAPTION_COLOUR)
    return figure


def _panel(ax: Axes, result: SensitivityResult, metric: int) -> None:
    path = result.metrics[metric]
    label, _unit, scale = metric_style(path)
    verdict = result.bound_of(path)
    own = result.readings.index(result.own_reading) if result.own_reading in result.readings else None
    if own is not None:
        ax.axhspan(own - 0.5, own + 0.5, color=OWN_ROW_COLOUR, zorder=0)
    missing = False
    for row in range(len(result.readings)):
        values = [value * scale for value in result.values[row][metric] if value is not None]
        missing |= len(values) < len(result.seeds)
        colour = MEAN_COLOUR if verdict is None or verdict.holds[row] else TRIPPED_COLOUR
        ax.plot(values, [row] * len(values), linestyle="none", marker="o", markersize=4, color=colour, alpha=0.45,
                zorder=2)
        mean = result.mean(row, metric)
        if mean is not None:
            ax.plot([mean * scale], [row], linestyle="none", marker="|", markersize=12, markeredgewidth=2.4,
                    color=colour, zorder=3)
    if verdict is not None:
        _bound_band(ax, verdict.bound.equals if verdict.bound.equals is not None else verdict.bound.min,
                    verdict.bound.equals if verdict.bound.equals is not None else verdict.bound.max, scale)
    title = label if verdict is None else \
        f"{label}\nexpect {verdict.bound.describe()}: holds under {verdict.describe()}"
    ax.set_title(title, fontsize=9, color=MEAN_COLOUR if verdict is None or verdict.verdict == "all"
                 else TRIPPED_COLOUR)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _position: format_label(value)))
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    if missing:
        ax.text(0.99, 0.01, "some runs: did not happen", transform=ax.transAxes, ha="right", va="bottom",
                fontsize=7, color=CAPTION_COLOUR)


def _bound_band(ax: Axes, low: float | None, high: float | None, scale: float) -> None:
    """The allowed range of a bound: a green band between its edges (an open side runs to the panel's edge)."""
    edges = [edge * scale for edge in (low, high) if edge is not None]
    if not edges:
        return
    left, right = ax.get_xlim()
    left, right = min(left, *edges), max(right, *edges)
    pad = (right - left) * 0.05 or 1.0
    left, right = left - pad, right + pad
    ax.axvspan(left if low is None else low * scale, right if high is None else high * scale,
               color=SAFE_COLOUR, alpha=0.15, zorder=0.5, linewidth=0)
    for edge in edges:
        ax.axvline(edge, color=SAFE_COLOUR, linewidth=1.0, zorder=0.6)
    ax.set_xlim(left, right)
