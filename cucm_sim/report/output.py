"""Writing a run's results to a directory, atomically.

Owns the files of a result directory: summary.json, timeline.csv, alarms.csv, alarms.log (the alarms as CUCM
syslog lines, `syslog`), scenario.resolved.yaml, narrative.txt (the run's story, `cucm_sim.report.narrative`) and
timeline.png, and reading one back (`read_run`, which needs no alarms.log).
A run of hosts and links alone writes events.log in place of alarms.csv, and its own timeline columns, story
and figure (`host_files`, `host_narrative`, `host_plot`).  A cluster's timeline.csv and alarms.csv lead each
row with its node (`cluster_files` says which rows are whose), and its story and figure are its own
(`cluster_narrative`, `cluster_plot`).
Everything is written into a staging directory beside DIR and moved into place only when complete, so
DIR holds a whole result or nothing; an existing DIR is replaced only with `force`, and only when it is a
run's result directory (the rules are `files`', shared by every command that writes).
Numbers are formatted deterministically, so the same seed gives the same bytes (wall_s aside).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from cucm_sim.errors import UserError
from cucm_sim.host.network import timeline_columns
from cucm_sim.measures.metrics import METRICS, Metric, catalogue, lookup
from cucm_sim.measures.timeline import TIMELINE_COLUMNS
from cucm_sim.report.cluster_files import (
    NODE_COLUMN,
    NumberedRow,
    alarms_in_order,
    node_of_alarm,
    rows_by_node,
    rows_by_second,
    worst_states,
)
from cucm_sim.report.cluster_narrative import narrate_cluster
from cucm_sim.report.csv_text import csv_rows, csv_text
from cucm_sim.report.files import DirectoryKind, PreparedDirectory, prepare_directory
from cucm_sim.report.host_files import EVENTS_LOG, events_log, parse_events_log
from cucm_sim.report.host_narrative import narrate_hosts
from cucm_sim.report.narrative import narrate, narrative_text
from cucm_sim.report.perfmon_export import PerfmonOptions, perfmon_text
from cucm_sim.report.queue_files import (
    SIGNALS_BY_QUEUE,
    cluster_signals_by_queue_csv,
    parse_signals_by_queue,
    signals_by_queue_csv,
)
from cucm_sim.report.syslog import ALARMS_LOG, syslog_text
from cucm_sim.rules.alarms import ALARM_COLUMNS, CLUSTER_ALARM_COLUMNS, Alarm
from cucm_sim.rules.throttling import ThrottleState
from cucm_sim.run.cluster import NodeRun
from cucm_sim.run.simulation import RunResult
from cucm_sim.scenario.loader import ScenarioDumper, parse_scenario, parse_yaml_text
from cucm_sim.scenario.schema import Scenario

PERFMON_CSV = "perfmon.csv"
"""The run's counters as Perfmon CSV: written with `perfmon` options (`cucm-sim run --perfmon`) or by
`cucm-sim export`."""
RESULT_FILES = (
    "summary.json", "timeline.csv", "alarms.csv", "scenario.resolved.yaml", "narrative.txt", "timeline.png",
    EVENTS_LOG, ALARMS_LOG, SIGNALS_BY_QUEUE, PERFMON_CSV, "compare.png", "compare.csv",
)
SUMMARY_KEYS = ("scenario", "seed", "duration_s", "engine")
"""summary.json's keys besides the metrics (`metrics.METRICS`), all of which it holds too."""
SUMMARY_KEYS_SHOWN = 6
RUN_FILES = ("summary.json", "timeline.csv", "alarms.csv", "scenario.resolved.yaml")
"""The files `read_run` needs: everything but the story and the plot, which are made from them."""
_ALARM_HEADER = ("t_s", "alarm", *ALARM_COLUMNS)
_CLUSTER_ALARM_COLUMNS = {**ALARM_COLUMNS, **CLUSTER_ALARM_COLUMNS}
"""The parameters a cluster's alarms.csv lists: a node's, then DeviceUnregistered's Reason."""
_INTEGER_COLUMNS = {
    "t_s", "throttling_sample_activity", "queue_high", "queue_normal", "queue_low", "queue_lowest",
    "signals_processed", "calls_attempted", "calls_rejected", "skinny_devices_throttled", "registered_devices",
}


