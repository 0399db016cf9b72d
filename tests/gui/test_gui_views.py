"""The views alone (pytest-qt, offscreen): what they draw from an accumulator fed by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
import pytest
from PyQt6.QtCore import QEvent
from PyQt6.QtWidgets import QApplication

from cryoscope.analysis.spectra import HC_EV_NM
from cryoscope.live import LiveAccumulator
from drivers.interfaces import Track
from gui.views import (
    CameraView,
    HeldRange,
    SpectralTraceView,
    SpectrumView,
    _block_mean,
    _robust_levels,
    _row_mean,
)

WAVELENGTH = np.linspace(560.0, 600.0, 1024)


def frames_with_a_spot(n: int) -> np.ndarray:
    """``n`` full frames: a 300 ADU floor, a 5000 ADU spot at rows 470–489, column 500."""
    frames = np.full((n, 1024, 1024), 300, np.uint16)
    frames[:, 470:490, 500:502] = 5000
    return frames


def test_block_and_row_means_average_what_they_join() -> None:
    image = np.random.default_rng(1).integers(0, 60_000, (1023, 1021)).astype(np.uint16)
    for factor in (1, 2, 3, 4):
        rows, cols = 1023 // factor, 1021 // factor
        expected = image[: rows * factor, : cols * factor].reshape(
            rows, factor, cols, factor).mean(axis=(1, 3))
        np.testing.assert_allclose(_block_mean(image, factor), expected, rtol=1e-6)
    trace = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    np.testing.assert_allclose(_row_mean(trace, 4)[:, 0], [1.0, 4.0, 7.0, 9.0])
    assert _row_mean(trace, 10) is trace


def test_a_full_frame_is_drawn_binned_to_the_screen_and_in_8_bits(qtbot: Any) -> None:
    view = CameraView()
    qtbot.addWidget(view)
    view.resize(500, 500)
    view.show()
    live = LiveAccumulator(image_tracks=(Track("V", 470, 490),))
    live.add_frames(frames_with_a_spot(1), 0, WAVELENGTH, (), 0.0, False)
    assert view.refresh(live)
    assert view.info.text() == "no frame yet"  # the picture waits for the window's tick
    qtbot.waitUntil(lambda: view.paint_waiting(), timeout=5000)
    assert view.info.text().startswith("frame 0")
    # the plot's range follows the frame as it repaints: more than a sensor pixel per screen one
    qtbot.waitUntil(lambda: min(view.plot.getViewBox().viewPixelSize()) > 1.0, timeout=5000)
    live.add_frames(frames_with_a_spot(1), 1, WAVELENGTH, (), 0.0, False)
    # now the view spans the frame: binned to the screen (once the view's duty cycle allows)
    qtbot.waitUntil(lambda: view.refresh(live), timeout=5000)
    qtbot.waitUntil(lambda: view.paint_waiting(), timeout=5000)
    assert view.info.text().startswith("frame 1")
    assert not view.refresh(live)  # no new frame, nothing to draw
    assert not view.paint_waiting()
    image = view.image.image
    assert image is not None and image.dtype == np.uint8
    factor = 1024 // image.shape[0]
    assert factor >= 2 and f"{factor}×{factor}-binned" in view.info.text()
    rect = view.image.mapRectToParent(view.image.boundingRect())
    assert (rect.width(), rect.height()) == (1024, 1024)  # in sensor pixels, whatever the binning
    assert view.levels is not None and view.levels[0] == pytest.approx(300, abs=1)
    assert image[480 // factor, 500 // factor] == 255
    assert image[100 // factor, 100 // factor] == 0
    bar_lo, bar_hi = view.colour_bar.levels()
    assert (bar_lo, bar_hi) == pytest.approx(view.levels)  # the colour bar is in ADU

    # typed levels: black at 0 ADU, white at 600 ADU puts the ~300 ADU background at mid-grey
    view.auto_levels.setChecked(False)
    view.black.setValue(0.0)
    view.white.setValue(600.0)
    qtbot.waitUntil(lambda: view.refresh(live), timeout=5000)  # once the duty cycle allows
    qtbot.waitUntil(lambda: view.paint_waiting(), timeout=5000)
    assert view.levels == (0.0, 600.0)
    assert view.colour_bar.levels() == pytest.approx((0.0, 600.0))
    assert 120 <= int(view.image.image[100 // factor, 100 // factor]) <= 135


def test_a_long_spectral_time_trace_is_drawn_at_most_max_rows_tall(
        qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SpectralTraceView, "max_rows", 16)
    view = SpectralTraceView()
    qtbot.addWidget(view)
    view.show()
    live = LiveAccumulator()
    spectra = np.zeros((50, 2, 1024), np.uint16)
    spectra[:, :, 512] = np.arange(50, dtype=np.uint16)[:, None] * 10
    live.add_frames(spectra, 0, WAVELENGTH, ("V", "H"), 0.0, False)
    assert view.refresh(live)
    qtbot.waitUntil(lambda: view.paint_waiting(), timeout=5000)
    image = view.image.image
    assert image.shape == (13, 1024)  # 50 frames in groups of 4
    rect = view.image.mapRectToParent(view.image.boundingRect())
    assert rect.height() == pytest.approx(50)  # no exposure edges here: frame numbers
    column = image[:, int(np.argmax(image.max(axis=0)))]
    assert np.all(np.diff(column.astype(int)) >= 0)  # the line brightens frame by frame


def test_a_held_range_follows_growing_data_in_few_steps_and_leaves_a_zoom_alone(
        qtbot: Any) -> None:
    """A sum growing over 200 redraws stays inside the y range, which is set a few times only
    (each change repaints the axes); after a zoom with the mouse the user's range stays, until
    auto range is asked for again."""
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    held = HeldRange(plot)
    curve = plot.plot()
    x = np.arange(100.0)
    for k in range(1, 201):
        y = k * 50.0 * np.exp(-0.5 * ((x - 50) / 5) ** 2) + np.sin(x)  # jitter around 0
        curve.setData(x, y)
        held.update(float(y.min()), float(y.max()))
        bottom, top = plot.getViewBox().viewRange()[1]
        assert bottom <= y.min() and y.max() <= top
    assert held.changes <= 25
    box = plot.getViewBox()
    box.sigRangeChangedManually.emit(box.state["mouseEnabled"])  # as a wheel zoom does
    box.setYRange(0.0, 10.0, padding=0.0)
    held.update(0.0, 20_000.0)
    assert box.viewRange()[1] == [0.0, 10.0]
    box.enableAutoRange()  # the plot's "A" button
    held.update(0.0, 20_000.0)
    assert box.viewRange()[1][1] >= 20_000.0 and held.held


def test_auto_levels_hold_still_over_frames_of_one_scene() -> None:
    """Frames of the same scene keep the same levels (the colour bar is not redrawn for each
    frame's noise), and the levels still span the frame's 1st to 99.9th percentile closely."""
    rng = np.random.default_rng(3)
    frames = [rng.normal(300.0, 20.0, (256, 256)) for _ in range(20)]
    levels = [_robust_levels(f) for f in frames]
    assert len(set(levels)) <= 3
    for frame, (lo, hi) in zip(frames, levels, strict=True):
        p1, p999 = np.percentile(frame, (1.0, 99.9))
        assert lo <= p1 and p999 <= hi
        assert hi - lo <= 1.25 * (p999 - p1)


def test_the_cursor_read_out_gives_ev_and_nm_and_clears_when_the_mouse_leaves(
        qtbot: Any) -> None:
    view = SpectrumView()
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.show()
    qtbot.waitExposed(view)
    box = view.plot.getViewBox()
    box.setRange(xRange=(2.10, 2.20), yRange=(0.0, 1000.0), padding=0.0)
    QApplication.processEvents()
    scene_pos = box.mapViewToScene(pg.Point(2.15, 500.0))
    view.plot.scene().sigMouseMoved.emit(scene_pos)
    text = view.cursor_readout.text()
    ev, nm = 2.15, HC_EV_NM / 2.15
    assert f"{ev:.4f} eV" in text and f"{nm:.2f} nm" in text and "ADU 500" in text
    QApplication.sendEvent(view.plot, QEvent(QEvent.Type.Leave))
    assert view.cursor_readout.text() == ""


def test_a_narrow_spectral_time_trace_averages_columns_down_to_the_screen(qtbot: Any) -> None:
    """A trace 150 px wide shows a one-column line: Qt scales an image down by dropping
    columns, so the view averages blocks of columns to the screen's width itself."""
    view = SpectralTraceView()
    qtbot.addWidget(view)
    view.resize(150, 300)
    view.show()
    live = LiveAccumulator()
    spectra = np.full((30, 2, 1024), 300, np.uint16)
    spectra[:, :, 613] = 3000  # one column
    spectra[::3, :, 200:203] = 1000  # and a dimmer, wider one in some frames
    live.add_frames(spectra, 0, WAVELENGTH, ("V", "H"), 0.0, False)
    for _ in range(2):  # the first picture sets the plot's range, the second is drawn to it
        assert view.refresh(live, force=True)
        qtbot.waitUntil(lambda: view.paint_waiting(), timeout=5000)
        QApplication.processEvents()
    image = view.image.image
    assert image is not None
    pixels = view.plot.getViewBox().width()
    assert image.shape[1] <= 2 * pixels < 1024
    factor = 1024 // image.shape[1]
    assert factor >= 4
    # the line's block is the brightest, in every frame's row
    bright = np.argmax(image, axis=1)
    energy_order = np.argsort(HC_EV_NM / WAVELENGTH)  # columns by energy, as drawn
    line_column = int(np.flatnonzero(energy_order == 613)[0])
    assert np.all(np.abs(bright - line_column // factor) <= 1)
    assert image.max() >= 200 and np.median(image) <= 10  # near the top of the colour map
