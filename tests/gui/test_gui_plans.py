"""Every registered plan from the window: its form comes from its parameters, and it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cryoscope.acquisition import RunState
from cryoscope.datafile import open_measurement, read_timing
from cryoscope.plans import PLANS
from cryoscope.session import SessionState
from gui.main_window import MainWindow


def test_every_plan_is_offered_and_the_time_series_runs(qtbot: Any, window: MainWindow,
                                                        tmp_path: Path) -> None:
    panel = window.run_panel
    offered = [panel.plan.itemData(i) for i in range(panel.plan.count())]
    assert offered == list(PLANS)
    panel.plan.setCurrentIndex(offered.index("time_series"))
    assert set(panel.parameters()) == set(PLANS["time_series"].Parameters.model_fields)
    out = tmp_path / "blinking.h5"
    panel.output.setText(str(out))
    panel.set_parameters(frames=12, exposure_s=0.25, waveplate_deg=22.5)
    window.last_run = None
    panel.start.click()
    qtbot.waitUntil(lambda: window.last_run is not None, timeout=60_000)
    qtbot.waitUntil(lambda: window.session.state is SessionState.IDLE, timeout=5000)
    result = window.last_run.result
    assert result is not None and result.state is RunState.COMPLETE and result.frames == 12
    meas = open_measurement(out)
    assert meas.plan["name"] == "time_series" and meas.plan["waveplate_deg"] == 22.5
    timing = read_timing(meas)[2]
    np.testing.assert_allclose(timing.theta_deg, 22.5, atol=1e-6)
    assert meas.target_deg.size == 0  # the waveplate never turned during the run
