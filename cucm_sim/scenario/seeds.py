"""Seeds derived from a scenario's seed: replications (and later sweep points) that never overlap.

Every derived seed comes from numpy's `SeedSequence` with the scenario seed as entropy and the indices as
its spawn key, so the seed of replication k does not depend on how many replications were asked for,
on the order runs finish in, or on the machine that runs them.  Replication 0 is the scenario's own seed,
so a single-run check reproduces `cucm-sim run` exactly.
"""

from __future__ import annotations

import numpy as np


def derive_seed(root_seed: int, *indices: int) -> int:
    """A 64-bit seed for the run at `indices` (e.g. point, replication) below `root_seed`."""
    if root_seed < 0 or any(index < 0 for index in indices):
        raise ValueError(f"seeds and indices must be non-negative, got {root_seed} and {indices}")
    sequence = np.random.SeedSequence(root_seed, spawn_key=tuple(indices))
    return int(sequence.generate_state(1, np.uint64)[0])


def replication_seeds(root_seed: int, replications: int) -> list[int]:
    """Seeds of `replications` independent runs: the scenario's own seed, then derived ones."""
    if replications < 1:
        raise ValueError(f"replications must be at least 1, got {replications}")
    return [root_seed, *(derive_seed(root_seed, index) for index in range(1, replications))]
