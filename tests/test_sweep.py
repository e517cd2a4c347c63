"""Tests of `cucm-sim sweep` and `cucm_sim.studies.sweep`: the files of a sweep, its reproducibility and resumption.

Contract under test (issue 5 and cucm_sim.studies.sweep's docstring): a 2x2 grid x 2 replications gives the same
runs.csv (wall_s aside) and the same points.csv on 1 worker, 2 workers and a 2-worker Dask LocalCluster;
every finished run is on disk as it finishes, so a sweep killed half-way (SIGKILL) or interrupted (Ctrl-C,
exit 130) and then resumed with --resume ends with the files of an uninterrupted sweep, a torn last line of
runs.csv included; a run that raises is recorded (status error) and the sweep goes on, exit 1; user errors
exit 2 with one line each and write nothing.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from cucm_sim.cli import main
from cucm_sim.errors import UserError
from cucm_sim.measures.confidence import mean_confidence_interval
from cucm_sim.measures.metrics import METRICS, lookup
from cucm_sim.run.simulation import simulate
from cucm_sim.scenario.seeds import derive_seed
from cucm_sim.studies import backends
from cucm_sim.studies.backends import InProcess, Job, LocalPool, Outcome, run_job
from cucm_sim.studies.grid import SweepDesign, design_sweep
from cucm_sim.studies.sweep import SweepCounts, SweepInterrupted, run_row, run_sweep

REPO = Path(__file__).resolve().parents[1]
TINY: dict[str, Any] = {
    "name": "sweep-test", "seed": 5, "duration_s": 40,
    "throttling": {"system_throttle_sample_size_s": 5},
    "load": {"background": [{"signals_per_s": 300}], "calls_per_s": 3, "signals_per_call": 10},
    "devices": {"count": 200, "keepalive_interval_s": 10},
    "disturbances": [{"kind": "cpu_slowdown", "start_s": 5, "end_s": 20, "capacity_factor": 0.05}],
}
GRID = ("load.calls_per_s=2,4", "throttling.code_yellow_entry_latency_ms=20,50")
GRID_OPTIONS = [option for grid in GRID for option in ("--grid", grid)]
SLOW_DURATION_S = 1500
"""A run of TINY this long takes a few tenths of a second: long enough to kill a sweep half-way."""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def write_scenario(directory: Path, data: dict[str, Any], name: str = "tiny.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def tiny_design(**changes: Any) -> SweepDesign:
    return design_sweep(copy.deepcopy({**TINY, **changes}), "tiny.yaml", grid=GRID, replications=2)


def invoke(*args: str | Path) -> Result:
    result = CliRunner().invoke(main, ["sweep", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{result.output}"
    )
    assert "Traceback" not in result.output
    return result


def assert_user_error(result: Result, *expected: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in ANSI.sub("", result.stderr).splitlines() if line.strip()]
    assert lines and all(line.startswith("error: ") for line in lines), lines
    for text in expected:
        assert text in " ".join(lines), lines


def without_wall_s(text: str) -> str:
    """runs.csv without its last column (wall_s, the only one allowed to differ between backends)."""
    return "".join(line.rsplit(",", 1)[0] + "\n" for line in text.splitlines())


def rows_of(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def final_files(directory: Path) -> dict[str, Any]:
    """What must not depend on how the sweep ran: runs.csv without wall_s, points.csv, sweep.json (but the
    path of the scenario file it names)."""
    manifest = json.loads((directory / "sweep.json").read_text(encoding="utf-8"))
    return {
        "runs.csv": without_wall_s((directory / "runs.csv").read_text(encoding="utf-8")),
        "points.csv": (directory / "points.csv").read_text(encoding="utf-8"),
        "sweep.json": {key: value for key, value in manifest.items() if key != "source"},
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 2x2 x 2 sweep of TINY, made here, one run after another, uninterrupted."""
    out_dir = tmp_path_factory.mktemp("reference") / "sweep"
    with InProcess() as backend:
        run_sweep(tiny_design(), backend, out_dir, plots=False)
    return out_dir


# Run functions injected into sweeps (module level: spawned workers import them by name) ----------------
def fail_point_1(job: Job) -> Outcome:
    """run_job, except that point 1's runs raise (uncaught, like a bug in the model would)."""
    if job.key[0] == 1:
        raise RuntimeError(f"injected failure at point 1, replication {job.key[1]}, seed {job.scenario.seed}")
    return run_job(job)


