"""The measurement file: HDF5 written while the run goes (layout in ``docs/file-format.md``).

The writer creates every node up front, switches the file to single-writer/multiple-reader (SWMR)
mode and then only appends and flushes (at least once per second of wall time), so a crash or
``kill -9`` loses at most the last second and leaves a file that opens. At the end it reopens the
file normally to record the final status, error and ground truth.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt

from cryoscope import __version__
from drivers.interfaces import FrameBlock, Identity, TagBlock, TagEventType

log = logging.getLogger(__name__)

FORMAT = "cryoscope"
FORMAT_VERSION = 1
#: Queued data reaches the disk at least this often (wall time, s).
FLUSH_INTERVAL_S = 0.5
#: ... or as soon as this many tags are queued.
TAG_BUFFER_LIMIT = 2_000_000


class OutputExistsError(FileExistsError):
    """The output file exists and overwriting was not asked for."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"output file exists: {path} (use --overwrite to replace it)")


class NotAMeasurementError(ValueError):
    """A file is not a cryoscope measurement file."""


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def check_output_path(path: Path, overwrite: bool) -> None:
    """Raise if ``path`` cannot be written: it exists (and no overwrite) or has no folder."""
    if path.exists() and not overwrite:
        raise OutputExistsError(path)
    if path.is_dir():
        raise IsADirectoryError(f"output path is a directory: {path}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {path.parent}")


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
    data = np.asarray(values, dtype=ds.dtype)
    if data.shape[0] == 0:
        return
    n = ds.shape[0]
    ds.resize(n + data.shape[0], axis=0)
    ds[n:] = data


