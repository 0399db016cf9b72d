"""Image readout: the V and H replicas of the spectrum as two bands of sensor rows.

A file written in image readout holds full frames ``[frames, rows, columns]``. The polarizing beam
splitter puts the V and H replicas of the spectrum on two bands of rows; summing each band's rows
gives the V and H spectra ``[frames, 2, columns]`` that the rest of the analysis reads exactly as
a track readout. The bands are the configured ``[[camera.tracks]]`` named V and H (the file's
``config_toml``) when there are such tracks, else they are found in the mean row profile: the two
brightest bands of rows, each as wide as the rows holding ≥ :data:`BAND_FRACTION` of its peak.
Without a configuration the band at the lower row numbers is taken as V (as in the default
configuration and the simulated optics).
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryoscope.datafile import Measurement, iter_frame_blocks

__all__ = [
    "BAND_FRACTION",
    "ImageBands",
    "RowBand",
    "bands_from_config",
    "bin_bands",
    "find_bands",
    "mean_row_profile",
    "read_image_spectra",
    "row_profile",
]

log = logging.getLogger(__name__)

#: A band holds the contiguous rows around its peak with at least this share of the peak signal.
BAND_FRACTION = 0.02
#: Weakest band accepted, in noise σ of the row profile.
MIN_BAND_SNR = 5.0
#: Frames sampled for the row profile when the bands must be found (evenly spaced).
PROFILE_FRAMES = 64
#: Configured bands holding less than this share of the light in the row profile are reported.
MIN_CAPTURED = 0.5


@dataclass(frozen=True)
class RowBand:
    """Sensor rows ``[row_start, row_stop)`` binned into one spectrum."""

    name: str
    row_start: int
    row_stop: int

    @property
    def rows(self) -> int:
        """Number of rows binned."""
        return self.row_stop - self.row_start


@dataclass(frozen=True)
class ImageBands:
    """The V and H bands of an image-readout file and where they came from."""

    v: RowBand
    h: RowBand
    source: str  #: ``config`` (the file's ``[[camera.tracks]]``) or ``profile`` (found)
    #: float64 [rows]: mean light per row and frame, summed over columns (ADU, baseline removed)
    profile: np.ndarray

    @property
    def captured(self) -> float:
        """Share of the light in the row profile (rows > 3 noise σ) inside the V and H bands."""
        lit = np.where(self.profile > 3 * _noise_sigma(self.profile), self.profile, 0.0)
        total = float(lit.sum())
        inside = sum(float(lit[b.row_start:b.row_stop].sum()) for b in (self.v, self.h))
        return inside / total if total > 0 else float("nan")


def _noise_sigma(profile: np.ndarray) -> float:
    """Noise σ of a row profile from its median absolute deviation (most rows are dark)."""
    p = np.asarray(profile, float)
    return max(1.4826 * float(np.median(np.abs(p - np.median(p)))), 1e-12)


def bands_from_config(config_toml: str, n_rows: int) -> tuple[RowBand, RowBand] | None:
    """The V and H ``[[camera.tracks]]`` of a configuration (TOML text), or None.

    Tracks named V and H (any case) are used, else the first two; None when the text has no
    such tracks or they do not fit ``n_rows`` sensor rows.
    """
    if not config_toml:
        return None
    try:
        tracks = tomllib.loads(config_toml).get("camera", {}).get("tracks", [])
        bands = [RowBand(str(t["name"]), int(t["row_start"]), int(t["row_stop"]))
                 for t in tracks]
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        log.warning("cannot read [[camera.tracks]] from the file's configuration: %s", exc)
        return None
    if len(bands) < 2:
        return None
    by_name = {b.name.upper(): b for b in bands}
    v, h = (by_name["V"], by_name["H"]) if "V" in by_name and "H" in by_name else bands[:2]
    for band in (v, h):
        if not 0 <= band.row_start < band.row_stop <= n_rows:
            log.warning("configured track %s (rows %d-%d) does not fit the %d-row image",
                        band.name, band.row_start, band.row_stop, n_rows)
            return None
    return v, h


def row_profile(frames: np.ndarray) -> np.ndarray:
    """Light per row summed over columns, per frame ``[n, rows]`` (ADU) of ``[n, rows, columns]``.

    Each frame's baseline (bias, clock-induced charge) is the median row sum: most rows are dark.
    """
    sums = np.asarray(frames).sum(axis=2, dtype=np.float64)
    return sums - np.median(sums, axis=1, keepdims=True)


def mean_row_profile(profiles: np.ndarray) -> np.ndarray:
    """Mean over frames of per-frame row profiles ``[n, rows]``, each row's brightest eighth of
    the frames left out: a cosmic ray in one frame does not make a band, the replicas (in most
    frames) stay."""
    p = np.sort(np.asarray(profiles, float), axis=0)
    return p[:p.shape[0] - p.shape[0] // 8].mean(axis=0)


def _band_around(profile: np.ndarray, peak: int, floor: float) -> tuple[int, int]:
    """Contiguous rows around ``peak`` above ``floor``: ``[start, stop)``."""
    start = peak
    while start > 0 and profile[start - 1] >= floor:
        start -= 1
    stop = peak + 1
    while stop < profile.shape[0] and profile[stop] >= floor:
        stop += 1
    return start, stop


def find_bands(profile: np.ndarray) -> tuple[RowBand, RowBand]:
    """The two brightest bands of rows in a mean row profile (ADU per row, baseline removed).

    Each band holds the rows around its peak with ≥ :data:`BAND_FRACTION` of the peak and more
    than 3 noise σ (σ from the median absolute deviation of the profile). The band at the lower
    rows is V. Raises ValueError when there are not two bands of ≥ :data:`MIN_BAND_SNR` σ.
    """
    p = np.asarray(profile, float)
    sigma = _noise_sigma(p)
    free = np.ones(p.shape[0], bool)
    found: list[tuple[int, int]] = []
    for _ in range(2):
        masked = np.where(free, p, -np.inf)
        peak = int(np.argmax(masked))
        if masked[peak] < MIN_BAND_SNR * sigma:
            raise ValueError(f"found {len(found)} band(s) of light in the row profile, need V "
                             f"and H (peak {masked[peak]:.3g} ADU, noise {sigma:.3g} ADU)")
        start, stop = _band_around(np.where(free, p, -np.inf), peak,
                                   max(BAND_FRACTION * p[peak], 3 * sigma))
        found.append((start, stop))
        # Keep a gap of one band width so a band's far tail is not taken for the other band.
        width = stop - start
        free[max(start - width, 0):stop + width] = False
    (v0, v1), (h0, h1) = sorted(found)
    return RowBand("V", v0, v1), RowBand("H", h0, h1)


def bin_bands(frames: np.ndarray, v: RowBand, h: RowBand) -> np.ndarray:
    """Sum the rows of each band: ``[n, rows, columns]`` → ``[n, 2, columns]`` (V, H; ADU)."""
    data = np.asarray(frames)
    return np.stack([data[:, b.row_start:b.row_stop, :].sum(axis=1, dtype=np.float64)
                     for b in (v, h)], axis=1)


def read_image_spectra(path: str | Path, meas: Measurement, n_frames: int | None = None,
                       block: int = 16) -> tuple[np.ndarray, ImageBands]:
    """V and H spectra ``[frames, 2, columns]`` (ADU) of an image-readout file, and the bands.

    Reads ``block`` frames at a time. ``n_frames``: only the first frames (default all).
    """
    n = meas.n_frames if n_frames is None else min(n_frames, meas.n_frames)
    if n == 0:
        raise ValueError(f"{path}: no camera frames")
    if len(meas.frame_shape) != 2:
        raise ValueError(f"{path}: frames of shape {meas.frame_shape} are not images")
    n_rows, n_columns = meas.frame_shape
    configured = bands_from_config(meas.config_toml, n_rows)
    if configured is not None:
        v, h = configured
        source = "config"
    else:
        sample = np.unique(np.linspace(0, n - 1, min(n, PROFILE_FRAMES)).round().astype(int))
        v, h = find_bands(mean_row_profile(np.concatenate(
            [row_profile(frames) for _, frames in iter_frame_blocks(path, block, sample)])))
        source = "profile"
    spectra = np.empty((n, 2, n_columns))
    profile = np.zeros(n_rows)
    for start, frames in iter_frame_blocks(path, block):
        if start >= n:
            break
        frames = frames[:n - start]
        spectra[start:start + frames.shape[0]] = bin_bands(frames, v, h)
        profile += row_profile(frames).sum(axis=0)
    bands = ImageBands(v=v, h=h, source=source, profile=profile / n)
    log.info("image readout: V rows %d-%d, H rows %d-%d (%s), %.0f %% of the light",
             v.row_start, v.row_stop, h.row_start, h.row_stop, source, 100 * bands.captured)
    if bands.captured < MIN_CAPTURED:
        log.warning("the V and H rows (%s) hold only %.0f %% of the light in the image",
                    source, 100 * bands.captured)
    return spectra, bands