# ------------------------------------------------------------------ the files
def test_runs_csv_has_one_sorted_row_per_run_with_every_metric(reference: Path) -> None:
    design = tiny_design()
    text = (reference / "runs.csv").read_text(encoding="utf-8")
    header = text.splitlines()[0].split(",")
    rows = rows_of(reference / "runs.csv")

    assert header == ["point", "replication", "load.calls_per_s", "throttling.code_yellow_entry_latency_ms", "seed",
                      "status", "error", *(metric.path for metric in METRICS), "wall_s"]
    assert [(row["point"], row["replication"]) for row in rows] == [
        (str(p), str(r)) for p in range(4) for r in range(2)]
    assert [(row["load.calls_per_s"], row["throttling.code_yellow_entry_latency_ms"]) for row in rows] == [
        (calls, latency) for calls in ("2", "4") for latency in ("20", "50") for _ in range(2)]
    assert [int(row["seed"]) for row in rows] == [derive_seed(5, p, r) for p in range(4) for r in range(2)]
    assert {row["status"] for row in rows} == {"ok"} and {row["error"] for row in rows} == {""}
    # a row holds exactly what the single run gives: ints as ints, floats by repr, None empty
    summary = simulate(design.run_scenario(3, 1)).summary
    for metric in METRICS:
        value = lookup(summary, metric.path)
        assert rows[7][metric.path] == ("" if value is None else repr(value) if isinstance(value, float)
                                        else str(value)), metric.path
    assert float(rows[7]["wall_s"]) > 0


def test_points_csv_holds_mean_and_confidence_interval_of_every_metric(reference: Path) -> None:
    runs = rows_of(reference / "runs.csv")
    points = rows_of(reference / "points.csv")

    assert list(points[0])[:5] == ["point", "load.calls_per_s", "throttling.code_yellow_entry_latency_ms",
                                   "runs_ok", "runs_failed"]
    assert list(points[0])[5:] == [f"{metric.path}.{part}" for metric in METRICS
                                   for part in ("mean", "ci95_low", "ci95_high")]
    assert [point["point"] for point in points] == ["0", "1", "2", "3"]
    for point in points:
        assert (point["runs_ok"], point["runs_failed"]) == ("2", "0")
        mine = [row for row in runs if row["point"] == point["point"]]
        for metric in ("calls_rejected_fraction", "dial_tone_delay_ms.p95", "calls_attempted"):
            mean, half_width = mean_confidence_interval([float(row[metric]) for row in mine])
            assert half_width is not None
            assert point[f"{metric}.mean"] == repr(mean)
            assert float(point[f"{metric}.ci95_low"]) == pytest.approx(mean - half_width, rel=1e-12)
            assert float(point[f"{metric}.ci95_high"]) == pytest.approx(mean + half_width, rel=1e-12)
        # a metric that never happened has no statistics
        assert point["first_code_red_entry_s.mean"] == point["first_code_red_entry_s.ci95_low"] == ""


def test_one_replication_gives_a_mean_without_an_interval(tmp_path: Path) -> None:
    design = design_sweep(copy.deepcopy(TINY), "tiny.yaml", grid=["load.calls_per_s=2"], replications=1)
    with InProcess() as backend:
        run_sweep(design, backend, tmp_path / "sweep", plots=False)
    (point,) = rows_of(tmp_path / "sweep" / "points.csv")
    (run,) = rows_of(tmp_path / "sweep" / "runs.csv")

    assert point["calls_attempted.mean"] == repr(float(run["calls_attempted"]))
    assert point["calls_attempted.ci95_low"] == point["calls_attempted.ci95_high"] == ""


def test_the_manifest_says_what_was_swept(reference: Path) -> None:
    manifest = json.loads((reference / "sweep.json").read_text(encoding="utf-8"))

    assert manifest["root_seed"] == manifest["scenario"]["seed"] == 5
    assert manifest["grid"] == [{"key": "load.calls_per_s", "values": [2, 4]},
                                {"key": "throttling.code_yellow_entry_latency_ms", "values": [20, 50]}]
    assert (manifest["replications"], manifest["points"], manifest["runs"]) == (2, 4, 8)
    assert manifest["metrics"] == ["calls_rejected_fraction", "dial_tone_delay_ms.p95", "time_in_state_s.CodeYellow"]
    assert manifest["scenario"]["throttling"]["code_yellow_entry_latency_ms"] == 20  # resolved, defaults filled
    assert manifest["cucm_sim_version"]


