"""The work limits through the command line (issue 11, item 7): refused before anything starts, in real
processes under a memory cap, with the estimate and the option that overrides it; `--allow-large` passes
the check on to the run itself."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

MEMORY_CAP_BYTES = 2 * 2**30
CHATTY = {
    "name": "chatty-bomb", "seed": 1, "duration_s": 600,
    "devices": {"count": 10_000, "chatty": [{"count": 10_000, "events_per_s": 100_000, "start_s": 0, "end_s": 600}]},
}


def capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))


def cucm_sim(*args: str | Path, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cucm_sim.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout_s, preexec_fn=capped, check=False)


@pytest.fixture
def chatty(tmp_path: Path) -> Path:
    path = tmp_path / "chatty.yaml"
    path.write_text(yaml.safe_dump(CHATTY), encoding="utf-8")
    return path


@pytest.mark.parametrize("command", [
    ("run", "--out", "{tmp}/r"),
    ("check", "--set", "expect.code_red_entries.max=0", "--workers", "1"),
    ("sweep", "--grid", "devices.keepalive_interval_s=30", "--workers", "1", "--out", "{tmp}/s"),
    ("capacity", "--vary", "devices.chatty.0.events_per_s", "--lo", "1", "--hi", "100000", "--until",
     "skinny_devices_throttled > 0", "--workers", "1", "--out", "{tmp}/c"),
])
def test_a_run_too_large_is_refused_before_it_starts(command: tuple[str, ...], chatty: Path, tmp_path: Path) -> None:
    name, *options = command
    started = time.monotonic()
    result = cucm_sim(name, chatty, *(option.format(tmp=tmp_path) for option in options))

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
    lines = result.stderr.splitlines()
    assert 1 <= len(lines) <= 2 and all(line.startswith("error: ") for line in lines), lines  # memory, backlog
    assert "devices.chatty.0: 10,000 devices x 100,000 events/s" in lines[0]
    assert "GiB of memory" in lines[0] and all("--allow-large" in line for line in lines)
    assert time.monotonic() - started < 30
    assert sorted(path.name for path in tmp_path.iterdir()) == ["chatty.yaml"]


def test_a_sweep_of_too_many_runs_is_refused_before_its_points_are_made(tmp_path: Path) -> None:
    scenario = Path(__file__).resolve().parent.parent / "scenarios" / "baseline.yaml"
    result = cucm_sim("sweep", scenario, "--grid", "load.calls_per_s=1:100:1", "--grid",
                      "node.capacity_factor=0.01:9.92:0.01", "-n", "1000", "--out", tmp_path / "s", timeout_s=30)

    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert "99,200 points x 1,000 replications = 99,200,000 runs" in line and "--allow-large" in line
    assert not (tmp_path / "s").exists()


def test_allow_large_lets_the_run_meet_its_own_backlog_bound(tmp_path: Path) -> None:
    scenario = tmp_path / "backlog.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "backlog", "seed": 1, "duration_s": 120, "throttling": {"system_throttle_sample_size_s": 0},
        "load": {"background": [{"signals_per_s": 1_000_000}]},
    }), encoding="utf-8")

    refused = cucm_sim("run", scenario, "--out", tmp_path / "refused")
    allowed = cucm_sim("run", scenario, "--out", tmp_path / "allowed", "--allow-large", timeout_s=300)

    assert refused.returncode == 2 and "--allow-large" in refused.stderr, refused.stderr
    assert allowed.returncode == 2, allowed.stderr  # stopped by the backlog bound, not by the estimate
    assert "Traceback" not in allowed.stderr and "--allow-large" not in allowed.stderr
    assert "signals wait in the router's queues" in allowed.stderr
    assert not (tmp_path / "allowed").exists() and not (tmp_path / "refused").exists()
