"""The run overview figure: one PNG that shows a whole run's timeline at a glance.

This is the only module that imports matplotlib.  It draws with the object-oriented `Figure` API on an
explicit Agg canvas, so it never touches pyplot's global state or the process-wide backend.  Five panels
share the time axis: throttling state, expected delay against the entry / exit latencies, calls attempted
and rejected, the four SDL priority queue depths, and SCCP device throttling.  Code Yellow / Code Red
periods are shaded behind every panel so transitions line up by eye.  Long runs are reduced to a few
thousand points per line (peaks kept where peaks matter) so a one-day run renders in about a second.
Every text is plain text (no math between `$` signs): the title holds the user's scenario name.
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Annotation
from matplotlib.ticker import FuncFormatter, MaxNLocator
from numpy.typing import NDArray

from cucm_sim.measures.timeline import TIMELINE_COLUMNS
from cucm_sim.rules.alarms import (
    CALLMANAGER_ONLINE,
    CODE_RED_ENTRY,
    CODE_YELLOW_ENTRY,
    CODE_YELLOW_EXIT,
    DEVICE_CLOSE_MAX_EVENTS_EXCEEDED,
    Alarm,
)
from cucm_sim.rules.throttling import ThrottleState, ThrottlingParams

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType  # the names rcParams knows (matplotlib >= 3.8, for mypy only)

FIGURE_SIZE_IN: Final = (12.0, 10.0)
FIGURE_DPI: Final = 120

PLAIN_TEXT_RC: Final[dict[RcKeyType, bool]] = {"text.parse_math": False, "text.usetex": False}
"""Settings under which every Text is plain: a `$` in a scenario name is a dollar sign, never math or LaTeX."""

SECONDS_AXIS_MAX_S: Final = 900
"""Runs up to this long get a time axis in seconds; longer ones in minutes."""

MAX_POINTS_PER_LINE: Final = 3600
"""Above this many seconds, lines are drawn from fixed-size bins instead of per-second samples."""

NICE_BIN_SIZES_S: Final = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)

CALL_RATE_AVERAGE_WINDOW_S: Final = 10
"""Shortest centred moving-average window for the per-second call counts (s)."""

CALL_RATE_WINDOWS_PER_RUN: Final = 150
"""Longer runs average call counts over about run length / this (rounded up to a nice size)."""

LOG_DELAY_FACTOR: Final = 50.0
"""Use a logarithmic delay axis once the largest delay exceeds this multiple of the entry latency."""

MAX_LABELLED_TRANSITIONS: Final = 12
"""With more transition alarms than this, only Code Red / CallManagerOnline markers keep their text."""
TRANSITION_LABEL_ROWS: Final = 3
TRANSITION_LABEL_ROW_PT: Final = 11.0
TRANSITION_LABEL_FONTSIZE_PT: Final = 7.5

SYMLOG_LINEAR_DECADES: Final = 0.4
"""Height given to the linear part (0..1) of symlog axes, in decades."""

STATE_COLOURS: Final[dict[str, str]] = {
    ThrottleState.NORMAL.value: "#66bb6a",
    ThrottleState.CODE_YELLOW.value: "#ffb300",
    ThrottleState.CODE_RED.value: "#e53935",
}
STATE_LABELS: Final[dict[str, str]] = {
    ThrottleState.NORMAL.value: "Normal",
    ThrottleState.CODE_YELLOW.value: "Code Yellow",
    ThrottleState.CODE_RED.value: "Code Red",
}
BACKGROUND_SHADE_ALPHA: Final = 0.16

# Short label and colour of each transition alarm's marker in the delay panel.
TRANSITION_MARKERS: Final[dict[str, tuple[str, str]]] = {
    CODE_YELLOW_ENTRY: ("CY entry", "#e69500"),
    CODE_YELLOW_EXIT: ("CY exit", "#2e7d32"),
    CODE_RED_ENTRY: ("Code Red", "#c62828"),
    CALLMANAGER_ONLINE: ("Online", "#1565c0"),
}

QUEUE_LINES: Final = (
    ("queue_high", "1-High", "#6a3d9a"),
    ("queue_normal", "2-Normal (calls)", "#1f78b4"),
    ("queue_low", "3-Low (registration)", "#e8710a"),
    ("queue_lowest", "4-Lowest (first registration)", "#795548"),
)

AVERAGE_DELAY_COLOUR: Final = "#0d3c78"
SAMPLE_DELAY_COLOUR: Final = "#5c8fd6"
ENTRY_LATENCY_COLOUR: Final = "#b36b00"
EXIT_LATENCY_COLOUR: Final = "#2e7d32"
ATTEMPTED_COLOUR: Final = "#37474f"
REJECTED_COLOUR: Final = "#d32f2f"
THROTTLED_COLOUR: Final = "#7b1fa2"
REGISTERED_COLOUR: Final = "#00796b"

LEGEND_STYLE: Final[dict[str, Any]] = {"fontsize": 8, "framealpha": 0.85, "borderaxespad": 0.0}

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class TimeAxis:
    """How the run's seconds map onto the shared x axis, and how lines are binned."""

    unit_s: float  # seconds per x-axis unit: 1 or 60
    unit_name: str  # "s" or "min"
    bin_s: int  # seconds per plotted point (1 = every second)
    start_s: float  # start of the first second in the timeline
    end_s: float  # end of the last second

    def to_x(self, time_s: FloatArray | float) -> Any:
        return np.asarray(time_s, dtype=float) / self.unit_s

    def describe_bin(self) -> str:
        return f"{self.bin_s} s" if self.bin_s < 60 else f"{self.bin_s // 60} min"


