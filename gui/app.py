"""Starting the application: QApplication, the main window, and a last-resort error hook."""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType

from PyQt6.QtWidgets import QApplication

from cryoscope.config import Config
from gui.main_window import MainWindow

log = logging.getLogger(__name__)

#: The interpreter's thread switch interval in the GUI process (s). A thread that wants the GIL
#: waits this long before asking the running thread for it. Qt's C++ painting calls pyqtgraph's
#: Python methods item by item, so the GUI thread gives the GIL up and takes it back many times
#: per paint; beside a thread busy in Python (a helper's polarization fit), 200 such re-takes cost
#: 1030 ms at Python's default 5 ms, 230 ms at 1 ms and 70 ms at 0.2 ms. The acquisition rate in
#: ``benchmarks/bench_gui.py`` is the same at 0.2 ms.
SWITCH_INTERVAL_S = 0.0002


def configure_interpreter() -> None:
    """Set the GUI process' thread switch interval (:data:`SWITCH_INTERVAL_S`)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def run_app(config: Config, *, connect: bool = True, open_file: str | None = None) -> int:
    """Show the main window on ``config`` and run the event loop; returns the exit code."""
    configure_interpreter()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("cryoscope")
    app.setOrganizationName("cryoscope")
    window = MainWindow(config)

    def excepthook(kind: type[BaseException], exc: BaseException,
                   tb: TracebackType | None) -> None:
        # PyQt aborts on an exception escaping a slot: log it and tell the user instead.
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, exc, tb)))
        window.show_error(f"Unexpected error: {kind.__name__}: {exc} (details in the log)")

    previous_hook, sys.excepthook = sys.excepthook, excepthook
    for name in ("cryoscope", "gui"):  # the log dock shows INFO and up
        logging.getLogger(name).setLevel(logging.INFO)
    window.show()
    if connect:
        window.connect_rig()
    if open_file:
        window.open_measurement(open_file)
    try:
        return int(app.exec())
    finally:
        sys.excepthook = previous_hook
