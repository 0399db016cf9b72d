"""The Qt-free parts behind the GUI: the rig session and the live accumulation (headless)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import (
    DIPOLE_DEG,
    HC_EV_NM,
    ZPL_EV,
    apd_photons,
    fast_config,
    file_status,
    summed_spectrum,
)

from cryoscope.acquisition import RunState
from cryoscope.analysis.flid import Flid, FlidBins
from cryoscope.analysis.photons import collect_photons
from cryoscope.datafile import iter_tag_chunks, open_measurement, read_frames, read_timing
from cryoscope.live import LiveAccumulator, LiveFlid, flat_background_per_bin, replay_measurement
from cryoscope.session import (
    CommandFailed,
    InstrumentStatuses,
    MoveWaveplate,
    RigSession,
    RunFinished,
    SessionEvent,
    SessionState,
    SetExposure,
    SetSetpoint,
)
from cryoscope.session.monitors import rising_counts
from drivers.interfaces import InstrumentError, ReadMode, TagBlock, TagEventType, Track
from sim_hardware.camera import SimCamera
from sim_hardware.stage import SimRotationStage


class Recorder:
    """Collects session events (called on the worker thread)."""

    def __init__(self) -> None:
        self.events: list[SessionEvent] = []
        self.lock = threading.Lock()

    def __call__(self, event: SessionEvent) -> None:
        with self.lock:
            self.events.append(event)

    def of(self, kind: type) -> list:
        with self.lock:
            return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LiveAccumulator]:
    """One short series at full speed, accumulated live."""
    path = tmp_path_factory.mktemp("live") / "run.h5"
    session = RigSession(fast_config("max"))
    try:
        session.connect().result(30)
        live = LiveAccumulator()
        result = session.start_run("polarization_series", path, listeners=[live.feed]).result(60)
    finally:
        session.close()
    assert result.state is RunState.COMPLETE
    return path, live


def test_live_spectrum_peaks_at_the_simulated_zpl(measured: tuple[Path, LiveAccumulator]
                                                   ) -> None:
    path, live = measured
    spectra = live.spectra()
    assert spectra is not None and spectra.frames == 80
    energy, total = summed_spectrum(path)
    np.testing.assert_allclose(spectra.energy_ev, energy)
    np.testing.assert_allclose(spectra.total, total, rtol=1e-9, atol=1e-6)
    pixel_ev = float(np.abs(np.diff(energy)).max())
    assert abs(spectra.peak_ev() - ZPL_EV) < 2 * pixel_ev
    assert HC_EV_NM / spectra.wavelength_nm[np.argmax(spectra.total)] == spectra.peak_ev()
    # Frame times from the camera's exposure edges: 0.5 s exposures + 2 ms frame gap.
    assert spectra.frame_start_s.shape == (80,)
    np.testing.assert_allclose(np.diff(spectra.frame_start_s), 0.502, atol=1e-6)


def _in_exposures(path: Path) -> tuple[np.ndarray, int, int]:
    """Which of the file's photons (:func:`collect_photons` order) arrived from the first
    frame's exposure start to the last frame's exposure end, and those two times (ps)."""
    table = collect_photons(path)
    start, stop = int(table.frames.start_ps[0]), int(table.frames.stop_ps[-1])
    return (table.time_ps >= start) & (table.time_ps < stop), start, stop


def test_live_decay_and_intensity_match_the_file(measured: tuple[Path, LiveAccumulator]
                                                 ) -> None:
    path, live = measured
    table = collect_photons(path)
    inside, start, stop = _in_exposures(path)
    # photons before the first and after the last exposure are in the file, but not counted
    assert np.count_nonzero(~inside) > 1000 and apd_photons(path) == table.n
    decay = live.decay()
    assert decay is not None
    period_bins = decay.counts.shape[0]
    delay = table.delay_ps[inside & (table.delay_ps >= 0)]
    np.testing.assert_array_equal(
        decay.counts, np.bincount(delay * period_bins // table.laser_period_ps,
                                  minlength=period_bins))
    assert decay.centers_ns[np.argmax(decay.counts)] == pytest.approx(5.0, abs=0.5)  # APD delay
    trace = live.intensity_trace()
    assert trace is not None
    bin_ps = round(trace.bin_s * 1e12)
    expected = np.bincount((table.time_ps[inside] - start) // bin_ps,
                           minlength=-(-(stop - start) // bin_ps))
    np.testing.assert_array_equal(trace.counts, expected)
    assert trace.counts.shape[0] * trace.bin_s == pytest.approx(40.0, rel=0.05)
    assert 10e3 < float(np.median(trace.rate_cps)) < 50e3


def test_live_polarization_finds_the_dipole(measured: tuple[Path, LiveAccumulator]) -> None:
    _, live = measured
    spectra = live.spectra()
    assert spectra is not None
    peak = spectra.peak_ev()
    pol = live.polarization(peak - 0.0015, peak + 0.0015)
    assert pol.fit is not None, pol.message
    assert pol.theta_deg == pytest.approx(np.arange(0.0, 100.0, 10.0), abs=0.05)
    assert pol.fit.phi_deg == pytest.approx(DIPOLE_DEG, abs=2.0)
    assert pol.fit.p == pytest.approx(0.7, abs=0.05)


def _file_flid(path: Path, live: LiveFlid) -> Flid:
    """The FLID of the file's photons as ``analyze_file`` bins it (the photons of the frames'
    exposures, time bins from the first one's start), with the live FLID's gate and
    background."""
    table = collect_photons(path)
    inside, start, _ = _in_exposures(path)
    bins = FlidBins(start, live.gate_start_ns, live.gate_ns, live.flid.bin_s)
    bins.add(table.time_ps[inside], table.delay_ps[inside])
    return bins.flid(background_cps=live.background_cps, period_ps=table.laser_period_ps,
                     delay_bins=live.flid.histogram.shape[1])


def _assert_same_flid(live: LiveAccumulator, path: Path) -> None:
    """The live FLID is the file analysis' FLID, and its time bins are the intensity trace's."""
    result = live.flid()
    trace = live.intensity_trace()
    assert result is not None and trace is not None
    ref = _file_flid(path, result)
    np.testing.assert_array_equal(result.flid.histogram, ref.histogram)
    np.testing.assert_allclose(result.flid.mean_delay_ns, ref.mean_delay_ns, equal_nan=True)
    n = min(trace.counts.shape[0], result.flid.counts.shape[0])
    assert n > 100
    np.testing.assert_array_equal(result.flid.counts[:n], trace.counts[:n])


def test_live_flid_is_the_file_analysis_flid_with_its_background(
        measured: tuple[Path, LiveAccumulator]) -> None:
    path, live = measured
    result = live.flid()
    assert result is not None
    fl = result.flid
    assert fl.histogram.sum() == np.count_nonzero(np.isfinite(fl.mean_delay_ns))
    # 70 % of the photons decay with 100 ns: the mean delay in a 300 ns gate is tens of ns.
    assert 30.0 < float(np.nanmedian(fl.mean_delay_ns)) < 120.0
    assert result.gate_ns == 300.0
    # the simulated stray light (200 counts/s) and APD dark counts (25 counts/s)
    assert result.background_cps == pytest.approx(225.0, rel=0.25)
    _assert_same_flid(live, path)


def _array_bytes(obj: object, seen: set[int] | None = None) -> int:
    """Bytes of every numpy array reachable from ``obj``'s attributes, lists and tuples."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, list | tuple):
        return sum(_array_bytes(item, seen) for item in obj)
    if hasattr(obj, "__dict__") and type(obj).__module__.startswith(("cryoscope", "gui")):
        return sum(_array_bytes(value, seen) for value in vars(obj).values())
    return 0


