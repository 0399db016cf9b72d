"""Helpers for the spine tests: small configurations and file readers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import numpy.typing as npt

from cryoscope.config import Config, load_config

HC_EV_NM = 1239.84193


def small_config(**plan: float | int) -> Config:
    """The default simulated config with a fast stage and a shorter plan."""
    config = load_config()
    config = config.with_overrides("stage", max_velocity_deg_s=25.0, acceleration_deg_s2=25.0)
    if plan:
        config = config.with_overrides("plan", **plan)
    return config


@dataclass(frozen=True)
class Edges:
    rising: npt.NDArray[np.int64]
    falling: npt.NDArray[np.int64]


def edges(path: Path, name: str) -> Edges:
    with h5py.File(path, "r") as f:
        channel = int(f["channels"].attrs[name])
        t = f["tags/timestamp_ps"][:]
        ch = f["tags/channel"][:]
    return Edges(t[ch == channel], t[ch == -channel])


def frame_angles(path: Path) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Waveplate angle θ per frame, and whether the stage stood still through the exposure."""
    cam, stage = edges(path, "camera_fire"), edges(path, "stage_motion")
    with h5py.File(path, "r") as f:
        zero = float(f["stage"].attrs["waveplate_zero_deg"])
        start = float(f["stage"].attrs["start_angle_deg"])
        reached = f["stage/reached_deg"][:]
    n = cam.rising.shape[0]
    angles = np.full(n, start - zero)
    still = np.ones(n, bool)
    for k, (up, down) in enumerate(zip(stage.rising, stage.falling, strict=False)):
        angles[cam.rising >= down] = reached[k] - zero
        still &= (cam.falling[:n] <= up) | (cam.rising >= down)
    return angles, still


def line_counts(path: Path, zpl_ev: float, half_width_nm: float = 0.6) -> npt.NDArray[np.float64]:
    """Bias-subtracted counts per frame and track in a window around a ZPL: ``[frames, tracks]``."""
    with h5py.File(path, "r") as f:
        frames = f["camera/frames"][:].astype(np.float64)
        wavelength = f["spectrograph/wavelength_nm"][:]
    window = np.abs(wavelength - HC_EV_NM / zpl_ev) < half_width_nm
    bias = np.median(frames[:, :, ~window], axis=2, keepdims=True)
    return (frames - bias)[:, :, window].sum(axis=2)
