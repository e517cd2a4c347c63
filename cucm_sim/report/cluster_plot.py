"""The figure of a cluster's run: which node fell, where its phones went, and whether the next one held.

Three panels share the time axis.  On top, one state band per node (Normal, Code Yellow, Code Red in the
colours of the one-node figure, `plotting`), labelled with the node's name.  Then the phones registered with
each node, one line per node in that node's colour throughout, the phones registered with no node shaded
grey, and each failover and rehoming written where the counts jump ("400 phones fail over cm1 -> cm2").
Last, each node's AverageExpectedDelay against the entry and exit latencies (log scale when it explodes).
Every Code Red is a red line across the panels, every CallManagerOnline a blue dotted one.  Plain text,
drawn on an explicit Agg canvas, like `plotting`.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Final

import numpy as np
from matplotlib import rc_context
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Annotation
from matplotlib.ticker import FuncFormatter, MaxNLocator

from cucm_sim.report.cluster_moves import Failover, Return, phone_moves
from cucm_sim.report.plotting import (
    ENTRY_LATENCY_COLOUR,
    EXIT_LATENCY_COLOUR,
    FIGURE_DPI,
    LEGEND_STYLE,
    LOG_DELAY_FACTOR,
    PLAIN_TEXT_RC,
    STATE_COLOURS,
    STATE_LABELS,
    SYMLOG_LINEAR_DECADES,
    TRANSITION_MARKERS,
    FloatArray,
    TimeAxis,
    binned,
    state_runs,
    symlog_top,
    thousands,
    time_axis,
)
from cucm_sim.rules.alarms import CALLMANAGER_ONLINE, CODE_RED_ENTRY
from cucm_sim.rules.throttling import ThrottlingParams
from cucm_sim.run.cluster import NodeRun
from cucm_sim.scenario.schema import Scenario

NODE_COLOURS: Final = ("#1f4e9c", "#8e44ad", "#00838f", "#6d4c41", "#d81b60", "#546e7a", "#283593", "#827717")
"""One colour per node (a cluster has at most 8), none of them a state's."""
NOWHERE_COLOUR: Final = "#9e9e9e"
MOVES_ANNOTATED: Final = 6
"""The largest failovers and rehomings are written on the figure, up to this many."""
LABEL_ROWS: Final = 4
"""Rows of move labels above the phones' lines; a label that fits in none is left out (the story has it)."""
PHONES_HEIGHT_FRACTION: Final = 0.66
"""Share of the phones panel's height the phones take; the labels of the moves have the rest."""
RESTARTS_LABELLED: Final = 12
"""With more Code Reds and CallManagerOnlines than this, their lines go unlabelled."""
LABEL_CLEARANCE: Final = 0.015
"""Lines closer than this share of the time axis have their labels on either side."""
RED_COLOUR: Final = TRANSITION_MARKERS[CODE_RED_ENTRY][1]
ONLINE_COLOUR: Final = TRANSITION_MARKERS[CALLMANAGER_ONLINE][1]


