"""Peak tracking per spectral region over time, with simultaneous jumps flagged (paper Fig. 4d)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PeakTracks", "track_peaks"]


@dataclass(frozen=True)
class PeakTracks:
    """Peak energy per frame and region, the jumps and the simultaneous ones."""

    regions_ev: np.ndarray  #: [regions, 2]
    peak_ev: np.ndarray  #: [frames, regions], NaN where no peak stands out
    jumps: tuple[tuple[int, int, float], ...]  #: (frame, region, shift in meV)
    simultaneous: tuple[int, ...]  #: frames where two or more regions jump (within ±window)


def _peak_positions(energy: np.ndarray, spectra: np.ndarray, sigma: np.ndarray | float,
                    min_snr: float) -> np.ndarray:
    smooth = np.apply_along_axis(np.convolve, 1, spectra, np.array([0.25, 0.5, 0.25]), "same")
    i = np.argmax(smooth[:, 1:-1], axis=1) + 1
    rows = np.arange(spectra.shape[0])
    y0, y1, y2 = smooth[rows, i - 1], smooth[rows, i], smooth[rows, i + 1]
    denom = y0 - 2 * y1 + y2
    frac = np.where(denom < 0, 0.5 * (y0 - y2) / np.where(denom < 0, denom, -1), 0.0)
    step = np.gradient(energy)[i]
    pos = energy[i] + np.clip(frac, -0.5, 0.5) * step
    pos[y1 < min_snr * sigma] = np.nan
    return pos


def track_peaks(energy_ev: np.ndarray, spectra: np.ndarray, regions_ev: np.ndarray,
                noise_sigma: float, *, min_snr: float = 5.0, jump_mev: float = 2.0,
                window_frames: int = 1) -> PeakTracks:
    """Track the strongest peak in each energy region of per-frame spectra ``[frames, pixels]``.

    A jump is a change of the peak energy by more than ``jump_mev`` between consecutive frames
    where it was seen; jumps of different regions within ``window_frames`` are simultaneous.
    ``noise_sigma``: noise of one pixel of one frame (same unit as the spectra).
    """
    e = np.asarray(energy_ev, float)
    regions = np.asarray(regions_ev, float).reshape(-1, 2)
    peaks = np.full((spectra.shape[0], regions.shape[0]), np.nan)
    jumps: list[tuple[int, int, float]] = []
    for r, (lo, hi) in enumerate(regions):
        sel = (e >= lo) & (e <= hi)
        if np.count_nonzero(sel) < 3:
            continue
        peaks[:, r] = _peak_positions(e[sel], spectra[:, sel], noise_sigma * 1.22, min_snr)
        seen = np.flatnonzero(np.isfinite(peaks[:, r]))
        steps = np.diff(peaks[seen, r]) * 1000.0
        for k in np.flatnonzero(np.abs(steps) > jump_mev):
            jumps.append((int(seen[k + 1]), r, float(steps[k])))
    jumps.sort()
    simultaneous: list[int] = []
    for i, (frame, region, _) in enumerate(jumps):
        partner = any(abs(f2 - frame) <= window_frames and r2 != region
                      for f2, r2, _ in jumps[i + 1:])
        if partner and (not simultaneous or simultaneous[-1] < frame - window_frames):
            simultaneous.append(frame)
    return PeakTracks(regions_ev=regions, peak_ev=peaks, jumps=tuple(jumps),
                      simultaneous=tuple(simultaneous))
