"""Frame and waveplate timing from the time tagger's edges: the one place it is worked out.

The camera's ``camera_fire`` output is high while a frame is exposed, the KDC101's trigger output
``stage_motion`` while the stage moves; the time tagger stamps both edges. Exposure ``k`` is the
``k``-th pair of a rising and the following falling ``camera_fire`` edge, move ``k`` the ``k``-th
``stage_motion`` pair. Every run, the live views, replay and the file analysis take frame start,
end, waveplate angle θ and the moving flag from :func:`frame_timing` and photon angles from
:func:`stage_angle_at`.

Pairing is robust to what a stream may begin or end with: a falling edge before any rising edge
(a move or exposure that began before the stream, as older files may hold) is dropped, and a
rising edge whose falling edge has not arrived yet is open-ended.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from drivers.interfaces import TagEventType

__all__ = [
    "OPEN_PS",
    "EdgePairs",
    "FrameTiming",
    "StageTiming",
    "frame_timing",
    "in_intervals",
    "merge_intervals",
    "overflow_intervals",
    "pair_edges",
    "rest_angles",
    "stage_angle_at",
]

#: Stop time of a pair whose falling edge has not been seen.
OPEN_PS = np.iinfo(np.int64).max

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class EdgePairs:
    """Rising/falling edge pairs: ``start_ps[k]`` to ``stop_ps[k]`` (``OPEN_PS``: still high)."""

    start_ps: I64
    stop_ps: I64

    def __len__(self) -> int:
        return int(self.start_ps.shape[0])

    @property
    def complete(self) -> int:
        """How many leading pairs have both edges."""
        open_at = np.flatnonzero(self.stop_ps == OPEN_PS)
        return int(open_at[0]) if open_at.size else len(self)


def pair_edges(rising_ps: npt.ArrayLike, falling_ps: npt.ArrayLike) -> EdgePairs:
    """Pair each rising edge with the first falling edge after it and before the next rising
    edge. Falling edges without a rising edge before them are dropped; a rising edge without its
    falling edge ends at the next rising edge, or is open (:data:`OPEN_PS`) if it is the last."""
    rise = np.asarray(rising_ps, np.int64)
    fall = np.asarray(falling_ps, np.int64)
    stop = np.full(rise.shape, OPEN_PS, np.int64)
    if rise.size == 0:
        return EdgePairs(rise, stop)
    idx = np.searchsorted(fall, rise, side="left")
    found = idx < fall.shape[0]
    stop[found] = fall[idx[found]]
    nxt = np.append(rise[1:], OPEN_PS)
    late = stop > nxt  # its falling edge is missing: the next exposure began first
    stop[late] = nxt[late]
    return EdgePairs(rise, stop)


def rest_angles(start_angle_deg: float, target_deg: npt.ArrayLike, reached_deg: npt.ArrayLike,
                zero_deg: float) -> F64:
    """Waveplate angle θ (deg) at rest before move 0, after move 0, after move 1, ...

    A move's angle is the stage's read-back after it (``reached_deg``), or its target where no
    read-back was recorded."""
    reached = np.asarray(reached_deg, float)
    target = np.asarray(target_deg, float)
    n = reached.shape[0]
    if target.shape[0] >= n:
        reached = np.where(np.isfinite(reached), reached, target[:n])
    stage = np.concatenate([[start_angle_deg], reached])
    for k in range(1, stage.shape[0]):
        if not np.isfinite(stage[k]):
            stage[k] = stage[k - 1]
    return stage - zero_deg


@dataclass(frozen=True)
class StageTiming:
    """The waveplate's moves (tagger time) and its angle θ at rest between them."""

    moves: EdgePairs
    rest_deg: F64  #: θ before move 0, after move 0, ... (at least one entry)


def stage_angle_at(t_ps: npt.ArrayLike, stage: StageTiming) -> tuple[F64, npt.NDArray[np.bool_]]:
    """Waveplate angle θ (deg) and moving flag at times ``t_ps``; linear in time during a move."""
    t = np.asarray(t_ps, np.int64)
    starts, stops, rest = stage.moves.start_ps, stage.moves.stop_ps, stage.rest_deg
    n_started = np.searchsorted(starts, t, side="right")
    n_stopped = np.searchsorted(stops, t, side="right")
    moving = n_started > n_stopped
    last = rest.shape[0] - 1
    theta = rest[np.minimum(n_stopped, last)].astype(float)
    if np.any(moving):
        k = n_started[moving] - 1
        a0 = rest[np.minimum(k, last)]
        a1 = rest[np.minimum(k + 1, last)]
        span = np.where(stops[k] == OPEN_PS, 1.0,
                        np.maximum((stops[k] - starts[k]).astype(float), 1.0))
        frac = np.where(stops[k] == OPEN_PS, 0.0,
                        np.clip((t[moving] - starts[k]) / span, 0.0, 1.0))
        theta[moving] = a0 + (a1 - a0) * frac
    return theta, moving


