"""Live accumulation of a run's data for display: spectra, decay, intensity, polarization, FLID.

A :class:`LiveAccumulator` is a run listener: it takes the plan's :class:`FramesAcquired` and
:class:`TagsAcquired` events (on the acquisition thread) and keeps running sums, and any thread may
read consistent copies of them at any time (the GUI does, on a timer). Heavy work (the photon
bookkeeping of :mod:`cryoscope.analysis.photons`) happens outside the lock; readers only ever see
whole updates. :func:`replay_measurement` fills an accumulator from a measurement file, so a
finished measurement is browsed with the same views, plus the analysis results.

Per tag block the acquisition thread only sorts the photons out (the bookkeeping is stateful) and
queues them; binning them into the decay, the intensity trace and the FLID's per-bin sums is done
for many blocks at once, when a view reads (a display tick) or when
:data:`FOLD_PHOTONS` photons are waiting. No photon is kept beyond that: the memory of a run's
tag data is its histograms, whatever its length.

Decay, intensity trace and FLID count the photons the file analysis counts, by the same rules
(:mod:`cryoscope.analysis.selection`): those of the run window — from the exposure start of the
first stored frame to the exposure end of the last stored frame so far — with the run's pauses
(from its :class:`~cryoscope.acquisition.StateChanged` events live, from
:attr:`~cryoscope.datafile.Measurement.pauses_ps` in replay: the same intervals) and the time
tagger's overflows (from the stream's overflow events live,
:attr:`~cryoscope.datafile.Measurement.overflows_ps` in replay) left out. A photon later than the
last stored frame's exposure (or in an overflow still open) waits until a frame covers it, and one
after the last frame of the run is never counted: at any moment the views show what
``cryoscope analyze`` would count in the file written so far. Both APDs count; the second APD's
delays are merged with its offset as measured so far (:class:`~cryoscope.analysis.selection.
Apd2Offset`, :class:`~cryoscope.analysis.selection.RunDecay`). Each frame sits at its own
exposure (``exposure_index``), so frames after a pause keep their real times.

Every step is the analysis' own: photon bookkeeping with both APDs
(:class:`~cryoscope.analysis.photons.PhotonBookkeeper`), the photon selection and the APDs'
merge (:mod:`cryoscope.analysis.selection`), decay binning
(:func:`~cryoscope.analysis.lifetime.decay_histogram`), trace binning
(:func:`~cryoscope.analysis.trace.intensity_trace`, on the grid that starts at the run window's
start, as in the file analysis), background subtraction
(:func:`~cryoscope.analysis.spectra.subtract_background`), image bands
(:func:`~cryoscope.analysis.image.bin_bands`), frame timing
(:func:`cryoscope.datafile.frame_timing`), the FLID's per-bin sums
(:class:`~cryoscope.analysis.flid.FlidBins`) and the polarization fit; only the cosmic-ray removal,
which needs the frames after each one, is left to the file analysis. Live, replay and
``cryoscope analyze`` therefore agree on the same data: the same trace and decay counts, and the
FLID's photons per bin. The FLID's gate and background are placed from the live decay (the
analysis takes them from its decay fit), so its mean delays may differ a little. θ is the
waveplate angle relative to ``waveplate_zero_deg``; E[eV] = 1239.84193 / λ[nm]; spectra stay in ADU.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cryoscope.acquisition import FramesAcquired, RunEvent, RunState, StateChanged, TagsAcquired
from cryoscope.analysis.flid import Flid, FlidBins
from cryoscope.analysis.image import RowBand, bin_bands
from cryoscope.analysis.lifetime import DecayFit, DecayHistogram
from cryoscope.analysis.photons import PhotonBookkeeper
from cryoscope.analysis.polarization import PolarizationFit, fit_polarization
from cryoscope.analysis.report import MIN_DECAY_PHOTONS, fit_state_decay
from cryoscope.analysis.selection import (
    Apd2Offset,
    RunDecay,
    RunWindow,
    aligned_delays,
    run_window,
)
from cryoscope.analysis.spectra import energy_axis_ev, subtract_background
from cryoscope.analysis.trace import IntensityTrace, intensity_trace
from cryoscope.config import parse_config
from cryoscope.datafile import (
    OPEN_PS,
    Measurement,
    StageTiming,
    frame_timing,
    in_intervals,
    iter_frame_blocks,
    iter_tag_chunks,
    open_measurement,
    overflow_intervals,
    pair_edges,
    read_timing,
)
from drivers.interfaces import ReadMode, TagEventType, Track

log = logging.getLogger(__name__)

__all__ = [
    "FrameView",
    "LiveAccumulator",
    "LiveFlid",
    "PolarizationView",
    "Replay",
    "SpectraView",
    "SpectralTrace",
    "flat_background_per_bin",
    "replay_measurement",
    "warm_up",
]

#: Angles closer than this are the same waveplate position (deg).
ANGLE_RESOLUTION_DEG = 0.01
#: The run states after which no frame comes.
FINAL_STATES = frozenset({RunState.COMPLETE, RunState.ABORTED, RunState.FAILED})
#: The live FLID's flat background is the mean of the decay histogram over delays this long
#: before its peak and over the last tenth of the period (where the decay has died out).
FLID_BACKGROUND_MARGIN_NS = 1.0
#: The live FLID's gate (delays, ns): from this long after the decay's peak, this long (at most
#: the rest of the laser period).
FLID_GATE_AFTER_PEAK_NS = 1.0
FLID_GATE_NS = 300.0
#: The FLID's gate is placed (and fixed for the run) once the decay holds this many photons, so
#: that its peak is not a noise bin; until then the photons wait for it.
FLID_GATE_MIN_PHOTONS = 1000
#: Photons waiting to be binned are binned by the acquisition thread itself beyond this many (if
#: no view reads for long: a window shows only some views); waiting for the FLID's gate, they
#: are binned with the gate the decay then gives. Binning holds the lock the views read under:
#: 100 000 photons take ~15 ms (500 000 kept a window's spectrum waiting 70 ms).
FOLD_PHOTONS = 100_000
#: The stage is not needed to find the run window's frames (their exposures only).
_NO_STAGE = StageTiming(pair_edges([], []), np.zeros(1))
#: Overflow begin and end among a stream's events.
_OVERFLOW_EDGES = (TagEventType.OVERFLOW_BEGIN, TagEventType.OVERFLOW_END)


class _Rows:
    """A float/int array that grows along axis 0 (amortized doubling)."""

    def __init__(self, tail: tuple[int, ...], dtype: npt.DTypeLike, capacity: int = 64) -> None:
        self._buf = np.zeros((capacity, *tail), dtype)
        self.n = 0

    def ensure(self, n: int) -> None:
        """Make at least ``n`` rows exist (new ones are zero)."""
        if n > self._buf.shape[0]:
            new = np.zeros((max(n, 2 * self._buf.shape[0]), *self._buf.shape[1:]),
                           self._buf.dtype)
            new[: self.n] = self._buf[: self.n]
            self._buf = new
        self.n = max(self.n, n)

    def append(self, rows: npt.ArrayLike) -> None:
        data = np.asarray(rows, self._buf.dtype)
        start = self.n
        self.ensure(start + data.shape[0])
        self._buf[start: start + data.shape[0]] = data

    @property
    def buf(self) -> npt.NDArray[Any]:
        """The whole buffer (rows beyond :attr:`n` are zero); write through it."""
        return self._buf

    def copy(self) -> npt.NDArray[Any]:
        return self._buf[: self.n].copy()

    def written(self) -> npt.NDArray[Any]:
        """The rows written so far, without a copy: for append-only use, where they never
        change again (a later append that grows the buffer moves to a new one)."""
        return self._buf[: self.n]


@dataclass(frozen=True)
class _Photons:
    """Booked photons: arrival (tagger time, ps), delay (ps, −1 unknown), detector (0, 1)."""

    time_ps: npt.NDArray[np.int64]
    delay_ps: npt.NDArray[np.int64]
    detector: npt.NDArray[np.int8]

    def select(self, which: npt.NDArray[np.bool_]) -> _Photons:
        return _Photons(self.time_ps[which], self.delay_ps[which], self.detector[which])

    @staticmethod
    def concatenate(parts: Sequence[_Photons]) -> _Photons:
        if len(parts) == 1:
            return parts[0]
        return _Photons(np.concatenate([p.time_ps for p in parts]),
                        np.concatenate([p.delay_ps for p in parts]),
                        np.concatenate([p.detector for p in parts]))


@dataclass(frozen=True)
class FrameView:
    """The latest camera frame: ``[rows, columns]`` (image) or ``[tracks, pixels]`` (tracks)."""

    image: npt.NDArray[np.uint16]
    index: int
    mode: ReadMode
    track_names: tuple[str, ...]


@dataclass(frozen=True)
class SpectraView:
    """Summed V and H spectra, in sensor column order."""

    wavelength_nm: npt.NDArray[np.float64]
    energy_ev: npt.NDArray[np.float64]
    v: npt.NDArray[np.float64]  #: background-subtracted sum over frames (ADU)
    h: npt.NDArray[np.float64]
    frames: int
    #: Exposure start of each frame whose rising camera edge has arrived (tagger time since the
    #: first exposure's start, s) — the time axis of the spectral time trace.
    frame_start_s: npt.NDArray[np.float64]

    @property
    def total(self) -> npt.NDArray[np.float64]:
        return self.v + self.h

    def peak_ev(self) -> float:
        """Energy of the brightest column of V + H."""
        return float(self.energy_ev[int(np.argmax(self.total))])


@dataclass(frozen=True)
class SpectralTrace:
    """The merged (V + H) spectrum of every frame, in sensor column order."""

    wavelength_nm: npt.NDArray[np.float64]
    energy_ev: npt.NDArray[np.float64]
    image: npt.NDArray[np.float32]  #: [frames, pixels], V + H per frame (ADU)
    #: Exposure start of each frame whose rising camera edge has arrived (s, as in
    #: :attr:`SpectraView.frame_start_s`).
    frame_start_s: npt.NDArray[np.float64]


@dataclass(frozen=True)
class LiveFlid:
    """The live FLID (:class:`cryoscope.analysis.flid.FlidBins` of the run's photons so far,
    as :func:`cryoscope.analysis.flid.flid` makes it) and the gate and background it was
    computed with."""

    flid: Flid
    gate_start_ns: float  #: delay at which the gate starts (ns)
    gate_ns: float
    background_cps: float  #: flat background rate subtracted (counts/s)


@dataclass(frozen=True)
class PolarizationView:
    """V and H summed over a spectral region per waveplate angle, and the fit if there is one.

    ``in_progress`` marks the angle whose frames are still being taken (at most one, during a
    run: see :meth:`LiveAccumulator.polarization`); the others are final."""

    region_ev: tuple[float, float]
    theta_deg: npt.NDArray[np.float64]
    v: npt.NDArray[np.float64]
    h: npt.NDArray[np.float64]
    in_progress: npt.NDArray[np.bool_]
    frames_used: int
    fit: PolarizationFit | None
    message: str = ""

    @property
    def ratio(self) -> npt.NDArray[np.float64]:
        """V / (V + H) per angle, in [0, 1]; NaN where the region holds no signal: V + H
        (background-subtracted, so noise may make either negative) at most a twentieth of its
        median over the angles. (Clipping V and H at zero first made an angle of noise a point
        at exactly 0 or 1.)"""
        v, h = np.asarray(self.v, np.float64), np.asarray(self.h, np.float64)
        total = v + h
        positive = total[total > 0]
        floor = 0.05 * float(np.median(positive)) if positive.size else np.inf
        ratio = np.divide(v, total, out=np.full(v.shape, np.nan), where=total > floor)
        return np.clip(ratio, 0.0, 1.0)


class LiveAccumulator:
    """Running sums of one run (see the module docstring); feed it with :meth:`feed`.

    ``image_tracks``: in image readout, the row bands binned into the V and H spectra (the
    configuration's tracks). ``trace_bin_s``: intensity-trace and FLID bin (the decay's bin
    is the analysis', :data:`~cryoscope.analysis.selection.DECAY_BIN_PS`).
    ``flid_gate_after_peak_ns``, ``flid_gate_ns``: the FLID's gate (see
    :data:`FLID_GATE_NS`).
    """

    def __init__(self, *, image_tracks: Sequence[Track] = (), trace_bin_s: float = 0.01,
                 flid_gate_after_peak_ns: float = FLID_GATE_AFTER_PEAK_NS,
                 flid_gate_ns: float = FLID_GATE_NS) -> None:
        self.image_tracks = tuple(image_tracks)
        self.trace_bin_s = trace_bin_s
        self.flid_gate_after_peak_ns = flid_gate_after_peak_ns
        self.flid_gate_ns = flid_gate_ns
        self._lock = threading.Lock()
        self.version = 0
        # frames
        self._frame: FrameView | None = None
        self._wavelength = np.zeros(0)
        self._v_sum = np.zeros(0)
        self._h_sum = np.zeros(0)
        self._frame_v: _Rows | None = None
        self._frame_h: _Rows | None = None
        self._theta = _Rows((), np.float64)
        self._moving = _Rows((), np.bool_)
        self._exposure_of_frame = _Rows((), np.int64)
        self._frames = 0
        #: a run is feeding this accumulator (between its first state and its final one)
        self._running = False
        #: regions (eV) whose polarization fit was reported as not determining p and φ
        self._undetermined_logged: set[tuple[float, float]] = set()
        # tags
        self._book: PhotonBookkeeper | None = None
        self._period_ps = 0
        self._window: RunWindow | None = None  # the run window so far (selection.run_window)
        self._decay: RunDecay | None = None
        self._apd2: Apd2Offset | None = None  # with a second APD: its offset, from all photons
        self._trace = _Rows((), np.int64)
        # photons sorted out but not counted yet: (arrival times, delays, detectors) per block
        self._waiting: list[_Photons] = []
        self._waiting_n = 0
        self._held_n = 0  # of those, held by the last count: later than the run window
        # photons of the run window waiting for the FLID's gate, and its bins
        self._ungated: list[_Photons] = []
        self._ungated_n = 0
        self._flid_bins: FlidBins | None = None
        self._flid_offset_ps: float | None = None  # the second APD's offset in the FLID
        self._last_ps = 0
        self._photons = 0
        self._camera_channel = 0
        self._exposure_start_ps = _Rows((), np.int64)
        self._exposure_stop_ps = _Rows((), np.int64)
        # the run's pauses, [start, stop) in tagger time as the file records them
        # (Measurement.pauses_ps): their photons are left out of decay, trace and FLID
        self._pauses = np.zeros((0, 2), np.int64)
        # the stream's overflow begin/end events (type, time) and their intervals
        # (Measurement.overflows_ps; one still open: to OPEN_PS until the stream ends)
        self._overflow_events = np.zeros((2, 0), np.int64)
        self._overflows = np.zeros((0, 2), np.int64)
        self._last_tag_ps = -1  # the last ordinary tag fed

    # -- feeding (one producer thread) --------------------------------------------------------

    def feed(self, event: RunEvent) -> None:
        """A run listener: take frames, tags and the run's state, ignore the rest."""
        if isinstance(event, FramesAcquired):
            self.add_frames(event.block.frames, event.block.first_index, event.wavelength_nm,
                            event.track_names, event.waveplate_deg, event.stage_moving,
                            event.exposure_index)
        elif isinstance(event, TagsAcquired):
            types = event.block.event_types
            normal = types == TagEventType.TIME_TAG
            if not normal.all():
                edges = np.isin(types, _OVERFLOW_EDGES)
                self.add_overflow_events(types[edges], event.block.timestamps_ps[edges])
            self.add_tags(event.block.timestamps_ps[normal], event.block.channels[normal],
                          event.channels, event.laser_period_ps, event.conditional_filter)
        elif isinstance(event, StateChanged):
            self._follow_state(event.state)

    def _follow_state(self, state: RunState) -> None:
        """Whether the run goes on (until its final state: then no angle is in progress), and
        its pauses. A pause holds the tags after the last one before it, through the last one
        before the resume: the engine publishes a block's tags before the state that follows
        them, so these are the bounds the file records (``Measurement.pauses_ps``)."""
        with self._lock:
            self._running = state not in FINAL_STATES
            is_open = self._pauses.shape[0] > 0 and self._pauses[-1, 1] == OPEN_PS
            if state is RunState.PAUSED and not is_open:
                self._pauses = np.vstack([self._pauses, [[self._last_tag_ps + 1, OPEN_PS]]])
            elif state is RunState.RUNNING and is_open:
                self._pauses[-1, 1] = self._last_tag_ps + 1
            self.version += 1

    def add_overflow_events(self, event_type: npt.ArrayLike, timestamp_ps: npt.ArrayLike
                            ) -> None:
        """Overflow begin and end events of the stream (Swabian ``TagType``), in stream order,
        before the tags that follow them."""
        events = np.array([np.asarray(event_type, np.int64), np.asarray(timestamp_ps, np.int64)])
        with self._lock:
            self._overflow_events = np.concatenate([self._overflow_events, events], axis=1)
            types, times = self._overflow_events
            self._overflows = overflow_intervals(types, times, None)
            self.version += 1

    def set_gaps(self, pauses_ps: npt.ArrayLike, overflows_ps: npt.ArrayLike) -> None:
        """The pauses and tagger overflows of a measurement file (``[n, 2]`` each,
        :attr:`Measurement.pauses_ps`, :attr:`Measurement.overflows_ps`), set before its tags
        are added."""
        with self._lock:
            self._pauses = np.asarray(pauses_ps, np.int64).reshape(-1, 2).copy()
            self._overflows = np.asarray(overflows_ps, np.int64).reshape(-1, 2).copy()

    def _tracks_of(self, frames: npt.NDArray[np.generic], track_names: Sequence[str]
                   ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """V and H spectra ``[n, pixels]`` of a block of frames, background-subtracted (full
        frames are read in their bands only, never converted whole)."""
        if track_names:
            names = [n.upper() for n in track_names]
            iv = names.index("V") if "V" in names else 0
            ih = names.index("H") if "H" in names else min(1, len(names) - 1)
            v = np.asarray(frames[:, iv, :], np.float64)
            h = np.asarray(frames[:, ih, :], np.float64) if ih != iv else np.zeros_like(v)
        elif len(self.image_tracks) >= 2:
            bands = [RowBand(t.name, t.row_start, t.row_stop) for t in self.image_tracks[:2]]
            both = bin_bands(frames, bands[0], bands[1])
            v, h = both[:, 0, :], both[:, 1, :]
        else:
            v = frames.sum(axis=1, dtype=np.float64)
            h = np.zeros_like(v)
        return subtract_background(v), subtract_background(h)

    def add_frames(self, frames: npt.NDArray[np.uint16], first_index: int,
                   wavelength_nm: npt.NDArray[np.float64], track_names: Sequence[str],
                   theta_deg: float | npt.ArrayLike, moving: bool | npt.ArrayLike,
                   exposure_index: npt.ArrayLike | None = None) -> None:
        """Frames ``[n, tracks, pixels]`` or ``[n, rows, columns]`` exposed at ``theta_deg``;
        ``exposure_index``: the camera exposure of each (None: frame ``k`` is exposure ``k``)."""
        n = frames.shape[0]
        if n == 0:
            return
        exposure = (np.arange(first_index, first_index + n, dtype=np.int64)
                    if exposure_index is None else np.asarray(exposure_index, np.int64))
        v, h = self._tracks_of(frames, track_names)
        theta = np.broadcast_to(np.asarray(theta_deg, np.float64), (n,))
        still = np.broadcast_to(np.asarray(moving, np.bool_), (n,))
        mode = ReadMode.TRACKS if track_names else ReadMode.IMAGE
        latest = FrameView(np.array(frames[-1]), first_index + n - 1, mode, tuple(track_names))
        with self._lock:
            if self._frame_v is None or self._frame_v.buf.shape[1] != v.shape[1]:
                pixels = v.shape[1]
                self._frame_v = _Rows((pixels,), np.float32)
                self._frame_h = _Rows((pixels,), np.float32)
                self._v_sum, self._h_sum = np.zeros(pixels), np.zeros(pixels)
            assert self._frame_h is not None
            self._wavelength = np.asarray(wavelength_nm, np.float64)
            self._v_sum += v.sum(axis=0)
            self._h_sum += h.sum(axis=0)
            self._frame_v.append(v)
            self._frame_h.append(h)
            self._theta.append(theta)
            self._moving.append(still)
            self._exposure_of_frame.append(exposure)
            self._frame = latest
            self._frames += n
            self.version += 1

    def add_tags(self, timestamps_ps: npt.NDArray[np.int64], channels: npt.NDArray[np.int32],
                 channel_map: Mapping[str, int], laser_period_ps: int,
                 conditional_filter: bool, last: bool = False) -> None:
        """Ordinary tags (event type 0) in stream order; ``last``: the stream has ended (photons
        still waiting for their sync are flushed, an overflow still open ends at the last
        tag)."""
        if self._book is None:
            self._book = PhotonBookkeeper(channel_map["apd"], channel_map["laser_sync"],
                                          channel_map["camera_fire"],
                                          channel_map["stage_motion"], conditional_filter,
                                          laser_period_ps, channel_map.get("apd2"))
            self._period_ps = int(laser_period_ps)
            two_apds = channel_map.get("apd2") is not None
            self._decay = RunDecay(self._period_ps, two_apds)
            self._apd2 = Apd2Offset(self._period_ps) if two_apds else None
            self._camera_channel = int(channel_map["camera_fire"])
        if timestamps_ps.shape[0] == 0 and not last:
            return
        if timestamps_ps.shape[0]:
            self._last_tag_ps = int(timestamps_ps[-1])
        chunk = self._book.feed(timestamps_ps, channels, last=last)
        rising = timestamps_ps[channels == self._camera_channel]
        falling = timestamps_ps[channels == -self._camera_channel]
        with self._lock:
            if rising.shape[0] or falling.shape[0]:
                self._exposure_start_ps.append(rising)
                self._exposure_stop_ps.append(falling)
            if last and self._overflow_events.shape[1]:
                types, times = self._overflow_events
                self._overflows = overflow_intervals(types, times, self._last_tag_ps)
            if chunk.time_ps.shape[0]:
                if self._apd2 is not None:
                    self._apd2.add(chunk.delay_ps, chunk.detector)
                self._waiting.append(_Photons(chunk.time_ps, chunk.delay_ps, chunk.detector))
                self._waiting_n += chunk.time_ps.shape[0]
                self._photons += int(chunk.time_ps.shape[0])
            self.version += 1
            if last or self._waiting_n - self._held_n >= FOLD_PHOTONS \
                    or self._ungated_n >= FOLD_PHOTONS:
                self._fold()
            if last:  # photons later than the last frame's exposure: none ever counts
                self._waiting, self._waiting_n, self._held_n = [], 0, 0

    def _run_window(self) -> RunWindow | None:
        """The run window of the frames and tags so far (under the lock)."""
        exposures = pair_edges(self._exposure_start_ps.written(),
                               self._exposure_stop_ps.written())
        frames = frame_timing(exposures, _NO_STAGE, self._exposure_of_frame.written())
        return run_window(frames, self._pauses, self._overflows)

    def _apd2_offset_ps(self) -> float | None:
        return None if self._apd2 is None else self._apd2.offset_ps()

    def _fold(self) -> None:
        """Count the waiting photons the run window holds into the decay, the intensity trace
        and the FLID's sums (under the lock), by the analysis' own functions; those after the
        window's end (or in an overflow still open) wait on."""
        window = self._window = self._run_window()
        if window is None:  # no stored frame yet
            return
        self._trace.ensure(window.trace_bins(self.trace_bin_s))
        if self._waiting:
            waiting = _Photons.concatenate(self._waiting)
            t = waiting.time_ps
            hold = t >= window.stop_ps
            open_overflow = self._overflows[:, 1] == OPEN_PS
            if open_overflow.any():
                hold |= t >= self._overflows[open_overflow, 0].min()
            # a pause's photons never count, even while it lasts
            hold &= ~in_intervals(t, self._pauses)
            self._waiting = [waiting.select(hold)] if hold.any() else []
            self._waiting_n = self._held_n = int(np.count_nonzero(hold))
            run = waiting.select(~hold & window.contains(t))
            self._decay_sums().add(run.delay_ps, run.detector)
            if run.time_ps.size:
                trace = intensity_trace(run.time_ps, self.trace_bin_s, window.start_ps,
                                        window.stop_ps).counts
                self._trace.buf[: trace.shape[0]] += trace
                self._last_ps = max(self._last_ps, int(run.time_ps.max()))
                self._ungated.append(run)
                self._ungated_n += run.time_ps.shape[0]
        if not self._ungated:
            return
        if self._flid_bins is None:
            if self._decay_sums().photons < FLID_GATE_MIN_PHOTONS \
                    and self._ungated_n < FOLD_PHOTONS:
                return  # the decay's peak is not known well enough to place the gate yet
            self._flid_offset_ps = self._apd2_offset_ps()
            start, length = self._flid_gate(self._decay_sums().histogram(self._flid_offset_ps))
            # its time bins are the intensity trace's: from the run window's start, as in the
            # file analysis
            self._flid_bins = FlidBins(window.start_ps, start, length, self.trace_bin_s)
        for p in self._ungated:
            self._flid_bins.add(p.time_ps, aligned_delays(p.delay_ps, p.detector,
                                                          self._period_ps, self._flid_offset_ps))
        self._ungated, self._ungated_n = [], 0

    def _decay_sums(self) -> RunDecay:
        assert self._decay is not None  # tags came
        return self._decay

    def _flid_gate(self, decay: DecayHistogram) -> tuple[float, float]:
        """The FLID's gate (start, length; ns) from the decay so far."""
        period_ns = self._period_ps / 1000.0
        peak_ns = float(decay.centers_ns[int(np.argmax(decay.counts))])
        start = peak_ns + self.flid_gate_after_peak_ns
        return start, min(self.flid_gate_ns, max(period_ns - start, 1e-3))

    def finish_tags(self) -> None:
        """The stream has ended (end of a run or a file, all frames given): flush photons
        still waiting for their sync tag, close an overflow still open, count what the frames
        cover and drop the photons after them."""
        if self._book is not None:
            self.add_tags(np.zeros(0, np.int64), np.zeros(0, np.int32), {}, self._period_ps,
                          False, last=True)

    # -- reading (any thread) -----------------------------------------------------------------

    @property
    def photons(self) -> int:
        return self._photons

    def latest_frame(self) -> FrameView | None:
        with self._lock:
            return self._frame

    def _frame_start_s(self) -> npt.NDArray[np.float64]:
        """Exposure starts of the leading frames whose rising edge has arrived (s since the
        first frame's exposure start, the run window's start), each frame at its own exposure
        (a pause or a lost frame leaves an exposure without a frame); under the lock."""
        exposure = self._exposure_of_frame.written()
        edges = self._exposure_start_ps.n
        count = int(np.searchsorted(exposure, edges, side="left"))
        starts = self._exposure_start_ps.buf[exposure[:count]]
        return (starts - (starts[0] if count else 0)) * 1e-12

    def spectra(self) -> SpectraView | None:
        with self._lock:
            if self._frame_v is None:
                return None
            return SpectraView(self._wavelength.copy(), energy_axis_ev(self._wavelength),
                               self._v_sum.copy(), self._h_sum.copy(), self._frames,
                               self._frame_start_s())

    def spectral_trace(self) -> SpectralTrace | None:
        """V + H of every frame so far (a new array: its size grows with the run)."""
        with self._lock:
            if self._frame_v is None or self._frame_h is None:
                return None
            v, h = self._frame_v.written(), self._frame_h.written()
            wavelength, start_s = self._wavelength.copy(), self._frame_start_s()
        return SpectralTrace(wavelength, energy_axis_ev(wavelength), v + h, start_s)

    def decay(self) -> DecayHistogram | None:
        """The decay of the run window's photons, both APDs merged (the second APD's offset as
        measured so far)."""
        with self._lock:
            if self._decay is None:
                return None
            self._fold()
            return self._decay.histogram(self._apd2_offset_ps())

    def intensity_trace(self) -> IntensityTrace | None:
        """Photons per bin of the run window so far; ``start_s`` from the window's start."""
        with self._lock:
            self._fold()
            if self._window is None or self._trace.n == 0:
                return None
            counts = self._trace.copy()
        start = np.arange(counts.shape[0]) * self.trace_bin_s  # s since the window's start
        return IntensityTrace(start_s=start, counts=counts.astype(np.int64),
                              bin_s=self.trace_bin_s)

    def polarization(self, lo_ev: float, hi_ev: float, min_angles: int = 4
                     ) -> PolarizationView:
        """V and H in ``[lo_ev, hi_ev]`` per waveplate angle (frames with the stage still), fitted
        by :func:`~cryoscope.analysis.polarization.fit_polarization`.

        The angle in progress comes from the same copy as the sums: during a run (from its first
        state to its final one), the newest frame's angle if the stage stood still during it —
        more frames of it come until one with the stage moving, or the run's end. A replayed
        file, a finished run and a run between two angles have none. A fit that does not
        determine p and φ (on the boundary p = 1, degenerate data) is logged once per region."""
        region = (min(lo_ev, hi_ev), max(lo_ev, hi_ev))
        empty = np.zeros(0)
        none = np.zeros(0, np.bool_)
        with self._lock:
            if self._frame_v is None or self._frame_h is None:
                return PolarizationView(region, empty, empty, empty, none, 0, None,
                                        "no frames yet")
            energy = energy_axis_ev(self._wavelength)
            cols = (energy >= region[0]) & (energy <= region[1])
            n = self._frame_v.n
            v = self._frame_v.buf[:n, cols].sum(axis=1, dtype=np.float64)
            h = self._frame_h.buf[:n, cols].sum(axis=1, dtype=np.float64)
            theta = self._theta.copy()
            moving = self._moving.copy()
            running = self._running
        if not cols.any():
            return PolarizationView(region, empty, empty, empty, none, 0, None,
                                    "the region holds no pixel")
        use = ~moving & np.isfinite(theta)
        key = np.round(theta[use] / ANGLE_RESOLUTION_DEG).astype(np.int64)
        angles, inverse = np.unique(key, return_inverse=True)
        v_sum = np.bincount(inverse, weights=v[use], minlength=angles.shape[0]).astype(float)
        h_sum = np.bincount(inverse, weights=h[use], minlength=angles.shape[0]).astype(float)
        theta_sum = np.bincount(inverse, weights=theta[use], minlength=angles.shape[0])
        frames_per = np.bincount(inverse, minlength=angles.shape[0])
        angle_deg = theta_sum / np.maximum(frames_per, 1)
        in_progress = np.zeros(angles.shape[0], np.bool_)
        if running and use[-1]:  # the newest frame was taken with the stage still
            in_progress = angles == key[-1]
        fit, message = None, ""
        if angles.shape[0] < min_angles:
            message = f"{angles.shape[0]} of {min_angles} waveplate angles needed for a fit"
        else:
            try:
                fit = fit_polarization(np.clip(v_sum, 0, None), np.clip(h_sum, 0, None),
                                       angle_deg)
            except ValueError as exc:
                message = str(exc)
        if fit is not None and not fit.determined:
            with self._lock:
                first = region not in self._undetermined_logged
                self._undetermined_logged.add(region)
            if first:
                log.warning("the polarization fit of %.4f–%.4f eV does not determine p and φ: "
                            "%s", *region, fit.problem)
        return PolarizationView(region, angle_deg, v_sum, h_sum, in_progress, int(use.sum()),
                                fit, message)

    def flid(self, delay_bins: int = 50, count_bins: int | None = None) -> LiveFlid | None:
        """FLID of the photons so far, as the file analysis' :func:`~cryoscope.analysis.flid.flid`
        makes it (counts per trace bin against the background-corrected mean delay in a gate),
        from per-bin sums kept up to date block by block.

        The gate starts ``flid_gate_after_peak_ns`` after the decay's peak and lasts
        ``flid_gate_ns`` (at most the rest of the period); it is placed once the decay holds
        :data:`FLID_GATE_MIN_PHOTONS` photons (None until then). The flat background rate is
        estimated from the decay histogram (:func:`flat_background_per_bin`); the file analysis
        takes it from a decay fit, too slow to repeat live.
        """
        with self._lock:
            self._fold()
            bins = self._flid_bins
            if bins is None:
                return None
            duration_s = (self._last_ps - bins.t0_ps) * 1e-12
            decay = self._decay_sums().histogram(self._flid_offset_ps).counts
            if decay.sum() == 0 or duration_s <= 0:
                return None
            period_ns = self._period_ps / 1000.0
            peak_ns = (int(np.argmax(decay)) + 0.5) * period_ns / decay.shape[0]
            background_cps = flat_background_per_bin(decay, peak_ns, period_ns) \
                * decay.shape[0] / duration_s
            result = bins.flid(background_cps=background_cps, period_ps=self._period_ps,
                               delay_bins=delay_bins, count_bins=count_bins)
        return LiveFlid(result, bins.gate_start_ns, bins.gate_ns, background_cps)


def flat_background_per_bin(decay: npt.NDArray[np.int64], peak_ns: float, period_ns: float
                            ) -> float:
    """Mean counts per bin of a decay histogram where only the flat background is left: more
    than :data:`FLID_BACKGROUND_MARGIN_NS` before the peak and in the last tenth of the period."""
    centers = (np.arange(decay.shape[0]) + 0.5) * period_ns / decay.shape[0]
    flat = (centers < peak_ns - FLID_BACKGROUND_MARGIN_NS) | (centers >= 0.9 * period_ns)
    return float(decay[flat].mean()) if flat.any() else 0.0


def warm_up() -> None:
    """Load the compiled photon-bookkeeping kernel now: its first call takes ~0.1 s (holding the
    GIL), better spent before a run than during it."""
    book = PhotonBookkeeper(1, 2, 3, 4, True, 1_000_000)
    book.feed(np.array([10, 20], np.int64), np.array([1, 2], np.int32), last=True)


# ---------------------------------------------------------------------------------------------
# Replay of a measurement file


@dataclass(frozen=True)
class Replay:
    """A measurement file in an accumulator, with the file analysis' results."""

    measurement: Measurement
    live: LiveAccumulator
    status: str
    error: str
    decay_fit: DecayFit | None
    decay_fit_message: str = ""


def _image_tracks(meas: Measurement) -> tuple[Track, ...]:
    if meas.readout != "image" or not meas.config_toml:
        return ()
    config = parse_config(meas.config_toml, "the file")
    return tuple(Track(t.name, t.row_start, t.row_stop) for t in config.camera.tracks)


def replay_measurement(path: str | Path, *, chunk_tags: int = 2_000_000, frame_block: int = 64,
                       progress: Callable[[float], None] | None = None) -> Replay:
    """Read a measurement file into a :class:`LiveAccumulator` and fit its decay as the file
    analysis fits the decay of the whole run
    (:func:`~cryoscope.analysis.report.fit_state_decay`).

    The frames are read first, so that the tags' photons are counted as they are read (the
    run window is known). Raises :class:`cryoscope.datafile.MeasurementError` for a file that is
    not a measurement. ``progress(fraction)`` is called as the file is read.
    """
    meas = open_measurement(path)
    live = LiveAccumulator(image_tracks=_image_tracks(meas))
    live.set_gaps(meas.pauses_ps, meas.overflows_ps)
    timing = read_timing(meas, chunk_tags)[2]
    names = () if meas.readout == "image" else meas.track_names
    theta = np.full(meas.n_frames, np.nan)
    moving = np.ones(meas.n_frames, np.bool_)
    theta[:timing.n], moving[:timing.n] = timing.theta_deg, timing.moving
    exposure = (np.arange(meas.n_frames, dtype=np.int64) if meas.exposure_index is None
                else np.asarray(meas.exposure_index, np.int64))
    for start, frames in iter_frame_blocks(path, frame_block):
        stop = start + frames.shape[0]
        live.add_frames(frames, start, meas.wavelength_nm, names, theta[start:stop],
                        moving[start:stop], exposure[start:stop])
        if progress is not None:
            progress(0.5 * stop / max(meas.n_frames, 1))
    channel_map = {"apd": meas.apd_channel, "laser_sync": meas.sync_channel,
                   "camera_fire": meas.camera_channel, "stage_motion": meas.stage_channel}
    if meas.apd2_channel is not None:
        channel_map["apd2"] = meas.apd2_channel
    done = 0
    for timestamps, channels in iter_tag_chunks(path, chunk_tags):
        live.add_tags(timestamps, channels, channel_map, meas.laser_period_ps,
                      meas.conditional_filter)
        done += timestamps.shape[0]
        if progress is not None:
            progress(0.5 + 0.5 * done / max(meas.n_tags, 1))
    live.finish_tags()
    fit, message = None, ""
    hist = live.decay()
    if hist is None or hist.counts.sum() < MIN_DECAY_PHOTONS:
        message = "too few photons for a decay fit"
    else:
        try:
            fit = fit_state_decay(hist)
        except (ValueError, RuntimeError, np.linalg.LinAlgError) as exc:
            message = f"decay fit failed: {exc}"
        else:
            message = "" if fit is not None else "the decay is background only"
    return Replay(meas, live, meas.status, meas.error, fit, message)