def plot_timeline(
    timeline: Mapping[str, NDArray[Any]],
    alarms: Sequence[Alarm],
    throttling: ThrottlingParams,
    title: str,
    path: pathlib.Path,
) -> None:
    """Write the run overview figure as a PNG at `path`.

    `timeline` holds the `TIMELINE_COLUMNS`, one entry per simulated second: `t_s` is the end of the
    second (s), `state` the throttling state in force during that second ("Normal", "CodeYellow", "CodeRed"), delays
    in ms, queue depths in signals, call counts per second, `skinny_devices_throttled` cumulative.
    `alarms` are drawn at their `t_s` (s); `throttling` supplies the entry and exit latencies (ms).
    The x axis is in seconds for runs up to 900 s, otherwise in minutes.  The parent directory of
    `path` must exist.  Raises ValueError when a column is missing, lengths differ, a state is unknown
    or the timeline is empty.
    """
    columns = _validated_columns(timeline)
    states = np.asarray(timeline["state"]).astype(str)
    # Everything is made and drawn with math text off: the title is the user's scenario name.
    with rc_context(PLAIN_TEXT_RC):
        figure = _timeline_figure(columns, states, alarms, throttling, title)
        figure.savefig(path, format="png", dpi=FIGURE_DPI)


def _timeline_figure(
    columns: Mapping[str, FloatArray],
    states: NDArray[np.str_],
    alarms: Sequence[Alarm],
    throttling: ThrottlingParams,
    title: str,
) -> Figure:
    time_s = columns["t_s"]
    axis = time_axis(time_s)
    figure = Figure(figsize=FIGURE_SIZE_IN, dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    state_ax, delay_ax, calls_ax, queue_ax, sccp_ax = figure.subplots(
        5, 1, sharex=True, gridspec_kw={"height_ratios": [0.3, 2.6, 1.5, 1.6, 1.3]}
    )
    runs = state_runs(time_s, states)

    _draw_state_strip(state_ax, runs, axis)
    for ax in (delay_ax, calls_ax, queue_ax, sccp_ax):
        _shade_states(ax, runs, axis, alpha=BACKGROUND_SHADE_ALPHA, states_to_shade=_ABNORMAL_STATES)
    transition_labels = _draw_delay_panel(delay_ax, columns, alarms, throttling, axis)
    _draw_calls_panel(calls_ax, columns, axis)
    _draw_queue_panel(queue_ax, columns, axis)
    _draw_sccp_panel(sccp_ax, columns, alarms, axis)

    sccp_ax.set_xlim(axis.to_x(axis.start_s), axis.to_x(axis.end_s))
    sccp_ax.set_xlabel(f"simulated time ({axis.unit_name})")
    if axis.unit_name == "min":
        # Minute ticks on hour-friendly steps (15, 30, 60, 120 ... min).
        sccp_ax.xaxis.set_major_locator(MaxNLocator(nbins=12, steps=[1, 1.2, 1.5, 2, 3, 5, 6, 10]))
    sccp_ax.xaxis.set_major_formatter(FuncFormatter(thousands))
    for ax in (state_ax, delay_ax, calls_ax, queue_ax):
        ax.tick_params(labelbottom=False)
    for ax in (delay_ax, calls_ax, queue_ax, sccp_ax):
        ax.grid(True, axis="y", color="#d0d0d0", linewidth=0.6)
        ax.grid(True, axis="x", color="#e4e4e4", linewidth=0.5)
        ax.set_axisbelow(True)

    figure.suptitle(title, fontsize=14, fontweight="bold")
    state_ax.set_title(_settings_summary(throttling, axis), fontsize=9, loc="left", color="#444444")
    if transition_labels:
        # Label widths are only known once the layout is done: lay out, then stagger the labels.
        figure.draw_without_rendering()
        _stagger_labels(delay_ax, transition_labels)
    return figure


_ABNORMAL_STATES: Final = (ThrottleState.CODE_YELLOW.value, ThrottleState.CODE_RED.value)


def _validated_columns(timeline: Mapping[str, NDArray[Any]]) -> dict[str, FloatArray]:
    missing = [name for name in TIMELINE_COLUMNS if name not in timeline]
    if missing:
        raise ValueError(f"timeline is missing columns {missing}")
    lengths = {name: len(timeline[name]) for name in TIMELINE_COLUMNS}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"timeline columns have different lengths: {lengths}")
    if lengths["t_s"] == 0:
        raise ValueError("timeline is empty: nothing to plot")
    return {
        name: np.asarray(timeline[name], dtype=np.float64) for name in TIMELINE_COLUMNS if name != "state"
    }


