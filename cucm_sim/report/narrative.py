"""The story of a run in plain words: what happened, when and why, second by second where it matters.

Pure: `narrate(scenario, timeline, alarms, summary)` turns what a run produced into lines of text (no SimPy,
no plotting, no files; `output` writes narrative.txt and the CLI's `explain` prints it).  The story opens
with the scenario's settings in words, tells the disturbances and every alarm in time order (quoting the
alarm's own parameters and the per-second timeline), and closes with time in each state, calls rejected
and a one-line verdict.  Repetition is folded so a long run does not flood the story: the limits are the
named constants below.

Timeline convention (see `cucm_sim.measures.timeline`): row k covers the second ``(k - 1, k]``, its `state` is the
state in force during that second, so a Code Yellow episode entered at ``t = a`` and left at ``t = b``
owns the rows ``a < t_s <= b``.  Numbers: times as ``t=612 s`` (one decimal when not whole), delays in ms
with one decimal (two below 1 ms), counts with thousands separators.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from cucm_sim.rules.alarms import (
    CALLMANAGER_ONLINE,
    CODE_RED_ENTRY,
    CODE_YELLOW_ENTRY,
    CODE_YELLOW_EXIT,
    DEVICE_CLOSE_MAX_EVENTS_EXCEEDED,
    Alarm,
)
from cucm_sim.rules.throttling import NEVER_CODE_RED_MIN, ThrottleState, ThrottlingParams
from cucm_sim.scenario.schema import CallSurge, CpuSlowdown, Scenario, SignalBurst

EPISODES_TOLD_IN_FULL: Final = 2
"""The first Code Yellow episodes are told in full: entry with its second-by-second lead-in, then exit."""
CODE_RED_EPISODES_TOLD_IN_FULL: Final = 3
"""Episodes that end in Code Red are told in full (restart and registration storm included), up to this many."""
EPISODES_TOLD_IN_ONE_LINE: Final = 8
"""After those, this many episodes get one short line each; the rest share one summary line."""
LEAD_IN_SAMPLES: Final = 10
"""Most one-second expected-delay samples quoted before a Code Yellow entry (the last of the window)."""
DEVICE_CLOSES_TOLD_PER_DEVICE: Final = 2
"""DeviceCloseMaxEventsExceeded alarms told one by one per device; the next one sums up that device."""
DEVICES_TOLD: Final = 3
"""Devices whose closes are told by name; closes of any further devices share one summary line."""
DISTURBANCES_TOLD: Final = 8
"""Disturbances (by start time) whose start and end are told; the rest share one line."""
DEVICE_NAMES_LISTED: Final = 3
"""Device names quoted in the line that sums up the devices not told one by one."""

_QUEUE_DEPTH_PARAMS: Final = (
    ("high", "HighPriorityQueueDepth"),
    ("normal", "NormalPriorityQueueDepth"),
    ("low", "LowPriorityQueueDepth"),
    ("lowest", "LowestPriorityQueueDepth"),
)

# Order of events within the same second: alarms conclude the second that ends there, so they come first;
# then disturbances starting or ending at that instant; then the end of the run.
_RANK_ALARM, _RANK_DISTURBANCE, _RANK_RUN_END = 0, 1, 2


# ------------------------------------------------------------------ numbers
def format_t(t_s: float) -> str:
    """A simulated time as the story writes it: ``t=612 s``, or ``t=22.5 s`` when not a whole second."""
    return f"t={int(t_s)} s" if float(t_s).is_integer() else f"t={t_s:.1f} s"


def format_ms(value_ms: float) -> str:
    """A delay in ms: one decimal (``23.4 ms``, ``31,513.8 ms``), two below 1 ms (``0.95 ms``)."""
    return f"{_ms_number(value_ms)} ms"


def _ms_above(value_ms: float, threshold_ms: float) -> str:
    """A delay said to be above `threshold_ms`: with more decimals if one would print it equal (20.01 ms > 20 ms)."""
    text = format_ms(value_ms)
    decimals = 2
    while value_ms > threshold_ms and float(text.removesuffix(" ms").replace(",", "")) <= threshold_ms \
            and decimals <= 4:  # alarms.csv keeps four decimals: more would be noise
        text = f"{value_ms:,.{decimals}f} ms"
        decimals += 1
    return text


def _ms_number(value_ms: float) -> str:
    if 0 < abs(value_ms) < 1:
        return f"{value_ms:.2f}"
    return f"{value_ms:,.1f}"


def format_latency_ms(value_ms: float) -> str:
    """A threshold (ms): one decimal, or two when one would round it (15 ms x 33 % = 4.95 ms)."""
    one = f"{value_ms:.1f}"
    return f"{one} ms" if math.isclose(float(one), value_ms, abs_tol=1e-9) else f"{value_ms:.2f} ms"


def format_seconds(value_s: float) -> str:
    """A length of time in seconds: ``43 s``, ``1,500 s``, ``90.5 s``."""
    return f"{int(value_s):,} s" if float(value_s).is_integer() else f"{value_s:,.1f} s"


def format_duration(value_s: float) -> str:
    """A length of time, in minutes too from two minutes on: ``43 s``, ``300 s (5 min)``, ``90.5 s``."""
    text = format_seconds(value_s)
    if value_s >= 120:
        minutes = value_s / 60
        text += f" ({int(minutes)} min)" if minutes.is_integer() else f" ({minutes:.1f} min)"
    return text


def _count(value: float) -> str:
    return f"{round(value):,}"


def format_rate(value: float) -> str:
    """A rate or factor without trailing zeros: 8, 0.25, 1,150."""
    return f"{value:,g}"


def format_share(part: float, whole: float) -> str:
    """`part` as a percentage of `whole`, one decimal: ``12.5 %`` (``0.0 %`` of nothing)."""
    return f"{100 * part / whole:.1f} %" if whole else "0.0 %"


def _times(count: int) -> str:
    return "once" if count == 1 else "twice" if count == 2 else f"{count:,} times"


def plural(count: int, singular: str, many: str | None = None) -> str:
    """A count and its noun: ``1 call``, ``2,000 calls``, ``3 phones`` (`many`: an irregular plural)."""
    return f"{count:,} {singular if count == 1 else (many or singular + 's')}"


def format_ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _number_param(alarm: Alarm, name: str) -> float | None:
    value = alarm.params.get(name)
    return float(value) if isinstance(value, int | float) else None


# ------------------------------------------------------------------ the timeline, read
class _Timeline:
    """The columns the story reads, as plain arrays, and sums over the rows of a span of time."""

    def __init__(self, timeline: Mapping[str, np.ndarray]) -> None:
        self.t_s = np.asarray(timeline["t_s"], dtype=np.float64)
        self.state = np.asarray(timeline["state"]).astype(str)
        self.expected_delay_ms = np.asarray(timeline["expected_delay_ms"], dtype=np.float64)
        self.average_ms = np.asarray(timeline["average_expected_delay_ms"], dtype=np.float64)
        self.calls_attempted = np.asarray(timeline["calls_attempted"], dtype=np.float64)
        self.calls_rejected = np.asarray(timeline["calls_rejected"], dtype=np.float64)
        self.registered_devices = np.asarray(timeline["registered_devices"], dtype=np.float64)

    def rows(self, after_s: float, until_s: float) -> np.ndarray:
        """The rows covering the span ``(after_s, until_s]``: those with after_s < t_s <= until_s."""
        mask: np.ndarray = (self.t_s > after_s) & (self.t_s <= until_s)
        return mask

    def row_at(self, t_s: float) -> int | None:
        """The index of the row whose second ends at `t_s`, None if there is none."""
        hits = np.flatnonzero(np.isclose(self.t_s, t_s))
        return int(hits[0]) if hits.size else None

    def seconds_in(self, state: ThrottleState) -> int:
        return int(np.count_nonzero(self.state == state.value))


# ------------------------------------------------------------------ episodes
@dataclass
class _Episode:
    """One Code Yellow episode: entered at `entry`, ended by a CodeYellowExit, a CodeRedEntry, or the run's end."""

    number: int
    entry: Alarm
    end: Alarm | None = None
    online: Alarm | None = None
    rejected_calls: int = 0

    @property
    def ends_in_red(self) -> bool:
        return self.end is not None and self.end.name == CODE_RED_ENTRY

    def time_in_yellow_s(self, run_end_s: float) -> float:
        if self.end is None:
            return run_end_s - self.entry.t_s
        spent_s = _number_param(self.end, "TimeSpentInCodeYellow")
        return spent_s if spent_s is not None else self.end.t_s - self.entry.t_s


