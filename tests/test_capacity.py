"""The capacity search (`cucm_sim.studies.capacity`): its condition, its bisection and its checks, then the real thing;
how its result is shown and written (`cucm_sim.report.capacity`).

The bisection is tested with run functions that stand in for the simulator and whose answer is known
exactly: a step at a known value, a noisy step whose replications trip at known thresholds (common random
numbers), and one whose verdicts are fresh coin flips.  They run through the real back ends (`InProcess`,
and one subclass that claims more workers to exercise k-section).  The done-when test runs the simulator:
on a router thread that is an M/M/1 queue the search must find the load queueing theory predicts.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import random
from collections.abc import Callable, Generator, Sequence
from typing import Any

import pytest

from cucm_sim import Scenario
from cucm_sim.errors import UserError
from cucm_sim.measures.confidence import safe_trip_rate_bound
from cucm_sim.report.capacity import (
    CapacityResult,
    Condition,
    capacity_json,
    capacity_plot,
    confidence_rule,
    describe_capacity,
    probes_csv,
)
from cucm_sim.report.sweep_plots import capacity_figure
from cucm_sim.scenario.seeds import replication_seeds
from cucm_sim.studies.backends import InProcess, Job, Outcome, RunFunction, open_backend, run_job
from cucm_sim.studies.capacity import CapacityRunError, search

BASE: dict[str, Any] = {"name": "capacity-test", "seed": 11, "duration_s": 60,
                        "load": {"calls_per_s": 1.0, "background": [{"signals_per_s": 10}]}}
CALLS = "load.calls_per_s"


def _calls(job: Job) -> float:
    rate = job.scenario.load.calls_per_s
    assert rate is not None
    return rate


def _summary(entries: int, **extra: Any) -> dict[str, Any]:
    return {"code_yellow_entries": entries, **extra}


def step_run(knee: float, value_of: Callable[[Job], float] = _calls, calls: list[Job] | None = None) -> RunFunction:
    """A stand-in for the simulator: Code Yellow (one entry) exactly when the value is above `knee`."""
    def run(job: Job) -> Outcome:
        if calls is not None:
            calls.append(job)
        return Outcome(job.key, _summary(int(value_of(job) > knee)), None)
    return run


def never_run(job: Job) -> Outcome:
    raise AssertionError(f"nothing should run, but {job.key} did")


class ManyWorkers(InProcess):
    """Runs here like InProcess but claims `workers` (to exercise k-section); records every batch's size."""

    def __init__(self, workers: int) -> None:
        super().__init__()
        self.workers = workers
        self.batches: list[int] = []

    def run(self, jobs: Sequence[Job], run: RunFunction = run_job) -> Generator[Outcome, None, None]:
        self.batches.append(len(jobs))
        yield from super().run(jobs, run)


# ------------------------------------------------------------------ the condition
@pytest.mark.parametrize(("text", "metric", "op", "threshold"), [
    ("code_yellow_entries > 0", "code_yellow_entries", ">", 0.0),
    ("signal_wait_ms.mean>=1.5", "signal_wait_ms.mean", ">=", 1.5),
    ("  calls_rejected_fraction <= 0.02  ", "calls_rejected_fraction", "<=", 0.02),
    ("first_code_yellow_entry_s < 6e2", "first_code_yellow_entry_s", "<", 600.0),
    ("code_red_entries == 1", "code_red_entries", "==", 1.0),
    ("skinny_devices_throttled != -3", "skinny_devices_throttled", "!=", -3.0),
])
def test_condition_parses_metric_operator_and_number(text: str, metric: str, op: str, threshold: float) -> None:
    condition = Condition.parse(text)
    assert (condition.metric, condition.op, condition.threshold) == (metric, op, threshold)
    assert Condition.parse(str(condition)) == condition


