"""A cluster run's rows: which rows of timeline.csv and alarms.csv are whose, and in what order.

A cluster's timeline.csv and alarms.csv hold a single node's columns after a first column, `node`
(`output` formats and reads the cells, as for one node).  timeline.csv goes second by second, each second's
rows in the cluster's node order; alarms.csv goes in time order, the alarms of one instant in node order and
then in their node's own order.  Read back, each node gets its own rows, and the cluster's state in a second
is its worst node's (Normal < Code Yellow < Code Red), as `run.cluster` makes it.  Pure: text cells in and
out, no files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from cucm_sim.errors import UserError
from cucm_sim.rules.alarms import Alarm
from cucm_sim.rules.throttling import ThrottleState
from cucm_sim.run.cluster import NodeRun

NODE_COLUMN: Final = "node"
"""The first column of a cluster's timeline.csv and alarms.csv: the node's name."""
_SEVERITY: Final = {state.value: rank for rank, state in enumerate(ThrottleState)}

NumberedRow = tuple[int, list[str]]
"""A row of a CSV file with its line number (the header is line 1), for messages."""


def rows_by_second(names: Sequence[str], rows_per_node: Sequence[Sequence[list[str]]]) -> list[list[str]]:
    """Every node's rows (one per second, in the same seconds) as one list, second by second, each row led
    by its node's name."""
    return [[name, *row] for second in zip(*rows_per_node, strict=True)
            for name, row in zip(names, second, strict=True)]


def alarms_in_order(nodes: Sequence[NodeRun]) -> list[tuple[str, Alarm]]:
    """Every node's alarms with the node's name, in time order: ties in node order, then each node's own."""
    tagged = [(alarm.t_s, k, n, node.name, alarm) for k, node in enumerate(nodes)
              for n, alarm in enumerate(node.alarms)]
    return [(name, alarm) for _t, _k, _n, name, alarm in sorted(tagged, key=lambda item: item[:3])]


def rows_by_node(rows: Sequence[list[str]], names: Sequence[str], source: str) -> dict[str, list[NumberedRow]]:
    """timeline.csv's data rows (node column first) as each node's rows, without the node column; UserError
    naming `source` and the line unless they go second by second, the nodes in order, each second's rows at
    one time (second column, t_s)."""
    by_node: dict[str, list[NumberedRow]] = {name: [] for name in names}
    for index, row in enumerate(rows):
        line = index + 2
        expected = names[index % len(names)]
        if row[0] != expected:
            raise UserError([f"{source}: line {line}: {NODE_COLUMN}: {row[0]!r}, expected {expected!r} (the rows go "
                             f"second by second, each second's nodes in the cluster's order: {', '.join(names)})"])
        first = rows[index - index % len(names)]
        if row[1] != first[1]:
            raise UserError([f"{source}: line {line}: t_s: {row[1]!r}, but this second's first row (line "
                             f"{line - index % len(names)}) says {first[1]!r}"])
        by_node[expected].append((line, row[1:]))
    if len(rows) % len(names):
        raise UserError([f"{source}: {len(rows)} rows: the last second lacks some of the {len(names)} nodes"])
    return by_node


def node_of_alarm(cell: str, names: Sequence[str], source: str, line: int) -> str:
    """alarms.csv's node cell, checked: one of the cluster's `names`; UserError naming `source` and `line`."""
    if cell not in names:
        raise UserError([f"{source}: line {line}: {NODE_COLUMN}: {cell!r} is not a node of the cluster "
                         f"({', '.join(names)})"])
    return cell


def worst_states(states: Sequence[np.ndarray]) -> np.ndarray:
    """The cluster's state in each second: the worst of its nodes' `states` (arrays of state names)."""
    ranks = np.max([[_SEVERITY[str(state)] for state in node_states] for node_states in states], axis=0)
    names = [state.value for state in ThrottleState]
    return np.array([names[rank] for rank in ranks.tolist()], dtype=str)