def _set_attrs(node: h5py.Group, values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if value is None:
            continue
        node.attrs[key] = value


class MeasurementWriter:
    """Appends a run's data to its HDF5 file as it arrives."""

    def __init__(self, path: str | Path, overwrite: bool = False) -> None:
        self.path = Path(path)
        check_output_path(self.path, overwrite)
        self._file: h5py.File | None = None
        self._last_flush = 0.0
        self._frames = 0
        self._tags = 0
        self._overflows = 0
        self._missed = 0
        self._began = False
        self._tag_buffer: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]] = []
        self._event_buffer: list[TagBlock] = []
        self._buffered = 0

    @property
    def started(self) -> bool:
        """Whether :meth:`begin` created the file."""
        return self._began

    @property
    def frames_written(self) -> int:
        return self._frames

    @property
    def tags_written(self) -> int:
        return self._tags

    # -- life cycle ---------------------------------------------------------------------------

    def begin(self, meta: RunMetadata) -> None:
        """Create the file with every node, then enter SWMR append mode."""
        f = h5py.File(self.path, "w", libver="latest")
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
        for name, dtype in (("log_time_s", np.float64), ("repetition_rate_hz", np.float64),
                            ("power_nw", np.float64), ("emission_on", np.uint8)):
            laser.create_dataset(name, (0,), dtype, maxshape=(None,), chunks=(256,))

        if meta.simulation is not None:
            _set_attrs(f.create_group("simulation"), meta.simulation)

        f.swmr_mode = True
        self.flush(force=True)
        log.info("writing %s", self.path)

    def _f(self) -> h5py.File:
        if self._file is None:
            raise RuntimeError("the measurement file is not open")
        return self._file

    def flush(self, force: bool = False) -> None:
        """Write what is queued and flush to disk, if a flush is due (or ``force``)."""
        now = time.monotonic()
        if self._file is not None and (force or now - self._last_flush >= FLUSH_INTERVAL_S):
            self._write_tags()
            self._file.flush()
            self._last_flush = now

    # -- appending ----------------------------------------------------------------------------

    def append_tags(self, block: TagBlock) -> None:
        """Queue a block of the tag stream; it reaches the file at the next flush."""
        normal = block.event_types == TagEventType.TIME_TAG
        if normal.all():
            self._tag_buffer.append((block.timestamps_ps, block.channels))
        else:
            self._tag_buffer.append((block.timestamps_ps[normal], block.channels[normal]))
            self._event_buffer.append(block)
        self._buffered += int(normal.sum())
        self._tags += int(normal.sum())
        if self._buffered >= TAG_BUFFER_LIMIT:
            self.flush(force=True)
        else:
            self.flush()

    def _write_tags(self) -> None:
        f = self._f()
        if self._tag_buffer:
            _append(f["tags/timestamp_ps"], np.concatenate([t for t, _ in self._tag_buffer]))
            _append(f["tags/channel"], np.concatenate([c for _, c in self._tag_buffer]))
            self._tag_buffer.clear()
            self._buffered = 0
        for block in self._event_buffer:
            special = block.event_types != TagEventType.TIME_TAG
            types = block.event_types[special]
            _append(f["tagger/event_timestamp_ps"], block.timestamps_ps[special])
            _append(f["tagger/event_type"], types)
            _append(f["tagger/event_channel"], block.channels[special])
            _append(f["tagger/event_missed"], block.missed_events[special])
            self._overflows += int(np.sum(types == TagEventType.OVERFLOW_BEGIN))
            self._missed += int(block.missed_events[special].sum())
            log.warning("time tagger overflow: %d tags missed so far", self._missed)
        self._event_buffer.clear()

    def append_frames(self, block: FrameBlock) -> None:
        if len(block) == 0:
            return
        if block.first_index != self._frames:
            raise ValueError(
                f"frames arrive out of order: expected frame {self._frames}, got "
                f"{block.first_index}")
        _append(self._f()["camera/frames"], block.frames)
        self._frames += len(block)
        self.flush()

    def log_camera(self, time_s: float, temperature_c: float) -> None:
        f = self._f()
        _append(f["camera/log_time_s"], [time_s])
        _append(f["camera/log_temperature_c"], [temperature_c])

    def log_stage_move(self, start_s: float, target_deg: float) -> None:
        f = self._f()
        _append(f["stage/move_start_s"], [start_s])
        _append(f["stage/target_deg"], [target_deg])
        _append(f["stage/move_end_s"], [np.nan])
        _append(f["stage/reached_deg"], [np.nan])

    def log_stage_reached(self, end_s: float, reached_deg: float) -> None:
        f = self._f()
        f["stage/move_end_s"][-1] = end_s
        f["stage/reached_deg"][-1] = reached_deg

    def log_cryostat(self, time_s: float, temperature_k: float, setpoint_k: float,
                     pressure_mbar: float | None) -> None:
        f = self._f()
        for name, value in (("log_time_s", time_s), ("sample_temperature_k", temperature_k),
                            ("setpoint_k", setpoint_k),
                            ("pressure_mbar", np.nan if pressure_mbar is None else pressure_mbar)):
            _append(f[f"cryostat/{name}"], [value])

    def log_laser(self, time_s: float, rate_hz: float, power_nw: float, emission_on: bool) -> None:
        f = self._f()
        for name, value in (("log_time_s", time_s), ("repetition_rate_hz", rate_hz),
                            ("power_nw", power_nw), ("emission_on", int(emission_on))):
            _append(f[f"laser/{name}"], [value])

    # -- the end ------------------------------------------------------------------------------

    def finish(self, status: str, error: str = "", duration_s: float | None = None,
               truth: Mapping[str, npt.ArrayLike] | None = None) -> None:
        """Close the SWMR session and record how the run ended (and the ground truth)."""
        if self._file is None:
            return
        self.flush(force=True)
        self._file.close()
        self._file = None
        with h5py.File(self.path, "r+", libver="latest") as f:
            _set_attrs(f, {"status": status, "error": " ".join(error.split()),
                           "finished": now_iso(), "duration_s": duration_s})
            _set_attrs(f["tagger"], {"overflows": self._overflows,
                                     "missed_events": self._missed})
            if truth is not None:
                group = f.require_group("simulation")
                for name, values in truth.items():
                    group.create_dataset(name, data=np.asarray(values))
        log.info("%s: %s, %d frames, %d tags", self.path, status, self._frames, self._tags)


def open_h5(path: str | Path) -> h5py.File:
    """Open a measurement file for reading: finished, still being written, or left behind by a
    writer that crashed (SWMR read mode reads all three); files written without SWMR (older
    HDF5 superblocks) open plainly."""
    try:
        return h5py.File(path, "r", libver="latest", swmr=True)
    except OSError:
        return h5py.File(path, "r")


def read_measurement_attrs(path: str | Path) -> dict[str, Any]:
    """Root attributes of a measurement file; raises :class:`NotAMeasurementError` otherwise."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {p}")
    try:
        with open_h5(p) as f:
            if f.attrs.get("format") != FORMAT:
                raise NotAMeasurementError(f"not a cryoscope measurement file: {p}")
            return dict(f.attrs)
    except OSError:
        raise NotAMeasurementError(f"not an HDF5 file: {p}") from None
