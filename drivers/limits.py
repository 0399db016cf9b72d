"""Each instrument setting's unit and limits, declared once.

The configuration check (``cryoscope.config``), the real drivers' setters, the simulated
instruments' setters and the GUI's spin boxes all read these declarations, so a value one of them
refuses is refused by all of them, by the instruments with :class:`SettingRejectedError`. In the
spirit of pymeasure's ``strict_range`` validators and qudi's constraints objects: a
:class:`SettingRange` is a frozen value with its unit, its bounds and where they come from.

Where real instruments differ (the lasers), there is one declaration per model. ``source`` says
where each range comes from: a vendor document or library, public third-party code, or
cryoscope's own choice (a sanity bound where no vendor figure was found). See ``docs/limits.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from drivers.interfaces import SettingRejectedError

__all__ = [
    "ATTODRY800",
    "EPL_475",
    "IXON_ULTRA_888",
    "KYMERA_328I",
    "LASERS",
    "PILAS",
    "PRM1_Z8",
    "SIMULATED_LASER",
    "TIME_TAGGER_20",
    "CameraLimits",
    "CryostatLimits",
    "LaserLimits",
    "SettingRange",
    "SpectrographLimits",
    "StageLimits",
    "TaggerLimits",
    "track_layout_problem",
]


@dataclass(frozen=True, slots=True)
class SettingRange:
    """A setting's unit and its range ``[low, high]`` (``(low, high]`` if not
    ``low_inclusive``). Non-finite values (NaN, ±inf) are never within it."""

    name: str
    unit: str
    low: float
    high: float
    source: str
    low_inclusive: bool = True

    def __contains__(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        above = value >= self.low if self.low_inclusive else value > self.low
        return above and value <= self.high

    def _quantity(self, value: float) -> str:
        return f"{value:.10g} {self.unit}" if self.unit else f"{value:.10g}"

    def describe(self) -> str:
        """The range as text, e.g. ``"1.5-320 K"``, or ``"(0, 25] deg/s"`` without its low end."""
        if self.low_inclusive:
            return f"{self.low:.10g}-{self._quantity(self.high)}"
        return f"({self.low:.10g}, {self._quantity(self.high)}]"

    def problem(self, value: float) -> str | None:
        """Why ``value`` is refused (one line), or None if it is within the range."""
        if value in self:
            return None
        return f"{self.name} {self._quantity(value)} is outside {self.describe()}"

    def check(self, instrument: str, value: float) -> float:
        """Return ``value``, or raise :class:`SettingRejectedError` naming ``instrument``."""
        problem = self.problem(value)
        if problem is not None:
            raise SettingRejectedError(instrument, problem)
        return value


_CRYOSCOPE = "cryoscope's own bound (no vendor figure found)"


# ---------------------------------------------------------------------------------------------
# Cryostat


@dataclass(frozen=True, slots=True)
class CryostatLimits:
    setpoint_k: SettingRange


#: attocube attoDRY800. The floor lies below the cryostat's ~4 K base, so every reachable
#: temperature can be asked for, and a setpoint of 1 K (a typo) is refused.
ATTODRY800 = CryostatLimits(
    setpoint_k=SettingRange("setpoint", "K", 1.5, 320.0, _CRYOSCOPE),
)


# ---------------------------------------------------------------------------------------------
# Lasers


@dataclass(frozen=True, slots=True)
class LaserLimits:
    """``power_nw`` is the average power at the sample; for a laser whose power is set by a
    tuning, the upper bound is also the configured full power (see ``full_power_nw``)."""

    model: str
    repetition_rate_hz: SettingRange
    power_nw: SettingRange


#: NKT Photonics PiLas: ``f=<Hz>`` accepts 25 Hz-40 MHz in the public third-party driver
#: hephy-dd/comet (``comet/driver/nkt/pilas.py``, "Frequency must be between 25Hz and 40MHz");
#: no NKT manual was found. Power: per-mille tuning of the configured full power.
PILAS = LaserLimits(
    model="NKT PiLas",
    repetition_rate_hz=SettingRange(
        "repetition rate", "Hz", 25.0, 40e6,
        "hephy-dd/comet PiLas driver (third-party; no NKT manual found)"),
    power_nw=SettingRange("power", "nW", 0.0, 1e6, _CRYOSCOPE),
)

#: Edinburgh Instruments EPL-475, front panel only: its settings are recorded, never sent. No
#: public specification of its rates was found; the bounds only catch typos.
EPL_475 = LaserLimits(
    model="EPL-475",
    repetition_rate_hz=SettingRange("repetition rate", "Hz", 0.0, 100e6, _CRYOSCOPE,
                                    low_inclusive=False),
    power_nw=SettingRange("power", "nW", 0.0, 1e6, _CRYOSCOPE),
)

#: The simulated pulsed diode laser (``sim_hardware.laser``).
SIMULATED_LASER = LaserLimits(
    model="simulated pulsed diode laser",
    repetition_rate_hz=SettingRange("repetition rate", "Hz", 1e3, 80e6,
                                    "cryoscope's simulator"),
    power_nw=SettingRange("power", "nW", 0.0, 1e6, "cryoscope's simulator"),
)

#: The laser models by their configuration name (``[laser] model``).
LASERS: dict[str, LaserLimits] = {"simulated": SIMULATED_LASER, "epl": EPL_475, "pilas": PILAS}


# ---------------------------------------------------------------------------------------------
# Rotation stage


@dataclass(frozen=True, slots=True)
class StageLimits:
    max_velocity_deg_s: SettingRange
    acceleration_deg_s2: SettingRange


_PRM1_Z8_SOURCE = ("the PRM1-Z8 figures cryoscope has used from the start (25 deg/s, "
                   "25 deg/s^2); not re-checked against a Thorlabs document")

#: Thorlabs PRM1-Z8 rotation mount on a KDC101.
PRM1_Z8 = StageLimits(
    max_velocity_deg_s=SettingRange("velocity", "deg/s", 0.0, 25.0, _PRM1_Z8_SOURCE,
                                    low_inclusive=False),
    acceleration_deg_s2=SettingRange("acceleration", "deg/s^2", 0.0, 25.0, _PRM1_Z8_SOURCE,
                                     low_inclusive=False),
)


# ---------------------------------------------------------------------------------------------
# Camera


@dataclass(frozen=True, slots=True)
class CameraLimits:
    exposure_s: SettingRange
    em_gain: SettingRange
    #: Highest EM gain allowed without ``advanced`` (above it the sensor ages faster).
    em_gain_plain_max: int
    cooling_setpoint_c: SettingRange
    series_frames: SettingRange

    def em_gain_problem(self, gain: int, advanced: bool) -> str | None:
        """Why ``gain`` is refused (out of range, or above the plain maximum without
        ``advanced``), or None."""
        problem = self.em_gain.problem(gain)
        if problem is None and gain > self.em_gain_plain_max and not advanced:
            problem = (f"EM gain {gain} exceeds {self.em_gain_plain_max}: it needs advanced "
                       "mode (camera.advanced_em_gain = true) and risks the sensor")
        return problem


#: Andor iXon Ultra 888. Gains above 300 need advanced mode (pylablib ``set_EMCCD_gain``'s
#: ``advanced``; a sensor risk); the other bounds are cryoscope's: the SDK clamps a cooling
#: setpoint to its ``GetTemperatureRange`` silently, and a series longer than ``series_frames`` is
#: refused because per-frame schedules are allocated up front (10^9 frames: 7.45 GiB).
IXON_ULTRA_888 = CameraLimits(
    exposure_s=SettingRange("exposure", "s", 1e-5, 3600.0, _CRYOSCOPE),
    em_gain=SettingRange("EM gain", "", 0, 1000, _CRYOSCOPE),
    em_gain_plain_max=300,
    cooling_setpoint_c=SettingRange("cooling setpoint", "°C", -100.0, 20.0, _CRYOSCOPE),
    series_frames=SettingRange("series length", "frames", 1, 1_000_000, _CRYOSCOPE),
)


def track_layout_problem(spans: Sequence[tuple[int, int]], sensor_rows: int) -> str | None:
    """Why the Andor random-track readout would refuse these ``(row_start, row_stop)`` spans
    (0-based, stop exclusive, as pylablib's ``setup_random_track_mode`` takes them), or None.

    The SDK's ``SetRandomTracks`` takes the tracks as 1-based ``(start, stop)`` pairs in
    ascending, non-overlapping order within the sensor; pylablib passes them on unchecked.
    """
    if not spans:
        return "track readout needs at least one track"
    previous_stop = 0
    for index, (start, stop) in enumerate(spans):
        if not 0 <= start < stop:
            return f"track {index + 1} rows [{start}, {stop}) are not a non-empty range"
        if stop > sensor_rows:
            return (f"track {index + 1} rows [{start}, {stop}) end beyond the "
                    f"{sensor_rows}-row sensor")
        if start < previous_stop:
            return (f"track {index + 1} rows [{start}, {stop}) overlap or precede the track "
                    "before it: tracks must be in ascending, non-overlapping order")
        previous_stop = stop
    return None


# ---------------------------------------------------------------------------------------------
# Spectrograph


@dataclass(frozen=True, slots=True)
class SpectrographLimits:
    center_wavelength_nm: SettingRange


#: Andor Kymera 328i: the center wavelength range cryoscope offers (the grating equation of the
#: chosen grating may refuse part of it).
KYMERA_328I = SpectrographLimits(
    center_wavelength_nm=SettingRange("center wavelength", "nm", 200.0, 1200.0, _CRYOSCOPE),
)


# ---------------------------------------------------------------------------------------------
# Time tagger


@dataclass(frozen=True, slots=True)
class TaggerLimits:
    model: str
    inputs: SettingRange
    trigger_level_v: SettingRange


#: Swabian Time Tagger 20: inputs 1-8, trigger level 0-2.5 V (Swabian's specification).
TIME_TAGGER_20 = TaggerLimits(
    model="Time Tagger 20",
    inputs=SettingRange("input", "", 1, 8, "Swabian Time Tagger 20 (8 inputs)"),
    trigger_level_v=SettingRange("trigger level", "V", 0.0, 2.5,
                                 "Swabian Time Tagger 20 specification"),
)
