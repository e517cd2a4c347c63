"""Issue 15, replay: a scenario's load from a recorded Perfmon / RTMT CSV (`load.trace`, `scenario.replay`).

The counting rules on arrays (differencing, restarts, per-second x interval, processed + change in present,
blanks bridged only where exact, gaps); the spread (every interval's count exact, positions uniform within
intervals by a KS test, in both engines' streams, and a run's calls per second equal to the recording's);
the schema and the loader (the refusals, the relative path, the resolved scenario, the cache, the warnings,
the work estimate); malformed files through the real command line (exit 2, one line with the file and the
line, nothing written); a daylight-saving repeat; and the round trip: a run exported as Perfmon CSV and
replayed with the same parameters reproduces the original's Code Yellow episodes within 2 s (1-s samples).
"""

from __future__ import annotations

import itertools
import math
import os
import runpy
import subprocess
import sys
import types
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import simpy
import yaml
from scipy import stats

from cucm_sim import load_scenario, simulate
from cucm_sim.engine.batched.sources import RecordedTimes
from cucm_sim.engine.signal.node import NodeModel
from cucm_sim.errors import RecordingError, ScenarioError, WorkLimitError
from cucm_sim.perfmon.counters import CounterPath
from cucm_sim.perfmon.pdh_csv import pdh_csv_text
from cucm_sim.report.output import parse_resolved_yaml, write_results
from cucm_sim.report.perfmon_export import PerfmonOptions, perfmon_text
from cucm_sim.rules.alarms import CODE_YELLOW_ENTRY, CODE_YELLOW_EXIT
from cucm_sim.run.simulation import RunResult
from cucm_sim.scenario import replay
from cucm_sim.scenario.loader import parse_scenario, scenario_warnings
from cucm_sim.scenario.profiles import capacity_breakpoints
from cucm_sim.scenario.replay import (
    IntervalCounts,
    cumulative_counts,
    per_second_counts,
    recorded_load,
    whole_count,
)
from cucm_sim.scenario.schema import Scenario
from cucm_sim.scenario.workload import check_run, estimate_run

ROOT = Path(__file__).resolve().parent.parent
HOST = "cm1"
CALLS = CounterPath(HOST, "Cisco CallManager", "CallsAttempted")
HIGH = CounterPath(HOST, "Cisco CallManager System Performance", "QueueSignalsProcessed 1-High")
HIGH_PRESENT = CounterPath(HOST, "Cisco CallManager System Performance", "QueueSignalsPresent 1-High")
CPU = CounterPath(HOST, "Processor", "% Processor Time", "_Total")
CALLS_NAME = "Cisco CallManager\\CallsAttempted"
HIGH_NAME = "Cisco CallManager System Performance\\QueueSignalsProcessed 1-High"
START = datetime(2026, 3, 10, 9, 0, 0)


def write_recording(path: Path, paths: Sequence[CounterPath], rows: Sequence[Sequence[float | str]],
                    step_s: float = 1.0, times: Sequence[datetime] | None = None,
                    first_cell: str = "(PDH-CSV 4.0) (UTC)(0)") -> Path:
    """A PDH-CSV file: one row per entry of `rows` (numbers, or text as written: '' is a blank cell)."""
    stamps = times or [START + timedelta(seconds=k * step_s) for k in range(len(rows))]
    cells = [[value if isinstance(value, str) else f"{value:g}" for value in row] for row in rows]
    path.write_text(pdh_csv_text(first_cell, paths, stamps, cells), encoding="utf-8", newline="")
    return path


def trace_scenario(folder: Path, recording: str, duration_s: int, **trace: Any) -> Path:
    """A scenario file in `folder` replaying `recording` (a name relative to the folder)."""
    data = {"name": "replay", "seed": 3, "duration_s": duration_s,
            "load": {"trace": {"file": recording, **trace}}}
    path = folder / "replay.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def arrays(*columns: Sequence[float]) -> tuple[np.ndarray, ...]:
    return tuple(np.array(column, dtype=float) for column in columns)


