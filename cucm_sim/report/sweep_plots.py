"""Figures for what-if sweeps and capacity searches: metrics against the values a study varied.

Besides `plotting` (one run's timeline), this is the only module that imports matplotlib.  It draws with
the object-oriented `Figure` API and attaches an Agg canvas to every figure it returns, so the caller
saves it with ``figure.savefig(path)``; pyplot's global state and the process-wide backend are never
touched.  It knows nothing of how the numbers were made: a sweep hands over one `PlotPoint` per grid
point (the mean and 95 % confidence interval of each metric), a capacity search a `CapacityPlot` (every
replication's value at every probe), so neither the sweep nor the capacity module is imported here.

What a figure shows depends on how many keys were varied: one key gives each metric's mean against the
key with a shaded 95 % confidence band; two give a heatmap per metric (first key across, second up) with
every cell annotated; three or more give lines against the first key, one per combination of the others.
Metric units come from `metrics.METRICS` (fractions are shown as %); a value that is missing (the metric
did not happen, or the runs failed) is drawn as missing, never as zero.  Every text is plain text: a `$` in
a scenario name, key or grid value is a dollar sign, never the start of math (`PlainTextFigure`).
"""

from __future__ import annotations

import itertools
import math
import textwrap
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import numpy as np
from matplotlib import rc_context
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.text import Text
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
from matplotlib.transforms import Bbox
from numpy.typing import NDArray

from cucm_sim.measures.metrics import CLUSTER_METRICS, HISTOGRAM_QUANTILES, METRICS, node_metric
from cucm_sim.measures.stats import QUANTILE_RESOLUTION_TEXT
from cucm_sim.report.formats import format_label

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType  # the names rcParams knows (matplotlib >= 3.8, for mypy only)

FIGURE_DPI: Final = 120
LINE_PANEL_SIZE_IN: Final = (5.6, 3.9)
HEATMAP_PANEL_SIZE_IN: Final = (5.8, 4.6)
CAPACITY_FIGURE_SIZE_IN: Final = (10.0, 6.2)

MAX_LINES: Final = 8
"""With three or more keys, at most this many combinations of the other keys are drawn (the first ones)."""

LOG_SPAN: Final = 100.0
"""A numeric axis whose positive values span more than this factor (two decades) is drawn logarithmic."""

MAX_TICK_LABELS: Final = 16
"""Axes with more values than this label only some of them."""

MAX_ANNOTATED_CELLS: Final = 400
"""Heatmaps with more cells than this are not annotated (the numbers would not fit)."""

MAX_CELLS_WITH_INTERVAL: Final = 36
"""Heatmaps with at most this many cells also print each cell's ± confidence half-width."""

LINE_COLOURS: Final = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
MISSING_FACE: Final = "#d9d9d9"
MISSING_EDGE: Final = "#8c8c8c"
HEATMAP_COLOURMAP: Final = "viridis"
SAFE_COLOUR: Final = "#2e7d32"
TRIPPED_COLOUR: Final = "#d32f2f"
MEAN_COLOUR: Final = "#263238"
THRESHOLD_COLOUR: Final = "#b36b00"
KNEE_COLOUR: Final = "#ffb300"
CAPTION_COLOUR: Final = "#444444"
CAPTION_CHARS_PER_IN: Final = 13
"""Caption characters (8 pt) per inch of figure width, for wrapping."""

PLAIN_TEXT_RC: Final[dict[RcKeyType, bool]] = {"text.parse_math": False, "text.usetex": False}
"""Settings under which matplotlib makes a Text plain: no mathtext between `$` signs, no LaTeX."""


class PlainTextFigure(Figure):
    """A Figure in which every text is drawn as plain text, whoever made it and whenever.

    Matplotlib reads text between two `$` as math, and a user's scenario name, grid key or grid value may
    hold dollars (`Cost $\\sqrt{x$ study` cannot be parsed, `$5 and $6` would come out as italic math).
    `parse_math=False` on each Text would not be enough: tick labels are made while the figure is drawn, by
    whoever saves it, and take the rcParams of that moment.  So drawing (and measuring, for a tight
    bounding box) turns math and LaTeX off on every Text in the figure and runs with `PLAIN_TEXT_RC`, so
    that the texts made meanwhile are plain too.  The user's matplotlibrc is otherwise untouched.
    """

    def draw(self, renderer: RendererBase) -> None:
        with _plain_text(self):
            super().draw(renderer)

    def get_tightbbox(self, renderer: RendererBase | None = None, *,
                      bbox_extra_artists: Iterable[Artist] | None = None) -> Bbox:
        with _plain_text(self):
            return super().get_tightbbox(renderer, bbox_extra_artists=bbox_extra_artists)


