"""The simulated rig's clock: waiting advances the bench's virtual time."""

from __future__ import annotations

import time

from drivers.interfaces import Clock
from sim_hardware.bench import Bench


class SimClock(Clock):
    """Virtual time of a :class:`Bench`.

    ``speed=None`` runs as fast as the computer allows; a factor paces virtual time to the wall
    clock (``1.0`` = real time), so a GUI sees a measurement unfold as it would at the microscope.
    """

    def __init__(self, bench: Bench, speed: float | None = None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self._bench = bench
        self._speed = speed
        self._wall0 = time.monotonic()
        self._virtual0 = bench.now_s

    def now(self) -> float:
        return self._bench.now_s

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        self._bench.advance(seconds)
        if self._speed is not None:
            due = self._wall0 + (self._bench.now_s - self._virtual0) / self._speed
            lag = due - time.monotonic()
            if lag > 0:
                time.sleep(lag)
            elif lag < -1.0:
                # fell behind (slow machine): re-anchor instead of racing to catch up
                self._wall0, self._virtual0 = time.monotonic(), self._bench.now_s
