"""The generate step of the batched engine: what arrives in a block whatever the node's state.

`ArrivalStreams` holds a node's arrival streams (`sources`) and hands out, for ``[t0_s, t1_s)``, a
`PrimaryArrivals`: the background and burst signals of each queue, every phone's keepalives, the chatty
phones' events, and the call attempts with what each needs drawn in advance (candidate devices, a
fallback draw, a holding time).  Nothing here depends on the node's state; the decide step says later
which of these a phone that is not registered never sent, and whether a call is admitted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from cucm_sim.engine.batched.events import Entry
from cucm_sim.engine.batched.sources import CallAttemptTimes, KeepaliveTimes, PoissonTimes, RecordedTimes
from cucm_sim.engine.devices import DeviceTable
from cucm_sim.rules.priorities import PRIORITY_INDEX, QUEUES
from cucm_sim.scenario.profiles import CallRateProfile
from cucm_sim.scenario.replay import recorded_load
from cucm_sim.scenario.schema import Scenario, SignalBurst

CANDIDATES_PER_CALL = 4
"""Random devices drawn per call attempt; the first registered one makes the call (`decide.pick_devices`)."""


@dataclass
class PrimaryArrivals:
    """A block's arrivals, decided by no state: what the streams hand out (times in s, sorted)."""

    plain_s: list[np.ndarray]
    """Per queue, the background and burst signals."""
    keepalive_s: np.ndarray
    keepalive_device: np.ndarray
    chatty: list[tuple[np.ndarray, np.ndarray]]
    """Per chatty group, its events: (times, devices)."""
    call_s: np.ndarray
    call_candidates: np.ndarray
    """Per call attempt, `CANDIDATES_PER_CALL` random devices."""
    call_fallback: np.ndarray
    """Per call attempt, a uniform draw in [0, 1) that picks a device when no candidate is registered."""
    call_holding_s: np.ndarray
    due: list[Entry] = field(default_factory=list)
    """The node's timed events falling in the block (`events.TimedEvents`); filled when it is computed."""

    def window(self, t0_s: float, t1_s: float) -> PrimaryArrivals:
        """The arrivals that fall in [t0_s, t1_s) (without `due`)."""

        def cut(times_s: np.ndarray) -> slice:
            lo, hi = np.searchsorted(times_s, [t0_s, t1_s], side="left")
            return slice(int(lo), int(hi))

        calls = cut(self.call_s)
        keepalives = cut(self.keepalive_s)
        return PrimaryArrivals(
            [times_s[cut(times_s)] for times_s in self.plain_s],
            self.keepalive_s[keepalives], self.keepalive_device[keepalives],
            [(times_s[cut(times_s)], ids[cut(times_s)]) for times_s, ids in self.chatty],
            self.call_s[calls], self.call_candidates[calls], self.call_fallback[calls], self.call_holding_s[calls],
        )

    @classmethod
    def joined(cls, parts: list[PrimaryArrivals]) -> PrimaryArrivals:
        """Consecutive blocks' arrivals as one block's (without `due`)."""
        if len(parts) == 1:
            return replace(parts[0], due=[])
        return cls(
            [np.concatenate([p.plain_s[q] for p in parts]) for q in range(QUEUES)],
            np.concatenate([p.keepalive_s for p in parts]),
            np.concatenate([p.keepalive_device for p in parts]),
            [
                (np.concatenate([p.chatty[g][0] for p in parts]), np.concatenate([p.chatty[g][1] for p in parts]))
                for g in range(len(parts[0].chatty))
            ],
            np.concatenate([p.call_s for p in parts]),
            np.concatenate([p.call_candidates for p in parts]),
            np.concatenate([p.call_fallback for p in parts]),
            np.concatenate([p.call_holding_s for p in parts]),
        )