@contextmanager
def _plain_text(figure: Figure) -> Iterator[None]:
    with rc_context(PLAIN_TEXT_RC):
        for text in figure.findobj(Text):
            text.set_parse_math(False)
            text.set_usetex(False)
        yield


AggFigure: TypeAlias = Figure
"""What the functions here return: a matplotlib Figure with an Agg canvas attached (save it with `savefig`).
Modules that must not import matplotlib themselves (`capacity`) name the type through this alias."""

AxisValue = float | str
Stats = tuple[float, float | None, float | None]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PlotPoint:
    """One sweep point: its value on each axis (in axis order) and each metric's statistics.

    `stats` maps a metric path to (mean, ci95_low, ci95_high) over the point's replications, in the
    metric's own unit (fractions as fractions); the interval ends are None when there was only one
    replication, and the whole entry is None (or absent) when the metric has no value at this point.
    """

    values: tuple[AxisValue, ...]
    stats: Mapping[str, Stats | None]


@dataclass(frozen=True)
class ProbePlot:
    """One probe of a capacity search: the varied value and every replication's outcome there.

    `metric_values` holds the condition's metric in each replication (None when it did not happen),
    `tripped_runs` whether the condition held in that replication; `order` counts probes from 1 in
    the order they were made.
    """

    order: int
    value: float
    metric_values: tuple[float | None, ...]
    tripped_runs: tuple[bool, ...]

    @property
    def safe(self) -> bool:
        """True when the condition held in none of the replications."""
        return not any(self.tripped_runs)


@dataclass(frozen=True)
class CapacityPlot:
    """What a capacity figure shows: the search's key, condition and every probe, as plain data.

    `threshold` is the condition's number in the metric's unit; `condition` its text
    ("code_yellow_entries > 0"); `rule` the confidence rule in words (for the caption);
    `highest_safe` / `lowest_tripped` the final bracket (None when the search never found one).
    """

    title: str
    key: str
    metric: str
    condition: str
    threshold: float
    rule: str
    probes: tuple[ProbePlot, ...]
    highest_safe: float | None
    lowest_tripped: float | None


@dataclass(frozen=True)
class _MetricStyle:
    """How a metric is shown: axis label, unit as displayed and the factor from its own unit."""

    path: str
    unit: str
    scale: float
    title: str

    @property
    def label(self) -> str:
        return f"{self.path} ({self.unit})" if self.unit else self.path


def metric_style(path: str) -> tuple[str, str, float]:
    """(axis label, displayed unit, scale factor) of metric `path`: fractions are shown in % (scale 100)."""
    style = _style(path)
    return style.label, style.unit, style.scale


def _style(path: str) -> _MetricStyle:
    per_node = node_metric(path)
    own = per_node[1] if per_node else path  # a cluster node's metric has the node metric's unit
    metric = next((metric for metric in (*METRICS, *CLUSTER_METRICS) if metric.path == own), None)
    if metric is None:
        return _MetricStyle(path, "", 1.0, path)
    if metric.unit == "fraction":
        return _MetricStyle(path, "%", 100.0, _sentence(metric.description))
    return _MetricStyle(path, metric.unit, 1.0, _sentence(metric.description))


def _sentence(description: str) -> str:
    # The catalogue's descriptions are fragments ("95th percentile of ..."): capitalise, drop the tail
    # after ';' (conventions for None, said in the caption instead).
    text = description.split(";")[0].strip()
    return text[:1].upper() + text[1:]


