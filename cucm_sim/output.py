"""Writing a run's results to a directory, atomically.

Owns the files of a result directory: summary.json, timeline.csv, alarms.csv, scenario.resolved.yaml and
timeline.png.  Everything is written into a temporary sibling directory first and moved into place only
when complete, so DIR holds a whole result or nothing; an existing DIR is replaced only with `force`.
Numbers are formatted deterministically, so the same seed gives the same bytes (wall_s aside).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from cucm_sim.alarms import ALARM_COLUMNS
from cucm_sim.errors import OutputExistsError, UserError
from cucm_sim.runner import RunResult
from cucm_sim.schema import Scenario
from cucm_sim.timeline import TIMELINE_COLUMNS

RESULT_FILES = ("summary.json", "timeline.csv", "alarms.csv", "scenario.resolved.yaml", "timeline.png")
_INTEGER_COLUMNS = {
    "t_s", "throttling_sample_activity", "queue_high", "queue_normal", "queue_low", "queue_lowest",
    "signals_processed", "calls_attempted", "calls_rejected", "skinny_devices_throttled", "registered_devices",
}


def check_output_dir(out_dir: Path, force: bool) -> None:
    """Refuse (OutputExistsError) an existing `out_dir` unless `force`; call before a long run."""
    if out_dir.exists() and not force:
        raise OutputExistsError([f"{out_dir}: already exists; choose another --out or pass --force to replace it"])
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputExistsError([f"{out_dir}: exists and is not a directory"])


def write_results(result: RunResult, out_dir: Path, *, force: bool = False, plots: bool = True) -> list[Path]:
    """Write `result` into `out_dir` atomically; return the files written (their final paths)."""
    check_output_dir(out_dir, force)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError([f"{out_dir.parent}: cannot create the output's parent directory ({error.strerror})"]) from None
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the result should not be
        names = _write_all(result, staging, plots)
        if out_dir.exists():
            _swap_in(staging, out_dir)
        else:
            staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [out_dir / name for name in names]


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Replace `out_dir` by `staging`; if the second rename fails, put the old result back."""
    trash = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
    old = trash / "old"
    out_dir.rename(old)
    try:
        staging.rename(out_dir)
    except BaseException:
        old.rename(out_dir)
        shutil.rmtree(trash, ignore_errors=True)
        raise
    shutil.rmtree(trash)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_all(result: RunResult, directory: Path, plots: bool) -> list[str]:
    (directory / "summary.json").write_text(summary_json(result.summary), encoding="utf-8")
    (directory / "timeline.csv").write_text(timeline_csv(result), encoding="utf-8")
    (directory / "alarms.csv").write_text(alarms_csv(result), encoding="utf-8")
    (directory / "scenario.resolved.yaml").write_text(resolved_yaml(result.scenario), encoding="utf-8")
    names = ["summary.json", "timeline.csv", "alarms.csv", "scenario.resolved.yaml"]
    if plots:
        from cucm_sim.plotting import plot_timeline  # matplotlib is slow to import: only when plotting

        plot_timeline(result.timeline, result.alarms, result.scenario.throttling,
                      f"{result.scenario.name} (seed {result.seed})", directory / "timeline.png")
        names.append("timeline.png")
    return names


def summary_json(summary: Any) -> str:
    """The summary as pretty JSON (NaN is not JSON: it is refused)."""
    return json.dumps(summary, indent=2, allow_nan=False) + "\n"


def _number(value: float, integer: bool) -> str:
    if integer:
        return str(int(value))
    if math.isnan(value):
        return ""
    return f"{value:.4f}"


def _csv_text(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def timeline_csv(result: RunResult) -> str:
    """timeline.csv: one row per simulated second, columns TIMELINE_COLUMNS."""
    columns = []
    for name in TIMELINE_COLUMNS:
        values = result.timeline[name]
        if name == "state":
            columns.append([str(v) for v in values])
        else:
            columns.append([_number(v, name in _INTEGER_COLUMNS) for v in values.tolist()])
    return _csv_text(TIMELINE_COLUMNS, zip(*columns, strict=True))


def alarms_csv(result: RunResult) -> str:
    """alarms.csv: one row per alarm: t_s, alarm, then every Cisco parameter (blank where not carried)."""
    header = ["t_s", "alarm", *ALARM_COLUMNS]
    rows = []
    for alarm in result.alarms:
        row = [f"{alarm.t_s:.3f}", alarm.name]
        for name in ALARM_COLUMNS:
            value = alarm.params.get(name, "")
            if isinstance(value, float):
                value = f"{value:.4f}"
            row.append(str(value))
        rows.append(row)
    return _csv_text(header, rows)


def resolved_yaml(scenario: Scenario) -> str:
    """The scenario with every default filled in and its concrete seed: running it reproduces the run."""
    header = (
        f"# Resolved scenario {scenario.name!r}: every default filled in, seed made concrete.\n"
        "# Running this file again reproduces the same summary (wall time aside).\n"
    )
    return header + yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
