"""Tests of the execution backends (`cucm_sim.studies.backends`): in this process, a local process pool, Dask.

Contract under test (issue 5): every backend yields one Outcome per job, in any order, and the same jobs give
the same summaries (wall time aside) on every backend; a run that raises or a worker that dies becomes an
Outcome with the error (and keeps the exception), never an exception; closing the generator early cancels the
work not yet started; mistakes a user can make choosing a backend are one-line UserErrors.  The run functions
injected here are module-level so that spawned workers can import them by name.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest

from cucm_sim.errors import UserError
from cucm_sim.scenario.schema import Scenario
from cucm_sim.studies import backends
from cucm_sim.studies.backends import (
    Backend,
    Dask,
    InProcess,
    Job,
    LocalPool,
    Outcome,
    error_text,
    open_backend,
    run_job,
)

TINY = Scenario.model_validate({
    "name": "backend-test", "seed": 1, "duration_s": 30,
    "throttling": {"system_throttle_sample_size_s": 5},
    "load": {"background": [{"signals_per_s": 300}], "calls_per_s": 3, "signals_per_call": 10},
    "devices": {"count": 100, "keepalive_interval_s": 10},
    "disturbances": [{"kind": "cpu_slowdown", "start_s": 5, "end_s": 15, "capacity_factor": 0.05}],
})
JOBS = [Job((index,), TINY.model_copy(update={"seed": 100 + index})) for index in range(6)]
SLOW_RUN_S = 0.3


def without_wall(summary: Any) -> dict[str, Any]:
    return {key: value for key, value in summary.items() if key != "wall_s"}


def by_key(outcomes: Iterator[Outcome]) -> dict[tuple[int, ...], Outcome]:
    found: dict[tuple[int, ...], Outcome] = {}
    for outcome in outcomes:
        assert outcome.key not in found, f"{outcome.key} yielded twice"
        found[outcome.key] = outcome
    return found


# Run functions for the tests (importable by name from spawned workers) -------------------------------
def raise_for_key_2(job: Job) -> Outcome:
    """Like run_job, but raises (uncaught, as a buggy run function would) for the job with key (2,)."""
    if job.key == (2,):
        raise RuntimeError("injected failure\nsecond line")
    return run_job(job)


def die_if_told(job: Job) -> Outcome:
    """Kills its worker process when the scenario's description says "die", like the out-of-memory killer would."""
    if job.scenario.description == "die":
        os._exit(3)
    return run_job(job)


def slow_marked(job: Job) -> Outcome:
    """Sleeps SLOW_RUN_S and leaves a marker file in the directory named by the scenario's description."""
    time.sleep(SLOW_RUN_S)
    (Path(job.scenario.description) / f"{job.key[0]}.ran").touch()
    return Outcome(job.key, {"ran": True}, None)


def marked_jobs(directory: Path, count: int) -> list[Job]:
    return [Job((index,), TINY.model_copy(update={"description": str(directory)})) for index in range(count)]


def markers_once_settled(directory: Path) -> int:
    """How many jobs ran, once no more are running (no new marker over a few run lengths)."""
    count = -1
    while count != (count := len(list(directory.glob("*.ran")))):
        time.sleep(4 * SLOW_RUN_S)
    return count


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def reference() -> dict[tuple[int, ...], Outcome]:
    """Every job's outcome, made here, one after another."""
    with InProcess() as backend:
        return by_key(backend.run(JOBS))


@pytest.fixture(scope="module")
def pool() -> Iterator[LocalPool]:
    with LocalPool(2) as backend:
        yield backend


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[Dask]:
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    with Dask.start_local_cluster(2) as backend:
        yield backend
    backend.close()  # a second close does nothing


# ------------------------------------------------------------------ run_job and outcomes
def test_run_job_returns_the_runners_summary(reference: dict[tuple[int, ...], Outcome]) -> None:
    outcome = reference[(3,)]

    assert outcome.ok and outcome.error is None
    assert outcome.summary is not None
    assert outcome.summary["seed"] == 103
    assert outcome.summary["calls_attempted"] > 0


