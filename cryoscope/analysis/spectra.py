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
#: Fewest frames for the noise estimate and the cosmic-ray test (both compare frames in time).
MIN_NOISE_FRAMES = 5


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

    v: np.ndarray  #: float32 [frames, pixels]
    h: np.ndarray  #: float32 [frames, pixels]
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


def subtract_background(track: np.ndarray) -> np.ndarray:
    """Subtract each frame's baseline: the median over pixels (lines are sparse). ``track``:
    ``[frames, pixels]``; the live views use it too."""
    return track - np.median(track, axis=1, keepdims=True)


def _slope(mean: np.ndarray, half_d2: np.ndarray, read_var: float, robust: bool) -> float:
    """Slope of Var(d)/2 − σ_r² against the pair mean, from ten quantile bins of the mean."""
    if mean.size < 50:
        return 0.0
    edges = np.unique(np.quantile(mean, np.linspace(0, 1, 11)))
    which = np.clip(np.searchsorted(edges, mean, side="right") - 1, 0, edges.size - 2)
    bins = [b for b in range(edges.size - 1) if np.any(which == b)]
    xb = np.array([np.mean(mean[which == b]) for b in bins])
    if robust:  # median of χ²₁ is 0.4549
        yb = np.array([np.median(half_d2[which == b]) / 0.4549 for b in bins]) - read_var
    else:
        yb = np.array([np.mean(half_d2[which == b]) for b in bins]) - read_var
    return float(np.sum(xb * yb) / np.sum(xb * xb)) if xb.size else 0.0


def estimate_noise(v: np.ndarray, h: np.ndarray, excess: float = 2.0) -> NoiseModel:
    """ADU per photon and read variance from differences of consecutive frames, pixel by pixel.

    Uses V + H, which the waveplate does not modulate. For a pair of frames with mean signal
    x̄ (ADU), Var(x_{k+1} − x_k)/2 = excess·k·x̄ + 2σ_r² (k = ADU per photon, σ_r² the read
    variance of one track). A robust first slope (medians) flags the pairs across a blinking or
    spectral change (their differences are far above it); the final slope uses the means of the
    other pairs.
    """
    if v.shape[0] < MIN_NOISE_FRAMES:
        log.warning("%d frames are too few to measure the EMCCD noise; assuming 1 ADU per "
                    "photon", v.shape[0])
        mad = float(np.median(np.abs(v - np.median(v))))
        return NoiseModel(adu_per_photon=1.0, read_var_adu2=max((1.4826 * mad) ** 2, 1.0),
                          excess=excess)
    # V + H: the waveplate moves light between the tracks, not out of their sum.
    both = v + h
    mean = 0.5 * (both[1:] + both[:-1])
    half_d2 = 0.5 * (both[1:] - both[:-1]) ** 2
    quiet = np.abs(mean) < np.percentile(np.abs(mean), 50)
    read_var = float(np.median(half_d2[quiet]) / 0.4549) if np.any(quiet) else 1.0
    bright = mean > 5 * np.sqrt(max(read_var, 1e-12))
    slope = _slope(mean[bright], half_d2[bright], read_var, robust=True)
    if slope > 0 and mean.shape[0] > 2:
        model = slope * np.maximum(mean, 0) + read_var
        ratio = np.where(bright, half_d2 / model, np.nan)
        counted = np.count_nonzero(bright, axis=1)
        per_pair = np.where(counted > 0, np.nansum(ratio, axis=1) / np.maximum(counted, 1),
                            np.inf)
        same = per_pair < 2.0 * np.nanmedian(per_pair)
        keep = bright & same[:, None] & (half_d2 < 25.0 * model)
        refined = _slope(mean[keep], half_d2[keep], read_var, robust=False)
        slope = refined if refined > 0 else slope
    if slope <= 0:
        log.warning("could not estimate ADU per photon from the frames; assuming 1")
        slope = excess
    # The sum of two tracks carries twice each track's read variance.
    return NoiseModel(adu_per_photon=slope / excess, read_var_adu2=read_var / 2, excess=excess)


def _remove_cosmics(a: np.ndarray, b: np.ndarray, noise: NoiseModel, threshold: float
                    ) -> tuple[np.ndarray, int]:
    """Replace in ``a`` pixels far above their 5-frame temporal median that ``b`` does not share.

    Light reaches both tracks (V and H replicas); a cosmic ray hits one.
    """
    if a.shape[0] < MIN_NOISE_FRAMES:
        return a, 0
    med_a = ndimage.median_filter(a, size=(5, 1), mode="mirror")
    med_b = ndimage.median_filter(b, size=(5, 1), mode="mirror")
    sig_a = np.sqrt(noise.variance(med_a))
    sig_b = np.sqrt(noise.variance(med_b))
    # A single photon's EM-gain output is exponential (mean adu_per_photon): at low flux its tail
    # beats any Gaussian threshold, so a cosmic must also exceed 30 photons' worth.
    hot = (a - med_a) > np.maximum(threshold * sig_a, 30.0 * noise.adu_per_photon)
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
    data = np.asarray(frames)
    if data.ndim != 3 or data.shape[1] <= max(v_track, h_track):
        raise ValueError(f"frames must be [frames, tracks>=2, pixels], got {data.shape}")
    energy = energy_axis_ev(wavelength_nm)
    order = np.argsort(energy)
    # single precision: 16-bit counts summed over a few rows need 24 bits, and the per-frame
    # arrays are what the analysis' memory grows with (2 × 4 bytes per pixel and frame)
    v = subtract_background(data[:, v_track, :].astype(np.float32))[:, order]
    h = subtract_background(data[:, h_track, :].astype(np.float32))[:, order]
    noise = estimate_noise(v, h)
    v2, nv = _remove_cosmics(v, h, noise, cosmic_threshold)
    h2, nh = _remove_cosmics(h, v, noise, cosmic_threshold)
    if nv + nh:
        log.info("removed %d cosmic-ray pixels", nv + nh)
    return SpectralFrames(v=v2, h=h2, energy_ev=energy[order], cosmic_rays=nv + nh, noise=noise)