@dataclass
class _Story:
    """Lines collected with their time, so they can be told in time order."""

    lines: list[tuple[float, int, int, str]]

    def add(self, t_s: float, rank: int, text: str) -> None:
        self.lines.append((t_s, rank, len(self.lines), text))

    def told(self) -> list[str]:
        return [text for _t, _rank, _seq, text in sorted(self.lines)]


# ------------------------------------------------------------------ public
def narrate(
    scenario: Scenario,
    timeline: Mapping[str, np.ndarray],
    alarms: Sequence[Alarm],
    summary: Mapping[str, Any] | None = None,
) -> list[str]:
    """The story of a run as lines of text: opening, events in time order, closing paragraph.

    `timeline` holds the columns of `cucm_sim.measures.timeline.TIMELINE_COLUMNS` (one row per simulated second),
    `alarms` the run's alarms (told in time order); `summary` (optional, the summary.json dict) adds the dial-tone
    delay to the closing paragraph.  Blank lines separate the three parts.
    """
    rows = _Timeline(timeline)
    alarms = sorted(alarms, key=lambda alarm: alarm.t_s)  # stable: alarms of one instant keep their order
    episodes, others = _episodes(alarms, rows, scenario.duration_s)
    story = _Story([])
    _tell_disturbances(story, scenario)
    _tell_cold_start(story, scenario)
    _tell_episodes(story, scenario, episodes, rows)
    _tell_device_closes(story, scenario, [a for a in others if a.name == DEVICE_CLOSE_MAX_EVENTS_EXCEEDED])
    for alarm in others:
        if alarm.name != DEVICE_CLOSE_MAX_EVENTS_EXCEEDED:  # an alarm the story has no words for
            story.add(alarm.t_s, _RANK_ALARM, f"{format_t(alarm.t_s)}: {alarm.name}.")
    events = story.told() or ["Nothing happened: no disturbance, no alarm."]
    return [*_opening(scenario), "", *events, "", *_closing(scenario, rows, episodes, alarms, summary)]


