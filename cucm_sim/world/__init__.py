"""The world: one shared SimPy clock, the node engines on it, and the phones, which belong to the world.

`phones` owns each node's phones (their device table, home node and CM group, registration storms) and
how they react to what a node reports; `world` builds N node engines of any registered kind on one
clock, seeds node k from `SeedSequence(seed, spawn_key=(k,))` (a one-node world from the scenario's seed
itself, so every existing result stays the same), routes each alarm to the phones at the alarm's own
time, and runs the clock.
"""
