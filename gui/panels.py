"""Instrument panels: live values from the session's status polls, and validated settings.

Every setting is a spin box with its unit and range, read from the instruments' one declaration
of their limits (:mod:`drivers.limits`, per laser model where the lasers differ), and goes to the
rig through a :class:`cryoscope.session.RigSession` command; a refusal comes back as a
``CommandFailed`` event and is shown by the window. Controls are disabled while the rig is not
connected, during a run, while the instrument's status cannot be read, and for a laser that takes
no remote settings (:attr:`drivers.interfaces.PulsedLaser.remote_control` False: the tooltip says
"front-panel only").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cryoscope.session import (
    HomeStage,
    InstrumentStatuses,
    MoveWaveplate,
    RigSession,
    SetCenterWavelength,
    SetCooling,
    SetEmGain,
    SetExposure,
    SetGrating,
    SetLaserEmission,
    SetLaserPower,
    SetLaserRate,
    SetReadout,
    SetSetpoint,
    SetTemperatureControl,
    StopStage,
)
from drivers.interfaces import (
    CameraStatus,
    CoolingStatus,
    CryostatStatus,
    GratingInfo,
    LaserStatus,
    ReadMode,
    SpectrographStatus,
    StageStatus,
    TaggerStatus,
)
from drivers.limits import (
    ATTODRY800,
    IXON_ULTRA_888,
    KYMERA_328I,
    LASERS,
    SettingRange,
)

NOT_CONNECTED = "—"
FRONT_PANEL_ONLY = "front-panel only"


def quantity(lo: float, hi: float, value: float, unit: str, decimals: int = 2,
             step: float = 1.0) -> QDoubleSpinBox:
    """A spin box for a value with a unit and a valid range."""
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setValue(value)
    box.setSuffix(f" {unit}")
    box.setKeyboardTracking(False)
    return box


def limited(limit: SettingRange, value: float, decimals: int, step: float, scale: float = 1.0,
            unit: str | None = None) -> QDoubleSpinBox:
    """A spin box over the declared range of ``limit``, shown divided by ``scale`` in ``unit``
    (``limit.unit`` by default)."""
    return quantity(limit.low / scale, limit.high / scale, value / scale, unit or limit.unit,
                    decimals, step)


def _row(*widgets: QWidget) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        layout.addWidget(w)
    return row


class InstrumentPanel(QGroupBox):
    """A group of read-outs and controls for one instrument."""

    instrument = ""

    def __init__(self, title: str, session: RigSession, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.session = session
        self.form = QFormLayout(self)
        # a narrow dock puts a long row's controls under its label: no horizontal scrolling
        self.form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.controls: list[QWidget] = []
        self.readouts: dict[str, QLabel] = {}
        self.error = QLabel("")
        self.error.setStyleSheet("color: #b00020")
        self.error.setWordWrap(True)
        self.error.hide()

    def readout(self, name: str, label: str) -> QLabel:
        widget = QLabel(NOT_CONNECTED)
        widget.setObjectName(f"{self.instrument}_{name}")
        self.readouts[name] = widget
        self.form.addRow(label, widget)
        return widget

    def control(self, label: str, *widgets: QWidget) -> None:
        self.controls.extend(widgets)
        self.form.addRow(label, _row(*widgets) if len(widgets) > 1 else widgets[0])

    def button(self, text: str, slot: Callable[[], Any]) -> QPushButton:
        b = QPushButton(text)
        b.clicked.connect(lambda _checked=False: slot())
        return b

    def finish(self) -> None:
        self.form.addRow(self.error)
        self._allowed = False
        self._reachable = False
        self._remote = True
        self._apply_enabled()

    def set_controls_enabled(self, enabled: bool) -> None:
        """Allow the controls (rig connected, no run); they stay disabled while the
        instrument's status cannot be read."""
        self._allowed = enabled
        self._apply_enabled()

    def set_remote_control(self, remote: bool) -> None:
        """Whether the instrument takes settings remotely; without, the controls stay disabled
        and say so."""
        if remote != self._remote:
            self._remote = remote
            for w in self.controls:
                w.setToolTip("" if remote else FRONT_PANEL_ONLY)
            self._apply_enabled()

    def _apply_enabled(self) -> None:
        for w in self.controls:
            w.setEnabled(self._allowed and self._reachable and self._remote)

    def show_status(self, statuses: InstrumentStatuses | None) -> None:
        """Show the instrument's part of a poll (None: not connected)."""
        status = None if statuses is None else statuses.statuses.get(self.instrument)
        error = "" if statuses is None else statuses.errors.get(self.instrument, "")
        self.error.setText(error)
        self.error.setVisible(bool(error))
        self._reachable = status is not None
        self._apply_enabled()
        if statuses is None or status is None:
            for label in self.readouts.values():
                label.setText(NOT_CONNECTED)
            return
        self.display(status, statuses)

    def display(self, status: Any, statuses: InstrumentStatuses) -> None:
        raise NotImplementedError


