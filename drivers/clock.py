"""The wall clock for a real rig."""

from __future__ import annotations

import time

from drivers.interfaces import Clock

__all__ = ["SystemClock"]


class SystemClock(Clock):
    """Real time: :func:`time.monotonic` seconds, and :func:`time.sleep` to wait."""

    def now(self) -> float:
        """Seconds since an arbitrary fixed origin (monotonic, unaffected by clock changes)."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of wall time (no-op for zero or negative values)."""
        if seconds > 0:
            time.sleep(seconds)
