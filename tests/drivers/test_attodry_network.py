"""The attoDRY800 JSON-RPC client against a loopback server that speaks the protocol."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from attodry_fake import PREFIX, FakeAttoDry

from drivers.attodry import AttoDryNetworkCryostat
from drivers.interfaces import (
    InstrumentError,
    InstrumentTimeoutError,
    NotConnectedError,
    SettingRejectedError,
)


@pytest.fixture
def cryostat(server: FakeAttoDry) -> Iterator[AttoDryNetworkCryostat]:
    dev = AttoDryNetworkCryostat("127.0.0.1", server.port, timeout_s=2.0)
    dev.connect()
    yield dev
    dev.close()


def test_requests_follow_the_protocol(cryostat: AttoDryNetworkCryostat, server: FakeAttoDry):
    cryostat.sample_temperature_k()
    request = server.requests[-1]
    assert request["jsonrpc"] == "2.0"
    assert request["method"] == PREFIX + "sample.getTemperature"
    assert request["params"] == []
    assert request["api"] == 2
    ids = [r["id"] for r in server.requests]
    assert ids == sorted(set(ids))


def test_reads_temperatures_pressure_and_identity(
    cryostat: AttoDryNetworkCryostat, server: FakeAttoDry
):
    assert cryostat.sample_temperature_k() == pytest.approx(4.2)
    assert cryostat.setpoint_k() == pytest.approx(4.0)
    assert cryostat.pressure_mbar() == pytest.approx(1.5e-6)
    identity = cryostat.identity()
    assert (identity.vendor, identity.model) == ("attocube", "attoDRY800")
    assert (identity.serial, identity.firmware) == ("AD800-0042", "1.2.3")
    status = cryostat.status()
    assert status.as_dict() == {
        "sample_temperature_k": 4.2, "setpoint_k": 4.0, "controlling": False,
        "pressure_mbar": 1.5e-6, "inlet_pressure_mbar": None,
    }


def test_setpoint_and_base_temperature(cryostat: AttoDryNetworkCryostat, server: FakeAttoDry):
    cryostat.set_setpoint_k(10.5)
    assert server.calls[-1] == ("sample.setSetPoint", [10.5])
    assert cryostat.setpoint_k() == pytest.approx(10.5)
    cryostat.go_to_base_temperature()
    assert server.calls[-1] == ("action.goToBase", [])


def test_setpoint_outside_the_declared_range_is_never_sent(
    cryostat: AttoDryNetworkCryostat, server: FakeAttoDry
):
    sent = len(server.calls)
    with pytest.raises(SettingRejectedError, match=r"setpoint 1 K is outside 1.5-320 K"):
        cryostat.set_setpoint_k(1.0)
    assert len(server.calls) == sent


def test_temperature_control_reads_state_first(
    cryostat: AttoDryNetworkCryostat, server: FakeAttoDry
):
    server.calls.clear()
    cryostat.set_temperature_control(True)
    assert server.methods() == ["sample.getTempControlStatus", "sample.startTempControl"]
    server.calls.clear()
    cryostat.set_temperature_control(True)
    assert server.methods() == ["sample.getTempControlStatus"]
    cryostat.set_temperature_control(False)
    assert server.methods()[-1] == "sample.stopTempControl"
    assert cryostat.is_controlling() is False


def test_device_error_carries_the_devices_text(
    cryostat: AttoDryNetworkCryostat, server: FakeAttoDry
):
    server.script["sample.setSetPoint"] = [27]
    with pytest.raises(InstrumentError) as err:
        cryostat.set_setpoint_k(300.0)  # within the declared range: the device refuses
    assert str(err.value) == (
        "cryostat: sample.setSetPoint failed: Setpoint out of range (error 27)"
    )
    assert server.calls[-1] == ("system.errorNumberToString", [27])
    assert cryostat.is_connected


def test_json_rpc_error_object(cryostat: AttoDryNetworkCryostat, server: FakeAttoDry):
    server.script["action.goToBase"] = {"error": {"code": -32000, "message": "busy"}}
    with pytest.raises(InstrumentError, match=r"action\.goToBase rejected: busy"):
        cryostat.go_to_base_temperature()


def test_dropped_connection_is_an_instrument_error(
    cryostat: AttoDryNetworkCryostat, server: FakeAttoDry
):
    server.script["sample.getTemperature"] = "drop"
    with pytest.raises(InstrumentError, match="closed the connection"):
        cryostat.sample_temperature_k()
    assert not cryostat.is_connected
    with pytest.raises(NotConnectedError):
        cryostat.setpoint_k()


def test_silence_is_a_timeout(server: FakeAttoDry):
    dev = AttoDryNetworkCryostat("127.0.0.1", server.port, timeout_s=0.3)
    dev.connect()
    server.script["sample.getTemperature"] = "silent"
    with pytest.raises(InstrumentTimeoutError, match=r"no reply to sample.getTemperature"):
        dev.sample_temperature_k()
    assert not dev.is_connected


def test_password_grants_access(server: FakeAttoDry):
    with AttoDryNetworkCryostat("127.0.0.1", server.port, password="secret") as dev:
        assert dev.is_connected
    assert server.calls[0] == ("grantAccess", ["secret"])
    assert server.requests[0]["method"] == "grantAccess"  # top level, no interface prefix
    with pytest.raises(InstrumentError, match=r"grantAccess failed"):
        AttoDryNetworkCryostat("127.0.0.1", server.port, password="wrong").connect()


def test_nobody_listening_is_one_clear_line():
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    with pytest.raises(InstrumentError) as err:
        AttoDryNetworkCryostat("127.0.0.1", port, timeout_s=1.0).connect()
    assert str(err.value).startswith(f"cryostat: cannot connect to 127.0.0.1:{port}")
    assert "\n" not in str(err.value)
