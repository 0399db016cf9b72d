"""The paper's measurement: an EMCCD series while the half-wave plate turns in steps.

The camera runs ``frames`` exposures of ``exposure_s``; every ``waveplate_dwell_s`` the stage turns
the waveplate by ``waveplate_step_deg``; the time tagger streams APD clicks, laser sync, camera
exposure edges and stage in-motion edges throughout; cryostat, laser and camera temperature are
logged about once per second. One cooperative loop polls the instruments through the rig's clock,
appends everything to the file and publishes it to listeners. On completion, stop request,
instrument error or Ctrl-C the rig is left safe and the file records how the run ended.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from cryoscope.acquisition import (
    FramesAcquired,
    InstrumentReading,
    Listener,
    Progress,
    Publisher,
    RunControl,
    RunResult,
    RunState,
    StateChanged,
    TagsAcquired,
)
from cryoscope.config import Backend, PlanConfig
from cryoscope.rig import STAGE_TIMEOUT_S, Rig, apply_em_gain, wait_until
from cryoscope.storage import MeasurementWriter, RunMetadata
from drivers.interfaces import (
    CoolingStatus,
    FrameBlock,
    InstrumentError,
    ReadMode,
    TagEventType,
)

log = logging.getLogger(__name__)

PLAN_NAME = "polarization_series"
#: Longest the camera may take to cool to its setpoint when asked to wait (s).
COOLING_TIMEOUT_S = 1800.0
#: Grace period after the last frame for its tags to arrive, and for a last move to end (s).
FINISH_TIMEOUT_S = 30.0


class PolarizationSeries:
    """One run of the plan on a connected rig. Use :func:`run_polarization_series`."""

    def __init__(self, rig: Rig, plan: PlanConfig, writer: MeasurementWriter,
                 control: RunControl, publish: Publisher) -> None:
        self.rig, self.plan, self.writer, self.control, self.publish = (
            rig, plan, writer, control, publish)
        cfg = rig.config
        self._zero = cfg.stage.waveplate_zero_deg
        self._apds = {cfg.channels.apd} | ({cfg.channels.apd2} if cfg.channels.apd2 else set())
        self._photons = 0
        self._frames = 0
        self._t_start: float | None = None
        #: Target (stage degrees) of the waveplate move under way, if any.
        self._moving: float | None = None
        self._steps_done = 0
        self._late_warned = False
        self._next_log_s = 0.0
        self._wavelength_nm = np.empty(0)
        self._track_names: tuple[str, ...] = ()
        self._period_ps = round(1e12 / rig.laser.repetition_rate_hz())
        # rising and falling edges (tagger ps) of camera exposures and of stage moves
        self._exposure_edges = (_EdgeLog(), _EdgeLog())
        self._motion_edges = (_EdgeLog(), _EdgeLog())
        self._targets: list[float] = []
        self._start_angle = 0.0

    # -- phases -------------------------------------------------------------------------------

    def prepare(self) -> None:
        rig, plan = self.rig, self.plan
        self.publish(StateChanged(RunState.PREPARING))
        rig.camera.set_exposure_s(plan.exposure_s)
        if rig.config.camera.wait_for_cooling:
            log.info("waiting for the camera to reach %.0f C", rig.config.camera.temperature_c)
            wait_until(rig.clock, self._cold_or_stopped, COOLING_TIMEOUT_S, "cooling",
                       rig.camera.name, poll_s=1.0)
        apply_em_gain(rig)
        rig.stage.start_move_to(self._zero + plan.waveplate_start_deg)
        wait_until(rig.clock, lambda: self.control.stop_requested or not rig.stage.is_moving(),
                   STAGE_TIMEOUT_S, "move to the start angle", rig.stage.name)
        readout = rig.camera.readout()
        columns = rig.camera.sensor_shape()[1]
        self._wavelength_nm = rig.spectrograph.wavelength_calibration_nm(
            columns, rig.camera.pixel_width_um())
        self._track_names = tuple(t.name for t in readout.tracks) \
            if readout.mode is ReadMode.TRACKS else ()
        self._start_angle = rig.stage.angle_deg()
        self.writer.begin(self._metadata())

    def _cold_or_stopped(self) -> bool:
        return self.control.stop_requested or \
            self.rig.camera.cooling_status() is CoolingStatus.STABILIZED

    def acquire(self) -> None:
        rig, plan, clock = self.rig, self.plan, self.rig.clock
        ch = rig.config.channels
        channels = [ch.laser_sync, ch.camera_fire, -ch.camera_fire, ch.stage_motion,
                    -ch.stage_motion, *sorted(self._apds)]
        rig.tagger.start_stream(channels)
        rig.camera.start_series(plan.frames)
        self._t_start = clock.now()
        self._next_log_s = self._t_start
        next_step_s = self._t_start + plan.waveplate_dwell_s
        self.publish(StateChanged(RunState.RUNNING))
        log.info("series of %d x %g s started", plan.frames, plan.exposure_s)
        while self._frames < plan.frames:
            if self.control.stop_requested:
                return
            now = clock.now()
            self._poll_tags()
            self._poll_frames()
            self._poll_stage(now)
            if now >= next_step_s and self._frames < plan.frames:
                if self._moving is None:
                    self._start_step(now)
                    next_step_s += plan.waveplate_dwell_s
                elif not self._late_warned:
                    log.warning("waveplate moves take longer than the %g s dwell: steps are "
                                "delayed until the previous move ends", plan.waveplate_dwell_s)
                    self._late_warned = True
            if now >= self._next_log_s:
                self._log_instruments(now)
                self._next_log_s += plan.cryostat_log_interval_s
            self._publish_progress(now)
            if self._frames < plan.frames:
                if not rig.camera.is_acquiring() and not self._frames_pending():
                    raise InstrumentError(rig.camera.name, f"the series stopped after "
                                          f"{self._frames} of {plan.frames} frames")
                clock.sleep(plan.poll_interval_s)
        self._finish_moves()
        self._poll_tags()
        self._publish_progress(clock.now())

    def _frames_pending(self) -> bool:
        block = self.rig.camera.read_new_frames()
        self._store_frames(block)
        return len(block) > 0

    def _finish_moves(self) -> None:
        """Let a last waveplate move end, so every motion edge pair is complete."""
        if self._moving is None:
            return
        clock = self.rig.clock
        deadline = clock.now() + FINISH_TIMEOUT_S
        while self._moving is not None and clock.now() < deadline \
                and not self.control.stop_requested:
            clock.sleep(self.plan.poll_interval_s)
            self._poll_stage(clock.now())

    def wind_down(self) -> None:
        """Stop camera and stage, then drain what the tagger and camera still hold."""
        rig = self.rig
        rig.camera.stop_series()
        rig.stage.stop()
        if self.writer.started and rig.tagger.status().streaming:
            rig.clock.sleep(self.plan.poll_interval_s)
            self._poll_tags()
            self._poll_frames()
            self._poll_stage(rig.clock.now())

    # -- polling ------------------------------------------------------------------------------

    def _poll_tags(self) -> None:
        block = self.rig.tagger.read_block()
        if len(block) == 0:
            return
        self.writer.append_tags(block)
        normal = block.event_types == TagEventType.TIME_TAG
        self._photons += sum(int(np.count_nonzero(block.channels[normal] == apd))
                             for apd in self._apds)
        cfg = self.rig.config.channels
        t, ch = block.timestamps_ps[normal], block.channels[normal]
        for edges, channel in ((self._exposure_edges, cfg.camera_fire),
                               (self._motion_edges, cfg.stage_motion)):
            edges[0].add(t[ch == channel])
            edges[1].add(t[ch == -channel])
        self.publish(TagsAcquired(block, cfg.as_dict(), self._period_ps, cfg.conditional_filter))

    def _poll_frames(self) -> None:
        self._store_frames(self.rig.camera.read_new_frames())

    def _store_frames(self, block: FrameBlock) -> None:
        if len(block) == 0:
            return
        self.writer.append_frames(block)
        self._frames += len(block)
        angles, moving = self._frame_waveplate(block.first_index, len(block))
        self.publish(FramesAcquired(block, self._wavelength_nm, self._track_names, angles,
                                    moving))

    def _frame_waveplate(self, first: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Waveplate angle θ during each frame's exposure, and whether the stage moved in it,
        from the exposure and motion edges the tagger saw (move k: k-th rising/falling pair)."""
        rises, falls = (e.times[first:first + n] for e in self._exposure_edges)
        if rises.shape[0] < n or falls.shape[0] < n:  # edges not seen: the stage as it is now
            return (np.full(n, self.rig.stage.angle_deg() - self._zero),
                    np.full(n, self._moving is not None))
        starts, ends = (e.times for e in self._motion_edges)
        stops = np.full(starts.shape, np.iinfo(np.int64).max)
        stops[:min(ends.shape[0], starts.shape[0])] = ends[:starts.shape[0]]
        moving = ((starts[None, :] < falls[:, None]) & (stops[None, :] > rises[:, None])).any(1)
        done = np.searchsorted(stops, rises, side="right")  # moves over before each exposure
        positions = np.array([self._start_angle, *self._targets])
        return positions[done] - self._zero, moving

    def _poll_stage(self, now: float) -> None:
        if self._moving is not None and not self.rig.stage.is_moving():
            self.writer.log_stage_reached(now, self.rig.stage.angle_deg())
            self._moving = None

    def _start_step(self, now: float) -> None:
        self._steps_done += 1
        target = self._zero + self.plan.waveplate_start_deg \
            + self._steps_done * self.plan.waveplate_step_deg
        self.rig.stage.start_move_to(target)
        self._targets.append(target)
        self.writer.log_stage_move(now, target)
        self._moving = target

    def _log_instruments(self, now: float) -> None:
        rig = self.rig
        cryo = rig.cryostat.status()
        self.writer.log_cryostat(now, cryo.sample_temperature_k, cryo.setpoint_k,
                                 cryo.pressure_mbar)
        laser = rig.laser.status()
        self.writer.log_laser(now, laser.repetition_rate_hz, laser.power_nw, laser.emission_on)
        temperature = rig.camera.temperature_c()
        self.writer.log_camera(now, temperature)
        self.publish(InstrumentReading("cryostat", dict(cryo.as_dict())))
        self.publish(InstrumentReading("laser", dict(laser.as_dict())))
        self.publish(InstrumentReading("camera", {"temperature_c": temperature}))

    def _publish_progress(self, now: float) -> None:
        plan = self.plan
        elapsed = now - (self._t_start or 0.0)
        left = plan.frames - self._frames
        per_frame = elapsed / self._frames if self._frames else plan.exposure_s
        remaining = left * per_frame
        rate = self._photons / elapsed if elapsed > 0 else 0.0
        self.publish(Progress(self._frames, plan.frames, elapsed, remaining, self._photons, rate,
                              self.rig.stage.angle_deg() - self._zero, self._moving is not None))

    # -- metadata -----------------------------------------------------------------------------

    def _metadata(self) -> RunMetadata:
        rig, cfg = self.rig, self.rig.config
        cam = rig.camera
        readout = cam.readout()
        status = cam.status()
        camera_attrs: dict[str, object] = {
            "readout": str(readout.mode), "exposure_s": cam.exposure_s(),
            "em_gain": cam.em_gain(), "frames_requested": self.plan.frames,
            "sensor_temperature_c": status.temperature_c,
            "cooling_status": str(status.cooling), "pixel_width_um": cam.pixel_width_um(),
            "sensor_shape": list(cam.sensor_shape()),
            **{f"readout_{k}": v for k, v in cam.readout_settings().items()},
        }
        if readout.mode is ReadMode.TRACKS:
            camera_attrs["track_names"] = list(self._track_names)
            camera_attrs["track_rows"] = [[t.row_start, t.row_stop] for t in readout.tracks]
        spectro = rig.spectrograph.status()
        laser = rig.laser.status()
        simulation = None
        if cfg.rig.backend is Backend.SIMULATED:
            simulation = {"seed": cfg.simulation.seed, "speed": str(cfg.simulation.speed),
                          "sample_json": json.dumps(asdict(cfg.sample)),
                          "optics_json": json.dumps(asdict(cfg.optics))}
        return RunMetadata(
            config_toml=cfg.to_toml(),
            plan={"name": PLAN_NAME, **self.plan.model_dump()},
            rig_backend=str(cfg.rig.backend),
            channels=cfg.channels.as_dict(),
            conditional_filter=cfg.channels.conditional_filter,
            laser_period_ps=self._period_ps,
            identities={name: inst.identity() for name, inst in rig.instruments().items()},
            tagger={"trigger_level_v": cfg.tagger.trigger_level_v,
                    "apd_deadtime_ps": cfg.tagger.apd_deadtime_ps},
            camera=camera_attrs,
            frame_shape=readout.frame_shape(cam.sensor_shape()),
            wavelength_nm=self._wavelength_nm,
            spectrograph={"grating": spectro.grating,
                          "grating_lines_per_mm": spectro.lines_per_mm,
                          "center_wavelength_nm": spectro.center_wavelength_nm},
            stage={"waveplate_zero_deg": self._zero,
                   "max_velocity_deg_s": cfg.stage.max_velocity_deg_s,
                   "acceleration_deg_s2": cfg.stage.acceleration_deg_s2,
                   "start_angle_deg": self._start_angle},
            cryostat={"target_temperature_k": cfg.cryostat.target_temperature_k,
                      "control_temperature": cfg.cryostat.control_temperature},
            laser={"model": cfg.laser.model, "remote_control": rig.laser.remote_control,
                   "wavelength_nm": laser.wavelength_nm, "pulse_width_ps": cfg.laser.pulse_width_ps,
                   "repetition_rate_hz": laser.repetition_rate_hz, "power_nw": laser.power_nw},
            simulation=simulation,
            measurement=cfg.measurement.model_dump(),
            compression=cfg.storage.compression,
            compression_level=cfg.storage.compression_level,
        )

    # -- results ------------------------------------------------------------------------------

    def result(self, state: RunState, error: str = "") -> RunResult:
        if self._t_start is None:
            return RunResult(self.writer.path, state, 0, 0, 0.0, error)
        duration = max(0.0, self.rig.clock.now() - self._t_start)
        return RunResult(self.writer.path, state, self._frames, self._photons, duration, error)

    def frame_truth(self) -> dict[str, np.ndarray]:
        """Ground truth of the simulated rig: state intervals, and per frame from the exposure
        edges the tagger saw."""
        if self.rig.truth is None or not self.writer.started:
            return {}
        n = self._frames
        starts, ends = (e.times[:n] / 1e12 for e in self._exposure_edges)
        return dict(self.rig.truth(starts, ends))


