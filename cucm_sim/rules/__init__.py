"""Cisco's rules, pure: call throttling (Code Yellow, Code Red), the SCCP event limiter, the alarms.

Nothing here reads a clock or draws a random number: every rule takes an explicit `now`.  The bottom
layer above `errors`: everything else may import it, it imports nothing of the package.
"""
