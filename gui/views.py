"""Live views: each draws what a :class:`cryoscope.live.LiveAccumulator` holds.

Views hold no measurement logic: they ask the accumulator (live run or replayed file) for a
consistent copy and draw it. :meth:`View.refresh` is called by the window's display timer; a view
redraws only when the accumulator changed, and at most every :attr:`View.min_interval_s` (zero:
on every timer tick, for the camera).

What is drawn on the GUI thread is kept small: the views whose data is large (the camera's full
frame, the spectral time trace, the FLID, the polarization fit) prepare it on helper threads —
downsampled to the screen, resampled, scaled to 8 bits with their display levels — and the GUI
thread only hands the ready array to pyqtgraph. Images have no grid, and the curves' grid is
drawn so that a redraw does not repaint the axes (see :func:`_plot`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt, pyqtSignal, pyqtSlot
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from cryoscope.analysis.lifetime import DecayFit, model_counts
from cryoscope.analysis.polarization import (
    polarization_model,
)
from cryoscope.analysis.spectra import HC_EV_NM
from cryoscope.live import FrameView, LiveAccumulator, LiveFlid, PolarizationView, SpectraView
from drivers.interfaces import ReadMode

log = logging.getLogger(__name__)

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="w",
                    foreground="k")

V_PEN = pg.mkPen("#1f77b4", width=1.5)
H_PEN = pg.mkPen("#d62728", width=1.5)
SUM_PEN = pg.mkPen("#333333", width=1.5)
FIT_PEN = pg.mkPen("#2ca02c", width=2)


class View(QWidget):
    """A live view. Subclasses implement :meth:`draw`, or, when computing what to show takes
    long (fits, 2-D histograms, full frames), :meth:`compute` (any thread) and :meth:`paint`
    (GUI thread) with ``background = True``: the computation then runs on a helper thread and the
    event loop stays free. A background view waits at least :attr:`max_duty` ⁻¹ times its last
    computation between two, so a computation that grows with the run never takes more than that
    share of a core."""

    title: ClassVar[str] = ""
    #: Shortest time between two redraws (s).
    min_interval_s: ClassVar[float] = 0.0
    #: Compute off the GUI thread (see the class docstring).
    background: ClassVar[bool] = False
    #: Largest share of the time a background view's computations may take.
    max_duty: ClassVar[float] = 0.25
    #: The helper thread a background view computes on (views naming the same one share it).
    helper: ClassVar[str] = "views"
    _computed = pyqtSignal(int, object)  # sequence number, Future

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._drawn_version = -1
        self._drawn_source: LiveAccumulator | None = None
        self._last_draw = 0.0
        self._compute_s = 0.0
        self._sequence = 0
        self._pending = False
        self.redraws = 0
        self._computed.connect(self._on_computed, Qt.ConnectionType.QueuedConnection)

    def changed(self, source: LiveAccumulator) -> bool:
        """Whether ``source`` has something new for this view since the last draw."""
        return source is not self._drawn_source or source.version != self._drawn_version

    def due(self, source: LiveAccumulator | None) -> bool:
        """Whether ``source`` changed since the last draw and the interval has passed."""
        if source is None or self._pending or not self.changed(source):
            return False
        interval = max(self.min_interval_s, self._compute_s / self.max_duty)
        return time.monotonic() - self._last_draw >= interval

    @property
    def last_draw(self) -> float:
        return self._last_draw

    def refresh(self, source: LiveAccumulator | None, force: bool = False) -> bool:
        """Redraw if due (or ``force``: now, whatever the interval); returns whether it (started
        to) draw. A background view's drawing always comes later, from its helper thread."""
        if source is None or not (force or self.due(source)):
            return False
        self._drawn_source, self._drawn_version = source, source.version
        self._last_draw = time.monotonic()
        self._sequence += 1
        self.redraws += 1
        self.prepare()
        if self.background:
            self._pending = True
            sequence = self._sequence
            future = _helper(self.helper).submit(self._timed_compute, source)
            future.add_done_callback(lambda f: self._deliver(sequence, f))
        else:
            self.draw(source)
        return True

    def prepare(self) -> None:
        """GUI thread, before a computation: read what it needs from the widgets."""

    def _timed_compute(self, source: LiveAccumulator) -> Any:
        start = time.perf_counter()
        try:
            return self.compute(source)
        finally:
            self._compute_s = time.perf_counter() - start

    def _deliver(self, sequence: int, future: Future[Any]) -> None:
        """Helper thread: hand the result to the GUI thread."""
        with contextlib.suppress(RuntimeError):  # the widget is gone (window closed)
            self._computed.emit(sequence, future)

    @pyqtSlot(int, object)
    def _on_computed(self, sequence: int, future: Future[Any]) -> None:
        self._pending = False
        if sequence != self._sequence:
            return  # a newer draw superseded it
        try:
            self.paint(future.result())
        except Exception:
            log.exception("the %s view failed to draw", self.title)

    def draw(self, source: LiveAccumulator) -> None:
        self.paint(self.compute(source))

    def compute(self, source: LiveAccumulator) -> Any:
        raise NotImplementedError

    def paint(self, data: Any) -> None:
        raise NotImplementedError