class _EdgeLog:
    """Times (tagger ps) of one kind of edge seen so far, in order; cheap to append to and
    to read whole (few edges arrive per block, most blocks bring none)."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []
        self._joined = np.empty(0, np.int64)

    def add(self, times_ps: np.ndarray) -> None:
        if times_ps.size:
            self._parts.append(times_ps)

    @property
    def times(self) -> np.ndarray:
        if self._parts:
            self._joined = np.concatenate([self._joined, *self._parts])
            self._parts.clear()
        return self._joined


def run_polarization_series(rig: Rig, out: str | Path, plan: PlanConfig | None = None, *,
                            overwrite: bool = False, control: RunControl | None = None,
                            listeners: Iterable[Listener] = ()) -> RunResult:
    """Run the plan on a connected rig, writing ``out``.

    Returns the :class:`RunResult` (state ``complete`` or ``aborted``). An instrument failure
    marks the file ``failed`` with the error and is re-raised after the rig is made safe.
    Ctrl-C (KeyboardInterrupt) aborts the run like a stop request.
    """
    plan = plan or rig.config.plan
    control = control or RunControl()
    publish = Publisher(listeners)
    writer = MeasurementWriter(out, overwrite=overwrite)
    run = PolarizationSeries(rig, plan, writer, control, publish)
    state, error = RunState.FAILED, ""
    try:
        run.prepare()
        run.acquire()
        state = RunState.ABORTED if control.stop_requested else RunState.COMPLETE
        error = control.reason if control.stop_requested else ""
    except KeyboardInterrupt:
        state, error = RunState.ABORTED, "interrupted (Ctrl-C)"
    except BaseException as exc:
        state, error = RunState.FAILED, f"{type(exc).__name__}: {exc}"
        raise
    finally:
        publish(StateChanged(RunState.STOPPING))
        try:
            run.wind_down()
        except Exception:
            log.exception("could not drain the instruments")
        rig.make_safe()
        if state is RunState.ABORTED:
            log.info("run aborted: %s", error)
        try:
            truth = run.frame_truth() or None
        except Exception:
            log.exception("could not compute the ground truth")
            truth = None
        writer.finish(str(state), error, run.result(state).duration_s, truth)
        publish(StateChanged(state, error))
    return run.result(state, error)
