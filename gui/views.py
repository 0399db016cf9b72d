"""Live views: each draws what a :class:`cryoscope.live.LiveAccumulator` holds.

Views hold no measurement logic: they ask the accumulator (live run or replayed file) for a
consistent copy and draw it. The window's display timer calls :meth:`View.refresh` and
:meth:`View.paint_waiting`; a view redraws only when the accumulator changed, and at most every
:attr:`View.min_interval_s` (zero: on every timer tick, for the camera).

What is drawn on the GUI thread is kept small: every view reads the accumulator and prepares its
picture on a helper thread (the camera's full frame, the spectral time trace and the FLID
downsampled to the screen, resampled, scaled to 8 bits with their display levels; the
polarization fit; the spectra's, decay's and trace's copies) — the GUI thread never waits for
the accumulator's lock and only hands the ready arrays to pyqtgraph. Images have no grid, and
the curves' grid is drawn so that a redraw does not repaint the axes (see :func:`_plot`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt, pyqtSignal, pyqtSlot
from PyQt6.QtGui import QFontMetrics
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from cryoscope.analysis.lifetime import DecayFit, DecayHistogram, model_counts
from cryoscope.analysis.polarization import (
    polarization_model,
)
from cryoscope.analysis.spectra import HC_EV_NM
from cryoscope.analysis.trace import IntensityTrace
from cryoscope.live import FrameView, LiveAccumulator, LiveFlid, PolarizationView, SpectraView
from drivers.interfaces import ReadMode
from gui.widgets import (
    MIN_PLOT_HEIGHT,
    REGION_COLOURS,
    CursorReadout,
    LineLabel,
    Region,
    spectral_text,
    xy_text,
)

log = logging.getLogger(__name__)

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="w",
                    foreground="k")

#: The data curves' pens: one pixel wide, Qt's fast path. A wider pen is stroked as outlines,
#: seven times slower to paint (5.6 against 0.8 ms for three 1024-point curves), all of it on
#: the GUI thread and holding the GIL.
V_PEN = pg.mkPen("#1f77b4", width=1)
H_PEN = pg.mkPen("#d62728", width=1)
SUM_PEN = pg.mkPen("#333333", width=1)
FIT_PEN = pg.mkPen("#2ca02c", width=2)


class View(QWidget):
    """A live view. Subclasses implement :meth:`compute` (a helper thread: reads the accumulator
    and prepares what to show) and :meth:`paint` (the GUI thread: hands it to pyqtgraph). The GUI
    thread never reads the accumulator, whose lock is held while a run's data come in, and the
    event loop stays free. A view waits at least :attr:`max_duty` ⁻¹ times the CPU time of its
    last computation between two, so a computation that grows with the run never takes more than
    that share of a core."""

    title: ClassVar[str] = ""
    #: Shortest time between two redraws (s).
    min_interval_s: ClassVar[float] = 0.0
    #: Largest share of the time a view's computations may take.
    max_duty: ClassVar[float] = 0.25
    #: The helper thread the view computes on (views naming the same one share it).
    helper: ClassVar[str] = "views"
    _computed = pyqtSignal(int, object)  # sequence number, Future

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._drawn_version = -1
        self._drawn_source: LiveAccumulator | None = None
        self._last_draw = 0.0
        self._last_paint = 0.0
        self._compute_s = 0.0
        self._sequence = 0
        self._pending = False  # a computation is under way
        self._ready: Future[Any] | None = None  # its result, not painted yet
        self.redraws = 0
        #: Shows no data (cleared): its next picture with data lays its plot out anew (ranges,
        #: axes, labels), which Qt paints several times over in one pass of the event loop.
        #: Subclasses set it False when they draw data.
        self.empty = True
        # PyQt6's stubs omit connect()'s connection-type argument, which PyQt6 takes
        self._computed.connect(self._on_computed,
                               Qt.ConnectionType.QueuedConnection)  # type: ignore[call-arg]

    def changed(self, source: LiveAccumulator) -> bool:
        """Whether ``source`` has something new for this view since the last draw."""
        return source is not self._drawn_source or source.version != self._drawn_version

    def due(self, source: LiveAccumulator | None) -> bool:
        """Whether ``source`` changed since the last draw and the interval has passed."""
        if (source is None or self._pending or self._ready is not None
                or not self.changed(source)):
            return False
        interval = max(self.min_interval_s, self._compute_s / self.max_duty)
        return time.monotonic() - self._last_draw >= interval

    def shown(self) -> bool:
        """Whether any of the view is on screen: a dock behind another's tab counts as visible
        to Qt but shows nothing (drawing it would cost the GUI thread for nobody; it is drawn
        when its tab is raised)."""
        return self.isVisible() and not self.visibleRegion().isEmpty()

    @property
    def last_paint(self) -> float:
        """When the view last painted (``time.monotonic``)."""
        return self._last_paint

    def refresh(self, source: LiveAccumulator | None, force: bool = False) -> bool:
        """Start computing a picture if due (or ``force``: now, whatever the interval, changed or
        not); returns whether it started. The picture waits for :meth:`paint_waiting`."""
        if source is None or not (force or self.due(source)):
            return False
        self._drawn_source, self._drawn_version = source, source.version
        self._last_draw = time.monotonic()
        self._sequence += 1
        self.prepare()
        self._pending = True
        self._ready = None
        sequence = self._sequence
        future = _helper(self.helper).submit(self._timed_compute, source)
        future.add_done_callback(lambda f: self._deliver(sequence, f))
        return True

    def waiting(self) -> bool:
        """Whether a computed picture waits to be painted."""
        return self._ready is not None

    def paint_waiting(self) -> bool:
        """Paint the computed picture, if one waits; returns whether the view painted.

        Pictures wait for this call instead of being painted as they come, so that the window
        decides how many views repaint in one pass of the event loop."""
        future, self._ready = self._ready, None
        if future is None:
            return False
        self._count_paint()
        self.paint(future.result())
        return True

    def prepare(self) -> None:
        """GUI thread, before a computation: read what it needs from the widgets."""

    def clear(self) -> None:
        """Show nothing (a new run starts): no trace of the previous data."""
        raise NotImplementedError

    def reset(self) -> None:
        """Clear, and forget what was drawn: a computation under way is dropped."""
        self._sequence += 1
        self._pending = False
        self._ready = None
        self._drawn_source, self._drawn_version = None, -1
        self.empty = True
        self.clear()

    def _timed_compute(self, source: LiveAccumulator) -> Any:
        start = time.thread_time()  # CPU time: waiting for a core or the GIL is not a cost
        try:
            return self.compute(source)
        finally:
            self._compute_s = time.thread_time() - start

    def _deliver(self, sequence: int, future: Future[Any]) -> None:
        """Helper thread: hand the result to the GUI thread."""
        with contextlib.suppress(RuntimeError):  # the widget is gone (window closed)
            self._computed.emit(sequence, future)

    @pyqtSlot(int, object)
    def _on_computed(self, sequence: int, future: Future[Any]) -> None:
        if sequence == self._sequence:  # else a newer draw superseded it
            self._pending = False
            self._ready = future

    def _count_paint(self) -> None:
        self.redraws += 1
        self._last_paint = time.monotonic()

    def compute(self, source: LiveAccumulator) -> Any:
        raise NotImplementedError

    def paint(self, data: Any) -> None:
        raise NotImplementedError


_HELPERS: dict[str, ThreadPoolExecutor] = {}


def _helper(name: str) -> ThreadPoolExecutor:
    """The helper thread ``name`` that computes views' pictures."""
    if name not in _HELPERS:
        _HELPERS[name] = ThreadPoolExecutor(1, thread_name_prefix=f"view-{name}")
    return _HELPERS[name]