def narrative_text(lines: Sequence[str]) -> str:
    """The story's lines as one text, one line each, ending with a newline."""
    return "".join(f"{line}\n" for line in lines)


# ------------------------------------------------------------------ opening
def _opening(scenario: Scenario) -> list[str]:
    seed = f", seed {scenario.seed}" if scenario.seed is not None else ""
    lines = [f"Run of scenario {scenario.name!r}: {format_duration(float(scenario.duration_s))} simulated{seed}."]
    throttling = scenario.throttling
    entry_ms = throttling.code_yellow_entry_latency_ms
    window_s = throttling.system_throttle_sample_size_s
    if not throttling.throttling_enabled:
        lines.append("Call throttling: disabled (System Throttle Sample Size 0 s): the node never enters "
                     "Code Yellow or Code Red and never rejects a call, however long signals wait.")
    else:
        if throttling.sample_rule == "consecutive_nonzero":
            rule = (f"counted once {window_s} consecutive samples are non-zero (sample_rule consecutive_nonzero)")
        elif throttling.sample_rule == "batch":
            rule = (f"judged once per batch of {window_s} consecutive non-zero samples, a zero sample starting the "
                    "batch again (sample_rule batch)")
        else:
            rule = "checked every second, zero samples included (sample_rule rolling)"
        duration_min = throttling.code_yellow_duration_min
        if duration_min == NEVER_CODE_RED_MIN:
            red = f"never Code Red (Code Yellow Duration {NEVER_CODE_RED_MIN})"
        else:
            red = f"Code Red after {duration_min} min in Code Yellow (Code Yellow Duration)"
        lines.append(
            f"Call throttling: sample size {window_s} s, so the node averages the last {window_s} one-second "
            f"expected-delay samples. Code Yellow when that average is above the entry latency {entry_ms} ms, "
            f"{rule}; back to Normal when it is {exit_words(throttling)} the exit latency "
            f"{_exit_arithmetic(scenario)}{exit_rule_note(throttling)}; {red}{whole_ms_note(throttling)}."
        )
    max_events = throttling.max_events_allowed
    if max_events:
        lines.append(f"SCCP device throttling: a phone sending more than {max_events:,} events within 5 s is "
                     "closed (Max Events Allowed).")
    else:
        lines.append("SCCP device throttling: disabled (Max Events Allowed 0).")
    lines.append(_load_line(scenario))
    return lines


def exit_words(throttling: ThrottlingParams) -> str:
    """How the average must stand to the exit latency to leave Code Yellow: 'at or below' or 'below'."""
    return "below" if throttling.exit_rule == "below" else "at or below"


def exit_rule_note(throttling: ThrottlingParams) -> str:
    """' (exit_rule below)' when the scenario reads Cisco's exit rule strictly; '' for the default."""
    return " (exit_rule below)" if throttling.exit_rule == "below" else ""


def whole_ms_note(throttling: ThrottlingParams) -> str:
    """'' for exact comparisons; under delay_resolution whole_ms, a sentence tail saying what is compared."""
    if throttling.delay_resolution != "whole_ms":
        return ""
    return (f"; averages are compared in whole ms, rounded down, with the exit latency as "
            f"{throttling.whole_exit_latency_ms} ms "
            "(delay_resolution whole_ms)")


def compared_ms(average_ms: float, throttling: ThrottlingParams) -> str:
    """An average as the comparison sees it: '8.3 ms', or under whole_ms '8.3 ms (8 ms whole)'."""
    if throttling.delay_resolution != "whole_ms":
        return format_ms(average_ms)
    return f"{format_ms(average_ms)} ({math.floor(average_ms)} ms whole)"


def _exit_arithmetic(scenario: Scenario) -> str:
    """``8.0 ms (20 ms x 40 %)``: the exit latency and how it follows from the entry latency."""
    throttling = scenario.throttling
    return (f"{format_latency_ms(throttling.exit_latency_ms)} ({throttling.code_yellow_entry_latency_ms} ms x "
            f"{throttling.code_yellow_exit_latency_pct} %)")


