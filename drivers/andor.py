"""Andor iXon Ultra 888 EMCCD and Kymera 328i spectrograph through pylablib.

``pylablib.devices.Andor.AndorSDK2Camera`` and ``ShamrockSpectrograph`` load Andor's Windows DLLs
(``atmcd64d.dll``, ``ShamrockCIF64.dll``) when opened; elsewhere (or without Andor's SDK/Solis)
the open fails, which these drivers report as one :class:`SdkMissingError` line. Always close: the
SDK keeps the camera locked otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from drivers._sdk import import_sdk, require
from drivers.interfaces import (
    Camera,
    CameraStatus,
    CoolingStatus,
    FrameBlock,
    GratingInfo,
    Identity,
    InstrumentError,
    InstrumentTimeoutError,
    NotSupportedError,
    ReadMode,
    Readout,
    SdkMissingError,
    SettingRejectedError,
    Spectrograph,
    SpectrographStatus,
)
from drivers.limits import IXON_ULTRA_888, KYMERA_328I, track_layout_problem

__all__ = ["EM_GAIN_SAFE_MAX", "AndorCamera", "AndorSpectrograph"]

log = logging.getLogger(__name__)

#: Highest EM gain allowed without ``advanced`` (above it the sensor can age or be damaged).
EM_GAIN_SAFE_MAX = IXON_ULTRA_888.em_gain_plain_max
#: Cooling states in which the sensor is cold enough for EM gain.
_COLD = (CoolingStatus.NOT_STABILIZED, CoolingStatus.STABILIZED)
_INSTALL = "install pylablib-lightweight (the 'hardware' extra)"


def _sdk_hint(what: str, dll: str) -> str:
    where = "" if sys.platform == "win32" else " (pylablib's Andor drivers are Windows-only)"
    return f"cannot load the Andor {what} library {dll}{where}: install Andor SDK2 or Solis"


@contextlib.contextmanager
def _mapped(andor: Any, instrument: str, what: str) -> Iterator[None]:
    """Turn pylablib's Andor errors into InstrumentError subclasses."""
    try:
        yield
    except andor.AndorTimeoutError as exc:
        raise InstrumentTimeoutError(instrument, f"{what}: timed out") from exc
    except andor.AndorNotSupportedError as exc:
        raise NotSupportedError(instrument, f"{what}: {exc}") from exc
    except andor.AndorError as exc:
        raise InstrumentError(instrument, f"{what}: {exc}") from exc


def _open(andor: Any, instrument: str, what: str, dll: str, factory: Any) -> Any:
    try:
        with _mapped(andor, instrument, f"opening the {what}"):
            return factory()
    except OSError as exc:
        raise SdkMissingError(instrument, _sdk_hint(what, dll)) from exc
    except AttributeError as exc:
        if "windll" not in str(exc):  # ctypes.windll: pylablib's loader outside Windows
            raise
        raise SdkMissingError(instrument, _sdk_hint(what, dll)) from exc


# ---------------------------------------------------------------------------------------------
# Camera