RUN_DIRECTORY = DirectoryKind("cucm-sim run", frozenset(RESULT_FILES), "summary.json")
"""A run's result directory, as --force recognises it (`files.DirectoryKind`)."""


def prepare_output_dir(out_dir: Path, force: bool) -> PreparedDirectory:
    """Check and claim `out_dir` before a run (see `files.prepare_directory`); pass it to `write_results`."""
    return prepare_directory(out_dir, RUN_DIRECTORY, force=force)


def write_results(result: RunResult, out_dir: Path | PreparedDirectory, *, force: bool = False,
                  plots: bool = True, perfmon: PerfmonOptions | None = None) -> list[Path]:
    """Write `result` into `out_dir` atomically (a path, or one `prepare_output_dir` claimed before the run);
    return the files written (their final paths).  An existing directory is replaced only with `force`, and
    only if it is a run's result directory.  With `perfmon` options, perfmon.csv too."""
    def write(staging: Path) -> list[str]:
        names = _write_all(result, staging, plots)
        if perfmon is not None:
            (staging / PERFMON_CSV).write_text(perfmon_text(result, perfmon), encoding="utf-8", newline="")
            names.append(PERFMON_CSV)
        return names

    if isinstance(out_dir, PreparedDirectory):
        with out_dir:
            return out_dir.fill(write)
    with prepare_output_dir(out_dir, force) as prepared:
        return prepared.fill(write)


def _write_all(result: RunResult, directory: Path, plots: bool) -> list[str]:
    texts = _result_texts(result)
    for name, text in texts.items():
        (directory / name).write_text(text, encoding="utf-8")
    (directory / "narrative.txt").write_text(_narrative_of(texts, str(directory)), encoding="utf-8")
    names = [*texts, "narrative.txt"]
    if plots and result.scenario.cluster is not None:
        from cucm_sim.report.cluster_plot import plot_cluster  # matplotlib is slow to import: only when plotting

        plot_cluster(result.scenario, result.nodes, f"{result.scenario.name} (seed {result.seed})",
                     directory / "timeline.png")
        names.append("timeline.png")
    elif plots and not result.scenario.has_node:
        from cucm_sim.report.host_plot import plot_hosts  # matplotlib is slow to import: only when plotting

        plot_hosts(result.scenario, result.timeline, result.log, f"{result.scenario.name} (seed {result.seed})",
                   directory / "timeline.png")
        names.append("timeline.png")
    elif plots:
        from cucm_sim.report.plotting import plot_timeline  # matplotlib is slow to import: only when plotting

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


def timeline_csv(result: RunResult) -> str:
    """timeline.csv: one row per simulated second, columns TIMELINE_COLUMNS."""
    return csv_text(TIMELINE_COLUMNS, _timeline_rows(result.timeline))


def _timeline_rows(timeline: Mapping[str, np.ndarray]) -> list[list[str]]:
    """A node's timeline as timeline.csv's cells: one row per second, columns TIMELINE_COLUMNS."""
    columns = []
    for name in TIMELINE_COLUMNS:
        values = timeline[name]
        if name == "state":
            columns.append([str(v) for v in values])
        else:
            columns.append([_number(v, name in _INTEGER_COLUMNS) for v in values.tolist()])
    return [list(row) for row in zip(*columns, strict=True)]


def cluster_timeline_csv(nodes: Sequence[NodeRun]) -> str:
    """A cluster's timeline.csv: `node`, then TIMELINE_COLUMNS; second by second, the nodes in order."""
    rows = rows_by_second([node.name for node in nodes], [_timeline_rows(node.timeline) for node in nodes])
    return csv_text([NODE_COLUMN, *TIMELINE_COLUMNS], rows)


