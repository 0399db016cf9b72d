"""Connect to each instrument in turn and report who it is and its state (``cryoscope devices``).

:func:`check_devices` is the library part (it logs, never prints); :func:`register` adds the
sub-command to the CLI, whose handler prints one block per instrument and exits non-zero if any
instrument failed. Every instrument is checked in a worker thread with a deadline, so a vendor
call that hangs costs ``timeout_s`` and is reported, instead of hanging the command.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from drivers.interfaces import Identity, Instrument, InstrumentError

if TYPE_CHECKING:
    from cryoscope.config import Config

__all__ = ["DEFAULT_TIMEOUT_S", "DeviceReport", "check_devices"]

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
    # the configuration (pydantic) is imported when used: the command line's parser reads
    # DEFAULT_TIMEOUT_S for every command
    from cryoscope.config import Backend

    if config.rig.backend is Backend.HARDWARE:
        from cryoscope.backends.hardware import BUILDERS

        return {name: functools.partial(build, config) for name, build in BUILDERS.items()}
    from cryoscope.backends import build_rig

    rig = build_rig(config)
    return {name: functools.partial(_same, inst) for name, inst in rig.instruments().items()}


def _same(instrument: Instrument) -> Instrument:
    return instrument


def _check(name: str, build: Builder, self_test: bool) -> DeviceReport:
    from cryoscope.config import ConfigError

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
    from cryoscope.config import ConfigError

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
