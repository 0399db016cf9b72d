"""Shared settings and file readers of the GUI tests."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import h5py
import numpy as np

from cryoscope.config import Config, load_config
from sim_hardware.params import EmitterParams

HC_EV_NM = 1239.84193
#: The particle of config/simulated.toml, held steady: at a paced speed the rig time a run starts
#: at depends on the wall clock, so a blinking particle would make the views depend on it.
ZPL_EV = 2.15
DIPOLE_DEG = 30.0
#: A short series: ten waveplate angles 0–90° with still frames at each.
#: Time for the analysis of a short run in its own process (spawned, imports included).
ANALYSIS_TIMEOUT_MS = 120_000

FAST = {"frames": 80, "exposure_s": 0.5, "waveplate_dwell_s": 4.0, "waveplate_step_deg": 10.0}


def fast_config(speed: float | str = 20.0, **plan: float | int) -> Config:
    """The default simulated rig with a fast stage and a steady particle (the built-in emitter:
    the default particle's line without its blinking), run faster than real time."""
    config = load_config().with_overrides("sample", emitters=[asdict(EmitterParams())])
    config = config.with_overrides("stage", max_velocity_deg_s=25.0, acceleration_deg_s2=25.0)
    config = config.with_overrides("simulation", speed=speed)
    return config.with_overrides("plan", **{**FAST, **plan})


def file_status(path: Path) -> str:
    with h5py.File(path, "r") as f:
        return str(f.attrs["status"])


def apd_photons(path: Path) -> int:
    with h5py.File(path, "r") as f:
        apd = int(f["channels"].attrs["apd"])
        return int(np.count_nonzero(f["tags/channel"][:] == apd))


def summed_spectrum(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Energy axis (eV) and V + H summed over frames, baseline removed per frame and track."""
    with h5py.File(path, "r") as f:
        frames = f["camera/frames"][:].astype(float)
        wavelength = f["spectrograph/wavelength_nm"][:]
    frames -= np.median(frames, axis=2, keepdims=True)
    return HC_EV_NM / wavelength, frames.sum(axis=(0, 1))
