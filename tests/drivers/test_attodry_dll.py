"""The attoDRYLib ctypes path against a fake DLL that has only attoDRYLib's function names."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

from drivers.attodry import ATTODRY800_DEVICE, AttoDryLibCryostat
from drivers.interfaces import (
    Clock,
    InstrumentError,
    InstrumentTimeoutError,
    SdkMissingError,
    SettingRejectedError,
)

#: The attoDRYLib functions named in HARDWARE.md (all ``int32 AttoDRY_Interface_<name>``).
ATTODRYLIB_FUNCTIONS = {
    "begin", "Connect", "isDeviceInitialised", "Disconnect", "end", "getSampleTemperature",
    "getUserTemperature", "setUserTemperature", "get4KStageTemperature",
    "isControllingTemperature", "toggleFullTemperatureControl", "isSampleHeaterOn",
    "toggleSampleTemperatureControl", "goToBaseTemperature", "getPressure800",
    "getAttodryErrorStatus", "getAttodryErrorMessage",
}


def _target(arg: Any) -> Any:
    """The ctypes object behind ``ctypes.byref(obj)``."""
    return arg._obj


class FakeAttoDryLib:
    """Stands in for the loaded DLL: records calls, fills output pointers, returns error codes.

    Looking up any name that attoDRYLib does not export raises AttributeError, as ctypes does.
    Two toggles with their own read-backs, as in attocube's header: the touch screen's full
    temperature control (``isControllingTemperature`` / ``toggleFullTemperatureControl``) and
    the sample heater (``isSampleHeaterOn`` / ``toggleSampleTemperatureControl``).
    """

    def __init__(self, initialised_after: int = 2) -> None:
        self.calls: list[str] = []
        self.args: dict[str, tuple[Any, ...]] = {}
        self.full_control = 0
        self.heater_on = 0
        self.user_temperature = 4.0
        self.errors: dict[str, int] = {}
        self._initialised_after = initialised_after

    def __getattr__(self, attr: str) -> Any:
        name = attr.removeprefix("AttoDRY_Interface_")
        if not attr.startswith("AttoDRY_Interface_") or name not in ATTODRYLIB_FUNCTIONS:
            raise AttributeError(f"function '{attr}' not found")

        def function(*args: Any) -> int:
            self.calls.append(name)
            self.args[name] = args
            code = self.errors.get(name, 0)
            if code:
                return code
            getattr(self, f"_do_{name}", lambda *a: None)(*args)
            return 0

        return function

    def _do_isDeviceInitialised(self, ptr: Any) -> None:
        polls = self.calls.count("isDeviceInitialised")
        _target(ptr).value = int(polls >= self._initialised_after)

    def _do_getSampleTemperature(self, ptr: Any) -> None:
        _target(ptr).value = 4.25

    def _do_getUserTemperature(self, ptr: Any) -> None:
        _target(ptr).value = self.user_temperature

    def _do_setUserTemperature(self, value: ctypes.c_float) -> None:
        self.user_temperature = value.value

    def _do_isControllingTemperature(self, ptr: Any) -> None:
        _target(ptr).value = self.full_control

    def _do_toggleFullTemperatureControl(self) -> None:
        self.full_control = 1 - self.full_control

    def _do_isSampleHeaterOn(self, ptr: Any) -> None:
        _target(ptr).value = self.heater_on

    def _do_toggleSampleTemperatureControl(self) -> None:
        self.heater_on = 1 - self.heater_on

    def _do_getPressure800(self, ptr: Any) -> None:
        _target(ptr).value = 2.5e-6

    def _do_getAttodryErrorMessage(self, buffer: Any, length: int) -> None:
        text = b"Sample heater not connected"
        assert length >= len(text) + 1
        buffer.value = text


class CountingClock(Clock):
    """Virtual time: sleeping advances it, nothing waits."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def _cryostat(fake: FakeAttoDryLib, **kwargs: Any) -> AttoDryLibCryostat:
    opened: list[str] = []

    def loader(path: str) -> FakeAttoDryLib:
        opened.append(path)
        return fake

    dev = AttoDryLibCryostat("COM7", clock=CountingClock(), loader=loader, **kwargs)
    dev.opened = opened  # type: ignore[attr-defined]
    return dev


