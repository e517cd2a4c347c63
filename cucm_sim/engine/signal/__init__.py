"""The per-signal reference engine (``signal``): SimPy processes, one event per SDL signal."""
