"""The cluster sections of a scenario: what they accept, what they refuse, and how a node's overrides and
disturbances reach the one-node scenario its engine runs (`Scenario.node_scenarios`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cucm_sim.errors import ScenarioError
from cucm_sim.scenario.loader import load_scenario, parse_scenario

BASE: dict[str, Any] = {
    "name": "c", "seed": 1, "duration_s": 60,
    "devices": {"pools": [{"name": "a", "count": 10, "cm_group": ["cm1", "cm2"]}]},
    "cluster": {"nodes": [{"name": "cm1"}, {"name": "cm2"}]},
}


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ScenarioError) as excinfo:
        parse_scenario(data, "c.yaml")
    return excinfo.value.problems


def with_(**changes: Any) -> dict[str, Any]:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        target = data
        for key in path:
            target = target[int(key)] if isinstance(target, list) else target.setdefault(key, {})
        target[last] = value
    return data


@pytest.mark.parametrize(("changes", "expected"), [
    ({"devices__pools__0__cm_group": ["cm1", "cm9"]},
     "devices.pools.0.cm_group.1: no node is named 'cm9'; nodes: cm1, cm2"),
    ({"devices__pools__0__cm_group": ["cm1", "cm1"]}, "cm_group.1: 'cm1' is already in the group"),
    ({"devices__pools__0__cm_group": ["cm1", "cm2", "cm1", "cm2"]}, "cm_group"),
    ({"devices__count": 10}, "devices.count: give count per pool (devices.pools)"),
    ({"cluster__nodes": [{"name": "cm1"}, {"name": "cm1"}]}, "cluster.nodes.1.name: 'cm1' is already the name"),
    ({"cluster__nodes": []}, "cluster.nodes"),
    ({"cluster__failover": {"detection": "ping"}}, "cluster.failover.detection"),
    ({"cluster__failover": {"missed_keepalives": 0}}, "cluster.failover.missed_keepalives"),
    ({"disturbances": [{"kind": "cpu_slowdown", "start_s": 1, "end_s": 2, "capacity_factor": 0.5}]},
     "disturbances.0: name the node a cpu_slowdown hits (node: one of cm1, cm2)"),
    ({"disturbances": [{"kind": "cpu_slowdown", "node": "cm7", "start_s": 1, "end_s": 2, "capacity_factor": 0.5}]},
     "disturbances.0.node: no node is named 'cm7'; nodes: cm1, cm2"),
    ({"disturbances": [{"kind": "call_surge", "node": "cm1", "start_s": 1, "end_s": 2, "calls_per_s": 1}]},
     "disturbances.0.node: unknown key"),
    ({"expect": {"nodes.cm7.code_red_entries": {"equals": 0}}}, "no node is named 'cm7'; nodes: cm1, cm2"),
    ({"cluster__nodes": [{"name": "cm1", "node": {"capacity_factor": 0}}, {"name": "cm2"}]},
     "cluster.nodes.0.node.capacity_factor"),
])
def test_a_bad_cluster_is_one_clear_problem(changes: dict[str, Any], expected: str) -> None:
    found = problems(with_(**changes))
    assert any(expected in problem for problem in found), found


def test_pools_and_node_names_need_a_cluster() -> None:
    data = with_()
    del data["cluster"]
    assert any("add a cluster section" in problem for problem in problems(data))
    single = {"name": "s", "duration_s": 60, "disturbances": [
        {"kind": "cpu_slowdown", "node": "cm1", "start_s": 1, "end_s": 2, "capacity_factor": 0.5}]}
    assert any("only a cluster's disturbance names a node" in problem for problem in problems(single))
    assert any("is a metric of a cluster" in problem
               for problem in problems({"name": "s", "duration_s": 60, "expect": {"phone_failovers": {"min": 0}}}))


def test_each_node_takes_the_top_level_sections_unless_it_overrides_them() -> None:
    data = with_(cluster__nodes=[
        {"name": "cm1"},
        {"name": "cm2", "node": {"capacity_factor": 2.0}, "throttling": {"code_yellow_entry_latency_ms": 50},
         "load": {"background": [{"signals_per_s": 7}]}},
    ])
    data.update(node={"restart_duration_s": 99}, throttling={"code_yellow_duration_min": 3},
                load={"background": [{"signals_per_s": 5}], "calls_per_s": 2},
                disturbances=[{"kind": "cpu_slowdown", "node": "cm2", "start_s": 1, "end_s": 2, "capacity_factor": 0.5},
                              {"kind": "call_surge", "start_s": 1, "end_s": 2, "calls_per_s": 1}])
    cm1, cm2 = parse_scenario(data, "c.yaml").node_scenarios()
    assert cm1.node.capacity_factor == 1.0 and cm2.node.capacity_factor == 2.0
    assert cm1.node.restart_duration_s == cm2.node.restart_duration_s == 99
    assert cm1.throttling.code_yellow_entry_latency_ms == 20 and cm2.throttling.code_yellow_entry_latency_ms == 50
    assert cm1.throttling.code_yellow_duration_min == cm2.throttling.code_yellow_duration_min == 3
    assert [s.signals_per_s for s in cm1.load.background] == [5]
    assert [s.signals_per_s for s in cm2.load.background] == [7]
    assert cm1.load.calls_per_s == cm2.load.calls_per_s == 2, "calls are the cluster's: they follow the phones"
    assert [d.kind for d in cm1.disturbances] == ["call_surge"]
    assert [d.kind for d in cm2.disturbances] == ["cpu_slowdown", "call_surge"]
    assert cm1.devices.count == cm2.devices.count == 10 and cm1.cluster is None and not cm1.expect


def test_the_resolved_cluster_reads_back_as_itself(tmp_path: Path) -> None:
    data = with_(cluster__nodes=[{"name": "cm1", "node": {"capacity_factor": 0.5}},
                                 {"name": "cm2", "throttling": {"code_yellow_duration_min": 2}}])
    data["node"] = {"restart_duration_s": 60}
    data["throttling"] = {"code_yellow_entry_latency_ms": 30}
    scenario = parse_scenario(data, "c.yaml")
    path = tmp_path / "resolved.yaml"
    path.write_text(yaml.safe_dump(scenario.resolved_data()), encoding="utf-8")
    again = load_scenario(path)
    assert again == scenario
    assert [node.node.restart_duration_s for node in again.node_scenarios()] == [60, 60]
    assert [node.throttling.code_yellow_entry_latency_ms for node in again.node_scenarios()] == [30, 30]


def test_a_single_node_scenario_resolves_without_cluster_keys() -> None:
    data = parse_scenario({"name": "s", "duration_s": 60, "disturbances": [
        {"kind": "cpu_slowdown", "start_s": 1, "end_s": 2, "capacity_factor": 0.5}]}, "s.yaml").resolved_data()
    assert "cluster" not in data and "pools" not in data["devices"] and "node" not in data["disturbances"][0]


def test_validate_names_the_file_line_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    bad = with_(devices__pools__0__cm_group=["cm1", "cm3"])
    path.write_text(yaml.safe_dump(bad, sort_keys=False), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "cucm_sim.cli", "validate", str(path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert "bad.yaml:" in done.stderr and "no node is named 'cm3'; nodes: cm1, cm2" in done.stderr
    assert "Traceback" not in done.stderr
