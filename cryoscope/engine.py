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

Reliability (``docs/reliability.md``): a run that cannot fit on the disk is refused before it
starts, and one that fills it anyway ends ``failed`` with the data so far intact; an instrument
that fails is named in the status and left alone while the rest of the rig is made safe; a
stage move that never ends, a laser whose sync pulses stop and a camera series that ends early
are noticed; the interlocks pause the run while the sample is too warm and lower the EM gain
(or stop the series) when a frame nears saturation, each recorded in ``/events``; the details
go to a run log ``<name>.log`` next to the file.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
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
    WriteError,
    check_room,
    frame_timing,
    pair_edges,
    rest_angles,
)
from cryoscope.plans.base import Plan
from cryoscope.rig import STAGE_TIMEOUT_S, Rig, apply_em_gain, wait_until
from drivers.interfaces import (
    CoolingStatus,
    FrameBlock,
    InstrumentError,
    InstrumentTimeoutError,
    ReadMode,
    TagEventType,
)

__all__ = ["RunEngine", "check_run_fits", "measurement_for", "run_bytes", "run_log_path",
           "run_plan"]

log = logging.getLogger(__name__)

#: Longest the camera may take to cool to its setpoint when asked to wait (s).
COOLING_TIMEOUT_S = 1800.0
#: Grace period after the last frame for a last move to end (s).
FINISH_TIMEOUT_S = 30.0
#: Wait after the stage reached its start angle before the stream starts, so the end of that
#: move is never in the file (s).
STAGE_SETTLE_S = 0.2
#: Progress is published at least this often (rig s, also while paused), and with every frame.
PROGRESS_INTERVAL_S = 0.2
#: Longest wait for the camera's last exposure edge after it stopped for a pause (s).
PAUSE_SETTLE_S = 1.0
#: How long the camera may be idle with frames missing before the series counts as ended (s):
#: its last frame may still be on its way out of the sensor.
SERIES_END_GRACE_S = 1.0
#: A waveplate move may take this long beyond three times its profile's duration (s).
MOVE_TIMEOUT_MARGIN_S = 5.0
#: Bytes per stored time tag (int64 time, int32 channel).
TAG_BYTES = 12
#: Event types as plain ints (an array compared with an IntEnum member takes several times as
#: long as with an int, and the loop compares every block).
_TIME_TAG, _MISSED_EVENTS = int(TagEventType.TIME_TAG), int(TagEventType.MISSED_EVENTS)


def run_bytes(config: Config, plan: Plan) -> tuple[int, str]:
    """Estimated size of a run's file (uncompressed): frames × frame bytes + tag rate ×
    duration, and how it was estimated (one line)."""
    cam, ch = config.camera, config.channels
    shape = ((len(cam.tracks), cam.sensor_columns) if cam.readout == "tracks"
             else (cam.sensor_rows, cam.sensor_columns))
    frame_bytes = 2 * math.prod(shape) + 8  # uint16 pixels and the exposure index
    duration_s = plan.frames * plan.exposure_s
    apd_rate = (1 if ch.apd2 is None else 2) * config.storage.expected_apd_rate_cps
    tag_rate = 2 * apd_rate if ch.conditional_filter else apd_rate + \
        config.laser.repetition_rate_hz
    tag_rate += 2 / plan.exposure_s
    total = plan.frames * frame_bytes + TAG_BYTES * tag_rate * duration_s
    return int(total), (f"{plan.frames} frames x {frame_bytes / 1e3:.1f} kB + {tag_rate:.3g} "
                        f"tags/s x {duration_s:g} s")


def check_run_fits(config: Config, plan: Plan, path: str | Path) -> None:
    """Refuse (:class:`~cryoscope.datafile.NoRoomError`) a run whose file cannot fit."""
    needed, how = run_bytes(config, plan)
    check_room(path, needed, f"the run ({how})")


def run_log_path(out: str | Path) -> Path:
    """The run log next to an output file: ``<name>.log``."""
    return Path(out).with_suffix(".log")


@contextmanager
def _run_log(out: Path) -> Iterator[None]:
    """Log to ``<name>.log`` next to the output while the run lives (with tracebacks)."""
    try:
        handler = logging.FileHandler(run_log_path(out), encoding="utf-8")
    except OSError as exc:
        log.warning("no run log next to %s: %s", out, exc.strerror)
        yield
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


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


