"""A CUCM cluster: failover, rehoming and cascades against the rules of `world.cluster` and Cisco's published
behaviour (DOMAIN.md section 4), over replications and on both engines.

The small cluster here: two nodes, 1,000 phones homed on each, cm1 slowed to 5 % from t=10 s, so it enters
Code Yellow at once and Code Red a minute later (Code Yellow Duration 1 min), restarts for 30 s and comes
back; its phones fail over to cm2 and come home again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cucm_sim.rules.alarms import (
    CALLMANAGER_ONLINE,
    CODE_RED_ENTRY,
    CONNECTIVITY_ERROR,
    DEVICE_INITIATED_UNREGISTER,
    DEVICE_REGISTERED,
    DEVICE_UNREGISTERED,
    Alarm,
)
from cucm_sim.run.simulation import RunResult, simulate
from cucm_sim.scenario.loader import load_scenario
from cucm_sim.scenario.schema import Scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
PHONES = 1000
ENGINES = ("batched", "signal")


def cluster(engine: str = "batched", seed: int = 1, **failover: Any) -> dict[str, Any]:
    """The small cluster of the module doc, as scenario data."""
    return {
        "name": "small-cluster", "seed": seed, "duration_s": 240, "engine": engine,
        "throttling": {"code_yellow_duration_min": 1},
        "node": {"signal_service_time_ms": {"distribution": "exponential", "mean": 0.16}, "restart_duration_s": 30},
        "load": {"background": [{"signals_per_s": 1000}], "calls_per_s": 10, "signals_per_call": 12},
        "devices": {"keepalive_interval_s": 10, "registration_spread_s": 20, "pools": [
            {"name": "a", "count": PHONES, "cm_group": ["cm1", "cm2"]},
            {"name": "b", "count": PHONES, "cm_group": ["cm2", "cm1"]},
        ]},
        "cluster": {"nodes": [{"name": "cm1"}, {"name": "cm2"}],
                    "failover": {"detection": "tcp_close", "rehome_delay_s": 20, "secondary_keepalive_interval_s": 30,
                                 **failover}},
        "disturbances": [{"kind": "cpu_slowdown", "node": "cm1", "start_s": 10, "end_s": 60, "capacity_factor": 0.05}],
    }


def run(data: Mapping[str, Any]) -> RunResult:
    return simulate(Scenario.model_validate(data))


def node_alarms(result: RunResult, name: str) -> tuple[Alarm, ...]:
    return next(node.alarms for node in result.nodes if node.name == name)


def first(alarms: tuple[Alarm, ...], alarm_name: str) -> float:
    return next(alarm.t_s for alarm in alarms if alarm.name == alarm_name)


def registrations(alarms: tuple[Alarm, ...], after_s: float = 0.0) -> dict[str, float]:
    """Each phone's first DeviceRegistered at or after `after_s` (s), by device name."""
    found: dict[str, float] = {}
    for alarm in alarms:
        if alarm.name == DEVICE_REGISTERED and alarm.t_s >= after_s:
            found.setdefault(str(alarm.params["DeviceName"]), alarm.t_s)
    return found


def pool_a(device_name: str) -> bool:
    return int(device_name[3:], 16) < PHONES


@pytest.mark.parametrize("engine", ENGINES)
def test_tcp_close_failover_starts_within_a_second_of_the_primarys_code_red(engine: str) -> None:
    for seed in (1, 2):
        result = run(cluster(engine, seed))
        cm1, cm2 = node_alarms(result, "cm1"), node_alarms(result, "cm2")
        red_s = first(cm1, CODE_RED_ENTRY)
        lost = [alarm for alarm in cm1 if alarm.name == DEVICE_UNREGISTERED]
        assert len(lost) == PHONES, "every phone registered with cm1 loses it"
        assert {alarm.t_s for alarm in lost} == {red_s}
        assert {alarm.params["Reason"] for alarm in lost} == {CONNECTIVITY_ERROR}
        moved = {name: t_s for name, t_s in registrations(cm2, red_s).items() if pool_a(name)}
        assert len(moved) == PHONES, "each of cm1's phones registers with its secondary"
        assert red_s <= min(moved.values()) < red_s + 1.0
        spread_s = 20.0
        assert max(moved.values()) < red_s + spread_s + 1.0, "all within the registration spread (plus service)"