class CryostatPanel(InstrumentPanel):
    instrument = "cryostat"

    def __init__(self, session: RigSession, parent: QWidget | None = None) -> None:
        super().__init__("Cryostat", session, parent)
        self.readout("temperature", "sample temperature")
        self.readout("setpoint", "setpoint")
        self.readout("state", "state")
        cfg = session.config.cryostat
        self.setpoint = limited(ATTODRY800.setpoint_k, cfg.target_temperature_k, 2, 0.5)
        self.control("new setpoint", self.setpoint,
                     self.button("Set", lambda: session.send(SetSetpoint(self.setpoint.value()))))
        self.control("temperature control",
                     self.button("On", lambda: session.send(SetTemperatureControl(True))),
                     self.button("Off", lambda: session.send(SetTemperatureControl(False))))
        self.finish()

    def display(self, status: CryostatStatus, statuses: InstrumentStatuses) -> None:
        self.readouts["temperature"].setText(f"{status.sample_temperature_k:.3f} K")
        self.readouts["setpoint"].setText(f"{status.setpoint_k:.2f} K")
        state = "controlling" if status.controlling else "not controlling"
        if status.pressure_mbar is not None:
            state += f", sample space {status.pressure_mbar:.2e} mbar"
        if status.inlet_pressure_mbar is not None:
            state += f", inlet {status.inlet_pressure_mbar:.2e} mbar"
        self.readouts["state"].setText(state)


class LaserPanel(InstrumentPanel):
    instrument = "laser"

    def __init__(self, session: RigSession, parent: QWidget | None = None) -> None:
        super().__init__("Laser", session, parent)
        self.readout("emission", "emission")
        self.readout("rate", "repetition rate")
        self.readout("power", "power at the sample")
        self.readout("wavelength", "wavelength")
        cfg = session.config.laser
        limits = LASERS[cfg.model]
        self.rate = limited(limits.repetition_rate_hz, cfg.repetition_rate_hz, 6, 1.0,
                            scale=1e6, unit="MHz")
        self.power = limited(limits.power_nw, cfg.power_nw, 1, 10.0)
        self.control("emission",
                     self.button("On", lambda: session.send(SetLaserEmission(True))),
                     self.button("Off", lambda: session.send(SetLaserEmission(False))))
        self.control("new rate", self.rate,
                     self.button("Set", lambda: session.send(SetLaserRate(
                         self.rate.value() * 1e6))))
        self.control("new power", self.power,
                     self.button("Set", lambda: session.send(SetLaserPower(self.power.value()))))
        self.finish()

    def display(self, status: LaserStatus, statuses: InstrumentStatuses) -> None:
        self.set_remote_control(statuses.laser_remote_control)
        self.readouts["emission"].setText("ON" if status.emission_on else "off")
        self.readouts["rate"].setText(f"{status.repetition_rate_hz / 1e6:.3f} MHz")
        self.readouts["power"].setText(f"{status.power_nw:.1f} nW")
        self.readouts["wavelength"].setText(f"{status.wavelength_nm:.1f} nm")


