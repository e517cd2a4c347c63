"""`cucm-sim compare`: Code Yellow episodes from samples and from alarms, their matching (constructed cases with
exact answers, the sample-resolution rule), a run against its own Perfmon export (every episode matched, no
difference at 1-s sampling, less than one interval at 15 s) and against another seed's, the counters under
Cisco's names, the figure's lines, the files and the command end to end."""

from __future__ import annotations

import csv
import io
import math
import subprocess
import sys
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from cucm_sim.cli import main
from cucm_sim.errors import RecordingError, UserError
from cucm_sim.perfmon import counters as names
from cucm_sim.perfmon.counters import CounterPath
from cucm_sim.perfmon.pdh_csv import PDH_VERSION, pdh_csv_text
from cucm_sim.report.compare import (
    AVERAGE_EXPECTED_DELAY,
    CALLS_ATTEMPTED,
    CODE_YELLOW,
    COMPARED,
    CSV_COLUMNS,
    QUEUES_PRESENT,
    AlarmEpisode,
    Comparison,
    compare,
    compare_csv,
    episode_rows,
    episodes_from_alarms,
    episodes_from_samples,
    read_recording,
)
from cucm_sim.report.compare_plot import comparison_figure
from cucm_sim.report.output import read_run, write_results
from cucm_sim.report.perfmon_export import PerfmonOptions, perfmon_counters, perfmon_text
from cucm_sim.rules.alarms import CODE_RED_ENTRY, CODE_YELLOW_ENTRY, CODE_YELLOW_EXIT, Alarm
from cucm_sim.run.simulation import RunResult, simulate
from cucm_sim.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parent.parent
CPU_STARVATION = ROOT / "scenarios" / "cpu_starvation.yaml"
_SECOND = timedelta(seconds=1)
ROUNDING = 0.5e-4
"""The export's rounding (4 decimal places)."""


@cache
def starvation_run(seed: int = 7) -> RunResult:
    """cpu_starvation.yaml cut to 900 s: healthy to 600 s, then in and out of Code Yellow about 15 times."""
    return simulate(load_scenario(CPU_STARVATION, ["duration_s=900", f"seed={seed}"]))


def recording_of(tmp_path: Path, result: RunResult, interval_s: int, name: str = "rec.csv") -> Path:
    path = tmp_path / name
    path.write_text(perfmon_text(result, PerfmonOptions(interval_s=interval_s)), encoding="utf-8", newline="")
    return path


def compared(tmp_path: Path, result: RunResult, recorded_from: RunResult, interval_s: int) -> Comparison:
    return compare(result, read_recording(recording_of(tmp_path, recorded_from, interval_s)))


def yellow_level(times_s: np.ndarray, alarms: list[Alarm]) -> np.ndarray:
    """CodeYellowEntryExit at `times_s` as the export has it: 1 from the whole second at or after an entry."""
    level = np.zeros(len(times_s))
    for episode in episodes_from_alarms(alarms):
        end = math.inf if episode.exit_s is None else math.ceil(episode.exit_s)
        level[(times_s >= math.ceil(episode.entry_s)) & (times_s < end)] = 1.0
    return level


def yellow(entry_s: float, exit_s: float | None) -> list[Alarm]:
    return [Alarm(CODE_YELLOW_ENTRY, entry_s), *([Alarm(CODE_YELLOW_EXIT, exit_s)] if exit_s is not None else [])]


# ----------------------------------------------------------------------------------------------- constructed
def test_recorded_episodes_at_sample_resolution() -> None:
    times = np.arange(0.0, 120.0, 15.0)  # 0, 15, ..., 105
    level = np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=float)
    red = np.array([0, 0, 0, 0, 1, 0, 0, 0], dtype=float)
    first, second = episodes_from_samples(times, level, red)
    # entry between the last 0 (15 s) and the first 1 (30 s); exit between the last 1 (45 s) and the first 0 (60 s)
    assert (first.entry_after_s, first.entry_s, first.exit_after_s, first.exit_s) == (15.0, 30.0, 45.0, 60.0)
    assert first.duration_s == 30.0 and first.ended_in_code_red
    assert (second.entry_s, second.exit_after_s, second.exit_s) == (90.0, 105.0, None)  # not over at the end
    assert second.duration_s is None and not second.ended_in_code_red
    already, = episodes_from_samples(times, np.array([1, 1, 0, 0, 0, 0, 0, 0], dtype=float))
    assert (already.entry_s, already.entry_after_s, already.exit_s) == (None, None, 30.0)  # entered before


