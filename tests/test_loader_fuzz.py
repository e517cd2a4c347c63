"""Fuzz tests of the scenario loader and `--set`, through `cucm-sim validate` (issue 11: nothing hangs).

Contract under test: whatever the YAML (generated text, generated data dumped to YAML with anchors and
aliases, deep nesting, huge integers, odd scalars, bytes that are not UTF-8) and whatever the `--set`
strings, `cucm-sim validate FILE [--set X]` ends in exit 0 or 2, prints at most 21 bounded lines on stderr
(each at most errors.MAX_PROBLEM_CHARS after 'error: '), never a traceback, and each example finishes within
seconds.
The pathological inputs of the issue (an alias bomb, 500 nested lists, a 5,000-digit integer, /dev/zero, a
50 MB file) are also run in real processes under a 1 GiB address-space limit.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cucm_sim.cli import main
from cucm_sim.errors import MAX_PROBLEM_CHARS, MAX_PROBLEMS
from cucm_sim.scenario.loader import MAX_INT_DIGITS, MAX_SCENARIO_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES

EXAMPLE_LIMIT_S = 5.0
"""The most one example may take (hypothesis's deadline), parsing and validating included."""
MAX_STDERR_LINES = MAX_PROBLEMS + 1  # the problems shown and the line counting the rest
MAX_LINE_CHARS = MAX_PROBLEM_CHARS + len("error: ")
FUZZ = settings(max_examples=300, deadline=EXAMPLE_LIMIT_S * 1000,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Keys the schema has, at every level, so generated documents reach validation, not only the parser.
KEYS = ["name", "description", "seed", "duration_s", "engine", "throttling", "node", "load", "devices",
        "disturbances", "expect", "sweep", "code_yellow_entry_latency_ms", "system_throttle_sample_size_s",
        "signal_service_time_ms", "distribution", "mean", "cv", "capacity_factor", "background", "calls_per_s",
        "calls_profile", "signals_per_call", "setup_signals_per_call", "holding_time_s", "count", "chatty",
        "kind", "start_s", "end_s", "signals_per_s", "priority", "min", "max", "equals", "grid", "replications",
        "calls_rejected_fraction", "dial_tone_delay_ms.p95", "registered_at_start", "events_per_s"]
SET_KEYS = ["duration_s", "seed", "name", "load.calls_per_s", "load.calls_profile", "load.calls_profile.0",
            "load.background.0.signals_per_s", "load.signals_per_call", "throttling", "node.signal_service_time_ms",
            "node.signal_service_time_ms.mean", "devices.count", "devices.chatty", "disturbances", "disturbances.0",
            "expect.dial_tone_delay_ms.p95.max", "expect.calls_attempted", "sweep.grid", ".duration_s", "a..b",
            "x.", "load.background.\u00b2", "load.background." + "9" * 30, ""]
ODD_SCALARS = ["1e9", "1.5e9", "2E-3", "-.5", ".inf", "-.inf", ".nan", "0x1F", "0o17", "0b101", "0600", "1:30",
               "1:30.5", "~", "null", "yes", "no", "on", "off", "y", "2024-01-01", "2024-01-01 10:00:00", "'60'",
               '"\\e[31m"', '"\\0"', '"\\u2028"', "!!binary aGVsbG8=", "!!set {a}", "!!omap [a: 1]", "!!str 5",
               "!!int 5", "!!float 5", "!!python/name:os.system", "!!timestamp 2024-01-01", "!!int abc", "!!float 1:x",
               "!!timestamp abc", "!!timestamp 2024-13-45", "!!bool maybe", "!!binary '###'", "!!int", "!!omap [a]",
               "!!pairs [{a: 1, b: 2}]", "!!set {[1]: 2}", "!!int [1]", "!!map [1]", "<<: 5", "<<", "=", "*", "&",
               "|\n  text", ">\n  text", "- a", "[", "]", "{", "}", "? a", "%YAML 1.1", "---", "...", "#", "1" * 5000,
               "-" + "9" * 400, "1" * 4301 + ".5", "1e400", "9" * (MAX_INT_DIGITS + 1)]
YAML_ALPHABET = st.sampled_from([*"abkz019.-+:,[]{}&*!|>'\"#%@`?= \t\n", "\x1b", "\x00", "\x85", "\u2028", "\ufeff",
                                 "é", "\udcff"])
SEED_DOCUMENT = "name: x\nduration_s: 60\n"


def validate(tmp: Path, content: str | bytes, *overrides: str) -> None:
    """Run `cucm-sim validate` on `content` (with --set `overrides`) and check the outcome is bounded."""
    scenario_file = tmp / "fuzz.yaml"
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogateescape")
    scenario_file.write_bytes(content)
    args = ["validate", str(scenario_file)]
    for override in overrides:
        args += ["--set", override]
    started = time.perf_counter()
    result = CliRunner().invoke(main, args)
    elapsed_s = time.perf_counter() - started
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}")
    assert result.exit_code in (0, 2), (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) <= MAX_STDERR_LINES, lines
    assert all(len(line) <= MAX_LINE_CHARS for line in lines), max(lines, key=len)
    assert all(line.startswith("error: ") for line in lines), lines
    assert "\x1b" not in result.stderr
    assert (result.exit_code == 2) == bool(lines), result.output
    assert elapsed_s < EXAMPLE_LIMIT_S


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# ------------------------------------------------------------------ generated YAML text
@FUZZ
@given(text=st.text(YAML_ALPHABET, max_size=200), prefix=st.booleans())
def test_arbitrary_yaml_text_is_a_clear_answer(tmp: Path, text: str, prefix: bool) -> None:
    validate(tmp, (SEED_DOCUMENT if prefix else "") + text)


@FUZZ
@given(content=st.binary(max_size=200))
def test_arbitrary_bytes_are_a_clear_answer(tmp: Path, content: bytes) -> None:
    validate(tmp, content)


@FUZZ
@given(lines=st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(ODD_SCALARS), st.sampled_from([0, 0, 0, 1, 2])),
                      max_size=8))
