"""The GUI's spin boxes span the instruments' declared ranges, and a laser configured front panel
only (``[laser] remote_control = false``) has its controls disabled from the start."""

from __future__ import annotations

from typing import Any

import pytest
from gui_helpers import fast_config

from cryoscope.config import Config
from cryoscope.session import SetLaserRate
from drivers.interfaces import NotSupportedError
from drivers.limits import ATTODRY800, IXON_ULTRA_888, KYMERA_328I, SIMULATED_LASER


@pytest.fixture
def config() -> Config:
    return fast_config().with_overrides("laser", remote_control=False)


def test_spin_boxes_span_the_declared_ranges(window: Any) -> None:
    panels = window.instruments.panels
    boxes = [
        (panels["cryostat"].setpoint, ATTODRY800.setpoint_k, 1.0),
        (panels["laser"].rate, SIMULATED_LASER.repetition_rate_hz, 1e6),
        (panels["laser"].power, SIMULATED_LASER.power_nw, 1.0),
        (panels["camera"].exposure, IXON_ULTRA_888.exposure_s, 1.0),
        (panels["camera"].cooling_setpoint, IXON_ULTRA_888.cooling_setpoint_c, 1.0),
        (panels["spectrograph"].center, KYMERA_328I.center_wavelength_nm, 1.0),
    ]
    for box, limit, scale in boxes:
        assert (box.minimum() * scale, box.maximum() * scale) == pytest.approx(
            (limit.low, limit.high)), limit.name
    gain, advanced = panels["camera"].gain, panels["camera"].advanced
    advanced.setChecked(False)  # above the plain range only with "advanced" ticked
    assert (gain.minimum(), gain.maximum()) == (IXON_ULTRA_888.em_gain.low,
                                                IXON_ULTRA_888.em_gain_plain_max)
    advanced.setChecked(True)
    assert (gain.minimum(), gain.maximum()) == (IXON_ULTRA_888.em_gain.low,
                                                IXON_ULTRA_888.em_gain.high)


def test_a_front_panel_only_simulated_laser_from_the_configuration(qtbot: Any,
                                                                   window: Any) -> None:
    laser = window.instruments.panels["laser"]
    qtbot.waitUntil(lambda: not any(w.isEnabled() for w in laser.controls), timeout=5000)
    assert all(w.toolTip() == "front-panel only" for w in laser.controls)
    assert all(w.isEnabled() for w in window.instruments.panels["cryostat"].controls)
    refused = window.session.send(SetLaserRate(5e6)).exception(timeout=10)
    assert isinstance(refused, NotSupportedError)
    assert "front panel only" in str(refused) and "now 1e+06 Hz" in str(refused)
    assert laser.readouts["rate"].text() == "1.000 MHz"


def wheel(widget: Any, notches: int) -> None:
    """A mouse wheel turn of ``notches`` over the middle of ``widget``."""
    from PyQt6.QtCore import QPoint, QPointF, Qt
    from PyQt6.QtGui import QWheelEvent
    from PyQt6.QtWidgets import QApplication

    centre = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre)), QPoint(0, 0),
                        QPoint(0, 120 * notches), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_the_wheel_scrolls_a_panel_and_changes_a_setting_only_with_the_focus(
        qtbot: Any, window: Any) -> None:
    """Scrolling the instruments panel over a spin box must not change the value that passes
    under the mouse; once clicked (focused) the box takes the wheel."""
    window.docks["instruments"].raise_()
    scroll = window.instruments_scroll
    qtbot.waitUntil(scroll.isVisible, timeout=2000)
    bar = scroll.verticalScrollBar()
    assert bar.maximum() > 0  # the panel is taller than its dock: it scrolls
    box = window.instruments.panels["stage"].target
    before, position = box.value(), bar.value()
    assert box.isEnabled()
    box.clearFocus()
    wheel(box, -2)
    assert box.value() == before
    assert bar.value() > position  # the panel scrolled instead
    window.activateWindow()
    qtbot.waitActive(window)
    box.setFocus()
    qtbot.waitUntil(box.hasFocus, timeout=2000)
    wheel(box, -2)
    assert box.value() < before

    # a plan's parameters are built anew when the plan changes: the new boxes too
    panel = window.run_panel
    window.docks["run"].raise_()
    qtbot.waitUntil(window.run_scroll.isVisible, timeout=2000)
    assert panel.plan.count() >= 2
    panel.plan.setCurrentIndex((panel.plan.currentIndex() + 1) % panel.plan.count())
    rebuilt = next(iter(panel.inputs.values()))
    before = rebuilt.value()
    rebuilt.clearFocus()
    wheel(rebuilt, -2)
    assert rebuilt.value() == before
