"""The Python API for scripts: open a rig from a configuration, run a plan, get the result.

    from cryoscope import api

    config = api.load_config()                      # config/simulated.toml
    with api.open_rig(config) as rig:
        result = api.run_polarization_series(rig, "particle-01.h5")
        api.run(rig, "time_series", "particle-01-blinking.h5", frames=2000)
    result.state, result.frames, result.count_rate_cps     # complete, 400, ~1.9e4

or, in one call, :func:`measure`. The plans are listed in :data:`PLANS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryoscope.acquisition import Listener, RunControl, RunResult, RunState
from cryoscope.backends import open_rig
from cryoscope.config import Config, ConfigError, PlanConfig, load_config
from cryoscope.datafile import OutputClaim
from cryoscope.engine import check_run_fits, run_plan
from cryoscope.plans import PLANS, Plan, make_plan
from cryoscope.plans.polarization_series import PolarizationSeries
from cryoscope.rig import Rig

__all__ = [
    "PLANS",
    "Config",
    "ConfigError",
    "PlanConfig",
    "Rig",
    "RunControl",
    "RunResult",
    "RunState",
    "load_config",
    "measure",
    "measure_claimed",
    "open_rig",
    "run",
    "run_polarization_series",
]


def run(rig: Rig, plan: str, out: str | Path, *, overwrite: bool = False,
        control: RunControl | None = None, listeners: Iterable[Listener] = (),
        measurement: Mapping[str, Any] | None = None, **params: Any) -> RunResult:
    """Run the plan named ``plan`` on a connected rig into ``out``; ``params`` override the
    configuration's parameters of the plan (``frames=40``, ``exposure_s=0.1``, ...),
    ``measurement`` its ``[measurement]`` keys for this file (``{"particle": "P12"}``)."""
    return run_plan(rig, make_plan(plan, rig.config, **params), out, overwrite=overwrite,
                    control=control, listeners=listeners, measurement=measurement)


def run_polarization_series(rig: Rig, out: str | Path, plan: PlanConfig | None = None, *,
                            overwrite: bool = False, control: RunControl | None = None,
                            listeners: Iterable[Listener] = (),
                            measurement: Mapping[str, Any] | None = None) -> RunResult:
    """The paper's measurement on a connected rig (parameters: ``plan``, default the
    configuration's ``[plan]``; ``measurement``: as in :func:`run`)."""
    return run_plan(rig, PolarizationSeries(plan or rig.config.plan), out, overwrite=overwrite,
                    control=control, listeners=listeners, measurement=measurement)


def measure(out: str | Path, config: Config | str | Path | None = None, *,
            plan: str = PolarizationSeries.name, overwrite: bool = False,
            control: RunControl | None = None, listeners: Iterable[Listener] = (),
            measurement: Mapping[str, Any] | None = None, **params: Any) -> RunResult:
    """Open the rig of ``config``, run ``plan`` into ``out``, close the rig.

    The output is claimed before the rig opens; ``params`` override the plan's parameters
    (``frames=40``, ``exposure_s=0.1``, ...); ``measurement`` keys override ``[measurement]``
    (``{"particle": "P12", "sample_type": "molecule"}``), written to the file's
    ``/measurement`` group.
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    if measurement:
        cfg = cfg.with_overrides("measurement", **measurement)
    chosen = make_plan(plan, cfg, **params)
    return measure_claimed(cfg, chosen, OutputClaim(out, overwrite), control=control,
                           listeners=listeners)


def measure_claimed(config: Config, plan: Plan, claim: OutputClaim, *,
                    control: RunControl | None = None, listeners: Iterable[Listener] = ()
                    ) -> RunResult:
    """Run ``plan`` into a claimed output on a rig opened for it, and close the rig: the run
    is refused first if it cannot fit on the disk, and the claim is given up if the rig cannot
    be opened (:func:`measure` and ``cryoscope run``)."""
    try:
        check_run_fits(config, plan, claim.write_path)
        rig = open_rig(config)
    except BaseException:
        claim.settle(began=False, succeeded=False)
        raise
    with rig:
        return run_plan(rig, plan, claim, control=control, listeners=listeners)
