"""The main window: status strip, instrument panels, run control, live views as docks, the
night's runs and the analysis of each, replay of files.

The window holds no measurement logic. It owns a :class:`cryoscope.session.RigSession` (the rig
on its worker thread) and, per run, a :class:`cryoscope.live.LiveAccumulator` fed on that thread;
a display timer (30 Hz by default) redraws the visible views from the accumulator, so a fast run
never floods the event loop. After each run the file's full analysis
(:func:`cryoscope.session.analysis.summarize_run`) runs in a separate process and fills the
results dock and the list of runs. Errors become a banner, a status-bar message and a log line.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QByteArray, QSettings, Qt, QTimer, pyqtSignal, pyqtSlot
from PyQt6.QtGui import QAction, QCloseEvent, QShowEvent
from PyQt6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QToolBar,
    QWidget,
)

from cryoscope.acquisition import Progress, RunState, StateChanged
from cryoscope.config import Backend, Config
from cryoscope.datafile import OutputError, OutputExistsError
from cryoscope.live import LiveAccumulator, Replay, replay_measurement, warm_up
from cryoscope.session import (
    AlignmentChanged,
    AlignmentFrame,
    CommandFailed,
    InstrumentStatuses,
    ReadGratings,
    RigSession,
    RunFinished,
    SessionState,
    SessionStateChanged,
)
from cryoscope.session.analysis import import_analysis, summarize_run
from drivers.interfaces import GratingInfo, Track
from gui.bridge import LogBridge, SessionBridge
from gui.panels import InstrumentsWidget
from gui.run_panel import RunPanel
from gui.views import (
    CameraView,
    DecayView,
    FlidView,
    IntensityView,
    PolarizationPlot,
    SpectralTraceView,
    SpectrumView,
    View,
)
from gui.widgets import (
    CountRateTrace,
    LineLabel,
    Region,
    RegionsPanel,
    ResultsView,
    RunEntry,
    RunsTable,
    StatusStrip,
    analysis_regions,
    panel_scroll,
)

log = logging.getLogger(__name__)

SPEEDS = ("1", "2", "5", "20", "max")
#: The panels' docks on the left, and their widest (px): without a limit, a window shrunk and
#: grown again gave 680 of 1366 px to the panels and squeezed the plots.
LEFT_DOCKS = ("run", "instruments", "runs", "results", "regions")
LEFT_DOCK_MAX_WIDTH = 520
#: The smallest screen the window is laid out for (px).
SMALL_SCREEN = (1366, 768)
#: The window's size on a large screen (px).
PREFERRED_SIZE = (1600, 1000)


def speed_text(config: Config) -> str:
    speed = config.simulation.speed
    return "max" if speed == "max" else f"{float(speed):g}"


class MainWindow(QMainWindow):
    """The desktop application at the microscope."""

    replayReady = pyqtSignal(object)  # Replay
    replayFailed = pyqtSignal(str)
    gratingsReady = pyqtSignal(object)  # list[GratingInfo]
    analysisReady = pyqtSignal(str, object)  # path, summary dict
    analysisFailed = pyqtSignal(str, str)  # path, message

    def __init__(self, config: Config, *, settings: QSettings | None = None,
                 display_hz: float = 30.0) -> None:
        super().__init__()
        self.config = config
        self.settings = settings if settings is not None else QSettings("cryoscope", "gui")
        self.bridge = SessionBridge(self)
        self.session = RigSession(config, on_event=self.bridge)
        self.live: LiveAccumulator | None = None
        self._progress: Progress | None = None  # not shown yet (see _on_progress)
        self.source: LiveAccumulator | None = None
        self.replay: Replay | None = None
        self.last_run: RunFinished | None = None
        self.statuses: InstrumentStatuses | None = None
        self.errors: list[str] = []
        self.display_updates = 0
        #: asks the user to confirm (title, question) → yes; replaced in tests
        self.confirm: Callable[[str, str], bool] = self._ask
        self._closing = False
        self._paused = False
        self._run_pending = False  # a run asked for and not yet finished
        self._need_gratings = True
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="replay")
        self._executor.submit(warm_up)
        self._analysis: ProcessPoolExecutor | None = None
        #: the analyses of this session's files (by path), and the file the results are of
        self._summaries: dict[str, dict[str, Any]] = {}
        self._shown_path: str | None = None
        self._live_path: str | None = None  # the file of the last run started
        self.setWindowTitle(self._title())
        self.setDockNestingEnabled(True)

        self._build_toolbar()
        self.strip = StatusStrip()
        ch = config.channels
        self.strip.set_apds([ch.apd] if ch.apd2 is None else [ch.apd, ch.apd2])
        strip_bar = QToolBar("Status", self)
        strip_bar.setObjectName("toolbar_status")
        strip_bar.setMovable(False)
        strip_bar.setFloatable(False)
        toggle = strip_bar.toggleViewAction()
        if toggle is not None:
            toggle.setVisible(False)
        strip_bar.addWidget(self.strip)
        self.addToolBarBreak()
        self.addToolBar(strip_bar)

        self.instruments = InstrumentsWidget(self.session)
        self.instruments_scroll = panel_scroll(self.instruments)
        self.run_panel = RunPanel(self.session)
        self.run_scroll = panel_scroll(self.run_panel)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(2000)
        self.regions = RegionsPanel()
        self.results = ResultsView()
        self.runs = RunsTable()
        self.rate_trace = CountRateTrace()

        self.camera_view = CameraView()
        self.spectrum_view = SpectrumView()
        self.trace_view = SpectralTraceView()
        self.intensity_view = IntensityView()
        self.decay_view = DecayView()
        self.polarization_view = PolarizationPlot()
        self.flid_view = FlidView()
        self.views: list[View] = [self.camera_view, self.spectrum_view, self.trace_view,
                                  self.intensity_view, self.decay_view,
                                  self.polarization_view, self.flid_view]
        self.docks: dict[str, QDockWidget] = {}
        left = Qt.DockWidgetArea.LeftDockWidgetArea
        right = Qt.DockWidgetArea.RightDockWidgetArea
        self._dock("instruments", "Instruments", self.instruments_scroll, left)
        self._dock("run", "Run", self.run_scroll, left)
        self._dock("runs", "Runs", self.runs, left)
        self._dock("results", "Results", self.results, left)
        self._dock("regions", "Regions", self.regions, left)
        self._dock("spectrum", SpectrumView.title, self.spectrum_view, right)
        self._dock("polarization", PolarizationPlot.title, self.polarization_view, right)
        self._dock("trace", SpectralTraceView.title, self.trace_view, right)
        self._dock("camera", CameraView.title, self.camera_view, right)
        self._dock("rate", CountRateTrace.title, self.rate_trace, right)
        self._dock("intensity", IntensityView.title, self.intensity_view, right)
        self._dock("decay", DecayView.title, self.decay_view, right)
        self._dock("flid", FlidView.title, self.flid_view, right)
        self._dock("log", "Log", self.log_view, right)
        self._laid_out = False  # the docks are arranged on the first show

        self.bridge.sessionState.connect(self._on_session_state)
        self.bridge.statuses.connect(self._on_statuses)
        self.bridge.progress.connect(self._on_progress)
        self.bridge.runState.connect(self._on_run_state)
        self.bridge.commandFailed.connect(self._on_command_failed)
        self.bridge.runFinished.connect(self._on_run_finished)
        self.bridge.alignment.connect(self._on_alignment)
        self.bridge.alignmentFrame.connect(self._on_alignment_frame)
        self.replayReady.connect(self._on_replay_ready)
        self.replayFailed.connect(self.show_error)
        self.gratingsReady.connect(self._on_gratings)
        self.analysisReady.connect(self._on_analysis)
        self.analysisFailed.connect(self._on_analysis_failed)
        self.run_panel.startRequested.connect(self.start_run)
        self.run_panel.stopRequested.connect(self.stop_run)
        self.run_panel.pauseRequested.connect(self.pause_run)
        self.run_panel.resumeRequested.connect(self.resume_run)
        self.run_panel.alignmentRequested.connect(self.set_alignment)
        self.runs.replayRequested.connect(self.open_measurement)
        self.regions.changed.connect(self._regions_changed)
        self.spectrum_view.regionDragged.connect(self.regions.move_region)
        self.spectrum_view.regionRequested.connect(
            lambda lo, hi: self.regions.add_region(lo, hi))
        self.spectrum_view.axis.currentIndexChanged.connect(
            lambda _i: self.trace_view.set_energy_axis(self.spectrum_view.energy_axis))

        self.log_bridge = LogBridge(self)
        self.log_bridge.record.connect(self._append_log)
        logging.getLogger().addHandler(self.log_bridge.handler)

        self._restore_regions()
        output = self.settings.value("run/output")
        if isinstance(output, str) and output:
            self.run_panel.continue_from(Path(output), str(self.settings.value("run/sample", "")),
                                         str(self.settings.value("run/operator", "")))
        self.timer = QTimer(self)
        self.timer.setInterval(max(1, round(1000 / display_hz)))
        self.timer.timeout.connect(self.refresh_views)
        self.timer.start()
        self._status("not connected")
        self._fit_screen()
        self._update_controls()

    # -- layout -------------------------------------------------------------------------------

    def _dock(self, key: str, title: str, widget: QWidget, area: Qt.DockWidgetArea
              ) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{key}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        # hidden until arranged (on the first show): stacked, the docks would make the window
        # taller than the screen
        dock.hide()
        self.docks[key] = dock
        self.view_menu.addAction(dock.toggleViewAction())
        return dock

    def _fit_screen(self) -> None:
        """The preferred size, but never more than the screen offers."""
        width, height = PREFERRED_SIZE
        screen = self.screen()
        if screen is not None:
            room = screen.availableGeometry()
            width, height = min(width, room.width()), min(height, room.height())
        self.resize(width, height)

    def showEvent(self, event: QShowEvent | None) -> None:
        """Arrange the docks (default, then the saved layout) on the first show: tabifying docks
        before the window is shown leaves a stale copy of a tab bar on screen (Qt 6)."""
        if not self._laid_out:
            self._laid_out = True
            self._default_layout()
            self._restore_layout()
        super().showEvent(event)

    def _default_layout(self) -> None:
        """Left: run, instruments, runs, results, regions (tabs). Right, two rows of plots
        (they fit a 768 px screen): spectrum and polarization; below, the spectral time trace,
        intensity, decay, FLID and log (tabs) beside the camera and the count rate (tabs).
        Each dock is shown once in place: stacked, they would grow the window."""
        d = self.docks
        d["run"].show()
        for key in LEFT_DOCKS[1:]:
            self.tabifyDockWidget(d["run"], d[key])
            d[key].show()
        d["run"].raise_()
        d["spectrum"].show()
        self.splitDockWidget(d["spectrum"], d["polarization"], Qt.Orientation.Horizontal)
        d["polarization"].show()
        self.splitDockWidget(d["spectrum"], d["trace"], Qt.Orientation.Vertical)
        d["trace"].show()
        self.splitDockWidget(d["polarization"], d["camera"], Qt.Orientation.Vertical)
        d["camera"].show()
        self.tabifyDockWidget(d["camera"], d["rate"])
        d["rate"].show()
        d["camera"].raise_()
        for key in ("intensity", "decay", "flid", "log"):
            self.tabifyDockWidget(d["trace"], d[key])
            d[key].show()
        d["trace"].raise_()
        self.resizeDocks([d["run"]], [400], Qt.Orientation.Horizontal)
        for key in LEFT_DOCKS:  # a window made smaller and larger again gives the width back
            d[key].setMaximumWidth(LEFT_DOCK_MAX_WIDTH)  # to the plots, not to the panels

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state)

    def save_settings(self) -> None:
        """Keep the layout, and the run panel's output, sample and operator, for the next
        session."""
        if not self._laid_out:
            return  # never shown: nothing arranged to keep
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        panel = self.run_panel
        self.settings.setValue("run/output", panel.output.text().strip())
        self.settings.setValue("run/sample", panel.sample.text().strip())
        self.settings.setValue("run/operator", panel.operator.text().strip())
        self.settings.sync()

    def _build_toolbar(self) -> None:
        bar = QToolBar("Session", self)
        bar.setObjectName("toolbar_session")
        self.addToolBar(bar)
        self.connect_action = QAction("Connect", self)
        self.connect_action.triggered.connect(self.connect_rig)
        self.disconnect_action = QAction("Disconnect", self)
        self.disconnect_action.triggered.connect(lambda: self.session.disconnect())
        self.open_action = QAction("Open measurement…", self)
        self.open_action.triggered.connect(self._ask_open)
        self.live_action = QAction("Back to live", self)
        self.live_action.triggered.connect(self.show_live)
        bar.addAction(self.connect_action)
        bar.addAction(self.disconnect_action)
        self.speed = QComboBox()
        self.speed.addItems(SPEEDS)
        if speed_text(self.config) not in SPEEDS:
            self.speed.addItem(speed_text(self.config))
        self.speed.setCurrentText(speed_text(self.config))
        self.speed.setToolTip("simulated rig: virtual seconds per wall second (applies on "
                              "connect)")
        self.speed_label = QLabel("  simulation speed ")
        if self.config.rig.backend is Backend.SIMULATED:
            bar.addWidget(self.speed_label)
            bar.addWidget(self.speed)
        bar.addSeparator()
        bar.addAction(self.open_action)
        bar.addAction(self.live_action)
        self.source_label = QLabel("")
        bar.addSeparator()
        bar.addWidget(self.source_label)
        # errors: one line in the toolbar's free room (the whole message in its tooltip, the
        # status bar and the log), shown and hidden without moving anything else — a banner on
        # a row of its own pushed every dock down and repainted every plot
        self.banner = LineLabel("")
        self.banner.setStyleSheet("color: white; background: #b00020; padding: 2px 4px;")
        self.banner.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self.clear_error)
        self._banner_actions = [bar.addWidget(self.banner), bar.addWidget(dismiss)]
        self.clear_error()
        menu_bar = self.menuBar()
        assert menu_bar is not None  # a QMainWindow always makes one
        menu = menu_bar.addMenu("&View")
        assert menu is not None
        self.view_menu = menu

    def _title(self) -> str:
        rig = self.config.rig
        extra = f" (simulated, speed {speed_text(self.config)})" \
            if rig.backend is Backend.SIMULATED else ""
        return f"cryoscope — {rig.name}{extra}"

    # -- messages -----------------------------------------------------------------------------

    def show_error(self, message: str) -> None:
        """Show an error without interrupting anything: banner, status bar, log."""
        self.errors.append(message)
        log.error("%s", message)
        self.banner.setText(message)
        self._show_banner(True)
        self._status(message, 15000)

    def clear_error(self) -> None:
        self._show_banner(False)

    def _show_banner(self, shown: bool) -> None:
        for action in self._banner_actions:
            if action is not None:
                action.setVisible(shown)

    def _status(self, text: str, timeout_ms: int = 0) -> None:
        bar = self.statusBar()
        assert bar is not None  # a QMainWindow always makes one
        bar.showMessage(text, timeout_ms)

    def _ask(self, title: str, question: str) -> bool:
        answer = QMessageBox.question(self, title, question)
        return answer == QMessageBox.StandardButton.Yes

    @pyqtSlot(str, int)
    def _append_log(self, text: str, level: int) -> None:
        self.log_view.appendPlainText(text)

    # -- session ------------------------------------------------------------------------------

    def connect_rig(self) -> Future[None]:
        """(Re)connect, with the chosen simulation speed."""
        config = self.config
        if config.rig.backend is Backend.SIMULATED:
            text = self.speed.currentText()
            config = config.with_overrides("simulation",
                                           speed="max" if text == "max" else float(text))
        self.config = config
        self.setWindowTitle(self._title())
        self._need_gratings = True
        return self.session.connect(config)

    @pyqtSlot(object)
    def _on_session_state(self, event: SessionStateChanged) -> None:
        text = f"rig {event.state}" + (f": {event.message}" if event.message else "")
        self._status(text)
        if event.state is SessionState.IDLE and self._need_gratings:
            self._need_gratings = False
            self.session.send(ReadGratings()).add_done_callback(self._gratings_done)
        if event.state in (SessionState.DISCONNECTED, SessionState.CLOSED):
            self.statuses = None
            self.instruments.show_statuses(None)
            self._set_align_button(False)
            # no rig, no readings: the strip must not show the last ones as if current
            self.strip.show_rates({})
            self.strip.show_temperature(None)
            self.strip.show_waveplate(None, False)
            self.strip.mode.setText("")
        self._update_controls()

    def _gratings_done(self, future: Future[list[GratingInfo]]) -> None:
        if future.exception() is None and not self._closing:
            self.gratingsReady.emit(future.result())

    @pyqtSlot(object)
    def _on_gratings(self, gratings: list[GratingInfo]) -> None:
        self.instruments.panels["spectrograph"].set_gratings(gratings)  # type: ignore[attr-defined]

    def _update_controls(self) -> None:
        connected = self.session.connected
        running = self.session.running or self._run_pending
        busy = self.session.state is SessionState.CONNECTING
        self.instruments.set_controls_enabled(connected and not running)
        self.run_panel.set_state(connected=connected, running=running,
                                 paused=running and self._paused)
        self.connect_action.setEnabled(not running and not busy)
        self.disconnect_action.setEnabled(connected and not running)
        self.speed.setEnabled(not running and not busy)

    @pyqtSlot(object)
    def _on_statuses(self, statuses: InstrumentStatuses) -> None:
        self.statuses = statuses
        self.instruments.show_statuses(statuses)
        if statuses.camera_readout is not None:
            self.camera_view.expect(statuses.camera_readout)
        self.strip.show_rates(dict(statuses.count_rates_cps))
        rate = self.strip.rate_cps
        if rate is not None:
            self.rate_trace.add(rate)
        cryo = statuses.statuses.get("cryostat")
        self.strip.show_temperature(None if cryo is None else cryo.sample_temperature_k)
        stage = statuses.statuses.get("stage")
        if not self.session.running:
            self.strip.show_waveplate(
                None if stage is None else stage.angle_deg - statuses.waveplate_zero_deg,
                stage is not None and stage.moving)

    @pyqtSlot(object)
    def _on_progress(self, progress: Progress) -> None:
        """Keep the run's progress for the next display tick: at ``--speed 20`` it comes every
        10 ms, and showing each one re-lays the labels out (a tenth of the GUI thread's time)."""
        self._progress = progress

    def _show_progress(self) -> None:
        """Show the progress that came since the last display tick, if any."""
        progress, self._progress = self._progress, None
        if progress is None:
            return
        self.run_panel.show_progress(progress)
        self.strip.show_progress(progress.frames_done, progress.frames_total, self._paused)
        self.strip.show_waveplate(progress.waveplate_deg, progress.stage_moving)

    @pyqtSlot(object)
    def _on_run_state(self, event: StateChanged) -> None:
        self._show_progress()  # the progress that came before the new state goes with the old
        self.run_panel.status.setText(f"{event.state}" + (f": {event.message}"
                                                          if event.message else ""))
        if event.state is RunState.PAUSED:
            self._paused = True
        elif event.state is RunState.RUNNING:
            self._paused = False
        self.strip.mode.setText("PAUSED" if self._paused else "")
        self._update_controls()

    @pyqtSlot(object)
    def _on_command_failed(self, event: CommandFailed) -> None:
        self.show_error(f"Could not {event.command}: {event.message}")
        self._update_controls()

    @pyqtSlot(object)
    def _on_run_finished(self, event: RunFinished) -> None:
        self._show_progress()  # the run's last progress, before its result
        self.last_run = event
        self._run_pending = False
        self._paused = False
        self.strip.mode.setText("")
        result = event.result
        if result is None:
            text = f"run failed: {event.error}"
        else:
            text = (f"run {result.state}: {result.frames} frames, {result.photons} photons, "
                    f"{result.duration_s:.1f} s → {result.path}")
            if result.state is RunState.FAILED:
                self.show_error(f"The run failed: {result.error}")
        self.run_panel.status.setText(text)
        self._status(text)
        self.strip.run_ended("run failed" if result is None else f"run {result.state}")
        path = Path(event.out)
        if path.exists():
            self.runs.add(RunEntry(path.stem, str(path),
                                   "failed" if result is None else str(result.state),
                                   0 if result is None else result.frames,
                                   0 if result is None else result.photons))
        self.run_panel.number_on()
        self.refresh_views(force=True)
        self._update_controls()
        if path.exists() and result is not None and result.frames:
            try:
                self._show_results_of(path)
            except Exception as exc:  # the window goes on without its results
                log.exception("the analysis of %s did not start", path)
                self.show_error(f"The analysis of {path.name} did not start: {exc}")

    # -- alignment ----------------------------------------------------------------------------

    def set_alignment(self, on: bool, exposure_s: float) -> None:
        """Alignment mode on (at ``exposure_s``) or off."""
        if on:
            self.live = None
            for view in self.views:
                view.reset()
            self.session.start_alignment(exposure_s)
        else:
            self.session.stop_alignment()

    def _set_align_button(self, on: bool) -> None:
        self.run_panel.align.blockSignals(True)
        self.run_panel.align.setChecked(on)
        self.run_panel.align.blockSignals(False)

    @pyqtSlot(object)
    def _on_alignment(self, event: AlignmentChanged) -> None:
        self._set_align_button(event.exposure_s is not None)
        self.strip.mode.setText("" if event.exposure_s is None
                                else f"ALIGNING ({event.exposure_s:g} s)")
        if event.exposure_s is None and self.source is not None and self.source is not self.live:
            self.source_label.setText("")

    @pyqtSlot(object)
    def _on_alignment_frame(self, frame: AlignmentFrame) -> None:
        """Show the frame alone: the camera view and the spectrum of this frame."""
        if self.session.alignment_exposure_s is None:
            return
        acc = LiveAccumulator(image_tracks=self.image_tracks())
        acc.add_frames(frame.image[None], frame.index, frame.wavelength_nm, frame.track_names,
                       float("nan"), True)
        self.source = acc
        self.source_label.setText(f"  alignment: frame {frame.index}, "
                                  f"{frame.exposure_s:g} s (not recorded)")

    # -- runs ---------------------------------------------------------------------------------

    def image_tracks(self) -> tuple[Track, ...]:
        return tuple(Track(t.name, t.row_start, t.row_stop) for t in self.config.camera.tracks)

    @pyqtSlot(str, str, bool, dict)
    def start_run(self, plan: str, out: str, overwrite: bool, params: dict[str, Any]
                  ) -> Future[Any] | None:
        """Start ``plan`` into ``out`` with the Run panel's particle fields; every view is
        cleared and follows the new run."""
        if not out:
            self.show_error("Type the particle's name (the output file) in the Run panel first.")
            return None
        live = LiveAccumulator(image_tracks=self.image_tracks())
        try:
            future = self.session.start_run(plan, out, overwrite=overwrite,
                                            listeners=[live.feed],
                                            measurement=self.run_panel.measurement(), **params)
        except OutputExistsError as exc:
            self.show_error(f"The output file {exc.path.name} exists: change the particle's "
                            "name in the Run panel, or tick 'overwrite' there to replace it.")
            return None
        except OutputError as exc:
            self.show_error(f"Cannot write the output file: {exc}. Choose another folder with "
                            "the '…' button in the Run panel.")
            return None
        except ValueError as exc:
            self.show_error(f"Invalid run setting: {exc}")
            return None
        self.clear_error()
        self._paused = False
        self._run_pending = True
        self.live = live
        for view in self.views:
            view.reset()
        self._progress = None
        self.run_panel.progress.reset()  # not the last run's "400 / 400"
        self.strip.mode.setText("")  # alignment ends with the run's start
        self.strip.run_started(out)
        self._live_path = self._shown_path = str(Path(out))
        self.results.show_waiting(self._live_path)
        self._set_source(live, None)
        self._update_controls()
        self._analysis_process()
        return future

    def stop_run(self) -> None:
        """Stop the run, once the user confirms."""
        if not self.session.running:
            return
        if not self.confirm("Stop the run?", "Stop the run now? The file keeps the frames "
                            "taken so far and is marked 'aborted'."):
            return
        self.session.stop_run("stopped by the user")
        self.run_panel.status.setText("stopping…")

    def pause_run(self) -> None:
        self.session.pause_run()
        self.run_panel.status.setText("pausing…")

    def resume_run(self) -> None:
        self.session.resume_run()
        self.run_panel.status.setText("resuming…")

    # -- analysis -----------------------------------------------------------------------------

    def _analysis_process(self) -> ProcessPoolExecutor:
        """The process the analyses run in, started at the first run: its start (~20 ms of the
        GUI thread) and imports are over when the run ends."""
        if self._analysis is None:
            self._analysis = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(
                "spawn"))
            self._analysis.submit(import_analysis)
        return self._analysis

    def analyze(self, path: Path) -> Future[dict[str, Any]]:
        """The full analysis of ``path`` in a separate process; fills the results dock."""
        self.results.show_pending(str(path))
        future = self._analysis_process().submit(summarize_run, str(path))

        def done(f: Future[dict[str, Any]]) -> None:
            if self._closing or f.cancelled():
                return
            exc = f.exception()
            if exc is None:
                self.analysisReady.emit(str(path), f.result())
            else:
                self.analysisFailed.emit(str(path), str(exc))
        future.add_done_callback(done)
        return future

    @pyqtSlot(str, object)
    def _on_analysis(self, path: str, summary: dict[str, Any]) -> None:
        self._summaries[path] = summary
        self.runs.set_summary(path, summary)
        if path == self._shown_path:  # the results follow the file on screen
            self._show_summary(summary)

    @pyqtSlot(str, str)
    def _on_analysis_failed(self, path: str, message: str) -> None:
        if path == self._shown_path:
            self.results.show_failed(path, message)
        log.warning("the analysis of %s failed: %s", path, message)

    def _show_results_of(self, path: Path) -> None:
        """The results dock shows the analysis of ``path`` (the file now on screen): the one
        made this session, else a new one in the background."""
        self._shown_path = str(path)
        summary = self._summaries.get(str(path))
        if summary is not None:
            self._show_summary(summary)
        else:
            self.analyze(path)

    def _show_summary(self, summary: dict[str, Any]) -> None:
        """The results dock and the analysis' regions from the analysis of the file on
        screen."""
        self.results.show_summary(summary)
        self.regions.set_analysis_regions(analysis_regions(summary))

    # -- regions ------------------------------------------------------------------------------

    def _regions_changed(self) -> None:
        regions = self.regions.regions
        self.spectrum_view.set_regions(regions)
        self.polarization_view.set_regions(regions)
        self.settings.setValue("regions", json.dumps([r.as_list() for r in regions]))

    def _restore_regions(self) -> None:
        text = self.settings.value("regions")
        if not isinstance(text, str):
            return
        try:
            regions = [Region(str(n), float(lo), float(hi), str(src))
                       for n, lo, hi, src in json.loads(text)]
        except (ValueError, TypeError):
            log.warning("the saved regions could not be read: %r", text)
            return
        self.regions.set_regions(regions)

    # -- replay -------------------------------------------------------------------------------

    def _ask_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a measurement", str(Path.cwd()),
                                              "HDF5 measurement (*.h5 *.hdf5)")
        if path:
            self.open_measurement(path)

    def open_measurement(self, path: str | Path) -> Future[Replay]:
        """Read a file in the background and show it in the views."""
        self._status(f"reading {path} …")
        future = self._executor.submit(replay_measurement, path)
        future.add_done_callback(self._replay_done)
        return future

    def _replay_done(self, future: Future[Replay]) -> None:
        if self._closing:
            return
        exc = future.exception()
        if exc is None:
            self.replayReady.emit(future.result())
        else:
            self.replayFailed.emit(f"Could not open the measurement: {exc}")

    @pyqtSlot(object)
    def _on_replay_ready(self, replay: Replay) -> None:
        self.replay = replay
        meas = replay.measurement
        for view in self.views:
            view.reset()
        self._set_source(replay.live, replay)
        try:
            self._show_results_of(meas.path)
        except Exception as exc:  # the replay goes on without its results
            log.exception("the analysis of %s did not start", meas.path)
            self.show_error(f"The analysis of {meas.path.name} did not start: {exc}")
        text = f"replay: {meas.path.name} ({replay.status}, {meas.n_frames} frames)"
        if replay.error:
            text += f" — {replay.error}"
        self._status(text)
        if replay.decay_fit_message:
            log.warning("%s: %s", meas.path.name, replay.decay_fit_message)

    def show_live(self) -> None:
        for view in self.views:
            view.reset()
        self._set_source(self.live, None)
        self._status("showing the live run" if self.live is not None else "")
        if self._live_path is not None:  # and the results of the live run
            self._shown_path = self._live_path
            summary = self._summaries.get(self._live_path)
            if summary is not None:
                self._show_summary(summary)
            else:
                self.results.show_waiting(self._live_path)

    def _set_source(self, source: LiveAccumulator | None, replay: Replay | None) -> None:
        self.source = source
        self.decay_view.set_fit(None if replay is None else replay.decay_fit)
        if replay is not None:
            self.source_label.setText(f"  showing {replay.measurement.path.name}")
        else:
            self.source_label.setText("  showing the live run" if source is not None else "")
        self.refresh_views(force=True)

    # -- display ------------------------------------------------------------------------------

    def refresh_views(self, force: bool = False) -> int:
        """One display tick: show the run's progress, paint at most two views' computed
        pictures, and start the due computations of the views on screen; returns how many views
        it painted.

        The camera (no minimum interval) paints on every tick; of the other views with a picture
        waiting, only the one that painted longest ago does. Qt repaints every changed widget in
        one pass of the event loop, so this keeps each pass short; for the same reason a view's
        first picture with data (its plot laid out anew, see :attr:`View.empty`) is the tick's
        last. ``force``: every view computes a picture now, changed or not (those behind a tab
        are painted once it is raised).
        """
        self._show_progress()
        source = self.source
        if source is None:
            return 0
        if force:
            for view in self.views:
                self._guarded(view, lambda v: v.refresh(source, force=True))
            return 0
        visible = [v for v in self.views if v.shown()]
        due = [v for v in visible if v.min_interval_s == 0]
        waiting = [v for v in visible if v.min_interval_s > 0 and v.waiting()]
        if waiting:
            due.append(min(waiting, key=lambda v: v.last_paint))
        painted = 0
        for view in due:
            was_empty = view.empty
            painted += self._guarded(view, lambda v: v.paint_waiting())
            if was_empty and not view.empty:  # its first data: a costly paint, alone
                break
        for view in visible:  # after painting: a picture just painted makes room for the next
            self._guarded(view, lambda v: v.refresh(source))
        if painted:
            self.display_updates += 1
        return painted

    @staticmethod
    def _guarded(view: View, action: Callable[[View], bool]) -> bool:
        """``action(view)``, logged instead of raised if it fails (one view's bug must not stop
        the others)."""
        try:
            return action(view)
        except Exception:
            log.exception("the %s view failed to draw", view.title)
            return False

    # -- closing ------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent | None) -> None:
        """Ask before closing during a run; then stop it safely, close the rig, keep the
        layout."""
        if self.session.running and not self.confirm(
                "Close during a run?", "A run is going. Stop it and close the window? The "
                "file keeps the frames taken so far and is marked 'aborted'."):
            if event is not None:
                event.ignore()
            return
        self._closing = True
        self.timer.stop()
        self.save_settings()
        if self.session.running:
            log.info("the window closes during a run: stopping it")
        self.session.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._analysis is not None:
            self._analysis.shutdown(wait=False, cancel_futures=True)
        self.log_bridge.detach(logging.getLogger())
        if event is not None:
            event.accept()

