"""The PRM1-Z8 / KDC101 stage: against an autospec of pylablib's KinesisMotor, and through pylablib
down to APT bytes (a fake serial port that answers like a KDC101)."""

from __future__ import annotations

import struct
from typing import Any
from unittest import mock

import pytest
import serial
from pylablib.devices import Thorlabs
from pylablib.devices.Thorlabs import base

from drivers.interfaces import (
    InstrumentError,
    InstrumentTimeoutError,
    NotConnectedError,
    SdkMissingError,
    SettingRejectedError,
)
from drivers.kinesis import PRM1_Z8_SCALE, KinesisRotationStage

STEPS_PER_DEG = 1919.6418578623391


# -- autospec of the real pylablib class ------------------------------------------------------


def test_connect_opens_prm1_z8_and_sets_the_motion_trigger(motor_class: Any):
    stage = KinesisRotationStage("27000123")
    stage.connect()
    motor_class.assert_called_once_with("27000123", scale=PRM1_Z8_SCALE)
    assert PRM1_Z8_SCALE == "PRM1-Z8"
    motor = motor_class.return_value
    motor.setup_kcube_trigio.assert_called_once_with(
        trig1_mode="out_in_motion", trig1_pol=1, trig2_mode="off", trig2_pol=1)
    identity = stage.identity()
    assert (identity.vendor, identity.model, identity.serial, identity.firmware) == (
        "Thorlabs", "KDC101 + PRM1-Z8", "27000123", "3.0.10")


def test_moves_home_and_velocity_are_non_blocking(motor_class: Any):
    motor = motor_class.return_value
    with KinesisRotationStage("27000123") as stage:
        stage.set_velocity(max_velocity_deg_s=8.0, acceleration_deg_s2=4.0)
        stage.start_home()
        stage.start_move_to(45.0)
        motor.get_status.return_value = ["moving_fw", "homed"]
        assert stage.is_moving() is True
        motor.get_status.return_value = ["homed"]
        assert stage.is_moving() is False
        assert stage.is_homed() is True
        assert stage.angle_deg() == pytest.approx(12.5)
        stage.stop()
        assert stage.status().as_dict() == {"angle_deg": 12.5, "moving": False, "homed": True}
        assert stage.velocity() == (10.0, 10.0)
    assert motor.method_calls[:6] == [
        mock.call.get_scale_units(),
        mock.call.setup_kcube_trigio(trig1_mode="out_in_motion", trig1_pol=1,
                                     trig2_mode="off", trig2_pol=1),
        mock.call.setup_velocity(acceleration=4.0, max_velocity=8.0),
        mock.call.home(sync=False, force=True),
        mock.call.move_to(45.0),
        mock.call.get_status(),
    ]
    assert mock.call.stop(immediate=False, sync=False) in motor.method_calls
    assert motor.method_calls[-2:] == [mock.call.stop(sync=True, timeout=60.0), mock.call.close()]


def test_errors_are_mapped(motor_class: Any):
    motor = motor_class.return_value
    with KinesisRotationStage("27000123", timeout_s=5.0) as stage:
        motor.move_to.side_effect = base.ThorlabsBackendError(OSError("USB gone"))
        with pytest.raises(InstrumentError, match="moving to 90 deg: communication"):
            stage.start_move_to(90.0)
        motor.get_status.side_effect = Thorlabs.ThorlabsTimeoutError()
        with pytest.raises(InstrumentTimeoutError, match="stage: reading the status: timed out"):
            stage.is_moving()
        motor.stop.side_effect = Thorlabs.ThorlabsTimeoutError()
    motor.close.assert_called_once()
    with pytest.raises(NotConnectedError):
        stage.angle_deg()


def test_wrong_units_refused_and_closed(motor_class: Any):
    motor_class.return_value.get_scale_units.return_value = "step"
    with pytest.raises(InstrumentError, match="units 'step', not degrees"):
        KinesisRotationStage("27000123").connect()
    motor_class.return_value.close.assert_called_once()


def test_missing_ftdi_support_is_one_line(monkeypatch: pytest.MonkeyPatch):
    failing = mock.create_autospec(Thorlabs.KinesisMotor, side_effect=ValueError(
        "could not find backend ft232: pyft232 package is missing."))
    monkeypatch.setattr(Thorlabs, "KinesisMotor", failing)
    with pytest.raises(SdkMissingError, match="needs pyft232 and the FTDI D2XX driver"):
        KinesisRotationStage("27000123").connect()


