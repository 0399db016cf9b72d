"""Photon bookkeeping throughput: the compiled pass in memory, and chunked from an HDF5 file;
then the g²(τ) correlator on the photons, split between two APDs.

Run: ``python benchmarks/bench_photons.py [--tags 40e6] [--chunk 10e6]``. Prints tags/s,
photons/s and peak memory; the target is >= 50 M tags/s on one core for the compiled pass.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from cryoscope.analysis.g2 import g2_from_photons
from cryoscope.analysis.photons import PhotonBookkeeper
from cryoscope.datafile import iter_tag_chunks

PERIOD = 1_000_000


def make_stream(n_tags: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A conditional-filter stream: APD/sync pairs, camera edges every 0.5 s, stage every 10 s."""
    rng = np.random.default_rng(seed)
    n_ph = n_tags // 2
    pulses = np.cumsum(rng.geometric(0.05, n_ph)).astype(np.int64)
    t_ph = pulses * PERIOD + rng.integers(5_000, 200_000, n_ph)
    t_sync = (pulses + 1) * PERIOD
    end = int(t_sync[-1])
    cam = np.arange(0, end, 502_000_000_000, dtype=np.int64)
    stage = np.arange(10_000_000_000_000 // 1000, end, 10_000_000_000_000 // 1000 * 1000,
                      dtype=np.int64)
    parts = [(t_ph, 1), (t_sync, 2), (cam, 3), (cam + 500_000_000_000, -3), (stage, 4),
             (stage + 1_000_000_000_000, -4)]
    ts = np.concatenate([p for p, _ in parts])
    ch = np.concatenate([np.full(p.size, c, np.int32) for p, c in parts])
    order = np.argsort(ts, kind="stable")
    return ts[order], ch[order]


def bench_memory(ts: np.ndarray, ch: np.ndarray, chunk: int) -> None:
    book = PhotonBookkeeper(1, 2, 3, 4, True, PERIOD)
    book.feed(ts[:10_000], ch[:10_000])  # compile outside the timing
    for repeat in range(3):
        book = PhotonBookkeeper(1, 2, 3, 4, True, PERIOD)
        chunks = ((ts[i:i + chunk], ch[i:i + chunk]) for i in range(0, ts.size, chunk))
        start = time.perf_counter()
        photons = sum(book.feed(t, c).time_ps.size for t, c in chunks)
        photons += book.finish().time_ps.size
        dt = time.perf_counter() - start
        print(f"in memory, run {repeat}: {ts.size / 1e6:.1f} M tags -> {photons / 1e6:.1f} M "
              f"photons in {dt:.3f} s = {ts.size / dt / 1e6:.1f} M tags/s")


def bench_file(ts: np.ndarray, ch: np.ndarray, chunk: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tags.h5"
        with h5py.File(path, "w") as h5:
            h5["tags/timestamp_ps"] = ts
            h5["tags/channel"] = ch
        start = time.perf_counter()
        n = sum(t.size for t, _ in iter_tag_chunks(path, chunk))
        read = time.perf_counter() - start
        print(f"HDF5 read only: {n / read / 1e6:.1f} M tags/s")
        book = PhotonBookkeeper(1, 2, 3, 4, True, PERIOD)
        start = time.perf_counter()
        photons = sum(book.feed(t, c).time_ps.size for t, c in iter_tag_chunks(path, chunk))
        photons += book.finish().time_ps.size
        dt = time.perf_counter() - start
        print(f"HDF5 read + bookkeeping (chunks of {chunk / 1e6:g} M): "
              f"{n / dt / 1e6:.1f} M tags/s ({photons / 1e6:.1f} M photons)")


def bench_g2(ts: np.ndarray, ch: np.ndarray) -> None:
    t_ph = ts[ch == 1]
    det = np.random.default_rng(1).integers(0, 2, t_ph.size).astype(np.int8)
    g2_from_photons(t_ph[:10_000], det[:10_000], PERIOD)  # compile outside the timing
    start = time.perf_counter()
    result = g2_from_photons(t_ph, det, PERIOD)
    dt = time.perf_counter() - start
    g2 = f"g2(0) = {result.g2_zero:.3f}" if result else "no coincidences"
    print(f"g2 correlator: {t_ph.size / 1e6:.1f} M photons in {dt:.3f} s = "
          f"{t_ph.size / dt / 1e6:.1f} M photons/s ({g2}; at most one photon per pulse: 0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tags", type=float, default=40e6)
    parser.add_argument("--chunk", type=float, default=10e6)
    args = parser.parse_args()
    ts, ch = make_stream(int(args.tags))
    chunk = int(args.chunk)
    bench_memory(ts, ch, chunk)
    bench_file(ts, ch, chunk)
    bench_g2(ts, ch)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stream = (ts.nbytes + ch.nbytes) / 2**20
    print(f"peak RSS {peak:.0f} MB (the generated stream itself: {stream:.0f} MB)")


if __name__ == "__main__":
    main()