# ------------------------------------------------------------------ the same files on every backend
def test_same_files_on_one_worker_two_workers_and_dask(reference: Path, tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, TINY)
    for backend in (["--workers", "1"], ["--workers", "2"], ["--dask-local", "2"]):
        out_dir = tmp_path / f"sweep{'-'.join(backend)}"
        result = invoke(scenario, *GRID_OPTIONS, "-n", "2", "--out", out_dir, "--no-plots", *backend)

        assert result.exit_code == 0, result.output
        assert final_files(out_dir) == final_files(reference), backend
        assert (out_dir / "runs.csv").read_text(encoding="utf-8") != (reference / "runs.csv").read_text("utf-8")
    assert "Dask LocalCluster, 2 workers" in result.output  # the table names the backend


def test_plots_are_written_unless_asked_not_to(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, TINY)
    result = invoke(scenario, "--grid", "load.calls_per_s=2,4", "-n", "1", "--out", tmp_path / "sweep",
                    "--workers", "1")

    assert result.exit_code == 0, result.output
    assert (tmp_path / "sweep" / "sweep.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert sorted(path.name for path in (tmp_path / "sweep").iterdir()) == [
        "points.csv", "runs.csv", "sweep.json", "sweep.png"]  # no temporaries left behind
    for text in ("points", "runs ok / failed", "2 / 0", "runs per second", "1 process (this one)", "sweep.png"):
        assert text in result.output


# ------------------------------------------------------------------ nothing lost: kill, Ctrl-C, resume
def data_rows(runs_csv: Path) -> int:
    try:
        return max(0, runs_csv.read_bytes().count(b"\n") - 1)
    except FileNotFoundError:
        return 0