class AndorCamera(Camera):
    """The iXon Ultra 888 (any Andor SDK2 EMCCD).

    Parameters: ``index`` (SDK camera index), ``temperature_c`` (cooling setpoint at open, °C),
    ``readout_rate_mhz`` (horizontal readout rate of the EM amplifier, MHz; the nearest available
    is used), ``frame_transfer`` (frame-transfer mode).
    """

    def __init__(
        self,
        index: int = 0,
        temperature_c: float = -80.0,
        readout_rate_mhz: float = 30.0,
        frame_transfer: bool = True,
    ) -> None:
        self.index = index
        self.initial_temperature_c = temperature_c
        self.readout_rate_mhz = readout_rate_mhz
        self.frame_transfer = frame_transfer
        self._cam: Any = None
        self._andor: Any = None
        self._readout = Readout(ReadMode.IMAGE)
        self._next_frame = 0
        self._sensor_shape = (0, 0)

    def _mapped(self, what: str) -> contextlib.AbstractContextManager[None]:
        return _mapped(self._andor, self.name, what)

    def _dev(self) -> Any:
        return require(self.name, self._cam)

    @property
    def sdk_camera(self) -> Any:
        """The open pylablib camera (for the spectrograph's ``setup_pixels_from_camera``)."""
        return self._dev()

    # -- life cycle ---------------------------------------------------------------------------

    def connect(self) -> None:
        if self._cam is not None:
            return
        self._andor = import_sdk(self.name, "pylablib.devices.Andor", _INSTALL)
        self._cam = _open(
            self._andor, self.name, "camera", "atmcd64d.dll",
            lambda: self._andor.AndorSDK2Camera(
                idx=self.index, temperature=self.initial_temperature_c, fan_mode="full"
            ),
        )
        try:
            with self._mapped("configuring the camera"):
                columns, rows = self._cam.get_detector_size()
                self._sensor_shape = (int(rows), int(columns))
                self._select_em_amplifier()
                self._cam.enable_frame_transfer_mode(self.frame_transfer)
                self._cam.set_trigger_mode("int")
                self._cam.setup_image_mode()
        except InstrumentError:
            self.close()
            raise
        log.info("camera: Andor camera %d open", self.index)

    def _select_em_amplifier(self) -> None:
        modes = list(self._cam.get_all_amp_modes())
        em = [m for m in modes if "electron" in str(m.oamp_kind).lower()] or modes
        if not em:
            raise InstrumentError(self.name, "the SDK lists no amplifier modes")
        best = min(em, key=lambda m: (abs(m.hsspeed_MHz - self.readout_rate_mhz), m.preamp))
        self._cam.set_amp_mode(best.channel, best.oamp, best.hsspeed, best.preamp)

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is None:
            return
        try:
            with self._mapped("leaving the camera safe"):
                cam.stop_acquisition()
                cam.set_EMCCD_gain(0, advanced=False)
        except InstrumentError as exc:
            log.warning("%s", exc)
        finally:
            cam.close()

    @property
    def is_connected(self) -> bool:
        return self._cam is not None

    def identity(self) -> Identity:
        cam = self._dev()
        with self._mapped("reading the device info"):
            info = cam.get_device_info()
        return Identity(vendor="Andor", model=str(info.head_model),
                        serial=str(info.serial_number), firmware=str(info.controller_model))

    # -- sensor -------------------------------------------------------------------------------

    def sensor_shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the sensor (read once at connect)."""
        self._dev()
        return self._sensor_shape

    def pixel_width_um(self) -> float:
        """Pixel pitch (µm)."""
        cam = self._dev()
        with self._mapped("reading the pixel size"):
            return float(cam.get_pixel_size()[0]) * 1e6

    def temperature_c(self) -> float:
        """Sensor temperature (°C)."""
        cam = self._dev()
        with self._mapped("reading the temperature"):
            return float(cam.get_temperature())

    def cooling_status(self) -> CoolingStatus:
        cam = self._dev()
        with self._mapped("reading the cooling status"):
            return CoolingStatus(cam.get_temperature_status())

    def set_cooling(self, on: bool, setpoint_c: float | None = None) -> None:
        """Switch the cooler (setpoint in °C); switching it off first sets the EM gain to 0."""
        cam = self._dev()
        if on and setpoint_c is not None:
            IXON_ULTRA_888.cooling_setpoint_c.check(self.name, setpoint_c)
        with self._mapped("setting the cooling"):
            if on:
                if setpoint_c is not None:
                    cam.set_temperature(setpoint_c, enable_cooler=True)
                else:
                    cam.set_cooler(True)
            else:
                cam.set_EMCCD_gain(0, advanced=False)
                cam.set_cooler(False)

    # -- gain and exposure --------------------------------------------------------------------

    def em_gain(self) -> int:
        cam = self._dev()
        with self._mapped("reading the EM gain"):
            return int(cam.get_EMCCD_gain()[0])

    def set_em_gain(self, gain: int, advanced: bool = False) -> None:
        """Set the EM gain. Above 300 needs ``advanced``; any gain needs a cold sensor."""
        problem = IXON_ULTRA_888.em_gain_problem(gain, advanced)
        if problem is not None:
            raise SettingRejectedError(self.name, problem)
        if gain > 0:
            cooling = self.cooling_status()
            if cooling not in _COLD:
                raise SettingRejectedError(
                    self.name,
                    f"no EM gain before the sensor is cold (cooling is {cooling.value}, at "
                    f"{self.temperature_c():.1f} °C)",
                )
        cam = self._dev()
        with self._mapped(f"setting the EM gain to {gain}"):
            cam.set_EMCCD_gain(gain, advanced=gain > EM_GAIN_SAFE_MAX)

    def exposure_s(self) -> float:
        """Exposure time (s)."""
        cam = self._dev()
        with self._mapped("reading the exposure"):
            return float(cam.get_exposure())

    def set_exposure_s(self, exposure_s: float) -> None:
        """Set the exposure time (s), within :data:`drivers.limits.IXON_ULTRA_888`."""
        cam = self._dev()
        IXON_ULTRA_888.exposure_s.check(self.name, exposure_s)
        with self._mapped(f"setting the exposure to {exposure_s:g} s"):
            cam.set_exposure(exposure_s)

    # -- readout ------------------------------------------------------------------------------

    def readout(self) -> Readout:
        return self._readout

    def set_readout(self, readout: Readout) -> None:
        """Tracks: random-track mode, one binned spectrum per track; image: the full sensor."""
        cam = self._dev()
        if readout.mode is ReadMode.TRACKS:
            self._check_tracks(readout)
            spans = [(t.row_start, t.row_stop) for t in readout.tracks]
            with self._mapped("setting the track readout"):
                cam.set_read_mode("random_track")
                cam.setup_random_track_mode(spans)
        else:
            with self._mapped("setting the image readout"):
                cam.setup_image_mode()
        self._readout = readout

    def _check_tracks(self, readout: Readout) -> None:
        spans = [(t.row_start, t.row_stop) for t in readout.tracks]
        problem = track_layout_problem(spans, self.sensor_shape()[0])
        if problem is not None:
            raise SettingRejectedError(self.name, problem)

    def readout_settings(self) -> dict[str, float | str]:
        """Amplifier, horizontal rate (MHz), preamp gain, vertical shift (µs), frame transfer."""
        cam = self._dev()
        with self._mapped("reading the readout settings"):
            mode = cam.get_amp_mode(full=True)
            vshift_us = cam.get_vsspeed_period()
            frame_transfer = cam.is_frame_transfer_enabled()
        return {
            "amplifier": str(mode.oamp_kind),
            "rate_mhz": float(mode.hsspeed_MHz),
            "preamp_gain": float(mode.preamp_gain),
            "vertical_shift_us": float(vshift_us),
            "frame_transfer": "on" if frame_transfer else "off",
        }

    # -- series -------------------------------------------------------------------------------

    def _frame_shape(self) -> tuple[int, int]:
        return self._readout.frame_shape(self.sensor_shape())

    def start_series(self, frames: int) -> None:
        """Start a kinetic series of ``frames`` exposures (internal trigger) and return."""
        IXON_ULTRA_888.series_frames.check(self.name, frames)
        cam = self._dev()
        with self._mapped(f"starting a series of {frames} frames"):
            cam.setup_acquisition(mode="kinetic", nframes=frames)
            cam.start_acquisition()
        self._next_frame = 0

    def read_new_frames(self) -> FrameBlock:
        """Frames completed since the last read (possibly none); never waits for a frame."""
        cam = self._dev()
        with self._mapped("reading frames"):
            images, rng = cam.read_multiple_images(missing_frame="skip", return_rng=True)
        if not images:
            return FrameBlock(self._next_frame, np.empty((0, *self._frame_shape()), np.uint16))
        first, stop = int(rng[0]), int(rng[1])
        lost = tuple(range(self._next_frame, first))
        if lost:
            log.warning("camera: frames %d-%d were lost (camera buffer overrun)",
                        lost[0], lost[-1])
        self._next_frame = stop
        return FrameBlock(first, np.asarray(images, dtype=np.uint16), lost)

    def is_acquiring(self) -> bool:
        cam = self._dev()
        with self._mapped("reading the acquisition state"):
            return bool(cam.acquisition_in_progress())

    def stop_series(self) -> None:
        cam = self._dev()
        with self._mapped("stopping the series"):
            cam.stop_acquisition()

    def status(self) -> CameraStatus:
        cam = self._dev()
        with self._mapped("reading the acquisition progress"):
            frames_done = int(cam.get_acquisition_progress().frames_done)
        return CameraStatus(
            temperature_c=self.temperature_c(), cooling=self.cooling_status(),
            em_gain=self.em_gain(), exposure_s=self.exposure_s(),
            acquiring=self.is_acquiring(), frames_acquired=frames_done,
        )


# ---------------------------------------------------------------------------------------------
# Spectrograph


class AndorSpectrograph(Spectrograph):
    """The Kymera 328i (any Andor Shamrock/Kymera). ``index``: SDK spectrograph index."""

    def __init__(self, index: int = 0) -> None:
        self.index = index
        self._spec: Any = None
        self._andor: Any = None

    def _mapped(self, what: str) -> contextlib.AbstractContextManager[None]:
        return _mapped(self._andor, self.name, what)

    def _dev(self) -> Any:
        return require(self.name, self._spec)

    def connect(self) -> None:
        if self._spec is not None:
            return
        self._andor = import_sdk(self.name, "pylablib.devices.Andor", _INSTALL)
        self._spec = _open(
            self._andor, self.name, "spectrograph", "ShamrockCIF64.dll",
            lambda: self._andor.ShamrockSpectrograph(idx=self.index),
        )
        log.info("spectrograph: Andor spectrograph %d open", self.index)

    def close(self) -> None:
        spec, self._spec = self._spec, None
        if spec is not None:
            spec.close()

    @property
    def is_connected(self) -> bool:
        return self._spec is not None

    def identity(self) -> Identity:
        spec = self._dev()
        with self._mapped("reading the device info"):
            info = spec.get_device_info()
        return Identity(vendor="Andor", model="Shamrock/Kymera",
                        serial=str(info.serial_number), firmware="")

    def gratings(self) -> Sequence[GratingInfo]:
        spec = self._dev()
        with self._mapped("reading the gratings"):
            count = int(spec.get_gratings_number())
            infos = [spec.get_grating_info(g) for g in range(1, count + 1)]
        return [GratingInfo(g, float(i.lines), str(i.blaze_wavelength))
                for g, i in enumerate(infos, start=1)]

    def grating(self) -> int:
        spec = self._dev()
        with self._mapped("reading the grating"):
            return int(spec.get_grating())

    def set_grating(self, index: int) -> None:
        """Select a grating (1-based); blocks while the turret turns (10-20 s)."""
        spec = self._dev()
        with self._mapped(f"selecting grating {index}"):
            count = int(spec.get_gratings_number())
            if not 1 <= index <= count:
                raise SettingRejectedError(self.name, f"grating {index} is not in 1-{count}")
            spec.set_grating(index)

    def center_wavelength_nm(self) -> float:
        """Center wavelength (nm)."""
        spec = self._dev()
        with self._mapped("reading the wavelength"):
            return float(spec.get_wavelength()) * 1e9

    def set_center_wavelength_nm(self, wavelength_nm: float) -> None:
        """Set the center wavelength (nm), within :data:`drivers.limits.KYMERA_328I`."""
        spec = self._dev()
        KYMERA_328I.center_wavelength_nm.check(self.name, wavelength_nm)
        with self._mapped(f"setting the wavelength to {wavelength_nm:g} nm"):
            spec.set_wavelength(wavelength_nm * 1e-9)

    def wavelength_calibration_nm(
        self, pixels: int, pixel_width_um: float
    ) -> npt.NDArray[np.float64]:
        """Wavelength (nm) of each of ``pixels`` columns of ``pixel_width_um`` (µm) pitch."""
        spec = self._dev()
        with self._mapped("reading the calibration"):
            spec.set_number_pixels(pixels)
            spec.set_pixel_width(pixel_width_um * 1e-6)
            calibration_m = np.asarray(spec.get_calibration(), dtype=np.float64)
        return self._checked(calibration_m, pixels)

    def wavelength_calibration_from_camera(self, camera: AndorCamera) -> npt.NDArray[np.float64]:
        """Calibration (nm) for an open :class:`AndorCamera` (``setup_pixels_from_camera``)."""
        spec = self._dev()
        with self._mapped("reading the calibration"):
            spec.setup_pixels_from_camera(camera.sdk_camera)
            calibration_m = np.asarray(spec.get_calibration(), dtype=np.float64)
        return self._checked(calibration_m, camera.sensor_shape()[1])

    def _checked(
        self, calibration_m: npt.NDArray[np.float64], pixels: int
    ) -> npt.NDArray[np.float64]:
        if calibration_m.shape != (pixels,):
            raise InstrumentError(
                self.name,
                f"calibration has {calibration_m.size} values for {pixels} pixels",
            )
        return calibration_m * 1e9

    def status(self) -> SpectrographStatus:
        spec = self._dev()
        with self._mapped("reading the grating"):
            grating = int(spec.get_grating())
            lines = float(spec.get_grating_info(grating).lines)
        return SpectrographStatus(grating=grating, lines_per_mm=lines,
                                  center_wavelength_nm=self.center_wavelength_nm())
