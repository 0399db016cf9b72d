"""Thorlabs PRM1-Z8 rotation mount on a KDC101 K-Cube, through pylablib ``Thorlabs.KinesisMotor``.

pylablib speaks the APT binary protocol (115200 baud, RTS/CTS) to the KDC101, either by the
controller's serial number (FTDI D2XX, needs ``pyft232``) or by a serial port path (on Linux the
kernel's ``ftdi_sio`` gives ``/dev/ttyUSB*``). At connect the KDC101's trigger port 1 is set to
``out_in_motion``, active high, so the time tagger sees every waveplate move, and trigger port 2 is
set explicitly to ``off``, active high: pylablib's ``setup_kcube_trigio`` fills a trigger it is
not given from a read-back that turns the polarity (1 = high, 2 = low) into a bool, so it would
write an active-low trigger 2 back as active high.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from drivers._sdk import import_sdk, require
from drivers.interfaces import (
    Identity,
    InstrumentError,
    InstrumentTimeoutError,
    RotationStage,
    SdkMissingError,
    StageStatus,
)
from drivers.limits import PRM1_Z8

__all__ = ["PRM1_Z8_SCALE", "TRIGGER_1", "TRIGGER_2", "KinesisRotationStage"]

log = logging.getLogger(__name__)

#: pylablib's stage name for the PRM1-Z8 (with the hyphen: "PRM1Z8" silently falls back to steps).
PRM1_Z8_SCALE = "PRM1-Z8"
#: KDC101 trigger setup at connect: (mode, polarity) of ports 1 and 2; polarity 1 = active high.
TRIGGER_1 = ("out_in_motion", 1)
TRIGGER_2 = ("off", 1)
_MOVING = ("moving_fw", "moving_bk", "jogging_fw", "jogging_bk", "active", "homing")
_INSTALL = "install pylablib-lightweight (the 'hardware' extra)"


class KinesisRotationStage(RotationStage):
    """A PRM1-Z8 on a KDC101.

    Parameters: ``conn`` (the KDC101's 8-digit serial number, or a serial port path such as
    ``/dev/ttyUSB0`` or ``COM5``), ``timeout_s`` (bound for the stop before closing, s),
    ``trigger_output`` (configure trigger 1 as "high while in motion" at connect).
    """

    def __init__(self, conn: str, timeout_s: float = 60.0, trigger_output: bool = True) -> None:
        self.conn = conn
        self.timeout_s = timeout_s
        self.trigger_output = trigger_output
        self._motor: Any = None
        self._thorlabs: Any = None
        self._errors: Any = None

    @contextlib.contextmanager
    def _mapped(self, what: str) -> Iterator[None]:
        """Turn pylablib's Thorlabs errors into InstrumentError subclasses."""
        errors = self._errors
        try:
            yield
        except errors.ThorlabsTimeoutError as exc:
            raise InstrumentTimeoutError(self.name, f"{what}: timed out") from exc
        except errors.ThorlabsBackendError as exc:
            raise InstrumentError(
                self.name,
                f"{what}: communication with the KDC101 ({self.conn}) failed: {exc}; check "
                "its USB cable and power",
            ) from exc
        except errors.ThorlabsError as exc:
            raise InstrumentError(self.name, f"{what}: {exc}") from exc

    def _dev(self) -> Any:
        return require(self.name, self._motor)

    def connect(self) -> None:
        if self._motor is not None:
            return
        if not self.conn:
            raise InstrumentError(
                self.name, "no KDC101 given: set stage.serial to its serial number or port"
            )
        self._thorlabs = import_sdk(self.name, "pylablib.devices.Thorlabs", _INSTALL)
        self._errors = import_sdk(self.name, "pylablib.devices.Thorlabs.base", _INSTALL)
        try:
            with self._mapped(f"opening the KDC101 {self.conn}"):
                self._motor = self._thorlabs.KinesisMotor(self.conn, scale=PRM1_Z8_SCALE)
        except ValueError as exc:
            if "ft232" in str(exc):
                raise SdkMissingError(
                    self.name,
                    f"opening the KDC101 by serial number {self.conn} needs pyft232 and the FTDI "
                    "D2XX driver; install them or give the serial port path instead",
                ) from exc
            raise InstrumentError(self.name, f"cannot open {self.conn}: {exc}") from exc
        try:
            with self._mapped("configuring the KDC101"):
                units = self._motor.get_scale_units()
                if units != "deg":
                    raise InstrumentError(
                        self.name, f"the KDC101 reports position units {units!r}, not degrees"
                    )
                if self.trigger_output:
                    self._motor.setup_kcube_trigio(
                        trig1_mode=TRIGGER_1[0], trig1_pol=TRIGGER_1[1],
                        trig2_mode=TRIGGER_2[0], trig2_pol=TRIGGER_2[1],
                    )
        except InstrumentError:
            self.close()
            raise
        log.info("stage: KDC101 %s connected (PRM1-Z8)", self.conn)

    def close(self) -> None:
        motor, self._motor = self._motor, None
        if motor is None:
            return
        try:
            with self._mapped("stopping before close"):
                motor.stop(sync=True, timeout=self.timeout_s)
        except InstrumentError as exc:
            log.warning("%s", exc)
        finally:
            motor.close()

    @property
    def is_connected(self) -> bool:
        return self._motor is not None

    def identity(self) -> Identity:
        motor = self._dev()
        with self._mapped("reading the device info"):
            info = motor.get_device_info()
        return Identity(
            vendor="Thorlabs", model=f"{info.model_no} + PRM1-Z8", serial=str(info.serial_no),
            firmware=str(info.fw_ver),
        )

    def angle_deg(self) -> float:
        """Stage angle (deg)."""
        motor = self._dev()
        with self._mapped("reading the position"):
            return float(motor.get_position())

    def start_move_to(self, angle_deg: float) -> None:
        """Start an absolute move to ``angle_deg`` (deg) and return."""
        motor = self._dev()
        with self._mapped(f"moving to {angle_deg:g} deg"):
            motor.move_to(angle_deg)

    def is_moving(self) -> bool:
        """Whether the stage moves or homes."""
        return self._moving(self._status_bits())

    def stop(self) -> None:
        """Tell the stage to stop (smoothly) and return; poll :meth:`is_moving`."""
        motor = self._dev()
        with self._mapped("stopping"):
            motor.stop(immediate=False, sync=False)

    def start_home(self) -> None:
        """Start homing (even if homed before) and return; poll :meth:`is_moving`."""
        motor = self._dev()
        with self._mapped("homing"):
            motor.home(sync=False, force=True)

    def is_homed(self) -> bool:
        return "homed" in self._status_bits()

    def set_velocity(self, max_velocity_deg_s: float, acceleration_deg_s2: float) -> None:
        """Set the move velocity (deg/s) and acceleration (deg/s^2), within
        :data:`drivers.limits.PRM1_Z8`."""
        motor = self._dev()
        PRM1_Z8.max_velocity_deg_s.check(self.name, max_velocity_deg_s)
        PRM1_Z8.acceleration_deg_s2.check(self.name, acceleration_deg_s2)
        with self._mapped("setting the velocity"):
            motor.setup_velocity(acceleration=acceleration_deg_s2, max_velocity=max_velocity_deg_s)

    def velocity(self) -> tuple[float, float]:
        """``(max_velocity_deg_s, acceleration_deg_s2)`` as the controller reports them."""
        motor = self._dev()
        with self._mapped("reading the velocity"):
            params = motor.get_velocity_parameters()
        return float(params.max_velocity), float(params.acceleration)

    def _status_bits(self) -> list[str]:
        motor = self._dev()
        with self._mapped("reading the status"):
            return list(motor.get_status())

    @staticmethod
    def _moving(bits: list[str]) -> bool:
        return any(bit in bits for bit in _MOVING)

    def status(self) -> StageStatus:
        bits = self._status_bits()
        return StageStatus(angle_deg=self.angle_deg(), moving=self._moving(bits),
                           homed="homed" in bits)
