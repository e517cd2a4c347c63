"""Nothing lost, nothing half-written: what cucm-sim does to the places it writes, under faults (issue 11).

Real processes, real signals and real file systems: a tmpfs of 64 KiB for a full disk, a read-only tmpfs
for an unwritable place (both skipped only where this test may not mount), racing processes, SIGTERM,
SIGINT and SIGKILL in the middle of a run.  In-process runs (CliRunner) where a fault must land at one
exact moment (an interrupt while the files are written).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from cucm_sim.cli import main
from cucm_sim.report.files import LOCK_NAME, STAGING_PREFIX

TINY = {
    "name": "tiny", "seed": 11, "duration_s": 20,
    "load": {"background": [{"signals_per_s": 200}], "calls_per_s": 2, "signals_per_call": 10},
}
LONG = {**TINY, "name": "long", "duration_s": 30 * 86_400,
        "load": {"background": [{"signals_per_s": 2000}], "calls_per_s": 20, "signals_per_call": 20}}
"""A run that takes minutes: long enough to be caught in the middle by a signal."""
RUN_FILES = ["alarms.csv", "alarms.log", "narrative.txt", "scenario.resolved.yaml", "signals_by_queue.csv",
             "summary.json", "timeline.csv", "timeline.png"]


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY), encoding="utf-8")
    return path


@pytest.fixture
def long_scenario(tmp_path: Path) -> Path:
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(LONG), encoding="utf-8")
    return path


def invoke(*args: str | Path) -> Result:
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def cucm_sim(*args: str | Path) -> list[str]:
    """The command line of a real cucm-sim process (this interpreter, so no PATH is needed)."""
    return [sys.executable, "-m", "cucm_sim.cli", *map(str, args)]


def leftovers(folder: Path) -> list[str]:
    """Temporary things of cucm-sim's in `folder`: staging or trash directories, partial files."""
    return sorted(name for name in os.listdir(folder)
                  if name.startswith(STAGING_PREFIX) or name.endswith((".partial", ".old")))