@pytest.mark.parametrize(("text", "says"), [
    ("", "not a condition"),
    ("code_yellow_entries", "not a condition"),
    ("code_yellow_entries >> 0", "not a condition"),
    ("code_yellow_entries => 0", "not a condition"),
    ("> 0", "not a condition"),
    ("code_yellow_entries > 0 and code_red_entries > 0", "not a condition"),
    ("code_yellow_entry > 0", "unknown metric 'code_yellow_entry' (did you mean 'code_yellow_entries'?)"),
    ("dial_tone_delay_ms.p97 > 5", "unknown metric 'dial_tone_delay_ms.p97'"),
    ("code_yellow_entries > many", "'many' is not a finite number"),
    ("code_yellow_entries > nan", "'nan' is not a finite number"),
    ("signal_wait_ms.mean < inf", "'inf' is not a finite number"),
])
def test_a_bad_condition_is_one_line_naming_the_text_and_what_is_allowed(text: str, says: str) -> None:
    with pytest.raises(UserError) as caught:
        Condition.parse(text)
    [line] = caught.value.problems
    assert f"--until {text!r}" in line
    assert says in line
    assert "one of > >= < <= == !=" in line and "cucm-sim metrics" in line


def test_condition_holds_on_the_summary_and_a_metric_that_did_not_happen_compares_false() -> None:
    summary = {"first_code_yellow_entry_s": None, "code_yellow_entries": 0, "signal_wait_ms": {"mean": 1.25}}
    for op in (">", ">=", "<", "<=", "==", "!="):
        assert not Condition("first_code_yellow_entry_s", op, 600.0).holds(summary)
    assert Condition.parse("signal_wait_ms.mean > 1").holds(summary)
    assert not Condition.parse("signal_wait_ms.mean > 1.25").holds(summary)
    assert Condition.parse("signal_wait_ms.mean >= 1.25").holds(summary)
    assert Condition.parse("code_yellow_entries == 0").holds(summary)
    assert not Condition.parse("code_yellow_entries != 0").holds(summary)
    assert Condition.parse("code_yellow_entries < 0.5").holds(summary)


def test_the_confidence_rule_and_its_numbers() -> None:
    # A value that trips in a fraction p of runs passes R runs with probability (1-p)^R: at the bound, 5 %.
    for replications, bound_pct in ((1, 95), (5, 45), (10, 26), (20, 14)):
        bound = safe_trip_rate_bound(replications)
        assert (1 - bound) ** replications == pytest.approx(0.05)
        assert round(bound * 100) == bound_pct
        assert f"fewer than {bound_pct} % of runs" in confidence_rule(replications)
    assert "every one of its 5 replications" in confidence_rule(5)


# ------------------------------------------------------------------ the bisection on known answers
def test_a_step_is_found_within_the_tolerance_with_the_probes_it_made() -> None:
    calls: list[Job] = []
    result = search(BASE, CALLS, 1, 200, "code_yellow_entries > 0", 3, InProcess(), tolerance=0.5,
                    run=step_run(37.3, calls=calls))
    assert result.status == "found"
    assert result.highest_safe is not None and result.lowest_tripped is not None
    assert result.highest_safe <= 37.3 < result.lowest_tripped
    assert result.lowest_tripped - result.highest_safe <= 0.5
    assert result.capacity == result.highest_safe
    # lo and hi first, together; then one probe per round (one worker), each the midpoint of the bracket.
    assert [probe.value for probe in result.probes[:3]] == [1.0, 200.0, 100.5]
    assert [probe.round for probe in result.probes] == [0, 0, *range(1, len(result.probes) - 1)]
    assert [probe.order for probe in result.probes] == list(range(1, len(result.probes) + 1))
    assert len(result.probes) == 2 + math.ceil(math.log2(199 / 0.5))
    assert len(calls) == result.runs == 3 * len(result.probes)
    for probe in result.probes:
        assert probe.safe == (probe.value <= 37.3)
        assert probe.tripped_runs == (probe.value > 37.3,) * 3
        assert probe.metric_values == (float(probe.value > 37.3),) * 3 or probe.metric_values == (
            int(probe.value > 37.3),) * 3
    assert result.tolerance == 0.5 and not result.integer


def test_the_default_tolerance_is_a_64th_of_the_range() -> None:
    result = search(BASE, CALLS, 8, 72, "code_yellow_entries > 0", 1, InProcess(), run=step_run(50.0))
    assert result.tolerance == 1.0
    assert result.highest_safe is not None and result.lowest_tripped is not None
    assert result.highest_safe <= 50.0 < result.lowest_tripped <= result.highest_safe + 1.0
    assert result.rounds == 1 + 6  # lo and hi, then six halvings of 64


