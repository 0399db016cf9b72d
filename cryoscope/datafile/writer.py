"""Writing the measurement file: HDF5 written while the run goes (layout in
``docs/file-format.md``).

An :class:`OutputClaim` takes the output path when a run is accepted, before any instrument
moves: a new file is created at once (exclusively), a file being replaced stays untouched until
the replacement run has succeeded, and a lock file next to it keeps every other run away while
this one lives. The writer creates every node up front, switches the file to
single-writer/multiple-reader (SWMR) mode and then only appends and flushes (at least once per
second of wall time), so a crash or ``kill -9`` loses at most the last second and leaves a file
that opens (in SWMR read mode; ``cryoscope repair`` clears the mark a killed writer leaves, so
that plain HDF5 opens it too). The final status, error and ground truth are recorded in the same
session before the file is closed: the file is never reopened, so a kill at any moment leaves a
file that opens.

Tags, frames and the instrument logs are queued and appended at each flush, a few large
appends instead of one per block, frame and log row (each HDF5 append has a fixed cost of about
0.1 ms, whatever its size).

The disk never fills up under the writer: before each flush it checks that the queued data, and
a reserve for the end of the run, fit on the disk and under the process' file-size limit; if
not, it writes the frames, then the tags that fit, and raises :class:`WriteError` ("disk full"),
and the run records ``status = failed`` in the reserve. Any other write error is a
:class:`WriteError` too; the writer then drops further data and only records the status.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import resource
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import h5py
import numpy as np
import numpy.typing as npt

from cryoscope import __version__
from cryoscope.datafile.schema import FORMAT, FORMAT_VERSION
from drivers.interfaces import Identity, TagBlock, TagEventType

log = logging.getLogger(__name__)

#: Queued data reaches the disk at least this often (wall time, s).
FLUSH_INTERVAL_S = 0.5
#: ... or as soon as this many tags are queued,
TAG_BUFFER_LIMIT = 2_000_000
#: ... or as soon as this many bytes of frames are queued.
FRAME_BUFFER_BYTES = 16 << 20


#: A plain time tag's event type, as an int (comparing an array with it is faster than with the
#: IntEnum member).
_TIME_TAG = int(TagEventType.TIME_TAG)

#: Room kept free for the end of the run (status, ground truth, HDF5 metadata and chunk
#: caches; bytes).
RESERVE_BYTES = 8 << 20

#: Longest text of an event kind and message in ``/events`` (bytes, UTF-8).
EVENT_KIND_BYTES, EVENT_MESSAGE_BYTES = 16, 240


class OutputError(OSError):
    """The output path cannot be claimed. ``str()`` is one line naming the path."""


class OutputExistsError(OutputError, FileExistsError):
    """The output file exists and replacing it was not asked for."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"output file exists: {path}")
        self.path = path


class OutputBusyError(OutputError):
    """Another live run holds the output path."""


class NoRoomError(OutputError):
    """The run would not fit on the disk (or under the file-size limit)."""


class WriteError(OSError):
    """Writing the measurement file failed: the disk is full, the file-size limit is reached, or
    an I/O error. ``str()`` is one line."""


def _mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:.1f} MB"


def room_left(file: Path) -> tuple[int, str, str]:
    """Bytes that may still be written to ``file`` with :data:`RESERVE_BYTES` left over (may
    be negative), what limits them ("the disk is full", "the file size limit of the process is
    reached": the disk's free space or ``RLIMIT_FSIZE``) and the figures."""
    stat = os.statvfs(file.parent)
    free = stat.f_bavail * stat.f_frsize
    left = free - RESERVE_BYTES
    cause, figures = "the disk is full", f"{_mb(free)} free in {file.parent}"
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY:
        size = file.stat().st_size if file.exists() else 0
        if limit - size - RESERVE_BYTES < left:
            left = limit - size - RESERVE_BYTES
            cause = "the file size limit of the process is reached"
            figures = f"{file.name} has {_mb(size)} of at most {_mb(limit)}"
    return left, cause, f"{figures}, {_mb(RESERVE_BYTES)} kept for the end of the run"