# ------------------------------------------------------------------ the counting rules
def test_a_running_total_is_differenced_and_a_fall_is_a_restart() -> None:
    elapsed, totals = arrays([0, 15, 30, 45, 60], [100, 130, 190, 20, 50])
    lines = np.arange(2, 7)
    starts, ends, counts, findings = cumulative_counts("f.csv", "CallsAttempted", elapsed, totals, lines)
    assert starts.tolist() == [0, 15, 30, 45] and ends.tolist() == [15, 30, 45, 60]
    assert counts.tolist() == [30, 60, 20, 30]  # the fall to 20 counts 20: the counter restarted from 0
    assert [(finding.line, finding.kind) for finding in findings] == [(5, "restart")]
    assert "fell from 190 to 20" in findings[0].detail


def test_a_blank_running_total_is_bridged_by_the_next_difference_and_reported() -> None:
    elapsed, totals = arrays([0, 1, 2, 3, 4], [0, 5, math.nan, math.nan, 20])
    starts, ends, counts, findings = cumulative_counts("f.csv", "C", elapsed, totals, np.arange(2, 7))
    assert list(zip(starts.tolist(), ends.tolist(), counts.tolist(), strict=True)) == [(0, 1, 5), (1, 4, 15)]
    assert [(finding.line, finding.kind) for finding in findings] == [(4, "blank")]
    assert "lines 4, 5" in findings[0].detail and "from line 3 to line 6" in findings[0].detail


@pytest.mark.parametrize("blank_row", [0, 4])
def test_a_running_total_blank_at_either_end_is_an_error_with_its_line(blank_row: int) -> None:
    totals = np.array([0, 5, 7, 9, 20], dtype=float)
    totals[blank_row] = math.nan
    with pytest.raises(RecordingError, match=rf"f\.csv: C is blank at line {blank_row + 2} \(the first or last row\)"):
        cumulative_counts("f.csv", "C", np.arange(5.0), totals, np.arange(2, 7))


def test_a_per_second_counter_counts_rate_times_the_interval() -> None:
    elapsed, rates = arrays([0, 15, 30, 75], [999, 2, 3, 4])  # the first row's second is before the replay
    starts, ends, counts, findings = per_second_counts("f.csv", "P", elapsed, rates, np.arange(2, 6))
    assert starts.tolist() == [0, 15, 30] and ends.tolist() == [15, 30, 75]
    assert counts.tolist() == [30, 45, 180] and findings == []


def test_a_blank_per_second_cell_is_an_error_listing_the_lines() -> None:
    rates = np.ones(12)
    rates[[2, 3, 5, 7, 8, 9, 11]] = math.nan
    with pytest.raises(RecordingError) as caught:
        per_second_counts("f.csv", "P", np.arange(12.0), rates, np.arange(2, 14))
    (problem,) = caught.value.problems
    assert "P is blank at lines 4, 5, 7, 9, 10 and 2 more" in problem and "does not fill it in" in problem


def test_arrivals_are_processed_plus_the_change_in_present() -> None:
    elapsed = np.arange(5.0)
    processed, present = arrays([0, 100, 100, 100, 150], [0, 30, 60, 10, 0])
    _, _, counts, findings = per_second_counts("f.csv", "P", elapsed, processed, np.arange(2, 7), present)
    assert counts.tolist() == [130, 130, 50, 140]
    assert findings == []
    # a restart lost the backlog: processed + change in present below 0 is taken as 0, and said
    _, _, counts, findings = per_second_counts("f.csv", "P", elapsed, processed, np.arange(2, 7),
                                               np.array([0, 500, 0, 0, 0.0]))
    assert counts.tolist() == [600, 0, 100, 150]
    assert [(finding.line, finding.kind) for finding in findings] == [(4, "clamped")]


