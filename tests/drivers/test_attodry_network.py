"""The attoDRY800 JSON-RPC client against a loopback server that speaks the protocol."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from drivers.attodry import AttoDryNetworkCryostat
from drivers.interfaces import InstrumentError, InstrumentTimeoutError, NotConnectedError

PREFIX = "com.attocube.cryostat.interface."
Handler = Callable[[str, list[Any]], Any]


class FakeAttoDry:
    """A bounded loopback JSON-RPC server (127.0.0.1 only) with an attoDRY800's state.

    Each request is one ``\\r\\n``-terminated JSON line; replies carry ``result = [errno, ...]``.
    ``script`` overrides a method: return a dict (sent as the reply body), ``"drop"`` (close the
    connection), ``"silent"`` (never answer) or a list (the result). The server serves one
    connection at a time, at most ``max_connections``, and stops by itself when idle for
    ``idle_s`` seconds or when closed.
    """

    def __init__(self, max_connections: int = 4, idle_s: float = 5.0) -> None:
        self.state: dict[str, Any] = {
            "temperature": 4.2, "setpoint": 4.0, "controlling": False, "pressure": 1.5e-6,
        }
        self.calls: list[tuple[str, list[Any]]] = []
        self.requests: list[dict[str, Any]] = []
        self.script: dict[str, Any] = {}
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.05)
        self._idle_s = idle_s
        self.port = self._server.getsockname()[1]
        self._max = max_connections
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _result(self, method: str, params: list[Any]) -> Any:
        s = self.state
        table: dict[str, Callable[[], list[Any]]] = {
            "sample.getTemperature": lambda: [0, s["temperature"]],
            "sample.getSetPoint": lambda: [0, s["setpoint"]],
            "sample.setSetPoint": lambda: (s.__setitem__("setpoint", params[0]), [0])[1],
            "sample.getTempControlStatus": lambda: [0, s["controlling"]],
            "sample.startTempControl": lambda: (s.__setitem__("controlling", True), [0])[1],
            "sample.stopTempControl": lambda: (s.__setitem__("controlling", False), [0])[1],
            "action.goToBase": lambda: [0],
            "pressures.getSampleSpacePressure": lambda: [0, s["pressure"]],
            "system.getSerialNumber": lambda: [0, "AD800-0042"],
            "system.getFirmwareVersion": lambda: [0, "1.2.3"],
            "system.errorNumberToString": lambda: ["Setpoint out of range"],
            "access.grantAccess": lambda: [0 if params == ["secret"] else 5],
        }
        if method in self.script:
            return self.script[method]
        if method not in table:
            return {"error": {"code": -32601, "message": f"Method not found: {method}"}}
        return table[method]()

    def _serve(self) -> None:
        served = 0
        idle_until = time.monotonic() + self._idle_s
        with self._server:
            while served < self._max and not self._stop.is_set():
                if time.monotonic() > idle_until:
                    return
                try:
                    conn, _ = self._server.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                served += 1
                with conn:
                    conn.settimeout(self._idle_s)
                    self._serve_connection(conn)
                idle_until = time.monotonic() + self._idle_s

    def _serve_connection(self, conn: socket.socket) -> bool:
        reader = conn.makefile("rb")
        while not self._stop.is_set():
            try:
                line = reader.readline()
            except OSError:
                return False
            if not line:
                return True
            assert line.endswith(b"\r\n")
            request = json.loads(line)
            self.requests.append(request)
            method = request["method"].removeprefix(PREFIX)
            self.calls.append((method, request["params"]))
            body = self._result(method, request["params"])
            if body == "drop":
                return False
            if body == "silent":
                continue
            reply = body if isinstance(body, dict) else {"result": body}
            reply = {"jsonrpc": "2.0", "id": request["id"], **reply}
            conn.sendall(json.dumps(reply).encode() + b"\r\n")
        return False

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]


@pytest.fixture
def server() -> Iterator[FakeAttoDry]:
    fake = FakeAttoDry()
    yield fake
    fake.close()


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
        "pressure_mbar": 1.5e-6,
    }


def test_setpoint_and_base_temperature(cryostat: AttoDryNetworkCryostat, server: FakeAttoDry):
    cryostat.set_setpoint_k(10.5)
    assert server.calls[-1] == ("sample.setSetPoint", [10.5])
    assert cryostat.setpoint_k() == pytest.approx(10.5)
    cryostat.go_to_base_temperature()
    assert server.calls[-1] == ("action.goToBase", [])


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
        cryostat.set_setpoint_k(999.0)
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
    assert server.calls[0] == ("access.grantAccess", ["secret"])
    with pytest.raises(InstrumentError, match=r"access.grantAccess failed"):
        AttoDryNetworkCryostat("127.0.0.1", server.port, password="wrong").connect()


def test_nobody_listening_is_one_clear_line():
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    with pytest.raises(InstrumentError) as err:
        AttoDryNetworkCryostat("127.0.0.1", port, timeout_s=1.0).connect()
    assert str(err.value).startswith(f"cryostat: cannot connect to 127.0.0.1:{port}")
    assert "\n" not in str(err.value)
