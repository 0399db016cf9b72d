"""A rig session: the rig owned by one worker thread, driven through a command queue.

Instruments are not thread-safe, so a :class:`RigSession` gives the rig to one thread and lets
every other thread (a GUI, a notebook) reach it only by queueing commands. That thread connects
the rig, executes commands in order, polls instrument statuses (and, while idle, the time
tagger's count rates), and runs plans with a :class:`RunControl`. Everything it has to say is
published as a :data:`SessionEvent` through one callback, called on the worker thread: the
callback must return quickly (a GUI hands the event to its own event loop).

    session = RigSession(load_config(), on_event=print)
    session.connect().result()
    session.move_waveplate_deg(22.5).result()
    result = session.start_run("polarization_series", "particle.h5", frames=40).result()
    session.close()

Commands return :class:`concurrent.futures.Future` objects; a failing command publishes a
:class:`CommandFailed` (its message is one line, fit for a user) and leaves the rig safe. During a
run, status polls are interleaved with the plan's loop (from its own listener call, on the same
thread), and setting commands are refused; stopping goes through :meth:`RigSession.stop_run`.
Qt-free: ``gui`` adapts the callback to signals.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel

from cryoscope.acquisition import (
    Listener,
    RunControl,
    RunEvent,
    RunResult,
    TagsAcquired,
)
from cryoscope.backends import open_rig
from cryoscope.config import Backend, Config
from cryoscope.engine import run_plan
from cryoscope.plans import PLANS, Plan, make_plan
from cryoscope.rig import Rig, camera_readout
from drivers.interfaces import (
    InstrumentError,
    ReadMode,
    Readout,
    TagBlock,
    TagEventType,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = [
    "PLANS",
    "CommandFailed",
    "InstrumentStatuses",
    "RateMeter",
    "RigSession",
    "RunFinished",
    "SessionEvent",
    "SessionState",
    "SessionStateChanged",
]


class SessionState(enum.StrEnum):
    """Life cycle of a session."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    IDLE = "idle"
    RUNNING = "running"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class SessionStateChanged:
    state: SessionState
    message: str = ""


@dataclass(frozen=True, slots=True)
class InstrumentStatuses:
    """One poll of every instrument.

    ``statuses`` maps an instrument name (``"cryostat"``, ``"laser"``, ...) to its frozen status
    dataclass; ``errors`` maps the names whose status could not be read to the error message;
    ``count_rates_cps`` maps a tagger input number to its rising-edge rate (counts/s).
    ``laser_remote_control``: whether the laser's emission, rate and power can be set remotely
    (:attr:`drivers.interfaces.PulsedLaser.remote_control`; False: front-panel only).
    """

    statuses: Mapping[str, Any]
    errors: Mapping[str, str]
    count_rates_cps: Mapping[int, float]
    waveplate_zero_deg: float
    clock_s: float
    laser_remote_control: bool = True


@dataclass(frozen=True, slots=True)
class CommandFailed:
    """A command (or the connection, or a run) failed; ``message`` is one line."""

    command: str
    message: str


@dataclass(frozen=True, slots=True)
class RunFinished:
    """A run ended: ``result`` is None when it failed before the plan could report one."""

    plan: str
    result: RunResult | None
    error: str = ""


SessionEvent = (SessionStateChanged | InstrumentStatuses | CommandFailed | RunFinished
                | RunEvent)
EventCallback = Callable[[SessionEvent], None]


# ---------------------------------------------------------------------------------------------
# Count rates


class RateMeter:
    """Rising-edge rate per tagger input, from tag blocks and the rig clock.

    Counts are gathered until ``window_s`` of rig time has passed, then turned into rates.
    """

    def __init__(self, window_s: float = 0.5) -> None:
        self.window_s = window_s
        self._counts: dict[int, int] = {}
        self._since: float | None = None
        self.rates_cps: dict[int, float] = {}

    def reset(self) -> None:
        self._counts, self._since, self.rates_cps = {}, None, {}

    def feed(self, block: TagBlock, now_s: float) -> None:
        if self._since is None:
            self._since = now_s
        ok = (block.event_types == TagEventType.TIME_TAG) & (block.channels > 0)
        channels, counts = np.unique(block.channels[ok], return_counts=True)
        for channel, count in zip(channels.tolist(), counts.tolist(), strict=True):
            self._counts[channel] = self._counts.get(channel, 0) + count
        elapsed = now_s - self._since
        if elapsed >= self.window_s:
            self.rates_cps = {ch: n / elapsed for ch, n in self._counts.items()}
            self._counts, self._since = {}, now_s


