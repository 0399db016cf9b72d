"""Intensity traces: photons per time bin, and blinking levels by a threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["IntensityTrace", "ThresholdLevels", "intensity_trace", "threshold_levels"]


@dataclass(frozen=True)
class IntensityTrace:
    """Photons per bin; ``start_s`` is the left edge of each bin (tagger time, s)."""

    start_s: np.ndarray
    counts: np.ndarray
    bin_s: float

    @property
    def rate_cps(self) -> np.ndarray:
        """Count rate per bin (counts/s)."""
        return self.counts / self.bin_s


def intensity_trace(time_ps: np.ndarray, bin_s: float = 0.01, start_ps: int | None = None,
                    stop_ps: int | None = None) -> IntensityTrace:
    """Counts per ``bin_s`` bin of photon times ``time_ps`` between ``start_ps`` and ``stop_ps``."""
    t = np.asarray(time_ps, np.int64)
    t_start = int(t.min()) if start_ps is None and t.size else int(start_ps or 0)
    t_stop = int(t.max()) + 1 if stop_ps is None and t.size else int(stop_ps or t_start + 1)
    bin_ps = round(bin_s * 1e12)
    n_bins = max(int(np.ceil((t_stop - t_start) / bin_ps)), 1)
    sel = t[(t >= t_start) & (t < t_stop)]
    counts = np.bincount((sel - t_start) // bin_ps, minlength=n_bins)[:n_bins]
    start = (t_start + np.arange(n_bins) * bin_ps) * 1e-12
    return IntensityTrace(start_s=start, counts=counts.astype(np.int64), bin_s=bin_s)


@dataclass(frozen=True)
class ThresholdLevels:
    """On/off classification of trace bins by one threshold (counts per bin)."""

    threshold: float
    on: np.ndarray  #: bool per bin
    on_fraction: float
    on_rate_cps: float
    off_rate_cps: float


def threshold_levels(trace: IntensityTrace, threshold: float | None = None) -> ThresholdLevels:
    """Split bins into on/off; default threshold: Otsu's between-class optimum."""
    c = trace.counts.astype(float)
    if threshold is None:
        values = np.unique(c)
        best, thr = -1.0, float(values.mean()) if values.size else 0.0
        for v in values[:-1]:
            lo, hi = c[c <= v], c[c > v]
            score = lo.size * hi.size * (hi.mean() - lo.mean()) ** 2
            if score > best:
                best, thr = score, float(v) + 0.5
        threshold = thr
    on = c > threshold
    on_rate = float(c[on].mean() / trace.bin_s) if np.any(on) else 0.0
    off_rate = float(c[~on].mean() / trace.bin_s) if np.any(~on) else 0.0
    return ThresholdLevels(threshold=float(threshold), on=on, on_fraction=float(on.mean()),
                           on_rate_cps=on_rate, off_rate_cps=off_rate)
