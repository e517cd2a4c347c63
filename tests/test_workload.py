"""Work limits (issue 11): the estimate before a run, what `check_run` and `check_sweep` refuse, and the
bound on the router's backlog that stops a run in either engine before it outgrows memory.

The issue's three cases are refused; every library scenario passes with room to spare; a flood of a million
signals a second with throttling off stops with a WorkLimitError in bounded memory and time, never a
MemoryError; and memory that runs out all the same ends in a WorkLimitError too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cucm_sim import Scenario, simulate
from cucm_sim.engine.batched import node as batched_model
from cucm_sim.engine.vocabulary import BATCHED_STREAMS, spawn_streams
from cucm_sim.errors import UserError, WorkLimitError
from cucm_sim.scenario import workload
from cucm_sim.scenario.loader import load_scenario
from cucm_sim.scenario.workload import (
    ALLOW_LARGE,
    MAX_QUEUED_SIGNALS,
    MAX_RUN_MEMORY_BYTES,
    MAX_RUN_WALL_S,
    MAX_SWEEP_RUNS,
    SPAN_ROWS,
    batched_block_seconds,
    check_run,
    check_sweep,
    estimate_run,
)

REPO = Path(__file__).resolve().parent.parent
LIBRARY = sorted((REPO / "scenarios").glob("*.yaml"))
ENGINES = ("batched", "signal")
THROTTLING_OFF = {"system_throttle_sample_size_s": 0}


def _flood(engine: str, signals_per_s: float = 1_000_000, duration_s: int = 1800) -> Scenario:
    """The issue's second case: background signals far past the thread's speed, throttling off."""
    return Scenario.model_validate({
        "name": "flood", "seed": 1, "duration_s": duration_s, "engine": engine, "throttling": THROTTLING_OFF,
        "load": {"background": [{"signals_per_s": signals_per_s}]},
    })


def _chatty(engine: str) -> Scenario:
    """The issue's first case: 10,000 chatty phones at 100,000 events/s each."""
    return Scenario.model_validate({
        "name": "chatty", "seed": 1, "duration_s": 600, "engine": engine,
        "devices": {"count": 10_000, "chatty": [{"count": 10_000, "events_per_s": 100_000, "start_s": 0,
                                                  "end_s": 600}]},
    })


# ------------------------------------------------------------------ before a run
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", LIBRARY, ids=lambda path: path.stem)
def test_library_scenarios_pass_with_room_to_spare(path: Path, engine: str) -> None:
    scenario = load_scenario(path).model_copy(update={"engine": engine})
    check_run(scenario, str(path))
    estimate = estimate_run(scenario)
    assert estimate.peak_memory_bytes < MAX_RUN_MEMORY_BYTES / 20
    assert estimate.wall_s < MAX_RUN_WALL_S / 20
    assert estimate.backlog_limit_at_s is None
    assert estimate.block_s == (SPAN_ROWS if engine == "batched" else 0)


@pytest.mark.parametrize("engine", ENGINES)
def test_ten_thousand_chatty_phones_are_refused(engine: str) -> None:
    with pytest.raises(WorkLimitError) as caught:
        check_run(_chatty(engine), "chatty.yaml")
    assert isinstance(caught.value, UserError)  # exit code 2
    first = caught.value.problems[0]
    assert first.startswith("chatty.yaml: devices.chatty.0: 10,000 devices x 100,000 events/s")
    assert f"the {engine} engine would generate about 6e+11 signals (1e+09 in the busiest second)" in first
    assert "(the limit is 1 hour)" in first
    if engine == "batched":  # it holds a whole block of events: the MemoryError
        assert "GiB of memory at peak (the limit is 8 GiB)" in first
    assert all(problem.endswith(ALLOW_LARGE) or problem.endswith(f"{ALLOW_LARGE} (it stops if the backlog "
                                                                 "passes the limit)")
               for problem in caught.value.problems)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_backlog_that_would_pass_the_bound_is_refused_before_it_starts(engine: str) -> None:
    with pytest.raises(WorkLimitError) as caught:
        check_run(_flood(engine), "flood.yaml")
    backlog = caught.value.problems[-1]
    limit = MAX_QUEUED_SIGNALS[engine]
    assert backlog.startswith("flood.yaml: load.background.0: 1,000,000 signals/s: about 1,000,000 signals/s "
                              "arrive and the thread serves 6,250/s")
    at_s = round(limit / (1_000_000 - 6_250))
    assert f"the {engine} engine's limit of {limit:,} queued signals at about {at_s:,} s of duration_s 1,800" in backlog
    assert "turn call throttling on (throttling.system_throttle_sample_size_s: 10)" in backlog
    assert backlog.endswith(f"{ALLOW_LARGE} (it stops if the backlog passes the limit)")