def test_live_tag_data_built_block_by_block_is_the_one_pass_result_and_bounded(
        measured: tuple[Path, LiveAccumulator]) -> None:
    """Fed in small tag blocks, each frame once its exposure has ended, and read now and then (as
    the display does), the accumulator bins the same decay, trace and FLID as in one pass, and
    keeps histograms, not photons."""
    path, _ = measured
    meas = open_measurement(path)
    assert meas.exposure_index is not None
    frames = read_frames(path)
    exposure_end = read_timing(meas)[2].stop_ps
    channel_map = {"apd": meas.apd_channel, "laser_sync": meas.sync_channel,
                   "camera_fire": meas.camera_channel, "stage_motion": meas.stage_channel}
    stepwise = LiveAccumulator()
    added = 0
    for k, (timestamps, channels) in enumerate(iter_tag_chunks(path, 20_000)):
        stepwise.add_tags(timestamps, channels, channel_map, meas.laser_period_ps,
                          meas.conditional_filter)
        ended = int(np.searchsorted(exposure_end, timestamps[-1]))
        if ended > added:
            stepwise.add_frames(frames[added:ended], added, meas.wavelength_nm,
                                meas.track_names, 0.0, False, meas.exposure_index[added:ended])
            added = ended
        if k % 7 == 0:
            stepwise.flid()
            stepwise.intensity_trace()
    assert added == frames.shape[0] == 80
    stepwise.finish_tags()
    one_pass = replay_measurement(path).live
    a, b = stepwise.decay(), one_pass.decay()
    assert a is not None and b is not None
    np.testing.assert_array_equal(a.counts, b.counts)
    ta, tb = stepwise.intensity_trace(), one_pass.intensity_trace()
    assert ta is not None and tb is not None
    np.testing.assert_array_equal(ta.counts, tb.counts)
    assert stepwise.photons == one_pass.photons > 100_000
    # the FLID from its per-bin sums is the file analysis' FLID of all the photons
    _assert_same_flid(stepwise, path)
    live_flid = stepwise.flid()
    assert live_flid is not None
    # its gate is placed from the decay's peak (the APD's 5 ns delay) + 1 ns
    assert live_flid.gate_start_ns == pytest.approx(6.0, abs=0.5)
    # bounded: kept for the tags are histograms (trace, decay, FLID sums: ~0.3 MB), not 16
    # bytes a photon
    frames_only = LiveAccumulator()
    frames_only.add_frames(frames, 0, meas.wavelength_nm, meas.track_names, 0.0, False,
                           meas.exposure_index)
    tag_bytes = _array_bytes(stepwise) - _array_bytes(frames_only)
    assert tag_bytes < 1_000_000 < 16 * stepwise.photons


