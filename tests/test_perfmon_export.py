"""A run as a Perfmon CSV file: the PDH-CSV layout (read by the csv module, by pandas and by our reader, in both
header forms and at 1-s and 15-s intervals), the counters' values against the run they come from, local time
across a daylight-saving change, and `cucm-sim export` end to end."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from cucm_sim.perfmon import counters as names
from cucm_sim.perfmon.counters import CounterPath, Kind
from cucm_sim.perfmon.pdh_csv import read_header, read_pdh_csv
from cucm_sim.report.perfmon_export import PerfmonOptions, perfmon_text
from cucm_sim.run.simulation import RunResult, simulate
from cucm_sim.scenario.loader import load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parent.parent
SYSTEM = f"\\\\cucm\\{names.SYSTEM_PERFORMANCE}\\"
CALLMANAGER = f"\\\\cucm\\{names.CALLMANAGER}\\"


@cache
def code_red_run() -> RunResult:
    """code_red.yaml cut to 900 s: Code Yellow at about 300 s, Code Red at about 600 s, back at about 780 s."""
    return simulate(load_scenario(ROOT / "scenarios" / "code_red.yaml", ["duration_s=900"]))


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def write(tmp_path: Path, result: RunResult, **options: object) -> Path:
    path = tmp_path / "perfmon.csv"
    path.write_text(perfmon_text(result, PerfmonOptions(**options)), encoding="utf-8", newline="")  # type: ignore[arg-type]
    return path


@pytest.mark.parametrize("interval_s", [1, 15])
@pytest.mark.parametrize("typeperf", [False, True])
def test_the_csv_module_reads_every_field_quoted_with_a_pdh_header(tmp_path: Path, interval_s: int,
                                                                    typeperf: bool) -> None:
    path = write(tmp_path, code_red_run(), interval_s=interval_s, typeperf_header=typeperf,
                 zone=ZoneInfo("Europe/London"), start=datetime(2026, 7, 1, 9, 0, 0))
    raw = path.read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n"), "Windows line ends throughout"
    lines = raw.decode().split("\r\n")[:-1]
    for line in lines:
        assert line.startswith('"') and line.endswith('"')
        assert line.count('"') == 2 * len(next(csv.reader([line]))), "every field quoted, and only once"
    rows = csv_rows(path)
    header = rows[0]
    assert header[0] == ("(PDH-CSV 4.0)" if typeperf else "(PDH-CSV 4.0) (Europe/London)(-60)")  # BST: UTC+1
    assert all(CounterPath.parse(cell) is not None for cell in header[1:])
    assert len(rows) - 1 == 900 // interval_s + 1
    assert rows[1][0] == "07/01/2026 09:00:00.000"
    assert rows[2][0] == f"07/01/2026 09:00:{interval_s:02d}.000"
    assert {len(row) for row in rows} == {len(header)}


@pytest.mark.parametrize("interval_s", [1, 15])
@pytest.mark.parametrize("typeperf", [False, True])
def test_pandas_reads_it_as_a_perfmon_file(tmp_path: Path, interval_s: int, typeperf: bool) -> None:
    result = code_red_run()
    path = write(tmp_path, result, interval_s=interval_s, typeperf_header=typeperf)
    frame = pd.read_csv(path, index_col=0)
    frame.index = pd.to_datetime(frame.index, format="%m/%d/%Y %H:%M:%S.%f")
    assert frame.index.is_monotonic_increasing and frame.index[0] == pd.Timestamp("2026-01-01 00:00:00")
    assert (frame.index[1] - frame.index[0]).total_seconds() == interval_s
    assert all(pd.api.types.is_numeric_dtype(dtype) for dtype in frame.dtypes)
    attempted = frame[CALLMANAGER + names.CALLS_ATTEMPTED]
    assert attempted.iloc[-1] == result.summary["calls_attempted"]
    assert attempted.is_monotonic_increasing


def test_the_counters_agree_with_the_run_they_come_from(tmp_path: Path) -> None:
    result = code_red_run()
    recording = read_pdh_csv(write(tmp_path, result))
    by_name: Mapping[str, np.ndarray] = {path.text: recording.values[:, k] for k, path in enumerate(recording.paths)}
    timeline = result.timeline
    processed = [by_name[SYSTEM + names.queue_signals_processed(q)] for q in range(4)]
    assert np.array_equal(sum(processed), by_name[SYSTEM + names.queue_signals_processed(None)])
    assert np.array_equal(by_name[SYSTEM + names.queue_signals_processed(None)][1:], timeline["signals_processed"])
    assert processed[0].sum() > 0 and processed[1].sum() > 0 and processed[3].sum() > 0  # the restart's storm
    assert by_name[SYSTEM + names.TOTAL_CODE_YELLOW_ENTRY][-1] == result.summary["code_yellow_entries"]
    assert by_name[SYSTEM + names.CALLS_REJECTED][-1] == result.summary["calls_rejected_throttled"]
    assert np.array_equal(by_name[SYSTEM + names.AVERAGE_EXPECTED_DELAY][1:],
                          np.round(timeline["average_expected_delay_ms"], 4))  # as timeline.csv holds it
    # The state counters: 1 from the entry alarm on, as the state the next second is in.
    states = np.asarray(timeline["state"])
    yellow = by_name[SYSTEM + names.CODE_YELLOW_ENTRY_EXIT]
    red = by_name[SYSTEM + names.CODE_RED_ENTRY_EXIT]
    assert np.array_equal(yellow[:-1] == 1, states == "CodeYellow")
    assert np.array_equal(red[:-1] == 1, states == "CodeRed")
    # CallManagerHeartBeat counts the seconds the service was up, and stands still while it restarts.
    heartbeat = by_name[CALLMANAGER + names.HEARTBEAT]
    down = np.flatnonzero(states == "CodeRed")
    assert len(down) == 180
    assert np.all(np.diff(heartbeat)[down] == 0) and heartbeat[-1] == 900 - 180


def test_local_time_runs_through_the_october_change_and_reads_back_as_real_time(tmp_path: Path) -> None:
    """Europe/London, 25 October 2026: 02:00 BST becomes 01:00 GMT, so 01:00-02:00 is written twice."""
    result = simulate(parse_scenario({"name": "quiet", "seed": 1, "duration_s": 7200, "load": {"calls_per_s": 1}},
                                     "quiet"))
    path = write(tmp_path, result, interval_s=15, zone=ZoneInfo("Europe/London"), start=datetime(2026, 10, 25, 0, 30))
    stamps = [row[0] for row in csv_rows(path)][1:]
    assert stamps.count("10/25/2026 01:15:00.000") == 2
    assert stamps[-1] == "10/25/2026 01:30:00.000"  # 00:30 BST + 2 h = 01:30 GMT
    recording = read_pdh_csv(path, ["Cisco CallManager\\CallsAttempted"])
    assert np.array_equal(recording.elapsed_s, np.arange(0, 7201, 15))
    repeats = [f for f in recording.findings if f.kind == "repeat"]
    assert len(repeats) == 1 and "01:00:00" in repeats[0].detail


def test_hosts_and_clusters_get_their_own_counters(tmp_path: Path) -> None:
    hosts = simulate(load_scenario(ROOT / "scenarios" / "vru_pim_heartbeat_loss.yaml", ["duration_s=60"]))
    _, paths = read_header(write(tmp_path, hosts))
    texts = {path.text for path in paths}
    host = hosts.scenario.hosts[0]
    assert f"\\\\{host.name}\\Processor(0)\\DPC Rate" in texts
    assert f"\\\\{host.name}\\Processor(0)\\% DPC Time" in texts
    assert f"\\\\{host.name}\\Network Interface(nic0)\\Packets Received Discarded" in texts
    assert not any(names.SYSTEM_PERFORMANCE in text for text in texts)
    cluster = simulate(load_scenario(ROOT / "scenarios" / "cluster_shared_secondary.yaml", ["duration_s=30"]))
    _, paths = read_header(write(tmp_path, cluster))
    assert {path.host for path in paths} == set(cluster.scenario.node_names)
    assert sum(path.counter == names.CALLS_ATTEMPTED for path in paths) == len(cluster.scenario.node_names)


def test_counter_kinds_follow_cisco_help() -> None:
    assert names.kind_of(names.CALLS_ATTEMPTED) is Kind.CUMULATIVE
    assert names.kind_of(names.queue_signals_processed(0)) is Kind.PER_SECOND
    assert names.kind_of(names.queue_signals_present(0)) is Kind.READING
    assert CounterPath.parse("\\\\h\\Processor(_Total)\\% DPC Time") == CounterPath("h", "Processor", "% DPC Time",
                                                                                     "_Total")
    assert CounterPath.parse("Processor\\DPC Rate") is None


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cucm_sim.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_export_end_to_end(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = cli("run", "scenarios/cpu_starvation.yaml", "--out", run_dir, "--set", "duration_s=700", "--no-plots", "-q",
               "--perfmon", "--interval", "15", "--tz", "America/New_York", "--start", "2026-03-08T01:50:00")
    assert done.returncode == 0, done.stderr
    written_by_run = (run_dir / "perfmon.csv").read_bytes()
    done = cli("export", run_dir, "--format", "perfmon", "--interval", "15", "--tz", "America/New_York",
               "--start", "2026-03-08T01:50:00")
    assert done.returncode == 0, done.stderr
    # Read back from the files (signals_by_queue.csv included), the run exports the same bytes.
    assert (run_dir / "perfmon.csv").read_bytes() == written_by_run
    recording = read_pdh_csv(run_dir / "perfmon.csv")
    assert not np.isnan(recording.values).any()
    assert recording.interval_s() == 15 and recording.elapsed_s[-1] == 690
    assert any(f.kind == "forward" for f in recording.findings)  # 02:00 EST becomes 03:00 EDT
    out = tmp_path / "mine.csv"
    out.write_text("a user's file\n")
    refused = cli("export", run_dir, "--format", "perfmon", "--out", out)
    assert refused.returncode == 2 and "--force" in refused.stderr and "Traceback" not in refused.stderr
    assert out.read_text() == "a user's file\n"
    assert cli("export", run_dir, "--format", "perfmon", "--out", out, "--force").returncode == 0
    assert out.read_text().startswith('"(PDH-CSV 4.0) (UTC)(0)"')
    for bad, words in ((["--tz", "Mars/Olympus"], "--tz"), (["--interval", "0"], "--interval"),
                       (["--host", "a\\b"], "--host"), (["--host", "two words"], "--host")):
        done = cli("export", run_dir, "--format", "perfmon", *bad)
        assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr
    done = cli("export", tmp_path / "nowhere", "--format", "syslog")
    assert done.returncode == 2 and "no such directory" in done.stderr