@dataclass(frozen=True)
class FrameTiming:
    """Timing of the stored camera frames whose exposure is complete (a prefix of the frames).

    ``exposure_to_frame[k]`` is the stored frame of exposure ``k`` (−1: an exposure whose frame
    was lost or cut short by a pause or a stop).
    """

    start_ps: I64  #: exposure start of each frame (rising ``camera_fire``)
    stop_ps: I64  #: exposure end (falling ``camera_fire``)
    theta_deg: F64  #: waveplate angle θ at mid-exposure (deg)
    moving: npt.NDArray[np.bool_]  #: the stage moved at some time during the exposure
    exposure_to_frame: I64

    @property
    def n(self) -> int:
        return int(self.start_ps.shape[0])


def frame_timing(exposures: EdgePairs, stage: StageTiming,
                 exposure_index: npt.ArrayLike | None = None,
                 n_frames: int | None = None) -> FrameTiming:
    """Start, end, θ and moving flag of each stored frame with a complete exposure.

    ``exposure_index``: the exposure each stored frame came from (``/camera/exposure_index``;
    None: frame ``k`` is exposure ``k``). ``n_frames``: frames stored (default: all exposures).
    """
    complete = exposures.complete
    if exposure_index is None:
        count = complete if n_frames is None else min(n_frames, complete)
        index = np.arange(count, dtype=np.int64)
    else:
        index = np.asarray(exposure_index, np.int64)
        if n_frames is not None:
            index = index[:n_frames]
        index = index[: int(np.searchsorted(index, complete, side="left"))]
    start = exposures.start_ps[index]
    stop = exposures.stop_ps[index]
    theta, _ = stage_angle_at(start + (stop - start) // 2, stage)
    moves = stage.moves
    # moving during [start, stop): a move began before the exposure ended and ended after it began
    began = np.searchsorted(moves.start_ps, stop, side="left")
    ended = np.searchsorted(moves.stop_ps, start, side="right")
    moving = began > ended
    to_frame = np.full(len(exposures), -1, np.int64)
    to_frame[index] = np.arange(index.shape[0])
    return FrameTiming(start, stop, theta, moving, to_frame)


def in_intervals(t_ps: npt.ArrayLike, intervals_ps: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Whether each time lies in one of the ``[n, 2]`` intervals ``[start, stop)`` (sorted,
    disjoint), e.g. the pauses of a run."""
    t = np.asarray(t_ps, np.int64)
    iv = np.asarray(intervals_ps, np.int64).reshape(-1, 2)
    if iv.shape[0] == 0:
        return np.zeros(t.shape, bool)
    k = np.searchsorted(iv[:, 0], t, side="right") - 1
    return (k >= 0) & (t < iv[np.maximum(k, 0), 1])


def merge_intervals(intervals_ps: npt.ArrayLike) -> I64:
    """``[n, 2]`` intervals sorted and merged where they overlap (for :func:`in_intervals`)."""
    iv = np.asarray(intervals_ps, np.int64).reshape(-1, 2)
    if iv.shape[0] == 0:
        return iv
    iv = iv[np.argsort(iv[:, 0], kind="stable")]
    out = [iv[0].copy()]
    for start, stop in iv[1:]:
        if start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], stop)
        else:
            out.append(np.array([start, stop], np.int64))
    return np.array(out, np.int64).reshape(-1, 2)


def overflow_intervals(event_type: npt.ArrayLike, event_timestamp_ps: npt.ArrayLike,
                       last_tag_ps: int | None) -> I64:
    """``[n, 2]`` time-tagger overflows from the stream's events (``/tagger/event_*``): from
    each overflow-begin to its overflow-end event; one still open ends at ``last_tag_ps`` (the
    stream's last ordinary tag; None: the stream goes on, it stays open, :data:`OPEN_PS`)."""
    out: list[tuple[int, int]] = []
    start: int | None = None
    for kind, t in zip(np.asarray(event_type).tolist(),
                       np.asarray(event_timestamp_ps).tolist(), strict=True):
        if kind == TagEventType.OVERFLOW_BEGIN and start is None:
            start = int(t)
        elif kind == TagEventType.OVERFLOW_END and start is not None:
            out.append((start, int(t)))
            start = None
    if start is not None:
        out.append((start, OPEN_PS if last_tag_ps is None else max(start, last_tag_ps)))
    return np.array(out, np.int64).reshape(-1, 2)
