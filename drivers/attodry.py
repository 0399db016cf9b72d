"""attocube attoDRY800 cryostat: the network JSON-RPC API and the attoDRYLib DLL.

Two control paths exist; a lab has one or both (see ``HARDWARE.md``):

* :class:`AttoDryNetworkCryostat` speaks JSON-RPC 2.0 over TCP (port 9090): one request per line
  (``\\r\\n``), methods ``com.attocube.cryostat.interface.<sub>.<method>``, replies whose
  ``result[0]`` is an error number (0 = OK) followed by the values. A non-zero error number is
  translated by the cryostat itself (``system.errorNumberToString``) into the error's text.
* :class:`AttoDryLibCryostat` calls ``attoDRYLib.dll`` (LabVIEW-built, Windows, COM port) through
  :mod:`ctypes`: ``AttoDRY_Interface_<name>`` functions returning an int32 error code (0 = OK).
  Sample temperature control is a toggle in this API (``toggleSampleTemperatureControl``), so its
  own state (``isSampleHeaterOn``) is read before every toggle. The DLL has no sample-space
  pressure: ``getPressure800`` is the cryostat *inlet* pressure, reported as such.

Access to a locked network device is asked for with the top-level JSON-RPC method
``grantAccess(password)``, as attocube's own clients send it (their C header's
``attoDry_grantAccess``, their MATLAB wrappers' ``"method": "grantAccess"``).
"""

from __future__ import annotations

import ctypes
import json
import logging
import socket
import sys
from collections.abc import Callable
from typing import Any

from drivers._sdk import require
from drivers.clock import SystemClock
from drivers.interfaces import (
    Clock,
    Cryostat,
    CryostatStatus,
    Identity,
    InstrumentError,
    InstrumentTimeoutError,
    SdkMissingError,
)
from drivers.limits import ATTODRY800

__all__ = ["ATTODRY800_DEVICE", "AttoDryLibCryostat", "AttoDryNetworkCryostat"]

log = logging.getLogger(__name__)

_METHOD_PREFIX = "com.attocube.cryostat.interface."
#: Top-level method (no interface prefix) that unlocks a password-protected device.
_GRANT_ACCESS = "grantAccess"
_MAX_LINE_BYTES = 1 << 20

#: Device type passed to ``AttoDRY_Interface_begin`` for an attoDRY800.
ATTODRY800_DEVICE = 2


# ---------------------------------------------------------------------------------------------
# Network (JSON-RPC over TCP)