def test_alarm_episodes_end_at_exit_or_code_red_or_stay_open() -> None:
    alarms = [*yellow(10, 40), Alarm(CODE_YELLOW_ENTRY, 100), Alarm(CODE_RED_ENTRY, 400),
              Alarm(CODE_YELLOW_ENTRY, 700)]
    assert episodes_from_alarms(alarms) == [AlarmEpisode(10, 40), AlarmEpisode(100, 400, ended_in_code_red=True),
                                            AlarmEpisode(700, None)]


def test_matching_by_overlap_with_an_unmatched_episode_on_each_side() -> None:
    times = np.arange(0.0, 301.0, 10.0)
    recorded = np.zeros(len(times))
    recorded[(times >= 50) & (times < 100)] = 1.0  # matched with the run's 45..95
    recorded[(times >= 200) & (times < 230)] = 1.0  # the run has nothing here
    alarms = [*yellow(45, 95), *yellow(140, 170), *yellow(251, 258)]  # 251..258: between the samples 250 and 260
    rows, outside = episode_rows(times, recorded, yellow_level(times, alarms), alarms)
    assert outside == 0
    matched, simulated_only, recorded_only, unseen = rows
    assert matched.recorded is not None and matched.simulated == (AlarmEpisode(45, 95),)
    assert (matched.recorded.entry_after_s, matched.recorded.entry_s) == (40.0, 50.0)
    assert (matched.recorded.exit_after_s, matched.recorded.exit_s) == (90.0, 100.0)
    assert (matched.entry_difference_s, matched.exit_difference_s) == (5.0, 5.0)
    assert (matched.simulated_duration_s, matched.recorded.duration_s) == (50.0, 50.0)
    assert simulated_only.recorded is None and simulated_only.simulated == (AlarmEpisode(140, 170),)
    assert simulated_only.visible and simulated_only.note == "simulated only"
    assert recorded_only.recorded is not None and not recorded_only.simulated
    assert (recorded_only.recorded.entry_s, recorded_only.recorded.exit_s) == (200.0, 230.0)
    assert recorded_only.note == "recorded only" and recorded_only.entry_difference_s is None
    assert unseen.simulated == (AlarmEpisode(251, 258),) and not unseen.visible
    assert "between two samples" in unseen.note


def test_episodes_the_samples_cannot_tell_apart_are_one_row() -> None:
    times = np.arange(0.0, 200.0, 15.0)
    alarms = [*yellow(31, 47), *yellow(52, 80)]  # out at 47, in again at 52: no sample between
    level = yellow_level(times, alarms)
    rows, _ = episode_rows(times, level, level, alarms)
    row, = rows
    assert row.simulated == (AlarmEpisode(31, 47), AlarmEpisode(52, 80))
    assert (row.simulated_entry_s, row.simulated_exit_s) == (31, 80)
    assert (row.entry_difference_s, row.exit_difference_s) == (45 - 31, 90 - 80)


def test_blank_samples_widen_the_bracket() -> None:
    times = np.arange(0.0, 100.0, 10.0)
    recorded = np.array([0, 0, np.nan, 1, 1, np.nan, np.nan, 0, 0, 0])
    rows, _ = episode_rows(times, recorded, yellow_level(times, yellow(25, 55)), yellow(25, 55))
    episode = rows[0].recorded
    assert episode is not None
    assert (episode.entry_after_s, episode.entry_s, episode.exit_after_s, episode.exit_s) == (10.0, 30.0, 40.0, 70.0)


def test_episodes_outside_the_recording_are_not_compared() -> None:
    times = np.arange(300.0, 601.0, 10.0)
    alarms = [*yellow(100, 150), *yellow(400, 450)]
    level = yellow_level(times, alarms)
    rows, outside = episode_rows(times, level, level, alarms)
    assert outside == 1 and [row.simulated for row in rows] == [(AlarmEpisode(400, 450),)]


# ----------------------------------------------------------------------------------------------- a run and its export
def test_a_run_against_its_own_export_at_1_s_matches_every_episode_exactly(tmp_path: Path) -> None:
    run = starvation_run()
    comparison = compared(tmp_path, run, run, 1)
    episodes = episodes_from_alarms(run.alarms)
    assert len(episodes) >= 10
    assert len(comparison.rows) == len(episodes) == comparison.summary.matched
    for row, episode in zip(comparison.rows, episodes, strict=True):
        assert row.simulated == (episode,)
        assert row.entry_difference_s == 0 and row.exit_difference_s == 0
    # The export writes values to 4 decimal places, as timeline.csv holds them: a run read back from its
    # directory (what the command compares) gives exactly 0; this one, fresh from memory, the rounding.
    assert comparison.summary.delay_rmse_ms < ROUNDING and comparison.summary.delay_correlation == pytest.approx(1.0)
    assert comparison.missing == ()
    for series in comparison.series:  # the same counters, the same values, blanks (first rate) alike
        assert series.recorded is not None
        np.testing.assert_allclose(series.recorded, series.simulated, rtol=0, atol=ROUNDING)