def one_error_line(result: Result | subprocess.CompletedProcess[str], *expected: str) -> str:
    stderr = result.stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def wait_for(condition: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


# ------------------------------------------------------------------ --force replaces only what cucm-sim wrote
def test_force_refuses_a_directory_with_files_it_did_not_write(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "d"
    out.mkdir()
    (out / "important.txt").write_text("keep", encoding="utf-8")

    result = invoke("run", tiny, "--out", out, "--force", "--no-plots")

    assert result.exit_code == 2
    one_error_line(result, str(out), "important.txt", "did not write")
    assert os.listdir(out) == ["important.txt"]


def test_force_refuses_a_run_directory_that_gained_a_foreign_file(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert invoke("run", tiny, "--out", out, "--no-plots").exit_code == 0
    (out / "notes.txt").write_text("mine", encoding="utf-8")

    result = invoke("run", tiny, "--out", out, "--force", "--no-plots")

    assert result.exit_code == 2
    one_error_line(result, "notes.txt")
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_force_replaces_a_run_directory_and_an_empty_one(tiny: Path, tmp_path: Path) -> None:
    out, empty = tmp_path / "r", tmp_path / "empty"
    empty.mkdir()
    assert invoke("run", tiny, "--out", out, "--no-plots").exit_code == 0

    assert invoke("run", tiny, "--out", out, "--force", "--seed", "5").exit_code == 0
    assert invoke("run", tiny, "--out", empty, "--force").exit_code == 0
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["seed"] == 5
    assert sorted(os.listdir(out)) == sorted(os.listdir(empty)) == RUN_FILES
    assert leftovers(tmp_path) == []


def test_capacity_force_refuses_a_foreign_directory(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "c"
    out.mkdir()
    (out / "important.txt").write_text("keep", encoding="utf-8")

    result = invoke("capacity", tiny, "--vary", "load.calls_per_s", "--lo", "1", "--hi", "2", "--until",
                    "code_yellow_entries > 0", "-n", "1", "--workers", "1", "--out", out, "--force")

    assert result.exit_code == 2
    one_error_line(result, "important.txt", "cucm-sim capacity")
    assert os.listdir(out) == ["important.txt"]


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_force_refuses_a_symbolic_link_and_the_current_directory(
        command: str, tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "target"
    extra = ["--grid", "load.calls_per_s=1", "-n", "1", "--workers", "1"] if command == "sweep" else []
    assert invoke(command, tiny, *extra, "--out", target, "--no-plots").exit_code == 0
    link = tmp_path / "link"
    link.symlink_to(target)
    before = sorted(os.listdir(target))

    result = invoke(command, tiny, *extra, "--out", link, "--force")

    assert result.exit_code == 2
    one_error_line(result, "symbolic link")
    assert link.is_symlink() and sorted(os.listdir(target)) == before
    monkeypatch.chdir(target)  # --out . and --out .. with --force: the current directory and its parent
    for place in (".", ".."):
        result = invoke(command, tiny, *extra, "--out", place, "--force")
        assert result.exit_code == 2, place
    assert sorted(os.listdir(target)) == before


def test_sweep_force_empties_only_its_own_files(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    grid = ["--grid", "load.calls_per_s=1", "-n", "1", "--workers", "1"]
    assert invoke("sweep", tiny, *grid, "--out", out, "--no-plots").exit_code == 0
    (out / ".runs.csv.abcd1234.partial").write_text("left by a killed sweep", encoding="utf-8")

    assert invoke("sweep", tiny, *grid, "--out", out, "--force").exit_code == 0
    assert sorted(os.listdir(out)) == ["points.csv", "runs.csv", "sweep.json", "sweep.png"]


# ------------------------------------------------------------------ races
def test_racing_runs_exactly_one_wins(tiny: Path, tmp_path: Path) -> None:
    for attempt in range(5):
        out = tmp_path / f"new_{attempt}"
        runs = [subprocess.Popen(cucm_sim("run", tiny, "--out", out, "--seed", seed, "--no-plots", "-q"),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in ("1", "2")]
        finished = [(run.wait(timeout=120), *run.communicate()) for run in runs]
        codes = sorted(code for code, _, _ in finished)
        assert codes == [0, 2], finished
        winner = 1 + [code for code, _, _ in finished].index(0)
        loser_stderr = next(err for code, _, err in finished if code == 2)
        assert "already exists" in loser_stderr, loser_stderr
        assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["seed"] == winner
        assert leftovers(tmp_path) == []


def test_a_directory_that_appears_after_the_check_is_not_replaced(
        tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The losing side of a race: its check ran before the winner's result appeared.
    out = tmp_path / "r"
    assert invoke("run", tiny, "--out", out, "--no-plots").exit_code == 0
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    monkeypatch.setattr("cucm_sim.report.files.check_directory_target", lambda *_args, **_kwargs: None)

    result = invoke("run", tiny, "--out", out, "--no-plots", "--seed", "3")

    assert result.exit_code == 2
    one_error_line(result, "already exists")
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before
    assert leftovers(tmp_path) == []


def test_a_sweep_directory_that_appears_after_the_check_is_not_started_over(
        tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The losing side of two sweeps racing for one new DIR: its check ran before the winner wrote it.
    out = tmp_path / "s"
    grid = ["--grid", "load.calls_per_s=1", "-n", "1", "--workers", "1", "--no-plots"]
    assert invoke("sweep", tiny, *grid, "--out", out).exit_code == 0
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    monkeypatch.setattr("cucm_sim.cli.studies.check_out_dir", lambda *_args, **_kwargs: None)
    monkeypatch.setattr("cucm_sim.studies.sweep.check_out_dir", lambda *_args, **_kwargs: None)

    result = invoke("sweep", tiny, *grid, "--out", out, "--seed", "3")

    assert result.exit_code == 2
    one_error_line(result, "already exists")
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before


# ------------------------------------------------------------------ signals
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_run_exits_130_and_leaves_nothing(
        signal_number: int, long_scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = subprocess.Popen(cucm_sim("run", long_scenario, "--out", out, "-q"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (out / LOCK_NAME).exists())  # claimed: the simulation is under way
    time.sleep(0.5)
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_a_killed_run_leaves_nothing_that_the_next_run_does_not_remove(long_scenario: Path, tiny: Path,
                                                                        tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = subprocess.Popen(cucm_sim("run", long_scenario, "--out", out, "-q"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_for(lambda: (out / LOCK_NAME).exists())
    process.kill()
    process.wait(timeout=30)
    assert os.listdir(out) == [LOCK_NAME] and len(leftovers(tmp_path)) == 1  # the claim and the staging

    result = subprocess.run(cucm_sim("run", tiny, "--out", out, "-q", "--no-plots"), capture_output=True,
                            text=True, timeout=120, check=False)

    assert result.returncode == 0, result.stderr
    assert leftovers(tmp_path) == []
    assert sorted(os.listdir(out)) == [name for name in RUN_FILES if name != "timeline.png"]


def test_a_live_claim_is_not_taken(long_scenario: Path, tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = subprocess.Popen(cucm_sim("run", long_scenario, "--out", out, "-q"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (out / LOCK_NAME).exists())
        result = invoke("run", tiny, "--out", out, "--force", "--no-plots")
        assert result.exit_code == 2
        one_error_line(result, "another cucm-sim is writing")
    finally:
        process.kill()
        process.wait(timeout=30)


def test_sigterm_while_writing_exits_130_and_keeps_the_old_result(
        tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    assert invoke("run", tiny, "--out", out, "--no-plots").exit_code == 0
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}

    def terminated_while_writing(*_args: object) -> list[str]:
        os.kill(os.getpid(), signal.SIGTERM)  # a real SIGTERM, to this process, in the middle of the write
        time.sleep(5)
        raise AssertionError("SIGTERM did not interrupt the write")

    monkeypatch.setattr("cucm_sim.report.output._write_all", terminated_while_writing)
    result = invoke("run", tiny, "--out", out, "--force", "--seed", "3")

    assert result.exit_code == 130
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before
    assert leftovers(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler lives only while a command runs


# ------------------------------------------------------------------ places that cannot be written
@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True,
                             check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_is_exit_2_with_the_old_result_intact(tiny: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "size=64k") as disk:
        out = disk / "r"
        assert invoke("run", tiny, "--out", out, "--no-plots").exit_code == 0
        before = {name: (out / name).read_bytes() for name in os.listdir(out)}
        bigger = tmp_path / "bigger.yaml"
        bigger.write_text(yaml.safe_dump({**TINY, "duration_s": 3000}), encoding="utf-8")

        for args in (("--out", out, "--force"), ("--out", disk / "new")):
            result = subprocess.run(cucm_sim("run", bigger, *args), capture_output=True, text=True, timeout=300,
                                    check=False)
            assert result.returncode == 2, result.stderr
            one_error_line(result, "cannot write", "No space left on device")
        assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before
        assert sorted(os.listdir(disk)) == ["r"]


def test_an_unwritable_place_is_refused_before_the_simulation(long_scenario: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "ro,size=64k") as read_only:
        commands = [
            ("run", long_scenario, "--out", read_only / "r"),
            ("run", long_scenario, "--out", read_only / "deeper" / "r"),
            ("capacity", long_scenario, "--vary", "load.calls_per_s", "--lo", "1", "--hi", "2", "--until",
             "code_yellow_entries > 0", "--workers", "1", "--out", read_only / "c"),
            ("sweep", long_scenario, "--grid", "load.calls_per_s=1", "--workers", "1", "--out", read_only / "s"),
        ]
        for command in commands:
            started = time.monotonic()
            result = subprocess.run(cucm_sim(*command), capture_output=True, text=True, timeout=60, check=False)
            assert result.returncode == 2, (command, result.stderr)
            one_error_line(result, "Read-only file system")
            assert time.monotonic() - started < 30, "the month-long simulation ran before the check"


def test_check_junit_into_an_unwritable_place_is_refused_first(tmp_path: Path) -> None:
    scenario = tmp_path / "checked.yaml"
    scenario.write_text(yaml.safe_dump({**LONG, "expect": {"code_red_entries": {"max": 0}}}), encoding="utf-8")
    with tmpfs(tmp_path / "ro", "ro,size=64k") as read_only:
        result = subprocess.run(cucm_sim("check", scenario, "--junit", read_only / "report.xml", "--workers", "1"),
                                capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    one_error_line(result, "--junit", "Read-only file system")


def test_out_names_near_the_file_system_limit(tiny: Path, tmp_path: Path) -> None:
    longest = tmp_path / ("a" * 250)
    assert invoke("run", tiny, "--out", longest).exit_code == 0
    assert sorted(os.listdir(longest)) == RUN_FILES

    result = invoke("run", tiny, "--out", tmp_path / ("b" * 300))
    assert result.exit_code == 2
    one_error_line(result, "File name too long")
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------ reading back what is not ours
def test_explain_refuses_a_summary_that_is_not_a_runs(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert invoke("run", tiny, "--out", out, "--no-plots").exit_code == 0
    (out / "summary.json").write_text("{}", encoding="utf-8")

    result = invoke("explain", out)

    assert result.exit_code == 2
    one_error_line(result, "summary.json: not the summary of a cucm-sim run: scenario, seed", "missing")


def test_resume_refuses_a_metric_cell_that_is_not_a_number(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    grid = ["--grid", "load.calls_per_s=1,2", "-n", "1", "--workers", "1", "--no-plots"]
    assert invoke("sweep", tiny, *grid, "--out", out).exit_code == 0
    runs = (out / "runs.csv").read_text(encoding="utf-8").splitlines()
    header = runs[0].split(",")
    cells = runs[1].split(",")
    cells[header.index("code_yellow_entries")] = "lots"
    (out / "runs.csv").write_text("\n".join([runs[0], ",".join(cells), *runs[2:]]) + "\n", encoding="utf-8")

    result = invoke("sweep", tiny, *grid, "--out", out, "--resume")

    assert result.exit_code == 2
    one_error_line(result, "line 2", "code_yellow_entries", "'lots' is not a number")


def test_out_of_memory_is_one_line_and_exit_2(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def exhausted(*_args: object, **_kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr("cucm_sim.cli.run.simulate", exhausted)
    result = invoke("run", tiny, "--out", tmp_path / "r")

    assert result.exit_code == 2
    one_error_line(result, "out of memory")
    assert not (tmp_path / "r").exists() and leftovers(tmp_path) == []
