"""The main window on the simulated rig (pytest-qt, offscreen)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

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
    summed_spectrum,
)
from PyQt6.QtCore import QSettings
from PyQt6.QtWidgets import QApplication

from cryoscope.acquisition import Progress, RunState
from cryoscope.analysis.photons import collect_photons
from cryoscope.live import LiveAccumulator
from cryoscope.session import MoveWaveplate, SessionState, SetReadout
from drivers.interfaces import InstrumentError, ReadMode
from gui.main_window import MainWindow
from sim_hardware.camera import SimCamera
from sim_hardware.stage import SimRotationStage

RUN_TIMEOUT_MS = 30_000


def start(window: MainWindow, path: Path, **plan: float | int) -> None:
    window.run_panel.set_parameters(**{**FAST, **plan})
    window.run_panel.output.setText(str(path))
    window.run_panel.start.click()


def wait_for_end(qtbot: Any, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: window.last_run is not None, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.session.state is SessionState.IDLE, timeout=5000)


def rig_state(window: MainWindow) -> tuple[bool, bool]:
    """(camera acquiring, stage moving), asked through the session. (The tagger streams again
    once the rig is idle: the session's count-rate monitor.)"""
    return window.session.command("check the rig", lambda rig: (
        rig.camera.is_acquiring(), rig.stage.is_moving())).result(10)


def test_panels_show_live_values_and_controls_follow_the_connection(
        qtbot: Any, window: MainWindow) -> None:
    panels = window.instruments.panels
    assert panels["cryostat"].readouts["temperature"].text().endswith(" K")
    assert panels["laser"].readouts["rate"].text() == "1.000 MHz"
    assert panels["camera"].readouts["gain"].text() == "100"
    qtbot.waitUntil(lambda: panels["spectrograph"].grating.count() == 3, timeout=5000)
    # the selector shows the grating the spectrograph has in (Set alone changes nothing)
    spectrograph = panels["spectrograph"]
    installed = int(spectrograph.readouts["grating"].text().split()[0])
    assert installed != 1  # the simulated rig's grating is not the list's first
    assert spectrograph.grating.currentData() == installed  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: panels["tagger"].readouts["rate_1"].text().endswith("kcps"),
                    timeout=10_000)
    assert all(w.isEnabled() for p in panels.values() for w in p.controls)
    assert window.run_panel.start.isEnabled() and not window.run_panel.stop.isEnabled()

    waveplate = panels["stage"]
    waveplate.target.setValue(12.5)  # type: ignore[attr-defined]
    window.session.send(MoveWaveplate(12.5)).result(10)
    qtbot.waitUntil(lambda: waveplate.readouts["angle"].text().startswith("12.50°"),
                    timeout=10_000)

    strip = window.strip
    qtbot.waitUntil(lambda: strip.rate.text() != "— kcps", timeout=10_000)
    assert strip.temperature.text().endswith(" K") and strip.waveplate.text() != "θ —"
    window.session.disconnect().result(10)
    qtbot.waitUntil(lambda: not window.run_panel.start.isEnabled(), timeout=5000)
    assert not any(w.isEnabled() for p in panels.values() for w in p.controls)
    assert panels["cryostat"].readouts["temperature"].text() == "—"
    # no rig, no readings: the strip shows none
    assert (strip.rate.text(), strip.temperature.text(), strip.waveplate.text()) == (
        "— kcps", "T —", "θ —")


