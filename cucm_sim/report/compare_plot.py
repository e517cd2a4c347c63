r"""The figure of `cucm-sim compare` (compare.png): a run's counters over a Perfmon recording's, under Cisco's names.

Panels share the time axis, in simulated seconds (minutes past 900 s), the recording placed by its offset:
- the state: CodeYellowEntryExit and CodeRedEntryExit as bands, the recording's above the run's, both as
  read at the recording's sample times (each sample holds until the next), so they can be set side by side;
- `Cisco CallManager System Performance\AverageExpectedDelay` against the entry and exit latencies (dotted;
  log scale when the delay explodes);
- QueueSignalsPresent 1-High .. 4-Lowest (log scale), one colour per queue;
- QueueSignalsProcessed Total (signals handled in the second before each sample);
- `Cisco CallManager\CallsAttempted` and CallsRejectedDueToThrottling, running totals shown as rates.
Recorded series are solid lines, simulated ones dashed, in every panel; a counter the recording lacks is
drawn for the run alone, and the panel says so.  Each line's `gid` is `recorded:NAME` or `simulated:NAME`
(Cisco's `Object\Counter`), so tests can find them.  Plain text, drawn on an explicit Agg canvas, like
`plotting`; long recordings are thinned to a few thousand points per line (largest value per bin).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
from matplotlib import rc_context
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from cucm_sim.report.compare import (
    AVERAGE_EXPECTED_DELAY,
    CALLS_ATTEMPTED,
    CALLS_REJECTED,
    CODE_RED,
    CODE_YELLOW,
    PROCESSED_TOTAL,
    QUEUES_PRESENT,
    Comparison,
    CounterSpec,
    Series,
    summary_parts,
)
from cucm_sim.report.plotting import (
    ATTEMPTED_COLOUR,
    ENTRY_LATENCY_COLOUR,
    EXIT_LATENCY_COLOUR,
    FIGURE_DPI,
    LEGEND_STYLE,
    LOG_DELAY_FACTOR,
    PLAIN_TEXT_RC,
    QUEUE_LINES,
    REJECTED_COLOUR,
    SECONDS_AXIS_MAX_S,
    STATE_COLOURS,
    STATE_LABELS,
    SYMLOG_LINEAR_DECADES,
    FloatArray,
    symlog_top,
    thousands,
)
from cucm_sim.rules.throttling import ThrottleState

FIGURE_SIZE_IN: Final = (12.0, 11.0)
RECORDED_COLOUR: Final = "#c2185b"
SIMULATED_COLOUR: Final = "#1565c0"
RECORDED_STYLE: Final = {"linestyle": "-", "linewidth": 2.4, "alpha": 0.6}
"""Recorded lines: solid, broad and translucent, under the simulated ones, so both show where they agree."""
SIMULATED_STYLE: Final = {"linestyle": (0, (4, 2)), "linewidth": 1.3}
MARKERS_UP_TO: Final = 240
"""Recordings of at most this many rows in the overlap have their samples marked on the recorded lines."""
MAX_POINTS: Final = 4000
"""Above this many rows, lines are thinned to this many points (the largest value of each bin)."""
UNKNOWN_COLOUR: Final = "#bdbdbd"
STRIP_RECORDED: Final = (0.55, 1.0)
STRIP_SIMULATED: Final = (0.0, 0.45)
"""Where the recorded and simulated state strips lie in the state panel (its y runs 0..1)."""
PNG_SOFTWARE: Final = "cucm-sim compare"
"""The PNG's Software text: how compare tells a compare.png it wrote from a file it must not replace."""