def test_flat_background_is_read_where_the_decay_has_died_out() -> None:
    period_ns, bins = 1000.0, 1000
    centers = (np.arange(bins) + 0.5) * period_ns / bins
    decay = np.full(bins, 7, np.int64)
    decay[5:] += (1000 * np.exp(-(centers[5:] - 5.0) / 20.0)).astype(np.int64)
    assert flat_background_per_bin(decay, 5.5, period_ns) == pytest.approx(7.0)


def test_replay_shows_what_the_run_showed(measured: tuple[Path, LiveAccumulator]) -> None:
    path, live = measured
    replay = replay_measurement(path)
    assert replay.status == "complete"
    a, b = live.spectra(), replay.live.spectra()
    assert a is not None and b is not None
    np.testing.assert_allclose(a.total, b.total)
    assert replay.decay_fit is not None
    assert sorted(replay.decay_fit.taus_ns) == pytest.approx([1.5, 100.0], rel=0.1)
    peak = a.peak_ev()
    pol = replay.live.polarization(peak - 0.0015, peak + 0.0015)
    assert pol.fit is not None and pol.fit.phi_deg == pytest.approx(DIPOLE_DEG, abs=2.0)


def test_image_readout_gives_spectra_from_the_configured_tracks(tmp_path: Path) -> None:
    config = fast_config("max", frames=6).with_overrides("camera", readout="image")
    tracks = tuple(Track(t.name, t.row_start, t.row_stop) for t in config.camera.tracks)
    live = LiveAccumulator(image_tracks=tracks)
    path = tmp_path / "image.h5"
    session = RigSession(config)
    try:
        session.connect().result(30)
        session.start_run("polarization_series", path, listeners=[live.feed]).result(60)
    finally:
        session.close()
    frame = live.latest_frame()
    assert frame is not None and frame.mode is ReadMode.IMAGE
    assert frame.image.shape == (1024, 1024) and frame.index == 5
    spectra = live.spectra()
    assert spectra is not None and spectra.frames == 6
    assert abs(spectra.peak_ev() - ZPL_EV) < 1e-3
    replay = replay_measurement(path)
    again = replay.live.spectra()
    assert again is not None
    np.testing.assert_allclose(again.total, spectra.total)


def test_rising_counts_count_rising_time_tags_per_input() -> None:
    channels = np.array([1, 2, -2, 1, 4, 1, -1, 2, 1], np.int32)
    types = np.full(channels.shape, TagEventType.TIME_TAG, np.uint8)
    types[5] = TagEventType.MISSED_EVENTS  # not a tag of its own
    block = TagBlock(np.arange(channels.shape[0], dtype=np.int64), channels, types,
                     np.zeros(channels.shape, np.int32))
    assert rising_counts(block) == {1: 3, 2: 2, 4: 1}
    assert rising_counts(TagBlock.empty()) == {}


