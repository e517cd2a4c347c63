"""Tests of the `cucm-sim` command line: run, validate, schema, params.

Contract under test (the CLI issue and cucm_sim.cli's docstring): `run SCENARIO --out DIR` writes
summary.json, timeline.csv, alarms.csv, scenario.resolved.yaml (and timeline.png unless --no-plots)
atomically; an existing DIR is refused without --force and never half-overwritten; the same seed gives
the same bytes (wall_s aside).  Exit codes: 0 ok, 2 user error, with one clear line per problem and never
a traceback.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from cucm_sim.cli import main
from cucm_sim.rules.throttling import ThrottlingParams

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))
RESULT_FILES = ("summary.json", "timeline.csv", "alarms.csv", "alarms.log", "signals_by_queue.csv",
                "scenario.resolved.yaml", "narrative.txt")
TIMELINE_HEADER = (
    "t_s,state,expected_delay_ms,average_expected_delay_ms,throttling_sample_activity,queue_high,queue_normal,"
    "queue_low,queue_lowest,signals_processed,calls_attempted,calls_rejected,skinny_devices_throttled,"
    "registered_devices,capacity_factor"
)
DELAY_KEYS = {"mean", "p50", "p95", "p99", "max"}
PRIORITY_KEYS = {"high", "normal", "low", "lowest"}
SUMMARY_KEYS = {
    "scenario", "seed", "duration_s", "engine", "time_in_state_s", "code_yellow_entries", "code_yellow_exits",
    "code_red_entries", "calls_attempted", "calls_accepted", "calls_rejected_throttled", "calls_failed_node_down",
    "dial_tone_delay_ms", "signals_processed", "signals_lost_restart", "signal_wait_ms",
    "signal_wait_ms_by_priority", "max_average_expected_delay_ms", "skinny_devices_throttled", "wall_s",
}
TINY_DURATION_S = 40
# Small and fast (well under a second), and eventful: a deep CPU slowdown sends the node into Code Yellow
# and back, so alarms.csv has rows and calls are rejected.
TINY_SCENARIO = f"""\
name: tiny
description: A short run for the CLI tests.
duration_s: {TINY_DURATION_S}
throttling:
  system_throttle_sample_size_s: 5
load:
  background:
    - {{name: bg, signals_per_s: 300, priority: normal}}
  calls_per_s: 2
  signals_per_call: 10
devices:
  count: 20
  keepalive_interval_s: 10
disturbances:
  - {{kind: cpu_slowdown, start_s: 5, end_s: 20, capacity_factor: 0.05}}
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain(text: str) -> str:
    return ANSI.sub("", text)


def invoke(*args: str | Path) -> Result:
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    # Anything but a SystemExit escaping the command is a bug (the console script would print a traceback).
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{result.output}"
    )
    assert "Traceback" not in result.output
    return result


def error_lines(result: Result) -> list[str]:
    return [line for line in plain(result.stderr).splitlines() if line.strip()]


def assert_user_error(result: Result, *expected: str) -> list[str]:
    """Exit 2, every stderr line an `error:` line, each expected text in the output."""
    assert result.exit_code == 2, result.output
    lines = error_lines(result)
    assert lines, "a user error prints at least one line"
    assert all(line.startswith("error: ") for line in lines), lines
    for text in expected:
        assert text in plain(result.stderr), result.stderr
    return lines


