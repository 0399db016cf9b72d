"""A paused run in the views: the spectral time trace at the frames' real times with the pause a
blank gap, and the wall-clock time left after a resume."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cryoscope.acquisition import RunState, StateChanged
from cryoscope.live import LiveAccumulator
from gui import widgets
from gui.views import SpectralTraceView
from gui.widgets import StatusStrip

WAVELENGTH = np.linspace(560.0, 600.0, 1024)
CHANNELS = {"apd": 1, "laser_sync": 2, "camera_fire": 3, "stage_motion": 4}
PS = 1_000_000_000_000


def paused_accumulator() -> LiveAccumulator:
    """20 frames of 0.5 s cycles: frames 0-9 from 0 s; exposure 10 cut short by a pause at
    5.05 s; the run resumed at 25 s, frames 10-19 from exposure 11 at 25 s. Frame ``k`` has its
    line at pixel ``100 + 20 k``."""
    starts = np.concatenate([np.arange(10) * 0.5, [5.0], 25.0 + np.arange(10) * 0.5])
    stops = starts + 0.49
    stops[10] = 5.05
    t = np.round(np.concatenate([starts, stops]) * PS).astype(np.int64)
    ch = np.concatenate([np.full(21, 3), np.full(21, -3)]).astype(np.int32)
    order = np.argsort(t, kind="stable")
    live = LiveAccumulator()
    live.feed(StateChanged(RunState.RUNNING))
    before = t[order] < 5.06 * PS
    live.add_tags(t[order][before], ch[order][before], CHANNELS, 1_000_000, True)
    live.feed(StateChanged(RunState.PAUSED))
    live.feed(StateChanged(RunState.RUNNING, "resumed"))
    live.add_tags(t[order][~before], ch[order][~before], CHANNELS, 1_000_000, True)
    spectra = np.zeros((20, 2, 1024), np.uint16)
    for k in range(20):
        spectra[k, :, 100 + 20 * k] = 1000
    exposure = np.concatenate([np.arange(10), np.arange(11, 21)])
    live.add_frames(spectra, 0, WAVELENGTH, ("V", "H"), 0.0, False, exposure)
    return live


@pytest.mark.parametrize("max_rows", [1000, 16])
def test_the_spectral_trace_puts_rows_at_their_frame_times_and_leaves_the_pause_blank(
        qtbot: Any, monkeypatch: pytest.MonkeyPatch, max_rows: int) -> None:
    monkeypatch.setattr(SpectralTraceView, "max_rows", max_rows)
    view = SpectralTraceView()
    qtbot.addWidget(view)
    view.show()
    view.set_energy_axis(False)  # wavelength: linear in the pixel, a column per pixel
    live = paused_accumulator()
    trace = live.spectral_trace()
    assert trace is not None
    np.testing.assert_allclose(trace.frame_start_s[9:11], [4.5, 25.0])
    assert view.refresh(live)
    qtbot.waitUntil(lambda: view.paint_waiting(), timeout=5000)
    image = view.image.image
    rect = view.image.mapRectToParent(view.image.boundingRect())
    assert rect.top() == pytest.approx(0.0) and rect.height() == pytest.approx(30.0, abs=2.0)
    cell = rect.height() / image.shape[0]
    row_time = rect.top() + (np.arange(image.shape[0]) + 0.5) * cell
    # no frame from the end of frame 9 (5 s) to the start of frame 10 (25 s): blank (0)
    gap = (row_time > 5.0 + cell) & (row_time < 25.0 - cell)
    assert gap.sum() * cell >= 20.0 - 3 * cell
    assert np.all(image[gap] == 0)
    # every row with a frame is drawn
    drawn = (row_time < 5.0) | (row_time > 25.0)
    assert np.all(image[drawn] >= 1)
    if max_rows == 1000:  # one row per frame cycle, each at its frame's start
        assert image.shape[0] == 60 and cell == pytest.approx(0.5)
        frame_row = np.concatenate([np.arange(10), 50 + np.arange(10)])
        np.testing.assert_array_equal(np.argmax(image[frame_row], axis=1),
                                      100 + 20 * np.arange(20))
        assert np.all(image[10:50] == 0)


def test_time_left_after_a_resume_leaves_the_pause_out(qtbot: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    strip = StatusStrip()
    qtbot.addWidget(strip)
    now = [0.0]
    monkeypatch.setattr(widgets.time, "monotonic", lambda: now[0])
    strip.run_started("run.h5")

    def at(t: float, done: int, paused: bool) -> str:
        now[0] = t
        strip.show_progress(done, 400, paused)
        return strip.left.text()

    at(0.0, 1, False)
    assert at(72.0, 73, False) == f"left {widgets.fmt_duration(327.0)}"  # 1 s per frame
    assert at(72.0, 73, True) == "left —"  # the strip's mode says PAUSED
    assert at(272.5, 73, True) == "left —"  # 200 s paused
    at(272.5, 73, False)
    # 60 frames later at 1 s per frame: 132 s of running for 132 frames, 267 frames left
    assert at(332.5, 133, False) == f"left {widgets.fmt_duration(267.0)}"