GRID_PEN = pg.mkPen("#e4e4e4")


def _plot(x_label: str, y_label: str, grid: bool = True) -> pg.PlotWidget:
    """A plot with its axis labels (units in the label: no SI-prefix rescaling); ``grid`` for
    curves, not for images.

    The grid is a :class:`pyqtgraph.GridItem` without labels rather than the axes' own grid:
    with the axes' grid, every redraw of a curve repaints the axes' tick labels too (about
    10 ms per redraw of a 700 × 350 plot, against 1–2 ms).
    """
    plot = pg.PlotWidget()
    plot.setLabel("bottom", x_label)
    plot.setLabel("left", y_label)
    for side in ("bottom", "left"):  # no "(x0.001)" scaling of a small range: the label's units
        plot.getAxis(side).enableAutoSIPrefix(False)
    # the left axis keeps room for 6-character tick labels and never narrows: a range change
    # that changed the labels' width re-laid the plot out and Qt painted it again
    left = plot.getAxis("left")
    left.setStyle(autoReduceTextSpace=False)
    left.textWidth = QFontMetrics(left.font()).horizontalAdvance("000000")
    left.setWidth()
    plot.setMinimumHeight(MIN_PLOT_HEIGHT)
    if grid:
        lines = pg.GridItem(pen=GRID_PEN, textPen=None)
        lines.setZValue(-100)
        plot.addItem(lines, ignoreBounds=True)
    return plot


class HeldRange:
    """A plot's y range kept ahead of data that grow or jitter, instead of pyqtgraph's auto range,
    which follows every redraw: each change of range repaints the axes and the grid (about a
    fifth of the GUI thread's time during a run). The range is set only when the data leave it
    or fill less than half of it, then with :attr:`HEADROOM` above: a sum that grows over a run
    changes the axis a few dozen times, not on every redraw. A zoom or pan with the mouse leaves
    the user's range alone until the plot's auto-range button gives the range back."""

    #: Space above the data when the range is set, as a fraction of their span.
    HEADROOM: ClassVar[float] = 0.25

    def __init__(self, plot: pg.PlotWidget) -> None:
        self.box = plot.getViewBox()
        self.held = True
        self.changes = 0  #: how many times the range was set
        self.box.enableAutoRange(y=False)
        self.box.sigRangeChangedManually.connect(self._manual)

    def _manual(self, *_: object) -> None:
        self.held = False

    def update(self, lo: float, hi: float) -> None:
        """Hold the range around data spanning ``lo`` to ``hi``."""
        if self.box.state["autoRange"][1]:  # auto range asked for: it is ours again
            self.box.enableAutoRange(y=False)
            self.held = True
        if not self.held or not (np.isfinite(lo) and np.isfinite(hi)):
            return
        bottom, top = self.box.viewRange()[1]
        if bottom <= lo and hi <= top and hi - lo >= 0.5 * (top - bottom):
            return
        span = max(hi - lo, 1e-9)
        self.box.setYRange(lo - 0.05 * span, hi + self.HEADROOM * span, padding=0.0)
        self.changes += 1


GREY = pg.ColorMap([0.0, 1.0], [(0, 0, 0), (255, 255, 255)])


def _colour_bar(plot: pg.PlotWidget, image: pg.ImageItem, cmap: pg.ColorMap) -> pg.ColorBarItem:
    """A colour bar right of ``plot`` labelled in the data's units (the image itself is drawn
    from 8-bit values, so the bar is not linked to its levels: :meth:`ColorBarItem.setLevels`
    with the data levels of each picture)."""
    image.setColorMap(cmap)
    bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=cmap, interactive=False, width=12)
    item = plot.getPlotItem()
    item.layout.addItem(bar, 2, 5)
    item.layout.setColumnFixedWidth(4, 5)
    return bar