def test_run_job_turns_an_exception_into_an_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_simulate(scenario: Scenario) -> Any:
        raise ValueError("the model broke\nat second 12")

    monkeypatch.setattr(backends, "simulate", broken_simulate)
    outcome = run_job(JOBS[0])

    assert not outcome.ok
    assert outcome.summary is None
    assert outcome.error == "ValueError: the model broke at second 12"


def test_error_text_is_one_line() -> None:
    assert error_text(KeyError("x")) == "KeyError: 'x'"
    assert error_text(RuntimeError()) == "RuntimeError"
    assert error_text(OSError("a\nb\n")) == "OSError: a b"


# ------------------------------------------------------------------ every backend, the same outcomes
def test_in_process_runs_in_order_and_catches_a_raising_run_function() -> None:
    outcomes = list(InProcess().run(JOBS, raise_for_key_2))

    assert [outcome.key for outcome in outcomes] == [job.key for job in JOBS]
    assert outcomes[2].error == "RuntimeError: injected failure second line"
    assert isinstance(outcomes[2].exception, RuntimeError)  # kept, for a caller that raises it again
    assert all(outcome.ok for index, outcome in enumerate(outcomes) if index != 2)


def test_local_pool_gives_the_same_summaries(pool: LocalPool, reference: dict[tuple[int, ...], Outcome]) -> None:
    outcomes = by_key(pool.run(JOBS))

    assert set(outcomes) == set(reference)
    for key, outcome in outcomes.items():
        assert without_wall(outcome.summary) == without_wall(reference[key].summary)
    assert pool.workers == 2 and pool.description == "2 local processes"


def test_local_pool_records_a_raising_run_and_goes_on(pool: LocalPool) -> None:
    outcomes = by_key(pool.run(JOBS, raise_for_key_2))

    assert outcomes[(2,)].error == "RuntimeError: injected failure second line"
    assert isinstance(outcomes[(2,)].exception, RuntimeError)
    assert sum(outcome.ok for outcome in outcomes.values()) == len(JOBS) - 1


@pytest.mark.parametrize("dying", [0, 5])
def test_local_pool_survives_a_dead_worker(pool: LocalPool, dying: int) -> None:
    short = TINY.model_copy(update={"duration_s": 5})
    jobs = [Job((index,), short.model_copy(update={"description": "die" if index == dying else ""}))
            for index in range(14)]
    outcomes = by_key(pool.run(jobs, die_if_told))

    failed = [outcome for outcome in outcomes.values() if not outcome.ok]
    assert set(outcomes) == {job.key for job in jobs}
    assert outcomes[(dying,)] in failed
    assert all(str(outcome.error).startswith("BrokenProcessPool: a worker process died") for outcome in failed)
    assert all(isinstance(outcome.exception, BrokenProcessPool) for outcome in failed)
    # Only the runs handed to the pool before it was seen broken fail with it (a few per worker, depending
    # on timing); the rest run on a fresh pool.
    assert len(failed) <= 2 * pool.workers * backends.JOBS_IN_FLIGHT_PER_WORKER
    assert outcomes[jobs[-1].key].ok
    assert by_key(pool.run(JOBS[:2]))[(1,)].ok  # and the pool is usable afterwards


def test_closing_early_cancels_the_jobs_not_started(pool: LocalPool, tmp_path: Path) -> None:
    jobs = marked_jobs(tmp_path, 30)
    outcomes = pool.run(jobs, slow_marked)
    first = next(outcomes)
    outcomes.close()

    assert first.ok
    assert markers_once_settled(tmp_path) <= 1 + pool.workers * backends.JOBS_IN_FLIGHT_PER_WORKER


def test_dask_local_cluster_gives_the_same_summaries(
    dask_cluster: Dask, reference: dict[tuple[int, ...], Outcome]
) -> None:
    outcomes = by_key(dask_cluster.run(JOBS))

    assert set(outcomes) == set(reference)
    for key, outcome in outcomes.items():
        assert without_wall(outcome.summary) == without_wall(reference[key].summary)
    assert dask_cluster.workers == 2
    assert dask_cluster.description == "Dask LocalCluster, 2 workers"


