"""The run engine: one implementation of what every measurement shares.

:func:`run_plan` runs a :class:`~cryoscope.plans.base.Plan` on a connected rig: it claims the
output file (:class:`~cryoscope.datafile.OutputClaim`) before any instrument moves, brings the
waveplate to the plan's start angle before the time-tag stream starts (so every ``stage_motion``
edge pair in the file belongs to a move of this run), runs one cooperative loop through the rig's
clock (tags, frames and waveplate polled, written and published; the instruments logged; the
plan stepped), pauses and resumes on request (the camera stops, the stream goes on, the file
records the pause), and on completion, stop, error or Ctrl-C leaves the rig safe and records the
final status. Frame timing (start, end, θ, moving) comes from
:func:`cryoscope.datafile.frame_timing`, as in the analysis.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

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
from cryoscope.config import Backend, Config, MeasurementConfig
from cryoscope.datafile import (
    MeasurementWriter,
    OutputClaim,
    RunMetadata,
    StageTiming,
    frame_timing,
    pair_edges,
    rest_angles,
)
from cryoscope.plans.base import Plan
from cryoscope.rig import STAGE_TIMEOUT_S, Rig, apply_em_gain, wait_until
from drivers.interfaces import CoolingStatus, FrameBlock, InstrumentError, ReadMode, TagEventType

__all__ = ["RunEngine", "measurement_for", "run_plan"]

log = logging.getLogger(__name__)

#: Longest the camera may take to cool to its setpoint when asked to wait (s).
COOLING_TIMEOUT_S = 1800.0
#: Grace period after the last frame for a last move to end (s).
FINISH_TIMEOUT_S = 30.0
#: Wait after the stage reached its start angle before the stream starts, so the end of that
#: move is never in the file (s).
STAGE_SETTLE_S = 0.2
#: Longest wait for the camera's last exposure edge after it stopped for a pause (s).
PAUSE_SETTLE_S = 1.0


class _EdgeLog:
    """Times (tagger ps) of one kind of edge seen so far, in order; cheap to append to and to
    read whole (few edges arrive per block, most blocks bring none)."""

    def __init__(self) -> None:
        self._parts: list[npt.NDArray[np.int64]] = []
        self._joined = np.empty(0, np.int64)

    def add(self, times_ps: npt.NDArray[np.int64]) -> None:
        if times_ps.size:
            self._parts.append(times_ps)

    @property
    def times(self) -> npt.NDArray[np.int64]:
        if self._parts:
            self._joined = np.concatenate([self._joined, *self._parts])
            self._parts.clear()
        return self._joined


class RunEngine:
    """One run of a plan on a connected rig. Use :func:`run_plan`."""

    def __init__(self, rig: Rig, plan: Plan, claim: OutputClaim, control: RunControl,
                 publish: Publisher, measurement: MeasurementConfig | None = None) -> None:
        self.rig, self.plan, self.control, self.publish = rig, plan, control, publish
        #: what is measured in this run (default: the configuration's ``[measurement]``)
        self.measurement = measurement or rig.config.measurement
        self.writer = MeasurementWriter(claim)
        cfg = rig.config
        self._zero = cfg.stage.waveplate_zero_deg
        ch = cfg.channels
        self._apds = [ch.apd] if ch.apd2 is None else [ch.apd, ch.apd2]
        self._period_ps = round(1e12 / rig.laser.repetition_rate_hz())
        self._exposure_edges = (_EdgeLog(), _EdgeLog())
        self._motion_edges = (_EdgeLog(), _EdgeLog())
        self._targets: list[float] = []
        self._reached: list[float] = []
        self._moving: float | None = None
        self._start_angle = 0.0
        self._wavelength_nm = np.empty(0)
        self._track_names: tuple[str, ...] = ()
        self._photons = 0
        self._frames = 0  # stored frames
        self._exposure_index: list[npt.NDArray[np.int64]] = []
        self._series_frames = 0  # frames asked of the present camera series
        self._series_done = 0  # of those: stored or lost
        self._series_base = 0  # exposure index of the present series' frame 0
        self._exposures_done = 0  # exposures of finished series
        self._last_tag_ps = -1
        self._t_start: float | None = None
        self._paused_s = 0.0
        self._pause_began: float | None = None
        self._next_log_s = 0.0
        self._warned: set[str] = set()

    # -- what a plan sees (PlanContext) -------------------------------------------------------

    @property
    def active_s(self) -> float:
        if self._t_start is None:
            return 0.0
        now = self._pause_began if self._pause_began is not None else self.rig.clock.now()
        return now - self._t_start - self._paused_s

    @property
    def stage_moving(self) -> bool:
        return self._moving is not None

    def move_waveplate(self, theta_deg: float) -> None:
        target = self._zero + theta_deg
        now = self.rig.clock.now()
        self.rig.stage.start_move_to(target)
        self._targets.append(target)
        self._reached.append(np.nan)
        self.writer.log_stage_move(now, target)
        self._moving = target

    def warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", message)

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
        theta = plan.start_theta_deg()
        if theta is not None:
            rig.stage.start_move_to(self._zero + theta)
        wait_until(rig.clock, lambda: self.control.stop_requested or not rig.stage.is_moving(),
                   STAGE_TIMEOUT_S, "move to the start angle", rig.stage.name)
        rig.clock.sleep(STAGE_SETTLE_S)
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
                    -ch.stage_motion, *self._apds]
        rig.tagger.start_stream(channels)
        self._start_series(plan.frames)
        self._t_start = clock.now()
        self._next_log_s = self._t_start
        self.publish(StateChanged(RunState.RUNNING))
        log.info("%s: %d x %g s started", plan.name, plan.frames, plan.exposure_s)
        while self._exposures() < plan.frames:
            if self.control.stop_requested:
                return
            self._follow_pause()
            now = clock.now()
            self._poll_tags()
            self._poll_frames()
            self._poll_stage(now)
            if self._pause_began is None:
                plan.step(self)
            if now >= self._next_log_s:
                self._log_instruments(now)
                self._next_log_s += plan.params.cryostat_log_interval_s
            self._publish_progress()
            if self._exposures() < plan.frames:
                if self._pause_began is None and not rig.camera.is_acquiring() \
                        and not self._poll_frames():
                    raise InstrumentError(rig.camera.name, f"the series stopped after "
                                          f"{self._exposures()} of {plan.frames} frames")
                clock.sleep(plan.params.poll_interval_s)
        self._finish_moves()
        self._poll_tags()
        self._publish_progress()

    def _exposures(self) -> int:
        """Exposures finished: of earlier series, and stored or lost of the present one."""
        return self._exposures_done + self._series_done

    def _start_series(self, frames: int) -> None:
        self._series_frames, self._series_done = frames, 0
        self.rig.camera.start_series(frames)

    def _follow_pause(self) -> None:
        """Pause or resume as the control asks: the camera stops (its frames so far are kept),
        the waveplate finishes a move under way, the stream and the instrument log go on."""
        rig, clock = self.rig, self.rig.clock
        if self.control.pause_requested and self._pause_began is None:
            rig.camera.stop_series()
            self._poll_frames()
            self._poll_tags()
            self._pause_began = clock.now()
            self._exposures_done += self._series_done
            self._series_frames = self._series_done = 0
            self.writer.log_event("pause", self._pause_began, self._last_tag_ps,
                                  f"after {self._frames} frames")
            log.info("paused after %d frames", self._frames)
            self.publish(StateChanged(RunState.PAUSED, f"paused after {self._frames} frames"))
        elif not self.control.pause_requested and self._pause_began is not None:
            deadline = clock.now() + PAUSE_SETTLE_S
            while not self._exposure_edges_paired() and clock.now() < deadline:
                clock.sleep(self.plan.params.poll_interval_s)
                self._poll_tags()
            now = clock.now()
            self._paused_s += now - self._pause_began
            self._pause_began = None
            self._series_base = int(self._exposure_edges[0].times.shape[0])
            self.writer.log_event("resume", now, self._last_tag_ps,
                                  f"at exposure {self._series_base}")
            log.info("resumed at frame %d", self._frames)
            self._start_series(self.plan.frames - self._exposures())
            self.publish(StateChanged(RunState.RUNNING, "resumed"))

    def _exposure_edges_paired(self) -> bool:
        rises, falls = (e.times for e in self._exposure_edges)
        return rises.shape[0] == falls.shape[0]

    def _finish_moves(self) -> None:
        """Let a last waveplate move end, so every motion edge pair is complete."""
        clock = self.rig.clock
        deadline = clock.now() + FINISH_TIMEOUT_S
        while self._moving is not None and clock.now() < deadline \
                and not self.control.stop_requested:
            clock.sleep(self.plan.params.poll_interval_s)
            self._poll_stage(clock.now())

    def wind_down(self) -> None:
        """Stop camera and stage, then drain what the tagger and camera still hold."""
        rig = self.rig
        rig.camera.stop_series()
        rig.stage.stop()
        if self.writer.started and rig.tagger.status().streaming:
            rig.clock.sleep(self.plan.params.poll_interval_s)
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
        t, ch = block.timestamps_ps[normal], block.channels[normal]
        if t.shape[0]:
            self._last_tag_ps = int(t[-1])
        self._photons += int(np.count_nonzero(np.isin(ch, self._apds)))
        cfg = self.rig.config.channels
        for edges, channel in ((self._exposure_edges, cfg.camera_fire),
                               (self._motion_edges, cfg.stage_motion)):
            edges[0].add(t[ch == channel])
            edges[1].add(t[ch == -channel])
        self.publish(TagsAcquired(block, cfg.as_dict(), self._period_ps, cfg.conditional_filter))

    def _poll_frames(self) -> bool:
        """Store and publish the frames the camera has; whether there were any."""
        block = self.rig.camera.read_new_frames()
        if block.lost:
            lost = self._series_base + np.asarray(block.lost, np.int64)
            self.writer.log_lost_frames(lost)
            now = self.rig.clock.now()
            for k in lost.tolist():
                self.writer.log_event("lost_frame", now, self._last_tag_ps,
                                      f"the camera lost the frame of exposure {k}")
            log.warning("the camera lost %d frame(s) (exposures %s)", lost.size,
                        ", ".join(map(str, lost.tolist())))
            self._series_done += lost.size
        if len(block) == 0:
            return bool(block.lost)
        index = self._series_base + block.first_index + np.arange(len(block), dtype=np.int64)
        self.writer.append_frames(block.frames, index)
        self._exposure_index.append(index)
        first = self._frames
        self._frames += len(block)
        self._series_done += len(block)
        theta, moving, start = self._frame_waveplate(index)
        self.publish(FramesAcquired(FrameBlock(first, block.frames), self._wavelength_nm,
                                    self._track_names, theta, moving, start))
        return True

    def _stage_timing(self) -> StageTiming:
        rest = rest_angles(self._start_angle, self._targets, self._reached, self._zero)
        return StageTiming(pair_edges(*(e.times for e in self._motion_edges)), rest)

    def _frame_waveplate(self, index: npt.NDArray[np.int64]
                         ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_],
                                    npt.NDArray[np.int64]]:
        """θ at mid-exposure, moving flag and exposure start of the frames of these exposures,
        by the one frame-timing function; frames whose edges have not arrived get the stage as
        it is now."""
        exposures = pair_edges(*(e.times for e in self._exposure_edges))
        timing = frame_timing(exposures, self._stage_timing(), index)
        n = index.shape[0]
        theta = np.full(n, self.rig.stage.angle_deg() - self._zero)
        moving = np.full(n, self._moving is not None)
        start = np.full(n, -1, np.int64)
        theta[:timing.n], moving[:timing.n], start[:timing.n] = (
            timing.theta_deg, timing.moving, timing.start_ps)
        return theta, moving, start

    def _poll_stage(self, now: float) -> None:
        if self._moving is not None and not self.rig.stage.is_moving():
            reached = self.rig.stage.angle_deg()
            self._reached[-1] = reached
            self.writer.log_stage_reached(now, reached)
            self._moving = None

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

    def _publish_progress(self) -> None:
        total = self.plan.frames
        elapsed = self.active_s
        done = self._exposures()
        per_frame = elapsed / done if done else self.plan.exposure_s
        rate = self._photons / elapsed if elapsed > 0 else 0.0
        self.publish(Progress(self._frames, total, elapsed, (total - done) * per_frame,
                              self._photons, rate, self.rig.stage.angle_deg() - self._zero,
                              self._moving is not None))

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
            plan=self.plan.payload(),
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
            measurement=self.measurement.model_dump(),
            compression=cfg.storage.compression,
            compression_level=cfg.storage.compression_level,
        )

    # -- results ------------------------------------------------------------------------------

    def duration_s(self) -> float:
        return max(0.0, self.active_s)

    def result(self, path: Path, state: RunState, error: str = "") -> RunResult:
        if self._t_start is None:
            return RunResult(path, state, 0, 0, 0.0, error)
        return RunResult(path, state, self._frames, self._photons, self.duration_s(), error)

    def ground_truth(self) -> dict[str, npt.NDArray[np.generic]] | None:
        """The simulated rig's ground truth for the stored frames (None on a real rig)."""
        if self.rig.truth is None or not self.writer.started:
            return None
        index = (np.concatenate(self._exposure_index) if self._exposure_index
                 else np.zeros(0, np.int64))
        timing = frame_timing(pair_edges(*(e.times for e in self._exposure_edges)),
                              self._stage_timing(), index)
        return dict(self.rig.truth(timing.start_ps / 1e12, timing.stop_ps / 1e12))


