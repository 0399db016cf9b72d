"""Simulated attoDRY800: the sample temperature relaxes towards its setpoint."""

from __future__ import annotations

import math

from drivers.interfaces import Cryostat, CryostatStatus
from drivers.limits import ATTODRY800
from sim_hardware.base import SimInstrument
from sim_hardware.bench import Bench
from sim_hardware.faults import WARM_UP_K

BASE_TEMPERATURE_K = 3.8
#: Time constant of the sample stage's approach to its setpoint (s).
TAU_S = 30.0


class SimCryostat(SimInstrument, Cryostat):
    model = "attoDRY800"

    def __init__(self, bench: Bench, temperature_k: float = 4.0) -> None:
        super().__init__(bench)
        self._temperature_k = temperature_k
        self._setpoint_k = temperature_k
        self._controlling = False
        self._base = False
        self._t_last = bench.now_s

    def _target(self) -> float:
        if self._faults.due("cryostat", "warm_up") is not None:
            return WARM_UP_K
        if self._controlling:
            return max(self._setpoint_k, BASE_TEMPERATURE_K)
        return BASE_TEMPERATURE_K if self._base else self._temperature_k

    def _update(self) -> None:
        self._require()
        now = self._bench.now_s
        decay = math.exp(-(now - self._t_last) / TAU_S)
        self._temperature_k = self._target() + (self._temperature_k - self._target()) * decay
        self._t_last = now

    def sample_temperature_k(self) -> float:
        self._update()
        return self._temperature_k

    def setpoint_k(self) -> float:
        self._update()
        return self._setpoint_k

    def set_setpoint_k(self, temperature_k: float) -> None:
        self._update()
        ATTODRY800.setpoint_k.check(self.name, temperature_k)
        self._setpoint_k = temperature_k

    def is_controlling(self) -> bool:
        self._update()
        return self._controlling

    def set_temperature_control(self, on: bool) -> None:
        self._update()
        self._controlling = bool(on)

    def go_to_base_temperature(self) -> None:
        self._update()
        self._controlling, self._base = False, True

    def pressure_mbar(self) -> float | None:
        self._update()
        return 2.0e-6

    def status(self) -> CryostatStatus:
        self._update()
        return CryostatStatus(self._temperature_k, self._setpoint_k, self._controlling, 2.0e-6)
