"""Reading a measurement file (``docs/file-format.md``): the one reader.

The analysis, the live views' replay, ``cryoscope info`` and the tests read files through this
module: :func:`open_h5` opens one (finished, being written, or left by a killed writer),
:func:`open_measurement` reads its metadata, :func:`iter_tag_chunks` and :func:`iter_frame_blocks`
stream the bulk data in bounded memory, and :func:`read_timing` gives the frame and waveplate
timing (:mod:`cryoscope.datafile.timing`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt

from cryoscope.datafile.schema import FORMAT
from cryoscope.datafile.superblock import SuperblockError, read_superblock
from cryoscope.datafile.timing import (
    EdgePairs,
    FrameTiming,
    StageTiming,
    frame_timing,
    overflow_intervals,
    pair_edges,
    rest_angles,
)
from drivers.interfaces import TagEventType

__all__ = [
    "DEFAULT_TAG_CHUNK",
    "Measurement",
    "MeasurementError",
    "RunEvent",
    "SimulationTruth",
    "check_complete",
    "iter_frame_blocks",
    "iter_tag_chunks",
    "open_h5",
    "open_measurement",
    "read_frames",
    "read_timing",
]

log = logging.getLogger(__name__)

#: Tags read per chunk: 1 M tags = 12 MB of timestamps and channels (the analysis' working
#: memory per chunk is a few times that).
DEFAULT_TAG_CHUNK = 1_000_000


class MeasurementError(ValueError):
    """A file is missing, unreadable or not a cryoscope measurement. ``str()`` is one line."""


def open_h5(path: str | Path) -> h5py.File:
    """Open a measurement file for reading.

    A finished file opens plainly. A file still being written, or left behind by a writer that
    was killed, carries HDF5's "open for writing" mark and opens in SWMR read mode. A damaged
    file fails at once with :class:`MeasurementError` (one line): a file shorter than its
    superblock says is refused before HDF5 reads it (in SWMR mode HDF5 would retry its reads for
    many minutes instead of failing)."""
    file = Path(path)
    if not file.is_file():
        raise MeasurementError(f"file not found: {file}")
    check_complete(file)
    try:
        return h5py.File(file, "r", locking=False)
    except OSError as plain:
        if "already open for write" not in str(plain):
            raise MeasurementError(f"not an HDF5 file: {file} ({_first_line(plain)})"
                                   ) from None
    try:
        return h5py.File(file, "r", libver="latest", swmr=True, locking=False)
    except OSError as exc:
        raise MeasurementError(f"damaged file: {file} ({_first_line(exc)})") from None


def check_complete(path: str | Path) -> None:
    """Refuse a file shorter than the end its HDF5 superblock records (a truncated copy or a
    disk that filled up), or without a superblock, with a one-line :class:`MeasurementError`."""
    file = Path(path)
    try:
        block = read_superblock(file)
    except SuperblockError as exc:
        raise MeasurementError(f"not an HDF5 file: {file} ({exc})") from None
    except OSError as exc:
        raise MeasurementError(f"cannot read {file}: {exc.strerror}") from None
    size = file.stat().st_size
    if block.file_end > size:
        raise MeasurementError(f"damaged file: {file} is truncated ({size} of "
                               f"{block.file_end} bytes)")


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


@dataclass(frozen=True)
class SimulationTruth:
    """Ground truth of a simulated file (``/simulation``): per-frame state and ZPL per center,
    and every other dataset of the group by name in :attr:`extra`."""

    frame_state: np.ndarray  #: int8 [frames, centers]: 0 neutral, 1 charged, 2 dark
    frame_zpl_ev: np.ndarray  #: float64 [frames, centers] (eV)
    sample: dict[str, Any]  #: the simulated sample's parameters (``sample_json``)
    optics: dict[str, Any]  #: the simulated optics (``optics_json``)
    extra: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class RunEvent:
    """An event of the run recorded in ``/events`` (pause, resume, lost frame, interlock...)."""

    kind: str
    time_s: float  #: run clock (s)
    tagger_ps: int  #: time-tag stream time when it happened (−1: unknown)
    message: str


@dataclass(frozen=True)
class Measurement:
    """Metadata of one measurement file, everything but the bulk arrays."""

    path: Path
    status: str
    n_tags: int
    apd_channel: int
    sync_channel: int
    camera_channel: int
    stage_channel: int
    conditional_filter: bool
    laser_period_ps: int
    n_frames: int
    track_names: tuple[str, ...]
    exposure_s: float
    em_gain: float
    wavelength_nm: np.ndarray  #: float64 [pixels]
    waveplate_zero_deg: float
    start_angle_deg: float
    reached_deg: np.ndarray  #: float64 [moves], stage angle after each move (deg)
    duration_s: float
    truth: SimulationTruth | None
    readout: str = "tracks"  #: camera readout: ``tracks`` ([frames, tracks, pixels]) or ``image``
    apd2_channel: int | None = None  #: the second APD's input (``/channels`` ``apd2``), if any
    config_toml: str = ""  #: the configuration the file was written with (root ``config_toml``)
    #: shape of one camera frame: ``(tracks, pixels)`` or ``(rows, columns)`` (image readout)
    frame_shape: tuple[int, ...] = ()
    plan: dict[str, Any] = field(default_factory=dict)  #: the plan's name and parameters
    error: str = ""
    target_deg: np.ndarray = field(default_factory=lambda: np.zeros(0))  #: [moves] (deg)
    #: exposure each stored frame came from (None: frame k is exposure k, older files)
    exposure_index: np.ndarray | None = None
    lost_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    events: tuple[RunEvent, ...] = ()
    #: what was measured (``/measurement`` attributes: sample, sample_type, particle, ...)
    metadata: dict[str, str] = field(default_factory=dict)
    #: ``[n, 2]`` tagger times (ps) of each time-tagger overflow, from its begin to its end
    #: event (one still open at the end of the stream: to the last tag); tags in them are lost
    overflows_ps: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    #: tags the time tagger missed in its overflows, per input (``/tagger`` missed-events events)
    missed_events: dict[int, int] = field(default_factory=dict)

    @property
    def missed_apd(self) -> int:
        """APD clicks the time tagger missed in its overflows (both APDs)."""
        return sum(n for ch, n in self.missed_events.items()
                   if ch in (self.apd_channel, self.apd2_channel))

    def count_rate_cps(self, photons_outside_pauses: int, duration_s: float | None = None
                       ) -> float:
        """The run's mean APD count rate (counts/s): the photons recorded outside the pauses
        (:attr:`pauses_ps`) plus the clicks missed in tagger overflows, over ``duration_s``
        (default :attr:`duration_s`, the run's time with the pauses left out). The photons of a
        pause stay in the file but count neither here nor in the time; nan without a duration.
        """
        duration = self.duration_s if duration_s is None else duration_s
        if not (math.isfinite(duration) and duration > 0):
            return math.nan
        return (photons_outside_pauses + self.missed_apd) / duration

    @property
    def pauses_ps(self) -> npt.NDArray[np.int64]:
        """``[pauses, 2]`` tagger times (ps) of each pause as ``[start, stop)`` intervals (for
        :func:`~cryoscope.datafile.in_intervals`; open: to the end): the tags after the last
        tag read before the pause, through the last tag read before the resume — the tags the
        engine read while paused."""
        out: list[tuple[int, int]] = []
        start: int | None = None
        for event in self.events:
            if event.kind == "pause" and start is None:
                start = event.tagger_ps + 1
            elif event.kind == "resume" and start is not None:
                out.append((start, event.tagger_ps + 1))
                start = None
        if start is not None:
            out.append((start, np.iinfo(np.int64).max))
        return np.array(out, np.int64).reshape(-1, 2)

    @property
    def stage_rest_deg(self) -> np.ndarray:
        """Waveplate angle θ at rest before move 0, after move 0, ... (deg)."""
        return rest_angles(self.start_angle_deg, self.target_deg, self.reached_deg,
                           self.waveplate_zero_deg)


def _attr(group: h5py.Group | h5py.File, name: str, where: str) -> Any:
    if name not in group.attrs:
        raise MeasurementError(f"missing attribute {where}.{name}")
    return _text(group.attrs[name])


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _events(h5: h5py.File) -> tuple[RunEvent, ...]:
    if "events" not in h5:
        return ()
    ev = h5["events"]
    kinds = [_text(k) for k in ev["kind"][:]]
    messages = [_text(m) for m in ev["message"][:]]
    return tuple(RunEvent(str(k), float(t), int(p), str(m)) for k, t, p, m in
                 zip(kinds, ev["time_s"][:], ev["tagger_ps"][:], messages, strict=True))


def _overflows(h5: h5py.File, n_tags: int) -> tuple[npt.NDArray[np.int64], dict[int, int]]:
    """Overflow intervals and missed tags per input, from ``/tagger/event_*``."""
    if "tagger" not in h5 or "event_type" not in h5["tagger"]:
        return np.zeros((0, 2), np.int64), {}
    tg = h5["tagger"]
    names = ("event_type", "event_timestamp_ps", "event_channel", "event_missed")
    n = min(tg[name].shape[0] for name in names)
    types, times, channels, missed = (np.asarray(tg[name][:n]) for name in names)
    # an open overflow ends at the last tag (without tags: where it began)
    last = int(h5["tags/timestamp_ps"][n_tags - 1]) if n_tags else 0
    out = overflow_intervals(types, times, last)
    lost = types == TagEventType.MISSED_EVENTS
    per_input: dict[int, int] = {}
    for ch, count in zip(channels[lost].tolist(), missed[lost].tolist(), strict=True):
        per_input[int(ch)] = per_input.get(int(ch), 0) + int(count)
    return out, per_input


def open_measurement(path: str | Path) -> Measurement:
    """Read a file's metadata. Raises :class:`MeasurementError` naming the problem."""
    file = Path(path)
    with open_h5(file) as h5:
        try:
            return _read_measurement(file, h5)
        except (KeyError, OSError) as exc:
            raise MeasurementError(f"{file}: damaged ({_first_line(exc)})") from None


def _read_measurement(file: Path, h5: h5py.File) -> Measurement:
    if _text(h5.attrs.get("format")) != FORMAT:
        raise MeasurementError(f"not a cryoscope measurement file: {file}")
    for node in ("tags/timestamp_ps", "tags/channel", "channels", "camera/frames",
                 "spectrograph/wavelength_nm", "stage"):
        if node not in h5:
            raise MeasurementError(f"{file}: missing /{node}")
    ch, cam, stage = h5["channels"], h5["camera"], h5["stage"]
    frames = cam["frames"]
    if frames.ndim != 3:
        raise MeasurementError(f"{file}: /camera/frames must be 3-D, got {frames.shape}")
    names = cam.attrs.get("track_names", ["V", "H"])
    track_names = tuple(str(_text(n)) for n in names)

    def moves(name: str) -> np.ndarray:
        return np.asarray(stage[name][:], float) if name in stage else np.zeros(0)

    truth = None
    if "simulation" in h5 and "frame_state" in h5["simulation"]:
        sim = h5["simulation"]
        truth = SimulationTruth(
            frame_state=np.asarray(sim["frame_state"][:]),
            frame_zpl_ev=np.asarray(sim["frame_zpl_ev"][:]),
            sample=json.loads(sim.attrs.get("sample_json", "{}")),
            optics=json.loads(sim.attrs.get("optics_json", "{}")),
            extra={k: np.asarray(v[:]) for k, v in sim.items()
                   if isinstance(v, h5py.Dataset) and k not in ("frame_state", "frame_zpl_ev")},
        )
    n_frames = int(frames.shape[0])
    n_tags = int(min(h5["tags/timestamp_ps"].shape[0], h5["tags/channel"].shape[0]))
    overflows, missed = _overflows(h5, n_tags)
    exposure_index = None
    if "exposure_index" in cam:
        exposure_index = np.asarray(cam["exposure_index"][:n_frames], np.int64)
        n_frames = min(n_frames, exposure_index.shape[0])
    return Measurement(
        path=file,
        status=str(_text(h5.attrs.get("status", "unknown"))),
        n_tags=n_tags,
        apd_channel=int(_attr(ch, "apd", "/channels")),
        sync_channel=int(_attr(ch, "laser_sync", "/channels")),
        camera_channel=int(_attr(ch, "camera_fire", "/channels")),
        stage_channel=int(_attr(ch, "stage_motion", "/channels")),
        conditional_filter=bool(_attr(ch, "conditional_filter", "/channels")),
        laser_period_ps=int(_attr(ch, "laser_period_ps", "/channels")),
        n_frames=n_frames,
        track_names=track_names,
        exposure_s=float(cam.attrs.get("exposure_s", np.nan)),
        em_gain=float(cam.attrs.get("em_gain", np.nan)),
        wavelength_nm=np.asarray(h5["spectrograph/wavelength_nm"][:], float),
        waveplate_zero_deg=float(stage.attrs.get("waveplate_zero_deg", 0.0)),
        start_angle_deg=float(stage.attrs.get("start_angle_deg", 0.0)),
        reached_deg=moves("reached_deg"),
        duration_s=float(h5.attrs.get("duration_s", np.nan)),
        truth=truth,
        readout=str(_text(cam.attrs.get("readout", "tracks"))),
        apd2_channel=int(ch.attrs["apd2"]) if "apd2" in ch.attrs else None,
        config_toml=str(_text(h5.attrs.get("config_toml", ""))),
        frame_shape=tuple(int(n) for n in frames.shape[1:]),
        plan=json.loads(_text(h5.attrs.get("plan", "{}")) or "{}"),
        error=str(_text(h5.attrs.get("error", ""))),
        target_deg=moves("target_deg"),
        exposure_index=exposure_index,
        lost_frames=(np.asarray(cam["lost_exposure_index"][:], np.int64)
                     if "lost_exposure_index" in cam else np.zeros(0, np.int64)),
        events=_events(h5),
        metadata={k: str(_text(v)) for k, v in h5["measurement"].attrs.items()}
        if "measurement" in h5 else {},
        overflows_ps=overflows,
        missed_events=missed,
    )


def iter_tag_chunks(path: str | Path, chunk_tags: int = DEFAULT_TAG_CHUNK
                    ) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]]:
    """Yield ``(timestamp_ps int64, channel int32)`` blocks of at most ``chunk_tags`` tags, in
    stream order. Each block is a new pair of arrays: keep them as long as you like."""
    if chunk_tags <= 0:
        raise ValueError(f"chunk_tags must be positive, got {chunk_tags}")
    with open_h5(path) as h5:
        ts, ch = h5["tags/timestamp_ps"], h5["tags/channel"]
        n = min(ts.shape[0], ch.shape[0])
        for start in range(0, n, chunk_tags):
            stop = min(start + chunk_tags, n)
            yield (np.asarray(ts[start:stop], np.int64), np.asarray(ch[start:stop], np.int32))


