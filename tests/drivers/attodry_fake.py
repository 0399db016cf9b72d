"""A loopback attoDRY800: a bounded JSON-RPC server on 127.0.0.1 for the driver tests."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

PREFIX = "com.attocube.cryostat.interface."
Handler = Callable[[str, list[Any]], Any]


class FakeAttoDry:
    """A bounded loopback JSON-RPC server (127.0.0.1 only) with an attoDRY800's state.

    Each request is one ``\\r\\n``-terminated JSON line; replies carry ``result = [errno, ...]``.
    Methods are ``com.attocube.cryostat.interface.<sub>.<method>``, except the top-level
    ``grantAccess`` (as attocube's clients send it); any other name is "Method not found".
    ``script`` overrides a method: return a dict (sent as the reply body), ``"drop"`` (close the
    connection), ``"silent"`` (never answer) or a list (the result). The server serves one
    connection at a time, at most ``max_connections``, and stops by itself when idle for
    ``idle_s`` seconds or when closed.
    """

    def __init__(self, max_connections: int = 4, idle_s: float = 30.0) -> None:
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
            "grantAccess": lambda: [0 if params == ["secret"] else 5],
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