def test_the_condition_already_true_at_lo_and_never_true_up_to_hi() -> None:
    at_lo = search(BASE, CALLS, 5, 50, "code_yellow_entries > 0", 2, InProcess(), run=step_run(1.0))
    assert at_lo.status == "trips_at_lo"
    assert (at_lo.highest_safe, at_lo.lowest_tripped) == (None, 5.0)
    assert [probe.value for probe in at_lo.probes] == [5.0, 50.0]  # nothing more to learn
    assert "already holds at load.calls_per_s = 5" in describe_capacity(at_lo)[0]

    at_hi = search(BASE, CALLS, 5, 50, "code_yellow_entries > 0", 2, InProcess(), run=step_run(80.0))
    assert at_hi.status == "safe_at_hi"
    assert (at_hi.highest_safe, at_hi.lowest_tripped) == (50.0, None)
    assert [probe.value for probe in at_hi.probes] == [5.0, 50.0]
    assert "never held up to load.calls_per_s = 50" in describe_capacity(at_hi)[0]


def test_an_integer_key_is_searched_in_whole_numbers() -> None:
    def devices(job: Job) -> float:
        return job.scenario.devices.count

    exact = search(BASE, "devices.count", 0, 5000, "code_yellow_entries > 0", 2, InProcess(), tolerance=1,
                   run=step_run(1234, devices))
    assert exact.integer
    assert (exact.highest_safe, exact.lowest_tripped) == (1234, 1235)
    assert all(type(probe.value) is int for probe in exact.probes)
    assert json.loads(capacity_json(exact))["highest_safe"] == 1234

    default = search(BASE, "devices.count", 0, 5000, "code_yellow_entries > 0", 2, InProcess(),
                     run=step_run(1234, devices))
    assert default.tolerance == 78  # floor(5000 / 64): whole numbers
    assert default.highest_safe is not None and default.lowest_tripped is not None
    assert default.highest_safe <= 1234 < default.lowest_tripped <= default.highest_safe + 78

    with pytest.raises(UserError, match="at least 1"):
        search(BASE, "devices.count", 0, 5000, "code_yellow_entries > 0", 2, InProcess(), tolerance=0.5,
               run=never_run)


def test_k_section_probes_several_points_per_round_when_workers_exceed_replications() -> None:
    backend = ManyWorkers(workers=12)  # 3 replications: k = 12 // 3 = 4 probes per round
    result = search(BASE, CALLS, 0, 100, "code_yellow_entries > 0", 3, backend, tolerance=0.1,
                    run=step_run(61.7))
    assert result.probes_per_round == 4
    assert result.highest_safe is not None and result.lowest_tripped is not None
    assert result.highest_safe <= 61.7 < result.lowest_tripped <= result.highest_safe + 0.1
    # The first round: lo, hi and (12 // 3 - 2) = 2 inner points, all at once; then 4 points a round.
    assert backend.batches == [4 * 3] * len(backend.batches)
    rounds = [[probe.value for probe in result.probes if probe.round == index] for index in range(result.rounds)]
    assert rounds[0] == pytest.approx([0, 100 / 3, 200 / 3, 100])
    assert rounds[1] == pytest.approx([100 / 3 + step * 100 / 15 for step in range(1, 5)])
    # Each round divides the bracket by 5: from 100/3 down to 0.1 takes ceil(log5(333.3)) = 4 rounds.
    assert result.rounds == 1 + math.ceil(math.log(100 / 3 / 0.1, 5))
    assert "4 probes per round on 12 workers" in describe_capacity(result)[-2]


def test_k_section_on_whole_numbers_takes_every_one_left_when_few_remain() -> None:
    def devices(job: Job) -> float:
        return job.scenario.devices.count

    backend = ManyWorkers(workers=8)  # 1 replication: 8 probes per round
    result = search(BASE, "devices.count", 0, 40, "code_yellow_entries > 0", 1, backend, tolerance=1,
                    run=step_run(29, devices))
    assert (result.highest_safe, result.lowest_tripped) == (29, 30)
    values = [probe.value for probe in result.probes]
    assert len(values) == len(set(values)), "a whole number was probed twice"
    assert result.rounds == 2  # 10 values in round 0 leave (26, 31): the four between are probed in round 1


