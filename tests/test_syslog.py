"""alarms.log (`cucm_sim.report.syslog`): a run's alarms as CUCM syslog lines.

Three short runs are made once: code_red.yaml (Code Yellow entry and exit, Code Red, CallManagerOnline),
sccp_chatty_device.yaml over 200 s (DeviceCloseMaxEventsExceeded) and a two-node cluster over 300 s whose cm1
goes into Code Red (its phones' DeviceUnregistered and DeviceRegistered on both nodes).  Every line they give
is matched against the layout of CUCM's own lines, and read back into the alarm it came from.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cucm_sim import RunResult, Scenario, load_scenario, simulate
from cucm_sim.errors import UserError
from cucm_sim.report.output import RESULT_FILES, RUN_DIRECTORY, read_run, write_results
from cucm_sim.report.syslog import (
    ALARMS_LOG,
    DEFAULT_HOST,
    DEFAULT_START,
    REASON_CODES,
    SEVERITY,
    syslog_lines,
    syslog_text,
)
from cucm_sim.rules.alarms import (
    CALLMANAGER_ONLINE,
    CODE_RED_ENTRY,
    CODE_YELLOW_ENTRY,
    CODE_YELLOW_EXIT,
    CONNECTIVITY_ERROR,
    DEVICE_CLOSE_MAX_EVENTS_EXCEEDED,
    DEVICE_INITIATED_UNREGISTER,
    DEVICE_REGISTERED,
    DEVICE_UNREGISTERED,
    Alarm,
)

ROOT = Path(__file__).resolve().parent.parent
EVERY_ALARM = (CODE_YELLOW_ENTRY, CODE_YELLOW_EXIT, CODE_RED_ENTRY, CALLMANAGER_ONLINE,
               DEVICE_CLOSE_MAX_EVENTS_EXCEEDED, DEVICE_REGISTERED, DEVICE_UNREGISTERED)
NODES = ("cm1", "cm2")
CLUSTER: dict[str, Any] = {
    "name": "two nodes", "seed": 11, "duration_s": 300,
    "throttling": {"code_yellow_duration_min": 1},
    "node": {"restart_duration_s": 60},
    "load": {"background": [{"signals_per_s": 2000}], "calls_per_s": 5},
    "cluster": {"nodes": [{"name": name} for name in NODES]},
    "devices": {"pools": [{"name": "floor-a", "count": 400, "cm_group": ["cm1", "cm2"]},
                          {"name": "floor-b", "count": 200, "cm_group": ["cm2", "cm1"]}]},
    "disturbances": [{"kind": "cpu_slowdown", "node": "cm1", "start_s": 30, "end_s": 200, "capacity_factor": 0.1}],
}

MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
LINE = re.compile(
    # syslog header: local time (day padded with a space), host, facility, severity
    rf"(?P<month>{MONTH}) (?P<day>[ 123]\d) (?P<clock>\d\d:\d\d:\d\d) (?P<host>[A-Za-z0-9][A-Za-z0-9_.-]*) "
    r"local7 (?P<severity>[0-7]) : "
    # CiscoLog: sequence number, host, UTC time to the millisecond, %APP-SEVERITY-NAME, tags, text
    rf"(?P<seq>\d+): (?P=host): (?P<utc>{MONTH} [0-3]\d \d{{4}} \d\d:\d\d:\d\d\.\d{{3}}) UTC :  "
    r"%UC_CALLMANAGER-(?P=severity)-(?P<alarm>[A-Za-z]+): "
    r"%(?P<params>(?:\[[A-Za-z]+=[^\][]*\])*)\[AppID=Cisco CallManager\]\[ClusterID=StandAloneCluster\]"
    r"\[NodeID=(?P=host)\]: (?P<text>\S[^\n]*)"
)
PARAMETER = re.compile(r"\[([A-Za-z]+)=([^\][]*)\]")


@pytest.fixture(scope="module")
def code_red() -> RunResult:
    return simulate(load_scenario(ROOT / "scenarios" / "code_red.yaml", ["engine=batched"]))


@pytest.fixture(scope="module")
def chatty() -> RunResult:
    return simulate(load_scenario(ROOT / "scenarios" / "sccp_chatty_device.yaml", ["duration_s=200", "engine=batched"]))


@pytest.fixture(scope="module")
def cluster() -> RunResult:
    return simulate(Scenario.model_validate(CLUSTER))


def _parsed(text: str) -> list[re.Match[str]]:
    """Every line of `text` matched against the real layout; fails on the first line that is not."""
    lines = text.splitlines()
    assert text.endswith("\n") and "" not in lines
    matches = []
    for line in lines:
        match = LINE.fullmatch(line)
        assert match is not None, f"not a CUCM syslog line: {line}"
        matches.append(match)
    return matches


def _parameters(match: re.Match[str]) -> dict[str, str]:
    return dict(PARAMETER.findall(match["params"]))


def _utc(match: re.Match[str]) -> datetime:
    return datetime.strptime(match["utc"], "%b %d %Y %H:%M:%S.%f").replace(tzinfo=UTC)


def _expected_value(alarm: Alarm, name: str) -> str:
    value = alarm.params[name]
    if name == "Reason":
        return str(REASON_CODES[str(value)])
    if isinstance(value, str):
        return value
    whole = int(value)
    return str(whole + 1 if value - whole >= 0.5 else whole)  # nearest, a half upwards (values are >= 0)


# ------------------------------------------------------------------ the runs give every kind of alarm
def test_the_runs_raise_every_kind_of_alarm(code_red: RunResult, chatty: RunResult, cluster: RunResult) -> None:
    raised = {alarm.name for run in (code_red, chatty, cluster) for alarm in run.alarms}
    assert raised == set(EVERY_ALARM)
    reasons = {alarm.params["Reason"] for alarm in cluster.alarms if alarm.name == DEVICE_UNREGISTERED}
    assert reasons == {CONNECTIVITY_ERROR, DEVICE_INITIATED_UNREGISTER}


def test_every_alarm_has_a_severity() -> None:
    assert set(SEVERITY) == set(EVERY_ALARM)


# ------------------------------------------------------------------ one line per alarm, in time order
@pytest.mark.parametrize("name", ["code_red", "chatty", "cluster"])
def test_one_line_per_alarm_in_time_order_at_the_alarms_time(name: str, request: pytest.FixtureRequest) -> None:
    run: RunResult = request.getfixturevalue(name)
    matches = _parsed(syslog_text(run))
    assert len(matches) == len(run.alarms) > 0
    assert Counter(match["alarm"] for match in matches) == Counter(alarm.name for alarm in run.alarms)
    times = [_utc(match) for match in matches]
    assert times == sorted(times)
    in_order = sorted(run.alarms, key=lambda alarm: alarm.t_s)
    assert [round((time - DEFAULT_START).total_seconds(), 3) for time in times] == \
        [round(alarm.t_s, 3) for alarm in in_order]


def test_each_kind_has_its_severity_in_the_header_and_the_tag(code_red: RunResult, chatty: RunResult,
                                                              cluster: RunResult) -> None:
    seen: dict[str, set[int]] = {}
    for run in (code_red, chatty, cluster):
        for match in _parsed(syslog_text(run)):
            seen.setdefault(match["alarm"], set()).add(int(match["severity"]))  # the regex ties header and tag
    assert seen == {
        CODE_YELLOW_ENTRY: {2}, CODE_RED_ENTRY: {2},  # Critical since CUCM 8.0
        DEVICE_CLOSE_MAX_EVENTS_EXCEEDED: {3}, DEVICE_UNREGISTERED: {4},  # Error, Warning
        CODE_YELLOW_EXIT: {5}, CALLMANAGER_ONLINE: {6}, DEVICE_REGISTERED: {6},  # assumptions, stated in syslog.py
    }


# ------------------------------------------------------------------ parameters: Cisco's names, whole numbers
@pytest.mark.parametrize("name", ["code_red", "chatty", "cluster"])
def test_parameters_are_the_alarms_own_with_cisco_names_and_whole_numbers(name: str,
                                                                          request: pytest.FixtureRequest) -> None:
    run: RunResult = request.getfixturevalue(name)
    matches = _parsed(syslog_text(run))
    written = Counter((match["utc"], match["alarm"], tuple(sorted(_parameters(match).items()))) for match in matches)
    expected = Counter(
        ((DEFAULT_START + timedelta(milliseconds=round(alarm.t_s * 1000))).strftime("%b %d %Y %H:%M:%S.%f")[:-3],
         alarm.name, tuple(sorted((key, _expected_value(alarm, key)) for key in alarm.params)))
        for alarm in run.alarms)
    assert written == expected  # each line is its alarm: time, name and every parameter, nothing else
    assert all(value.isdigit() for match in matches for key, value in _parameters(match).items()
               if key != "DeviceName")


def test_throttling_alarms_lead_with_ciscos_parameters(code_red: RunResult) -> None:
    for match in _parsed(syslog_text(code_red)):
        names = list(_parameters(match))
        assert names[:4] == ["ExpectedAverageDelay", "EntryLatency", "ExitLatency", "SampleSize"] or \
            match["alarm"] == CALLMANAGER_ONLINE
        if match["alarm"] == CODE_YELLOW_ENTRY:
            assert names[4:9] == ["TotalCodeYellowEntry", "HighPriorityQueueDepth", "NormalPriorityQueueDepth",
                                  "LowPriorityQueueDepth", "LowestPriorityQueueDepth"]
        if match["alarm"] == CODE_RED_ENTRY:
            assert names[4:8] == ["CodeYellowDuration", "NumberOfCallsRejectedDueToCallThrottling",
                                  "TotalCodeYellowEntry", "TotalCodeYellowExit"]


def test_sccp_closure_carries_its_counts(chatty: RunResult) -> None:
    closures = [match for match in _parsed(syslog_text(chatty)) if match["alarm"] == DEVICE_CLOSE_MAX_EVENTS_EXCEEDED]
    assert closures
    for count, match in enumerate(closures, start=1):
        parameters = _parameters(match)
        assert list(parameters)[:3] == ["TotalEventsReceived", "MaxEventsAllowed", "NumberOfSkinnyDeviceThrottled"]
        assert parameters["MaxEventsAllowed"] == "2000"
        assert int(parameters["TotalEventsReceived"]) > 2000
        assert parameters["NumberOfSkinnyDeviceThrottled"] == str(count)
        assert re.fullmatch(r"SEP[0-9A-F]{12}", parameters["DeviceName"])


@pytest.mark.parametrize(("value", "written"), [(27.5, "28"), (26.5, "27"), (27.4999, "27"), (27.49996, "28"),
                                                (0.2, "0"), (7906, "7906")])
def test_fractions_round_to_the_nearest_whole_number_halves_up(value: float, written: str) -> None:
    # 27.49996 is 27.5000 in alarms.csv, so it rounds as that: the same line from the run and from its files
    alarm = Alarm(CODE_YELLOW_ENTRY, 1.0, {"ExpectedAverageDelay": value, "EntryLatency": 20})
    match = _parsed(syslog_lines([("cm1", alarm)]))[0]
    assert _parameters(match) == {"ExpectedAverageDelay": written, "EntryLatency": "20"}


# ------------------------------------------------------------------ hosts: a cluster's nodes, one node's name
def test_a_clusters_lines_carry_the_node_that_raised_them(cluster: RunResult) -> None:
    matches = _parsed(syslog_text(cluster))
    for node in cluster.nodes:
        own = [match for match in matches if match["host"] == node.name]
        assert len(own) == len(node.alarms) > 0
        assert [int(match["seq"]) for match in own] == list(range(len(own)))  # each node counts its own
        devices = Counter(_parameters(match).get("DeviceName") for match in own)
        assert devices == Counter(alarm.params.get("DeviceName") for alarm in node.alarms)
    red = next(match for match in matches if match["alarm"] == CODE_RED_ENTRY)
    assert red["host"] == "cm1"
    lost = [match for match in matches if match["alarm"] == DEVICE_UNREGISTERED and match["utc"] == red["utc"]]
    assert lost and {match["host"] for match in lost} == {"cm1"}
    assert {_parameters(match)["Reason"] for match in lost} == {"6"}  # ConnectivityError
    assert {_parameters(match)["Reason"] for match in matches if match["alarm"] == DEVICE_UNREGISTERED
            and match["host"] == "cm2"} == {"10"}  # phones leaving their secondary for home


def test_one_nodes_lines_carry_the_host_given(code_red: RunResult) -> None:
    assert {match["host"] for match in _parsed(syslog_text(code_red))} == {DEFAULT_HOST}
    assert {match["host"] for match in _parsed(syslog_text(code_red, host="ucm-pub.example.com"))} == \
        {"ucm-pub.example.com"}
    for wrong in ("cm 1", "", "cm1:", "[cm1]"):
        with pytest.raises(UserError, match="one word"):
            syslog_text(code_red, host=wrong)


def test_a_host_name_is_refused_for_a_cluster(cluster: RunResult) -> None:
    with pytest.raises(UserError, match="names one node"):
        syslog_text(cluster, host="cm1")


# ------------------------------------------------------------------ time stamps
def test_the_default_start_gives_reproducible_stamps() -> None:
    alarm = Alarm(CODE_YELLOW_ENTRY, 606.0004, {"EntryLatency": 20})
    line = syslog_lines([(DEFAULT_HOST, alarm)])
    assert line.startswith("Jan  1 00:10:06 cucm local7 2 : 0: cucm: Jan 01 2026 00:10:06.000 UTC :  ")
    assert syslog_lines([(DEFAULT_HOST, alarm)], start=datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))) == line


@pytest.mark.parametrize(("start", "headers", "utc"), [
    # 25 October 2026, 01:00 UTC: British Summer Time ends, 02:00 BST becomes 01:00 GMT (an hour repeats)
    (datetime(2026, 10, 25, 0, 30), ["Oct 25 00:30:00", "Oct 25 01:30:00", "Oct 25 01:30:00", "Oct 25 02:30:00"],
     ["Oct 24 2026 23:30:00.000", "Oct 25 2026 00:30:00.000", "Oct 25 2026 01:30:00.000",
      "Oct 25 2026 02:30:00.000"]),
    # 29 March 2026, 01:00 UTC: it begins, 01:00 GMT becomes 02:00 BST (an hour is skipped)
    (datetime(2026, 3, 29, 0, 30), ["Mar 29 00:30:00", "Mar 29 02:30:00", "Mar 29 03:30:00", "Mar 29 04:30:00"],
     ["Mar 29 2026 00:30:00.000", "Mar 29 2026 01:30:00.000", "Mar 29 2026 02:30:00.000",
      "Mar 29 2026 03:30:00.000"]),
])
def test_headers_show_local_wall_clock_time_across_a_daylight_saving_change(
        start: datetime, headers: list[str], utc: list[str]) -> None:
    london = start.replace(tzinfo=ZoneInfo("Europe/London"))
    alarms = [("cm1", Alarm(DEVICE_REGISTERED, hour * 3600.0, {"DeviceName": "SEP000000000001"})) for hour in range(4)]
    matches = _parsed(syslog_lines(alarms, start=london))
    assert [f"{match['month']} {match['day']} {match['clock']}" for match in matches] == headers
    assert [match["utc"] for match in matches] == utc
    for match, (_host, alarm) in zip(matches, alarms, strict=True):
        assert _utc(match) - london == timedelta(seconds=alarm.t_s)


def test_a_start_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        syslog_lines([], start=datetime(2026, 1, 1))


def test_an_alarm_cucm_sim_does_not_raise_has_no_line() -> None:
    with pytest.raises(UserError, match="MemoryThrottlingEntry"):
        syslog_lines([("cm1", Alarm("MemoryThrottlingEntry", 1.0))])


# ------------------------------------------------------------------ alarms.log in a result directory
@pytest.mark.parametrize("name", ["code_red", "cluster"])
def test_alarms_log_is_written_and_read_back_gives_the_same_lines(name: str, request: pytest.FixtureRequest,
                                                                  tmp_path: Path) -> None:
    run: RunResult = request.getfixturevalue(name)
    written = write_results(run, tmp_path / "out", plots=False)
    assert tmp_path / "out" / ALARMS_LOG in written
    text = (tmp_path / "out" / ALARMS_LOG).read_text(encoding="utf-8")
    assert text == syslog_text(run)
    assert syslog_text(read_run(tmp_path / "out")) == text  # what `cucm-sim export --format syslog` will give
    assert ALARMS_LOG in RESULT_FILES and RUN_DIRECTORY.foreign_entries(tmp_path / "out") == []  # --force's


def test_a_run_of_hosts_alone_writes_no_alarms_log(tmp_path: Path) -> None:
    run = simulate(load_scenario(ROOT / "scenarios" / "vru_pim_heartbeat_loss.yaml", ["duration_s=100"]))
    assert not run.scenario.has_node
    write_results(run, tmp_path / "out", plots=False)
    assert (tmp_path / "out" / "events.log").is_file()
    assert not (tmp_path / "out" / ALARMS_LOG).exists()
    assert syslog_text(run) == ""


def test_cucm_sim_run_writes_alarms_log(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "cucm_sim.cli", "run", str(ROOT / "scenarios" / "cpu_starvation.yaml"),
               "--out", str(out), "--set", "duration_s=900", "--no-plots", "--quiet"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert finished.returncode == 0, finished.stderr
    matches = _parsed((out / ALARMS_LOG).read_text(encoding="utf-8"))
    rows = (out / "alarms.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert len(matches) == len(rows) > 0
    assert [match["alarm"] for match in matches] == [row.split(",")[1] for row in rows]
    assert {match["alarm"] for match in matches} >= {CODE_YELLOW_ENTRY, CODE_YELLOW_EXIT}
    assert all(match["host"] == DEFAULT_HOST for match in matches)
