"""The tally step of the batched engine: a computed block's per-second counts and its readings at second ends.

A block covers whole seconds (a span) or part of one (a second in pieces).  `tally` counts, for each
second (row) the block touches, the services started and their waits, the services ended, the call
attempts and rejections; and at each second's end inside the block it reads the queue depths, the
oldest waiting arrival, the registered phones and the SCCP closures so far.  `delay_ms` turns a row
into the expected-delay sample the throttling rules read.  Pure: nothing changes until the block is
committed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cucm_sim.engine.batched.arrivals import PrimaryArrivals
from cucm_sim.engine.batched.decide import Decisions, calls_made
from cucm_sim.engine.batched.device_states import registered_counts
from cucm_sim.engine.batched.state import NodeSnapshot
from cucm_sim.engine.second_end import expected_delay_ms
from cucm_sim.rules.priorities import QUEUES
from cucm_sim.sdl.block import BlockPlan


@dataclass
class Rows:
    """A block's per-second tallies: counts for each second (row) it touches, readings at each row end in it."""

    first_row: int
    starts: np.ndarray
    wait_s: np.ndarray
    processed: np.ndarray
    processed_by_queue: np.ndarray
    """(QUEUES, rows): `processed` per queue."""
    attempted: np.ndarray
    rejected: np.ndarray
    end_rows: list[int]
    """Rows whose end lies in the block, with, for each: queue depths, oldest waiting arrival (s; None: none
    waits), registered devices and SCCP closures so far."""
    depths: list[list[int]]
    oldest_s: list[float | None]
    registered: list[int]
    skinny: list[int]

    def add_earlier_piece(self, piece: Rows) -> None:
        """Add the counts of an earlier piece of this block's first second (a second cut in pieces)."""
        self.starts[0] += piece.starts[0]
        self.wait_s[0] += piece.wait_s[0]
        self.processed[0] += piece.processed[0]
        self.processed_by_queue[:, 0] += piece.processed_by_queue[:, 0]
        self.attempted[0] += piece.attempted[0]
        self.rejected[0] += piece.rejected[0]


def counts_per_row(times_s: np.ndarray, inner_s: np.ndarray) -> np.ndarray:
    """How many of the sorted `times_s` fall in each row, the rows being cut at `inner_s` (sorted)."""
    cut = np.concatenate(([0], np.searchsorted(times_s, inner_s, side="left"), [len(times_s)]))
    return np.diff(cut)


def counts_and_sums_per_row(
    times_s: np.ndarray, values: np.ndarray, inner_s: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`counts_per_row`, and per row the sum of the `values` of its times."""
    cut = np.concatenate(([0], np.searchsorted(times_s, inner_s, side="left"), [len(times_s)]))
    running = np.empty(len(values) + 1)
    running[0] = 0.0
    np.cumsum(values, out=running[1:])
    return np.diff(cut), np.diff(running[cut])


def tally(
    node: NodeSnapshot, t0_s: float, t1_s: float, plan: BlockPlan | None, primary: PrimaryArrivals,
    d: Decisions | None,
) -> Rows:
    """Per-second counts of the block [t0_s, t1_s) and the readings at each second's end inside it.

    `plan` and `d` None: the node is down (no service, every queue empty).
    """
    first_row = math.floor(t0_s)
    rows = math.ceil(t1_s) - first_row
    inner_s = np.arange(first_row + 1, first_row + rows, dtype=float)  # second boundaries inside

    starts, wait_s = np.zeros(rows, dtype=np.int64), np.zeros(rows)
    by_queue = np.zeros((QUEUES, rows), dtype=np.int64)
    if plan is not None:
        for q, served in enumerate(plan.served):
            for run in served.runs():  # start_s and end_s are sorted within a run
                start_s, end_s = served.start_s[run], served.end_s[run]
                started_in_row, waited_s = counts_and_sums_per_row(start_s, served.wait_s[run], inner_s)
                starts += started_in_row
                wait_s += waited_s
                by_queue[q] += counts_per_row(end_s[:np.searchsorted(end_s, t1_s, side="left")], inner_s)
        if node.uncounted_end_s is not None and node.uncounted_end_s < t1_s:
            by_queue[node.uncounted_queue, min(math.floor(node.uncounted_end_s) - first_row, rows - 1)] += 1
    processed = by_queue.sum(axis=0)
    rejected = counts_per_row(np.array(d.rejected_s), inner_s) if d is not None else np.zeros(rows, dtype=np.int64)
    attempted = counts_per_row(calls_made(node.constants, primary, d), inner_s)
    counted = Rows(first_row, starts, wait_s, processed, by_queue, attempted, rejected.astype(np.int64),
                   [], [], [], [], [])
    ends_s = np.arange(math.floor(t0_s) + 1, math.floor(t1_s) + 1, dtype=float)
    if not len(ends_s):
        return counted
    counted.end_rows = [int(e) - 1 for e in ends_s]
    closed_s = np.array([t for t, _, _ in d.closures] if d is not None else [])
    counted.skinny = (node.devices_closed + np.searchsorted(closed_s, ends_s, side="left")).tolist()
    if plan is None or d is None:
        counted.depths = [[0] * QUEUES for _ in ends_s]
        counted.oldest_s = [None for _ in ends_s]
        counted.registered = [node.registered for _ in ends_s]
        return counted
    started, depths = [], []
    for q, queue in enumerate(node.router.queues):
        served = plan.served[q]
        begun = np.zeros(len(ends_s), dtype=np.int64)
        for run in served.runs():
            begun += np.searchsorted(served.start_s[run], ends_s, side="left")
        started.append(begun)
        arrived = sum((np.searchsorted(run_s, ends_s, side="left") for run_s in plan.arrived_s[q]),
                      np.zeros(len(ends_s), dtype=np.int64))
        depths.append(len(queue) + arrived - begun)
    counted.depths = np.array(depths).T.tolist()
    for k in range(len(ends_s)):
        oldest: float | None = None
        if not starts[counted.end_rows[k] - first_row] and any(counted.depths[k]):
            for q, queue in enumerate(node.router.queues):
                if counted.depths[k][q]:
                    position = int(started[q][k])
                    head_s = (queue.arrival_at(position) if position < len(queue) else float(
                        np.sort(np.concatenate(plan.arrived_s[q]), kind="stable")[position - len(queue)]))
                    oldest = head_s if oldest is None else min(oldest, head_s)
        counted.oldest_s.append(oldest)
    counted.registered = registered_counts(node.device_states, node.registered, d.changes, ends_s,
                                           side="left").tolist()
    return counted


def delay_ms(rows: Rows, index: int, end_index: int | None = None) -> float:
    """The expected-delay sample (ms) for row `index` of a tally (its end: reading `end_index`)."""
    end_index = index if end_index is None else end_index
    return expected_delay_ms(int(rows.starts[index]), float(rows.wait_s[index]), rows.oldest_s[end_index],
                             float(rows.end_rows[end_index] + 1))
