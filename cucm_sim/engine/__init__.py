"""Node engines: what simulates one CUCM node's router thread on a shared clock.

`interface` states what every engine offers the world and the registry of engines; `vocabulary` the
constants both engines share (priorities, device states, random streams); `second_end` the end of every
simulated second, one definition for both.  `signal/` is the per-signal SimPy reference, `batched/` the
fast block engine: two independent implementations of the same rules, never importing each other.
"""
