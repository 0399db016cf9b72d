"""Ground truth of a simulated measurement, as written to the file's ``/simulation`` group.

The particle's true state intervals (from :meth:`Bench.truth`) and, per camera frame, the state
that held longest and the time-weighted ZPL during its exposure. The run engine asks for it at the
end of a run with the exposure times the time tagger saw; nothing else of the simulation reaches
the core.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from sim_hardware.bench import Bench
from sim_hardware.sample import STATE_NAMES

__all__ = ["per_frame_truth", "simulation_truth"]


def simulation_truth(bench: Bench, frame_start_s: npt.NDArray[np.float64],
                     frame_end_s: npt.NDArray[np.float64]) -> dict[str, npt.NDArray[Any]]:
    """Every ``/simulation`` dataset for frames exposed over ``[frame_start_s, frame_end_s)``."""
    times, states, zpls = bench.truth()
    truth: dict[str, npt.NDArray[Any]] = {
        "truth_time_s": times, "truth_state": states, "truth_zpl_ev": zpls,
        "state_names": np.array(STATE_NAMES, dtype="S"),
    }
    return {**truth, **per_frame_truth(frame_start_s, frame_end_s, truth)}


def per_frame_truth(starts: npt.NDArray[np.float64], ends: npt.NDArray[np.float64],
                    truth: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    """The state that held longest, and the time-weighted ZPL, during each exposure."""
    seg_t = truth["truth_time_s"]
    states, zpls = truth["truth_state"], truth["truth_zpl_ev"]
    n, centers = starts.shape[0], states.shape[1]
    frame_state = np.zeros((n, centers), np.int8)
    frame_zpl = np.zeros((n, centers), np.float64)
    bounds = np.append(seg_t, np.inf)
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):
        lo = max(int(np.searchsorted(seg_t, a, side="right")) - 1, 0)
        hi = max(int(np.searchsorted(seg_t, b, side="left")), lo + 1)
        overlap = np.clip(np.minimum(bounds[lo + 1:hi + 1], b) - np.maximum(seg_t[lo:hi], a),
                          0, None)
        weights = overlap / overlap.sum() if overlap.sum() > 0 else np.ones_like(overlap)
        for c in range(centers):
            per_state = np.bincount(states[lo:hi, c], weights=weights, minlength=3)
            frame_state[k, c] = int(np.argmax(per_state))
            frame_zpl[k, c] = float(np.dot(weights, zpls[lo:hi, c]))
    return {"frame_state": frame_state, "frame_zpl_ev": frame_zpl}
