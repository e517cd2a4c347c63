"""The `cucm-sim` click group and what its commands share: how a command ends, the consoles, common options.

Exit codes: 0 success, 1 an expectation of `check` failed or some runs of a `sweep` failed, 2 a user error
(bad YAML, unknown key, out-of-range value, missing file, existing output directory): one clear message per
problem on stderr, never a traceback; 130 when interrupted (Ctrl-C, or SIGTERM, which is handled alike).
The commands live beside this module, one module per group (`run`, `scenarios`, `check`, `studies`); the
package's `__init__` adds them to `main`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.text import Text

from cucm_sim import __version__
from cucm_sim.errors import UserError, bounded
from cucm_sim.scenario.loader import load_scenario, scenario_warnings
from cucm_sim.scenario.schema import Scenario
from cucm_sim.scenario.workload import check_run

EXIT_CHECK_FAILED = 1
EXIT_RUNS_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
LOG_WIDTH = 120

stdout = Console()
if not stdout.is_terminal and "COLUMNS" not in os.environ:
    stdout.width = LOG_WIDTH  # CI logs and pipes: rich would assume 80 columns and fold the tables
stderr = Console(stderr=True)
T = TypeVar("T")


# ------------------------------------------------------------------ the group
class _Commands(click.Group):
    """The command group, with what every command shares: SIGTERM is handled like Ctrl-C (what `timeout`, CI
    cancellation and `kill` send), and an interrupt anywhere, the writing of results included, ends in exit
    130; running out of memory or an operating-system error nobody expected is one line and exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        with _sigterm_as_interrupt():
            try:
                return super().invoke(ctx)
            except (KeyboardInterrupt, click.exceptions.Abort):
                stderr.print("interrupted", highlight=False)
                sys.exit(EXIT_INTERRUPTED)
            except MemoryError:
                fail(["out of memory: the run asked for more memory than this machine could give; lower the "
                      "load, shorten duration_s or run fewer workers (docs/limits.md)"])
            except OSError as error:
                if error.errno == errno.EPIPE:
                    raise  # click says nothing for a closed pipe (`cucm-sim ... | head`)
                where = f"{error.filename}: " if error.filename else ""
                fail([f"{where}{error.strerror or error}"])


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises KeyboardInterrupt, as Ctrl-C does (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signal: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="cucm-sim")
def main() -> None:
    """Simulate CUCM call throttling: Code Yellow, Code Red and SCCP device throttling.

    Write a scenario YAML (see scenarios/), then `cucm-sim run SCENARIO`.
    """


# ------------------------------------------------------------------ how a command ends
def fail(problems: list[str]) -> NoReturn:
    """Print each problem on stderr as one 'error:' line and exit 2 (a user error)."""
    for problem in problems:  # user text: never interpreted as rich markup
        stderr.print(Text.assemble(("error:", "bold red"), " ", problem), highlight=False, soft_wrap=True)
    sys.exit(EXIT_USER_ERROR)


def warn(scenario: Scenario, source: str) -> None:
    """Print on stderr what in `scenario` can have no effect (it starts after the run's end)."""
    for warning in scenario_warnings(scenario, source):
        stderr.print(Text.assemble(("warning:", "bold yellow"), " ", bounded(warning)), highlight=False,
                     soft_wrap=True)


def user_errors_exit_2(action: Callable[[], T]) -> T:
    """What `action()` returns; a UserError it raises ends the command (`fail`)."""
    try:
        return action()
    except UserError as error:
        fail(error.problems)


# ------------------------------------------------------------------ options and steps several commands share
ENGINE_OPTION = click.option(
    "--engine", type=click.Choice(["batched", "signal"]), default=None,
    help="Simulation engine, overriding the scenario's: batched (default, fast) or signal (the per-signal "
    "reference, slow).",
)
ALLOW_LARGE_OPTION = click.option(
    "--allow-large", is_flag=True,
    help="Run even when the estimated work passes the limits (memory, wall time, runs in a sweep; "
    "docs/limits.md).",
)


def backend_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--workers, --scheduler and --dask-local: where the runs of a sweep or a capacity search go."""
    for option in reversed((
        click.option("--workers", "-j", type=click.IntRange(1, 1024), default=None,
                     help="Local processes to run on (default: one per CPU; 1 runs here). Results do not depend "
                     "on it."),
        click.option("--scheduler", metavar="tcp://HOST:PORT", default=None,
                     help="Run on the Dask cluster of this scheduler (needs pip install 'cucm-sim[dask]')."),
        click.option("--dask-local", "dask_local", type=click.IntRange(1, 1024), default=None, metavar="N",
                     help="Run on a Dask LocalCluster of N worker processes on this machine (loopback only)."),
    )):
        command = option(command)
    return command


def overrides_with(overrides: Iterable[str], seed: int | None, engine: str | None) -> list[str]:
    """The --set overrides, then --seed and --engine as the overrides they stand for."""
    return [*overrides, *([f"seed={seed}"] if seed is not None else []),
            *([f"engine={engine}"] if engine is not None else [])]


def load_each(files: Iterable[Path], overrides: Sequence[str]) -> tuple[list[tuple[Path, Scenario]], list[str]]:
    """Load every file: the scenarios that load, and every problem of those that do not."""
    loaded: list[tuple[Path, Scenario]] = []
    problems: list[str] = []
    for path in files:
        try:
            loaded.append((path, load_scenario(path, overrides)))
        except UserError as error:
            problems.extend(error.problems)
        else:
            warn(loaded[-1][1], str(path))
    return loaded, problems


def check_work(scenario: Scenario, source: str, allow_large: bool) -> None:
    """Refuse (exit 2) a run whose estimated memory or wall time passes the limits, unless --allow-large."""
    if not allow_large:
        user_errors_exit_2(lambda: check_run(scenario, source))


def safe_name(name: str) -> str:
    """`name` as a folder name: every character but letters, digits, '-', '_' and '.' becomes '_'."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".") or "run"
