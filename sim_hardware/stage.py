"""Simulated PRM1-Z8 rotation mount on a KDC101: trapezoidal moves and an in-motion output."""

from __future__ import annotations

from drivers.interfaces import RotationStage, StageStatus
from drivers.limits import PRM1_Z8
from sim_hardware.base import SimInstrument
from sim_hardware.bench import Bench


class SimRotationStage(SimInstrument, RotationStage):
    """Moves take the time the velocity profile needs; the KDC101's trigger output (high while
    moving) drives the ``stage_motion`` tagger input."""

    model = "PRM1-Z8 / KDC101"

    def __init__(self, bench: Bench, max_velocity_deg_s: float = 10.0,
                 acceleration_deg_s2: float = 10.0) -> None:
        super().__init__(bench)
        self._velocity = max_velocity_deg_s
        self._acceleration = acceleration_deg_s2
        self._homed = False
        self._stalled = False

    def _require(self) -> None:
        super()._require()
        self._stall_if_due()

    def _stall_if_due(self) -> None:
        """A ``stall`` fault: a move under way stops where it is and never ends (the
        in-motion output stays high); with none under way, the next move stalls at once."""
        if self._stalled or not self._bench.stage.is_moving(self._bench.now_ps):
            return
        if self._faults.once("stage", "stall") is not None:
            self._freeze()

    def _freeze(self) -> None:
        bench, channel = self._bench, self._bench.wiring.stage_motion
        bench.stage.stop(bench.now_ps)
        bench.cancel_edges(channel, bench.now_ps + 1)  # the end of the move never comes
        self._stalled = True

    def angle_deg(self) -> float:
        self._require()
        return self._bench.stage.angle_now(self._bench.now_ps)

    def start_move_to(self, angle_deg: float) -> None:
        self._require()
        bench, channel = self._bench, self._bench.wiring.stage_motion
        now = bench.now_ps
        if self._stalled:
            return
        if bench.stage.stop(now):
            bench.cancel_edges(channel, now)
            bench.add_edges(now, -channel)
        move = bench.stage.start(now, float(angle_deg), self._velocity, self._acceleration)
        if move.end_ps > now:
            bench.add_edges([now, move.end_ps], [channel, -channel])
            self._stall_if_due()

    def is_moving(self) -> bool:
        self._require()
        return self._stalled or self._bench.stage.is_moving(self._bench.now_ps)

    def stop(self) -> None:
        self._require()
        bench, channel = self._bench, self._bench.wiring.stage_motion
        if bench.stage.stop(bench.now_ps):
            bench.cancel_edges(channel, bench.now_ps)
            bench.add_edges(bench.now_ps, -channel)

    def start_home(self) -> None:
        self.start_move_to(0.0)
        self._homed = True

    def is_homed(self) -> bool:
        self._require()
        return self._homed and not self.is_moving()

    def set_velocity(self, max_velocity_deg_s: float, acceleration_deg_s2: float) -> None:
        self._require()
        PRM1_Z8.max_velocity_deg_s.check(self.name, max_velocity_deg_s)
        PRM1_Z8.acceleration_deg_s2.check(self.name, acceleration_deg_s2)
        self._velocity, self._acceleration = max_velocity_deg_s, acceleration_deg_s2

    def close(self) -> None:
        if self.is_connected and self.is_moving():
            self.stop()
        super().close()

    def status(self) -> StageStatus:
        self._require()
        return StageStatus(self.angle_deg(), self.is_moving(), self.is_homed())
