"""The instruments of a rig, by kind, and how the configuration's settings are applied to them.

A :class:`Rig` is built by a backend (:mod:`cryoscope.backends`: simulated or hardware) and
configured here (:func:`configure`). :meth:`Rig.close` always leaves the instruments safe:
camera series stopped, stage still, tagger stream closed, laser emission as configured.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from cryoscope.config import Config
from drivers.interfaces import (
    Camera,
    Clock,
    CoolingStatus,
    Cryostat,
    Instrument,
    InstrumentTimeoutError,
    PulsedLaser,
    ReadMode,
    Readout,
    RotationStage,
    SettingRejectedError,
    Spectrograph,
    TimeTagger,
    Track,
)

log = logging.getLogger(__name__)

#: Longest a stage move or homing may take before the rig gives up (s).
STAGE_TIMEOUT_S = 120.0

#: Simulated rig only: the ``/simulation`` datasets for frames exposed over [start_s, end_s).
TruthSource = Callable[[npt.NDArray[np.float64], npt.NDArray[np.float64]],
                       Mapping[str, npt.NDArray[Any]]]


@dataclass
class Rig:
    """The connected instruments of one microscope, and the clock the acquisition waits on."""

    config: Config
    clock: Clock
    cryostat: Cryostat
    laser: PulsedLaser
    stage: RotationStage
    spectrograph: Spectrograph
    camera: Camera
    tagger: TimeTagger
    #: Simulated rig only: the ground truth written to the file's ``/simulation``.
    truth: TruthSource | None = None
    #: Instruments that failed (an :class:`InstrumentError` naming them): the run's wind-down
    #: no longer reads them, making the rig safe calls each once more (quietly), closing it too.
    failed: set[str] = field(default_factory=set)
    _closed: bool = field(default=False, repr=False)

    def instruments(self) -> dict[str, Instrument]:
        return {"cryostat": self.cryostat, "laser": self.laser, "stage": self.stage,
                "spectrograph": self.spectrograph, "camera": self.camera, "tagger": self.tagger}

    def mark_failed(self, instrument: str) -> None:
        """Note that an instrument (by its name, e.g. ``"camera"``) failed."""
        if instrument in self.instruments():
            self.failed.add(instrument)

    def make_safe(self) -> None:
        """Stop whatever moves or streams; set the laser as configured. A failed instrument
        gets this one call (it may still be acquiring), its error only logged to the run log.
        Never raises."""
        steps: list[tuple[str, Callable[[], None]]] = [
            ("camera", self.camera.stop_series),
            ("stage", self.stage.stop),
            ("tagger", self.tagger.stop_stream),
        ]
        if self.config.laser.emission_off_after_run and self.laser.remote_control:
            steps.append(("laser", lambda: self.laser.set_emission(False)))
        for name, step in steps:
            instrument = self.instruments()[name]
            if not instrument.is_connected:
                continue
            try:
                step()
            except Exception:
                if name in self.failed:  # expected of a broken instrument: the run log hears it
                    log.info("the %s failed: could not make it safe either", name,
                             exc_info=True)
                else:
                    log.warning("could not make the %s safe", name, exc_info=True)

    def close(self) -> None:
        """Leave every instrument safe and disconnect it. Idempotent, never raises."""
        if self._closed:
            return
        self._closed = True
        self.make_safe()
        for name, instrument in self.instruments().items():
            try:
                instrument.close()
            except Exception:
                # a failed instrument's close is expected to fail too: only the run log hears
                level = logging.INFO if name in self.failed else logging.WARNING
                log.log(level, "error while closing the %s", name, exc_info=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def camera_readout(config: Config) -> Readout:
    if config.camera.readout == "image":
        return Readout(ReadMode.IMAGE)
    return Readout(ReadMode.TRACKS, tuple(Track(t.name, t.row_start, t.row_stop)
                                          for t in config.camera.tracks))


def wait_until(clock: Clock, done: Callable[[], bool], timeout_s: float, what: str,
               instrument: str, poll_s: float = 0.05) -> None:
    """Poll ``done`` through the clock until it is true; raise on timeout."""
    deadline = clock.now() + timeout_s
    while not done():
        if clock.now() >= deadline:
            raise InstrumentTimeoutError(instrument, f"{what} did not finish within {timeout_s} s")
        clock.sleep(poll_s)


def camera_is_cold(camera: Camera) -> bool:
    """Whether the sensor is near its setpoint, so EM gain may be applied."""
    return camera.cooling_status() in (CoolingStatus.NOT_STABILIZED, CoolingStatus.STABILIZED)


def apply_em_gain(rig: Rig) -> None:
    """Set the configured EM gain (refused by the camera while its sensor is warm)."""
    cam = rig.config.camera
    if rig.camera.em_gain() != cam.em_gain:
        rig.camera.set_em_gain(cam.em_gain, advanced=cam.advanced_em_gain)


def configure(rig: Rig) -> None:
    """Apply the configuration's settings to the connected instruments."""
    c = rig.config
    rig.cryostat.set_setpoint_k(c.cryostat.target_temperature_k)
    rig.cryostat.set_temperature_control(c.cryostat.control_temperature)

    if rig.laser.remote_control:
        rig.laser.set_repetition_rate_hz(c.laser.repetition_rate_hz)
        rig.laser.set_power_nw(c.laser.power_nw)
        rig.laser.set_emission(True)

    rig.stage.set_velocity(c.stage.max_velocity_deg_s, c.stage.acceleration_deg_s2)
    if c.stage.home_on_connect:
        rig.stage.start_home()
        wait_until(rig.clock, lambda: not rig.stage.is_moving(), STAGE_TIMEOUT_S, "homing",
                   rig.stage.name)

    wanted = c.spectrograph.grating_lines_per_mm
    matches = [g.index for g in rig.spectrograph.gratings() if abs(g.lines_per_mm - wanted) < 1]
    if not matches:
        have = ", ".join(f"{g.lines_per_mm:g}" for g in rig.spectrograph.gratings())
        raise SettingRejectedError(rig.spectrograph.name,
                                   f"no {wanted:g} l/mm grating on the turret (has {have})")
    if rig.spectrograph.grating() != matches[0]:
        rig.spectrograph.set_grating(matches[0])
    rig.spectrograph.set_center_wavelength_nm(c.spectrograph.center_wavelength_nm)

    rig.camera.set_cooling(True, c.camera.temperature_c)
    rig.camera.set_readout(camera_readout(c))
    if camera_is_cold(rig.camera):
        apply_em_gain(rig)
    else:
        log.info("camera sensor not cold yet: EM gain %d is set when a run starts",
                 c.camera.em_gain)

    ch = c.channels
    apds = [ch.apd] if ch.apd2 is None else [ch.apd, ch.apd2]
    for channel in (*apds, ch.laser_sync, ch.camera_fire, ch.stage_motion):
        rig.tagger.set_trigger_level_v(channel, c.tagger.trigger_level_v)
    for channel in apds:
        rig.tagger.set_deadtime_ps(channel, c.tagger.apd_deadtime_ps)
    if ch.conditional_filter:
        rig.tagger.set_conditional_filter(trigger=apds, filtered=[ch.laser_sync])
    else:
        rig.tagger.clear_conditional_filter()


__all__ = ["Rig", "apply_em_gain", "camera_is_cold", "camera_readout", "configure", "wait_until"]