class _ChannelKinds:
    """What each tagger channel carries (APD click, laser sync, a camera or stage edge), to
    count a block's tags by kind in one pass instead of a comparison per kind."""

    OTHER, APD, SYNC, EDGES = 0, 1, 2, 3  # EDGES: from here on, the four edge kinds

    def __init__(self, apds: list[int], sync: int, camera_fire: int, stage_motion: int) -> None:
        kinds = {**dict.fromkeys(apds, self.APD), sync: self.SYNC}
        for i, channel in enumerate((camera_fire, -camera_fire, stage_motion, -stage_motion)):
            kinds[channel] = self.EDGES + i
        #: channel c's kind at c + reach; the outermost entries catch any other channel
        self._reach = max(abs(c) for c in kinds) + 1
        self._kind = np.zeros(2 * self._reach + 1, np.intp)
        for channel, kind in kinds.items():
            self._kind[channel + self._reach] = kind
        self._n = self.EDGES + 4

    def of(self, channels: npt.NDArray[np.int32]) -> npt.NDArray[np.intp]:
        """The kind of each channel."""
        return self._kind.take(channels.astype(np.intp) + self._reach, mode="clip")

    def count(self, channels: npt.NDArray[np.int32]) -> npt.NDArray[np.intp]:
        """Tags of each kind among ``channels``."""
        return np.bincount(self.of(channels), minlength=self._n)


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
        self._channel_kinds = _ChannelKinds(self._apds, ch.laser_sync, ch.camera_fire,
                                            ch.stage_motion)
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
        self._paused_photons = 0  # of those: read while paused (not in the count rate)
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
        self._progress_frames, self._progress_s = -1, -np.inf
        self._missed_photons = 0  # APD clicks the tagger missed in overflows
        self._idle_since: float | None = None  # camera idle with frames missing, since
        self._move_deadline = math.inf
        self._last_sync_s = 0.0
        #: interlocks: why the run is held (paused), since when, since when the cause is gone
        self._hold: str | None = None
        self._hold_since = 0.0
        self._clear_since: float | None = None
        self._em_gain = 0
        self._lower_gain_to: int | None = None
        #: how the run ends when the engine ends it (an interlock): state and error
        self.ended: tuple[RunState, str] | None = None

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
        distance = abs(target - self.rig.stage.angle_deg())
        self.rig.stage.start_move_to(target)
        self._targets.append(target)
        self._reached.append(np.nan)
        self.writer.log_stage_move(now, target)
        self._moving = target
        stage = self.rig.config.stage
        profile_s = distance / stage.max_velocity_deg_s + \
            stage.max_velocity_deg_s / stage.acceleration_deg_s2
        self._move_deadline = now + 3 * profile_s + MOVE_TIMEOUT_MARGIN_S

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
        self._em_gain = rig.camera.em_gain()
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
        self._last_sync_s = self._t_start
        self._next_log_s = self._t_start
        self.publish(StateChanged(RunState.RUNNING))
        log.info("%s: %d x %g s started", plan.name, plan.frames, plan.exposure_s)
        while self._exposures() < plan.frames:
            if self.control.stop_requested or self.ended is not None:
                return
            self._follow_pause()
            if self._lower_gain_to is not None:
                self._lower_gain()
            now = clock.now()
            self._poll_tags()
            self._poll_frames()
            self._poll_stage(now)
            self._check_sync(now)
            if self._pause_began is None:
                plan.step(self)
            if now >= self._next_log_s:
                self._log_instruments(now)
                self._next_log_s += plan.params.cryostat_log_interval_s
            self._publish_progress()
            if self._exposures() < plan.frames:
                self._check_series(now)
                clock.sleep(plan.params.poll_interval_s)
        self._finish_moves()
        self._poll_tags()
        self._publish_progress(force=True)

    def _check_series(self, now: float) -> None:
        """Raise if the camera stopped before the series' last frame (allowing the last frame
        :data:`SERIES_END_GRACE_S` to arrive)."""
        if self._pause_began is not None or self.rig.camera.is_acquiring() \
                or self._poll_frames():
            self._idle_since = None
            return
        if self._idle_since is None:
            self._idle_since = now
        elif now - self._idle_since > SERIES_END_GRACE_S:
            raise InstrumentError(self.rig.camera.name, f"the series stopped after "
                                  f"{self._exposures()} of {self.plan.frames} frames")

    def _check_sync(self, now: float) -> None:
        """Raise, naming the laser, when its sync pulses stopped (no sync tag, not even a
        missed one, for ``interlocks.laser_sync_timeout_s``)."""
        timeout = self.rig.config.interlocks.laser_sync_timeout_s
        if now - self._last_sync_s > timeout:
            raise InstrumentError(self.rig.laser.name, f"no sync pulse for {timeout:g} s: "
                                  "the laser stopped emitting")

    def _exposures(self) -> int:
        """Exposures finished: of earlier series, and stored or lost of the present one."""
        return self._exposures_done + self._series_done

    def _start_series(self, frames: int) -> None:
        self._series_frames, self._series_done = frames, 0
        self.rig.camera.start_series(frames)

    def _follow_pause(self) -> None:
        """Pause or resume as the control (or an interlock's hold) asks."""
        wanted = self.control.pause_requested or self._hold is not None
        if wanted and self._pause_began is None:
            self._pause()
        elif not wanted and self._pause_began is not None:
            self._resume()

    def _pause(self) -> None:
        """The camera stops (its frames so far are kept), the waveplate finishes a move under
        way, the stream and the instrument log go on."""
        rig, clock = self.rig, self.rig.clock
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

    def _resume(self) -> None:
        clock = self.rig.clock
        assert self._pause_began is not None
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

    # -- interlocks ---------------------------------------------------------------------------

    def _check_temperature(self, now: float, temperature_k: float) -> None:
        """The temperature interlock: above the limit the run is held (paused); it resumes
        after the temperature stayed at or below the limit for the settle time, and ends
        (naming the cryostat) when the hold lasts longer than the longest wait."""
        cfg = self.rig.config.interlocks
        limit = cfg.sample_temperature_max_k
        if limit <= 0:
            return
        if temperature_k > limit:
            self._clear_since = None
            if self._hold is None:
                self._hold, self._hold_since = "temperature", now
                message = (f"sample at {temperature_k:.2f} K, above the {limit:g} K limit: "
                           "paused")
                self.writer.log_event("interlock", now, self._last_tag_ps, message)
                log.warning("temperature interlock: %s", message)
            elif now - self._hold_since > cfg.temperature_max_wait_s:
                raise InstrumentError(self.rig.cryostat.name, (
                    f"sample above the {limit:g} K limit for {cfg.temperature_max_wait_s:g} s "
                    f"(now {temperature_k:.1f} K): run ended by the temperature interlock"))
        elif self._hold == "temperature":
            if self._clear_since is None:
                self._clear_since = now
            elif now - self._clear_since >= cfg.temperature_settle_s:
                self.writer.log_event("interlock", now, self._last_tag_ps,
                                      f"sample back at {temperature_k:.2f} K for "
                                      f"{cfg.temperature_settle_s:g} s: resumed")
                log.info("temperature interlock released at %.2f K", temperature_k)
                self._hold, self._clear_since = None, None

    def _check_saturation(self, frames: npt.NDArray[np.uint16],
                          index: npt.NDArray[np.int64]) -> None:
        """The saturation interlock: a frame near saturation at a high EM gain lowers the
        gain (halved, the series goes on) or ends the series, recorded in ``/events``."""
        cfg = self.rig.config.interlocks
        gain = self._em_gain
        if gain == 0 or gain < cfg.saturation_em_gain or self.ended is not None \
                or self._lower_gain_to is not None:
            return
        peaks = frames.reshape(frames.shape[0], -1).max(axis=1)
        hot = np.flatnonzero(peaks >= cfg.saturation_adu)
        if not hot.size:
            return
        k, peak = int(index[hot[0]]), int(peaks[hot[0]])
        what = (f"the frame of exposure {k} reached {peak} ADU (limit {cfg.saturation_adu}) "
                f"at EM gain {gain}")
        now = self.rig.clock.now()
        if cfg.saturation_action == "stop" or gain // 2 < 1:
            message = f"{what}: series stopped by the saturation interlock"
            self.writer.log_event("interlock", now, self._last_tag_ps, message)
            log.warning("saturation interlock: %s", message)
            self.ended = (RunState.ABORTED, f"{self.rig.camera.name}: {message}")
        else:
            self._lower_gain_to = gain // 2
            self.writer.log_event("interlock", now, self._last_tag_ps,
                                  f"{what}: EM gain lowered to {gain // 2}")
            log.warning("saturation interlock: %s: EM gain lowered to %d", what, gain // 2)

    def _lower_gain(self) -> None:
        """Stop the series, set the lower EM gain, go on (a pause in the file)."""
        gain, self._lower_gain_to = self._lower_gain_to, None
        assert gain is not None
        paused_here = self._pause_began is None
        if paused_here:
            self._pause()
        cam = self.rig.config.camera
        self.rig.camera.set_em_gain(gain, advanced=cam.advanced_em_gain)
        self.writer.log_event("em_gain", self.rig.clock.now(), self._last_tag_ps,
                              f"EM gain {self._em_gain} -> {gain}")
        self._em_gain = gain
        if paused_here and not self.control.pause_requested and self._hold is None:
            self._resume()

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
        """Stop camera and stage, then drain what the tagger and camera still hold; a failed
        instrument is not called again."""
        rig, failed = self.rig, self.rig.failed
        if "camera" not in failed:
            rig.camera.stop_series()
        if "stage" not in failed:
            rig.stage.stop()
        if self.writer.started and "tagger" not in failed and rig.tagger.status().streaming:
            rig.clock.sleep(self.plan.params.poll_interval_s)
            self._poll_tags()
            if "camera" not in failed:
                self._poll_frames()
            if "stage" not in failed:
                self._poll_stage(rig.clock.now())

    # -- polling ------------------------------------------------------------------------------

    def _poll_tags(self) -> None:
        block = self.rig.tagger.read_block()
        if len(block) == 0:
            return
        self.writer.append_tags(block)
        cfg = self.rig.config.channels
        t, ch = block.timestamps_ps, block.channels
        special = block.event_types != _TIME_TAG
        missed_sync = False
        if special.any():  # overflow events: rare
            t, ch = t[~special], ch[~special]
            missed = block.event_types == _MISSED_EVENTS
            apd = self._channel_kinds.of(block.channels) == _ChannelKinds.APD
            self._missed_photons += int(block.missed_events[missed & apd].sum())
            missed_sync = bool(np.any(block.channels[missed] == cfg.laser_sync))
        if t.shape[0]:
            self._last_tag_ps = int(t[-1])
        counts = self._channel_kinds.count(ch)
        self._photons += int(counts[_ChannelKinds.APD])
        if self._pause_began is not None:
            self._paused_photons += int(counts[_ChannelKinds.APD])
        if missed_sync or counts[_ChannelKinds.SYNC]:
            self._last_sync_s = self.rig.clock.now()
        if counts[_ChannelKinds.EDGES:].any():  # few blocks bring an edge
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
        self._check_saturation(block.frames, index)
        self._exposure_index.append(index)
        first = self._frames
        self._frames += len(block)
        self._series_done += len(block)
        theta, moving, start = self._frame_waveplate(index)
        self.publish(FramesAcquired(FrameBlock(first, block.frames), self._wavelength_nm,
                                    self._track_names, theta, moving, start, index))
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
        if self._moving is None:
            return
        if not self.rig.stage.is_moving():
            reached = self.rig.stage.angle_deg()
            self._reached[-1] = reached
            self.writer.log_stage_reached(now, reached)
            self._moving = None
        elif now > self._move_deadline:
            raise InstrumentTimeoutError(self.rig.stage.name, (
                f"the move to {self._moving:.2f} deg did not end in time "
                f"(still moving at {self.rig.stage.angle_deg():.2f} deg): the stage stalled"))

    def _log_instruments(self, now: float) -> None:
        rig = self.rig
        cryo = rig.cryostat.status()
        self.writer.log_cryostat(now, cryo.sample_temperature_k, cryo.setpoint_k,
                                 cryo.pressure_mbar)
        self._check_temperature(now, cryo.sample_temperature_k)
        laser = rig.laser.status()
        self.writer.log_laser(now, laser.repetition_rate_hz, laser.power_nw, laser.emission_on)
        temperature = rig.camera.temperature_c()
        self.writer.log_camera(now, temperature)
        self.publish(InstrumentReading("cryostat", dict(cryo.as_dict())))
        self.publish(InstrumentReading("laser", dict(laser.as_dict())))
        self.publish(InstrumentReading("camera", {"temperature_c": temperature}))

    def _publish_progress(self, force: bool = False) -> None:
        """Progress, when a frame came in or :data:`PROGRESS_INTERVAL_S` of rig time passed
        (also while paused), or ``force``."""
        now = self.rig.clock.now()
        if not force and self._frames == self._progress_frames \
                and now - self._progress_s < PROGRESS_INTERVAL_S:
            return
        self._progress_frames, self._progress_s = self._frames, now
        elapsed = self.active_s
        total = self.plan.frames
        done = self._exposures()
        per_frame = elapsed / done if done else self.plan.exposure_s
        # as RunResult.count_rate_cps: the photons of the pauses are left out with their time
        counted = self._photons - self._paused_photons + self._missed_photons
        rate = counted / elapsed if elapsed > 0 else 0.0
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
        return RunResult(path, state, self._frames, self._photons, self.duration_s(), error,
                         self._missed_photons, self._paused_photons)

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

    Returns the :class:`RunResult` (state ``complete`` or ``aborted``; an interlock that ends
    the run says why in ``error``). An instrument failure marks the file ``failed`` with the
    error naming the instrument and is re-raised after the rig is made safe (the failed
    instrument is not read again); a write failure
    (:class:`~cryoscope.datafile.WriteError`, e.g. a full disk) likewise. A run that cannot fit
    on the disk is refused (:class:`~cryoscope.datafile.NoRoomError`) before anything moves.
    Ctrl-C (KeyboardInterrupt) aborts the run like a stop request. The log records of the run
    also go to ``<name>.log`` next to the file, with tracebacks.
    """
    measured = measurement_for(rig.config, measurement)
    claim = out if isinstance(out, OutputClaim) else OutputClaim(out, overwrite)
    with _run_log(claim.path):
        return _run(rig, plan, claim, control or RunControl(), Publisher(listeners), measured)


def _run(rig: Rig, plan: Plan, claim: OutputClaim, control: RunControl, publish: Publisher,
         measured: MeasurementConfig) -> RunResult:
    state, error = RunState.FAILED, ""
    engine: RunEngine | None = None
    late: WriteError | None = None
    try:
        check_run_fits(rig.config, plan, claim.write_path)
        engine = RunEngine(rig, plan, claim, control, publish, measured)
        engine.prepare()
        engine.acquire()
        if engine.ended is not None:
            state, error = engine.ended
        elif control.stop_requested:
            state, error = RunState.ABORTED, control.reason
        else:
            state, error = RunState.COMPLETE, ""
    except KeyboardInterrupt:
        state, error = RunState.ABORTED, control.reason or "interrupted (Ctrl-C)"
    except InstrumentError as exc:
        rig.mark_failed(exc.instrument)
        state, error = RunState.FAILED, str(exc)
        log.info("run failed: %s", exc, exc_info=True)
        raise
    except WriteError as exc:
        state, error = RunState.FAILED, str(exc)
        log.info("run failed: %s", exc, exc_info=True)
        raise
    except BaseException as exc:
        state, error = RunState.FAILED, f"{type(exc).__name__}: {exc}"
        raise
    finally:
        publish(StateChanged(RunState.STOPPING))
        began = engine is not None and engine.writer.started
        if engine is not None:
            try:
                engine.wind_down()
            except InstrumentError as exc:
                rig.mark_failed(exc.instrument)
                log.warning("while stopping: %s", exc, exc_info=True)
            except Exception:
                log.warning("could not drain the instruments", exc_info=True)
        rig.make_safe()
        if state is RunState.ABORTED:
            log.info("run aborted: %s", error)
        if engine is not None:
            try:
                truth = engine.ground_truth()
            except Exception:
                log.warning("could not compute the ground truth", exc_info=True)
                truth = None
            try:
                engine.writer.finish(str(state), error, engine.duration_s(), truth)
            except WriteError as exc:
                # every failed state above is an exception on its way out: that one goes on
                if state is not RunState.FAILED:
                    late = exc
                state, error = RunState.FAILED, str(exc)
                log.info("run failed: %s", exc, exc_info=True)
        claim.settle(began, state is not RunState.FAILED)
        publish(StateChanged(state, error))
        if late is not None:
            raise late
    assert engine is not None
    return engine.result(claim.path, state, error)
