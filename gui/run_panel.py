"""Run control: choose a plan, edit its parameters, pick the output file, start, stop, progress.

The parameter form is generated from the plan's pydantic model (``cryoscope.plans.PLANS``), so
a plan added there appears here with its own parameters and ranges. Validation is the model's:
the window shows the message naming the parameter.
"""

from __future__ import annotations

import datetime as dt
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


def default_output() -> Path:
    return Path.cwd() / f"cryoscope-{dt.datetime.now():%Y%m%d-%H%M%S}.h5"


class RunPanel(QWidget):
    """Plan, parameters, output file, start and stop, progress."""

    startRequested = pyqtSignal(str, str, bool, dict)  # plan, output path, overwrite, parameters
    stopRequested = pyqtSignal()

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
        self.output = QLineEdit(str(default_output()))
        browse = QPushButton("…")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse)
        self.overwrite = QCheckBox("overwrite")
        self.start = QPushButton("Start")
        self.stop = QPushButton("Stop")
        self.start.setStyleSheet("font-weight: bold")
        self.start.clicked.connect(self._start)
        self.stop.clicked.connect(self.stopRequested.emit)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m frames")
        self.status = QLabel("idle")
        self.status.setWordWrap(True)

        out_row = QHBoxLayout()
        out_row.addWidget(self.output, 1)
        out_row.addWidget(browse)
        out_row.addWidget(self.overwrite)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start)
        buttons.addWidget(self.stop)
        layout = QVBoxLayout(self)
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

    def _start(self) -> None:
        self.startRequested.emit(self.plan_name, self.output.text().strip(),
                                 self.overwrite.isChecked(), self.parameters())

    def new_output(self) -> None:
        """Suggest a fresh file name after a run."""
        if not self.overwrite.isChecked():
            self.output.setText(str(Path(self.output.text()).parent / default_output().name))

    def set_state(self, *, connected: bool, running: bool) -> None:
        self.start.setEnabled(connected and not running)
        self.stop.setEnabled(running)
        for w in (self.plan, self.form_host, self.output, self.overwrite):
            w.setEnabled(not running)

    def show_progress(self, p: Progress) -> None:
        self.progress.setMaximum(max(p.frames_total, 1))
        self.progress.setValue(p.frames_done)
        moving = ", moving" if p.stage_moving else ""
        self.status.setText(
            f"elapsed {p.elapsed_s:.1f} s  ·  remaining {p.remaining_s:.1f} s (rig time)\n"
            f"{p.photons} photons, {p.count_rate_cps / 1e3:.1f} kcps  ·  θ = "
            f"{p.waveplate_deg:.1f}°{moving}")
