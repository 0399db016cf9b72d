"""GUI responsiveness during a run: display updates per second and the longest event-loop stall.

Runs the main window offscreen on the simulated rig (default: full-frame 1024×1024 image readout,
40 ms exposures, real-time speed), and measures during the run:

- display updates per second: display-timer ticks that redrew at least one view, and camera
  frames painted per second;
- the event loop's longest stall: the largest gap between ticks of a 10 ms heartbeat QTimer
  from 0.5 s before the run (the window idle, then the Start button's click and its handler)
  to 1.5 s after its end (the window's end-of-run work),
  and for the stalls > 50 ms (the GUI issue's limit) the CPU time of the GUI thread and of the
  whole process meanwhile (GUI thread busy: its own work; process busy but not the GUI thread:
  other threads kept the GIL; neither: the machine ran other processes);
- the time one display refresh takes on the GUI thread, median and max (with the views it
  repaints: their widgets are painted later in the same pass of the event loop, counted in the
  stalls);
- the simulated rig's speed from the first frame on: rig seconds acquired after the first frame
  per wall second, and the process' CPU seconds meanwhile (``--speed 20 --readout tracks
  --exposure 0.5 --frames 200``: is ``--speed 20`` twenty times real time?).

    python benchmarks/bench_gui.py [--readout image|tracks] [--speed 1] [--exposure 0.04]
                                   [--frames 250] [--synthetic FPS] [--diagnose FILE]

It also prints each view's longest computation (on its helper thread). ``--diagnose FILE``
writes every thread's stack to FILE whenever the heartbeat is 50 ms late (``faulthandler``,
which needs no GIL: it shows the thread that keeps it) and prints garbage collections longer
than 20 ms.

``--synthetic 30`` skips the rig and feeds the views full frames at 30 frames/s from a thread: the
GUI's own capacity (the simulated camera makes only ~15 full frames/s on a 2-core machine).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
    # Python keeps its bytecode, as on a lab machine: without it (a sandbox's
    # PYTHONDONTWRITEBYTECODE=1) every module first imported during the run is compiled from
    # source, holding the GIL for tens of ms, and the event loop stalls for it
    os.execv(sys.executable, [sys.executable, *sys.argv])
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PyQt6.QtCore import QSettings, QTimer
from PyQt6.QtWidgets import QApplication

from cryoscope.config import load_config
from cryoscope.live import LiveAccumulator
from gui.app import configure_interpreter
from gui.main_window import MainWindow
from gui.views import View

#: A gap between heartbeats longer than this is a stall (the GUI issue's limit, s).
STALL_S = 0.05
#: The heartbeat goes on this long after the run's end (s), and starts this long before the
#: run, the window idle (s).
TAIL_S = 1.5
IDLE_S = 0.5


def _feed(live: LiveAccumulator, frames: int, fps: float) -> None:
    """Hand ``frames`` full 1024 × 1024 frames to ``live`` at ``fps``, as a run would."""
    rng = np.random.default_rng(0)
    images = rng.normal(300, 20, (8, 1, 1024, 1024)).astype(np.uint16)
    images[:, :, 470:490, 500] += 5000
    wavelength = np.linspace(560.0, 600.0, 1024)
    t0 = time.perf_counter()
    for k in range(frames):
        time.sleep(max(0.0, t0 + k / fps - time.perf_counter()))
        live.add_frames(images[k % 8], k, wavelength, (), 0.0, False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readout", choices=["image", "tracks"], default="image")
    parser.add_argument("--speed", default="1", help='simulation speed factor or "max"')
    parser.add_argument("--exposure", type=float, default=0.04, help="exposure per frame (s)")
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--synthetic", type=float, metavar="FPS",
                        help="no rig: feed the views full frames at FPS from a thread (the "
                        "GUI's own capacity, independent of the simulation's speed)")
    parser.add_argument("--diagnose", metavar="FILE",
                        help="write every thread's stack to FILE whenever the heartbeat is "
                        "50 ms late (faulthandler, works while a thread holds the GIL), and "
                        "print the garbage collections longer than 20 ms")
    args = parser.parse_args()

    configure_interpreter()  # as `cryoscope gui` does
    app = QApplication.instance() or QApplication(sys.argv[:1])
    speed: str | float = "max" if args.speed == "max" else float(args.speed)
    config = load_config()
    config = config.with_overrides("camera", readout=args.readout)
    config = config.with_overrides("simulation", speed=speed)
    config = config.with_overrides("plan", frames=args.frames, exposure_s=args.exposure,
                                   waveplate_dwell_s=2.0, waveplate_step_deg=5.0,
                                   poll_interval_s=0.02)
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "bench.ini"), QSettings.Format.IniFormat)
        window = MainWindow(config, settings=settings)
        window.confirm = lambda title, question: True
        window.resize(1366, 768)
        window.show()
        window.connect_rig().result(60)
        deadline = time.monotonic() + 10
        while not window.run_panel.start.isEnabled() and time.monotonic() < deadline:
            app.processEvents()

        gaps: list[float] = []
        # gaps > STALL_S: time into the run, length, and the CPU time of the GUI thread and of
        # the process meanwhile (s)
        stalls: list[tuple[float, float, float, float]] = []
        last = [time.perf_counter(), time.thread_time(), time.process_time()]

        slow_gcs: list[tuple[float, int, str, float, int]] = []  # at, gen, thread, s, objs
        gc_start = [0.0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                gc_start[0] = time.perf_counter()
                return
            took = time.perf_counter() - gc_start[0]
            if took > 0.02:
                slow_gcs.append((gc_start[0] - t_start, info["generation"],
                                 threading.current_thread().name, took,
                                 len(gc.get_objects(info["generation"]))))

        stacks = open(args.diagnose, "w") if args.diagnose else None  # noqa: SIM115
        if stacks is not None:
            gc.callbacks.append(on_gc)

        def beat() -> None:
            now, gui_cpu, cpu = time.perf_counter(), time.thread_time(), time.process_time()
            if stacks is not None:
                faulthandler.dump_traceback_later(STALL_S, file=stacks)
            gaps.append(now - last[0])
            if gaps[-1] > STALL_S:
                stalls.append((last[0] - t_start, gaps[-1], gui_cpu - last[1], cpu - last[2]))
            last[:] = [now, gui_cpu, cpu]

        heartbeat = QTimer()
        heartbeat.setInterval(10)
        heartbeat.timeout.connect(beat)

        refresh_ms: list[float] = []
        original = window.refresh_views

        def timed_refresh(force: bool = False) -> int:
            t0 = time.perf_counter()
            drawn = original(force)
            if drawn:
                refresh_ms.append((time.perf_counter() - t0) * 1e3)
            return drawn

        slowest: dict[str, float] = {}  # longest computation of each view (s)

        def timed_compute(view: View) -> None:
            compute = view.compute

            def timed(source: LiveAccumulator) -> object:
                t0 = time.perf_counter()
                try:
                    return compute(source)
                finally:
                    took = time.perf_counter() - t0
                    slowest[view.title] = max(slowest.get(view.title, 0.0), took)

            view.compute = timed  # type: ignore[method-assign]

        for view in window.views:
            timed_compute(view)

        window.timer.timeout.disconnect()
        window.timer.timeout.connect(timed_refresh)

        window.run_panel.output.setText(str(Path(tmp) / "bench.h5"))
        t_start = time.perf_counter()
        last[:] = [t_start, time.thread_time(), time.process_time()]
        heartbeat.start()
        # the idle window for a moment, then the start (its handler's time counts in the stalls)
        while time.perf_counter() < t_start + IDLE_S:
            app.processEvents()
            time.sleep(0.001)
        updates0 = window.display_updates
        camera0 = window.camera_view.redraws
        t_start = time.perf_counter()
        feeder: threading.Thread | None = None
        if args.synthetic:
            window.live = LiveAccumulator()
            window.show_live()
            feeder = threading.Thread(target=_feed, args=(window.live, args.frames,
                                                          args.synthetic), daemon=True)
            feeder.start()
        else:
            window.run_panel.start.click()
        first_frame: float | None = None
        cpu_first = 0.0
        while (feeder.is_alive() if feeder is not None else window.last_run is None):
            app.processEvents()
            if first_frame is None and window.live is not None \
                    and window.live.latest_frame() is not None:
                first_frame, cpu_first = time.perf_counter(), time.process_time()
            time.sleep(0.001)
        t_end, cpu_end = time.perf_counter(), time.process_time()
        elapsed = t_end - t_start
        updates = window.display_updates - updates0
        camera = window.camera_view.redraws - camera0
        # the run's end: its last pictures, the Runs table, the analysis started (its own
        # process), all on the GUI thread
        while time.perf_counter() < t_end + TAIL_S:
            app.processEvents()
            time.sleep(0.001)
        heartbeat.stop()
        if stacks is not None:
            faulthandler.cancel_dump_traceback_later()
            gc.callbacks.remove(on_gc)
            stacks.close()
        result = window.last_run.result if window.last_run is not None else None
        if feeder is not None:
            frames, what = args.frames, f"synthetic frames at {args.synthetic:g} fps"
        else:
            frames = result.frames if result is not None else 0
            what = f"readout {args.readout}, speed {args.speed}"
        window.close()

    print(f"{what}, {frames} frames x {args.exposure} s in {elapsed:.1f} s wall "
          f"({frames / elapsed:.1f} frames/s acquired)")
    print(f"display updates     {updates / elapsed:6.1f} /s   (display timer "
          f"{1000 / window.timer.interval():.0f} Hz)")
    print(f"camera frames drawn {camera / elapsed:6.1f} /s")
    if refresh_ms:
        print(f"refresh time        median {statistics.median(refresh_ms):.1f} ms, "
              f"max {max(refresh_ms):.1f} ms")
    if gaps:
        print(f"event loop          longest stall {max(gaps) * 1e3:.0f} ms (heartbeat 10 ms, "
              f"{sum(g > STALL_S for g in gaps)} stalls > {STALL_S * 1e3:.0f} ms, "
              f"99th percentile {statistics.quantiles(gaps, n=100)[-1] * 1e3:.0f} ms)")
    if feeder is None and first_frame is not None and result is not None:
        rig_s = result.duration_s - args.exposure  # acquisition after the first frame
        wall_s = t_end - first_frame
        print(f"rig speed           {rig_s / wall_s:6.1f} x real time from the first frame "
              f"({rig_s:.1f} rig s in {wall_s:.1f} wall s; speed {args.speed}; "
              f"{(cpu_end - cpu_first) / wall_s:.2f} CPU s per wall s in this process)")
    if slowest:
        print("longest computation " + ", ".join(f"{title} {took * 1e3:.0f} ms"
                                                 for title, took in slowest.items()))
    for at, length, gui_cpu, cpu in stalls[:5]:
        when = (f"{-at:.2f} s before the start" if at < 0 else
                f"{at:.2f} s into the run" if at < elapsed else
                f"{at - elapsed:.2f} s after its end")
        print(f"  stall of {length * 1e3:.0f} ms at {when} (CPU meanwhile: GUI "
              f"thread {gui_cpu * 1e3:.0f} ms, process {cpu * 1e3:.0f} ms)")
    for at, gen, thread, took, objects in slow_gcs:
        print(f"  gc: generation {gen} on {thread} at {at:.2f} s took {took * 1e3:.0f} ms "
              f"({objects} objects left in it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