def measurement_for(config: Config,
                    values: Mapping[str, Any] | MeasurementConfig | None) -> MeasurementConfig:
    """The configuration's ``[measurement]`` with ``values`` replaced (validated)."""
    if values is None:
        return config.measurement
    if isinstance(values, MeasurementConfig):
        return values
    return config.with_overrides("measurement", **values).measurement


def run_plan(rig: Rig, plan: Plan, out: str | Path | OutputClaim, *, overwrite: bool = False,
             control: RunControl | None = None, listeners: Iterable[Listener] = (),
             measurement: Mapping[str, Any] | MeasurementConfig | None = None) -> RunResult:
    """Run ``plan`` on a connected rig, writing ``out`` (a path, or a claim taken earlier).

    ``measurement``: what this run measures (sample, particle, ...: the file's
    ``/measurement``), replacing keys of the configuration's ``[measurement]`` — a night on one
    open rig names each particle's file. Unknown keys or values are a :class:`ConfigError`.

    Returns the :class:`RunResult` (state ``complete`` or ``aborted``). An instrument failure
    marks the file ``failed`` with the error and is re-raised after the rig is made safe.
    Ctrl-C (KeyboardInterrupt) aborts the run like a stop request.
    """
    measured = measurement_for(rig.config, measurement)
    claim = out if isinstance(out, OutputClaim) else OutputClaim(out, overwrite)
    control = control or RunControl()
    publish = Publisher(listeners)
    state, error = RunState.FAILED, ""
    engine: RunEngine | None = None
    try:
        engine = RunEngine(rig, plan, claim, control, publish, measured)
        engine.prepare()
        engine.acquire()
        state = RunState.ABORTED if control.stop_requested else RunState.COMPLETE
        error = control.reason if control.stop_requested else ""
    except KeyboardInterrupt:
        state, error = RunState.ABORTED, "interrupted (Ctrl-C)"
    except BaseException as exc:
        state, error = RunState.FAILED, f"{type(exc).__name__}: {exc}"
        raise
    finally:
        publish(StateChanged(RunState.STOPPING))
        began = engine is not None and engine.writer.started
        if engine is not None:
            try:
                engine.wind_down()
            except Exception:
                log.exception("could not drain the instruments")
        rig.make_safe()
        if state is RunState.ABORTED:
            log.info("run aborted: %s", error)
        if engine is not None:
            try:
                truth = engine.ground_truth()
            except Exception:
                log.exception("could not compute the ground truth")
                truth = None
            engine.writer.finish(str(state), error, engine.duration_s(), truth)
        claim.settle(began, state is not RunState.FAILED)
        publish(StateChanged(state, error))
    assert engine is not None
    return engine.result(claim.path, state, error)