_HOST_INTEGER_SUFFIXES = (".dpc_rate", ".ring_occupancy", ".packets_dropped", ".heartbeats_sent",
                          ".heartbeats_received", ".heartbeats_missed", ".session_open")


def host_timeline_csv(timeline: Mapping[str, np.ndarray]) -> str:
    """timeline.csv of a run of hosts and links: t_s, then every processor's, host's and link's column."""
    names = list(timeline)
    columns = [[_number(v, name == "t_s" or name.endswith(_HOST_INTEGER_SUFFIXES)) for v in timeline[name].tolist()]
               for name in names]
    return csv_text(names, zip(*columns, strict=True))


def alarms_csv(result: RunResult) -> str:
    """alarms.csv: one row per alarm: t_s, alarm, then every Cisco parameter (blank where not carried)."""
    return csv_text(_ALARM_HEADER, [_alarm_cells(alarm, ALARM_COLUMNS) for alarm in result.alarms])


def cluster_alarms_csv(nodes: Sequence[NodeRun]) -> str:
    """A cluster's alarms.csv: `node`, then a node's columns and Reason; in time order (`cluster_files`)."""
    return csv_text([NODE_COLUMN, *_ALARM_HEADER, *CLUSTER_ALARM_COLUMNS],
                     [[name, *_alarm_cells(alarm, _CLUSTER_ALARM_COLUMNS)] for name, alarm in alarms_in_order(nodes)])


def _alarm_cells(alarm: Alarm, columns: Iterable[str]) -> list[str]:
    """An alarm as alarms.csv's cells: t_s to the millisecond, its name, then each of `columns` (blank where
    not carried)."""
    row = [f"{alarm.t_s:.3f}", alarm.name]
    for name in columns:
        value = alarm.params.get(name, "")
        if isinstance(value, float):
            value = f"{value:.4f}"
        row.append(str(value))
    return row


def resolved_yaml(scenario: Scenario) -> str:
    """The scenario with every default filled in and its concrete seed: running it reproduces the run."""
    header = (
        f"# Resolved scenario {scenario.name!r}: every default filled in, seed made concrete.\n"
        "# Running this file again reproduces the same summary (wall time aside).\n"
    )
    # ScenarioDumper quotes a string the loader would read back as a number ('1e3': a float to YAML 1.2)
    return header + yaml.dump(scenario.resolved_data(), Dumper=ScenarioDumper, sort_keys=False, allow_unicode=True)


# ------------------------------------------------------------------ the story, and reading a run back
def _result_texts(result: RunResult) -> dict[str, str]:
    """The text files of a result, by name, as `write_results` writes them."""
    if result.scenario.cluster is not None:
        return {
            "summary.json": summary_json(result.summary),
            "timeline.csv": cluster_timeline_csv(result.nodes),
            "alarms.csv": cluster_alarms_csv(result.nodes),
            ALARMS_LOG: syslog_text(result),
            SIGNALS_BY_QUEUE: cluster_signals_by_queue_csv([node.name for node in result.nodes],
                                                           [node.timeline for node in result.nodes]),
            "scenario.resolved.yaml": resolved_yaml(result.scenario),
        }
    if not result.scenario.has_node:
        return {
            "summary.json": summary_json(result.summary),
            "timeline.csv": host_timeline_csv(result.timeline),
            EVENTS_LOG: events_log(result.log),
            "scenario.resolved.yaml": resolved_yaml(result.scenario),
        }
    return {
        "summary.json": summary_json(result.summary),
        "timeline.csv": timeline_csv(result),
        "alarms.csv": alarms_csv(result),
        ALARMS_LOG: syslog_text(result),
        SIGNALS_BY_QUEUE: signals_by_queue_csv(result.timeline),
        "scenario.resolved.yaml": resolved_yaml(result.scenario),
    }