@pytest.mark.parametrize("engine", ENGINES)
def test_keepalive_failover_of_each_phone_comes_between_m_minus_1_and_m_intervals_after(engine: str) -> None:
    missed, interval_s = 3, 10.0
    delays_s: list[float] = []
    for seed in (1, 2):
        result = run(cluster(engine, seed, detection="keepalive", missed_keepalives=missed))
        red_s = first(node_alarms(result, "cm1"), CODE_RED_ENTRY)
        moved = {name: t_s for name, t_s in registrations(node_alarms(result, "cm2"), red_s).items()
                 if pool_a(name)}
        assert len(moved) == PHONES
        delays_s.extend(t_s - red_s for t_s in moved.values())
    delays = np.array(delays_s)
    registration_s = 0.5  # the registration dialogue on an idle cm2: milliseconds; a margin for its queue
    assert delays.min() >= (missed - 1) * interval_s
    assert delays.max() <= missed * interval_s + registration_s
    # uniform over the last interval: its mean within 4 standard errors of the middle
    standard_error_s = interval_s / np.sqrt(12 * len(delays))
    assert abs(delays.mean() - (missed - 0.5) * interval_s) < 4 * standard_error_s + 0.05


@pytest.mark.parametrize("engine", ENGINES)
def test_phones_rehome_after_the_primary_is_back_and_the_rehome_delay(engine: str) -> None:
    result = run(cluster(engine))
    cm1, cm2 = node_alarms(result, "cm1"), node_alarms(result, "cm2")
    online_s = first(cm1, CALLMANAGER_ONLINE)
    delay_s, second_keepalive_s = 20.0, 30.0
    home = {name: t_s for name, t_s in registrations(cm1, online_s).items() if pool_a(name)}
    assert len(home) == PHONES
    times = np.array(list(home.values()))
    assert times.min() >= online_s + delay_s
    assert times.max() <= online_s + delay_s + second_keepalive_s + 1.0
    left = [alarm for alarm in cm2 if alarm.name == DEVICE_UNREGISTERED and alarm.t_s >= online_s]
    assert len(left) == PHONES and {alarm.params["Reason"] for alarm in left} == {DEVICE_INITIATED_UNREGISTER}
    summary = result.summary
    assert summary["phone_rehomes"] == PHONES and summary["phone_failovers"] == PHONES
    assert summary["nodes"]["cm1"]["registered_devices_at_end"] == PHONES
    assert summary["nodes"]["cm2"]["registered_devices_at_end"] == PHONES


def test_no_phone_is_ever_registered_with_two_nodes() -> None:
    """Every node's registered count plus the phones registered nowhere is the cluster, every second."""
    result = run(cluster())
    registered = np.sum([node.timeline["registered_devices"] for node in result.nodes], axis=0)
    assert registered.max() <= 2 * PHONES
    assert registered[-1] == 2 * PHONES
    assert result.summary["phones_unregistered_at_end"] == 0


def test_calls_follow_the_phones() -> None:
    """Before the failure each node takes its registered phones' share of the calls (Poisson, 10/s x 1/2);
    while cm1 restarts, cm1 takes none and cm2 all those of registered phones."""
    data = cluster()
    data["duration_s"] = 240
    result = run(data)
    cm1, cm2 = (node.timeline["calls_attempted"] for node in result.nodes)
    before = slice(0, 10)
    for calls in (cm1, cm2):
        count = calls[before].sum()
        assert abs(count - 50) < 4 * np.sqrt(50)
    red_s = int(first(node_alarms(result, "cm1"), CODE_RED_ENTRY))
    down = slice(red_s + 1, red_s + 29)
    assert cm1[down].sum() == 0
    registered = np.sum([node.timeline["registered_devices"] for node in result.nodes], axis=0)
    expected_cm2 = float(np.sum(10.0 * result.nodes[1].timeline["registered_devices"][down] / (2 * PHONES)))
    assert abs(cm2[down].sum() - expected_cm2) < 4 * np.sqrt(expected_cm2) + 2
    not_placed = float(np.sum(10.0 * (2 * PHONES - registered) / (2 * PHONES)))
    assert abs(result.summary["calls_not_placed"] - not_placed) < 4 * np.sqrt(not_placed) + 2


