"""The batched engine (``batched``): SimPy keeps the clock, numpy computes a block of seconds at a time."""
