"""Change-point analysis of photon arrival times (Watkins & Yang, J. Phys. Chem. B 109, 617 (2005)).

Intensity changes are found by recursive binary segmentation with the generalized likelihood
ratio of a Poisson process, each change point is then refined between its neighbours, and the
segments are grouped into intensity levels by agglomerative merging with the number of levels
chosen by the Bayesian information criterion of Watkins & Yang (their eq. 11).
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass

import numba
import numpy as np

__all__ = ["ChangePointStream", "ChangePoints", "IntensityLevels", "critical_value",
           "find_change_points",
           "group_levels"]

log = logging.getLogger(__name__)


@numba.njit(cache=True, nogil=True)
def _best_split(t, lo, hi):  # pragma: no cover - compiled
    """Best change point in photons t[lo:hi+1] (inclusive ends): index k and log-likelihood ratio.

    Photons lo..k-1 before, k..hi after; t[lo] and t[hi] bound the interval.
    """
    n = hi - lo
    span = t[hi] - t[lo]
    best = 0.0
    best_k = -1
    if n < 2 or span <= 0:
        return best_k, best
    for j in range(1, n):
        v = (t[lo + j] - t[lo]) / span
        if v <= 0.0 or v >= 1.0:
            continue
        llr = j * math.log(j / v / n) + (n - j) * math.log((n - j) / (1.0 - v) / n)
        if llr > best:
            best = llr
            best_k = lo + j
    return best_k, best


def critical_value(n: int, alpha: float = 0.05) -> float:
    """Critical value of the log-likelihood ratio for ``n`` photons at type-I error ``alpha``.

    Asymptotic distribution of the maximal likelihood ratio (Horváth 1993), as used by Watkins &
    Yang: √(2 L) ≈ (−ln(−ln(1 − α)/2) + b_n)/a_n.
    """
    n = max(n, 20)
    lln = math.log(math.log(n))
    a = math.sqrt(2 * lln)
    b = 2 * lln + 0.5 * math.log(lln) - 0.5 * math.log(math.pi)
    root = (-math.log(-math.log(1 - alpha) / 2) + b) / a
    return 0.5 * root * root


@dataclass(frozen=True)
class ChangePoints:
    """Change points (photon indices and times) and the segments' count rates."""

    index: np.ndarray  #: photon index where each new segment starts
    time_s: np.ndarray  #: segment boundaries incl. start and end (s), [segments + 1]
    counts: np.ndarray  #: photons per segment
    rate_cps: np.ndarray  #: counts / duration per segment


def find_change_points(time_ps: np.ndarray, alpha: float = 0.05, min_photons: int = 10
                       ) -> ChangePoints:
    """Intensity change points in a sorted photon-time series (ps)."""
    t = np.asarray(time_ps, np.int64).astype(float) * 1e-12
    n = t.shape[0]
    if n < 2 * min_photons:
        return _segments(t, np.zeros(0, np.int64))
    found: list[int] = []
    stack = [(0, n - 1)]
    while stack:
        lo, hi = stack.pop()
        if hi - lo < 2 * min_photons:
            continue
        k, llr = _best_split(t, lo, hi)
        if k < 0 or llr < critical_value(hi - lo, alpha):
            continue
        found.append(k)
        stack.append((lo, k))
        stack.append((k, hi))
    cps = np.sort(np.asarray(found, np.int64))
    # Refinement: re-locate each change point between its two neighbours.
    bounds = np.concatenate([[0], cps, [n - 1]])
    for i in range(1, bounds.shape[0] - 1):
        k, _ = _best_split(t, int(bounds[i - 1]), int(bounds[i + 1]))
        if k > 0:
            bounds[i] = k
    return _segments(t, _enforce_min_photons(np.unique(bounds[1:-1]), n, min_photons))


