"""The pytest plugin: `pytest --cucm-scenarios DIR` turns every `expect:` bound into one test item.

Registered through the `pytest11` entry point, so it is active wherever cucm-sim is installed, and does
nothing until `--cucm-scenarios` is given.  Each scenario file becomes a collector whose items are its
expectations; the scenario runs once (over `--cucm-replications` seeds) the first time one of its items
runs, and every item then judges its own bound with the same rule as `cucm-sim check`: a bound passes
only if every replication meets it.  A scenario that does not load is one failing item with the
loader's message.  The package is imported lazily, so pytest runs without the option stay fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from cucm_sim.scenario.readings import Reading
    from cucm_sim.studies.check import Outcome, ScenarioCheck


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the --cucm-* options."""
    group = parser.getgroup("cucm-sim", "cucm-sim scenario expectations")
    group.addoption("--cucm-scenarios", action="append", default=[], metavar="PATH",
                    help="Collect one test per expect: bound of each scenario in PATH (a scenario file, or a "
                    "directory of *.yaml / *.yml, not recursive). Repeatable.")
    group.addoption("--cucm-replications", type=int, default=1, metavar="N",
                    help="Run each scenario N times (its seed, then seeds derived from it); a bound passes only "
                    "if every replication meets it. Default 1.")
    group.addoption("--cucm-workers", type=int, default=1, metavar="N",
                    help="Run the selected scenarios on N processes, all at the first expectation; results do "
                    "not depend on N. Default 1 (each scenario runs when its first expectation does).")
    group.addoption("--cucm-set", action="append", default=[], metavar="KEY=VALUE",
                    help="Override a field of every scenario, e.g. throttling.code_yellow_entry_latency_ms=50.")
    group.addoption("--cucm-all-readings", action="store_true", default=False,
                    help="Run each scenario under all 12 readings of Cisco's ambiguous throttling rules, with the "
                    "same seeds; a bound passes only if it holds under every one (as check --all-readings).")


def pytest_configure(config: pytest.Config) -> None:
    """Add the scenario paths to what pytest collects, and remember which files are scenarios."""
    paths = config.getoption("cucm_scenarios")
    if not paths:
        return
    from cucm_sim.errors import UserError
    from cucm_sim.scenario.loader import scenario_files

    if config.getoption("cucm_replications") < 1 or config.getoption("cucm_workers") < 1:
        raise pytest.UsageError("--cucm-replications and --cucm-workers must be at least 1")
    base = Path(config.invocation_params.dir)
    try:
        files = scenario_files(base / path for path in paths)
    except UserError as error:
        raise pytest.UsageError("--cucm-scenarios: " + "; ".join(error.problems)) from None
    config.stash[_SCENARIO_FILES] = frozenset(path.resolve() for path in files)
    config.args.extend(str(path.resolve()) for path in files)


_SCENARIO_FILES = pytest.StashKey[frozenset[Path]]()
_SELECTED = pytest.StashKey[list["ScenarioFile"]]()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Remember the scenarios whose expectations survived selection (-k, -m), for --cucm-workers."""
    parents = (item.parent for item in items if isinstance(item, Expectation))
    config.stash[_SELECTED] = [parent for parent in dict.fromkeys(parents) if isinstance(parent, ScenarioFile)]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    """Claim the scenario files named by --cucm-scenarios (and no other YAML file)."""
    if file_path.resolve() in parent.config.stash.get(_SCENARIO_FILES, frozenset()):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    """A scenario file: one item per expectation; runs its scenario once, when the first item needs it."""

    def collect(self) -> Iterator[pytest.Item]:
        """The scenario's expectations, or one failing item when the scenario does not load."""
        from cucm_sim.errors import UserError
        from cucm_sim.scenario.loader import load_scenario

        try:
            scenario = load_scenario(self.path, self.config.getoption("cucm_set"))
        except UserError as error:
            yield InvalidScenario.from_parent(self, name="scenario", problems=error.problems)
            return
        self._scenario = scenario
        self._check: ScenarioCheck | BaseException | None = None
        for metric in scenario.expect:
            yield Expectation.from_parent(self, name=metric, metric=metric)

    def check(self) -> ScenarioCheck:
        """The scenario's check, run on first use and shared by its items (a crash is shared too)."""
        from cucm_sim.studies.check import check_scenario

        if self._check is None and self.config.getoption("cucm_workers") > 1:
            _check_in_parallel(self.config)
        if self._check is None:
            try:
                self._check = check_scenario(
                    self._scenario, str(self.path), self.config.getoption("cucm_replications"),
                    _readings(self.config),
                )
            except Exception as error:  # an internal error: every item reports it, the scenario is not rerun
                self._check = error
        if isinstance(self._check, BaseException):
            raise self._check
        return self._check