def test_a_noisy_condition_with_common_random_numbers_is_bracketed_where_the_rule_puts_it() -> None:
    """Replication r trips when its own uniform u_r (fixed by its seed) falls below p(value), a logistic
    curve: so it trips above the value knee + scale * logit(u_r), the same at every probe (common random
    numbers).  The rule (safe only when no replication trips) puts the knee at the lowest of those."""
    knee, scale, replications = 120.0, 6.0, 5

    def trip_probability(value: float) -> float:
        return 1.0 / (1.0 + math.exp(-(value - knee) / scale))

    def run(job: Job) -> Outcome:
        assert job.scenario.seed is not None
        u = random.Random(job.scenario.seed).random()
        return Outcome(job.key, _summary(int(u < trip_probability(_calls(job)))), None)

    seeds = replication_seeds(BASE["seed"], replications)
    thresholds = [knee + scale * math.log(u / (1 - u)) for u in (random.Random(seed).random() for seed in seeds)]
    expected = min(thresholds)
    result = search(BASE, CALLS, 1, 400, "code_yellow_entries > 0", replications, InProcess(), tolerance=0.25,
                    run=run)
    assert result.highest_safe is not None and result.lowest_tripped is not None
    assert result.highest_safe <= expected < result.lowest_tripped <= result.highest_safe + 0.25


def test_non_monotone_noise_still_gives_a_consistent_bracket() -> None:
    """Fresh coin flips at every probe (no common random numbers): verdicts may contradict the order of the
    values; the result must still be a safe probe below the lowest tripped one, with nothing probed between."""
    def run(job: Job) -> Outcome:
        value = _calls(job)
        flip = random.Random(f"{job.scenario.seed}:{value!r}").random()
        return Outcome(job.key, _summary(int(flip < 1 / (1 + math.exp(-(value - 60) / 8)))), None)

    for seed in range(1, 8):
        result = search({**BASE, "seed": seed}, CALLS, 1, 200, "code_yellow_entries > 0", 2, InProcess(),
                        tolerance=1.0, run=run)
        assert result.status == "found"
        assert result.highest_safe is not None and result.lowest_tripped is not None
        by_value = {probe.value: probe for probe in result.probes}
        assert by_value[result.highest_safe].safe and not by_value[result.lowest_tripped].safe
        assert result.lowest_tripped == min(probe.value for probe in result.probes if not probe.safe)
        assert 0 < result.lowest_tripped - result.highest_safe <= 1.0
        assert not any(result.highest_safe < value < result.lowest_tripped for value in by_value)
        assert 20 < result.highest_safe < 100


def test_common_random_numbers_every_probe_uses_the_same_seeds() -> None:
    calls: list[Job] = []
    result = search({k: v for k, v in BASE.items() if k != "seed"}, CALLS, 1, 100, "code_yellow_entries > 0", 4,
                    InProcess(), tolerance=5, run=step_run(42.0, calls=calls))
    root = result.seeds[0]
    assert result.seeds == tuple(replication_seeds(root, 4))  # a seed was drawn, then replications derived
    for job in calls:
        _probe, replication = job.key
        assert job.scenario.seed == result.seeds[replication]
    assert {job.key[0] for job in calls} == set(range(len(result.probes)))


def test_probes_follow_the_yaml_like_set_does_and_a_scenario_works_too() -> None:
    """From the scenario's YAML, derived defaults follow the varied key (setup signals = half the signals per
    call, as `--set load.signals_per_call=N` gives); from a validated Scenario they are frozen at their values."""
    def run(job: Job) -> Outcome:
        load = job.scenario.load
        assert load.setup_signals_per_call == math.ceil(load.signals_per_call / 2)
        return Outcome(job.key, _summary(int(load.signals_per_call > 30)), None)

    result = search(BASE, "load.signals_per_call", 2, 100, "code_yellow_entries > 0", 1, InProcess(), tolerance=1,
                    run=run)
    assert (result.highest_safe, result.lowest_tripped) == (30, 31)

    def service(job: Job) -> float:
        return job.scenario.node.signal_service_time_ms.mean

    # BASE never names the service time: the search fills in the default section (exponential) on the way.
    service_time = search(BASE, "node.signal_service_time_ms.mean", 0.01, 1.0, "code_yellow_entries > 0", 1,
                          InProcess(), run=step_run(0.3, service))
    assert service_time.highest_safe is not None and service_time.lowest_tripped is not None
    assert service_time.highest_safe <= 0.3 < service_time.lowest_tripped

    scenario = Scenario.model_validate(BASE)
    from_scenario = search(scenario, CALLS, 1, 200, "code_yellow_entries > 0", 3, InProcess(), tolerance=0.5,
                           run=step_run(37.3))
    from_yaml = search(BASE, CALLS, 1, 200, "code_yellow_entries > 0", 3, InProcess(), tolerance=0.5,
                       run=step_run(37.3))
    assert from_scenario.probes == from_yaml.probes and from_scenario.seeds == from_yaml.seeds