def _enforce_min_photons(cps: np.ndarray, n: int, min_photons: int) -> np.ndarray:
    """Drop change points until every segment holds at least ``min_photons`` photons (the
    refinement can move two change points next to each other): the smallest segment is merged
    into its smaller neighbour, again and again."""
    edges = [0, *cps.tolist(), n]
    while len(edges) > 2:
        sizes = np.diff(edges)
        i = int(np.argmin(sizes))
        if sizes[i] >= min_photons:
            break
        if i == 0:
            del edges[1]
        elif i == sizes.size - 1:
            del edges[-2]
        else:  # the change point towards the smaller neighbour goes
            del edges[i if sizes[i - 1] <= sizes[i + 1] else i + 1]
    return np.asarray(edges[1:-1], np.int64)


def _segments(t: np.ndarray, cps: np.ndarray) -> ChangePoints:
    n = t.shape[0]
    starts = np.concatenate([[0], cps]).astype(np.int64)
    stops = np.concatenate([cps, [n]]).astype(np.int64)
    edges = np.concatenate([[t[0] if n else 0.0], t[cps], [t[-1] if n else 0.0]])
    counts = stops - starts
    dur = np.maximum(np.diff(edges), 1e-12)
    return ChangePoints(index=cps, time_s=edges, counts=counts, rate_cps=counts / dur)


def _merge_close_levels(groups: list[list[int]], counts: np.ndarray, dur: np.ndarray,
                        min_contrast: float, min_photons: int) -> list[list[int]]:
    """Merge levels closer than ``min_contrast`` in rate; fold levels of too few photons into
    the nearest (log rate) other level."""
    groups = [list(g) for g in groups]

    def rate(g: list[int]) -> float:
        return float(counts[g].sum() / max(dur[g].sum(), 1e-12))

    while len(groups) > 1:
        groups.sort(key=rate)
        rates = np.array([rate(g) for g in groups])
        small = [i for i, g in enumerate(groups) if counts[g].sum() < min_photons]
        if small:
            i = small[0]
            logs = np.log(np.maximum(rates, 1e-9))
            dist = np.abs(logs - logs[i])
            dist[i] = np.inf
            j = int(np.argmin(dist))
        else:
            contrast = np.diff(rates) / np.maximum(rates[1:], 1e-12)
            i = int(np.argmin(contrast))
            if contrast[i] >= min_contrast:
                break
            j = i + 1
        groups[j] = groups[j] + groups[i]
        del groups[i]
    return groups


@dataclass(frozen=True)
class IntensityLevels:
    """Segments grouped into intensity levels."""

    level_of_segment: np.ndarray  #: level index per segment (levels ordered by rate)
    rate_cps: np.ndarray  #: rate of each level
    bic: np.ndarray  #: BIC for 1 … n levels (higher is better)


def _group_loglik(counts: np.ndarray, durations: np.ndarray) -> float:
    n, d = counts.sum(), durations.sum()
    return float(n * math.log(n / d)) - float(n) if n > 0 else 0.0


def group_levels(cp: ChangePoints, max_levels: int = 8, min_contrast: float = 0.1,
                 min_level_photons: int = 100) -> IntensityLevels:
    """Group segments into levels: merge the pair of groups that loses least likelihood, keep the
    number of levels with the best BIC = 2 ln L − (2G − 1) ln N_cp − N_cp ln N.

    Then levels whose rates differ by less than ``min_contrast`` (relative) are one — at 10⁵–10⁶
    photons per level the Poisson likelihood resolves sub-percent differences (pile-up, laser
    drift) that are no blinking levels — and a level of fewer than ``min_level_photons`` photons
    (a short segment straddling a switch) joins the level nearest in log rate.
    """
    counts = cp.counts.astype(float)
    dur = np.diff(cp.time_s)
    n_seg = counts.shape[0]
    n_total = max(float(counts.sum()), 2.0)
    groups: list[list[int]] = [[i] for i in range(n_seg)]
    history: list[tuple[int, list[list[int]], float]] = []
    while True:
        ll = sum(_group_loglik(counts[g], dur[g]) for g in groups)
        history.append((len(groups), [list(g) for g in groups], ll))
        if len(groups) == 1:
            break
        group_rates = [counts[g].sum() / dur[g].sum() for g in groups]
        order = np.argsort(group_rates)
        best_cost, best_pair = np.inf, (0, 1)
        for a, b in itertools.pairwise(order):
            merged = groups[a] + groups[b]
            cost = (_group_loglik(counts[groups[a]], dur[groups[a]])
                    + _group_loglik(counts[groups[b]], dur[groups[b]])
                    - _group_loglik(counts[merged], dur[merged]))
            if cost < best_cost:
                best_cost, best_pair = cost, (int(a), int(b))
        a, b = best_pair
        groups = [g for i, g in enumerate(groups) if i not in (a, b)] + [groups[a] + groups[b]]
    n_cp = max(n_seg - 1, 1)
    candidates = [(g, grp, ll) for g, grp, ll in history if g <= max_levels]
    bic = np.array([2 * ll - (2 * g - 1) * math.log(n_cp) - n_cp * math.log(n_total)
                    for g, _grp, ll in candidates])
    g_best, grp_best, _ = candidates[int(np.argmax(bic))]
    grp_best = _merge_close_levels(grp_best, counts, dur, min_contrast, min_level_photons)
    g_best = len(grp_best)
    rates = np.array([counts[g].sum() / dur[g].sum() for g in grp_best])
    order = np.argsort(rates)
    level = np.empty(n_seg, int)
    for rank, gi in enumerate(order):
        level[grp_best[gi]] = rank
    log.debug("%d segments grouped into %d levels", n_seg, g_best)
    return IntensityLevels(level_of_segment=level, rate_cps=rates[order],
                           bic=bic[::-1])