def _load_line(scenario: Scenario) -> str:
    load, devices = scenario.load, scenario.devices
    if load.calls_profile is not None:
        rates = [rate for _t, rate in load.calls_profile]
        calls = (f"call attempts follow a profile of {plural(len(rates), 'point')} between "
                 f"{format_rate(min(rates))} and {format_rate(max(rates))} calls/s")
    elif load.calls_per_s:
        calls = f"{format_rate(load.calls_per_s)} call attempts/s"
    else:
        calls = "no call attempts"
    if load.calls_profile is not None or load.calls_per_s:
        arrivals = "Poisson arrivals" if load.call_arrivals == "poisson" else "evenly spaced"
        calls += f" ({arrivals}), each costing {plural(load.signals_per_call, 'SDL signal')}"
    parts = [calls]
    background_per_s = sum(source.signals_per_s for source in load.background)
    if background_per_s:
        parts.append(f"background {format_rate(background_per_s)} signals/s")
    if devices.count:
        phones = f"{devices.count:,} SCCP {'phone' if devices.count == 1 else 'phones'}, a keepalive every " \
                 f"{format_rate(devices.keepalive_interval_s)} s each"
        if not devices.registered_at_start:
            phones += ", not yet registered at t=0 (cold start)"
        parts.append(phones)
        for group in devices.chatty:
            each = " each" if group.count > 1 else ""
            parts.append(f"{plural(group.count, 'chatty phone')} sending {format_rate(group.events_per_s)} events/s"
                         f"{each} from {format_t(group.start_s)} to {format_t(group.end_s)}")
    else:
        parts.append("no SCCP phones")
    return "Load: " + "; ".join(parts) + "."


# ------------------------------------------------------------------ disturbances
def _capacity_pct(scenario: Scenario, t_s: float) -> float:
    """The router thread's speed at `t_s`, in % of nominal: the node's baseline times active slowdowns."""
    factor = scenario.node.capacity_factor
    for disturbance in scenario.disturbances:
        if isinstance(disturbance, CpuSlowdown) and disturbance.start_s <= t_s < disturbance.end_s:
            factor *= disturbance.capacity_factor
    return 100 * factor


def _tell_disturbances(story: _Story, scenario: Scenario) -> None:
    run_end_s = float(scenario.duration_s)
    ordered = sorted(scenario.disturbances, key=lambda d: (d.start_s, d.end_s))
    for disturbance in ordered[:DISTURBANCES_TOLD]:
        if disturbance.start_s >= run_end_s:
            continue
        start, end = disturbance.start_s, disturbance.end_s
        until = f" (until {format_t(end)})" if end < run_end_s else " (until the end of the run)"
        if isinstance(disturbance, CpuSlowdown):
            now_pct = _capacity_pct(scenario, start)
            overall = "" if math.isclose(now_pct, 100 * disturbance.capacity_factor) else \
                f", {format_rate(round(now_pct, 3))} % of nominal in all"
            began = (f"cpu_slowdown starts: the router thread now runs at "
                     f"{format_rate(round(100 * disturbance.capacity_factor, 3))} % of its speed{overall}")
            after_pct = _capacity_pct(scenario, end)
            ended = "cpu_slowdown ends: the router thread is back to " + (
                "full speed" if math.isclose(after_pct, 100) else
                f"{format_rate(round(after_pct, 3))} % of nominal speed")
        elif isinstance(disturbance, SignalBurst):
            began = (f"signal_burst starts: {format_rate(disturbance.signals_per_s)} extra signals/s in the "
                     f"{disturbance.priority} queue")
            ended = "signal_burst ends"
        elif isinstance(disturbance, CallSurge):
            began = f"call_surge starts: {format_rate(disturbance.calls_per_s)} extra call attempts/s"
            ended = "call_surge ends"
        else:  # pragma: no cover - a new disturbance kind the story has no words for yet
            began, ended = f"{disturbance.kind} starts", f"{disturbance.kind} ends"
        story.add(start, _RANK_DISTURBANCE, f"{format_t(start)}: {began}{until}.")
        if end < run_end_s:
            story.add(end, _RANK_DISTURBANCE, f"{format_t(end)}: {ended}.")
    rest = [d for d in ordered[DISTURBANCES_TOLD:] if d.start_s < run_end_s]
    if rest:
        story.add(rest[0].start_s, _RANK_DISTURBANCE,
                  f"{format_t(rest[0].start_s)}: {plural(len(rest), 'more disturbance')} from here to "
                  f"{format_t(max(d.start_s for d in rest))}, not told one by one "
                  "(see scenario.resolved.yaml).")


