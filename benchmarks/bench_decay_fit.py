"""Decay fits of the standard 200 s dimer file: the whole run's decay and every state's.

Run: ``python benchmarks/bench_decay_fit.py [--file F] [--repeat N]``. Without ``--file`` the
simulated rig writes ``config/dimer.toml`` (as ``bench_analysis.py --dimer``). The analysis runs
once to get the decay histograms; then each is fitted as the analysis does
(:func:`~cryoscope.analysis.report.fit_state_decay`: a one- and, from 2000 photons, a
two-exponential fit, the better by BIC) and the CPU time of all the fits is printed (CPU time
of this process: less affected by other load on the machine), with the chosen lifetimes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_analysis import standard_file

from cryoscope.analysis.report import (
    MIN_DECAY_PHOTONS,
    MIN_TWO_EXP_PHOTONS,
    analyze_file,
    fit_state_decay,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", help="an existing measurement file")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the fits")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.file) if args.file else standard_file(Path(tmp), dimer=True)
        result = analyze_file(path, change_points=False)  # also compiles the numba code
    hists = [result.decay_all] + [st.histogram for st in result.state_results]
    photons = [int(h.counts.sum()) for h in hists]
    n_fits = (sum(n >= MIN_DECAY_PHOTONS for n in photons)
              + sum(n >= MIN_TWO_EXP_PHOTONS for n in photons))
    print(f"{len(hists)} decays (the whole run and {len(hists) - 1} states), "
          f"{n_fits} fits, {hists[0].counts.size} bins each")
    for run in range(args.repeat):
        start, cpu = time.perf_counter(), time.process_time()
        fits = [fit_state_decay(h) for h in hists]
        cpu = time.process_time() - cpu
        print(f"pass {run + 1}: all fits {cpu:6.3f} s CPU ({cpu / n_fits * 1e3:5.1f} ms per fit), "
              f"{time.perf_counter() - start:6.3f} s wall")
    for i, (fit, n) in enumerate(zip(fits, photons, strict=True)):
        label = "whole run" if i == 0 else f"state {i - 1}"
        if fit is None:
            print(f"  {label:9s} {n:8d} photons: no fit")
            continue
        taus = ", ".join(f"{t:.3f} ± {e:.3f}" for t, e in zip(fit.taus_ns, fit.taus_err_ns,
                                                              strict=True))
        weights = ", ".join(f"{w:.3f}" for w in fit.weights)
        print(f"  {label:9s} {n:8d} photons: τ = {taus} ns, weights {weights}")


if __name__ == "__main__":
    main()
