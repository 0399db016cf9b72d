"""``cryoscope devices``: connect to each instrument in turn and report who it is and its state.

:func:`check_devices` is the library part (it logs, never prints); :func:`register` adds the
sub-command to the CLI, whose handler prints one block per instrument and exits non-zero if any
instrument failed. Every instrument is checked in a worker thread with a deadline, so a vendor
call that hangs costs ``timeout_s`` and is reported, instead of hanging the command.
"""

from __future__ import annotations

import argparse
import enum
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryoscope.config import Backend, Config, ConfigError, load_config
from drivers.interfaces import Identity, Instrument, InstrumentError

__all__ = ["DEFAULT_TIMEOUT_S", "DeviceReport", "check_devices", "default_lab_config", "register"]

log = logging.getLogger(__name__)

#: Longest one instrument may take to connect, identify itself and report its status (s).
DEFAULT_TIMEOUT_S = 60.0

Builder = Callable[[], Instrument]


@dataclass(frozen=True, slots=True)
class DeviceReport:
    """The outcome of checking one instrument. ``error`` is one line (empty when ``ok``)."""

    instrument: str
    ok: bool
    identity: Identity | None = None
    status: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def _builders(config: Config) -> dict[str, Builder]:
    if config.rig.backend is Backend.HARDWARE:
        from cryoscope.hardware_rig import BUILDERS

        return {name: (lambda build=build: build(config)) for name, build in BUILDERS.items()}
    from cryoscope.rig import build_rig

    rig = build_rig(config)
    return {name: (lambda inst=inst: inst) for name, inst in rig.instruments().items()}


def _check(name: str, build: Builder, self_test: bool) -> DeviceReport:
    instrument: Instrument | None = None
    try:
        instrument = build()
        instrument.connect()
        identity = instrument.identity()
        status = instrument.status().as_dict()
        test = getattr(instrument, "self_test", None)
        if self_test and callable(test):
            rates: dict[int, float] = test()
            status.update({f"test_rate_hz_{channel}": rate for channel, rate in rates.items()})
            dead = [channel for channel, rate in rates.items() if rate <= 0]
            if dead:
                return DeviceReport(name, False, identity, status, error=(
                    f"{name}: self-test: no test-signal counts on input(s) "
                    f"{', '.join(map(str, dead))}"))
        return DeviceReport(name, True, identity, status)
    except InstrumentError as exc:
        return DeviceReport(name, False, error=str(exc))
    except ConfigError as exc:
        return DeviceReport(name, False, error=f"{name}: configuration: {exc}")
    except Exception as exc:
        log.debug("%s: unexpected failure", name, exc_info=True)
        return DeviceReport(name, False, error=f"{name}: unexpected {type(exc).__name__}: {exc}")
    finally:
        if instrument is not None:
            try:
                instrument.close()
            except Exception as exc:
                log.warning("%s: close failed: %s", name, exc)


def _check_with_deadline(name: str, build: Builder, timeout_s: float,
                         self_test: bool) -> DeviceReport:
    reports: list[DeviceReport] = []
    worker = threading.Thread(target=lambda: reports.append(_check(name, build, self_test)),
                              name=f"check-{name}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if reports:
        return reports[0]
    return DeviceReport(
        name, False,
        error=f"{name}: no answer within {timeout_s:g} s (connect or status hung); check that "
        "it is on and connected, and that no other program holds it",
    )


def check_devices(config: Config, timeout_s: float = DEFAULT_TIMEOUT_S,
                  self_test: bool = False) -> list[DeviceReport]:
    """Connect to each instrument of ``config`` in turn, read identity and status, close it.

    Never raises for an instrument's failure: each becomes a report with ``ok = False`` and the
    reason in one line. ``timeout_s`` bounds each instrument (s). With ``self_test``, an
    instrument that has a ``self_test()`` (the time tagger: its inputs on the internal test
    signal) runs it; the measured rates join the status as ``test_rate_hz_<input>``.
    """
    try:
        builders = _builders(config)
    except ConfigError as exc:
        return [DeviceReport("rig", False, error=f"rig: configuration: {exc}")]
    reports = []
    for name, build in builders.items():
        log.info("checking %s", name)
        report = _check_with_deadline(name, build, timeout_s, self_test)
        if not report.ok:
            log.info("%s", report.error)
        reports.append(report)
    return reports


def default_lab_config() -> Path:
    """``config/lab.toml`` of the source tree."""
    return Path(__file__).resolve().parent.parent / "config" / "lab.toml"


# ---------------------------------------------------------------------------------------------
# CLI


def _shown(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _run(args: argparse.Namespace) -> int:
    path = args.config or default_lab_config()
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"cryoscope: error: {exc}", file=sys.stderr)
        return 2
    print(f"checking the instruments of {path} (backend {config.rig.backend.value})")
    reports = check_devices(config, timeout_s=args.timeout, self_test=args.self_test)
    for report in reports:
        if report.ok and report.identity is not None:
            who = report.identity
            print(f"{report.instrument:<13} OK    {who.vendor} {who.model}, serial "
                  f"{who.serial or '-'}, firmware {who.firmware or '-'}")
            state = "  ".join(f"{k}={_shown(v)}" for k, v in report.status.items())
            print(f"{'':<13}       {state}")
        else:
            print(f"{report.instrument:<13} FAIL  {report.error}")
            if report.status:
                state = "  ".join(f"{k}={_shown(v)}" for k, v in report.status.items())
                print(f"{'':<13}       {state}")
    failed = [r.instrument for r in reports if not r.ok]
    print(f"{len(reports) - len(failed)} of {len(reports)} instruments OK"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def register(subparsers: Any) -> None:
    """Add ``cryoscope devices [--config PATH] [--timeout S] [--self-test]`` to the CLI."""
    parser = subparsers.add_parser(
        "devices", help="connect to each instrument and show its identity and status",
        description="Connect to each instrument in turn; print its identity and status, or why "
        "it failed. Exits 1 if any instrument failed.",
    )
    parser.add_argument("--config", help="configuration file (default: config/lab.toml)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"seconds per instrument (default {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--self-test", action="store_true",
                        help="also run the time tagger's test-signal self-test")
    parser.set_defaults(handler=_run)
