"""Emission peaks of every frame: position, photons, and the V and H photons of each.

Works on :class:`~cryoscope.analysis.spectra.SpectralFrames` (or any ``[frames, pixels]`` V and H
arrays in ADU), so the GUI can call it on live frames. A peak is a local maximum of the
3-pixel-smoothed V + H spectrum whose prominence — its height above the higher of the lowest
points within ±``PROMINENCE_WINDOW_MEV`` on either side — is at least ``min_snr`` times the noise σ
of the peak pixel (EMCCD model). Peaks closer than ``MERGE_MEV`` are one; a peak lying
``REPLICA_RANGE_MEV`` below a peak of the same frame that is ``REPLICA_RATIO`` times taller is
taken as that line's LO-phonon replica and dropped, one ``BIEXCITON_RANGE_MEV`` below a peak
``BIEXCITON_RATIO`` times taller as its biexciton photon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from cryoscope.analysis.lines import REPLICA_RANGE_MEV, REPLICA_RATIO
from cryoscope.analysis.spectra import SpectralFrames

__all__ = ["FramePeaks", "find_frame_peaks"]

#: Half-width of the neighbourhood in which a peak's prominence is measured (meV).
PROMINENCE_WINDOW_MEV = 1.5
#: Peaks of one frame closer than this are one (meV).
MERGE_MEV = 1.2
#: A peak this far below a peak of its frame that is BIEXCITON_RATIO times taller is that
#: line's biexciton (cascade) photon (meV): dropped like a replica.
BIEXCITON_RANGE_MEV = (2.5, 9.0)
BIEXCITON_RATIO = 8.0
#: Half-width of the window whose V and H photons are a peak's (meV).
PEAK_WINDOW_MEV = 0.8


@dataclass(frozen=True)
class FramePeaks:
    """All peaks of all frames, one row per peak, sorted by frame then energy."""

    frame: np.ndarray  #: int [peaks]
    energy_ev: np.ndarray  #: float [peaks], parabolic interpolation of the smoothed spectrum
    photons: np.ndarray  #: float [peaks], V + H photons within ±PEAK_WINDOW_MEV
    v: np.ndarray  #: float [peaks], V photons in the window
    h: np.ndarray  #: float [peaks], H photons in the window
    n_frames: int

    @property
    def n(self) -> int:
        """Number of peaks."""
        return int(self.frame.size)


def _smooth(x: np.ndarray) -> np.ndarray:
    out = 0.5 * x
    out[:, 1:] += 0.25 * x[:, :-1]
    out[:, :-1] += 0.25 * x[:, 1:]
    return out


def find_frame_peaks(spectra: SpectralFrames, min_snr: float = 6.0) -> FramePeaks:
    """The emission peaks of every frame of ``spectra`` (see the module docstring)."""
    scale = spectra.noise.adu_per_photon
    v = spectra.v / scale
    h = spectra.h / scale
    y = v + h
    e = spectra.energy_ev
    n_frames, n_pix = y.shape
    pix_mev = spectra.pixel_mev
    s = _smooth(y)
    w = max(round(PROMINENCE_WINDOW_MEV / pix_mev), 2)
    # lowest point of the w pixels left ([i - w, i - 1]) and right ([i + 1, i + w]) of each pixel
    low = ndimage.minimum_filter1d(s, w, axis=1, mode="nearest")
    left = np.roll(low, 1 + (w - 1) // 2, axis=1)
    right = np.roll(low, -(1 + w // 2), axis=1)
    read = spectra.noise.read_var_adu2 / scale ** 2
    sigma = np.sqrt(0.375 * (spectra.noise.excess * np.maximum(y, 0) + 2 * read))
    is_max = np.zeros_like(s, bool)
    is_max[:, 1:-1] = (s[:, 1:-1] > s[:, :-2]) & (s[:, 1:-1] >= s[:, 2:])
    is_max[:, :w + 1] = is_max[:, -w - 1:] = False
    prominence = s - np.maximum(left, right)
    k, i = np.nonzero(is_max & (prominence >= min_snr * sigma))
    y0, y1, y2 = s[k, i - 1], s[k, i], s[k, i + 1]
    denom = y0 - 2 * y1 + y2
    frac = np.where(denom < 0, 0.5 * (y0 - y2) / np.where(denom < 0, denom, -1.0), 0.0)
    step = np.gradient(e)[i]
    energy = e[i] + np.clip(frac, -0.5, 0.5) * step
    half = max(round(PEAK_WINDOW_MEV / pix_mev), 1)
    cs_v = np.concatenate([np.zeros((n_frames, 1)), np.cumsum(v, axis=1)], axis=1)
    cs_h = np.concatenate([np.zeros((n_frames, 1)), np.cumsum(h, axis=1)], axis=1)
    lo = np.clip(i - half, 0, n_pix)
    hi = np.clip(i + half + 1, 0, n_pix)
    pv = cs_v[k, hi] - cs_v[k, lo]
    ph = cs_h[k, hi] - cs_h[k, lo]
    keep = _keep_distinct(k, energy, y1)
    return FramePeaks(frame=k[keep], energy_ev=energy[keep], photons=(pv + ph)[keep],
                      v=pv[keep], h=ph[keep], n_frames=n_frames)


def _keep_distinct(frame: np.ndarray, energy: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Mask of peaks that are neither within MERGE_MEV of a taller peak of their frame nor its
    LO replica (REPLICA_RANGE_MEV below a peak REPLICA_RATIO times taller) nor its biexciton
    photon (BIEXCITON_RANGE_MEV below a peak BIEXCITON_RATIO times taller)."""
    keep = np.ones(frame.size, bool)
    starts = np.flatnonzero(np.r_[True, frame[1:] != frame[:-1]])
    stops = np.r_[starts[1:], frame.size]
    for a, b in zip(starts, stops, strict=True):
        if b - a < 2:
            continue
        en = energy[a:b] * 1000.0
        ht = height[a:b]
        above = en[None, :] - en[:, None]  # [i, j]: how far j lies above i
        taller = ht[None, :] > ht[:, None]
        close = (np.abs(above) < MERGE_MEV) & taller
        replica = ((above > REPLICA_RANGE_MEV[0]) & (above < REPLICA_RANGE_MEV[1])
                   & (ht[None, :] > REPLICA_RATIO * ht[:, None]))
        biexciton = ((above > BIEXCITON_RANGE_MEV[0]) & (above < BIEXCITON_RANGE_MEV[1])
                     & (ht[None, :] > BIEXCITON_RATIO * ht[:, None]))
        keep[a:b] = ~np.any(close | replica | biexciton, axis=1)
    return keep