def test_a_node_without_phones_takes_no_calls_and_still_runs() -> None:
    data = cluster()
    data["cluster"]["nodes"].append({"name": "cm3"})
    result = run(data)
    cm3 = result.summary["nodes"]["cm3"]
    assert cm3["calls_attempted"] == 0 and cm3["registered_devices_at_end"] == 0
    assert cm3["signals_processed"] > 1000 * 200, "its own background load is served"
    assert cm3["code_yellow_entries"] == 0


def test_with_every_node_of_a_group_down_phones_wait_and_register_when_one_is_back() -> None:
    data = cluster()
    data["devices"]["pools"] = [{"name": "a", "count": PHONES, "cm_group": ["cm1"]}]
    data["cluster"]["nodes"].append({"name": "cm3"})
    data["devices"]["pools"].append({"name": "c", "count": 10, "cm_group": ["cm3"]})
    result = run(data)
    cm1 = node_alarms(result, "cm1")
    online_s = first(cm1, CALLMANAGER_ONLINE)
    back = registrations(cm1, first(cm1, CODE_RED_ENTRY))
    assert len(back) == PHONES
    assert min(back.values()) >= online_s and max(back.values()) < online_s + 20.0 + 1.0
    assert result.summary["phones_unregistered_at_end"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cluster_failover_cascade", "cluster_failover_absorbed"])
def test_the_same_failure_cascades_or_is_absorbed(name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    if name == "cluster_failover_cascade":  # its story is told by then (the rehoming needs the whole run)
        scenario = scenario.model_copy(update={"duration_s": 800})
    summary = simulate(scenario).summary
    cm1, cm2 = summary["nodes"]["cm1"], summary["nodes"]["cm2"]
    assert cm1["code_red_entries"] >= 1 and cm1["first_code_red_entry_s"] == 421.0
    if name == "cluster_failover_cascade":
        assert cm2["code_yellow_entries"] >= 1 and cm2["code_red_entries"] >= 1
        assert cm2["first_code_red_entry_s"] > cm1["first_code_red_entry_s"]
    else:
        assert cm2["code_yellow_entries"] == 0 and cm2["code_red_entries"] == 0
        assert summary["phones_unregistered_at_end"] == 0
        assert cm2["max_average_expected_delay_ms"] < 20.0


@pytest.mark.slow
def test_the_engines_agree_on_a_cluster_over_replications() -> None:
    """The same small cluster on both engines, 6 seeds each: the per-node means of what failover changes
    agree within 4 standard errors of their difference (different random numbers, the same model)."""
    metrics = ("calls_attempted", "signals_processed", "max_average_expected_delay_ms")
    seeds = range(11, 17)
    results = {engine: [run({**cluster(engine, seed), "duration_s": 170}).summary for seed in seeds]
               for engine in ENGINES}
    for node in ("cm1", "cm2"):
        for metric in metrics:
            a = np.array([s["nodes"][node][metric] for s in results["batched"]], dtype=float)
            b = np.array([s["nodes"][node][metric] for s in results["signal"]], dtype=float)
            error = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
            assert abs(a.mean() - b.mean()) <= 4 * error + 1e-6 * abs(a.mean()), (node, metric, a, b)
    for engine in ENGINES:
        assert {s["nodes"]["cm1"]["first_code_red_entry_s"] for s in results[engine]} == {71.0}
        assert {s["phone_failovers"] for s in results[engine]} == {PHONES}


def test_a_run_is_the_same_for_the_same_seed() -> None:
    first_run, second_run = run(cluster()), run(cluster())
    assert first_run.summary["nodes"] == second_run.summary["nodes"]
    assert first_run.alarms == second_run.alarms
