"""Per-frame V and H spectra: background subtraction, cosmic-ray removal, energy axis, noise.

Works on arrays (``frames`` uint16/float ``[frames, tracks, pixels]`` in ADU), so the GUI can call
it on live frames. Signal stays in ADU; :func:`estimate_noise` gives the ADU per detected photon
(EM gain / e⁻ per ADU, from the EMCCD's doubled shot noise) and the read-noise variance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "HC_EV_NM",
    "NoiseModel",
    "SpectralFrames",
    "energy_axis_ev",
    "estimate_noise",
    "prepare_spectra",
]

log = logging.getLogger(__name__)

#: h·c in eV·nm: E[eV] = HC_EV_NM / λ[nm].
HC_EV_NM = 1239.84193


def energy_axis_ev(wavelength_nm: np.ndarray) -> np.ndarray:
    """Photon energy (eV) of each pixel column."""
    return HC_EV_NM / np.asarray(wavelength_nm, float)


@dataclass(frozen=True)
class NoiseModel:
    """Per-pixel, per-frame noise: var[ADU²] = excess · adu_per_photon · signal[ADU] + read_var."""

    adu_per_photon: float
    read_var_adu2: float
    excess: float = 2.0

    def variance(self, signal_adu: np.ndarray, frames: int = 1) -> np.ndarray:
        """Variance (ADU²) of a sum over ``frames`` frames with total signal ``signal_adu``."""
        return (self.excess * self.adu_per_photon * np.maximum(signal_adu, 0.0)
                + frames * self.read_var_adu2)


@dataclass(frozen=True)
class SpectralFrames:
    """Background-subtracted, cosmic-free spectra (ADU) on an ascending energy axis."""

    v: np.ndarray  #: float64 [frames, pixels]
    h: np.ndarray  #: float64 [frames, pixels]
    energy_ev: np.ndarray  #: float64 [pixels], ascending
    cosmic_rays: int  #: pixels replaced
    noise: NoiseModel

    @property
    def merged(self) -> np.ndarray:
        """V + H per frame (the paper's spectral time trace), ADU."""
        return self.v + self.h

    @property
    def pixel_mev(self) -> float:
        """Mean pixel width (meV)."""
        return float(np.mean(np.diff(self.energy_ev))) * 1000.0


def _remove_background(track: np.ndarray) -> np.ndarray:
    """Subtract each frame's baseline: the median over pixels (lines are sparse)."""
    return track - np.median(track, axis=1, keepdims=True)


def estimate_noise(v: np.ndarray, h: np.ndarray, excess: float = 2.0) -> NoiseModel:
    """ADU per photon and read variance from differences of consecutive frames, pixel by pixel.

    For a pair of frames with mean signal x̄ (ADU), Var(x_{k+1} − x_k)/2 = excess·k·x̄ + σ_r²
    (k = ADU per photon). Medians of the squared differences in bins of x̄ make it robust to
    blinking; the slope of a line through the bins gives k.
    """
    mean = 0.5 * (np.concatenate([v[1:], h[1:]]) + np.concatenate([v[:-1], h[:-1]])).ravel()
    half_d2 = 0.5 * (np.concatenate([v[1:], h[1:]]) - np.concatenate([v[:-1], h[:-1]])).ravel() ** 2
    # Median of χ²₁ is 0.4549: median(d²)/0.4549 estimates Var(d) for Gaussian d.
    quiet = np.abs(mean) < np.percentile(np.abs(mean), 50)
    read_var = float(np.median(half_d2[quiet]) / 0.4549) if np.any(quiet) else 1.0
    bright = mean > 5 * np.sqrt(max(read_var, 1e-12))
    slope = 0.0
    keep = bright
    for _ in range(3):
        if np.count_nonzero(keep) < 50:
            break
        x, y = mean[keep], half_d2[keep]
        edges = np.unique(np.quantile(x, np.linspace(0, 1, 11)))
        which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2)
        bins = [b for b in range(edges.size - 1) if np.any(which == b)]
        xb = np.array([np.mean(x[which == b]) for b in bins])
        # First pass: medians (robust); then means of the clipped pairs (unbiased for skewed
        # EMCCD differences).
        if keep is bright:
            yb = np.array([np.median(y[which == b]) / 0.4549 - read_var for b in bins])
        else:
            yb = np.array([np.mean(y[which == b]) - read_var for b in bins])
        slope = float(np.sum(xb * yb) / np.sum(xb * xb)) if xb.size else 0.0
        # Drop pairs across a brightness change (25 σ², far beyond shot noise).
        keep = bright & (half_d2 < 25.0 * (max(slope, 0.0) * np.maximum(mean, 0) + read_var))
    if slope <= 0:
        log.warning("could not estimate ADU per photon from the frames; assuming 1")
        slope = excess
    return NoiseModel(adu_per_photon=slope / excess, read_var_adu2=read_var, excess=excess)


def _remove_cosmics(a: np.ndarray, b: np.ndarray, noise: NoiseModel, threshold: float
                    ) -> tuple[np.ndarray, int]:
    """Replace in ``a`` pixels far above their 5-frame temporal median that ``b`` does not share.

    Light reaches both tracks (V and H replicas); a cosmic ray hits one.
    """
    if a.shape[0] < 3:
        return a, 0
    med_a = ndimage.median_filter(a, size=(5, 1), mode="mirror")
    med_b = ndimage.median_filter(b, size=(5, 1), mode="mirror")
    sig_a = np.sqrt(noise.variance(med_a))
    sig_b = np.sqrt(noise.variance(med_b))
    hot = (a - med_a) > threshold * sig_a
    shared = ndimage.maximum_filter((b - med_b) / sig_b, size=(1, 3)) > 3.0
    bad = hot & ~shared
    out = np.where(bad, med_a, a)
    return out, int(bad.sum())


def prepare_spectra(frames: np.ndarray, wavelength_nm: np.ndarray, *,
                    cosmic_threshold: float = 8.0, v_track: int = 0, h_track: int = 1
                    ) -> SpectralFrames:
    """Background-subtract, remove cosmic rays and put V and H spectra on an ascending energy axis.

    ``frames``: ``[frames, tracks, pixels]`` ADU. ``cosmic_threshold``: in noise σ.
    """
    data = np.asarray(frames, float)
    if data.ndim != 3 or data.shape[1] <= max(v_track, h_track):
        raise ValueError(f"frames must be [frames, tracks>=2, pixels], got {data.shape}")
    energy = energy_axis_ev(wavelength_nm)
    order = np.argsort(energy)
    v = _remove_background(data[:, v_track, :])[:, order]
    h = _remove_background(data[:, h_track, :])[:, order]
    noise = estimate_noise(v, h)
    v2, nv = _remove_cosmics(v, h, noise, cosmic_threshold)
    h2, nh = _remove_cosmics(h, v, noise, cosmic_threshold)
    if nv + nh:
        log.info("removed %d cosmic-ray pixels", nv + nh)
    return SpectralFrames(v=v2, h=h2, energy_ev=energy[order], cosmic_rays=nv + nh, noise=noise)