def _narrative_of(texts: dict[str, str], where: str) -> str:
    # The story is told from the files as written (numbers rounded as they are there), so that
    # `cucm-sim explain DIR`, which reads them back, tells byte for byte the story narrative.txt holds.
    scenario = parse_resolved_yaml(texts["scenario.resolved.yaml"], f"{where}/scenario.resolved.yaml")
    if scenario.cluster is not None:
        saved = _cluster_run(where, scenario, texts)
        return narrative_text(narrate_cluster(scenario, saved.nodes, saved.summary))
    if not scenario.has_node:
        saved = _host_run(where, scenario, texts)
        return narrative_text(narrate_hosts(scenario, saved.timeline, saved.log, saved.summary))
    timeline = parse_timeline_csv(texts["timeline.csv"], f"{where}/timeline.csv")
    alarms = parse_alarms_csv(texts["alarms.csv"], f"{where}/alarms.csv")
    summary = parse_summary_json(texts["summary.json"], f"{where}/summary.json")
    return narrative_text(narrate(scenario, timeline, alarms, summary))


def narrative_for(result: RunResult) -> str:
    """The story of `result` exactly as narrative.txt holds it (told from the written files' numbers)."""
    return _narrative_of(_result_texts(result), result.scenario.name)


def read_run(run_dir: Path) -> RunResult:
    """Read a result directory written by `write_results` back into a `RunResult`.

    The scenario comes from scenario.resolved.yaml, the summary from summary.json, the per-second timeline
    from timeline.csv (numeric columns as float64 arrays, `state` as a str array) and the alarms from
    alarms.csv; `wall_s` is the summary's.  A cluster's run (its resolved scenario has a `cluster`) comes
    back with its `nodes`, each with its own timeline, alarms and metrics.  A missing directory, a missing
    file or a malformed one raises UserError naming it.
    """
    if not run_dir.exists():
        raise UserError([f"{run_dir}: no such directory; give a result directory written by `cucm-sim run`"])
    if not run_dir.is_dir():
        raise UserError([f"{run_dir}: not a directory; give a result directory written by `cucm-sim run`"])
    hosts_only = (run_dir / EVENTS_LOG).is_file() and not (run_dir / "alarms.csv").exists()
    needed = [*(name for name in RUN_FILES if name != "alarms.csv"), EVENTS_LOG] if hosts_only else RUN_FILES
    missing = [name for name in needed if not (run_dir / name).is_file()]
    if len(missing) == 1:
        raise UserError([f"{run_dir / missing[0]}: no such file; {run_dir} is not a complete result directory "
                         "(write it again with `cucm-sim run`)"])
    if missing:
        raise UserError([f"{run_dir}: not a result directory of `cucm-sim run`: no {', '.join(missing)}"])
    texts = {name: _read_text(run_dir / name) for name in needed}
    scenario = parse_resolved_yaml(texts["scenario.resolved.yaml"], str(run_dir / "scenario.resolved.yaml"))
    if hosts_only and not scenario.has_node:
        return _host_run(str(run_dir), scenario, texts)
    if scenario.cluster is not None:
        return _with_signals_by_queue(_cluster_run(str(run_dir), scenario, texts), run_dir)
    summary = parse_summary_json(texts["summary.json"], str(run_dir / "summary.json"))
    timeline = parse_timeline_csv(texts["timeline.csv"], str(run_dir / "timeline.csv"))
    alarms = parse_alarms_csv(texts["alarms.csv"], str(run_dir / "alarms.csv"))
    rows = len(timeline["t_s"])
    if rows != scenario.duration_s:
        raise UserError([f"{run_dir / 'timeline.csv'}: {rows} rows, but the run lasted {scenario.duration_s} s "
                         "(one row per second expected); the result directory is incomplete or mixed up"])
    wall_s = summary.get("wall_s")
    return _with_signals_by_queue(RunResult(scenario, summary, timeline, tuple(alarms),
                                            float(wall_s) if isinstance(wall_s, int | float) else math.nan), run_dir)


