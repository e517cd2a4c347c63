"""The files of a cluster's run: timeline.csv and alarms.csv with a node column, reading them back, the figure,
the story, `cucm-sim run` and `explain`; and a single node's files without the node column.

One short cluster run (two nodes, 600 phones, cm1 slowed to a tenth from t=30 to 200 s, Code Red after a
minute in Code Yellow, a 60-s restart; a few seconds) is written once and read by most tests.  The run is
checked to reach Code Red and to fail its phones over before anything is said about the story of it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest
from click.testing import CliRunner

from cucm_sim import RunResult, Scenario, simulate
from cucm_sim.cli import main
from cucm_sim.errors import UserError
from cucm_sim.measures.timeline import TIMELINE_COLUMNS
from cucm_sim.report.cluster_files import rows_by_second
from cucm_sim.report.output import read_run, timeline_csv, write_results
from cucm_sim.rules.alarms import (
    ALARM_COLUMNS,
    CLUSTER_ALARM_COLUMNS,
    CODE_RED_ENTRY,
    CONNECTIVITY_ERROR,
    DEVICE_INITIATED_UNREGISTER,
    DEVICE_REGISTERED,
    DEVICE_UNREGISTERED,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NODES = ("cm1", "cm2")
DURATION_S = 500
CLUSTER: dict[str, Any] = {
    "name": "two nodes", "seed": 11, "duration_s": DURATION_S,
    "throttling": {"code_yellow_duration_min": 1},
    "node": {"restart_duration_s": 60},
    "load": {"background": [{"signals_per_s": 2000}], "calls_per_s": 5},
    "cluster": {"nodes": [{"name": name} for name in NODES]},
    "devices": {"pools": [{"name": "floor-a", "count": 400, "cm_group": ["cm1", "cm2"]},
                          {"name": "floor-b", "count": 200, "cm_group": ["cm2", "cm1"]}]},
    "disturbances": [{"kind": "cpu_slowdown", "node": "cm1", "start_s": 30, "end_s": 200, "capacity_factor": 0.1}],
}


@pytest.fixture(scope="module")
def run() -> RunResult:
    return simulate(Scenario.model_validate(CLUSTER))


@pytest.fixture(scope="module")
def run_dir(run: RunResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cluster") / "out"
    write_results(run, out)
    return out


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def _lost_at_first_code_red(run: RunResult) -> tuple[float, int]:
    red_s = next(alarm.t_s for alarm in run.nodes[0].alarms if alarm.name == CODE_RED_ENTRY)
    lost = sum(1 for alarm in run.nodes[0].alarms if alarm.name == DEVICE_UNREGISTERED and alarm.t_s == red_s
               and alarm.params.get("Reason") == CONNECTIVITY_ERROR)
    return red_s, lost


# ------------------------------------------------------------------ the run itself
def test_the_run_reaches_code_red_and_its_phones_fail_over_and_come_back(run: RunResult) -> None:
    assert [node.name for node in run.nodes] == list(NODES)
    assert run.summary["nodes"]["cm1"]["code_red_entries"] >= 1
    assert run.summary["nodes"]["cm2"]["code_red_entries"] == 0
    assert run.summary["phone_failovers"] >= 400
    assert run.summary["phone_rehomes"] > 0
    _red_s, lost = _lost_at_first_code_red(run)
    assert lost == 400  # every phone of floor-a was registered with cm1


# ------------------------------------------------------------------ timeline.csv
def test_timeline_csv_leads_with_the_node_and_goes_second_by_second(run: RunResult, run_dir: Path) -> None:
    rows = _rows(run_dir / "timeline.csv")
    assert rows[0] == ["node", *TIMELINE_COLUMNS]
    body = rows[1:]
    assert len(body) == DURATION_S * len(NODES)
    assert [row[0] for row in body] == list(NODES) * DURATION_S
    assert [row[1] for row in body] == [str(t) for t in range(1, DURATION_S + 1) for _node in NODES]


def test_timeline_csv_cells_are_a_single_nodes_cells(run: RunResult, run_dir: Path) -> None:
    """Each node's rows, the node column taken away, are the rows a single node's timeline.csv would have."""
    rows = _rows(run_dir / "timeline.csv")[1:]
    for k, node in enumerate(run.nodes):
        single = timeline_csv(RunResult(run.scenario, {}, node.timeline, (), 0.0)).splitlines()
        assert single[0] == ",".join(TIMELINE_COLUMNS)
        assert [",".join(row[1:]) for row in rows[k::len(NODES)]] == single[1:]


def test_rows_by_second_interleaves_the_nodes() -> None:
    assert rows_by_second(["a", "b"], [[["1", "x"], ["2", "y"]], [["1", "z"], ["2", "w"]]]) == [
        ["a", "1", "x"], ["b", "1", "z"], ["a", "2", "y"], ["b", "2", "w"]]


# ------------------------------------------------------------------ alarms.csv
def test_alarms_csv_leads_with_the_node_and_ends_with_the_reason(run_dir: Path) -> None:
    header = _rows(run_dir / "alarms.csv")[0]
    assert header == ["node", "t_s", "alarm", *ALARM_COLUMNS, *CLUSTER_ALARM_COLUMNS]
    assert header[-1] == "Reason"


def test_alarms_csv_rows_in_time_then_node_then_own_order(run: RunResult, run_dir: Path) -> None:
    rows = _rows(run_dir / "alarms.csv")[1:]
    expected = sorted(((alarm.t_s, k, n, node.name, alarm) for k, node in enumerate(run.nodes)
                       for n, alarm in enumerate(node.alarms)), key=lambda item: item[:3])
    assert [(row[0], row[2]) for row in rows] == [(name, alarm.name) for _t, _k, _n, name, alarm in expected]
    assert [row[1] for row in rows] == [f"{alarm.t_s:.3f}" for *_rest, alarm in expected]
    times = [float(row[1]) for row in rows]
    assert times == sorted(times)
    reason = len(rows[0]) - 1
    for row in rows:
        assert (row[reason] != "") == (row[2] == DEVICE_UNREGISTERED)
    reasons = {row[reason] for row in rows}
    assert {CONNECTIVITY_ERROR, DEVICE_INITIATED_UNREGISTER} <= reasons
    assert any(row[2] == DEVICE_REGISTERED for row in rows)


# ------------------------------------------------------------------ reading a run back
def test_read_run_gives_back_the_same_run(run: RunResult, run_dir: Path) -> None:
    back = read_run(run_dir)
    assert back.scenario == run.scenario
    assert back.summary == json.loads(json.dumps(run.summary))
    assert back.wall_s == run.wall_s
    assert list(back.timeline) == ["state"]
    assert back.timeline["state"].tolist() == np.asarray(run.timeline["state"]).tolist()
    assert [node.name for node in back.nodes] == list(NODES)
    for written, read in zip(run.nodes, back.nodes, strict=True):
        assert read.summary == run.summary["nodes"][written.name]
        assert set(read.timeline) == set(written.timeline)
        assert read.timeline["state"].tolist() == np.asarray(written.timeline["state"]).tolist()
        for name in TIMELINE_COLUMNS[2:]:
            assert np.allclose(read.timeline[name], written.timeline[name], rtol=0, atol=5.1e-5), name
        assert len(read.alarms) == len(written.alarms)
        for old, new in zip(written.alarms, read.alarms, strict=True):
            assert (new.name, new.t_s) == (old.name, round(old.t_s, 3))
            assert set(new.params) == set(old.params)
            for key, value in old.params.items():
                assert new.params[key] == (round(value, 4) if isinstance(value, float) else value)
    assert [alarm.name for alarm in back.alarms] == [alarm.name for alarm in run.alarms]


def test_a_run_read_back_writes_the_same_files(run_dir: Path, tmp_path: Path) -> None:
    write_results(read_run(run_dir), tmp_path / "again", plots=False)
    for name in ("summary.json", "timeline.csv", "alarms.csv", "scenario.resolved.yaml", "narrative.txt"):
        assert (tmp_path / "again" / name).read_bytes() == (run_dir / name).read_bytes(), name


def _copy(run_dir: Path, to: Path) -> Path:
    to.mkdir()
    for path in run_dir.iterdir():
        (to / path.name).write_bytes(path.read_bytes())
    return to


@pytest.mark.parametrize(("name", "line", "edit", "message"), [
    ("timeline.csv", 3, lambda row: ["cm1", *row[1:]], "timeline.csv: line 3: node: 'cm1', expected 'cm2'"),
    ("timeline.csv", 4, lambda row: [*row[:2], "Normal", "x", *row[4:]],
     "timeline.csv: line 4: expected_delay_ms: 'x' is not a number"),
    ("timeline.csv", 5, lambda row: [row[0], "7", *row[2:]], "timeline.csv: line 5: t_s: '7', but this second's "
     "first row (line 4) says '2'"),
    ("alarms.csv", 2, lambda row: ["cm9", *row[1:]], "alarms.csv: line 2: node: 'cm9' is not a node of the cluster"),
    ("alarms.csv", 2, lambda row: row[:-1],
     f"alarms.csv: line 2: {len(ALARM_COLUMNS) + 3} fields, expected {len(ALARM_COLUMNS) + 4}"),
], ids=["node-order", "number", "second", "unknown-node", "fields"])
def test_a_damaged_cluster_file_is_one_clear_error(run_dir: Path, tmp_path: Path, name: str, line: int, edit: Any,
                                                   message: str) -> None:
    damaged = _copy(run_dir, tmp_path / "damaged")
    rows = _rows(damaged / name)
    rows[line - 1] = edit(rows[line - 1])
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    (damaged / name).write_text(buffer.getvalue(), encoding="utf-8")
    with pytest.raises(UserError) as caught:
        read_run(damaged)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{damaged / name}: {message.split(': ', 1)[1]}")


def test_a_missing_second_or_node_summary_is_one_clear_error(run_dir: Path, tmp_path: Path) -> None:
    damaged = _copy(run_dir, tmp_path / "short")
    text = (damaged / "timeline.csv").read_text(encoding="utf-8")
    (damaged / "timeline.csv").write_text("".join(text.splitlines(keepends=True)[:-1]), encoding="utf-8")
    with pytest.raises(UserError, match=r"timeline.csv: 999 rows, but the run lasted 500 s on 2 nodes"):
        read_run(damaged)
    damaged = _copy(run_dir, tmp_path / "summary")
    summary = json.loads((damaged / "summary.json").read_text(encoding="utf-8"))
    del summary["nodes"]["cm2"]
    (damaged / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    with pytest.raises(UserError, match=r"summary.json: not the summary of a cucm-sim run: nodes\.cm2\."):
        read_run(damaged)


# ------------------------------------------------------------------ the figure
def test_the_figure_is_a_png(run_dir: Path) -> None:
    png = run_dir / "timeline.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(png)
    assert image.shape[0] > 600 and image.shape[1] > 1000
    assert float(np.std(image)) > 0.05  # not a blank page


# ------------------------------------------------------------------ the story
def test_the_story_tells_the_code_red_the_failover_and_the_rehoming(run: RunResult, run_dir: Path) -> None:
    story = (run_dir / "narrative.txt").read_text(encoding="utf-8")
    red_s, lost = _lost_at_first_code_red(run)
    assert f"t={red_s:g} s: cm1 enters Code Red" in story
    assert f"{lost:,} phones lost their registration with cm1 (DeviceUnregistered, ConnectivityError)" in story
    assert "each noticed at once" in story
    assert "registered next with cm2" in story
    assert "cm2 absorbed them" in story
    assert "rehoming to cm1 begins" in story
    assert f"Phones: {run.summary['phone_failovers']:,} failovers and {run.summary['phone_rehomes']:,} rehomes" \
        in story
    assert "cm2: Normal 500 s" in story
    end = int(run.summary["phones_unregistered_at_end"])
    assert ("At the end, all 600 phones are registered" in story) == (end == 0)


def test_phones_that_notice_by_keepalive_are_told_so(tmp_path: Path) -> None:
    data = json.loads(json.dumps(CLUSTER))
    data["cluster"]["failover"] = {"detection": "keepalive", "missed_keepalives": 2}
    data["duration_s"] = 250
    result = simulate(Scenario.model_validate(data))
    assert result.summary["nodes"]["cm1"]["code_red_entries"] >= 1
    write_results(result, tmp_path / "out", plots=False)
    story = (tmp_path / "out" / "narrative.txt").read_text(encoding="utf-8")
    assert "each noticed only at its 2nd unanswered keepalive in a row, 30 s to 60 s later" in story


def test_explain_prints_the_story_narrative_txt_holds(run_dir: Path) -> None:
    result = CliRunner().invoke(main, ["explain", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert result.output == (run_dir / "narrative.txt").read_text(encoding="utf-8")


# ------------------------------------------------------------------ cucm-sim run
def test_run_prints_the_totals_and_one_line_per_node(tmp_path: Path) -> None:
    scenario = tmp_path / "cluster.json"  # JSON is YAML
    scenario.write_text(json.dumps({**CLUSTER, "duration_s": 120}), encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(scenario), "--out", str(tmp_path / "out"), "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "phone failovers / rehomes" in result.output
    node_lines = [line for line in result.output.splitlines() if line.strip("│ ").startswith(NODES)]
    assert len(node_lines) == len(NODES)
    assert sorted((tmp_path / "out").iterdir()) == sorted(
        tmp_path / "out" / name for name in ("summary.json", "timeline.csv", "alarms.csv", "alarms.log",
                                             "signals_by_queue.csv", "scenario.resolved.yaml", "narrative.txt"))


# ------------------------------------------------------------------ one node: no node column
def test_a_single_nodes_files_have_no_node_column(tmp_path: Path) -> None:
    scenario = Scenario.model_validate({
        "name": "one", "seed": 1, "duration_s": 100, "throttling": {"code_yellow_duration_min": 1},
        "load": {"background": [{"signals_per_s": 2000}]},
        "disturbances": [{"kind": "cpu_slowdown", "start_s": 10, "end_s": 90, "capacity_factor": 0.1}],
    })
    result = simulate(scenario)
    assert not result.nodes and result.alarms
    write_results(result, tmp_path / "out", plots=False)
    alarms_header = _rows(tmp_path / "out" / "alarms.csv")[0]
    assert alarms_header == ["t_s", "alarm", *ALARM_COLUMNS]
    assert "node" not in alarms_header and "Reason" not in alarms_header
    assert _rows(tmp_path / "out" / "timeline.csv")[0] == list(TIMELINE_COLUMNS)
    back = read_run(tmp_path / "out")
    assert back.nodes == () and not math.isnan(back.wall_s)
