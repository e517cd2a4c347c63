"""Regression test (seed-pinned golden digests, not a proof of correctness): same seed, same bytes.

For the nine library scenarios on both engines (the signal engine over its first 300 s), `timeline.csv`
and `alarms.csv` hash to the digests the outputs of commit 2c338ae had, and `summary.json` holds that
commit's values (`wall_s` aside).  `tests/golden/outputs.json` was written by
`python benchmarks/compare_outputs.py 2c338ae --digests tests/golden/outputs.json`; the same script
compares the working tree with any other commit.  A change that means to change results must say so
and rewrite the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from cucm_sim import load_scenario, simulate, write_results

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = json.loads((ROOT / "tests" / "golden" / "outputs.json").read_text(encoding="utf-8"))
RUNS: dict[str, Any] = GOLDEN["runs"]


@pytest.mark.slow
@pytest.mark.parametrize("run", sorted(RUNS), ids=str)
def test_outputs_match_the_golden_digests(run: str, tmp_path: Path) -> None:
    stem, engine = run.split("/")
    overrides = [f"engine={engine}"]
    if engine == "signal":
        overrides.append(f"duration_s={GOLDEN['signal_s']}")
    result = simulate(load_scenario(ROOT / "scenarios" / f"{stem}.yaml", overrides))
    write_results(result, tmp_path / "out", plots=False)
    expected = RUNS[run]
    for name in ("timeline.csv", "alarms.csv"):
        digest = hashlib.sha256((tmp_path / "out" / name).read_bytes()).hexdigest()
        assert digest == expected[name], f"{run}: {name} differs from {GOLDEN['commit']}'s"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    summary.pop("wall_s")
    assert summary == expected["summary"]
