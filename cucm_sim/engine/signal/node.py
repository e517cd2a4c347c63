"""The per-signal SimPy model of one CUCM node (engine ``signal``), a `NodeEngine` (see `engine.interface`).

Simulates the SDL router thread and its four queues, the load sources (background signals, call
attempts, keepalives, chatty phones, disturbances), the registration dialogue, the Code Red restart, and
the per-second throttling sample, on the world's clock.  The phones are the world's: their states live in
the world's device table, and the world starts every registration storm (it delivers each phone's
arrival).  Everything random comes from generators seeded by the node's `SeedSequence` children; the
throttling and SCCP rules come from the pure `rules` package.

Choices the model makes (DOMAIN.md leaves them open):

* **Wait** is a signal's time in its queue before service starts; service time is excluded.
* **Expected delay sample** (taken at the end of every simulated second k, for the second (k-1, k]):
  the mean wait (ms) of the signals that *started service* in that second; if none started but signals
  are waiting, the age (ms) of the oldest waiting signal (the thread is stuck); 0 when nothing waited.
* **Service** is non-preemptive; a signal's service time is its draw divided by the capacity factor in
  force when its service starts.
* **Recorded load** (`load.trace`): each counter's arrivals come interval by interval, the interval's
  whole count placed at uniform times in it (`scenario.replay` states the rules); recorded calls take the
  call path below, recorded signals queue as background signals do.
* **Call admission** is decided when the attempt arrives, from the throttling state of that second:
  in Code Yellow the attempt is rejected (reorder tone) and costs `rejection_signals_per_call` normal
  signals; while the node restarts the attempt fails.  An accepted call queues its off-hook signal; the
  **delay to dial tone** is that signal's wait plus service.  Once it is handled the rest of the
  set-up signals follow at once, and the teardown signals after the holding time.  Each call belongs
  to a random registered device (when there are devices) and its signals count as that device's events.
* **Registration** is one lowest-priority signal, then `registration_signals - 1` low-priority signals
  once it is handled; the device is registered when the last is handled.
* **Code Red** stops the node at once for `restart_duration_s`: queued signals and the one in service
  are lost (counted), calls in progress are gone, every device loses its registration (the world clears
  them on the alarm).  When the node is back (alarm CallManagerOnline) the state machine is reset and the
  world has every device start registering at a uniformly random time within `registration_spread_s`:
  the registration storm.  A registration delivered before a restart is void after it.
* **SCCP throttling**: a device exceeding Max Events Allowed is closed (alarm
  DeviceCloseMaxEventsExceeded), unregisters, and starts re-registering after `throttled_reregister_delay_s`.
"""

from __future__ import annotations

import copy
import functools
from collections import deque
from collections.abc import Callable, Generator, Mapping
from typing import Any, ClassVar

import numpy as np
import simpy

from cucm_sim.engine.devices import DeviceTable, KeepaliveGroup
from cucm_sim.engine.interface import NodeCounters, OnAlarm, PhoneArrives, PhoneEvent
from cucm_sim.engine.second_end import BacklogLimit, Readings, SecondEnds, expected_delay_ms
from cucm_sim.engine.vocabulary import NODE_STREAMS, REGISTERED, REGISTERING, SIGNAL_STREAMS, UNREGISTERED
from cucm_sim.measures.stats import LogHistogram
from cucm_sim.rules.alarms import CODE_RED_ENTRY, callmanager_online, device_closed, device_registered
from cucm_sim.rules.priorities import LOW, LOWEST, NORMAL, PRIORITIES, PRIORITY_INDEX
from cucm_sim.rules.sccp import SccpEventLimiter
from cucm_sim.rules.throttling import ThrottleState, ThrottleStateMachine
from cucm_sim.scenario.distributions import DrawBuffer, Exponential
from cucm_sim.scenario.profiles import CallRateProfile, capacity_breakpoints
from cucm_sim.scenario.replay import IntervalCounts, recorded_load, whole_count
from cucm_sim.scenario.schema import Scenario, SignalBurst
from cucm_sim.scenario.workload import MAX_QUEUED_SIGNALS, SIGNAL_COSTS

