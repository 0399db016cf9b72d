"""Measurement files from the simulated rig (``cryoscope.api.measure``) for end-to-end tests."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from cryoscope.api import measure
from cryoscope.config import Config, load_config
from sim_hardware.params import EmitterParams

#: The paper's plan, sped up: the waveplate turns 5° every 2.5 s so 0.5 s frames cover
#: several polarization periods in a short file (a 5° move takes ~1.4 s).
FAST_PLAN = {"exposure_s": 0.5, "waveplate_step_deg": 5.0, "waveplate_dwell_s": 2.5}


def emitter(**values: Any) -> dict[str, Any]:
    """A steady emitter with some fields replaced: the built-in emitter defaults, i.e. the default
    particle's lines (2.15 eV, p 0.7, φ 30°, 1.5 + 100 ns) without its blinking — it never
    charges, goes dark or bleaches unless ``values`` say so."""
    return {**asdict(EmitterParams()), **values}


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
