"""The paced simulated clock: virtual time follows wall time × speed, the caller's work included."""

from __future__ import annotations

from typing import Any, cast

import pytest

from sim_hardware import clock as clock_module
from sim_hardware.bench import Bench
from sim_hardware.clock import MAX_CATCH_UP_S, MAX_STEP_FACTOR, SimClock


class FakeBench:
    """The bench's time only (what the clock uses)."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


class FakeWall:
    """A wall clock that moves only when told to or when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> FakeWall:
    fake = FakeWall()
    monkeypatch.setattr(clock_module, "time", cast(Any, fake))
    return fake


def paced(speed: float | None) -> tuple[SimClock, FakeBench]:
    bench = FakeBench()
    return SimClock(cast(Bench, bench), speed), bench


def test_a_wait_on_schedule_advances_what_it_asks_and_waits_its_wall_time(wall: FakeWall
                                                                          ) -> None:
    clock, bench = paced(20.0)
    for _ in range(10):
        clock.sleep(0.02)
    assert bench.now_s == pytest.approx(0.2)
    assert sum(wall.slept) == pytest.approx(0.2 / 20.0)


def test_the_time_the_caller_works_between_waits_passes_on_the_bench(wall: FakeWall) -> None:
    clock, bench = paced(20.0)
    # each loop iteration works 2 ms of wall time (= 0.04 rig s at speed 20) and waits 0.02 s
    for _ in range(100):
        wall.now += 0.002
        clock.sleep(0.02)
    # twenty rig seconds per wall second, not the 0.02 s per 2 ms (10 x) of the loop's rate
    assert bench.now_s == pytest.approx(20.0 * (wall.now - 100.0), rel=1e-9)
    assert bench.now_s == pytest.approx(4.0, rel=1e-9)
    assert wall.slept == []  # never early: no wall-clock wait


def test_a_late_wait_steps_at_most_its_factor_and_catches_up_over_the_next(wall: FakeWall
                                                                          ) -> None:
    clock, bench = paced(20.0)
    wall.now += 0.05  # a 50 ms stall: 1 rig s behind
    clock.sleep(0.02)
    assert bench.now_s == pytest.approx(MAX_STEP_FACTOR * 0.02)
    for _ in range(20):
        clock.sleep(0.02)
    assert bench.now_s == pytest.approx(20.0 * (wall.now - 100.0), rel=1e-9)


def test_a_long_stall_is_not_made_up(wall: FakeWall) -> None:
    clock, bench = paced(20.0)
    wall.now += 2 * MAX_CATCH_UP_S  # nobody waited on the clock for two seconds
    clock.sleep(0.02)
    assert bench.now_s == pytest.approx(0.02)
    assert sum(wall.slept) == pytest.approx(0.02 / 20.0)


def test_an_unpaced_clock_advances_exactly_and_never_waits(wall: FakeWall) -> None:
    clock, bench = paced(None)
    wall.now += 5.0
    clock.sleep(0.5)
    assert bench.now_s == 0.5 and wall.slept == []