def time_axis(time_s: FloatArray) -> TimeAxis:
    """The x axis of a timeline whose seconds end at `time_s` (s): seconds or minutes, and the bin size."""
    start_s = float(time_s[0]) - 1.0
    end_s = float(time_s[-1])
    duration_s = end_s - start_s
    seconds_axis = end_s <= SECONDS_AXIS_MAX_S
    bin_s = next(
        (size for size in NICE_BIN_SIZES_S if len(time_s) / size <= MAX_POINTS_PER_LINE),
        math.ceil(duration_s / MAX_POINTS_PER_LINE),
    )
    return TimeAxis(
        unit_s=1.0 if seconds_axis else 60.0,
        unit_name="s" if seconds_axis else "min",
        bin_s=bin_s,
        start_s=start_s,
        end_s=end_s,
    )


def binned(
    time_s: FloatArray, values: FloatArray, axis: TimeAxis, reduce: np.ufunc | None
) -> tuple[FloatArray, FloatArray]:
    """(bin end times (s), reduced values); `reduce=None` means the mean. Identity when bin_s is 1."""
    if axis.bin_s == 1:
        return time_s, values
    starts = np.arange(0, len(values), axis.bin_s)
    ends = np.minimum(starts + axis.bin_s, len(values)) - 1
    if reduce is None:
        reduced = np.add.reduceat(values, starts) / (ends - starts + 1)
    else:
        reduced = reduce.reduceat(values, starts)
    return time_s[ends], np.asarray(reduced, dtype=np.float64)


