"""``cryoscope analyze PATH... [--out DIR]``: summary.json, PNG figures and a short table for one
file; for several (files, folders, globs) each file's report in ``DIR/<name>/``, the population
tables and ``population.png``, in parallel on Dask (``docs/population.md``)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the analysis stack is imported when a command runs, not for --help
    from cryoscope.analysis.batch import FileOutcome

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``analyze`` sub-command to the main CLI's sub-parsers."""
    parser = subparsers.add_parser(
        "analyze", help="analyze measurement files: summary.json and figures; several in "
                        "parallel with the population tables and Fig. 3",
        description="Analyze cryoscope measurement files: spectral states, lifetimes, lines, "
                    "polarization; writes DIR/summary.json and PNG figures. Several files "
                    "(or folders, or globs): DIR/<name>/ per file, particles/lines/states.parquet "
                    "and population.png, in parallel on Dask.")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="measurement files (.h5), folders of them or glob patterns")
    parser.add_argument("--out", help="output directory (default: FILE without suffix + "
                        "_analysis for one file, population_analysis for several)")
    parser.add_argument("--workers", type=int,
                        help="several files: local Dask worker processes (default: one per core)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="several files: use the running Dask scheduler at ADDRESS "
                             "(e.g. tcp://127.0.0.1:8786) instead of a local cluster")
    parser.add_argument("--force", action="store_true",
                        help="several files: analyze again files analyzed before")
    parser.add_argument("--bin-ms", type=float, default=10.0,
                        help="intensity-trace and FLID bin (ms, default 10)")
    parser.add_argument("--regions", metavar="LO:HI[,LO:HI...]",
                        help="energy range (eV) of each emission center, e.g. "
                             "2.125:2.16,2.10:2.125 (default: centers found automatically)")
    parser.add_argument("--jump-mev", type=float, default=2.0,
                        help="least peak shift between frames counted as a jump (meV, default 2)")
    parser.add_argument("--no-figures", action="store_true",
                        help="write summary.json only (several files: no per-file figures; the "
                             "tables and population.png are still written)")
    parser.set_defaults(handler=_run)


def _error(message: str) -> int:
    print(f"cryoscope analyze: error: {message}", file=sys.stderr)
    return 2


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    """``analyze_file`` keywords from the options; raises ValueError naming a bad one."""
    if args.bin_ms <= 0:
        raise ValueError(f"--bin-ms must be positive, got {args.bin_ms}")
    if args.jump_mev <= 0:
        raise ValueError(f"--jump-mev must be positive, got {args.jump_mev}")
    regions = None
    if args.regions is not None:
        from cryoscope.analysis.report import parse_regions

        try:
            regions = parse_regions(args.regions).tolist()
        except ValueError as exc:
            raise ValueError(f"--regions: {exc}") from None
    return {"bin_s": args.bin_ms / 1000.0, "tracking_regions_ev": regions,
            "jump_mev": args.jump_mev}


def _run(args: argparse.Namespace) -> int:
    try:
        args.parameters = _parameters(args)
    except ValueError as exc:
        return _error(str(exc))
    if args.workers is not None and args.workers < 1:
        return _error(f"--workers must be at least 1, got {args.workers}")
    single = len(args.paths) == 1 and Path(args.paths[0]).is_file()
    if single:
        return _run_one(Path(args.paths[0]), args)
    return _run_batch(args)


class _BatchProgress:
    """A one-line progress bar of the files on stderr (a line per file when not on a
    terminal)."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int, outcome: FileOutcome) -> None:
        width = 30
        filled = int(done / total * width)
        note = f"{outcome.name}: {outcome.status}"
        text = f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total} files  {note}"
        if self._tty:
            print(f"\r{text:<100}", end="", file=sys.stderr, flush=True)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._tty:
            print(file=sys.stderr)


def _run_batch(args: argparse.Namespace) -> int:
    from cryoscope.analysis.batch import (
        BatchInputError,
        analyze_batch,
        find_measurement_files,
        output_names,
    )

    try:
        files = find_measurement_files(args.paths)
        output_names(files)
    except BatchInputError as exc:
        return _error(str(exc))
    out = Path(args.out) if args.out else Path("population_analysis")
    if out.exists() and not out.is_dir():
        return _error(f"--out is not a folder: {out}")
    if not logging.getLogger().isEnabledFor(logging.INFO):
        import distributed  # noqa: F401  (it configures its loggers on import: quiet them)

        logging.getLogger("distributed").setLevel(logging.WARNING)
    bar = _BatchProgress()
    try:
        result = analyze_batch(files, out, workers=args.workers, scheduler=args.scheduler,
                               force=args.force, figures=not args.no_figures, progress=bar,
                               **args.parameters)
    except (OSError, ValueError) as exc:
        bar.close()
        return _error(f"cannot use the Dask scheduler {args.scheduler}: {exc}"
                      if args.scheduler else str(exc))
    bar.close()
    counts = {s: sum(o.status == s for o in result.outcomes) for s in ("done", "skipped",
                                                                         "failed")}
    print(f"{len(result.outcomes)} files: {counts['done']} analyzed, {counts['skipped']} "
          f"skipped (analyzed before; --force redoes them), {counts['failed']} failed")
    for path in result.outputs.values():
        print(f"wrote {path}")
    for o in result.failed:
        print(f"cryoscope analyze: failed: {o.path}: {o.error}", file=sys.stderr)
    return 1 if result.failed else 0


def _run_one(path: Path, args: argparse.Namespace) -> int:
    from cryoscope.datafile import MeasurementError, check_complete

    try:  # a damaged file fails before the analysis stack loads
        check_complete(path)
    except MeasurementError as exc:
        return _error(str(exc))
    from cryoscope.analysis.report import analyze_file
    from cryoscope.analysis.summary import write_summary

    out = Path(args.out) if args.out else path.with_name(path.stem + "_analysis")
    try:
        result = analyze_file(path, **args.parameters)
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
    meas = result.measurement
    if meas.overflows_ps.shape[0]:
        spans = ", ".join(f"{a / 1e12:.3f}-{b / 1e12:.3f} s" for a, b in meas.overflows_ps.tolist())
        print(f"tagger overflows: {meas.overflows_ps.shape[0]} (tagger time {spans}): "
              f"{sum(meas.missed_events.values())} tags missed, {meas.missed_apd} of them APD "
              "clicks")
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
        # p and φ that are not determined are not printed: the reason is among the doubts
        shown = pol if pol is not None and pol.determined else None
        p = f"{shown.p:6.2f}" if shown else "     -"
        phi = f"{shown.phi_deg:6.1f} ± {shown.phi_err_deg:4.1f}" if shown else "             -"
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
    for done in written:
        print(f"wrote {done}")
    return 0