class AttoDryNetworkCryostat(Cryostat):
    """The attoDRY800 through its network API (JSON-RPC 2.0, TCP port 9090).

    Parameters: ``host`` (name or IP address), ``port`` (TCP port, 9090), ``password`` (sent with
    ``grantAccess`` if the cryostat is locked; empty = none), ``timeout_s`` (seconds to
    connect and to wait for each reply).
    """

    def __init__(
        self, host: str, port: int = 9090, password: str = "", timeout_s: float = 10.0
    ) -> None:
        self.host = host
        self.port = port
        self.password = password
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._rfile: Any = None
        self._request_id = 0

    # -- connection ---------------------------------------------------------------------------

    def connect(self) -> None:
        if self._sock is not None:
            return
        if not self.host:
            raise InstrumentError(self.name, "no host given: set cryostat.host to its address")
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        except TimeoutError as exc:
            raise InstrumentTimeoutError(
                self.name,
                f"no answer from {self.host}:{self.port} within {self.timeout_s:g} s: check that "
                "the attoDRY800 is on and on the network",
            ) from exc
        except OSError as exc:
            raise InstrumentError(
                self.name,
                f"cannot connect to {self.host}:{self.port} ({exc.strerror or exc}): check the "
                "address and that the attoDRY800 is on",
            ) from exc
        sock.settimeout(self.timeout_s)
        self._sock = sock
        self._rfile = sock.makefile("rb")
        try:
            if self.password:
                self._call(_GRANT_ACCESS, self.password)
            serial = self._call("system.getSerialNumber")
        except InstrumentError:
            self._drop()
            raise
        log.info("cryostat: connected to attoDRY800 %s at %s:%d", serial[0] if serial else "?",
                 self.host, self.port)

    def close(self) -> None:
        self._drop()

    @property
    def is_connected(self) -> bool:
        return self._sock is not None

    def _drop(self) -> None:
        if self._rfile is not None:
            self._rfile.close()
            self._rfile = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # -- protocol -----------------------------------------------------------------------------

    def _call(self, method: str, *params: Any) -> list[Any]:
        """Call ``<method>`` (relative to the cryostat interface) and return the values after
        the error number. Raises :class:`InstrumentError` with the cryostat's error text."""
        result = self._request(method, list(params))
        errno = result[0] if result else None
        if errno not in (0, None):
            raise InstrumentError(self.name, f"{method} failed: {self._error_text(int(errno))}")
        return result[1:]

    def _error_text(self, errno: int) -> str:
        try:
            text = self._request("system.errorNumberToString", [errno])
        except InstrumentError:
            return f"error {errno}"
        described = next((str(v) for v in text if isinstance(v, str)), "")
        return f"{described} (error {errno})" if described else f"error {errno}"

    def _request(self, method: str, params: list[Any]) -> list[Any]:
        sock = require(self.name, self._sock)
        self._request_id += 1
        request_id = self._request_id
        full_name = method if method == _GRANT_ACCESS else _METHOD_PREFIX + method
        request = {
            "jsonrpc": "2.0", "method": full_name, "params": params, "id": request_id, "api": 2,
        }
        try:
            sock.sendall(json.dumps(request).encode() + b"\r\n")
            while True:
                line = self._rfile.readline(_MAX_LINE_BYTES)
                if not line:
                    self._drop()
                    raise InstrumentError(
                        self.name, f"the attoDRY800 closed the connection during {method}"
                    )
                reply = json.loads(line)
                if reply.get("id") == request_id:
                    break
                log.debug("cryostat: ignoring reply to request %s", reply.get("id"))
        except TimeoutError as exc:
            self._drop()
            raise InstrumentTimeoutError(
                self.name, f"no reply to {method} within {self.timeout_s:g} s"
            ) from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InstrumentError(
                self.name,
                f"unreadable reply to {method} from {self.host}:{self.port} ({exc}): is this "
                "the attoDRY800's address?",
            ) from exc
        except OSError as exc:
            self._drop()
            raise InstrumentError(
                self.name, f"connection lost during {method}: {exc.strerror or exc}"
            ) from exc
        if "error" in reply:
            error = reply["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise InstrumentError(self.name, f"{method} rejected: {message}")
        result = reply.get("result")
        return list(result) if isinstance(result, list) else [result]

    # -- Cryostat -----------------------------------------------------------------------------

    def identity(self) -> Identity:
        serial = self._call("system.getSerialNumber")
        firmware = self._call("system.getFirmwareVersion")
        return Identity(
            vendor="attocube", model="attoDRY800",
            serial=str(serial[0]) if serial else "", firmware=str(firmware[0]) if firmware else "",
        )

    def sample_temperature_k(self) -> float:
        """Sample temperature (K)."""
        return float(self._call("sample.getTemperature")[0])

    def setpoint_k(self) -> float:
        """Sample temperature setpoint (K)."""
        return float(self._call("sample.getSetPoint")[0])

    def set_setpoint_k(self, temperature_k: float) -> None:
        """Set the sample temperature setpoint (K), within :data:`drivers.limits.ATTODRY800`."""
        ATTODRY800.setpoint_k.check(self.name, temperature_k)
        self._call("sample.setSetPoint", float(temperature_k))

    def is_controlling(self) -> bool:
        return bool(self._call("sample.getTempControlStatus")[0])

    def set_temperature_control(self, on: bool) -> None:
        if self.is_controlling() == on:
            return
        self._call("sample.startTempControl" if on else "sample.stopTempControl")

    def go_to_base_temperature(self) -> None:
        self._call("action.goToBase")

    def pressure_mbar(self) -> float | None:
        """Sample-space pressure (mbar)."""
        return float(self._call("pressures.getSampleSpacePressure")[0])

    def status(self) -> CryostatStatus:
        return CryostatStatus(
            sample_temperature_k=self.sample_temperature_k(),
            setpoint_k=self.setpoint_k(),
            controlling=self.is_controlling(),
            pressure_mbar=self.pressure_mbar(),
        )


# ---------------------------------------------------------------------------------------------
# attoDRYLib.dll (ctypes)


def _load_dll(path: str) -> Any:
    return ctypes.CDLL(path)


class AttoDryLibCryostat(Cryostat):
    """The attoDRY800 through attocube's ``attoDRYLib.dll`` (Windows, USB/COM port).

    Parameters: ``com_port`` (e.g. ``"COM3"``), ``dll_path`` (path to ``attoDRYLib.dll``; empty =
    let Windows search its DLL path), ``init_timeout_s`` (seconds to wait for the device to
    initialise after ``Connect``), ``clock`` (waits while polling; real time by default),
    ``loader`` (opens the DLL from a path; ``ctypes.CDLL`` by default).
    """

    _DLL_NAME = "attoDRYLib.dll"
    _POLL_S = 0.2

    def __init__(
        self,
        com_port: str,
        dll_path: str = "",
        init_timeout_s: float = 10.0,
        clock: Clock | None = None,
        loader: Callable[[str], Any] = _load_dll,
    ) -> None:
        self.com_port = com_port
        self.dll_path = dll_path or self._DLL_NAME
        self.init_timeout_s = init_timeout_s
        self._clock = clock or SystemClock()
        self._loader = loader
        self._dll: Any = None
        self._begun = False

    # -- connection ---------------------------------------------------------------------------

    def connect(self) -> None:
        if self._dll is not None:
            return
        if not self.com_port:
            raise InstrumentError(self.name, "no COM port given: set cryostat.com_port")
        try:
            dll = self._loader(self.dll_path)
        except (OSError, AttributeError) as exc:
            hint = "" if sys.platform == "win32" else " (attoDRYLib is Windows-only)"
            raise SdkMissingError(
                self.name,
                f"cannot load {self.dll_path}{hint}: install attocube's attoDRYLib and the "
                "LabVIEW runtime, set cryostat.dll_path, or use connection = 'network'",
            ) from exc
        self._dll = dll
        try:
            self._fn("begin", ctypes.c_uint16(ATTODRY800_DEVICE))
            self._begun = True
            self._fn("Connect", ctypes.c_char_p(self.com_port.encode()))
            self._wait_initialised()
        except InstrumentError:
            self.close()
            raise
        log.info("cryostat: attoDRY800 connected through attoDRYLib on %s", self.com_port)

    def _wait_initialised(self) -> None:
        deadline = self._clock.now() + self.init_timeout_s
        while not self._get_int("isDeviceInitialised"):
            if self._clock.now() >= deadline:
                raise InstrumentTimeoutError(
                    self.name,
                    f"not initialised {self.init_timeout_s:g} s after connecting on "
                    f"{self.com_port}: check the cable and that the attoDRY800 is on",
                )
            self._clock.sleep(self._POLL_S)

    def close(self) -> None:
        dll, self._dll = self._dll, None
        if dll is None:
            return
        try:
            if self._begun:
                dll.AttoDRY_Interface_Disconnect()
                dll.AttoDRY_Interface_end()
        except OSError as exc:
            log.warning("cryostat: attoDRYLib disconnect failed: %s", exc)
        finally:
            self._begun = False

    @property
    def is_connected(self) -> bool:
        return self._dll is not None

    # -- calls --------------------------------------------------------------------------------

    def _fn(self, name: str, *args: Any) -> None:
        dll = require(self.name, self._dll)
        code = int(getattr(dll, f"AttoDRY_Interface_{name}")(*args))
        if code != 0:
            raise InstrumentError(self.name, f"{name} failed: {self._error_text(code)}")

    def _error_text(self, code: int) -> str:
        buffer = ctypes.create_string_buffer(512)
        try:
            failed = self._dll.AttoDRY_Interface_getAttodryErrorMessage(buffer, len(buffer))
        except OSError:
            failed = 1
        text = buffer.value.decode(errors="replace").strip() if not failed else ""
        return f"{text} (error {code})" if text else f"error {code}"

    def _get_float(self, name: str) -> float:
        value = ctypes.c_float()
        self._fn(name, ctypes.byref(value))
        return float(value.value)

    def _get_int(self, name: str) -> int:
        value = ctypes.c_int32()
        self._fn(name, ctypes.byref(value))
        return int(value.value)

    # -- Cryostat -----------------------------------------------------------------------------

    def identity(self) -> Identity:
        require(self.name, self._dll)
        return Identity(vendor="attocube", model="attoDRY800", serial="", firmware="attoDRYLib")

    def sample_temperature_k(self) -> float:
        """Sample temperature (K)."""
        return self._get_float("getSampleTemperature")

    def setpoint_k(self) -> float:
        """Sample temperature setpoint, the DLL's "user temperature" (K)."""
        return self._get_float("getUserTemperature")

    def set_setpoint_k(self, temperature_k: float) -> None:
        """Set the sample temperature setpoint (K), within :data:`drivers.limits.ATTODRY800`."""
        ATTODRY800.setpoint_k.check(self.name, temperature_k)
        self._fn("setUserTemperature", ctypes.c_float(temperature_k))

    def is_controlling(self) -> bool:
        """Whether the sample heater runs (PID control or a constant power): the state that
        ``toggleSampleTemperatureControl`` toggles, read with ``isSampleHeaterOn``."""
        return bool(self._get_int("isSampleHeaterOn"))

    def set_temperature_control(self, on: bool) -> None:
        """Switch sample temperature control; the DLL only toggles, so its own state is read
        first and a repeated call changes nothing."""
        if self.is_controlling() == on:
            return
        self._fn("toggleSampleTemperatureControl")

    def go_to_base_temperature(self) -> None:
        self._fn("goToBaseTemperature")

    def pressure_mbar(self) -> float | None:
        """None: attoDRYLib reads no sample-space pressure (see :meth:`inlet_pressure_mbar`)."""
        require(self.name, self._dll)
        return None

    def inlet_pressure_mbar(self) -> float:
        """Pressure at the cryostat inlet (mbar), attoDRYLib's ``getPressure800``."""
        return self._get_float("getPressure800")

    def status(self) -> CryostatStatus:
        return CryostatStatus(
            sample_temperature_k=self.sample_temperature_k(),
            setpoint_k=self.setpoint_k(),
            controlling=self.is_controlling(),
            pressure_mbar=self.pressure_mbar(),
            inlet_pressure_mbar=self.inlet_pressure_mbar(),
        )
