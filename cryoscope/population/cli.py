"""``cryoscope simulate-night`` and ``cryoscope export`` (``docs/population.md``); plugged into
the main CLI through the ``cryoscope.commands`` entry points."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register_export", "register_simulate_night"]


def _error(command: str, message: str) -> int:
    print(f"cryoscope {command}: error: {message}", file=sys.stderr)
    return 2


def register_simulate_night(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "simulate-night", help="measure a simulated population of particles, with its truth",
        description="Draw N particles from a population description, measure each on the "
                    "simulated rig into DIR/particle-NNN.h5 and write DIR/truth.parquet.")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--particles", type=int, required=True, help="number of particles")
    parser.add_argument("--config", help="population description (default: "
                        "config/population.toml)")
    parser.add_argument("--rig-config", help="simulated rig configuration (default: "
                        "config/simulated.toml)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.set_defaults(handler=_simulate_night)


def _simulate_night(args: argparse.Namespace) -> int:
    from cryoscope.config import Backend, ConfigError, load_config
    from cryoscope.night import load_population, simulate_night

    if args.particles < 1:
        return _error("simulate-night", f"--particles must be at least 1, got {args.particles}")
    try:
        population = load_population(args.config)
        rig = load_config(args.rig_config)
    except ConfigError as exc:
        return _error("simulate-night", str(exc))
    if rig.rig.backend is not Backend.SIMULATED:
        return _error("simulate-night", f"{args.rig_config}: not a simulated rig")

    def progress(done: int, total: int, path: Path) -> None:
        print(f"[{done}/{total}] {path}", file=sys.stderr, flush=True)

    try:
        truth = simulate_night(args.out, args.particles, population, seed=args.seed, config=rig,
                               overwrite=args.overwrite, progress=progress)
    except (FileExistsError, ConfigError) as exc:
        return _error("simulate-night", str(exc))
    counts = truth["sample_type"].value_counts().to_dict()
    print(f"{len(truth)} particles ({', '.join(f'{n} {k}s' for k, n in counts.items())}) in "
          f"{args.out}; truth in {Path(args.out) / 'truth.parquet'}")
    return 0


def register_export(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "export", help="export a measurement file to an open format (Photon-HDF5)",
        description="Write a measurement file as Photon-HDF5 (validated with phconvert): every "
                    "APD photon with its nanotime, exposures and waveplate moves as markers, "
                    "spectra and waveplate angles under /user.")
    parser.add_argument("file", help="measurement file (.h5)")
    parser.add_argument("--format", required=True, choices=["photon-hdf5"],
                        help="output format")
    parser.add_argument("--out", help="output file (default: FILE with suffix .photon.h5)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from cryoscope.datafile import MeasurementError
    from cryoscope.export import export_photon_hdf5

    try:
        out = export_photon_hdf5(args.file, args.out, overwrite=args.overwrite)
    except (MeasurementError, FileExistsError) as exc:
        return _error("export", str(exc))
    print(f"wrote {out}")
    return 0
