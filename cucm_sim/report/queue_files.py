"""signals_by_queue.csv: the signals a CUCM node handled each second, per SDL queue.

timeline.csv keeps the columns users' scripts read, so the split of `signals_processed` by queue (what
Perfmon's QueueSignalsProcessed 1-High..4-Lowest counters show) has a file of its own: `t_s` (the second's
end), then `QUEUE_PROCESSED_COLUMNS`, one row per second; a cluster's leads each row with its `node`, second
by second and the nodes in order, as its timeline.csv.  A run of hosts alone has none.  Read back, the
columns join each node's timeline; a result directory written before the file existed simply lacks them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np

from cucm_sim.errors import UserError
from cucm_sim.measures.timeline import QUEUE_PROCESSED_COLUMNS
from cucm_sim.report.cluster_files import NODE_COLUMN, rows_by_node, rows_by_second
from cucm_sim.report.csv_text import csv_rows, csv_text

SIGNALS_BY_QUEUE: Final = "signals_by_queue.csv"
_HEADER: Final = ("t_s", *QUEUE_PROCESSED_COLUMNS)


def _rows(timeline: Mapping[str, np.ndarray]) -> list[list[str]]:
    columns = [timeline["t_s"], *(timeline[name] for name in QUEUE_PROCESSED_COLUMNS)]
    return [[str(int(value)) for value in row] for row in zip(*(c.tolist() for c in columns), strict=True)]


def signals_by_queue_csv(timeline: Mapping[str, np.ndarray]) -> str:
    """One node's signals_by_queue.csv."""
    return csv_text(_HEADER, _rows(timeline))


def cluster_signals_by_queue_csv(names: Sequence[str], timelines: Sequence[Mapping[str, np.ndarray]]) -> str:
    """A cluster's signals_by_queue.csv: `node` first, second by second, the nodes in order."""
    return csv_text((NODE_COLUMN, *_HEADER), rows_by_second(names, [_rows(timeline) for timeline in timelines]))


def parse_signals_by_queue(text: str, source: str, names: Sequence[str], duration_s: int
                           ) -> dict[str, dict[str, np.ndarray]]:
    """The columns of signals_by_queue.csv per node (one node: under the name ""); UserError naming `source`
    and the line for a file that is not one."""
    body = csv_rows(text, source, [NODE_COLUMN, *_HEADER] if names else list(_HEADER))
    if len(body) != duration_s * max(len(names), 1):
        raise UserError([f"{source}: {len(body)} rows, but the run lasted {duration_s} s"
                         + (f" on {len(names)} nodes" if names else "") + "; the result directory is incomplete"])
    numbered = rows_by_node(body, names, source) if names else {"": list(enumerate(body, start=2))}
    columns: dict[str, dict[str, np.ndarray]] = {}
    for name, node_rows in numbered.items():
        values = np.zeros((len(node_rows), len(QUEUE_PROCESSED_COLUMNS)))
        for k, (line, row) in enumerate(node_rows):
            try:
                values[k] = [int(cell) for cell in row[1:]]
            except ValueError:
                raise UserError([f"{source}: line {line}: a count that is not a whole number"]) from None
        columns[name] = {column: values[:, j] for j, column in enumerate(QUEUE_PROCESSED_COLUMNS)}
    return columns
