"""Run control: alignment, the particle's name and notes, the plan and its parameters, the output
file, start / pause / resume / stop, progress.

The parameter form is generated from the plan's pydantic model (``cryoscope.plans.PLANS``), so
a plan added there appears here with its own parameters and ranges. Validation is the model's:
the window shows the message naming the parameter. The particle's name is the output file's
name; after a run it is numbered on (``particle-07`` → ``particle-08``), never replaced.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cryoscope.acquisition import Progress
from cryoscope.session import PLANS, RigSession
from drivers.limits import IXON_ULTRA_888

#: Unit shown for a parameter, from the end of its name.
UNITS = {"_s": "s", "_deg": "°", "_hz": "Hz", "_nm": "nm", "_k": "K"}


def _unit(name: str) -> tuple[str, str]:
    for suffix, unit in UNITS.items():
        if name.endswith(suffix):
            return name[: -len(suffix)], unit
    return name, ""


def _bounds(field: Any) -> tuple[float, float]:
    lo, hi = -1e9, 1e9
    for meta in field.metadata:
        for attr, sign in (("gt", 1), ("ge", 0)):
            value = getattr(meta, attr, None)
            if value is not None:
                lo = float(value) + (1e-6 if sign else 0.0)
        for attr in ("lt", "le"):
            value = getattr(meta, attr, None)
            if value is not None:
                hi = float(value)
    return lo, hi


def next_name(name: str) -> str:
    """The name numbered on: ``particle-07`` → ``particle-08``, ``p9`` → ``p10``, ``dot`` →
    ``dot-2``."""
    match = re.fullmatch(r"(.*?)(\d+)", name)
    if match is None:
        return f"{name}-2"
    head, digits = match.groups()
    return f"{head}{int(digits) + 1:0{len(digits)}d}"


def first_free(folder: Path, name: str) -> str:
    """``name``, numbered on until ``folder/<name>.h5`` does not exist."""
    while (folder / f"{name}.h5").exists():
        name = next_name(name)
    return name


class RunPanel(QWidget):
    """Plan, parameters, output file, start and stop, progress."""

    startRequested = pyqtSignal(str, str, bool, dict)  # plan, output path, overwrite, parameters
    stopRequested = pyqtSignal()
    pauseRequested = pyqtSignal()
    resumeRequested = pyqtSignal()
    alignmentRequested = pyqtSignal(bool, float)  # on, exposure (s)

    def __init__(self, session: RigSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.plan = QComboBox()
        for name, spec in PLANS.items():
            self.plan.addItem(spec.title, name)
        self.plan.currentIndexChanged.connect(self._build_form)
        self.form_host = QWidget()
        self.form = QFormLayout(self.form_host)
        self.inputs: dict[str, QSpinBox | QDoubleSpinBox] = {}
        # alignment
        self.align_exposure = QDoubleSpinBox()
        self.align_exposure.setDecimals(3)
        self.align_exposure.setRange(max(IXON_ULTRA_888.exposure_s.low, 0.001), 10.0)
        self.align_exposure.setValue(0.1)
        self.align_exposure.setSuffix(" s")
        self.align = QPushButton("Align")
        self.align.setCheckable(True)
        self.align.setToolTip("rolling count rate and a live camera / spectrum at this "
                              "exposure; nothing is written")
        self.align.toggled.connect(
            lambda on: self.alignmentRequested.emit(on, self.align_exposure.value()))
        # what is measured
        folder = Path.cwd()
        self.particle = QLineEdit(first_free(folder, "particle-01"))
        self.particle.setObjectName("particle")
        self.particle.setToolTip("the particle's name: also the output file's name; numbered "
                                 "on after each run")
        self.sample = QLineEdit()
        self.sample_type = QComboBox()
        self.sample_type.addItems(["unknown", "monomer", "molecule"])
        self.operator = QLineEdit()
        self.notes = QLineEdit()
        self.notes.setPlaceholderText("written into the file")
        self.output = QLineEdit(str(folder / f"{self.particle.text()}.h5"))
        self.particle.textEdited.connect(self._particle_edited)
        self.output.textEdited.connect(lambda text: self.particle.setText(Path(text).stem))
        browse = QPushButton("…")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse)
        self.overwrite = QCheckBox("overwrite")
        self.start = QPushButton("Start")
        self.pause = QPushButton("Pause")
        self.resume = QPushButton("Resume")
        self.stop = QPushButton("Stop")
        self.start.setStyleSheet("font-weight: bold")
        self.start.clicked.connect(self._start)
        self.pause.clicked.connect(self.pauseRequested.emit)
        self.resume.clicked.connect(self.resumeRequested.emit)
        self.stop.clicked.connect(self.stopRequested.emit)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m frames")
        self.status = QLabel("idle")
        self.status.setWordWrap(True)

        align_box = QGroupBox("Alignment")
        align_row = QHBoxLayout(align_box)
        align_row.addWidget(QLabel("exposure"))
        align_row.addWidget(self.align_exposure)
        align_row.addWidget(self.align)
        what = QGroupBox("Particle")
        what_form = QFormLayout(what)
        what_form.addRow("name", self.particle)
        what_form.addRow("sample", self.sample)
        what_form.addRow("sample type", self.sample_type)
        what_form.addRow("operator", self.operator)
        what_form.addRow("notes", self.notes)
        out_row = QHBoxLayout()
        out_row.addWidget(self.output, 1)
        out_row.addWidget(browse)
        out_row.addWidget(self.overwrite)
        buttons = QHBoxLayout()
        for b in (self.start, self.pause, self.resume, self.stop):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(align_box)
        layout.addWidget(what)
        top = QFormLayout()
        top.addRow("plan", self.plan)
        layout.addLayout(top)
        layout.addWidget(self.form_host)
        layout.addWidget(QLabel("output file"))
        layout.addLayout(out_row)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self._build_form()
        self.set_state(connected=False, running=False)

    @property
    def plan_name(self) -> str:
        return str(self.plan.currentData())

    def _build_form(self) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.inputs.clear()
        spec = PLANS[self.plan_name]
        defaults: BaseModel = spec.defaults(self.session.config)
        for name, field in spec.Parameters.model_fields.items():
            label, unit = _unit(name)
            value = getattr(defaults, name)
            lo, hi = _bounds(field)
            box: QSpinBox | QDoubleSpinBox
            if field.annotation is int:
                box = QSpinBox()
                box.setRange(int(max(lo, -2**31 + 1)), int(min(hi, 2**31 - 1)))
            else:
                box = QDoubleSpinBox()
                box.setDecimals(3)
                box.setRange(lo, hi)
            box.setValue(value)
            if unit:
                box.setSuffix(f" {unit}")
            box.setKeyboardTracking(False)
            box.setObjectName(f"plan_{name}")
            self.inputs[name] = box
            self.form.addRow(label.replace("_", " "), box)

    def parameters(self) -> dict[str, Any]:
        return {name: box.value() for name, box in self.inputs.items()}

    def set_parameters(self, **values: Any) -> None:
        for name, value in values.items():
            self.inputs[name].setValue(value)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Measurement file", self.output.text(),
                                              "HDF5 measurement (*.h5)")
        if path:
            self.output.setText(path)
            self.particle.setText(Path(path).stem)

    def continue_from(self, output: Path, sample: str, operator: str) -> None:
        """Go on where a previous session stopped: the first free name from ``output``'s on,
        in its folder (``particle-10.h5`` written: ``particle-11``), the same sample and
        operator."""
        name = first_free(output.parent, output.stem)
        self.output.setText(str(output.parent / f"{name}.h5"))
        self.particle.setText(name)
        self.sample.setText(sample)
        self.operator.setText(operator)

    def _particle_edited(self, name: str) -> None:
        folder = Path(self.output.text()).parent
        self.output.setText(str(folder / f"{name.strip()}.h5"))

    def measurement(self) -> dict[str, str]:
        """The ``[measurement]`` values of the next run."""
        return {"particle": self.particle.text().strip(), "sample": self.sample.text().strip(),
                "sample_type": self.sample_type.currentText(),
                "operator": self.operator.text().strip(), "notes": self.notes.text().strip()}

    def _start(self) -> None:
        self.startRequested.emit(self.plan_name, self.output.text().strip(),
                                 self.overwrite.isChecked(), self.parameters())

    def number_on(self) -> None:
        """After a run wrote its file: the next free name in the same folder, for the file and
        the particle (``particle-07`` → ``particle-08``). Nothing written: the name is kept."""
        out = Path(self.output.text())
        if not out.exists():
            return
        name = first_free(out.parent, next_name(out.stem))
        self.output.setText(str(out.parent / f"{name}.h5"))
        particle = self.particle.text().strip()
        self.particle.setText(name if particle in ("", out.stem) else next_name(particle))

    def set_state(self, *, connected: bool, running: bool, paused: bool = False) -> None:
        self.start.setEnabled(connected and not running)
        self.stop.setEnabled(running)
        self.pause.setEnabled(running and not paused)
        self.resume.setEnabled(running and paused)
        self.align.setEnabled(connected and not running)
        for w in (self.plan, self.form_host, self.output, self.overwrite, self.particle,
                  self.sample, self.sample_type, self.operator, self.notes):
            w.setEnabled(not running)

    def show_progress(self, p: Progress) -> None:
        # QProgressBar.setValue repaints at once, and with the bar every widget of the window
        # that waits to repaint (the plots): with updates off, the bar waits for the next pass
        # of the event loop like the others
        self.progress.setUpdatesEnabled(False)
        self.progress.setMaximum(max(p.frames_total, 1))
        self.progress.setValue(p.frames_done)
        self.progress.setUpdatesEnabled(True)
        moving = ", moving" if p.stage_moving else ""
        self.status.setText(
            f"{p.elapsed_s:.1f} s of acquisition (rig clock)  ·  {p.photons} photons, "
            f"{p.count_rate_cps / 1e3:.1f} kcps  ·  θ = {p.waveplate_deg:.1f}°{moving}")
