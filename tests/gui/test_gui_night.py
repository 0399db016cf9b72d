"""A night at the microscope in the window: align, name, measure, judge, move on (issue 12)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from gui_helpers import (
    ANALYSIS_TIMEOUT_MS,
    DIPOLE_DEG,
    FAST,
    ZPL_EV,
    apd_photons,
    fast_config,
    file_status,
)
from PyQt6.QtCore import QSettings
from PyQt6.QtTest import QTest

from cryoscope.acquisition import RunState
from cryoscope.live import LiveAccumulator, PolarizationView
from cryoscope.session import (
    CountRateProbe,
    InstrumentStatuses,
    RigSession,
    SessionEvent,
    SessionState,
)
from gui.main_window import MainWindow
from gui.run_panel import next_name
from gui.widgets import MIN_PLOT_HEIGHT, key_line

RUN_TIMEOUT_MS = 60_000


def run_to_end(qtbot: Any, window: MainWindow, **plan: float | int) -> None:
    window.last_run = None
    window.run_panel.set_parameters(**{**FAST, **plan})
    window.run_panel.start.click()
    qtbot.waitUntil(lambda: window.last_run is not None, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.session.state is SessionState.IDLE, timeout=5000)


def live_phi(qtbot: Any, window: MainWindow) -> float:
    """φ of the first region once the polarization view has drawn the finished run."""
    view = window.polarization_view
    angles = round(FAST["frames"] * FAST["exposure_s"] / FAST["waveplate_dwell_s"])
    qtbot.waitUntil(lambda: view.result is not None and view.result.fit is not None
                    and view.result.theta_deg.shape[0] == angles, timeout=10_000)
    assert view.result is not None and view.result.fit is not None
    return view.result.fit.phi_deg


def test_the_particle_follows_the_output_file_typed(window: MainWindow, tmp_path: Path) -> None:
    panel = window.run_panel
    panel.output.clear()
    panel.output.setFocus()
    QTest.keyClicks(panel.output, str(tmp_path / "qd-A1.h5"))
    assert panel.particle.text() == "qd-A1"
    assert panel.measurement()["particle"] == "qd-A1"


def test_names_are_numbered_on() -> None:
    assert next_name("particle-07") == "particle-08"
    assert next_name("particle-99") == "particle-100"
    assert next_name("p9") == "p10"
    assert next_name("dot") == "dot-2"


def test_two_runs_in_one_session_named_numbered_analysed_and_replayed(
        qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    panel = window.run_panel
    panel.output.setText(str(tmp_path / "particle-07.h5"))
    panel.particle.setText("particle-07")
    panel.sample.setText("CdSe/CdS, batch 3")
    panel.notes.setText("bright; centred at 2 µm")

    run_to_end(qtbot, window)
    first = tmp_path / "particle-07.h5"
    assert file_status(first) == "complete"
    with h5py.File(first, "r") as f:
        meta = dict(f["measurement"].attrs)
    assert meta["particle"] == "particle-07"
    assert meta["sample"] == "CdSe/CdS, batch 3"
    assert meta["notes"] == "bright; centred at 2 µm"
    # the name is kept and numbered on, in the same folder
    assert panel.particle.text() == "particle-08"
    assert panel.output.text() == str(tmp_path / "particle-08.h5")
    assert live_phi(qtbot, window) == pytest.approx(DIPOLE_DEG, abs=2.0)
    assert window.spectrum_view.sum.getData()[0] is not None

    # the second run: every view is cleared when it starts
    window.run_panel.set_parameters(**FAST)
    window.last_run = None
    assert panel.progress.value() == FAST["frames"]  # the first run's end
    panel.start.click()
    assert window.session.running or window.last_run is None
    assert panel.progress.value() < 0 and window.strip.frames.text() == "frame 0 / —"
    x, _ = window.spectrum_view.sum.getData()
    assert x is None or len(x) == 0
    assert window.camera_view.image.image is None
    assert window.camera_view.info.text() == "no frame yet"
    assert window.polarization_view.results == ()
    t, _ = window.intensity_view.curve.getData()
    assert t is None or len(t) == 0
    assert window.flid_view.image.image is None and window.trace_view.image.image is None
    qtbot.waitUntil(lambda: window.last_run is not None, timeout=RUN_TIMEOUT_MS)
    second = tmp_path / "particle-08.h5"
    assert file_status(second) == "complete"
    with h5py.File(second, "r") as f:
        assert f["measurement"].attrs["particle"] == "particle-08"
    assert panel.particle.text() == "particle-09"
    # φ right live in the second run of the session, from its own frames
    assert live_phi(qtbot, window) == pytest.approx(DIPOLE_DEG, abs=2.0)

    # the results dock shows the analysis of the run just taken
    qtbot.waitUntil(lambda: window.results.summary is not None
                    and window.results.summary["file"] == str(second),
                    timeout=ANALYSIS_TIMEOUT_MS)
    summary = window.results.summary
    assert summary is not None and summary["frames"] == FAST["frames"]
    assert summary["photons"] == apd_photons(second)
    line = min(summary["lines"], key=lambda ln: abs(ln["zpl_ev"] - ZPL_EV))
    assert line["zpl_ev"] == pytest.approx(ZPL_EV, abs=2e-3)
    assert line["dipole_angle_deg"] == pytest.approx(DIPOLE_DEG, abs=3.0)
    tree = window.results.tree
    texts = [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]
    assert texts[0].startswith("lines (") and texts[1].startswith("states (")
    assert any(st["lifetimes_ns"] for st in summary["states"])
    # the analysis' lines became regions
    assert any(r.source == "analysis" for r in window.regions.regions)

    # the night's runs: both, with their status; a click replays the first
    runs = window.runs
    assert [e.name for e in runs.entries] == ["particle-07", "particle-08"]
    assert runs.table.item(0, 1).text() == "complete"
    qtbot.waitUntil(lambda: runs.entries[1].summary is not None, timeout=ANALYSIS_TIMEOUT_MS)
    shown = key_line(summary)  # the runs table shows the best-measured line: the ZPL's
    assert shown is not None and shown["zpl_ev"] == pytest.approx(ZPL_EV, abs=2e-3)
    assert runs.table.item(1, 2).text() == f"{shown['zpl_ev']:.4f}"
    assert runs.table.item(1, 4).text().startswith(f"{shown['dipole_angle_deg']:.1f}")
    window.replay = None
    runs.table.cellClicked.emit(0, 0)
    qtbot.waitUntil(lambda: window.replay is not None, timeout=30_000)
    assert window.replay is not None and window.replay.measurement.path == first
    assert live_phi(qtbot, window) == pytest.approx(DIPOLE_DEG, abs=2.0)
    # the results follow the file on screen: the first run's analysis, then back to the live's
    assert window.results.summary is not None and window.results.summary["file"] == str(first)
    window.live_action.trigger()
    assert window.results.summary is not None and window.results.summary["file"] == str(second)
    assert window.statusBar().currentMessage() == "showing the live run"  # not the replay's
    assert not window.errors


def test_pause_and_resume_from_the_window(qtbot: Any, window: MainWindow,
                                          tmp_path: Path) -> None:
    panel = window.run_panel
    panel.output.setText(str(tmp_path / "paused.h5"))
    panel.set_parameters(**{**FAST, "frames": 60})
    window.last_run = None
    panel.start.click()
    qtbot.waitUntil(lambda: panel.progress.value() >= 10, timeout=RUN_TIMEOUT_MS)
    assert panel.pause.isEnabled() and not panel.resume.isEnabled()
    panel.pause.click()
    qtbot.waitUntil(panel.resume.isEnabled, timeout=10_000)
    assert not panel.pause.isEnabled()
    assert window.strip.mode.text() == "PAUSED"
    statuses: list[InstrumentStatuses] = []
    window.bridge.statuses.connect(statuses.append)
    # a frame whose exposure ended before the pause may still be read and shown: then nothing
    qtbot.waitUntil(lambda: len(statuses) >= 2, timeout=10_000)
    held = panel.progress.value()
    qtbot.waitUntil(lambda: len(statuses) >= 6, timeout=10_000)  # two seconds of polls
    assert panel.progress.value() == held
    assert not any(s.statuses["camera"].acquiring for s in statuses[1:])
    panel.resume.click()
    qtbot.waitUntil(lambda: window.last_run is not None, timeout=RUN_TIMEOUT_MS)
    result = window.last_run.result
    assert result is not None and result.state is RunState.COMPLETE
    assert result.frames == 60
    with h5py.File(tmp_path / "paused.h5", "r") as f:
        kinds = [k.decode() if isinstance(k, bytes) else str(k)
                 for k in f["events"]["kind"][:]]
    assert kinds.count("pause") == 1 and kinds.count("resume") == 1


def screen_window(qtbot: Any, config: Any, tmp_path: Path) -> MainWindow:
    """A window (not connected, its own settings) shown at 1366 × 768."""
    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(config, settings=settings)
    qtbot.addWidget(window)
    window.resize(1366, 768)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_the_window_fits_a_1366_by_768_screen(qtbot: Any, config: Any, tmp_path: Path) -> None:
    window = screen_window(qtbot, config, tmp_path)
    assert window.width() <= 1366 and window.height() <= 768
    hint = window.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 768
    plots = [view.plot for view in window.views if view.isVisible()]
    assert len(plots) >= 4  # spectrum, polarization, a trace tab, a camera tab
    for plot in plots:
        assert plot.height() >= MIN_PLOT_HEIGHT
    # vertical scrolling only: the panels are no wider than their docks
    for key, scroll in (("instruments", window.instruments_scroll),
                        ("run", window.run_scroll)):
        window.docks[key].raise_()
        qtbot.waitUntil(lambda s=scroll: s.isVisible(), timeout=2000)
        qtbot.wait(50)
        assert not scroll.horizontalScrollBar().isVisible()
        assert scroll.widget().minimumSizeHint().width() <= scroll.viewport().width()

    # what the views show never moves the layout: a full frame in image readout (its levels
    # row and colour bar) and long information lines leave every dock where it was
    docks = {key: dock.geometry() for key, dock in window.docks.items() if dock.isVisible()}
    live = LiveAccumulator()
    window.live = live
    window.show_live()
    frame = np.full((1, 1024, 1024), 300, np.uint16)
    live.add_frames(frame, 0, np.linspace(560.0, 600.0, 1024), (), 0.0, False)
    # the window's display timer draws it (a test's own refresh_views() could find the frame
    # already painted by the timer and return 0)
    qtbot.waitUntil(lambda: window.camera_view.info.text().startswith("frame 0"), timeout=5000)
    assert window.camera_view.black.isEnabled() is False  # auto levels: typed ones greyed
    assert window.camera_view.auto_levels.isEnabled()
    for view in window.views:
        info = getattr(view, "info", None)
        if info is not None:
            info.setText("a very long line of information " * 20)
    qtbot.wait(100)
    assert window.width() <= 1366 and window.height() <= 768
    assert {key: window.docks[key].geometry() for key in docks} == docks
    window.close()


def test_a_window_made_smaller_and_larger_again_gives_the_room_back_to_the_plots(
        qtbot: Any, config: Any, tmp_path: Path) -> None:
    window = screen_window(qtbot, config, tmp_path)
    for size in ((1000, 600), (1280, 720), (1366, 768)):
        window.resize(*size)
        qtbot.wait(50)
    assert window.docks["run"].width() <= 520  # it had grown to 680 px
    assert window.spectrum_view.plot.width() >= 300
    assert window.polarization_view.plot.width() >= 400
    window.close()


def test_the_angle_in_progress_is_not_drawn_as_a_finished_point(
        qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    """Every paint of a run: a point drawn as finished holds its final V and H (no frame comes to
    it later), and the angle the stage rests at is drawn apart, as in progress. (With the angle
    in progress taken from the last progress shown, 7 of 10 such paints drew a point still
    growing as finished.)"""
    view = window.polarization_view
    view.min_interval_s = 0.1  # many paints: each is a chance for the race of the audit
    painted: list[PolarizationView] = []
    paint = view.paint

    def record(picture: Any) -> None:
        paint(picture)
        painted.extend(picture.results[:1])
    view.paint = record  # type: ignore[method-assign]
    compute = view.compute

    def late_compute(source: Any) -> Any:
        time.sleep(0.3)  # the helper thread starts late (a loaded machine): frames of the next
        return compute(source)  # angle arrive between the view's request and its reading
    view.compute = late_compute  # type: ignore[method-assign]
    window.run_panel.output.setText(str(tmp_path / "inprogress.h5"))
    run_to_end(qtbot, window, frames=160)
    live = window.live
    assert live is not None
    at_end = len(painted)  # the paints computed since come from the finished run
    qtbot.waitUntil(lambda: len(painted) > at_end and painted[-1].frames_used
                    == live.polarization(*painted[-1].region_ev).frames_used, timeout=10_000)
    final = live.polarization(*painted[-1].region_ev)
    assert not final.in_progress.any()  # the run is over
    angles = round(160 * FAST["exposure_s"] / FAST["waveplate_dwell_s"])
    assert final.theta_deg.shape[0] == angles
    during = [pol for pol in painted if pol.region_ev == final.region_ev]
    assert len(during) >= 5
    for pol in during:
        finished = ~pol.in_progress
        at = np.searchsorted(final.theta_deg, pol.theta_deg[finished])
        np.testing.assert_allclose(final.theta_deg[at], pol.theta_deg[finished], atol=0.01)
        np.testing.assert_allclose(pol.v[finished], final.v[at], rtol=1e-12)
        np.testing.assert_allclose(pol.h[finished], final.h[at], rtol=1e-12)
        # at most one angle in progress: the newest
        assert pol.in_progress.sum() <= 1
        if pol.in_progress.any():
            assert pol.theta_deg[pol.in_progress][0] == pol.theta_deg.max()
    # the stage rests about half the time: some paints come while it does
    assert any(pol.in_progress.any() for pol in during)
    assert not painted[-1].in_progress.any()
    assert "in progress" not in view.legend.text()


def test_alignment_shows_the_simulated_count_rate_and_writes_nothing(
        qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    def camera_exposure() -> float:
        return window.session.command("exposure", lambda rig: rig.camera.exposure_s()).result(10)

    exposure = camera_exposure()
    assert exposure != pytest.approx(0.2)
    window.run_panel.align_exposure.setValue(0.2)
    window.run_panel.align.click()
    qtbot.waitUntil(lambda: window.strip.mode.text().startswith("ALIGNING"), timeout=5000)
    qtbot.waitUntil(lambda: window.camera_view.info.text().startswith("frame"), timeout=10_000)
    qtbot.waitUntil(lambda: window.spectrum_view.sum.getData()[0] is not None, timeout=10_000)
    rates: list[float] = []
    window.bridge.statuses.connect(lambda s: rates.append(s.count_rates_cps.get(1, np.nan)))
    qtbot.waitUntil(lambda: len(rates) >= 40, timeout=60_000)
    assert len(window.rate_trace.points) >= 40
    window.run_panel.align.click()
    qtbot.waitUntil(lambda: window.strip.mode.text() == "", timeout=5000)
    assert not list(tmp_path.glob("*.h5*"))  # nothing written
    # single alignment frames propose no region (their brightest line may be a charged state)
    assert window.regions.regions == []
    # the camera is as before
    assert camera_exposure() == exposure

    # the simulated rate: the APD photons a run of the same rig records per second
    path = tmp_path / "rate.h5"
    window.run_panel.output.setText(str(path))
    run_to_end(qtbot, window, frames=60)
    result = window.last_run.result
    assert result is not None
    simulated = apd_photons(path) / result.duration_s
    shown = float(np.nanmean(rates[5:]))
    # 35 windows of 0.2 s at ~20 kcps: ~140 000 counts; blinking adds more spread than Poisson
    assert shown == pytest.approx(simulated, rel=0.05)


def test_the_idle_monitor_samples_a_window_and_leaves_the_stream_off() -> None:
    """While idle the tagger streams only during each count-rate window: a simulated bench then
    draws photons for those windows alone, at any speed (the --speed 20 slowdown's cause)."""
    events: list[SessionEvent] = []
    session = RigSession(fast_config(20.0), on_event=events.append, status_interval_s=0.05)
    try:
        session.connect().result(30)
        for _ in range(5):
            streaming = session.command("is the tagger streaming",
                                        lambda rig: rig.tagger.status().streaming).result(10)
            assert streaming is False
        rates = [e.count_rates_cps for e in events if isinstance(e, InstrumentStatuses)]
        assert any(1 in r and 10e3 < r[1] < 60e3 for r in rates)
    finally:
        session.close()
    assert CountRateProbe().window_s <= 0.25


def test_regions_typed_in_are_shown_and_remembered_between_sessions(
        qtbot: Any, config: Any, tmp_path: Path) -> None:
    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(config, settings=settings)
    qtbot.addWidget(window)
    window.show()
    window.regions.lo.setValue(2.1480)
    window.regions.hi.setValue(2.1520)
    window.regions.add_region(window.regions.lo.value(), window.regions.hi.value())
    window.regions.table.item(0, 2).setText("2.1530")  # typed into the table
    assert [(r.lo_ev, r.hi_ev) for r in window.regions.regions] == [(2.148, 2.153)]
    assert window.spectrum_view.region_ev == (2.148, 2.153)
    assert window.polarization_view.regions == tuple(window.regions.regions)
    window.close()

    again = MainWindow(config, settings=settings)
    qtbot.addWidget(again)
    assert [(r.name, r.lo_ev, r.hi_ev, r.source) for r in again.regions.regions] == [
        ("region 1", 2.148, 2.153, "hand")]
    assert again.spectrum_view.region_ev == (2.148, 2.153)
    again.close()


def test_the_next_session_goes_on_with_the_night_s_names(
        qtbot: Any, config: Any, tmp_path: Path) -> None:
    """Closed after particle-10 was written, the window opens on particle-11 in the same folder,
    with the same sample and operator."""
    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    night = tmp_path / "night"
    night.mkdir()
    window = MainWindow(config, settings=settings)
    qtbot.addWidget(window)
    window.show()
    panel = window.run_panel
    panel.output.setText(str(night / "particle-10.h5"))
    panel.particle.setText("particle-10")
    panel.sample.setText("CdSe/CdS dimers, batch 3")
    panel.operator.setText("A. B.")
    (night / "particle-10.h5").touch()  # as a run would have written it
    window.close()

    again = MainWindow(config, settings=settings)
    qtbot.addWidget(again)
    panel = again.run_panel
    assert panel.output.text() == str(night / "particle-11.h5")
    assert panel.particle.text() == "particle-11"
    assert (panel.sample.text(), panel.operator.text()) == ("CdSe/CdS dimers, batch 3", "A. B.")
    again.close()
