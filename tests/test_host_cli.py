"""The command line on a scenario of hosts and links: run, explain, metrics, check, sweep, capacity.

A hosts-only run writes summary.json, timeline.csv (the hosts' columns), events.log, the resolved
scenario, its story and its figure, and reads back for `explain`; the metrics of hosts and links are the
ones `check`, `sweep` and `capacity` take; and a CUCM node's outputs are not disturbed by any of it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from cucm_sim import load_scenario
from cucm_sim.cli import main
from cucm_sim.host.network import timeline_columns

REPO = Path(__file__).resolve().parents[1]
INCIDENT = REPO / "scenarios" / "vru_pim_heartbeat_loss.yaml"
SHORT = ["--set", "duration_s=100"]


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_host_run_writes_its_files_and_explain_tells_the_written_story(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _invoke("run", str(INCIDENT), *SHORT, "--out", str(out), "--quiet")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["summary.json", "timeline.csv", "events.log", "scenario.resolved.yaml", "narrative.txt", "timeline.png"])
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["sessions_closed"] == summary["links"]["vru-pim"]["sessions_closed"] >= 1
    with (out / "timeline.csv").open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    scenario = load_scenario(out / "scenario.resolved.yaml")
    assert rows[0] == ["t_s", *timeline_columns(scenario)] and len(rows) == 1 + 100
    assert not scenario.has_node, "the resolved scenario reads back as hosts alone"
    assert "node" not in yaml.safe_load((out / "scenario.resolved.yaml").read_text(encoding="utf-8"))
    log = (out / "events.log").read_text(encoding="utf-8")
    assert "Missed 2 VRU PIM heartbeats" in log and "[10054]" in log
    assert _invoke("explain", str(out)) == (out / "narrative.txt").read_text(encoding="utf-8")


def test_metrics_lists_a_scenario_s_own_metrics() -> None:
    output = _invoke("metrics", str(REPO / "scenarios" / "vru_pim_transport.yaml"))
    assert "links.vru-pim-tcp.retransmissions" in output and "heartbeats_missed" in output
    assert "code_yellow_entries" not in output
    everything = _invoke("metrics")
    assert "code_yellow_entries" in everything and "sessions_closed" in everything


def test_an_expectation_of_the_wrong_part_is_refused(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.yaml"
    data = yaml.safe_load(INCIDENT.read_text(encoding="utf-8"))
    data["expect"] = {"code_yellow_entries": {"equals": 0}}
    wrong.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(wrong)])
    assert result.exit_code == 2
    assert "expect.code_yellow_entries: is a metric of the CUCM node" in result.output


def test_sweep_and_capacity_take_the_host_metrics(tmp_path: Path) -> None:
    _invoke("sweep", str(INCIDENT), *SHORT, "--grid", "disturbances.0.end_s=62,80", "--replications", "1",
            "--out", str(tmp_path / "sweep"), "--no-plots")
    with (tmp_path / "sweep" / "runs.csv").open(encoding="utf-8") as handle:
        runs = list(csv.DictReader(handle))
    assert [int(run["sessions_closed"]) for run in runs] == [0, 1], "a 2-s storm is survived, a 20-s one is not"
    assert "links.vru-pim.retransmissions" in runs[0]
    output = _invoke("capacity", str(INCIDENT), *SHORT, "--vary", "disturbances.0.end_s", "--lo", "61", "--hi", "85",
                     "--until", "sessions_closed > 0", "-n", "1", "--tolerance", "2", "--out",
                     str(tmp_path / "capacity"), "--no-plots")
    assert "capacity: disturbances.0.end_s = " in output
    found = float(output.split("capacity: disturbances.0.end_s = ")[1].split()[0])
    assert 61 <= found < 85
