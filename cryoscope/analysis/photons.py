"""Photon bookkeeping: each APD photon's delay after its laser pulse, frame, waveplate angle.

One compiled pass over the tag stream, run chunk by chunk with the state carried across chunk
boundaries (:class:`PhotonBookkeeper`), so memory is bounded by the chunk size however long the
stream is. Photons of an optional second APD (``/channels`` attribute ``apd2``, for g²) go through
the same pass and are marked ``detector = 1`` (the first APD's are ``0``).

Rules (``docs/file-format.md``):

- delay with the conditional filter: ``laser_period_ps − (t_sync_next − t_photon)``; without it:
  ``t_photon − t_sync_previous``; both folded into ``[0, laser_period_ps)``. A photon without the
  sync it needs (stream start or end) gets delay ``-1``.
- frame ``k`` lies between the ``k``-th rising and ``k``-th falling ``camera_fire`` tag; photons
  outside every exposure get frame ``-1``.
- between the falling edge of stage move ``k`` and the rising edge of move ``k+1`` the stage stood
  at ``reached_deg[k]`` (before the first move: ``start_angle_deg``); during a move the angle is
  interpolated linearly in time and the photon is flagged ``moving``. θ = stage − waveplate_zero.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from cryoscope.analysis.measurement import (
    DEFAULT_TAG_CHUNK,
    Measurement,
    iter_tag_chunks,
    open_measurement,
)

__all__ = [
    "PhotonBookkeeper",
    "PhotonChunk",
    "PhotonTable",
    "collect_photons",
    "iter_photon_chunks",
    "photon_table_from_tags",
    "rest_angles",
    "stage_angle_at",
]

log = logging.getLogger(__name__)

#: Photons that may wait for their sync tag at once (conditional filter); more are flushed.
_PENDING = 1024

# Indices into the carried state vector.
_LAST_SYNC, _CAM_RISE, _CAM_FALL, _STG_RISE, _STG_FALL, _N_PEND = range(6)
# Columns of the pending-photon buffer [_PENDING, 5]: arrival, frame, stage segment, moving,
# detector (one photon per row, contiguous).
_P_T, _P_FRAME, _P_SEG, _P_MOVING, _P_DET = range(5)


@numba.njit(cache=True, nogil=True, inline="always")
def _emit_pending(n_pend, sync_t, period, pend, out_t, out_delay, out_frame, out_seg,
                  out_moving, out_det, n_out):  # pragma: no cover - compiled
    """Move the ``n_pend`` waiting photons to the output; ``sync_t`` is the sync tag that ends
    their wait (delay ``period − (sync_t − t)``), or −1: no sync, delay −1. Returns ``n_out``."""
    for j in range(n_pend):
        t = pend[j, _P_T]
        out_t[n_out] = t
        out_delay[n_out] = (period - (sync_t - t)) % period if sync_t >= 0 else -1
        out_frame[n_out] = pend[j, _P_FRAME]
        out_seg[n_out] = pend[j, _P_SEG]
        out_moving[n_out] = pend[j, _P_MOVING] != 0
        out_det[n_out] = pend[j, _P_DET]
        n_out += 1
    return n_out


@numba.njit(cache=True, nogil=True)
def _kernel(ts, ch, apd, apd2, sync, cam, stage, conditional, period, state, pend,
            out_t, out_delay, out_frame, out_seg, out_moving, out_det,
            edge_t, edge_kind, flush):  # pragma: no cover - compiled
    n_out = 0
    n_edge = 0
    last_sync = state[_LAST_SYNC]
    cam_rise = state[_CAM_RISE]
    cam_fall = state[_CAM_FALL]
    stg_rise = state[_STG_RISE]
    stg_fall = state[_STG_FALL]
    n_pend = state[_N_PEND]
    for i in range(ts.shape[0]):
        c = ch[i]
        t = ts[i]
        if c in (apd, apd2):
            frame = cam_rise - 1 if cam_rise > cam_fall else -1
            moving = stg_rise > stg_fall
            det = 0 if c == apd else 1
            if conditional:
                if n_pend == pend.shape[0]:
                    n_out = _emit_pending(n_pend, -1, period, pend, out_t, out_delay,
                                          out_frame, out_seg, out_moving, out_det, n_out)
                    n_pend = 0
                pend[n_pend, _P_T] = t
                pend[n_pend, _P_FRAME] = frame
                pend[n_pend, _P_SEG] = stg_fall
                pend[n_pend, _P_MOVING] = moving
                pend[n_pend, _P_DET] = det
                n_pend += 1
            else:
                out_t[n_out] = t
                out_delay[n_out] = (t - last_sync) % period if last_sync >= 0 else -1
                out_frame[n_out] = frame
                out_seg[n_out] = stg_fall
                out_moving[n_out] = moving
                out_det[n_out] = det
                n_out += 1
        elif c == sync:
            last_sync = t
            if n_pend > 0:
                n_out = _emit_pending(n_pend, t, period, pend, out_t, out_delay, out_frame,
                                      out_seg, out_moving, out_det, n_out)
                n_pend = 0
        elif c == cam:
            cam_rise += 1
            edge_t[n_edge] = t
            edge_kind[n_edge] = 0
            n_edge += 1
        elif c == -cam:
            cam_fall += 1
            edge_t[n_edge] = t
            edge_kind[n_edge] = 1
            n_edge += 1
        elif c == stage:
            stg_rise += 1
            edge_t[n_edge] = t
            edge_kind[n_edge] = 2
            n_edge += 1
        elif c == -stage:
            stg_fall += 1
            edge_t[n_edge] = t
            edge_kind[n_edge] = 3
            n_edge += 1
    if flush:
        n_out = _emit_pending(n_pend, -1, period, pend, out_t, out_delay, out_frame, out_seg,
                              out_moving, out_det, n_out)
        n_pend = 0
    state[_LAST_SYNC] = last_sync
    state[_CAM_RISE] = cam_rise
    state[_CAM_FALL] = cam_fall
    state[_STG_RISE] = stg_rise
    state[_STG_FALL] = stg_fall
    state[_N_PEND] = n_pend
    return n_out, n_edge


@dataclass(frozen=True)
class PhotonChunk:
    """Photons of one chunk, in time order (before the angle lookup).

    ``segment`` is the number of completed stage moves when the photon arrived.
    """

    time_ps: np.ndarray  #: int64, tagger time (ps)
    delay_ps: np.ndarray  #: int64, delay after its own laser pulse (ps), -1 = unknown
    frame: np.ndarray  #: int32, camera frame index, -1 = between frames
    segment: np.ndarray  #: int32, completed stage moves at arrival
    moving: np.ndarray  #: bool, the stage was moving
    detector: np.ndarray  #: int8, 0 = APD (``apd``), 1 = second APD (``apd2``)


class PhotonBookkeeper:
    """Streaming photon bookkeeping: feed tag chunks in order, get photon chunks back.

    Parameters are the tagger input numbers (``/channels``) and the laser period (ps); ``apd2``
    is the second APD's input (None: one APD). With the conditional filter a click of either APD
    lets the next sync through. Camera and stage edges are collected in
    :attr:`camera_edges_ps` / :attr:`stage_edges_ps`.
    """

    def __init__(self, apd: int, laser_sync: int, camera_fire: int, stage_motion: int,
                 conditional_filter: bool, laser_period_ps: int, apd2: int | None = None
                 ) -> None:
        self._channels = (apd, laser_sync, camera_fire, stage_motion)
        # Swabian inputs are numbered from 1: channel 0 never occurs in a stream.
        self._apd2 = 0 if apd2 is None else int(apd2)
        self._conditional = conditional_filter
        self._period = int(laser_period_ps)
        self._state = np.array([-1, 0, 0, 0, 0, 0], np.int64)
        self._pend = np.empty((_PENDING, 5), np.int64)
        self._edges: list[tuple[np.ndarray, np.ndarray]] = []
        self.tags_seen = 0

    def feed(self, timestamp_ps: np.ndarray, channel: np.ndarray, last: bool = False
             ) -> PhotonChunk:
        """Process the next block of tags; ``last=True`` flushes photons still waiting."""
        n = timestamp_ps.shape[0] + _PENDING
        out_t = np.empty(n, np.int64)
        out_delay = np.empty(n, np.int64)
        out_frame = np.empty(n, np.int64)
        out_seg = np.empty(n, np.int64)
        out_moving = np.empty(n, np.bool_)
        out_det = np.empty(n, np.int8)
        edge_t = np.empty(timestamp_ps.shape[0], np.int64)
        edge_kind = np.empty(timestamp_ps.shape[0], np.int8)
        apd, sync, cam, stage = self._channels
        n_out, n_edge = _kernel(
            np.ascontiguousarray(timestamp_ps, np.int64), np.ascontiguousarray(channel, np.int32),
            apd, self._apd2, sync, cam, stage, self._conditional, self._period, self._state,
            self._pend, out_t, out_delay, out_frame, out_seg, out_moving, out_det,
            edge_t, edge_kind, last)
        self._edges.append((edge_t[:n_edge].copy(), edge_kind[:n_edge].copy()))
        self.tags_seen += timestamp_ps.shape[0]
        return PhotonChunk(out_t[:n_out].copy(), out_delay[:n_out].copy(),
                           out_frame[:n_out].astype(np.int32), out_seg[:n_out].astype(np.int32),
                           out_moving[:n_out].copy(), out_det[:n_out].copy())

    def _edges_of(self, kind: int) -> np.ndarray:
        if not self._edges:
            return np.zeros(0, np.int64)
        t = np.concatenate([e[0] for e in self._edges])
        k = np.concatenate([e[1] for e in self._edges])
        return t[k == kind]

    @property
    def camera_edges_ps(self) -> tuple[np.ndarray, np.ndarray]:
        """Rising and falling ``camera_fire`` tag times (ps)."""
        return self._edges_of(0), self._edges_of(1)

    @property
    def stage_edges_ps(self) -> tuple[np.ndarray, np.ndarray]:
        """Rising and falling ``stage_motion`` tag times (ps)."""
        return self._edges_of(2), self._edges_of(3)


@dataclass(frozen=True)
class PhotonTable:
    """Every APD photon of a measurement with its bookkeeping, plus the timing edges.

    With two APDs the photons of both are in one time-ordered table, told apart by
    :attr:`detector`.
    """

    time_ps: np.ndarray  #: int64, tagger time (ps)
    delay_ps: np.ndarray  #: int64, delay after its own laser pulse (ps), -1 = unknown
    frame: np.ndarray  #: int32, camera frame, -1 = between frames
    theta_deg: np.ndarray  #: float64, waveplate angle θ = stage − waveplate_zero (deg)
    moving: np.ndarray  #: bool, the stage was moving
    frame_start_ps: np.ndarray  #: int64 [frames], exposure start (rising camera_fire)
    frame_stop_ps: np.ndarray  #: int64 [frames], exposure end (falling camera_fire)
    move_start_ps: np.ndarray  #: int64 [moves], stage starts moving
    move_stop_ps: np.ndarray  #: int64 [moves], stage still again
    laser_period_ps: int
    tags: int  #: tags processed
    #: int8, 0 = APD (``apd``), 1 = second APD (``apd2``); None: every photon is from the APD
    detector: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of photons."""
        return int(self.time_ps.shape[0])

    @property
    def from_apd2(self) -> np.ndarray:
        """Whether each photon was detected by the second APD (bool [photons])."""
        if self.detector is None:
            return np.zeros(self.n, bool)
        return self.detector == 1

    def frame_theta_deg(self, rest_deg: np.ndarray) -> np.ndarray:
        """Waveplate angle θ at the middle of each complete frame (deg), from the rest angles."""
        n = min(self.frame_start_ps.shape[0], self.frame_stop_ps.shape[0])
        mid = (self.frame_start_ps[:n] + self.frame_stop_ps[:n]) // 2
        return stage_angle_at(mid, self.move_start_ps, self.move_stop_ps, rest_deg)[0]

    def frame_moving(self) -> np.ndarray:
        """Whether the stage moved at any time during each complete frame (bool [frames])."""
        n = min(self.frame_start_ps.shape[0], self.frame_stop_ps.shape[0])
        out = np.zeros(n, bool)
        stops = self.move_stop_ps
        for k, start in enumerate(self.move_start_ps):
            stop = stops[k] if k < stops.shape[0] else np.iinfo(np.int64).max
            out |= (self.frame_start_ps[:n] < stop) & (self.frame_stop_ps[:n] > start)
        return out


