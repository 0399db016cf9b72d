"""What a rig session publishes: its state, instrument polls, alignment frames, failures, runs."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cryoscope.acquisition import RunEvent, RunResult
from drivers.interfaces import ReadMode

__all__ = [
    "AlignmentChanged",
    "AlignmentFrame",
    "CommandFailed",
    "EventCallback",
    "InstrumentStatuses",
    "RunFinished",
    "SessionEvent",
    "SessionState",
    "SessionStateChanged",
]


class SessionState(enum.StrEnum):
    """Life cycle of a session."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    IDLE = "idle"
    RUNNING = "running"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class SessionStateChanged:
    state: SessionState
    message: str = ""


@dataclass(frozen=True, slots=True)
class InstrumentStatuses:
    """One poll of every instrument.

    ``statuses`` maps an instrument name (``"cryostat"``, ``"laser"``, ...) to its frozen status
    dataclass; ``errors`` maps the names whose status could not be read to the error message;
    ``count_rates_cps`` maps a tagger input number to its rising-edge rate (counts/s; measured
    while idle, and from the run's own stream during a run). ``laser_remote_control``: whether
    the laser's emission, rate and power can be set remotely
    (:attr:`drivers.interfaces.PulsedLaser.remote_control`; False: front-panel only).
    ``camera_readout``: the camera's readout mode, which the next run's frames will have.
    """

    statuses: Mapping[str, Any]
    errors: Mapping[str, str]
    count_rates_cps: Mapping[int, float]
    waveplate_zero_deg: float
    clock_s: float
    laser_remote_control: bool = True
    camera_readout: ReadMode | None = None


@dataclass(frozen=True, slots=True)
class AlignmentChanged:
    """Alignment mode started (``exposure_s``) or ended (``exposure_s`` None)."""

    exposure_s: float | None


@dataclass(frozen=True, slots=True)
class AlignmentFrame:
    """The latest camera frame of alignment mode (nothing is written): ``image`` is
    ``[tracks, pixels]`` (``track_names`` given) or ``[rows, columns]``."""

    image: npt.NDArray[np.uint16]
    index: int
    wavelength_nm: npt.NDArray[np.float64]
    track_names: tuple[str, ...]
    exposure_s: float


@dataclass(frozen=True, slots=True)
class CommandFailed:
    """A command (or the connection, or a run) failed; ``message`` is one line."""

    command: str
    message: str


@dataclass(frozen=True, slots=True)
class RunFinished:
    """A run ended: ``result`` is None when it failed before the plan could report one."""

    plan: str
    result: RunResult | None
    error: str = ""
    out: str = ""


SessionEvent = (SessionStateChanged | InstrumentStatuses | AlignmentChanged | AlignmentFrame
                | CommandFailed | RunFinished | RunEvent)
EventCallback = Callable[[SessionEvent], None]