def test_connect_sequence_and_arguments():
    fake = FakeAttoDryLib(initialised_after=3)
    dev = _cryostat(fake)
    dev.connect()
    assert dev.opened == ["attoDRYLib.dll"]  # type: ignore[attr-defined]
    assert fake.calls == ["begin", "Connect", "isDeviceInitialised", "isDeviceInitialised",
                          "isDeviceInitialised"]
    assert fake.args["begin"][0].value == ATTODRY800_DEVICE
    assert fake.args["Connect"][0].value == b"COM7"
    dev.close()
    assert fake.calls[-2:] == ["Disconnect", "end"]
    dev.close()
    assert fake.calls.count("end") == 1


def test_readings_use_the_right_functions():
    fake = FakeAttoDryLib()
    with _cryostat(fake) as dev:
        fake.calls.clear()
        status = dev.status()
    assert fake.calls[:4] == ["getSampleTemperature", "getUserTemperature", "isSampleHeaterOn",
                              "getPressure800"]
    assert status.sample_temperature_k == pytest.approx(4.25)
    assert status.setpoint_k == pytest.approx(4.0)
    assert status.controlling is False
    # getPressure800 is the cryostat inlet's gauge: never reported as the sample space's
    assert status.pressure_mbar is None
    assert status.inlet_pressure_mbar == pytest.approx(2.5e-6)


def test_setpoint_and_base():
    fake = FakeAttoDryLib()
    with _cryostat(fake) as dev:
        dev.set_setpoint_k(12.5)
        assert isinstance(fake.args["setUserTemperature"][0], ctypes.c_float)
        assert dev.setpoint_k() == pytest.approx(12.5)
        dev.go_to_base_temperature()
        assert fake.calls[-1] == "goToBaseTemperature"


def test_toggle_only_after_reading_the_heaters_own_state():
    fake = FakeAttoDryLib()
    with _cryostat(fake) as dev:
        fake.calls.clear()
        dev.set_temperature_control(True)
        assert fake.calls == ["isSampleHeaterOn", "toggleSampleTemperatureControl"]
        assert fake.heater_on == 1
        fake.calls.clear()
        dev.set_temperature_control(True)
        assert fake.calls == ["isSampleHeaterOn"]
        dev.set_temperature_control(False)
        assert fake.calls[-1] == "toggleSampleTemperatureControl"
        assert fake.heater_on == 0
    assert "toggleFullTemperatureControl" not in fake.calls


@pytest.mark.parametrize("full_control", [0, 1])
def test_repeated_on_keeps_the_heater_on_whatever_the_touch_screen_shows(full_control: int):
    """The touch screen's full control says nothing about the sample heater: a repeated "on"
    must neither switch the heater off nor leave it off."""
    fake = FakeAttoDryLib()
    fake.full_control = full_control
    with _cryostat(fake) as dev:
        for _ in range(3):
            dev.set_temperature_control(True)
            assert fake.heater_on == 1
            assert dev.is_controlling() is True
        assert fake.calls.count("toggleSampleTemperatureControl") == 1
    assert fake.full_control == full_control


def test_setpoint_outside_the_declared_range_is_refused_before_the_dll():
    fake = FakeAttoDryLib()
    with _cryostat(fake) as dev, pytest.raises(SettingRejectedError,
                                               match=r"setpoint 1 K is outside 1.5-320 K"):
        dev.set_setpoint_k(1.0)
    assert "setUserTemperature" not in fake.calls


def test_error_code_carries_the_dll_message():
    fake = FakeAttoDryLib()
    with _cryostat(fake) as dev:
        fake.errors["goToBaseTemperature"] = 9
        with pytest.raises(InstrumentError) as err:
            dev.go_to_base_temperature()
    assert str(err.value) == (
        "cryostat: goToBaseTemperature failed: Sample heater not connected (error 9)"
    )


def test_never_initialised_is_a_timeout_and_releases_the_dll():
    fake = FakeAttoDryLib(initialised_after=10**9)
    dev = _cryostat(fake, init_timeout_s=2.0)
    with pytest.raises(InstrumentTimeoutError, match="not initialised 2 s after connecting"):
        dev.connect()
    assert not dev.is_connected
    assert fake.calls[-2:] == ["Disconnect", "end"]


def test_missing_dll_is_one_line():
    def loader(path: str) -> Any:
        raise OSError(f"could not find module '{path}'")

    dev = AttoDryLibCryostat("COM7", loader=loader)
    with pytest.raises(SdkMissingError) as err:
        dev.connect()
    message = str(err.value)
    assert message.startswith("cryostat: cannot load attoDRYLib.dll")
    assert "connection = 'network'" in message and "\n" not in message
