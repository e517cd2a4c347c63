"""Pools of worker processes that end with the process that started them, and stop at once when told.

A `ProcessPoolExecutor` of spawned workers outlives its parent when the parent is killed (SIGKILL, the
out-of-memory killer): every worker holds both ends of the pool's queues, so none ever reads end-of-file,
and they wait for work forever; multiprocessing's resource tracker, whose pipe every worker holds open,
waits with them.  `process_pool` makes pools whose workers watch their parent (`end_with_parent`) and exit
within `PARENT_POLL_S` of its death; once they have, nothing holds the resource tracker's pipe and it
exits too.  `stop_pool` ends a pool: after the work is done it lets runs in progress finish; after an
interrupt or an error it terminates the workers, so that neither the caller nor the interpreter's exit
(which joins the pool's manager thread) waits for runs whose results nobody will read.

Standard library only: `backends.LocalPool`, the one local pool, is made with it.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Final

PARENT_POLL_S: Final = 0.5
"""How often a worker looks whether its parent is still there (s): the most an orphan lives on."""
STOP_GRACE_S: Final = 2.0
"""How long `stop_pool(at_once=True)` gives a terminated worker to end before killing it (s)."""
ORPHAN_EXIT_CODE: Final = 1


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` spawned processes that each end when this process does (see `end_with_parent`).

    Spawned, not forked: the caller may have threads (a progress bar), and fork would copy their locks.
    """
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=end_with_parent, initargs=(os.getpid(),))


def end_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this process as soon as `parent_pid` is no longer its parent (POSIX).

    A process whose parent dies is adopted by init (or a subreaper), so its parent pid changes.  It is
    checked once at once (the parent may have died while this process started) and then every
    `PARENT_POLL_S` by a daemon thread, which ends the process with `os._exit` even while a run is in
    progress: its result could go nowhere.  Linux's PR_SET_PDEATHSIG is not used: it fires when the
    *thread* that started the worker ends, and a pool starts workers lazily from whichever thread submits,
    so a pool used from a short-lived thread would lose its workers while its owner lives on.
    """
    if os.getppid() != parent_pid:
        os._exit(ORPHAN_EXIT_CODE)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="cucm-sim-watch-parent", daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent_pid:
            os._exit(ORPHAN_EXIT_CODE)


def stop_pool(pool: ProcessPoolExecutor, *, at_once: bool = False) -> None:
    """Shut `pool` down; work not started is cancelled either way.

    Without `at_once`, runs in progress are waited for.  With it (after an interrupt or an error: their
    results would be thrown away), the workers are terminated (SIGTERM, then SIGKILL after `STOP_GRACE_S`)
    and waited for, so that they are gone when this returns and the pool's manager thread ends at once.
    """
    if not at_once:
        pool.shutdown(wait=True, cancel_futures=True)
        return
    # No public way to reach the workers before Python 3.14 (terminate_workers); shutdown drops the map.
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            worker.kill()
            worker.join()
