"""The rig session: the rig owned by one worker thread, reached through typed commands."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from cryoscope.acquisition import Listener, RunResult
from cryoscope.backends import open_rig
from cryoscope.config import Config
from cryoscope.plans import make_plan
from cryoscope.rig import Rig
from cryoscope.session.commands import Command
from cryoscope.session.events import (
    AlignmentChanged,
    CommandFailed,
    EventCallback,
    InstrumentStatuses,
    RunFinished,
    SessionEvent,
    SessionState,
    SessionStateChanged,
)
from cryoscope.session.monitors import AlignmentCamera, CountRateProbe, SimulatedTime
from cryoscope.session.runs import PlanRun, RunRequest
from drivers.interfaces import InstrumentError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Wall time between two ticks in alignment mode (s): count rate and frame.
ALIGNMENT_TICK_S = 0.25

__all__ = ["RigSession"]


@dataclass
class _Job:
    description: str
    action: Callable[[Rig | None], Any]
    future: Future[Any] = field(default_factory=Future)
    needs_rig: bool = True
    #: refused while a run is going (settings); a run's own stop/pause go through its control
    refused_in_run: bool = True


_SHUTDOWN = object()


class RigSession:
    """Owns a rig on one worker thread; see the package docstring.

    ``status_interval_s``: wall time between status polls (and count-rate measurements while
    idle). ``monitor_count_rates``: measure the tagger's count rates while idle.
    """

    def __init__(self, config: Config, on_event: EventCallback | None = None, *,
                 status_interval_s: float = 0.5, monitor_count_rates: bool = True) -> None:
        self._config = config
        self._on_event = on_event
        self.status_interval_s = status_interval_s
        self.monitor_count_rates = monitor_count_rates
        self._queue: queue.Queue[_Job | object] = queue.Queue()
        self._rig: Rig | None = None
        self._state = SessionState.DISCONNECTED
        self._state_lock = threading.Lock()
        self._run: PlanRun | None = None
        self._probe = CountRateProbe()
        self._idle_time = SimulatedTime()
        self._alignment = AlignmentCamera()
        self._next_poll = 0.0
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

    @property
    def alignment_exposure_s(self) -> float | None:
        """The exposure of alignment mode, None when it is off."""
        return self._alignment.exposure_s

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
            self._probe.reset()
            self._idle_time.restart()
            self._set_state(SessionState.IDLE, f"{self._config.rig.name} connected")
            self._poll_statuses()
        return self._submit(_Job("connect", action, needs_rig=False))

    def disconnect(self) -> Future[None]:
        """Leave the rig safe and close it."""
        def action(_: Rig | None) -> None:
            self._close_rig()
            self._set_state(SessionState.DISCONNECTED, "disconnected")
        return self._submit(_Job("disconnect", action, needs_rig=False))

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

    def send(self, command: Command[T]) -> Future[T]:
        """Queue a typed command (:mod:`cryoscope.session.commands`); refused during a run."""
        def action(rig: Rig | None) -> T:
            assert rig is not None  # a job that needs the rig runs only with one
            return command.apply(rig)
        return self._submit(_Job(command.description, action))

    def command(self, description: str, action: Callable[[Rig], T]) -> Future[T]:
        """Queue ``action(rig)`` for the worker thread (scripts and tests that inspect the rig;
        the window sends typed commands). Refused while a run is going."""
        return self._submit(_Job(description, action))  # type: ignore[arg-type]

    # -- alignment ----------------------------------------------------------------------------

    def start_alignment(self, exposure_s: float) -> Future[None]:
        """Alignment mode: the camera streams frames at ``exposure_s`` (published as
        :class:`AlignmentFrame`, written nowhere) and count rates are measured on every tick,
        until :meth:`stop_alignment` or a run starts."""
        def action(rig: Rig | None) -> None:
            assert rig is not None
            self._alignment.start(rig, exposure_s)
            self._emit(AlignmentChanged(exposure_s))
            self._next_poll = 0.0
        return self._submit(_Job(f"start alignment at {exposure_s:g} s exposure", action))

    def stop_alignment(self) -> Future[None]:
        def action(rig: Rig | None) -> None:
            if self._alignment.active:
                self._alignment.stop(rig)
                self._emit(AlignmentChanged(None))
        return self._submit(_Job("stop alignment", action))

    # -- runs ---------------------------------------------------------------------------------

    def plan_parameters(self, plan: str, **values: Any) -> BaseModel:
        """The plan's parameters: the configuration's, with ``values`` replaced (validated).

        Raises :class:`ValueError` naming the offending parameter.
        """
        return make_plan(plan, self._config, **values).params

    def start_run(self, plan: str, out: str | Path, *, overwrite: bool = False,
                  listeners: Iterable[Listener] = (),
                  measurement: Mapping[str, Any] | None = None, **values: Any
                  ) -> Future[RunResult]:
        """Queue a run of ``plan`` writing ``out`` with parameters ``values`` and the
        ``[measurement]`` values ``measurement`` (both validated now: :class:`ValueError`;
        the output is claimed now: :class:`~cryoscope.datafile.OutputExistsError` when it exists
        and ``overwrite`` is not given).

        ``listeners`` receive the run's events on the worker thread (live accumulation);
        the session's callback receives them too.
        """
        request = RunRequest.build(self._config, plan, out, overwrite=overwrite,
                                   measurement=measurement, listeners=tuple(listeners),
                                   **values)

        def action(rig: Rig | None) -> RunResult:
            assert rig is not None
            return self._execute_run(rig, request)
        future = self._submit(_Job(f"run {request.plan.title.lower()}", action))
        # a run that never started gives its output back (after a run: nothing left to do)
        future.add_done_callback(lambda _f: request.cancel())
        return future

    def stop_run(self, reason: str = "stopped by the user") -> None:
        """Ask a running plan to stop (any thread); it stops within one loop iteration."""
        run = self._run
        if run is not None:
            run.control.request_stop(reason)

    def pause_run(self) -> None:
        """Pause a running plan (any thread): the camera stops, the file records the pause."""
        run = self._run
        if run is not None:
            run.control.request_pause()

    def resume_run(self) -> None:
        """Resume a paused run (any thread)."""
        run = self._run
        if run is not None:
            run.control.request_resume()

    # -- internals (worker thread unless noted) -----------------------------------------------

    def _submit(self, job: _Job) -> Future[Any]:
        """Any thread: queue a job, or fail its future at once."""
        if not self._thread.is_alive():
            job.future.set_exception(RuntimeError("the rig session is closed"))
        elif job.refused_in_run and self._state is SessionState.RUNNING:
            message = f"cannot {job.description} while a run is going"
            job.future.set_exception(RuntimeError(message))
            self._emit(CommandFailed(job.description, message))
        else:
            self._queue.put(job)
        return job.future

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
                if isinstance(item, _Job):
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
            if isinstance(item, _Job):
                item.future.set_exception(RuntimeError("the rig session was closed"))

    def _execute(self, job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        rig = self._rig
        if job.needs_rig and rig is None:
            message = f"cannot {job.description}: the rig is not connected"
            self._emit(CommandFailed(job.description, message))
            job.future.set_exception(RuntimeError(message))
            return
        try:
            value = job.action(rig)
        except Exception as exc:
            expected = isinstance(exc, InstrumentError | ValueError | OSError)
            message = str(exc) if expected else f"{type(exc).__name__}: {exc}"
            if expected:
                log.error("%s failed: %s", job.description, message)
            else:
                log.exception("%s failed", job.description)
            if self._rig is not None:
                self._alignment.stop(None)
                self._rig.make_safe()
            self._emit(CommandFailed(job.description, message))
            job.future.set_exception(exc)
            return
        job.future.set_result(value)
        self._next_poll = 0.0

    def _execute_run(self, rig: Rig, request: RunRequest) -> RunResult:
        if self._alignment.active:
            self._alignment.stop(rig)
            self._emit(AlignmentChanged(None))
        # the idle time since the last tick passes now, while nothing observes (cheap), not
        # at the run's first waits (a paced simulated clock would make it up there)
        self._idle_time.tick(rig)
        run = PlanRun(request, self._emit, self._poll_if_due)
        self._run = run
        self._probe.reset()
        self._set_state(SessionState.RUNNING, f"{request.plan.title} → {request.out.name}")
        result: RunResult | None = None
        try:
            result = run.run(rig)
        except BaseException as exc:
            self._emit(RunFinished(request.plan.name, None, str(exc), str(request.out)))
            raise
        finally:
            self._run = None
            self._idle_time.restart()  # the run's time passed on the rig's own clock
            self._set_state(SessionState.IDLE, "run ended" if result is None
                            else f"run {result.state}")
        self._emit(RunFinished(request.plan.name, result, result.error, str(request.out)))
        return result

    def _idle_tick(self) -> None:
        interval = self.status_interval_s
        if self._alignment.active:
            interval = min(interval, ALIGNMENT_TICK_S)
        self._next_poll = time.monotonic() + interval
        rig = self._rig
        if rig is None:
            return
        self._idle_time.tick(rig)
        if self.monitor_count_rates or self._alignment.active:
            self._probe.measure(rig)
        try:
            frame = self._alignment.poll(rig)
        except InstrumentError as exc:
            self._alignment.stop(rig)
            self._emit(AlignmentChanged(None))
            self._emit(CommandFailed("show the camera for alignment", str(exc)))
            frame = None
        if frame is not None:
            self._emit(frame)
        self._poll_statuses()

    def _poll_if_due(self) -> None:
        if time.monotonic() >= self._next_poll:
            self._poll_statuses()

    def _poll_statuses(self) -> None:
        """Read every instrument's status and publish it (worker thread, between steps)."""
        rig = self._rig
        if rig is None:
            return
        if not self._alignment.active:
            self._next_poll = time.monotonic() + self.status_interval_s
        statuses: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name, instrument in rig.instruments().items():
            try:
                statuses[name] = instrument.status()
            except InstrumentError as exc:
                errors[name] = str(exc)
        run = self._run
        rates = run.rates.rates_cps if run is not None else self._probe.rates_cps
        self._emit(InstrumentStatuses(statuses, errors, dict(rates),
                                      rig.config.stage.waveplate_zero_deg, rig.clock.now(),
                                      bool(rig.laser.remote_control),
                                      rig.camera.readout().mode))

    def _close_rig(self) -> None:
        rig, self._rig = self._rig, None
        self._alignment.stop(None)
        if rig is not None:
            rig.close()