def test_odd_scalars_under_schema_keys_are_a_clear_answer(tmp: Path, lines: list[tuple[str, str, int]]) -> None:
    body = "".join(f"{'  ' * indent}{key}: {value}\n" for key, value, indent in lines)
    validate(tmp, SEED_DOCUMENT + body)


@FUZZ
@given(tag=st.sampled_from(["!!int", "!!float", "!!bool", "!!null", "!!timestamp", "!!binary", "!!str", "!!omap",
                            "!!pairs", "!!set", "!!seq", "!!map", "!!merge", "!!value", "!", "!local",
                            "!!python/none"]),
       value=st.one_of(st.text(YAML_ALPHABET, max_size=30), st.sampled_from(ODD_SCALARS)))
def test_explicit_tags_on_any_value_are_a_clear_answer(tmp: Path, tag: str, value: str) -> None:
    validate(tmp, f"{SEED_DOCUMENT}description: {tag} {value}\n")


# ------------------------------------------------------------------ generated data, dumped to YAML (with aliases)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(), st.text(max_size=20),
    st.sampled_from(["exponential", "lognormal", "cpu_slowdown", "signal_burst", "call_surge", "high", "batched"]),
)


def _share(data: Any, draw: Any) -> Any:
    """`data` with some of its lists and mappings used twice, so yaml.dump writes anchors and aliases."""
    containers: list[Any] = []

    def collect(value: Any) -> None:
        if isinstance(value, list | dict):
            containers.append(value)
            for child in value.values() if isinstance(value, dict) else value:
                collect(child)

    collect(data)
    for target in containers[: draw(st.integers(0, 3))]:
        shared = draw(st.sampled_from(containers))
        if shared is target or _contains(shared, target):
            continue  # a recursive structure: yaml.dump writes it, but it is the next test's business
        if isinstance(target, list):
            target.append(shared)
        else:
            target[draw(st.sampled_from(KEYS))] = shared
    return data


def _contains(haystack: Any, needle: Any) -> bool:
    if haystack is needle:
        return True
    if isinstance(haystack, dict):
        return any(_contains(value, needle) for value in haystack.values())
    if isinstance(haystack, list):
        return any(_contains(value, needle) for value in haystack)
    return False


DATA = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children,
                                               max_size=5)),
    max_leaves=25,
)


@FUZZ
@given(top=st.dictionaries(st.sampled_from(KEYS), DATA, max_size=8), data=st.data())
def test_generated_data_dumped_to_yaml_is_a_clear_answer(tmp: Path, top: dict[str, Any], data: st.DataObject) -> None:
    document = _share({"name": "x", "duration_s": 60, **top}, data.draw)
    validate(tmp, yaml.dump(document, Dumper=yaml.SafeDumper, allow_unicode=True))


# ------------------------------------------------------------------ deep, huge, exploding
@FUZZ
@given(depth=st.integers(1, 20 * MAX_YAML_DEPTH), style=st.sampled_from(["flow-list", "flow-map", "block-list",
                                                                       "block-map"]))
def test_deep_nesting_is_a_clear_answer(tmp: Path, depth: int, style: str) -> None:
    if style == "flow-list":
        body = "description: " + "[" * depth + "]" * depth
    elif style == "flow-map":
        body = "description: " + "{a: " * depth + "1" + "}" * depth
    elif style == "block-list":
        body = "load:\n" + "".join(f"{'  ' * level}-\n" for level in range(1, depth)) + "  " * depth + "- 1"
    else:
        body = "load:\n" + "".join(f"{'  ' * level}a:\n" for level in range(1, depth)) + "  " * depth + "a: 1"
    validate(tmp, f"{SEED_DOCUMENT}{body}\n")


@FUZZ
@given(levels=st.integers(1, 10), fan_out=st.integers(1, 12), where=st.sampled_from(["duration_s", "x", "load"]),
       merge=st.booleans())