def test_the_background_rate_of_a_source_can_be_varied() -> None:
    data = {**BASE, "load": {"background": [{"signals_per_s": 100}, {"signals_per_s": 50, "priority": "low"}]}}

    def run(job: Job) -> Outcome:
        first, second = job.scenario.load.background
        assert second.signals_per_s == 50
        return Outcome(job.key, _summary(int(first.signals_per_s > 2500)), None)

    result = search(data, "load.background.0.signals_per_s", 10, 9000, "code_yellow_entries > 0", 1, InProcess(),
                    tolerance=10, run=run)
    assert result.highest_safe is not None and result.highest_safe <= 2500 < (result.lowest_tripped or 0)


# ------------------------------------------------------------------ mistakes, caught before anything runs
@pytest.mark.parametrize(("key", "lo", "hi", "says"), [
    (CALLS, 1, 20_000, ["(--hi 20000)", "load.calls_per_s", "20000", "0 to 10000"]),
    (CALLS, -5, 20, ["(--lo -5)", "load.calls_per_s", "-5", "0 to 10000"]),
    ("throttling.code_yellow_entry_latency_ms", 1, 50, ["(--lo 1)", "code_yellow_entry_latency_ms", "allowed"]),
    (CALLS, 50, 50, ["--lo 50 --hi 50: --lo must be below --hi"]),
    (CALLS, 60, 50, ["--lo must be below --hi"]),
    ("load.calls_pr_s", 1, 50, ["load.calls_pr_s", "unknown key"]),
    ("load.background.3.signals_per_s", 1, 50, ["--vary load.background.3.signals_per_s", "not an index of a list"]),
    ("load.background.0.signals_per_s", 0, 2e6, ["(--hi 2000000)", "load.background.0.signals_per_s", "1000000"]),
    ("devices.registered_at_start", 0, 1,
     ["(--lo 0)", "devices.registered_at_start", "0 is a number, not true or false"]),
    ("throttling.sample_rule", 0, 1, ["throttling.sample_rule", "allowed"]),
    ("devices.count", 0.5, 10, ["devices.count", "(--lo 0.5)"]),
    ("seed", 1, 10, ["--vary 'seed': not a key to search over"]),
])
def test_bad_inputs_are_user_errors_before_anything_runs(key: str, lo: float, hi: float, says: list[str]) -> None:
    with pytest.raises(UserError) as caught:
        search(BASE, key, lo, hi, "code_yellow_entries > 0", 3, InProcess(), run=never_run)
    text = "\n".join(caught.value.problems)
    for part in says:
        assert part in text


def test_both_ends_out_of_range_are_both_named() -> None:
    with pytest.raises(UserError) as caught:
        search(BASE, "throttling.code_yellow_entry_latency_ms", 1, 9000, "code_yellow_entries > 0", 3,
               InProcess(), run=never_run)
    assert len(caught.value.problems) == 2
    assert "(--lo 1)" in caught.value.problems[0] and "(--hi 9000)" in caught.value.problems[1]


@pytest.mark.parametrize(("replications", "tolerance", "says"), [
    (0, None, "--replications 0"),
    (5, 0.0, "--tolerance 0"),
    (5, -1.0, "--tolerance -1"),
    (5, math.inf, "--tolerance inf"),
])
def test_bad_replications_or_tolerance(replications: int, tolerance: float | None, says: str) -> None:
    with pytest.raises(UserError, match=says):
        search(BASE, CALLS, 1, 50, "code_yellow_entries > 0", replications, InProcess(), tolerance=tolerance,
               run=never_run)


def test_a_bad_condition_string_is_a_user_error_before_anything_runs() -> None:
    with pytest.raises(UserError, match="unknown metric"):
        search(BASE, CALLS, 1, 50, "yellow > 0", 3, InProcess(), run=never_run)


