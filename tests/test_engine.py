"""The run engine: every run of an open rig right, pause and resume, lost frames, the second
plan, file claims, chunked reading, two APDs live and replayed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from cryoscope import api
from cryoscope.acquisition import FramesAcquired, RunControl, RunEvent, RunState
from cryoscope.analysis import analyze_file
from cryoscope.analysis.photons import collect_photons, photon_table_from_tags
from cryoscope.config import Config
from cryoscope.datafile import (
    OutputBusyError,
    OutputClaim,
    OutputExistsError,
    open_measurement,
    read_timing,
)
from cryoscope.live import LiveAccumulator, replay_measurement
from tests.analysis.simfiles import emitter
from tests.spine_helpers import small_config

FAST = {"exposure_s": 0.25, "waveplate_step_deg": 5.0, "waveplate_dwell_s": 1.5}


def _config(**plan: float | int) -> Config:
    """One steady, bright, well-polarized center (φ 30°, p 0.7) without a biexciton line: φ is
    then known to a degree, whatever the default particle does."""
    base = small_config(**{**FAST, **plan})
    return base.with_overrides("sample", emitters=[emitter(biexciton_binding_mev=0.0)])


def _phis(path: Path) -> list[float]:
    result = analyze_file(path, change_points=False)
    return [ln.polarization.phi_deg for ln in result.lines if ln.polarization is not None]


def _stage_edges(path: Path) -> tuple[int, int, int]:
    with h5py.File(path, "r") as f:
        ch = f["tags/channel"][:]
        stage = int(f["channels"].attrs["stage_motion"])
        return (int(np.sum(ch == stage)), int(np.sum(ch == -stage)),
                int(f["stage/target_deg"].shape[0]))


def test_three_runs_on_one_open_rig_each_read_phi_right(tmp_path: Path) -> None:
    config = _config(frames=48)
    truth = config.sample.emitters[0].dipole_angle_deg
    with api.open_rig(config) as rig:
        for k in range(3):
            live: list[FramesAcquired] = []

            def listen(event: RunEvent, store: list[FramesAcquired] = live) -> None:
                if isinstance(event, FramesAcquired):
                    store.append(event)

            path = tmp_path / f"run{k}.h5"
            result = api.run_polarization_series(rig, path, config.plan, listeners=[listen],
                                                 measurement={"particle": f"P{k}"})
            assert result.state is RunState.COMPLETE
            assert open_measurement(path).metadata["particle"] == f"P{k}"
            rising, falling, moves = _stage_edges(path)
            assert rising == falling == moves > 0  # every edge of the file is a move of its own
            timing = read_timing(open_measurement(path))[2]
            moving = np.concatenate([e.stage_moving for e in live])
            theta = np.concatenate([e.waveplate_deg for e in live])
            np.testing.assert_array_equal(moving, timing.moving)
            assert 0 < moving.sum() < moving.size
            # a frame exposed during a move is shown live before the move has ended
            np.testing.assert_allclose(theta[~moving], timing.theta_deg[~moving])
            phis = _phis(path)
            assert phis, f"run {k}: no polarization fitted"
            for phi in phis:
                assert abs((phi - truth + 90) % 180 - 90) < 3.0, (k, phis)


def test_time_series_plan_from_api_and_cli(tmp_path: Path) -> None:
    config = _config(frames=12)
    with api.open_rig(config) as rig:
        result = api.run(rig, "time_series", tmp_path / "ts.h5", frames=12, waveplate_deg=22.5)
    assert result.state is RunState.COMPLETE and result.frames == 12
    meas = open_measurement(tmp_path / "ts.h5")
    assert meas.plan["name"] == "time_series" and meas.plan["waveplate_deg"] == 22.5
    assert meas.target_deg.size == 0
    timing = read_timing(meas)[2]
    np.testing.assert_allclose(timing.theta_deg, 22.5, atol=1e-6)
    assert not timing.moving.any()

    out = tmp_path / "cli.h5"
    done = subprocess.run([sys.executable, "-m", "cryoscope.cli", "run", "--plan", "time_series",
                           "--frames", "6", "--exposure", "0.2", "--param", "waveplate_deg=10",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    cli_meas = open_measurement(out)
    assert cli_meas.plan["name"] == "time_series" and cli_meas.n_frames == 6
    bad = subprocess.run([sys.executable, "-m", "cryoscope.cli", "run", "--plan", "time_series",
                          "--step-deg", "5", "--out", str(tmp_path / "bad.h5")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "plan.waveplate_step_deg" in bad.stderr
    assert not (tmp_path / "bad.h5").exists()


def test_pause_and_resume_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    frames = 40
    config = _config(frames=frames)
    control = RunControl()
    seen: list[int] = []

    def listen(event: RunEvent) -> None:
        if isinstance(event, FramesAcquired):
            seen.extend(range(event.block.first_index,
                              event.block.first_index + len(event.block)))
            if len(seen) >= 15 and not control.pause_requested and len(seen) < 30:
                control.request_pause()

    def resume_later(event: RunEvent) -> None:
        from cryoscope.acquisition import Progress

        if isinstance(event, Progress) and control.pause_requested:
            paused.append(event)
            if len(paused) > 10:  # ~2 s: progress comes every 0.2 s while paused
                control.request_resume()

    paused: list[object] = []
    path = tmp_path / "paused.h5"
    with api.open_rig(config) as rig:
        result = api.run_polarization_series(rig, path, config.plan, control=control,
                                             listeners=[listen, resume_later])
    assert result.state is RunState.COMPLETE
    assert seen == list(range(frames))  # every frame once, in order
    meas = open_measurement(path)
    assert meas.n_frames == frames
    assert [e.kind for e in meas.events] == ["pause", "resume"]
    pauses = meas.pauses_ps
    assert pauses.shape == (1, 2) and pauses[0, 1] - pauses[0, 0] > 1.5e12
    index = meas.exposure_index
    assert index is not None and np.all(np.diff(index) >= 1)
    with h5py.File(path, "r") as f:
        t = f["tags/timestamp_ps"][:]
    assert np.all(np.diff(t) >= 0)  # no tag twice, none out of order
    timing = read_timing(meas)[2]
    assert timing.n == frames
    # no exposure inside the pause
    inside = (timing.start_ps < pauses[0, 1]) & (timing.stop_ps > pauses[0, 0])
    assert not inside.any()
    result_phi = _phis(path)
    truth = config.sample.emitters[0].dipole_angle_deg
    assert result_phi and all(abs((p - truth + 90) % 180 - 90) < 4.0 for p in result_phi)
    analysis = analyze_file(path, change_points=False)
    trace = analysis.trace
    gap = (trace.start_s * 1e12 >= pauses[0, 0]) & (trace.start_s * 1e12 + 1e10 <= pauses[0, 1])
    assert gap.sum() > 100 and trace.counts[gap].sum() == 0  # the gap holds no photon


def test_a_lost_frame_is_recorded_and_analysed(tmp_path: Path) -> None:
    config = _config(frames=30)
    path = tmp_path / "lost.h5"
    with api.open_rig(config) as rig:
        rig.camera.lose_frames([7])  # type: ignore[attr-defined]
        result = api.run_polarization_series(rig, path, config.plan)
    assert result.state is RunState.COMPLETE and result.frames == 29
    meas = open_measurement(path)
    assert meas.lost_frames.tolist() == [7]
    assert [e.kind for e in meas.events] == ["lost_frame"]
    assert meas.exposure_index is not None
    assert meas.exposure_index.tolist() == [*range(7), *range(8, 30)]
    photons = collect_photons(path)
    assert photons.frames.n == 29
    assert photons.frames.exposure_to_frame[7] == -1
    # photons of exposure 7 are between frames; the frames after it keep their own timing
    np.testing.assert_array_equal(np.unique(photons.frame[photons.frame >= 0]), np.arange(29))
    assert analyze_file(path, change_points=False).spectra.v.shape[0] == 29


def test_chunked_reading_books_every_photon_once(tmp_path: Path) -> None:
    config = _config(frames=24)
    path = tmp_path / "chunks.h5"
    api.measure(path, config)
    whole = collect_photons(path)
    small = collect_photons(path, chunk_tags=9_973)
    assert whole.n > 50_000 and small.n == whole.n
    for name in ("time_ps", "delay_ps", "frame", "theta_deg", "moving", "detector"):
        np.testing.assert_array_equal(getattr(small, name), getattr(whole, name), err_msg=name)
    assert np.all(np.diff(small.time_ps) >= 0)


def test_two_apds_live_and_replay_count_every_photon(tmp_path: Path) -> None:
    config = _config(frames=16).with_overrides("channels", apd2=5)
    path = tmp_path / "two.h5"
    live = LiveAccumulator()
    result = api.measure(path, config, listeners=[live.feed])
    live.finish_tags()
    with h5py.File(path, "r") as f:
        ch = f["tags/channel"][:]
    on_apds = int(np.sum((ch == 1) | (ch == 5)))
    assert int(np.sum(ch == 5)) > 1000
    assert result.photons == on_apds
    assert live.photons == on_apds
    replay = replay_measurement(path)
    assert replay.live.photons == on_apds
    table = collect_photons(path)
    assert table.n == on_apds
    decay = live.decay()
    assert decay is not None
    np.testing.assert_array_equal(decay.counts, replay.live.decay().counts)  # type: ignore[union-attr]


def test_an_older_file_with_an_unpaired_edge_pairs_edges() -> None:
    """A falling stage edge before any rising edge (the return move of an earlier run) is
    dropped: move k is still the k-th pair."""
    apd, sync, cam, stage, period = 1, 2, 3, 4, 1_000_000
    ts = np.array([10, 100, 200, 300, 400, 500, 600, 700, 800], np.int64) * 1_000_000
    ch = np.array([-stage, cam, apd, -cam, stage, -stage, cam, apd, -cam], np.int32)
    table = photon_table_from_tags(ts, ch, apd=apd, laser_sync=sync, camera_fire=cam,
                                   stage_motion=stage, conditional_filter=False,
                                   laser_period_ps=period, rest_deg=np.array([0.0, 5.0]))
    np.testing.assert_allclose(table.frames.theta_deg, [0.0, 5.0])
    assert table.frames.moving.tolist() == [False, False]
    np.testing.assert_allclose(table.theta_deg, [0.0, 5.0])


def test_a_claimed_output_is_never_shared_or_replaced_by_a_failing_run(tmp_path: Path) -> None:
    path = tmp_path / "m.h5"
    claim = OutputClaim(path)
    assert path.exists()  # created at once
    with pytest.raises(OutputBusyError, match="live run"):
        OutputClaim(path, overwrite=True)
    claim.settle(began=False, succeeded=False)
    assert not path.exists() and not claim.lock_path.exists()
    api.measure(path, _config(frames=4))
    before = path.read_bytes()
    with pytest.raises(OutputExistsError):
        OutputClaim(path)
    replacement = OutputClaim(path, overwrite=True)
    assert replacement.write_path != path
    replacement.write_path.write_bytes(b"partial")
    kept = replacement.settle(began=True, succeeded=False)
    assert path.read_bytes() == before and kept.read_bytes() == b"partial"
    api.measure(path, _config(frames=6), overwrite=True)
    assert open_measurement(path).n_frames == 6
