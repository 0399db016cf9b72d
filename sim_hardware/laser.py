"""Simulated pulsed diode laser: its settings set the bench's excitation."""

from __future__ import annotations

from dataclasses import replace

from drivers.interfaces import LaserStatus, PulsedLaser, SettingRejectedError
from sim_hardware.base import SimInstrument
from sim_hardware.bench import Bench


class SimLaser(SimInstrument, PulsedLaser):
    model = "pulsed diode laser 475 nm"
    remote_control = True

    def __init__(self, bench: Bench, repetition_rate_hz: float = 1e6, power_nw: float = 300.0,
                 wavelength_nm: float = 475.0) -> None:
        super().__init__(bench)
        bench.laser = replace(bench.laser, repetition_rate_hz=repetition_rate_hz,
                              power_nw=power_nw, wavelength_nm=wavelength_nm)

    def repetition_rate_hz(self) -> float:
        self._require()
        return self._bench.laser.repetition_rate_hz

    def set_repetition_rate_hz(self, rate_hz: float) -> None:
        self._require()
        if not 1e3 <= rate_hz <= 80e6:
            raise SettingRejectedError(
                self.name, f"repetition rate {rate_hz:g} Hz outside 1 kHz-80 MHz")
        self._bench.laser = replace(self._bench.laser, repetition_rate_hz=rate_hz)

    def power_nw(self) -> float:
        self._require()
        return self._bench.laser.power_nw

    def set_power_nw(self, power_nw: float) -> None:
        self._require()
        if not 0 <= power_nw <= 1e6:
            raise SettingRejectedError(self.name, f"power {power_nw:g} nW outside 0-1 mW")
        self._bench.laser = replace(self._bench.laser, power_nw=power_nw)

    def wavelength_nm(self) -> float:
        self._require()
        return self._bench.laser.wavelength_nm

    def emission_on(self) -> bool:
        self._require()
        return self._bench.laser.emission_on

    def set_emission(self, on: bool) -> None:
        self._require()
        self._bench.laser = replace(self._bench.laser, emission_on=bool(on))

    def status(self) -> LaserStatus:
        self._require()
        laser = self._bench.laser
        return LaserStatus(laser.emission_on, laser.repetition_rate_hz, laser.power_nw,
                           laser.wavelength_nm)