def test_a_failed_run_stops_the_search_naming_the_probe_and_its_seed() -> None:
    calls: list[Job] = []

    def run(job: Job) -> Outcome:
        calls.append(job)
        if _calls(job) > 150 and job.key[1] == 1:
            return Outcome(job.key, None, "MemoryError: too many calls")
        return Outcome(job.key, _summary(int(_calls(job) > 40)), None)

    with pytest.raises(CapacityRunError) as caught:
        search(BASE, CALLS, 1, 200, "code_yellow_entries > 0", 3, InProcess(), run=run)
    [line] = caught.value.problems
    seed = replication_seeds(BASE["seed"], 3)[1]
    assert f"load.calls_per_s=200 (probe 2, replication 1, seed {seed}) failed: MemoryError: too many calls" in line
    assert "cannot skip a probe" in line
    assert caught.value.probes == ()  # the failure was in the first round
    assert len(calls) == 5  # the round stopped at the failure: the last replication of hi never ran


def test_progress_reports_probes_and_runs() -> None:
    reports: list[tuple[int, int, int]] = []
    result = search(BASE, CALLS, 1, 200, "code_yellow_entries > 0", 2, InProcess(), tolerance=10,
                    progress=lambda *report: reports.append(report), run=step_run(90.0))
    assert reports[0] == (0, 0, 4)  # the first round: lo and hi, 2 runs each
    assert reports[-1] == (len(result.probes), result.runs, result.runs)
    for earlier, later in itertools.pairwise(reports):
        assert all(b >= a for a, b in zip(earlier, later, strict=True))
    assert all(done <= started for _, done, started in reports)


def test_the_result_as_json_csv_text_and_figure() -> None:
    result = search(BASE, CALLS, 1, 200, "code_yellow_entries > 0", 3, InProcess(), tolerance=2, run=step_run(37.3))
    data = json.loads(capacity_json(result))
    assert data["status"] == "found" and data["condition"] == "code_yellow_entries > 0"
    assert data["capacity"] == result.highest_safe and data["seeds"] == list(result.seeds)
    assert data["safe_trip_rate_bound"] == pytest.approx(1 - 0.05 ** (1 / 3))
    assert [probe["value"] for probe in data["probes"]] == [probe.value for probe in result.probes]
    assert data["probes"][1] == {"order": 2, "round": 0, "value": 200.0, "verdict": "tripped", "runs": 3,
                                 "tripped_runs": 3, "mean": 1.0, "metric_values": [1, 1, 1],
                                 "tripped": [True, True, True]}

    rows = list(csv.DictReader(io.StringIO(probes_csv(result))))
    assert len(rows) == len(result.probes)
    assert list(rows[0]) == ["order", "round", CALLS, "verdict", "runs", "tripped_runs", "code_yellow_entries.mean",
                             "code_yellow_entries.rep0", "code_yellow_entries.rep1", "code_yellow_entries.rep2"]
    assert rows[0][CALLS] == "1.0" and rows[0]["verdict"] == "safe" and rows[1]["tripped_runs"] == "3"

    lines = describe_capacity(result)
    assert lines[0].startswith(f"capacity: load.calls_per_s = {result.highest_safe:g} keeps "
                               "'code_yellow_entries > 0' false in all 3 replications")
    assert "fewer than 63 % of runs" in lines[-1]  # 1 - 0.05 ** (1/3)

    figure = capacity_figure(capacity_plot(result))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG")
    assert figure.get_suptitle() == "Capacity search: capacity-test"


def test_a_none_metric_makes_a_safe_run() -> None:
    """first_code_yellow_entry_s < 30: a run without Code Yellow has None there, which compares false."""
    def run(job: Job) -> Outcome:
        entry_s = None if _calls(job) <= 12 else 600 / _calls(job)
        return Outcome(job.key, {"first_code_yellow_entry_s": entry_s}, None)

    result = search(BASE, CALLS, 1, 100, "first_code_yellow_entry_s < 30", 2, InProcess(), tolerance=0.5, run=run)
    # 600 / v < 30 for v > 20; at or below 12 the metric does not happen (None, safe).
    assert result.highest_safe is not None and result.highest_safe <= 20 < (result.lowest_tripped or 0)
    assert any(None in probe.metric_values for probe in result.probes)
    capacity_figure(capacity_plot(result))


