r"""Calibration: a node's load and speed estimated from a Perfmon recording, as a scenario that replays it.

`cucm-sim calibrate PERFMON.csv --out scenario.yaml` reads one CUCM node's counters (DOMAIN.md section 6) and
estimates what no Cisco source gives (DOMAIN.md section 8): the SDL signals a call costs, the signals that
come whatever the calls (background, per queue), and the router thread's service time per signal.

**Arrivals.**  Signals are conserved in each queue except when Code Red throws the queues away, so the
signals that arrived in queue q in the second before a sample are the ones handled then
(QueueSignalsProcessed q) plus the growth of the queue (QueueSignalsPresent q at the sample less at the
one before).  At a 1-s sampling interval that is exact whatever the backlog; at 15 s it is the one second
in fifteen the per-second counter shows, with the queue's growth spread over the interval.

**Signals per call and background** (per queue, by least squares over the clean samples: neither end in
Code Yellow or Code Red nor within `GUARD_S` of it, nor in a backlog, the service up; behind a backlog a
call's set-up signals come late, when its off-hook is handled): arrivals = background + setup x (calls
accepted per second) + teardown x (calls ending per second) + initial x (a decaying term).  Calls accepted
are CallsAttempted less
CallsRejectedDueToThrottling over the interval (a fall of a running total is a restart: the count starts
from zero).  Calls ending is the accepted calls passed through the holding time (exponential, mean 180 s
unless told: Perfmon does not show it), and the last term the ending of the calls already in progress
when the recording began (their number is not known; the fit finds it).  Signals per call = setup +
teardown; the sum is well determined even where the two are not told apart (a slowly varying call rate
makes them collinear), and its standard error comes from their covariance.  Samples far off the fit (a
signal burst the calls do not explain, a second of registrations) are left out, first one by one (more
than 6 robust standard deviations) and then by windows of a minute (a window mean more than 5 standard
errors off), and the fit is repeated until nothing more is left out.  Keepalives are in the background of
their queue: the file does not say how many phones there are.  The queues other than Normal get no call
signals in the model: their background is their mean arrival rate, and a warning says when their
arrivals follow the calls.

**The holding time** is checked: the Normal queue's regression is repeated at holding times from 30 s to an
hour (`check_holding_time`); one that fits clearly better than the one assumed (by more than
`HOLDING_DELTA` residual variances) is named in a warning, and with the holding time to be fitted
(`--holding-time auto`) the calibration is repeated at the best one until it holds.

**Bursts.**  Per queue and per bin of `profile_bin_s`, arrivals beyond what the fitted model explains
(more than 5 standard errors, and 5 % of the background) are bursts; neighbouring bins of about the same
excess make one, written as a `signal_burst` disturbance.  In Code Yellow a rejected call is taken to cost
one signal, as the scenario's default says.

**Service time.**  In a second that begins and ends with a backlog (at least `MIN_BACKLOG` signals waiting
at both samples, no Code Red), the thread was busy all second, so QueueSignalsProcessed Total counts
capacity factor x 1000 / mean service time (ms).  The robust mean of those seconds (those within 4 robust
standard deviations of their median) gives the mean service time, and the dispersion of their counts its
shape: a renewal process of service times with coefficient of variation c completes N in a second with
Var N / E N = c^2.  The capacity factor is taken as 1 unless told.  A recording with fewer than
`MIN_SATURATED_SECONDS` such seconds falls back to matching the recorded AverageExpectedDelay in simulation
(`fit_service_time_by_delay`).

**The scenario** replays the recording: the call attempts as the recording has them, interval by
interval (`load.trace` naming the file and its CallsAttempted), or as a `calls_profile` (means over bins of
`profile_bin_s`) for a scenario that stands alone; the background per queue, the bursts as disturbances,
the estimated costs and speed, Cisco's default throttling parameters (a recording does not show them), no
phones (their keepalives are in the background).  **Goodness of fit** (`goodness_of_fit`): the scenario
run with a few seeds, its AverageExpectedDelay, Code Yellow and Code Red sampled as the recording was and
compared with it.

Pure but for `fit_service_time_by_delay` and `goodness_of_fit`, which run simulations; reads and writes no
file (`perfmon.pdh_csv` reads, the CLI writes).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
import yaml

from cucm_sim.errors import UserError
from cucm_sim.perfmon import counters as names
from cucm_sim.perfmon.counters import QUEUE_NAMES, CounterPath
from cucm_sim.perfmon.pdh_csv import Recording
from cucm_sim.report.perfmon_export import node_counters
from cucm_sim.rules.priorities import NORMAL, PRIORITIES
from cucm_sim.rules.throttling import ThrottlingParams
from cucm_sim.run.simulation import ProgressCallback, simulate
from cucm_sim.scenario.loader import ScenarioDumper
from cucm_sim.scenario.schema import MAX_CALLS_PER_S, Scenario
from cucm_sim.scenario.seeds import replication_seeds

SYSTEM: Final = names.SYSTEM_PERFORMANCE
REQUIRED_COUNTERS: Final[tuple[tuple[str, str], ...]] = (
    (names.CALLMANAGER, names.CALLS_ATTEMPTED),
    *((SYSTEM, names.queue_signals_processed(q)) for q in range(4)),
    *((SYSTEM, names.queue_signals_present(q)) for q in range(4)),
    (SYSTEM, names.AVERAGE_EXPECTED_DELAY),
    (SYSTEM, names.CODE_YELLOW_ENTRY_EXIT),
    (SYSTEM, names.CODE_RED_ENTRY_EXIT),
)
"""(object, counter) a recording must have for one node."""
OPTIONAL_COUNTERS: Final[tuple[tuple[str, str], ...]] = (
    (SYSTEM, names.queue_signals_processed(None)),
    (SYSTEM, names.CALLS_REJECTED),
    (names.CALLMANAGER, names.HEARTBEAT),
)
"""Used when present: Total (else the sum of the four queues), the calls rejected (else every call attempted
in Code Yellow counts as rejected), the heartbeat (else the service is taken as down in Code Red only)."""

DEFAULT_HOLDING_TIME_S: Final = 180.0
GUARD_S: Final = 15.0
"""Samples this close to Code Yellow or Code Red are not clean: the backlog around an episode delays calls'
set-up signals into later seconds (and bursts of admitted calls follow an exit)."""
MIN_BACKLOG: Final = 10
"""Signals waiting at both ends of a second for it to count as saturated (a queue that is 1 deep may have
emptied in between)."""
BACKLOG_DELAY_MS: Final = 8.0
"""An AverageExpectedDelay this long (the default Code Yellow exit latency) only comes of a backlog: such samples
are not clean (at 15-s sampling a backlog between two samples shows in the delay, not in the queues)."""
MIN_SATURATED_SECONDS: Final = 5
"""Fewer saturated seconds than this: the service time is fitted by simulation instead."""
MIN_CLEAN_SAMPLES: Final = 30
"""Fewer clean samples than this (after outliers are left out): nothing to estimate the load from."""
SAMPLE_OUTLIER_SDS: Final = 6.0
WINDOW_OUTLIER_SES: Final = 5.0
SATURATED_OUTLIER_SDS: Final = 4.0
WINDOW_S: Final = 60.0
"""Windows over which mean residuals are judged (the outlier pass) and bins of the burst search."""
MAX_PROFILE_POINTS: Final = 5_000
"""The most points the written calls_profile has (the schema allows 10,000)."""
MIN_PROFILE_BIN_S: Final = 10.0
PROFILE_POINTS_PER_LINE: Final = 8
MAX_BURSTS: Final = 200
MIN_ENDING_VARIATION: Final = 0.05
"""Least variation of the calls' ending rate (`ending_variation`) that tells teardown signals from background:
below it the estimate is refused."""
WARN_RELATIVE_SE: Final = 0.05
"""A signals-per-call estimate less precise than this (standard error / value) is reported with a warning."""
REFUSE_RELATIVE_SE: Final = 0.25
"""... and one less precise than this is refused: the call rate did not vary enough to tell calls from
background (give --signals-per-call)."""
SHAPE_MIN_SECONDS: Final = 30
"""Saturated seconds needed before their dispersion chooses the service time's shape (else exponential)."""
GOOD_FIT_SEEDS: Final = 3


# ------------------------------------------------------------------ the counters
def counter_label(obj: str, counter: str) -> str:
    r"""`Object\Counter`, as a message names it and `read_pdh_csv` finds it."""
    return f"{obj}\\{counter}"


