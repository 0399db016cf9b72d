"""The paper's measurement: an EMCCD series while the half-wave plate turns in steps.

The camera runs ``frames`` exposures of ``exposure_s``; every ``waveplate_dwell_s`` of
acquisition the stage turns the waveplate by ``waveplate_step_deg``, starting from
``waveplate_start_deg``. Everything else (stream, file, pause, safety) is the engine's.
"""

from __future__ import annotations

from cryoscope.config import Config, PlanConfig, PlanParameters
from cryoscope.plans.base import Plan, PlanContext

__all__ = ["PolarizationSeries"]


class PolarizationSeries(Plan):
    name = "polarization_series"
    title = "Polarization series"
    Parameters = PlanConfig

    def __init__(self, params: PlanParameters) -> None:
        super().__init__(params)
        self._steps = 0

    @property
    def p(self) -> PlanConfig:
        assert isinstance(self.params, PlanConfig)
        return self.params

    @classmethod
    def defaults(cls, config: Config) -> PlanParameters:
        return config.plan

    def start_theta_deg(self) -> float:
        return self.p.waveplate_start_deg

    def step(self, ctx: PlanContext) -> None:
        due = int(ctx.active_s // self.p.waveplate_dwell_s)
        if due <= self._steps:
            return
        if ctx.stage_moving:
            ctx.warn_once("late", f"waveplate moves take longer than the "
                          f"{self.p.waveplate_dwell_s:g} s dwell: steps are delayed until the "
                          "previous move ends")
            return
        self._steps += 1
        ctx.move_waveplate(self.p.waveplate_start_deg + self._steps * self.p.waveplate_step_deg)
