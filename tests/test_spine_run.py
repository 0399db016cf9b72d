"""The polarization series end to end on the simulated rig: the file, the tags, the physics."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.optimize import curve_fit
from spine_helpers import edges, frame_angles, line_counts, small_config

from cryoscope import api
from cryoscope.acquisition import FramesAcquired, Progress, RunControl, RunEvent, RunState
from cryoscope.backends import open_rig
from drivers.interfaces import InstrumentError

FRAMES = 80
EXPOSURE_S = 0.25
DWELL_S = 2.0


@pytest.fixture(scope="module")
def run_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, api.RunResult]:
    """80 frames of 0.25 s while the waveplate turns 5° every 2 s."""
    path = tmp_path_factory.mktemp("run") / "run.h5"
    config = small_config(frames=FRAMES, exposure_s=EXPOSURE_S, waveplate_step_deg=5.0,
                          waveplate_dwell_s=DWELL_S)
    return path, api.measure(path, config)


def test_file_is_complete_and_self_describing(run_file: tuple[Path, api.RunResult]) -> None:
    path, result = run_file
    assert result.state is RunState.COMPLETE
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "cryoscope"
        assert f.attrs["format_version"] == 2
        np.testing.assert_array_equal(f["camera/exposure_index"][:], np.arange(FRAMES))
        assert f["camera/lost_exposure_index"].shape == (0,)
        assert f["events/kind"].shape == (0,)
        assert f.attrs["status"] == "complete"
        assert f.attrs["error"] == ""
        plan = json.loads(f.attrs["plan"])
        assert plan["name"] == "polarization_series" and plan["frames"] == FRAMES
        assert "[plan]" in f.attrs["config_toml"]
        pixels = f["spectrograph/wavelength_nm"].shape[0]
        assert f["camera/frames"].shape == (FRAMES, 2, pixels)
        assert list(f["camera"].attrs["track_names"]) == ["V", "H"]
        assert f["camera/frames"].dtype == np.uint16
        assert f["tags/timestamp_ps"].dtype == np.int64
        assert f["tags/channel"].dtype == np.int32
        assert f["cryostat/sample_temperature_k"].shape[0] >= 15
        assert np.all(np.abs(f["cryostat/sample_temperature_k"][:] - 4.0) < 0.5)
        assert f["laser/power_nw"][0] == pytest.approx(300.0)
        assert f["simulation/frame_state"].shape == (FRAMES, 1)
        assert np.all(np.diff(f["tags/timestamp_ps"][:]) >= 0)


def test_one_exposure_edge_pair_per_frame(run_file: tuple[Path, api.RunResult]) -> None:
    path, _ = run_file
    cam = edges(path, "camera_fire")
    assert cam.rising.shape[0] == FRAMES and cam.falling.shape[0] == FRAMES
    exposure_ps = round(EXPOSURE_S * 1e12)
    np.testing.assert_array_equal(cam.falling - cam.rising, np.full(FRAMES, exposure_ps))
    assert np.all(cam.rising[1:] > cam.falling[:-1])


def test_one_motion_edge_pair_per_waveplate_step(run_file: tuple[Path, api.RunResult]) -> None:
    path, _ = run_file
    stage = edges(path, "stage_motion")
    with h5py.File(path, "r") as f:
        targets = f["stage/target_deg"][:]
        reached = f["stage/reached_deg"][:]
    steps = targets.shape[0]
    # a step every DWELL_S while the series (frames x (exposure + 2 ms)) runs
    assert steps == int(FRAMES * (EXPOSURE_S + 0.002) // DWELL_S)
    assert stage.rising.shape[0] == steps and stage.falling.shape[0] == steps
    np.testing.assert_allclose(targets, 5.0 * np.arange(1, steps + 1))
    np.testing.assert_allclose(reached, targets, atol=1e-6)
    # a 5° move of a PRM1-Z8 at 25 °/s and 25 °/s² is triangular: 2·sqrt(5/25) s
    np.testing.assert_allclose((stage.falling - stage.rising) / 1e12, 2 * np.sqrt(5 / 25),
                               atol=1e-9)


def test_conditional_filter_passes_the_next_sync_after_each_click(
        run_file: tuple[Path, api.RunResult]) -> None:
    path, _ = run_file
    with h5py.File(path, "r") as f:
        t = f["tags/timestamp_ps"][:]
        ch = f["tags/channel"][:]
        period = int(f["channels"].attrs["laser_period_ps"])
        assert bool(f["channels"].attrs["conditional_filter"])
    clicks, syncs = t[ch == 1], t[ch == 2]
    assert clicks.shape[0] > 100_000
    nxt = np.searchsorted(syncs, clicks, side="left")
    assert nxt.max() < syncs.shape[0] or clicks[-1] > syncs[-1]
    valid = nxt < syncs.shape[0]
    gap = syncs[nxt[valid]] - clicks[valid]
    assert gap.min() >= 0 and gap.max() <= period
    assert np.all(syncs % period == 0)  # sync tags sit on the laser's pulse train
    assert syncs.shape[0] <= clicks.shape[0]


def test_vh_follows_the_dipole(run_file: tuple[Path, api.RunResult]) -> None:
    """V/(V+H) over the rotation follows p·cos(4θ − 2φ) of the simulated dipole."""
    path, _ = run_file
    config = small_config()
    emitter = config.sample.emitters[0]
    theta, still = frame_angles(path)
    counts = line_counts(path, emitter.zpl_ev)[still]
    theta = np.deg2rad(theta[still])
    assert np.unique(theta).shape[0] >= 8

    def share_v(th: np.ndarray, p: float, phi: float, ratio: float) -> np.ndarray:
        m = p * np.cos(4 * th - 2 * phi)
        return ratio * (1 + m) / (ratio * (1 + m) + (1 - m))

    v, h = counts[:, 0], counts[:, 1]
    (p, phi, ratio), _ = curve_fit(share_v, theta, v / (v + h), p0=[0.5, 0.3, 1.0])
    if p < 0:
        p, phi = -p, phi + np.pi / 2
    phi_deg = np.rad2deg(phi) % 180
    assert phi_deg == pytest.approx(emitter.dipole_angle_deg, abs=3.0)
    assert p == pytest.approx(emitter.polarization_degree, abs=0.1)
    assert ratio == pytest.approx(config.optics.transmission_v / config.optics.transmission_h,
                                  rel=0.05)


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    config = small_config(frames=6, exposure_s=0.2, waveplate_dwell_s=0.5)
    paths = [tmp_path / f"{name}.h5" for name in ("a", "b", "c")]
    api.measure(paths[0], config)
    api.measure(paths[1], config)
    api.measure(paths[2], config.with_overrides("simulation", seed=2))
    data = []
    for path in paths:
        with h5py.File(path, "r") as f:
            data.append({name: f[name][:] for name in
                         ("tags/timestamp_ps", "tags/channel", "camera/frames",
                          "stage/reached_deg")})
    for name, value in data[0].items():
        np.testing.assert_array_equal(value, data[1][name], err_msg=name)
    assert not np.array_equal(data[0]["camera/frames"], data[2]["camera/frames"])


def test_stop_request_aborts_and_leaves_the_rig_safe(tmp_path: Path) -> None:
    config = small_config(frames=40, exposure_s=0.5, waveplate_dwell_s=1.0)
    control = RunControl()
    seen: list[int] = []

    def stop_after_ten_frames(event: RunEvent) -> None:
        if isinstance(event, Progress):
            seen.append(event.frames_done)
            if event.frames_done >= 10 and event.stage_moving:
                control.request_stop("enough")

    path = tmp_path / "stopped.h5"
    with open_rig(config) as rig:
        result = api.run_polarization_series(rig, path, config.plan, control=control,
                                             listeners=[stop_after_ten_frames])
        assert not rig.camera.is_acquiring()
        assert not rig.stage.is_moving()
        assert rig.tagger.status().streaming is False
        angle = rig.stage.angle_deg()
        rig.clock.sleep(2.0)
        assert rig.stage.angle_deg() == angle
    assert result.state is RunState.ABORTED
    assert 10 <= result.frames < 40
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "aborted"
        assert f.attrs["error"] == "enough"
        assert f["camera/frames"].shape[0] == result.frames
        frames = f["camera/frames"][:]
    assert np.all(frames.reshape(result.frames, -1).mean(axis=1) > 200)  # real data, not zeros
    stage = edges(path, "stage_motion")
    # the move running at the stop was cut short: its falling edge is at the stop
    assert stage.rising.shape[0] == stage.falling.shape[0]
    cam = edges(path, "camera_fire")
    assert cam.rising.shape[0] == cam.falling.shape[0] >= result.frames


def test_instrument_error_fails_the_run_and_leaves_the_rig_safe(tmp_path: Path) -> None:
    config = small_config(frames=20, exposure_s=0.5)
    path = tmp_path / "failed.h5"
    with open_rig(config) as rig:
        original = rig.cryostat.status
        calls = {"n": 0}

        def failing_status():  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] > 3:
                raise InstrumentError("cryostat", "connection lost")
            return original()

        rig.cryostat.status = failing_status  # type: ignore[method-assign]
        with pytest.raises(InstrumentError, match="connection lost"):
            api.run_polarization_series(rig, path, config.plan)
        assert not rig.camera.is_acquiring()
        assert not rig.stage.is_moving()
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "failed"
        assert "cryostat: connection lost" in f.attrs["error"]
        assert f["camera/frames"].shape[0] >= 2


def test_ctrl_c_aborts(tmp_path: Path) -> None:
    config = small_config(frames=20, exposure_s=0.5)

    def interrupt(event: RunEvent) -> None:
        if isinstance(event, Progress) and event.frames_done >= 5:
            raise KeyboardInterrupt

    path = tmp_path / "interrupted.h5"
    result = api.measure(path, config, listeners=[interrupt])
    assert result.state is RunState.ABORTED
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "aborted"
        assert "Ctrl-C" in f.attrs["error"]
        assert f["camera/frames"].shape[0] == result.frames >= 5


def test_frames_integrate_only_while_exposing(tmp_path: Path) -> None:
    """Doubling the exposure doubles the line signal per frame; the APD rate is unchanged."""
    signal = {}
    for exposure in (0.2, 0.4):
        path = tmp_path / f"exp{exposure}.h5"
        config = small_config(frames=12, exposure_s=exposure, waveplate_dwell_s=100.0)
        result = api.measure(path, config)
        counts = line_counts(path, config.sample.emitters[0].zpl_ev, half_width_nm=2.0)
        signal[exposure] = (counts.sum(axis=1).mean(), result.count_rate_cps)
    assert signal[0.4][0] / signal[0.2][0] == pytest.approx(2.0, rel=0.05)
    assert signal[0.4][1] == pytest.approx(signal[0.2][1], rel=0.03)


def test_every_node_and_attribute_is_documented(run_file: tuple[Path, api.RunResult]) -> None:
    """docs/file-format.md names every dataset, group and attribute the writer produces."""
    path, _ = run_file
    doc = (Path(__file__).resolve().parent.parent / "docs" / "file-format.md").read_text()
    names: set[str] = set()

    def visit(name: str, node: h5py.HLObject) -> None:
        names.add(name.rsplit("/", 1)[-1])
        names.update(node.attrs.keys())

    with h5py.File(path, "r") as f:
        names.update(f.attrs.keys())
        f.visititems(visit)
    missing = sorted(n for n in names if f"`{n}`" not in doc and f"/{n}`" not in doc)
    assert not missing, f"not in docs/file-format.md: {missing}"


def test_a_warm_camera_gets_its_em_gain_only_once_cold(tmp_path: Path) -> None:
    warm = small_config(frames=4, exposure_s=0.2).with_overrides("optics", camera_start_cold=False)
    with open_rig(warm) as rig:  # connecting a warm camera is fine: the gain waits
        assert rig.camera.em_gain() == 0
        with pytest.raises(InstrumentError, match="no EM gain before the sensor is cold"):
            api.run_polarization_series(rig, tmp_path / "warm.h5")
        assert not rig.camera.is_acquiring()
    patient = warm.with_overrides("camera", wait_for_cooling=True)
    result = api.measure(tmp_path / "cooled.h5", patient)
    assert result.state is RunState.COMPLETE
    with h5py.File(tmp_path / "cooled.h5", "r") as f:
        assert f["camera"].attrs["em_gain"] == patient.camera.em_gain
        assert f["camera"].attrs["cooling_status"] == "stabilized"
        assert f["camera"].attrs["sensor_temperature_c"] == pytest.approx(-80.0, abs=0.3)


def test_live_frames_carry_the_waveplate_angle_of_their_exposure(tmp_path: Path) -> None:
    """Each FramesAcquired frame is labelled with θ and motion as the file's edges tell."""
    config = small_config(frames=30, exposure_s=0.25, waveplate_dwell_s=2.0)
    angles: list[float] = []
    moving: list[bool] = []

    def collect(event: RunEvent) -> None:
        if isinstance(event, FramesAcquired):
            angles.extend(event.waveplate_deg.tolist())
            moving.extend(event.stage_moving.tolist())

    path = tmp_path / "live.h5"
    api.measure(path, config, listeners=[collect])
    theta, still = frame_angles(path)
    assert len(angles) == 30
    np.testing.assert_array_equal(np.asarray(moving), ~still)
    np.testing.assert_allclose(np.asarray(angles)[still], theta[still])
    assert 5 < int((~still).sum()) < 25  # the stage moved during some exposures, not all