@dataclass(frozen=True)
class NodeCounters:
    """The counters of one node in a recording's header: its host, the required ones it lacks, the optional
    ones it has."""

    host: str
    missing: tuple[str, ...]
    optional: tuple[str, ...]


def node_counter_sets(paths: Sequence[CounterPath]) -> list[NodeCounters]:
    """Per host that has any of the required counters, which it lacks and which optional ones it has."""
    wanted = {(obj, counter) for obj, counter in REQUIRED_COUNTERS}
    hosts: dict[str, set[tuple[str, str]]] = {}
    for path in paths:
        key = (path.object, path.counter)
        if path.instance is None and (key in wanted or key in OPTIONAL_COUNTERS):
            hosts.setdefault(path.host, set()).add(key)
    return [NodeCounters(host, tuple(counter_label(*key) for key in REQUIRED_COUNTERS if key not in found),
                         tuple(counter_label(*key) for key in OPTIONAL_COUNTERS if key in found))
            for host, found in hosts.items() if found & wanted]


def choose_node(paths: Sequence[CounterPath], source: str, host: str | None) -> NodeCounters:
    """The node to calibrate: `host`'s, or the one node the file has.  UserError naming what is missing (and
    what the file has) when no node has every required counter, or asking for --host when several do."""
    nodes = node_counter_sets(paths)
    if host is not None:
        chosen = [node for node in nodes if node.host.casefold() == host.casefold()]
        if not chosen:
            hosts = sorted({path.host for path in paths})
            raise UserError([f"{source}: no CUCM counters of host {host!r}; its hosts: {', '.join(hosts)}"])
        nodes = chosen
    complete = [node for node in nodes if not node.missing]
    if len(complete) == 1:
        return complete[0]
    if len(complete) > 1:
        raise UserError([f"{source}: holds the counters of {len(complete)} CUCM nodes "
                         f"({', '.join(node.host for node in complete)}); choose one with --host"])
    if not nodes:
        objects = sorted({path.object for path in paths})
        raise UserError([f"{source}: no counters of a CUCM node (objects '{SYSTEM}' and '{names.CALLMANAGER}'); "
                         f"calibration needs {', '.join(counter_label(*key) for key in REQUIRED_COUNTERS)}; "
                         f"the file has objects {', '.join(objects[:8])}{' ...' if len(objects) > 8 else ''}"])
    best = min(nodes, key=lambda node: len(node.missing))
    have = sorted(path.counter for path in paths if path.host == best.host)
    return_missing = ", ".join(best.missing)
    raise UserError([f"{source}: host {best.host} lacks {len(best.missing)} counter"
                     f"{'s' if len(best.missing) > 1 else ''} calibration needs: {return_missing}; it has "
                     f"{', '.join(have[:12])}{f' and {len(have) - 12} more' if len(have) > 12 else ''}"])


def wanted_paths(node: NodeCounters) -> list[str]:
    r"""The whole paths (`\\HOST\Object\Counter`) to read for `node`: the required counters, then its optional ones."""
    keys = [counter_label(*key) for key in REQUIRED_COUNTERS] + list(node.optional)
    return [f"\\\\{node.host}\\{key}" for key in keys]


# ------------------------------------------------------------------ the recording as series
@dataclass(frozen=True)
class Series:
    """A recording of one node as arrays: samples 0..n at `t_s`, intervals 1..n between them.

    Per-interval arrays (length n) describe the interval ending at sample i + 1; per-sample arrays (length
    n + 1) the reading at each sample.  NaN where a counter could not be read.
    """

    source: str
    host: str
    t_s: np.ndarray
    """Seconds since the first sample (n + 1)."""
    length_s: np.ndarray
    """Each interval's length (n)."""
    processed: np.ndarray
    """(4, n): QueueSignalsProcessed per queue, the second before each interval's end sample."""
    total: np.ndarray
    """(n): QueueSignalsProcessed Total (or the sum of the queues)."""
    present: np.ndarray
    """(4, n + 1): QueueSignalsPresent per queue."""
    average_delay_ms: np.ndarray
    """(n + 1): AverageExpectedDelay."""
    yellow: np.ndarray
    red: np.ndarray
    """(n + 1): CodeYellowEntryExit and CodeRedEntryExit (1 in that state)."""
    attempted: np.ndarray
    rejected: np.ndarray
    """(n): calls attempted and rejected by throttling in each interval."""
    down: np.ndarray
    """(n, bool): the service was down in the interval (Code Red at either end, or the heartbeat stood still)."""
    restarts: int
    """Falls of a running total (the service restarted; counting starts again from zero)."""
    rejected_counted: bool
    """Whether the file had CallsRejectedDueToThrottling (else calls attempted in Code Yellow count as rejected)."""

    @property
    def intervals(self) -> int:
        return len(self.length_s)

    @property
    def interval_s(self) -> float:
        """The usual sampling interval (the median)."""
        return float(np.median(self.length_s)) if self.intervals else 0.0

    @property
    def duration_s(self) -> float:
        return float(self.t_s[-1]) if len(self.t_s) else 0.0

    def arrivals(self) -> np.ndarray:
        """(4, n): signals arriving per second in each queue: processed plus the queue's growth per second."""
        arrivals: np.ndarray = self.processed + np.diff(self.present, axis=1) / self.length_s
        return arrivals

    def accepted_per_s(self) -> np.ndarray:
        """(n): calls accepted per second in each interval (0 while the service is down)."""
        accepted: np.ndarray = np.where(self.down, 0.0, np.maximum(self.attempted - self.rejected, 0.0))
        per_s: np.ndarray = accepted / self.length_s
        return per_s

    def clean(self, guard_s: float = GUARD_S) -> np.ndarray:
        """(n, bool): intervals with neither end in Code Yellow or Code Red nor within `guard_s` of it, nor in a
        backlog (`MIN_BACKLOG` signals waiting, or an AverageExpectedDelay of `BACKLOG_DELAY_MS`), the service
        up, every counter read."""
        troubled = (self.yellow > 0) | (self.red > 0)
        near = np.zeros(len(self.t_s), dtype=bool)
        if troubled.any():
            times = self.t_s[troubled]
            positions = np.searchsorted(times, self.t_s)
            before = np.abs(self.t_s - times[np.maximum(positions - 1, 0)])
            after = np.abs(times[np.minimum(positions, len(times) - 1)] - self.t_s)
            near = np.minimum(before, after) <= guard_s
        waiting = np.nansum(self.present, axis=0)
        backlog = (waiting >= MIN_BACKLOG) | (np.nan_to_num(self.average_delay_ms) >= BACKLOG_DELAY_MS)
        calm = ~near[1:] & ~near[:-1] & ~backlog[1:] & ~backlog[:-1]
        readable = (np.isfinite(self.processed).all(axis=0) & np.isfinite(self.present).all(axis=0)[1:]
                    & np.isfinite(self.present).all(axis=0)[:-1] & np.isfinite(self.attempted)
                    & np.isfinite(self.rejected))
        clean: np.ndarray = calm & ~self.down & readable
        return clean


def running_counts(values: np.ndarray) -> tuple[np.ndarray, int]:
    """The count of each interval of a running total (n + 1 samples -> n counts) and how many times it fell: a
    fall is a restart, after which the counter counts from zero (the interval's count is its new value).
    A blank sample (NaN) makes the counts of both intervals beside it NaN."""
    counts = np.diff(values)
    fell = counts < 0
    counts = np.where(fell, values[1:], counts)
    return counts, int(np.count_nonzero(fell))


