"""Whole analysis of a standard 200 s measurement (400 frames × 0.5 s, default simulated config).

Run: ``python benchmarks/bench_analysis.py [--file F | --image | --dimer] [--apd2]``. Without
``--file`` the simulated rig writes a fresh file (with charging and dark states so every stage has
work); ``--image`` writes it in full-frame image readout, ``--apd2`` with a second APD (g²),
``--dimer`` simulates ``config/dimer.toml`` (the standard dimer file). Prints the time of each
stage, of ``analyze_file`` and of the whole analysis with summary and figures, in this process and
as ``cryoscope analyze`` in a fresh process (imports and numba's cache loads included); the targets
are < 10 s for ``analyze_file`` and < 5 s for the whole analysis of the dimer file.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryoscope.analysis.centers import map_centers
from cryoscope.analysis.configurations import configuration_states
from cryoscope.analysis.figures import write_figures
from cryoscope.analysis.image import read_image_spectra
from cryoscope.analysis.peaks import find_frame_peaks
from cryoscope.analysis.photons import collect_photons
from cryoscope.analysis.report import analyze_file
from cryoscope.analysis.spectra import prepare_spectra
from cryoscope.analysis.summary import write_summary
from cryoscope.datafile import open_measurement, read_frames


def standard_file(directory: Path, image: bool = False, apd2: bool = False,
                  dimer: bool = False) -> Path:
    from cryoscope.api import measure
    from cryoscope.config import load_config

    if dimer:
        cfg = load_config(Path(__file__).resolve().parents[1] / "config" / "dimer.toml")
    else:
        cfg = load_config()
        emitter = cfg.sample.emitters[0]
        data = {name: getattr(emitter, name) for name in emitter.__dataclass_fields__}
        data.update(charging_rate_hz=0.05, discharging_rate_hz=0.1, dark_rate_hz=0.02,
                    dark_recovery_rate_hz=0.3)
        cfg = cfg.with_overrides("sample", emitters=[data])
    if image:
        cfg = cfg.with_overrides("camera", readout="image")
    if apd2:
        cfg = cfg.with_overrides("channels", apd2=5)
    path = directory / "standard.h5"
    start = time.perf_counter()
    measure(path, cfg)
    print(f"simulated the standard file in {time.perf_counter() - start:.1f} s: {path}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", help="an existing measurement file")
    parser.add_argument("--image", action="store_true", help="simulate in image readout")
    parser.add_argument("--apd2", action="store_true", help="simulate with a second APD")
    parser.add_argument("--dimer", action="store_true", help="simulate config/dimer.toml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = (Path(args.file) if args.file
                else standard_file(Path(tmp), image=args.image, apd2=args.apd2,
                                   dimer=args.dimer))
        meas = open_measurement(path)
        print(f"{meas.n_tags / 1e6:.1f} M tags, {meas.n_frames} frames")
        analyze_file(path, change_points=False)  # warm-up: numba compilation, caches

        start = time.perf_counter()
        photons = collect_photons(path, measurement=meas)
        t_photons = time.perf_counter() - start
        print(f"photon bookkeeping   {t_photons:6.2f} s  ({photons.n / 1e6:.2f} M photons, "
              f"{meas.n_tags / t_photons / 1e6:.0f} M tags/s incl. HDF5 read)")
        start = time.perf_counter()
        frames = (read_image_spectra(path, meas)[0] if meas.readout == "image"
                  else read_frames(path))
        spectra = prepare_spectra(frames, meas.wavelength_nm)
        print(f"spectra              {time.perf_counter() - start:6.2f} s")
        start = time.perf_counter()
        peaks = find_frame_peaks(spectra)
        print(f"frame peaks          {time.perf_counter() - start:6.2f} s  ({peaks.n} peaks)")
        start = time.perf_counter()
        n = spectra.v.shape[0]
        cmap = map_centers(spectra, peaks, photons.frames.theta_deg[:n],
                           photons.frames.moving[:n])
        states = configuration_states(cmap)
        print(f"centers + states     {time.perf_counter() - start:6.2f} s  "
              f"({len(cmap.centers)} centers, {len(cmap.lines)} lines, {states.n_states} states)")

        for cps in (False, True):
            start = time.perf_counter()
            result = analyze_file(path, change_points=cps)
            label = "with" if cps else "without"
            print(f"analyze_file {label:7s} change points {time.perf_counter() - start:6.2f} s")
        start = time.perf_counter()
        out = Path(tmp) / "out"
        write_summary(result, out)
        write_figures(result, out)
        figures = time.perf_counter() - start
        print(f"summary + figures    {figures:6.2f} s")
        start, cpu = time.perf_counter(), time.process_time()
        whole = analyze_file(path)
        write_summary(whole, out)
        write_figures(whole, out)
        print(f"whole analysis (analyze_file with change points + summary + figures) "
              f"{time.perf_counter() - start:6.2f} s wall, {time.process_time() - cpu:6.2f} s CPU "
              f"(CPU time of this process: less affected by other load on the machine)")
        # a fresh process each time: imports and numba's cache loads count. Python may keep
        # its bytecode, as on a lab machine (a sandbox's PYTHONDONTWRITEBYTECODE=1 would have
        # an editable install compile cryoscope's modules from source on every start)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        walls = []
        for k in range(4):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "cryoscope.cli", "analyze", str(path), "--out",
                            str(Path(tmp) / f"cli{k}")], check=True, capture_output=True,
                           env=env)
            walls.append(time.perf_counter() - start)
        walls = walls[1:]  # the first run may write the bytecode
        print(f"cryoscope analyze (command line, figures included): "
              f"{', '.join(f'{w:.2f}' for w in walls)} s wall, best {min(walls):.2f} s")
        if result.g2 is not None:
            print(f"  g2(0) = {result.g2.g2_zero:.3f} ± {result.g2.g2_zero_err:.3f}")
        for st in result.state_results:
            taus = ", ".join(f"{t:.3g}" for t in st.decay.taus_ns) if st.decay else "-"
            print(f"  state {st.id}: {st.fraction:5.1%} of frames, "
                  f"{st.count_rate_cps / 1e3:5.1f} kcps, τ = {taus} ns, "
                  f"ZPL {', '.join(f'{z:.4f}' for z in st.zpl_ev)} eV")


if __name__ == "__main__":
    main()