def _robust_levels(image: npt.NDArray[np.generic]) -> tuple[float, float]:
    """Display levels from a subsample: 1st to 99.9th percentile, widened to whole steps of
    1, 2 or 5 × 10ⁿ (about a fiftieth of their span), so that frames of the same scene keep the
    same levels (and the colour bar's axis is not redrawn for every frame's noise)."""
    stride = max(1, max(image.shape) // 256)
    sample = np.asarray(image[::stride, ::stride], np.float64)
    lo, hi = (float(v) for v in np.percentile(sample, (1.0, 99.9)))
    step = _nice_step(max(hi - lo, 1.0) / 50)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    return lo, max(hi, lo + step)


def _nice_step(size: float) -> float:
    """The smallest of 1, 2, 5 × 10ⁿ at least ``size``."""
    decade = 10.0 ** math.floor(math.log10(size))
    return next(m * decade for m in (1.0, 2.0, 5.0, 10.0) if m * decade >= size)


def _to_8bit(image: npt.NDArray[np.floating], levels: tuple[float, float]
             ) -> npt.NDArray[np.uint8]:
    """``image`` scaled to 0–255 between ``levels`` (what pyqtgraph would do while painting)."""
    lo, hi = levels
    scaled = (np.asarray(image, np.float32) - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    return np.clip(scaled, 0.0, 255.0, out=scaled).astype(np.uint8)


def _block_mean(image: npt.NDArray[np.generic], factor: int) -> npt.NDArray[np.float32]:
    """Mean over ``factor`` × ``factor`` blocks (edge rows and columns that do not fill a block
    are dropped)."""
    if factor <= 1:
        return np.asarray(image, np.float32)
    rows, cols = image.shape[0] // factor, image.shape[1] // factor
    # a sum of strided slices: ten times faster than a mean over a reshaped array's axes
    total = np.zeros((rows, cols), np.float32)
    for i in range(factor):
        for j in range(factor):
            total += image[i: rows * factor: factor, j: cols * factor: factor]
    total *= np.float32(1.0 / (factor * factor))
    return total


def _row_mean(image: npt.NDArray[np.float32], max_rows: int) -> npt.NDArray[np.float32]:
    """Mean over groups of consecutive rows so that at most ``max_rows`` remain."""
    group = -(-image.shape[0] // max_rows)
    if group <= 1:
        return image
    starts = np.arange(0, image.shape[0], group)
    sizes = np.diff(np.append(starts, image.shape[0])).astype(np.float32)
    return (np.add.reduceat(image, starts, axis=0) / sizes[:, None]).astype(np.float32)


def _uniform_columns(image: npt.NDArray[np.generic], x: npt.NDArray[np.float64]
                     ) -> tuple[npt.NDArray[np.float32], float, float]:
    """Resample the columns of ``image`` (at positions ``x``, monotonic) onto a uniform grid, so
    an image item's linear axis is right (energy is not linear in the pixel)."""
    order = np.argsort(x)
    xs = x[order]
    grid = np.linspace(xs[0], xs[-1], xs.shape[0])
    pos = np.interp(grid, xs, np.arange(xs.shape[0], dtype=np.float64))
    i0 = np.minimum(pos.astype(np.int64), xs.shape[0] - 2)
    w = (pos - i0).astype(np.float32)
    data = np.asarray(image, np.float32)[:, order]
    out = data[:, i0] * (1 - w) + data[:, i0 + 1] * w
    step = (xs[-1] - xs[0]) / max(xs.shape[0] - 1, 1)
    return out, float(xs[0] - step / 2), float(xs[-1] + step / 2)


@dataclass(frozen=True)
class _CameraPicture:
    """A frame ready to draw: in image readout, 8-bit, downsampled by ``factor``."""

    frame: FrameView
    image: npt.NDArray[np.generic]
    factor: int = 1
    levels: tuple[float, float] | None = None  #: ADU shown as black and white


class CameraView(View):
    """The latest frame: the full image, or the tracks' spectra in tracks readout.

    A full frame is prepared on a helper thread: averaged over blocks of ``factor`` × ``factor``
    pixels where the screen shows at least that many sensor pixels per screen pixel, and scaled
    to 8 bits between robust levels. The GUI thread draws only that.
    """

    title = "Camera"
    helper = "camera"  # its own: a frame never waits for a fit or a FLID

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # no grid in either readout: the camera redraws on every frame
        self.plot = _plot("column", "row", grid=False)
        self.image = pg.ImageItem(autoDownsample=False)
        self.plot.addItem(self.image)
        self.plot.invertY(True)
        self.colour_bar = _colour_bar(self.plot, self.image, GREY)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.tracks_range = HeldRange(self.plot)  # the tracks' counts; images auto-range
        self.info = LineLabel("no frame yet")
        self.cursor_readout = CursorReadout(self.plot, xy_text("column", "row"))
        # levels: robust (1st–99.9th percentile of the frame) or typed in ADU
        self.auto_levels = QCheckBox("auto levels")
        self.auto_levels.setChecked(True)
        self.black = QDoubleSpinBox()
        self.white = QDoubleSpinBox()
        for box, value in ((self.black, 0.0), (self.white, 5000.0)):
            box.setRange(0.0, 65535.0)
            box.setDecimals(0)
            box.setSuffix(" ADU")
            box.setValue(value)
            box.setEnabled(False)
            box.valueChanged.connect(self._levels_changed)
        self.auto_levels.toggled.connect(self._levels_changed)
        levels_row = QHBoxLayout()
        self._levels_widgets: list[QWidget] = [self.auto_levels, QLabel("black"), self.black,
                                               QLabel("white"), self.white]
        for w in self._levels_widgets:
            levels_row.addWidget(w)
        levels_row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addLayout(levels_row)
        layout.addWidget(self.info)
        layout.addWidget(self.cursor_readout)
        self.mode: ReadMode | None = None
        self.levels: tuple[float, float] | None = None
        self._frame: FrameView | None = None
        self._factor = 1
        self._manual_levels: tuple[float, float] | None = None
        self._enable_levels()

    def _levels_changed(self) -> None:
        self._enable_levels()
        self._frame = None  # draw the latest frame again with the new levels

    def _enable_levels(self) -> None:
        """Levels concern the image readout only; black and white are typed without auto
        levels. (The row stays in place either way: showing it at a run's first frame would
        resize the window's plots.)"""
        image_mode = self.mode is ReadMode.IMAGE
        for w in self._levels_widgets:
            w.setEnabled(image_mode)
        manual = image_mode and not self.auto_levels.isChecked()
        self.black.setEnabled(manual)
        self.white.setEnabled(manual)

    def changed(self, source: LiveAccumulator) -> bool:
        return source is not self._drawn_source or source.latest_frame() is not self._frame

    def expect(self, mode: ReadMode) -> None:
        """The camera reads out in ``mode``: set the view up for it now if it shows no frame,
        so that a run's first frame is drawn into a plot already laid out (setting the mode up
        re-lays the plot out: axes, colour bar, labels, which the first frame then repaints
        several times in one pass of the event loop)."""
        if self.empty:
            self._set_mode(mode)

    def _set_mode(self, mode: ReadMode) -> None:
        if mode is self.mode:
            return
        self.mode = mode
        image_mode = mode is ReadMode.IMAGE
        self.image.setVisible(image_mode)
        self.colour_bar.setVisible(image_mode)
        self._enable_levels()
        self.cursor_readout.describe = xy_text("column", "row" if image_mode else "ADU")
        for curve in self.curves.values():
            self.plot.removeItem(curve)
        self.curves.clear()
        self.plot.invertY(image_mode)
        self.plot.enableAutoRange()
        self.plot.setLabel("left", "row" if image_mode else "counts (ADU)")

    def clear(self) -> None:
        self.image.clear()
        for curve in self.curves.values():
            curve.setData([], [])
        self._frame = None
        self.info.setText("no frame yet")

    def prepare(self) -> None:
        """The downsampling factor: sensor pixels per screen pixel, as the view is zoomed."""
        size = self.plot.getViewBox().viewPixelSize()
        self._factor = max(1, int(min(size))) if self.mode is ReadMode.IMAGE else 1
        lo, hi = self.black.value(), self.white.value()
        self._manual_levels = None if self.auto_levels.isChecked() \
            else (min(lo, hi), max(hi, lo + 1.0))

    def compute(self, source: LiveAccumulator) -> _CameraPicture | None:
        frame = source.latest_frame()
        if frame is None:
            return None
        if frame.mode is not ReadMode.IMAGE:
            return _CameraPicture(frame, frame.image.astype(np.float64))
        factor = self._factor
        small = _block_mean(frame.image, factor)
        levels = self._manual_levels or _robust_levels(small)
        return _CameraPicture(frame, _to_8bit(small, levels), factor, levels)

    def paint(self, picture: _CameraPicture | None) -> None:
        if picture is None:
            return
        frame = picture.frame
        self._frame = frame
        self.empty = False
        self._set_mode(frame.mode)
        if frame.mode is ReadMode.IMAGE:
            self.image.setImage(picture.image, autoLevels=False, levels=(0, 255))
            if picture.levels is not None:
                self.colour_bar.setLevels(picture.levels)
            f = picture.factor
            self.image.setRect(QRectF(0, 0, picture.image.shape[1] * f,
                                      picture.image.shape[0] * f))
        else:
            pens = {"V": V_PEN, "H": H_PEN}
            for k, name in enumerate(frame.track_names):
                if name not in self.curves:
                    self.curves[name] = self.plot.plot(pen=pens.get(name, SUM_PEN), name=name)
                self.curves[name].setData(picture.image[k])
            shown = picture.image[: len(frame.track_names)]
            self.tracks_range.update(float(shown.min()), float(shown.max()))
        self.levels = picture.levels
        text = (f"frame {frame.index}  ·  {frame.mode} readout  ·  "
                f"{frame.image.shape[0]}×{frame.image.shape[1]}")
        if picture.levels is not None:
            lo, hi = picture.levels
            text += f"  ·  black {lo:.0f}, white {hi:.0f} ADU"
            if picture.factor > 1:
                text += f"  ·  shown {picture.factor}×{picture.factor}-binned"
        self.info.setText(text)


class SpectrumView(View):
    """Summed V, H and V+H spectra on an energy or wavelength axis, with the polarization
    regions (one :class:`pyqtgraph.LinearRegionItem` each, coloured as in the polarization
    view; drag an edge or the inside, or type the numbers in the regions table)."""

    title = "Spectrum"
    min_interval_s = 0.1
    #: A region was dragged: its index and new edges (eV).
    regionDragged = pyqtSignal(int, float, float)
    #: A spectrum of :attr:`PROPOSE_AFTER_FRAMES` frames came and there is no region: one
    #: around its peak (eV) is proposed.
    regionRequested = pyqtSignal(float, float)
    #: Frames summed before a region is proposed around the peak: the brightest line of one
    #: frame (an alignment frame) may be a charged state or a spectral jump, not the particle's
    #: main line.
    PROPOSE_AFTER_FRAMES: ClassVar[int] = 20

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.axis = QComboBox()
        self.axis.addItems(["energy (eV)", "wavelength (nm)"])
        self.axis.currentIndexChanged.connect(self._axis_changed)
        self.plot = _plot("photon energy (eV)", "counts (ADU)")
        self.v = self.plot.plot(pen=V_PEN, name="V")
        self.h = self.plot.plot(pen=H_PEN, name="H")
        self.sum = self.plot.plot(pen=SUM_PEN, name="V + H")
        self.y_range = HeldRange(self.plot)
        self.region_items: list[pg.LinearRegionItem] = []
        self.regions: list[Region] = []
        self._spectra: SpectraView | None = None
        bar = QHBoxLayout()
        bar.addWidget(QLabel("axis"))
        bar.addWidget(self.axis)
        bar.addWidget(QLabel(_legend([("V", V_PEN), ("H", H_PEN), ("V + H", SUM_PEN)])))
        bar.addStretch(1)
        self.info = LineLabel("")
        self.cursor_readout = CursorReadout(self.plot, spectral_text(lambda: self.energy_axis,
                                                             "ADU"))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.plot)
        layout.addWidget(self.info)
        layout.addWidget(self.cursor_readout)

    @property
    def energy_axis(self) -> bool:
        return self.axis.currentIndex() == 0

    @property
    def region_ev(self) -> tuple[float, float] | None:
        """The first region (eV), if any."""
        return (self.regions[0].lo_ev, self.regions[0].hi_ev) if self.regions else None

    def set_regions(self, regions: list[Region]) -> None:
        """Show these regions (eV)."""
        self.regions = list(regions)
        while len(self.region_items) < len(regions):
            k = len(self.region_items)
            colour = pg.mkColor(REGION_COLOURS[k % len(REGION_COLOURS)])
            fill = pg.mkColor(colour)
            fill.setAlpha(40)
            item = pg.LinearRegionItem(brush=pg.mkBrush(fill),
                                       pen=pg.mkPen(colour, width=2),
                                       hoverPen=pg.mkPen(colour, width=4))
            item.setZValue(-10)  # under the spectra: a narrow region's edges hid its peak
            item.sigRegionChangeFinished.connect(
                lambda it=item: self._region_moved(self.region_items.index(it)))
            self.plot.addItem(item, ignoreBounds=True)  # a drag must not move the axis
            self.region_items.append(item)
        while len(self.region_items) > len(regions):
            self.plot.removeItem(self.region_items.pop())
        self._place_regions()

    def _x(self, ev: float) -> float:
        return ev if self.energy_axis else HC_EV_NM / ev

    def _place_regions(self) -> None:
        for item, r in zip(self.region_items, self.regions, strict=True):
            item.blockSignals(True)
            item.setRegion(sorted((self._x(r.lo_ev), self._x(r.hi_ev))))
            item.blockSignals(False)

    def _region_moved(self, index: int) -> None:
        a, b = self.region_items[index].getRegion()
        if not self.energy_axis:
            a, b = HC_EV_NM / max(b, 1e-9), HC_EV_NM / max(a, 1e-9)
        self.regionDragged.emit(index, float(min(a, b)), float(max(a, b)))

    def _axis_changed(self) -> None:
        self.plot.setLabel("bottom", "photon energy (eV)" if self.energy_axis
                           else "wavelength (nm)")
        self.plot.setLimits(xMin=None, xMax=None)
        if self._spectra is not None:
            self._draw_spectra(self._spectra)
        self._place_regions()
        self.plot.enableAutoRange()

    def clear(self) -> None:
        for curve in (self.v, self.h, self.sum):
            curve.setData([], [])
        self._spectra = None
        self.info.setText("")

    def compute(self, source: LiveAccumulator) -> SpectraView | None:
        return source.spectra()

    def paint(self, spectra: SpectraView | None) -> None:
        if spectra is None or spectra.frames == 0:
            return
        self._spectra = spectra
        self._draw_spectra(spectra)
        if not self.regions and spectra.frames >= self.PROPOSE_AFTER_FRAMES:
            peak = spectra.peak_ev()
            self.regionRequested.emit(peak - 0.0015, peak + 0.0015)
        self.info.setText(f"{spectra.frames} frames  ·  peak {spectra.peak_ev():.4f} eV "
                          f"({HC_EV_NM / spectra.peak_ev():.2f} nm)")

    def _draw_spectra(self, s: SpectraView) -> None:
        x = s.energy_ev if self.energy_axis else s.wavelength_nm
        self.empty = False
        self.v.setData(x, s.v)
        self.h.setData(x, s.h)
        self.sum.setData(x, s.total)
        self.y_range.update(float(min(s.v.min(), s.h.min(), s.total.min())),
                            float(max(s.v.max(), s.h.max(), s.total.max())))
        # zooming and panning stay on the data
        self.plot.setLimits(xMin=float(np.min(x)), xMax=float(np.max(x)))


def _legend(entries: list[tuple[str, Any]]) -> str:
    """A legend as rich text, to sit beside a plot instead of over its data."""
    parts = []
    for name, pen in entries:
        colour = pen.color().name() if hasattr(pen, "color") else str(pen)
        parts.append(f'<span style="color:{colour}">━ {name}</span>')
    return "&nbsp;&nbsp;".join(parts)


@dataclass(frozen=True)
class _TracePicture:
    """The spectral time trace ready to draw: 8-bit (0: no frame there, drawn transparent), on
    uniform axes, in its rectangle."""

    image: npt.NDArray[np.uint8]
    rect: tuple[float, float, float, float]  #: x, y, width, height
    y_label: str
    levels: tuple[float, float]  #: ADU shown at the ends of the colour map


def _time_rows(image: npt.NDArray[np.float32], start_s: npt.NDArray[np.float64], max_rows: int
               ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_], float, float]:
    """The frames' rows (``image``, exposure starts ``start_s``) on a uniform time grid: cells
    of one frame cycle (the median spacing of the starts), or wider so that at most about
    ``max_rows`` remain, each the mean of the frames whose middle falls in it. Returns the
    cells, which of them hold a frame (a pause leaves cells empty), the grid's start and its
    cell (s)."""
    cycle = float(np.median(np.diff(start_s)))
    t0 = float(start_s[0])
    span = float(start_s[-1]) - t0 + cycle
    cell = max(cycle, span / max_rows)
    index = np.floor((start_s + cycle / 2 - t0) / cell).astype(np.int64)
    n_cells = int(index[-1]) + 1
    first = np.flatnonzero(np.diff(index, prepend=-1))  # frames sorted: cells never go back
    counts = np.diff(np.append(first, index.shape[0])).astype(np.float32)
    rows = np.zeros((n_cells, image.shape[1]), np.float32)
    rows[index[first]] = np.add.reduceat(image, first, axis=0) / counts[:, None]
    filled = np.zeros(n_cells, bool)
    filled[index[first]] = True
    return rows, filled, t0, cell


class SpectralTraceView(View):
    """V + H spectrum per frame: time (exposure starts) against energy or wavelength.

    Prepared on a helper thread. Rows sit at their frames' exposure starts on a uniform time
    axis, so a pause is a blank gap; beyond :attr:`max_rows` frame cycles, consecutive frames
    are averaged so that the image drawn stays that tall however long the run. Until the
    exposure edges of all frames are in, rows are frame numbers. Where the plot shows n or more
    columns per screen pixel, blocks of n columns are averaged (as the camera's frame): Qt
    scales an image down by dropping columns, and a narrow line fell between the ones kept."""

    title = "Spectral time trace"
    min_interval_s = 0.25
    #: Most rows drawn (about the screen's height).
    max_rows: ClassVar[int] = 1000

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = _plot("photon energy (eV)", "time (s)", grid=False)
        self.image = pg.ImageItem()
        self.plot.addItem(self.image)
        cmap = pg.colormap.get("viridis")
        self.colour_bar = _colour_bar(self.plot, self.image, cmap)
        # value 0 is no frame (transparent); 1-255 the colour map
        lut = np.zeros((256, 4), np.uint8)
        lut[1:] = cmap.getLookupTable(0.0, 1.0, 255, alpha=True)
        self.image.setLookupTable(lut)
        self.y_range = HeldRange(self.plot)  # time grows with the run
        self.energy_axis = True
        self._x_view = (0.0, 0.0, 0.0)  #: x range shown and x per screen pixel
        self.cursor_readout = CursorReadout(self.plot, self._describe)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addWidget(self.cursor_readout)
        self._y_label = "time (s)"

    def _describe(self, x: float, y: float) -> str:
        text = spectral_text(lambda: self.energy_axis, "")(x, y)
        return text.rsplit("  ·  ", 1)[0] + f"  ·  {self._y_label} {y:.4g}" if text else ""

    def clear(self) -> None:
        self.image.clear()

    def set_energy_axis(self, energy: bool) -> None:
        self.energy_axis = energy
        self.plot.setLabel("bottom", "photon energy (eV)" if energy else "wavelength (nm)")
        self._drawn_version = -1

    def prepare(self) -> None:
        """The plot's x range and x units per screen pixel (columns are averaged down to about
        that)."""
        box = self.plot.getViewBox()
        (lo, hi), _ = box.viewRange()
        self._x_view = (float(lo), float(hi), float(box.viewPixelSize()[0]))

    def compute(self, source: LiveAccumulator) -> _TracePicture | None:
        s = source.spectral_trace()
        if s is None or s.image.shape[0] == 0:
            return None
        x = s.energy_ev if self.energy_axis else s.wavelength_nm
        frames = s.image.shape[0]
        t = s.frame_start_s
        if t.shape[0] == frames and frames >= 2 and bool(np.all(np.diff(t) > 0)):
            rows, filled, y0, cell = _time_rows(s.image, t, self.max_rows)
            height, label = rows.shape[0] * cell, "time (s)"
        else:  # the exposure edges are not all in yet: frame numbers
            rows = _row_mean(s.image, self.max_rows)
            filled = np.ones(rows.shape[0], bool)
            y0, height, label = 0.0, float(frames), "frame"
        image, x0, x1 = _uniform_columns(rows, x)
        step = (x1 - x0) / image.shape[1]
        lo, hi, per_pixel = self._x_view
        # a range off the data is the empty plot's, or the other axis' units: no averaging
        factor = int(per_pixel / step) if lo < x1 and hi > x0 else 1
        if factor > 1:
            kept = image.shape[1] // factor
            image = image[:, :kept * factor].reshape(image.shape[0], kept, factor).mean(axis=2)
            x1 = x0 + kept * factor * step
        levels = _robust_levels(image[filled])
        scaled = _to_8bit(image, levels).astype(np.uint16) * 254 // 255 + 1
        scaled[~filled] = 0
        return _TracePicture(scaled.astype(np.uint8), (x0, y0, x1 - x0, height), label, levels)

    def paint(self, picture: _TracePicture | None) -> None:
        if picture is None:
            return
        self.empty = False
        self.image.setImage(picture.image, autoLevels=False, levels=(0, 255))
        self.colour_bar.setLevels(picture.levels)
        self._y_label = picture.y_label
        self.plot.setLabel("left", picture.y_label)
        self.image.setRect(QRectF(*picture.rect))
        _, y0, _, height = picture.rect
        self.y_range.update(y0, y0 + height)


class IntensityView(View):
    """APD count rate against time."""

    title = "APD intensity"
    min_interval_s = 0.1

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = _plot("time (s)", "count rate (counts/s)")
        self.curve = self.plot.plot(pen=SUM_PEN)
        self.curve.setDownsampling(auto=True, method="peak")
        self.curve.setClipToView(True)
        self.info = LineLabel("")
        self.cursor_readout = CursorReadout(self.plot, xy_text("t (s)", "counts/s"))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addWidget(self.info)
        layout.addWidget(self.cursor_readout)

    def clear(self) -> None:
        self.curve.setData([], [])
        self.info.setText("")

    def compute(self, source: LiveAccumulator) -> tuple[IntensityTrace, int] | None:
        trace = source.intensity_trace()
        return None if trace is None else (trace, source.photons)

    def paint(self, data: tuple[IntensityTrace, int] | None) -> None:
        if data is None:
            return
        trace, photons = data
        self.empty = False
        self.curve.setData(trace.start_s, trace.rate_cps)
        recent = trace.rate_cps[-max(1, int(1.0 / trace.bin_s)):]
        self.info.setText(f"{photons} photons  ·  last second "
                          f"{float(np.mean(recent)) / 1e3:.1f} kcps  ·  bin "
                          f"{trace.bin_s * 1e3:g} ms")


class DecayView(View):
    """Histogram of photon delays after their laser pulse, log scale; the fit in a replay."""

    title = "Decay"
    min_interval_s = 0.25
    #: Display bin (ps); the accumulator's finer bins are summed into these.
    display_bin_ps: ClassVar[float] = 256.0

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = _plot("delay after the laser pulse (ns)", "photons per bin")
        self.plot.setLogMode(x=False, y=True)
        self.curve = self.plot.plot(pen=SUM_PEN, connect="finite")
        self.fit_curve = self.plot.plot(pen=FIT_PEN, connect="finite")
        self.info = LineLabel("")
        self.cursor_readout = CursorReadout(self.plot, lambda x, y: f"delay {x:.3f} ns  ·  "
                                    f"{10 ** y:.4g} photons per bin")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addWidget(self.info)
        layout.addWidget(self.cursor_readout)
        self.fit: DecayFit | None = None

    def clear(self) -> None:
        self.curve.setData([], [])
        self.fit_curve.setData([], [])
        self.info.setText("")

    def set_fit(self, fit: DecayFit | None) -> None:
        self.fit = fit
        self._drawn_version = -1

    def compute(self, source: LiveAccumulator) -> DecayHistogram | None:
        return source.decay()

    def paint(self, hist: DecayHistogram | None) -> None:
        if hist is None:
            return
        fine_ps = hist.period_ns * 1000.0 / hist.counts.shape[0]
        group = max(1, round(self.display_bin_ps / fine_ps))
        starts = np.arange(0, hist.counts.shape[0], group)  # the last bin may be narrower
        counts = np.add.reduceat(hist.counts, starts).astype(np.float64)
        edges = np.append(hist.edges_ns[starts], hist.edges_ns[-1])
        centers = 0.5 * (edges[1:] + edges[:-1])
        shown = np.where(counts > 0, counts, np.nan)
        self.empty = False
        self.curve.setData(centers, shown)
        text = f"{int(hist.counts.sum())} photons with a delay"
        if self.fit is not None:
            f = self.fit
            amps = np.asarray(f.weights) * f.photons
            model = model_counts(edges, amps, np.asarray(f.taus_ns),
                                 f.background_per_bin / (fine_ps / 1000.0), f.t0_ns, f.sigma_ns)
            self.fit_curve.setData(centers, np.where(model > 0, model, np.nan))
            taus = ", ".join(f"{t:.3g} ± {e:.2g} ns ({w:.0%})" for t, e, w in
                             zip(f.taus_ns, f.taus_err_ns, f.weights, strict=True))
            text += f"  ·  fit τ = {taus}"
        else:
            self.fit_curve.setData([], [])
        self.info.setText(text)


@dataclass(frozen=True)
class _PolarizationPicture:
    regions: tuple[Region, ...]
    results: tuple[PolarizationView, ...]


class PolarizationPlot(View):
    """V / (V + H) per waveplate angle θ in each spectral region, with the fitted p and φ.

    A ratio, not raw sums: an angle whose frames are still being taken is not a false dip.
    During a run the angle being acquired is drawn as an open symbol, apart from the finished
    angles; which one it is comes with the data, from the same copy of the run
    (:meth:`cryoscope.live.LiveAccumulator.polarization`). A fit whose p and φ are not
    determined (on the boundary p = 1, degenerate data) is not drawn: the legend says why. The
    legend sits above the plot, clear of the data; the y-axis is fixed to 0–1 and the x-axis
    cannot be zoomed or panned off the data.
    """

    title = "Polarization"
    min_interval_s = 0.5
    NO_REGION = "choose a spectral region on the spectrum"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = _plot("waveplate angle θ (°)", "V / (V + H) in the region")
        self.plot.setYRange(0.0, 1.0, padding=0.02)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.setLimits(yMin=-0.05, yMax=1.05)
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        self.info = LineLabel(self.NO_REGION)
        self.cursor_readout = CursorReadout(self.plot, xy_text("θ (°)", "V/(V+H)"))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.legend)
        layout.addWidget(self.plot)
        layout.addWidget(self.info)
        layout.addWidget(self.cursor_readout)
        self.regions: tuple[Region, ...] = ()
        self.results: tuple[PolarizationView, ...] = ()
        #: per region: the finished points, the point in progress, the fit curve
        self.curves: list[tuple[pg.PlotDataItem, pg.PlotDataItem, pg.PlotDataItem]] = []

    @property
    def result(self) -> PolarizationView | None:
        """The first region's result."""
        return self.results[0] if self.results else None

    def set_regions(self, regions: list[Region]) -> None:
        self.regions = tuple(regions)
        self._drawn_version = -1
        self._last_draw = 0.0
        if not self.results:
            self.info.setText(self._waiting_text())

    def _waiting_text(self) -> str:
        """What the view says before it has drawn anything."""
        if not self.regions:
            return self.NO_REGION
        return f"{len(self.regions)} region{'s' if len(self.regions) > 1 else ''}: no frames yet"

    def clear(self) -> None:
        self.results = ()
        for items in self.curves:
            for item in items:
                item.setData([], [])
        self.legend.setText("")
        self.info.setText(self._waiting_text())

    def prepare(self) -> None:
        self._request = self.regions

    def compute(self, source: LiveAccumulator) -> _PolarizationPicture:
        regions = self._request
        return _PolarizationPicture(regions, tuple(source.polarization(r.lo_ev, r.hi_ev)
                                                   for r in regions))

    def _ensure_curves(self, n: int) -> None:
        while len(self.curves) < n:
            colour = REGION_COLOURS[len(self.curves) % len(REGION_COLOURS)]
            done = self.plot.plot(pen=None, symbol="o", symbolBrush=colour, symbolPen=colour)
            going = self.plot.plot(pen=None, symbol="o", symbolBrush=None, symbolSize=12,
                                   symbolPen=pg.mkPen(colour, width=2,
                                                      style=Qt.PenStyle.DashLine))
            fit = self.plot.plot(pen=pg.mkPen(colour, width=2))
            self.curves.append((done, going, fit))
        for k, items in enumerate(self.curves):
            for item in items:
                item.setVisible(k < n)

    def paint(self, picture: _PolarizationPicture) -> None:
        self.results = picture.results
        self._ensure_curves(len(picture.results))
        legend, infos = [], []
        theta_all: list[float] = []
        any_going = False
        for k, (region, pol) in enumerate(zip(picture.regions, picture.results, strict=True)):
            done, going, fit_item = self.curves[k]
            colour = REGION_COLOURS[k % len(REGION_COLOURS)]
            ratio = pol.ratio
            shown = np.isfinite(ratio)  # an angle without signal has no ratio to show
            done.setData(pol.theta_deg[shown & ~pol.in_progress], ratio[shown & ~pol.in_progress])
            going.setData(pol.theta_deg[shown & pol.in_progress], ratio[shown & pol.in_progress])
            any_going |= bool(np.any(shown & pol.in_progress))
            self.empty = self.empty and not shown.any()
            theta_all.extend(pol.theta_deg.tolist())
            text = f'<span style="color:{colour}">● {region.name}</span> ' \
                f"{region.lo_ev:.4f}–{region.hi_ev:.4f} eV"
            f = pol.fit
            if f is None or not f.determined:
                fit_item.setData([], [])
                text += f": {pol.message}" if f is None \
                    else f": p and φ not determined ({f.problem})"
            else:
                theta = np.linspace(float(pol.theta_deg.min()), float(pol.theta_deg.max()), 200)
                fit_item.setData(theta, polarization_model(theta, f.p, f.phi_deg,
                                                           f.gain_ratio))
                text += f": p = {f.p:.3f} ± {f.p_err:.3f}, φ = {f.phi_deg:.1f} ± " \
                    f"{f.phi_err_deg:.1f}°"
                infos.append(f"{region.name}: φ = {f.phi_deg:.1f} ± {f.phi_err_deg:.1f}°, "
                             f"g_V/g_H = {f.gain_ratio:.3f}, {pol.theta_deg.shape[0]} angles, "
                             f"{pol.frames_used} frames")
            legend.append(text)
        if any_going:
            legend.append("○ the angle in progress")
        self.legend.setText("<br>".join(legend))
        # one line (the legend has every region's p and φ): the first fitted region
        self.info.setText(infos[0] if infos else "" if picture.regions else self.NO_REGION)
        if theta_all:
            lo, hi = min(theta_all), max(theta_all)
            pad = max(2.0, 0.05 * (hi - lo))
            self.plot.setLimits(xMin=lo - pad, xMax=hi + pad)