class ChangePointStream:
    """:func:`find_change_points` over photons fed chunk by chunk, in bounded memory.

    Photons are held until ``window`` of them have arrived beyond the last settled change point;
    then change points farther than ``window // 2`` photons from the newest photon are settled
    and the photons before the last of them are dropped. A stretch of ``4 · window`` photons
    without any change is cut to bound memory; such cuts are not change points and are removed
    again by :meth:`finish`. Files with fewer than ``2 · window`` photons are analysed in one
    piece, exactly as :func:`find_change_points` does.
    """

    def __init__(self, alpha: float = 0.05, min_photons: int = 10,
                 window: int = 2_000_000) -> None:
        self.alpha, self.min_photons, self.window = alpha, min_photons, window
        self._held = np.zeros(0, np.int64)
        self._offset = 0  # photon index of _held[0]
        self._first_ps: int | None = None
        self._cuts: list[tuple[int, int, bool]] = []  # (photon index, time ps, real change)

    def feed(self, time_ps: np.ndarray) -> None:
        t = np.asarray(time_ps, np.int64)
        if t.size == 0:
            return
        if self._first_ps is None:
            self._first_ps = int(t[0])
        self._held = np.concatenate([self._held, t])
        while self._held.shape[0] >= 2 * self.window:
            self._settle()

    def _settle(self) -> None:
        held = self._held
        found = find_change_points(held, self.alpha, self.min_photons).index
        settled = found[found < held.shape[0] - self.window // 2]
        if settled.size:
            for k in settled.tolist():
                self._cuts.append((self._offset + k, int(held[k]), True))
            cut = int(settled[-1])
        elif held.shape[0] >= 4 * self.window:
            cut = held.shape[0] - self.window
            self._cuts.append((self._offset + cut, int(held[cut]), False))
        else:
            return
        self._held = held[cut:].copy()
        self._offset += cut

    def finish(self) -> ChangePoints:
        """The change points of everything fed."""
        held = self._held
        found = find_change_points(held, self.alpha, self.min_photons).index
        cuts = [c for c in self._cuts if c[2]] + [
            (self._offset + int(k), int(held[k]), True) for k in found.tolist()]
        n = self._offset + held.shape[0]
        index = np.array([c[0] for c in cuts], np.int64)
        inner = np.array([c[1] for c in cuts], np.float64) * 1e-12
        first = (self._first_ps or 0) * 1e-12
        last = float(held[-1]) * 1e-12 if held.size else first
        edges = np.concatenate([[first], inner, [last]])
        counts = np.diff(np.concatenate([[0], index, [n]]))
        dur = np.maximum(np.diff(edges), 1e-12)
        return ChangePoints(index=index, time_s=edges, counts=counts, rate_cps=counts / dur)
