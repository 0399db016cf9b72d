"""The simulated rig's clock: waiting advances the bench's virtual time."""

from __future__ import annotations

import time

from drivers.interfaces import Clock
from sim_hardware.bench import Bench

#: Wall time (s) a paced clock may fall behind its schedule and still make it up: further behind
#: (a long stall, or time nobody waited on the clock), it re-anchors instead of drawing all that
#: time's photons at once.
MAX_CATCH_UP_S = 1.0
#: A paced wait that comes late advances virtual time by at most this many times what it asked
#: for, so the caller's loop still sees time in steps of about its own poll interval while the
#: clock makes up what the caller's work cost.
MAX_STEP_FACTOR = 5.0


class SimClock(Clock):
    """Virtual time of a :class:`Bench`.

    ``speed=None`` runs as fast as the computer allows; a factor paces virtual time to the wall
    clock (``1.0`` = real time), so a GUI sees a measurement unfold as it would at the microscope.
    Paced, virtual time follows a schedule of wall time × speed, as the microscope's time
    follows the wall clock: the time a caller spends between two waits passes on the bench too.
    A wait that comes after its scheduled time returns at once, having advanced by up to
    :data:`MAX_STEP_FACTOR` times what it asked for, so the next poll finds more data; the
    simulation keeps its speed instead of slowing down to the caller's loop rate.
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
        if self._speed is None:
            self._bench.advance(seconds)
            return
        now = self._bench.now_s
        behind = self._virtual0 + (time.monotonic() - self._wall0) * self._speed \
            - (now + seconds)  # virtual time by which this wait's end is late on the schedule
        if behind > MAX_CATCH_UP_S * self._speed:
            self._wall0, self._virtual0 = time.monotonic(), now
            behind = 0.0
        self._bench.advance(seconds + min(max(behind, 0.0), (MAX_STEP_FACTOR - 1) * seconds))
        lag = self._wall0 + (self._bench.now_s - self._virtual0) / self._speed - time.monotonic()
        if lag > 0:
            time.sleep(lag)
