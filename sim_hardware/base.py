"""What every simulated instrument shares: a bench, a connection flag, an identity."""

from __future__ import annotations

from drivers.interfaces import Identity, Instrument, NotConnectedError
from sim_hardware.bench import Bench
from sim_hardware.faults import FaultSchedule, schedule_of


class SimInstrument(Instrument):
    """Base of the simulated instruments: connection bookkeeping over a shared :class:`Bench`."""

    model = "simulated"

    def __init__(self, bench: Bench) -> None:
        self._bench = bench
        self._connected = False

    def connect(self) -> None:
        self._connected = True

    def close(self) -> None:
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    def identity(self) -> Identity:
        self._require()
        return Identity("cryoscope", f"simulated {self.model}", f"SIM-{self.name}", "1.0")

    @property
    def _faults(self) -> FaultSchedule:
        return schedule_of(self._bench)

    def _require(self) -> None:
        """Raise unless connected; then bring the bench up to the present, let the faults
        whose time has come happen, and raise if one of them broke this instrument."""
        if not self._connected:
            raise NotConnectedError(self.name, "not connected")
        self._bench.catch_up()
        faults = self._faults
        faults.happen()
        faults.raise_if_dead(self.name)
