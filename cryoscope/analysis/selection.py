"""Which photons the intensity trace, the decay of the whole run, the FLID, the states' photons
and decays and the frames' lifetimes count, and how the two APDs' delays are merged: the one
implementation of these rules, used by the file analysis (:func:`cryoscope.analysis.analyze_file`)
and by the live views (:mod:`cryoscope.live`, during a run and in a replay), so that both show
the same numbers from the same tags.

- **The run window** (:class:`RunWindow`): from the exposure start of the first stored frame to
  the exposure end of the last stored frame with a complete exposure
  (:class:`~cryoscope.datafile.FrameTiming`), half-open, with the run's pauses and the time
  tagger's overflow intervals left out (:attr:`~cryoscope.datafile.Measurement.pauses_ps`,
  :attr:`~cryoscope.datafile.Measurement.overflows_ps`, merged).
- **Time bins** of trace and FLID start at the window's start.
- **Both APDs count.** The second APD's delays are shifted by its offset
  (:class:`Apd2Offset`, measured from every photon with a delay) before the decays and the FLID
  are made (:func:`aligned_delays`); :class:`RunDecay` keeps the decay so that the offset may be
  known only at the end (live).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cryoscope.analysis.lifetime import (
    DecayHistogram,
    decay_histogram,
    delay_counts,
    detector_offset_from_histograms,
)
from cryoscope.datafile import FrameTiming, in_intervals, merge_intervals

__all__ = ["ALIGN_BIN_PS", "DECAY_BIN_PS", "MIN_ALIGN_PHOTONS", "Apd2Offset", "RunDecay",
           "RunWindow", "aligned_delays", "run_window"]

log = logging.getLogger(__name__)

#: Bin of the decay histograms (ps).
DECAY_BIN_PS = 64.0
#: Fewest photons with a delay on each APD to measure the second APD's delay offset.
MIN_ALIGN_PHOTONS = 10_000
#: Bin of the fine delay histograms that align the second APD (ps).
ALIGN_BIN_PS = 16.0

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class RunWindow:
    """The photons that count: ``start_ps <= t < stop_ps`` outside ``gaps_ps``."""

    start_ps: int  #: exposure start of the first stored frame (tagger time, ps)
    stop_ps: int  #: exposure end of the last stored frame with a complete exposure
    gaps_ps: I64  #: ``[n, 2]`` pauses and tagger overflows, sorted and merged

    def contains(self, time_ps: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Whether each photon time lies in the window."""
        t = np.asarray(time_ps, np.int64)
        return (t >= self.start_ps) & (t < self.stop_ps) & ~in_intervals(t, self.gaps_ps)

    def trace_bins(self, bin_s: float) -> int:
        """Number of ``bin_s`` time bins from :attr:`start_ps` that cover the window."""
        return max(int(np.ceil((self.stop_ps - self.start_ps) / round(bin_s * 1e12))), 1)


def run_window(frames: FrameTiming, pauses_ps: npt.ArrayLike, overflows_ps: npt.ArrayLike
               ) -> RunWindow | None:
    """The run window of the stored frames ``frames`` (None: no frame with a complete exposure
    yet), pauses and overflows as ``[n, 2]`` tagger intervals."""
    if frames.n == 0:
        return None
    gaps = merge_intervals(np.concatenate([np.asarray(pauses_ps, np.int64).reshape(-1, 2),
                                           np.asarray(overflows_ps, np.int64).reshape(-1, 2)]))
    return RunWindow(int(frames.start_ps[0]), int(frames.stop_ps[frames.n - 1]), gaps)


def aligned_delays(delay_ps: I64, detector: npt.NDArray[np.int8], period_ps: int,
                   offset_ps: float | None) -> I64:
    """Delays with the second APD's (``detector == 1``) offset removed, folded into the period
    (unknown delays, −1, stay −1); unchanged without an offset."""
    if offset_ps is None:
        return delay_ps
    shift = (detector == 1) & (delay_ps >= 0)
    delay = delay_ps.copy()
    delay[shift] = (delay[shift] - round(offset_ps)) % period_ps
    return delay


