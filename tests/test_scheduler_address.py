"""`--scheduler ADDRESS`: a malformed address is refused at once, and no failure to connect prints a traceback.

Dask given `tcp://localhost` (no port) waited out its timeout, blamed reachability, then printed
"Exception ignored ... Traceback" from its half-made client 20 s later; given `tls://...` without a TLS
configuration it raised a TypeError with a traceback.  The address is now checked before Dask is imported,
and every failure to connect ends in one line and exit code 2.  Only loopback addresses are used; nothing
listens on port 9 (discard) in a test environment.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from cucm_sim.errors import UserError
from cucm_sim.studies.backends import SCHEDULER_TIMEOUT_S, open_backend, scheduler_address

REPO = Path(__file__).resolve().parent.parent
BASELINE = REPO / "scenarios" / "baseline.yaml"
EXPECTED_FORM = "expected tcp://HOST:PORT (or tls://, ws://, wss://), e.g. tcp://127.0.0.1:8786"


@pytest.mark.parametrize(("address", "problem"), [
    ("tcp://localhost", "no port"),
    ("tcp://127.0.0.1:", "no port"),
    ("localhost", "no port"),
    ("tcp://[::1]", "no port"),
    ("tcp://:8786", "no host"),
    ("", "no host"),
    ("tcp://127.0.0.1:0", "port 0 is not between 1 and 65535"),
    ("tcp://127.0.0.1:65536", "port 65536 is not between 1 and 65535"),
    ("tcp://127.0.0.1:http", "port 'http' is not a number"),
    ("http://127.0.0.1:8786", "unknown scheme 'http://'"),
    ("inproc://127.0.0.1:8786", "unknown scheme 'inproc://'"),
    ("tcp://127.0.0.1:8786/status", "there is more to it than SCHEME://HOST:PORT"),
    ("tcp://user@127.0.0.1:8786", "there is more to it than SCHEME://HOST:PORT"),
    ("tcp://::1:8786", "an IPv6 host goes in brackets, as in tcp://[::1]:8786"),
    ("tcp://[::1:8786", "its brackets do not match"),
    ("tcp://127.0.0.1:8786 ", "it contains white space"),
])
def test_a_malformed_address_is_refused_in_one_line_naming_option_value_and_form(address: str, problem: str) -> None:
    started = time.monotonic()
    with pytest.raises(UserError) as caught:
        open_backend(scheduler=address)
    assert time.monotonic() - started < 1.0, "refused without waiting for a timeout"
    assert caught.value.problems == [f"--scheduler {address}: {problem}; {EXPECTED_FORM}"]


@pytest.mark.parametrize(("address", "normalised"), [
    ("tcp://127.0.0.1:8786", "tcp://127.0.0.1:8786"),
    ("127.0.0.1:8786", "tcp://127.0.0.1:8786"),  # Dask's default scheme
    ("TCP://localhost:1", "tcp://localhost:1"),
    ("tls://scheduler.example:65535", "tls://scheduler.example:65535"),
    ("ws://[::1]:8786", "ws://[::1]:8786"),
    ("wss://127.0.0.1:443", "wss://127.0.0.1:443"),
])
def test_a_well_formed_address_is_taken(address: str, normalised: str) -> None:
    assert scheduler_address(address) == normalised


def sweep_on(address: str, out_dir: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    command = [sys.executable, "-m", "cucm_sim.cli", "sweep", str(BASELINE), "--grid", "load.calls_per_s=1",
               "--set", "duration_s=10", "--scheduler", address, "--out", str(out_dir)]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=SCHEDULER_TIMEOUT_S + 60, check=False)
    return result, time.monotonic() - started


def assert_one_clean_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    for fragment in fragments:
        assert fragment in line, line


def test_cli_refuses_an_address_without_a_port_at_once(tmp_path: Path) -> None:
    result, took_s = sweep_on("tcp://localhost", tmp_path / "out")
    assert_one_clean_line(result, "--scheduler tcp://localhost: no port", EXPECTED_FORM)
    assert took_s < SCHEDULER_TIMEOUT_S / 2, "refused before any attempt to connect"


def test_cli_on_a_tls_address_without_tls_settings_ends_in_one_line(tmp_path: Path) -> None:
    result, took_s = sweep_on("tls://127.0.0.1:9", tmp_path / "out")
    assert_one_clean_line(result, "--scheduler tls://127.0.0.1:9: cannot connect to a Dask scheduler there")
    assert took_s < SCHEDULER_TIMEOUT_S + 10


@pytest.mark.slow
def test_cli_on_an_unreachable_address_ends_in_one_line_within_the_timeout(tmp_path: Path) -> None:
    result, took_s = sweep_on("tcp://127.0.0.1:9", tmp_path / "out")
    assert_one_clean_line(result, "--scheduler tcp://127.0.0.1:9: cannot reach a Dask scheduler there within 10 s")
    assert took_s < SCHEDULER_TIMEOUT_S + 10
