"""Time of ``write_figures`` (overview.png, tracking.png, mapping.png) for a standard 200 s file.

Run: ``python benchmarks/bench_figures.py [--file F | --mono | --image] [--repeat N]``. Without
``--file`` the simulated rig writes ``config/dimer.toml``'s standard file (``--mono``: the default
monomer with charging and dark states; ``--image``: that monomer in image readout), which is
analyzed once; the figures are then written once (timed too: the first call of a process, as in
``cryoscope analyze``, also loads fonts and fills caches) and ``N`` times (default 5). Prints the
wall and CPU seconds (``time.process_time``: less affected by other load on the machine) of each
run, their minimum and median, and the PNG sizes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench_analysis import standard_file

from cryoscope.analysis.figures import write_figures
from cryoscope.analysis.report import analyze_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", help="an existing measurement file")
    parser.add_argument("--mono", action="store_true", help="simulate the default monomer")
    parser.add_argument("--image", action="store_true", help="monomer in image readout")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = (Path(args.file) if args.file
                else standard_file(Path(tmp), image=args.image,
                                   dimer=not (args.mono or args.image)))
        result = analyze_file(path)
        print(f"{len(result.centers.centers)} centers, {result.states.n_states} states, "
              f"{len(result.jumps)} jumps, {result.states.labels.size} frames")
        out = Path(tmp) / "figures"
        start, cpu = time.perf_counter(), time.process_time()
        write_figures(result, out)  # the first call of a process also loads fonts, fills caches
        print(f"first call: write_figures {time.perf_counter() - start:5.2f} s wall, "
              f"{time.process_time() - cpu:5.2f} s CPU (fonts loaded, caches filled)")
        walls, cpus = [], []
        for i in range(args.repeat):
            start, cpu = time.perf_counter(), time.process_time()
            paths = write_figures(result, out)
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
            print(f"run {i + 1}: write_figures {walls[-1]:5.2f} s wall, {cpus[-1]:5.2f} s CPU")
        print(f"write_figures: min {min(walls):.2f} s wall / {min(cpus):.2f} s CPU, median "
              f"{statistics.median(walls):.2f} s wall / {statistics.median(cpus):.2f} s CPU")
        print("files: " + ", ".join(f"{p.name} {p.stat().st_size / 1024:.0f} kB" for p in paths))


if __name__ == "__main__":
    main()
