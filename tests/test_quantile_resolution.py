"""Percentiles come from a log histogram: wherever a check shows one, it shows the histogram's resolution.

`stats.LogHistogram` reports a quantile as the geometric midpoint of the bin that holds it, so the exact
order statistic can be up to half a bin away (about ±0.58 % with 200 bins per decade).  Replications whose
p95 all land in one bin agree exactly, and a 95 % interval of ± 0 would claim a precision the histogram
does not have.  These tests pin the resolution to the histogram (measured, not restated), the list of
metrics that are histogram quantiles, and the text a check shows for a quantile and for an exact metric.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from cucm_sim.cli import main
from cucm_sim.measures.metrics import HISTOGRAM_QUANTILES, METRIC_PATHS
from cucm_sim.measures.stats import BINS_PER_DECADE, QUANTILE_RELATIVE_RESOLUTION, LogHistogram
from cucm_sim.report.sweep_plots import CapacityPlot, PlotPoint, ProbePlot, capacity_figure, sweep_figure
from cucm_sim.rules.priorities import PRIORITIES
from cucm_sim.scenario.schema import Bound
from cucm_sim.studies.check import Outcome

P95 = "dial_tone_delay_ms.p95"
NOTE = "(histogram resolution ±0.58 %)"


def test_resolution_is_the_largest_error_of_a_quantile_and_follows_the_bin_count() -> None:
    # One value per histogram, densely across two bins: the reported median is within the resolution
    # of the value, and some value comes within 1 % of the limit (so it is not merely an upper bound).
    worst = 0.0
    for value in np.geomspace(40.0, 40.0 * 10 ** (2 / BINS_PER_DECADE), 2001):
        histogram = LogHistogram()
        histogram.add(float(value))
        histogram.add(float(value) * 10)  # above the median, so the cap at the maximum never applies
        reported = histogram.quantile(0.5)
        assert reported is not None
        worst = max(worst, abs(reported - value) / value)
    assert worst <= QUANTILE_RELATIVE_RESOLUTION
    assert worst > 0.99 * QUANTILE_RELATIVE_RESOLUTION
    assert math.isclose(QUANTILE_RELATIVE_RESOLUTION, 10 ** (1 / (2 * BINS_PER_DECADE)) - 1)


def test_the_histogram_quantiles_are_the_percentiles_of_the_delay_histograms() -> None:
    expected = {f"{histogram}.{quantile}" for histogram in ("dial_tone_delay_ms", "signal_wait_ms")
                for quantile in ("p50", "p95", "p99")}
    expected |= {f"signal_wait_ms_by_priority.{priority}.p95" for priority in PRIORITIES}
    assert expected == HISTOGRAM_QUANTILES
    assert HISTOGRAM_QUANTILES <= METRIC_PATHS
    # mean, max and count are exact (sum / count, the largest value, a count), as is everything else
    assert "dial_tone_delay_ms.mean" not in HISTOGRAM_QUANTILES
    assert "dial_tone_delay_ms.max" not in HISTOGRAM_QUANTILES


def outcome(metric: str, values: list[float | None], **bound: float) -> Outcome:
    return Outcome(metric, Bound(**bound), tuple(values), tuple(range(1, len(values) + 1)))


def test_a_quantile_in_one_bin_over_replications_shows_the_resolution_beside_its_zero_interval() -> None:
    shown = outcome(P95, [40.2, 40.2, 40.2], max=50).describe_measured()
    assert shown == f"40.2 ± 0 [40.2 .. 40.2] {NOTE}"
    assert outcome("signal_wait_ms_by_priority.low.p95", [3.0, 5.0], max=9).describe_measured().endswith(NOTE)
    assert outcome(P95, [40.2], max=50).describe_measured() == f"40.2 {NOTE}"


def test_an_exact_metric_shows_no_resolution() -> None:
    assert outcome("dial_tone_delay_ms.mean", [40.2, 40.2, 40.2], max=50).describe_measured() == \
        "40.2 ± 0 [40.2 .. 40.2]"
    assert outcome("calls_rejected_fraction", [0.25], max=1).describe_measured() == "0.25"
    assert outcome(P95, [None, 3.0], max=50).describe_measured() == "did not happen (1 of 2)"


def test_a_quantile_failing_by_less_than_the_resolution_says_so() -> None:
    near = outcome(P95, [50.1, 49.0], max=50).describe_result()
    assert near == "FAIL: 0.1 above max (+0 %), 1 of 2 replications; within the histogram resolution (±0.58 %)"
    far = outcome(P95, [60.0], max=50).describe_result()
    assert far == "FAIL: 10 above max (+20 %)"
    exact = outcome("dial_tone_delay_ms.mean", [50.1], max=50).describe_result()
    assert exact == "FAIL: 0.1 above max (+0 %)"


SCENARIO = """\
name: quiet
seed: 3
duration_s: 30
load: {{calls_per_s: 2}}
expect:
  dial_tone_delay_ms.p95: {{max: {limit}}}
  calls_attempted: {{min: 1}}
"""


def test_cucm_sim_check_prints_the_resolution_of_a_quantile(tmp_path: Path) -> None:
    path = tmp_path / "quiet.yaml"
    path.write_text(SCENARIO.format(limit=1e6), encoding="utf-8")
    result = CliRunner().invoke(main, ["check", str(path), "--replications", "2"], terminal_width=200)
    assert result.exit_code == 0, result.output
    [p95_row] = [line for line in result.output.splitlines() if P95 in line]
    [count_row] = [line for line in result.output.splitlines() if "calls_attempted" in line]
    assert NOTE in p95_row
    assert "resolution" not in count_row


def test_sweep_and_capacity_captions_name_the_resolution_of_a_quantile() -> None:
    points = [PlotPoint((rate,), {P95: (10.0, 9.0, 11.0), "dial_tone_delay_ms.mean": (8.0, 7.0, 9.0)})
              for rate in (1, 2)]
    caption = sweep_figure([("load.calls_per_s", [1, 2])], points, [P95], "s").get_supxlabel()
    assert "±0.58 %" in caption.replace("\n", " ")
    exact = sweep_figure([("load.calls_per_s", [1, 2])], points, ["dial_tone_delay_ms.mean"], "s").get_supxlabel()
    assert "resolution" not in exact

    probes = (ProbePlot(1, 1.0, (5.0,), (False,)), ProbePlot(2, 2.0, (60.0,), (True,)))
    plot = CapacityPlot(title="c", key="load.calls_per_s", metric=P95, condition=f"{P95} > 50", threshold=50.0,
                        rule="rule", probes=probes, highest_safe=1.0, lowest_tripped=2.0)
    assert "±0.58 %" in capacity_figure(plot).get_supxlabel().replace("\n", " ")
