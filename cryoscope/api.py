"""The Python API for scripts: open a rig from a configuration, run a plan, get the result.

    from cryoscope import api

    config = api.load_config()                      # config/simulated.toml
    with api.open_rig(config) as rig:
        result = api.run_polarization_series(rig, "particle-01.h5")
    result.state, result.frames, result.count_rate_cps     # complete, 400, ~1.9e4

or, in one call, :func:`measure`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryoscope.acquisition import Listener, RunControl, RunResult, RunState
from cryoscope.config import Config, ConfigError, PlanConfig, load_config
from cryoscope.plans.polarization_series import run_polarization_series
from cryoscope.rig import Rig, open_rig
from cryoscope.storage import check_output_path

__all__ = [
    "Config",
    "ConfigError",
    "PlanConfig",
    "Rig",
    "RunControl",
    "RunResult",
    "RunState",
    "load_config",
    "measure",
    "open_rig",
    "run_polarization_series",
]


def measure(out: str | Path, config: Config | str | Path | None = None, *,
            overwrite: bool = False, control: RunControl | None = None,
            listeners: Iterable[Listener] = (), measurement: Mapping[str, Any] | None = None,
            **plan: Any) -> RunResult:
    """Open the rig of ``config``, run the polarization series into ``out``, close the rig.

    ``plan`` keys override ``[plan]`` of the configuration (``frames=40``, ``exposure_s=0.1``, ...);
    ``measurement`` keys override ``[measurement]`` (``{"particle": "P12", "sample_type":
    "molecule"}``), written to the file's ``/measurement`` group.
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    if measurement:
        cfg = cfg.with_overrides("measurement", **measurement)
    if plan:
        cfg = cfg.with_overrides("plan", **plan)
    check_output_path(Path(out), overwrite)
    with open_rig(cfg) as rig:
        return run_polarization_series(rig, out, cfg.plan, overwrite=overwrite,
                                       control=control, listeners=listeners)
