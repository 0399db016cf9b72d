"""Edinburgh Instruments EPL-475 picosecond pulsed diode laser: front-panel settings only.

No public remote-control protocol for the EPL series was found (see ``HARDWARE.md``), so this
driver does not pretend to have one: it records the settings made at the laser's front panel, as
given in the configuration, so that they are logged and written into every file. Asking for a
different setting raises :class:`NotSupportedError` naming the front-panel value.
"""

from __future__ import annotations

import logging
import math

from drivers.interfaces import (
    Identity,
    LaserStatus,
    NotConnectedError,
    NotSupportedError,
    PulsedLaser,
)

__all__ = ["EplLaser", "front_panel_only"]

log = logging.getLogger(__name__)


def front_panel_only(instrument: str, what: str, asked: str, panel: str) -> NotSupportedError:
    """The refusal of a laser without remote control asked for another ``what`` than its
    front panel's (``asked`` and ``panel`` with their units)."""
    return NotSupportedError(
        instrument,
        f"front panel only (no remote control): cannot set {what} to {asked}; set it at the "
        f"front panel and in the configuration (now {panel})",
    )


class EplLaser(PulsedLaser):
    """An EPL-475 run from its front panel.

    Parameters are the front-panel settings: ``repetition_rate_hz`` (Hz), ``power_nw`` (average
    power at the sample, nW, as measured by the user), ``wavelength_nm`` (nm), ``emission_on``
    (whether the user switched emission on), ``serial`` (the laser's serial, for the record).
    """

    remote_control = False

    def __init__(
        self,
        repetition_rate_hz: float,
        power_nw: float,
        wavelength_nm: float = 475.0,
        emission_on: bool = True,
        serial: str = "",
    ) -> None:
        self._rate_hz = float(repetition_rate_hz)
        self._power_nw = float(power_nw)
        self._wavelength_nm = float(wavelength_nm)
        self._emission_on = emission_on
        self._serial = serial
        self._connected = False

    def connect(self) -> None:
        if not self._connected:
            log.info(
                "laser: EPL-475 has no remote control; using front-panel settings %g Hz, %g nW",
                self._rate_hz, self._power_nw,
            )
        self._connected = True

    def close(self) -> None:
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    def _check(self) -> None:
        if not self._connected:
            raise NotConnectedError(self.name, "not connected (call connect() first)")

    def _refuse(self, what: str, asked: str, panel: str) -> NotSupportedError:
        return front_panel_only(self.name, what, asked, panel)

    def identity(self) -> Identity:
        return Identity(
            vendor="Edinburgh Instruments", model="EPL-475", serial=self._serial,
            firmware="front panel (no remote interface)",
        )

    def repetition_rate_hz(self) -> float:
        """Pulse repetition rate (Hz), as set at the front panel."""
        self._check()
        return self._rate_hz

    def set_repetition_rate_hz(self, rate_hz: float) -> None:
        """Accepts only the front-panel rate (Hz); anything else raises NotSupportedError."""
        self._check()
        if not math.isclose(rate_hz, self._rate_hz, rel_tol=1e-9):
            raise self._refuse("the repetition rate", f"{rate_hz:g} Hz", f"{self._rate_hz:g} Hz")

    def power_nw(self) -> float:
        """Average power at the sample (nW), as configured."""
        self._check()
        return self._power_nw

    def set_power_nw(self, power_nw: float) -> None:
        """Accepts only the configured power (nW); anything else raises NotSupportedError."""
        self._check()
        if not math.isclose(power_nw, self._power_nw, rel_tol=1e-9):
            raise self._refuse("the power", f"{power_nw:g} nW", f"{self._power_nw:g} nW")

    def wavelength_nm(self) -> float:
        """Laser wavelength (nm)."""
        return self._wavelength_nm

    def emission_on(self) -> bool:
        """Whether emission was switched on at the front panel (as configured)."""
        self._check()
        return self._emission_on

    def set_emission(self, on: bool) -> None:
        """Accepts only the front-panel emission state; anything else raises NotSupportedError."""
        self._check()
        if on != self._emission_on:
            state = "on" if on else "off"
            raise self._refuse("emission", state, "on" if self._emission_on else "off")

    def status(self) -> LaserStatus:
        self._check()
        return LaserStatus(
            emission_on=self._emission_on, repetition_rate_hz=self._rate_hz,
            power_nw=self._power_nw, wavelength_nm=self._wavelength_nm,
        )