def comparison_figure(comparison: Comparison) -> Figure:
    """The figure of `comparison` (see the module doc), laid out, not yet saved.  Make and save it under
    `PLAIN_TEXT_RC`, as `comparison_png` does."""
    times_s = comparison.times_s
    unit_s, unit_name = (1.0, "s") if times_s[-1] <= SECONDS_AXIS_MAX_S else (60.0, "min")
    x = times_s / unit_s
    figure = Figure(figsize=FIGURE_SIZE_IN, dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    state_ax, delay_ax, queue_ax, processed_ax, calls_ax = figure.subplots(
        5, 1, sharex=True, gridspec_kw={"height_ratios": [0.75, 2.5, 1.6, 1.1, 1.3]})
    _draw_states(state_ax, comparison, x, unit_s)
    _draw_delay(delay_ax, comparison, x)
    _draw_queues(queue_ax, comparison, x)
    _draw_pairs(processed_ax, comparison, x, [(PROCESSED_TOTAL, "signals/s", None)], "signals/s")
    _draw_pairs(calls_ax, comparison, x, [(CALLS_ATTEMPTED, "attempted", ATTEMPTED_COLOUR),
                                          (CALLS_REJECTED, "rejected by throttling", REJECTED_COLOUR)], "calls/s")
    processed_ax.set_title(PROCESSED_TOTAL.name + " (signals handled in the second before each sample)",
                           loc="left", fontsize=9)
    calls_ax.set_title(f"{CALLS_ATTEMPTED.name} and {CALLS_REJECTED.counter}: running totals, shown as their rise "
                       "per second between samples", loc="left", fontsize=9)
    for ax in (delay_ax, queue_ax, processed_ax, calls_ax):
        ax.grid(True, axis="y", color="#d0d0d0", linewidth=0.6)
        ax.grid(True, axis="x", color="#e4e4e4", linewidth=0.5)
        ax.set_axisbelow(True)
    calls_ax.set_xlim(float(x[0]), float(x[-1]) if x[-1] > x[0] else float(x[0]) + 1.0 / unit_s)
    offset = f"{comparison.offset_s:g} s"
    calls_ax.set_xlabel(f"simulated time ({unit_name}); the recording's first row is simulated second {offset} "
                        "(--offset-s)")
    if unit_name == "min":
        calls_ax.xaxis.set_major_locator(MaxNLocator(nbins=12, steps=[1, 1.2, 1.5, 2, 3, 5, 6, 10]))
    calls_ax.xaxis.set_major_formatter(FuncFormatter(thousands))
    for ax in (state_ax, delay_ax, queue_ax, processed_ax):
        ax.tick_params(labelbottom=False)
    node = f", node {comparison.node}" if comparison.node is not None else ""
    figure.suptitle(f"{comparison.run_name} (seed {comparison.seed}) against {Path(comparison.recording_source).name}",
                    fontsize=14, fontweight="bold")
    episodes, errors, delay = summary_parts(comparison)
    state_ax.set_title("\n".join([*_subtitle(comparison, node), f"{episodes}; {errors}", delay]), fontsize=8.5,
                       loc="left", color="#444444")
    return figure


def comparison_png(comparison: Comparison) -> bytes:
    """compare.png's bytes (its Software text is `PNG_SOFTWARE`)."""
    with rc_context(PLAIN_TEXT_RC):
        figure = comparison_figure(comparison)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=FIGURE_DPI, metadata={"Software": PNG_SOFTWARE})
    return buffer.getvalue()


def is_compare_png(data: bytes) -> bool:
    """Whether `data` (a file's first bytes) is a PNG compare wrote (its Software text chunk)."""
    return data.startswith(b"\x89PNG\r\n\x1a\n") and b"Software\x00" + PNG_SOFTWARE.encode() in data


def _subtitle(comparison: Comparison, node: str) -> list[str]:
    throttling = comparison.throttling
    settings = (f"the run's entry latency {throttling.code_yellow_entry_latency_ms:g} ms, exit "
                f"{throttling.exit_latency_ms:g} ms ({throttling.code_yellow_exit_latency_pct} %), sample size "
                f"{throttling.system_throttle_sample_size_s} s" if throttling.throttling_enabled
                else "the run's call throttling is off")
    return [f"scenario {comparison.scenario_name}{node}  |  {settings}",
            f"recording: host {comparison.host}, a sample every {comparison.interval_s:g} s, "
            f"{len(comparison.times_s):,} of them in the run  |  solid: recorded, dashed: simulated"]


# ----------------------------------------------------------------------------------------------- the state
def _states(yellow: np.ndarray | None, red: np.ndarray | None, rows: int) -> list[str]:
    """Each row's state from the two counters ('' where CodeYellowEntryExit was not read)."""
    states = []
    for k in range(rows):
        if red is not None and np.isfinite(red[k]) and red[k] > 0.5:
            states.append(ThrottleState.CODE_RED.value)
        elif yellow is None or not np.isfinite(yellow[k]):
            states.append("")
        else:
            states.append(ThrottleState.CODE_YELLOW.value if yellow[k] > 0.5 else ThrottleState.NORMAL.value)
    return states