_HELPERS: dict[str, ThreadPoolExecutor] = {}


def _helper(name: str) -> ThreadPoolExecutor:
    """The helper thread ``name`` that computes background views' data."""
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
    if grid:
        lines = pg.GridItem(pen=GRID_PEN, textPen=None)
        lines.setZValue(-100)
        plot.addItem(lines, ignoreBounds=True)
    return plot


def _robust_levels(image: npt.NDArray[np.generic]) -> tuple[float, float]:
    """Display levels from a subsample: 1st to 99.9th percentile."""
    step = max(1, max(image.shape) // 256)
    sample = np.asarray(image[::step, ::step], np.float64)
    lo, hi = np.percentile(sample, (1.0, 99.9))
    return float(lo), float(max(hi, lo + 1.0))


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
    return np.add.reduceat(image, starts, axis=0) / sizes[:, None]


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
    background = True
    helper = "camera"  # its own: a frame never waits for a fit or a FLID

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # no grid in either readout: the camera redraws on every frame
        self.plot = _plot("column", "row", grid=False)
        self.image = pg.ImageItem(autoDownsample=False)
        self.plot.addItem(self.image)
        self.plot.invertY(True)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.info = QLabel("no frame yet")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addWidget(self.info)
        self.mode: ReadMode | None = None
        self.levels: tuple[float, float] | None = None
        self._frame: FrameView | None = None
        self._factor = 1

    def changed(self, source: LiveAccumulator) -> bool:
        return source is not self._drawn_source or source.latest_frame() is not self._frame

    def prepare(self) -> None:
        """The downsampling factor: sensor pixels per screen pixel, as the view is zoomed."""
        size = self.plot.getViewBox().viewPixelSize()
        self._factor = max(1, int(min(size))) if self.mode is ReadMode.IMAGE else 1

    def compute(self, source: LiveAccumulator) -> _CameraPicture | None:
        frame = source.latest_frame()
        if frame is None:
            return None
        if frame.mode is not ReadMode.IMAGE:
            return _CameraPicture(frame, frame.image.astype(np.float64))
        factor = self._factor
        small = _block_mean(frame.image, factor)
        levels = _robust_levels(small)
        return _CameraPicture(frame, _to_8bit(small, levels), factor, levels)

    def paint(self, picture: _CameraPicture | None) -> None:
        if picture is None:
            return
        frame = picture.frame
        self._frame = frame
        if frame.mode is not self.mode:
            self.mode = frame.mode
            image_mode = frame.mode is ReadMode.IMAGE
            self.image.setVisible(image_mode)
            for curve in self.curves.values():
                self.plot.removeItem(curve)
            self.curves.clear()
            self.plot.invertY(image_mode)
            self.plot.setLabel("left", "row" if image_mode else "counts (ADU)")
        if frame.mode is ReadMode.IMAGE:
            self.image.setImage(picture.image, autoLevels=False, levels=(0, 255))
            f = picture.factor
            self.image.setRect(QRectF(0, 0, picture.image.shape[1] * f,
                                      picture.image.shape[0] * f))
        else:
            pens = {"V": V_PEN, "H": H_PEN}
            for k, name in enumerate(frame.track_names):
                if name not in self.curves:
                    self.curves[name] = self.plot.plot(pen=pens.get(name, SUM_PEN), name=name)
                self.curves[name].setData(picture.image[k])
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
    region (a :class:`pyqtgraph.LinearRegionItem`)."""

    title = "Spectrum"
    min_interval_s = 0.1
    regionChanged = pyqtSignal(float, float)  # lo_ev, hi_ev

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.axis = QComboBox()
        self.axis.addItems(["energy (eV)", "wavelength (nm)"])
        self.axis.currentIndexChanged.connect(self._axis_changed)
        self.plot = _plot("photon energy (eV)", "counts (ADU)")
        self.plot.addLegend(offset=(10, 10))
        self.v = self.plot.plot(pen=V_PEN, name="V")
        self.h = self.plot.plot(pen=H_PEN, name="H")
        self.sum = self.plot.plot(pen=SUM_PEN, name="V + H")
        self.region = pg.LinearRegionItem(brush=pg.mkBrush(44, 160, 44, 40))
        self.region.setZValue(10)
        self.region.setVisible(False)
        self.region.sigRegionChangeFinished.connect(self._region_moved)
        self.plot.addItem(self.region)
        self._region_ev: tuple[float, float] | None = None
        self._spectra: SpectraView | None = None
        bar = QHBoxLayout()
        bar.addWidget(QLabel("axis"))
        bar.addWidget(self.axis)
        bar.addStretch(1)
        self.info = QLabel("")
        bar.addWidget(self.info)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.plot)

    @property
    def energy_axis(self) -> bool:
        return self.axis.currentIndex() == 0

    @property
    def region_ev(self) -> tuple[float, float] | None:
        return self._region_ev

    def set_region_ev(self, lo_ev: float, hi_ev: float) -> None:
        """Place the polarization region (eV) and announce it."""
        self._region_ev = (min(lo_ev, hi_ev), max(lo_ev, hi_ev))
        self._place_region()
        self.regionChanged.emit(*self._region_ev)

    def _place_region(self) -> None:
        if self._region_ev is None:
            return
        lo, hi = self._region_ev
        xs = (lo, hi) if self.energy_axis else (HC_EV_NM / hi, HC_EV_NM / lo)
        self.region.blockSignals(True)
        self.region.setRegion(xs)
        self.region.blockSignals(False)
        self.region.setVisible(True)

    def _region_moved(self) -> None:
        a, b = self.region.getRegion()
        if self.energy_axis:
            lo, hi = a, b
        else:
            lo, hi = HC_EV_NM / max(b, 1e-9), HC_EV_NM / max(a, 1e-9)
        self._region_ev = (float(min(lo, hi)), float(max(lo, hi)))
        self.regionChanged.emit(*self._region_ev)

    def _axis_changed(self) -> None:
        if self.energy_axis:
            self.plot.setLabel("bottom", "photon energy (eV)")
        else:
            self.plot.setLabel("bottom", "wavelength (nm)")
        if self._spectra is not None:
            self._draw_spectra(self._spectra)
        self._place_region()
        self.plot.enableAutoRange()

    def draw(self, source: LiveAccumulator) -> None:
        spectra = source.spectra()
        if spectra is None or spectra.frames == 0:
            return
        self._spectra = spectra
        self._draw_spectra(spectra)
        if self._region_ev is None:
            peak = spectra.peak_ev()
            self.set_region_ev(peak - 0.0015, peak + 0.0015)
        self.info.setText(f"{spectra.frames} frames  ·  peak {spectra.peak_ev():.4f} eV "
                          f"({HC_EV_NM / spectra.peak_ev():.2f} nm)")

    def _draw_spectra(self, s: SpectraView) -> None:
        x = s.energy_ev if self.energy_axis else s.wavelength_nm
        self.v.setData(x, s.v)
        self.h.setData(x, s.h)
        self.sum.setData(x, s.total)


@dataclass(frozen=True)
class _TracePicture:
    """The spectral time trace ready to draw: 8-bit, on a uniform axis, in its rectangle."""

    image: npt.NDArray[np.uint8]
    rect: tuple[float, float, float, float]  #: x, y, width, height
    y_label: str


class SpectralTraceView(View):
    """V + H spectrum per frame: time (exposure starts) against energy or wavelength.

    Prepared on a helper thread; beyond :attr:`max_rows` frames, consecutive frames are
    averaged so that the image drawn stays that tall however long the run."""

    title = "Spectral time trace"
    min_interval_s = 0.25
    background = True
    #: Most rows drawn (about the screen's height).
    max_rows: ClassVar[int] = 1000

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = _plot("photon energy (eV)", "time (s)", grid=False)
        self.image = pg.ImageItem()
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.plot.addItem(self.image)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.energy_axis = True

    def set_energy_axis(self, energy: bool) -> None:
        self.energy_axis = energy
        self.plot.setLabel("bottom", "photon energy (eV)" if energy else "wavelength (nm)")
        self._drawn_version = -1

    def compute(self, source: LiveAccumulator) -> _TracePicture | None:
        s = source.spectral_trace()
        if s is None or s.image.shape[0] == 0:
            return None
        x = s.energy_ev if self.energy_axis else s.wavelength_nm
        frames = s.image.shape[0]
        image, x0, x1 = _uniform_columns(_row_mean(s.image, self.max_rows), x)
        t = s.frame_start_s
        if t.shape[0] == frames and frames >= 2:
            cycle = float(np.median(np.diff(t)))
            y0, height, label = float(t[0]), float(t[-1] - t[0]) + cycle, "time (s)"
        else:  # the exposure edges are not all in yet: frame numbers
            y0, height, label = 0.0, float(frames), "frame"
        return _TracePicture(_to_8bit(image, _robust_levels(image)), (x0, y0, x1 - x0, height),
                             label)

    def paint(self, picture: _TracePicture | None) -> None:
        if picture is None:
            return
        self.image.setImage(picture.image, autoLevels=False, levels=(0, 255))
        self.plot.setLabel("left", picture.y_label)
        self.image.setRect(QRectF(*picture.rect))


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
        self.info = QLabel("")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addWidget(self.info)

    def draw(self, source: LiveAccumulator) -> None:
        trace = source.intensity_trace()
        if trace is None:
            return
        self.curve.setData(trace.start_s, trace.rate_cps)
        recent = trace.rate_cps[-max(1, int(1.0 / trace.bin_s)):]
        self.info.setText(f"{source.photons} photons  ·  last second "
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
        self.info = QLabel("")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addWidget(self.info)
        self.fit: DecayFit | None = None

    def set_fit(self, fit: DecayFit | None) -> None:
        self.fit = fit
        self._drawn_version = -1

    def draw(self, source: LiveAccumulator) -> None:
        hist = source.decay()
        if hist is None:
            return
        fine_ps = hist.period_ns * 1000.0 / hist.counts.shape[0]
        group = max(1, round(self.display_bin_ps / fine_ps))
        n = hist.counts.shape[0] // group * group
        counts = hist.counts[:n].reshape(-1, group).sum(axis=1).astype(np.float64)
        edges = hist.edges_ns[: n + 1: group]
        centers = 0.5 * (edges[1:] + edges[:-1])
        shown = np.where(counts > 0, counts, np.nan)
        self.curve.setData(centers, shown)
        text = f"{int(hist.counts.sum())} photons with a delay"
        if self.fit is not None:
            f = self.fit
            amps = np.asarray(f.weights) * f.photons
            model = model_counts(edges, amps, np.asarray(f.taus_ns),
                                 f.background_per_bin / (fine_ps / 1000.0), f.t0_ns, f.sigma_ns)
            self.fit_curve.setData(centers, np.where(model > 0, model, np.nan))
            taus = ", ".join(f"{t:.2f} ± {e:.2f} ns ({w:.0%})" for t, e, w in
                             zip(f.taus_ns, f.taus_err_ns, f.weights, strict=True))
            text += f"  ·  fit τ = {taus}"
        else:
            self.fit_curve.setData([], [])
        self.info.setText(text)


class PolarizationPlot(View):
    """V and H in the spectrum's region against waveplate angle θ, with the fitted p and φ."""

    title = "Polarization"
    min_interval_s = 0.5
    background = True

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = _plot("waveplate angle θ (°)", "counts in the region (ADU)")
        self.plot.addLegend(offset=(10, 10))
        self.v = self.plot.plot(pen=None, symbol="o", symbolBrush="#1f77b4", name="V")
        self.h = self.plot.plot(pen=None, symbol="s", symbolBrush="#d62728", name="H")
        self.v_fit = self.plot.plot(pen=V_PEN)
        self.h_fit = self.plot.plot(pen=H_PEN)
        self.info = QLabel("choose a spectral region on the spectrum")
        self.info.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addWidget(self.info)
        self.region_ev: tuple[float, float] | None = None
        self.result: PolarizationView | None = None

    def set_region(self, lo_ev: float, hi_ev: float) -> None:
        self.region_ev = (lo_ev, hi_ev)
        self._drawn_version = -1
        self._last_draw = 0.0

    def compute(self, source: LiveAccumulator) -> PolarizationView | None:
        region = self.region_ev
        if region is None:
            return None
        return source.polarization(*region)

    def paint(self, pol: PolarizationView | None) -> None:
        if pol is None:
            return
        self.result = pol
        self.v.setData(pol.theta_deg, pol.v)
        self.h.setData(pol.theta_deg, pol.h)
        region = f"region {pol.region_ev[0]:.4f}–{pol.region_ev[1]:.4f} eV"
        if pol.fit is None:
            self.v_fit.setData([], [])
            self.h_fit.setData([], [])
            self.info.setText(f"{region}  ·  {pol.message}")
            return
        fit = pol.fit
        theta = np.linspace(float(pol.theta_deg.min()), float(pol.theta_deg.max()), 200)
        frac_v = polarization_model(theta, fit.p, fit.phi_deg, fit.gain_ratio)
        total = float(np.mean(pol.v + pol.h))
        self.v_fit.setData(theta, total * frac_v)
        self.h_fit.setData(theta, total * (1 - frac_v))
        self.info.setText(
            f"{region}  ·  p = {fit.p:.3f} ± {fit.p_err:.3f}  ·  φ = {fit.phi_deg:.1f} ± "
            f"{fit.phi_err_deg:.1f}°  ·  g_V/g_H = {fit.gain_ratio:.3f}  ·  "
            f"{pol.theta_deg.shape[0]} angles, {pol.frames_used} frames")


class FlidView(View):
    """Fluorescence-lifetime–intensity distribution (counts per bin vs. the background-corrected
    mean delay in the gate), computed as the file analysis does (:meth:`LiveAccumulator.flid`)."""

    title = "FLID"
    min_interval_s = 0.5
    background = True
    #: Longest delay gate (ns) after the IRF; shorter if the laser period is.
    gate_ns: ClassVar[float | None] = 300.0

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = _plot("mean delay in the gate (ns)", "photons per bin", grid=False)
        self.image = pg.ImageItem()
        self.image.setColorMap(pg.colormap.get("inferno"))
        self.plot.addItem(self.image)
        self.info = QLabel("")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addWidget(self.info)
        self.result: LiveFlid | None = None

    def compute(self, source: LiveAccumulator) -> LiveFlid | None:
        return source.flid(gate_ns=self.gate_ns)

    def paint(self, live: LiveFlid | None) -> None:
        if live is None or live.flid.histogram.sum() == 0:
            return
        self.result = live
        flid = live.flid
        image = np.log1p(flid.histogram)
        self.image.setImage(image, levels=(0.0, float(image.max()) or 1.0))
        d, c = flid.delay_edges_ns, flid.count_edges
        self.image.setRect(QRectF(float(d[0]), float(c[0]), float(d[-1] - d[0]),
                                  float(c[-1] - c[0])))
        background = (f"background {live.background_cps:.0f} counts/s subtracted"
                      if live.background_cps > 0 else "no background estimate yet")
        self.info.setText(f"{int(flid.histogram.sum())} bins of {flid.bin_s * 1e3:g} ms  ·  "
                          f"gate {live.gate_start_ns:.1f} ns + {live.gate_ns:.0f} ns  ·  "
                          f"{background}")
