"""Tests for the run overview figure: it renders valid PNGs for short, day-long and degenerate runs.

The timelines are synthetic: a small fluid model of one node (four priority queues, one thread) drives the
real `ThrottleStateMachine`, so states, averages and alarms are consistent with each other.  Running this
file as a script writes an example figure to /tmp/plot_example.png.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

import matplotlib
import matplotlib.image
import numpy as np
import pytest
from numpy.typing import NDArray

from cucm_sim.measures.timeline import TIMELINE_COLUMNS
from cucm_sim.report.plotting import plot_timeline, state_runs
from cucm_sim.rules.alarms import (
    CALLMANAGER_ONLINE,
    CODE_RED_ENTRY,
    CODE_YELLOW_ENTRY,
    CODE_YELLOW_EXIT,
    DEVICE_CLOSE_MAX_EVENTS_EXCEEDED,
    Alarm,
)
from cucm_sim.rules.throttling import ThrottleState, ThrottleStateMachine, ThrottlingParams

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

Timeline = dict[str, NDArray[Any]]

HOUR_STARVATION = [(600, 840, 0.14), (840, 1260, 0.05)]
DAY_STARVATION = [(36_000, 36_240, 0.14), (36_240, 36_660, 0.05), (60_000, 60_600, 0.2)]


def starvation_timeline(
    duration_s: int,
    starvation: Sequence[tuple[int, int, float]],
    params: ThrottlingParams,
    devices: int = 5000,
    seed: int = 7,
) -> tuple[Timeline, list[Alarm]]:
    """A node whose CPU share drops in the `starvation` periods (start s, end s, capacity factor).

    Fluid approximation, one step per second: capacity 500 signals/s x capacity factor, served strictly
    High > Normal > Low > Lowest; expected delay = whole backlog / capacity (plus light M/M/1-like noise).
    6 calls/s, a call costs 20 Normal signals, a rejected one 1.  A moderate drop makes the node flap
    between Normal and Code Yellow; a deep one holds it in Code Yellow until Code Red restarts it for
    180 s: queues are lost, phones fail over, then rehome (a registration storm in Low / Lowest, with
    some SCCP throttling).
    """
    rng = np.random.default_rng(seed)
    machine = ThrottleStateMachine(params)
    capacity_full_per_s = 500.0
    restart_s = 180
    columns: dict[str, list[Any]] = {name: [] for name in TIMELINE_COLUMNS}
    alarms: list[Alarm] = []
    queues = np.zeros(4)  # high, normal, low, lowest (signals)
    registered = float(devices)
    throttled_total = 0
    restart_until_s: int | None = None
    rehome_pending = 0.0
    for now_s in range(1, duration_s + 1):
        capacity_factor = next((factor for start_s, end_s, factor in starvation if start_s <= now_s < end_s), 1.0)
        restarting = restart_until_s is not None and now_s <= restart_until_s
        if restart_until_s is not None and now_s == restart_until_s + 1:
            alarms.append(Alarm(CALLMANAGER_ONLINE, float(now_s), {"RestartDuration": restart_s}))
            machine.reset()
            restart_until_s = None
            rehome_pending = float(devices)
        if restarting:
            queues[:] = 0.0
            registered = max(0.0, registered - devices / 60.0)  # phones fail over within about a minute
            expected_delay_ms = 0.0
            attempted = rejected = 0
            processed = 0.0
        else:
            capacity_per_s = capacity_full_per_s * capacity_factor
            attempted = int(rng.poisson(6.0 * registered / devices))
            throttling = machine.state is ThrottleState.CODE_YELLOW
            rejected = attempted if throttling else 0
            rehoming = min(rehome_pending, 60.0)
            rehome_pending -= rehoming
            registered = min(float(devices), registered + rehoming)
            throttled_now = int(rng.poisson(1.5)) if rehoming > 0 and params.max_events_allowed > 0 else 0
            throttled_total += throttled_now
            for _ in range(throttled_now):
                alarms.append(Alarm(DEVICE_CLOSE_MAX_EVENTS_EXCEEDED, float(now_s), {
                    "DeviceName": f"SEP{rng.integers(16**12):012X}", "TotalEventsReceived": 2400,
                    "MaxEventsAllowed": params.max_events_allowed, "NumberOfSkinnyDeviceThrottled": throttled_total,
                }))
            arrivals = np.array([
                rng.poisson(12.0 * max(registered, 1.0) / devices + 8.0),
                (attempted - rejected) * 20 + rejected,
                rehoming * 6.0,
                rehoming,
            ])
            queues += arrivals
            budget = capacity_per_s
            processed = 0.0
            for index in range(4):
                served = min(queues[index], budget)
                queues[index] -= served
                budget -= served
                processed += served
            utilisation = min(float(arrivals.sum()) / capacity_per_s, 0.95)
            noise_ms = rng.exponential(2.0 * utilisation / (1 - utilisation)) if rng.random() < utilisation else 0
            expected_delay_ms = float(queues.sum()) / capacity_per_s * 1000.0 + noise_ms
        # Like the model: a row's state is the one in force during its second, before its sample.
        state_during_second = machine.state.value if not restarting else ThrottleState.CODE_RED.value
        for alarm in machine.observe(float(now_s), expected_delay_ms):
            alarms.append(alarm)
            if alarm.name == CODE_RED_ENTRY:
                restart_until_s = now_s + restart_s
        columns["t_s"].append(now_s)
        columns["state"].append(state_during_second)
        columns["expected_delay_ms"].append(expected_delay_ms)
        columns["average_expected_delay_ms"].append(machine.average_expected_delay_ms)
        columns["throttling_sample_activity"].append(machine.throttling_sample_activity)
        for name, depth in zip(("queue_high", "queue_normal", "queue_low", "queue_lowest"), queues, strict=True):
            columns[name].append(depth)
        columns["signals_processed"].append(processed)
        columns["calls_attempted"].append(attempted)
        columns["calls_rejected"].append(rejected)
        columns["skinny_devices_throttled"].append(throttled_total)
        columns["registered_devices"].append(round(registered))
        columns["capacity_factor"].append(capacity_factor)
    timeline = {name: np.asarray(values) for name, values in columns.items()}
    return timeline, alarms


def quiet_timeline(duration_s: int, registered_devices: int = 0) -> Timeline:
    """An idle node: every column zero (or the given device count), always Normal."""
    timeline: Timeline = {name: np.zeros(duration_s) for name in TIMELINE_COLUMNS}
    timeline["t_s"] = np.arange(1, duration_s + 1, dtype=float)
    timeline["state"] = np.full(duration_s, ThrottleState.NORMAL.value)
    timeline["registered_devices"] = np.full(duration_s, float(registered_devices))
    timeline["capacity_factor"] = np.ones(duration_s)
    return timeline


def assert_png(path: pathlib.Path) -> None:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(path)
    height_px, width_px, channels = pixels.shape
    assert 1000 <= width_px <= 1700 and 900 <= height_px <= 1400, pixels.shape
    assert channels in (3, 4)
    assert float(pixels[..., :3].std()) > 0.05  # not a blank canvas


def test_short_run_with_hand_made_alarms(tmp_path: pathlib.Path) -> None:
    params = ThrottlingParams()
    timeline = quiet_timeline(30, registered_devices=200)
    states = ["Normal"] * 8 + ["CodeYellow"] * 12 + ["CodeRed"] * 6 + ["Normal"] * 4
    timeline["state"] = np.array(states)
    timeline["expected_delay_ms"] = np.where(np.arange(30) < 24, np.linspace(0, 60, 30), 0.0)
    timeline["average_expected_delay_ms"] = np.convolve(timeline["expected_delay_ms"], np.ones(10) / 10)[:30]
    timeline["calls_attempted"] = np.full(30, 5.0)
    timeline["calls_rejected"] = np.where(np.array(states) == "CodeYellow", 5.0, 0.0)
    timeline["queue_normal"] = np.linspace(0, 1e5, 30)
    alarms = [
        Alarm(CODE_YELLOW_ENTRY, 9.0, {"ExpectedAverageDelay": 21.0, "EntryLatency": 20}),
        Alarm(CODE_RED_ENTRY, 21.0, {}),
        Alarm(CALLMANAGER_ONLINE, 27.0, {}),
        Alarm(DEVICE_CLOSE_MAX_EVENTS_EXCEEDED, 27.0, {"DeviceName": "SEP001122334455"}),
    ]
    path = tmp_path / "short.png"
    plot_timeline(timeline, alarms, params, "short run", path)
    assert_png(path)


def test_state_bands_start_at_the_transition_alarm() -> None:
    # Row k holds the state in force during (t_s[k] - 1, t_s[k]]; a transition alarm raised by the
    # sample at the end of row k changes the state of row k + 1, so its band starts at the alarm's t_s.
    time_s = np.arange(1.0, 7.0)
    states = np.array(["Normal", "Normal", "CodeYellow", "CodeYellow", "CodeRed", "Normal"])
    assert state_runs(time_s, states) == [
        ("Normal", 0.0, 2.0), ("CodeYellow", 2.0, 4.0), ("CodeRed", 4.0, 5.0), ("Normal", 5.0, 6.0),
    ]
    assert state_runs(time_s[:1], states[:1]) == [("Normal", 0.0, 1.0)]


def test_day_long_starvation_run(tmp_path: pathlib.Path) -> None:
    params = ThrottlingParams()
    timeline, alarms = starvation_timeline(86_400, DAY_STARVATION, params)
    names = {alarm.name for alarm in alarms}
    assert {CODE_YELLOW_ENTRY, CODE_RED_ENTRY, CALLMANAGER_ONLINE, DEVICE_CLOSE_MAX_EVENTS_EXCEEDED} <= names
    assert set(timeline["state"].tolist()) == {"Normal", "CodeYellow", "CodeRed"}
    path = tmp_path / "day.png"
    plot_timeline(timeline, alarms, params, "one day, 15 min CPU starvation at 10:00", path)
    assert_png(path)


def test_many_transitions_are_drawn_without_labels(tmp_path: pathlib.Path) -> None:
    duration_s = 1200
    timeline = quiet_timeline(duration_s, registered_devices=1000)
    cycle = np.array(["Normal"] * 20 + ["CodeYellow"] * 20)
    timeline["state"] = np.resize(cycle, duration_s)
    timeline["expected_delay_ms"] = np.where(timeline["state"] == "CodeYellow", 30.0, 2.0)
    timeline["average_expected_delay_ms"] = timeline["expected_delay_ms"]
    alarms = [
        Alarm(CODE_YELLOW_ENTRY if k % 2 == 0 else CODE_YELLOW_EXIT, float(20 * (k + 1)), {})
        for k in range(duration_s // 20 - 1)
    ]
    path = tmp_path / "flapping.png"
    plot_timeline(timeline, alarms, ThrottlingParams(), "flapping", path)
    assert_png(path)


def test_throttling_disabled_without_alarms(tmp_path: pathlib.Path) -> None:
    params = ThrottlingParams(system_throttle_sample_size_s=0)
    timeline, alarms = starvation_timeline(600, [(100, 400, 0.2)], params)
    assert not [alarm for alarm in alarms if alarm.name != DEVICE_CLOSE_MAX_EVENTS_EXCEEDED]
    assert set(timeline["state"].tolist()) == {"Normal"}
    path = tmp_path / "disabled.png"
    plot_timeline(timeline, [], params, "throttling disabled", path)
    assert_png(path)


@pytest.mark.parametrize("duration_s", [1, 30, 901, 7200])
def test_idle_run_with_zero_devices_and_empty_queues(tmp_path: pathlib.Path, duration_s: int) -> None:
    path = tmp_path / f"idle_{duration_s}.png"
    plot_timeline(quiet_timeline(duration_s), [], ThrottlingParams(), "idle, no devices", path)
    assert_png(path)


def test_bad_timelines_are_refused(tmp_path: pathlib.Path) -> None:
    params = ThrottlingParams()
    timeline = quiet_timeline(10)
    del timeline["queue_low"]
    with pytest.raises(ValueError, match="missing columns"):
        plot_timeline(timeline, [], params, "x", tmp_path / "x.png")
    with pytest.raises(ValueError, match="empty"):
        plot_timeline(quiet_timeline(0), [], params, "x", tmp_path / "x.png")
    timeline = quiet_timeline(10)
    timeline["state"] = np.array(["Normal"] * 9 + ["Amber"])
    with pytest.raises(ValueError, match="unknown states"):
        plot_timeline(timeline, [], params, "x", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_global_matplotlib_state_is_untouched(tmp_path: pathlib.Path) -> None:
    # The raw rcParams value avoids resolving the "auto" backend, which would itself import pyplot.
    backend_before = dict.__getitem__(matplotlib.rcParams, "backend")
    plot_timeline(quiet_timeline(30, 10), [], ThrottlingParams(), "x", tmp_path / "x.png")
    assert dict.__getitem__(matplotlib.rcParams, "backend") == backend_before
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        assert pyplot.get_fignums() == []


def test_plotting_never_imports_pyplot(tmp_path: pathlib.Path) -> None:
    # In a fresh interpreter, so that nothing else in the test session can have imported pyplot first.
    script = textwrap.dedent(
        f"""
        import pathlib, sys
        import matplotlib
        import numpy as np
        from cucm_sim.report.plotting import state_runs, plot_timeline
        from cucm_sim.rules.throttling import ThrottlingParams
        from cucm_sim.measures.timeline import TIMELINE_COLUMNS
        backend_before = dict.__getitem__(matplotlib.rcParams, "backend")
        timeline = {{name: np.zeros(5) for name in TIMELINE_COLUMNS}}
        timeline["t_s"] = np.arange(1, 6)
        timeline["state"] = np.array(["Normal"] * 5)
        plot_timeline(timeline, [], ThrottlingParams(), "x", pathlib.Path({str(tmp_path / "x.png")!r}))
        assert "matplotlib.pyplot" not in sys.modules, "plotting imported pyplot"
        assert dict.__getitem__(matplotlib.rcParams, "backend") == backend_before
        """
    )
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, env=environment,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert_png(tmp_path / "x.png")


if __name__ == "__main__":
    example_params = ThrottlingParams()
    example_timeline, example_alarms = starvation_timeline(3600, HOUR_STARVATION, example_params)
    plot_timeline(
        example_timeline, example_alarms, example_params,
        "CPU starvation: ccm gets 14 % of its CPU for 4 min, then 5 % for 7 min",
        pathlib.Path("/tmp/plot_example.png"),
    )
