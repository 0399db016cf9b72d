"""Photon bookkeeping: each APD photon's delay after its laser pulse, frame, waveplate angle.

One compiled pass over the tag stream, run chunk by chunk with the state carried across chunk
boundaries (:class:`PhotonBookkeeper`), so memory is bounded by the chunk size however long the
stream is. Photons of an optional second APD (``/channels`` attribute ``apd2``, for g²) go through
the same pass and are marked ``detector = 1`` (the first APD's are ``0``).

Rules (``docs/file-format.md``):

- delay with the conditional filter: ``laser_period_ps − (t_sync_next − t_photon)``; without it:
  ``t_photon − t_sync_previous``; both folded into ``[0, laser_period_ps)``. A photon without the
  sync it needs (stream start or end) gets delay ``-1``.
- a photon belongs to exposure ``k`` when it arrives while ``camera_fire`` is high after its
  ``k``-th rising edge; the stored frame of that exposure is
  :attr:`~cryoscope.datafile.FrameTiming.exposure_to_frame` (photons outside every exposure, or in
  one whose frame was lost, get frame ``-1``).
- the waveplate angle θ and the moving flag come from
  :func:`cryoscope.datafile.stage_angle_at`, the one timing function of live, replay and analysis.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from cryoscope.datafile import (
    DEFAULT_TAG_CHUNK,
    EdgePairs,
    FrameTiming,
    Measurement,
    StageTiming,
    frame_timing,
    iter_tag_chunks,
    open_measurement,
    pair_edges,
    read_timing,
    stage_angle_at,
)

__all__ = [
    "PhotonBookkeeper",
    "PhotonChunk",
    "PhotonPasses",
    "PhotonSummary",
    "PhotonTable",
    "collect_photons",
    "iter_photons",
    "photon_table_from_tags",
]

log = logging.getLogger(__name__)

#: Photons that may wait for their sync tag at once (conditional filter); more are flushed.
_PENDING = 1024

# Indices into the carried state vector: last sync time, rising camera edges so far, whether the
# camera fire output is high.
_LAST_SYNC, _CAM_RISE, _CAM_HIGH, _N_PEND = range(4)
# Columns of the pending-photon buffer [_PENDING, 3]: arrival, exposure, detector.
_P_T, _P_EXPO, _P_DET = range(3)


@numba.njit(cache=True, nogil=True, inline="always")
def _emit_pending(n_pend, sync_t, period, pend, out_t, out_delay, out_expo, out_det,
                  n_out):  # pragma: no cover - compiled
    """Move the ``n_pend`` waiting photons to the output; ``sync_t`` is the sync tag that ends
    their wait (delay ``period − (sync_t − t)``), or −1: no sync, delay −1. Returns ``n_out``."""
    for j in range(n_pend):
        t = pend[j, _P_T]
        out_t[n_out] = t
        out_delay[n_out] = (period - (sync_t - t)) % period if sync_t >= 0 else -1
        out_expo[n_out] = pend[j, _P_EXPO]
        out_det[n_out] = pend[j, _P_DET]
        n_out += 1
    return n_out


@numba.njit(cache=True, nogil=True)
def _kernel(ts, ch, apd, apd2, sync, cam, stage, conditional, period, state, pend,
            out_t, out_delay, out_expo, out_det, edge_t, edge_kind,
            flush):  # pragma: no cover - compiled
    n_out = 0
    n_edge = 0
    last_sync = state[_LAST_SYNC]
    cam_rise = state[_CAM_RISE]
    cam_high = state[_CAM_HIGH]
    n_pend = state[_N_PEND]
    for i in range(ts.shape[0]):
        c = ch[i]
        t = ts[i]
        if c in (apd, apd2):
            expo = cam_rise - 1 if cam_high else -1
            det = 0 if c == apd else 1
            if conditional:
                if n_pend == pend.shape[0]:
                    n_out = _emit_pending(n_pend, -1, period, pend, out_t, out_delay,
                                          out_expo, out_det, n_out)
                    n_pend = 0
                pend[n_pend, _P_T] = t
                pend[n_pend, _P_EXPO] = expo
                pend[n_pend, _P_DET] = det
                n_pend += 1
            else:
                out_t[n_out] = t
                out_delay[n_out] = (t - last_sync) % period if last_sync >= 0 else -1
                out_expo[n_out] = expo
                out_det[n_out] = det
                n_out += 1
        elif c == sync:
            last_sync = t
            if n_pend > 0:
                n_out = _emit_pending(n_pend, t, period, pend, out_t, out_delay, out_expo,
                                      out_det, n_out)
                n_pend = 0
        elif c in (cam, -cam, stage, -stage):
            if c == cam:
                cam_rise += 1
                cam_high = 1
                edge_kind[n_edge] = 0
            elif c == -cam:
                cam_high = 0
                edge_kind[n_edge] = 1
            elif c == stage:
                edge_kind[n_edge] = 2
            else:
                edge_kind[n_edge] = 3
            edge_t[n_edge] = t
            n_edge += 1
    if flush:
        n_out = _emit_pending(n_pend, -1, period, pend, out_t, out_delay, out_expo, out_det,
                              n_out)
        n_pend = 0
    state[_LAST_SYNC] = last_sync
    state[_CAM_RISE] = cam_rise
    state[_CAM_HIGH] = cam_high
    state[_N_PEND] = n_pend
    return n_out, n_edge


@dataclass(frozen=True)
class PhotonChunk:
    """Photons of one chunk of tags, in time order, before the frame and angle lookup."""

    time_ps: np.ndarray  #: int64, tagger time (ps)
    delay_ps: np.ndarray  #: int64, delay after its own laser pulse (ps), -1 = unknown
    exposure: np.ndarray  #: int64, exposure (``camera_fire`` pair) it arrived in, -1 = none
    detector: np.ndarray  #: int8, 0 = APD (``apd``), 1 = second APD (``apd2``)


class PhotonBookkeeper:
    """Streaming photon bookkeeping: feed tag chunks in order, then :meth:`finish`.

    Parameters are the tagger input numbers (``/channels``) and the laser period (ps); ``apd2``
    is the second APD's input (None: one APD). With the conditional filter a click of either APD
    lets the next sync through. Camera and stage edges are collected (:attr:`exposures`,
    :attr:`moves`).
    """

    def __init__(self, apd: int, laser_sync: int, camera_fire: int, stage_motion: int,
                 conditional_filter: bool, laser_period_ps: int, apd2: int | None = None
                 ) -> None:
        self._channels = (apd, laser_sync, camera_fire, stage_motion)
        # Swabian inputs are numbered from 1: channel 0 never occurs in a stream.
        self._apd2 = 0 if apd2 is None else int(apd2)
        self._conditional = conditional_filter
        self._period = int(laser_period_ps)
        self._state = np.array([-1, 0, 0, 0], np.int64)
        self._pend = np.empty((_PENDING, 3), np.int64)
        self._edges: list[tuple[np.ndarray, np.ndarray]] = []
        self.tags_seen = 0

    @classmethod
    def for_measurement(cls, meas: Measurement) -> PhotonBookkeeper:
        return cls(meas.apd_channel, meas.sync_channel, meas.camera_channel, meas.stage_channel,
                   meas.conditional_filter, meas.laser_period_ps, meas.apd2_channel)

    def feed(self, timestamp_ps: np.ndarray, channel: np.ndarray, last: bool = False
             ) -> PhotonChunk:
        """Process the next block of tags; ``last=True`` flushes photons still waiting."""
        n = timestamp_ps.shape[0] + _PENDING
        out_t = np.empty(n, np.int64)
        out_delay = np.empty(n, np.int64)
        out_expo = np.empty(n, np.int64)
        out_det = np.empty(n, np.int8)
        edge_t = np.empty(timestamp_ps.shape[0], np.int64)
        edge_kind = np.empty(timestamp_ps.shape[0], np.int8)
        apd, sync, cam, stage = self._channels
        n_out, n_edge = _kernel(
            np.ascontiguousarray(timestamp_ps, np.int64), np.ascontiguousarray(channel, np.int32),
            apd, self._apd2, sync, cam, stage, self._conditional, self._period, self._state,
            self._pend, out_t, out_delay, out_expo, out_det, edge_t, edge_kind, last)
        if n_edge:
            self._edges.append((edge_t[:n_edge].copy(), edge_kind[:n_edge].copy()))
        self.tags_seen += timestamp_ps.shape[0]
        # views: the untouched rest of each output buffer is never paged in
        return PhotonChunk(out_t[:n_out], out_delay[:n_out], out_expo[:n_out], out_det[:n_out])

    def finish(self) -> PhotonChunk:
        """Flush the photons still waiting for a sync tag (the end of the stream)."""
        return self.feed(np.zeros(0, np.int64), np.zeros(0, np.int32), last=True)

    def _edges_of(self, kind: int) -> np.ndarray:
        if not self._edges:
            return np.zeros(0, np.int64)
        if len(self._edges) > 1:
            self._edges = [(np.concatenate([e[0] for e in self._edges]),
                            np.concatenate([e[1] for e in self._edges]))]
        t, k = self._edges[0]
        return t[k == kind]

    @property
    def exposures(self) -> EdgePairs:
        """The camera exposures seen so far."""
        return pair_edges(self._edges_of(0), self._edges_of(1))

    @property
    def moves(self) -> EdgePairs:
        """The waveplate moves seen so far."""
        return pair_edges(self._edges_of(2), self._edges_of(3))


@dataclass(frozen=True)
class PhotonTable:
    """APD photons with their bookkeeping, plus the frame and waveplate timing.

    With two APDs the photons of both are in one time-ordered table, told apart by
    :attr:`detector`.
    """

    time_ps: np.ndarray  #: int64, tagger time (ps)
    delay_ps: np.ndarray  #: int64, delay after its own laser pulse (ps), -1 = unknown
    frame: np.ndarray  #: int32, stored camera frame, -1 = between frames or a lost frame
    theta_deg: np.ndarray  #: float64, waveplate angle θ = stage − waveplate_zero (deg)
    moving: np.ndarray  #: bool, the stage was moving
    detector: np.ndarray  #: int8, 0 = APD (``apd``), 1 = second APD (``apd2``)
    frames: FrameTiming  #: timing of the stored frames with a complete exposure
    stage: StageTiming
    laser_period_ps: int
    tags: int  #: tags processed

    @property
    def n(self) -> int:
        """Number of photons."""
        return int(self.time_ps.shape[0])

    @property
    def from_apd2(self) -> np.ndarray:
        """Whether each photon was detected by the second APD (bool [photons])."""
        return self.detector == 1


@dataclass(frozen=True)
class PhotonSummary:
    """What the streaming analysis keeps of a file's photons: their numbers and the frame and
    waveplate timing (the photons themselves are not kept)."""

    n: int  #: photons (both APDs)
    n_apd2: int  #: of those, from the second APD
    frames: FrameTiming
    stage: StageTiming
    laser_period_ps: int
    n_paused: int = 0  #: of ``n``, recorded during the run's pauses


def _locate(chunk: PhotonChunk, frames: FrameTiming, stage: StageTiming, period: int,
            tags: int) -> PhotonTable:
    """Frame, θ and moving flag of a chunk's photons."""
    to_frame = frames.exposure_to_frame
    expo = chunk.exposure
    known = (expo >= 0) & (expo < to_frame.shape[0])
    frame = np.full(expo.shape, -1, np.int32)
    frame[known] = to_frame[expo[known]]
    theta, moving = stage_angle_at(chunk.time_ps, stage)
    return PhotonTable(chunk.time_ps, chunk.delay_ps, frame, theta, moving, chunk.detector,
                       frames, stage, period, tags)