def plot_cluster(scenario: Scenario, nodes: Sequence[NodeRun], title: str, path: pathlib.Path) -> None:
    """Write the figure of a cluster's run to `path` (PNG).  `nodes` are its nodes in order, each with its
    timeline (`measures.timeline.TIMELINE_COLUMNS`: t_s the end of each second, delays in ms) and alarms."""
    assert scenario.cluster is not None
    settings = scenario.node_scenarios()
    time_s = np.asarray(nodes[0].timeline["t_s"], dtype=np.float64)
    axis = time_axis(time_s)
    colours = {node.name: NODE_COLOURS[k % len(NODE_COLOURS)] for k, node in enumerate(nodes)}
    failovers, returns = phone_moves(nodes, scenario.cluster.failover.rehome_delay_s)
    with rc_context(PLAIN_TEXT_RC):
        figure = Figure(figsize=(12.0, 8.0 + 0.25 * len(nodes)), dpi=FIGURE_DPI, layout="constrained")
        FigureCanvasAgg(figure)
        state_ax, phones_ax, delay_ax = figure.subplots(
            3, 1, sharex=True, gridspec_kw={"height_ratios": [0.35 + 0.25 * len(nodes), 2.6, 2.4]})
        _draw_states(state_ax, nodes, axis)
        _draw_phones(phones_ax, nodes, scenario.devices.phone_count, colours, axis)
        labels = _annotate_moves(phones_ax, nodes, failovers, returns, colours, axis)
        _draw_delays(delay_ax, nodes, [setting.throttling for setting in settings], colours, axis)
        for ax in (state_ax, phones_ax, delay_ax):
            _mark_restarts(ax, nodes, axis, shaded=ax is not state_ax, labelled=ax is delay_ax)
        for ax in (phones_ax, delay_ax):
            ax.grid(True, color="#e0e0e0", linewidth=0.6)
            ax.set_axisbelow(True)
        delay_ax.set_xlim(axis.to_x(axis.start_s), axis.to_x(axis.end_s))
        delay_ax.set_xlabel(f"simulated time ({axis.unit_name})")
        delay_ax.xaxis.set_major_formatter(FuncFormatter(thousands))
        figure.suptitle(title, fontsize=14, fontweight="bold")
        state_ax.set_title(_subtitle(scenario), fontsize=9, loc="left", color="#444444")
        if labels:
            figure.draw_without_rendering()  # the labels' widths are known only once laid out
            _stagger(phones_ax, labels)
        figure.savefig(path, format="png", dpi=FIGURE_DPI)


def _subtitle(scenario: Scenario) -> str:
    assert scenario.cluster is not None
    failover = scenario.cluster.failover
    throttling = scenario.throttling
    detection = ("failover at once (tcp_close)" if failover.detection == "tcp_close" else
                 f"failover after {failover.missed_keepalives} missed keepalives")
    return (f"{len(scenario.cluster.nodes)} nodes, {scenario.devices.phone_count:,} phones  |  {detection}, "
            f"rehome delay {thousands(failover.rehome_delay_s)} s  |  entry "
            f"{throttling.code_yellow_entry_latency_ms:g} ms, Code Yellow Duration "
            f"{throttling.code_yellow_duration_min} min, restart {thousands(scenario.node.restart_duration_s)} s")


def _draw_states(ax: Axes, nodes: Sequence[NodeRun], axis: TimeAxis) -> None:
    """One band per node, the first on top."""
    for row, node in enumerate(nodes):
        time_s = np.asarray(node.timeline["t_s"], dtype=np.float64)
        runs = state_runs(time_s, np.asarray(node.timeline["state"]).astype(str))
        for state, start_s, end_s in runs:
            x0 = float(axis.to_x(start_s))
            ax.broken_barh([(x0, float(axis.to_x(end_s)) - x0)], (row - 0.38, 0.76), facecolors=STATE_COLOURS[state])
    ax.set_yticks(range(len(nodes)), [node.name for node in nodes], fontsize=9)
    ax.set_ylim(len(nodes) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    handles: list[Artist] = [Patch(facecolor=colour, label=STATE_LABELS[state])
                             for state, colour in STATE_COLOURS.items()]
    handles += [Line2D([], [], color=RED_COLOUR, linewidth=1.4, label="Code Red (restart)"),
                Line2D([], [], color=ONLINE_COLOUR, linewidth=1.2, linestyle=":", label="CallManagerOnline")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), **LEGEND_STYLE)
    ax.tick_params(labelbottom=False)