# ------------------------------------------------------------------ sweep figures
def sweep_figure(
    axes: Sequence[tuple[str, Sequence[AxisValue]]],
    points: Sequence[PlotPoint],
    metrics: Sequence[str],
    title: str,
    *,
    replications: int | None = None,
) -> Figure:
    """One panel per metric of a sweep over `axes` (key, values in grid order); returns the figure.

    One key: each metric's mean against it with a shaded 95 % confidence band.  Two keys: a heatmap per
    metric, the first key across and the second up, every cell annotated with its mean; hatched grey
    cells have no value.  Three or more: lines against the first key, one per combination of the others
    (at most `MAX_LINES`; the figure says when it shows fewer).  Numeric values go on a linear axis, or
    a logarithmic one when they are positive and span more than two decades; any string makes an axis
    categorical.  `replications` (runs per point), when given, is named in the caption.  A point may be
    missing from `points`, and a metric from a point's stats: both are drawn as missing.  Raises
    ValueError when there are no axes or metrics, or a point's values do not match the axes.
    """
    if not axes:
        raise ValueError("a sweep figure needs at least one axis")
    if not metrics:
        raise ValueError("a sweep figure needs at least one metric")
    for point in points:
        if len(point.values) != len(axes):
            raise ValueError(f"point {point.values} has {len(point.values)} values for {len(axes)} axes")
    by_values = {tuple(point.values): point for point in points}
    heatmap = len(axes) == 2
    columns = 1 if len(metrics) == 1 else 2 if heatmap or len(metrics) in (2, 4) else 3
    rows = math.ceil(len(metrics) / columns)
    panel_w_in, panel_h_in = HEATMAP_PANEL_SIZE_IN if heatmap else LINE_PANEL_SIZE_IN
    extra_w_in = 2.2 if len(axes) >= 3 else 0.0  # the shared legend of line combinations
    figure = PlainTextFigure(
        figsize=(panel_w_in * columns + extra_w_in, panel_h_in * rows + 0.9), dpi=FIGURE_DPI, layout="constrained"
    )
    FigureCanvasAgg(figure)
    panels = figure.subplots(rows, columns, squeeze=False).ravel()
    notes: list[str] = []
    for ax, metric in zip(panels, metrics, strict=False):
        style = _style(metric)
        if len(axes) == 1:
            _line_panel(ax, axes[0], [((), "")], by_values, style, single=True)
        elif heatmap:
            _heatmap_panel(figure, ax, axes[0], axes[1], by_values, style)
        else:
            drawn, total = _combinations_panel(ax, axes, by_values, style)
            if ax is panels[0] and drawn < total:
                notes.append(f"showing the first {drawn} of {total} combinations of "
                             f"{', '.join(key for key, _ in axes[1:])}")
    for ax in panels[len(metrics):]:
        ax.set_visible(False)
    if len(axes) >= 3:
        handles, labels = panels[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside right upper", fontsize=8, title="\n".join(
            key for key, _ in axes[1:]), title_fontsize=8, alignment="left")
    figure.suptitle(title, fontsize=13, fontweight="bold")
    caption_chars = int(figure.get_figwidth() * CAPTION_CHARS_PER_IN)
    quantiles = [metric for metric in metrics if metric in HISTOGRAM_QUANTILES]
    figure.supxlabel(_sweep_caption(len(axes), replications, quantiles, notes, caption_chars), fontsize=8,
                     color=CAPTION_COLOUR)
    return figure


def _sweep_caption(axis_count: int, replications: int | None, quantiles: Sequence[str], notes: Sequence[str],
                   width_chars: int) -> str:
    runs = ("the replications" if replications is None
            else f"{replications} replication{'' if replications == 1 else 's'}")
    if axis_count == 2:
        shown = (f"Each cell: mean over {runs} of its grid point (± half-width of the 95 % Student-t confidence "
                 "interval of the mean, on small grids); hatched grey cells (n/a): no value (the metric did not "
                 "happen or the runs failed).")
    else:
        shown = (f"Line: mean over {runs} per grid point; shaded band: 95 % Student-t confidence interval of the "
                 "mean (none for a single run); x markers on the axis: no value (did not happen or failed).")
    resolution = [_resolution_sentence(quantiles) + " The intervals do not include it."] if quantiles else []
    return "\n".join(textwrap.wrap(" ".join([shown, *resolution, *(f"Note: {note}." for note in notes)]),
                                   width_chars))


def _resolution_sentence(quantiles: Sequence[str]) -> str:
    """The resolution of the histogram that percentiles are read from (a confidence interval leaves it out)."""
    return (f"{', '.join(quantiles)}: read from a log histogram, each value within {QUANTILE_RESOLUTION_TEXT} "
            "of the exact one.")