def test_a_run_against_its_own_export_at_15_s_is_within_one_interval(tmp_path: Path) -> None:
    run = starvation_run()
    comparison = compared(tmp_path, run, run, 15)
    assert comparison.interval_s == 15
    recorded = [row for row in comparison.rows if row.recorded is not None]
    assert recorded and all(row.matched for row in recorded)
    for row in recorded:
        assert row.recorded is not None and row.recorded.entry_after_s is not None
        entry, exit_ = row.entry_difference_s, row.exit_difference_s
        assert entry is not None and exit_ is not None
        assert 0 <= entry < 15 and 0 <= exit_ < 15
        assert row.recorded.entry_after_s < row.simulated[0].entry_s <= row.recorded.entry_s
    assert any(len(row.simulated) > 1 for row in recorded), "some episodes merge at 15 s"
    grouped = [episode for row in comparison.rows for episode in row.simulated]
    assert grouped == episodes_from_alarms(starvation_run().alarms), "every episode is in one row, in order"
    assert all(row.matched or not row.visible for row in comparison.rows)


def test_another_seed_differs_and_says_by_how_much(tmp_path: Path) -> None:
    comparison = compared(tmp_path, starvation_run(11), starvation_run(7), 1)
    differences = [d for row in comparison.rows if row.matched
                   for d in (row.entry_difference_s, row.exit_difference_s) if d is not None]
    assert comparison.summary.matched >= 1 and any(d != 0 for d in differences)
    assert comparison.summary.mean_abs_entry_s > 0 and comparison.summary.delay_rmse_ms > 0
    assert 0 < comparison.summary.delay_correlation < 1


def test_an_offset_places_a_recording_that_starts_later(tmp_path: Path) -> None:
    run = starvation_run()
    columns = perfmon_counters(run, PerfmonOptions())
    times = list(range(300, 901, 5))
    text = pdh_csv_text(PDH_VERSION, [path for path, _ in columns],
                        [datetime(2026, 3, 1, 9, 0, 0) + (t - 300) * _SECOND for t in times],
                        [[f"{values[t]:g}" for _, values in columns] for t in times])
    path = tmp_path / "late.csv"
    path.write_text(text, encoding="utf-8", newline="")
    comparison = compare(run, read_recording(path), offset_s=300)
    assert comparison.times_s[0] == 300 and comparison.times_s[-1] == 900
    assert comparison.summary.matched == comparison.summary.recorded_episodes > 0
    with pytest.raises(UserError, match="no overlap in time"):
        compare(run, read_recording(path), offset_s=1000)
    before = compare(run, read_recording(path), offset_s=-100)  # the first 100 s of the recording precede the run
    assert before.rows_before == 20 and before.times_s[0] == 0


def test_counters_missing_from_the_recording_are_left_out(tmp_path: Path) -> None:
    run = starvation_run()
    kept = [(path, values) for path, values in perfmon_counters(run, PerfmonOptions())
            if path.counter in (names.AVERAGE_EXPECTED_DELAY, names.CODE_YELLOW_ENTRY_EXIT, names.CALLS_ATTEMPTED)]
    times = range(0, 901, 15)
    path = tmp_path / "some.csv"
    path.write_text(pdh_csv_text(PDH_VERSION, [p for p, _ in kept], [datetime(2026, 1, 1) + t * _SECOND for t in times],
                                 [[f"{values[t]:g}" for _, values in kept] for t in times]),
                    encoding="utf-8", newline="")
    comparison = compare(run, read_recording(path))
    assert set(comparison.missing) == set(COMPARED) - {AVERAGE_EXPECTED_DELAY, CODE_YELLOW, CALLS_ATTEMPTED}
    assert comparison.get(QUEUES_PRESENT[0]).recorded is None
    assert comparison.summary.matched > 0
    without_delay = [(p, v) for p, v in kept if p.counter != names.AVERAGE_EXPECTED_DELAY]
    path.write_text(pdh_csv_text(PDH_VERSION, [p for p, _ in without_delay], [datetime(2026, 1, 1)],
                                 [["0"] * len(without_delay)]), encoding="utf-8", newline="")
    with pytest.raises(RecordingError, match="AverageExpectedDelay"):
        read_recording(path)


