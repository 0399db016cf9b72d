"""The writer queues tags, frames and the instrument log rows and appends them at each flush: the
file is the same whenever the flushes come, and a disk that fills keeps the frames, then the tags
that fit."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from cryoscope import api
from cryoscope.config import Config
from cryoscope.datafile import WriteError
from cryoscope.datafile import writer as writer_module
from tests.spine_helpers import small_config

#: Attributes that differ between two runs of the same configuration.
WALL_CLOCK_ATTRS = {"created", "finished"}


def _config() -> Config:
    """Twelve frames with two waveplate moves (stage move and reached rows)."""
    return small_config(frames=12, exposure_s=0.25, waveplate_step_deg=5.0,
                        waveplate_dwell_s=1.5, cryostat_log_interval_s=0.25)


def _run(path: Path, lost: tuple[int, ...] = ()) -> None:
    config = _config()
    with api.open_rig(config) as rig:
        rig.camera.lose_frames(lost)  # type: ignore[attr-defined]
        result = api.run_polarization_series(rig, path, config.plan)
    assert result.state is api.RunState.COMPLETE, result.error


def _run_to(path: Path) -> Path:
    _run(path, lost=(4,))
    return path


def _contents(path: Path) -> dict[str, object]:
    """Every dataset and attribute of a file, by path."""
    out: dict[str, object] = {}
    with h5py.File(path, "r") as f:
        def visit(name: str, node: h5py.Group | h5py.Dataset) -> None:
            if isinstance(node, h5py.Dataset):
                out[name] = node[()]
            for key, value in node.attrs.items():
                out[f"{name}@{key}"] = value
        f.visititems(visit)
        for key, value in f.attrs.items():
            if key not in WALL_CLOCK_ATTRS:
                out[f"@{key}"] = value
    return out


def _assert_same(a: dict[str, object], b: dict[str, object]) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        np.testing.assert_array_equal(np.asarray(value), np.asarray(b[key]), err_msg=key)


def test_the_file_is_the_same_whenever_the_queue_is_flushed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Flushing at every append (as an unqueued writer wrote), at the limits of a tiny queue
    and only at the end give the same datasets: frames, exposure indices, tags, the logs, the
    stage's move rows with their ends, a lost frame and its event."""
    files = {}
    for name, interval, tags, frame_bytes in (("every", 0.0, 2_000_000, 16 << 20),
                                              ("limits", 1e9, 1000, 1),
                                              ("end", 1e9, 10**9, 10**12)):
        monkeypatch.setattr(writer_module, "FLUSH_INTERVAL_S", interval)
        monkeypatch.setattr(writer_module, "TAG_BUFFER_LIMIT", tags)
        monkeypatch.setattr(writer_module, "FRAME_BUFFER_BYTES", frame_bytes)
        files[name] = _contents(_run_to(tmp_path / f"{name}.h5"))
    every = files["every"]
    assert np.asarray(every["camera/exposure_index"]).tolist() == [*range(4), *range(5, 12)]
    assert np.asarray(every["camera/lost_exposure_index"]).tolist() == [4]
    assert np.asarray(every["events/kind"]).tolist() == [b"lost_frame"]
    ends = np.asarray(every["stage/move_end_s"])
    assert ends.shape[0] == 2 and np.all(np.isfinite(ends))  # each move's own row got its end
    assert np.all(np.asarray(every["stage/move_start_s"]) < ends)
    assert np.asarray(every["cryostat/log_time_s"]).shape[0] >= 12
    _assert_same(every, files["limits"])
    _assert_same(every, files["end"])


def test_a_disk_that_fills_keeps_the_frames_then_the_tags_that_fit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """All data queued to the end; the room left then holds three frames and 300 tags: those
    are written (the first ones of an unhindered run), the rest is not, the run is failed."""
    reference = tmp_path / "reference.h5"
    _run(reference)
    monkeypatch.setattr(writer_module, "FLUSH_INTERVAL_S", 1e9)
    monkeypatch.setattr(writer_module, "TAG_BUFFER_LIMIT", 10**9)
    with h5py.File(reference, "r") as f:
        frame_bytes = f["camera/frames"][0].nbytes + 8  # and its exposure index
        ref_frames = f["camera/frames"][:]
        ref_t = f["tags/timestamp_ps"][:]
        ref_ch = f["tags/channel"][:]
        ref_cryostat = f["cryostat/sample_temperature_k"][:]
    room = 3 * frame_bytes + 300 * 12
    real_room_left, real_begin = writer_module.room_left, writer_module.MeasurementWriter.begin
    began: list[bool] = []

    def begin(self: writer_module.MeasurementWriter, meta: writer_module.RunMetadata) -> None:
        real_begin(self, meta)
        began.append(True)

    def room_left(file: Path) -> tuple[int, str, str]:
        left, cause, figures = real_room_left(file)
        return (room, "the disk is full", "a small disk") if began else (left, cause, figures)

    monkeypatch.setattr(writer_module.MeasurementWriter, "begin", begin)
    monkeypatch.setattr(writer_module, "room_left", room_left)
    out = tmp_path / "full.h5"
    with pytest.raises(WriteError, match="the disk is full"):
        _run(out)
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "failed"
        np.testing.assert_array_equal(f["camera/frames"][:], ref_frames[:3])
        assert f["camera/exposure_index"][:].tolist() == [0, 1, 2]
        np.testing.assert_array_equal(f["tags/timestamp_ps"][:], ref_t[:300])
        np.testing.assert_array_equal(f["tags/channel"][:], ref_ch[:300])
        # the log rows are small: they go in the reserve
        np.testing.assert_array_equal(f["cryostat/sample_temperature_k"][:], ref_cryostat)