def _tell_cold_start(story: _Story, scenario: Scenario) -> None:
    devices = scenario.devices
    if devices.count and not devices.registered_at_start:
        story.add(0.0, _RANK_DISTURBANCE,
                  f"{format_t(0)}: cold start: {devices.count:,} phones begin registering over "
                  f"{format_duration(devices.registration_spread_s)} (registration_spread_s), "
                  f"{plural(devices.registration_signals, 'signal')} each: a registration storm.")


# ------------------------------------------------------------------ Code Yellow, Code Red, restarts
def _episodes(alarms: Sequence[Alarm], rows: _Timeline, run_end_s: float) -> tuple[list[_Episode], list[Alarm]]:
    """Group the throttling alarms into episodes; return them and the alarms that belong to none."""
    episodes: list[_Episode] = []
    others: list[Alarm] = []
    open_episode: _Episode | None = None
    for alarm in alarms:
        if alarm.name == CODE_YELLOW_ENTRY and open_episode is None:
            open_episode = _Episode(len(episodes) + 1, alarm)
            episodes.append(open_episode)
        elif alarm.name in (CODE_YELLOW_EXIT, CODE_RED_ENTRY) and open_episode is not None:
            open_episode.end = alarm
            open_episode = None
        elif alarm.name == CALLMANAGER_ONLINE and episodes and episodes[-1].ends_in_red \
                and episodes[-1].online is None and open_episode is None:
            episodes[-1].online = alarm
        else:
            others.append(alarm)
    for episode in episodes:
        until_s = episode.end.t_s if episode.end is not None else run_end_s
        episode.rejected_calls = int(rows.calls_rejected[rows.rows(episode.entry.t_s, until_s)].sum())
    return episodes, others


def _tell_episodes(story: _Story, scenario: Scenario, episodes: list[_Episode], rows: _Timeline) -> None:
    red_told = 0
    short_told = 0
    folded: list[_Episode] = []
    for episode in episodes:
        in_full = episode.number <= EPISODES_TOLD_IN_FULL
        if episode.ends_in_red and red_told < CODE_RED_EPISODES_TOLD_IN_FULL:
            in_full = True
        if in_full:
            red_told += episode.ends_in_red
            _tell_episode_in_full(story, scenario, episode, rows)
        elif short_told < EPISODES_TOLD_IN_ONE_LINE:
            short_told += 1
            _tell_episode_in_one_line(story, scenario, episode, rows)
        else:
            folded.append(episode)
    if folded:
        _tell_folded_episodes(story, scenario, folded)


def _average_ms(alarm: Alarm, rows: _Timeline) -> float:
    """The average expected delay an alarm reports: its ExpectedAverageDelay, else the timeline's row."""
    value = _number_param(alarm, "ExpectedAverageDelay")
    if value is not None:
        return value
    row = rows.row_at(alarm.t_s)
    return float(rows.average_ms[row]) if row is not None else math.nan


def _tell_episode_in_full(story: _Story, scenario: Scenario, episode: _Episode, rows: _Timeline) -> None:
    throttling = scenario.throttling
    entry = episode.entry
    window_s = throttling.system_throttle_sample_size_s
    entry_ms = throttling.code_yellow_entry_latency_ms
    story.add(entry.t_s, _RANK_ALARM,
              f"{format_t(entry.t_s)}: the {window_s}-second average expected delay "
              f"({_ms_above(_average_ms(entry, rows), entry_ms)}) rose above the Code Yellow entry latency "
              f"({entry_ms} ms): {CODE_YELLOW_ENTRY}. New calls now get reorder tone.")
    lead_in = _lead_in(entry, rows, window_s)
    if lead_in:
        story.add(entry.t_s, _RANK_ALARM, lead_in)
    end = episode.end
    spent_s = episode.time_in_yellow_s(float(scenario.duration_s))
    rejected = plural(episode.rejected_calls, "call")
    if end is None:
        story.add(float(scenario.duration_s), _RANK_RUN_END,
                  f"{format_t(scenario.duration_s)}: the run ends in Code Yellow, {format_duration(spent_s)} after "
                  f"entry; {rejected} rejected so far.")
    elif end.name == CODE_YELLOW_EXIT:
        story.add(end.t_s, _RANK_ALARM,
                  f"{format_t(end.t_s)}: average {compared_ms(_average_ms(end, rows), throttling)} "
                  f"{'<' if throttling.exit_rule == 'below' else '<='} exit latency "
                  f"{_exit_arithmetic(scenario)}: {CODE_YELLOW_EXIT} after {format_duration(spent_s)}, "
                  f"{rejected} rejected. New calls are admitted again.")
    else:
        _tell_code_red(story, scenario, episode, rows)


