"""Where many runs happen: here, on a pool of local processes, or on a Dask cluster, behind one interface.

The only worker pool: `sweep`, `capacity` and `check` all hand their runs to a backend.  A `Job` is one run
to make (a key such as (point, replication) and a scenario with a concrete seed); an `Outcome` is what came
of it: the run's summary, or the error it raised.  A `Backend` takes jobs and yields outcomes as runs
finish, in any order; a run that raises, or whose worker process dies, becomes an Outcome with the error,
never an exception, so a caller can record it and go on (or raise it again: the Outcome keeps it).  Results
never depend on the backend or the number of workers: every seed is fixed in the job before it is handed
over.

- `InProcess` runs the jobs here, one after another, in order (one worker, no pool).
- `LocalPool` runs them on a `ProcessPoolExecutor` of spawned processes (default: one per CPU), which end
  when this process does, however it ends (`processes.process_pool`).
- `Dask` sends them to a Dask scheduler (`--scheduler tcp://HOST:PORT`) or to a `LocalCluster` it starts on
  the loopback interface (`--dask-local N`).  Dask is an optional extra: it is imported only here, and only
  when a Dask backend is asked for.

Closing the generator `run` returns (the consumer stopped, an exception, Ctrl-C) cancels the work not yet
started; leaving a backend's `with` block by an exception also stops the runs in progress.  `open_backend`
turns the command line's choice into a backend; every mistake a user can make there is a `UserError` with
one line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import urlsplit

from cucm_sim.errors import UserError
from cucm_sim.run.simulation import simulate
from cucm_sim.scenario.schema import Scenario
from cucm_sim.studies.processes import process_pool, stop_pool

SCHEDULER_TIMEOUT_S: Final = 10.0
"""How long `open_backend` waits to reach a Dask scheduler before giving up (s)."""
SCHEDULER_SCHEMES: Final = ("tcp", "tls", "ws", "wss")
"""The network transports of `distributed` a scheduler address may name (not inproc: that is this process;
not ucx: it needs packages Dask does not install)."""
JOBS_IN_FLIGHT_PER_WORKER: Final = 2
"""Jobs handed to a local pool ahead of time, per process: enough to keep every process busy, few enough
that a dying process takes at most this many innocent runs with it and cancelling leaves little running."""
DASK_MISSING: Final = "pip install 'cucm-sim[dask]'"


@dataclass(frozen=True)
class Job:
    """One run to make: `key` names it (e.g. (point, replication)); `scenario` carries a concrete seed."""

    key: tuple[int, ...]
    scenario: Scenario


@dataclass(frozen=True)
class Outcome:
    """What came of a job: the runner's summary (the dict summary.json holds), or the error it raised."""

    key: tuple[int, ...]
    summary: Mapping[str, Any] | None
    error: str | None
    exception: BaseException | None = field(default=None, compare=False, repr=False)
    """The exception itself, when the run function raised it rather than reporting it (as `run_job` does):
    for a caller that stops at the first failure and raises it again (`check`)."""

    @property
    def ok(self) -> bool:
        """True when the run finished (it has a summary and no error)."""
        return self.error is None and self.summary is not None


RunFunction = Callable[[Job], Outcome]
"""Makes one job's run.  For a process pool or Dask it must be importable by name (a module-level function)."""


def run_job(job: Job) -> Outcome:
    """Simulate `job.scenario` and return its summary; any Exception becomes an Outcome with the error."""
    try:
        return Outcome(job.key, dict(simulate(job.scenario).summary), None)
    except Exception as error:  # a failed run is a result to record, not a reason to stop the others
        return Outcome(job.key, None, error_text(error))


def error_text(error: BaseException) -> str:
    """'ExceptionType: message' on one line (line breaks in the message become spaces)."""
    message = " ".join(str(error).split("\n")).strip()
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


