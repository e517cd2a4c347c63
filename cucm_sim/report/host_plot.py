"""The figure of a hosts-and-links run: the incident at a glance, one column of panels per link.

For each link, three panels share the time axis: the receiver's DPC Rate per processor with its % DPC
Time behind it; its receive ring (occupancy at each second's end) with the packets dropped; and the
link's heartbeats sent and received per second, with each missed check marked.  Seconds in which the
session was closed (partial service) are shaded behind every panel, and the receiver's longest silence
in its log is bracketed on the first.  Plain text only, drawn on an explicit Agg canvas, like `plotting`.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cucm_sim.host.host import LogLine
from cucm_sim.report.plotting import FIGURE_DPI, PLAIN_TEXT_RC
from cucm_sim.scenario.schema import Scenario

CLOSED_COLOUR = "#f4b6b6"
PROCESSOR_COLOURS = ("#1f4e9c", "#e08a00", "#2a9d55", "#8e44ad", "#7f7f7f", "#c0392b", "#16a085", "#34495e")


def plot_hosts(scenario: Scenario, timeline: Mapping[str, np.ndarray], log: Sequence[LogLine], title: str,
               path: pathlib.Path) -> None:
    """Write the figure of a host run to `path` (PNG)."""
    links = scenario.links or []
    columns = max(len(links), 1)
    with rc_context(PLAIN_TEXT_RC):
        figure = Figure(figsize=(7.5 * columns + 2, 9.0), dpi=FIGURE_DPI, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(3, columns, sharex=True, squeeze=False)
        t_s = timeline["t_s"]
        for k, link in enumerate(links):
            receiver = next(h for h in scenario.hosts if h.name == link.receiver)
            closed = timeline[f"{link.name}.session_open"] < 0.5
            for row, ax in enumerate(axes[:, k]):
                _shade(ax, t_s, closed, labelled=row == 2)
            _draw_dpcs(axes[0, k], timeline, receiver.name, receiver.processors, log)
            _draw_ring(axes[1, k], timeline, receiver.name, receiver.receive_descriptors)
            _draw_heartbeats(axes[2, k], timeline, link.name)
            axes[0, k].set_title(f"{link.name}: {link.sender} -> {link.receiver} ({link.transport.upper()}, "
                                 f"RSS {'on' if receiver.rss else 'off'})", fontsize=10)
            axes[2, k].set_xlabel("time (s)")
        figure.suptitle(title)
        figure.savefig(path, format="png", dpi=FIGURE_DPI)


def _shade(ax: Axes, t_s: np.ndarray, closed: np.ndarray, labelled: bool) -> None:
    for n, (start, end) in enumerate(_runs(closed)):
        ax.axvspan(t_s[start] - 1, t_s[end - 1], color=CLOSED_COLOUR, alpha=0.6, lw=0,
                   label="session closed (partial service)" if labelled and n == 0 else None)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The [start, end) index ranges where `mask` holds."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(int), [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _draw_dpcs(ax: Axes, timeline: Mapping[str, np.ndarray], host: str, processors: int,
               log: Sequence[LogLine]) -> None:
    t_s = timeline["t_s"]
    busy_ax = ax.twinx()
    for p in range(processors):
        colour = PROCESSOR_COLOURS[p % len(PROCESSOR_COLOURS)]
        ax.step(t_s, timeline[f"{host}.cpu{p}.dpc_rate"], where="post", color=colour, lw=1.2,
                label=f"DPC Rate, processor {p}")
        busy_ax.fill_between(t_s, timeline[f"{host}.cpu{p}.dpc_time_pct"], step="pre", color=colour, alpha=0.12)
    busy_ax.set_ylim(0, 105)
    busy_ax.set_ylabel("% DPC Time (shaded)")
    ax.set_ylabel(f"{host}: DPCs per tick")
    times = [line.t_s for line in log if line.host == host]
    if len(times) > 1:
        k = int(np.argmax(np.diff(times)))
        ax.annotate("", xy=(times[k], 0.92), xytext=(times[k + 1], 0.92), xycoords=("data", "axes fraction"),
                    arrowprops={"arrowstyle": "<->", "color": "black"})
        ax.text((times[k] + times[k + 1]) / 2, 0.95, f"no log line for {times[k + 1] - times[k]:.1f} s",
                transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8)
    ax.legend(loc="upper left", fontsize=8)


def _draw_ring(ax: Axes, timeline: Mapping[str, np.ndarray], host: str, descriptors: int) -> None:
    t_s = timeline["t_s"]
    ax.step(t_s, timeline[f"{host}.ring_occupancy"], where="pre", color="#1f4e9c", lw=1.2,
            label="ring occupancy at the second's end")
    ax.axhline(descriptors, color="#1f4e9c", ls=":", lw=1, label=f"{descriptors} descriptors per ring")
    drops_ax = ax.twinx()
    drops_ax.bar(t_s - 0.5, timeline[f"{host}.packets_dropped"], width=1.0, color="#c0392b", alpha=0.5)
    drops_ax.set_ylabel("packets dropped per s (bars)")
    ax.set_ylabel(f"{host}: receive ring")
    ax.legend(loc="upper left", fontsize=8)


def _draw_heartbeats(ax: Axes, timeline: Mapping[str, np.ndarray], link: str) -> None:
    t_s = timeline["t_s"]
    sent = timeline[f"{link}.heartbeats_sent"] > 0
    received = timeline[f"{link}.heartbeats_received"] > 0
    missed = timeline[f"{link}.heartbeats_missed"] > 0
    ax.scatter(t_s[sent] - 0.5, np.full(int(sent.sum()), 2.0), marker="|", s=120, color="#1f4e9c", label="sent")
    ax.scatter(t_s[received] - 0.5, np.full(int(received.sum()), 1.0), marker="|", s=120, color="#2a9d55",
               label="handed up at the receiver")
    ax.scatter(t_s[missed] - 0.5, np.full(int(missed.sum()), 0.0), marker="x", s=60, color="#c0392b",
               label="check found none: missed")
    ax.set_yticks([0, 1, 2], ["missed", "received", "sent"])
    ax.set_ylim(-0.7, 2.7)
    ax.set_ylabel(f"{link}: heartbeats")
    ax.legend(loc="upper left", fontsize=8, ncols=3)