def _lead_in(entry: Alarm, rows: _Timeline, window_s: int) -> str:
    """Second by second before an entry: the last samples of the window and how the average climbed."""
    shown = np.flatnonzero(rows.rows(entry.t_s - min(window_s, LEAD_IN_SAMPLES), entry.t_s))
    if shown.size == 0:
        return ""
    first, last = int(shown[0]), int(shown[-1])
    samples = ", ".join(_ms_number(float(v)) for v in rows.expected_delay_ms[shown])
    span = format_t(rows.t_s[first]) if first == last else \
        f"t={_t_number(rows.t_s[first])}..{_t_number(rows.t_s[last])} s"
    before = first - 1 if first > 0 else first
    text = (f"    Second by second, {span}: expected-delay samples {samples} ms; the {window_s}-second average "
            f"went from {format_ms(float(rows.average_ms[before]))} to {format_ms(float(rows.average_ms[last]))}.")
    waiting = [(queue, _number_param(entry, param)) for queue, param in _QUEUE_DEPTH_PARAMS]
    queued = [f"{_count(depth)} {queue}" for queue, depth in waiting if depth]
    if queued:
        text += f" Signals waiting at entry: {', '.join(queued)}."
    return text


def _t_number(t_s: float) -> str:
    return format_t(t_s).removeprefix("t=").removesuffix(" s")


def _tell_code_red(story: _Story, scenario: Scenario, episode: _Episode, rows: _Timeline) -> None:
    red = episode.end
    assert red is not None
    throttling = scenario.throttling
    spent_s = episode.time_in_yellow_s(float(scenario.duration_s))
    restart_s = scenario.node.restart_duration_s
    # The row at red.t_s is sampled after the restart began (no phone registered): read the second before.
    row = rows.row_at(red.t_s - 1)
    phones = int(rows.registered_devices[row]) if row is not None else scenario.devices.count
    depths = [_number_param(red, param) for _queue, param in _QUEUE_DEPTH_PARAMS]
    queued = f" ({_count(sum(d for d in depths if d is not None))})" if any(d is not None for d in depths) else ""
    lost_phones = f", its {phones:,} registered phones lose it" if phones else ""
    story.add(red.t_s, _RANK_ALARM,
              f"{format_t(red.t_s)}: Code Yellow has lasted the Code Yellow Duration "
              f"({throttling.code_yellow_duration_min} min) and the average "
              f"({_ms_above(_average_ms(red, rows), throttling.exit_latency_ms)}) "
              f"is still {'at or above' if throttling.exit_rule == 'below' else 'above'} the exit latency "
              f"{format_latency_ms(throttling.exit_latency_ms)}: {CODE_RED_ENTRY} "
              "after "
              f"{format_duration(spent_s)} in Code Yellow, {plural(episode.rejected_calls, 'call')} rejected in that "
              f"episode. The CallManager service restarts: the signals in its queues{queued} are lost"
              f"{lost_phones}, and new calls fail until it is back, {format_seconds(restart_s)} later "
              "(restart_duration_s).")
    online = episode.online
    if online is None:
        return
    failed = int(rows.calls_attempted[rows.rows(red.t_s, online.t_s)].sum())
    lost = _number_param(online, "SignalsLostInRestart")
    lost_text = f"{_count(lost)} signals were lost and " if lost is not None else ""
    down_s = online.t_s - red.t_s
    text = (f"{format_t(online.t_s)}: {CALLMANAGER_ONLINE}: the node is back after {format_duration(down_s)} down; "
            f"{lost_text}{plural(failed, 'call attempt')} failed while it was down.")
    devices = scenario.devices
    if devices.count:
        text += (f" Its {devices.count:,} phones re-register over {format_duration(devices.registration_spread_s)} "
                 f"(registration_spread_s), {plural(devices.registration_signals, 'signal')} each in the Low "
                 "and Lowest queues: a registration storm")
        after = np.flatnonzero((rows.t_s > online.t_s) & (rows.registered_devices >= devices.count))
        if after.size:
            text += f"; all were registered again by {format_t(rows.t_s[int(after[0])])}."
        else:
            text += f"; {_count(rows.registered_devices[-1])} were registered when the run ended."
    story.add(online.t_s, _RANK_ALARM, text)


def _tell_episode_in_one_line(story: _Story, scenario: Scenario, episode: _Episode, rows: _Timeline) -> None:
    throttling = scenario.throttling
    entry, end = episode.entry, episode.end
    spent_s = episode.time_in_yellow_s(float(scenario.duration_s))
    began = (f"{format_t(entry.t_s)}: Code Yellow episode {episode.number} (average "
             f"{_ms_above(_average_ms(entry, rows), throttling.code_yellow_entry_latency_ms)} > "
             f"{throttling.code_yellow_entry_latency_ms} ms)")
    rejected = plural(episode.rejected_calls, "call")
    if end is None:
        story.add(entry.t_s, _RANK_ALARM,
                  f"{began}, still in Code Yellow when the run ends: {format_duration(spent_s)} so far, {rejected} "
                  "rejected.")
    elif end.name == CODE_YELLOW_EXIT:
        story.add(entry.t_s, _RANK_ALARM,
                  f"{began} until {format_t(end.t_s)} (average {format_ms(_average_ms(end, rows))} <= "
                  f"{format_latency_ms(throttling.exit_latency_ms)}): {format_duration(spent_s)}, {rejected} rejected.")
    else:
        back = f"; back online at {format_t(episode.online.t_s)}" if episode.online is not None else ""
        story.add(entry.t_s, _RANK_ALARM,
                  f"{began} until {CODE_RED_ENTRY} at {format_t(end.t_s)}: {format_duration(spent_s)}, {rejected} "
                  f"rejected; the service restarted{back}.")


