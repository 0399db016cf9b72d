"""Make docs/screenshot.png: the main window on a 1366 × 768 screen in the middle of the
paper's measurement, after a first short run whose analysis fills the results and runs docks.

Runs offscreen on the simulated rig (speed 20): a short series (80 × 0.5 s) of
``particle-01``, then the default configuration's 400 × 0.5 s polarization series of
``particle-02``; grabs the window when about half its frames are in, then stops the run.
``QT_QPA_PLATFORM=xcb`` under Xvfb shows the same on a display.

    python docs/make_screenshot.py [--out docs/screenshot.png] [--fraction 0.5]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PyQt6.QtCore import QSettings
from PyQt6.QtWidgets import QApplication

from cryoscope.config import load_config
from gui.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("make_screenshot")


def wait(app: QApplication, condition: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        app.processEvents()
        time.sleep(0.005)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument("--fraction", type=float, default=0.5,
                        help="share of the frames acquired when the window is grabbed")
    parser.add_argument("--size", type=int, nargs=2, default=(1366, 768),
                        metavar=("WIDTH", "HEIGHT"), help="window size (px)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    app = QApplication.instance() or QApplication(sys.argv[:1])
    config = load_config().with_overrides("simulation", speed=20.0)
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "gui.ini"), QSettings.Format.IniFormat)
        window = MainWindow(config, settings=settings)
        window.confirm = lambda title, question: True
        window.resize(*args.size)
        window.show()
        window.connect_rig().result(60)
        wait(app, window.run_panel.start.isEnabled, 10)
        panel = window.run_panel
        panel.output.setText(str(Path(tmp) / "particle-01.h5"))
        panel.particle.setText("particle-01")
        panel.sample.setText("CdSe/CdS dots, batch 3")
        panel.notes.setText("bright, blinks little")
        frames = config.plan.frames
        panel.set_parameters(frames=80, waveplate_dwell_s=4.0, waveplate_step_deg=10.0)
        panel.start.click()
        wait(app, lambda: window.last_run is not None, 120)
        wait(app, lambda: window.results.summary is not None, 180)
        panel.set_parameters(frames=frames, waveplate_dwell_s=config.plan.waveplate_dwell_s,
                             waveplate_step_deg=config.plan.waveplate_step_deg)
        window.last_run = None
        panel.start.click()
        window.docks["results"].raise_()
        wait(app, lambda: window.run_panel.progress.value() >= args.fraction * frames, 120)
        window.refresh_views(force=True)
        wait(app, lambda: False, 0.5)  # let the views paint
        if not window.grab().save(str(args.out)):
            log.error("could not write %s", args.out)
            return 1
        log.info("wrote %s at frame %d of %d", args.out, window.run_panel.progress.value(),
                 frames)
        window.stop_run()
        wait(app, lambda: window.last_run is not None, 30)
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