def series_from_recording(recording: Recording, node: NodeCounters) -> Series:
    """The recording's counters of `node` (read with `wanted_paths(node)`) as a `Series`."""
    columns = {(path.object, path.counter): recording.column(k) for k, path in enumerate(recording.paths)}

    def column(obj: str, counter: str) -> np.ndarray | None:
        return columns.get((obj, counter))

    def required(obj: str, counter: str) -> np.ndarray:
        found = column(obj, counter)
        assert found is not None, f"{counter} was read"
        return found

    t_s = np.asarray(recording.elapsed_s, dtype=float)
    processed = np.array([required(SYSTEM, names.queue_signals_processed(q))[1:] for q in range(4)])
    present = np.array([required(SYSTEM, names.queue_signals_present(q)) for q in range(4)])
    total_column = column(SYSTEM, names.queue_signals_processed(None))
    total = total_column[1:] if total_column is not None else processed.sum(axis=0)
    yellow = np.nan_to_num(required(SYSTEM, names.CODE_YELLOW_ENTRY_EXIT), nan=0.0)
    red = np.nan_to_num(required(SYSTEM, names.CODE_RED_ENTRY_EXIT), nan=0.0)
    attempted, restarts = running_counts(required(names.CALLMANAGER, names.CALLS_ATTEMPTED))
    rejected_column = column(SYSTEM, names.CALLS_REJECTED)
    if rejected_column is not None:
        rejected, rejected_restarts = running_counts(rejected_column)
        restarts = max(restarts, rejected_restarts)
    else:
        rejected = np.where((yellow[1:] > 0) | (yellow[:-1] > 0), attempted, 0.0)
    down = (red[1:] > 0) | (red[:-1] > 0)
    heartbeat = column(names.CALLMANAGER, names.HEARTBEAT)
    if heartbeat is not None:
        beats, _ = running_counts(heartbeat)
        down |= beats == 0
    return Series(recording.source, node.host, t_s, np.diff(t_s), processed, total, present,
                  required(SYSTEM, names.AVERAGE_EXPECTED_DELAY), yellow, red, attempted, rejected, down, restarts,
                  rejected_column is not None)


# ------------------------------------------------------------------ estimates
@dataclass(frozen=True)
class Estimate:
    """A number estimated from the recording, its standard error (None: not available) and how it was made."""

    value: float
    se: float | None
    method: str

    def describe(self, unit: str = "", digits: int = 4) -> str:
        """'40.7 ± 0.42 unit' (without the ± part when there is no standard error)."""
        suffix = f" {unit}" if unit else ""
        value = _significant(self.value, digits)
        return f"{value}{suffix}" if self.se is None else f"{value} ± {_significant(self.se, 2)}{suffix}"


def _significant(value: float, digits: int) -> str:
    """`value` to about `digits` significant digits, with thousands separators ('1,106', '0.1600', '0')."""
    if value == 0 or not math.isfinite(value):
        return f"{abs(value) if value == 0 else value:g}"
    places = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:,.{places}f}"


@dataclass(frozen=True)
class QueueFit:
    """One queue's regression: arrivals against the calls."""

    queue: int
    background_per_s: Estimate
    call_signals: Estimate
    """Signals per accepted call in this queue (setup + teardown)."""
    samples: int
    residual_sd_per_s: float


@dataclass(frozen=True)
class Burst:
    """Signals arriving in one queue beyond what the fitted model explains, between two times."""

    queue: int
    start_s: float
    end_s: float
    signals_per_s: float


@dataclass(frozen=True)
class ServiceTime:
    """The router thread's mean service time at full speed and its shape."""

    mean_ms: Estimate
    cv: Estimate | None
    """Coefficient of variation from the dispersion of saturated seconds (None: not estimated)."""
    shape: str
    """exponential, lognormal or deterministic: what the scenario uses."""
    saturated_seconds: int
    capacity_factor: float


@dataclass(frozen=True)
class CalibrationOptions:
    """What the user says that the recording does not."""

    holding_time_s: float | None = DEFAULT_HOLDING_TIME_S
    """Mean call holding time (s), exponential; None: fitted (`HoldingCheck`, repeated until it holds)."""
    capacity_factor: float = 1.0
    """The router thread's speed while the recording was made (1 = nominal)."""
    signals_per_call: float | None = None
    """Known signals per call: then it is not estimated."""
    min_backlog: int = MIN_BACKLOG


@dataclass(frozen=True)
class Calibration:
    """What `calibrate` found: the estimates, what they came from, and what the user should know."""

    series: Series
    options: CalibrationOptions
    signals_per_call: Estimate
    setup_signals: Estimate | None
    """Set-up signals per call (the first at the attempt); None when the fit could not tell them from teardown."""
    queues: tuple[QueueFit, ...]
    service_time: ServiceTime | None
    """None until the service time is known (see `fit_service_time_by_delay`)."""
    bursts: tuple[Burst, ...]
    clean_samples: int
    left_out_samples: int
    profile: tuple[tuple[float, float], ...]
    """The call-attempt rate, [t_s, calls/s] points."""
    profile_bin_s: float
    holding_time: Estimate
    """The mean holding time (s) the estimates assume: given, or fitted."""
    holding_check: HoldingCheck | None
    """How well other holding times fit (None when signals per call was given)."""
    warnings: tuple[str, ...] = ()

    @property
    def background(self) -> tuple[Estimate, ...]:
        return tuple(fit.background_per_s for fit in self.queues)