def _draw_phones(ax: Axes, nodes: Sequence[NodeRun], phones: int, colours: dict[str, str], axis: TimeAxis) -> None:
    time_s = np.asarray(nodes[0].timeline["t_s"], dtype=np.float64)
    total = np.zeros(len(time_s))
    for node in nodes:
        registered = np.asarray(node.timeline["registered_devices"], dtype=np.float64)
        total += registered
        bin_t, shown = binned(time_s, registered, axis, None)
        ax.plot(axis.to_x(bin_t), shown, color=colours[node.name], linewidth=1.8,
                label=f"{node.name} ({int(registered[-1]):,} at the end)")
    nowhere_t, nowhere = binned(time_s, phones - total, axis, None)
    ax.fill_between(axis.to_x(nowhere_t), nowhere, color=NOWHERE_COLOUR, alpha=0.35, linewidth=0, step="pre",
                    label=f"with no node (at most {int(np.max(phones - total)):,})")
    ax.set_ylim(0, max(phones, 1) / PHONES_HEIGHT_FRACTION)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(thousands))
    ax.set_ylabel("phones registered")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="registered with", title_fontsize=8,
              alignment="left", **LEGEND_STYLE)
    ax.tick_params(labelbottom=False)


def _annotate_moves(ax: Axes, nodes: Sequence[NodeRun], failovers: Sequence[Failover], returns: Sequence[Return],
                    colours: dict[str, str], axis: TimeAxis) -> list[Annotation]:
    """The largest moves of phones, written above the line of the node they went to, an arrow pointing at
    the moment half of them had moved; returns the labels, in time order, for `_stagger`."""
    moves: list[tuple[int, float, str, str]] = []  # (phones, when half had moved (s), to node, text)
    for failover in failovers:
        for name, times in failover.arrivals_s.items():
            verb = f"re-register with {name}" if name == failover.node else f"fail over {failover.node} -> {name}"
            moves.append((len(times), times[len(times) // 2], name, f"{len(times):,} phones {verb}"))
    for back in returns:
        for source, times in back.rehomed_s.items():
            moves.append((len(times), times[len(times) // 2], back.node,
                          f"{len(times):,} phones rehome {source} -> {back.node}"))
    shown = sorted(sorted(moves, key=lambda move: -move[0])[:MOVES_ANNOTATED], key=lambda move: move[1])
    time_s = np.asarray(nodes[0].timeline["t_s"], dtype=np.float64)
    counts = {node.name: np.asarray(node.timeline["registered_devices"], dtype=np.float64) for node in nodes}
    labels = []
    for _phones, at_s, name, text in shown:
        row = min(int(np.searchsorted(time_s, at_s)), len(time_s) - 1)
        labels.append(ax.annotate(
            text, xy=(float(axis.to_x(at_s)), float(counts[name][row])), xytext=(float(axis.to_x(at_s)), 0.98),
            textcoords=("data", "axes fraction"), ha="center", va="top", fontsize=8, fontweight="bold",
            color=colours[name], arrowprops={"arrowstyle": "->", "color": colours[name], "linewidth": 1.0},
            bbox={"facecolor": "white", "edgecolor": colours[name], "alpha": 0.9, "boxstyle": "round,pad=0.3"},
            zorder=8, annotation_clip=False))
    return labels


def _stagger(ax: Axes, labels: Sequence[Annotation]) -> None:
    """Keep the labels inside the panel and put each in the first row where it clears the labels before it;
    hide those that fit in no row."""
    panel = ax.get_window_extent()
    row_height = (1 - PHONES_HEIGHT_FRACTION) / LABEL_ROWS
    free_from_px = [-np.inf] * LABEL_ROWS
    for label in labels:
        box = label.get_window_extent()
        if box.x1 > panel.x1:
            label.set_horizontalalignment("right")
        elif box.x0 < panel.x0:
            label.set_horizontalalignment("left")
        box = label.get_window_extent()
        row = next((k for k, free_px in enumerate(free_from_px) if box.x0 > free_px + 4), None)
        if row is None:
            label.set_visible(False)
            continue
        free_from_px[row] = box.x1
        label.set_position((label.get_position()[0], 0.98 - row * row_height))


def _draw_delays(ax: Axes, nodes: Sequence[NodeRun], throttlings: Sequence[ThrottlingParams],
                 colours: dict[str, str], axis: TimeAxis) -> None:
    time_s = np.asarray(nodes[0].timeline["t_s"], dtype=np.float64)
    peak_ms = 0.0
    for node in nodes:
        average: FloatArray = np.asarray(node.timeline["average_expected_delay_ms"], dtype=np.float64)
        bin_t, shown = binned(time_s, average, axis, np.maximum)
        peak_ms = max(peak_ms, float(np.nanmax(average)) if average.size else 0.0)
        ax.plot(axis.to_x(bin_t), shown, color=colours[node.name], linewidth=1.6,
                label=f"{node.name} (peak {thousands(float(np.nanmax(average)))} ms)")
    levels: dict[tuple[str, float], list[str]] = {}
    for node, throttling in zip(nodes, throttlings, strict=True):
        if throttling.throttling_enabled:
            levels.setdefault(("entry", float(throttling.code_yellow_entry_latency_ms)), []).append(node.name)
            levels.setdefault(("exit", float(throttling.exit_latency_ms)), []).append(node.name)
    handles, _ = ax.get_legend_handles_labels()
    everyone = len(nodes)
    for (kind, level_ms), names in levels.items():
        colour = ENTRY_LATENCY_COLOUR if kind == "entry" else EXIT_LATENCY_COLOUR
        whose = "" if len(names) == everyone else f" ({', '.join(names)})"
        handles.append(ax.axhline(level_ms, color=colour, linestyle="--", linewidth=1.1, zorder=3,
                                  label=f"{kind} latency {level_ms:g} ms{whose}"))
    entry_ms = max((level for (kind, level) in levels if kind == "entry"), default=1.0)
    if peak_ms > LOG_DELAY_FACTOR * entry_ms:
        ax.set_yscale("symlog", linthresh=1.0, linscale=SYMLOG_LINEAR_DECADES)
        ax.set_ylim(0.0, symlog_top(peak_ms, 0.92))
        ax.set_ylabel("AverageExpectedDelay\n(ms, log scale)")
    else:
        ax.set_ylim(0.0, max(peak_ms, entry_ms * 1.3) / 0.9)
        ax.set_ylabel("AverageExpectedDelay (ms)")
    ax.yaxis.set_major_formatter(FuncFormatter(thousands))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), **LEGEND_STYLE)


def _mark_restarts(ax: Axes, nodes: Sequence[NodeRun], axis: TimeAxis, shaded: bool, labelled: bool) -> None:
    """A red line at every Code Red, a dotted blue one at every CallManagerOnline, and (`shaded`) the restarts
    shaded; `labelled`: each line names its node, when they are few."""
    restarts = sorted(((alarm, node.name) for node in nodes for alarm in node.alarms
                       if alarm.name in (CODE_RED_ENTRY, CALLMANAGER_ONLINE)), key=lambda item: item[0].t_s)
    close_x = (axis.to_x(axis.end_s) - axis.to_x(axis.start_s)) * LABEL_CLEARANCE
    xs = [float(axis.to_x(alarm.t_s)) for alarm, _name in restarts]
    # Of two lines close together, the first has its label on its left, the second on its right.
    left = [k + 1 < len(xs) and xs[k + 1] - x < close_x and not (k and x - xs[k - 1] < close_x)
            for k, x in enumerate(xs)]
    for k, (alarm, name) in enumerate(restarts):
        x = float(axis.to_x(alarm.t_s))
        red = alarm.name == CODE_RED_ENTRY
        ax.axvline(x, color=RED_COLOUR if red else ONLINE_COLOUR, linewidth=1.4 if red else 1.2,
                   linestyle="-" if red else ":", zorder=4)
        if red and shaded:
            back_s = min((other.t_s for other, other_name in restarts if other_name == name and
                          other.name == CALLMANAGER_ONLINE and other.t_s > alarm.t_s), default=axis.end_s)
            ax.axvspan(x, float(axis.to_x(back_s)), color=RED_COLOUR, alpha=0.06, lw=0)
        if labelled and len(restarts) <= RESTARTS_LABELLED:
            ax.text(x, 0.97, f" {name} {'Code Red' if red else 'back'} ", transform=ax.get_xaxis_transform(),
                    rotation=90, ha="right" if left[k] else "left", va="top", fontsize=7.5, fontweight="bold",
                    color=RED_COLOUR if red else ONLINE_COLOUR, zorder=7,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.6, "pad": 0.5})
