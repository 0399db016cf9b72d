"""Simulated iXon Ultra 888 EMCCD behind the spectrograph.

The camera integrates the spectrograph arm's photons only while it exposes, maps each photon's
wavelength to a column through the spectrograph's calibration (blurred by the resolution) and its
polarization replica to sensor rows, and reads each finished frame out through the EMCCD noise
chain. Its Fire output (high while exposing) drives the ``camera_fire`` tagger input.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from drivers.interfaces import (
    Camera,
    CameraStatus,
    CoolingStatus,
    FrameBlock,
    InstrumentError,
    ReadMode,
    Readout,
    SettingRejectedError,
    Track,
)
from drivers.limits import IXON_ULTRA_888, track_layout_problem
from sim_hardware.base import SimInstrument
from sim_hardware.bench import FWHM_PER_SIGMA, Bench
from sim_hardware.optics import ReadNoise, emccd_readout
from sim_hardware.spectrograph import SimSpectrograph
from sim_hardware.units import HC_EV_NM, PS_PER_S

AMBIENT_C = 20.0
DEFAULT_TRACKS = (Track("V", 470, 490), Track("H", 530, 550))


class _ColumnMap:
    """Wavelength (nm) → fractional sensor column, the inverse of a smooth monotonic calibration.

    A polynomial fitted to the calibration (sub-millipixel accurate for a grating's smooth
    dispersion, and much faster than interpolation); wavelengths beyond the sensor map to −10.
    """

    DEGREE = 5

    def __init__(self, calibration_nm: npt.NDArray[np.float64]) -> None:
        columns = np.arange(calibration_nm.shape[0], dtype=np.float64)
        self.low, self.high = float(calibration_nm.min()), float(calibration_nm.max())
        self.poly = np.polynomial.Polynomial.fit(calibration_nm, columns,
                                                 min(self.DEGREE, columns.shape[0] - 1))

    def __call__(self, wavelength_nm: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        col = self.poly(wavelength_nm)
        col[(wavelength_nm < self.low - 1.0) | (wavelength_nm > self.high + 1.0)] = -10.0
        return col


def _track_of_rows(readout: Readout, rows: int) -> npt.NDArray[np.int64]:
    """The track each sensor row is binned into (−1 = none; a later track wins where tracks
    overlap)."""
    track = np.full(rows, -1, np.int64)
    for i, t in enumerate(readout.tracks):
        track[t.row_start:t.row_stop] = i
    return track


class _Series:
    """A running kinetic series: its schedule and the photons collected per frame."""

    def __init__(self, start_ps: int, exposure_ps: int, cycle_ps: int, frames: int) -> None:
        self.start_ps, self.exposure_ps, self.cycle_ps, self.frames = (
            start_ps, exposure_ps, cycle_ps, frames)
        self.stopped_ps: int | None = None
        self.next_to_read = 0
        #: per frame: the flat pixel indices of its photons (one array per deposit)
        self.photons: dict[int, list[npt.NDArray[np.int64]]] = {}

    def frame_end_ps(self, k: int) -> int:
        return self.start_ps + k * self.cycle_ps + self.exposure_ps

    @property
    def end_ps(self) -> int:
        natural = self.frame_end_ps(self.frames - 1)
        return natural if self.stopped_ps is None else min(natural, self.stopped_ps)

    def completed(self, now_ps: int) -> int:
        """Number of frames whose exposure ended (before any stop) strictly before ``now_ps``.

        Strictly: a frame is complete once its falling Fire edge can be released to the tagger
        (the bench releases edges at times ``< now``).
        """
        horizon = now_ps if self.stopped_ps is None else min(now_ps, self.stopped_ps + 1)
        if horizon <= self.frame_end_ps(0):
            return 0
        return min(self.frames, (horizon - 1 - self.frame_end_ps(0)) // self.cycle_ps + 1)


class SimCamera(SimInstrument, Camera):
    model = "iXon Ultra 888"

    def __init__(self, bench: Bench, spectrograph: SimSpectrograph,
                 sensor_shape: tuple[int, int] = (1024, 1024), pixel_width_um: float = 13.0,
                 readout_rate_mhz: float = 30.0) -> None:
        super().__init__(bench)
        self._spectrograph = spectrograph
        self._sensor = sensor_shape
        self._pixel_um = pixel_width_um
        self._rate_mhz = readout_rate_mhz
        self._optics = bench.params.optics
        self._cooler_on = self._optics.camera_start_cold
        self._setpoint_c = -80.0
        self._temp_c = self._setpoint_c if self._cooler_on else AMBIENT_C
        self._temp_time_s = bench.now_s
        self._em_gain = 0
        self._exposure_s = 0.1
        self._readout = Readout(ReadMode.TRACKS, DEFAULT_TRACKS)
        self._row_track = _track_of_rows(self._readout, sensor_shape[0])
        self._series: _Series | None = None
        self._lose: set[int] = set()
        self._calibration: tuple[tuple[object, ...], _ColumnMap] | None = None
        self._read_noise = ReadNoise(bench.rng_read_noise)
        bench.spectrograph_sink = self

    # -- sensor temperature -------------------------------------------------------------------

    def _update_temperature(self) -> None:
        now = self._bench.now_s
        target = self._setpoint_c if self._cooler_on else AMBIENT_C
        decay = math.exp(-(now - self._temp_time_s) / self._optics.camera_cooling_tau_s)
        self._temp_c = target + (self._temp_c - target) * decay
        self._temp_time_s = now

    def temperature_c(self) -> float:
        self._require()
        self._update_temperature()
        return self._temp_c

    def cooling_status(self) -> CoolingStatus:
        temperature = self.temperature_c()
        if not self._cooler_on:
            return CoolingStatus.OFF
        off_by = abs(temperature - self._setpoint_c)
        if off_by > 3.0:
            return CoolingStatus.NOT_REACHED
        return CoolingStatus.NOT_STABILIZED if off_by > 0.3 else CoolingStatus.STABILIZED

    def set_cooling(self, on: bool, setpoint_c: float | None = None) -> None:
        self._require()
        self._update_temperature()
        if setpoint_c is not None:
            IXON_ULTRA_888.cooling_setpoint_c.check(self.name, setpoint_c)
            self._setpoint_c = setpoint_c
        self._cooler_on = bool(on)

    # -- settings -----------------------------------------------------------------------------

    def sensor_shape(self) -> tuple[int, int]:
        return self._sensor

    def pixel_width_um(self) -> float:
        return self._pixel_um

    def em_gain(self) -> int:
        self._require()
        return self._em_gain

    def set_em_gain(self, gain: int, advanced: bool = False) -> None:
        self._require()
        problem = IXON_ULTRA_888.em_gain_problem(gain, advanced)
        if problem is not None:
            raise SettingRejectedError(self.name, problem)
        if gain > 0 and self.cooling_status() not in (CoolingStatus.NOT_STABILIZED,
                                                      CoolingStatus.STABILIZED):
            raise SettingRejectedError(
                self.name, f"no EM gain before the sensor is cold (it is at "
                f"{self._temp_c:.1f} C, setpoint {self._setpoint_c:.1f} C)")
        self._em_gain = int(gain)

    def exposure_s(self) -> float:
        self._require()
        return self._exposure_s

    def set_exposure_s(self, exposure_s: float) -> None:
        self._require()
        self._refuse_while_acquiring("exposure")
        IXON_ULTRA_888.exposure_s.check(self.name, exposure_s)
        self._exposure_s = float(exposure_s)

    def readout(self) -> Readout:
        return self._readout

    def set_readout(self, readout: Readout) -> None:
        self._require()
        self._refuse_while_acquiring("readout")
        if readout.mode is ReadMode.TRACKS:
            problem = track_layout_problem([(t.row_start, t.row_stop) for t in readout.tracks],
                                           self._sensor[0])
            if problem is not None:
                raise SettingRejectedError(self.name, problem)
        self._readout = readout
        self._row_track = _track_of_rows(readout, self._sensor[0])

    def readout_settings(self) -> dict[str, float | str]:
        return {"amplifier": "electron_multiplying", "rate_mhz": self._rate_mhz,
                "preamp_gain": 1.0, "frame_transfer": "on",
                "frame_gap_s": self._optics.camera_frame_gap_s}

    def _refuse_while_acquiring(self, what: str) -> None:
        if self.is_acquiring():
            raise SettingRejectedError(self.name, f"cannot change {what} during a series")

    # -- the series ---------------------------------------------------------------------------

    def start_series(self, frames: int) -> None:
        self._require()
        IXON_ULTRA_888.series_frames.check(self.name, frames)
        if self.is_acquiring():
            raise InstrumentError(self.name, "a series is already running")
        self._faults.exposure_started()
        now = self._bench.now_ps
        exposure_ps = round(self._exposure_s * PS_PER_S)
        cycle_ps = exposure_ps + round(self._optics.camera_frame_gap_s * PS_PER_S)
        self._series = _Series(now, exposure_ps, cycle_ps, frames)
        starts = now + cycle_ps * np.arange(frames, dtype=np.int64)
        channel = self._bench.wiring.camera_fire
        self._bench.add_edges(np.concatenate([starts, starts + exposure_ps]),
                              np.repeat(np.array([channel, -channel], np.int32), frames))

    def is_acquiring(self) -> bool:
        """Until the last frame can be read (its exposure ended before now, as
        :meth:`_Series.completed` counts)."""
        self._require()
        self._inject_faults()
        series = self._series
        return series is not None and series.stopped_ps is None \
            and self._bench.now_ps <= series.end_ps

    def _inject_faults(self) -> None:
        """The camera's own faults: a frame lost, or the series ended early."""
        series = self._series
        if series is None:
            return
        lost = self._faults.once("camera", "lost_frame")
        at = None if lost is None else self._faults.at_ps(lost)
        if at is not None:
            self.lose_frames([max(0, (at - series.start_ps) // series.cycle_ps)])
        if self._faults.once("camera", "stop_early") is not None:
            self.stop_series()

    def stop_series(self) -> None:
        self._require()
        series = self._series
        if series is None or series.stopped_ps is not None:
            return
        now = self._bench.now_ps
        if now >= series.end_ps:
            return
        self._bench.flush_spectrograph()
        series.stopped_ps = now
        channel = self._bench.wiring.camera_fire
        self._bench.cancel_edges(channel, now)
        # every edge from now on is cancelled; an exposure running (or ending) now ends now
        k = (now - series.start_ps) // series.cycle_ps
        if 0 < now - series.start_ps - k * series.cycle_ps <= series.exposure_ps:
            self._bench.add_edges(now, -channel)

    def read_new_frames(self) -> FrameBlock:
        self._require()
        self._inject_faults()
        series = self._series
        shape = self._readout.frame_shape(self._sensor)
        if series is None:
            return FrameBlock(0, np.empty((0, *shape), np.uint16))
        first, done = series.next_to_read, series.completed(self._bench.now_ps)
        if done > first:
            self._bench.flush_spectrograph()
        self._update_temperature()
        lost: list[int] = []
        while first < done and first in self._lose:  # lost before this block's first frame
            series.photons.pop(first, None)
            lost.append(first)
            first += 1
        kept = next((k for k in range(first, done) if k in self._lose), done)
        frames = np.empty((max(kept - first, 0), *shape), np.uint16)
        if kept > first:  # most polls find no new frame
            binned = np.array([t.row_stop - t.row_start for t in self._readout.tracks]
                              if self._readout.mode is ReadMode.TRACKS else [1])[:, None]
            size = math.prod(shape)
            for i, k in enumerate(range(first, kept)):
                pixels = series.photons.pop(k, [])
                holding, photons = np.unique(np.concatenate(pixels) if pixels
                                             else np.zeros(0, np.int64), return_counts=True)
                frames[i] = emccd_readout(holding, photons, shape, binned, self._exposure_s,
                                          self._em_gain, self._temp_c, self._optics,
                                          self._bench.rng_camera, self._read_noise.take(size))
        series.next_to_read = max(kept, first)
        return FrameBlock(first, frames, tuple(lost))

    def lose_frames(self, series_indices: Iterable[int]) -> None:
        """Fault injection: the frames of these series indices are lost (as in a buffer overrun)
        and reported in :attr:`FrameBlock.lost` instead of read."""
        self._lose.update(int(k) for k in series_indices)

    # -- photons from the spectrograph arm ----------------------------------------------------

    def _column_map(self) -> _ColumnMap:
        """The inverse of the spectrograph's calibration for the current grating and center."""
        key = (self._spectrograph.grating(), self._spectrograph.center_wavelength_nm())
        if self._calibration is None or self._calibration[0] != key:
            cal = self._spectrograph.wavelength_calibration_nm(self._sensor[1], self._pixel_um)
            self._calibration = (key, _ColumnMap(cal))
        return self._calibration[1]

    def collecting(self, now_ps: int) -> bool:
        series = self._series
        return series is not None and now_ps < series.end_ps

    def deposit(self, time_ps: npt.NDArray[np.int64], is_h: npt.NDArray[np.bool_],
                energy_ev: npt.NDArray[np.float64]) -> None:
        series = self._series
        if series is None or time_ps.shape[0] == 0 or not self._spectrograph.is_connected:
            return
        rel = time_ps - series.start_ps
        k = rel // series.cycle_ps
        keep = (rel >= 0) & (k < series.frames) & (rel - k * series.cycle_ps < series.exposure_ps)
        if series.stopped_ps is not None:
            keep &= time_ps < series.stopped_ps
        if not keep.any():
            return
        k, is_h, energy_ev = k[keep], is_h[keep], energy_ev[keep]
        rng, optics = self._bench.rng_camera, self._optics
        rows, columns = self._sensor
        col = self._column_map()(HC_EV_NM / energy_ev)
        col = np.rint(col + rng.normal(0, optics.resolution_fwhm_px / FWHM_PER_SIGMA, col.shape))
        row = np.where(is_h, optics.h_row, optics.v_row) + np.rint(
            rng.normal(0, optics.spot_sigma_rows, col.shape))
        on_chip = (col >= 0) & (col < columns) & (row >= 0) & (row < rows)
        k, col, row = k[on_chip], col[on_chip].astype(np.int64), row[on_chip].astype(np.int64)
        if self._readout.mode is ReadMode.IMAGE:
            pixel = row * columns + col
        else:
            track = self._row_track[row]
            read = track >= 0
            k, pixel = k[read], track[read] * columns + col[read]
        if k.shape[0] == 0:
            return
        for frame in range(int(k.min()), int(k.max()) + 1):
            series.photons.setdefault(frame, []).append(pixel[k == frame])

    def close(self) -> None:
        if self.is_connected:
            self.stop_series()
        self._read_noise.close()
        super().close()

    def status(self) -> CameraStatus:
        self._require()
        series = self._series
        acquired = 0 if series is None else series.completed(self._bench.now_ps)
        return CameraStatus(self.temperature_c(), self.cooling_status(), self._em_gain,
                            self._exposure_s, self.is_acquiring(), acquired)