def teardown_rates(accepted_per_s: np.ndarray, length_s: np.ndarray, down: np.ndarray,
                   holding_time_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Per interval, the mean rate (calls/s) at which calls accepted since the recording began end, for
    exponential holding times of mean `holding_time_s`, and the mean of exp(-t / holding) over the interval
    (the share of the calls in progress at the start still holding; 0 after a restart, which ends every call).
    """
    intervals = len(length_s)
    rates = np.zeros(intervals)
    initial = np.zeros(intervals)
    in_progress = 0.0
    since_start_s = 0.0
    first_segment = True
    for i in range(intervals):
        length = float(length_s[i])
        keep = math.exp(-length / holding_time_s)
        arrived = float(accepted_per_s[i]) * length
        after = in_progress * keep + float(accepted_per_s[i]) * holding_time_s * (1.0 - keep)
        rates[i] = (in_progress + arrived - after) / length
        if first_segment:
            initial[i] = holding_time_s * (math.exp(-since_start_s / holding_time_s)
                                           - math.exp(-(since_start_s + length) / holding_time_s)) / length
        since_start_s += length
        in_progress = after
        if down[i]:
            in_progress = 0.0
            first_segment = False
    return rates, initial


@dataclass(frozen=True)
class _Fit:
    coefficients: np.ndarray
    covariance: np.ndarray
    used: np.ndarray
    """(n, bool) the samples the fit kept."""
    residual_sd: float


def _least_squares(design: np.ndarray, y: np.ndarray, use: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    x, target = design[use], y[use]
    coefficients, _, rank, _ = np.linalg.lstsq(x, target, rcond=None)
    residual = target - x @ coefficients
    dof = max(1, len(target) - x.shape[1])
    variance = float(residual @ residual) / dof
    parameters = x.shape[1]
    covariance = (np.full((parameters, parameters), np.inf) if rank < parameters
                  else variance * np.linalg.inv(x.T @ x))
    return coefficients, covariance, math.sqrt(variance)


def _robust_sd(values: np.ndarray) -> float:
    if not len(values):
        return 0.0
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _window_means(windows: np.ndarray, values: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per window number 0..max: how many `members` it has and the mean of their `values` (0 where none)."""
    size = int(windows.max()) + 1 if len(windows) else 0
    count = np.bincount(windows[members], minlength=size).astype(float)
    total = np.bincount(windows[members], weights=values[members], minlength=size)
    mean: np.ndarray = np.divide(total, count, out=np.zeros(size), where=count > 0)
    return count, mean


def robust_fit(design: np.ndarray, y: np.ndarray, usable: np.ndarray, t_s: np.ndarray,
               window_s: float = WINDOW_S) -> _Fit:
    """Least squares of `y` on `design` over the `usable` samples, leaving out outliers until none is left
    (see the module doc): samples beyond `SAMPLE_OUTLIER_SDS` robust standard deviations, then windows of
    `window_s` whose mean residual lies beyond `WINDOW_OUTLIER_SES` standard errors."""
    use = usable.copy()
    windows = np.floor(t_s / window_s).astype(np.int64)
    for _ in range(20):
        coefficients, _, _ = _least_squares(design, y, use)
        residual = y - design @ coefficients
        scale = _robust_sd(residual[use]) or float(np.std(residual[use])) or 1.0
        keep = usable & (np.abs(residual) <= SAMPLE_OUTLIER_SDS * scale)
        count, mean = _window_means(windows, residual, keep)
        off = np.abs(mean) > WINDOW_OUTLIER_SES * scale / np.sqrt(np.maximum(count, 1))
        keep &= ~off[windows]
        if np.array_equal(keep, use) or keep.sum() < design.shape[1] + 2:
            break
        use = keep
    coefficients, covariance, residual_sd = _least_squares(design, y, use)
    return _Fit(coefficients, covariance, use, residual_sd)


HOLDING_ROUNDS: Final = 8


def calibrate(series: Series, options: CalibrationOptions | None = None) -> Calibration:
    """Estimate signals per call, the background of each queue and the service time from `series` (see the
    module doc).  UserError when the recording is too short or has nothing to estimate from.  The service time
    is None when the recording has fewer than `MIN_SATURATED_SECONDS` saturated seconds.  With a holding time
    to fit (`options.holding_time_s` None) the calibration is repeated at the holding time that fits best until
    that one holds (at most `HOLDING_ROUNDS` times)."""
    options = options or CalibrationOptions()
    if options.holding_time_s is not None:
        result = _calibrate_at(series, options, options.holding_time_s)
        check = result.holding_check
        if check is None or not check.better:
            return result
        warning = (f"the recording fits a mean holding time of about {check.best_s.describe('s', 2)} better than "
                   f"the {_plain(options.holding_time_s)} s assumed; if that is plausible, give --holding-time "
                   f"{check.best_s.value:.0f} (or auto)")
        return replace(result, warnings=(*result.warnings, warning))
    holding_s = DEFAULT_HOLDING_TIME_S
    tried: list[float] = []
    while True:
        result = _calibrate_at(series, options, holding_s)
        tried.append(holding_s)
        check = result.holding_check
        if check is None or not check.better or len(tried) >= HOLDING_ROUNDS or check.best_s.value in tried:
            break
        holding_s = check.best_s.value
    se = check.best_s.se if check is not None else None
    fitted = Estimate(holding_s, se, f"fitted: the holding time whose calls ending fit the Normal queue's arrivals "
                      f"best ({len(tried)} round{'s' if len(tried) > 1 else ''}: {', '.join(map(_plain, tried))} s)")
    warnings = result.warnings
    if check is not None and check.better:
        warnings = (*warnings, f"the holding time did not settle ({', '.join(map(_plain, tried))} s): the call rate "
                    "may vary too little over a holding time to tell it; give --holding-time")
    return replace(result, holding_time=fitted, warnings=warnings)


def _calibrate_at(series: Series, options: CalibrationOptions, holding_time_s: float) -> Calibration:
    """`calibrate` at one holding time (s)."""
    source = series.source
    if series.intervals < 2:
        rows = series.intervals + 1
        raise UserError([f"{source}: too short: {rows} sample{'s' if rows > 1 else ''}; calibration needs a "
                         "recording of many (an hour or more at a 1-s or 15-s interval, the call rate varying)"])
    if not np.nansum(series.attempted) > 0:
        raise UserError([f"{source}: nothing to estimate from: CallsAttempted never grows (no call was "
                         "attempted in the recording), so signals per call cannot be told from background"])
    accepted = np.nan_to_num(series.accepted_per_s(), nan=0.0)
    teardown, initial = teardown_rates(accepted, series.length_s, series.down, holding_time_s)
    arrivals = series.arrivals()
    clean = series.clean()
    if clean.sum() < MIN_CLEAN_SAMPLES:
        raise UserError([f"{source}: too short: {int(clean.sum())} samples outside Code Yellow and Code Red with "
                         f"every counter read; calibration needs at least {MIN_CLEAN_SAMPLES} (a longer recording)"])
    columns = [np.ones(series.intervals), accepted, teardown]
    if np.count_nonzero(initial[clean] > 0.05) >= 3:
        columns.append(initial)
    design = np.column_stack(columns)
    warnings: list[str] = []
    t_end = series.t_s[1:]
    if options.signals_per_call is not None:
        known = options.signals_per_call
        background_only = robust_fit(design[:, [0]], arrivals[NORMAL] - known * (0.5 * accepted + 0.5 * teardown),
                                     clean, t_end)
        normal_cov = np.zeros((3, 3))
        normal_cov[0, 0] = background_only.covariance[0, 0]
        fit = _Fit(np.array([background_only.coefficients[0], known / 2, known / 2]), normal_cov,
                   background_only.used, background_only.residual_sd)
        signals_per_call = Estimate(known, None, "given (--signals-per-call); set-up signals assumed half")
        setup: Estimate | None = None
        holding_check: HoldingCheck | None = None
    else:
        fit = robust_fit(design, arrivals[NORMAL], clean, t_end)
        if fit.used.sum() < MIN_CLEAN_SAMPLES:
            raise UserError([f"{source}: only {int(fit.used.sum())} samples fit a load of calls and background; "
                             "nothing to estimate from"])
        total = float(fit.coefficients[1] + fit.coefficients[2])
        variance = float(fit.covariance[1, 1] + fit.covariance[2, 2] + 2 * fit.covariance[1, 2])
        se = math.sqrt(variance) if math.isfinite(variance) and variance >= 0 else math.inf
        variation = _call_rate_variation(accepted[fit.used])
        ending = ending_variation(teardown, design[:, 3] if design.shape[1] > 3 else None, accepted, fit.used)
        if ending < MIN_ENDING_VARIATION:
            raise UserError([
                f"{source}: the call rate does not vary enough to tell the signals of calls from background: the "
                f"rate at which calls end (a holding time after they start) varies by {100 * ending:.1f} % of the "
                f"call rate, at least {100 * MIN_ENDING_VARIATION:.0f} % is needed (accepted calls {variation}); "
                "record a period whose call rate changes (a business day's ramp), or give --signals-per-call"])
        if not math.isfinite(se) or total <= 0 or se > REFUSE_RELATIVE_SE * abs(total):
            raise UserError([
                f"{source}: the call rate does not vary enough to tell the signals of calls from background "
                f"(accepted calls {variation}; signals per call {total:.3g} ± {se:.2g}); record a period whose call "
                "rate changes (a business day's ramp), or give --signals-per-call"])
        if se > WARN_RELATIVE_SE * total:
            warnings.append(f"signals per call is uncertain ({total:.3g} ± {se:.2g}, {100 * se / total:.0f} %): "
                            f"accepted calls {variation}; a longer recording, a 1-s interval or a wider range of "
                            "call rates narrows it")
        signals_per_call = Estimate(total, se, _LOAD_METHOD.format(holding=_plain(holding_time_s)))
        setup_se = math.sqrt(float(fit.covariance[1, 1])) if math.isfinite(fit.covariance[1, 1]) else math.inf
        setup_value = float(fit.coefficients[1])
        setup = (Estimate(setup_value, setup_se, "coefficient of the accepted-call rate")
                 if setup_se <= max(1.0, 0.1 * setup_value) and 1 <= setup_value <= total else None)
        normal_cov = fit.covariance
        holding_check = check_holding_time(series, accepted, arrivals[NORMAL], fit.used, holding_time_s)
    queues = []
    for queue in range(4):
        if queue == NORMAL:
            queues.append(QueueFit(queue, Estimate(float(fit.coefficients[0]), _se(normal_cov, 0),
                                                   "intercept of the regression (keepalives included)"),
                                   signals_per_call, int(fit.used.sum()), fit.residual_sd))
            continue
        queues.append(_other_queue(queue, design, arrivals[queue], clean, t_end, warnings))
    service = estimate_service_time(series, options)
    profile, bin_s = call_profile(series)
    bursts = find_bursts(series, queues, signals_per_call.value, setup, accepted, teardown, initial,
                         float(fit.coefficients[3]) if len(fit.coefficients) > 3 else 0.0, bin_s)
    if len(bursts) > MAX_BURSTS:
        warnings.append(f"{len(bursts)} bursts found; the {MAX_BURSTS} largest are written")
        bursts = sorted(sorted(bursts, key=lambda b: -(b.end_s - b.start_s) * b.signals_per_s)[:MAX_BURSTS],
                        key=lambda b: b.start_s)
    if series.restarts:
        warnings.append(f"the running totals fell {series.restarts} time(s): the service restarted; counts start "
                        "again from zero there")
    if not series.rejected_counted:
        warnings.append("no CallsRejectedDueToThrottling: every call attempted in Code Yellow counts as rejected")
    return Calibration(series, options, signals_per_call, setup, tuple(queues), service, tuple(bursts),
                       int(clean.sum()), int(clean.sum() - fit.used.sum()), profile, bin_s,
                       Estimate(holding_time_s, None, "assumed (--holding-time): Perfmon does not show it"),
                       holding_check, tuple(warnings))


HOLDING_GRID_S: Final = tuple(float(value) for value in np.geomspace(30.0, 3600.0, 25).round(1))
"""Mean holding times the check of the assumed one tries (s)."""
HOLDING_DELTA: Final = 9.0
"""How much better (in residual variances, about 3 standard errors) another holding time must fit for a warning."""


@dataclass(frozen=True)
class HoldingCheck:
    """Other mean holding times against the one assumed: the best fit and whether it fits clearly better."""

    best_s: Estimate
    better: bool
    """The best fits the Normal queue's arrivals better than the assumed by more than `HOLDING_DELTA` residual
    variances."""


def check_holding_time(series: Series, accepted: np.ndarray, arrivals: np.ndarray, used: np.ndarray,
                       assumed_s: float) -> HoldingCheck:
    """The least squares of the Normal queue's regression over the samples `used` at each of `HOLDING_GRID_S`
    and at `assumed_s`: the best holding time (a parabola in log holding time through the best grid point and
    its neighbours), its standard error from the parabola's curvature (the change of one residual variance),
    and whether it fits better than the assumed one by more than `HOLDING_DELTA` residual variances."""
    def squares(holding_s: float) -> float:
        teardown, initial = teardown_rates(accepted, series.length_s, series.down, holding_s)
        design = np.column_stack([np.ones(len(accepted)), accepted, teardown, initial])[used]
        coefficients, _, _, _ = np.linalg.lstsq(design, arrivals[used], rcond=None)
        residual = arrivals[used] - design @ coefficients
        return float(residual @ residual)

    assumed = squares(assumed_s)
    variance = max(assumed / max(1, int(used.sum()) - 4), 1e-12)
    grid = np.log(np.array(HOLDING_GRID_S))
    fits = np.array([squares(math.exp(float(x))) for x in grid])
    best = int(np.argmin(fits))
    best_log, se_log = float(grid[best]), None
    if 0 < best < len(grid) - 1:
        curvature, slope, _ = np.polyfit(grid[best - 1:best + 2], fits[best - 1:best + 2], 2)
        if curvature > 0:
            best_log = float(np.clip(-slope / (2 * curvature), grid[best - 1], grid[best + 1]))
            se_log = math.sqrt(variance / curvature)
    best_s = math.exp(best_log)
    lowest = min(float(fits[best]), squares(best_s))
    estimate = Estimate(round(best_s, 1), None if se_log is None else best_s * se_log,
                        "least squares of the Normal queue's regression over holding times 30 to 3,600 s")
    return HoldingCheck(estimate, (assumed - lowest) / variance > HOLDING_DELTA)


_LOAD_METHOD: Final = ("regression of Normal-queue arrivals on calls accepted and ending per second (holding "
                       "time {holding} s, exponential), over samples outside Code Yellow/Red")


def _plain(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _se(covariance: np.ndarray, index: int) -> float | None:
    value = float(covariance[index, index])
    return math.sqrt(value) if math.isfinite(value) and value > 0 else None


def ending_variation(teardown: np.ndarray, initial: np.ndarray | None, accepted: np.ndarray, used: np.ndarray
                     ) -> float:
    """How much the rate of calls ending varies beyond a constant and the ending of the calls held at the start
    (which the regression cannot tell from background): the standard deviation of what is left of it, over the
    samples `used`, as a share of the mean call rate.  Without it teardown signals cannot be told from
    background (a constant call rate gives about 1 %, a business day's ramp 30 %)."""
    columns = [np.ones(int(used.sum()))] + ([initial[used]] if initial is not None else [])
    design = np.column_stack(columns)
    coefficients, _, _, _ = np.linalg.lstsq(design, teardown[used], rcond=None)
    rest = teardown[used] - design @ coefficients
    mean_rate = float(np.mean(accepted[used]))
    return float(np.std(rest)) / mean_rate if mean_rate > 0 else 0.0


def _call_rate_variation(accepted_per_s: np.ndarray) -> str:
    if not len(accepted_per_s):
        return "none"
    return (f"{float(np.mean(accepted_per_s)):.3g}/s on average, {float(np.percentile(accepted_per_s, 5)):.3g} to "
            f"{float(np.percentile(accepted_per_s, 95)):.3g}/s (5th to 95th percentile)")


def _other_queue(queue: int, design: np.ndarray, y: np.ndarray, clean: np.ndarray, t_end: np.ndarray,
                 warnings: list[str]) -> QueueFit:
    """A queue the model puts no call signals in: its background is its mean arrival rate (outliers left out);
    a rate that follows the calls is reported."""
    full = robust_fit(design, y, clean, t_end)
    slope = float(full.coefficients[1] + full.coefficients[2])
    variance = float(full.covariance[1, 1] + full.covariance[2, 2] + 2 * full.covariance[1, 2])
    slope_se = math.sqrt(variance) if math.isfinite(variance) and variance > 0 else 0.0
    if slope_se and abs(slope) > 4 * slope_se and abs(slope) > 0.5:
        warnings.append(f"queue {QUEUE_NAMES[queue]}'s arrivals grow with the calls ({slope:.3g} ± {slope_se:.2g} "
                        "signals per call); the model puts call signals in the Normal queue only, so the "
                        "scenario has its mean rate as background")
    mean = robust_fit(design[:, [0]], y, clean, t_end)
    value = float(mean.coefficients[0])
    return QueueFit(queue, Estimate(value, _se(mean.covariance, 0), "mean arrival rate (outliers left out)"),
                    Estimate(slope, slope_se or None, "regression slope (for information)"),
                    int(mean.used.sum()), mean.residual_sd)


def saturated(series: Series, min_backlog: int = MIN_BACKLOG) -> np.ndarray:
    """(n, bool): intervals whose sampled second the thread was busy throughout: at least `min_backlog`
    signals waiting at both samples, no Code Red at either, QueueSignalsProcessed Total read."""
    waiting = np.nansum(series.present, axis=0)
    readable = np.isfinite(series.present).all(axis=0)
    busy = (waiting[1:] >= min_backlog) & (waiting[:-1] >= min_backlog) & readable[1:] & readable[:-1]
    busy_all_second: np.ndarray = (busy & (series.red[1:] == 0) & (series.red[:-1] == 0) & np.isfinite(series.total)
                                   & ~series.down)
    return busy_all_second


def estimate_service_time(series: Series, options: CalibrationOptions) -> ServiceTime | None:
    """The mean service time (ms) and its shape from the saturated seconds, or None with fewer than
    `MIN_SATURATED_SECONDS` of them (see the module doc)."""
    counts = series.total[saturated(series, options.min_backlog)]
    if len(counts) < MIN_SATURATED_SECONDS:
        return None
    median = float(np.median(counts))
    scale = _robust_sd(counts) or 1.0
    kept = counts[np.abs(counts - median) <= SATURATED_OUTLIER_SDS * scale]
    per_s = float(kept.mean())
    if per_s <= 0:
        return None
    spread = float(kept.std(ddof=1)) if len(kept) > 1 else 0.0
    mean_ms = 1000.0 * options.capacity_factor / per_s
    se_ms = mean_ms * spread / math.sqrt(len(kept)) / per_s if len(kept) > 1 else None
    method = (f"capacity factor {_plain(options.capacity_factor)} x 1000 / QueueSignalsProcessed Total in "
              f"{len(kept)} saturated seconds (>= {options.min_backlog} signals waiting at both ends)")
    cv_squared = spread**2 / per_s
    cv_se = math.sqrt(cv_squared) * math.sqrt(0.5 / max(1, len(kept) - 1))  # SE of c from SE of c^2
    cv = Estimate(math.sqrt(cv_squared), cv_se, "dispersion of the saturated seconds' counts (Var N / E N = c^2)")
    shape = "exponential"
    if len(kept) >= SHAPE_MIN_SECONDS and abs(cv.value - 1.0) > 3 * cv_se:
        shape = "deterministic" if cv.value < 0.05 else "lognormal"
    return ServiceTime(Estimate(mean_ms, se_ms, method), cv, shape, len(kept), options.capacity_factor)


def find_bursts(series: Series, queues: Sequence[QueueFit], signals_per_call: float, setup: Estimate | None,
                accepted: np.ndarray, teardown: np.ndarray, initial: np.ndarray, initial_coefficient: float,
                bin_s: float) -> list[Burst]:
    """Per queue, the bins of `bin_s` whose arrivals exceed the fitted model by more than `WINDOW_OUTLIER_SES`
    standard errors (and 5 % of the background, and 1 signal/s); neighbouring bins of about the same excess
    (within a fifth, or within the noise) make one burst.  Sampled less often than every second, a burst of
    one interval alone is dropped: the one second a sample shows may be a backlog draining at full speed (the
    queue's fall spread over the interval then makes the arrivals look high)."""
    arrivals = series.arrivals()
    usable = ~series.down & np.isfinite(arrivals).all(axis=0)
    setup_share = (setup.value / signals_per_call) if setup is not None else 0.5
    rejected_per_s = np.nan_to_num(series.rejected, nan=0.0) / series.length_s
    bins = np.floor(series.t_s[:-1] / bin_s + 1e-9).astype(np.int64)
    bursts: list[Burst] = []
    for fit in queues:
        expected = np.full(series.intervals, fit.background_per_s.value)
        if fit.queue == NORMAL:
            expected = expected + signals_per_call * (setup_share * accepted + (1 - setup_share) * teardown)
            expected = expected + initial_coefficient * initial + rejected_per_s  # one signal per rejection
        excess = arrivals[fit.queue] - expected
        scale = max(fit.residual_sd_per_s, 1.0)
        runs: list[list[float]] = []  # [start, end, signals, noise of the rate, bins]
        count, mean = _window_means(bins, np.nan_to_num(excess), usable)
        noise = scale / np.sqrt(np.maximum(count, 1))
        floor = max(0.05 * fit.background_per_s.value, 1.0)
        for index in np.flatnonzero((count > 0) & (mean > np.maximum(WINDOW_OUTLIER_SES * noise, floor))).tolist():
            members = usable & (bins == index)
            start = float(series.t_s[:-1][members].min())
            end = float(series.t_s[1:][members].max())
            rate = float(mean[index])
            if runs and start - runs[-1][1] <= series.interval_s * 1.5:
                last = runs[-1]
                before = last[2] / (last[1] - last[0])
                if abs(rate - before) <= max(0.2 * max(rate, before),
                                             WINDOW_OUTLIER_SES * math.hypot(float(noise[index]), last[3])):
                    runs[-1] = [last[0], end, last[2] + rate * (end - start), min(last[3], float(noise[index])),
                                last[4] + 1]
                    continue
            runs.append([start, end, rate * (end - start), float(noise[index]), 1])
        if series.interval_s > 1.5:  # one sample cannot tell a short burst from a backlog draining (see the doc)
            touching = series.interval_s * 1.5
            runs = [run for k, run in enumerate(runs) if run[4] > 1
                    or (k > 0 and run[0] - runs[k - 1][1] <= touching)
                    or (k + 1 < len(runs) and runs[k + 1][0] - run[1] <= touching)]
        bursts.extend(Burst(fit.queue, start, end, signals / (end - start)) for start, end, signals, _, _ in runs
                      if end > start)
    return sorted(bursts, key=lambda burst: (burst.start_s, burst.queue))


def call_profile(series: Series) -> tuple[tuple[tuple[float, float], ...], float]:
    """The call-attempt rate as [t_s, calls/s] points, one per bin (the bin's middle and its mean rate), and the
    bin's length: the sampling interval, at least `MIN_PROFILE_BIN_S`, and long enough for at most
    `MAX_PROFILE_POINTS` points."""
    duration_s = series.duration_s
    bin_s = max(series.interval_s, MIN_PROFILE_BIN_S, math.ceil(duration_s / MAX_PROFILE_POINTS))
    bins = np.minimum(np.floor(series.t_s[:-1] / bin_s).astype(np.int64), max(0, math.ceil(duration_s / bin_s) - 1))
    attempted = np.nan_to_num(series.attempted, nan=0.0)
    counts = np.bincount(bins, weights=attempted)
    lengths = np.bincount(bins, weights=series.length_s)
    points = []
    for index, (count, length) in enumerate(zip(counts.tolist(), lengths.tolist(), strict=True)):
        if length <= 0:
            continue
        middle = min(index * bin_s + bin_s / 2, duration_s)
        points.append((round(middle, 3), round(min(count / length, MAX_CALLS_PER_S), 4)))
    return tuple(points), float(bin_s)


# ------------------------------------------------------------------ the scenario
def scenario_data(calibration: Calibration, name: str, seed: int = 1, service_time: ServiceTime | None = None,
                  trace_file: str | None = None, time_zone: str | None = None) -> dict[str, Any]:
    """The calibrated scenario as plain data (see the module doc); `service_time` overrides the calibration's
    (which must then be known).  With `trace_file` (the recording, as the scenario names it) the calls are the
    recording's own, replayed (`load.trace`, read in `time_zone`); without, a `calls_profile` of them."""
    service = service_time or calibration.service_time
    if service is None:
        raise ValueError("the service time is not known: fit it first (fit_service_time_by_delay)")
    distribution: dict[str, Any] = {"distribution": service.shape, "mean": _rounded(service.mean_ms.value)}
    if service.shape == "lognormal" and service.cv is not None:
        distribution["cv"] = _rounded(min(max(service.cv.value, 0.01), 20.0))
    background = [
        {"name": f"calibrated-{PRIORITIES[fit.queue]}", "signals_per_s": _rounded(fit.background_per_s.value),
         "priority": PRIORITIES[fit.queue]}
        for fit in calibration.queues if fit.background_per_s.value >= 0.01
    ]
    load: dict[str, Any] = {"background": background}
    if trace_file is not None:
        trace: dict[str, Any] = {"file": trace_file, "calls": calls_counter(calibration.series.host)}
        if time_zone is not None:
            trace["time_zone"] = time_zone
        load["trace"] = trace
    else:
        load["calls_profile"] = [list(point) for point in calibration.profile]
    load["signals_per_call"] = max(1, round(calibration.signals_per_call.value))
    if calibration.setup_signals is not None:
        load["setup_signals_per_call"] = min(load["signals_per_call"], max(1, round(calibration.setup_signals.value)))
    load["holding_time_s"] = {"distribution": "exponential", "mean": _rounded(calibration.holding_time.value, 4)}
    duration_s = max(1, math.floor(calibration.series.duration_s))  # a replay may not pass the recording's end
    disturbances = [
        {"kind": "signal_burst", "start_s": _rounded(burst.start_s), "end_s": _rounded(min(burst.end_s, duration_s)),
         "signals_per_s": _rounded(burst.signals_per_s), "priority": PRIORITIES[burst.queue]}
        for burst in calibration.bursts if min(burst.end_s, duration_s) > burst.start_s
    ]
    data: dict[str, Any] = {
        "name": name,
        "description": f"Calibrated from the Perfmon recording {calibration.series.source} (host "
                       f"{calibration.series.host}) by cucm-sim calibrate.",
        "seed": seed,
        "duration_s": duration_s,
        "throttling": ThrottlingParams().model_dump(mode="json"),
        "node": {"signal_service_time_ms": distribution, "capacity_factor": service.capacity_factor},
        "load": load,
        "devices": {"count": 0},
    }
    if disturbances:
        data["disturbances"] = disturbances
    return data


def calls_counter(host: str) -> str:
    r"""The whole path of `host`'s CallsAttempted, as a trace names it (`\\HOST\Cisco CallManager\CallsAttempted`)."""
    return CounterPath(host, names.CALLMANAGER, names.CALLS_ATTEMPTED).text


def _rounded(value: float, digits: int = 5) -> float:
    """`value` to `digits` significant digits (a readable YAML number)."""
    if value == 0 or not math.isfinite(value):
        return float(value)
    return float(f"{value:.{digits}g}")


def _flow(value: Any) -> str:
    """One YAML value on one line (flow style)."""
    text: str = yaml.dump(value, Dumper=ScenarioDumper, default_flow_style=True, sort_keys=False, width=10_000)
    return text.strip().removesuffix("...").strip()


def scenario_text(calibration: Calibration, data: dict[str, Any], service: ServiceTime,
                  fit: GoodnessOfFit | None = None) -> str:
    """The calibrated scenario as commented YAML: a header with every estimate, its standard error and its
    method, the assumptions and the goodness of fit; a comment beside each calibrated key."""
    series = calibration.series
    header = [
        f"Calibrated from {series.source} (host {series.host}) by cucm-sim calibrate.",
        f"The recording: {series.duration_s:,.0f} s, a sample every {series.interval_s:g} s; "
        f"{calibration.clean_samples:,} samples outside Code Yellow/Red, {calibration.left_out_samples:,} of them "
        f"left out as outliers (bursts); {service.saturated_seconds:,} saturated seconds.",
        "",
        "Estimates (value ± one standard error, and how each was made):",
        f"  signals per call: {calibration.signals_per_call.describe()}: {calibration.signals_per_call.method}.",
    ]
    if calibration.setup_signals is not None:
        header.append(f"  set-up signals per call: {calibration.setup_signals.describe()}: "
                      f"{calibration.setup_signals.method}.")
    for fit_q in calibration.queues:
        header.append(f"  background {QUEUE_NAMES[fit_q.queue]}: {fit_q.background_per_s.describe('signals/s')}: "
                      f"{fit_q.background_per_s.method}.")
    header.append(f"  service time: {service.mean_ms.describe('ms')}: {service.mean_ms.method}.")
    if service.cv is not None:
        header.append(f"  service-time coefficient of variation: {service.cv.describe()}: {service.cv.method}; "
                      f"shape used: {service.shape}.")
    header += [
        "",
        "Assumptions (a Perfmon recording does not show these; change them if you know better):",
        f"  - call holding time exponential, mean {calibration.holding_time.describe('s')} "
        f"({calibration.holding_time.method});",
        f"  - the router thread at capacity factor {_plain(service.capacity_factor)} while recorded;",
        f"  - service-time shape {service.shape}" + (" (the default: too few saturated seconds to tell)"
                                                     if service.cv is None or service.saturated_seconds
                                                     < SHAPE_MIN_SECONDS else " (from the saturated seconds)") + ";",
        "  - Cisco's default call-throttling parameters (entry latency 20 ms, exit 40 %, sample size 10 s);",
        "  - a call rejected in Code Yellow costs one signal (rejection_signals_per_call default);",
        "  - no phones: their keepalives are in the background of their queue (devices.count 0, so a Code Red",
        "    brings no registration storm; the recorded registrations are bursts in the Low/Lowest queues).",
    ]
    if calibration.setup_signals is None:
        header.append("  - set-up signals: the default half of signals per call (the fit could not tell set-up "
                      "from teardown).")
    for warning in [*calibration.warnings, *(fit.warnings() if fit is not None else [])]:
        header.append(f"Warning: {warning}.")
    if fit is not None:
        header += ["", *fit.lines()]
    lines = [f"# {line}".rstrip() for line in header]
    lines.append("")
    lines += _yaml_lines(calibration, data, service)
    return "\n".join(lines) + "\n"


def _yaml_lines(calibration: Calibration, data: dict[str, Any], service: ServiceTime) -> list[str]:
    load = data["load"]
    node = data["node"]
    lines = [
        f"name: {_flow(data['name'])}",
        f"description: {_flow(data['description'])}",
        f"seed: {data['seed']}",
        f"duration_s: {data['duration_s']}",
        f"throttling: {_flow(data['throttling'])}  # Cisco's defaults: not in the recording",
        "node:",
        f"  signal_service_time_ms: {_flow(node['signal_service_time_ms'])}  # {service.mean_ms.describe('ms')}",
        f"  capacity_factor: {_flow(node['capacity_factor'])}  # assumed",
        "load:",
        "  background:  # per queue: signals/s that come whatever the calls (keepalives included)",
    ]
    fits = {PRIORITIES[fit.queue]: fit for fit in calibration.queues}
    for source in load["background"]:
        estimate = fits[source["priority"]].background_per_s
        lines.append(f"    - {_flow(source)}  # {estimate.describe('/s')}")
    if not load["background"]:
        lines[-1] = "  background: []"
    lines.append(f"  signals_per_call: {load['signals_per_call']}  # {calibration.signals_per_call.describe()}")
    if "setup_signals_per_call" in load:
        assert calibration.setup_signals is not None
        lines.append(f"  setup_signals_per_call: {load['setup_signals_per_call']}  # "
                     f"{calibration.setup_signals.describe()}")
    fitted = calibration.options.holding_time_s is None
    lines.append(f"  holding_time_s: {_flow(load['holding_time_s'])}  # "
                 + (f"fitted, {calibration.holding_time.describe('s')}" if fitted else "assumed"))
    if "trace" in load:
        lines.append("  trace:  # the recorded call attempts, replayed interval by interval (each interval's count, "
                     "at uniform times in it)")
        lines += [f"    {key}: {_flow(value)}" for key, value in load["trace"].items()]
    else:
        lines.append(f"  calls_profile: [  # call attempts/s, CallsAttempted over {calibration.profile_bin_s:g}-s "
                     "bins (each point the middle of its bin)")
        points = [_flow(point) for point in load["calls_profile"]]
        rows = [", ".join(points[k:k + PROFILE_POINTS_PER_LINE])
                for k in range(0, len(points), PROFILE_POINTS_PER_LINE)]
        lines += [f"    {row}," for row in rows[:-1]] + [f"    {rows[-1]}]"]
    lines.append(f"devices: {_flow(data['devices'])}  # the phones' keepalives are in the background")
    if "disturbances" in data:
        lines.append("disturbances:  # arrivals beyond what calls and background explain "
                     f"({calibration.profile_bin_s:g}-s bins)")
        lines += [f"  - {_flow(burst)}" for burst in data["disturbances"]]
    return lines


# ------------------------------------------------------------------ simulation: a service time by the delay, the fit
def simulated_counters(scenario: Scenario, times_s: np.ndarray,
                       progress: ProgressCallback | None = None) -> dict[str, np.ndarray]:
    """A run of `scenario`'s AverageExpectedDelay, CodeYellowEntryExit and CodeRedEntryExit at `times_s`
    (whole seconds from 0 to the run's duration), as the Perfmon export samples them."""
    result = simulate(scenario, progress)
    wanted = {names.AVERAGE_EXPECTED_DELAY, names.CODE_YELLOW_ENTRY_EXIT, names.CODE_RED_ENTRY_EXIT}
    index = np.clip(np.rint(times_s).astype(np.int64), 0, scenario.duration_s)
    return {path.counter: values[index] for path, values in node_counters("sim", result.timeline, result.alarms)
            if path.counter in wanted}


def fit_service_time_by_delay(calibration: Calibration, make_scenario: Callable[[float], Scenario],
                              tolerance: float = 0.02, max_runs: int = 12,
                              progress: ProgressCallback | None = None) -> ServiceTime:
    """The mean service time (ms, exponential) at which a run of `make_scenario(mean_ms)` has the recording's
    mean AverageExpectedDelay over its clean samples: a bracketed secant search in log-log (the delay grows
    with the service time), one seed (common random numbers).  UserError when the recording's delay is 0."""
    series = calibration.series
    clean = series.clean()
    recorded = float(np.nanmean(series.average_delay_ms[1:][clean]))
    if not recorded > 0:
        raise UserError([f"{series.source}: no saturated second and no AverageExpectedDelay to match: the service "
                         "time cannot be estimated (nothing waited)"])
    peak = float(np.nanmax(np.nansum(series.arrivals()[:, clean], axis=0)))
    high_ms = 0.95 * 1000.0 / max(peak, 1.0)  # no backlog was seen: the thread kept up with the busiest second

    done: list[float] = []

    def delay(mean_ms: float) -> float:
        scenario = make_scenario(mean_ms)
        report = None if progress is None else _runs_progress(progress, len(done), max_runs, scenario.duration_s)
        counters = simulated_counters(scenario, series.t_s, report)
        done.append(mean_ms)
        return float(np.mean(counters[names.AVERAGE_EXPECTED_DELAY][1:][clean]))

    low_ms = high_ms / 100
    points = [(low_ms, delay(low_ms)), (high_ms, delay(high_ms))]
    runs = 2
    while runs < max_runs:
        (a_ms, a_delay), (b_ms, b_delay) = points[-2], points[-1]
        if a_delay <= 0 or b_delay <= 0 or a_delay == b_delay:
            guess = math.sqrt(a_ms * b_ms)
        else:
            slope = (math.log(b_delay) - math.log(a_delay)) / (math.log(b_ms) - math.log(a_ms))
            guess = math.exp(math.log(b_ms) + (math.log(recorded) - math.log(b_delay)) / slope) if slope > 0 \
                else math.sqrt(a_ms * b_ms)
        guess = min(max(guess, low_ms), high_ms)
        value = delay(guess)
        runs += 1
        points.append((guess, value))
        if value > 0 and abs(value - recorded) <= tolerance * recorded:
            break
    best_ms, _ = min(points, key=lambda point: abs(point[1] - recorded))
    method = (f"fitted by simulation ({runs} runs): the mean service time at which the scenario's mean "
              f"AverageExpectedDelay outside Code Yellow/Red matches the recording's ({recorded:.3g} ms); no "
              "saturated seconds to measure it")
    return ServiceTime(Estimate(best_ms, None, method), None, "exponential", 0, calibration.options.capacity_factor)


@dataclass(frozen=True)
class Episode:
    start_s: float
    end_s: float


def episodes(times_s: np.ndarray, flag: np.ndarray) -> list[Episode]:
    """The spans where `flag` (per sample) is set, from the first sample that shows it to the first that does not."""
    spans = []
    start: float | None = None
    for t_s, on in zip(times_s.tolist(), (np.nan_to_num(flag) > 0).tolist(), strict=True):
        if on and start is None:
            start = t_s
        elif not on and start is not None:
            spans.append(Episode(start, t_s))
            start = None
    if start is not None:
        spans.append(Episode(start, float(times_s[-1])))
    return spans


@dataclass(frozen=True)
class GoodnessOfFit:
    """The calibrated scenario's AverageExpectedDelay against the recording's, over a few seeds."""

    seeds: tuple[int, ...]
    recorded_mean_ms: float
    simulated_mean_ms: float
    recorded_max_ms: float
    simulated_max_ms: tuple[float, ...]
    rmse_ms: float
    """Root mean square of (simulated - recorded), averaged over the seeds."""
    mean_rmse_ms: float
    """Of the seeds' mean profile against the recording."""
    correlation: float | None
    """Of the seeds' mean profile with the recording (None when either is constant)."""
    clean_rmse_ms: float
    """As `rmse_ms`, over the recording's samples outside Code Yellow/Red."""
    recorded_clean_mean_ms: float
    simulated_clean_mean_ms: float
    """The mean AverageExpectedDelay over the recording's samples outside Code Yellow/Red."""
    yellow_recorded_s: float
    yellow_simulated_s: tuple[float, ...]
    episodes_recorded: int
    episodes_simulated: tuple[int, ...]
    episodes_matched: int
    """Recorded Code Yellow episodes that a simulated one overlaps (within `MATCH_SLACK_S`) in at least half
    the seeds."""
    red_recorded: int
    red_simulated: tuple[int, ...]

    def warnings(self) -> list[str]:
        """What the fit says is wrong with the scenario: a delay outside Code Yellow/Red far from the recording's
        (the service time or its shape is off; a backlog that came at a lower CPU speed gives a service time
        too long, unless --capacity-factor says so)."""
        recorded, simulated = self.recorded_clean_mean_ms, self.simulated_clean_mean_ms
        if not (recorded > 0 and simulated > 0) or 1 / CLEAN_DELAY_RATIO <= simulated / recorded <= CLEAN_DELAY_RATIO:
            return []
        return [f"outside Code Yellow/Red the scenario's AverageExpectedDelay averages {simulated:.3g} ms against "
                f"the recording's {recorded:.3g} ms: its service time (or its shape) does not fit the quiet periods; "
                "if the saturated seconds came while the CPU was slowed down (a backup, a cpu_slowdown), the service "
                "time is that speed's: add the slowdown to the scenario"]

    def lines(self) -> list[str]:
        """The fit in words (for the scenario's header)."""
        seeds = ", ".join(map(str, self.seeds))
        correlation = "-" if self.correlation is None else f"{self.correlation:.3f}"
        return [
            f"Goodness of fit (this scenario run with seeds {seeds}, sampled as the recording):",
            f"  AverageExpectedDelay mean {self.simulated_mean_ms:.3g} ms (recorded {self.recorded_mean_ms:.3g}); "
            f"RMSE {self.rmse_ms:.3g} ms per run, {self.mean_rmse_ms:.3g} ms for the runs' mean; "
            f"correlation {correlation}; outside Code Yellow/Red mean {self.simulated_clean_mean_ms:.3g} ms "
            f"(recorded {self.recorded_clean_mean_ms:.3g}), RMSE {self.clean_rmse_ms:.3g} ms.",
            f"  Code Yellow {_seconds(self.yellow_simulated_s)} (recorded {self.yellow_recorded_s:,.0f} s); episodes "
            f"{_counts(self.episodes_simulated)} (recorded {self.episodes_recorded}, {self.episodes_matched} matched); "
            f"Code Red {_counts(self.red_simulated)} (recorded {self.red_recorded}).",
        ]


MATCH_SLACK_S: Final = 30.0
CLEAN_DELAY_RATIO: Final = 1.5
"""A scenario whose mean delay outside Code Yellow/Red is more than this many times the recording's (or less than
its inverse) is reported (`GoodnessOfFit.warnings`)."""


def _seconds(values: Sequence[float]) -> str:
    return " / ".join(f"{value:,.0f}" for value in values) + " s"


def _counts(values: Sequence[int]) -> str:
    return " / ".join(map(str, values))


def _runs_progress(progress: ProgressCallback, index: int, runs: int, duration_s: float) -> ProgressCallback:
    """Run `index` of `runs` of `duration_s` each, reported as simulated seconds of them all."""
    return lambda done_s, _total_s: progress(index * duration_s + done_s, runs * duration_s)


def goodness_of_fit(series: Series, scenario: Scenario, replications: int = GOOD_FIT_SEEDS,
                    progress: ProgressCallback | None = None) -> GoodnessOfFit:
    """Run `scenario` with its seed and `replications - 1` derived ones and compare each run's
    AverageExpectedDelay, Code Yellow and Code Red with the recording's at the recording's sample times."""
    assert scenario.seed is not None
    seeds = replication_seeds(scenario.seed, replications)
    times_s = series.t_s
    recorded = series.average_delay_ms
    finite = np.isfinite(recorded)
    clean_samples = np.concatenate(([False], series.clean())) & finite
    runs = [simulated_counters(scenario.model_copy(update={"seed": seed}), times_s, None if progress is None
                               else _runs_progress(progress, k, len(seeds), scenario.duration_s))
            for k, seed in enumerate(seeds)]
    delays = np.array([run[names.AVERAGE_EXPECTED_DELAY] for run in runs])
    errors = delays[:, finite] - recorded[finite]
    mean_profile = delays.mean(axis=0)
    both = mean_profile[finite], recorded[finite]
    correlation = None
    if np.std(both[0]) > 0 and np.std(both[1]) > 0:
        correlation = float(np.corrcoef(both[0], both[1])[0, 1])
    clean_errors = delays[:, clean_samples] - recorded[clean_samples]
    recorded_yellow = episodes(times_s, series.yellow)
    matched = 0
    simulated_yellow = [episodes(times_s, run[names.CODE_YELLOW_ENTRY_EXIT]) for run in runs]
    for episode in recorded_yellow:
        hits = sum(any(other.start_s < episode.end_s + MATCH_SLACK_S and other.end_s > episode.start_s - MATCH_SLACK_S
                       for other in spans) for spans in simulated_yellow)
        matched += hits * 2 >= len(runs)
    lengths = np.concatenate(([0.0], series.length_s))

    def time_in(flag: np.ndarray) -> float:
        return float(np.sum(lengths[np.nan_to_num(flag) > 0]))

    return GoodnessOfFit(
        seeds=tuple(seeds),
        recorded_mean_ms=float(np.mean(recorded[finite])),
        simulated_mean_ms=float(np.mean(delays[:, finite])),
        recorded_max_ms=float(np.max(recorded[finite])),
        simulated_max_ms=tuple(float(np.max(run)) for run in delays),
        rmse_ms=float(np.mean(np.sqrt(np.mean(errors**2, axis=1)))),
        mean_rmse_ms=float(np.sqrt(np.mean((both[0] - both[1]) ** 2))),
        correlation=correlation,
        clean_rmse_ms=float(np.mean(np.sqrt(np.mean(clean_errors**2, axis=1)))) if clean_errors.size else math.nan,
        recorded_clean_mean_ms=float(np.mean(recorded[clean_samples])) if clean_samples.any() else math.nan,
        simulated_clean_mean_ms=float(np.mean(delays[:, clean_samples])) if clean_samples.any() else math.nan,
        yellow_recorded_s=time_in(series.yellow),
        yellow_simulated_s=tuple(time_in(run[names.CODE_YELLOW_ENTRY_EXIT]) for run in runs),
        episodes_recorded=len(recorded_yellow),
        episodes_simulated=tuple(len(spans) for spans in simulated_yellow),
        episodes_matched=matched,
        red_recorded=len(episodes(times_s, series.red)),
        red_simulated=tuple(len(episodes(times_s, run[names.CODE_RED_ENTRY_EXIT])) for run in runs),
    )