def test_a_restart_of_a_running_total_leaves_its_interval_out(tmp_path: Path) -> None:
    path = _small_recording(tmp_path, attempted=["0", "10", "30", "5", "25"])
    comparison = compare(starvation_run(), read_recording(path))
    rates = comparison.get(CALLS_ATTEMPTED).recorded
    assert rates is not None
    np.testing.assert_array_equal(rates, [np.nan, 1.0, 2.0, np.nan, 2.0])
    assert comparison.recorded_restarts == 1


def _small_recording(tmp_path: Path, attempted: list[str], hosts: tuple[str, ...] = ("cucm",)) -> Path:
    paths = [CounterPath(host, obj, counter) for host in hosts for obj, counter in (
        (names.SYSTEM_PERFORMANCE, names.AVERAGE_EXPECTED_DELAY), (names.CALLMANAGER, names.CALLS_ATTEMPTED))]
    rows = [[cell for _host in hosts for cell in ("0", total)] for total in attempted]
    path = tmp_path / "small.csv"
    path.write_text(pdh_csv_text(PDH_VERSION, paths, [datetime(2026, 1, 1) + 10 * k * _SECOND
                                                      for k in range(len(attempted))], rows),
                    encoding="utf-8", newline="")
    return path


def test_the_host_is_chosen_or_asked_for(tmp_path: Path) -> None:
    path = _small_recording(tmp_path, ["0", "1"], hosts=("cm1", "cm2"))
    with pytest.raises(RecordingError, match="choose one with --host"):
        read_recording(path)
    assert read_recording(path, host="CM2").host == "cm2"
    assert read_recording(path, node_names=("cm1", "cm2"), node="cm2").host == "cm2"
    with pytest.raises(RecordingError, match="no such host"):
        read_recording(path, host="cm3")


# ----------------------------------------------------------------------------------------------- figure and files
def test_the_figure_shows_recorded_and_simulated_under_cisco_names(tmp_path: Path) -> None:
    comparison = compared(tmp_path, starvation_run(11), starvation_run(7), 15)
    figure = comparison_figure(comparison)
    lines = {line.get_gid(): line for ax in figure.axes for line in ax.get_lines() if line.get_gid()}
    for spec in COMPARED:
        if spec in (CODE_YELLOW, COMPARED[2]):
            continue  # the states are bands, not lines
        series = comparison.get(spec)
        assert series.recorded is not None
        np.testing.assert_array_equal(lines[f"recorded:{spec.name}"].get_ydata(), series.recorded)
        np.testing.assert_array_equal(lines[f"simulated:{spec.name}"].get_ydata(), series.simulated)
        recorded, simulated = lines[f"recorded:{spec.name}"], lines[f"simulated:{spec.name}"]
        assert recorded.get_linestyle() == "-" and simulated.get_linestyle() == "--", "two distinct styles"
    delay_ax = next(ax for ax in figure.axes if ax.get_title(loc="left") == AVERAGE_EXPECTED_DELAY.name)
    legend = delay_ax.get_legend()
    assert legend is not None
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels[:2] == ["recorded", "simulated"] and any("entry latency 20 ms" in label for label in labels)
    assert [line.get_ydata()[0] for line in delay_ax.get_lines()[2:4]] == [20.0, 8.0]  # entry and exit latency
    titles = " ".join(ax.get_title(loc="left") for ax in figure.axes)
    assert "QueueSignalsPresent" in titles and "Cisco CallManager\\CallsAttempted" in titles
    assert figure.get_suptitle() == "cpu-starvation (seed 11) against rec.csv"
    assert "first row is simulated second 0" in figure.axes[-1].get_xlabel()


def test_compare_csv_reads_back(tmp_path: Path) -> None:
    comparison = compared(tmp_path, starvation_run(11), starvation_run(7), 15)
    rows = list(csv.DictReader(io.StringIO(compare_csv(comparison))))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == len(comparison.rows)
    for row, episode_row in zip(rows, comparison.rows, strict=True):
        assert row["simulated_episodes"] == str(len(episode_row.simulated))
        if episode_row.matched and episode_row.entry_difference_s is not None:
            assert float(row["entry_difference_s"]) == episode_row.entry_difference_s
            assert int(row["recorded_entry_line"]) > 1


