"""The window's smaller parts: the status strip, the rolling count-rate trace, the cursor
read-out, the spectral regions, the results of the analysis and the night's runs."""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PyQt6.QtCore import (
    QChildEvent,
    QCoreApplication,
    QEvent,
    QObject,
    QPointF,
    QSize,
    Qt,
    pyqtSignal,
)
from PyQt6.QtGui import QFont, QPainter, QPaintEvent
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cryoscope.analysis.spectra import HC_EV_NM

#: The smallest height of a plot (px): below it, tick labels are clipped.
MIN_PLOT_HEIGHT = 140

#: Region colours, in turn.
REGION_COLOURS = ("#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def _header(view: QTableWidget | QTreeWidget, vertical: bool = False) -> QHeaderView:
    """A table's or tree's header (Qt's stubs allow None; these views always have one)."""
    header = view.verticalHeader() if vertical and isinstance(view, QTableWidget) \
        else view.horizontalHeader() if isinstance(view, QTableWidget) else view.header()
    assert header is not None
    return header


def fmt_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# ---------------------------------------------------------------------------------------------
# Status strip


class StatusStrip(QWidget):
    """Always visible: count rate (large), sample temperature, waveplate θ and motion, frames,
    wall-clock time left, the file."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rate = QLabel("— kcps")
        big = QFont()
        big.setPointSize(20)
        big.setBold(True)
        self.rate.setFont(big)
        self.rate.setMinimumWidth(170)
        self.rate.setToolTip("APD count rate (both APDs with two)")
        self.temperature = QLabel("T —")
        self.waveplate = QLabel("θ —")
        self.frames = QLabel("frame — / —")
        self.left = QLabel("left —")
        self.file = QLabel("")
        self.file.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.mode = QLabel("")
        self.mode.setStyleSheet("font-weight: bold")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        layout.addWidget(self.rate)
        for w in (self.temperature, self.waveplate, self.frames, self.left, self.mode):
            w.setStyleSheet(w.styleSheet() + "; font-size: 11pt")
            layout.addWidget(w)
        layout.addWidget(self.file, 1)
        self._apds: tuple[int, ...] = ()
        #: the APD count rate shown (counts/s; None: not measured)
        self.rate_cps: float | None = None
        self._wall_start: float | None = None
        self._first_done = 0
        self._paused_wall_s = 0.0  # wall time spent paused since _wall_start
        self._pause_wall_start: float | None = None

    def set_apds(self, channels: Sequence[int]) -> None:
        self._apds = tuple(channels)

    def show_rates(self, rates_cps: dict[int, float]) -> None:
        values = [rates_cps[c] for c in self._apds if c in rates_cps]
        self.rate_cps = sum(values) if values else None
        self.rate.setText("— kcps" if self.rate_cps is None
                          else f"{self.rate_cps / 1e3:.1f} kcps")

    def show_temperature(self, kelvin: float | None) -> None:
        self.temperature.setText("T —" if kelvin is None else f"T {kelvin:.3f} K")

    def show_waveplate(self, theta_deg: float | None, moving: bool) -> None:
        if theta_deg is None:
            self.waveplate.setText("θ —")
        else:
            self.waveplate.setText(f"θ {theta_deg:.1f}°" + (" (moving)" if moving else ""))

    def run_started(self, path: str) -> None:
        self._wall_start, self._first_done = None, 0
        self._paused_wall_s, self._pause_wall_start = 0.0, None
        self.file.setText(path)
        self.frames.setText("frame 0 / —")
        self.left.setText("left —")

    def show_progress(self, done: int, total: int, paused: bool) -> None:
        """Frames and the wall-clock time left, from the wall-clock frame rate of this run while
        it ran (the wall time of its pauses left out)."""
        self.frames.setText(f"frame {done} / {total}")
        now = time.monotonic()
        if paused and self._pause_wall_start is None:
            self._pause_wall_start = now
        elif not paused and self._pause_wall_start is not None:
            if self._wall_start is not None:
                self._paused_wall_s += now - max(self._pause_wall_start, self._wall_start)
            self._pause_wall_start = None
        if done and self._wall_start is None:
            self._wall_start, self._first_done = now, done
        if paused or self._wall_start is None or done <= self._first_done:
            self.left.setText("left —")  # paused: the mode beside it says so
            return
        per_frame = (now - self._wall_start - self._paused_wall_s) / (done - self._first_done)
        self.left.setText(f"left {fmt_duration(per_frame * (total - done))}")

    def run_ended(self, text: str) -> None:
        self.left.setText(text)


# ---------------------------------------------------------------------------------------------
# Panels


class _WheelGuard(QObject):
    """Sends the mouse wheel over a spin box or list box that does not have the focus to its
    scroll area: scrolling a panel must not change the setting that passes under the mouse
    (a click or Tab gives the box the focus, and the wheel then changes its value). Watches the
    widgets added later too (a plan's parameters are built anew when the plan changes)."""

    def __init__(self, scroll: QScrollArea) -> None:
        super().__init__(scroll)
        self._scroll = scroll

    def watch(self, widget: QWidget) -> None:
        for w in [widget, *widget.findChildren(QWidget)]:
            if isinstance(w, QAbstractSpinBox | QComboBox):
                w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            w.removeEventFilter(self)  # once each
            w.installEventFilter(self)

    def eventFilter(self, watched: QObject | None, event: QEvent | None) -> bool:
        if event is None:
            return False
        if isinstance(event, QChildEvent) and event.type() == QEvent.Type.ChildAdded:
            child = event.child()
            if isinstance(child, QWidget):
                self.watch(child)
        elif (event.type() == QEvent.Type.Wheel
              and isinstance(watched, QAbstractSpinBox | QComboBox) and not watched.hasFocus()):
            QCoreApplication.sendEvent(self._scroll.verticalScrollBar(), event)
            return True
        return False


def panel_scroll(panel: QWidget) -> QScrollArea:
    """``panel`` in a scroll area that scrolls vertically only; its spin boxes and list boxes
    take the wheel only when they have the focus."""
    scroll = QScrollArea()
    scroll.setWidget(panel)
    scroll.setWidgetResizable(True)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    _WheelGuard(scroll).watch(panel)
    return scroll


# ---------------------------------------------------------------------------------------------
# Cursor read-out


class LineLabel(QLabel):
    """One line of text that changes while the window runs (a view's information line) and
    never moves the layout: its width follows its dock, not its text, and its height is one
    line whatever the text. Text wider than the label is elided ("…"), the whole of it in the
    tooltip.

    A plain :class:`QLabel` asks for its text's width: a number gaining a digit widened a dock
    column, which resized and repainted every plot of the window (axes, grid and all) during
    runs, and a long line pushed the window past a 1366 px screen.
    """

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setToolTip(text)

    def setText(self, text: str | None) -> None:
        super().setText(text)
        self.setToolTip(text or "")

    def sizeHint(self) -> QSize:
        metrics = self.fontMetrics()
        margins = self.contentsMargins()
        return QSize(metrics.horizontalAdvance(self.text()) + margins.left() + margins.right(),
                     metrics.height() + margins.top() + margins.bottom())

    def minimumSizeHint(self) -> QSize:
        return QSize(0, self.sizeHint().height())

    def paintEvent(self, event: QPaintEvent | None) -> None:
        QFrame.paintEvent(self, event)  # the frame and the style sheet's background
        painter = QPainter(self)
        rect = self.contentsRect()
        painter.drawText(rect, int(self.alignment().value), self.fontMetrics().elidedText(
            self.text(), Qt.TextElideMode.ElideRight, rect.width()))


class CursorReadout(LineLabel):
    """Shows the data coordinates under the mouse in ``plot``; ``describe(x, y)`` formats them."""

    def __init__(self, plot: pg.PlotWidget, describe: Callable[[float, float], str]) -> None:
        super().__init__("")
        self.setStyleSheet("color: #555")
        self._plot = plot
        self.describe = describe
        plot.scene().sigMouseMoved.connect(self._moved)
        plot.installEventFilter(self)  # the mouse leaving the plot clears the read-out

    def eventFilter(self, watched: QObject | None, event: QEvent | None) -> bool:
        if event is not None and event.type() == QEvent.Type.Leave:
            self.setText("")
        return False

    def _moved(self, pos: QPointF) -> None:
        box = self._plot.getPlotItem().vb
        if not box.sceneBoundingRect().contains(pos):
            self.setText("")
            return
        point = box.mapSceneToView(pos)
        self.setText(self.describe(point.x(), point.y()))


def xy_text(x_name: str, y_name: str) -> Callable[[float, float], str]:
    return lambda x, y: f"{x_name} {x:.4g}  ·  {y_name} {y:.4g}"


def spectral_text(energy_axis: Callable[[], bool], y_name: str) -> Callable[[float, float], str]:
    """Cursor text on a spectral axis: eV and nm both, whichever the axis shows."""
    def describe(x: float, y: float) -> str:
        if x <= 0:
            return ""
        ev, nm = (x, HC_EV_NM / x) if energy_axis() else (HC_EV_NM / x, x)
        return f"{ev:.4f} eV  ·  {nm:.2f} nm  ·  {y_name} {y:.4g}"
    return describe


# ---------------------------------------------------------------------------------------------
# Rolling count rate (alignment)


class CountRateTrace(QWidget):
    """The APD count rate of the last ``span_s`` seconds (wall clock), from the session's
    count-rate measurements: what the physicist watches while centring a particle."""

    title = "Count rate"

    def __init__(self, span_s: float = 60.0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.span_s = span_s
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "time (s, wall clock)")
        self.plot.setLabel("left", "count rate (kcps)")
        self.plot.setMinimumHeight(MIN_PLOT_HEIGHT)
        self.plot.setMouseEnabled(x=False, y=False)
        self.curve = self.plot.plot(pen=pg.mkPen("#333333", width=1.5), symbol="o",
                                    symbolSize=4)
        self.points: collections.deque[tuple[float, float]] = collections.deque()
        self.cursor_readout = CursorReadout(self.plot, xy_text("t", "kcps"))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addWidget(self.cursor_readout)

    def add(self, rate_cps: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.points.append((now, rate_cps))
        while self.points and self.points[0][0] < now - self.span_s:
            self.points.popleft()
        t = [p[0] - now for p in self.points]
        self.curve.setData(t, [p[1] / 1e3 for p in self.points])
        self.plot.setXRange(-self.span_s, 0, padding=0.02)


# ---------------------------------------------------------------------------------------------
# Regions


@dataclass(frozen=True)
class Region:
    """A spectral region of the polarization analysis (eV); ``source``: "analysis" (a line of
    the last analysis) or "hand" (drawn or typed by the user)."""

    name: str
    lo_ev: float
    hi_ev: float
    source: str = "hand"

    def as_list(self) -> list[Any]:
        return [self.name, self.lo_ev, self.hi_ev, self.source]


class RegionsPanel(QWidget):
    """The regions as a table with numeric entry; add, remove. Emits :attr:`changed`."""

    changed = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["region", "from (eV)", "to (eV)", "from"])
        _header(self.table).setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        _header(self.table, vertical=True).hide()
        self.table.setMinimumHeight(90)
        self.lo = QDoubleSpinBox()
        self.hi = QDoubleSpinBox()
        for box in (self.lo, self.hi):
            box.setDecimals(4)
            box.setRange(0.5, 5.0)
            box.setSingleStep(0.0005)
            box.setSuffix(" eV")
        self.lo.setValue(2.1485)
        self.hi.setValue(2.1515)
        add = QPushButton("Add")
        add.clicked.connect(lambda: self.add_region(self.lo.value(), self.hi.value()))
        remove = QPushButton("Remove selected")
        remove.clicked.connect(self._remove_selected)
        self.table.itemChanged.connect(self._edited)
        row = QHBoxLayout()
        row.addWidget(self.lo)
        row.addWidget(self.hi)
        row.addWidget(add)
        row.addWidget(remove)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(row)
        self._regions: list[Region] = []

    @property
    def regions(self) -> list[Region]:
        return list(self._regions)

    def set_regions(self, regions: Sequence[Region]) -> None:
        self._regions = list(regions)
        self._fill()
        self.changed.emit()

    def add_region(self, lo_ev: float, hi_ev: float, source: str = "hand") -> None:
        n = sum(r.source == "hand" for r in self._regions) + 1
        self._regions.append(Region(f"region {n}", min(lo_ev, hi_ev), max(lo_ev, hi_ev), source))
        self._fill()
        self.changed.emit()

    def move_region(self, index: int, lo_ev: float, hi_ev: float) -> None:
        """A region dragged on the spectrum."""
        r = self._regions[index]
        self._regions[index] = Region(r.name, min(lo_ev, hi_ev), max(lo_ev, hi_ev), r.source)
        self._fill()
        self.changed.emit()

    def set_analysis_regions(self, named_ev: Sequence[tuple[str, float, float]]) -> None:
        """One region per line or center of the last analysis, ``(name, lo, hi)``, replacing
        the previous analysis' ones."""
        hand = [r for r in self._regions if r.source != "analysis"]
        found = [Region(name, lo, hi, "analysis") for name, lo, hi in named_ev]
        self.set_regions(found + hand)

    def _remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True)
        for row in rows:
            del self._regions[row]
        self._fill()
        self.changed.emit()

    def _fill(self) -> None:
        """Show the regions; existing cells are updated in place (an edited cell's item must
        outlive the signal that reported the edit)."""
        self.table.blockSignals(True)
        self.table.setRowCount(len(self._regions))
        for row, r in enumerate(self._regions):
            cells = [r.name, f"{r.lo_ev:.4f}", f"{r.hi_ev:.4f}", r.source]
            for col, text in enumerate(cells):
                item = self.table.item(row, col)
                if item is None:
                    item = QTableWidgetItem()
                    if col in (0, 3):
                        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                    self.table.setItem(row, col, item)
                item.setText(text)
                if col == 0:
                    item.setForeground(pg.mkColor(REGION_COLOURS[row % len(REGION_COLOURS)]))
        self.table.blockSignals(False)

    def _edited(self, item: QTableWidgetItem) -> None:
        row = item.row()
        r = self._regions[row]
        try:
            value = float(item.text())
        except ValueError:
            self._fill()
            return
        lo, hi = (value, r.hi_ev) if item.column() == 1 else (r.lo_ev, value)
        self.move_region(row, lo, hi)


# ---------------------------------------------------------------------------------------------
# Results of the analysis


def line_name(index: int) -> str:
    """A line of an analysis, by its index in ``summary.json``'s ``lines`` (as ``centers[].lines``
    refers to it): the same name in the results, the regions and the polarization legend."""
    return f"line {index}"


def center_name(center_id: int) -> str:
    """An emission center, by its ``id`` in ``summary.json`` (as the analysis' figures name it)."""
    return f"center {center_id}"


def analysis_regions(summary: dict[str, Any]) -> list[tuple[str, float, float]]:
    """The spectral regions of an analysis, ``(name, lo, hi)`` (eV): each line's window and each
    center's region, named as the results dock names them."""
    found = [(line_name(k), *ln["window_ev"]) for k, ln in enumerate(summary["lines"])]
    found += [(center_name(c["id"]), *c["region_ev"]) for c in summary.get("centers", [])]
    return [(name, lo, hi) for name, lo, hi in found if lo is not None and hi is not None]


def determined(err: float | None) -> bool:
    """Whether an uncertainty is one: finite and positive (``summary.json`` has null for an
    undetermined one; zero is no uncertainty either)."""
    return err is not None and math.isfinite(err) and err > 0


def fmt_pm(value: float | None, err: float | None, unit: str = "", digits: int = 3) -> str:
    """``value ± err unit``, the error to two significant digits (one from 3.5 on) and the value
    to the same decimal; without a determined error, the value to ``digits`` decimals and
    "(no σ)"; "—" without a value."""
    if value is None or not math.isfinite(value):
        return "—"
    if not determined(err):
        return f"{value:.{digits}f}{unit} (no σ)"
    assert err is not None
    exponent = math.floor(math.log10(err))
    decimals = min(max(0, (2 if err / 10 ** exponent < 3.5 else 1) - 1 - exponent), 8)
    return f"{value:.{decimals}f} ± {err:.{decimals}f}{unit}"


def _num(value: float | None, spec: str, unit: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{unit}"


def _ev_nm(ev: float | None) -> str:
    return "—" if not ev else f"{ev:.4f} eV ({HC_EV_NM / ev:.2f} nm)"


class ResultsView(QWidget):
    """The analysis of a run (``summary.json``, ``docs/summary-format.md``), for a physicist:
    lines (ZPL, charge, FWHM, p ± σ, φ ± σ), states (share, count rate, lifetimes ± σ with their
    shares), centers (ZPL, spectral diffusion, φ, trion, LO replicas) and spectral jumps, one
    quantity with its unit per row (the full text and the quantity's meaning in tooltips). Lines
    and centers are numbered as ``summary.json`` numbers them (:func:`line_name`,
    :func:`center_name`), as the regions and the polarization legend are."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = QLabel("no analysis yet")
        self.header.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["quantity", "value"])
        _header(self.tree).setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        _header(self.tree).setStretchLastSection(True)
        self.tree.setIndentation(12)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.header)
        layout.addWidget(self.tree)
        self.summary: dict[str, Any] | None = None

    def show_pending(self, path: str) -> None:
        self.header.setText(f"analysing {Path(path).name} …")

    def show_waiting(self, path: str) -> None:
        """A run is going into ``path``: its analysis comes when it ends."""
        self.summary = None
        self.tree.clear()
        self.header.setText(f"{Path(path).name}: analysed when the run ends")

    def show_failed(self, path: str, message: str) -> None:
        self.header.setText(f"the analysis of {Path(path).name} failed: {message}")

    def show_summary(self, summary: dict[str, Any]) -> None:
        self.summary = summary
        self.tree.clear()
        rate = summary.get("count_rate_cps")
        self.header.setText(
            f"{Path(summary['file']).name}: {summary['status']}, {summary['frames']} frames, "
            f"{summary['photons']} photons" + (f", {rate / 1e3:.1f} kcps" if rate else ""))
        self._lines(summary["lines"])
        self._states(summary["states"])
        if summary.get("centers"):
            self._centers(summary["centers"])
        if summary.get("jumps"):
            self._jumps(summary["jumps"])
        self.tree.expandAll()
        if summary.get("jumps"):
            self.tree.collapseItem(self.tree.topLevelItem(self.tree.topLevelItemCount() - 1))

    def _lines(self, lines: list[dict[str, Any]]) -> None:
        group = self._group(f"lines ({len(lines)})", "each distinct zero-phonon line")
        for k, ln in enumerate(lines):
            item = self._row(group, line_name(k), _ev_nm(ln["zpl_ev"]),
                             "zero-phonon line: the median of its peak energies; ± "
                             f"{(ln['zpl_err_ev'] or 0) * 1e6:.1f} µeV (standard error)")
            charge = {"X": "X (neutral)", "X*": "X* (charged, trion)"}.get(ln["charge"],
                                                                          str(ln["charge"]))
            self._row(item, "charge", charge, "neutral exciton or negative trion")
            self._row(item, "center", center_name(ln["center"]), "its emission center")
            self._row(item, "FWHM", _num(ln["fwhm_mev"], ".2f", " meV"),
                      "Lorentzian width of the ZPL, spectral diffusion removed")
            # p and φ without uncertainties were not determined: no numbers (why: 'doubtful')
            determined = all(isinstance(e, float | int) and math.isfinite(e) and e > 0
                             for e in (ln["polarization_degree_err"],
                                       ln["dipole_angle_err_deg"]))
            self._row(item, "p", fmt_pm(ln["polarization_degree"],
                                        ln["polarization_degree_err"])
                      if determined else "not determined",
                      "degree of linear polarization ± 1σ")
            self._row(item, "φ", fmt_pm(ln["dipole_angle_deg"], ln["dipole_angle_err_deg"],
                                        "°", 1) if determined else "not determined",
                      "dipole angle ± 1σ, in [0°, 180°)")
            if determined:
                self._row(item, "g_V/g_H", _num(ln["gain_ratio_vh"], ".3f"),
                          "fitted transmission ratio of the V and H channels")
            self._row(item, "states", ", ".join(map(str, ln["states"])) or "—",
                      "the states in which it is its center's line")
            for k, why in enumerate(ln["uncertain"]):  # one label, a reason a row
                self._row(item, "" if k else "doubtful", why,
                          "why its p and φ are not to be trusted")

    def _states(self, states: list[dict[str, Any]]) -> None:
        group = self._group(f"states ({len(states)})", "spectral states (configurations), "
                            "brightest first")
        for st in states:
            item = self._row(group, f"state {st['id']}",
                             _num(st["fraction"], ".0%", " of frames"),
                             f"{st['frames']} frames")
            self._row(item, "configuration",
                      ", ".join(f"{center_name(k)}: {c}"
                                for k, c in enumerate(st["configuration"])) or "—",
                      "each center's line in this state: X, X* or dark")
            rate = st["count_rate_cps"]
            self._row(item, "count rate", _num(None if rate is None else rate / 1e3, ".1f",
                                               " kcps"),
                      f"{st['photons']} APD photons over the frames' exposure time")
            for k, (tau, err, weight) in enumerate(zip(
                    st["lifetimes_ns"], st["lifetimes_err_ns"], st["lifetime_weights"],
                    strict=True)):
                share = "" if weight is None else f" ({weight:.0%})"
                self._row(item, f"τ{k + 1}", fmt_pm(tau, err, " ns", 2) + share,
                          "decay component ± 1σ (its share of the decay's photons)")
            if not st["lifetimes_ns"]:
                self._row(item, "τ", "—", "no decay fit: background only or too few photons")
            self._row(item, "ZPL", ", ".join(f"{z:.4f} eV" for z in st["zpl_ev"] if z) or "—",
                      "ZPLs fitted in the state's summed spectrum")

    def _centers(self, centers: list[dict[str, Any]]) -> None:
        group = self._group(f"centers ({len(centers)})", "emission centers (a dot; two for a "
                            "dot molecule)")
        for c in centers:
            item = self._row(group, center_name(c["id"]), _ev_nm(c["zpl_ev"]),
                             "its neutral ZPL: the most frequent bright neutral line")
            self._row(item, "spectral diffusion", _num(c["zpl_spread_mev"], ".2f", " meV"),
                      "standard deviation of the neutral line's peak energy over its frames")
            self._row(item, "p", _num(c["polarization_degree"], ".3f"),
                      "degree of polarization of all its lines together")
            self._row(item, "φ", fmt_pm(c["dipole_angle_deg"], c["dipole_angle_err_deg"], "°",
                                        1), "dipole angle of all its lines together ± 1σ")
            trion = c["trion_shift_mev"]
            self._row(item, "trion", "never charged" if c["charged_zpl_ev"] is None
                      else f"{c['charged_zpl_ev']:.4f} eV ({trion:+.1f} meV)",
                      "its most frequent charged line, and its shift from the neutral ZPL")
            self._row(item, "lines", ", ".join(line_name(k) for k in c["lines"]) or "—",
                      "its lines (see lines)")
            for name, shift, err in zip(("CdSe LO", "CdS LO"), c["replica_shifts_mev"],
                                        c["replica_shifts_err_mev"], strict=True):
                self._row(item, name, fmt_pm(shift, err, " meV", 2) + " below",
                          "LO-phonon replica: its distance below the ZPL ± 1σ")
            lo, hi = c["region_ev"]
            self._row(item, "region", "—" if lo is None or hi is None
                      else f"{lo:.4f}–{hi:.4f} eV", "energy range of its lines ± 2 meV")

    def _jumps(self, jumps: list[dict[str, Any]]) -> None:
        kinds = collections.Counter(kind for j in jumps for kind in j["kind"].split("+"))
        group = self._group(f"jumps ({len(jumps)})", "spectral jumps of the centers: "
                            + ", ".join(f"{n} {kind}" for kind, n in kinds.most_common()))
        for j in jumps:
            at = f"frame {j['frame']}, {_num(j['time_s'], '.1f', ' s')} after the first exposure"
            for k, (center, kind, shift) in enumerate(zip(
                    j["centers"], j["kind"].split("+"), j["shifts_mev"], strict=True)):
                self._row(group, f"frame {j['frame']}" if k == 0 else "",
                          f"{center_name(center)} {kind.replace('_', ' ')} "
                          f"{_num(shift, '+.1f', ' meV')}",
                          at + (" (with the jump above)" if k else ""))

    def _group(self, title: str, tooltip: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem(self.tree, [title, ""])
        font = item.font(0)
        font.setBold(True)
        item.setFont(0, font)
        item.setFirstColumnSpanned(True)
        item.setToolTip(0, tooltip)
        return item

    @staticmethod
    def _row(parent: QTreeWidgetItem, name: str, value: str, meaning: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem(parent, [name, value])
        item.setToolTip(0, meaning)
        item.setToolTip(1, f"{name}: {value}\n{meaning}")
        return item


# ---------------------------------------------------------------------------------------------
# The night's runs


def key_line(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The run's best-measured line: of the lines whose p and φ have a determined uncertainty
    (finite and positive: a failed or degenerate fit has none, or a fake zero), the one with
    the smallest σ_φ (σ_φ ∝ 1 / (p √photons): the brightest and most polarized, as a rule),
    a line the analysis does not flag as doubtful first; None if no line has such a fit."""
    fitted = [ln for ln in summary.get("lines") or []
              if determined(ln.get("dipole_angle_err_deg"))
              and determined(ln.get("polarization_degree_err"))]
    if not fitted:
        return None
    return min(fitted, key=lambda ln: (bool(ln.get("uncertain")), ln["dipole_angle_err_deg"]))


@dataclass
class RunEntry:
    name: str
    path: str
    status: str
    frames: int
    photons: int
    summary: dict[str, Any] | None = None


class RunsTable(QWidget):
    """The runs of this session: name, status and key numbers; a click replays a run.

    Six narrow columns fit the ~400 px dock without scrolling (the name takes what is left);
    the frames, count rate and file are in each row's tooltip, the columns' meaning in the
    headers' tooltips."""

    replayRequested = pyqtSignal(str)  # path

    #: header, tooltip; the ZPL, p and φ: the run's best-measured line (:func:`key_line`)
    COLUMNS = (("run", "the run's name (its file)"),
               ("status", "complete, aborted or failed"),
               ("ZPL eV", "zero-phonon line of the run's best-measured line (smallest σ_φ)"),
               ("p", "its degree of linear polarization"),
               ("φ °", "its dipole angle ± 1σ (deg)"),
               ("τ ns", "decay components of the brightest state (ns)"))

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, len(self.COLUMNS))
        for col, (name, tip) in enumerate(self.COLUMNS):
            item = QTableWidgetItem(name)
            item.setToolTip(tip)
            self.table.setHorizontalHeaderItem(col, item)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        _header(self.table, vertical=True).hide()
        header = _header(self.table)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(24)
        self.table.cellClicked.connect(lambda row, _col: self.replayRequested.emit(
            self.entries[row].path))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("click a run to replay it"))
        layout.addWidget(self.table)
        self.entries: list[RunEntry] = []

    def add(self, entry: RunEntry) -> None:
        self.entries.append(entry)
        self._fill(len(self.entries) - 1)

    def set_summary(self, path: str, summary: dict[str, Any]) -> None:
        for row, entry in enumerate(self.entries):
            if entry.path == path:
                entry.summary = summary
                self._fill(row)

    def _fill(self, row: int) -> None:
        e = self.entries[row]
        self.table.setRowCount(len(self.entries))
        s = e.summary or {}
        line = key_line(s)
        rate = s.get("count_rate_cps")
        taus = [t for st in s.get("states", [])[:1] for t in st["lifetimes_ns"] if t is not None]
        phi_err = line["dipole_angle_err_deg"] if line else None
        cells = [e.name, e.status,
                 f"{line['zpl_ev']:.4f}" if line else "—",
                 f"{line['polarization_degree']:.2f}" if line else "—",
                 f"{line['dipole_angle_deg']:.1f} ± {phi_err:.1f}" if line else "—",
                 ", ".join(f"{t:.3g}" for t in taus) or "—"]
        tip = (f"{e.path}\n{e.frames} frames, {e.photons} photons"
               + (f", {rate / 1e3:.1f} kcps" if rate else "")
               + (f"\n{line_name(s['lines'].index(line))}: p = "
                  f"{fmt_pm(line['polarization_degree'], line['polarization_degree_err'])}, "
                  f"φ = {fmt_pm(line['dipole_angle_deg'], phi_err, '°', 1)}" if line else ""))
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setToolTip(tip)
            self.table.setItem(row, col, item)