def test_session_serializes_commands_and_polls_statuses() -> None:
    rec = Recorder()
    session = RigSession(fast_config("max"), on_event=rec, status_interval_s=0.05)
    try:
        session.connect().result(30)
        futures = [session.send(MoveWaveplate(15.0)), session.send(SetExposure(0.2)),
                   session.send(SetSetpoint(5.0))]
        for f in futures:
            f.result(10)
        angle = session.command("read the angle", lambda rig: rig.stage.angle_deg()).result(10)
        assert 0.0 <= angle <= 15.0
        session.command("wait for the move", lambda rig: rig.clock.sleep(3.0)).result(10)

        def latest() -> InstrumentStatuses:
            return rec.of(InstrumentStatuses)[-1]
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and (latest().statuses["stage"].moving
                                               or 1 not in latest().count_rates_cps):
            time.sleep(0.05)
        status = latest()
        assert status.statuses["stage"].angle_deg == pytest.approx(15.0, abs=1e-6)
        assert status.statuses["camera"].exposure_s == pytest.approx(0.2)
        assert status.statuses["cryostat"].setpoint_k == pytest.approx(5.0)
        assert 10e3 < status.count_rates_cps[1] < 60e3  # the APD, seen while idle
        assert not rec.of(CommandFailed)
    finally:
        session.close()
    assert session.state is SessionState.CLOSED


def test_failing_command_is_reported_and_the_rig_is_safe(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    def broken(self: SimRotationStage, angle_deg: float) -> None:
        raise InstrumentError("stage", "motor stalled")

    rec = Recorder()
    session = RigSession(fast_config("max"), on_event=rec)
    try:
        session.connect().result(30)
        monkeypatch.setattr(SimRotationStage, "start_move_to", broken)
        with pytest.raises(InstrumentError, match="motor stalled"):
            session.send(MoveWaveplate(20.0)).result(10)
        failed = rec.of(CommandFailed)
        assert failed and failed[-1].message == "stage: motor stalled"
        moving, acquiring = session.command(
            "check", lambda rig: (rig.stage.is_moving(), rig.camera.is_acquiring())).result(10)
        assert not moving and not acquiring
        assert session.state is SessionState.IDLE
    finally:
        session.close()


def test_run_failure_marks_the_file_and_leaves_the_rig_safe(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    original = SimCamera.read_new_frames

    def failing(self: SimCamera):  # type: ignore[no-untyped-def]
        block = original(self)
        if block.first_index + len(block) > 10:
            raise InstrumentError("camera", "readout timed out")
        return block

    monkeypatch.setattr(SimCamera, "read_new_frames", failing)
    rec = Recorder()
    session = RigSession(fast_config("max"), on_event=rec)
    path = tmp_path / "failed.h5"
    try:
        session.connect().result(30)
        with pytest.raises(InstrumentError):
            session.start_run("polarization_series", path).result(60)
        assert file_status(path) == "failed"
        assert any("readout timed out" in e.message for e in rec.of(CommandFailed))
        assert rec.of(RunFinished)[-1].result is None
        safe = session.command("check", lambda rig: (rig.camera.is_acquiring(),
                                                     rig.stage.is_moving()))
        assert safe.result(10) == (False, False)
        assert session.state is SessionState.IDLE
    finally:
        session.close()


def test_settings_are_refused_during_a_run_and_close_aborts_it(tmp_path: Path) -> None:
    rec = Recorder()
    session = RigSession(fast_config(5.0, frames=400), on_event=rec)
    path = tmp_path / "closed.h5"
    session.connect().result(30)
    run = session.start_run("polarization_series", path)
    while session.state is not SessionState.RUNNING:
        threading.Event().wait(0.01)
    with pytest.raises(RuntimeError, match="while a run is going"):
        session.send(SetExposure(1.0)).result(1)
    session.close()
    assert run.result(1).state is RunState.ABORTED
    assert file_status(path) == "aborted"


def test_plan_parameters_are_validated() -> None:
    session = RigSession(fast_config("max"))
    try:
        with pytest.raises(ValueError, match="frames"):
            session.start_run("polarization_series", "x.h5", frames=0)
        with pytest.raises(ValueError, match="unknown plan"):
            session.start_run("no_such_plan", "x.h5")
    finally:
        session.close()


def test_gui_cli_imports_no_qt() -> None:
    code = ("import sys, cryoscope.cli as c; c.build_parser(); "
            "assert not [m for m in sys.modules if m.startswith(('PyQt6', 'pyqtgraph'))]")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
