"""Analysis time and peak memory against the length of the measurement.

Run: ``python benchmarks/bench_analysis_memory.py [--frames 400 1600 6400] [--keep DIR]``.
For each length the simulated rig writes a polarization series (0.5 s frames, waveplate 5°
every 10 s, the default particle), then ``analyze_file`` runs in a fresh process whose peak
resident memory (``ru_maxrss``) and wall time are printed, with the summary and figures written
as ``cryoscope analyze`` does. The files are kept in ``--keep`` (re-used when present).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from cryoscope.analysis import analyze_file
from cryoscope.analysis.figures import write_figures
from cryoscope.analysis.summary import write_summary
path, out = sys.argv[1], sys.argv[2]
start = time.perf_counter()
result = analyze_file(path)
analysed = time.perf_counter() - start
write_summary(result, out)
write_figures(result, out)
total = time.perf_counter() - start
print(json.dumps({"analyse_s": analysed, "total_s": total, "photons": result.photons.n,
                  "frames": result.photons.frames.n,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def simulate(path: Path, frames: int) -> None:
    from cryoscope.api import measure

    start = time.perf_counter()
    measure(path, frames=frames)
    print(f"  simulated {frames} frames in {time.perf_counter() - start:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, nargs="+", default=[400, 1600, 6400])
    parser.add_argument("--keep", help="folder for the simulated files (default: temporary)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for frames in args.frames:
            path = folder / f"series-{frames}.h5"
            if not path.exists():
                simulate(path, frames)
            out = folder / f"analysis-{frames}"
            done = subprocess.run([sys.executable, "-c", CHILD, str(path), str(out)],
                                  capture_output=True, text=True, check=True)
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{frames:5d} frames ({frames * 0.5 / 60:5.1f} min), "
                  f"{figures['photons'] / 1e6:5.1f} M photons: analyze_file "
                  f"{figures['analyse_s']:6.1f} s, with summary and figures "
                  f"{figures['total_s']:6.1f} s, peak memory {figures['peak_mb']:7.0f} MB",
                  flush=True)


if __name__ == "__main__":
    main()
