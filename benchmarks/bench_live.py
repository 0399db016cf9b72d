"""Cost of the live views' tag data: a standard 200 s measurement (400 frames × 0.5 s) fed to a
:class:`~cryoscope.live.LiveAccumulator` tag block by tag block (blocks of 0.1 s, each frame
once its exposure has ended), read every 0.25 s of data as the decay view reads it (intensity
every 0.1 s, FLID every 0.5 s); then its replay and ``analyze_file``.

Run: ``python benchmarks/bench_live.py [--file F] [--apd2]`` (``--apd2``: a second APD; without
``--file`` the simulated rig writes a fresh file). Prints CPU seconds (this process) of feeding,
of the reads (median and max of one ``decay()``), of ``replay_measurement`` and of
``analyze_file``. Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from cryoscope.analysis.report import analyze_file
from cryoscope.datafile import iter_tag_chunks, open_measurement, read_frames, read_timing
from cryoscope.live import LiveAccumulator, replay_measurement

#: Tag data per fed block (s of tagger time) and between reads of each view.
BLOCK_S, TRACE_S, DECAY_S, FLID_S = 0.1, 0.1, 0.25, 0.5


def _cpu(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.process_time()
    out = fn(*args, **kwargs)
    return out, time.process_time() - start


def feed_live(path: Path) -> None:
    meas = open_measurement(path)
    frames = read_frames(path)
    exposure_end = read_timing(meas)[2].stop_ps
    index = (np.arange(meas.n_frames) if meas.exposure_index is None else meas.exposure_index)
    channel_map = {"apd": meas.apd_channel, "laser_sync": meas.sync_channel,
                   "camera_fire": meas.camera_channel, "stage_motion": meas.stage_channel}
    if meas.apd2_channel is not None:
        channel_map["apd2"] = meas.apd2_channel
    t = np.concatenate([ts for ts, _ in iter_tag_chunks(path)])
    ch = np.concatenate([c for _, c in iter_tag_chunks(path)])
    cuts = np.searchsorted(t, np.arange(t[0], t[-1] + 1, round(BLOCK_S * 1e12)))[1:]
    live = LiveAccumulator()
    feed_cpu = 0.0
    reads: dict[str, list[float]] = {"trace": [], "decay": [], "flid": []}
    added = 0
    start = 0
    for k, stop in enumerate(np.append(cuts, t.shape[0])):
        _, cpu = _cpu(live.add_tags, t[start:stop], ch[start:stop], channel_map,
                      meas.laser_period_ps, meas.conditional_filter)
        feed_cpu += cpu
        start = stop
        ended = int(np.searchsorted(exposure_end, t[stop - 1])) if stop else 0
        if ended > added:
            _, cpu = _cpu(live.add_frames, frames[added:ended], added, meas.wavelength_nm,
                          meas.track_names, 0.0, False, index[added:ended])
            feed_cpu += cpu
            added = ended
        elapsed = (k + 1) * BLOCK_S
        for name, every, read in (("trace", TRACE_S, live.intensity_trace),
                                  ("decay", DECAY_S, live.decay), ("flid", FLID_S, live.flid)):
            if elapsed / every >= len(reads[name]) + 1:
                reads[name].append(_cpu(read)[1])
    live.finish_tags()
    print(f"live: {t.shape[0] / 1e6:.1f} M tags, {live.photons} photons in "
          f"{len(cuts) + 1} blocks: feeding {feed_cpu:.2f} CPU s")
    for name, cpu in reads.items():
        print(f"  {name:5s} reads {len(cpu):5d}: {sum(cpu):.2f} CPU s, one median "
              f"{statistics.median(cpu) * 1e3:.1f} ms, max {max(cpu) * 1e3:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", type=Path)
    parser.add_argument("--apd2", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file
        if path is None:
            from bench_analysis import standard_file
            path = standard_file(Path(tmp), apd2=args.apd2)
        feed_live(path)
        _, cpu = _cpu(replay_measurement, path)
        print(f"replay_measurement: {cpu:.2f} CPU s")
        _, cpu = _cpu(analyze_file, path, change_points=False)
        print(f"analyze_file (no change points): {cpu:.2f} CPU s")


if __name__ == "__main__":
    main()
