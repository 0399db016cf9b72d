"""The simulated rig's pace through a rig session (no window): is ``--speed 20`` twenty times
real time?

Connects a :class:`cryoscope.session.RigSession` at the given speed, leaves it idle (count-rate
monitor on, as in the window), then runs a polarization series and prints:

- the rig time that passed while idle, per wall second;
- the wall time from asking for the run to its first state and to its first frame;
- rig seconds acquired after the first frame per wall second, and the CPU seconds the process
  used meanwhile (the simulation's share of the machine).

    python benchmarks/bench_session_speed.py [--speed 20] [--idle 5] [--frames 100]
                                             [--exposure 0.5]

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryoscope.acquisition import FramesAcquired, RunEvent, RunState, StateChanged
from cryoscope.config import load_config
from cryoscope.session import RigSession


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=20.0)
    parser.add_argument("--idle", type=float, default=5.0, help="idle wall time before the run")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--exposure", type=float, default=0.5)
    args = parser.parse_args()

    config = load_config().with_overrides("simulation", speed=args.speed)
    config = config.with_overrides("stage", max_velocity_deg_s=25.0, acceleration_deg_s2=25.0)
    config = config.with_overrides("plan", frames=args.frames, exposure_s=args.exposure,
                                   waveplate_dwell_s=4.0, waveplate_step_deg=10.0)
    marks: dict[str, float] = {}

    def listen(event: RunEvent) -> None:
        now = time.perf_counter()
        if isinstance(event, StateChanged) and event.state is RunState.RUNNING:
            marks.setdefault("running", now)
        if isinstance(event, FramesAcquired):
            marks.setdefault("frame", now)
            marks.setdefault("cpu", time.process_time())

    session = RigSession(config)
    try:
        session.connect().result(60)
        rig_clock = session.command("read the clock", lambda rig: rig.clock.now())
        clock0, wall0 = rig_clock.result(10), time.perf_counter()
        time.sleep(args.idle)
        clock1 = session.command("read the clock", lambda rig: rig.clock.now()).result(10)
        idle_pace = (clock1 - clock0) / (time.perf_counter() - wall0)
        with tempfile.TemporaryDirectory() as tmp:
            asked = time.perf_counter()
            result = session.start_run("polarization_series", Path(tmp) / "speed.h5",
                                       listeners=[listen]).result(600)
            end, cpu_end = time.perf_counter(), time.process_time()
    finally:
        session.close()
    rig_s = result.duration_s - args.exposure  # acquisition after the first frame
    wall_s = end - marks["frame"]
    print(f"speed {args.speed:g}, {result.frames} frames x {args.exposure:g} s, after "
          f"{args.idle:g} s idle")
    print(f"idle                {idle_pace:6.1f} rig s per wall s")
    print(f"start               {marks['running'] - asked:6.2f} s to the run's first state, "
          f"{marks['frame'] - asked:.2f} s to its first frame")
    print(f"run                 {rig_s / wall_s:6.1f} x real time from the first frame "
          f"({rig_s:.1f} rig s in {wall_s:.1f} wall s, {(cpu_end - marks['cpu']) / wall_s:.2f} "
          "CPU s per wall s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