class FlidView(View):
    """Fluorescence-lifetime–intensity distribution (counts per bin vs. the background-corrected
    mean delay in the gate), computed as the file analysis does (:meth:`LiveAccumulator.flid`);
    the colour bar is ln(1 + occurrences)."""

    title = "FLID"
    min_interval_s = 0.5

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = _plot("mean delay in the gate (ns)", "photons per bin", grid=False)
        self.image = pg.ImageItem()
        self.plot.addItem(self.image)
        self.colour_bar = _colour_bar(self.plot, self.image, pg.colormap.get("inferno"))
        self.info = LineLabel("")
        self.cursor_readout = CursorReadout(self.plot, xy_text("mean delay (ns)",
                                                               "photons per bin"))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addWidget(self.info)
        layout.addWidget(self.cursor_readout)
        self.result: LiveFlid | None = None

    def clear(self) -> None:
        self.image.clear()
        self.result = None
        self.info.setText("")

    def compute(self, source: LiveAccumulator) -> LiveFlid | None:
        return source.flid()

    def paint(self, live: LiveFlid | None) -> None:
        if live is None or live.flid.histogram.sum() == 0:
            return
        self.empty = False
        self.result = live
        flid = live.flid
        image = np.log1p(flid.histogram)
        top = float(image.max()) or 1.0
        self.image.setImage(image, levels=(0.0, top))
        self.colour_bar.setLevels((0.0, top))
        d, c = flid.delay_edges_ns, flid.count_edges
        self.image.setRect(QRectF(float(d[0]), float(c[0]), float(d[-1] - d[0]),
                                  float(c[-1] - c[0])))
        background = (f"background {live.background_cps:.0f} counts/s subtracted"
                      if live.background_cps > 0 else "no background estimate yet")
        self.info.setText(f"{int(flid.histogram.sum())} bins of {flid.bin_s * 1e3:g} ms  ·  "
                          f"gate {live.gate_start_ns:.1f} ns + {live.gate_ns:.0f} ns  ·  "
                          f"{background}")
