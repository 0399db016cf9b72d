"""Second-order correlation g²(τ) of two APDs behind a 50:50 splitter (Hanbury Brown–Twiss).

The histogram counts, for every pair of a click of APD 1 and a click of APD 2 with lag
``τ = t_APD2 − t_APD1`` within ``±(periods + ½)`` laser periods, the pair in its lag bin. Under
pulsed excitation it is a comb of peaks at multiples ``k·T`` of the laser period. Peak ``k`` is
the area of the lags in ``[(k − ½)·T, (k + ½)·T)``;
``g²(0) = center-peak area / mean side-peak area`` (the ``2·periods`` peaks ``k ≠ 0``).
Its error is Poisson: ``σ = g²(0)·√(1/C + 1/ΣS)`` (C center, ΣS all side-peak coincidences).

:class:`G2Correlator` is streaming: feed it time-ordered photons (times and detector marks, e.g.
the chunks of :class:`cryoscope.analysis.photons.PhotonBookkeeper`) in any chunking; it keeps
only the photons of the last ``periods + ½`` periods between chunks. The pair search is one
compiled pass (numba).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numba
import numpy as np

__all__ = ["G2Correlator", "G2Histogram", "G2Result", "g2_from_photons", "g2_zero"]

log = logging.getLogger(__name__)

#: Laser periods on each side of zero lag: peaks −3 … +3.
DEFAULT_PERIODS = 3
#: Lag bins per laser period (10 ns at 1 MHz).
DEFAULT_BINS_PER_PERIOD = 100
#: Photons per compiled call when a whole photon list is correlated.
DEFAULT_CHUNK = 1_000_000


@numba.njit(cache=True, nogil=True)
def _correlate(t, det, start, period, span2, bins_per_period, hist):  # pragma: no cover
    """Add the APD 1 / APD 2 pairs in which photon ``i >= start`` is the later one to ``hist``.

    ``t`` ascending (ps), ``det`` 0 (APD 1) or 1 (APD 2); a pair's lag ``τ = t_2 − t_1`` counts
    when ``−span2 ≤ 2τ < span2`` (``span2 = (2·periods + 1)·period``), in bin
    ``(2τ + span2)·bins_per_period // (2·period)``.
    """
    for i in range(start, t.shape[0]):
        ti = t[i]
        di = det[i]
        j = i - 1
        while j >= 0 and 2 * (ti - t[j]) <= span2:
            if det[j] != di:
                lag2 = 2 * (ti - t[j]) if di == 1 else -2 * (ti - t[j])
                if lag2 < span2:
                    hist[((lag2 + span2) * bins_per_period) // (2 * period)] += 1
            j -= 1


@dataclass(frozen=True)
class G2Histogram:
    """Coincidences of APD 2 after APD 1 per lag bin, over ``±(periods + ½)`` laser periods."""

    counts: np.ndarray  #: int64 [(2·periods + 1)·bins_per_period]
    period_ps: int
    periods: int

    @property
    def bins_per_period(self) -> int:
        """Lag bins per laser period."""
        return self.counts.shape[0] // (2 * self.periods + 1)

    @property
    def edges_ps(self) -> np.ndarray:
        """Lag bin edges (ps), from −(periods + ½)·T to +(periods + ½)·T."""
        half = (self.periods + 0.5) * self.period_ps
        return np.linspace(-half, half, self.counts.shape[0] + 1)

    @property
    def centers_ps(self) -> np.ndarray:
        """Lag bin centres (ps)."""
        e = self.edges_ps
        return 0.5 * (e[1:] + e[:-1])

    @property
    def peak_areas(self) -> np.ndarray:
        """Coincidences in each peak ``k = −periods … +periods`` (int64 [2·periods + 1])."""
        return self.counts.reshape(2 * self.periods + 1, -1).sum(axis=1)


@dataclass(frozen=True)
class G2Result:
    """g²(0) with its 1σ Poisson error and the histogram it came from."""

    g2_zero: float
    g2_zero_err: float
    center: int  #: coincidences in the center peak
    side_mean: float  #: mean coincidences per side peak
    histogram: G2Histogram


def g2_zero(hist: G2Histogram) -> G2Result | None:
    """g²(0) = center-peak area / mean side-peak area; None without side-peak coincidences."""
    areas = hist.peak_areas
    center = int(areas[hist.periods])
    sides = np.delete(areas, hist.periods)
    total = int(sides.sum())
    if total == 0:
        return None
    side_mean = total / sides.shape[0]
    value = center / side_mean
    # No center coincidence: the error of one count.
    err = value * math.sqrt(1.0 / center + 1.0 / total) if center else 1.0 / side_mean
    return G2Result(g2_zero=value, g2_zero_err=err, center=center, side_mean=side_mean,
                    histogram=hist)


class G2Correlator:
    """Streaming APD 1 × APD 2 coincidence histogram (see the module docstring).

    ``period_ps``: laser period (ps); ``periods``: peaks on each side of zero lag;
    ``bins_per_period``: lag resolution.
    """

    def __init__(self, period_ps: int, periods: int = DEFAULT_PERIODS,
                 bins_per_period: int = DEFAULT_BINS_PER_PERIOD) -> None:
        if period_ps <= 0 or periods < 1 or bins_per_period < 1:
            raise ValueError("period_ps, periods and bins_per_period must be positive")
        self.period_ps = int(period_ps)
        self.periods = int(periods)
        self.bins_per_period = int(bins_per_period)
        self._span2 = (2 * self.periods + 1) * self.period_ps
        self._counts = np.zeros((2 * self.periods + 1) * self.bins_per_period, np.int64)
        self._tail_t = np.zeros(0, np.int64)
        self._tail_det = np.zeros(0, np.int8)
        self.photons = np.zeros(2, np.int64)  #: photons fed per detector

    def feed(self, time_ps: np.ndarray, detector: np.ndarray) -> None:
        """Add photons (tagger time, ps, ascending and after those fed before) and their
        detector (0 = APD 1, 1 = APD 2)."""
        t = np.ascontiguousarray(time_ps, np.int64)
        det = np.ascontiguousarray(detector, np.int8)
        if t.shape[0] == 0:
            return
        if np.any(np.diff(t) < 0) or (self._tail_t.shape[0] and t[0] < self._tail_t[-1]):
            raise ValueError("photons must be fed in time order")
        self.photons += np.bincount(det, minlength=2)[:2]
        start = self._tail_t.shape[0]
        all_t = np.concatenate([self._tail_t, t])
        all_det = np.concatenate([self._tail_det, det])
        _correlate(all_t, all_det, start, self.period_ps, self._span2, self.bins_per_period,
                   self._counts)
        keep = np.searchsorted(all_t, all_t[-1] - self._span2 // 2 - 1, side="left")
        self._tail_t = all_t[keep:].copy()
        self._tail_det = all_det[keep:].copy()

    @property
    def histogram(self) -> G2Histogram:
        """The coincidences so far."""
        return G2Histogram(self._counts.copy(), self.period_ps, self.periods)

    def result(self) -> G2Result | None:
        """g²(0) from the coincidences so far (None while there are none in the side peaks)."""
        return g2_zero(self.histogram)


def g2_from_photons(time_ps: np.ndarray, detector: np.ndarray, period_ps: int, *,
                    periods: int = DEFAULT_PERIODS,
                    bins_per_period: int = DEFAULT_BINS_PER_PERIOD,
                    chunk: int = DEFAULT_CHUNK) -> G2Result | None:
    """g²(0) of time-ordered photons (ps) marked by detector (0 / 1), correlated in chunks."""
    corr = G2Correlator(period_ps, periods, bins_per_period)
    for i in range(0, np.asarray(time_ps).shape[0], chunk):
        corr.feed(time_ps[i:i + chunk], detector[i:i + chunk])
    result = corr.result()
    if result is not None:
        log.info("g2(0) = %.3f ± %.3f (%d center, %.1f per side peak)", result.g2_zero,
                 result.g2_zero_err, result.center, result.side_mean)
    return result