@dataclass(frozen=True)
class _Axis:
    """A sweep axis laid out for drawing: where each value goes and how it is labelled."""

    key: str
    values: tuple[AxisValue, ...]
    positions: FloatArray
    categorical: bool
    log: bool

    @property
    def labels(self) -> list[str]:
        return [format_label(value) if isinstance(value, int | float) else str(value) for value in self.values]


def _layout_axis(key: str, values: Sequence[AxisValue]) -> _Axis:
    numeric = bool(values) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if not numeric:
        return _Axis(key, tuple(values), np.arange(len(values), dtype=np.float64), True, False)
    numbers = np.asarray(values, dtype=np.float64)
    log = bool(np.all(numbers > 0)) and float(numbers.max()) > LOG_SPAN * float(numbers.min())
    return _Axis(key, tuple(values), numbers, False, log)


def _apply_x_axis(ax: Axes, axis: _Axis) -> None:
    if axis.log:
        ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())
    shown = _thinned(len(axis.values))
    ax.xaxis.set_major_locator(FixedLocator(axis.positions[shown].tolist()))
    ax.xaxis.set_major_formatter(FuncFormatter(_label_at(axis, shown)))
    if axis.categorical:
        ax.set_xlim(-0.5, len(axis.values) - 0.5)
    labels = [axis.labels[i] for i in shown]
    if sum(len(label) for label in labels) > 48:
        ax.tick_params(axis="x", labelrotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    ax.set_xlabel(axis.key)


def _thinned(count: int) -> list[int]:
    """Indices of the values that get a tick label: all of a few, every k-th (and the last) of many."""
    if count <= MAX_TICK_LABELS:
        return list(range(count))
    step = math.ceil(count / MAX_TICK_LABELS)
    return sorted({*range(0, count, step), count - 1})


def _label_at(axis: _Axis, shown: Sequence[int]) -> Any:
    labels = {float(axis.positions[i]): axis.labels[i] for i in shown}

    def label(position: float, _index: object = None) -> str:
        return labels.get(float(position), "")

    return label


def _series(
    axis: _Axis, fixed: tuple[AxisValue, ...], by_values: Mapping[tuple[AxisValue, ...], PlotPoint],
    style: _MetricStyle,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(mean, low, high) along `axis` with the other axes at `fixed` (NaN where missing), displayed unit."""
    mean, low, high = (np.full(len(axis.values), np.nan) for _ in range(3))
    for index, value in enumerate(axis.values):
        point = by_values.get((value, *fixed))
        stats = point.stats.get(style.path) if point is not None else None
        if stats is None:
            continue
        mean[index] = stats[0] * style.scale
        if stats[1] is not None and stats[2] is not None:
            low[index], high[index] = stats[1] * style.scale, stats[2] * style.scale
    return mean, low, high


def _line_panel(
    ax: Axes,
    axis_spec: tuple[str, Sequence[AxisValue]],
    lines: Sequence[tuple[tuple[AxisValue, ...], str]],
    by_values: Mapping[tuple[AxisValue, ...], PlotPoint],
    style: _MetricStyle,
    single: bool,
) -> None:
    """Mean and 95 % band of `style`'s metric against the axis, one line per (fixed values, label)."""
    axis = _layout_axis(*axis_spec)
    means: list[float] = []
    everything: list[float] = []
    missing_x: set[float] = set()
    for index, (fixed, label) in enumerate(lines):
        colour = LINE_COLOURS[0] if single else LINE_COLOURS[index % len(LINE_COLOURS)]
        mean, low, high = _series(axis, fixed, by_values, style)
        ax.plot(axis.positions, mean, color=colour, marker="o", markersize=4.5, linewidth=1.6,
                label=label or "mean")
        has_interval = np.isfinite(low) & np.isfinite(high)
        if np.any(has_interval):
            ax.fill_between(axis.positions, np.where(has_interval, low, np.nan), np.where(has_interval, high, np.nan),
                            color=colour, alpha=0.18, linewidth=0, label="95 % CI" if single else None)
            # A point with no neighbour on the line has no band to speak of: give it an error bar.
            isolated = has_interval & ~_has_finite_neighbour(mean)
            if np.any(isolated):
                ax.errorbar(axis.positions[isolated], mean[isolated],
                            yerr=[mean[isolated] - low[isolated], high[isolated] - mean[isolated]],
                            fmt="none", ecolor=colour, elinewidth=1.0, capsize=3)
        means += [float(v) for v in mean if np.isfinite(v)]
        everything += [float(v) for v in np.concatenate([mean, low, high]) if np.isfinite(v)]
        missing_x.update(float(x) for x, m in zip(axis.positions, mean, strict=True) if not np.isfinite(m))
    if missing_x:
        ax.plot(sorted(missing_x), [0.02] * len(missing_x), linestyle="none", marker="x", color=MISSING_EDGE,
                markersize=6, transform=ax.get_xaxis_transform(), clip_on=False, label="no value" if single else None)
    _apply_x_axis(ax, axis)
    _apply_value_axis(ax, means, everything, style)
    ax.set_title("\n".join(textwrap.wrap(style.title, 60)), fontsize=9.5)
    ax.grid(True, color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    if not means:
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no values at any point", transform=ax.transAxes, ha="center", va="center",
                color=CAPTION_COLOUR)
    elif single:
        ax.legend(fontsize=8, framealpha=0.85)


def _has_finite_neighbour(values: FloatArray) -> NDArray[np.bool_]:
    finite = np.isfinite(values)
    left = np.concatenate(([False], finite[:-1]))
    right = np.concatenate((finite[1:], [False]))
    return np.asarray(left | right)


def _apply_value_axis(ax: Axes, means: Sequence[float], everything: Sequence[float], style: _MetricStyle) -> None:
    """Label the y axis with metric and unit; logarithmic when the positive means span > 2 decades."""
    ax.set_ylabel(style.label)
    if not means:
        return
    low, high = min(means), max(means)
    if low > 0 and high > LOG_SPAN * low:
        ax.set_yscale("log")
        # Band ends at or below zero cannot be drawn on a log axis: keep the view on the means.
        ax.set_ylim(low / 2, max(everything) * 1.5)
    elif low >= 0 and low <= 0.5 * high:
        ax.set_ylim(bottom=0.0, top=max(everything) * 1.08 if max(everything) > 0 else 1.0)
    ax.yaxis.set_major_formatter(FuncFormatter(_tick))


def _combinations_panel(
    ax: Axes, axes: Sequence[tuple[str, Sequence[AxisValue]]],
    by_values: Mapping[tuple[AxisValue, ...], PlotPoint], style: _MetricStyle,
) -> tuple[int, int]:
    """Lines against the first axis, one per combination of the others (with any value); (drawn, total)."""
    combinations = [
        combination for combination in itertools.product(*(values for _, values in axes[1:]))
        if any(tuple((value, *combination)) in by_values for value in axes[0][1])
    ]
    lines = [(combination, ", ".join(_value_text(v) for v in combination)) for combination in combinations]
    _line_panel(ax, axes[0], lines[:MAX_LINES], by_values, style, single=False)
    return min(len(lines), MAX_LINES), len(lines)


def _value_text(value: AxisValue) -> str:
    return format_label(value) if isinstance(value, int | float) else str(value)


def _heatmap_panel(
    figure: Figure, ax: Axes, x_spec: tuple[str, Sequence[AxisValue]], y_spec: tuple[str, Sequence[AxisValue]],
    by_values: Mapping[tuple[AxisValue, ...], PlotPoint], style: _MetricStyle,
) -> None:
    """A heatmap of the metric's mean: x axis across, y axis up; missing cells hatched grey."""
    x_keys, x_values = x_spec
    y_keys, y_values = y_spec
    mean = np.full((len(y_values), len(x_values)), np.nan)
    half_width = np.full_like(mean, np.nan)
    for (row, y_value), (column, x_value) in itertools.product(enumerate(y_values), enumerate(x_values)):
        point = by_values.get((x_value, y_value))
        stats = point.stats.get(style.path) if point is not None else None
        if stats is None:
            continue
        mean[row, column] = stats[0] * style.scale
        if stats[1] is not None and stats[2] is not None:
            half_width[row, column] = (stats[2] - stats[1]) / 2 * style.scale
    finite = mean[np.isfinite(mean)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    # Colours on a log scale when the values span more than two decades (delays near saturation).
    log_colours = low > 0 and high > LOG_SPAN * low
    norm: Normalize = LogNorm(vmin=low, vmax=high) if log_colours else Normalize(
        vmin=low, vmax=high if high > low else low + 1.0)
    edges_x = np.arange(len(x_values) + 1) - 0.5
    edges_y = np.arange(len(y_values) + 1) - 0.5
    mesh = ax.pcolormesh(edges_x, edges_y, np.ma.masked_invalid(mean), cmap=HEATMAP_COLOURMAP, norm=norm)
    if finite.size:
        colourbar = figure.colorbar(mesh, ax=ax, pad=0.02)
        colourbar.set_label(style.label + (", log scale" if log_colours else ""), fontsize=9)
        colourbar.ax.yaxis.set_major_formatter(FuncFormatter(_tick))

    cells = mean.size
    annotate = cells <= MAX_ANNOTATED_CELLS
    with_interval = cells <= MAX_CELLS_WITH_INTERVAL
    font_pt = 9.0 if cells <= 36 else 7.5 if cells <= 100 else 6.0
    colourmap = mesh.get_cmap()
    for row, column in itertools.product(range(len(y_values)), range(len(x_values))):
        value = mean[row, column]
        if not np.isfinite(value):
            ax.add_patch(Rectangle((column - 0.5, row - 0.5), 1.0, 1.0, facecolor=MISSING_FACE,
                                   edgecolor=MISSING_EDGE, hatch="///", linewidth=0.0))
            if annotate:
                ax.text(column, row, "n/a", ha="center", va="center", fontsize=font_pt - 1.0,
                        color=CAPTION_COLOUR)
            continue
        if not annotate:
            continue
        text = format_label(float(value))
        if with_interval and np.isfinite(half_width[row, column]):
            text += f"\n± {format_label(float(half_width[row, column]))}"
        ax.text(column, row, text, ha="center", va="center", fontsize=font_pt,
                color=_text_colour_on(colourmap(norm(value))))
    x_axis = _Axis(x_keys, tuple(x_values), np.arange(len(x_values), dtype=np.float64), True, False)
    y_axis = _Axis(y_keys, tuple(y_values), np.arange(len(y_values), dtype=np.float64), True, False)
    _apply_x_axis(ax, x_axis)
    shown_y = _thinned(len(y_values))
    ax.yaxis.set_major_locator(FixedLocator(y_axis.positions[shown_y].tolist()))
    ax.yaxis.set_major_formatter(FuncFormatter(_label_at(y_axis, shown_y)))
    ax.set_ylim(-0.5, len(y_values) - 0.5)
    ax.set_ylabel(y_keys)
    ax.set_title("\n".join(textwrap.wrap(style.title, 60)), fontsize=9.5)
    if not finite.size:
        ax.text(0.5, 0.5, "no values at any point", transform=ax.transAxes, ha="center", va="center",
                color=CAPTION_COLOUR, bbox={"facecolor": "white", "edgecolor": MISSING_EDGE})


def _text_colour_on(rgba: tuple[float, float, float, float]) -> str:
    """Black on light cells, white on dark ones (relative luminance of the cell colour)."""
    red, green, blue = (_linear(channel) for channel in rgba[:3])
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return "black" if luminance > 0.2 else "white"


def _linear(channel: float) -> float:
    return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4


# ------------------------------------------------------------------ capacity figure
def capacity_figure(plot: CapacityPlot) -> Figure:
    """The probes of a capacity search: the condition's metric against the varied value.

    Every replication is a dot (red: the condition held, green: it did not), a metric that did not
    happen a hollow mark on the bottom edge; a dash marks each probe's mean and a grey line joins the
    means in value order; the number beside each probe is the order it was made in.  The threshold is
    a horizontal line, the knee (between the highest safe and the lowest tripped probe) a shaded band.
    When the last probes crowd around a knee much narrower than the range, a second panel zooms in on them.
    """
    style = _style(plot.metric)
    zoom = _zoom_window(plot)
    figure = PlainTextFigure(figsize=CAPACITY_FIGURE_SIZE_IN if zoom is None else (14.0, 6.2), dpi=FIGURE_DPI,
                             layout="constrained")
    FigureCanvasAgg(figure)
    if zoom is None:
        ax = figure.subplots()
        numbered = {probe.order for probe in plot.probes}
    else:
        ax, zoom_ax = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.45, 1.0]})
        inside = {probe.order for probe in plot.probes if zoom[0] <= probe.value <= zoom[1]}
        numbered = {probe.order for probe in plot.probes} - inside
    any_missing = _draw_probes(ax, plot, style, numbered)
    # Linear x even over decades: a bisection spaces its probes evenly, and the zoom panel shows the crowd.
    ax.xaxis.set_major_formatter(FuncFormatter(_tick))
    plotted = [plot.threshold * style.scale, *(
        v * style.scale for probe in plot.probes for v in probe.metric_values if v is not None)]
    if min(plotted) > 0 and max(plotted) > LOG_SPAN * min(plotted):
        ax.set_yscale("log")
    elif min(plotted) >= 0:
        ax.set_ylim(bottom=0.0, top=max(max(plotted) * 1.1, 1e-9))
    ax.yaxis.set_major_formatter(FuncFormatter(_tick))
    ax.set_title("\n".join(textwrap.wrap(_capacity_headline(plot), 90)), fontsize=10)

    if zoom is not None:
        _draw_probes(zoom_ax, plot, style, inside)
        zoom_ax.set_xlim(*zoom)
        near = [v * style.scale for probe in plot.probes if probe.order in inside
                for v in probe.metric_values if v is not None]
        low, high = min([*near, plot.threshold * style.scale]), max([*near, plot.threshold * style.scale])
        pad = (high - low) * 0.12 or abs(high) * 0.1 or 1.0
        zoom_ax.set_ylim(low - pad, high + pad)
        zoom_ax.xaxis.set_major_formatter(FuncFormatter(_tick))
        zoom_ax.yaxis.set_major_formatter(FuncFormatter(_tick))
        zoom_ax.set_title(f"near the knee: probes {', '.join(str(order) for order in sorted(inside))}", fontsize=10)
        ax.axvspan(*zoom, facecolor="none", edgecolor=CAPTION_COLOUR, linestyle=":", linewidth=1.0, zorder=1)
        ax.annotate("zoomed at right", xy=(zoom[1], 0.08), xycoords=ax.get_xaxis_transform(), xytext=(4, 0),
                    textcoords="offset points", ha="left", va="bottom", fontsize=8, color=CAPTION_COLOUR)

    handles: list[Any] = [
        Line2D([], [], linestyle="none", marker="o", color=TRIPPED_COLOUR, label="replication: condition held"),
        Line2D([], [], linestyle="none", marker="o", color=SAFE_COLOUR, label="replication: condition false"),
        Line2D([], [], linestyle="none", marker="_", markersize=14, markeredgewidth=2.2, color=MEAN_COLOUR,
               label="probe mean"),
        Line2D([], [], color=THRESHOLD_COLOUR, linestyle="--", label=f"threshold: {plot.condition}"),
    ]
    if any_missing:
        handles.append(Line2D([], [], linestyle="none", marker="o", markerfacecolor="none",
                              markeredgecolor=CAPTION_COLOUR, label=f"{plot.metric} did not happen"))
    if plot.highest_safe is not None and plot.lowest_tripped is not None:
        handles.append(Patch(facecolor=KNEE_COLOUR, alpha=0.35,
                             label=f"knee: {format_label(plot.highest_safe)} to {format_label(plot.lowest_tripped)}"))
    ax.legend(handles=handles, loc="upper left", fontsize=8, framealpha=0.9)
    figure.suptitle(plot.title, fontsize=13, fontweight="bold")
    resolution = f" {_resolution_sentence([plot.metric])}" if plot.metric in HISTOGRAM_QUANTILES else ""
    figure.supxlabel("\n".join(textwrap.wrap(
        f"Numbers: the order the probes were made in. {plot.rule}{resolution}",
        int(figure.get_figwidth() * CAPTION_CHARS_PER_IN))), fontsize=8, color=CAPTION_COLOUR)
    return figure


