"""A fixed-angle time series: the camera and the APD record for a long time while the
waveplate stays put — long blinking and spectral-diffusion statistics of one particle."""

from __future__ import annotations

from cryoscope.config import Angle, Config, PlanParameters
from cryoscope.plans.base import Plan

__all__ = ["TimeSeries", "TimeSeriesParameters"]


class TimeSeriesParameters(PlanParameters):
    waveplate_deg: Angle = 0.0


class TimeSeries(Plan):
    name = "time_series"
    title = "Time series (fixed waveplate)"
    Parameters = TimeSeriesParameters

    @classmethod
    def defaults(cls, config: Config) -> PlanParameters:
        p = config.plan
        return cls.Parameters(frames=p.frames, exposure_s=p.exposure_s,
                              poll_interval_s=p.poll_interval_s,
                              cryostat_log_interval_s=p.cryostat_log_interval_s,
                              waveplate_deg=p.waveplate_start_deg)

    def start_theta_deg(self) -> float:
        assert isinstance(self.params, TimeSeriesParameters)
        return self.params.waveplate_deg
