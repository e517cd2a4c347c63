"""The node engines by name: what a scenario's `engine` field chooses, in place of an `if` in the runner.

A new engine registers here with the factory that builds it and the random streams it draws from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cucm_sim.engine.batched.node import BatchedNodeModel
from cucm_sim.engine.interface import EngineFactory
from cucm_sim.engine.signal.node import NodeModel


@dataclass(frozen=True)
class EngineEntry:
    """How to build one kind of engine, and the names of its random streams (their order fixes the seeds)."""

    build: EngineFactory
    stream_names: tuple[str, ...]


ENGINES: Final[dict[str, EngineEntry]] = {
    "batched": EngineEntry(BatchedNodeModel, BatchedNodeModel.stream_names),
    "signal": EngineEntry(NodeModel, NodeModel.stream_names),
}


def engine_named(name: str) -> EngineEntry:
    """The engine called `name` (the schema allows only registered names)."""
    return ENGINES[name]