def _draw_states(ax: Axes, comparison: Comparison, x: FloatArray, unit_s: float) -> None:
    """Two strips in one panel: the recording's states above, the run's below, each sample holding until the
    next."""
    yellow, red = comparison.get(CODE_YELLOW), comparison.get(CODE_RED)
    step = comparison.interval_s / unit_s if len(x) > 1 else 1.0 / unit_s
    ends = np.concatenate((x[1:], [x[-1] + step]))
    for (low, high), states in (
        (STRIP_RECORDED, _states(yellow.recorded, red.recorded, len(x))),
        (STRIP_SIMULATED, _states(yellow.simulated, red.simulated, len(x))),
    ):
        for state, colour in (*STATE_COLOURS.items(), ("", UNKNOWN_COLOUR)):
            polygons = _runs(x, ends, states, state, low, high)
            if polygons:
                ax.add_collection(PolyCollection(polygons, facecolors=colour, edgecolors="none"), autolim=False)
    ax.set_ylim(0, 1)
    ax.set_yticks([sum(STRIP_RECORDED) / 2, sum(STRIP_SIMULATED) / 2], ["recorded", "simulated"], fontsize=9)
    ax.tick_params(axis="y", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if yellow.recorded is None:
        ax.text(0.5, sum(STRIP_RECORDED) / 2, f"{CODE_YELLOW.counter} not in the recording", ha="center",
                va="center", fontsize=8, transform=ax.get_yaxis_transform())
    handles = [Patch(facecolor=colour, label=STATE_LABELS[state]) for state, colour in STATE_COLOURS.items()]
    handles.append(Patch(facecolor=UNKNOWN_COLOUR, label="not read"))
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), ncols=2, fontsize=8, frameon=False,
              title="CodeYellowEntryExit and CodeRedEntryExit,\nas read at the recording's sample times",
              title_fontsize=7.5, alignment="left", handlelength=1.0, columnspacing=0.9, borderaxespad=0.0)


def _runs(starts: FloatArray, ends: FloatArray, states: Sequence[str], state: str, low: float,
          high: float) -> list[list[tuple[float, float]]]:
    """Bands from `low` to `high` (data units) of the maximal runs of rows in `state`."""
    polygons = []
    k = 0
    while k < len(states):
        if states[k] != state:
            k += 1
            continue
        first = k
        while k < len(states) and states[k] == state:
            k += 1
        x0, x1 = float(starts[first]), float(ends[k - 1])
        polygons.append([(x0, low), (x0, high), (x1, high), (x1, low)])
    return polygons


# ----------------------------------------------------------------------------------------------- lines
def _thin(x: FloatArray, values: FloatArray) -> tuple[FloatArray, FloatArray]:
    """At most `MAX_POINTS` points: the largest value of each bin of rows (NaN only when all are)."""
    if len(x) <= MAX_POINTS:
        return x, values
    size = math.ceil(len(x) / MAX_POINTS)
    starts = np.arange(0, len(x), size)
    padded = np.full(len(starts) * size, np.nan)
    padded[: len(values)] = values
    blocks = padded.reshape(len(starts), size)
    with np.errstate(invalid="ignore"):
        peaks = np.where(np.isnan(blocks).all(axis=1), np.nan, np.nanmax(np.where(np.isnan(blocks), -np.inf, blocks),
                                                                          axis=1))
    return x[starts], peaks


def _plot_pair(ax: Axes, x: FloatArray, series: Series, label: str, colour: str | None) -> float:
    """The recorded (solid, under) and simulated (dashed, over) lines of `series`; returns their largest value."""
    name = series.spec.name
    peak = 0.0
    if series.recorded is not None:
        rec_x, rec_y = _thin(x, series.recorded)
        marker = "o" if len(x) <= MARKERS_UP_TO else None
        ax.plot(rec_x, rec_y, color=colour or RECORDED_COLOUR, gid=f"recorded:{name}", marker=marker,
                markersize=3.0, zorder=3, label=f"{label} recorded" if label else "recorded",
                **RECORDED_STYLE)  # type: ignore[arg-type]
        if np.isfinite(rec_y).any():
            peak = float(np.nanmax(rec_y))
    sim_x, sim_y = _thin(x, series.simulated)
    ax.plot(sim_x, sim_y, color=colour or SIMULATED_COLOUR, gid=f"simulated:{name}", zorder=4,
            label=f"{label} simulated" if label else "simulated", **SIMULATED_STYLE)  # type: ignore[arg-type]
    if np.isfinite(sim_y).any():
        peak = max(peak, float(np.nanmax(sim_y)))
    return peak