def snapshot(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def assert_no_temporaries(parent: Path) -> None:
    leftovers = [p.name for p in parent.iterdir() if p.name.endswith((".partial", ".old"))]
    assert leftovers == [], leftovers


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A tiny scenario with a fixed seed."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SCENARIO + "seed: 42\n", encoding="utf-8")
    return path


@pytest.fixture
def tiny_unseeded(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-unseeded.yaml"
    path.write_text(TINY_SCENARIO, encoding="utf-8")
    return path


@pytest.fixture
def run_tiny(tiny: Path) -> Callable[..., Result]:
    def run(out: Path, *extra: str) -> Result:
        return invoke("run", tiny, "--out", out, "--no-plots", *extra)

    return run


def console_script() -> str:
    beside_python = Path(sys.executable).parent / "cucm-sim"  # .venv/bin/python -m pytest: not on PATH
    script = str(beside_python) if beside_python.is_file() else shutil.which("cucm-sim")
    if script is None:
        pytest.skip("the cucm-sim console script is not installed")
    return script


# ------------------------------------------------------------------ validate
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_validate_shipped_scenario(scenario: Path) -> None:
    result = invoke("validate", scenario)

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert f"ok {scenario}" in plain(result.stdout)


def test_validate_all_shipped_scenarios_at_once() -> None:
    assert len(SCENARIOS) >= 5
    result = invoke("validate", *SCENARIOS)

    assert result.exit_code == 0, result.output
    assert plain(result.stdout).count("ok ") == len(SCENARIOS)


def test_validate_bad_file_prints_one_line_per_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\n"
        "duration_s: 0\n"
        "throttling:\n"
        "  code_yellow_entry_latency_ms: 1000\n"
        "  code_yellow_duration_min: 45\n"
        "node: {restart_duration_s: 0}\n"
        "bogus: 1\n",
        encoding="utf-8",
    )

    result = invoke("validate", bad)

    lines = assert_user_error(result)
    assert len(lines) == 5, lines
    assert all(line.startswith(f"error: {bad}:") for line in lines), lines
    expected = [  # FILE:LINE: of the key
        ("2: duration_s: 0", "1 to 2592000 s"),
        ("4: throttling.code_yellow_entry_latency_ms: 1000", "5 to 500 ms"),
        ("5: throttling.code_yellow_duration_min: 45", "1..30 or 99999"),
        ("6: node.restart_duration_s: 0", "<= 3600 s"),
        ("7: bogus: unknown key", "allowed keys here"),
    ]
    for field_and_value, allowed in expected:
        (line,) = [line for line in lines if f"{bad}:{field_and_value}" in line]
        assert allowed in line, line


def test_validate_reports_every_bad_file_and_oks_the_good_ones(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nduration_s: -1\n", encoding="utf-8")
    missing = tmp_path / "missing.yaml"

    result = invoke("validate", SCENARIOS[0], bad, missing)

    lines = assert_user_error(result)
    assert lines == [f"error: {bad}:2: duration_s: -1 is not allowed; allowed: a whole number 1 to 2592000 s",
                     f"error: {missing}: no such file"]
    assert f"ok {SCENARIOS[0]}" in plain(result.stdout)


def test_validate_with_set_override(tmp_path: Path) -> None:
    result = invoke("validate", SCENARIOS[0], "--set", "throttling.max_events_allowed=6000")

    assert_user_error(result, "throttling.max_events_allowed: 6000", "0 to 5000")


def test_validate_refuses_yaml_tag_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\nduration_s: 30\n", encoding="utf-8")

    result = invoke("validate", evil)

    (line,) = assert_user_error(result, f"{evil}:1:7", "not allowed")
    assert "python/object/apply:os.system" in line
    assert not marker.exists()


def test_validate_needs_a_file() -> None:
    result = invoke("validate")

    assert result.exit_code == 2
    assert "Missing argument" in result.output


# ------------------------------------------------------------------ run: the result directory
def test_run_writes_the_result_files(run_tiny: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "out"

    result = run_tiny(out)

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert sorted(p.name for p in out.iterdir()) == sorted(RESULT_FILES), "no timeline.png with --no-plots"
    printed = " ".join(plain(result.stdout).split())  # the human summary may wrap at the console width
    assert "results: " in printed
    assert "(seed 42)" in printed
    assert_no_temporaries(tmp_path)


def test_summary_json_has_the_documented_keys(run_tiny: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_tiny(out).exit_code == 0

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))

    assert summary.keys() >= SUMMARY_KEYS, SUMMARY_KEYS - summary.keys()
    assert summary["scenario"] == "tiny"
    assert summary["seed"] == 42
    assert summary["duration_s"] == TINY_DURATION_S
    assert summary["engine"] == "batched"
    assert set(summary["time_in_state_s"]) == {"Normal", "CodeYellow", "CodeRed"}
    assert sum(summary["time_in_state_s"].values()) == TINY_DURATION_S
    assert summary["dial_tone_delay_ms"].keys() >= DELAY_KEYS
    assert summary["signal_wait_ms"].keys() >= DELAY_KEYS
    assert set(summary["signal_wait_ms_by_priority"]) == PRIORITY_KEYS
    for stats in summary["signal_wait_ms_by_priority"].values():
        assert {"count", "mean", "p95"} <= stats.keys()
    for key in ("code_yellow_entries", "code_yellow_exits", "code_red_entries", "calls_attempted",
                "calls_accepted", "calls_rejected_throttled", "calls_failed_node_down", "signals_processed",
                "signals_lost_restart", "skinny_devices_throttled"):
        assert isinstance(summary[key], int) and summary[key] >= 0, key
    assert summary["calls_attempted"] == (
        summary["calls_accepted"] + summary["calls_rejected_throttled"] + summary["calls_failed_node_down"]
    )
    assert isinstance(summary["wall_s"], float) and summary["wall_s"] >= 0
    # The tiny scenario is eventful: it enters Code Yellow and rejects calls.
    assert summary["code_yellow_entries"] >= 1
    assert summary["calls_rejected_throttled"] >= 1


def test_timeline_csv_header_and_one_row_per_second(run_tiny: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_tiny(out).exit_code == 0

    lines = (out / "timeline.csv").read_text(encoding="utf-8").splitlines()

    assert lines[0] == TIMELINE_HEADER
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == TINY_DURATION_S
    assert [int(row[0]) for row in rows] == list(range(1, TINY_DURATION_S + 1))
    assert {row[1] for row in rows} <= {"Normal", "CodeYellow", "CodeRed"}
    assert all(len(row) == len(TIMELINE_HEADER.split(",")) for row in rows)


def test_alarms_csv_and_resolved_yaml(run_tiny: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_tiny(out).exit_code == 0

    alarms = (out / "alarms.csv").read_text(encoding="utf-8").splitlines()
    assert alarms[0].startswith("t_s,alarm,")
    assert any(",CodeYellowEntry," in line for line in alarms[1:])
    resolved = yaml.safe_load((out / "scenario.resolved.yaml").read_text(encoding="utf-8"))
    assert resolved["name"] == "tiny"
    assert resolved["seed"] == 42
    assert resolved["throttling"]["code_yellow_entry_latency_ms"] == 20, "defaults are filled in"
    assert resolved["throttling"]["system_throttle_sample_size_s"] == 5


def test_run_with_plots_writes_a_png(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"

    result = invoke("run", tiny, "--out", out, "--quiet")

    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted((*RESULT_FILES, "timeline.png"))
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quiet_prints_only_the_result_directory(run_tiny: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "out"

    result = run_tiny(out, "--quiet")

    assert result.exit_code == 0
    assert result.stdout == f"{out}\n"


def test_existing_output_is_refused_and_left_untouched(run_tiny: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_tiny(out).exit_code == 0
    before = snapshot(out)

    result = run_tiny(out, "--seed", "7")

    assert_user_error(result, f"{out}: already exists", "--force")
    assert snapshot(out) == before
    assert_no_temporaries(tmp_path)


def test_existing_empty_directory_is_refused(run_tiny: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()

    assert_user_error(run_tiny(out), "already exists")
    assert list(out.iterdir()) == []


def test_force_replaces_the_output(run_tiny: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert invoke("run", tmp_path / "tiny.yaml", "--out", out).exit_code == 0  # with the plot
    assert (out / "timeline.png").is_file()
    before = snapshot(out)

    result = run_tiny(out, "--seed", "7", "--force")

    assert result.exit_code == 0, result.output
    after = snapshot(out)
    assert sorted(after) == sorted(set(RESULT_FILES) - {"timeline.png"}), "replaced as a whole, not merged"
    assert json.loads(after["summary.json"])["seed"] == 7
    assert after["timeline.csv"] != before["timeline.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "tiny.yaml"]


def test_force_does_not_replace_a_file(run_tiny: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("not a directory", encoding="utf-8")

    result = run_tiny(out, "--force")

    assert result.exit_code == 2
    assert out.read_text(encoding="utf-8") == "not a directory"
    assert_no_temporaries(tmp_path)


def test_failed_write_with_force_keeps_the_old_result(
    run_tiny: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert run_tiny(out).exit_code == 0
    before = snapshot(out)

    def broken_plot(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("cucm_sim.report.plotting.plot_timeline", broken_plot)
    result = CliRunner().invoke(main, ["run", str(out.parent / "tiny.yaml"), "--out", str(out), "--force"])

    assert result.exit_code != 0
    assert snapshot(out) == before
    assert_no_temporaries(tmp_path)


def test_failed_swap_with_force_keeps_the_old_result(
    run_tiny: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # BUG (output.write_results, output.py:55-62): with --force the old DIR is first moved into a
    # `.out.*.old` directory, then the staging directory is renamed to DIR.  If that second rename fails
    # (or the process dies between the two), the except clause removes only the staging directory: DIR
    # is gone and the previous results are stranded in the hidden `.old` directory, never moved back.
    out = tmp_path / "out"
    assert run_tiny(out).exit_code == 0
    before = snapshot(out)
    real_rename = Path.rename
    calls = []

    def rename_failing_second_time(self: Path, target: Any) -> Path:
        calls.append(self)
        if len(calls) == 2:
            raise OSError(errno.EIO, "Input/output error")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename_failing_second_time)
    result = CliRunner().invoke(main, ["run", str(tmp_path / "tiny.yaml"), "--out", str(out), "--force",
                                       "--no-plots"])
    monkeypatch.undo()

    assert result.exit_code != 0
    assert len(calls) >= 2  # the second rename failed (a third may put the old result back)
    assert out.is_dir(), "the previous result directory disappeared"
    assert snapshot(out) == before
    assert_no_temporaries(tmp_path)


def test_result_directory_permissions_follow_the_umask(run_tiny: Callable[..., Result], tmp_path: Path) -> None:
    # BUG (output.write_results, output.py:51): the staging directory comes from tempfile.mkdtemp, which
    # creates it with mode 0o700, and it is renamed into place as is: DIR is private to the user
    # (drwx------) whatever the umask, unlike every other directory the user creates.
    out = tmp_path / "out"
    assert run_tiny(out).exit_code == 0
    reference = tmp_path / "made-by-mkdir"
    reference.mkdir()

    assert oct(out.stat().st_mode & 0o777) == oct(reference.stat().st_mode & 0o777)


# ------------------------------------------------------------------ run: seeds and reproducibility
def test_same_seed_gives_the_same_bytes(run_tiny: Callable[..., Result], tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    assert run_tiny(first).exit_code == 0
    assert run_tiny(second).exit_code == 0

    for name in ("timeline.csv", "alarms.csv", "scenario.resolved.yaml", "narrative.txt"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    summaries = [json.loads((out / "summary.json").read_text(encoding="utf-8")) for out in (first, second)]
    for summary in summaries:
        del summary["wall_s"]
    assert summaries[0] == summaries[1]


def test_unseeded_run_records_a_seed_that_reproduces_it(tiny_unseeded: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert invoke("run", tiny_unseeded, "--out", out, "--no-plots").exit_code == 0

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    seed = summary["seed"]
    assert isinstance(seed, int) and not isinstance(seed, bool)
    assert 0 <= seed <= 2**64 - 1
    resolved_text = (out / "scenario.resolved.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(resolved_text)["seed"] == seed
    assert f"seed: {seed}\n" in resolved_text

    again = tmp_path / "again"
    result = invoke("run", out / "scenario.resolved.yaml", "--out", again, "--no-plots")

    assert result.exit_code == 0, result.output
    assert (again / "timeline.csv").read_bytes() == (out / "timeline.csv").read_bytes()
    assert (again / "alarms.csv").read_bytes() == (out / "alarms.csv").read_bytes()
    assert (again / "scenario.resolved.yaml").read_bytes() == (out / "scenario.resolved.yaml").read_bytes()


def test_seed_and_set_options_take_effect(run_tiny: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "out"

    result = run_tiny(out, "--seed", "123", "--set", "throttling.code_yellow_entry_latency_ms=50",
                      "--set", "devices.count=7")

    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["seed"] == 123
    resolved = yaml.safe_load((out / "scenario.resolved.yaml").read_text(encoding="utf-8"))
    assert resolved["seed"] == 123
    assert resolved["throttling"]["code_yellow_entry_latency_ms"] == 50
    assert resolved["devices"]["count"] == 7
    timeline = (out / "timeline.csv").read_text(encoding="utf-8").splitlines()
    assert timeline[1].split(",")[13] == "7", "registered_devices follows devices.count"


def test_seed_option_overrides_set_seed(run_tiny: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "out"

    assert run_tiny(out, "--set", "seed=5", "--seed", "9").exit_code == 0

    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["seed"] == 9


# ------------------------------------------------------------------ run: user errors
def test_run_bad_set_value(run_tiny: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "out"

    result = run_tiny(out, "--set", "throttling.code_yellow_entry_latency_ms=501")

    (line,) = assert_user_error(result, "throttling.code_yellow_entry_latency_ms", "501", "5 to 500 ms")
    # the --set is blamed, not the file
    assert line.startswith("error: --set throttling.code_yellow_entry_latency_ms=501: "), line
    assert not out.exists()


@pytest.mark.parametrize(
    ("override", "expected"),
    [("novalue", "expected dotted.key=value"), ("load.background.5.signals_per_s=1", "not an index"),
     ("name.x=1", "is a value, not a section"), ("throttling.nope=1", "unknown key")],
)
def test_run_bad_set_syntax(run_tiny: Callable[..., Result], tmp_path: Path, override: str, expected: str) -> None:
    out = tmp_path / "out"

    assert_user_error(run_tiny(out, "--set", override), expected)
    assert not out.exists()


def test_run_missing_scenario_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    missing = tmp_path / "nope.yaml"

    result = invoke("run", missing, "--out", out)

    assert assert_user_error(result, "no such file") == [f"error: {missing}: no such file"]
    assert not out.exists()


def test_run_yaml_tag_file_is_refused_and_not_executed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"name: x\nduration_s: 30\ndescription: !!python/object/apply:os.system ['touch {marker}']\n",
                    encoding="utf-8")

    result = invoke("run", evil, "--out", out)

    assert_user_error(result, f"{evil}:3:14", "not allowed")
    assert not marker.exists()
    assert not out.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("name: x\nduration_s: [30\n", "invalid YAML"), ("", "empty"), ("name: x\nname: y\nduration_s: 3\n", "twice"),
     ("- a\n", "not a list")],
    ids=["syntax", "empty", "duplicate-key", "list"],
)
def test_run_bad_yaml(tmp_path: Path, text: str, expected: str) -> None:
    out = tmp_path / "out"
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(text, encoding="utf-8")

    assert_user_error(invoke("run", scenario, "--out", out), str(scenario), expected)
    assert not out.exists()


def test_run_bad_seed_option(run_tiny: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "out"

    result = run_tiny(out, "--seed", "-1")

    assert result.exit_code == 2
    assert not out.exists()


# ------------------------------------------------------------------ rich markup must not eat user text
def test_validate_prints_bracketed_key_verbatim(tmp_path: Path) -> None:
    # BUG (cli._fail, cli.py:41): problems are printed with rich's Console.print as markup, so user text in
    # square brackets is interpreted: the unknown key "[bold]oops" is reported as "oops".
    scenario = tmp_path / "brackets.yaml"
    scenario.write_text('name: x\nduration_s: 30\n"[bold]oops": 1\n', encoding="utf-8")

    result = invoke("validate", scenario)

    assert_user_error(result, f"{scenario}:3: [bold]oops: unknown key")


def test_validate_bracketed_value_is_a_user_error_not_a_crash(tmp_path: Path) -> None:
    # BUG (cli._fail, cli.py:41): same cause; the value "[/]" makes rich raise MarkupError ("closing tag
    # '[/]' ... has nothing to close"): a traceback and exit 1 instead of the problem line and exit 2.
    scenario = tmp_path / "brackets.yaml"
    scenario.write_text('name: x\nduration_s: 30\nthrottling: {sample_rule: "[/]"}\n', encoding="utf-8")

    result = invoke("validate", scenario)

    assert_user_error(result, "throttling.sample_rule: '[/]' is not allowed")


def test_quiet_prints_the_directory_verbatim(run_tiny: Callable[..., Result], tmp_path: Path) -> None:
    # BUG (cli.run, cli.py:116): `--quiet` prints the directory with rich's Console.print, which treats it
    # as markup ("[red]out" is printed as "out") and wraps it at the console width (80 columns when not
    # a terminal), so scripts reading the path get a wrong or broken one.
    out = tmp_path / "[red]out" / ("a-long-directory-name-" * 4)

    result = run_tiny(out, "--quiet")

    assert result.exit_code == 0
    assert out.is_dir()
    assert result.stdout == f"{out}\n"


def test_scenario_name_with_brackets_does_not_crash_the_summary(tmp_path: Path) -> None:
    # BUG (cli._summary_table, cli.py:142): the scenario name goes into the table title as rich markup;
    # the name "[/]" raises MarkupError after the results are written (traceback, exit 1).
    scenario = tmp_path / "named.yaml"
    scenario.write_text('name: "[/]"\nseed: 1\nduration_s: 20\n', encoding="utf-8")
    out = tmp_path / "out"

    result = invoke("run", scenario, "--out", out, "--no-plots")

    assert result.exit_code == 0
    assert "[/]" in result.stdout


# ------------------------------------------------------------------ schema, params, help
def test_schema_prints_the_json_schema() -> None:
    result = invoke("schema")

    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    for key in ("name", "duration_s", "throttling", "node", "load", "devices", "disturbances"):
        assert key in schema["properties"], key
    assert set(schema["required"]) == {"name", "duration_s"}


def test_params_lists_every_throttling_parameter_with_its_default() -> None:
    result = invoke("params")

    assert result.exit_code == 0
    text = plain(result.stdout)
    defaults = {
        "code_yellow_entry_latency_ms": "20 ms",
        "code_yellow_exit_latency_pct": "40 %",
        "code_yellow_duration_min": "5 min",
        "system_throttle_sample_size_s": "10 s",
        "max_events_allowed": "2000",
        "sample_rule": "consecutive_nonzero",
        "exit_rule": "at_or_below",
        "delay_resolution": "exact",
    }
    assert set(defaults) == set(ThrottlingParams.model_fields)
    for name, default in defaults.items():
        assert re.search(rf"^{name}\s+default {re.escape(default)}(?![\d.])", text, re.MULTILINE), name
    assert "allowed 5..500 ms" in text
    assert "allowed 1..30 or 99999 min" in text
    assert "allowed consecutive_nonzero, rolling or batch" in text
    assert "allowed at_or_below or below" in text and "allowed exact or whole_ms" in text


@pytest.mark.parametrize("args", [[], ["run"], ["explain"], ["validate"], ["schema"], ["params"]],
                         ids=["main", "run", "explain", "validate", "schema", "params"])
def test_help(args: list[str]) -> None:
    result = invoke(*args, "--help")

    assert result.exit_code == 0
    assert "Usage:" in result.stdout


def test_run_help_documents_the_options() -> None:
    text = invoke("run", "--help").stdout
    for option in ("--out", "--seed", "--set", "--no-plots", "--force", "--quiet"):
        assert option in text


def test_version() -> None:
    result = invoke("--version")

    assert result.exit_code == 0
    assert "cucm-sim" in result.stdout


# ------------------------------------------------------------------ real processes
def test_console_script_run_and_user_error(tiny: Path, tmp_path: Path) -> None:
    script = console_script()
    out = tmp_path / "out"

    done = subprocess.run([script, "run", str(tiny), "--out", str(out), "--no-plots", "--quiet"],
                          capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{out}\n"
    assert sorted(p.name for p in out.iterdir()) == sorted(RESULT_FILES)

    again = subprocess.run([script, "run", str(tiny), "--out", str(out)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 2
    assert "Traceback" not in again.stderr
    assert again.stderr.startswith("error: ")


def test_console_script_validate_bad_and_evil_files(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\nduration_s: 30\n", encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nduration_s: 0\nthrottling: {max_events_allowed: -1}\n", encoding="utf-8")

    done = subprocess.run([console_script(), "validate", str(evil), str(bad)],
                          capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 3, lines
    assert all(line.startswith("error: ") for line in lines)
    assert not marker.exists()


def test_python_dash_m_cli_runs_the_command() -> None:
    # BUG (cucm_sim/cli/commands.py has no `if __name__ == "__main__": main()` block, and the package has no
    # __main__.py): `python -m cucm_sim.cli --help` imports the module, does nothing and exits 0 with
    # no output, so `python -m cucm_sim.cli run ...` silently runs nothing.
    done = subprocess.run([sys.executable, "-m", "cucm_sim.cli", "--help"], capture_output=True, text=True,
                          timeout=60, check=False)

    assert done.returncode == 0
    assert "Usage:" in done.stdout


def test_something_after_the_runs_end_is_warned_about(tmp_path: Path) -> None:
    scenario = tmp_path / "late.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "late", "seed": 1, "duration_s": 30,
        "disturbances": [{"kind": "cpu_slowdown", "start_s": 40, "end_s": 50, "capacity_factor": 0.5}],
    }), encoding="utf-8")

    for args in (("validate", scenario), ("run", scenario, "--out", tmp_path / "r", "--no-plots")):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert f"warning: {scenario}: disturbances.0: starts at start_s 40" in result.stderr
        assert "no effect" in result.stderr


def test_a_description_with_a_yaml_line_break_reads_back_as_itself() -> None:
    from cucm_sim import Scenario
    from cucm_sim.report.output import parse_resolved_yaml, resolved_yaml

    # U+2028 and U+2029 are line breaks to YAML: written raw inside a quoted scalar they read back as spaces
    scenario = Scenario.model_validate({"name": "x", "duration_s": 10, "seed": 1, "description": "a\u2028b\u2029 é"})
    assert parse_resolved_yaml(resolved_yaml(scenario), "test") == scenario
