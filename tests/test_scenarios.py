"""The scenario library: every scenario the issue names ships, validates and documents itself.

What each scenario claims about its own run lives in its `expect:` block, and `cucm-sim check
scenarios/` judges those (over replications, too).  The fast tests here check the library's shape: the
files exist, validate, open with a header comment and carry a non-empty `expect:` block, and the
entry-latency-50 variant differs from cpu_starvation.yaml in that one parameter only.  The one slow test
holds the claims no single `expect:` block can state, because they compare two scenarios run with the
same seed.
"""

from __future__ import annotations

import itertools
import pathlib

import pytest
from click.testing import CliRunner

from cucm_sim import Scenario, load_scenario, simulate
from cucm_sim.cli import main
from cucm_sim.scenario.schema import CpuSlowdown

SCENARIOS = pathlib.Path(__file__).resolve().parent.parent / "scenarios"
FILES = sorted(SCENARIOS.glob("*.yaml"))
ISSUE_SCENARIOS = {
    "baseline",
    "flash_crowd",
    "cpu_starvation",
    "routing_loop",
    "code_red",
    "sccp_chatty_device",
    "cold_start_registration",
    "throttling_disabled",
    "cpu_starvation_entry_latency_50",
}
HEADER_MIN_LINES = 5


def test_the_issue_s_scenarios_ship() -> None:
    missing = ISSUE_SCENARIOS - {path.stem for path in FILES}
    assert not missing, f"scenarios/ lacks {sorted(missing)}"


def test_every_scenario_validates() -> None:
    result = CliRunner().invoke(main, ["validate", *map(str, FILES)])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == len(FILES)


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_scenario_documents_itself(path: pathlib.Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = list(itertools.takewhile(lambda line: line.startswith("#"), lines))
    assert len(header) >= HEADER_MIN_LINES, f"{path.name}: open with a header comment saying what it teaches"
    assert any(len(line) > 40 for line in header), f"{path.name}: the header should be prose"
    scenario = load_scenario(path)
    assert scenario.name == path.stem.replace("_", "-")
    assert scenario.description
    assert scenario.seed is not None, f"{path.name}: a shipped scenario has a fixed seed"
    assert scenario.expect, f"{path.name}: needs a non-empty expect: block"


def test_entry_latency_50_variant_changes_only_the_entry_latency() -> None:
    default = load_scenario(SCENARIOS / "cpu_starvation.yaml")
    variant = load_scenario(SCENARIOS / "cpu_starvation_entry_latency_50.yaml")
    assert default.throttling.code_yellow_entry_latency_ms == 20
    assert variant.throttling.code_yellow_entry_latency_ms == 50
    unchanged = {"name", "description", "expect"}
    variant_as_default = variant.model_copy(
        update={"throttling": variant.throttling.model_copy(update={"code_yellow_entry_latency_ms": 20})}
    )
    assert variant_as_default.model_dump(exclude=unchanged) == default.model_dump(exclude=unchanged)


def _until_the_job_ends(scenario: Scenario) -> Scenario:
    """The scenario cut off when its backup job ends: the comparisons below are about the job, and the
    healthy time after it only adds run time (a third of it)."""
    end_s = max(disturbance.end_s for disturbance in scenario.disturbances if isinstance(disturbance, CpuSlowdown))
    return Scenario.model_validate({**scenario.model_dump(), "duration_s": int(end_s)})


@pytest.mark.slow
def test_throttling_and_its_entry_latency_compared_on_the_same_load() -> None:
    """The same backup job and the same seed: throttling off, at 20 ms (Cisco's default) and at 50 ms."""
    enabled, disabled, relaxed = (
        simulate(_until_the_job_ends(load_scenario(SCENARIOS / f"{name}.yaml"))).summary
        for name in ("cpu_starvation", "throttling_disabled", "cpu_starvation_entry_latency_50")
    )
    # Same seed, same calls offered: the call arrivals do not depend on the throttling state.
    assert disabled["calls_attempted"] == enabled["calls_attempted"] == relaxed["calls_attempted"]
    # What throttling protects: without it dial tone waits far longer.
    assert disabled["dial_tone_delay_ms"]["p95"] > 5 * enabled["dial_tone_delay_ms"]["p95"]
    # The entry-latency trade: at 50 ms fewer and shorter Code Yellow episodes and fewer rejected calls,
    # paid for with slower dial tone.
    assert relaxed["code_yellow_entries"] < enabled["code_yellow_entries"]
    assert relaxed["longest_code_yellow_s"] < enabled["longest_code_yellow_s"]
    assert relaxed["calls_rejected_throttled"] < enabled["calls_rejected_throttled"]
    assert relaxed["dial_tone_delay_ms"]["p95"] > enabled["dial_tone_delay_ms"]["p95"]
