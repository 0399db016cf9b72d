"""Live views: each draws what a :class:`cryoscope.live.LiveAccumulator` holds.

Views compute nothing themselves: they ask the accumulator (live run or replayed file) for a
consistent copy and draw it. :meth:`View.refresh` is called by the window's display timer; a view
redraws only when the accumulator changed, and at most every :attr:`View.min_interval_s` (zero:
on every timer tick, for the camera).
"""

from __future__ import annotations

import contextlib
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt, pyqtSignal, pyqtSlot
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from cryoscope.analysis.flid import Flid
from cryoscope.analysis.lifetime import DecayFit, model_counts
from cryoscope.analysis.polarization import polarization_model
from cryoscope.analysis.spectra import HC_EV_NM
from cryoscope.live import FrameView, LiveAccumulator, PolarizationView, SpectraView
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
    long (fits, 2-D histograms), :meth:`compute` (any thread) and :meth:`paint` (GUI thread) with
    ``background = True``: the computation then runs on a helper thread and the event loop stays
    free."""

    title: ClassVar[str] = ""
    #: Shortest time between two redraws (s).
    min_interval_s: ClassVar[float] = 0.0
    #: Compute off the GUI thread (see the class docstring).
    background: ClassVar[bool] = False
    _computed = pyqtSignal(int, object)  # sequence number, Future

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._drawn_version = -1
        self._drawn_source: LiveAccumulator | None = None
        self._last_draw = 0.0
        self._sequence = 0
        self._pending = False
        self.redraws = 0
        self._computed.connect(self._on_computed, Qt.ConnectionType.QueuedConnection)

    def due(self, source: LiveAccumulator | None) -> bool:
        """Whether ``source`` changed since the last draw and the interval has passed."""
        if source is None or self._pending:
            return False
        changed = source is not self._drawn_source or source.version != self._drawn_version
        return changed and time.monotonic() - self._last_draw >= self.min_interval_s

    @property
    def last_draw(self) -> float:
        return self._last_draw

    def refresh(self, source: LiveAccumulator | None, force: bool = False) -> bool:
        """Redraw if due (or ``force``, synchronously); returns whether it (started to) draw."""
        if source is None or not (force or self.due(source)):
            return False
        self._drawn_source, self._drawn_version = source, source.version
        self._last_draw = time.monotonic()
        self._sequence += 1
        self.redraws += 1
        if self.background and not force:
            self._pending = True
            sequence = self._sequence
            future = _helper().submit(self.compute, source)
            future.add_done_callback(lambda f: self._deliver(sequence, f))
        else:
            self.draw(source)
        return True

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


_HELPER: ThreadPoolExecutor | None = None


def _helper() -> ThreadPoolExecutor:
    """The thread that computes background views' data."""
    global _HELPER
    if _HELPER is None:
        _HELPER = ThreadPoolExecutor(1, thread_name_prefix="view-compute")
    return _HELPER


def _plot(x_label: str, y_label: str) -> pg.PlotWidget:
    """A plot with its axis labels (units in the label: no SI-prefix rescaling)."""
    plot = pg.PlotWidget()
    plot.setLabel("bottom", x_label)
    plot.setLabel("left", y_label)
    plot.showGrid(x=True, y=True, alpha=0.2)
    return plot


def _robust_levels(image: npt.NDArray[np.generic]) -> tuple[float, float]:
    """Display levels from a subsample: 1st to 99.9th percentile."""
    step = max(1, max(image.shape) // 256)
    sample = np.asarray(image[::step, ::step], np.float64)
    lo, hi = np.percentile(sample, (1.0, 99.9))
    return float(lo), float(max(hi, lo + 1.0))


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


class CameraView(View):
    """The latest frame: the full image, or the tracks' spectra in tracks readout."""

    title = "Camera"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = _plot("column", "row")
        self.image = pg.ImageItem(autoDownsample=True)
        self.plot.addItem(self.image)
        self.plot.invertY(True)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.info = QLabel("no frame yet")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addWidget(self.info)
        self.mode: ReadMode | None = None
        self._frame: FrameView | None = None

    def draw(self, source: LiveAccumulator) -> None:
        frame = source.latest_frame()
        if frame is None or frame is self._frame:
            return
        self._frame = frame
        if frame.mode is not self.mode:
            self.mode = frame.mode
            self.image.setVisible(frame.mode is ReadMode.IMAGE)
            for curve in self.curves.values():
                self.plot.removeItem(curve)
            self.curves.clear()
            self.plot.invertY(frame.mode is ReadMode.IMAGE)
            self.plot.setLabel("left", "row" if frame.mode is ReadMode.IMAGE
                               else "counts (ADU)")
        if frame.mode is ReadMode.IMAGE:
            self.image.setImage(frame.image, levels=_robust_levels(frame.image))
        else:
            pens = {"V": V_PEN, "H": H_PEN}
            for k, name in enumerate(frame.track_names):
                if name not in self.curves:
                    self.curves[name] = self.plot.plot(pen=pens.get(name, SUM_PEN), name=name)
                self.curves[name].setData(frame.image[k].astype(np.float64))
        self.info.setText(f"frame {frame.index}  ·  {frame.mode} readout  ·  "
                          f"{frame.image.shape[0]}×{frame.image.shape[1]}")


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


class SpectralTraceView(View):
    """V + H spectrum per frame: time (exposure starts) against energy or wavelength."""

    title = "Spectral time trace"
    min_interval_s = 0.25

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = _plot("photon energy (eV)", "time (s)")
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

    def draw(self, source: LiveAccumulator) -> None:
        s = source.spectra()
        if s is None or s.frames == 0:
            return
        x = s.energy_ev if self.energy_axis else s.wavelength_nm
        image, x0, x1 = _uniform_columns(s.trace, x)
        self.image.setImage(image, levels=_robust_levels(image))
        t = s.frame_start_s
        if t.shape[0] == image.shape[0] and t.shape[0] >= 2:
            cycle = float(np.median(np.diff(t)))
            y0, height, label = float(t[0]), float(t[-1] - t[0]) + cycle, "time (s)"
        else:  # the exposure edges are not all in yet: frame numbers
            y0, height, label = 0.0, float(image.shape[0]), "frame"
        self.plot.setLabel("left", label)
        self.image.setRect(QRectF(x0, y0, x1 - x0, height))


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
        return None if region is None else source.polarization(*region)

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
    """Fluorescence-lifetime–intensity distribution (counts per bin vs. mean delay)."""

    title = "FLID"
    min_interval_s = 0.5
    background = True
    #: Longest delay gate (ns) after the decay's peak; shorter if the laser period is.
    gate_ns: ClassVar[float | None] = 300.0

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = _plot("mean delay in the gate (ns)", "photons per bin")
        self.image = pg.ImageItem()
        self.image.setColorMap(pg.colormap.get("inferno"))
        self.plot.addItem(self.image)
        self.info = QLabel("")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addWidget(self.info)

    def compute(self, source: LiveAccumulator) -> Flid | None:
        return source.flid(gate_ns=self.gate_ns)

    def paint(self, flid: Flid | None) -> None:
        if flid is None or flid.histogram.sum() == 0:
            return
        image = np.log1p(flid.histogram)
        self.image.setImage(image, levels=(0.0, float(image.max()) or 1.0))
        d, c = flid.delay_edges_ns, flid.count_edges
        self.image.setRect(QRectF(float(d[0]), float(c[0]), float(d[-1] - d[0]),
                                  float(c[-1] - c[0])))
        self.info.setText(f"{int(flid.histogram.sum())} bins of {flid.bin_s * 1e3:g} ms "
                          "(no background subtraction live)")