def test_a_sweep_of_ninety_nine_million_runs_is_refused() -> None:
    check_sweep(100, MAX_SWEEP_RUNS // 100, "sweep.yaml")  # exactly at the limit: allowed
    with pytest.raises(WorkLimitError) as caught:
        check_sweep(99_200, 1_000, "sweep.yaml")
    (message,) = caught.value.problems
    assert message.startswith("sweep.yaml: the sweep has 99,200 points x 1,000 replications = 99,200,000 runs; "
                              f"a sweep makes at most {MAX_SWEEP_RUNS:,}")
    assert message.endswith(ALLOW_LARGE)


def test_the_signals_are_counted_from_rates_and_windows() -> None:
    scenario = Scenario.model_validate({
        "name": "count", "duration_s": 100,
        "load": {"background": [{"signals_per_s": 1000}, {"signals_per_s": 50, "priority": "high"}],
                 "calls_per_s": 2, "signals_per_call": 10},
        "devices": {"count": 300, "keepalive_interval_s": 10,
                    "chatty": [{"count": 2, "events_per_s": 100, "start_s": 20, "end_s": 40}]},
        "disturbances": [{"kind": "signal_burst", "start_s": 90, "end_s": 150, "signals_per_s": 500},
                         {"kind": "call_surge", "start_s": 10, "end_s": 20, "calls_per_s": 8}],
    })
    estimate = estimate_run(scenario)
    background, burst = 1050 * 100, 500 * 10  # the burst is cut at the run's end
    keepalives, chatty = 300 / 10 * 100, 2 * 100 * 20  # 200 events/s: never past Max Events Allowed
    calls = (2 * 100 + 8 * 10) * 10
    assert estimate.signals == pytest.approx(background + burst + keepalives + chatty + calls)
    # The busiest second: the background, the keepalives, the calls and the burst (90 s to 100 s).
    assert estimate.peak_signals_per_s == pytest.approx(1050 + 30 + 2 * 10 + 500)
    assert estimate.backlog_signals == 0


def test_the_fluid_backlog_is_lost_at_each_code_red() -> None:
    # 7,000 signals/s against 6,250/s: 750 more a second.  Throttling on, each overload ends in Code Red
    # after the 10 s sample window and Code Yellow Duration (300 s); the restart takes 180 s.
    on = Scenario.model_validate({"name": "over", "duration_s": 3600, "devices": {"count": 10},
                                  "load": {"background": [{"signals_per_s": 7000}]}})
    estimate = estimate_run(on)
    assert estimate.backlog_signals == pytest.approx((750 + 10 / 30) * 310)  # with the 10 phones' keepalives
    restarts = [part for part in estimate.contributions if part.field == "node.restart_duration_s"]
    assert restarts and restarts[0].text.startswith("7 restart(s)")  # 7 x (310 + 180) s; then 170 s is too short
    off = _flood("batched", signals_per_s=7000, duration_s=3600)
    assert estimate_run(off).backlog_signals == pytest.approx(750 * 3600)
    assert estimate_run(off).backlog_limit_at_s is None


def test_a_heavy_load_gets_shorter_blocks() -> None:
    assert batched_block_seconds(_flood("batched", signals_per_s=10_000)) == SPAN_ROWS
    # 1e6 signals/s x 120 bytes held per signal: 4 s stay under MAX_BLOCK_BYTES (512 MiB), 8 would not.
    flood = _flood("batched", duration_s=10)
    assert batched_block_seconds(flood) == 4
    streams = spawn_streams(np.random.SeedSequence(1), BATCHED_STREAMS)
    assert batched_model.BatchedNodeModel(flood, streams)._span_limit == 4
    assert estimate_run(_chatty("batched")).block_s == 1


def test_the_estimate_counts_at_least_the_signals_a_run_processes() -> None:
    for name in ("cold_start_registration", "sccp_chatty_device"):
        scenario = load_scenario(REPO / "scenarios" / f"{name}.yaml", ["duration_s=150"])
        processed = simulate(scenario).summary["signals_processed"]
        assert processed <= estimate_run(scenario).signals


# ------------------------------------------------------------------ while a run goes
@pytest.mark.parametrize("engine", ENGINES)
def test_a_backlog_past_the_bound_stops_the_run(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(workload.MAX_QUEUED_SIGNALS, engine, 200_000)
    with pytest.raises(WorkLimitError) as caught:
        simulate(_flood(engine, signals_per_s=300_000, duration_s=60))
    (message,) = caught.value.problems
    assert message.startswith("scenario 'flood': stopped at 1 s simulated: ")
    assert f"signals wait in the router's queues, past the {engine} engine's limit of 200,000" in message
    assert "the thread served" in message and "(its full speed: 6,250/s at capacity factor 1)" in message
    assert "turn call throttling on" in message and message.endswith("or split the run into shorter ones")


def _in_a_fresh_process(code: str, address_space_bytes: int) -> dict[str, Any]:
    """Run `code` in a new interpreter limited to `address_space_bytes` of memory: how it ended (finished, or
    the WorkLimitError's message), its wall time (s) and its peak RSS (bytes)."""
    script = "\n".join([
        "import json, resource, time",
        f"resource.setrlimit(resource.RLIMIT_AS, ({address_space_bytes}, {address_space_bytes}))",
        "from cucm_sim import Scenario, simulate",
        "from cucm_sim.errors import WorkLimitError",
        "started = time.perf_counter()",
        "try:",
        textwrap.indent(textwrap.dedent(code).strip(), "    "),
        "    outcome = 'finished'",
        "except WorkLimitError as error:",
        "    outcome = str(error)",
        "print(json.dumps({'outcome': outcome, 'wall_s': time.perf_counter() - started,",
        "                  'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))",
    ])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


_FLOOD_RUN = """
    simulate(Scenario.model_validate({
        "name": "flood", "seed": 1, "duration_s": 1800, "engine": "%s",
        "throttling": {"system_throttle_sample_size_s": 0},
        "load": {"background": [{"signals_per_s": 1_000_000}]},
    }))
"""


@pytest.mark.parametrize("engine", [
    "batched",
    pytest.param("signal", marks=pytest.mark.slow),  # about 20 s to queue 10 million signals one by one
])
def test_a_flood_stops_in_bounded_memory_and_time(engine: str) -> None:
    # The whole run, as the CLI makes it, at the real bound, under a 4 GiB address space: before the bound
    # the backlog grew about 16 MB a simulated second until a MemoryError.
    result = _in_a_fresh_process(_FLOOD_RUN % engine, 4 * 2**30)
    limit = MAX_QUEUED_SIGNALS[engine]
    assert f"past the {engine} engine's limit of {limit:,}" in result["outcome"]
    assert result["peak_rss_bytes"] < 2 * 2**30
    assert result["wall_s"] < 60


def test_memory_that_runs_out_ends_in_a_work_limit_error() -> None:
    # The chatty phones, run anyway (--allow-large) on a machine with 2 GiB: the first block asks
    # numpy for a billion arrival times.
    result = _in_a_fresh_process("""
        simulate(Scenario.model_validate({
            "name": "chatty", "seed": 1, "duration_s": 600,
            "devices": {"count": 10_000, "chatty": [{"count": 10_000, "events_per_s": 100_000,
                                                      "start_s": 0, "end_s": 600}]},
        }))
    """, 2 * 2**30)
    outcome = result["outcome"]
    assert outcome.startswith("scenario 'chatty': the batched engine ran out of memory at 0 s simulated")
    assert "devices.chatty.0: 10,000 devices x 100,000 events/s" in outcome