# ------------------------------------------------------------------ the done-when test: an M/M/1 knee
SERVICE_MS = 0.15
WAIT_LIMIT_MS = 1.0
KNEE_RHO = WAIT_LIMIT_MS / (SERVICE_MS + WAIT_LIMIT_MS)
KNEE_PER_S = KNEE_RHO / SERVICE_MS * 1000
WAIT_SLOPE_MS_PER_SIGNAL_PER_S = SERVICE_MS**2 / 1000 / (1 - KNEE_RHO) ** 2
WAIT_SD_AT_KNEE_MS = 0.0213
"""A replication's mean wait at the knee varies by this much (SD over 30 seeds, 120 s runs; measured)."""
KNEE_SD_PER_S = WAIT_SD_AT_KNEE_MS / WAIT_SLOPE_MS_PER_SIGNAL_PER_S
TOLERANCE_PER_S = 20.0


def mm1_data(seed: int) -> dict[str, Any]:
    return {
        "name": "mm1-knee", "seed": seed, "duration_s": 120,
        "throttling": {"system_throttle_sample_size_s": 0, "max_events_allowed": 0},
        "node": {"signal_service_time_ms": {"distribution": "exponential", "mean": SERVICE_MS}},
        "load": {"background": [{"signals_per_s": 1000}]},
    }


def mm1_wait_ms(rate_per_s: float) -> float:
    rho = rate_per_s * SERVICE_MS / 1000
    return rho * SERVICE_MS / (1 - rho)


def _search_mm1_knee(workers: int) -> CapacityResult:
    with open_backend(workers=workers) as backend:
        return search(mm1_data(seed=7), "load.background.0.signals_per_s", 1000, 7000,
                      f"signal_wait_ms.mean > {WAIT_LIMIT_MS}", 5, backend, tolerance=TOLERANCE_PER_S)


def test_capacity_search_finds_the_mm1_knee_queueing_theory_predicts() -> None:
    """Background Poisson signals, exponential service of mean S = 0.15 ms, no calls, no devices, throttling
    off: the router thread is an M/M/1 queue whose mean wait W = rho S / (1 - rho) (rho = lambda S) passes
    1 ms at rho* = 1 / (1 + S / 1 ms) = 0.8696, lambda* = 5,797.1 signals/s.  Searching the background
    rate over [1000, 7000] for "signal_wait_ms.mean > 1" must find it.

    The tolerance comes from the simulation's own spread.  At lambda*, a replication's mean wait over 120 s
    varies with SD 0.0213 ms (measured over 30 seeds; mean 1.004, SE 0.004: unbiased); through the slope
    dW/dlambda = S^2 / (1 - rho)^2 = 1.32e-3 ms per signal/s that is sigma = 16.1 signals/s.  The rule
    (safe only when all R = 5 replications stay below 1 ms) puts the knee where the highest of 5
    replications crosses: 1.16 sigma (19/s) below lambda* on average, with SD 0.67 sigma (11/s); and the
    search reports the low end of a bracket up to the tolerance (20/s) wide.  So the found capacity must lie
    in [lambda* - 20 - 1.16 sigma - 4 x 0.67 sigma, lambda* - 1.16 sigma + 4 x 0.67 sigma] = lambda* - 82 ..
    lambda* + 24 signals/s (about 1.4 % of lambda*; a service time off by 1/15 would move lambda* by 360).
    Measured over 30 root seeds: found - lambda* had mean -26.8, SD 13.0, range -63 .. -4.
    The probes' mean waits are also checked against the M/M/1 formula, so the key really was varied.
    """
    result = _search_mm1_knee(workers=1)
    assert result.status == "found"
    assert result.highest_safe is not None and result.lowest_tripped is not None
    assert result.lowest_tripped - result.highest_safe <= TOLERANCE_PER_S
    low_per_s = KNEE_PER_S - TOLERANCE_PER_S - (1.16 + 4 * 0.67) * KNEE_SD_PER_S
    high_per_s = KNEE_PER_S + (4 * 0.67 - 1.16) * KNEE_SD_PER_S
    assert low_per_s <= result.highest_safe <= high_per_s, (
        f"found {result.highest_safe:.1f} signals/s, theory {KNEE_PER_S:.1f} (allowed {low_per_s:.0f} .. "
        f"{high_per_s:.0f})")

    # The spread that justifies the tolerance, measured again here: the probe closest to the knee.
    nearest = min(result.probes, key=lambda probe: abs(probe.value - KNEE_PER_S))
    waits = [wait for wait in nearest.metric_values if wait is not None]
    mean_ms = sum(waits) / len(waits)
    sd_ms = math.sqrt(sum((wait - mean_ms) ** 2 for wait in waits) / (len(waits) - 1))
    assert sd_ms < 2 * WAIT_SD_AT_KNEE_MS, f"too noisy to test: SD {sd_ms:.4f} ms at {nearest.value:.0f}/s"
    for probe in result.probes:
        if probe.value * SERVICE_MS / 1000 <= 0.9:
            assert probe.mean == pytest.approx(mm1_wait_ms(probe.value), rel=0.05), probe