def invoke(*args: str | Path) -> Result:
    result = CliRunner().invoke(main, ["compare", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def test_the_command_writes_into_the_run_directory_and_replaces_only_its_own(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    write_results(starvation_run(), run_dir, plots=False)
    recording = recording_of(tmp_path, starvation_run(11), 15)
    first = invoke(run_dir, recording)
    assert first.exit_code == 0, first.output
    assert "matched" in first.output and "Code Yellow episodes" in first.output
    assert (run_dir / "compare.png").read_bytes().startswith(b"\x89PNG")
    again = invoke(run_dir, recording)
    assert again.exit_code == 0, again.output
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "compare.csv").write_text("someone's own table\n", encoding="utf-8")
    refused = invoke(run_dir, recording, "--out", other)
    assert refused.exit_code == 2 and "not written by `cucm-sim compare`" in refused.output
    assert (other / "compare.csv").read_text(encoding="utf-8") == "someone's own table\n"
    assert not (other / "compare.png").exists()


def test_the_command_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    write_results(starvation_run(), run_dir, plots=False)
    missing = invoke(run_dir, tmp_path / "none.csv")
    assert missing.exit_code == 2 and "none.csv: no such file" in missing.output
    not_a_run = invoke(tmp_path, recording_of(tmp_path, starvation_run(), 15))
    assert not_a_run.exit_code == 2 and "not a result directory" in not_a_run.output
    broken = tmp_path / "broken.csv"
    lines = recording_of(tmp_path, starvation_run(), 15).read_text(encoding="utf-8").splitlines(keepends=True)
    broken.write_text("".join(lines[:6]) + '"01/01/2026 00:01:30.000","1"\r\n', encoding="utf-8", newline="")
    malformed = invoke(run_dir, broken)
    assert malformed.exit_code == 2 and "broken.csv, line 7" in malformed.output
    far = invoke(run_dir, recording_of(tmp_path, starvation_run(), 15), "--offset-s", "5000")
    assert far.exit_code == 2 and "no overlap in time" in far.output
    one_node = invoke(run_dir, recording_of(tmp_path, starvation_run(), 15), "--node", "cm1")
    assert one_node.exit_code == 2 and "not a cluster" in one_node.output


def test_cucm_sim_compare_end_to_end(tmp_path: Path) -> None:
    """The command as a user types it: a run, its export as the 'recording', then compare."""
    run_dir = tmp_path / "RUN"
    command = [sys.executable, "-m", "cucm_sim.cli"]
    done = subprocess.run([*command, "run", str(CPU_STARVATION), "--out", str(run_dir), "--set", "duration_s=900",
                           "--no-plots", "--quiet"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    recording = recording_of(tmp_path, read_run(run_dir), 15, "REC.csv")  # the same run, exported
    done = subprocess.run([*command, "compare", str(run_dir), str(recording)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert (run_dir / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (run_dir / "compare.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(row["note"].startswith("not visible") or row["entry_difference_s"] for row in rows)
    assert "mean |entry error|" in done.stdout
    done = subprocess.run([*command, "compare", str(run_dir), str(tmp_path / "missing.csv")], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 2 and "missing.csv: no such file" in done.stderr and "Traceback" not in done.stderr


def test_the_command_says_what_the_recording_lacks_and_what_its_reader_found(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    write_results(starvation_run(), run_dir, plots=False)
    kept = [(path, values) for path, values in perfmon_counters(starvation_run(), PerfmonOptions())
            if path.counter in (names.AVERAGE_EXPECTED_DELAY, names.CODE_YELLOW_ENTRY_EXIT)]
    times = [t for t in range(0, 901, 15) if not 300 <= t <= 360]  # a gap
    cells = [[f"{values[t]:g}" for _, values in kept] for t in times]
    cells[3][0] = ""  # a blank AverageExpectedDelay (line 5)
    path = tmp_path / "partial.csv"
    path.write_text(pdh_csv_text(PDH_VERSION, [p for p, _ in kept], [datetime(2026, 1, 1) + t * _SECOND
                                                                     for t in times], cells),
                    encoding="utf-8", newline="")
    result = invoke(run_dir, path, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "not in the recording, not drawn: CodeRedEntryExit, QueueSignalsPresent 1-High" in result.output
    assert "the recording has 1 blank cell: line 5:" in result.output
    assert "the recording has 1 gap: line 22: 90 s since the previous row (usually 15 s)" in result.output
    without_delay = tmp_path / "no_delay.csv"
    path_only = [p for p, _ in kept if p.counter != names.AVERAGE_EXPECTED_DELAY]
    without_delay.write_text(pdh_csv_text(PDH_VERSION, path_only, [datetime(2026, 1, 1)], [["0"]]), encoding="utf-8",
                             newline="")
    refused = invoke(run_dir, without_delay)
    assert refused.exit_code == 2 and "no counter Cisco CallManager System Performance\\AverageExpectedDelay" in \
        refused.output