def _steps(axis: TimeAxis, end_s: FloatArray, values: FloatArray) -> tuple[Any, FloatArray]:
    """(x, y) for a "steps-pre" drawing in which each value covers its whole interval, the first included."""
    return (
        axis.to_x(np.concatenate(([axis.start_s], end_s))),
        np.concatenate((values[:1], values)),
    )


def state_runs(time_s: FloatArray, states: NDArray[np.str_]) -> list[tuple[str, float, float]]:
    """Maximal runs of one state as (state, start (s), end (s)).

    Row k covers the second (t_s[k] - 1, t_s[k]] and its state is the one in force during it; a transition
    alarm raised by the sample at t_s[k] changes row k + 1, so each band starts at its alarm's `t_s`.
    """
    unknown = set(np.unique(states).tolist()) - set(STATE_COLOURS)
    if unknown:
        raise ValueError(f"timeline has unknown states {sorted(unknown)}; expected {sorted(STATE_COLOURS)}")
    change_rows = np.flatnonzero(states[1:] != states[:-1]) + 1
    boundaries_s = [float(time_s[0]) - 1.0, *(time_s[change_rows] - 1.0).tolist(), float(time_s[-1])]
    run_states = [str(states[0]), *(str(state) for state in states[change_rows])]
    return [
        (state, boundaries_s[index], boundaries_s[index + 1]) for index, state in enumerate(run_states)
    ]


def _shade_states(
    ax: Axes,
    runs: Sequence[tuple[str, float, float]],
    axis: TimeAxis,
    alpha: float,
    states_to_shade: Sequence[str],
) -> None:
    """Full-height bands behind the data, one collection per state (x in data, y in axes units)."""
    for state in states_to_shade:
        polygons = [
            [(x0, 0.0), (x0, 1.0), (x1, 1.0), (x1, 0.0)]
            for run_state, start_s, end_s in runs
            if run_state == state
            for x0, x1 in [(float(axis.to_x(start_s)), float(axis.to_x(end_s)))]
        ]
        if not polygons:
            continue
        bands = PolyCollection(
            polygons,
            facecolors=STATE_COLOURS[state],
            edgecolors="none",
            alpha=alpha,
            transform=ax.get_xaxis_transform(),
            zorder=0,
        )
        ax.add_collection(bands, autolim=False)


def _draw_state_strip(ax: Axes, runs: Sequence[tuple[str, float, float]], axis: TimeAxis) -> None:
    _shade_states(ax, runs, axis, alpha=1.0, states_to_shade=tuple(STATE_COLOURS))
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_ylabel("state", rotation=0, ha="right", va="center", fontsize=9)
    for spine in ax.spines.values():
        spine.set_visible(False)
    duration_s = axis.end_s - axis.start_s
    seconds_in_state = dict.fromkeys(STATE_COLOURS, 0.0)
    for state, start_s, end_s in runs:
        seconds_in_state[state] += end_s - start_s
    handles = [
        Patch(
            facecolor=colour,
            label=f"{STATE_LABELS[state]} {_percent(seconds_in_state[state], duration_s)}",
        )
        for state, colour in STATE_COLOURS.items()
    ]
    ax.legend(
        handles=handles,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        ncols=3,
        fontsize=8,
        frameon=False,
        handlelength=1.0,
        handletextpad=0.4,
        columnspacing=0.9,
        borderaxespad=0.0,
    )