def test_the_capacity_search_does_not_depend_on_the_backend() -> None:
    """Two local processes (k = 2 // 5 -> 1 probe per round) make exactly the probes one process makes."""
    in_process = _search_mm1_knee(workers=1)
    pooled = _search_mm1_knee(workers=2)
    assert pooled.workers == 2 and pooled.probes_per_round == 1
    assert pooled.probes == in_process.probes
    assert (pooled.highest_safe, pooled.lowest_tripped) == (in_process.highest_safe, in_process.lowest_tripped)


def test_a_real_run_that_raises_stops_the_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the real `run_job`: a scenario the model cannot run becomes an error outcome, and the search stops."""
    import cucm_sim.studies.backends as backends

    def broken(scenario: Scenario, progress: Any = None) -> Any:
        raise RuntimeError(f"model broke at {scenario.load.calls_per_s}")

    monkeypatch.setattr(backends, "simulate", broken)
    with pytest.raises(CapacityRunError, match=r"failed: RuntimeError: model broke at 1\.0"):
        search(BASE, CALLS, 1, 200, "code_yellow_entries > 0", 2, InProcess())


# ------------------------------------------------------------------ the command line
def _write_mm1(tmp_path: Any) -> Any:
    import yaml

    path = tmp_path / "mm1.yaml"
    path.write_text(yaml.safe_dump({**mm1_data(seed=7), "duration_s": 60}), encoding="utf-8")
    return path


def _capacity_cli(*args: Any) -> Any:
    from click.testing import CliRunner

    from cucm_sim.cli import main

    return CliRunner().invoke(main, ["capacity", *map(str, args)])


def test_the_capacity_command_writes_its_answer_probes_and_plot(tmp_path: Any) -> None:
    out_dir = tmp_path / "knee"
    result = _capacity_cli(_write_mm1(tmp_path), "--vary", "load.background.0.signals_per_s", "--lo", 1000,
                           "--hi", 7000, "--until", "signal_wait_ms.mean > 1", "-n", 3, "--tolerance", 200,
                           "--workers", 1, "--out", out_dir)

    assert result.exit_code == 0, result.output
    saved = json.loads((out_dir / "capacity.json").read_text(encoding="utf-8"))
    assert saved["status"] == "found" and saved["lowest_tripped"] - saved["highest_safe"] <= 200
    assert KNEE_PER_S - 600 <= saved["capacity"] <= KNEE_PER_S + 200  # a coarse search: tolerance 200/s
    rows = list(csv.DictReader(io.StringIO((out_dir / "probes.csv").read_text(encoding="utf-8"))))
    assert len(rows) == len(saved["probes"]) >= 3
    assert (out_dir / "capacity.png").read_bytes().startswith(b"\x89PNG")
    assert f"capacity: load.background.0.signals_per_s = {saved['capacity']:g}" in result.output
    assert "95 % confidence" in result.output


@pytest.mark.parametrize(("options", "says"), [
    (["--until", "signal_wait_ms.mean >> 1"], "--until 'signal_wait_ms.mean >> 1': not a condition"),
    (["--until", "wait > 1"], "unknown metric 'wait'"),
    (["--lo", "-5"], "load.background.0.signals_per_s"),
    (["--workers", "2", "--dask-local", "2"], "--workers and --dask-local given together"),
])
def test_capacity_command_user_errors_exit_2_and_write_nothing(tmp_path: Any, options: list[str], says: str) -> None:
    defaults = {"--lo": "1000", "--hi": "7000", "--until": "signal_wait_ms.mean > 1"}
    for option, value in zip(options[::2], options[1::2], strict=True):
        defaults[option] = value
    out_dir = tmp_path / "out"
    result = _capacity_cli(_write_mm1(tmp_path), "--vary", "load.background.0.signals_per_s", "--out", out_dir,
                           *itertools.chain.from_iterable(defaults.items()))

    assert result.exit_code == 2, result.output
    assert says in result.output
    assert "Traceback" not in result.output and not out_dir.exists()
