"""Worker processes end with the command that started them: killed, interrupted or terminated.

Real commands in real processes: `cucm-sim sweep --workers 2` and `cucm-sim check --workers 2` are started
on runs long enough to be in flight (the baseline for ten simulated hours: about a minute each), their
process tree is read from /proc (the spawned workers and multiprocessing's resource tracker), and then the
command alone, not its process group, is sent a signal. SIGKILL: every process it started must be gone
within a few seconds (they used to wait for work forever, and the resource tracker with them). SIGINT or
SIGTERM: the command must exit 130 within a few seconds without waiting for the runs in progress, and leave
no process behind. Any process a test started and finds still alive at the end is killed, so that a failure
leaves nothing running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc (Linux)"),
]

REPO = Path(__file__).resolve().parent.parent
BASELINE = REPO / "scenarios" / "baseline.yaml"
LONG_RUN = "duration_s=36000"
"""Ten simulated hours of the baseline: the best part of a minute per run, so runs are in flight."""
GONE_WITHIN_S = 5.0


# ------------------------------------------------------------------ the process tree, from /proc
def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of `pid`, None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()  # after "pid (command name)", which may hold spaces
    return fields[0], int(fields[1])


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == pid:
                found.add(int(entry.name))
    return found


def descendants(pid: int) -> set[int]:
    found = set()
    for child in children(pid):
        found |= {child, *descendants(child)}
    return found


def alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"  # a zombie has ended; only its exit status is left


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


@contextmanager
def started(arguments: list[str], tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], set[int]]]:
    """Start `cucm-sim ARGUMENTS`, wait until both workers and the resource tracker run and the workers
    have had time to start their runs; yield the process and its descendants.  Afterwards kill whatever
    of them is still alive (the test has failed by then), so nothing outlives the test."""
    stderr = (tmp_path / "stderr.txt").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "cucm_sim.cli", *arguments], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=stderr)
    tree: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            tree |= descendants(process.pid)
            lines = [command_line(pid) for pid in tree if alive(pid)]
            if sum("spawn_main" in line for line in lines) >= 2 and any("resource_tracker" in line for line in lines):
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the workers never started: {(tmp_path / 'stderr.txt').read_text()}")
        time.sleep(3.0)  # the workers import cucm_sim and start their runs
        tree |= descendants(process.pid)
        assert process.poll() is None, "the command ended before its runs were in flight"
        yield process, tree
    finally:
        for pid in [process.pid, *tree]:
            if alive(pid):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        process.wait()
        stderr.close()


def survivors(tree: set[int], within_s: float) -> dict[int, str]:
    """The processes of `tree` still alive after `within_s` (s), with their command lines."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and any(alive(pid) for pid in tree):
        time.sleep(0.05)
    return {pid: command_line(pid) for pid in tree if alive(pid)}


def sweep_arguments(out_dir: Path) -> list[str]:
    return ["sweep", str(BASELINE), "--grid", "load.calls_per_s=4,8", "--set", LONG_RUN, "--workers", "2",
            "--out", str(out_dir), "--no-plots", "--quiet"]


def check_arguments() -> list[str]:
    return ["check", str(BASELINE), "--set", LONG_RUN, "--replications", "2", "--workers", "2"]


# ------------------------------------------------------------------ the tests
@pytest.mark.parametrize("command", ["sweep", "check"])
def test_workers_and_resource_tracker_end_when_the_command_is_killed(command: str, tmp_path: Path) -> None:
    arguments = sweep_arguments(tmp_path / "out") if command == "sweep" else check_arguments()
    with started(arguments, tmp_path) as (process, tree):
        assert len(tree) >= 3, {pid: command_line(pid) for pid in tree}  # two workers and the resource tracker
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert survivors(tree, GONE_WITHIN_S) == {}


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("command", ["sweep", "check"])
def test_an_interrupted_command_exits_130_at_once_and_leaves_no_process(
    command: str, signal_number: int, tmp_path: Path
) -> None:
    # SIGTERM is handled as Ctrl-C by the command line (cli.app._sigterm_as_interrupt).
    arguments = sweep_arguments(tmp_path / "out") if command == "sweep" else check_arguments()
    with started(arguments, tmp_path) as (process, tree):
        os.kill(process.pid, signal_number)  # the command alone: its workers see no signal
        started_s = time.monotonic()
        try:
            returncode = process.wait(timeout=GONE_WITHIN_S * 2)
        except subprocess.TimeoutExpired:
            returncode = None
        took_s = time.monotonic() - started_s
        assert returncode == 130, (returncode, took_s, (tmp_path / "stderr.txt").read_text())
        assert took_s < GONE_WITHIN_S, "waited for the runs in progress"
        assert survivors(tree, GONE_WITHIN_S) == {}
        assert "Traceback" not in (tmp_path / "stderr.txt").read_text()