def _draw_delay_panel(
    ax: Axes,
    columns: Mapping[str, FloatArray],
    alarms: Sequence[Alarm],
    throttling: ThrottlingParams,
    axis: TimeAxis,
) -> list[Annotation]:
    """Expected delay against the thresholds, with transition markers; returns the marker labels."""
    time_s = columns["t_s"]
    entry_ms = float(throttling.code_yellow_entry_latency_ms)
    exit_ms = float(throttling.exit_latency_ms)
    peak_suffix = "" if axis.bin_s == 1 else f", max per {axis.describe_bin()}"

    sample_t, sample_ms = binned(time_s, columns["expected_delay_ms"], axis, np.maximum)
    average_t, average_ms = binned(time_s, columns["average_expected_delay_ms"], axis, np.maximum)
    window_s = throttling.system_throttle_sample_size_s
    draw_average = throttling.throttling_enabled or bool(np.any(average_ms > 0))
    # Without an average (throttling disabled) the per-second sample is the whole story: draw it solid.
    ax.plot(
        *_steps(axis, sample_t, sample_ms), drawstyle="steps-pre", color=SAMPLE_DELAY_COLOUR,
        linewidth=0.7 if draw_average else 1.2, alpha=0.6 if draw_average else 1.0,
        label=f"expected delay, per-second sample{peak_suffix}",
    )
    if draw_average:
        ax.plot(
            axis.to_x(average_t), average_ms, color=AVERAGE_DELAY_COLOUR,
            linewidth=2.0 if axis.bin_s == 1 else 1.1,
            label=f"average expected delay ({window_s} s window{peak_suffix})",
        )

    transitions = sorted((alarm for alarm in alarms if alarm.name in TRANSITION_MARKERS), key=lambda a: a.t_s)
    labelled = _transitions_to_label(transitions)
    # With labels, the top ~22 % of the panel is kept free for them.
    peak_fraction = 0.78 if labelled else 0.9
    peak_ms = float(max(np.max(sample_ms), np.max(average_ms), 0.0))
    if peak_ms > LOG_DELAY_FACTOR * entry_ms:
        # Delays explode by orders of magnitude in a CPU starvation; symlog keeps the thresholds, and
        # the zeros next to them, readable.
        ax.set_yscale("symlog", linthresh=1.0, linscale=SYMLOG_LINEAR_DECADES)
        ax.set_ylim(0.0, symlog_top(peak_ms, peak_fraction))
        ax.yaxis.set_major_formatter(FuncFormatter(thousands))
        scale_note = "log scale"
    else:
        ax.set_ylim(0.0, max(peak_ms, entry_ms * 1.3) / peak_fraction)
        scale_note = ""

    if throttling.throttling_enabled:
        ax.axhline(entry_ms, color=ENTRY_LATENCY_COLOUR, linestyle="--", linewidth=1.2, zorder=3)
        ax.axhline(exit_ms, color=EXIT_LATENCY_COLOUR, linestyle="--", linewidth=1.2, zorder=3)
        for level_ms, text, colour, va in (
            (entry_ms, f"entry {_ms(entry_ms)}", ENTRY_LATENCY_COLOUR, "bottom"),
            (exit_ms, f"exit {_ms(exit_ms)} ({throttling.code_yellow_exit_latency_pct} %)",
             EXIT_LATENCY_COLOUR, "top"),
        ):
            ax.text(
                0.997, level_ms, text, transform=ax.get_yaxis_transform(), color=colour, fontsize=8,
                fontweight="bold", ha="right", va=va, zorder=6,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 0.8},
            )
    else:
        ax.text(
            0.5, 0.96, "call throttling disabled (System Throttle Sample Size = 0 s): "
            "no entry / exit thresholds, never Code Yellow or Code Red",
            transform=ax.transAxes, ha="center", va="top", fontsize=9, color="#444444", zorder=7,
            bbox={"facecolor": "white", "edgecolor": "#bbbbbb", "alpha": 0.9},
        )

    # Unlabelled markers (a node flapping in and out of Code Yellow) are drawn lighter, so the delay
    # shows through them.
    for alarm in transitions:
        _, colour = TRANSITION_MARKERS[alarm.name]
        marker_width, marker_alpha = (1.1, 0.9) if alarm in labelled else (0.6, 0.45)
        ax.axvline(
            float(axis.to_x(alarm.t_s)), color=colour, linewidth=marker_width, alpha=marker_alpha, zorder=4
        )
    labels = [
        ax.annotate(
            TRANSITION_MARKERS[alarm.name][0], xy=(float(axis.to_x(alarm.t_s)), 1.0),
            xycoords=ax.get_xaxis_transform(), xytext=(3, -3), textcoords="offset points",
            ha="left", va="top", fontsize=TRANSITION_LABEL_FONTSIZE_PT, fontweight="bold",
            color=TRANSITION_MARKERS[alarm.name][1], zorder=7, in_layout=False,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 0.6},
        )
        for alarm in labelled
    ]
    names_present = {alarm.name for alarm in transitions}
    alarm_handles = [
        Line2D([], [], color=colour, linewidth=1.1, label=f"{name} alarm")
        for name, (_, colour) in TRANSITION_MARKERS.items()
        if name in names_present
    ]
    ax.set_ylabel("delay (ms)" + (f"\n{scale_note}" if scale_note else ""))
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(
        handles=[*handles, *alarm_handles], loc="upper left", bbox_to_anchor=(1.01, 1.0), **LEGEND_STYLE
    )
    return labels