def _zoom_window(plot: CapacityPlot) -> tuple[float, float] | None:
    """The x range of the last probes around the knee, when it is under a third of the probed range."""
    if plot.highest_safe is None or plot.lowest_tripped is None or len(plot.probes) < 5:
        return None
    last = sorted(plot.probes, key=lambda probe: probe.order)[-max(4, math.ceil(len(plot.probes) / 2)):]
    low = min(plot.highest_safe, *(probe.value for probe in last))
    high = max(plot.lowest_tripped, *(probe.value for probe in last))
    everything = [probe.value for probe in plot.probes]
    span = max(everything) - min(everything)
    if span <= 0 or high - low > span / 3:
        return None
    pad = (high - low) * 0.1 or span * 0.01
    return low - pad, high + pad


def _draw_probes(ax: Axes, plot: CapacityPlot, style: _MetricStyle, numbered: set[int]) -> bool:
    """Dots, means, threshold and knee of every probe on `ax`; order numbers for `numbered` probes.
    Returns whether some replication's metric did not happen."""
    any_missing = False
    for probe in plot.probes:
        shown = [(v * style.scale, tripped) for v, tripped in zip(probe.metric_values, probe.tripped_runs, strict=True)
                 if v is not None]
        for colour, wanted in ((TRIPPED_COLOUR, True), (SAFE_COLOUR, False)):
            ys = [y for y, tripped in shown if tripped is wanted]
            if ys:
                ax.plot([probe.value] * len(ys), ys, linestyle="none", marker="o", markersize=5.5, alpha=0.75,
                        color=colour, markeredgecolor="white", markeredgewidth=0.5, zorder=4)
        missing = {tripped for v, tripped in zip(probe.metric_values, probe.tripped_runs, strict=True) if v is None}
        for tripped in sorted(missing):
            any_missing = True
            ax.plot([probe.value], [0.025], linestyle="none", marker="o", markersize=7, markerfacecolor="none",
                    markeredgecolor=TRIPPED_COLOUR if tripped else SAFE_COLOUR, markeredgewidth=1.4,
                    transform=ax.get_xaxis_transform(), clip_on=False, zorder=4)
    means = _probe_means(plot.probes, style.scale)
    if means:
        ax.plot([x for x, _ in means], [y for _, y in means], color="#9e9e9e", linewidth=1.0, zorder=2)
        ax.plot([x for x, _ in means], [y for _, y in means], linestyle="none", marker="_", markersize=16,
                markeredgewidth=2.2, color=MEAN_COLOUR, zorder=5)
    mean_at = dict(means)
    for probe in plot.probes:
        if probe.order not in numbered:
            continue
        finite = [v * style.scale for v in probe.metric_values if v is not None]
        y = mean_at.get(probe.value, max(finite) if finite else None)
        if y is None:
            ax.annotate(str(probe.order), xy=(probe.value, 0.025), xycoords=ax.get_xaxis_transform(),
                        xytext=(6, 4), textcoords="offset points", fontsize=8, color=CAPTION_COLOUR)
        else:
            ax.annotate(str(probe.order), xy=(probe.value, y), xytext=(7, 3), textcoords="offset points",
                        fontsize=8, color=CAPTION_COLOUR, fontweight="bold", zorder=6)
    ax.axhline(plot.threshold * style.scale, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1.4, zorder=3)
    if plot.highest_safe is not None and plot.lowest_tripped is not None:
        ax.axvspan(plot.highest_safe, plot.lowest_tripped, color=KNEE_COLOUR, alpha=0.35, linewidth=0, zorder=1)
    ax.set_xlabel(plot.key)
    ax.set_ylabel(style.label)
    ax.grid(True, color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    return any_missing


def _probe_means(probes: Sequence[ProbePlot], scale: float) -> list[tuple[float, float]]:
    """(value, mean of the replications' metric) of each probe where every replication has a value."""
    means = []
    for probe in sorted(probes, key=lambda probe: probe.value):
        if probe.metric_values and all(v is not None for v in probe.metric_values):
            means.append((probe.value, float(np.mean([v for v in probe.metric_values if v is not None])) * scale))
    return means


def _capacity_headline(plot: CapacityPlot) -> str:
    if plot.highest_safe is not None and plot.lowest_tripped is not None:
        return (f"highest {plot.key} with '{plot.condition}' false in every replication: "
                f"{format_label(plot.highest_safe)} (it held at {format_label(plot.lowest_tripped)})")
    if plot.highest_safe is None and plot.probes:
        lowest = min(probe.value for probe in plot.probes)
        return f"'{plot.condition}' already holds at the lowest value probed, {format_label(lowest)}"
    if plot.probes:
        return f"'{plot.condition}' never held up to {format_label(max(p.value for p in plot.probes))}"
    return "no probes"


# ------------------------------------------------------------------ number formats
def _tick(value: float, _position: object = None) -> str:
    """A tick label: thousands separators, and as many digits as the tick needs (up to 6 significant)."""
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.6g}"
