"""Each center's peak energy per frame and its jumps, the simultaneous ones flagged (paper Fig. 4d;
filled by :func:`~cryoscope.analysis.report.analyze_file` from the center map and the jumps)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PeakTracks"]


@dataclass(frozen=True)
class PeakTracks:
    """Peak energy per frame and region, the jumps and the simultaneous ones."""

    regions_ev: np.ndarray  #: [regions, 2]
    peak_ev: np.ndarray  #: [frames, regions], NaN where no peak stands out
    jumps: tuple[tuple[int, int, float], ...]  #: (frame, region, shift in meV)
    simultaneous: tuple[int, ...]  #: frames where two or more regions jump (within ±window)
