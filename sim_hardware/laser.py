"""Simulated pulsed diode laser: its settings set the bench's excitation.

With ``remote_control=False`` it behaves like the lab's EPL-475: front panel only, the configured
rate, power and emission are what it emits, and asking for anything else raises
:class:`NotSupportedError` (the same refusal as :class:`drivers.epl.EplLaser`).
"""

from __future__ import annotations

import math
from dataclasses import replace

from drivers.epl import front_panel_only
from drivers.interfaces import LaserStatus, PulsedLaser
from drivers.limits import SIMULATED_LASER
from sim_hardware.base import SimInstrument
from sim_hardware.bench import Bench


class SimLaser(SimInstrument, PulsedLaser):
    model = "pulsed diode laser 475 nm"

    def __init__(self, bench: Bench, repetition_rate_hz: float = 1e6, power_nw: float = 300.0,
                 wavelength_nm: float = 475.0, remote_control: bool = True) -> None:
        super().__init__(bench)
        SIMULATED_LASER.repetition_rate_hz.check(self.name, repetition_rate_hz)
        SIMULATED_LASER.power_nw.check(self.name, power_nw)
        self.remote_control = remote_control
        bench.laser = replace(bench.laser, repetition_rate_hz=repetition_rate_hz,
                              power_nw=power_nw, wavelength_nm=wavelength_nm)

    def repetition_rate_hz(self) -> float:
        self._require()
        return self._bench.laser.repetition_rate_hz

    def set_repetition_rate_hz(self, rate_hz: float) -> None:
        self._require()
        now = self._bench.laser.repetition_rate_hz
        if not self.remote_control and not math.isclose(rate_hz, now, rel_tol=1e-9):
            raise front_panel_only(self.name, "the repetition rate", f"{rate_hz:g} Hz",
                                   f"{now:g} Hz")
        SIMULATED_LASER.repetition_rate_hz.check(self.name, rate_hz)
        self._bench.laser = replace(self._bench.laser, repetition_rate_hz=rate_hz)

    def power_nw(self) -> float:
        self._require()
        return self._bench.laser.power_nw

    def set_power_nw(self, power_nw: float) -> None:
        self._require()
        now = self._bench.laser.power_nw
        if not self.remote_control and not math.isclose(power_nw, now, rel_tol=1e-9):
            raise front_panel_only(self.name, "the power", f"{power_nw:g} nW", f"{now:g} nW")
        SIMULATED_LASER.power_nw.check(self.name, power_nw)
        self._bench.laser = replace(self._bench.laser, power_nw=power_nw)

    def wavelength_nm(self) -> float:
        self._require()
        return self._bench.laser.wavelength_nm

    def emission_on(self) -> bool:
        self._require()
        return self._bench.laser.emission_on

    def set_emission(self, on: bool) -> None:
        self._require()
        now = self._bench.laser.emission_on
        if not self.remote_control and bool(on) != now:
            raise front_panel_only(self.name, "emission", "on" if on else "off",
                                   "on" if now else "off")
        self._bench.laser = replace(self._bench.laser, emission_on=bool(on))

    def status(self) -> LaserStatus:
        self._require()
        laser = self._bench.laser
        return LaserStatus(laser.emission_on, laser.repetition_rate_hz, laser.power_nw,
                           laser.wavelength_nm)