def _missing_note(ax: Axes, specs: Sequence[CounterSpec], comparison: Comparison) -> None:
    missing = [spec.counter for spec in specs if spec in comparison.missing]
    if missing:
        ax.text(0.005, 0.96, "not in the recording (simulated only): " + ", ".join(missing),
                transform=ax.transAxes, ha="left", va="top", fontsize=7.5, color="#444444", zorder=7,
                bbox={"facecolor": "white", "edgecolor": "#bbbbbb", "alpha": 0.9, "pad": 1.5})


def _draw_delay(ax: Axes, comparison: Comparison, x: FloatArray) -> None:
    throttling = comparison.throttling
    peak_ms = _plot_pair(ax, x, comparison.get(AVERAGE_EXPECTED_DELAY), "", None)
    entry_ms, exit_ms = float(throttling.code_yellow_entry_latency_ms), float(throttling.exit_latency_ms)
    if peak_ms > LOG_DELAY_FACTOR * entry_ms:
        ax.set_yscale("symlog", linthresh=1.0, linscale=SYMLOG_LINEAR_DECADES)
        ax.set_ylim(0.0, symlog_top(peak_ms, 0.9))
        ax.yaxis.set_major_formatter(FuncFormatter(thousands))
        ax.set_ylabel("delay (ms)\nlog scale")
    else:
        ax.set_ylim(0.0, max(peak_ms, entry_ms * 1.3) / 0.9)
        ax.set_ylabel("delay (ms)")
    handles, _ = ax.get_legend_handles_labels()
    if throttling.throttling_enabled:
        for level_ms, text, colour, va in (
            (entry_ms, f"entry latency {entry_ms:g} ms", ENTRY_LATENCY_COLOUR, "bottom"),
            (exit_ms, f"exit latency {exit_ms:g} ms", EXIT_LATENCY_COLOUR, "top"),
        ):
            ax.axhline(level_ms, color=colour, linestyle=":", linewidth=1.4, zorder=2)
            ax.text(0.997, level_ms, text, transform=ax.get_yaxis_transform(), color=colour, fontsize=8,
                    fontweight="bold", ha="right", va=va, zorder=6,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 0.8})
            handles.append(Line2D([], [], color=colour, linestyle=":", linewidth=1.4, label=text + " (the run's)"))
    ax.set_title(AVERAGE_EXPECTED_DELAY.name, loc="left", fontsize=9)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), **LEGEND_STYLE)


def _draw_queues(ax: Axes, comparison: Comparison, x: FloatArray) -> None:
    peak = 0.0
    for spec, (_column, label, colour) in zip(QUEUES_PRESENT, QUEUE_LINES, strict=True):
        peak = max(peak, _plot_pair(ax, x, comparison.get(spec), label, colour))
    ax.set_yscale("symlog", linthresh=1.0, linscale=SYMLOG_LINEAR_DECADES)
    ax.set_ylim(0.0, symlog_top(max(peak, 10.0), 0.85))
    ax.yaxis.set_major_formatter(FuncFormatter(thousands))
    ax.set_ylabel("signals waiting\n(log scale)")
    ax.set_title("Cisco CallManager System Performance\\QueueSignalsPresent 1-High .. 4-Lowest", loc="left",
                 fontsize=9)
    handles = [Line2D([], [], color=colour, linewidth=2.0, label=label) for _column, label, colour in QUEUE_LINES]
    handles += _style_handles()
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), **LEGEND_STYLE)
    _missing_note(ax, QUEUES_PRESENT, comparison)


def _draw_pairs(ax: Axes, comparison: Comparison, x: FloatArray, pairs: Sequence[tuple[CounterSpec, str, str | None]],
                unit: str) -> None:
    peak = 0.0
    for spec, label, colour in pairs:
        peak = max(peak, _plot_pair(ax, x, comparison.get(spec), label if len(pairs) > 1 else "", colour))
    ax.set_ylim(0.0, max(peak * 1.15, 1.0))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.yaxis.set_major_formatter(FuncFormatter(thousands))
    ax.set_ylabel(unit)
    handles: list[Artist]
    if len(pairs) > 1:
        handles = [Line2D([], [], color=colour, linewidth=2.0, label=label) for _spec, label, colour in pairs]
        handles += _style_handles()
    else:
        handles = ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), **LEGEND_STYLE)
    _missing_note(ax, [spec for spec, _label, _colour in pairs], comparison)


def _style_handles() -> list[Line2D]:
    return [Line2D([], [], color="#333333", label="recorded", **RECORDED_STYLE),  # type: ignore[arg-type]
            Line2D([], [], color="#333333", label="simulated", **SIMULATED_STYLE)]  # type: ignore[arg-type]
