"""Fault injection in the simulated rig, from configuration (``[[simulation.faults]]``).

A :class:`Fault` names an instrument, a kind and ``at_s``: seconds of virtual time after the
camera's first exposure of the session. :func:`install` attaches a :class:`FaultSchedule` to a
bench; each simulated instrument asks it (:func:`schedule_of`) whether a fault of its own is due
and then behaves as the real instrument would:

========== ============ ========================================================================
instrument kind         from ``at_s`` on
========== ============ ========================================================================
camera     error        every call raises (an SDK acquisition error)
camera     lost_frame   the frame exposing at ``at_s`` is lost (reported, as in a buffer overrun)
camera     stop_early   the series ends without an error, its remaining frames never come
stage      stall        the move under way (or the next one) never ends; the angle freezes
stage      no_reply     every call times out
tagger     disconnect   every call raises (the USB connection is lost)
tagger     overflow     a burst: every tag of :data:`OVERFLOW_BURST_S` is lost in an overflow
laser      stop         emission ends (no pulses, no sync, no photons)
cryostat   warm_up      the sample stage warms towards :data:`WARM_UP_K`
cryostat   disconnect   every call raises (the network connection is lost)
========== ============ ========================================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from drivers.interfaces import InstrumentError, InstrumentTimeoutError, TagEventType
from sim_hardware.bench import Bench
from sim_hardware.units import PS_PER_S

__all__ = ["FAULT_KINDS", "OVERFLOW_BURST_S", "WARM_UP_K", "Fault", "FaultSchedule",
           "install", "schedule_of"]

#: The kinds of fault each instrument can be given.
FAULT_KINDS: dict[str, tuple[str, ...]] = {
    "camera": ("error", "lost_frame", "stop_early"),
    "stage": ("stall", "no_reply"),
    "tagger": ("disconnect", "overflow"),
    "laser": ("stop",),
    "cryostat": ("warm_up", "disconnect"),
}
#: Faults after which every call of the instrument fails, and the error it raises.
_DEAD: dict[tuple[str, str], tuple[type[InstrumentError], str]] = {
    ("camera", "error"): (InstrumentError, "acquisition error reported by the SDK "
                                           "(simulated fault)"),
    ("stage", "no_reply"): (InstrumentTimeoutError, "no reply from the controller "
                                                    "(simulated fault)"),
    ("tagger", "disconnect"): (InstrumentError, "USB connection lost (simulated fault)"),
    ("cryostat", "disconnect"): (InstrumentError, "network connection lost (simulated fault)"),
}
#: Length of an injected tagger overflow (s).
OVERFLOW_BURST_S = 0.5
#: Temperature the sample stage warms towards after a ``warm_up`` fault (K).
WARM_UP_K = 300.0


@dataclass(frozen=True, slots=True)
class Fault:
    instrument: str
    kind: str
    at_s: float

    def __post_init__(self) -> None:
        kinds = FAULT_KINDS.get(self.instrument)
        if kinds is None:
            raise ValueError(f"no simulated instrument {self.instrument!r} (faults exist for "
                             f"{', '.join(FAULT_KINDS)})")
        if self.kind not in kinds:
            raise ValueError(f"no {self.instrument} fault {self.kind!r} (kinds: "
                             f"{', '.join(kinds)})")
        if not self.at_s >= 0:
            raise ValueError(f"at_s must be >= 0, got {self.at_s}")


class FaultSchedule:
    """The faults of one bench, timed from the camera's first exposure."""

    def __init__(self, bench: Bench, faults: Iterable[Fault] = ()) -> None:
        self._bench = bench
        self.faults = tuple(faults)
        self._origin_ps: int | None = None
        self._used: set[Fault] = set()

    def exposure_started(self) -> None:
        """The camera started a series: the first one sets the faults' time origin."""
        if self._origin_ps is None:
            self._origin_ps = self._bench.now_ps

    def at_ps(self, fault: Fault) -> int | None:
        """Bench time of a fault (ps), or None before the first exposure."""
        if self._origin_ps is None:
            return None
        return self._origin_ps + round(fault.at_s * PS_PER_S)

    def due(self, instrument: str, kind: str) -> Fault | None:
        """The fault of this instrument and kind whose time has come, if any."""
        if not self.faults:  # asked on every call of every instrument
            return None
        for fault in self.faults:
            if fault.instrument == instrument and fault.kind == kind:
                at = self.at_ps(fault)
                if at is not None and self._bench.now_ps >= at:
                    return fault
        return None

    def once(self, instrument: str, kind: str) -> Fault | None:
        """Like :meth:`due`, but each fault is handed out once."""
        fault = self.due(instrument, kind)
        if fault is None or fault in self._used:
            return None
        self._used.add(fault)
        return fault

    def happen(self) -> None:
        """Faults that change the bench itself, once their time has come: the laser stops."""
        if self.once("laser", "stop") is not None:
            self._bench.laser = replace(self._bench.laser, emission_on=False)

    def raise_if_dead(self, instrument: str) -> None:
        """Raise the error of a fault after which every call of the instrument fails."""
        if not self.faults:
            return
        for (name, kind), (error, message) in _DEAD.items():
            if name == instrument and self.due(name, kind) is not None:
                raise error(instrument, message)

    def overflow_bursts(self) -> list[tuple[int, int]]:
        """``[begin, end)`` bench times (ps) of the injected tagger overflows."""
        out = []
        for fault in self.faults:
            at = self.at_ps(fault)
            if fault.instrument == "tagger" and fault.kind == "overflow" and at is not None:
                out.append((at, at + round(OVERFLOW_BURST_S * PS_PER_S)))
        return out


def drop_in_bursts(t: npt.NDArray[np.int64], ch: npt.NDArray[np.int32],
                   bursts: list[tuple[int, int]], start: int, end: int
                   ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32],
                              list[tuple[int, int, TagEventType, int]]]:
    """The tags of a block read over ``[start, end)`` outside the overflow bursts, and the
    overflow events a Time Tagger reports for the rest: overflow begin, missed events per
    input (at the burst's end), overflow end."""
    events: list[tuple[int, int, TagEventType, int]] = []
    keep = np.ones(t.shape, bool)
    for begin, stop in bursts:
        if stop <= start or begin >= end:
            continue
        lost = (t >= begin) & (t < stop)
        keep &= ~lost
        if start <= begin:
            events.append((begin, 0, TagEventType.OVERFLOW_BEGIN, 0))
        channels, counts = np.unique(ch[lost], return_counts=True)
        at = min(stop, end - 1)
        events += [(at, int(c), TagEventType.MISSED_EVENTS, int(n))
                   for c, n in zip(channels, counts, strict=True)]
        if stop <= end:
            events.append((stop, 0, TagEventType.OVERFLOW_END, 0))
    return t[keep], ch[keep], events


def install(bench: Bench, faults: Iterable[Fault]) -> FaultSchedule:
    """Give a bench its faults (replacing any given before)."""
    schedule = FaultSchedule(bench, faults)
    bench.fault_schedule = schedule
    return schedule


def schedule_of(bench: Bench) -> FaultSchedule:
    """The faults of a bench (none unless :func:`install` gave it some)."""
    schedule = bench.fault_schedule
    if not isinstance(schedule, FaultSchedule):
        schedule = install(bench, ())
    return schedule