def check_room(path: str | Path, needed_bytes: int, what: str) -> None:
    """Refuse a run of ``needed_bytes`` (described by ``what``) that cannot fit at ``path``,
    with :class:`NoRoomError` before anything is written."""
    left, _, figures = room_left(Path(path))
    if left < needed_bytes:
        raise NoRoomError(f"not enough room for {what}, {_mb(needed_bytes)}: {figures}")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_holder(lock_path: Path) -> int | None:
    """The live process holding a ``<name>.lock`` file, or None (no lock, or a dead one's)."""
    try:
        pid = int(lock_path.read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid and _pid_alive(pid) else None


class OutputClaim:
    """The right to write one measurement file, taken when a run is accepted.

    A new file is created empty at once (``O_EXCL``: two runs can never both create it). With
    ``overwrite`` an existing measurement stays in place while the run writes to a hidden file
    beside it, and replaces it only when the run ends without failing (:meth:`settle`). A lock
    file ``<name>.lock`` holding the process id keeps other runs away from the path while this
    one lives; a lock left by a dead process is taken over.
    """

    def __init__(self, path: str | Path, overwrite: bool = False) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise OutputError(f"output path is a directory: {self.path}")
        folder = self.path.parent
        if not folder.is_dir():
            raise OutputError(f"output folder does not exist: {folder}")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"output folder is not writable: {folder}")
        if self.path.exists() and not overwrite:
            raise OutputExistsError(self.path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.replacing = self._created = self._released = False
        self._take_lock()
        try:
            self.replacing = self.path.exists()
            if self.replacing:
                self.write_path = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
            else:
                self.write_path = self.path
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                self._created = True
        except FileExistsError:
            self._drop_lock()
            raise OutputExistsError(self.path) from None
        except OSError as exc:
            self._drop_lock()
            raise OutputError(f"cannot create {self.path}: {exc.strerror}") from None
        except BaseException:  # Ctrl-C while claiming: leave neither the lock nor a new file
            if not self.replacing and self.path.is_file() and self.path.stat().st_size == 0:
                self.path.unlink()
            self._drop_lock()
            raise

    def _take_lock(self) -> None:
        for _ in range(2):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pid = lock_holder(self.lock_path)
                if pid is not None:
                    raise OutputBusyError(
                        f"{self.path} is being written by a live run (process {pid})") from None
                log.warning("taking over the stale lock %s", self.lock_path)
                self.lock_path.unlink(missing_ok=True)
                continue
            except OSError as exc:
                raise OutputError(f"cannot lock {self.path}: {exc.strerror}") from None
            try:
                with os.fdopen(fd, "w") as lock:
                    lock.write(f"{os.getpid()}\n")
            except BaseException:
                self._drop_lock()
                raise
            return
        raise OutputBusyError(f"{self.path} is being claimed by another run")

    def _drop_lock(self) -> None:
        self.lock_path.unlink(missing_ok=True)

    def settle(self, began: bool, succeeded: bool) -> Path:
        """End the claim: where the run's data now is. A replacement that failed keeps the old
        measurement and leaves its own data next to it as ``<stem>.failed-<time>.h5``."""
        if self._released:
            return self.path
        self._released = True
        try:
            if not began:
                if self._created:
                    self.path.unlink(missing_ok=True)
                elif self.replacing:
                    self.write_path.unlink(missing_ok=True)
                return self.path
            if not self.replacing:
                return self.path
            if succeeded:
                os.replace(self.write_path, self.path)
                return self.path
            stamp = now_iso().replace(":", "").replace("-", "").replace("+0000", "")
            kept = self.path.with_name(f"{self.path.stem}.failed-{stamp}{self.path.suffix}")
            os.replace(self.write_path, kept)
            log.warning("the replacement run failed: %s is unchanged, its data is in %s",
                        self.path, kept)
            return kept
        finally:
            self._drop_lock()


@dataclass(frozen=True, slots=True)
class RunMetadata:
    """What the file records before the first data arrives."""

    config_toml: str
    plan: Mapping[str, Any]
    rig_backend: str
    channels: Mapping[str, int]
    conditional_filter: bool
    laser_period_ps: int
    identities: Mapping[str, Identity]
    tagger: Mapping[str, Any]
    camera: Mapping[str, Any]
    frame_shape: tuple[int, ...]
    wavelength_nm: npt.NDArray[np.float64]
    spectrograph: Mapping[str, Any]
    stage: Mapping[str, Any]
    cryostat: Mapping[str, Any]
    laser: Mapping[str, Any]
    simulation: Mapping[str, Any] | None = None
    #: what is measured (``[measurement]``): the ``/measurement`` group's attributes
    measurement: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: compression of tags and frames (``[storage]``): "none", "gzip" or "lzf"; gzip level
    compression: str = "none"
    compression_level: int = 4


def _filters(meta: RunMetadata) -> dict[str, Any]:
    """``create_dataset`` keywords of the bulk datasets: none, or compression with shuffle."""
    if meta.compression == "none":
        return {}
    level = meta.compression_level if meta.compression == "gzip" else None
    return {"compression": meta.compression, "compression_opts": level, "shuffle": True}


def _append(ds: h5py.Dataset, values: npt.ArrayLike) -> None:
    """Append along the first axis; if the write fails the dataset keeps its old length (never
    a stretch of fill-value zeros)."""
    data = np.asarray(values, dtype=ds.dtype)
    if data.shape[0] == 0:
        return
    n = ds.shape[0]
    ds.resize(n + data.shape[0], axis=0)
    try:
        ds[n:] = data
    except BaseException:
        ds.resize(n, axis=0)
        raise


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _set_attrs(node: h5py.Group, values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if value is None:
            continue
        node.attrs[key] = value


class MeasurementWriter:
    """Appends a run's data to its HDF5 file as it arrives."""

    def __init__(self, claim: OutputClaim) -> None:
        self.claim = claim
        self.path = claim.path
        self._file: h5py.File | None = None
        #: open dataset handles by path (looking a path up costs more than the append)
        self._datasets: dict[str, h5py.Dataset] = {}
        self._last_flush = 0.0
        self._frames = 0
        self._tags = 0
        self._overflows = 0
        self._missed = 0
        self._began = False
        self._tag_buffer: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]] = []
        self._event_buffer: list[TagBlock] = []
        self._buffered = 0
        self._frame_buffer: list[tuple[npt.NDArray[np.uint16], npt.NDArray[np.int64]]] = []
        self._frame_bytes = 0
        #: rows of the small logs not yet appended, by dataset path
        self._rows: dict[str, list[Any]] = {}
        self._failure: str | None = None

    @property
    def started(self) -> bool:
        """Whether :meth:`begin` created the file."""
        return self._began

    @property
    def failure(self) -> str | None:
        """Why writing failed (data is dropped since), or None."""
        return self._failure

    # -- life cycle ---------------------------------------------------------------------------

    def begin(self, meta: RunMetadata) -> None:
        """Create the file with every node, then enter SWMR append mode."""
        self._check_room(0)
        try:
            self._create(meta)
        except OSError as exc:
            self._fail(_one_line(exc))
        log.info("writing %s", self.path)

    def _create(self, meta: RunMetadata) -> None:
        f = h5py.File(self.claim.write_path, "w", libver="latest")
        self._file = f
        self._began = True
        _set_attrs(f, {
            "format": FORMAT, "format_version": FORMAT_VERSION, "software_version": __version__,
            "created": now_iso(), "status": "running", "error": "",
            "config_toml": meta.config_toml, "plan": json.dumps(dict(meta.plan)),
            "rig_backend": meta.rig_backend,
        })
        ids = {name: json.dumps(dataclasses.asdict(ident))
               for name, ident in meta.identities.items()}

        _set_attrs(f.create_group("measurement"), meta.measurement)
        packed = _filters(meta)
        tags = f.create_group("tags")
        tags.create_dataset("timestamp_ps", (0,), np.int64, maxshape=(None,), chunks=(1 << 17,),
                            **packed)
        tags.create_dataset("channel", (0,), np.int32, maxshape=(None,), chunks=(1 << 17,),
                            **packed)

        tagger = f.create_group("tagger")
        _set_attrs(tagger, {"identity": ids.get("tagger"), **meta.tagger})
        for name, dtype in (("event_timestamp_ps", np.int64), ("event_type", np.uint8),
                            ("event_channel", np.int32), ("event_missed", np.int32)):
            tagger.create_dataset(name, (0,), dtype, maxshape=(None,), chunks=(1024,))

        channels = f.create_group("channels")
        _set_attrs(channels, {**meta.channels, "conditional_filter": meta.conditional_filter,
                              "laser_period_ps": meta.laser_period_ps})

        camera = f.create_group("camera")
        _set_attrs(camera, {"identity": ids.get("camera"), **meta.camera})
        camera.create_dataset("frames", (0, *meta.frame_shape), np.uint16,
                              maxshape=(None, *meta.frame_shape), chunks=(1, *meta.frame_shape),
                              **packed)
        camera.create_dataset("exposure_index", (0,), np.int64, maxshape=(None,), chunks=(1024,))
        camera.create_dataset("lost_exposure_index", (0,), np.int64, maxshape=(None,),
                              chunks=(256,))
        for name in ("log_time_s", "log_temperature_c"):
            camera.create_dataset(name, (0,), np.float64, maxshape=(None,), chunks=(256,))

        spectro = f.create_group("spectrograph")
        _set_attrs(spectro, {"identity": ids.get("spectrograph"), **meta.spectrograph})
        spectro.create_dataset("wavelength_nm", data=np.asarray(meta.wavelength_nm, np.float64))

        stage = f.create_group("stage")
        _set_attrs(stage, {"identity": ids.get("stage"), **meta.stage})
        for name in ("move_start_s", "target_deg", "move_end_s", "reached_deg"):
            stage.create_dataset(name, (0,), np.float64, maxshape=(None,), chunks=(256,))

        cryo = f.create_group("cryostat")
        _set_attrs(cryo, {"identity": ids.get("cryostat"), **meta.cryostat})
        for name in ("log_time_s", "sample_temperature_k", "setpoint_k", "pressure_mbar"):
            cryo.create_dataset(name, (0,), np.float64, maxshape=(None,), chunks=(256,))

        laser = f.create_group("laser")
        _set_attrs(laser, {"identity": ids.get("laser"), **meta.laser})
        laser_logs: tuple[tuple[str, npt.DTypeLike], ...] = (
            ("log_time_s", np.float64), ("repetition_rate_hz", np.float64),
            ("power_nw", np.float64), ("emission_on", np.uint8))
        for name, log_dtype in laser_logs:
            laser.create_dataset(name, (0,), log_dtype, maxshape=(None,), chunks=(256,))

        events = f.create_group("events")
        event_logs: tuple[tuple[str, npt.DTypeLike], ...] = (
            ("time_s", np.float64), ("tagger_ps", np.int64), ("kind", f"S{EVENT_KIND_BYTES}"),
            ("message", f"S{EVENT_MESSAGE_BYTES}"))
        for name, event_dtype in event_logs:
            events.create_dataset(name, (0,), event_dtype, maxshape=(None,), chunks=(256,))

        if meta.simulation is not None:
            _set_attrs(f.create_group("simulation"), meta.simulation)

        f.swmr_mode = True
        f.flush()
        self._last_flush = time.monotonic()

    def _f(self) -> h5py.File:
        if self._file is None:
            raise RuntimeError("the measurement file is not open")
        return self._file

    def _ds(self, name: str) -> h5py.Dataset:
        ds = self._datasets.get(name)
        if ds is None:
            ds = self._datasets[name] = self._f()[name]
        return ds

    def flush(self, force: bool = False) -> None:
        """Write what is queued and flush to disk, if a flush is due (or ``force``). Data that
        would not leave the reserve free is not written: the queued frames that fit are, then
        as many tags as fit, then :class:`WriteError` (the log rows are small: they go in the
        reserve)."""
        now = time.monotonic()
        if self._file is None or self._failure is not None or \
                not (force or now - self._last_flush >= FLUSH_INTERVAL_S):
            return
        needed = self._frame_bytes + 12 * self._buffered + \
            13 * sum(len(b) for b in self._event_buffer)
        left, cause, figures = room_left(self.claim.write_path)
        short = left < needed
        if short:
            self._keep_tags(self._keep_frames(max(0, left)) // 12)
        try:
            self._write_rows()
            self._write_frames()
            self._write_tags()
            self._file.flush()
        except OSError as exc:
            self._fail(_one_line(exc))
        self._last_flush = now
        if short:
            self._fail(f"{cause}: {figures}, {_mb(needed)} to write")

    def _keep_frames(self, room: int) -> int:
        """Keep only the queued frames that fit in ``room`` bytes (in order); the room left."""
        kept: list[tuple[npt.NDArray[np.uint16], npt.NDArray[np.int64]]] = []
        for frames, index in self._frame_buffer:
            size = frames.nbytes // frames.shape[0] + index.itemsize
            n = min(frames.shape[0], room // size)
            if n:
                kept.append((frames[:n], index[:n]))
                room -= n * size
            if n < frames.shape[0]:
                break
        self._frame_buffer = kept
        self._frame_bytes = sum(f.nbytes + i.nbytes for f, i in kept)
        return room

    def _keep_tags(self, n: int) -> None:
        """Keep only the first ``n`` queued tags (and no overflow events after the last)."""
        kept: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]] = []
        for t, c in self._tag_buffer:
            if n <= 0:
                break
            kept.append((t[:n], c[:n]))
            n -= t.shape[0]
        self._tag_buffer = kept
        self._buffered = sum(t.shape[0] for t, _ in kept)
        last = kept[-1][0][-1] if kept and kept[-1][0].shape[0] else np.iinfo(np.int64).min
        self._event_buffer = [b for b in self._event_buffer
                              if b.timestamps_ps.shape[0] and b.timestamps_ps[0] <= last]

    def _check_room(self, nbytes: int) -> None:
        """:class:`WriteError` if ``nbytes`` more would not leave the reserve free."""
        left, cause, figures = room_left(self.claim.write_path)
        if left < nbytes:
            self._fail(f"{cause}: {figures}")

    def _fail(self, reason: str) -> NoReturn:
        """Stop writing data (what is queued is dropped) and raise :class:`WriteError`."""
        if "No space left on device" in reason:
            reason = f"the disk is full ({reason})"
        self._failure = reason
        self._tag_buffer.clear()
        self._event_buffer.clear()
        self._buffered = 0
        self._frame_buffer.clear()
        self._frame_bytes = 0
        self._rows.clear()
        raise WriteError(f"cannot write {self.path}: {reason}")

    # -- appending ----------------------------------------------------------------------------

    def append_tags(self, block: TagBlock) -> None:
        """Queue a block of the tag stream; it reaches the file at the next flush."""
        if self._failure is not None:
            return
        special = block.event_types != _TIME_TAG
        if not special.any():
            self._tag_buffer.append((block.timestamps_ps, block.channels))
            n = len(block)
        else:
            normal = ~special
            self._tag_buffer.append((block.timestamps_ps[normal], block.channels[normal]))
            self._event_buffer.append(block)
            n = int(np.count_nonzero(normal))
        self._buffered += n
        self._tags += n
        self.flush(force=self._buffered >= TAG_BUFFER_LIMIT)

    def _write_tags(self) -> None:
        if self._tag_buffer:
            _append(self._ds("tags/timestamp_ps"), np.concatenate([t for t, _ in self._tag_buffer]))
            _append(self._ds("tags/channel"), np.concatenate([c for _, c in self._tag_buffer]))
            self._tag_buffer.clear()
            self._buffered = 0
        for block in self._event_buffer:
            special = block.event_types != TagEventType.TIME_TAG
            types = block.event_types[special]
            _append(self._ds("tagger/event_timestamp_ps"), block.timestamps_ps[special])
            _append(self._ds("tagger/event_type"), types)
            _append(self._ds("tagger/event_channel"), block.channels[special])
            _append(self._ds("tagger/event_missed"), block.missed_events[special])
            begun = int(np.sum(types == TagEventType.OVERFLOW_BEGIN))
            self._overflows += begun
            self._missed += int(block.missed_events[special].sum())
            if begun:
                log.warning("time tagger overflow: tags are being lost (%d missed so far)",
                            self._missed)
        self._event_buffer.clear()

    def append_frames(self, frames: npt.NDArray[np.uint16], exposure_index: npt.ArrayLike
                      ) -> None:
        """Queue frames ``[n, ...]`` and the exposure (``camera_fire`` edge pair) each came
        from; they reach the file at the next flush (the arrays are kept until then, not
        copied)."""
        index = np.asarray(exposure_index, np.int64)
        if frames.shape[0] != index.shape[0]:
            raise ValueError(f"{frames.shape[0]} frames with {index.shape[0]} exposure indices")
        if frames.shape[0] == 0 or self._failure is not None:
            return
        self._frame_buffer.append((frames, index))
        self._frame_bytes += frames.nbytes + index.nbytes
        self.flush(force=self._frame_bytes >= FRAME_BUFFER_BYTES)

    def _write_frames(self) -> None:
        """The queued frames, one at a time: h5py keeps the GIL while it writes, and a flush
        of 16 MiB of full frames in one write kept every other thread of the process (a
        window's event loop) waiting for tens of ms."""
        if not self._frame_buffer:
            return
        frames_ds, index_ds = self._ds("camera/frames"), self._ds("camera/exposure_index")
        for frames, index in self._frame_buffer:
            for k in range(frames.shape[0]):
                n = frames_ds.shape[0]
                _append(frames_ds, frames[k: k + 1])
                try:
                    _append(index_ds, index[k: k + 1])
                except BaseException:
                    frames_ds.resize(n, axis=0)  # a frame and its exposure, or neither
                    raise
                self._frames += 1
        self._frame_buffer.clear()
        self._frame_bytes = 0

    def _log(self, rows: Mapping[str, npt.ArrayLike]) -> None:
        """Queue rows of small datasets (by path) for the next flush; nothing after a write
        failure."""
        if self._failure is not None:
            return
        for name, values in rows.items():
            self._rows.setdefault(name, []).extend(np.atleast_1d(np.asarray(values)))

    def _write_rows(self) -> None:
        for name, values in self._rows.items():
            _append(self._ds(name), values)
        self._rows.clear()

    def log_lost_frames(self, exposure_index: npt.ArrayLike) -> None:
        """Exposures whose frame the camera lost."""
        self._log({"camera/lost_exposure_index": np.asarray(exposure_index, np.int64)})

    def log_event(self, kind: str, time_s: float, tagger_ps: int, message: str = "") -> None:
        """An event of the run (``pause``, ``resume``, ``lost_frame``, ``interlock``, ...)."""
        self._log({"events/time_s": [time_s], "events/tagger_ps": [tagger_ps],
                   "events/kind": [kind.encode()[:EVENT_KIND_BYTES]],
                   "events/message": [message.encode()[:EVENT_MESSAGE_BYTES]]})
        self.flush(force=True)

    def log_camera(self, time_s: float, temperature_c: float) -> None:
        self._log({"camera/log_time_s": [time_s], "camera/log_temperature_c": [temperature_c]})

    def log_stage_move(self, start_s: float, target_deg: float) -> None:
        self._log({"stage/move_start_s": [start_s], "stage/target_deg": [target_deg],
                   "stage/move_end_s": [np.nan], "stage/reached_deg": [np.nan]})

    def log_stage_reached(self, end_s: float, reached_deg: float) -> None:
        if self._failure is not None:
            return
        queued = self._rows.get("stage/move_end_s")
        if queued:  # the move's row is still queued
            queued[-1] = end_s
            self._rows["stage/reached_deg"][-1] = reached_deg
            return
        try:
            self._ds("stage/move_end_s")[-1] = end_s
            self._ds("stage/reached_deg")[-1] = reached_deg
        except OSError as exc:
            self._fail(_one_line(exc))

    def log_cryostat(self, time_s: float, temperature_k: float, setpoint_k: float,
                     pressure_mbar: float | None) -> None:
        self._log({"cryostat/log_time_s": [time_s], "cryostat/sample_temperature_k":
                   [temperature_k], "cryostat/setpoint_k": [setpoint_k],
                   "cryostat/pressure_mbar": [np.nan if pressure_mbar is None else pressure_mbar]})

    def log_laser(self, time_s: float, rate_hz: float, power_nw: float, emission_on: bool) -> None:
        self._log({"laser/log_time_s": [time_s], "laser/repetition_rate_hz": [rate_hz],
                   "laser/power_nw": [power_nw], "laser/emission_on": [int(emission_on)]})

    # -- the end ------------------------------------------------------------------------------

    def finish(self, status: str, error: str = "", duration_s: float | None = None,
               truth: Mapping[str, npt.ArrayLike] | None = None) -> None:
        """Record how the run ended (and the ground truth) and close the file, in the same SWMR
        session: the file is never reopened, so a kill at any moment leaves it readable. After
        a write failure the queued data is dropped and only the status is recorded (in the
        reserve the room checks kept free). If the data still queued cannot be written, the
        status is ``failed`` and the :class:`WriteError` is raised once the file is closed."""
        f = self._file
        if f is None:
            return
        late: WriteError | None = None
        try:
            if self._failure is None:
                try:
                    self.flush(force=True)
                except WriteError as exc:
                    status, error = "failed", f"{error}; {exc}" if error else str(exc)
                    late = exc
            _set_attrs(f, {"status": status, "error": " ".join(error.split()),
                           "finished": now_iso(), "duration_s": duration_s})
            _set_attrs(f["tagger"], {"overflows": self._overflows,
                                     "missed_events": self._missed})
            if truth is not None and self._failure is None:
                group = f.require_group("simulation")
                for name, values in truth.items():
                    group.create_dataset(name, data=np.asarray(values))
            f.flush()
        except OSError as exc:
            log.error("could not record the status of %s: %s", self.path, _one_line(exc))
        finally:
            self._file = None
            self._datasets.clear()
            f.close()
        log.info("%s: %s, %d frames, %d tags", self.path, status, self._frames, self._tags)
        if late is not None:
            raise late
