"""Reading a cryoscope measurement file (``docs/file-format.md``): metadata and tag chunks.

Everything that touches HDF5 lives here; the other analysis modules work on arrays.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from cryoscope.analysis.spectra import energy_axis_ev
from cryoscope.storage import open_h5

__all__ = [
    "DEFAULT_TAG_CHUNK",
    "Measurement",
    "MeasurementError",
    "SimulationTruth",
    "iter_frame_blocks",
    "iter_tag_chunks",
    "open_measurement",
    "read_frames",
]

log = logging.getLogger(__name__)

#: Tags read per chunk: 10 M tags = 120 MB of timestamps and channels.
DEFAULT_TAG_CHUNK = 10_000_000


class MeasurementError(ValueError):
    """A file is missing, unreadable or not a cryoscope measurement. ``str()`` is one line."""


@dataclass(frozen=True)
class SimulationTruth:
    """Ground truth of a simulated file (``/simulation``): per-frame state and ZPL per center."""

    frame_state: np.ndarray  #: int8 [frames, centers]: 0 neutral, 1 charged, 2 dark
    frame_zpl_ev: np.ndarray  #: float64 [frames, centers] (eV)
    sample: dict  #: the simulated sample's parameters (``sample_json``)
    optics: dict  #: the simulated optics (``optics_json``)


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
    #: what was measured (``/measurement`` attributes: sample, sample_type, particle, ...)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def energy_ev(self) -> np.ndarray:
        """Photon energy of each pixel column (eV), E = 1239.84193 / λ[nm]."""
        return energy_axis_ev(self.wavelength_nm)


def _attr(group: h5py.Group | h5py.File, name: str, where: str) -> object:
    if name not in group.attrs:
        raise MeasurementError(f"missing attribute {where}.{name}")
    value = group.attrs[name]
    return value.decode() if isinstance(value, bytes) else value


def _open(file: Path) -> h5py.File:
    """Open for reading; in SWMR mode when the file is being written (``docs/file-format.md``)."""
    try:
        return open_h5(file)
    except OSError as exc:
        raise MeasurementError(f"not an HDF5 file: {file} ({exc})") from None


def open_measurement(path: str | Path) -> Measurement:
    """Read a file's metadata. Raises :class:`MeasurementError` naming the problem."""
    file = Path(path)
    if not file.is_file():
        raise MeasurementError(f"file not found: {file}")
    with _open(file) as h5:
        if h5.attrs.get("format") not in ("cryoscope", b"cryoscope"):
            raise MeasurementError(f"not a cryoscope measurement file: {file}")
        for node in ("tags/timestamp_ps", "tags/channel", "channels", "camera/frames",
                     "spectrograph/wavelength_nm", "stage"):
            if node not in h5:
                raise MeasurementError(f"{file}: missing /{node}")
        ch = h5["channels"]
        cam = h5["camera"]
        stage = h5["stage"]
        frames = cam["frames"]
        if frames.ndim != 3:
            raise MeasurementError(f"{file}: /camera/frames must be 3-D, got {frames.shape}")
        names = cam.attrs.get("track_names", ["V", "H"])
        track_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
        reached = np.asarray(stage["reached_deg"][:], float) if "reached_deg" in stage else (
            np.zeros(0))
        truth = None
        if "simulation" in h5 and "frame_state" in h5["simulation"]:
            sim = h5["simulation"]
            truth = SimulationTruth(
                frame_state=np.asarray(sim["frame_state"][:]),
                frame_zpl_ev=np.asarray(sim["frame_zpl_ev"][:]),
                sample=json.loads(sim.attrs.get("sample_json", "{}")),
                optics=json.loads(sim.attrs.get("optics_json", "{}")),
            )
        return Measurement(
            path=file,
            status=str(h5.attrs.get("status", "unknown")),
            n_tags=int(h5["tags/timestamp_ps"].shape[0]),
            apd_channel=int(_attr(ch, "apd", "/channels")),
            sync_channel=int(_attr(ch, "laser_sync", "/channels")),
            camera_channel=int(_attr(ch, "camera_fire", "/channels")),
            stage_channel=int(_attr(ch, "stage_motion", "/channels")),
            conditional_filter=bool(_attr(ch, "conditional_filter", "/channels")),
            laser_period_ps=int(_attr(ch, "laser_period_ps", "/channels")),
            n_frames=int(frames.shape[0]),
            track_names=track_names,
            exposure_s=float(cam.attrs.get("exposure_s", np.nan)),
            em_gain=float(cam.attrs.get("em_gain", np.nan)),
            wavelength_nm=np.asarray(h5["spectrograph/wavelength_nm"][:], float),
            waveplate_zero_deg=float(stage.attrs.get("waveplate_zero_deg", 0.0)),
            start_angle_deg=float(stage.attrs.get("start_angle_deg", 0.0)),
            reached_deg=reached,
            duration_s=float(h5.attrs.get("duration_s", np.nan)),
            truth=truth,
            readout=str(cam.attrs.get("readout", "tracks")),
            apd2_channel=int(ch.attrs["apd2"]) if "apd2" in ch.attrs else None,
            config_toml=str(_attr(h5, "config_toml", "/")) if "config_toml" in h5.attrs else "",
            frame_shape=tuple(int(n) for n in frames.shape[1:]),
            metadata={k: v.decode() if isinstance(v, bytes) else str(v)
                      for k, v in h5["measurement"].attrs.items()} if "measurement" in h5 else {},
        )


def iter_tag_chunks(
    path: str | Path, chunk_tags: int = DEFAULT_TAG_CHUNK
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(timestamp_ps int64, channel int32)`` blocks of at most ``chunk_tags`` tags.

    The two buffers are reused from one chunk to the next: copy what you keep.
    """
    with _open(Path(path)) as h5:
        ts = h5["tags/timestamp_ps"]
        ch = h5["tags/channel"]
        n = min(ts.shape[0], ch.shape[0])
        buf_t = np.empty(min(chunk_tags, max(n, 1)), np.int64)
        buf_c = np.empty(min(chunk_tags, max(n, 1)), np.int32)
        for start in range(0, n, chunk_tags):
            stop = min(start + chunk_tags, n)
            m = stop - start
            ts.read_direct(buf_t, np.s_[start:stop], np.s_[0:m])
            ch.read_direct(buf_c, np.s_[start:stop], np.s_[0:m])
            yield buf_t[:m], buf_c[:m]


def read_frames(path: str | Path) -> np.ndarray:
    """All camera frames, uint16 ``[frames, tracks, pixels]`` (ADU)."""
    with _open(Path(path)) as h5:
        return np.asarray(h5["camera/frames"][:])


def iter_frame_blocks(path: str | Path, block: int = 16, indices: np.ndarray | None = None
                      ) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first, frames)``: blocks of at most ``block`` camera frames (uint16 ADU, e.g.
    ``[n, rows, columns]`` in image readout), so full-sensor images never sit in memory at once.

    ``indices``: only these frames (ascending), each block then holds consecutive entries of it
    and ``first`` is the position in ``indices``.
    """
    with _open(Path(path)) as h5:
        frames = h5["camera/frames"]
        if indices is None:
            for start in range(0, frames.shape[0], block):
                yield start, np.asarray(frames[start:start + block])
        else:
            idx = np.asarray(indices, np.int64)
            for start in range(0, idx.shape[0], block):
                yield start, np.asarray(frames[idx[start:start + block]])