class WaveplatePanel(InstrumentPanel):
    instrument = "stage"

    def __init__(self, session: RigSession, parent: QWidget | None = None) -> None:
        super().__init__("Waveplate", session, parent)
        self.readout("angle", "angle θ")
        self.readout("state", "state")
        self.target = quantity(-360.0, 360.0, 0.0, "°", 2, 5.0)
        self.control("move to θ", self.target,
                     self.button("Move", lambda: session.send(MoveWaveplate(self.target.value()))))
        self.control("", self.button("Home", lambda: session.send(HomeStage())),
                     self.button("Stop", lambda: session.send(StopStage())))
        self.finish()

    def display(self, status: StageStatus, statuses: InstrumentStatuses) -> None:
        theta = status.angle_deg - statuses.waveplate_zero_deg
        self.readouts["angle"].setText(f"{theta:.2f}° (stage {status.angle_deg:.2f}°)")
        state = "moving" if status.moving else "still"
        self.readouts["state"].setText(state + (", homed" if status.homed else ", not homed"))


class CameraPanel(InstrumentPanel):
    instrument = "camera"

    def __init__(self, session: RigSession, parent: QWidget | None = None) -> None:
        super().__init__("Camera (EMCCD)", session, parent)
        self.readout("exposure", "exposure")
        self.readout("gain", "EM gain")
        self.readout("cooling", "sensor")
        self.readout("acquiring", "acquisition")
        cfg = session.config
        self.exposure = limited(IXON_ULTRA_888.exposure_s, cfg.plan.exposure_s, 5, 0.1)
        self.gain = QSpinBox()
        self.gain.setRange(int(IXON_ULTRA_888.em_gain.low), int(IXON_ULTRA_888.em_gain.high))
        self.gain.setValue(cfg.camera.em_gain)
        self.advanced = QCheckBox(f"advanced (> {IXON_ULTRA_888.em_gain_plain_max})")
        self.advanced.setChecked(cfg.camera.advanced_em_gain)
        # a gain above the plain range is typed only with "advanced" ticked (the camera would
        # refuse it, naming the configuration key)
        self.advanced.toggled.connect(lambda on: self.gain.setMaximum(
            int(IXON_ULTRA_888.em_gain.high) if on else IXON_ULTRA_888.em_gain_plain_max))
        if not self.advanced.isChecked():
            self.gain.setMaximum(IXON_ULTRA_888.em_gain_plain_max)
        self.cooling_setpoint = limited(IXON_ULTRA_888.cooling_setpoint_c, cfg.camera.temperature_c,
                                        0, 5.0)
        self.readout_mode = QComboBox()
        self.readout_mode.addItems([str(ReadMode.TRACKS), str(ReadMode.IMAGE)])
        self.readout_mode.setCurrentText(cfg.camera.readout)
        self.control("new exposure", self.exposure,
                     self.button("Set", lambda: session.send(SetExposure(self.exposure.value()))))
        self.control("new EM gain", self.gain, self.advanced,
                     self.button("Set", lambda: session.send(SetEmGain(
                         self.gain.value(), self.advanced.isChecked()))))
        self.control("cooling", self.cooling_setpoint,
                     self.button("On", lambda: session.send(SetCooling(
                         True, self.cooling_setpoint.value()))),
                     self.button("Off", lambda: session.send(SetCooling(False))))
        self.control("readout", self.readout_mode,
                     self.button("Set", lambda: session.send(SetReadout(
                         ReadMode(self.readout_mode.currentText())))))
        self.finish()

    def display(self, status: CameraStatus, statuses: InstrumentStatuses) -> None:
        self.readouts["exposure"].setText(f"{status.exposure_s:g} s")
        self.readouts["gain"].setText(str(status.em_gain))
        ok = status.cooling is CoolingStatus.STABILIZED
        self.readouts["cooling"].setText(f"{status.temperature_c:.1f} °C, cooling "
                                         f"{status.cooling}" + ("" if ok else " (!)"))
        self.readouts["acquiring"].setText(
            f"acquiring, {status.frames_acquired} frames" if status.acquiring else "idle")


