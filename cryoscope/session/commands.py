"""Typed commands: what a session's worker thread may do to the rig between runs.

Each command is a small frozen dataclass that names what it does (:attr:`Command.description`,
used in messages: "Could not set the laser power to 5000 nW: ...") and does it
(:meth:`Command.apply`, on the worker thread only). A GUI or a script builds one and hands it
to :meth:`cryoscope.session.RigSession.send`; it never touches the rig itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Generic, TypeVar

from cryoscope.rig import Rig, camera_readout
from drivers.interfaces import GratingInfo, ReadMode, Readout

__all__ = [
    "Command",
    "HomeStage",
    "MoveWaveplate",
    "ReadGratings",
    "SetCenterWavelength",
    "SetCooling",
    "SetEmGain",
    "SetExposure",
    "SetGrating",
    "SetLaserEmission",
    "SetLaserPower",
    "SetLaserRate",
    "SetReadout",
    "SetSetpoint",
    "SetTemperatureControl",
    "StopStage",
]

T = TypeVar("T")


def _on_off(on: bool) -> str:
    return "on" if on else "off"


class Command(ABC, Generic[T]):
    """Something the worker thread does to the rig; see the module docstring."""

    @property
    @abstractmethod
    def description(self) -> str:
        """What it does, as the object of "could not …"."""

    @abstractmethod
    def apply(self, rig: Rig) -> T:
        """Do it (worker thread)."""


@dataclass(frozen=True)
class SetSetpoint(Command[None]):
    temperature_k: float

    @property
    def description(self) -> str:
        return f"set the sample setpoint to {self.temperature_k:g} K"

    def apply(self, rig: Rig) -> None:
        rig.cryostat.set_setpoint_k(self.temperature_k)


@dataclass(frozen=True)
class SetTemperatureControl(Command[None]):
    on: bool

    @property
    def description(self) -> str:
        return f"switch temperature control {_on_off(self.on)}"

    def apply(self, rig: Rig) -> None:
        rig.cryostat.set_temperature_control(self.on)


@dataclass(frozen=True)
class SetLaserEmission(Command[None]):
    on: bool

    @property
    def description(self) -> str:
        return f"switch laser emission {_on_off(self.on)}"

    def apply(self, rig: Rig) -> None:
        rig.laser.set_emission(self.on)


@dataclass(frozen=True)
class SetLaserRate(Command[None]):
    rate_hz: float

    @property
    def description(self) -> str:
        return f"set the laser rate to {self.rate_hz:g} Hz"

    def apply(self, rig: Rig) -> None:
        rig.laser.set_repetition_rate_hz(self.rate_hz)


@dataclass(frozen=True)
class SetLaserPower(Command[None]):
    power_nw: float

    @property
    def description(self) -> str:
        return f"set the laser power to {self.power_nw:g} nW"

    def apply(self, rig: Rig) -> None:
        rig.laser.set_power_nw(self.power_nw)


@dataclass(frozen=True)
class MoveWaveplate(Command[None]):
    """Start moving the waveplate to θ (relative to ``stage.waveplate_zero_deg``)."""

    theta_deg: float

    @property
    def description(self) -> str:
        return f"move the waveplate to {self.theta_deg:g}°"

    def apply(self, rig: Rig) -> None:
        rig.stage.start_move_to(rig.config.stage.waveplate_zero_deg + self.theta_deg)


@dataclass(frozen=True)
class HomeStage(Command[None]):
    @property
    def description(self) -> str:
        return "home the waveplate stage"

    def apply(self, rig: Rig) -> None:
        rig.stage.start_home()


@dataclass(frozen=True)
class StopStage(Command[None]):
    @property
    def description(self) -> str:
        return "stop the waveplate stage"

    def apply(self, rig: Rig) -> None:
        rig.stage.stop()


@dataclass(frozen=True)
class SetExposure(Command[None]):
    exposure_s: float

    @property
    def description(self) -> str:
        return f"set the exposure to {self.exposure_s:g} s"

    def apply(self, rig: Rig) -> None:
        rig.camera.set_exposure_s(self.exposure_s)


@dataclass(frozen=True)
class SetEmGain(Command[None]):
    gain: int
    advanced: bool = False

    @property
    def description(self) -> str:
        return f"set the EM gain to {self.gain}"

    def apply(self, rig: Rig) -> None:
        rig.camera.set_em_gain(self.gain, advanced=self.advanced)


@dataclass(frozen=True)
class SetCooling(Command[None]):
    on: bool
    setpoint_c: float | None = None

    @property
    def description(self) -> str:
        return f"switch camera cooling {_on_off(self.on)}"

    def apply(self, rig: Rig) -> None:
        rig.camera.set_cooling(self.on, self.setpoint_c)


@dataclass(frozen=True)
class SetReadout(Command[None]):
    """Tracks (as configured) or full image."""

    mode: ReadMode

    @property
    def description(self) -> str:
        return f"set the camera readout to {self.mode}"

    def apply(self, rig: Rig) -> None:
        readout = camera_readout(rig.config) if self.mode is ReadMode.TRACKS \
            else Readout(ReadMode.IMAGE)
        rig.camera.set_readout(readout)


@dataclass(frozen=True)
class SetGrating(Command[None]):
    index: int

    @property
    def description(self) -> str:
        return f"select grating {self.index}"

    def apply(self, rig: Rig) -> None:
        rig.spectrograph.set_grating(self.index)


@dataclass(frozen=True)
class SetCenterWavelength(Command[None]):
    wavelength_nm: float

    @property
    def description(self) -> str:
        return f"set the center wavelength to {self.wavelength_nm:g} nm"

    def apply(self, rig: Rig) -> None:
        rig.spectrograph.set_center_wavelength_nm(self.wavelength_nm)


@dataclass(frozen=True)
class ReadGratings(Command[list[GratingInfo]]):
    @property
    def description(self) -> str:
        return "read the gratings"

    def apply(self, rig: Rig) -> list[GratingInfo]:
        return list(rig.spectrograph.gratings())
