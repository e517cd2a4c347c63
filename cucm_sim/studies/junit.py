"""JUnit XML for `cucm-sim check --junit`: one test case per expectation, so any CI shows the results.

One `<testsuite>` per scenario file, one `<testcase>` per expectation named after the metric and its
bound; a failing bound carries a `<failure>` whose message is the same text the check table shows, and
whose body lists every replication's seed and value.  Written atomically (`files.write_bytes_atomically`),
with the standard library's XML writer so every value is escaped.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from cucm_sim.report.files import check_file_target, write_bytes_atomically
from cucm_sim.studies.check import PASS_RULE, ScenarioCheck


def junit_tree(checks: Sequence[ScenarioCheck]) -> ET.ElementTree[ET.Element]:
    """The JUnit document for `checks`."""
    root = ET.Element("testsuites", name="cucm-sim check")
    for check in checks:
        suite = ET.SubElement(root, "testsuite", {
            "name": check.source,
            "tests": str(len(check.outcomes)),
            "failures": str(sum(not outcome.passed for outcome in check.outcomes)),
            "errors": "0",
            "time": f"{check.wall_s:.3f}",
        })
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="scenario", value=check.scenario.name)
        ET.SubElement(properties, "property", name="seeds", value=" ".join(map(str, check.seeds)))
        ET.SubElement(properties, "property", name="rule", value=PASS_RULE)
        for outcome in check.outcomes:
            case = ET.SubElement(suite, "testcase", {
                "classname": f"cucm-sim.{check.scenario.name}",
                "name": f"{outcome.metric} {outcome.bound.describe()}",
                "time": "0",
            })
            if not outcome.passed:
                failure = ET.SubElement(case, "failure", {
                    "message": f"{outcome.metric} {outcome.bound.describe()}: measured "
                    f"{outcome.describe_measured()}; {outcome.describe_result()}",
                    "type": "ExpectationFailed",
                })
                failure.text = "\n".join(outcome.describe_replications())
    ET.indent(root)
    return ET.ElementTree(root)


def check_junit_path(path: Path) -> None:
    """UserError unless `path` can be written (its folder exists and takes a file): call it before a long check."""
    check_file_target(path, "--junit")


def write_junit(checks: Sequence[ScenarioCheck], path: Path) -> None:
    """Write the JUnit document for `checks` to `path` atomically; UserError if it cannot be written."""
    check_junit_path(path)
    document = io.BytesIO()
    junit_tree(checks).write(document, encoding="utf-8", xml_declaration=True)
    write_bytes_atomically(path, document.getvalue())