def _concatenate(parts: list[PhotonTable], frames: FrameTiming, stage: StageTiming,
                 period: int, tags: int) -> PhotonTable:
    def cat(name: str, dtype: type) -> np.ndarray:
        arrays = [getattr(p, name) for p in parts]
        return np.concatenate(arrays) if arrays else np.zeros(0, dtype)

    return PhotonTable(cat("time_ps", np.int64), cat("delay_ps", np.int64),
                       cat("frame", np.int32), cat("theta_deg", np.float64),
                       cat("moving", np.bool_), cat("detector", np.int8), frames, stage,
                       period, tags)


def iter_photons(meas: Measurement, chunk_tags: int = DEFAULT_TAG_CHUNK,
                 timing: tuple[EdgePairs, StageTiming, FrameTiming] | None = None
                 ) -> Iterator[PhotonTable]:
    """The photons of a measurement file chunk by chunk (each photon exactly once, in time
    order), each chunk with its frames and angles; memory bounded by ``chunk_tags``."""
    _, stage, frames = timing if timing is not None else read_timing(meas, chunk_tags)
    book = PhotonBookkeeper.for_measurement(meas)
    period = meas.laser_period_ps
    for ts, ch in iter_tag_chunks(meas.path, chunk_tags):
        yield _locate(book.feed(ts, ch), frames, stage, period, book.tags_seen)
    yield _locate(book.finish(), frames, stage, period, book.tags_seen)