@pytest.mark.slow
def test_a_killed_sweep_resumed_matches_an_uninterrupted_one(tmp_path: Path) -> None:
    slow = {**TINY, "duration_s": SLOW_DURATION_S}
    scenario = write_scenario(tmp_path, slow)
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "cucm_sim.cli", "sweep", str(scenario), *GRID_OPTIONS, "-n", "2",
               "--out", str(killed), "--workers", "1", "--no-plots", "--quiet"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while data_rows(killed / "runs.csv") < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    on_disk = (killed / "runs.csv").read_text(encoding="utf-8")

    assert process.returncode == -signal.SIGKILL, "the sweep ended before it could be killed half-way"
    assert 2 <= data_rows(killed / "runs.csv") < 8
    assert on_disk.endswith("\n") and "points.csv" not in os.listdir(killed)
    resumed = subprocess.run([*command, "--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    uninterrupted = tmp_path / "uninterrupted"
    with InProcess() as backend:
        run_sweep(design_sweep(copy.deepcopy(slow), "tiny.yaml", grid=GRID, replications=2), backend,
                  uninterrupted, plots=False)

    assert final_files(killed)["runs.csv"] == final_files(uninterrupted)["runs.csv"]
    assert final_files(killed)["points.csv"] == final_files(uninterrupted)["points.csv"]
    # the runs finished before the kill were kept, not made again: their rows, wall_s included, are unchanged
    assert set(on_disk.splitlines()) <= set((killed / "runs.csv").read_text(encoding="utf-8").splitlines())


def test_a_torn_last_line_and_failed_runs_are_run_again_on_resume(reference: Path, tmp_path: Path) -> None:
    design = tiny_design()
    out_dir = tmp_path / "sweep"
    with InProcess() as backend:
        run_sweep(design, backend, out_dir, plots=False)
    lines = (out_dir / "runs.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    failed = io.StringIO()
    csv.writer(failed, lineterminator="\n").writerow(run_row(design, Outcome((0, 1), None, "OSError: gone, say")))
    torn = lines[4][: len(lines[4]) // 2]  # a killed writer: half a line, no newline
    (out_dir / "runs.csv").write_text(lines[0] + lines[1] + failed.getvalue() + lines[3] + torn, encoding="utf-8")
    (out_dir / "points.csv").unlink()
    counts: list[SweepCounts] = []
    with InProcess() as backend:
        report = run_sweep(design, backend, out_dir, resume=True, plots=False, progress=counts.append)

    assert final_files(out_dir) == final_files(reference)
    assert (report.runs_kept, report.runs_made, report.runs_ok, report.runs_failed) == (2, 6, 8, 0)
    assert counts[0] == SweepCounts(runs_done=2, runs_total=8, points_done=0, points_total=4)
    assert counts[-1] == SweepCounts(runs_done=8, runs_total=8, points_done=4, points_total=4)


def test_resuming_a_finished_sweep_runs_nothing(reference: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "sweep"
    with InProcess() as backend:
        run_sweep(tiny_design(), backend, out_dir, plots=False)
        before = (out_dir / "runs.csv").read_bytes()
        report = run_sweep(tiny_design(), backend, out_dir, resume=True, plots=False)

    assert report.runs_made == 0 and report.runs_kept == 8
    assert (out_dir / "runs.csv").read_bytes() == before


def keyboard_interrupt_at_call(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """Make the `call`-th run in this process raise KeyboardInterrupt, as a Ctrl-C would."""
    calls = iter(range(1, 1000))
    real_simulate = backends.simulate

    def interrupted(scenario: Any, **options: Any) -> Any:
        if next(calls) == call:
            raise KeyboardInterrupt
        return real_simulate(scenario, **options)

    monkeypatch.setattr(backends, "simulate", interrupted)


def test_ctrl_c_exits_130_with_every_finished_run_on_disk(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = write_scenario(tmp_path, TINY)
    out_dir = tmp_path / "sweep"
    keyboard_interrupt_at_call(monkeypatch, 4)
    result = invoke(scenario, *GRID_OPTIONS, "-n", "2", "--out", out_dir, "--workers", "1")

    assert result.exit_code == 130
    assert f"interrupted: 3 finished runs are in {out_dir / 'runs.csv'}; --resume continues" in result.stderr
    assert data_rows(out_dir / "runs.csv") == 3
    monkeypatch.undo()
    resumed = invoke(scenario, *GRID_OPTIONS, "-n", "2", "--out", out_dir, "--workers", "1", "--resume",
                     "--no-plots")
    assert resumed.exit_code == 0, resumed.output
    assert final_files(out_dir) == final_files(reference)


def test_a_seedless_sweep_draws_its_root_seed_once_and_resume_reuses_it(tmp_path: Path) -> None:
    unseeded = tiny_design(seed=None)
    out_dir = tmp_path / "sweep"
    calls = 0

    def interrupt_after_three(counts: SweepCounts) -> None:
        nonlocal calls
        calls += 1
        if counts.runs_done == 3:
            raise KeyboardInterrupt

    with InProcess() as backend, pytest.raises(SweepInterrupted) as interrupted:
        run_sweep(unseeded, backend, out_dir, plots=False, progress=interrupt_after_three)
    root_seed = json.loads((out_dir / "sweep.json").read_text(encoding="utf-8"))["root_seed"]
    assert interrupted.value.finished_runs == 3 == data_rows(out_dir / "runs.csv")
    with InProcess() as backend:
        report = run_sweep(unseeded, backend, out_dir, resume=True, plots=False)
        run_sweep(unseeded.with_root_seed(root_seed), backend, tmp_path / "again", plots=False)

    assert report.design.root_seed == root_seed
    assert final_files(out_dir)["runs.csv"] == final_files(tmp_path / "again")["runs.csv"]


# ------------------------------------------------------------------ failed runs
@pytest.mark.parametrize("backend_class", [InProcess, lambda: LocalPool(2)], ids=["in-process", "local-pool"])
def test_a_failing_point_is_recorded_and_the_sweep_goes_on(backend_class: Any, tmp_path: Path) -> None:
    design = tiny_design()
    with backend_class() as backend:
        report = run_sweep(design, backend, tmp_path / "sweep", plots=False, run=fail_point_1)
    runs = rows_of(tmp_path / "sweep" / "runs.csv")
    points = rows_of(tmp_path / "sweep" / "points.csv")

    assert (report.runs_ok, report.runs_failed, report.failed_points) == (6, 2, (1,))
    for row in runs:
        if row["point"] == "1":
            assert row["status"] == "error"
            assert row["error"] == (f"RuntimeError: injected failure at point 1, replication {row['replication']}, "
                                    f"seed {row['seed']}")
            assert all(row[metric.path] == "" for metric in METRICS) and row["wall_s"] == ""
        else:
            assert row["status"] == "ok" and row["error"] == ""
    assert (points[1]["runs_ok"], points[1]["runs_failed"], points[1]["calls_attempted.mean"]) == ("0", "2", "")
    assert (points[0]["runs_ok"], points[0]["runs_failed"]) == ("2", "0")


def test_failed_runs_exit_1_and_resume_runs_them_again(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_simulate = backends.simulate

    def fails_at_4_calls_per_s(scenario: Any, **options: Any) -> Any:
        if scenario.load.calls_per_s == 4:
            raise ValueError("the model broke")
        return real_simulate(scenario, **options)

    monkeypatch.setattr(backends, "simulate", fails_at_4_calls_per_s)
    scenario = write_scenario(tmp_path, TINY)
    out_dir = tmp_path / "sweep"
    result = invoke(scenario, *GRID_OPTIONS, "-n", "2", "--out", out_dir, "--workers", "1", "--no-plots")

    assert result.exit_code == 1, result.output
    assert "4 of 8 runs failed, at points 2, 3" in " ".join(result.stderr.split())
    assert {row["error"] for row in rows_of(out_dir / "runs.csv") if row["status"] == "error"} == {
        "ValueError: the model broke"}
    monkeypatch.undo()
    resumed = invoke(scenario, *GRID_OPTIONS, "-n", "2", "--out", out_dir, "--workers", "1", "--no-plots",
                     "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert final_files(out_dir) == final_files(reference)


# ------------------------------------------------------------------ the sweep: block
def test_a_sweep_block_drives_the_sweep_and_run_ignores_it(tmp_path: Path) -> None:
    data = {**TINY, "sweep": {"grid": {"load.calls_per_s": {"start": 2, "stop": 4, "step": 2}},
                              "replications": 1, "metrics": ["code_yellow_entries"]}}
    scenario = write_scenario(tmp_path, data)
    result = invoke(scenario, "--out", tmp_path / "sweep", "--workers", "1", "--no-plots")
    manifest = json.loads((tmp_path / "sweep" / "sweep.json").read_text(encoding="utf-8"))

    assert result.exit_code == 0, result.output
    assert manifest["grid"] == [{"key": "load.calls_per_s", "values": [2, 4]}]
    assert (manifest["replications"], manifest["metrics"]) == (1, ["code_yellow_entries"])
    assert "sweep" not in manifest["scenario"]
    run = CliRunner().invoke(main, ["run", str(scenario), "--out", str(tmp_path / "run"), "--no-plots", "-q"])
    assert run.exit_code == 0, run.output
    assert "sweep" not in yaml.safe_load((tmp_path / "run" / "scenario.resolved.yaml").read_text(encoding="utf-8"))


def test_force_replaces_a_sweep(reference: Path, tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, TINY)
    out_dir = tmp_path / "sweep"
    invoke(scenario, "--grid", "load.calls_per_s=8", "-n", "1", "--out", out_dir, "--workers", "1", "--no-plots")
    result = invoke(scenario, *GRID_OPTIONS, "-n", "2", "--out", out_dir, "--workers", "1", "--no-plots", "--force")

    assert result.exit_code == 0, result.output
    assert final_files(out_dir) == final_files(reference)


# ------------------------------------------------------------------ user errors: exit 2, nothing written
@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    return write_scenario(tmp_path, TINY)


@pytest.mark.parametrize(("options", "expected"), [
    (["--grid", "load.calls_per_s"], ["--grid 'load.calls_per_s': expected KEY=V1,V2,... or KEY=START:STOP:STEP"]),
    (["--grid", "load.calls_per_s=8:2:1"], ["--grid load.calls_per_s=8:2:1: stop (2) is below start (8)"]),
    (["--grid", "load.calls_pr_s=2,4"], ["load.calls_pr_s: unknown key", "calls_per_s"]),
    (["--grid", "load.calls_per_s=2,20000"],
     ["grid point 1 (load.calls_per_s=20000)", "load.calls_per_s: 20000 is not allowed; allowed: 0 to 10000 per s"]),
    (["--grid", "throttling.code_yellow_entry_latency_ms=1,20"],
     ["grid point 0 (throttling.code_yellow_entry_latency_ms=1)", "allowed:"]),
    ([], ["no grid: give --grid KEY=V1,V2 or a sweep: block"]),
    (["--grid", "load.calls_per_s=2", "--metric", "nope"], ["--metric nope: unknown metric 'nope'"]),
    (["--grid", "load.calls_per_s=2", "--scheduler", "tcp://127.0.0.1:1", "--dask-local", "2"],
     ["--scheduler and --dask-local given together"]),
    (["--grid", "load.calls_per_s=2", "--workers", "2", "--dask-local", "2"],
     ["--workers and --dask-local given together"]),
    (["--grid", "load.calls_per_s=2", "--resume", "--force"], ["--resume and --force given together"]),
    (["--grid", "load.calls_per_s=2", "--set", "duration_s=0"], ["duration_s: 0 is not allowed"]),
])
def test_user_errors_exit_2_and_write_nothing(scenario_file: Path, tmp_path: Path, options: list[str],
                                             expected: list[str]) -> None:
    result = invoke(scenario_file, "--out", tmp_path / "sweep", *options)

    assert_user_error(result, *expected)
    assert not (tmp_path / "sweep").exists()


def test_an_existing_directory_needs_resume_or_force(reference: Path, scenario_file: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "existing"
    out_dir.mkdir()
    (out_dir / "precious.txt").write_text("keep me", encoding="utf-8")

    assert_user_error(invoke(scenario_file, *GRID_OPTIONS, "--out", out_dir),
                      f"{out_dir}: already exists", "--resume", "--force")
    assert_user_error(invoke(scenario_file, *GRID_OPTIONS, "--out", out_dir, "--force"),
                      f"{out_dir}: holds precious.txt, which `cucm-sim sweep` did not write")
    assert_user_error(invoke(scenario_file, *GRID_OPTIONS, "--out", out_dir, "--resume", "--workers", "1"),
                      f"{out_dir}: not a sweep directory (no sweep.json); cannot --resume it")
    assert os.listdir(out_dir) == ["precious.txt"]


def test_resume_refuses_a_different_sweep_and_says_what_differs(reference: Path, scenario_file: Path) -> None:
    before = {path.name: path.read_bytes() for path in reference.iterdir()}
    result = invoke(scenario_file, "--grid", "load.calls_per_s=2,4,8", "--grid",
                    "throttling.code_yellow_entry_latency_ms=20,50", "-n", "3", "--set", "duration_s=50",
                    "--out", reference, "--resume", "--workers", "1")

    assert_user_error(
        result,
        f"{reference}: --resume: grid: DIR has load.calls_per_s=2,4 throttling.code_yellow_entry_latency_ms=20,50; "
        "asked for load.calls_per_s=2,4,8 throttling.code_yellow_entry_latency_ms=20,50",
        f"{reference}: --resume: replications: DIR has 2, asked for 3",
        f"{reference}: --resume: scenario.duration_s: DIR has 40, asked for 50",
        "--resume continues only the same sweep",
    )
    assert {path.name: path.read_bytes() for path in reference.iterdir()} == before


def test_resume_refuses_a_runs_csv_of_another_sweep(reference: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "sweep"
    with InProcess() as backend:
        run_sweep(tiny_design(), backend, out_dir, plots=False)
    lines = (out_dir / "runs.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2].replace(f",{derive_seed(5, 0, 1)},", ",12345,")
    (out_dir / "runs.csv").write_text("".join(lines), encoding="utf-8")

    with InProcess() as backend, pytest.raises(UserError, match="line 3: the grid values or the seed differ"):
        run_sweep(tiny_design(), backend, out_dir, resume=True, plots=False)


def test_progress_hears_of_every_run(tmp_path: Path) -> None:
    counts: list[SweepCounts] = []
    with InProcess() as backend:
        run_sweep(tiny_design(), backend, tmp_path / "sweep", plots=False, progress=counts.append)

    assert [count.runs_done for count in counts] == list(range(9))
    assert [count.points_done for count in counts] == [0, 0, 1, 1, 2, 2, 3, 3, 4]
    assert {(count.runs_total, count.points_total) for count in counts} == {(8, 4)}