def _tell_folded_episodes(story: _Story, scenario: Scenario, folded: list[_Episode]) -> None:
    run_end_s = float(scenario.duration_s)
    first, last = folded[0], folded[-1]
    spans_s = [episode.time_in_yellow_s(run_end_s) for episode in folded]
    last_end = last.end.t_s if last.end is not None else run_end_s
    reds = sum(episode.ends_in_red for episode in folded)
    red_text = f", {reds:,} of them ending in Code Red and a restart" if reds else ""
    story.add(first.entry.t_s, _RANK_ALARM,
              f"{format_t(first.entry.t_s)} to {format_t(last_end)}: {len(folded):,} more Code Yellow episodes "
              f"(numbers {first.number} to {last.number}), not told one by one: {format_duration(min(spans_s))} to "
              f"{format_duration(max(spans_s))} each, {format_duration(sum(spans_s))} in all, "
              f"{plural(sum(e.rejected_calls for e in folded), 'call')} rejected{red_text}.")


# ------------------------------------------------------------------ SCCP device throttling
def _tell_device_closes(story: _Story, scenario: Scenario, closes: list[Alarm]) -> None:
    by_device: dict[str, list[Alarm]] = {}
    for alarm in closes:
        by_device.setdefault(str(alarm.params.get("DeviceName", "a phone")), []).append(alarm)
    told_devices = list(by_device)[:DEVICES_TOLD]
    delay_s = scenario.devices.throttled_reregister_delay_s
    for device in told_devices:
        device_closes = by_device[device]
        for index, alarm in enumerate(device_closes[:DEVICE_CLOSES_TOLD_PER_DEVICE]):
            events = _number_param(alarm, "TotalEventsReceived")
            limit = _number_param(alarm, "MaxEventsAllowed")
            sent = f"{_count(events)} events within 5 s" if events is not None else "too many events within 5 s"
            allowed = f" ({_count(limit)})" if limit is not None else ""
            if index == 0:
                text = (f"{format_t(alarm.t_s)}: phone {device} sent {sent}, more than Max Events Allowed"
                        f"{allowed}: {DEVICE_CLOSE_MAX_EVENTS_EXCEEDED}. CUCM closes its connection; it "
                        f"re-registers after {format_duration(delay_s)} (throttled_reregister_delay_s).")
            else:
                text = (f"{format_t(alarm.t_s)}: {device} closed again ({sent}): "
                        f"{DEVICE_CLOSE_MAX_EVENTS_EXCEEDED}, the {format_ordinal(index + 1)} time.")
            story.add(alarm.t_s, _RANK_ALARM, text)
        if len(device_closes) > DEVICE_CLOSES_TOLD_PER_DEVICE:
            next_close = device_closes[DEVICE_CLOSES_TOLD_PER_DEVICE]
            story.add(next_close.t_s, _RANK_ALARM,
                      f"{format_t(next_close.t_s)}: {device} keeps going over the limit: closed "
                      f"{_times(len(device_closes))} in all between {format_t(device_closes[0].t_s)} and "
                      f"{format_t(device_closes[-1].t_s)}.")
    other_devices = list(by_device)[DEVICES_TOLD:]
    if other_devices:
        other_closes = sorted((a for d in other_devices for a in by_device[d]), key=lambda a: a.t_s)
        more = ", ..." if len(other_devices) > DEVICE_NAMES_LISTED else ""
        names = ", ".join(other_devices[:DEVICE_NAMES_LISTED]) + more
        story.add(other_closes[0].t_s, _RANK_ALARM,
                  f"{format_t(other_closes[0].t_s)}: {plural(len(other_devices), 'more phone')} ({names}) "
                  f"exceeded Max Events Allowed too: {plural(len(other_closes), 'close')} "
                  f"({DEVICE_CLOSE_MAX_EVENTS_EXCEEDED}) between {format_t(other_closes[0].t_s)} and "
                  f"{format_t(other_closes[-1].t_s)}.")


