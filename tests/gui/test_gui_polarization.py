"""The polarization view alone (pytest-qt, offscreen): the angle in progress, fits that are not
determined, angles without signal — from an accumulator fed by hand."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from cryoscope.acquisition import RunState, StateChanged
from cryoscope.analysis.polarization import polarization_model
from cryoscope.live import LiveAccumulator, PolarizationView
from gui.views import PolarizationPlot
from gui.widgets import Region

HC_EV_NM = 1239.84193
WAVELENGTH = np.linspace(570.0, 582.0, 64)
LINE_PIXEL = 32
LINE_EV = HC_EV_NM / WAVELENGTH[LINE_PIXEL]
REGION = Region("line 0", LINE_EV - 0.002, LINE_EV + 0.002, "analysis")
FLOOR, PEAK = 300, 4000
P, PHI = 0.7, 30.0


def add_angle(live: LiveAccumulator, theta: float, n: int = 3, p: float = P,
              moving: bool = False, signal: bool = True) -> None:
    """``n`` two-track frames (V, H) at ``theta``: a line at :data:`LINE_PIXEL` split between V
    and H as the polarization model says, on a flat floor (the background)."""
    f = float(polarization_model(np.array([theta]), p, PHI, 1.0)[0])
    frames = np.full((n, 2, WAVELENGTH.size), FLOOR, np.uint16)
    if signal:
        frames[:, 0, LINE_PIXEL] += round(PEAK * f)
        frames[:, 1, LINE_PIXEL] += round(PEAK * (1 - f))
    spectra = live.spectra()
    live.add_frames(frames, 0 if spectra is None else spectra.frames, WAVELENGTH, ("V", "H"),
                    theta, moving)


def step(live: LiveAccumulator, theta: float, **kw: Any) -> None:
    """The stage moves on (one frame while it turns), then frames at ``theta``."""
    add_angle(live, theta - 5.0, n=1, moving=True)
    add_angle(live, theta, **kw)


def draw(view: PolarizationPlot, live: LiveAccumulator) -> None:
    """One redraw, as the window's display tick does it, on this thread."""
    view.prepare()
    view.paint(view.compute(live))


def drawn(view: PolarizationPlot, region: int = 0
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """θ and V/(V+H) of the finished points and of the point in progress, as drawn."""
    done, going, _fit = view.curves[region]
    xd, yd = done.getData()
    xg, yg = going.getData()
    return tuple(np.asarray(a if a is not None else [], float)  # type: ignore[return-value]
                 for a in (xd, yd, xg, yg))


def expected_ratio(theta: np.ndarray, p: float = P) -> np.ndarray:
    v = np.round(PEAK * polarization_model(theta, p, PHI, 1.0))
    h = np.round(PEAK * (1 - polarization_model(theta, p, PHI, 1.0)))
    return v / (v + h)


@pytest.fixture
def view(qtbot: Any) -> PolarizationPlot:
    plot = PolarizationPlot()
    qtbot.addWidget(plot)
    plot.set_regions([REGION])
    return plot


def test_the_angle_in_progress_comes_with_the_data_it_is_drawn_from(
        view: PolarizationPlot) -> None:
    live = LiveAccumulator()
    live.feed(StateChanged(RunState.RUNNING))
    add_angle(live, 0.0)
    for theta in (10.0, 20.0, 30.0):
        step(live, theta)
    draw(view, live)
    theta_done, ratio_done, theta_going, _ = drawn(view)
    assert theta_done.tolist() == [0.0, 10.0, 20.0]
    assert theta_going.tolist() == [30.0]
    np.testing.assert_allclose(ratio_done, expected_ratio(theta_done), atol=1e-9)
    assert "in progress" in view.legend.text()

    # The race of the audit: the stage moves on and frames of the next angle arrive after the
    # view took its request (GUI thread) and before it reads the data (helper thread).
    view.prepare()
    step(live, 40.0)
    view.paint(view.compute(live))
    theta_done, ratio_done, theta_going, _ = drawn(view)
    assert theta_done.tolist() == [0.0, 10.0, 20.0, 30.0]
    assert theta_going.tolist() == [40.0]
    np.testing.assert_allclose(ratio_done, expected_ratio(theta_done), atol=1e-9)

    # the stage turns: the angle just left is finished, none is in progress
    add_angle(live, 45.0, n=1, moving=True)
    draw(view, live)
    theta_done, _, theta_going, _ = drawn(view)
    assert theta_done.tolist() == [0.0, 10.0, 20.0, 30.0, 40.0] and theta_going.size == 0
    assert "in progress" not in view.legend.text()

    # the run ends at an angle: it is finished
    add_angle(live, 50.0)
    draw(view, live)
    assert drawn(view)[2].tolist() == [50.0]
    version = live.version
    live.feed(StateChanged(RunState.COMPLETE))
    assert live.version > version  # the views redraw
    draw(view, live)
    theta_done, _, theta_going, _ = drawn(view)
    assert theta_done.tolist() == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0] and theta_going.size == 0