#: Booked photons kept in memory between the passes of one analysis (bytes; 128 MiB hold the
#: ~4.4 M photons of a 280 s run at 16 kcps). Larger files are read again for each pass.
PHOTON_CACHE_BYTES = 128 << 20


def _table_bytes(table: PhotonTable) -> int:
    return sum(a.nbytes for a in (table.time_ps, table.delay_ps, table.frame, table.theta_deg,
                                  table.moving, table.detector))


class PhotonPasses:
    """The photons of a measurement for several passes over them, each pass like
    :func:`iter_photons`: booked once and kept while they fit in ``cache_bytes``, read from the
    file and booked again for every pass otherwise (memory stays bounded)."""

    def __init__(self, meas: Measurement, chunk_tags: int = DEFAULT_TAG_CHUNK,
                 timing: tuple[EdgePairs, StageTiming, FrameTiming] | None = None,
                 cache_bytes: int = PHOTON_CACHE_BYTES) -> None:
        self._meas, self._chunk_tags, self._timing = meas, chunk_tags, timing
        self._budget = cache_bytes
        self._kept: list[PhotonTable] | None = None
        self.reads = 0  #: passes that read the file

    def __iter__(self) -> Iterator[PhotonTable]:
        if self._kept is not None:
            yield from self._kept
            return
        self.reads += 1
        kept: list[PhotonTable] | None = [] if self._budget > 0 else None
        size = 0
        for chunk in iter_photons(self._meas, self._chunk_tags, self._timing):
            if kept is not None:
                size += _table_bytes(chunk)
                if size <= self._budget:
                    kept.append(chunk)
                else:
                    kept = None
            yield chunk
        self._kept = kept