def test_no_serial_given():
    with pytest.raises(InstrumentError, match=r"set stage\.serial"):
        KinesisRotationStage("").connect()


# -- down to APT bytes ------------------------------------------------------------------------

HOST, DEVICE = 0x01, 0x50
STATUS_HOMED, STATUS_HOMING, STATUS_MOVING_FW = 1 << 10, 1 << 9, 1 << 5
STATUS_BASE = (1 << 8) | (1 << 31)


class FakeKdc101Port:
    """A serial port with a KDC101 + PRM1-Z8 behind it, speaking the APT protocol.

    Moves and homing finish after ``busy_polls`` status requests.
    """

    def __init__(self, busy_polls: int = 2) -> None:
        self.timeout: float | None = 1.0
        self.is_open = False
        self.received: list[tuple[int, Any]] = []
        self.trigio = (0x0B, 2, 0, 1)
        self.velocity = (0, 1000, 20000)
        self.position = 0
        self._target = 0
        self._busy = 0
        self._busy_bits = 0
        self._homed = False
        self._busy_polls = busy_polls
        self._in = bytearray()
        self._out = bytearray()

    # pyserial surface used by pylablib
    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    def setRTS(self, value: int) -> None:
        pass

    def flushInput(self) -> None:
        self._out.clear()

    def flushOutput(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def read(self, size: int = 1) -> bytes:
        chunk = bytes(self._out[:size])
        del self._out[:size]
        return chunk

    def write(self, data: bytes) -> int:
        self._in += data
        while len(self._in) >= 6:
            has_data = bool(self._in[4] & 0x80)
            length = 6 + (struct.unpack("<H", self._in[2:4])[0] if has_data else 0)
            if len(self._in) < length:
                break
            message, self._in = bytes(self._in[:length]), self._in[length:]
            self._handle(message, has_data)
        return len(data)

    # the controller
    def _reply(self, message_id: int, data: bytes) -> None:
        self._out += struct.pack("<HHBB", message_id, len(data), HOST | 0x80, DEVICE) + data

    def _status_bits(self) -> int:
        bits = STATUS_BASE | (STATUS_HOMED if self._homed else 0)
        if self._busy:
            self._busy -= 1
            if self._busy == 0:
                self.position = self._target
                self._homed = self._homed or self._busy_bits == STATUS_HOMING
                bits |= STATUS_HOMED if self._homed else 0
            else:
                bits |= self._busy_bits
        return bits

    def _handle(self, message: bytes, has_data: bool) -> None:
        message_id = struct.unpack("<H", message[:2])[0]
        payload: Any = message[6:] if has_data else (message[2], message[3])
        self.received.append((message_id, payload))
        if message_id == 0x0005:
            info = bytearray(84)
            info[0:4] = struct.pack("<I", 27000123)
            info[4:12] = b"KDC101\x00\x00"
            info[12:14] = struct.pack("<H", 16)
            info[14:17] = bytes((10, 0, 3))
            info[76:78] = struct.pack("<H", 6)
            info[78:84] = struct.pack("<HHH", 1, 0, 1)
            self._reply(0x0006, bytes(info))
        elif message_id == 0x0429:
            self._reply(0x042A, struct.pack("<HihHI", 1, self.position, 0, 0,
                                            self._status_bits()))
        elif message_id == 0x0411:
            self._reply(0x0412, struct.pack("<Hi", 1, self.position))
        elif message_id == 0x0453:
            self._target = struct.unpack("<Hi", payload)[1]
            self._busy, self._busy_bits = self._busy_polls, STATUS_MOVING_FW
        elif message_id == 0x0443:
            self._target = 0
            self._busy, self._busy_bits = self._busy_polls, STATUS_HOMING
        elif message_id == 0x0465:
            self._busy = 0
        elif message_id == 0x0414:
            self._reply(0x0415, struct.pack("<Hiii", 1, *self.velocity))
        elif message_id == 0x0413:
            self.velocity = struct.unpack("<Hiii", payload)[1:]
        elif message_id == 0x0424:
            self._reply(0x0425, struct.pack("<HHHiiH", 1, 2, 2, 0, 0, 1))
        elif message_id == 0x0524:
            self._reply(0x0525, struct.pack("<HHHHH", 1, *self.trigio) + bytes(12))
        elif message_id == 0x0523:
            self.trigio = struct.unpack("<HHHHH", payload[:10])[1:]

    def sent_ids(self) -> list[int]:
        return [message_id for message_id, _ in self.received]


@pytest.fixture
def port(monkeypatch: pytest.MonkeyPatch) -> FakeKdc101Port:
    fake = FakeKdc101Port()

    def serial_for_url(url: str, do_not_open: bool = False, **settings: Any) -> FakeKdc101Port:
        assert url == "/dev/ttyUSB7"
        assert (settings["baudrate"], settings["rtscts"]) == (115200, True)
        return fake

    monkeypatch.setattr(serial, "serial_for_url", serial_for_url)
    return fake


def test_connect_writes_both_triggers_explicitly(port: FakeKdc101Port):
    """pylablib reads trigger 2's polarity back as a bool: an active-low (2) trigger 2 that the
    driver left to pylablib would be written back as active high (1). Both are set explicitly."""
    port.trigio = (0x0A, 2, 0x0A, 2)  # both out_gpio, active low
    with KinesisRotationStage("/dev/ttyUSB7"):
        writes = [payload for message_id, payload in port.received if message_id == 0x0523]
    assert len(writes) == 1
    assert struct.unpack("<HHHHH", writes[0][:10]) == (1, 0x0B, 1, 0x00, 1)
    assert port.trigio == (0x0B, 1, 0x00, 1)  # 1: out_in_motion, active high; 2: off


def test_apt_bytes_of_connect_move_and_home(port: FakeKdc101Port):
    with KinesisRotationStage("/dev/ttyUSB7") as stage:
        assert port.trigio == (0x0B, 1, 0, 1)  # trigger 1: out_in_motion, active high
        assert 0x0523 in port.sent_ids()
        port.received.clear()
        stage.start_move_to(45.0)
        assert port.received[0] == (0x0453, struct.pack("<Hi", 1, int(45.0 * STEPS_PER_DEG)))
        assert stage.is_moving() is True
        assert stage.is_moving() is False
        assert stage.angle_deg() == pytest.approx(45.0, abs=1e-3)
        stage.start_home()
        assert port.received[-1][0] == 0x0443
        polls = 0
        while stage.is_moving():
            polls += 1
        assert (polls, stage.is_homed(), stage.angle_deg()) == (1, True, 0.0)
        stage.set_velocity(max_velocity_deg_s=10.0, acceleration_deg_s2=5.0)
        _, acceleration, max_velocity = port.velocity
        time_conv = 2048 / 6e6
        assert max_velocity == int(10.0 * STEPS_PER_DEG * time_conv * 2**16)
        assert acceleration == int(5.0 * STEPS_PER_DEG * time_conv**2 * 2**16)
        assert stage.identity().serial == "27000123"
    assert port.sent_ids()[-2:] == [0x0465, 0x0429]  # stop, then wait until still
    assert port.is_open is False


def test_a_silent_controller_is_one_clear_line(port: FakeKdc101Port):
    port.write = lambda data: len(data)  # type: ignore[method-assign]  # nothing ever answers
    stage = KinesisRotationStage("/dev/ttyUSB7")
    with pytest.raises(InstrumentError) as err:
        stage.connect()
    message = str(err.value)
    assert message.startswith("stage: opening the KDC101 /dev/ttyUSB7: communication")
    assert "check its USB cable and power" in message and "\n" not in message
    assert not stage.is_connected


def test_velocity_beyond_the_prm1_z8_is_refused_before_pylablib(motor_class: Any):
    motor = motor_class.return_value
    with KinesisRotationStage("27000123") as stage:
        with pytest.raises(SettingRejectedError, match=r"velocity 30 deg/s is outside"):
            stage.set_velocity(max_velocity_deg_s=30.0, acceleration_deg_s2=5.0)
        with pytest.raises(SettingRejectedError, match=r"acceleration 0 deg/s\^2 is outside"):
            stage.set_velocity(max_velocity_deg_s=10.0, acceleration_deg_s2=0.0)
    assert not motor.setup_velocity.called
