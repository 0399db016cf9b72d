"""Ground truth of a simulated measurement, as written to the file's ``/simulation`` group.

The particle's true state intervals and events (from :meth:`Bench.truth`) and, per camera frame,
the state and surface-charge position that held longest and the time-weighted ZPL during its
exposure, and the frame of every event. The run engine asks for it at the end of a run with the
exposure times the time tagger saw; nothing else of the simulation reaches the core.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from sim_hardware.bench import Bench
from sim_hardware.sample import JUMP_KIND_NAMES, STATE_NAMES

__all__ = ["per_frame_truth", "simulation_truth"]


def simulation_truth(bench: Bench, frame_start_s: npt.NDArray[np.float64],
                     frame_end_s: npt.NDArray[np.float64]) -> dict[str, npt.NDArray[Any]]:
    """Every ``/simulation`` dataset for frames exposed over ``[frame_start_s, frame_end_s)``."""
    t = bench.truth()
    sample = bench.params.sample
    truth: dict[str, npt.NDArray[Any]] = {
        "truth_time_s": t.time_s, "truth_state": t.state, "truth_zpl_ev": t.zpl_ev,
        "truth_surface_charge_nm": t.surface_charge_nm,
        "state_names": np.array(STATE_NAMES, dtype="S"),
        "center_position_nm": np.array([sample.center_position_nm(c)
                                        for c in range(t.state.shape[1])], dtype=np.float64),
        "bleach_time_s": t.bleach_time_s,
        "jump_time_s": t.event_time_s, "jump_kind": t.event_kind,
        "jump_centers": t.event_centers.astype(np.uint8), "jump_shift_mev": t.event_shift_mev,
        "jump_frame": event_frames(t.event_time_s, frame_start_s, frame_end_s),
        "jump_kind_names": np.array(JUMP_KIND_NAMES, dtype="S"),
    }
    return {**truth, **per_frame_truth(frame_start_s, frame_end_s, truth)}


def event_frames(times_s: npt.NDArray[np.float64], starts: npt.NDArray[np.float64],
                 ends: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Index of the exposure each event falls in (−1 = between exposures or outside them)."""
    if not starts.shape[0]:
        return np.full(times_s.shape[0], -1, np.int64)
    k = np.searchsorted(starts, times_s, side="right") - 1
    inside = (k >= 0) & (times_s < ends[np.clip(k, 0, None)])
    return np.where(inside, k, -1).astype(np.int64)


def per_frame_truth(starts: npt.NDArray[np.float64], ends: npt.NDArray[np.float64],
                    truth: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    """The state and surface-charge position that held longest, and the time-weighted ZPL,
    during each exposure."""
    seg_t = truth["truth_time_s"]
    states, zpls = truth["truth_state"], truth["truth_zpl_ev"]
    surface = truth["truth_surface_charge_nm"]
    n, centers = starts.shape[0], states.shape[1]
    frame_state = np.zeros((n, centers), np.int8)
    frame_zpl = np.zeros((n, centers), np.float64)
    frame_surface = np.full(n, np.nan)
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
        positions, where = np.unique(np.nan_to_num(surface[lo:hi], nan=np.inf),
                                     return_inverse=True)
        longest = positions[int(np.argmax(np.bincount(where, weights=weights)))]
        frame_surface[k] = longest if np.isfinite(longest) else np.nan
    return {"frame_state": frame_state, "frame_zpl_ev": frame_zpl,
            "frame_surface_charge_nm": frame_surface}
