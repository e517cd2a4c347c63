"""The commands that help write a scenario: `validate` its files, and the reference beside it: the `metrics` an
`expect:` block may bound, the scenario's JSON `schema` and the call-throttling service `params`.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from cucm_sim.cli.app import fail, load_each, stdout, user_errors_exit_2
from cucm_sim.measures.metrics import CLUSTER_METRICS, HOST_METRICS, METRICS, Metric, catalogue, node_metric
from cucm_sim.rules.throttling import ThrottlingParams
from cucm_sim.scenario.loader import load_scenario, unit_of
from cucm_sim.scenario.schema import Scenario


@click.command(short_help="Check scenario files: one line per problem.")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Validate with these overrides.")
def validate(files: tuple[Path, ...], overrides: tuple[str, ...]) -> None:
    """Check scenario FILES; print one line per problem (file, field, value, allowed range)."""
    loaded, problems = load_each(files, overrides)
    for path, _ in loaded:
        stdout.print(Text.assemble(("ok", "green"), f" {path}"), highlight=False, soft_wrap=True)
    if problems:
        fail(problems)


@click.command(short_help="List the metrics an expect: block may bound.")
@click.argument("scenario_file", metavar="[SCENARIO]", required=False,
                type=click.Path(path_type=Path, dir_okay=False))
def metrics(scenario_file: Path | None) -> None:
    """List the metrics an `expect:` block may bound: dotted path, unit, meaning.

    With SCENARIO, those of its parts (a CUCM node's; a cluster's totals, its own metrics and each node's
    nodes.NAME.*; or hosts' and links'); without, every one.
    """
    shown: list[tuple[str, tuple[Metric, ...]]]
    if scenario_file is not None:
        scenario = user_errors_exit_2(lambda: load_scenario(scenario_file, ()))
        names = scenario.node_names
        listed = catalogue(scenario.has_node, [link.name for link in scenario.links], names)
        if names:
            node_of = {metric.path: (node_metric(metric.path) or ("",))[0] for metric in listed}
            shown = [(" of the cluster (its totals)", METRICS), (" of the cluster itself", CLUSTER_METRICS),
                     *((f" of node {name}", tuple(metric for metric in listed if node_of[metric.path] == name))
                       for name in names)]
        else:
            shown = [("", listed)]
    else:
        shown = [("", METRICS), (" of a cluster (beside the metrics above, its totals)", CLUSTER_METRICS),
                 (" of hosts and links", HOST_METRICS)]
    for title, listed in shown:
        table = Table(title=f"Metrics for expect: (dotted paths into summary.json){title}", title_justify="left")
        for header in ("metric", "unit", "meaning"):
            table.add_column(header, overflow="fold")
        for metric in listed:
            table.add_row(metric.path, metric.unit, metric.description)
        stdout.print(table)
    if scenario_file is None:
        stdout.print("A cluster (cluster.nodes) also has nodes.NAME.METRIC for each node NAME and each metric of the "
                     "first table, e.g. nodes.cm2.code_red_entries; `cucm-sim metrics SCENARIO` lists a scenario's.",
                     highlight=False)
    stdout.print("A bound is {min: X}, {max: X}, {min: X, max: Y} or {equals: X}; a metric that did not happen "
                 "(None) fails every bound.", highlight=False)


@click.command(short_help="Print the scenario JSON Schema.")
def schema() -> None:
    """Print the scenario JSON Schema (for editor completion and validation)."""
    click.echo(json.dumps(Scenario.model_json_schema(), indent=2))


@click.command(short_help="Show the call-throttling service parameters.")
def params() -> None:
    """Show the call-throttling service parameters: name, unit, default, range, meaning."""
    stdout.print("[bold]Cisco CallManager service parameters, Call Throttling[/] (scenario section `throttling:`)\n")
    for name, field in ThrottlingParams.model_fields.items():
        unit = "events per 5 s" if name == "max_events_allowed" else unit_of(name)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        allowed = str(extra.get("allowed", ""))
        if not allowed:
            bounds = {type(m).__name__: m for m in field.metadata}
            if "Ge" in bounds and "Le" in bounds:
                allowed = f"{bounds['Ge'].ge}..{bounds['Le'].le}"
            else:
                choices = getattr(field.annotation, "__args__", ())
                allowed = " or ".join([", ".join(choices[:-1]), *choices[-1:]] if len(choices) > 2 else choices)
        line = f"[bold cyan]{name}[/]  default {field.default} {unit}, allowed {allowed} {unit}"
        stdout.print(line.replace(" ,", ",").rstrip(), highlight=False)
        # wrapped by hand: rich's Padding would pad every line with spaces to the full width (ugly in a pipe)
        description = textwrap.fill(field.description or "", width=stdout.width, initial_indent="    ",
                                    subsequent_indent="    ")
        stdout.print(Text(description + "\n"), highlight=False, soft_wrap=True)