OnDone = Callable[[float, float], None]
"""Called when a signal's service ends, with its wait and service time (s)."""

Signal = tuple[float, OnDone | None]
"""A queued SDL signal: (arrival time s, completion callback or None)."""


class SdlRouter:
    """The single SDL router thread: four strict-priority FIFO queues, one signal in service at a time."""

    def __init__(self, env: simpy.Environment, service_ms: DrawBuffer, on_wait: Callable[[int, float], None]) -> None:
        self.env = env
        self.queues: list[deque[Signal]] = [deque() for _ in PRIORITIES]
        self.capacity_factor = 1.0
        self.up = True
        self.in_service = False
        self.signals_processed = 0
        self.processed_by_queue = [0] * len(PRIORITIES)
        """Signals handled so far, per queue (highest first)."""
        self._service_ms = service_ms
        self._on_wait = on_wait
        self._idle: simpy.Event | None = None
        self._back_up: simpy.Event | None = None
        self._process = env.process(self._serve())

    def submit(self, priority: int, on_done: OnDone | None = None) -> bool:
        """Queue a signal now; False (and nothing queued) while the node is down."""
        if not self.up:
            return False
        self.queues[priority].append((self.env.now, on_done))
        if self._idle is not None and not self._idle.triggered:
            self._idle.succeed()
        return True

    def queue_depths(self) -> list[int]:
        """Signals waiting per priority, highest first (the in-service one excluded)."""
        return [len(queue) for queue in self.queues]

    def oldest_waiting_arrival_s(self) -> float | None:
        """Arrival time of the longest-waiting queued signal, None when all queues are empty."""
        heads = [queue[0][0] for queue in self.queues if queue]
        return min(heads) if heads else None

    def crash(self) -> int:
        """Stop now: drop every queued signal and the one in service; return how many were lost."""
        lost = sum(len(queue) for queue in self.queues) + int(self.in_service)
        for queue in self.queues:
            queue.clear()
        self.up = False
        self.in_service = False
        self._back_up = self.env.event()
        self._process.interrupt()
        return lost

    def restart(self) -> None:
        """Back in service after a crash."""
        self.up = True
        assert self._back_up is not None
        self._back_up.succeed()

    def _next_signal(self) -> tuple[int, Signal] | None:
        for priority, queue in enumerate(self.queues):
            if queue:
                return priority, queue.popleft()
        return None

    def _serve(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        while True:
            try:
                picked = self._next_signal()
                if picked is None:
                    self._idle = env.event()
                    yield self._idle
                    self._idle = None
                    continue
                priority, (arrival_s, on_done) = picked
                wait_s = env.now - arrival_s
                self._on_wait(priority, wait_s)
                service_s = self._service_ms.next() / 1000.0 / self.capacity_factor
                self.in_service = True
                yield env.timeout(service_s)
                self.in_service = False
                self.signals_processed += 1
                self.processed_by_queue[priority] += 1
                if on_done is not None:
                    on_done(wait_s, service_s)
            except simpy.Interrupt:
                self._idle = None
                assert self._back_up is not None
                yield self._back_up


class NodeModel:
    """One CUCM node under a scenario's load, per signal; `attach` it to a world (`engine.interface`)."""

    stream_names: ClassVar[tuple[str, ...]] = SIGNAL_STREAMS

    def __init__(self, scenario: Scenario, streams: Mapping[str, np.random.SeedSequence]) -> None:
        self.scenario = scenario
        self.rngs = {name: np.random.default_rng(streams[name]) for name in NODE_STREAMS if name != "registration"}
        self._recorded = recorded_load(scenario.load.trace) if scenario.load.trace is not None else None
        self._trace_seeds = streams["trace"]
        self.duration_s = scenario.duration_s
        self.throttle = ThrottleStateMachine(scenario.throttling)
        self.limiter = SccpEventLimiter(scenario.throttling.max_events_allowed)
        self.epoch = 0  # incremented by every restart: callbacks from before it are void
        self._over = False  # the last sample is taken: the node's sources stop
        self._final: NodeCounters | None = None

        self.wait_ms = LogHistogram()
        self.wait_ms_by_priority = [LogHistogram() for _ in PRIORITIES]
        self.dial_tone_delay_ms = LogHistogram()
        self._unit_exponential = Exponential(mean=1.0)
        self._holding_s = DrawBuffer(scenario.load.holding_time_s, self.rngs["holding"])

        # Per-second accumulators, reset by the sampler.
        self._second_wait_sum_s = 0.0
        self._second_starts = 0
        self._second_calls_attempted = 0
        self._second_calls_rejected = 0
        self._processed_at_last_sample = [0] * len(PRIORITIES)

        # Totals.
        self.calls_attempted = 0
        self.calls_accepted = 0
        self.calls_rejected_throttled = 0
        self.calls_failed_node_down = 0
        self.signals_lost_restart = 0
        self.signals_dropped_node_down = 0
        self.skinny_devices_throttled = 0

        self.seconds = SecondEnds(self.throttle, self.duration_s, BacklogLimit(
            MAX_QUEUED_SIGNALS["signal"], "signal", scenario.name,
            scenario.node.capacity_factor * 1000.0 / scenario.node.signal_service_time_ms.mean,
            SIGNAL_COSTS.bytes_per_queued_signal,
        ))
        self.timeline = self.seconds.timeline
        self.states = self.seconds.states

    # ------------------------------------------------------------ the seam
    def attach(self, env: simpy.Environment, phones: DeviceTable, on_alarm: OnAlarm) -> None:
        """Join the world: start the node's processes on `env`, serving `phones`, reporting to `on_alarm`."""
        self.env = env
        self.phones = phones
        self._report = on_alarm
        self.router = SdlRouter(
            env, DrawBuffer(self.scenario.node.signal_service_time_ms, self.rngs["service"]), self._record_wait
        )
        self._start_processes()

    def deliver(self, t_s: float, event: PhoneEvent) -> None:
        """A phone arrives (starts registering) or leaves at `t_s`; a restart before then voids an arrival."""
        if t_s < self.env.now:
            raise ValueError(f"delivery at {t_s} s is in the past of the signal engine ({self.env.now} s)")
        if isinstance(event, PhoneArrives):
            self.env.timeout(t_s - self.env.now).callbacks.append(
                functools.partial(self._register_callback, event.device, self.epoch))
        else:
            self.env.timeout(t_s - self.env.now).callbacks.append(lambda _event: self._leave(event.device))

    def committed_until_s(self) -> float:
        """Everything up to now is final: the engine plays events as they come."""
        return float(self.env.now)

    def limit_lookahead(self, seconds: int) -> None:
        """Nothing to limit: the per-signal engine never runs ahead of the clock."""

    @property
    def finished(self) -> simpy.Event:
        """The sampler's process: it ends with the last second's sample."""
        return self._sampler_process

    def counters(self) -> NodeCounters:
        """The node's totals and timeline so far; once finished, as they were when the last sample was taken."""
        return self._final if self._final is not None else self._counters_now()

    def _freeze(self, _event: simpy.Event) -> None:
        """The node's run is over: keep its counters as they are, stop its sources, report nothing more.

        Called when the sampler's end is processed, the moment a one-node world stops; in a world whose
        other nodes run on, this node must neither change its results nor load the clock any longer.
        """
        self._final = copy.deepcopy(self._counters_now())
        self._over = True
        self._report = lambda _alarm: None

    def _counters_now(self) -> NodeCounters:
        return NodeCounters(
            self.calls_attempted, self.calls_accepted, self.calls_rejected_throttled, self.calls_failed_node_down,
            self.router.signals_processed, self.signals_lost_restart, self.signals_dropped_node_down,
            self.skinny_devices_throttled, self.phones.registered, self.seconds.max_average_expected_delay_ms,
            self.wait_ms, tuple(self.wait_ms_by_priority), self.dial_tone_delay_ms, self.states, self.timeline,
        )

    # ----------------------------------------------------------------- set-up
    def _start_processes(self) -> None:
        env, scenario = self.env, self.scenario
        background_rng = self.rngs["background"]
        for source in scenario.load.background:
            if source.signals_per_s > 0:
                env.process(self._poisson_signals(
                    source.signals_per_s, PRIORITY_INDEX[source.priority], 0.0, float("inf"), background_rng
                ))
        for burst in scenario.disturbances:
            if isinstance(burst, SignalBurst):
                env.process(self._poisson_signals(
                    burst.signals_per_s, PRIORITY_INDEX[burst.priority], burst.start_s, burst.end_s, self.rngs["bursts"]
                ))
        calls = CallRateProfile.from_scenario(scenario)
        if calls.max_rate_per_s() > 0:
            env.process(self._call_attempts(calls))
        if self._recorded is not None:  # one generator per counter: the calls' first, then the background's
            seeds = iter(self._trace_seeds.spawn(1 + len(self._recorded.background)))
            calls_seed = next(seeds)
            if self._recorded.calls is not None:
                env.process(self._recorded_arrivals(self._recorded.calls, np.random.default_rng(calls_seed),
                                                    self._call_attempt))
            for (counts, queue), seed in zip(self._recorded.background, seeds, strict=True):
                env.process(self._recorded_arrivals(counts, np.random.default_rng(seed),
                                                    functools.partial(self._submit, queue)))
        env.process(self._capacity_changes())
        for pool in self.phones.keepalives:  # each draws its phases when it starts, in order
            env.process(self._keepalives(pool))
        for group in self.phones.chatty:
            for device in range(group.first, group.first + group.count):
                env.process(self._chatty_device(device, group.events_per_s, group.start_s, group.end_s, group.queue))
        self._sampler_process = env.process(self._sampler())
        self._sampler_process.callbacks.append(self._freeze)

    # ------------------------------------------------------------ the router
    def _record_wait(self, priority: int, wait_s: float) -> None:
        wait_ms = wait_s * 1000.0
        self.wait_ms.add(wait_ms)
        self.wait_ms_by_priority[priority].add(wait_ms)
        self._second_wait_sum_s += wait_s
        self._second_starts += 1

    def _submit(self, priority: int, on_done: OnDone | None = None) -> None:
        if self._over:
            return
        if not self.router.submit(priority, on_done):
            self.signals_dropped_node_down += 1

    def _capacity_changes(self) -> Generator[simpy.Event, Any, None]:
        for t_s, factor in capacity_breakpoints(self.scenario):
            if t_s > self.env.now:
                yield self.env.timeout(t_s - self.env.now)
            self.router.capacity_factor = factor

    def _poisson_signals(
        self, rate_per_s: float, priority: int, start_s: float, end_s: float, rng: np.random.Generator
    ) -> Generator[simpy.Event, Any, None]:
        gaps = DrawBuffer(self._unit_exponential, rng)
        mean_gap_s = 1.0 / rate_per_s
        env = self.env
        if start_s > env.now:
            yield env.timeout(start_s - env.now)
        while not self._over:
            yield env.timeout(gaps.next() * mean_gap_s)
            if env.now >= end_s:
                return
            self._submit(priority)

    def _recorded_arrivals(self, counts: IntervalCounts, rng: np.random.Generator, arrive: Callable[[], None]
                           ) -> Generator[simpy.Event, Any, None]:
        """A recording's arrivals, interval by interval (`scenario.replay`): the interval's whole count, then that
        many uniform times in it, sorted; `arrive()` at each."""
        env = self.env
        for start_s, end_s, count in zip(counts.starts_s.tolist(), counts.ends_s.tolist(), counts.counts.tolist(),
                                         strict=True):
            if self._over or start_s >= self.duration_s:
                return
            arrivals = whole_count(count, rng.random()) if count != int(count) else int(count)
            if not arrivals:
                continue
            for t_s in np.sort(start_s + rng.random(arrivals) * (end_s - start_s)).tolist():
                yield env.timeout(max(t_s - env.now, 0.0))
                if self._over:
                    return
                arrive()

    # ----------------------------------------------------------------- calls
    def _call_attempts(self, calls: CallRateProfile) -> Generator[simpy.Event, Any, None]:
        env, rng = self.env, self.rngs["calls"]
        if self.scenario.load.call_arrivals == "constant":
            while not self._over:
                rate = calls.rate_per_s(env.now)
                if rate <= 0:
                    yield env.timeout(1.0)
                    continue
                yield env.timeout(1.0 / rate)
                self._call_attempt()
        max_rate = calls.max_rate_per_s()
        gaps = DrawBuffer(self._unit_exponential, rng)
        uniforms: list[float] = []
        while not self._over:  # a time-varying Poisson process by thinning (Lewis & Shedler)
            yield env.timeout(gaps.next() / max_rate)
            if not uniforms:
                uniforms = rng.random(4096).tolist()
            if uniforms.pop() * max_rate < calls.rate_per_s(env.now):
                self._call_attempt()

    def _pick_device(self) -> int | None:
        if not self.phones.registered:
            return None
        rng = self.rngs["devices"]
        states = self.phones.state
        while True:  # rejection sampling: most devices are registered most of the time
            device = int(rng.integers(len(states)))
            if states[device] == REGISTERED:
                return device

    def _call_attempt(self) -> None:
        cluster = self.phones.calls_follow_phones
        if cluster:  # the call is a random phone's of the cluster: this node's if that phone is registered here
            if not len(self.phones):
                return
            drawn = int(self.rngs["devices"].integers(len(self.phones)))
            if self.phones.state[drawn] != REGISTERED:
                return
            device: int | None = drawn
        self.calls_attempted += 1
        self._second_calls_attempted += 1
        if not self.router.up:
            self.calls_failed_node_down += 1
            return
        if not cluster:
            device = self._pick_device()
        load = self.scenario.load
        if self.throttle.state is ThrottleState.CODE_YELLOW:
            self.calls_rejected_throttled += 1
            self._second_calls_rejected += 1
            for _ in range(load.rejection_signals_per_call):
                self._device_signal(device, NORMAL)
            return
        self.calls_accepted += 1
        epoch = self.epoch

        def dial_tone(wait_s: float, service_s: float) -> None:
            self.dial_tone_delay_ms.add((wait_s + service_s) * 1000.0)
            setup_signals = (load.setup_signals_per_call or 1) - 1
            for _ in range(setup_signals):
                self._device_signal(device, NORMAL)
            holding_s = self._holding_s.next()
            self.env.timeout(holding_s).callbacks.append(lambda _event: teardown())

        def teardown() -> None:
            if self.epoch != epoch:
                return  # the node restarted during the call: it is gone
            for _ in range(load.signals_per_call - (load.setup_signals_per_call or 1)):
                self._device_signal(device, NORMAL)

        self._device_signal(device, NORMAL, dial_tone)

    # --------------------------------------------------------------- devices
    def _device_signal(self, device: int | None, priority: int, on_done: OnDone | None = None) -> None:
        """Queue a signal caused by `device` (None: no device), counting it as one SCCP event."""
        self._submit(priority, on_done)
        if device is None or not self.router.up:
            return
        total_events = self.limiter.record(device, self.env.now)
        if total_events is not None:
            self._throttle_device(device, total_events)

    def _throttle_device(self, device: int, total_events: int) -> None:
        """SCCP closes `device`: it unregisters and, by the phones' rule, registers again after a delay."""
        self.skinny_devices_throttled += 1
        self._report(device_closed(self.env.now, device, total_events, self.limiter.max_events_allowed,
                                   self.skinny_devices_throttled))
        self._leave(device)
        epoch = self.epoch
        delay_s = self.phones.reregister_delay_s
        self.env.timeout(delay_s).callbacks.append(functools.partial(self._register_callback, device, epoch))

    def _leave(self, device: int) -> None:
        """`device` is no longer registered with this node."""
        if self.phones.state[device] == REGISTERED:
            self.phones.registered -= 1
        self.phones.state[device] = UNREGISTERED

    def _register(self, device: int, epoch: int) -> None:
        """Start `device`'s registration dialogue (unless a restart made this request void)."""
        states = self.phones.state
        if epoch != self.epoch or states[device] != UNREGISTERED or not self.router.up:
            return
        states[device] = REGISTERING
        remaining = self.phones.registration_signals - 1

        def finish() -> None:
            if epoch == self.epoch and states[device] == REGISTERING:
                states[device] = REGISTERED
                self.phones.registered += 1
                if self.phones.announces_registrations:
                    self._report(device_registered(self.env.now, device))

        def low_done(_wait_s: float, _service_s: float) -> None:
            nonlocal remaining
            remaining -= 1
            if remaining == 0:
                finish()

        def initial_done(_wait_s: float, _service_s: float) -> None:
            if epoch != self.epoch:
                return
            if remaining == 0:
                finish()
            for _ in range(remaining):
                self._device_signal(device, LOW, low_done)

        self._device_signal(device, LOWEST, initial_done)

    def _register_callback(self, device: int, epoch: int, _event: simpy.Event) -> None:
        self._register(device, epoch)

    def _keepalives(self, group: KeepaliveGroup) -> Generator[simpy.Event, Any, None]:
        """Each phone of `group` sends a keepalive once per interval, at its own random phase, while registered."""
        interval_s = group.interval_s
        phases_s = self.rngs["keepalive_phase"].uniform(0.0, interval_s, group.count)
        order = (group.first + np.argsort(phases_s, kind="stable")).tolist()
        sorted_phases_s = np.sort(phases_s).tolist()
        priority = self.phones.keepalive_queue
        states = self.phones.state
        env = self.env
        cycle_start_s = 0.0
        while not self._over:
            for device, phase_s in zip(order, sorted_phases_s, strict=True):
                send_s = cycle_start_s + phase_s
                if send_s > env.now:
                    yield env.timeout(send_s - env.now)
                if states[device] == REGISTERED:
                    self._device_signal(device, priority)
            cycle_start_s += interval_s

    def _chatty_device(
        self, device: int, events_per_s: float, start_s: float, end_s: float, priority: int
    ) -> Generator[simpy.Event, Any, None]:
        env = self.env
        gaps = DrawBuffer(self._unit_exponential, self.rngs["chatty"])
        if start_s > env.now:
            yield env.timeout(start_s - env.now)
        while not self._over:
            yield env.timeout(gaps.next() / events_per_s)
            if env.now >= end_s:
                return
            if self.phones.state[device] == REGISTERED:
                self._device_signal(device, priority)

    # ------------------------------------------------------------- restarts
    def _code_red(self) -> None:
        """Code Red: the CallManager service restarts; everything in flight is lost (the phones' registrations
        too: the world clears them when it hears the alarm)."""
        lost = self.router.crash()
        self.signals_lost_restart += lost
        self.epoch += 1
        self.limiter = SccpEventLimiter(self.scenario.throttling.max_events_allowed)
        restart_s = self.scenario.node.restart_duration_s
        self.env.timeout(restart_s).callbacks.append(lambda _event: self._back_online(lost))

    def _back_online(self, lost: int) -> None:
        self.router.restart()
        self.throttle.reset()
        self._report(callmanager_online(self.env.now, lost, self.scenario.node.restart_duration_s))

    # --------------------------------------------------------------- sampler
    def _sampler(self) -> Generator[simpy.Event, Any, None]:
        """At the end of every second: take the expected-delay sample, feed throttling, write the row."""
        env, router = self.env, self.router
        for row in range(self.duration_s):
            state_during_second = self.throttle.state
            yield env.timeout(row + 1 - env.now)
            now_s = float(row + 1)
            delay_ms = expected_delay_ms(
                self._second_starts, self._second_wait_sum_s, router.oldest_waiting_arrival_s(), now_s
            )
            sample = self.seconds.sample(
                now_s, delay_ms, router.up, router.queue_depths(), self.calls_rejected_throttled
            )
            for alarm in sample.alarms:
                self._report(alarm)
                if alarm.name == CODE_RED_ENTRY:
                    self._code_red()
            self.seconds.write_row(row, state_during_second, delay_ms, sample, Readings(
                router.queue_depths(), router.signals_processed - sum(self._processed_at_last_sample),
                self._second_calls_attempted, self._second_calls_rejected, self.skinny_devices_throttled,
                self.phones.registered, router.capacity_factor,
                [now - then for now, then in zip(router.processed_by_queue, self._processed_at_last_sample,
                                                 strict=True)],
            ))
            self._processed_at_last_sample = list(router.processed_by_queue)
            self._second_wait_sum_s = 0.0
            self._second_starts = 0
            self._second_calls_attempted = 0
            self._second_calls_rejected = 0