def rest_angles(start_angle_deg: float, reached_deg: np.ndarray, zero_deg: float) -> np.ndarray:
    """Waveplate angle θ (deg) in each rest segment: before move 0, after move 0, ..."""
    reached = np.asarray(reached_deg, float)
    stage = np.concatenate([[start_angle_deg], reached])
    # A move without a read-back keeps the previous angle.
    for k in range(1, stage.shape[0]):
        if not np.isfinite(stage[k]):
            stage[k] = stage[k - 1]
    return stage - zero_deg


def stage_angle_at(t_ps: np.ndarray, move_start_ps: np.ndarray, move_stop_ps: np.ndarray,
                   rest_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Waveplate angle θ (deg) and moving flag at times ``t_ps`` (linear during a move)."""
    t = np.asarray(t_ps, np.int64)
    starts = np.asarray(move_start_ps, np.int64)
    stops = np.concatenate([np.asarray(move_stop_ps, np.int64),
                            np.full(max(starts.shape[0] - move_stop_ps.shape[0], 0),
                                    np.iinfo(np.int64).max)])
    n_started = np.searchsorted(starts, t, side="right")
    n_stopped = np.searchsorted(stops[: starts.shape[0]], t, side="right")
    moving = n_started > n_stopped
    seg = np.minimum(n_stopped, rest_deg.shape[0] - 1)
    theta = rest_deg[seg].astype(float)
    if np.any(moving):
        k = n_started[moving] - 1
        a0 = rest_deg[np.minimum(k, rest_deg.shape[0] - 1)]
        a1 = rest_deg[np.minimum(k + 1, rest_deg.shape[0] - 1)]
        span = np.maximum((stops[k] - starts[k]).astype(float), 1.0)
        frac = np.clip((t[moving] - starts[k]) / span, 0.0, 1.0)
        theta[moving] = a0 + (a1 - a0) * frac
    return theta, moving


def iter_photon_chunks(
    chunks: Iterable[tuple[np.ndarray, np.ndarray]], book: PhotonBookkeeper
) -> Iterator[PhotonChunk]:
    """Run the bookkeeper over tag chunks, flushing after the last one."""
    iterator = iter(chunks)
    current = next(iterator, None)
    while current is not None:
        nxt = next(iterator, None)
        yield book.feed(current[0], current[1], last=nxt is None)
        current = nxt


def _table(parts: list[PhotonChunk], book: PhotonBookkeeper, period: int,
           rest_deg: np.ndarray) -> PhotonTable:
    time_ps = np.concatenate([p.time_ps for p in parts]) if parts else np.zeros(0, np.int64)
    delay = np.concatenate([p.delay_ps for p in parts]) if parts else np.zeros(0, np.int64)
    frame = np.concatenate([p.frame for p in parts]) if parts else np.zeros(0, np.int32)
    detector = (np.concatenate([p.detector for p in parts]) if parts
                else np.zeros(0, np.int8))
    cam_rise, cam_fall = book.camera_edges_ps
    stg_rise, stg_fall = book.stage_edges_ps
    theta, moving = stage_angle_at(time_ps, stg_rise, stg_fall, rest_deg)
    return PhotonTable(time_ps=time_ps, delay_ps=delay, frame=frame, theta_deg=theta,
                       moving=moving, frame_start_ps=cam_rise, frame_stop_ps=cam_fall,
                       move_start_ps=stg_rise, move_stop_ps=stg_fall, laser_period_ps=period,
                       tags=book.tags_seen, detector=detector)


def photon_table_from_tags(timestamp_ps: np.ndarray, channel: np.ndarray, *, apd: int,
                           laser_sync: int, camera_fire: int, stage_motion: int,
                           conditional_filter: bool, laser_period_ps: int,
                           rest_deg: np.ndarray, chunk_tags: int = DEFAULT_TAG_CHUNK,
                           apd2: int | None = None) -> PhotonTable:
    """Photon table from in-memory tag arrays (``rest_deg`` from :func:`rest_angles`)."""
    book = PhotonBookkeeper(apd, laser_sync, camera_fire, stage_motion, conditional_filter,
                            laser_period_ps, apd2)
    chunks = ((timestamp_ps[i:i + chunk_tags], channel[i:i + chunk_tags])
              for i in range(0, max(timestamp_ps.shape[0], 1), chunk_tags))
    parts = list(iter_photon_chunks(chunks, book))
    return _table(parts, book, laser_period_ps, rest_deg)


def collect_photons(path: str | Path, chunk_tags: int = DEFAULT_TAG_CHUNK,
                    measurement: Measurement | None = None) -> PhotonTable:
    """All photons of a measurement file, read in chunks of ``chunk_tags`` tags."""
    meas = measurement if measurement is not None else open_measurement(path)
    book = PhotonBookkeeper(meas.apd_channel, meas.sync_channel, meas.camera_channel,
                            meas.stage_channel, meas.conditional_filter, meas.laser_period_ps,
                            meas.apd2_channel)
    parts = list(iter_photon_chunks(iter_tag_chunks(path, chunk_tags), book))
    rest = rest_angles(meas.start_angle_deg, meas.reached_deg, meas.waveplate_zero_deg)
    table = _table(parts, book, meas.laser_period_ps, rest)
    log.info("%d tags -> %d photons (%d from APD 2), %d frames", table.tags, table.n,
             int(np.count_nonzero(table.from_apd2)), table.frame_start_ps.size)
    return table
