"""Speed and memory of the standard measurement on the simulated rig.

Runs the default configuration (400 frames x 0.5 s, waveplate 5 deg every 10 s: ~200 s of
measurement) at ``speed = "max"`` and prints how much faster than real time it ran and the
process's resident memory sampled over the run (flat = no growth with run length).

    python benchmarks/bench_run.py [--config PATH] [--frames N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from cryoscope import api
from cryoscope.acquisition import Progress, RunEvent


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="configuration (default: config/simulated.toml)")
    parser.add_argument("--frames", type=int, help="frames (default: the config's)")
    args = parser.parse_args()
    config = api.load_config(args.config).with_overrides("simulation", speed="max")
    if args.frames:
        config = config.with_overrides("plan", frames=args.frames)
    samples: list[tuple[int, float]] = []

    def sample_memory(event: RunEvent) -> None:
        if isinstance(event, Progress) and (not samples or event.frames_done
                                            >= samples[-1][0] + config.plan.frames // 10):
            samples.append((event.frames_done, rss_mib()))

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.h5"
        started, cpu_started = time.perf_counter(), time.process_time()
        result = api.measure(out, config, listeners=[sample_memory])
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        size_mb = out.stat().st_size / 1e6
    print(f"measurement      {result.frames} frames, {result.duration_s:.1f} s virtual, "
          f"{result.state}")
    print(f"wall time        {wall:.2f} s (rig open + run + file close)")
    print(f"cpu time         {cpu:.2f} s (this process, all threads)")
    print(f"speed            {result.duration_s / wall:.1f}x real time by the wall clock, "
          f"{result.duration_s / cpu:.1f}x by cpu time")
    print(f"photons          {result.photons} APD clicks ({result.count_rate_cps / 1e3:.1f} kcps)")
    print(f"file             {size_mb:.1f} MB")
    print("memory (RSS)     " + "  ".join(f"{frames}:{mib:.0f}MiB" for frames, mib in samples))


if __name__ == "__main__":
    main()
