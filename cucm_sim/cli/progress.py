"""The progress bars of the commands, on stderr and only on a terminal: simulated seconds, or runs.

`SimulatedTimeBar` follows one run, or a check's runs, in simulated seconds and appears only once the work
has taken a moment; `SweepBar` and `CapacityBar` count the runs of a sweep or a capacity search.  Each is the
progress callback its command hands down, and `close` takes it off the terminal (any number of times).
"""

from __future__ import annotations

import time

from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from cucm_sim.cli.app import stderr
from cucm_sim.studies.sweep import SweepCounts

PROGRESS_AFTER_S = 1.0
"""How long the work of a `SimulatedTimeBar` goes on before the bar appears (s)."""


class SimulatedTimeBar:
    """A progress bar over simulated seconds (`run`, `check`) that appears only once the work has taken
    PROGRESS_AFTER_S, and only on a terminal."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._started = time.perf_counter()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, done_s: float, total_s: float) -> None:
        if self._progress is None:
            if not stderr.is_terminal or time.perf_counter() - self._started < PROGRESS_AFTER_S:
                return
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(),
                TextColumn("{task.completed:.0f}/{task.total:.0f} simulated s"),
                TimeElapsedColumn(), TimeRemainingColumn(), console=stderr, transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self._label, total=total_s)
        assert self._task is not None
        self._progress.update(self._task, completed=done_s)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


class _RunsBar:
    """A progress bar over runs, on a terminal only: a detail (points or probes), runs done of all, runs per
    second (of the runs made now) and, when the total is known, the time left."""

    def __init__(self, label: str, eta: bool) -> None:
        self._label = label
        self._eta = eta
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._started = time.perf_counter()
        self._runs_at_start = 0

    def show(self, runs_done: int, runs_total: int, detail: str) -> None:
        if not stderr.is_terminal:
            return
        if self._progress is None:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"),
                TextColumn("{task.completed:.0f}/{task.total:.0f} runs"), TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(), *([TimeRemainingColumn()] if self._eta else []), console=stderr, transient=True,
            )
            self._progress.start()
            self._runs_at_start = runs_done
            self._task = self._progress.add_task(self._label, total=runs_total, completed=runs_done, detail="",
                                                 rate="")
        assert self._task is not None
        elapsed_s = time.perf_counter() - self._started
        made = runs_done - self._runs_at_start
        rate = f"{made / elapsed_s:.2f} runs/s" if made and elapsed_s > 0 else ""
        self._progress.update(self._task, completed=runs_done, total=runs_total, detail=detail, rate=rate)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


class SweepBar(_RunsBar):
    """A sweep's progress: points and runs done, runs per second, ETA."""

    def __init__(self, label: str) -> None:
        super().__init__(label, eta=True)

    def __call__(self, counts: SweepCounts) -> None:
        self.show(counts.runs_done, counts.runs_total, f"{counts.points_done}/{counts.points_total} points")


class CapacityBar(_RunsBar):
    """A capacity search's progress: probes done, runs done of those started so far, runs per second (no
    ETA: how many probes a search makes is not known ahead)."""

    def __init__(self, label: str) -> None:
        super().__init__(label, eta=False)

    def __call__(self, probes_done: int, runs_done: int, runs_started: int) -> None:
        self.show(runs_done, runs_started, f"{probes_done} probes")
