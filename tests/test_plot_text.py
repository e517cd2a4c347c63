"""User text in figures is plain text: a `$` in a scenario name, a grid value or a key never becomes math.

Matplotlib reads text between two `$` as math (mathtext): `Cost $\\sqrt{x$ study` then fails to parse and
the figure cannot be saved, and `$5 and $6` renders as italic math.  Every figure here is rendered to PNG,
then every Text in it (titles, captions, axis and tick labels, legends, annotations) is checked: any that
holds a `$` must have math parsing off, and the user's strings must appear verbatim.
"""

from __future__ import annotations

import io
import pathlib
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from cucm_sim.measures.timeline import TIMELINE_COLUMNS
from cucm_sim.report import plotting
from cucm_sim.report.sweep_plots import CapacityPlot, PlotPoint, ProbePlot, capacity_figure, sweep_figure
from cucm_sim.rules.throttling import ThrottleState, ThrottlingParams

BROKEN_MATH = "Cost $\\sqrt{x$ study"
"""Not valid mathtext: on a math-parsing Text, saving the figure raises."""
DOLLARS = "$5 and $6"
"""Valid mathtext: on a math-parsing Text it renders as italic '5 and 6'."""
NAMES = (BROKEN_MATH, DOLLARS)
P95 = "dial_tone_delay_ms.p95"
REJECTED = "calls_rejected_fraction"


def render(figure: Figure) -> None:
    """Save as PNG, and again cropped to the tight bounding box (which measures every text before drawing)."""
    for options in ({}, {"bbox_inches": "tight"}):
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", **options)
        assert buffer.getvalue().startswith(b"\x89PNG")


def assert_plain(figure: Figure, *expected: str) -> None:
    """Every text holding a `$` is drawn as plain text, and each `expected` string is some text, verbatim."""
    texts = figure.findobj(Text)
    math = [text.get_text() for text in texts
            if "$" in text.get_text() and (text.get_parse_math() or text.get_usetex())]
    assert not math, f"drawn as math: {math}"
    shown = [text.get_text() for text in texts]
    for string in expected:
        assert any(string in text for text in shown), f"{string!r} is not in the figure: {shown}"


def quiet_timeline(duration_s: int) -> dict[str, Any]:
    timeline: dict[str, Any] = {name: np.zeros(duration_s) for name in TIMELINE_COLUMNS}
    timeline["t_s"] = np.arange(1, duration_s + 1, dtype=float)
    timeline["state"] = np.full(duration_s, ThrottleState.NORMAL.value)
    return timeline


@pytest.mark.parametrize("name", NAMES)
def test_timeline_title_is_plain_text(name: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[Figure] = []

    class RecordedFigure(Figure):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(plotting, "Figure", RecordedFigure)
    path = tmp_path / "timeline.png"
    plotting.plot_timeline(quiet_timeline(30), [], ThrottlingParams(), f"{name} (seed 7)", path)
    assert path.read_bytes().startswith(b"\x89PNG")
    [figure] = made
    assert_plain(figure, f"{name} (seed 7)")
    assert figure.get_suptitle() == f"{name} (seed 7)"


@pytest.mark.parametrize("name", NAMES)
def test_sweep_figure_with_one_string_axis(name: str) -> None:
    values = [name, "plain", "$x$"]
    points = [PlotPoint((value,), {P95: (10.0 + index, 9.0, 11.0 + index)}) for index, value in enumerate(values)]
    figure = sweep_figure([("a.$key$", values)], points, [P95], name, replications=3)
    render(figure)
    assert_plain(figure, name, "$x$", "a.$key$")
    assert figure.get_suptitle() == name


@pytest.mark.parametrize("name", NAMES)
def test_sweep_heatmap_with_user_text_on_both_axes(name: str) -> None:
    xs = [name, "$1$"]
    ys = ["$a$", "$b"]
    points = [PlotPoint((x, y), {REJECTED: (0.1, 0.05, 0.15)}) for x in xs for y in ys]
    figure = sweep_figure([("$x$.key", xs), ("$y$.key", ys)], points, [REJECTED, P95], name, replications=2)
    render(figure)
    assert_plain(figure, name, "$1$", "$a$", "$b", "$x$.key", "$y$.key")


@pytest.mark.parametrize("name", NAMES)
def test_sweep_lines_of_combinations_with_user_text_in_the_legend(name: str) -> None:
    points = [PlotPoint((rate, rule, other), {P95: (rate * 1.0, None, None)})
              for rate in (1, 2) for rule in (name, "$z$") for other in ("$p$", "q")]
    figure = sweep_figure([("load.calls_per_s", [1, 2]), ("$rule$", [name, "$z$"]), ("$other$", ["$p$", "q"])],
                          points, [P95], name)
    render(figure)
    assert_plain(figure, name, f"{name}, $p$", "$z$, q", "$rule$\n$other$")


@pytest.mark.parametrize("name", NAMES)
def test_capacity_figure_title_key_and_condition_are_plain_text(name: str) -> None:
    probes = tuple(ProbePlot(order, value, (value / 10, value / 11), (value > 5, value > 5))
                   for order, value in enumerate((2.0, 4.0, 8.0, 6.0, 5.0), start=1))
    plot = CapacityPlot(title=name, key="$k$.rate", metric=P95, condition=f"{P95} > 0.5 $v$", threshold=0.5,
                        rule=f"rule with {name}", probes=probes, highest_safe=5.0, lowest_tripped=6.0)
    figure = capacity_figure(plot)
    render(figure)
    assert_plain(figure, name, "$k$.rate", "0.5 $v$", f"rule with {name}")
