"""NKT Photonics PiLas pulsed diode laser: remote emission, repetition rate and power.

The serial protocol lives in :mod:`drivers.pilas_protocol` (pymeasure declarations), imported at
connect time so this module imports without pymeasure. It rests on third-party code only (no NKT
manual was found); so do its limits, :data:`drivers.limits.PILAS`. Power at the sample is mapped
linearly onto the controller's per-mille tuning with ``full_power_nw``, the power measured at the
sample at ``tune = 1000``: calibrate it with a power meter, the mapping is only as good as that
number.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

from drivers._sdk import import_sdk, require
from drivers.interfaces import (
    Identity,
    InstrumentError,
    InstrumentTimeoutError,
    LaserStatus,
    PulsedLaser,
    SettingRejectedError,
)
from drivers.limits import PILAS

__all__ = ["PILAS_BAUD_RATE", "PiLasLaser"]

log = logging.getLogger(__name__)

PILAS_BAUD_RATE = 19200


class PiLasLaser(PulsedLaser):
    """A PiLas on a serial port.

    Parameters: ``port`` (e.g. ``"COM4"`` or ``"/dev/ttyUSB0"``), ``full_power_nw`` (average power
    at the sample at full tuning, nW), ``wavelength_nm`` (used if the controller does not report
    its center wavelength), ``timeout_s`` (serial read timeout, s), ``adapter`` (a ready pymeasure
    adapter, instead of opening ``port``).
    """

    remote_control = True

    def __init__(
        self,
        port: str,
        full_power_nw: float,
        wavelength_nm: float = 475.0,
        timeout_s: float = 2.0,
        adapter: Any = None,
    ) -> None:
        self.port = port
        self.full_power_nw = float(full_power_nw)
        self._wavelength_nm = float(wavelength_nm)
        self.timeout_s = timeout_s
        self._adapter = adapter
        self._inst: Any = None
        self._info: dict[str, str] = {}

    @contextlib.contextmanager
    def _io(self, what: str) -> Iterator[Any]:
        """Run PiLas I/O, turning protocol, serial and timeout failures into InstrumentError."""
        inst = require(self.name, self._inst)
        protocol = import_sdk(self.name, "drivers.pilas_protocol", "install pymeasure")
        try:
            yield inst
        except protocol.PiLasProtocolError as exc:
            if "no reply" in str(exc):
                raise InstrumentTimeoutError(
                    self.name, f"{what}: no answer within {self.timeout_s:g} s ({exc})"
                ) from exc
            raise InstrumentError(self.name, f"{what}: {exc}") from exc
        except (OSError, ValueError) as exc:
            raise InstrumentError(self.name, f"{what} failed: {exc}") from exc

    def connect(self) -> None:
        if self._inst is not None:
            return
        protocol = import_sdk(self.name, "drivers.pilas_protocol", "install pymeasure")
        adapter = self._adapter
        if adapter is None:
            if not self.port:
                raise InstrumentError(self.name, "no serial port given: set laser.port")
            adapters = import_sdk(self.name, "pymeasure.adapters", "install pymeasure")
            try:
                adapter = adapters.SerialAdapter(
                    self.port, baudrate=PILAS_BAUD_RATE, timeout=self.timeout_s,
                    write_termination="\r\n", read_termination="\n",
                )
            except OSError as exc:
                raise InstrumentError(
                    self.name, f"cannot open serial port {self.port}: {exc}"
                ) from exc
        self._inst = protocol.PiLasInstrument(adapter)
        try:
            with self._io("reading its identity") as inst:
                self._info = inst.version_info()
        except InstrumentError:
            self.close()
            raise
        log.info("laser: PiLas %s connected", self._info.get("controller serial", "?"))

    def close(self) -> None:
        inst, self._inst = self._inst, None
        if inst is not None:
            try:
                inst.adapter.close()
            except OSError as exc:
                log.warning("laser: closing the serial port failed: %s", exc)

    @property
    def is_connected(self) -> bool:
        return self._inst is not None

    def identity(self) -> Identity:
        require(self.name, self._inst)
        return Identity(
            vendor="NKT Photonics", model="PiLas",
            serial=self._info.get("controller serial", ""),
            firmware=self._info.get("software version", ""),
        )

    def repetition_rate_hz(self) -> float:
        """Internal repetition rate (Hz)."""
        with self._io("reading the repetition rate") as inst:
            return float(inst.frequency_hz)

    def set_repetition_rate_hz(self, rate_hz: float) -> None:
        """Set the internal repetition rate (Hz), within :data:`drivers.limits.PILAS`."""
        PILAS.repetition_rate_hz.check(self.name, rate_hz)
        with self._io(f"setting the repetition rate to {rate_hz:g} Hz") as inst:
            inst.frequency_hz = rate_hz

    def power_nw(self) -> float:
        """Average power at the sample (nW), from the tuning and ``full_power_nw``."""
        with self._io("reading the tuning") as inst:
            return float(inst.tune_permille) / 1000.0 * self.full_power_nw

    def set_power_nw(self, power_nw: float) -> None:
        """Set the average power at the sample (nW) through the per-mille tuning."""
        PILAS.power_nw.check(self.name, power_nw)
        if not 0 <= power_nw <= self.full_power_nw:
            raise SettingRejectedError(
                self.name,
                f"power {power_nw:g} nW is outside 0-{self.full_power_nw:g} nW (full_power_nw)",
            )
        with self._io(f"setting the power to {power_nw:g} nW") as inst:
            inst.tune_manual = True
            inst.tune_permille = power_nw / self.full_power_nw * 1000.0

    def wavelength_nm(self) -> float:
        """Center wavelength (nm): the controller's if it reports one, else the configured."""
        reported = re.match(r"\s*([\d.]+)\s*nm", self._info.get("center wavelength", ""))
        return float(reported.group(1)) if reported else self._wavelength_nm

    def emission_on(self) -> bool:
        with self._io("reading the emission state") as inst:
            return bool(inst.emission_enabled)

    def set_emission(self, on: bool) -> None:
        with self._io(f"switching emission {'on' if on else 'off'}") as inst:
            inst.emission_enabled = on

    def diode_temperature_ok(self) -> bool:
        """Whether the controller reports the laser diode's temperature as in range."""
        with self._io("reading the diode temperature state") as inst:
            return bool(inst.diode_temperature_ok)

    def status(self) -> LaserStatus:
        return LaserStatus(
            emission_on=self.emission_on(), repetition_rate_hz=self.repetition_rate_hz(),
            power_nw=self.power_nw(), wavelength_nm=self.wavelength_nm(),
        )