def test_alias_bombs_are_a_clear_answer(tmp: Path, levels: int, fan_out: int, where: str, merge: bool) -> None:
    if merge:  # a merge-key bomb: mappings merging mappings
        lines = ["m0: &m0 {a: 1, b: 2, c: 3}"]
        lines += [f"m{level}: &m{level} {{<<: [{', '.join([f'*m{level - 1}'] * fan_out)}], k{level}: 1}}"
                  for level in range(1, levels + 1)]
    else:
        lines = [f"m0: &m0 [{', '.join(['1'] * fan_out)}]"]
        lines += [f"m{level}: &m{level} [{', '.join([f'*m{level - 1}'] * fan_out)}]" for level in range(1, levels + 1)]
    duration = "" if where == "duration_s" else "duration_s: 60\n"
    validate(tmp, "\n".join(lines) + f"\nname: x\n{duration}{where}: *m{levels}\n")


@FUZZ
@given(digits=st.integers(1, 20_000), sign=st.sampled_from(["", "-", "+"]), suffix=st.sampled_from(["", ".5", "e3"]),
       key=st.sampled_from(["duration_s", "seed", "description", "x"]))
def test_huge_numbers_are_a_clear_answer(tmp: Path, digits: int, sign: str, suffix: str, key: str) -> None:
    duration = "" if key == "duration_s" else "duration_s: 9\n"
    validate(tmp, f"name: x\n{key}: {sign}{'7' * digits}{suffix}\n{duration}")


# ------------------------------------------------------------------ --set
SET_VALUES = st.one_of(st.sampled_from(ODD_SCALARS), st.text(YAML_ALPHABET, max_size=40),
                       st.sampled_from(["[[0, 1], [10, 2]]", "{max: 1}", "[1, 2", "{kind: cpu_slowdown}", "",
                                        "&a [*a]", "*a", "[" * 100]))


@FUZZ
@given(overrides=st.lists(st.one_of(
    st.tuples(st.sampled_from(SET_KEYS), SET_VALUES).map(lambda pair: f"{pair[0]}={pair[1]}"),
    st.text(YAML_ALPHABET, max_size=40),
    st.text(max_size=40),
), min_size=1, max_size=3))
def test_arbitrary_set_strings_are_a_clear_answer(tmp: Path, overrides: list[str]) -> None:
    validate(tmp, SEED_DOCUMENT + "load:\n  background:\n    - {name: a, signals_per_s: 1}\n", *overrides)


# ------------------------------------------------------------------ the issue's inputs, in real processes
MEMORY_LIMIT_BYTES = 1 << 30
IN_A_GIB = (  # the child limits its own address space before it imports anything (no preexec_fn, no fork hook)
    "import resource, runpy, sys; "
    f"resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT_BYTES}, {MEMORY_LIMIT_BYTES})); "
    "sys.argv = ['cucm-sim', *sys.argv[1:]]; runpy.run_module('cucm_sim.cli', run_name='__main__')"
)


def _alias_bomb() -> str:
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]" for level in range(1, 9)]
    return "\n".join(lines) + "\nname: x\nduration_s: *a8\n"


REAL_PROCESS_CASES = {
    "alias-bomb": (_alias_bomb(), f"{MAX_YAML_NODES:,}"),
    "500-nested-lists": ("name: x\nduration_s: " + "[" * 500 + "]" * 500 + "\n", f"{MAX_YAML_DEPTH} levels"),
    "5000-digit-integer": ("name: x\nduration_s: " + "9" * 5000 + "\n", f"at most {MAX_INT_DIGITS}"),
    "50-MB-calls-profile": (None, f"{MAX_SCENARIO_BYTES:,} bytes"),
    "dev-zero": (None, f"{MAX_SCENARIO_BYTES:,} bytes"),
}


@pytest.mark.parametrize("case", list(REAL_PROCESS_CASES))
def test_the_issues_inputs_end_in_one_bounded_line_in_a_real_process(tmp_path: Path, case: str) -> None:
    text, says = REAL_PROCESS_CASES[case]
    if case == "dev-zero":
        scenario = Path("/dev/zero")
        if not scenario.exists():
            pytest.skip("no /dev/zero here")
    else:
        scenario = tmp_path / f"{case}.yaml"
        if text is None:  # 50 MB of calls_profile points
            point = "  - [1, 1]\n"
            with scenario.open("w", encoding="utf-8") as stream:
                stream.write("name: x\nduration_s: 60\nload:\n calls_profile:\n")
                stream.write(point * (50_000_000 // len(point)))
        else:
            scenario.write_text(text, encoding="utf-8")

    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", IN_A_GIB, "validate", str(scenario)], capture_output=True,
                          text=True, timeout=60, check=False)
    elapsed_s = time.perf_counter() - started

    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"error: {scenario}"), line
    assert says in line, line
    assert len(line) <= MAX_LINE_CHARS
    assert elapsed_s < 45, elapsed_s  # bounded, not fast: a few seconds alone, on two cores shared with the suite