def _check_in_parallel(config: pytest.Config) -> None:
    """Run every selected scenario not yet checked, on --cucm-workers processes, and hand out the results."""
    from cucm_sim.studies.check import check_scenarios

    pending = [node for node in config.stash.get(_SELECTED, []) if node._check is None]
    try:
        checks = check_scenarios([(str(node.path), node._scenario) for node in pending],
                                 config.getoption("cucm_replications"), workers=config.getoption("cucm_workers"),
                                 readings=_readings(config))
    except Exception as error:  # an internal error: every pending item reports it
        for node in pending:
            node._check = error
        return
    for node, check in zip(pending, checks, strict=True):
        node._check = check


def _readings(config: pytest.Config) -> tuple[Reading, ...]:
    """Every reading under --cucm-all-readings; none (the scenario's own) otherwise."""
    from cucm_sim.scenario.readings import ALL_READINGS

    return ALL_READINGS if config.getoption("cucm_all_readings") else ()


class ExpectationMissedError(Exception):
    """An expectation's bound was missed; carries the outcome for the failure message."""

    def __init__(self, check: ScenarioCheck, outcome: Outcome) -> None:
        super().__init__(outcome.metric)
        self.check = check
        self.outcome = outcome


class Expectation(pytest.Item):
    """One `expect:` bound of one scenario."""

    def __init__(self, *, metric: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metric = metric

    def runtest(self) -> None:
        """Judge this bound on the scenario's (shared) run."""
        assert isinstance(self.parent, ScenarioFile)
        check = self.parent.check()
        outcome = next(outcome for outcome in check.outcomes if outcome.metric == self.metric)
        if not outcome.passed:
            raise ExpectationMissedError(check, outcome)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | Any:
        """A readable failure: scenario, bound, measured value(s), by how much, and each seed's value."""
        if not isinstance(excinfo.value, ExpectationMissedError):
            return super().repr_failure(excinfo, style=style)
        from cucm_sim.studies.check import ALL_READINGS_RULE, PASS_RULE

        check, outcome = excinfo.value.check, excinfo.value.outcome
        lines = [
            f"scenario {check.scenario.name!r} ({check.source}): expected {outcome.metric} {outcome.bound.describe()}",
            f"  measured: {outcome.describe_measured()}",
            f"  {outcome.describe_result()}",
        ]
        if len(outcome.values) > 1:
            lines.append(f"  ({ALL_READINGS_RULE if outcome.readings else PASS_RULE})")
        lines += [f"  {line}" for line in outcome.describe_replications()]
        return "\n".join(lines)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the item comes from, for pytest's reports."""
        return self.path, None, f"{self.path.name}::{self.metric}"


class InvalidScenario(pytest.Item):
    """A scenario file that does not load: fails with the loader's one-line-per-problem message."""

    def __init__(self, *, problems: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.problems = problems

    def runtest(self) -> None:
        """Fail: the scenario is invalid."""
        raise pytest.fail("\n".join(self.problems), pytrace=False)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the item comes from, for pytest's reports."""
        return self.path, None, f"{self.path.name}: invalid scenario"
