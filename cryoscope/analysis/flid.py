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
    bins = FlidBins(int(t.min()) if t.size else 0, gate_start_ns, gate_ns, bin_s)
    bins.add(t, delay_ps)
    return bins.flid(background_cps=background_cps, period_ps=period_ps,
                     delay_bins=delay_bins, count_bins=count_bins)


class FlidBins:
    """The per-bin sums a FLID is made of, accumulated chunk by chunk: photons per time bin,
    photons in the gate, and the sum of their delays after the gate start. Bins start at
    ``t0_ps``; :meth:`flid` turns the sums into the histogram."""

    def __init__(self, t0_ps: int, gate_start_ns: float, gate_ns: float, bin_s: float) -> None:
        self.t0_ps, self.gate_start_ns, self.gate_ns, self.bin_s = (
            int(t0_ps), gate_start_ns, gate_ns, bin_s)
        self.counts = np.zeros(0)
        self.gated = np.zeros(0)
        self.delay_sum = np.zeros(0)

    def add(self, time_ps: np.ndarray, delay_ps: np.ndarray) -> None:
        """Photons at or after ``t0_ps`` (earlier ones are ignored)."""
        t = np.asarray(time_ps, np.int64)
        d = np.asarray(delay_ps, np.int64)
        keep = t >= self.t0_ps
        t, d = t[keep], d[keep]
        if t.size == 0:
            return
        idx = (t - self.t0_ps) // round(self.bin_s * 1e12)
        n_bins = max(int(idx.max()) + 1, self.counts.shape[0])
        rel = (d - self.gate_start_ns * 1000.0) / 1000.0
        in_gate = (d >= 0) & (rel >= 0) & (rel < self.gate_ns)
        for name, values in (("counts", np.bincount(idx, minlength=n_bins)),
                             ("gated", np.bincount(idx[in_gate], minlength=n_bins)),
                             ("delay_sum", np.bincount(idx[in_gate], weights=rel[in_gate],
                                                       minlength=n_bins))):
            total = np.zeros(n_bins)
            old = getattr(self, name)
            total[:old.shape[0]] = old
            total += values
            setattr(self, name, total)

    def flid(self, *, background_cps: float = 0.0, period_ps: int | None = None,
             delay_bins: int = 100, count_bins: int | None = None) -> Flid:
        counts, gated, delay_sum = self.counts, self.gated, self.delay_sum
        bin_s, gate_ns = self.bin_s, self.gate_ns
        return _flid_from_bins(counts, gated, delay_sum, bin_s, gate_ns, background_cps,
                               period_ps, delay_bins, count_bins)


def _flid_from_bins(counts: np.ndarray, gated: np.ndarray, delay_sum: np.ndarray, bin_s: float,
                    gate_ns: float, background_cps: float, period_ps: int | None,
                    delay_bins: int, count_bins: int | None) -> Flid:
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
