"""Many runs: execution backends (the one worker pool; Dask stays here), expectation checks and their JUnit
report, sweep grids, sweeps and capacity searches."""