class ArrivalStreams:
    """A node's arrival streams, read one block at a time, in order.

    Background sources, bursts and chatty groups get one child each of their stream's seed; so does each
    counter of a recording (`load.trace`), from the trace stream: the calls' first, then the background's.
    A recording's calls join the call attempts, its signals their queues.
    """

    def __init__(self, scenario: Scenario, streams: Mapping[str, np.random.SeedSequence],
                 rngs: Mapping[str, np.random.Generator], phones: DeviceTable) -> None:
        load = scenario.load
        self._plain = _streams_per_queue(
            [(s.signals_per_s, PRIORITY_INDEX[s.priority], 0.0, math.inf) for s in load.background],
            streams["background"],
        ) + _streams_per_queue(
            [(d.signals_per_s, PRIORITY_INDEX[d.priority], d.start_s, d.end_s)
             for d in scenario.disturbances if isinstance(d, SignalBurst)],
            streams["bursts"],
        )
        self._calls = CallAttemptTimes(
            CallRateProfile.from_scenario(scenario), load.call_arrivals, rngs["calls"], rngs["calls_thinning"]
        )
        self._recorded_calls: RecordedTimes | None = None
        if load.trace is not None:
            recorded = recorded_load(load.trace)
            seeds = iter(streams["trace"].spawn(1 + len(recorded.background)))
            calls_seed = next(seeds)
            if recorded.calls is not None:
                self._recorded_calls = RecordedTimes(recorded.calls, np.random.default_rng(calls_seed))
            self._plain += [(RecordedTimes(counts, np.random.default_rng(seed)), queue)
                            for (counts, queue), seed in zip(recorded.background, seeds, strict=True)]
        self._keepalives = [KeepaliveTimes(group.count, group.interval_s, rngs["keepalive_phase"], group.first)
                            for group in phones.keepalives]
        self._chatty: list[tuple[PoissonTimes, int, int, np.random.Generator]] = []
        groups = phones.chatty
        for group, times_seed, devices_seed in zip(groups, streams["chatty"].spawn(len(groups)),
                                                   streams["chatty_devices"].spawn(len(groups)), strict=True):
            times = PoissonTimes(group.count * group.events_per_s, np.random.default_rng(times_seed), group.start_s,
                                 group.end_s)
            self._chatty.append((times, group.first, group.count, np.random.default_rng(devices_seed)))
        self.chatty_queues = tuple(group.queue for group in groups)
        """Each chatty group's queue."""
        self._devices = max(len(phones), 1)
        self._device_rng = rngs["devices"]
        self._fallback_rng = rngs["devices_fallback"]
        self._holding_rng = rngs["holding"]
        self._holding_s = load.holding_time_s

    def generate(self, t0_s: float, t1_s: float) -> PrimaryArrivals:
        """What the streams hand out in [t0_s, t1_s) (s); blocks must come in order."""
        plain: list[list[np.ndarray]] = [[] for _ in range(QUEUES)]
        for stream, queue in self._plain:
            times_s = stream.take(t0_s, t1_s)
            if len(times_s):
                plain[queue].append(times_s)
        merged = [
            parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts), kind="stable") if parts else np.empty(0)
            for parts in plain
        ]
        keepalive_s, keepalive_device = _keepalives(self._keepalives, t0_s, t1_s)
        chatty = []
        for stream, first, count, device_rng in self._chatty:
            times_s = stream.take(t0_s, t1_s)
            chatty.append((times_s, first + device_rng.integers(count, size=len(times_s))))
        call_s = self._calls.take(t0_s, t1_s)
        if self._recorded_calls is not None:
            call_s = np.sort(np.concatenate((call_s, self._recorded_calls.take(t0_s, t1_s))), kind="stable")
        candidates = self._device_rng.integers(self._devices, size=(len(call_s), CANDIDATES_PER_CALL))
        fallback = self._fallback_rng.random(len(call_s))
        holding_s = self._holding_s.sample(self._holding_rng, len(call_s))
        return PrimaryArrivals(merged, keepalive_s, keepalive_device, chatty, call_s, candidates, fallback, holding_s)


def _keepalives(groups: list[KeepaliveTimes], t0_s: float, t1_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Every group's keepalives in [t0_s, t1_s), merged in time order."""
    if len(groups) == 1:
        return groups[0].take(t0_s, t1_s)
    parts = [group.take(t0_s, t1_s) for group in groups]
    times_s = np.concatenate([times for times, _ in parts]) if parts else np.empty(0)
    devices = np.concatenate([ids for _, ids in parts]) if parts else np.empty(0, dtype=np.int64)
    order = np.argsort(times_s, kind="stable")
    return times_s[order], devices[order]


def _streams_per_queue(
    sources: list[tuple[float, int, float, float]], seed: np.random.SeedSequence
) -> list[tuple[PoissonTimes | RecordedTimes, int]]:
    """One Poisson stream per source (rate > 0), each with its own generator, with its queue."""
    return [(PoissonTimes(rate, np.random.default_rng(child), start_s, end_s), queue)
            for (rate, queue, start_s, end_s), child in zip(sources, seed.spawn(len(sources)), strict=True)
            if rate > 0]