class Backend(ABC):
    """Runs jobs and yields their outcomes as they finish, in any order.  A context manager; `close` may be
    called any number of times."""

    workers: int
    """How many runs can go at once."""
    description: str
    """Where the runs go, for people: '2 local processes', 'Dask LocalCluster, 2 workers', ..."""

    @abstractmethod
    def run(self, jobs: Sequence[Job], run: RunFunction = run_job) -> Generator[Outcome, None, None]:
        """Make every job's run with `run`; yield one Outcome per job as each finishes.  Never raises for a
        failed run or a dead worker (that is an Outcome with an error); closing the generator early cancels
        the jobs not yet started."""

    def close(self, *, at_once: bool = False) -> None:  # noqa: B027 (deliberately empty: nothing to free here)
        """Free the backend's processes or connections (idempotent).  `at_once`: do not wait for runs in
        progress (after an interrupt or an error nobody will read their results)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        # Left by an exception (Ctrl-C, SIGTERM, a failed write): the runs still going are of no use.
        self.close(at_once=error is not None)


class InProcess(Backend):
    """One worker: the runs happen here, one after another, in the order given."""

    def __init__(self) -> None:
        self.workers = 1
        self.description = "1 process (this one)"

    def run(self, jobs: Sequence[Job], run: RunFunction = run_job) -> Generator[Outcome, None, None]:
        """Run each job here, in order (see `Backend.run`)."""
        for job in jobs:
            try:
                outcome = run(job)
            except Exception as error:  # a `run` that raises instead of reporting: still an outcome
                outcome = Outcome(job.key, None, error_text(error), error)
            yield outcome


class LocalPool(Backend):
    """`workers` spawned processes on this machine (a `ProcessPoolExecutor`), started on first use and kept
    until `close`, so consecutive `run` calls (a capacity search's probes) pay the start-up once."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = _at_least_one(workers if workers is not None else os.cpu_count() or 1, "--workers")
        self.description = f"{self.workers} local process{'es' if self.workers != 1 else ''}"
        self._pool: ProcessPoolExecutor | None = None

    def run(self, jobs: Sequence[Job], run: RunFunction = run_job) -> Generator[Outcome, None, None]:
        """Run the jobs on the pool, a few per process ahead at a time (see `Backend.run`)."""
        waiting = deque(jobs)
        in_flight: dict[Future[Outcome], tuple[Job, ProcessPoolExecutor]] = {}
        try:
            while waiting or in_flight:
                while waiting and len(in_flight) < self.workers * JOBS_IN_FLIGHT_PER_WORKER:
                    job = waiting.popleft()
                    future, pool = self._submit(run, job)
                    in_flight[future] = (job, pool)
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    job, pool = in_flight.pop(future)
                    yield self._outcome(job, future, pool)
        finally:
            for future in in_flight:
                future.cancel()

    def _submit(self, run: RunFunction, job: Job) -> tuple[Future[Outcome], ProcessPoolExecutor]:
        for _ in range(2):
            if self._pool is None:
                self._pool = process_pool(self.workers)  # spawned workers that end with this process
            try:
                return self._pool.submit(run, job), self._pool
            except BrokenProcessPool:  # a worker died and no outcome has told us yet: start a fresh pool
                self._discard(self._pool)
        raise RuntimeError("a fresh process pool refused work")

    def _outcome(self, job: Job, future: Future[Outcome], pool: ProcessPoolExecutor) -> Outcome:
        error = future.exception()
        if error is None:
            return future.result()
        if isinstance(error, KeyboardInterrupt):
            raise KeyboardInterrupt  # Ctrl-C reached the worker too: the run was interrupted, not failed
        if isinstance(error, BrokenProcessPool):
            self._discard(pool)
            return Outcome(job.key, None, "BrokenProcessPool: a worker process died (killed, or out of memory) "
                                          "while this run was in flight; the run itself may not be at fault", error)
        return Outcome(job.key, None, error_text(error), error)

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        # Every future of a broken pool fails; the jobs not yet submitted go to a fresh pool.  Only the
        # current pool is replaced: the failed futures of an older one must not discard its successor.
        if pool is self._pool:
            pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self, *, at_once: bool = False) -> None:
        """Stop the processes: jobs not started are cancelled; runs in progress are waited for, or, `at_once`,
        their workers are terminated (see `processes.stop_pool`)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            stop_pool(pool, at_once=at_once)


class Dask(Backend):
    """Runs on a Dask cluster through a `distributed.Client`; use `connect` or `start_local_cluster`.

    The client and cluster are typed Any: Dask is optional (not importable where it is not installed) and
    its API is only partly typed.
    """

    def __init__(self, client: Any, cluster: Any, description: str) -> None:
        self._client: Any = client
        self._cluster: Any = cluster
        self.workers = max(1, sum(client.nthreads().values()))
        self.description = description

    @classmethod
    def connect(cls, address: str, timeout_s: float = SCHEDULER_TIMEOUT_S) -> Dask:
        """A backend on the scheduler at `address` (tcp://HOST:PORT, see `scheduler_address`); UserError, at
        once, if the address is malformed, and if it cannot be reached within `timeout_s` (s)."""
        address = scheduler_address(address)
        distributed = _import_distributed("--scheduler")
        made: list[Any] = []

        class _Client(distributed.Client):  # type: ignore[misc,name-defined]
            """A Client that remembers itself before it connects, so that one failing half-way can be closed."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                made.append(self)
                super().__init__(*args, **kwargs)

        try:
            client = _Client(address, timeout=timeout_s, set_as_default=False)
        except Exception as error:  # a scheduler out of reach, or a connection Dask cannot set up (TLS unset)
            # A Client that raised anything but OSError is left open, and when collected its __del__ waits
            # 20 s and prints "Exception ignored ... Traceback": close it here, where that is quick.
            for half_made in made:
                with contextlib.suppress(Exception):
                    half_made.close(timeout=timeout_s)
            made.clear()
            problem = (f"cannot reach a Dask scheduler there within {timeout_s:g} s"
                       if isinstance(error, OSError | TimeoutError) else "cannot connect to a Dask scheduler there")
            raise UserError([f"--scheduler {address}: {problem} ({error_text(error)})"]) from None
        made.clear()
        workers = sum(client.nthreads().values())
        return cls(client, None, f"Dask at {address}, {workers} worker thread{'s' if workers != 1 else ''}")

    @classmethod
    def start_local_cluster(cls, workers: int) -> Dask:
        """A backend on a Dask LocalCluster of `workers` single-threaded processes, on the loopback interface
        only and without a dashboard."""
        workers = _at_least_one(workers, "--dask-local")
        distributed = _import_distributed("--dask-local")
        # silence_logs: the workers log a WARNING for every task cancelled under them (a Ctrl-C, an early
        # close); that is expected here, so only errors reach the terminal.
        with _sigint_ignored_by_children():
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                               host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR)
        try:
            client = distributed.Client(cluster, set_as_default=False)
        except BaseException:
            cluster.close()
            raise
        return cls(client, cluster, f"Dask LocalCluster, {workers} worker{'s' if workers != 1 else ''}")

    def run(self, jobs: Sequence[Job], run: RunFunction = run_job) -> Generator[Outcome, None, None]:
        """Submit every job to the scheduler and yield outcomes as they finish (see `Backend.run`)."""
        distributed = _import_distributed("Dask")
        if self._client is None:
            raise RuntimeError("this Dask backend is closed")
        client = self._client
        pending: dict[Any, Job] = {client.submit(run, job, pure=False): job for job in jobs}
        try:
            for future in distributed.as_completed(list(pending), loop=client.loop):
                job = pending.pop(future)
                try:
                    outcome: Outcome = future.result()
                except Exception as error:  # the run raised, its worker died (KilledWorker), or it was lost
                    outcome = Outcome(job.key, None, error_text(error), error)
                yield outcome
        finally:
            if pending:
                client.cancel(list(pending))

    def close(self, *, at_once: bool = False) -> None:
        """Close the client and, if this backend started one, its LocalCluster (which ends its workers,
        runs in progress or not, so `at_once` changes nothing here)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def scheduler_address(address: str) -> str:
    """The Dask scheduler address `address` as SCHEME://HOST:PORT, or UserError saying what is wrong with it.

    SCHEME is one of `SCHEDULER_SCHEMES` (Dask's network transports; without one, Dask assumes tcp and so
    does this), HOST a name or an address (an IPv6 one in brackets) and PORT a number from 1 to 65535.
    Checked before Dask is imported or anything is contacted: given a mistake such as a missing port, Dask
    itself waits out its timeout and then prints a traceback from its half-made client.
    """
    scheme, separator, rest = address.partition("://")
    scheme = scheme.lower() if separator else "tcp"
    rest = rest if separator else address
    try:
        parts = urlsplit(f"{scheme}://{rest}")
    except ValueError:  # "[::1:80": an opening bracket without its closing one
        parts = None
    netloc = "" if parts is None else parts.netloc
    host, colon, port = netloc.rpartition(":")
    if not colon or (host.startswith("[") and not host.endswith("]")):  # no port, or the colon was inside [...]
        host, port = netloc, ""
    if parts is None:
        problem = "its brackets do not match"
    elif scheme not in SCHEDULER_SCHEMES:
        problem = f"unknown scheme {scheme + '://'!r}"
    elif any(character.isspace() for character in address):
        problem = "it contains white space"
    elif "@" in parts.netloc or "://" in rest or parts.path or parts.query or parts.fragment:
        problem = "there is more to it than SCHEME://HOST:PORT"
    elif ":" in host and not host.startswith("["):
        problem = "an IPv6 host goes in brackets, as in tcp://[::1]:8786"
    elif not host or parts.hostname is None:
        problem = "no host"
    elif not port:
        problem = "no port"
    elif not (port.isascii() and port.isdigit()):
        problem = f"port {port!r} is not a number"
    elif not 1 <= int(port) <= 65535:
        problem = f"port {port} is not between 1 and 65535"
    else:
        return f"{scheme}://{rest}"
    raise UserError([f"--scheduler {address}: {problem}; expected tcp://HOST:PORT (or tls://, ws://, wss://), "
                     "e.g. tcp://127.0.0.1:8786"])


def open_backend(workers: int | None = None, scheduler: str | None = None, dask_local: int | None = None,
                 *, scheduler_timeout_s: float = SCHEDULER_TIMEOUT_S) -> Backend:
    """The backend the command line asks for: `scheduler` (a Dask address), `dask_local` (a LocalCluster of
    that many workers), or `workers` local processes (1: in this process; None: one per CPU).  At most one
    of the three; UserError for a conflict, a count below 1, a missing Dask, a malformed scheduler address
    (refused before Dask is imported) or a scheduler that cannot be reached."""
    given = [name for name, value in (("--workers", workers), ("--scheduler", scheduler),
                                      ("--dask-local", dask_local)) if value is not None]
    if len(given) > 1:
        raise UserError([f"{' and '.join(given)} given together; choose one place to run: --workers N (local "
                         "processes), --scheduler tcp://HOST:PORT (a Dask cluster) or --dask-local N"])
    if scheduler is not None:
        return Dask.connect(scheduler, scheduler_timeout_s)
    if dask_local is not None:
        return Dask.start_local_cluster(dask_local)
    if workers is not None and _at_least_one(workers, "--workers") == 1:
        return InProcess()
    return LocalPool(workers)


@contextlib.contextmanager
def _sigint_ignored_by_children() -> Iterator[None]:
    """Ignore SIGINT while child processes start, so that they inherit the ignoring.

    A Ctrl-C on a terminal goes to every process of the foreground group.  Dask's worker processes would
    each die of it with a traceback; ignoring it, they leave it to this process, which cancels the work and
    closes the cluster (that ends them).  A Ctrl-C while the cluster starts (a second or two) is ignored too.
    Only the main thread may change signal handling; elsewhere nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _at_least_one(count: int, option: str) -> int:
    if count < 1:
        raise UserError([f"{option} {count}: needs at least 1 worker"])
    return count


def _import_distributed(option: str) -> Any:
    try:
        import distributed
    except ImportError:
        raise UserError([f"{option} needs Dask: {DASK_MISSING}"]) from None
    return distributed