def photon_table_from_tags(timestamp_ps: np.ndarray, channel: np.ndarray, *, apd: int,
                           laser_sync: int, camera_fire: int, stage_motion: int,
                           conditional_filter: bool, laser_period_ps: int,
                           rest_deg: np.ndarray, chunk_tags: int = DEFAULT_TAG_CHUNK,
                           apd2: int | None = None,
                           exposure_index: np.ndarray | None = None) -> PhotonTable:
    """Photon table from in-memory tag arrays (``rest_deg`` from
    :func:`cryoscope.datafile.rest_angles`)."""
    book = PhotonBookkeeper(apd, laser_sync, camera_fire, stage_motion, conditional_filter,
                            laser_period_ps, apd2)
    chunks = [book.feed(timestamp_ps[i:i + chunk_tags], channel[i:i + chunk_tags])
              for i in range(0, timestamp_ps.shape[0], chunk_tags)]
    chunks.append(book.finish())
    stage = StageTiming(book.moves, np.asarray(rest_deg, float))
    frames = frame_timing(book.exposures, stage, exposure_index)
    parts = [_locate(c, frames, stage, laser_period_ps, book.tags_seen) for c in chunks]
    return _concatenate(parts, frames, stage, laser_period_ps, book.tags_seen)


def collect_photons(path: str | Path, chunk_tags: int = DEFAULT_TAG_CHUNK,
                    measurement: Measurement | None = None) -> PhotonTable:
    """All photons of a measurement file in one table (memory grows with the file: the
    streaming analysis uses :func:`iter_photons`)."""
    meas = measurement if measurement is not None else open_measurement(path)
    timing = read_timing(meas, chunk_tags)
    parts = list(iter_photons(meas, chunk_tags, timing))
    table = _concatenate(parts, timing[2], timing[1], meas.laser_period_ps,
                         parts[-1].tags if parts else 0)
    log.info("%d tags -> %d photons (%d from APD 2), %d frames", table.tags, table.n,
             int(np.count_nonzero(table.from_apd2)), table.frames.n)
    return table