class Apd2Offset:
    """The second APD's delay offset (how much later it records the decay than the first APD),
    from both APDs' :data:`ALIGN_BIN_PS` delay histograms of every photon with a delay, fed
    chunk by chunk."""

    def __init__(self, period_ps: int) -> None:
        self.period_ps = int(period_ps)
        empty = decay_histogram(np.zeros(0, np.int64), self.period_ps, ALIGN_BIN_PS).counts
        self.counts = (empty.copy(), empty.copy())
        self._offset: tuple[float | None] | None = None  # measured since the last add

    def add(self, delay_ps: I64, detector: npt.NDArray[np.int8]) -> None:
        second = detector == 1
        for counts, sel in zip(self.counts, (~second, second), strict=True):
            counts += delay_counts(delay_ps[sel], self.period_ps, counts.shape[0])
        self._offset = None

    def offset_ps(self) -> float | None:
        """The offset (ps), or None with fewer than :data:`MIN_ALIGN_PHOTONS` delays on either
        APD (then the delays are merged as they are)."""
        if self._offset is None:
            n1, n2 = (int(c.sum()) for c in self.counts)
            self._offset = (None if min(n1, n2) < MIN_ALIGN_PHOTONS else
                            detector_offset_from_histograms(self.counts[0], self.counts[1],
                                                            self.period_ps),)
        return self._offset[0]


class RunDecay:
    """The decay histogram (:data:`DECAY_BIN_PS` bins) of photons fed chunk by chunk, both
    APDs merged with an offset given only when the histogram is read: the first APD's photons
    are binned at once, the second APD's delays are kept per picosecond (4 bytes a picosecond
    of the laser period) and shifted when read, so that the result is exactly
    :func:`~cryoscope.analysis.lifetime.decay_histogram` of :func:`aligned_delays`."""

    def __init__(self, period_ps: int, two_apds: bool) -> None:
        self.period_ps = int(period_ps)
        empty = decay_histogram(np.zeros(0, np.int64), self.period_ps, DECAY_BIN_PS)
        self._first, self._edges_ns = empty.counts, empty.edges_ns
        self._second = np.zeros(self.period_ps if two_apds else 0, np.int32)
        # the first delay (ps) of each decay bin (two APDs)
        bins = np.arange(self._first.shape[0] if two_apds else 0, dtype=np.int64)
        self._starts_ps = -(-bins * self.period_ps // self._first.shape[0])

    def add(self, delay_ps: I64, detector: npt.NDArray[np.int8]) -> None:
        """Photons with their raw (not aligned) delays (−1: unknown, ignored)."""
        n_bins = self._first.shape[0]
        if self._second.shape[0] == 0:
            self._first += delay_counts(delay_ps, self.period_ps, n_bins)
            return
        second = detector == 1
        self._first += delay_counts(delay_ps[~second], self.period_ps, n_bins)
        d = delay_ps[second]
        d = d[d >= 0]
        if 64 * d.shape[0] < self.period_ps:  # a few (live): cheaper than a full bincount
            ps, n = np.unique(d, return_counts=True)
            self._second[ps] += n.astype(np.int32)
        else:
            self._second += np.bincount(d, minlength=self.period_ps).astype(np.int32)

    @property
    def photons(self) -> int:
        return int(self._first.sum()) + int(self._second.sum())

    def histogram(self, offset_ps: float | None = None) -> DecayHistogram:
        """The decay, the second APD's delays shifted by ``offset_ps`` (None: as they are)."""
        counts = self._first.copy()
        if self._second.shape[0]:
            # aligned bin j holds the raw delays from its start + the shift to the next bin's,
            # modulo the period: the bins in the order of those starts, the last one wrapping
            starts = (self._starts_ps + (0 if offset_ps is None else round(offset_ps))
                      ) % self.period_ps
            order = np.roll(np.arange(starts.shape[0]), -int(np.argmin(starts)))
            sums = np.add.reduceat(self._second, starts[order], dtype=np.int64)
            sums[-1] += int(self._second[: starts[order[0]]].sum())
            counts[order] += sums
        return DecayHistogram(counts=counts, edges_ns=self._edges_ns,
                              period_ns=self.period_ps / 1000.0)