def test_dask_records_a_raising_run_and_goes_on(dask_cluster: Dask) -> None:
    outcomes = by_key(dask_cluster.run(JOBS, raise_for_key_2))

    assert outcomes[(2,)].error is not None
    assert outcomes[(2,)].error.startswith("RuntimeError: injected failure")
    assert isinstance(outcomes[(2,)].exception, RuntimeError)
    assert sum(outcome.ok for outcome in outcomes.values()) == len(JOBS) - 1


def test_dask_closing_early_cancels_the_rest(dask_cluster: Dask, tmp_path: Path) -> None:
    jobs = marked_jobs(tmp_path, 30)
    outcomes = dask_cluster.run(jobs, slow_marked)
    first = next(outcomes)
    outcomes.close()

    assert first.ok
    assert markers_once_settled(tmp_path) < len(jobs) / 2
    assert by_key(dask_cluster.run(JOBS[:1]))[(0,)].ok  # and the cluster takes new work


def test_dask_local_cluster_listens_on_loopback_only(dask_cluster: Dask) -> None:
    addresses = [dask_cluster._client.scheduler.address, *dask_cluster._client.nthreads()]

    assert all(address.startswith("tcp://127.0.0.1:") for address in addresses), addresses


# ------------------------------------------------------------------ choosing a backend
def test_open_backend_picks_the_backend_asked_for() -> None:
    with open_backend(workers=1) as here, open_backend(workers=3) as local, open_backend() as default:
        assert isinstance(here, InProcess) and here.workers == 1
        assert isinstance(local, LocalPool) and local.workers == 3
        assert isinstance(default, LocalPool) and default.workers == (os.cpu_count() or 1)


@pytest.mark.parametrize(("options", "expected"), [
    ({"scheduler": "tcp://127.0.0.1:1", "dask_local": 2}, "--scheduler and --dask-local given together"),
    ({"workers": 2, "dask_local": 2}, "--workers and --dask-local given together"),
    ({"workers": 0}, "--workers 0: needs at least 1 worker"),
    ({"dask_local": 0}, "--dask-local 0: needs at least 1 worker"),
])
def test_open_backend_refuses_impossible_choices(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(UserError) as excinfo:
        open_backend(**options)

    (problem,) = excinfo.value.problems
    assert problem.startswith(expected)


@pytest.mark.parametrize("option", ["scheduler", "dask_local"])
def test_a_missing_dask_is_a_user_error(monkeypatch: pytest.MonkeyPatch, option: str) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed: importing it fails
    value: Any = "tcp://127.0.0.1:8786" if option == "scheduler" else 2
    with pytest.raises(UserError) as excinfo:
        open_backend(**{option: value})

    flag = "--" + option.replace("_", "-")
    assert excinfo.value.problems == [f"{flag} needs Dask: pip install 'cucm-sim[dask]'"]


def test_an_unreachable_scheduler_is_a_user_error_naming_address_and_timeout() -> None:
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with pytest.raises(UserError) as excinfo:
        open_backend(scheduler=address, scheduler_timeout_s=0.5)

    (problem,) = excinfo.value.problems
    assert problem.startswith(f"--scheduler {address}: cannot reach a Dask scheduler there within 0.5 s")


def test_a_malformed_scheduler_address_is_a_user_error() -> None:
    # refused before Dask is asked (test_scheduler_address.py has the other mistakes)
    with pytest.raises(UserError, match="--scheduler localhost: no port; expected tcp://HOST:PORT"):
        open_backend(scheduler="localhost", scheduler_timeout_s=0.5)


def test_close_is_idempotent() -> None:
    backend: Backend
    for backend in (InProcess(), LocalPool(1)):
        list(backend.run(JOBS[:1]))
        backend.close()
        backend.close()
