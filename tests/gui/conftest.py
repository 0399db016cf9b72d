"""GUI tests run offscreen: no display needed."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gui_helpers import fast_config

from cryoscope.config import Config


@pytest.fixture
def config() -> Config:
    return fast_config()


@pytest.fixture
def window(qtbot: Any, config: Config, tmp_path: Path) -> Iterator[Any]:
    """The main window on the simulated rig (speed 20), connected, with its own settings."""
    from PyQt6.QtCore import QSettings

    from gui.main_window import MainWindow

    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    win = MainWindow(config, settings=settings)
    win.confirm = lambda title, question: True  # every question answered "yes"
    qtbot.addWidget(win)
    win.show()
    win.speed.setCurrentText("20")
    win.connect_rig().result(timeout=30)
    qtbot.waitUntil(lambda: win.statuses is not None, timeout=5000)
    yield win
    win.close()
