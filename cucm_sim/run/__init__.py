"""One run: build a world of node engines for a scenario, run it to its end, summarize typed counters into
the result (the dict summary.json holds).  Returns objects; writes nothing."""