def _transitions_to_label(transitions: Sequence[Alarm]) -> list[Alarm]:
    """All transitions when there are few; otherwise only the rare Code Red / Online ones, if few."""
    if len(transitions) <= MAX_LABELLED_TRANSITIONS:
        return list(transitions)
    restarts = [alarm for alarm in transitions if alarm.name in (CODE_RED_ENTRY, CALLMANAGER_ONLINE)]
    return restarts if len(restarts) <= MAX_LABELLED_TRANSITIONS else []


def _stagger_labels(ax: Axes, labels: Sequence[Annotation]) -> None:
    """Move overlapping transition labels into lower rows; hide those that fit in no row.

    Labels arrive sorted by time.  Each goes into the first row where it clears the previous label;
    a label that would run past the right edge is flipped to the left of its marker.
    """
    axes_box = ax.get_window_extent()
    gap_px = 1.0
    row_free_from_px = [-math.inf] * TRANSITION_LABEL_ROWS
    for label in labels:
        box = label.get_window_extent()
        if box.x1 > axes_box.x1 - 2:
            label.set_horizontalalignment("right")
            label.xyann = (-3, -3)
            box = label.get_window_extent()
        row = next((i for i, free_px in enumerate(row_free_from_px) if box.x0 > free_px + gap_px), None)
        if row is None:
            label.set_visible(False)
            continue
        row_free_from_px[row] = box.x1
        label.xyann = (label.xyann[0], -3 - row * TRANSITION_LABEL_ROW_PT)