def test_a_blank_present_is_bridged_inside_and_left_out_at_the_ends() -> None:
    elapsed = np.arange(6.0)
    processed = np.array([0, 10, 10, 10, 10, 10.0])
    present = np.array([math.nan, 0, 5, math.nan, 20, math.nan])
    starts, ends, counts, findings = per_second_counts("f.csv", "P", elapsed, processed, np.arange(2, 8), present)
    assert list(zip(starts.tolist(), ends.tolist(), counts.tolist(), strict=True)) == [
        (0, 1, 10), (1, 2, 15), (2, 4, 35), (4, 5, 10)]
    assert sorted((finding.line, finding.kind) for finding in findings) == [(2, "blank"), (5, "blank")]


def test_a_gap_is_one_interval_that_spans_it(tmp_path: Path) -> None:
    times = [START + timedelta(seconds=s) for s in (0, 15, 30, 90, 105)]
    path = write_recording(tmp_path / "gap.csv", [CALLS, HIGH],
                           [[0, 0], [30, 10], [60, 10], [300, 20], [330, 10]], times=times)
    loaded = recorded_load(parse_scenario({"name": "g", "duration_s": 100, "load": {"trace": {
        "file": str(path), "calls": CALLS_NAME, "background": [{"counter": HIGH_NAME}]}}}, "g.yaml").load.trace)  # type: ignore[arg-type]
    assert loaded.calls is not None and loaded.calls.counts.tolist() == [30, 30, 240, 30]
    assert loaded.calls.ends_s.tolist() == [15, 30, 90, 105]
    assert loaded.background[0][0].counts.tolist() == [150, 150, 20 * 60, 150]  # rate x the whole gap
    assert [(finding.line, finding.kind) for finding in loaded.findings] == [(5, "gap")]


def test_whole_counts_keep_the_expectation() -> None:
    rng = np.random.default_rng(7)
    draws = [whole_count(7.3, u) for u in rng.random(20_000)]
    assert set(draws) == {7, 8}
    assert abs(np.mean(draws) - 7.3) < 0.02
    assert whole_count(5.0, 0.999) == 5


def test_capacity_factor_is_mapped_linearly_and_clipped(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "cpu.csv", [CALLS, CPU], [[0, 0], [1, 0], [2, 50], [3, 100], [4, 120]])
    scenario = parse_scenario({"name": "c", "duration_s": 4, "node": {"capacity_factor": 2.0},
                               "disturbances": [{"kind": "cpu_slowdown", "start_s": 1.5, "end_s": 2.5,
                                                 "capacity_factor": 0.5}],
                               "load": {"trace": {"file": str(path), "capacity_factor": {
                                   "counter": "Processor(_Total)\\% Processor Time"}}}}, "c.yaml")
    steps = recorded_load(scenario.load.trace).capacity  # type: ignore[arg-type]
    assert steps is not None
    assert steps.factors.tolist() == pytest.approx([1.0, 0.525, 0.05, 0.05])  # 0 -> 1.0, 100 -> 0.05, clipped
    points = capacity_breakpoints(scenario)  # x the baseline 2.0, x 0.5 during the slowdown
    assert [t_s for t_s, _ in points] == [0.0, 1.0, 1.5, 2.0, 2.5]
    assert [factor for _, factor in points] == pytest.approx([2.0, 1.05, 0.525, 0.05, 0.1])


# ------------------------------------------------------------------ the spread
def _counts(rng: np.random.Generator, intervals: int, fractional: bool) -> IntervalCounts:
    lengths = rng.uniform(0.5, 20, intervals)
    ends = np.cumsum(lengths)
    counts = rng.uniform(0, 40, intervals) if fractional else rng.integers(0, 40, intervals).astype(float)
    return IntervalCounts("x", "x", ends - lengths, ends, counts)


def _positions(times: np.ndarray, counts: IntervalCounts) -> tuple[np.ndarray, np.ndarray]:
    """(arrivals per interval, each arrival's position in its interval as a fraction of its length)."""
    index = np.searchsorted(counts.ends_s, times, side="left")
    per_interval = np.bincount(index, minlength=len(counts.counts))
    fraction = (times - counts.starts_s[index]) / (counts.ends_s[index] - counts.starts_s[index])
    return per_interval, fraction


