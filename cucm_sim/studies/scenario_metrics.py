"""Whether a metric a study is told to read is one this scenario's runs have, with one clear line when it is not.

A metric name can be valid (`metrics.is_metric`) and still not be this scenario's: a per-node metric
(`nodes.cm9.code_red_entries`) names a node the cluster may not have, a cluster metric means nothing for one
node, a host metric nothing for a CUCM node.  `check`'s `expect:` block is checked by the schema; the
metrics a sweep plots (`--metric`) and a capacity search's `--until` are checked here, against the scenario
at hand, before anything runs.  Pure: it reads the scenario's parts, nothing else.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from cucm_sim.errors import UserError
from cucm_sim.measures.metrics import CLUSTER_METRIC_PATHS, is_metric, link_metric, node_metric
from cucm_sim.scenario.schema import Scenario


def metric_problem(scenario: Scenario, metric: str) -> str | None:
    """Why the runs of `scenario` have no metric `metric` (a sentence naming what it has instead); None when
    they have it."""
    paths = scenario.metric_paths()
    if metric in paths:
        return None
    if not is_metric(metric):
        close = difflib.get_close_matches(metric, paths, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown metric {metric!r}{hint}; `cucm-sim metrics SCENARIO` lists this scenario's"
    per_node, per_link = node_metric(metric), link_metric(metric)
    if per_node is not None or metric in CLUSTER_METRIC_PATHS:
        if not scenario.node_names:
            return f"{metric} is a metric of a cluster; this scenario has one node"
        assert per_node is not None  # a cluster has every cluster metric
        return f"no node is named {per_node[0]!r}; nodes: {', '.join(scenario.node_names)}"
    if per_link is not None and scenario.links:
        return f"no link is named {per_link[0]!r}; links: {', '.join(link.name for link in scenario.links)}"
    if scenario.has_node:
        return f"{metric} is a metric of hosts and links; this scenario has none"
    return f"{metric} is a metric of the CUCM node; this scenario has hosts and links alone"


def check_metrics(scenario: Scenario, metrics: Iterable[tuple[str, str]]) -> None:
    """UserError with one line per (label, metric) whose metric `scenario`'s runs lack: 'label: why'."""
    problems = [f"{label}: {problem}" for label, metric in metrics
                if (problem := metric_problem(scenario, metric)) is not None]
    if problems:
        raise UserError(problems)