# ---------------------------------------------------------------------------------------------
# The session


@dataclass
class _Command:
    description: str
    action: Callable[[Rig], Any]
    future: Future[Any] = field(default_factory=Future)
    needs_rig: bool = True


_SHUTDOWN = object()


class RigSession:
    """Owns a rig on one worker thread; see the module docstring.

    ``status_interval_s``: wall time between status polls. ``monitor_count_rates``: stream the
    tagger while idle to report count rates per input.
    """

    def __init__(self, config: Config, on_event: EventCallback | None = None, *,
                 status_interval_s: float = 0.5, monitor_count_rates: bool = True) -> None:
        self._config = config
        self._on_event = on_event
        self.status_interval_s = status_interval_s
        self.monitor_count_rates = monitor_count_rates
        self._queue: queue.Queue[_Command | object] = queue.Queue()
        self._rig: Rig | None = None
        self._state = SessionState.DISCONNECTED
        self._state_lock = threading.Lock()
        self._control: RunControl | None = None
        self._rates = RateMeter()
        self._probing = False
        self._next_poll = 0.0
        self._last_idle_wall = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="rig-session", daemon=True)
        self._thread.start()

    # -- properties (any thread) --------------------------------------------------------------

    @property
    def config(self) -> Config:
        return self._config

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def connected(self) -> bool:
        return self._state in (SessionState.IDLE, SessionState.RUNNING)

    @property
    def running(self) -> bool:
        return self._state is SessionState.RUNNING

    # -- life cycle ---------------------------------------------------------------------------

    def connect(self, config: Config | None = None) -> Future[None]:
        """Open (or reopen, with ``config``) the rig on the worker thread."""
        def action(_: Rig | None) -> None:
            if config is not None:
                self._config = config
            self._close_rig()
            self._set_state(SessionState.CONNECTING)
            try:
                self._rig = open_rig(self._config)
            except BaseException:
                self._set_state(SessionState.DISCONNECTED, "connection failed")
                raise
            self._rates.reset()
            self._set_state(SessionState.IDLE, f"{self._config.rig.name} connected")
            self._poll_statuses()
        return self._submit(_Command("connect", action, needs_rig=False))

    def disconnect(self) -> Future[None]:
        """Leave the rig safe and close it."""
        def action(_: Rig | None) -> None:
            self._close_rig()
            self._set_state(SessionState.DISCONNECTED, "disconnected")
        return self._submit(_Command("disconnect", action, needs_rig=False))

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop a run, close the rig and end the worker thread. Idempotent."""
        if not self._thread.is_alive():
            return
        self.stop_run("the session was closed")
        self._queue.put(_SHUTDOWN)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("the rig session did not end within %.0f s", timeout_s)

    # -- commands -----------------------------------------------------------------------------

    def command(self, description: str, action: Callable[[Rig], T]) -> Future[T]:
        """Queue ``action(rig)`` for the worker thread; refused while a run is going."""
        return self._submit(_Command(description, action))

    def set_setpoint_k(self, temperature_k: float) -> Future[None]:
        return self.command(f"set the sample setpoint to {temperature_k:g} K",
                            lambda rig: rig.cryostat.set_setpoint_k(temperature_k))

    def set_temperature_control(self, on: bool) -> Future[None]:
        return self.command(f"switch temperature control {'on' if on else 'off'}",
                            lambda rig: rig.cryostat.set_temperature_control(on))

    def set_laser_emission(self, on: bool) -> Future[None]:
        return self.command(f"switch laser emission {'on' if on else 'off'}",
                            lambda rig: rig.laser.set_emission(on))

    def set_laser_rate_hz(self, rate_hz: float) -> Future[None]:
        return self.command(f"set the laser rate to {rate_hz:g} Hz",
                            lambda rig: rig.laser.set_repetition_rate_hz(rate_hz))

    def set_laser_power_nw(self, power_nw: float) -> Future[None]:
        return self.command(f"set the laser power to {power_nw:g} nW",
                            lambda rig: rig.laser.set_power_nw(power_nw))

    def move_waveplate_deg(self, theta_deg: float) -> Future[None]:
        """Start moving the waveplate to θ (relative to ``waveplate_zero_deg``)."""
        zero = self._config.stage.waveplate_zero_deg
        return self.command(f"move the waveplate to {theta_deg:g}°",
                            lambda rig: rig.stage.start_move_to(zero + theta_deg))

    def home_stage(self) -> Future[None]:
        return self.command("home the waveplate stage", lambda rig: rig.stage.start_home())

    def stop_stage(self) -> Future[None]:
        return self.command("stop the waveplate stage", lambda rig: rig.stage.stop())

    def set_exposure_s(self, exposure_s: float) -> Future[None]:
        return self.command(f"set the exposure to {exposure_s:g} s",
                            lambda rig: rig.camera.set_exposure_s(exposure_s))

    def set_em_gain(self, gain: int, advanced: bool = False) -> Future[None]:
        return self.command(f"set the EM gain to {gain}",
                            lambda rig: rig.camera.set_em_gain(gain, advanced=advanced))

    def set_cooling(self, on: bool, setpoint_c: float | None = None) -> Future[None]:
        return self.command(f"switch camera cooling {'on' if on else 'off'}",
                            lambda rig: rig.camera.set_cooling(on, setpoint_c))

    def set_readout(self, mode: ReadMode) -> Future[None]:
        """Tracks (as configured) or full image."""
        readout = camera_readout(self._config) if mode is ReadMode.TRACKS \
            else Readout(ReadMode.IMAGE)
        return self.command(f"set the camera readout to {mode}",
                            lambda rig: rig.camera.set_readout(readout))

    def set_grating(self, index: int) -> Future[None]:
        return self.command(f"select grating {index}",
                            lambda rig: rig.spectrograph.set_grating(index))

    def set_center_wavelength_nm(self, wavelength_nm: float) -> Future[None]:
        return self.command(f"set the center wavelength to {wavelength_nm:g} nm",
                            lambda rig: rig.spectrograph.set_center_wavelength_nm(wavelength_nm))

    # -- runs ---------------------------------------------------------------------------------

    def plan_parameters(self, plan: str, **values: Any) -> BaseModel:
        """The plan's parameters: the configuration's, with ``values`` replaced (validated).

        Raises :class:`ValueError` naming the offending parameter.
        """
        return make_plan(plan, self._config, **values).params

    def start_run(self, plan: str, out: str | Path, *, overwrite: bool = False,
                  listeners: Iterable[Listener] = (), **values: Any) -> Future[RunResult]:
        """Queue a run of ``plan`` writing ``out`` with parameters ``values`` (validated now).

        ``listeners`` receive the run's events on the worker thread (live accumulation);
        the session's callback receives them too.
        """
        chosen = make_plan(plan, self._config, **values)
        extra = list(listeners)

        def action(rig: Rig) -> RunResult:
            return self._run(rig, chosen, Path(out), overwrite, extra)
        return self._submit(_Command(f"run {chosen.title.lower()}", action))

    def stop_run(self, reason: str = "stopped by the user") -> None:
        """Ask a running plan to stop (any thread); it stops within one loop iteration."""
        control = self._control
        if control is not None:
            control.request_stop(reason)

    def pause_run(self) -> None:
        """Pause a running plan (any thread): the camera stops, the file records the pause."""
        control = self._control
        if control is not None:
            control.request_pause()

    def resume_run(self) -> None:
        """Resume a paused run (any thread)."""
        control = self._control
        if control is not None:
            control.request_resume()

    # -- internals (worker thread unless noted) -----------------------------------------------

    def _submit(self, cmd: _Command) -> Future[Any]:
        """Any thread: queue a command, or fail its future at once."""
        if not self._thread.is_alive():
            cmd.future.set_exception(RuntimeError("the rig session is closed"))
        elif cmd.needs_rig and self._state is SessionState.RUNNING:
            message = f"cannot {cmd.description} while a run is going"
            cmd.future.set_exception(RuntimeError(message))
            self._emit(CommandFailed(cmd.description, message))
        else:
            self._queue.put(cmd)
        return cmd.future

    def _emit(self, event: SessionEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            log.exception("the session's event callback failed on %s", type(event).__name__)

    def _set_state(self, state: SessionState, message: str = "") -> None:
        with self._state_lock:
            self._state = state
        self._emit(SessionStateChanged(state, message))

    def _loop(self) -> None:
        try:
            while True:
                timeout = max(0.0, self._next_poll - time.monotonic())
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    item = None
                if item is _SHUTDOWN:
                    break
                if isinstance(item, _Command):
                    self._execute(item)
                if time.monotonic() >= self._next_poll:
                    self._idle_tick()
        finally:
            self._close_rig()
            self._fail_pending()
            self._set_state(SessionState.CLOSED)

    def _fail_pending(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Command):
                item.future.set_exception(RuntimeError("the rig session was closed"))

    def _execute(self, cmd: _Command) -> None:
        if not cmd.future.set_running_or_notify_cancel():
            return
        rig = self._rig
        if cmd.needs_rig and rig is None:
            message = f"cannot {cmd.description}: the rig is not connected"
            self._emit(CommandFailed(cmd.description, message))
            cmd.future.set_exception(RuntimeError(message))
            return
        try:
            value = cmd.action(rig)  # type: ignore[arg-type]
        except Exception as exc:
            expected = isinstance(exc, InstrumentError | ValueError | OSError)
            message = str(exc) if expected else f"{type(exc).__name__}: {exc}"
            if expected:
                log.error("%s failed: %s", cmd.description, message)
            else:
                log.exception("%s failed", cmd.description)
            if self._rig is not None:
                self._rig.make_safe()
            self._emit(CommandFailed(cmd.description, message))
            cmd.future.set_exception(exc)
            return
        cmd.future.set_result(value)
        self._next_poll = 0.0

    def _run(self, rig: Rig, plan: Plan, out: Path, overwrite: bool,
             listeners: list[Listener]) -> RunResult:
        self._stop_probe()
        control = RunControl()
        self._control = control
        self._rates.reset()
        self._set_state(SessionState.RUNNING, f"{plan.title} → {out.name}")

        def relay(event: RunEvent) -> None:
            if isinstance(event, TagsAcquired):
                self._rates.feed(event.block, rig.clock.now())
            self._emit(event)
            if time.monotonic() >= self._next_poll:
                self._poll_statuses()

        result: RunResult | None = None
        try:
            result = run_plan(rig, plan, out, overwrite=overwrite, control=control,
                              listeners=[*listeners, relay])
        except BaseException as exc:
            self._emit(RunFinished(plan.name, None, str(exc)))
            raise
        finally:
            self._control = None
            self._rates.reset()
            self._set_state(SessionState.IDLE, "run ended" if result is None
                            else f"run {result.state}")
        self._emit(RunFinished(plan.name, result, result.error))
        return result

    def _idle_tick(self) -> None:
        self._next_poll = time.monotonic() + self.status_interval_s
        rig = self._rig
        if rig is None:
            return
        self._keep_simulated_time(rig)
        if self.monitor_count_rates:
            self._probe_rates(rig)
        self._poll_statuses()

    def _keep_simulated_time(self, rig: Rig) -> None:
        """A simulated bench only lives while someone waits on its clock: let idle time pass."""
        now = time.monotonic()
        elapsed, self._last_idle_wall = now - self._last_idle_wall, now
        if rig.config.rig.backend is not Backend.SIMULATED:
            return
        factor = rig.config.simulation.speed_factor or 1.0
        try:
            rig.clock.sleep(min(elapsed, 2 * self.status_interval_s) * factor)
        except Exception:
            log.exception("the simulated clock failed")

    def _probe_rates(self, rig: Rig) -> None:
        try:
            if not self._probing:
                ch = rig.config.channels
                inputs = [c for c in (ch.apd, ch.apd2, ch.laser_sync, ch.camera_fire,
                                      ch.stage_motion) if c is not None]
                rig.tagger.start_stream(inputs)
                self._probing = True
                self._rates.reset()
                return
            self._rates.feed(rig.tagger.read_block(), rig.clock.now())
        except InstrumentError as exc:
            log.warning("count-rate monitor: %s", exc)
            self._probing = False

    def _stop_probe(self) -> None:
        if self._probing and self._rig is not None:
            self._probing = False
            try:
                self._rig.tagger.stop_stream()
            except InstrumentError as exc:
                log.warning("count-rate monitor: %s", exc)

    def _poll_statuses(self) -> None:
        """Read every instrument's status and publish it (worker thread, between steps)."""
        rig = self._rig
        if rig is None:
            return
        self._next_poll = time.monotonic() + self.status_interval_s
        statuses: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name, instrument in rig.instruments().items():
            try:
                statuses[name] = instrument.status()
            except InstrumentError as exc:
                errors[name] = str(exc)
        self._emit(InstrumentStatuses(statuses, errors, dict(self._rates.rates_cps),
                                      rig.config.stage.waveplate_zero_deg, rig.clock.now(),
                                      bool(rig.laser.remote_control)))

    def _close_rig(self) -> None:
        rig, self._rig = self._rig, None
        self._probing = False
        if rig is not None:
            rig.close()



