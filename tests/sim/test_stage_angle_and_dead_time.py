"""The waveplate angle at photon times and the detectors' dead time, against their definitions."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from sim_hardware.bench import dead_time_keep
from sim_hardware.motion import MotionHistory, Move
from sim_hardware.units import PS_PER_S

S = PS_PER_S


def _by_definition(history_moves: list[Move], initial: float,
                   t_ps: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Each time through the profile of the last move started at or before it."""
    out = np.full(t_ps.shape, initial)
    for i, t in enumerate(t_ps):
        started = [m for m in history_moves if m.t0_ps <= t]
        if started:
            out[i] = started[-1].angle_at(np.array([t]))[0]
    return out


def test_the_angle_at_any_time_is_the_profile_of_the_move_in_effect() -> None:
    history = MotionHistory(2.0)
    first = history.start(1 * S, 32.0, 10.0, 10.0)  # 30 deg: 1 s ramps, 2 s cruise, ends at 5 s
    second = history.start(10 * S, 37.0, 10.0, 10.0)
    assert history.stop(int(10.5 * S))  # stopped during its acceleration
    third = history.start(12 * S, 0.0, 10.0, 10.0)
    moves = [first, Move(second.t0_ps, second.start_deg, second.end_deg, 10.0, 10.0,
                         stopped_ps=int(10.5 * S)), third]
    rng = np.random.default_rng(5)
    t = np.concatenate([rng.integers(0, 20 * S, 5000), [0, S, first.end_ps, first.end_ps - 1,
                                                         int(10.5 * S), 12 * S]])
    angles = history.angle_at(t)
    np.testing.assert_array_equal(angles, _by_definition(moves, 2.0, t))
    # the physics: at rest before, accelerating at 10 deg/s², at the target after the end
    assert history.angle_at(np.array([S // 2]))[0] == 2.0
    assert history.angle_at(np.array([int(1.5 * S)]))[0] == pytest.approx(2.0 + 0.5 * 10 * 0.25)
    assert history.angle_at(np.array([8 * S]))[0] == pytest.approx(32.0)
    assert history.angle_at(np.array([int(11 * S)]))[0] == pytest.approx(32.0 + 0.5 * 10 * 0.25)
    assert history.angle_now(30 * S) == pytest.approx(0.0)


def _registered(t: npt.NDArray[np.int64], last: int | None, dead: int) -> npt.NDArray[np.bool_]:
    """Non-paralyzable dead time, one event after the other."""
    keep = np.zeros(t.shape[0], bool)
    previous = last
    for i, ti in enumerate(t):
        if previous is None or ti - previous > dead:
            keep[i] = True
            previous = int(ti)
    return keep


@pytest.mark.parametrize("mean_gap_ps", [5, 20, 50, 10_000])
@pytest.mark.parametrize("last", [None, 0, 30])
def test_dead_time_registers_what_a_detector_registers(mean_gap_ps: int, last: int | None) -> None:
    rng = np.random.default_rng(mean_gap_ps)
    dead = 22
    t = 10 + np.cumsum(np.rint(rng.exponential(mean_gap_ps, 3000)).astype(np.int64))
    keep = dead_time_keep(t, last, dead)
    np.testing.assert_array_equal(keep, _registered(t, last, dead))
    if mean_gap_ps < dead:
        assert 0 < keep.sum() < t.shape[0]  # runs of collisions several events long


def test_dead_time_of_an_empty_stream() -> None:
    assert dead_time_keep(np.empty(0, np.int64), 5, 22).shape == (0,)