# ------------------------------------------------------------------ closing
def _closing(scenario: Scenario, rows: _Timeline, episodes: list[_Episode], alarms: Sequence[Alarm],
             summary: Mapping[str, Any] | None) -> list[str]:
    throttling = scenario.throttling
    normal_s, yellow_s, red_s = (rows.seconds_in(state) for state in ThrottleState)
    lines = [f"In all, over {format_duration(float(len(rows.t_s)))}: Normal {format_duration(float(normal_s))}, "
             f"Code Yellow {format_duration(float(yellow_s))}, Code Red {format_duration(float(red_s))}."]
    attempted = int(rows.calls_attempted.sum())
    rejected = int(rows.calls_rejected.sum())
    failed = int(rows.calls_attempted[rows.state == ThrottleState.CODE_RED.value].sum())
    calls = (f"Calls: {attempted:,} attempted, {rejected:,} rejected by call throttling "
             f"({format_share(rejected, attempted)})")
    if failed:
        calls += f", {failed:,} failed while the node was down ({format_share(failed, attempted)})"
    lines.append(calls + ".")
    dial_tone = _dial_tone_ms(summary)
    if dial_tone is not None:
        lines.append(f"Dial tone (off-hook to dial tone, calls admitted): p95 {format_ms(dial_tone[0])}, "
                     f"max {format_ms(dial_tone[1])}.")
    if rows.t_s.size:
        # The Code Red second's row shows the average that raised it, so the timeline holds the peak.
        column, what = (
            (rows.average_ms, f"{throttling.system_throttle_sample_size_s}-second average expected delay")
            if throttling.throttling_enabled else (rows.expected_delay_ms, "one-second expected delay")
        )
        peak = int(np.argmax(column))
        lines.append(f"Highest {what}: {format_ms(float(column[peak]))} at {format_t(rows.t_s[peak])}.")
    closes = [alarm for alarm in alarms if alarm.name == DEVICE_CLOSE_MAX_EVENTS_EXCEEDED]
    if closes:
        devices = {str(alarm.params.get("DeviceName", "")) for alarm in closes}
        lines.append(f"SCCP device throttling closed {plural(len(closes), 'connection')} of "
                     f"{plural(len(devices), 'phone')}.")
    lines.append(_verdict(scenario, rows, episodes, attempted, rejected, dial_tone))
    return lines


def _dial_tone_ms(summary: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """(p95, max) of the dial-tone delay from the summary, None when it does not say (no call admitted)."""
    if summary is None:
        return None
    delay = summary.get("dial_tone_delay_ms")
    if not isinstance(delay, Mapping):
        return None
    p95, worst = delay.get("p95"), delay.get("max")
    if isinstance(p95, int | float) and isinstance(worst, int | float):
        return float(p95), float(worst)
    return None


def _verdict(scenario: Scenario, rows: _Timeline, episodes: list[_Episode], attempted: int, rejected: int,
             dial_tone: tuple[float, float] | None) -> str:
    throttling = scenario.throttling
    p95 = f" (dial-tone p95 {format_ms(dial_tone[0])})" if dial_tone is not None else ""
    if not throttling.throttling_enabled:
        return f"Verdict: call throttling was off, so nothing held new calls back{p95}."
    restarts = sum(episode.ends_in_red for episode in episodes)
    still_yellow = bool(episodes) and episodes[-1].end is None
    ends = "; the run ends in Code Yellow" if still_yellow else ""
    if restarts:
        return (f"Verdict: throttling could not cure this overload: Code Yellow lasted the full Code Yellow "
                f"Duration ({throttling.code_yellow_duration_min} min) and the node restarted "
                f"{_times(restarts)} (Code Red){ends}.")
    if episodes:
        never = " (Code Yellow Duration 99999: it never would)" \
            if throttling.code_yellow_duration_min == NEVER_CODE_RED_MIN else ""
        return (f"Verdict: throttling protected dial tone{p95}: {plural(len(episodes), 'Code Yellow episode')} "
                f"rejected {plural(rejected, 'call')} ({format_share(rejected, attempted)}), and the node never "
                f"reached Code Red{never}{ends}.")
    peak_ms = float(rows.average_ms.max()) if rows.t_s.size else 0.0
    entry_ms = throttling.code_yellow_entry_latency_ms
    if peak_ms > entry_ms:  # possible under consecutive_nonzero: a zero sample kept resetting the run
        if throttling.sample_rule == "batch":
            when = f"at the end of a batch of {throttling.system_throttle_sample_size_s} non-zero samples"
        else:
            when = f"after {throttling.system_throttle_sample_size_s} consecutive non-zero samples"
        whole = " in whole ms" if throttling.delay_resolution == "whole_ms" else ""
        against = (f"above the {entry_ms} ms entry latency, but never{whole} {when} "
                   f"(sample_rule {throttling.sample_rule})")
    else:
        against = f"{'at' if peak_ms == entry_ms else 'below'} the {entry_ms} ms entry latency"
    dial_tone_text = f"; dial-tone p95 {format_ms(dial_tone[0])}" if dial_tone is not None else ""
    return (f"Verdict: the node never throttled: the average expected delay peaked at {format_ms(peak_ms)}, "
            f"{against}{dial_tone_text}.")