def read_timing(meas: Measurement, chunk_tags: int = DEFAULT_TAG_CHUNK
                ) -> tuple[EdgePairs, StageTiming, FrameTiming]:
    """Exposures, waveplate moves and the timing of every stored frame, from one pass over the
    tag stream (only the edges are kept)."""
    cam, stage = meas.camera_channel, meas.stage_channel
    parts: dict[int, list[npt.NDArray[np.int64]]] = {cam: [], -cam: [], stage: [], -stage: []}
    for ts, ch in iter_tag_chunks(meas.path, chunk_tags):
        edge = (np.abs(ch) == cam) | (np.abs(ch) == stage)
        t, c = ts[edge], ch[edge]
        for channel, found in parts.items():
            found.append(t[c == channel])

    def joined(channel: int) -> npt.NDArray[np.int64]:
        return np.concatenate(parts[channel]) if parts[channel] else np.zeros(0, np.int64)

    exposures = pair_edges(joined(cam), joined(-cam))
    stage_timing = StageTiming(pair_edges(joined(stage), joined(-stage)), meas.stage_rest_deg)
    frames = frame_timing(exposures, stage_timing, meas.exposure_index, meas.n_frames)
    return exposures, stage_timing, frames


def read_frames(path: str | Path, indices: npt.ArrayLike | None = None) -> np.ndarray:
    """Camera frames (uint16 ADU): all, or those at ``indices`` (ascending)."""
    with open_h5(path) as h5:
        frames = h5["camera/frames"]
        if indices is None:
            return np.asarray(frames[:])
        return np.asarray(frames[np.asarray(indices, np.int64)])


def iter_frame_blocks(path: str | Path, block: int = 16, indices: np.ndarray | None = None
                      ) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first, frames)``: blocks of at most ``block`` camera frames (uint16 ADU, e.g.
    ``[n, rows, columns]`` in image readout), so full-sensor images never sit in memory at once.

    ``indices``: only these frames (ascending), each block then holds consecutive entries of it
    and ``first`` is the position in ``indices``.
    """
    with open_h5(path) as h5:
        frames = h5["camera/frames"]
        if indices is None:
            for start in range(0, frames.shape[0], block):
                yield start, np.asarray(frames[start:start + block])
        else:
            idx = np.asarray(indices, np.int64)
            for start in range(0, idx.shape[0], block):
                yield start, np.asarray(frames[idx[start:start + block]])