def _draw_calls_panel(ax: Axes, columns: Mapping[str, FloatArray], axis: TimeAxis) -> None:
    time_s = columns["t_s"]
    attempted = columns["calls_attempted"]
    rejected = columns["calls_rejected"]
    total_attempted = float(np.sum(attempted))
    total_rejected = float(np.sum(rejected))
    duration_s = axis.end_s - axis.start_s
    window_s = next(
        (size for size in NICE_BIN_SIZES_S
         if size >= max(CALL_RATE_AVERAGE_WINDOW_S, duration_s / CALL_RATE_WINDOWS_PER_RUN)),
        NICE_BIN_SIZES_S[-1],
    )
    window_s = min(window_s, len(time_s))
    window = f"{window_s} s" if window_s < 60 else f"{window_s // 60} min"
    attempted_t, attempted_mean = binned(time_s, _centred_mean(attempted, window_s), axis, None)
    rejected_t, rejected_mean = binned(time_s, _centred_mean(rejected, window_s), axis, None)

    if duration_s <= SECONDS_AXIS_MAX_S:
        # Short runs: every second is visible, shaded faintly under the averages.
        ax.fill_between(*_steps(axis, time_s, attempted), step="pre", color=ATTEMPTED_COLOUR, alpha=0.13,
                        linewidth=0, label="per second (shaded)")
        ax.fill_between(*_steps(axis, time_s, rejected), step="pre", color=REJECTED_COLOUR, alpha=0.22,
                        linewidth=0)
        peak = float(np.max(attempted))
    else:
        ax.fill_between(axis.to_x(rejected_t), rejected_mean, color=REJECTED_COLOUR, alpha=0.22, linewidth=0)
        peak = float(np.max(attempted_mean))
    ax.plot(axis.to_x(attempted_t), attempted_mean, color=ATTEMPTED_COLOUR, linewidth=1.5,
            label=f"attempted, {window} average\n(total {thousands(total_attempted)} calls)")
    ax.plot(axis.to_x(rejected_t), rejected_mean, color=REJECTED_COLOUR, linewidth=1.5,
            label=f"rejected by throttling, {window} average\n(total {thousands(total_rejected)} = "
            f"{_percent(total_rejected, total_attempted)} of attempts)")
    ax.set_ylim(0.0, max(peak * 1.12, 1.0))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.set_ylabel("calls/s")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), **LEGEND_STYLE)


def _draw_queue_panel(ax: Axes, columns: Mapping[str, FloatArray], axis: TimeAxis) -> None:
    time_s = columns["t_s"]
    peak_suffix = "" if axis.bin_s == 1 else f" (max per {axis.describe_bin()})"
    peak_depth = 0.0
    for column, label, colour in QUEUE_LINES:
        bin_t, depth = binned(time_s, columns[column], axis, np.maximum)
        peak_depth = max(peak_depth, float(np.max(depth)))
        ax.plot(axis.to_x(bin_t), depth, color=colour, linewidth=1.3,
                label=f"{label}, peak {thousands(float(np.max(columns[column])))}")
    # Depths range from 0 to ~1e5 signals: symlog shows both an idle queue and a flood.
    ax.set_yscale("symlog", linthresh=1.0, linscale=SYMLOG_LINEAR_DECADES)
    ax.set_ylim(0.0, symlog_top(max(peak_depth, 10.0), 0.85))
    ax.yaxis.set_major_formatter(FuncFormatter(thousands))
    ax.set_ylabel("queue depth\n(signals, log scale)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title=f"SDL queue{peak_suffix}",
              title_fontsize=8, alignment="left", **LEGEND_STYLE)


def _draw_sccp_panel(
    ax: Axes, columns: Mapping[str, FloatArray], alarms: Sequence[Alarm], axis: TimeAxis
) -> None:
    time_s = columns["t_s"]
    throttled_t, throttled = binned(time_s, columns["skinny_devices_throttled"], axis, np.maximum)
    registered_t, registered = binned(time_s, columns["registered_devices"], axis, np.minimum)
    low_suffix = "" if axis.bin_s == 1 else f", min per {axis.describe_bin()}"

    # Both axes leave the top third free for the legend, which sits inside: the twin axis's tick labels
    # take the space where the other panels put theirs.  Different headroom keeps the two lines apart
    # when both are flat at their maximum.
    throttled_line = ax.plot(
        *_steps(axis, throttled_t, throttled), drawstyle="steps-pre", color=THROTTLED_COLOUR, linewidth=1.6,
        label=f"SkinnyDevicesThrottled: {thousands(float(np.max(throttled)))} (cumulative)",
    )
    _style_count_axis(ax, float(np.max(throttled)), 0.55, "devices\nthrottled", THROTTLED_COLOUR)

    handles: list[Any] = [*throttled_line]
    close_times_s = [alarm.t_s for alarm in alarms if alarm.name == DEVICE_CLOSE_MAX_EVENTS_EXCEEDED]
    if close_times_s:
        handles += ax.plot(
            axis.to_x(np.asarray(close_times_s, dtype=float)), np.full(len(close_times_s), 0.05),
            linestyle="none", marker="|", markersize=7, markeredgewidth=0.8, color=THROTTLED_COLOUR,
            alpha=0.6, transform=ax.get_xaxis_transform(), clip_on=False, zorder=5,
            label=f"{DEVICE_CLOSE_MAX_EVENTS_EXCEEDED} ({len(close_times_s):,})",
        )

    registered_ax = ax.twinx()
    handles += registered_ax.plot(
        axis.to_x(registered_t), registered, color=REGISTERED_COLOUR, linewidth=1.4,
        label=f"registered devices{low_suffix}",
    )
    _style_count_axis(registered_ax, float(np.max(registered)), 0.72, "registered\ndevices", REGISTERED_COLOUR)
    registered_ax.legend(
        handles=handles, loc="upper left", ncols=len(handles), fontsize=7.5, framealpha=0.85,
        handlelength=1.5, columnspacing=1.2,
    )


