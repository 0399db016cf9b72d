"""From the rig session's worker thread to Qt signals, and from :mod:`logging` to the window.

The session calls :meth:`SessionBridge.__call__` on its worker thread. The bridge queues the event
and wakes the GUI thread with one queued signal however many events arrive before it runs, so a
fast run cannot flood the event loop; on the GUI thread it re-emits typed signals, keeping only the
latest :class:`Progress`, :class:`InstrumentStatuses` and alignment frame of a burst. Frames,
tags and logged instrument readings are not passed on: the run's
:class:`cryoscope.live.LiveAccumulator` takes frames and tags on the worker thread, and the
panels show the session's status polls.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from PyQt6.QtCore import QObject, Qt, pyqtSignal, pyqtSlot

from cryoscope.acquisition import (
    FramesAcquired,
    InstrumentReading,
    Progress,
    StateChanged,
    TagsAcquired,
)
from cryoscope.session import (
    AlignmentChanged,
    AlignmentFrame,
    CommandFailed,
    InstrumentStatuses,
    RunFinished,
    SessionEvent,
    SessionStateChanged,
)


class SessionBridge(QObject):
    """Adapts :class:`cryoscope.session.RigSession` callbacks to signals (GUI thread)."""

    sessionState = pyqtSignal(object)  # SessionStateChanged
    statuses = pyqtSignal(object)  # InstrumentStatuses
    progress = pyqtSignal(object)  # Progress
    runState = pyqtSignal(object)  # StateChanged
    commandFailed = pyqtSignal(object)  # CommandFailed
    runFinished = pyqtSignal(object)  # RunFinished
    alignment = pyqtSignal(object)  # AlignmentChanged
    alignmentFrame = pyqtSignal(object)  # AlignmentFrame
    _wake = pyqtSignal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._events: deque[SessionEvent] = deque()
        self._pending = False
        # PyQt6's stubs omit connect()'s connection-type argument, which PyQt6 takes
        self._wake.connect(self._deliver,
                           Qt.ConnectionType.QueuedConnection)  # type: ignore[call-arg]

    def __call__(self, event: SessionEvent) -> None:
        """Any thread: queue ``event`` for the GUI thread."""
        if isinstance(event, FramesAcquired | TagsAcquired | InstrumentReading):
            return  # data for the accumulator and the file; the panels show statuses
        with self._lock:
            self._events.append(event)
            if self._pending:
                return
            self._pending = True
        self._wake.emit()

    @pyqtSlot()
    def _deliver(self) -> None:
        with self._lock:
            events = list(self._events)
            self._events.clear()
            self._pending = False
        last_progress = max((i for i, e in enumerate(events) if isinstance(e, Progress)),
                            default=-1)
        last_status = max((i for i, e in enumerate(events)
                           if isinstance(e, InstrumentStatuses)), default=-1)
        last_frame = max((i for i, e in enumerate(events)
                          if isinstance(e, AlignmentFrame)), default=-1)
        for i, event in enumerate(events):
            if isinstance(event, Progress):
                if i == last_progress:
                    self.progress.emit(event)
            elif isinstance(event, InstrumentStatuses):
                if i == last_status:
                    self.statuses.emit(event)
            elif isinstance(event, SessionStateChanged):
                self.sessionState.emit(event)
            elif isinstance(event, StateChanged):
                self.runState.emit(event)
            elif isinstance(event, CommandFailed):
                self.commandFailed.emit(event)
            elif isinstance(event, RunFinished):
                self.runFinished.emit(event)
            elif isinstance(event, AlignmentChanged):
                self.alignment.emit(event)
            elif isinstance(event, AlignmentFrame) and i == last_frame:
                self.alignmentFrame.emit(event)


class LogBridge(QObject):
    """Hands formatted log records (from any thread) to the GUI thread as a signal.

    Install :attr:`handler` on a logger; remove it with :meth:`detach`.
    """

    record = pyqtSignal(str, int)  # message, level

    def __init__(self, parent: QObject | None = None, level: int = logging.INFO) -> None:
        super().__init__(parent)
        self.handler = _SignalHandler(self, level)
        self.handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))

    def detach(self, logger: logging.Logger) -> None:
        logger.removeHandler(self.handler)
        self.handler.bridge = None


class _SignalHandler(logging.Handler):
    def __init__(self, bridge: LogBridge, level: int) -> None:
        super().__init__(level)
        self.bridge: LogBridge | None = bridge

    def emit(self, record: logging.LogRecord) -> None:
        bridge = self.bridge
        if bridge is None:
            return
        try:
            bridge.record.emit(self.format(record), record.levelno)
        except RuntimeError:  # the Qt object is gone (window closed)
            self.bridge = None
