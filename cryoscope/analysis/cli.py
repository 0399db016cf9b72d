"""``cryoscope analyze FILE [--out DIR]``: summary.json, PNG figures and a short table."""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from pathlib import Path

from cryoscope.analysis.measurement import MeasurementError

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``analyze`` sub-command to the main CLI's sub-parsers."""
    parser = subparsers.add_parser(
        "analyze", help="analyze a measurement file: summary.json and figures",
        description="Analyze a cryoscope measurement file: spectral states, lifetimes, lines, "
                    "polarization; writes DIR/summary.json and PNG figures.")
    parser.add_argument("file", help="measurement file (.h5)")
    parser.add_argument("--out", help="output directory (default: FILE without suffix + _analysis)")
    parser.add_argument("--bin-ms", type=float, default=10.0,
                        help="intensity-trace and FLID bin (ms, default 10)")
    parser.add_argument("--regions", metavar="LO:HI[,LO:HI...]",
                        help="energy range (eV) of each emission center, e.g. "
                             "2.125:2.16,2.10:2.125 (default: centers found automatically)")
    parser.add_argument("--jump-mev", type=float, default=2.0,
                        help="least peak shift between frames counted as a jump (meV, default 2)")
    parser.add_argument("--no-figures", action="store_true", help="write summary.json only")
    parser.set_defaults(handler=_run)


def _error(message: str) -> int:
    print(f"cryoscope analyze: error: {message}", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace) -> int:
    from cryoscope.analysis.report import analyze_file, parse_regions
    from cryoscope.analysis.summary import write_summary

    path = Path(args.file)
    if not path.is_file():
        return _error(f"file not found: {path}")
    if args.bin_ms <= 0:
        return _error(f"--bin-ms must be positive, got {args.bin_ms}")
    if args.jump_mev <= 0:
        return _error(f"--jump-mev must be positive, got {args.jump_mev}")
    regions = None
    if args.regions is not None:
        try:
            regions = parse_regions(args.regions)
        except ValueError as exc:
            return _error(f"--regions: {exc}")
    out = Path(args.out) if args.out else path.with_name(path.stem + "_analysis")
    try:
        result = analyze_file(path, bin_s=args.bin_ms / 1000.0, tracking_regions_ev=regions,
                              jump_mev=args.jump_mev)
    except MeasurementError as exc:
        return _error(str(exc))
    except (ValueError, KeyError, OSError) as exc:
        return _error(f"cannot analyze {path}: {exc}")
    summary = write_summary(result, out)
    written = [summary]
    if not args.no_figures:
        from cryoscope.analysis.figures import write_figures

        written += write_figures(result, out)
    print(f"{path}: {result.duration_s:.1f} s, {result.spectra.v.shape[0]} frames, "
          f"{result.photons.n} photons, {result.count_rate_cps / 1e3:.1f} kcps")
    bands = result.image_bands
    if bands is not None:
        print(f"image readout: V rows {bands.v.row_start}-{bands.v.row_stop}, H rows "
              f"{bands.h.row_start}-{bands.h.row_stop} (from the {bands.source}), "
              f"{bands.captured:.0%} of the light")
    if result.measurement.apd2_channel is not None:
        g2 = result.g2
        print(f"g2(0) = {g2.g2_zero:.3f} ± {g2.g2_zero_err:.3f} ({g2.center} coincidences in "
              f"the center peak, {g2.side_mean:.1f} per side peak)" if g2 else
              "g2(0): no coincidences between the two APDs")
    print(f"{'line (eV)':>10} {'center':>6} {'charge':>6} {'FWHM (meV)':>10} {'p':>6} "
          f"{'phi (deg)':>14}")
    for ln in result.lines:
        pol = ln.polarization
        p = f"{pol.p:6.2f}" if pol else "     -"
        phi = f"{pol.phi_deg:6.1f} ± {pol.phi_err_deg:4.1f}" if pol else "             -"
        doubt = f"  uncertain: {'; '.join(ln.uncertain)}" if ln.uncertain else ""
        print(f"{ln.zpl_ev:10.4f} {ln.center:>6} {ln.charge:>6} {ln.fwhm_mev:10.2f} {p} "
              f"{phi:>14}{doubt}")
    print(f"{'state':>5} {'share':>6} {'kcps':>6}  {'configuration':<16} lifetimes (ns)")
    for st in result.state_results:
        taus = ", ".join(f"{t:.3g}" for t in st.decay.taus_ns) if st.decay else "-"
        config = "/".join(result.states.names(st.id))
        print(f"{st.id:>5} {st.fraction:6.0%} {st.count_rate_cps / 1e3:6.1f}  {config:<16} "
              f"{taus}")
    kinds = Counter(j.kind for j in result.jumps)
    both = sum(1 for j in result.jumps if len(j.centers) > 1)
    print(f"jumps: {len(result.jumps)} ({both} of two centers at once): "
          + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    for p in written:
        print(f"wrote {p}")
    return 0
