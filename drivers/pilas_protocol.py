"""NKT Photonics PiLas picosecond diode laser: its ASCII serial protocol as pymeasure declarations.

The protocol (19200 baud, one command per line): ``ld=0|1`` emission, ``tm=0|1`` tune mode
(0 = manual), ``tune=<0..1000>`` power in per mille, ``f=<Hz>`` internal repetition rate,
``version?`` identity (eight ``key: value`` lines). Every write is answered ``done``. Queries
(``ld?``, ``tune?``, ``f?``, ``ldtemp?``) answer ``<label>: <value> [unit]``; ``tune?`` answers
in percent. No NKT manual was found: the whole command set rests on third-party code only, the
public driver and emulator in hephy-dd/comet (``comet/driver/nkt/pilas.py``,
``comet/emulator/nkt/pilas.py``), which also give the repetition-rate range, 25 Hz-40 MHz
(:data:`drivers.limits.PILAS`).

This module imports pymeasure at import time; :mod:`drivers.pilas` imports it lazily.
"""

from __future__ import annotations

from typing import Any

from pymeasure.instruments import Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from drivers.limits import PILAS

__all__ = ["VERSION_LINES", "PiLasInstrument", "PiLasProtocolError", "reply_value"]

#: Number of lines the controller sends in reply to ``version?``.
VERSION_LINES = 8


class PiLasProtocolError(Exception):
    """The controller answered something unexpected (or nothing)."""


def reply_value(reply: str) -> str:
    """The value of a ``<label>: <value> [unit]`` reply, unit removed (``"a: 50 %"`` -> "50")."""
    if not reply.strip():
        raise PiLasProtocolError("no reply (timeout)")
    value = reply.split(":", 1)[-1].strip()
    for unit in ("%", "Hz"):
        value = value.removesuffix(unit).strip()
    return value


class PiLasInstrument(Instrument):
    """The PiLas controller. Construct with a pymeasure adapter (no I/O in the constructor)."""

    def __init__(self, adapter: Any, name: str = "NKT PiLas", **kwargs: Any) -> None:
        super().__init__(adapter, name, includeSCPI=False, **kwargs)

    emission_enabled = Instrument.control(
        "ld?", "ld=%d",
        """Laser emission (bool): ``ld=1`` on, ``ld=0`` off.""",
        validator=strict_discrete_set, values=(False, True), set_process=int,
        preprocess_reply=reply_value, cast=str, get_process=lambda v: v == "on",
        check_set_errors=True,
    )

    tune_manual = Instrument.setting(
        "tm=%d",
        """Tune mode: True selects manual tuning (``tm=0``), needed before ``tune=``.""",
        validator=strict_discrete_set, values=(False, True), set_process=lambda v: int(not v),
        check_set_errors=True,
    )

    tune_permille = Instrument.control(
        "tune?", "tune=%d",
        """Power tuning in per mille of the maximum (0-1000); the controller reports percent.""",
        validator=strict_range, values=(0, 1000), set_process=lambda v: round(v),
        preprocess_reply=reply_value, get_process=lambda percent: percent * 10.0,
        check_set_errors=True,
    )

    frequency_hz = Instrument.control(
        "f?", "f=%d",
        """Internal repetition rate (Hz), 25 Hz-40 MHz (:data:`drivers.limits.PILAS`).""",
        validator=strict_range,
        values=(PILAS.repetition_rate_hz.low, PILAS.repetition_rate_hz.high),
        set_process=lambda v: round(v),
        preprocess_reply=reply_value, check_set_errors=True,
    )

    diode_temperature_ok = Instrument.measurement(
        "ldtemp?",
        """Whether the laser diode's temperature is in range (``LD temp.: good|bad``).""",
        preprocess_reply=reply_value, cast=str, get_process=lambda v: v == "good",
    )

    def check_set_errors(self) -> list[str]:
        """Read the controller's answer to a write; anything but ``done`` raises."""
        reply = self.read().strip()
        if reply != "done":
            raise PiLasProtocolError(f"expected 'done', got {reply!r}" if reply else "no reply")
        return []

    def version_info(self) -> dict[str, str]:
        """The ``version?`` lines as ``{key: value}`` (e.g. ``"controller serial"``)."""
        self.write("version?")
        info: dict[str, str] = {}
        for _ in range(VERSION_LINES):
            line = self.read().strip()
            if not line:
                raise PiLasProtocolError("no reply to version? (timeout)")
            key, _, value = line.partition(":")
            info[key.strip()] = value.strip()
        return info