def test_batched_stream_gives_each_interval_its_count_at_uniform_positions() -> None:
    counts = _counts(np.random.default_rng(1), 2_000, fractional=False)
    stream = RecordedTimes(counts, np.random.default_rng(2))
    cuts = np.arange(0, counts.ends_s[-1] + 8, 8.0)
    times = np.concatenate([stream.take(t0, t1) for t0, t1 in itertools.pairwise(cuts)])
    assert np.all(np.diff(times) >= 0)
    per_interval, fraction = _positions(times, counts)
    assert per_interval.tolist() == counts.counts.astype(int).tolist()
    assert stats.kstest(fraction, "uniform").pvalue > 0.01
    # the arrivals do not depend on how time is cut into blocks
    again = RecordedTimes(counts, np.random.default_rng(2))
    other_cuts = np.concatenate(([0.0], np.sort(np.random.default_rng(3).uniform(0, counts.ends_s[-1], 50)),
                                 [counts.ends_s[-1] + 1]))
    assert np.array_equal(np.concatenate([again.take(t0, t1) for t0, t1 in itertools.pairwise(other_cuts)]), times)


def test_batched_stream_rounds_a_fraction_by_its_probability() -> None:
    counts = IntervalCounts("x", "x", np.arange(5000.0), np.arange(1.0, 5001.0), np.full(5000, 2.25))
    per_interval, _ = _positions(RecordedTimes(counts, np.random.default_rng(4)).take(0, 6000), counts)
    assert set(per_interval.tolist()) == {2, 3}
    assert abs(per_interval.mean() - 2.25) < 0.03


def test_signal_engine_process_gives_each_interval_its_count_at_uniform_positions() -> None:
    counts = _counts(np.random.default_rng(5), 2_000, fractional=False)
    env = simpy.Environment()
    arrivals: list[float] = []
    model = types.SimpleNamespace(env=env, _over=False, duration_s=math.inf)
    env.process(NodeModel._recorded_arrivals(model, counts, np.random.default_rng(6),  # type: ignore[arg-type]
                                             lambda: arrivals.append(env.now)))
    env.run()
    per_interval, fraction = _positions(np.array(arrivals), counts)
    assert per_interval.tolist() == counts.counts.astype(int).tolist()
    assert stats.kstest(fraction, "uniform").pvalue > 0.01


@pytest.mark.parametrize("engine", ["batched", "signal"])
def test_a_run_attempts_the_recorded_calls_every_second(engine: str, tmp_path: Path) -> None:
    per_second = np.random.default_rng(8).integers(0, 30, 120)
    totals = np.concatenate(([1000], 1000 + np.cumsum(per_second)))
    write_recording(tmp_path / "calls.csv", [CALLS], [[total] for total in totals])
    scenario = load_scenario(trace_scenario(tmp_path, "calls.csv", 120, calls=CALLS_NAME), [f"engine={engine}"])
    result = simulate(scenario)
    assert np.asarray(result.timeline["calls_attempted"]).tolist() == per_second.tolist()


# ------------------------------------------------------------------ schema and loading
@pytest.fixture
def recording(tmp_path: Path) -> Path:
    return write_recording(tmp_path / "rec.csv", [CALLS, HIGH, HIGH_PRESENT],
                           [[10 * k, 100, 0] for k in range(61)])


def _problems(path: Path, overrides: Sequence[str] = ()) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, overrides)
    return caught.value.problems


def test_a_trace_excludes_calls_per_s_and_calls_profile(recording: Path) -> None:
    path = trace_scenario(recording.parent, "rec.csv", 60, calls=CALLS_NAME)
    (problem,) = _problems(path, ["load.calls_per_s=5"])
    assert "load.trace gives the load: leave out calls_per_s and calls_profile" in problem
    (problem,) = _problems(path, ["load.calls_profile=[[0, 1]]"])
    assert "calls_profile" in problem and "load.trace" in problem


