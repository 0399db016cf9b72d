"""Simulated Kymera 328i: a grating turret and the grating equation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from drivers.interfaces import GratingInfo, SettingRejectedError, Spectrograph, SpectrographStatus
from drivers.limits import KYMERA_328I
from sim_hardware.base import SimInstrument
from sim_hardware.bench import Bench
from sim_hardware.optics import grating_calibration_nm


class SimSpectrograph(SimInstrument, Spectrograph):
    model = "Kymera 328i"

    def __init__(self, bench: Bench, gratings_lines_per_mm: Sequence[float] = (150, 600, 1200),
                 focal_length_mm: float = 328.0, inclusion_angle_deg: float = 30.0) -> None:
        super().__init__(bench)
        self._gratings = [GratingInfo(i + 1, float(lpmm), "500nm")
                          for i, lpmm in enumerate(gratings_lines_per_mm)]
        self._grating = 1
        self._center_nm = 580.0
        self._focal_length_mm = focal_length_mm
        self._inclusion_angle_deg = inclusion_angle_deg

    def gratings(self) -> Sequence[GratingInfo]:
        self._require()
        return list(self._gratings)

    def grating(self) -> int:
        self._require()
        return self._grating

    def set_grating(self, index: int) -> None:
        self._require()
        if not 1 <= index <= len(self._gratings):
            raise SettingRejectedError(self.name, f"no grating {index} (turret has "
                                                  f"{len(self._gratings)})")
        self._bench.flush_spectrograph()
        self._grating = index

    def center_wavelength_nm(self) -> float:
        self._require()
        return self._center_nm

    def set_center_wavelength_nm(self, wavelength_nm: float) -> None:
        self._require()
        KYMERA_328I.center_wavelength_nm.check(self.name, wavelength_nm)
        lines = self._gratings[self._grating - 1].lines_per_mm
        try:
            grating_calibration_nm(lines, wavelength_nm, self._focal_length_mm,
                                   self._inclusion_angle_deg, 1, 13.0)
        except ValueError as exc:
            raise SettingRejectedError(self.name, str(exc)) from None
        self._bench.flush_spectrograph()
        self._center_nm = float(wavelength_nm)

    def wavelength_calibration_nm(self, pixels: int,
                                  pixel_width_um: float) -> npt.NDArray[np.float64]:
        self._require()
        return grating_calibration_nm(self._gratings[self._grating - 1].lines_per_mm,
                                      self._center_nm, self._focal_length_mm,
                                      self._inclusion_angle_deg, pixels, pixel_width_um)

    def status(self) -> SpectrographStatus:
        self._require()
        return SpectrographStatus(self._grating, self._gratings[self._grating - 1].lines_per_mm,
                                  self._center_nm)
