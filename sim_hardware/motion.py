"""Trapezoidal motion profiles of the simulated rotation stage.

A move accelerates at ``a`` up to ``v_max`` (or as far as half the distance allows), cruises, and
decelerates to rest: the timing of a PRM1-Z8 under its KDC101 velocity parameters. The stage's
history is append-only, so the angle at any past time can be evaluated for photons released
later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sim_hardware.units import PS_PER_S


@dataclass(frozen=True, slots=True)
class Move:
    """One move from ``start_deg`` to ``end_deg``, starting at ``t0_ps``."""

    t0_ps: int
    start_deg: float
    end_deg: float
    velocity_deg_s: float
    acceleration_deg_s2: float
    #: Set when the move was stopped early: the time it stopped (the stage holds its angle then).
    stopped_ps: int | None = None

    @property
    def distance_deg(self) -> float:
        return abs(self.end_deg - self.start_deg)

    def _ramp(self) -> tuple[float, float, float]:
        """(acceleration time, cruise time, peak velocity) of the profile."""
        d, a, v = self.distance_deg, self.acceleration_deg_s2, self.velocity_deg_s
        if d * a < v * v:  # never reaches v_max: triangular profile
            t_acc = math.sqrt(d / a)
            return t_acc, 0.0, a * t_acc
        t_acc = v / a
        return t_acc, (d - v * t_acc) / v, v

    @property
    def natural_duration_s(self) -> float:
        t_acc, t_cruise, _ = self._ramp()
        return 2 * t_acc + t_cruise

    @property
    def end_ps(self) -> int:
        natural = self.t0_ps + round(self.natural_duration_s * PS_PER_S)
        return natural if self.stopped_ps is None else min(natural, self.stopped_ps)

    def travelled_deg(self, t_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Distance covered ``t_s`` seconds after the start (clipped to the profile)."""
        t_acc, t_cruise, v_peak = self._ramp()
        a = self.acceleration_deg_s2
        t = np.clip(t_s, 0.0, 2 * t_acc + t_cruise)
        d_acc = 0.5 * a * t_acc**2
        accel = 0.5 * a * np.minimum(t, t_acc) ** 2
        cruise = v_peak * np.clip(t - t_acc, 0.0, t_cruise)
        t_dec = np.clip(t - t_acc - t_cruise, 0.0, t_acc)
        decel = v_peak * t_dec - 0.5 * a * t_dec**2
        return np.where(t <= t_acc, accel, d_acc + cruise + decel)

    def angle_at(self, t_ps: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        t_eff = np.minimum(t_ps, self.end_ps)
        dt_s = (t_eff - self.t0_ps).astype(np.float64) / PS_PER_S
        sign = 1.0 if self.end_deg >= self.start_deg else -1.0
        return self.start_deg + sign * self.travelled_deg(dt_s)


class MotionHistory:
    """Every move the stage made, for evaluating its angle at any past time."""

    def __init__(self, initial_deg: float = 0.0) -> None:
        self.initial_deg = initial_deg
        self._moves: list[Move] = []
        self._table: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                           npt.NDArray[np.float64]] | None = None

    def _lookup(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                               npt.NDArray[np.float64]]:
        """Per move: its start; and, from index 1 on (index 0: before the first move), its end
        and the angle it rests at from its end on (evaluated as :meth:`Move.angle_at` does
        there, so the same number)."""
        if self._table is None:
            moves = self._moves
            starts = np.array([m.t0_ps for m in moves], np.int64)
            ends = np.array([np.iinfo(np.int64).min, *(m.end_ps for m in moves)], np.int64)
            rest = np.array([self.initial_deg, *(m.angle_at(np.array([m.end_ps]))[0]
                                                 for m in moves)], np.float64)
            self._table = (starts, ends, rest)
        return self._table

    def angle_at(self, t_ps: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """The angle at each time: at rest, the angle the last move ended at (most photons
        come while the stage rests); while moving, from the move's profile."""
        t_ps = np.asarray(t_ps, dtype=np.int64)
        if not self._moves:
            return np.full(t_ps.shape, self.initial_deg, dtype=np.float64)
        starts, ends, rest = self._lookup()
        which = np.searchsorted(starts, t_ps, side="right")  # the move under way + 1
        angles = rest[which]
        moving = np.flatnonzero(t_ps < ends[which])
        if moving.shape[0]:
            during = which[moving]
            for j in range(int(during.min()), int(during.max()) + 1):
                sel = moving[during == j]
                if sel.shape[0]:
                    angles[sel] = self._moves[j - 1].angle_at(t_ps[sel])
        return angles

    def angle_now(self, now_ps: int) -> float:
        return float(self.angle_at(np.array([now_ps]))[0])

    def is_moving(self, now_ps: int) -> bool:
        return bool(self._moves) and self._moves[-1].t0_ps <= now_ps < self._moves[-1].end_ps

    def start(self, now_ps: int, target_deg: float, velocity: float, acceleration: float) -> Move:
        """Begin a move at ``now_ps`` (a running move is stopped there first)."""
        self.stop(now_ps)
        move = Move(now_ps, self.angle_now(now_ps), target_deg, velocity, acceleration)
        self._moves.append(move)
        self._table = None
        return move

    def stop(self, now_ps: int) -> bool:
        """Stop a running move at ``now_ps``; returns whether one was running."""
        if not self.is_moving(now_ps):
            return False
        last = self._moves[-1]
        self._moves[-1] = Move(last.t0_ps, last.start_deg, last.end_deg, last.velocity_deg_s,
                               last.acceleration_deg_s2, stopped_ps=now_ps)
        self._table = None
        return True