def test_a_trace_is_refused_in_a_cluster(recording: Path) -> None:
    data = {"name": "c", "duration_s": 60, "load": {"trace": {"file": str(recording), "calls": CALLS_NAME}},
            "cluster": {"nodes": [{"name": "cm1"}]}, "devices": {"pools": [{"name": "p", "count": 1,
                                                                             "cm_group": ["cm1"]}]}}
    with pytest.raises(ScenarioError, match="a recording drives one CUCM node; this scenario is a cluster"):
        parse_scenario(data, "c.yaml")


def test_a_run_longer_than_the_recording_names_both_lengths(recording: Path) -> None:
    path = trace_scenario(recording.parent, "rec.csv", 61, calls=CALLS_NAME)
    (problem,) = _problems(path)
    assert "duration_s 61 s is longer than the recording" in problem and "60 s from 03/10/2026 09:00:00" in problem
    assert "at most 60" in problem


def test_counters_are_checked(recording: Path) -> None:
    path = trace_scenario(recording.parent, "rec.csv", 60)
    (problem,) = _problems(path)
    assert "a trace drives nothing" in problem
    (problem,) = _problems(path, ["load.trace.calls=Cisco CallManager System Performance\\QueueSignalsPresent 1-High"])
    assert "is a reading" in problem and "cannot drive call attempts" in problem
    (problem,) = _problems(path, ["load.trace.background=[{counter: 'Cisco CallManager\\CallsAttempted'}]"])
    assert "say which queue" in problem
    (problem,) = _problems(path, ["load.trace.calls=CallsAttempted"])
    assert "is not a counter path" in problem
    (problem,) = _problems(path, ["load.trace.time_zone=Mars/Olympus"])
    assert "not an IANA time zone" in problem
    (problem,) = _problems(path, ["load.trace.capacity_factor={counter: 'Processor(_Total)\\% Processor Time', "
                                  "reading_low: 50, reading_high: 10}"])
    assert "must be above reading_low" in problem


