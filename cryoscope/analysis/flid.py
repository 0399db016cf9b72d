"""FLID: fluorescence-lifetime–intensity distribution.

Per time bin: the photon count and the mean delay of the photons inside a gate after the IRF,
corrected for the expected flat background (its count in the gate and its mean delay, the gate's
middle, are removed). The 2-D histogram of (count, corrected mean delay) over bins is the FLID.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Flid", "flid"]


@dataclass(frozen=True)
class Flid:
    """FLID histogram and the per-bin values it was made of."""

    histogram: np.ndarray  #: [count bins, delay bins]
    count_edges: np.ndarray  #: photons per time bin
    delay_edges_ns: np.ndarray  #: corrected mean delay after the gate start (ns)
    counts: np.ndarray  #: photons per time bin (all delays)
    mean_delay_ns: np.ndarray  #: corrected mean delay per time bin (NaN if too few photons)
    bin_s: float


def flid(time_ps: np.ndarray, delay_ps: np.ndarray, *, gate_start_ns: float, gate_ns: float,
         bin_s: float = 0.01, background_cps: float = 0.0, period_ps: int | None = None,
         delay_bins: int = 100, count_bins: int | None = None) -> Flid:
    """FLID of photons with arrival times ``time_ps`` and delays ``delay_ps`` (ps, -1 = unknown).

    The gate is ``[gate_start_ns, gate_start_ns + gate_ns)`` in delay; delays are measured from
    its start. ``background_cps``: flat background rate over the whole period ``period_ps``.
    """
    t = np.asarray(time_ps, np.int64)
    d = np.asarray(delay_ps, np.int64)
    bin_ps = round(bin_s * 1e12)
    t0 = int(t.min()) if t.size else 0
    idx = (t - t0) // bin_ps
    n_bins = int(idx.max()) + 1 if t.size else 0
    counts = np.bincount(idx, minlength=n_bins).astype(float)
    rel = (d - gate_start_ns * 1000.0) / 1000.0
    in_gate = (d >= 0) & (rel >= 0) & (rel < gate_ns)
    gated = np.bincount(idx[in_gate], minlength=n_bins).astype(float)
    delay_sum = np.bincount(idx[in_gate], weights=rel[in_gate], minlength=n_bins)
    bg = 0.0
    if period_ps and background_cps > 0:
        bg = background_cps * bin_s * (gate_ns * 1000.0 / period_ps)
    signal = gated - bg
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (delay_sum - bg * gate_ns / 2.0) / signal
    mean[signal < 2] = np.nan
    ok = np.isfinite(mean)
    if count_bins is None:
        count_bins = int(min(max(counts.max() if counts.size else 1, 1), 100))
    count_edges = np.linspace(0, max(counts.max() if counts.size else 1, 1) + 1, count_bins + 1)
    delay_edges = np.linspace(0, gate_ns, delay_bins + 1)
    hist, _, _ = np.histogram2d(counts[ok], mean[ok], bins=(count_edges, delay_edges))
    return Flid(histogram=hist, count_edges=count_edges, delay_edges_ns=delay_edges,
                counts=counts, mean_delay_ns=mean, bin_s=bin_s)