def test_a_run_fills_every_view_consistently_with_the_file(
        qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    path = tmp_path / "series.h5"
    start(window, path)
    qtbot.waitUntil(lambda: window.session.running, timeout=5000)
    assert not window.run_panel.start.isEnabled()
    assert not any(w.isEnabled() for w in window.instruments.panels["camera"].controls)
    wait_for_end(qtbot, window)
    assert window.last_run is not None and window.last_run.result is not None
    assert window.last_run.result.state is RunState.COMPLETE
    assert file_status(path) == "complete"
    assert window.run_panel.progress.value() == FAST["frames"]
    assert not window.errors

    spectrum = window.spectrum_view
    energy, total = summed_spectrum(path)
    # the run's end is drawn on the next display ticks
    qtbot.waitUntil(lambda: spectrum.sum.getData()[1] is not None
                    and np.allclose(spectrum.sum.getData()[1], total), timeout=5000)
    x, y = spectrum.sum.getData()
    np.testing.assert_allclose(x, energy)
    np.testing.assert_allclose(y, total, rtol=1e-9, atol=1e-6)
    peak = float(x[np.argmax(y)])
    assert peak == pytest.approx(ZPL_EV, abs=1e-3)
    region = spectrum.region_ev
    assert region is not None and region[0] < peak < region[1]

    pol = window.polarization_view.result
    assert pol is not None and pol.fit is not None, window.polarization_view.info.text()
    assert pol.fit.phi_deg == pytest.approx(DIPOLE_DEG, abs=2.0)
    assert "φ = " in window.polarization_view.info.text()

    # decay and intensity count the photons of the frames' exposures, as the analysis does
    table = collect_photons(path)
    assert table.n == apd_photons(path)
    inside = ((table.time_ps >= table.frames.start_ps[0])
              & (table.time_ps < table.frames.stop_ps[-1]))
    # behind the spectral time trace's tab: the run's end is drawn once the tab is raised
    with_delay = np.count_nonzero(inside & (table.delay_ps >= 0))
    window.docks["decay"].raise_()
    qtbot.waitUntil(lambda: window.decay_view.curve.getOriginalDataset()[1] is not None
                    and np.nansum(window.decay_view.curve.getOriginalDataset()[1])
                    == with_delay, timeout=5000)
    delays, _ = window.decay_view.curve.getOriginalDataset()
    # the whole period is drawn (the last display bin may be narrower)
    assert delays.shape[0] == np.ceil(table.laser_period_ps / 64 / 4)  # 64 ps bins by fours
    assert delays[-1] * 1000 < table.laser_period_ps
    assert window.decay_view.plot.getPlotItem().ctrl.logYCheck.isChecked()

    window.docks["intensity"].raise_()
    def intensity() -> int:  # the data, not the curve's downsampling to the screen
        rate = window.intensity_view.curve.getOriginalDataset()[1]
        return -1 if rate is None else round(np.sum(rate) * 0.01)

    qtbot.waitUntil(lambda: intensity() == np.count_nonzero(inside), timeout=5000)
    times, _ = window.intensity_view.curve.getOriginalDataset()
    assert np.count_nonzero(inside) < table.n
    assert times[-1] == pytest.approx(40.0, rel=0.05)
    window.docks["trace"].raise_()

    # the views that are computed on helper threads draw their last state shortly after
    qtbot.waitUntil(lambda: window.camera_view.info.text().startswith(
        f"frame {FAST['frames'] - 1}"), timeout=5000)
    qtbot.waitUntil(lambda: window.trace_view.image.image is not None
                    and window.trace_view.image.image.shape[0] == FAST["frames"], timeout=5000)
    rect = window.trace_view.image.mapRectToParent(window.trace_view.image.boundingRect())
    assert rect.height() == pytest.approx(FAST["frames"] * 0.502, rel=1e-3)  # seconds
    assert rect.left() <= peak <= rect.right()
    # the FLID's dock is behind the spectral time trace's tab: drawn once raised, not before
    assert not window.flid_view.shown() and window.flid_view.image.image is None
    window.docks["flid"].raise_()
    qtbot.waitUntil(lambda: window.flid_view.image.image is not None, timeout=5000)
    flid = window.flid_view.result
    assert flid is not None and flid.background_cps > 0
    assert "subtracted" in window.flid_view.info.text()
    assert rig_state(window) == (False, False)


def test_stop_aborts_the_run_and_leaves_the_rig_still(qtbot: Any, window: MainWindow,
                                                      tmp_path: Path) -> None:
    path = tmp_path / "stopped.h5"
    start(window, path, frames=400)
    qtbot.waitUntil(lambda: window.run_panel.progress.value() >= 10, timeout=RUN_TIMEOUT_MS)
    assert window.run_panel.stop.isEnabled()
    window.run_panel.stop.click()
    wait_for_end(qtbot, window)
    assert window.last_run is not None and window.last_run.result is not None
    assert window.last_run.result.state is RunState.ABORTED
    assert file_status(path) == "aborted"
    assert rig_state(window) == (False, False)
    assert window.run_panel.start.isEnabled()


def test_an_analysis_that_cannot_start_leaves_the_window_ready_for_the_next_run(
        qtbot: Any, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_process(path: Path) -> None:
        raise OSError("cannot start a process")

    monkeypatch.setattr(window, "analyze", no_process)
    path = tmp_path / "particle-07.h5"
    window.run_panel.particle.setText("particle-07")
    start(window, path, frames=20)
    wait_for_end(qtbot, window)
    assert file_status(path) == "complete"
    assert window.run_panel.start.isEnabled() and not window.run_panel.stop.isEnabled()
    assert window.run_panel.particle.text() == "particle-08"
    assert window.errors == ["The analysis of particle-07.h5 did not start: cannot start a "
                             "process"]


def test_an_instrument_error_in_a_run_is_a_message_and_the_rig_is_safe(
        qtbot: Any, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = SimCamera.read_new_frames

    def failing(self: SimCamera):  # type: ignore[no-untyped-def]
        block = original(self)
        if block.first_index + len(block) > 8:
            raise InstrumentError("camera", "acquisition timed out")
        return block

    monkeypatch.setattr(SimCamera, "read_new_frames", failing)
    path = tmp_path / "failed.h5"
    start(window, path)
    wait_for_end(qtbot, window)
    # the toolbar lays the line out on its next pass of the event loop
    qtbot.waitUntil(window.banner.isVisible, timeout=5000)
    assert "camera: acquisition timed out" in window.banner.text()
    assert file_status(path) == "failed"
    assert rig_state(window) == (False, False)
    assert "acquisition timed out" in window.log_view.toPlainText()
    assert window.run_panel.start.isEnabled()


def test_a_refused_command_is_a_message(qtbot: Any, window: MainWindow,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def stalled(self: SimRotationStage, angle_deg: float) -> None:
        raise InstrumentError("stage", "motor stalled")

    monkeypatch.setattr(SimRotationStage, "start_move_to", stalled)
    panel = window.instruments.panels["stage"]
    move = next(w for w in panel.controls if getattr(w, "text", lambda: "")() == "Move")
    move.click()  # type: ignore[attr-defined]
    qtbot.waitUntil(window.banner.isVisible, timeout=5000)
    assert "stage: motor stalled" in window.banner.text()
    assert window.session.state is SessionState.IDLE
    assert rig_state(window)[1] is False


def test_closing_mid_run_stops_it_safely(qtbot: Any, config: Any, tmp_path: Path) -> None:
    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(config, settings=settings)
    questions: list[str] = []
    answers = [False, True]
    window.confirm = lambda title, question: questions.append(title) or answers.pop(0)
    qtbot.addWidget(window)
    window.show()
    window.connect_rig().result(30)
    qtbot.waitUntil(window.run_panel.start.isEnabled, timeout=5000)
    path = tmp_path / "closed.h5"
    start(window, path, frames=400)
    qtbot.waitUntil(lambda: window.run_panel.progress.value() >= 5, timeout=RUN_TIMEOUT_MS)
    window.docks["flid"].hide()
    window.close()  # answered "no": the window stays, the run goes on
    assert questions == ["Close during a run?"] and window.isVisible()
    assert window.session.running
    window.close()  # "yes"
    assert questions == ["Close during a run?"] * 2
    assert window.session.state is SessionState.CLOSED
    assert file_status(path) == "aborted"
    assert settings.value("window/state") is not None

    again = MainWindow(config, settings=settings)  # the saved layout is restored
    qtbot.addWidget(again)
    again.show()
    assert again.docks["flid"].isHidden() and not again.docks["spectrum"].isHidden()
    again.close()


def test_replay_shows_a_file_with_its_analysis(qtbot: Any, tmp_path: Path) -> None:
    from cryoscope.api import measure

    path = tmp_path / "replayed.h5"
    measure(path, fast_config("max"), **FAST)
    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(fast_config(), settings=settings)  # not connected
    qtbot.addWidget(window)
    window.show()
    assert not window.run_panel.start.isEnabled()
    window.open_measurement(path).result(30)
    qtbot.waitUntil(lambda: window.replay is not None, timeout=5000)
    qtbot.waitUntil(lambda: window.polarization_view.result is not None, timeout=5000)
    assert window.polarization_view.result is not None
    fit = window.polarization_view.result.fit
    assert fit is not None and fit.phi_deg == pytest.approx(DIPOLE_DEG, abs=2.0)
    total = summed_spectrum(path)[1]
    qtbot.waitUntil(lambda: window.spectrum_view.sum.getData()[1] is not None
                    and np.allclose(window.spectrum_view.sum.getData()[1], total), timeout=5000)
    _, y = window.spectrum_view.sum.getData()
    np.testing.assert_allclose(y, total, rtol=1e-9, atol=1e-6)
    # the decay, behind a tab, is drawn with the replay's fit once raised
    assert window.decay_view.info.text() == ""
    window.docks["decay"].raise_()
    qtbot.waitUntil(lambda: "fit τ" in window.decay_view.info.text(), timeout=5000)
    # the results dock shows the file's analysis, made in the background
    qtbot.waitUntil(lambda: window.results.summary is not None, timeout=ANALYSIS_TIMEOUT_MS)
    assert window.results.summary is not None
    assert window.results.summary["file"] == str(path)
    assert window.results.summary["frames"] == FAST["frames"]

    window.open_measurement(tmp_path / "missing.h5")
    qtbot.waitUntil(window.banner.isVisible, timeout=5000)
    assert "file not found" in window.banner.text()
    window.close()


def test_an_existing_output_file_is_a_message(qtbot: Any, window: MainWindow,
                                              tmp_path: Path) -> None:
    path = tmp_path / "taken.h5"
    path.write_bytes(b"")
    window.run_panel.overwrite.setChecked(False)
    start(window, path)
    qtbot.waitUntil(window.banner.isVisible, timeout=5000)
    text = window.banner.text()
    assert "taken.h5 exists" in text
    assert "'overwrite'" in text and "Run panel" in text and "--overwrite" not in text
    assert path.read_bytes() == b""
    assert window.run_panel.output.text() == str(path)  # the typed name is kept
    qtbot.waitUntil(window.run_panel.start.isEnabled, timeout=5000)


def test_cryoscope_gui_command_opens_the_window(qtbot: Any, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from cryoscope.cli import build_parser

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # the window's QSettings go here
    seen: list[MainWindow] = []

    def close_window() -> None:
        windows = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, MainWindow) and w.isVisible()]
        seen.extend(windows)
        for w in windows:
            w.close()

    QTimer.singleShot(500, close_window)
    QTimer.singleShot(20_000, QApplication.quit)
    args = build_parser().parse_args(["gui", "--no-connect", "--speed", "max"])
    assert args.handler(args) == 0
    assert len(seen) == 1
    assert seen[0].config.simulation.speed == "max"
    assert seen[0].session.state is SessionState.CLOSED


def test_an_unreachable_instrument_disables_its_panel(qtbot: Any, window: MainWindow,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from sim_hardware.cryostat import SimCryostat

    def unreachable(self: SimCryostat) -> None:
        raise InstrumentError("cryostat", "no answer within 10 s")

    monkeypatch.setattr(SimCryostat, "status", unreachable)
    cryostat = window.instruments.panels["cryostat"]
    qtbot.waitUntil(lambda: "no answer" in cryostat.error.text(), timeout=5000)
    assert not any(w.isEnabled() for w in cryostat.controls)
    assert cryostat.readouts["temperature"].text() == "—"
    assert all(w.isEnabled() for w in window.instruments.panels["laser"].controls)
    monkeypatch.undo()
    qtbot.waitUntil(lambda: all(w.isEnabled() for w in cryostat.controls), timeout=5000)


def test_a_front_panel_only_laser_has_its_controls_disabled(qtbot: Any,
                                                           window: MainWindow) -> None:
    laser = window.instruments.panels["laser"]
    assert all(w.isEnabled() for w in laser.controls)
    window.session.command("make the laser front-panel only",
                           lambda rig: setattr(rig.laser, "remote_control", False)).result(10)
    qtbot.waitUntil(lambda: not any(w.isEnabled() for w in laser.controls), timeout=5000)
    assert all(w.toolTip() == "front-panel only" for w in laser.controls)
    assert laser.readouts["rate"].text() == "1.000 MHz"  # still read out
    assert all(w.isEnabled() for w in window.instruments.panels["cryostat"].controls)
    window.session.command("give the laser remote control back",
                           lambda rig: setattr(rig.laser, "remote_control", True)).result(10)
    qtbot.waitUntil(lambda: all(w.isEnabled() for w in laser.controls), timeout=5000)
    assert all(w.toolTip() == "" for w in laser.controls)


def test_each_group_of_tabbed_docks_has_one_tab_bar(window: MainWindow) -> None:
    from PyQt6.QtWidgets import QTabBar

    bars = [tuple(b.tabText(i) for i in range(b.count()))
            for b in window.findChildren(QTabBar) if b.isVisible()]
    assert sorted(bars) == [("Camera", "Count rate"),
                            ("Run", "Instruments", "Runs", "Results", "Regions"),
                            ("Spectral time trace", "APD intensity", "Decay", "FLID", "Log")]


def test_progress_is_shown_once_per_display_tick_the_latest(window: MainWindow) -> None:
    """At --speed 20 progress comes every 10 ms: the window keeps the latest and shows it on its
    display tick, not each one as it comes."""
    bar = window.run_panel.progress
    before = bar.value()
    for done in (3, 4, 5):
        window._on_progress(Progress(done, 80, 0.5 * done, 0.0, 100 * done, 2e4, 10.0, False))
    assert bar.value() == before  # nothing drawn between ticks
    window.refresh_views()
    assert (bar.value(), bar.maximum()) == (5, 80)
    assert window.strip.frames.text() == "frame 5 / 80"
    assert "500 photons" in window.run_panel.status.text()


def test_the_camera_view_is_laid_out_for_the_cameras_readout_before_a_frame_comes(
        qtbot: Any, window: MainWindow) -> None:
    """The camera's readout comes with the status polls: an empty camera view sets itself up
    for it (axes, colour bar, labels) then, not at a run's first frame."""
    view = window.camera_view
    qtbot.waitUntil(lambda: view.mode is ReadMode.TRACKS, timeout=5000)  # the configured one
    assert view.empty and not view.colour_bar.isVisible()
    window.session.send(SetReadout(ReadMode.IMAGE))
    qtbot.waitUntil(lambda: view.mode is ReadMode.IMAGE, timeout=5000)
    assert view.empty and view.colour_bar.isVisible() and view.auto_levels.isEnabled()
    assert view.plot.getAxis("left").labelText == "row"
    window.session.send(SetReadout(ReadMode.TRACKS))
    qtbot.waitUntil(lambda: view.mode is ReadMode.TRACKS, timeout=5000)
    assert not view.colour_bar.isVisible()
    assert view.plot.getAxis("left").labelText == "counts (ADU)"


def test_a_views_first_data_is_the_last_paint_of_its_tick_and_a_forced_redraw_is_spread(
        window: MainWindow) -> None:
    """A view's first picture with data lays its plot out anew, which Qt paints several times
    over: it ends its display tick. A forced redraw (a replay opened, a run's end) paints the
    views on screen over the next ticks, the camera and one other view a tick, and those behind
    a tab when it is raised."""
    window.timer.stop()  # the test makes the ticks
    live = LiveAccumulator()
    spectra = np.full((3, 2, 1024), 300, np.uint16)
    spectra[:, :, 500] = 3000
    live.add_frames(spectra, 0, np.linspace(560.0, 600.0, 1024), ("V", "H"), 0.0, False)
    window.live = live
    window.show_live()  # every view cleared and computing its picture
    on_screen = [v for v in window.views if v.shown()]
    behind = [v for v in window.views if not v.shown()]
    camera, spectrum = window.camera_view, window.spectrum_view
    assert camera in on_screen and spectrum in on_screen and window.decay_view in behind
    assert camera.empty and spectrum.empty

    def computed() -> None:  # every computation started is done, its picture waiting
        deadline = time.monotonic() + 10
        while (not all(v.waiting() for v in (camera, spectrum))
               and time.monotonic() < deadline):
            QApplication.processEvents()
        assert camera.waiting() and spectrum.waiting()

    computed()
    before = {v.title: v.redraws for v in window.views}
    assert window.refresh_views() == 1  # the camera's first frame, alone
    assert not camera.empty and camera.redraws == before["Camera"] + 1
    assert spectrum.empty and spectrum.redraws == before["Spectrum"]
    assert window.refresh_views() >= 1
    assert not spectrum.empty and spectrum.redraws == before["Spectrum"] + 1

    live.add_frames(spectra, 3, np.linspace(560.0, 600.0, 1024), ("V", "H"), 0.0, False)
    before = {v.title: v.redraws for v in window.views}
    assert window.refresh_views(force=True) == 0  # computations started, nothing painted
    assert all(v.redraws == before[v.title] for v in window.views)
    computed()
    for _ in range(len(on_screen)):
        drawn = {v.title: v.redraws for v in window.views}
        window.refresh_views()
        others = [v for v in window.views
                  if v is not camera and v.redraws > drawn[v.title]]
        assert len(others) <= 1
        QApplication.processEvents()  # pictures of the computations the tick started
    assert camera.redraws > before["Camera"] and spectrum.redraws > before["Spectrum"]
    assert all(v.redraws == before[v.title] for v in behind)  # not drawn behind their tab
    decay = window.decay_view
    window.docks["decay"].raise_()
    QApplication.processEvents()
    window.refresh_views()
    assert decay.redraws == before[decay.title] + 1


def test_an_error_shows_on_the_toolbar_without_moving_the_docks(
        qtbot: Any, window: MainWindow) -> None:
    """An error is one line in the toolbar's free room: shown and dismissed, the docks stay
    where they were (a banner on a row of its own pushed them down and repainted every plot)."""
    qtbot.wait(100)
    docks = {key: dock.geometry() for key, dock in window.docks.items() if dock.isVisible()}
    window.show_error("Could not move the waveplate: stage: motor stalled " * 5)
    qtbot.waitUntil(window.banner.isVisible, timeout=5000)
    qtbot.wait(100)
    assert {key: window.docks[key].geometry() for key in docks} == docks
    assert window.banner.toolTip().startswith("Could not move the waveplate")
    window.clear_error()
    qtbot.waitUntil(lambda: not window.banner.isVisible(), timeout=5000)
    qtbot.wait(100)
    assert {key: window.docks[key].geometry() for key in docks} == docks