def test_a_queue_counter_names_its_priority_and_the_file_is_anchored(recording: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = trace_scenario(recording.parent, "rec.csv", 60, calls=CALLS_NAME, background=[{"counter": HIGH_NAME}])
    monkeypatch.chdir(ROOT)  # not the scenario's folder: the file is found beside the scenario all the same
    scenario = load_scenario(path)
    trace = scenario.load.trace
    assert trace is not None and trace.file == str(recording) and trace.background[0].priority == "high"
    resolved = scenario.resolved_data()["load"]["trace"]
    assert resolved["file"] == str(recording) and resolved["background"][0]["priority"] == "high"
    assert "trace" not in Scenario.model_validate({"name": "x", "duration_s": 1}).resolved_data()["load"]


def test_the_resolved_scenario_reads_back_and_runs_the_same(recording: Path, tmp_path: Path) -> None:
    path = trace_scenario(recording.parent, "rec.csv", 60, calls=CALLS_NAME, background=[{"counter": HIGH_NAME}])
    result = simulate(load_scenario(path))
    write_results(result, tmp_path / "run", plots=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "scenario.resolved.yaml").write_text((tmp_path / "run" / "scenario.resolved.yaml").read_text())
    again = simulate(parse_resolved_yaml((elsewhere / "scenario.resolved.yaml").read_text(), "resolved"))
    assert {k: v for k, v in again.summary.items() if k != "wall_s"} == {
        k: v for k, v in result.summary.items() if k != "wall_s"}


def test_a_recording_is_read_once_while_it_is_unchanged(recording: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = trace_scenario(recording.parent, "rec.csv", 60, calls=CALLS_NAME)
    reads: list[str] = []
    real = replay.read_recorded_load

    def counted(trace: Any) -> replay.RecordedLoad:
        reads.append(trace.file)
        return real(trace)

    monkeypatch.setattr(replay, "read_recorded_load", counted)
    scenario = load_scenario(path)
    first = recorded_load(scenario.load.trace)  # type: ignore[arg-type]
    simulate(scenario)
    estimate_run(scenario)
    scenario_warnings(scenario, "x")
    assert recorded_load(scenario.load.trace) is first and len(reads) == 1  # type: ignore[arg-type]
    write_recording(recording, [CALLS, HIGH, HIGH_PRESENT], [[20 * k, 100, 0] for k in range(61)])
    os.utime(recording, ns=(0, 10**9))  # a new modification time: read again
    assert recorded_load(scenario.load.trace).calls.counts.sum() == 1200  # type: ignore[arg-type,union-attr]
    assert len(reads) == 2


def test_what_the_recording_holds_becomes_warnings_with_lines(tmp_path: Path) -> None:
    times = [START + timedelta(seconds=s) for s in (0, 1, 2, 3, 10, 11)]
    write_recording(tmp_path / "w.csv", [CALLS], [[5], [6], [2], [""], [9], [10]], times=times)
    warnings = scenario_warnings(load_scenario(trace_scenario(tmp_path, "w.csv", 11, calls=CALLS_NAME)), "s.yaml")
    where = f"s.yaml: load.trace: {tmp_path / 'w.csv'}, line"
    assert len(warnings) == 3 and all(warning.startswith(where) for warning in warnings)
    assert "line 4: \\\\cm1\\Cisco CallManager\\CallsAttempted fell from 6 to 2" in warnings[0]
    assert "line 5: \\\\cm1\\Cisco CallManager\\CallsAttempted is blank at line 5" in warnings[1]
    assert "line 6: 7 s since the previous row (usually 1 s)" in warnings[2]


def test_the_work_estimate_uses_the_recorded_rates(tmp_path: Path) -> None:
    rates = np.full(3601, 100.0)
    rates[1800:1900] = 3000.0  # a 100-s burst
    write_recording(tmp_path / "r.csv", [CALLS, HIGH], [[k, rate] for k, rate in enumerate(rates)])
    scenario = load_scenario(trace_scenario(tmp_path, "r.csv", 3600, calls=CALLS_NAME,
                                            background=[{"counter": HIGH_NAME}]))
    estimate = estimate_run(scenario)
    parts = {part.field: part for part in estimate.contributions}
    assert parts["load.trace.background.0"].signals == pytest.approx(rates[1:].sum())
    assert parts["load.trace.calls"].signals == pytest.approx(3600 * 12)
    assert 3000 <= estimate.peak_signals_per_s <= 3000 + 12 * 2
    write_recording(tmp_path / "r.csv", [CALLS, HIGH], [[k, 1e6] for k in range(3601)])
    with pytest.raises(WorkLimitError, match=r"load.trace.background.0: 1,000,000 signals/s on average"):
        check_run(load_scenario(trace_scenario(tmp_path, "r.csv", 3600, calls=CALLS_NAME,
                                               background=[{"counter": HIGH_NAME}])), "r.yaml")


# ------------------------------------------------------------------ malformed files, through the command line
MALFORMED = {
    "a bad time stamp": ('"03/10/2026 09:00:02.000"', '"03/10/2026 9:00:02"', 4, "is not a date and time"),
    "a non-numeric cell": ('"7","100","0"', '"7","lots","0"', 9, "not a number"),
    "a truncated row": ('"7","100","0"', '"7","100"', 9, "a truncated or damaged row"),
}


def cucm_sim(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cucm_sim.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120, check=False)


def _one_error(result: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and all(part in line for part in parts), line


@pytest.mark.parametrize("damage", sorted(MALFORMED))
def test_a_malformed_recording_is_one_error_with_its_line(damage: str, tmp_path: Path) -> None:
    good, bad, line, words = MALFORMED[damage]
    rows = [[k, 100, 0] for k in range(31)]
    rows[7][0] = 7
    recording = write_recording(tmp_path / "rec.csv", [CALLS, HIGH, HIGH_PRESENT], rows)
    text = recording.read_text()
    target = text.splitlines()[line - 1]
    assert good in target, target
    recording.write_text(text.replace(target, target.replace(good, bad, 1)), newline="")
    scenario = trace_scenario(tmp_path, "rec.csv", 30, calls=CALLS_NAME, background=[{"counter": HIGH_NAME}])
    _one_error(cucm_sim("run", scenario, "--out", tmp_path / "out"), f"{recording}, line {line}: ", words)
    assert not (tmp_path / "out").exists()


def test_a_missing_counter_is_one_error_naming_the_header(recording: Path, tmp_path: Path) -> None:
    scenario = trace_scenario(tmp_path, "rec.csv", 30, calls=CALLS_NAME,
                              background=[{"counter": "Cisco CallManager System Performance\\QueueSignalsProcessed "
                                                      "2-Normal"}])
    for command in (("run", scenario, "--out", tmp_path / "out"), ("check", scenario, "--set",
                                                                   "expect.calls_attempted.min=0")):
        _one_error(cucm_sim(*command), f"{recording}, line 1: no counter", "QueueSignalsProcessed 2-Normal")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ daylight saving
def _dst_recording(folder: Path) -> Path:
    """15-s samples across the end of British Summer Time (26 October 2025, 02:00 BST -> 01:00 GMT), with the
    header Windows writes (its zone name, which zoneinfo does not know)."""
    first = datetime(2025, 10, 26, 0, 50, 0)
    london = ZoneInfo("Europe/London")
    utc = first.replace(tzinfo=london).astimezone(UTC)
    times = [(utc + timedelta(seconds=15 * k)).astimezone(london).replace(tzinfo=None) for k in range(400)]
    return write_recording(folder / "dst.csv", [CALLS], [[3 * k] for k in range(400)], times=times,
                           first_cell="(PDH-CSV 4.0) (GMT Standard Time)(-60)")


def test_a_daylight_saving_repeat_is_read_with_the_time_zone(tmp_path: Path) -> None:
    recording = _dst_recording(tmp_path)
    scenario = load_scenario(trace_scenario(tmp_path, "dst.csv", 5985, calls=CALLS_NAME, time_zone="Europe/London"))
    loaded = recorded_load(scenario.load.trace)  # type: ignore[arg-type]
    assert loaded.length_s == 399 * 15 and loaded.calls is not None
    assert set(loaded.calls.ends_s - loaded.calls.starts_s) == {15.0}
    (warning,) = scenario_warnings(scenario, "s.yaml")
    assert (f"{recording}, line 282: clocks went back: 10/26/2025 01:00:00.000 follows 10/26/2025 01:59:45.000"
            in warning)


def test_a_daylight_saving_repeat_without_a_time_zone_is_refused(tmp_path: Path) -> None:
    recording = _dst_recording(tmp_path)
    with pytest.raises(RecordingError) as caught:
        load_scenario(trace_scenario(tmp_path, "dst.csv", 600, calls=CALLS_NAME))
    (problem,) = caught.value.problems
    assert f"{recording}, line 282: the time stamp 10/26/2025 01:00:00.000 is before the previous row's" in problem
    assert "name the file's time zone (time_zone: Europe/London" in problem


# ------------------------------------------------------------------ the round trip
INCIDENT: dict[str, Any] = {
    "name": "incident", "duration_s": 300,
    "load": {"calls_per_s": 10, "background": [{"signals_per_s": 1000, "priority": "high"}]},
    "devices": {"count": 500},
    "disturbances": [{"kind": "signal_burst", "start_s": 100.4, "end_s": 160.7, "signals_per_s": 5500,
                      "priority": "high"}],
}


def episodes(result: RunResult) -> list[tuple[str, float]]:
    return [(alarm.name, alarm.t_s) for alarm in result.alarms if alarm.name in (CODE_YELLOW_ENTRY, CODE_YELLOW_EXIT)]


def round_trip(folder: Path, engine: str, seed: int, interval_s: int) -> tuple[list[tuple[str, float]],
                                                                                 list[tuple[str, float]]]:
    """(the original's Code Yellow entries and exits, the replay's): the incident run, exported as Perfmon CSV
    every `interval_s`, replayed with the same parameters and seed."""
    original = simulate(Scenario.model_validate({**INCIDENT, "seed": seed, "engine": engine}))
    recording = folder / f"{engine}-{seed}-{interval_s}.csv"
    recording.write_text(perfmon_text(original, PerfmonOptions(interval_s=interval_s, host=HOST)), newline="")
    data = {key: value for key, value in INCIDENT.items() if key != "disturbances"}
    data.update(seed=seed, engine=engine, load={"trace": {"file": str(recording), "calls": CALLS_NAME,
                                                          "background": [{"counter": HIGH_NAME}]}})
    replayed = simulate(parse_scenario(data, "replay"))
    return episodes(original), episodes(replayed)


def _within(original: list[tuple[str, float]], replayed: list[tuple[str, float]], seconds: float) -> None:
    assert original, "the incident must give Code Yellow"
    assert [name for name, _ in replayed] == [name for name, _ in original], (original, replayed)
    errors = [abs(a - b) for (_, a), (_, b) in zip(original, replayed, strict=True)]
    assert max(errors) <= seconds, (original, replayed)


def test_round_trip_reproduces_code_yellow_within_2_s(tmp_path: Path) -> None:
    _within(*round_trip(tmp_path, "batched", 1, 1), 2.0)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["batched", "signal"])
@pytest.mark.parametrize("seed", [2, 3, 4])
def test_round_trip_over_seeds_and_engines(engine: str, seed: int, tmp_path: Path) -> None:
    _within(*round_trip(tmp_path, engine, seed, 1), 2.0)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["batched", "signal"])
def test_round_trip_at_15_s_moves_episodes_by_at_most_an_interval(engine: str, tmp_path: Path) -> None:
    """RTMT's 15-s polling: an interval holding part of the burst spreads it over all 15 s."""
    _within(*round_trip(tmp_path, engine, 1, 15), 15.0)


# ------------------------------------------------------------------ the library's recording
@pytest.mark.slow
def test_the_shipped_recording_is_what_its_script_writes() -> None:
    """Regression (same seed, same bytes): scenarios/data/make_recording.py recreates cm1_incident_15s.csv."""
    script = runpy.run_path(str(ROOT / "scenarios" / "data" / "make_recording.py"))
    assert script["recording_text"]().encode("utf-8") == (ROOT / "scenarios" / "data" / "cm1_incident_15s.csv"
                                                          ).read_bytes()


def test_a_blank_per_second_count_or_capacity_reading_is_refused_with_its_lines() -> None:
    from cucm_sim.errors import RecordingError
    from cucm_sim.scenario.replay import capacity_steps, per_second_counts
    from cucm_sim.scenario.trace import TraceCapacity

    elapsed_s, lines = np.arange(5.0), np.arange(2, 7)
    values = np.array([1.0, 2.0, np.nan, 3.0, np.nan])
    with pytest.raises(RecordingError, match=r"rec\.csv: Q is blank at lines 4, 6: a per-second count cannot "
                       r"be known there, and cucm-sim does not fill it in; mend the file or cut it to the rows"):
        per_second_counts("rec.csv", "Q", elapsed_s, values, lines)
    mapping = TraceCapacity(counter="Processor(_Total)\\% Processor Time")
    with pytest.raises(RecordingError, match=r"P is blank at lines 4, 6: the capacity factor cannot be known "
                       r"there, and cucm-sim does not fill it in; mend the file or leave out capacity_factor"):
        capacity_steps("rec.csv", mapping, "P", elapsed_s, values, lines)
    steps = capacity_steps("rec.csv", mapping, "P", elapsed_s, np.array([0.0, 0.0, 50.0, 100.0, 100.0]), lines)
    assert np.allclose(steps.factors, [1.0, 0.525, 0.05, 0.05]) and np.array_equal(steps.starts_s, elapsed_s[:-1])