def test_a_replayed_file_has_no_angle_in_progress(view: PolarizationPlot) -> None:
    live = LiveAccumulator()  # fed without a run's states, as replay_measurement does
    add_angle(live, 0.0)
    for theta in (10.0, 20.0, 30.0, 40.0):
        step(live, theta)
    pol = live.polarization(REGION.lo_ev, REGION.hi_ev)
    assert not pol.in_progress.any()
    draw(view, live)
    assert drawn(view)[0].tolist() == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert drawn(view)[2].size == 0


def test_an_angle_without_signal_is_not_handed_to_the_plot(view: PolarizationPlot) -> None:
    live = LiveAccumulator()
    add_angle(live, 0.0)
    for theta in (10.0, 20.0, 30.0):
        step(live, theta)
    step(live, 40.0, signal=False)  # V + H = 0 in the region: no ratio
    pol = live.polarization(REGION.lo_ev, REGION.hi_ev)
    assert pol.theta_deg.size == 5 and np.isnan(pol.ratio[-1])
    draw(view, live)
    theta_done, ratio_done, _, _ = drawn(view)
    assert theta_done.tolist() == [0.0, 10.0, 20.0, 30.0]
    assert np.all(np.isfinite(ratio_done))


def test_a_fit_on_the_boundary_is_not_shown_as_a_result_and_logged_once(
        view: PolarizationPlot, caplog: pytest.LogCaptureFixture) -> None:
    live = LiveAccumulator()
    add_angle(live, 0.0, p=1.0)
    for theta in (10.0, 20.0, 30.0, 40.0, 50.0):
        step(live, theta, p=1.0)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            draw(view, live)
    pol = view.result
    assert pol is not None and pol.fit is not None and pol.fit.p > 0.995
    assert not pol.fit.determined
    _done, _going, fit_curve = view.curves[0]
    x, _ = fit_curve.getData()
    assert x is None or len(x) == 0  # no curve
    assert drawn(view)[0].size == 6  # the points stay
    assert "not determined" in view.legend.text() and "boundary" in view.legend.text()
    assert "±" not in view.legend.text() and "nan" not in view.legend.text()
    assert view.info.text() == ""
    boundary = [r for r in caplog.records if "boundary" in r.getMessage()]
    assert len(boundary) == 1, [r.getMessage() for r in caplog.records]


def test_a_determined_fit_is_drawn_with_its_uncertainties(view: PolarizationPlot) -> None:
    live = LiveAccumulator()
    add_angle(live, 0.0)
    for theta in np.arange(10.0, 90.0, 10.0):
        step(live, float(theta))
    draw(view, live)
    pol = view.result
    assert pol is not None and pol.fit is not None and pol.fit.determined
    assert pol.fit.phi_deg == pytest.approx(PHI, abs=0.5)
    _done, _going, fit_curve = view.curves[0]
    x, y = fit_curve.getData()
    assert x is not None and len(x) > 0 and np.all(np.isfinite(y))
    assert f"φ = {pol.fit.phi_deg:.1f} ± {pol.fit.phi_err_deg:.1f}°" in view.legend.text()


def test_the_view_says_what_it_waits_for(view: PolarizationPlot, qtbot: Any) -> None:
    # a region is chosen (saved from the last session), no data yet
    assert "no frames yet" in view.info.text()
    assert "choose a spectral region" not in view.info.text()
    view.clear()  # a run starts
    assert "no frames yet" in view.info.text()
    fresh = PolarizationPlot()
    qtbot.addWidget(fresh)
    assert "choose a spectral region" in fresh.info.text()
    fresh.set_regions([])
    assert "choose a spectral region" in fresh.info.text()


def test_an_angle_without_signal_in_the_region_is_no_point() -> None:
    """Background-subtracted sums of an angle where the region holds only noise give no ratio
    (clipped at zero first, they made a point at exactly 0 or 1)."""
    v = np.array([700.0, 800.0, -3.0, 4.0, 900.0])
    h = np.array([300.0, 200.0, 5.0, -6.0, 100.0])
    view = PolarizationView((2.148, 2.152), np.array([0.0, 5.0, 10.0, 15.0, 20.0]), v, h,
                            np.zeros(5, bool), 50, None)
    ratio = view.ratio
    np.testing.assert_allclose(ratio[[0, 1, 4]], [0.7, 0.8, 0.9])
    assert np.isnan(ratio[2]) and np.isnan(ratio[3])
