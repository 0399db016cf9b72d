"""A night's analysis on Dask, the analysis inside a worker, and compressed storage.

Run: ``python benchmarks/bench_population.py [--particles N] [--frames F] [--tags M]``.

1. Particles per minute: ``N`` simulated particles of ``F`` frames (default 6 × 400, the paper's
   standard file) analysed by :func:`cryoscope.analysis.batch.analyze_batch` (figures included)
   on a local Dask cluster of 1 and of 2 workers; wall time including the cluster's start and
   each worker's first-call (numba) compilation.
2. One standard file inside a worker: the time of ``analyze_file`` in this process and in a
   one-worker cluster (both warmed up), and the worker's peak resident memory.
3. Compressed storage: ``M`` million tags (a simulated standard file's stream, repeated) written
   through :class:`cryoscope.datafile.MeasurementWriter` with compression none / lzf / gzip,
   tags per second against the Time Tagger 20's 9 M tags/s maximum and the ~40 k tags/s of the
   paper's measurement, and the bytes per tag.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from cryoscope.datafile import RunMetadata

#: Time Tagger 20: sustained USB throughput (tags/s), PHYSICS.md.
TT20_MAX_TAGS_S = 9e6


def simulate(directory: Path, n: int, frames: int) -> list[Path]:
    from cryoscope.night import load_population, simulate_night

    population = load_population()
    population = population.model_copy(update={
        "plan": population.plan.model_copy(update={"frames": frames})})
    start = time.perf_counter()
    simulate_night(directory, n, population, seed=11)
    print(f"simulated {n} particles x {frames} frames in {time.perf_counter() - start:.0f} s")
    return sorted(directory.glob("particle-*.h5"))


def particles_per_minute(files: list[Path], out: Path) -> None:
    from cryoscope.analysis.batch import analyze_batch

    for workers in (1, 2):
        start = time.perf_counter()
        result = analyze_batch(files, out / f"w{workers}", workers=workers)
        wall = time.perf_counter() - start
        per_file = np.mean([o.seconds for o in result.outcomes])
        assert not result.failed, result.failed
        print(f"{workers} worker(s): {len(files)} particles in {wall:.1f} s = "
              f"{len(files) / wall * 60:.1f} particles/min (mean {per_file:.1f} s per file "
              "inside a worker, cluster start and compilation included in the wall time)")


def _timed(path: str) -> float:
    from cryoscope.analysis.report import analyze_file

    start = time.perf_counter()
    analyze_file(path)
    return time.perf_counter() - start


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_speed_and_memory(path: Path, rounds: int = 2) -> None:
    """``analyze_file`` here and in a one-worker cluster, alternating (the machine is shared:
    alternating exposes both to the same load), after a warm-up on each side."""
    from distributed import Client, LocalCluster

    print(f"standard file {path.stat().st_size / 1e6:.0f} MB, {rounds} alternating rounds:")
    _timed(str(path))
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        client.submit(_timed, str(path), pure=False).result()
        (warm,) = client.run(_peak_rss_mb).values()
        here, inside = [], []
        for _ in range(rounds):
            here.append(_timed(str(path)))
            inside.append(client.submit(_timed, str(path), pure=False).result())
        (peak,) = client.run(_peak_rss_mb).values()
    print(f"  analyze_file in this process: {', '.join(f'{t:.1f}' for t in here)} s; "
          f"inside a Dask worker: {', '.join(f'{t:.1f}' for t in inside)} s")
    print(f"  worker peak RSS {peak:.0f} MB after {rounds + 1} files ({warm:.0f} MB after the "
          "first): bounded, not growing with the files analysed")


def storage_rate(path: Path, million_tags: float) -> None:
    from cryoscope.datafile import MeasurementWriter, OutputClaim
    from drivers.interfaces import TagBlock

    with h5py.File(path, "r") as f:
        ts = f["tags/timestamp_ps"][:]
        ch = f["tags/channel"][:]
    span = int(ts[-1] - ts[0]) + 1
    total = int(million_tags * 1e6)
    duration_s = span * 1e-12 * total / ts.size
    block = 1_000_000
    print(f"tag stream of the paper's measurement: {ts.size / (span * 1e-12) / 1e3:.0f} k tags/s")
    with tempfile.TemporaryDirectory() as tmp:
        for compression in ("none", "lzf", "gzip"):
            out = Path(tmp) / f"{compression}.h5"
            claim = OutputClaim(out)
            writer = MeasurementWriter(claim)
            writer.begin(run_metadata(compression))
            written = 0
            start = time.perf_counter()
            while written < total:
                i = written % ts.size
                n = min(block, ts.size - i, total - written)
                offset = (written // ts.size) * span
                writer.append_tags(TagBlock(ts[i:i + n] + offset, ch[i:i + n],
                                            np.zeros(n, np.uint8), np.zeros(n, np.int32)))
                written += n
            writer.finish("complete")
            claim.settle(began=True, succeeded=True)
            wall = time.perf_counter() - start
            rate = total / wall
            print(f"  {compression:>5}: {rate / 1e6:5.1f} M tags/s "
                  f"({rate / TT20_MAX_TAGS_S:4.1f}x the TT20 maximum, "
                  f"{duration_s / wall:6.0f}x real time of the measurement), "
                  f"{out.stat().st_size / total:4.2f} bytes/tag")


def run_metadata(compression: str) -> RunMetadata:
    """A file's metadata as the plan records it, with the given compression."""
    from cryoscope.config import load_config

    cfg = load_config().with_overrides("storage", compression=compression)
    return RunMetadata(
        config_toml=cfg.to_toml(), plan={}, rig_backend="benchmark",
        channels=cfg.channels.as_dict(), conditional_filter=True, laser_period_ps=1_000_000,
        identities={}, tagger={}, camera={}, frame_shape=(2, 1024),
        wavelength_nm=np.linspace(550, 610, 1024), spectrograph={}, stage={}, cryostat={},
        laser={}, measurement=cfg.measurement.model_dump(),
        compression=cfg.storage.compression, compression_level=cfg.storage.compression_level)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=6)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--tags", type=float, default=40.0, help="million tags to write")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start")
    with tempfile.TemporaryDirectory() as tmp:
        files = simulate(Path(tmp) / "night", args.particles, args.frames)
        particles_per_minute(files, Path(tmp) / "out")
        worker_speed_and_memory(files[0])
        storage_rate(files[0], args.tags)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
