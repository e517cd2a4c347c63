"""`python -m cucm_sim.cli ...`: the same as the `cucm-sim` console script."""

from cucm_sim.cli import main

main()