def _with_signals_by_queue(result: RunResult, run_dir: Path) -> RunResult:
    """`result` with signals_by_queue.csv's columns in its timelines, when the directory has the file (one
    written before it existed has not)."""
    path = run_dir / SIGNALS_BY_QUEUE
    if not path.is_file():
        return result
    names = [node.name for node in result.nodes]
    columns = parse_signals_by_queue(_read_text(path), str(path), names, result.scenario.duration_s)
    if not names:
        return replace(result, timeline={**result.timeline, **columns[""]})
    return replace(result, nodes=tuple(replace(node, timeline={**node.timeline, **columns[node.name]})
                                       for node in result.nodes))


def _host_run(where: str, scenario: Scenario, texts: dict[str, str]) -> RunResult:
    """A run of hosts and links from its files' texts (`where`: their directory, for messages)."""
    source = f"{where}/summary.json"
    summary = _json_object(texts["summary.json"], source)
    if not isinstance(summary.get("links"), dict):
        raise UserError([f"{source}: not the summary of a cucm-sim run of hosts and links (write it again with "
                         "`cucm-sim run`)"])
    timeline = parse_host_timeline_csv(texts["timeline.csv"], f"{where}/timeline.csv", timeline_columns(scenario))
    log = parse_events_log(texts[EVENTS_LOG], f"{where}/{EVENTS_LOG}")
    wall_s = summary.get("wall_s")
    return RunResult(scenario, summary, timeline, (), float(wall_s) if isinstance(wall_s, int | float) else math.nan,
                     tuple(log))


