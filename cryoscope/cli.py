"""The ``cryoscope`` command line. Only this layer prints; the library logs.

Exit codes: 0 success, 1 a run or instrument failed, 2 bad input (one line, no traceback),
130 interrupted (128 + the signal's number for SIGTERM and SIGHUP).

Log records reach the console one line each (tracebacks go to the run log ``<name>.log`` next to
the output file only).
"""

from __future__ import annotations

import argparse
import enum
import logging
import signal
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from cryoscope import __version__

if TYPE_CHECKING:  # the heavy modules are imported when a command runs, so that Ctrl-C while
    # they load is the one-line "interrupted" of main(), not a traceback
    from cryoscope.acquisition import RunControl, RunEvent, RunResult

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
        from cryoscope.acquisition import Progress

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


_SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


class _Signals:
    """SIGINT, SIGTERM and SIGHUP while a run lives: the first asks the run to stop (it ends
    ``aborted`` with the signal named), a second one during the acquisition interrupts it at
    once; while the run winds down and records its status, further signals are ignored so that
    the status is always recorded. Before the run starts a signal interrupts (no file is
    left)."""

    def __init__(self, control: RunControl) -> None:
        self.control = control
        self.running = False
        self.finishing = False
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _Signals:
        for sig in _SIGNAL_NAMES:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            # after a signal the command only reports and exits: a late repeat must not turn
            # into a traceback (or a death by signal) on the way out
            signal.signal(sig, signal.SIG_IGN if self.received is not None
                          else previous)  # type: ignore[arg-type]

    def listener(self, event: RunEvent) -> None:
        from cryoscope.acquisition import RunState, StateChanged

        if isinstance(event, StateChanged) and event.state is RunState.PREPARING:
            self.running = True  # the rig is open and the engine has the file
        if isinstance(event, StateChanged) and event.state is RunState.STOPPING:
            self.finishing = True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = _SIGNAL_NAMES.get(signal.Signals(signum), f"signal {signum}")
        if self.received is None:
            self.received = signum
        if self.finishing:
            print(f"cryoscope: {name}: finishing the file, please wait", file=sys.stderr)
            return
        if self.running and not self.control.stop_requested:
            print(f"cryoscope: {name}: stopping the run", file=sys.stderr)
            self.control.request_stop(f"interrupted ({name})")
            return
        if not self.control.stop_requested:
            self.control.request_stop(f"interrupted ({name})")
        raise KeyboardInterrupt

    @property
    def exit_code(self) -> int:
        if self.received in (None, signal.SIGINT):
            return EXIT_INTERRUPTED
        return 128 + int(self.received)  # type: ignore[arg-type]