class SpectrographPanel(InstrumentPanel):
    instrument = "spectrograph"

    def __init__(self, session: RigSession, parent: QWidget | None = None) -> None:
        super().__init__("Spectrograph", session, parent)
        self.readout("grating", "grating")
        self.readout("center", "center wavelength")
        self.grating = QComboBox()
        self._installed: int | None = None  # the grating the spectrograph has in
        self.center = limited(KYMERA_328I.center_wavelength_nm,
                              session.config.spectrograph.center_wavelength_nm, 2, 1.0)
        self.control("select grating", self.grating,
                     self.button("Set", lambda: session.send(SetGrating(
                         int(self.grating.currentData() or 1)))))
        self.control("new center", self.center,
                     self.button("Set", lambda: session.send(SetCenterWavelength(
                         self.center.value()))))
        self.finish()

    def set_gratings(self, gratings: list[GratingInfo]) -> None:
        self.grating.clear()
        for g in gratings:
            self.grating.addItem(f"{g.index}: {g.lines_per_mm:g} l/mm ({g.blaze})", g.index)
        self._select_installed()

    def display(self, status: SpectrographStatus, statuses: InstrumentStatuses) -> None:
        self.readouts["grating"].setText(f"{status.grating} ({status.lines_per_mm:g} l/mm)")
        self.readouts["center"].setText(f"{status.center_wavelength_nm:.2f} nm")
        if status.grating != self._installed:  # a choice not yet Set stays until it changes
            self._installed = status.grating
            self._select_installed()

    def _select_installed(self) -> None:
        """The selector shows the installed grating (Set without a new choice changes
        nothing)."""
        k = self.grating.findData(self._installed)
        if k >= 0:
            self.grating.setCurrentIndex(k)


class TaggerPanel(InstrumentPanel):
    instrument = "tagger"

    def __init__(self, session: RigSession, parent: QWidget | None = None) -> None:
        super().__init__("Time tagger", session, parent)
        self.readout("stream", "stream")
        self.channels = session.config.channels.as_dict()
        for name, number in self.channels.items():
            self.readout(f"rate_{number}", f"{name} (input {number})")
        self.finish()

    def display(self, status: TaggerStatus, statuses: InstrumentStatuses) -> None:
        stream = "streaming" if status.streaming else "idle"
        stream += ", conditional filter" if status.conditional_filter else ""
        if status.overflows:
            stream += f", {status.overflows} overflows"
        self.readouts["stream"].setText(stream)
        for number in self.channels.values():
            rate = statuses.count_rates_cps.get(number)
            self.readouts[f"rate_{number}"].setText(
                NOT_CONNECTED if rate is None else f"{rate / 1e3:.2f} kcps")


#: Every instrument's panel, built from the session alone.
PANELS: tuple[Callable[[RigSession], InstrumentPanel], ...] = (
    CryostatPanel, LaserPanel, WaveplatePanel, CameraPanel, SpectrographPanel, TaggerPanel)


class InstrumentsWidget(QWidget):
    """All instrument panels in one column."""

    def __init__(self, session: RigSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.panels: dict[str, InstrumentPanel] = {}
        for cls in PANELS:
            panel = cls(session)
            self.panels[panel.instrument] = panel
            layout.addWidget(panel)
        layout.addStretch(1)

    def show_statuses(self, statuses: InstrumentStatuses | None) -> None:
        for panel in self.panels.values():
            panel.show_status(statuses)

    def set_controls_enabled(self, enabled: bool) -> None:
        for panel in self.panels.values():
            panel.set_controls_enabled(enabled)