def _cluster_run(where: str, scenario: Scenario, texts: dict[str, str]) -> RunResult:
    """A cluster's run from its files' texts (`where`: their directory, for messages): each node's timeline,
    alarms and metrics, the cluster's worst state per second and every alarm in time order."""
    names = scenario.node_names
    summary = parse_summary_json(texts["summary.json"], f"{where}/summary.json", names)
    source = f"{where}/timeline.csv"
    rows = csv_rows(texts["timeline.csv"], source, [NODE_COLUMN, *TIMELINE_COLUMNS])
    if len(rows) != scenario.duration_s * len(names):
        raise UserError([f"{source}: {len(rows)} rows, but the run lasted {scenario.duration_s} s on "
                         f"{len(names)} nodes (one row per node per second expected); the result directory is "
                         "incomplete or mixed up"])
    timelines = {name: _timeline_columns(node_rows, source)
                 for name, node_rows in rows_by_node(rows, names, source).items()}
    source = f"{where}/alarms.csv"
    alarms = [(node_of_alarm(row[0], names, source, line), _alarm_of(row[1:], source, line, _CLUSTER_ALARM_COLUMNS))
              for line, row in enumerate(csv_rows(texts["alarms.csv"], source,
                                                   [NODE_COLUMN, *_ALARM_HEADER, *CLUSTER_ALARM_COLUMNS]), start=2)]
    nodes = tuple(NodeRun(name, timelines[name], tuple(alarm for node, alarm in alarms if node == name),
                          summary["nodes"][name]) for name in names)
    wall_s = summary.get("wall_s")
    return RunResult(scenario, summary, {"state": worst_states([node.timeline["state"] for node in nodes])},
                     tuple(alarm for _node, alarm in alarms), float(wall_s) if isinstance(wall_s, int | float)
                     else math.nan, nodes=nodes)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserError([f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"]) from None
    except OSError as error:
        raise UserError([f"{path}: cannot read ({error.strerror})"]) from None


def parse_resolved_yaml(text: str, source: str) -> Scenario:
    """The scenario of scenario.resolved.yaml text; ScenarioError (a UserError) naming `source` if invalid.  A
    run's recording (`load.trace`) is not read: its results are read without it (running the scenario again
    reads it)."""
    return parse_scenario(parse_yaml_text(text, source), source, read_recording=False)


def _json_object(text: str, source: str) -> dict[str, Any]:
    """summary.json text as a dict; UserError naming `source` unless it is a JSON object."""
    try:
        summary = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError([f"{source}:{error.lineno}:{error.colno}: invalid JSON: {error.msg}"]) from None
    if not isinstance(summary, dict):
        raise UserError([f"{source}: expected a JSON object (the run's summary), not {type(summary).__name__}"])
    return summary


def parse_summary_json(text: str, source: str, nodes: Sequence[str] = ()) -> dict[str, Any]:
    """The summary of summary.json text; UserError naming `source` unless it is a CUCM node run's summary (a
    cluster's, with its own metrics and each node's, when the cluster's `nodes` are given)."""
    summary = _json_object(text, source)
    wrong = [key for key in SUMMARY_KEYS if key not in summary]
    metrics: tuple[Metric, ...] = catalogue(True, nodes=nodes) if nodes else METRICS
    for metric in metrics:
        try:
            lookup(summary, metric.path)
        except (KeyError, TypeError):
            wrong.append(metric.path)
    if wrong:
        shown = ", ".join(wrong[:SUMMARY_KEYS_SHOWN]) + (f" and {len(wrong) - SUMMARY_KEYS_SHOWN} more"
                                                          if len(wrong) > SUMMARY_KEYS_SHOWN else "")
        raise UserError([f"{source}: not the summary of a cucm-sim run: {shown} missing or not a number (write it "
                         "again with `cucm-sim run`)"])
    return summary


def _float(text: str, source: str, line: int, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UserError([f"{source}: line {line}: {column}: {text!r} is not a number"]) from None


def parse_timeline_csv(text: str, source: str) -> dict[str, np.ndarray]:
    """timeline.csv text as columns: `state` a str array, every other column float64 (blank = NaN)."""
    rows = csv_rows(text, source, list(TIMELINE_COLUMNS))
    return _timeline_columns(list(enumerate(rows, start=2)), source)


def _timeline_columns(rows: Sequence[NumberedRow], source: str) -> dict[str, np.ndarray]:
    """A node's timeline.csv rows (cells of TIMELINE_COLUMNS, with their lines) as columns (see above)."""
    states = {state.value for state in ThrottleState}
    columns: dict[str, np.ndarray] = {}
    for index, name in enumerate(TIMELINE_COLUMNS):
        cells = [(line, row[index]) for line, row in rows]
        if name == "state":
            for line, cell in cells:
                if cell not in states:
                    raise UserError([f"{source}: line {line}: state: {cell!r} is not one of {sorted(states)}"])
            columns[name] = np.array([cell for _line, cell in cells], dtype=str)
        else:
            columns[name] = np.array(
                [math.nan if cell == "" else _float(cell, source, line, name) for line, cell in cells],
                dtype=np.float64,
            )
    return columns


def parse_host_timeline_csv(text: str, source: str, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """A host run's timeline.csv text as float64 columns: t_s, then `columns` (`network.timeline_columns`)."""
    header = ["t_s", *columns]
    rows = csv_rows(text, source, header)
    return {name: np.array([_float(row[index], source, line, name) for line, row in enumerate(rows, 2)],
                           dtype=np.float64)
            for index, name in enumerate(header)}


def parse_alarms_csv(text: str, source: str) -> list[Alarm]:
    """alarms.csv text as Alarm records: blank cells are parameters the alarm does not carry.

    Whole numbers come back as int, the rest as float (at alarms.csv's four decimals); DeviceName as str.
    """
    rows = csv_rows(text, source, list(_ALARM_HEADER))
    return [_alarm_of(row, source, line, ALARM_COLUMNS) for line, row in enumerate(rows, start=2)]


def _alarm_of(row: list[str], source: str, line: int, columns: Mapping[str, str]) -> Alarm:
    """The alarm of alarms.csv's cells t_s, alarm and `columns` (parameter name: unit) at `line`."""
    t_s = _float(row[0], source, line, "t_s")
    if not math.isfinite(t_s) or not row[1]:
        raise UserError([f"{source}: line {line}: needs a finite t_s and an alarm name"])
    params: dict[str, float | int | str] = {}
    for name, cell in zip(columns, row[2:], strict=True):
        if cell == "":
            continue
        if columns[name] == "name":
            params[name] = cell
        elif cell.lstrip("-").isdigit():
            params[name] = int(cell)
        else:
            params[name] = _float(cell, source, line, name)
    return Alarm(row[1], t_s, params)