def _summary(result: RunResult, wall_s: float) -> str:
    lines = [
        f"status      {result.state}" + (f" ({result.error})" if result.error else ""),
        f"frames      {result.frames}",
        f"photons     {result.photons}" + (f" (and {result.missed_photons} APD clicks missed "
                                          "in time-tagger overflows)"
                                          if result.missed_photons else ""),
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

    from cryoscope.acquisition import RunControl, RunState
    from cryoscope.api import measure_claimed
    from cryoscope.config import ConfigError, load_config
    from cryoscope.datafile import OutputClaim, OutputError, OutputExistsError, WriteError
    from cryoscope.engine import run_log_path
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
    except (ConfigError, UsageError) as exc:
        return _fail(str(exc))

    bar = _ProgressBar()
    started = time.monotonic()
    control = RunControl()
    # the handlers come first: a signal from the moment the output is claimed gives it up
    with _Signals(control) as signals:
        claim: OutputClaim | None = None
        try:
            try:
                claim = OutputClaim(out, args.overwrite)
                result = measure_claimed(config, plan, claim, control=control,
                                         listeners=[bar, signals.listener])
            finally:  # a run that began settled its claim; one stopped before gives it up
                if claim is not None:
                    claim.settle(began=False, succeeded=False)
        except OutputExistsError as exc:
            return _fail(f"{exc} (use --overwrite to replace it)")
        except OutputError as exc:
            return _fail(str(exc))
        except (InstrumentError, WriteError) as exc:
            bar.close()
            print(f"cryoscope: run failed: {exc} (details: {run_log_path(out)})",
                  file=sys.stderr)
            return EXIT_FAILED
        except KeyboardInterrupt:
            bar.close()
            print("cryoscope: interrupted", file=sys.stderr)
            return signals.exit_code
    bar.close()
    print(_summary(result, time.monotonic() - started))
    if result.state is RunState.ABORTED:
        return signals.exit_code if signals.received is not None else EXIT_INTERRUPTED
    return EXIT_OK if result.state is RunState.COMPLETE else EXIT_FAILED


# ---------------------------------------------------------------------------------------------
# info and config check


def _cmd_info(args: argparse.Namespace) -> int:
    import numpy as np

    from cryoscope.datafile import (
        MeasurementError,
        in_intervals,
        iter_tag_chunks,
        open_h5,
        open_measurement,
    )

    try:
        meas = open_measurement(args.file)
        with open_h5(args.file) as f:
            attrs = dict(f.attrs)
            ch = dict(f["channels"].attrs)
            tagger = dict(f["tagger"].attrs) if "tagger" in f else {}
            moves = f["stage/target_deg"].shape[0]
            seed = f["simulation"].attrs.get("seed") if "simulation" in f else None
            compression = f["tags/timestamp_ps"].compression
            first_tag_ps = f["tags/timestamp_ps"][0] if meas.n_tags else None
        apds = [meas.apd_channel] + ([meas.apd2_channel] if meas.apd2_channel else [])
        pauses = meas.pauses_ps
        apd = in_pauses = 0
        for t, c in iter_tag_chunks(args.file):
            clicks = np.isin(c, apds)
            apd += int(np.count_nonzero(clicks))
            in_pauses += int(np.count_nonzero(in_intervals(t[clicks], pauses)))
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
    paused = f", {in_pauses} of them during pauses" if pauses.shape[0] else ""
    print(f"tags          {meas.n_tags} ({apd} APD photons{paused})")
    if np.isfinite(meas.duration_s) and meas.duration_s > 0:
        outside = apd - in_pauses
        missed = (f" (with the {meas.missed_apd} clicks missed in tagger overflows; "
                  f"{outside / meas.duration_s / 1e3:.1f} kcps recorded)"
                  if meas.missed_apd else "")
        print(f"duration      {meas.duration_s:.1f} s   mean APD rate "
              f"{meas.count_rate_cps(outside) / 1e3:.1f} kcps{missed}"
              + (" (pauses left out)" if pauses.shape[0] else ""))
    if pauses.shape[0]:
        print(f"pauses        {pauses.shape[0]}")
    print(f"stage moves   {moves}")
    wl = meas.wavelength_nm
    print(f"spectrum      {wl.min():.2f}-{wl.max():.2f} nm over {wl.shape[0]} pixels")
    print("channels      " + ", ".join(f"{k}={v}" for k, v in ch.items()))
    overflows = meas.overflows_ps
    if overflows.shape[0] or tagger.get("overflows"):
        t0 = int(first_tag_ps) if first_tag_ps is not None else 0
        spans = ", ".join(f"{(a - t0) / 1e12:.3f}-{(b - t0) / 1e12:.3f} s"
                          for a, b in overflows.tolist())
        n_missed = sum(meas.missed_events.values())
        print(f"overflows     {overflows.shape[0]} of the time tagger (tags lost at "
              f"{spans or '?'} of the stream): {n_missed} tags missed, {meas.missed_apd} of "
              "them APD clicks")
    if seed is not None:
        print(f"simulation    seed {seed}")
    for key, value in meas.metadata.items():
        print(f"{key:<14}{value}")
    print(f"storage       {compression or 'uncompressed'}, "
          f"{Path(args.file).stat().st_size / 1e6:.1f} MB")
    return EXIT_OK


def _cmd_repair(args: argparse.Namespace) -> int:
    from cryoscope.datafile import MeasurementError, repair_file

    try:
        done = repair_file(args.file)
    except MeasurementError as exc:
        print(f"cryoscope: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    mark = "cleared the writer's open-for-write mark" if done.cleared_mark else \
        "no open-for-write mark"
    status = (f"status {done.status_before} -> {done.status}" if done.status != done.status_before
              else f"status {done.status}")
    print(f"{done.path}: {mark}; {status}")
    return EXIT_OK


def _cmd_config_check(args: argparse.Namespace) -> int:
    from cryoscope.config import ConfigError, load_config

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
    from cryoscope.config import ConfigError, default_config_path, load_config
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


#: The sub-commands of this module (no entry point needs loading for them).
BUILTIN_COMMANDS = frozenset({"run", "info", "repair", "config", "devices"})


class _OneLineFormatter(logging.Formatter):
    """Console log records on one line each: the traceback goes to the run log only."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f" ({' '.join(str(record.exc_info[1]).split())[:200]})"
        return f"{record.levelname} {record.name}: {text}"


def _setup_logging(verbose: bool) -> None:
    """One-line records on the console (WARNING, or INFO with ``-v``); the root logger passes
    INFO on, for the run log."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h.formatter, _OneLineFormatter)]:
        root.removeHandler(handler)
    if root.handlers:  # logging configured by the caller (a test runner): leave it
        return
    console = logging.StreamHandler()
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(_OneLineFormatter())
    root.addHandler(console)
    root.setLevel(logging.INFO)


def build_parser(plugins: bool | str = True) -> argparse.ArgumentParser:
    """The command line. ``plugins``: add every sub-command of the entry points (True), none
    (False), or only the one of this name (if there is one; else all)."""
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

    repair = sub.add_parser(
        "repair", help="make the file of a killed run open in plain HDF5",
        description="Clear the open-for-write mark a killed writer leaves (like h5clear -s) "
        "and, if the file still says status = running, record status = failed with an error "
        "saying that the writer died.")
    repair.add_argument("file")
    repair.set_defaults(handler=_cmd_repair)

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

    if plugins:
        entries = sorted(entry_points(group=COMMAND_ENTRY_POINTS), key=lambda e: e.name)
        named = [e for e in entries if e.name == plugins]
        for entry in named or entries:
            entry.load()(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((w for w in words if not w.startswith("-")), None)
    try:
        parser = build_parser(plugins=False if command in BUILTIN_COMMANDS else command or True)
        args = parser.parse_args(words)
        _setup_logging(args.verbose)
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("cryoscope: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
