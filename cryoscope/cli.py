"""The ``cryoscope`` command line. Only this layer prints; the library logs.

Exit codes: 0 success, 1 a run or instrument failed, 2 bad input (one line, no traceback),
130 interrupted.
"""

from __future__ import annotations

import argparse
import enum
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import NoReturn

from cryoscope import __version__
from cryoscope.acquisition import Progress, RunEvent, RunResult, RunState
from cryoscope.config import ConfigError, default_config_path, load_config

#: Entry-point group of the sub-commands other packages add (``register(subparsers)``), declared
#: in pyproject.toml: the analysis' ``analyze`` and the GUI's ``gui``.
COMMAND_ENTRY_POINTS = "cryoscope.commands"

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _fail(message: str) -> int:
    print(f"cryoscope: error: {message}", file=sys.stderr)
    return EXIT_USAGE


# ---------------------------------------------------------------------------------------------
# run


class _ProgressBar:
    """A one-line progress bar on stderr (a line per 10 % when not on a terminal)."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._last_decile = -1

    def __call__(self, event: RunEvent) -> None:
        if not isinstance(event, Progress) or event.frames_total == 0:
            return
        share = event.frames_done / event.frames_total
        width = 30
        bar = "#" * int(share * width) + "-" * (width - int(share * width))
        text = (f"[{bar}] {event.frames_done}/{event.frames_total} frames  "
                f"{event.count_rate_cps / 1e3:7.1f} kcps  waveplate {event.waveplate_deg:6.1f} deg"
                f"  {event.remaining_s:6.1f} s left")
        if self._tty:
            print("\r" + text, end="", file=sys.stderr, flush=True)
        elif int(share * 10) > self._last_decile:
            self._last_decile = int(share * 10)
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._tty:
            print(file=sys.stderr)


def _summary(result: RunResult, wall_s: float) -> str:
    lines = [
        f"status      {result.state}" + (f" ({result.error})" if result.error else ""),
        f"frames      {result.frames}",
        f"photons     {result.photons}",
        f"count rate  {result.count_rate_cps / 1e3:.1f} kcps (APD)",
        f"duration    {result.duration_s:.1f} s measured in {wall_s:.1f} s",
        f"file        {result.path}",
    ]
    return "\n".join(lines)


def _default_out() -> Path:
    from cryoscope.datafile import now_iso

    stamp = now_iso().replace(":", "").replace("-", "").replace("+0000", "")
    return Path(f"cryoscope-{stamp}.h5")


def _plan_values(args: argparse.Namespace) -> dict[str, object]:
    """Plan parameters from the named options and ``--param KEY=VALUE`` (TOML values)."""
    import tomllib

    values: dict[str, object] = {key: value for key, value in (
        ("frames", args.frames), ("exposure_s", args.exposure),
        ("waveplate_step_deg", args.step_deg), ("waveplate_dwell_s", args.dwell),
    ) if value is not None}
    for item in args.param:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param wants KEY=VALUE, got {item!r}")
        try:
            values[key.strip()] = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            values[key.strip()] = text.strip()
    return values


def _cmd_run(args: argparse.Namespace) -> int:
    import time

    from cryoscope.backends import open_rig
    from cryoscope.datafile import OutputClaim, OutputError, OutputExistsError
    from cryoscope.engine import run_plan
    from cryoscope.plans import make_plan
    from drivers.interfaces import InstrumentError

    try:
        config = load_config(args.config)
        if args.seed is not None:
            config = config.with_overrides("simulation", seed=args.seed)
        measured = {key: value for key in ("sample", "sample_type", "particle", "position",
                                           "operator", "notes")
                    if (value := getattr(args, key)) is not None}
        if measured:
            config = config.with_overrides("measurement", **measured)
        plan = make_plan(args.plan, config, **_plan_values(args))
        out = Path(args.out) if args.out else _default_out()
        claim = OutputClaim(out, args.overwrite)
    except OutputExistsError as exc:
        return _fail(f"{exc} (use --overwrite to replace it)")
    except (ConfigError, UsageError, OutputError) as exc:
        return _fail(str(exc))

    bar = _ProgressBar()
    started = time.monotonic()
    try:
        try:
            rig = open_rig(config)
        except BaseException:
            claim.settle(began=False, succeeded=False)
            raise
        with rig:
            result = run_plan(rig, plan, claim, listeners=[bar])
    except InstrumentError as exc:
        bar.close()
        print(f"cryoscope: run failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        bar.close()
        print("cryoscope: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    bar.close()
    print(_summary(result, time.monotonic() - started))
    if result.state is RunState.ABORTED:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.state is RunState.COMPLETE else EXIT_FAILED


# ---------------------------------------------------------------------------------------------
# info and config check


def _cmd_info(args: argparse.Namespace) -> int:
    import numpy as np

    from cryoscope.datafile import MeasurementError, iter_tag_chunks, open_h5, open_measurement

    try:
        meas = open_measurement(args.file)
        with open_h5(args.file) as f:
            attrs = dict(f.attrs)
            ch = dict(f["channels"].attrs)
            tagger = dict(f["tagger"].attrs) if "tagger" in f else {}
            moves = f["stage/target_deg"].shape[0]
            seed = f["simulation"].attrs.get("seed") if "simulation" in f else None
            compression = f["tags/timestamp_ps"].compression
        apds = [meas.apd_channel] + ([meas.apd2_channel] if meas.apd2_channel else [])
        apd = sum(int(np.count_nonzero(np.isin(c, apds)))
                  for _, c in iter_tag_chunks(args.file))
    except MeasurementError as exc:
        return _fail(str(exc))
    print(f"file          {args.file}")
    print(f"format        {attrs['format']} v{attrs['format_version']} "
          f"(written by cryoscope {attrs.get('software_version', '?')})")
    print(f"created       {attrs.get('created', '?')}   finished {attrs.get('finished', '-')}")
    print(f"status        {meas.status}" + (f": {meas.error}" if meas.error else ""))
    print(f"rig           {attrs.get('rig_backend', '?')}")
    print("plan          " + ", ".join(f"{k}={v}" for k, v in meas.plan.items()))
    names = ", ".join(meas.track_names) if meas.readout == "tracks" else "image"
    print(f"frames        {meas.n_frames} x {list(meas.frame_shape)} ({names})")
    if meas.lost_frames.size:
        print(f"lost frames   {meas.lost_frames.size} (exposures "
              f"{', '.join(map(str, meas.lost_frames.tolist()))})")
    print(f"tags          {meas.n_tags} ({apd} APD photons)")
    if np.isfinite(meas.duration_s) and meas.duration_s > 0:
        print(f"duration      {meas.duration_s:.1f} s   mean APD rate "
              f"{apd / meas.duration_s / 1e3:.1f} kcps")
    pauses = meas.pauses_ps
    if pauses.shape[0]:
        print(f"pauses        {pauses.shape[0]}")
    print(f"stage moves   {moves}")
    wl = meas.wavelength_nm
    print(f"spectrum      {wl.min():.2f}-{wl.max():.2f} nm over {wl.shape[0]} pixels")
    print("channels      " + ", ".join(f"{k}={v}" for k, v in ch.items()))
    if tagger.get("overflows"):
        print(f"overflows     {tagger['overflows']} ({tagger.get('missed_events', 0)} tags "
              "missed)")
    if seed is not None:
        print(f"simulation    seed {seed}")
    for key, value in meas.metadata.items():
        print(f"{key:<14}{value}")
    print(f"storage       {compression or 'uncompressed'}, "
          f"{Path(args.file).stat().st_size / 1e6:.1f} MB")
    return EXIT_OK


def _cmd_config_check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.path)
    except ConfigError as exc:
        return _fail(str(exc))
    emitters = len(config.sample.emitters)
    print(f"{args.path}: valid ({config.rig.backend} rig, {config.plan.frames} frames x "
          f"{config.plan.exposure_s} s, {emitters} emitter{'s' if emitters > 1 else ''})")
    return EXIT_OK


def _shown(value: object) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _cmd_devices(args: argparse.Namespace) -> int:
    from cryoscope.devices import check_devices

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _fail(str(exc))
    print(f"checking the instruments of {args.config or default_config_path()} "
          f"(backend {config.rig.backend.value})")
    reports = check_devices(config, timeout_s=args.timeout, self_test=args.self_test)
    for report in reports:
        if report.ok and report.identity is not None:
            who = report.identity
            print(f"{report.instrument:<13} OK    {who.vendor} {who.model}, serial "
                  f"{who.serial or '-'}, firmware {who.firmware or '-'}")
        else:
            print(f"{report.instrument:<13} FAIL  {report.error}")
        if report.status:
            state = "  ".join(f"{k}={_shown(v)}" for k, v in report.status.items())
            print(f"{'':<13}       {state}")
    failed = [r.instrument for r in reports if not r.ok]
    print(f"{len(reports) - len(failed)} of {len(reports)} instruments OK"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return EXIT_FAILED if failed else EXIT_OK


# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cryoscope", description="Control and analysis of a cryogenic "
                     "single-particle fluorescence microscope.")
    parser.add_argument("--version", action="version", version=f"cryoscope {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a plan (default: the polarization series, the "
                         "paper's measurement)")
    run.add_argument("--config", help="configuration file (default: config/simulated.toml)")
    run.add_argument("--plan", default="polarization_series",
                     help="the plan: polarization_series (default) or time_series")
    run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="a plan parameter, e.g. --param waveplate_deg=22.5 (repeatable)")
    run.add_argument("--out", help="output HDF5 file (default: cryoscope-<time>.h5)")
    run.add_argument("--frames", type=int, help="number of camera frames")
    run.add_argument("--exposure", type=float, help="exposure per frame (s)")
    run.add_argument("--step-deg", type=float, help="waveplate step (deg)")
    run.add_argument("--dwell", type=float, help="time between waveplate steps (s)")
    run.add_argument("--seed", type=int, help="simulation seed")
    run.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    for option, what in (("sample", "sample name"), ("particle", "particle id"),
                         ("position", "position on the sample"), ("operator", "who measures"),
                         ("notes", "free notes")):
        run.add_argument(f"--{option}", help=f"{what} (the file's /measurement group)")
    run.add_argument("--sample-type", choices=["monomer", "molecule", "unknown"],
                     help="single dot or dot molecule (the file's /measurement group)")
    run.set_defaults(handler=_cmd_run)

    info = sub.add_parser("info", help="describe a measurement file")
    info.add_argument("file")
    info.set_defaults(handler=_cmd_info)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True, parser_class=_Parser)
    check = config_sub.add_parser("check", help="validate a configuration file")
    check.add_argument("path")
    check.set_defaults(handler=_cmd_config_check)

    from cryoscope.devices import DEFAULT_TIMEOUT_S

    devices = sub.add_parser(
        "devices", help="connect to each instrument and show its identity and status",
        description="Connect to each instrument in turn; print its identity and status, or why "
        "it failed. Exits 1 if any instrument failed.")
    devices.add_argument("--config", help="configuration file (default: config/simulated.toml; "
                         "the real rig: config/lab.toml)")
    devices.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                         help=f"seconds per instrument (default {DEFAULT_TIMEOUT_S:g})")
    devices.add_argument("--self-test", action="store_true",
                         help="also run the time tagger's test-signal self-test")
    devices.set_defaults(handler=_cmd_devices)

    for entry in sorted(entry_points(group=COMMAND_ENTRY_POINTS), key=lambda e: e.name):
        entry.load()(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