def _style_count_axis(ax: Axes, peak: float, peak_fraction: float, label: str, colour: str) -> None:
    """A y axis of whole counts whose peak (at least 1) sits at `peak_fraction` of its height."""
    ax.set_ylim(0.0, max(peak, 1.0) / peak_fraction)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(thousands))
    ax.set_ylabel(label, color=colour)
    ax.tick_params(axis="y", colors=colour)


def symlog_top(peak: float, peak_fraction: float) -> float:
    """Upper limit of a symlog (linthresh 1) axis from 0 that puts `peak` at `peak_fraction` of its height."""
    linear_units = SYMLOG_LINEAR_DECADES / (1 - 1 / 10)  # matplotlib's width of the linear part, in decades
    peak_units = linear_units + math.log10(max(peak, 1.0))
    return float(10 ** (peak_units / peak_fraction - linear_units))


def _centred_mean(values: FloatArray, window: int) -> FloatArray:
    """Mean over a `window`-long span centred on each index (shorter at the ends)."""
    cumulative = np.concatenate(([0.0], np.cumsum(values)))
    index = np.arange(len(values))
    lower = np.maximum(index - window // 2, 0)
    upper = np.minimum(index - window // 2 + window, len(values))
    return np.asarray((cumulative[upper] - cumulative[lower]) / (upper - lower), dtype=np.float64)


def _settings_summary(throttling: ThrottlingParams, axis: TimeAxis) -> str:
    duration_s = axis.end_s - axis.start_s
    run = f"run {thousands(duration_s)} s" + (f" ({duration_s / 3600:.3g} h)" if duration_s >= 3600 else "")
    max_events = f"Max Events Allowed {throttling.max_events_allowed}/5 s"
    if not throttling.throttling_enabled:
        return f"{run}  |  call throttling disabled  |  {max_events}"
    duration = (
        "never Code Red" if throttling.code_yellow_duration_s is None
        else f"Code Yellow Duration {throttling.code_yellow_duration_min} min"
    )
    return (
        f"{run}  |  entry {_ms(throttling.code_yellow_entry_latency_ms)}, "
        f"exit {_ms(throttling.exit_latency_ms)} ({throttling.code_yellow_exit_latency_pct} %), "
        f"sample {throttling.system_throttle_sample_size_s} s, {duration}  |  {max_events}"
    )


def _ms(value_ms: float) -> str:
    return f"{value_ms:g} ms"


def _percent(part: float, whole: float) -> str:
    if whole <= 0:
        return "0 %"
    share = 100.0 * part / whole
    return f"{share:.0f} %" if share >= 1 or share == 0 else f"{share:.1g} %"


def thousands(value: float, _position: object = None) -> str:
    """Tick and label formatter: 12,345 for large values, compact decimals for small ones."""
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}"

