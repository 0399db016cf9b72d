"""Measurement files from the simulated rig (``cryoscope.api.measure``) for end-to-end tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryoscope.api import measure
from cryoscope.config import Config, load_config

#: The paper's plan, sped up: the waveplate turns 5° every 2.5 s so 0.5 s frames cover
#: several polarization periods in a short file (a 5° move takes ~1.4 s).
FAST_PLAN = {"exposure_s": 0.5, "waveplate_step_deg": 5.0, "waveplate_dwell_s": 2.5}


def emitter(**values: Any) -> dict[str, Any]:
    """A default emitter of the simulated config with some fields replaced."""
    base = load_config().sample.emitters[0]
    data = {name: getattr(base, name) for name in base.__dataclass_fields__}
    data.update(values)
    return data


def simulated_file(path: Path, *, emitters: list[dict[str, Any]], frames: int, seed: int,
                   sample: dict[str, Any] | None = None, optics: dict[str, Any] | None = None,
                   laser: dict[str, Any] | None = None, channels: dict[str, Any] | None = None,
                   camera: dict[str, Any] | None = None, config: Config | None = None,
                   **plan: Any) -> tuple[Path, Config]:
    """Run the polarization series on the simulated rig into ``path`` (``config``: the
    configuration to start from, default ``config/simulated.toml``; ``emitters=[]`` keeps its
    emitters)."""
    cfg = config or load_config()
    cfg = cfg.with_overrides("simulation", seed=seed)
    if emitters:
        cfg = cfg.with_overrides("sample", emitters=emitters)
    if sample:
        cfg = cfg.with_overrides("sample", **sample)
    if optics:
        cfg = cfg.with_overrides("optics", **optics)
    if laser:
        cfg = cfg.with_overrides("laser", **laser)
    if channels:
        cfg = cfg.with_overrides("channels", **channels)
    if camera:
        cfg = cfg.with_overrides("camera", **camera)
    result = measure(path, cfg, frames=frames, **{**FAST_PLAN, **plan})
    assert str(result.state).lower().endswith("complete"), result
    return path, cfg
