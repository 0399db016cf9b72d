"""What the worker thread does between commands while no run is going: let simulated time pass,
measure count rates, poll statuses, and — in alignment mode — stream camera frames that are
written nowhere.

The count-rate probe samples the tagger for a short window (:attr:`CountRateProbe.window_s` of
rig time) on each idle tick instead of streaming all the time: a simulated rig generates photons
only while someone looks, so a permanent stream made it draw every photon of the idle time — at
``--speed 20`` twenty seconds of photons per wall second, more than the machine could, and a run
asked for then waited seconds behind the probe. A window per tick costs the same at any speed.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from cryoscope.config import Backend
from cryoscope.rig import Rig
from cryoscope.session.events import AlignmentFrame
from drivers.interfaces import InstrumentError, ReadMode, TagBlock, TagEventType

log = logging.getLogger(__name__)

__all__ = ["AlignmentCamera", "CountRateProbe", "RateMeter", "SimulatedTime", "rising_counts"]

#: Frames asked of the camera per alignment series: one per tick, so that a simulated bench
#: draws photons for the frames shown only (a series running on between ticks would make it
#: draw every frame of the idle time, at ``--speed 20`` twenty seconds of them a second).
ALIGNMENT_SERIES_FRAMES = 1


def rising_counts(block: TagBlock) -> dict[int, int]:
    """Rising-edge tags per input in a block."""
    ok = (block.event_types == TagEventType.TIME_TAG) & (block.channels > 0)
    counts = np.bincount(block.channels[ok])  # inputs are small numbers: no sort needed
    channels = np.flatnonzero(counts)
    return dict(zip(channels.tolist(), counts[channels].tolist(), strict=True))


class RateMeter:
    """Rising-edge rate per tagger input from a run's tag blocks and the rig clock.

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
        for channel, count in rising_counts(block).items():
            self._counts[channel] = self._counts.get(channel, 0) + count
        elapsed = now_s - self._since
        if elapsed >= self.window_s:
            self.rates_cps = {ch: n / elapsed for ch, n in self._counts.items()}
            self._counts, self._since = {}, now_s


class SimulatedTime:
    """A simulated bench only lives while someone waits on its clock: let idle time pass, at the
    simulation's speed (real time at speed "max"), at most ``max_step_s`` of wall time a tick."""

    def __init__(self, max_step_s: float = 1.0) -> None:
        self.max_step_s = max_step_s
        self._last = time.monotonic()

    def restart(self) -> None:
        """Time spent in a command or a run has passed on the rig's own clock already."""
        self._last = time.monotonic()

    def tick(self, rig: Rig) -> None:
        now = time.monotonic()
        elapsed, self._last = now - self._last, now
        if rig.config.rig.backend is not Backend.SIMULATED:
            return
        factor = rig.config.simulation.speed_factor or 1.0
        try:
            rig.clock.sleep(min(elapsed, self.max_step_s) * factor)
        except Exception:
            log.exception("the simulated clock failed")


class CountRateProbe:
    """Count rates per input from a short stream of ``window_s`` rig seconds (see the module
    docstring). ``rates_cps`` holds the last measurement."""

    def __init__(self, window_s: float = 0.2) -> None:
        self.window_s = window_s
        self.rates_cps: dict[int, float] = {}

    def reset(self) -> None:
        self.rates_cps = {}

    def measure(self, rig: Rig) -> None:
        ch = rig.config.channels
        inputs = [c for c in (ch.apd, ch.apd2, ch.laser_sync, ch.camera_fire, ch.stage_motion)
                  if c is not None]
        try:
            rig.tagger.start_stream(inputs)
            try:
                start = rig.clock.now()
                rig.clock.sleep(self.window_s)
                block = rig.tagger.read_block()
                elapsed = rig.clock.now() - start
            finally:
                rig.tagger.stop_stream()
        except InstrumentError as exc:
            log.warning("count-rate monitor: %s", exc)
            self.rates_cps = {}
            return
        counts = rising_counts(block)
        self.rates_cps = {c: counts.get(c, 0) / elapsed for c in inputs} if elapsed > 0 else {}


class AlignmentCamera:
    """Alignment mode's camera: a one-frame series at the chosen exposure on every tick, whose
    frame is published and written nowhere."""

    def __init__(self) -> None:
        self.exposure_s: float | None = None
        self._frames_shown = 0
        self._exposure_before_s = 0.0  # the camera's exposure, given back when alignment ends

    @property
    def active(self) -> bool:
        return self.exposure_s is not None

    def start(self, rig: Rig, exposure_s: float) -> None:
        self.stop(rig)
        self._exposure_before_s = rig.camera.exposure_s()
        rig.camera.set_exposure_s(exposure_s)
        rig.camera.start_series(ALIGNMENT_SERIES_FRAMES)
        self.exposure_s = exposure_s

    def stop(self, rig: Rig | None) -> None:
        """End alignment: the camera stops and gets its exposure from before back."""
        if self.exposure_s is None:
            return
        self.exposure_s = None
        if rig is not None:
            try:
                rig.camera.stop_series()
                rig.camera.set_exposure_s(self._exposure_before_s)
            except InstrumentError as exc:
                log.warning("alignment: %s", exc)

    def poll(self, rig: Rig) -> AlignmentFrame | None:
        """The newest frame since the last poll (None: none yet)."""
        exposure = self.exposure_s
        if exposure is None:
            return None
        camera = rig.camera
        block = camera.read_new_frames()
        if not camera.is_acquiring():
            camera.start_series(ALIGNMENT_SERIES_FRAMES)
        if len(block) == 0:
            return None
        self._frames_shown += len(block)
        readout = camera.readout()
        names = tuple(t.name for t in readout.tracks) if readout.mode is ReadMode.TRACKS else ()
        wavelength = rig.spectrograph.wavelength_calibration_nm(camera.sensor_shape()[1],
                                                                camera.pixel_width_um())
        return AlignmentFrame(np.array(block.frames[-1]), self._frames_shown - 1, wavelength,
                              names, exposure)
